"""``fpgarec study sequence-ablations``: teacher vs the behaviour-sequence model and its read-out
ablations (:data:`fpgarec.models.sequence.ABLATIONS`) on both splits of the data, trained as
the demo trains the teacher; one JSON line (NDCG@10 on all, cold and new users), see
docs/sequence.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from fpgarec.config import DemoConfig


def run(cfg: DemoConfig, scratch: bool = False) -> dict:
    """The comparison on ``cfg``'s data (``scratch``: the sequence model without a teacher)."""
    from fpgarec.experiment.prepare import prepare
    from fpgarec.experiment.tasks import train_settings
    from fpgarec.models.sequence import ABLATIONS, ablated
    from fpgarec.train.evaluate import evaluate_new, evaluate_test
    from fpgarec.train.recipes import train_teacher
    from fpgarec.train.sequence import train_sequence

    prep, s = prepare(cfg), train_settings(cfg)
    names = ["teacher", "sequence", *(f"sequence_{a}" for a in ABLATIONS)]
    ndcg: dict[str, dict] = {n: {} for n in names}
    secs: dict[str, dict] = {"teacher": {}, "sequence": {}}
    chosen, entry = {}, None
    for split_name, split in (("standard", prep.standard), ("new", prep.new)):
        t0 = time.perf_counter()
        teacher, _ = train_teacher(prep, split, s)
        secs["teacher"][split_name] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        seq, hist = train_sequence(prep, split, s, teacher=None if scratch else teacher)
        secs["sequence"][split_name] = round(time.perf_counter() - t0, 1)
        chosen[split_name] = hist.chosen
        entry = entry or seq.report_entry()
        variants = {"teacher": teacher, "sequence": seq} | {f"sequence_{a}": ablated(seq, a) for a in ABLATIONS}
        for name, model in variants.items():
            if split_name == "standard":
                res = evaluate_test(model, split)
                ndcg[name] |= {g: round(res[g]["ndcg@10"], 4) for g in ("all", "cold")}
            else:
                ndcg[name]["new"] = round(evaluate_new(model, split)["ndcg@10"], 4)
    return {"data": prep.data.summary(), "threads": cfg.threads, "seed": cfg.seed, "ndcg@10": ndcg,
            "train_seconds": secs, "sequence_chosen": chosen, "sequence_entry": entry}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="fpgarec study sequence-ablations", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="RecBole folder (default: ML-100k from recbole)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", action="store_true", help="train the sequence model from scratch")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DemoConfig(data=args.data, seed=args.seed, threads=args.threads, workers=1,
                     progress=not args.no_progress, build_design=False)
    sys.stdout.write(json.dumps(run(cfg, scratch=args.scratch)) + "\n")  # the command's one output line
    return 0
