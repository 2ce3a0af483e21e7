"""``fpgarec study sequential-baselines``: GRU4Rec and SASRec (issue 15, item 5) tuned, trained
and evaluated with the project's protocol on the demo's data; one JSON line with NDCG@10 and
Recall@10 on all, cold and new users and the seconds per model, beside the `sequence` model's
and student_w4's figures of the last demo (cited from docs/results.md, not recomputed); see
docs/sequence.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from fpgarec.config import DemoConfig

log = logging.getLogger(__name__)

#: figures of the last demo, cited from docs/results.md ("Session 4 run" table; student_w4's
#: design figures: "What the design delivers"); NDCG@10 unless named.
REFERENCE = {
    "source": "docs/results.md, session 4 demo (full ML-100k, seed 0)",
    "sequence": {"all": 0.1882, "cold": 0.1560, "new": 0.5041},
    "student_w4": {"all": 0.1633, "cold": 0.1293, "new": 0.5262},
    "student_w4_design_output": {"all": 0.1656, "cold": 0.1272, "recall@10 all": 0.1510},
}

#: per-run budget of ``--quick`` (200 users), seconds.


def splits(cfg: DemoConfig):
    """The demo's standard and new-user splits (what :func:`fpgarec.experiment.prepare.prepare`
    builds, without the item text vectors, which these id-only models do not read)."""
    from fpgarec.data.prepared import load_data
    from fpgarec.data.split import new_user_split, temporal_split

    data = load_data(cfg)
    return data, temporal_split(data), new_user_split(data, seed=cfg.seed)


def run(cfg: DemoConfig, models: tuple[str, ...], seconds: float | None = -1.0,
        point: int | None = None, patience: int | None = None) -> dict:
    """Both baselines on ``cfg``'s data: {model: sequential_baseline_entry(...)} and the
    reference figures. ``seconds``: per-run budget instead of the grid's (None: no budget, -1:
    the grid's own); ``point``: train only this grid point (no tuning); ``patience``: override."""
    from fpgarec.train.sequential_baselines import (
        GRID,
        QUICK_MAX_SECONDS,
        sequential_baseline_entry,
    )

    data, standard, new = splits(cfg)
    out: dict = {"data": data.summary(), "threads": cfg.threads, "seed": cfg.seed, "quick": cfg.quick}
    for name in models:
        grid = GRID[name]
        if cfg.quick:
            grid = tuple(dataclasses.replace(p, max_seconds=QUICK_MAX_SECONDS) for p in grid)
        if seconds is None or seconds >= 0:
            grid = tuple(dataclasses.replace(p, max_seconds=seconds) for p in grid)
        if patience is not None:
            grid = tuple(dataclasses.replace(p, patience=patience) for p in grid)
        if point is not None:
            grid = (grid[point],)
        entry = sequential_baseline_entry(name, standard, new, cfg.seed, grid, cfg.progress)
        log.info("%s: %s", name, json.dumps(entry["metrics"]))
        out[name] = {k: entry[k] for k in ("metrics", "seconds")} | {
            "chosen": entry["chosen"]["settings"],
            "grid_valid_ndcg@10": [p["valid_ndcg@10"] for p in entry["chosen"]["grid"]],
            "epochs": {"best": entry["curve"]["best_epoch"], "run": entry["curve"]["epochs"][-1]},
        }
    out["settings_override"] = {"seconds": seconds, "point": point, "patience": patience}
    out["reference"] = REFERENCE
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="fpgarec study sequential-baselines", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="RecBole folder (default: ML-100k from recbole)")
    ap.add_argument("--quick", action="store_true", help="the demo's --quick subsample, 15 s per run")
    ap.add_argument("--models", default="gru4rec,sasrec", help="comma-separated subset")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: as a demo worker runs a task)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=-1.0,
                    help="per-run budget in seconds instead of the grid's 50 (0: no budget)")
    ap.add_argument("--point", type=int, default=None, help="train only this grid point (no tuning)")
    ap.add_argument("--patience", type=int, default=None, help="early-stopping patience override")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DemoConfig(data=args.data, seed=args.seed, threads=args.threads, workers=1, quick=args.quick,
                     progress=not args.no_progress, build_design=False)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    seconds = None if args.seconds == 0 else args.seconds
    sys.stdout.write(json.dumps(run(cfg, models, seconds, args.point, args.patience)) + "\n")  # the command's one output line
    return 0
