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
        [*cmd, "train", model, "--quick", "--no-progress", "--metrics", str(out), "--cache", str(cache),
         "--out", str(out.with_suffix(""))],
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_match_one(tmp_path, venv_bin, text_cache):
    """Two torchrun NODES (one process each) rendezvousing on 127.0.0.1, each with its own
    output folder as on two hosts: node 1 never reads node 0's files (the teacher the hetero
    model starts from is kept in memory by every rank), and the metrics are the one-process
    ones within noise."""
    model = "hetero"
    one = _train([str(venv_bin / "fpgarec")], tmp_path / "one.json", model, text_cache)
    port = _free_port()
    nodes = []
    for rank in (0, 1):
        cmd = [str(venv_bin / "torchrun"), "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
               "--master_addr", "127.0.0.1", "--master_port", str(port), str(venv_bin / "fpgarec"), "train", model,
               "--quick", "--no-progress", "--out", str(tmp_path / f"node{rank}"),
               "--metrics", str(tmp_path / f"node{rank}.json"), "--cache", str(text_cache)]
        nodes.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=900) for p in nodes]
    for p, (_, err) in zip(nodes, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert not (tmp_path / "node1.json").exists() and not (tmp_path / "node1" / "work").exists()
    two = json.loads((tmp_path / "node0.json").read_text())
    for group in ("all", "cold", "new"):
        for metric in ("ndcg@10", "recall@10"):
            assert two[group][metric] == pytest.approx(one[group][metric], abs=0.02), (group, metric)
