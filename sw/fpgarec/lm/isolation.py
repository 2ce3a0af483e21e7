"""Each mode in a fresh process, so that its peak memory is its own.

The parent writes what a mode needs as safetensors + JSON (no pickle, :func:`save_payload`),
starts ``python -c`` on :func:`child_main` per mode (:func:`run_isolated`) and reads the mode's
result row back as JSON. The child sets up logging at its parent's level
(:func:`fpgarec.logs.setup_logging`, records named by process).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np

from fpgarec.data.split import Split, UserSequences
from fpgarec.errors import FpgarecError
from fpgarec.lm.config import MODES, FinetuneConfig
from fpgarec.lm.data import FinetuneData
from fpgarec.lm.loop import run_mode
from fpgarec.logs import current_level, setup_logging

#: what a child process runs: ``child_main`` on its command line.
CHILD_CODE = "import sys; from fpgarec.lm.isolation import child_main; sys.exit(child_main(sys.argv[1:]))"


def save_payload(data: FinetuneData, cfg: FinetuneConfig, folder: Path) -> None:
    """Write what a mode's process needs: arrays as safetensors, the config as JSON (no pickle)."""
    from safetensors.numpy import save_file

    arrays = {"token_ids": data.token_ids, "lengths": data.lengths, "text": data.text}
    for name, split in (("standard", data.standard), ("new", data.new)):
        arrays[f"{name}.shape"] = np.array([split.n_users, split.n_items], dtype=np.int64)
        for part in ("train", "valid", "test", "context"):
            seqs = getattr(split, part)
            arrays[f"{name}.{part}.indptr"], arrays[f"{name}.{part}.items"] = (
                seqs.indptr,
                seqs.items,
            )
        arrays[f"{name}.cold_users"], arrays[f"{name}.new_users"] = (
            split.cold_users,
            split.new_users,
        )
    save_file(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / "payload.safetensors")
    )
    (folder / "config.json").write_text(json.dumps(cfg.as_dict()))


def load_payload(folder: Path) -> tuple[FinetuneData, FinetuneConfig]:
    """The inverse of :func:`save_payload`."""
    from safetensors.numpy import load_file

    a = load_file(str(folder / "payload.safetensors"))

    def split(name: str) -> Split:
        n_users, n_items = (int(x) for x in a[f"{name}.shape"])
        parts = {
            p: UserSequences(a[f"{name}.{p}.indptr"], a[f"{name}.{p}.items"])
            for p in ("train", "valid", "test", "context")
        }
        return Split(
            n_users,
            n_items,
            cold_users=a[f"{name}.cold_users"],
            new_users=a[f"{name}.new_users"],
            **parts,
        )

    data = FinetuneData(a["token_ids"], a["lengths"], a["text"], split("standard"), split("new"))
    return data, FinetuneConfig(**json.loads((folder / "config.json").read_text()))


def run_isolated(folder: Path, mode: str) -> dict:
    """Run ``mode`` in a fresh Python process (:func:`child_main`) on the payload in ``folder``;
    its peak RSS is then the mode's alone."""
    out = folder / f"result_{mode}.json"
    cmd = [sys.executable, "-c", CHILD_CODE, "--child", str(folder), "--mode", mode,
           "--log-level", current_level()]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"the {mode} fine-tuning process failed (exit code {proc.returncode}); "
            "see its log above"
        )
    return json.loads(out.read_text())


def child_main(argv: list[str]) -> int:
    """Entry point of a mode's process: ``--child FOLDER --mode MODE --log-level LEVEL``; writes
    ``FOLDER/result_MODE.json``. A user error is one line on stderr and exit code 2."""
    import argparse

    parser = argparse.ArgumentParser(prog="fpgarec.lm.isolation")
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    multiprocessing.current_process().name = f"lm-{args.mode}"  # names the log records
    setup_logging(level=args.log_level, process_name=True)
    logging.getLogger(__name__).debug("%s: payload %s", args.mode, args.child)
    try:
        data, cfg = load_payload(args.child)
        res = run_mode(data, cfg, args.mode)
    except FpgarecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.child / f"result_{args.mode}.json").write_text(json.dumps(res))
    return 0
