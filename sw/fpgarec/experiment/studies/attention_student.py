"""``fpgarec study attention-student``: the 4-bit student with the attention aggregation
(kernels/attention_aggregate: weights a_j = softmax_j(q·x_j + b_type[τ_j] + b_pos[r_j]) over the
real context slots) against the mean student (neighbor_aggregate), same settings and seed,
both initialised from and distilled from the demo's teacher (issue 15 item 2); one JSON line
with NDCG@10 / Recall@10 on all and cold users (and new users with ``--new``) and the training
seconds of each, beside the reference figures of the last demo and the issue's bar. See
docs/sequence.md.

    fpgarec study attention-student                       # mean and attention, standard split
    fpgarec study attention-student --models attention --gain 20 --new
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import torch

from fpgarec.config import DemoConfig

log = logging.getLogger(__name__)

#: figures of the last full demo (docs/results.md, docs/sequence.md), NDCG@10.
REFERENCE = {
    "student_w4": {"all": 0.1632, "cold": 0.1277, "new": 0.5250},
    "sequence": {"all": 0.1882, "cold": 0.1560},
    "gru4rec": {"all": 0.1712, "cold": 0.1657},
    "sasrec": {"all": 0.1592, "cold": 0.1486},
}


def bar(reference: dict = REFERENCE) -> dict:
    """The issue's bar for the attention student: >= the best sequential model on all and on
    cold users, and >= 1.10 x the mean student."""
    best = {g: max(reference[m][g] for m in ("sequence", "gru4rec", "sasrec")) for g in ("all", "cold")}
    return {g: round(max(best[g], 1.10 * reference["student_w4"][g]), 4) for g in ("all", "cold")}


def _metrics(res: dict) -> dict:
    return {g: {"ndcg@10": round(res[g]["ndcg@10"], 4), "recall@10": round(res[g]["recall@10"], 4)} for g in res}


def _teacher(prep, split_name: str, cfg: DemoConfig, teacher_dir: Path | None):
    """The demo's trained teacher of ``split_name`` (from ``teacher_dir``, default the demo's
    work folder), or one trained now when there is no file."""
    from fpgarec.experiment.tasks import train_settings
    from fpgarec.train.checkpoint import load_parameters
    from fpgarec.train.recipes import build_teacher, train_teacher

    split = prep.standard if split_name == "standard" else prep.new
    path = (teacher_dir or Path(cfg.out) / "work") / f"teacher.{split_name}.safetensors"
    if path.is_file():
        log.info("teacher %s from %s", split_name, path)
        return load_parameters(build_teacher(prep, split, train_settings(cfg)), path)
    log.info("no %s: training the %s teacher", path, split_name)
    return train_teacher(prep, split, train_settings(cfg))[0]


def _distiller(prep, split, cfg: DemoConfig, teacher, source: str):
    """None (distil from the teacher) or the trained ``sequence`` model's scores."""
    if source == "teacher":
        return None
    from fpgarec.experiment.tasks import train_settings
    from fpgarec.train.recipes import SequenceScores
    from fpgarec.train.sequence import train_sequence

    t0 = time.perf_counter()
    seq, _ = train_sequence(prep, split, train_settings(cfg), teacher=teacher)
    log.info("sequence model trained in %.0f s", time.perf_counter() - t0)
    return SequenceScores(seq, split.train)


def run(cfg: DemoConfig, models: tuple[str, ...], st, new: bool = False, distill: str = "teacher",
        teacher_dir: Path | None = None, save: Path | None = None) -> dict:
    """Train and evaluate each of ``models`` ("mean", "attention") with student settings ``st``."""
    from fpgarec.experiment.tasks import prepared, train_settings
    from fpgarec.train.evaluate import evaluate_new, evaluate_test
    from fpgarec.train.recipes import train_student

    prep = prepared(cfg)
    s = train_settings(cfg)
    out: dict = {"data": prep.data.summary(), "threads": cfg.threads, "seed": cfg.seed,
                 "settings": dataclasses.asdict(st) | {"distill": distill}}
    splits = ["standard", "new"] if new else ["standard"]
    teachers = {name: _teacher(prep, name, cfg, teacher_dir) for name in splits}
    for name in models:
        entry: dict = {}
        for split_name in splits:
            split = prep.standard if split_name == "standard" else prep.new
            distiller = _distiller(prep, split, cfg, teachers[split_name], distill)
            student, hist = train_student(prep, split, s, dataclasses.replace(st, aggregation=name),
                                          teachers[split_name], distill_from=distiller)
            student.eval()
            res = evaluate_test(student, split) if split_name == "standard" else {"new": evaluate_new(student, split)}
            entry.update(_metrics(res))
            entry[f"seconds_{split_name}"] = round(hist.seconds, 1)
            entry[f"epochs_{split_name}"] = {"best": hist.best_epoch, "valid_ndcg@10": round(hist.best_valid_ndcg10, 4)}
            if student.attention:
                p = student.aggregate.kernel_params()
                entry[f"learned_{split_name}"] = {"b_type": list(p.b_type), "b_pos": list(p.b_pos), "m_mult": p.m_mult,
                                                  "q_abs_mean": round(sum(abs(v) for v in p.q) / len(p.q), 2)}
            if save is not None and split_name == "standard":
                from fpgarec.train.checkpoint import save_student

                save_student(student, save / f"student_w{st.bits}_{name}")
        log.info("%s: %s", name, json.dumps(entry))
        out[name] = entry
    if "mean" in out and "attention" in out:
        out["attention_over_mean"] = {g: round(out["attention"][g]["ndcg@10"] / out["mean"][g]["ndcg@10"], 4)
                                      for g in ("all", "cold", "new") if g in out["mean"]}
    out["reference"] = REFERENCE
    out["bar"] = bar()
    return out


def main(argv: list[str]) -> int:
    from fpgarec.train.recipes import StudentSettings

    ap = argparse.ArgumentParser(prog="fpgarec study attention-student", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="RecBole folder (default: ML-100k from recbole)")
    ap.add_argument("--quick", action="store_true", help="the demo's --quick subsample")
    ap.add_argument("--models", default="mean,attention", help="comma-separated subset of mean,attention")
    ap.add_argument("--new", action="store_true", help="also train and evaluate on the new-user split")
    ap.add_argument("--distill", choices=("teacher", "sequence"), default="teacher",
                    help="distil from the teacher (default) or from a sequence model trained now")
    ap.add_argument("--teacher-dir", type=Path, default=None,
                    help="folder of teacher.<split>.safetensors (default: the demo's work folder)")
    ap.add_argument("--save", type=Path, default=None, help="save the standard-split students here")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--gain", type=float, default=10.0, help="attention: learning-rate gain of q and biases")
    ap.add_argument("--q-frac-bits", type=int, default=5, help="attention: query scale 2^-Q")
    ap.add_argument("--buckets", type=int, default=8, help="attention: recency buckets")
    ap.add_argument("--per-octave", type=int, default=1, help="attention: recency buckets per doubling of the rank")
    ap.add_argument("--n-recent", type=int, default=None,
                    help="context slots given to the most recent items (default: the demo's 12; 0: all K)")
    ap.add_argument("--att-init", choices=("uniform", "relevance"), default="uniform",
                    help="attention start: the mean (q = 0) or fitted to slot relevance")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--distill-weight", type=float, default=None, help="λ (default: the demo's 0.5)")
    ap.add_argument("--distill-temperature", type=float, default=None, help="τ (default: the demo's 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DemoConfig(data=args.data, seed=args.seed, threads=args.threads, workers=1, quick=args.quick,
                     progress=not args.no_progress, build_design=False)
    n_recent = cfg.n_recent if args.n_recent is None else (args.n_recent or None)
    st = StudentSettings(bits=args.bits, n_recent=n_recent, long_context_prob=cfg.long_context_prob,
                         distill_weight=cfg.distill_weight if args.distill_weight is None else args.distill_weight,
                         distill_temperature=(cfg.distill_temperature if args.distill_temperature is None
                                              else args.distill_temperature), att_gain=args.gain,
                         att_q_frac_bits=args.q_frac_bits, att_buckets=args.buckets, att_per_octave=args.per_octave, att_init=args.att_init, lr=args.lr,
                         patience=args.patience)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    out = run(cfg, models, st, args.new, args.distill, args.teacher_dir, args.save)
    sys.stdout.write(json.dumps(out) + "\n")  # the command's one output line
    return 0
