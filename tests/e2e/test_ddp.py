"""Training past one machine: 2 DDP processes (gloo, CPU) reach the metrics of 1 process.

Each rank trains on half of every global batch and DDP averages the gradients, so the update
equals the single-process one up to floating-point summation order; the metrics must agree
within that noise.
"""

from __future__ import annotations

import json
import subprocess

import pytest


def _train(cmd, out, model, cache):
    proc = subprocess.run(
        [*cmd, "train", model, "--quick", "--no-progress", "--metrics", str(out), "--cache", str(cache)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lightgcn"])
def test_two_processes_match_one(tmp_path, venv_bin, model, text_cache):
    one = _train([str(venv_bin / "fpgarec")], tmp_path / "one.json", model, text_cache)
    two = _train(
        [str(venv_bin / "torchrun"), "--standalone", "--nproc_per_node=2", str(venv_bin / "fpgarec")],
        tmp_path / "two.json", model, text_cache,
    )
    for group in ("all", "cold"):
        for metric in ("ndcg@10", "recall@10"):
            assert two[group][metric] == pytest.approx(one[group][metric], abs=0.02), (group, metric)
