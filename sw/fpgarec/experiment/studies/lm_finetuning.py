"""``fpgarec study lm-finetuning [--quick-users N] [--plot DIR] [--SETTING VALUE ...]``: frozen vs
LoRA vs full fine-tuning of the text encoder (:mod:`fpgarec.lm`).

Prepares the demo's data, runs :func:`fpgarec.lm.compare_finetuning` with every
:class:`fpgarec.lm.FinetuneConfig` setting as an option (``--lora-r 4``, ``--modes frozen,lora``,
``--n-negatives none``) and prints its result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _bool(s: str) -> bool:
    return s.lower() in ("1", "true", "yes")


def _negatives(s: str) -> int | None:
    return None if s.lower() == "none" else int(s)


def _tuple(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


def parser(defaults: dict) -> argparse.ArgumentParser:
    """The study's options: its own, then one per setting of ``defaults`` (but progress)."""
    p = argparse.ArgumentParser(prog="fpgarec study lm-finetuning", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick-users", type=int, default=None, help="train on a seeded user subsample")
    p.add_argument("--cache", type=Path, default=Path("build/cache"), help="text-vector cache folder")
    p.add_argument("--plot", type=Path, default=None, help="write the PNG into this folder")
    p.add_argument("--no-progress", action="store_true")
    for name, value in defaults.items():
        if name == "progress":
            continue
        if isinstance(value, bool):
            kind = _bool
        elif name == "n_negatives":
            kind = _negatives
        elif isinstance(value, tuple):
            kind = _tuple
        else:
            kind = type(value)
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    return p


def main(argv: list[str]) -> int:
    import torch

    from fpgarec.config import DemoConfig
    from fpgarec.experiment.prepare import prepare
    from fpgarec.lm import FinetuneConfig, compare_finetuning, plot_finetuning

    defaults = FinetuneConfig().as_dict()
    args = parser(defaults).parse_args(argv)
    cfg = FinetuneConfig(
        **{k: getattr(args, k) for k in defaults if k != "progress"},
        progress=not args.no_progress,
    )
    demo = DemoConfig(
        cache=args.cache,
        quick=args.quick_users is not None,
        quick_users=args.quick_users or 200,
        seed=cfg.seed,
        threads=cfg.threads,
        progress=cfg.progress,
    )
    torch.set_num_threads(cfg.threads)
    results = compare_finetuning(prepare(demo), cfg, progress=cfg.progress)
    if args.plot is not None:
        results["meta"]["plot"] = str(plot_finetuning(results, args.plot))
    sys.stdout.write(json.dumps(results, default=float) + "\n")
    return 0
