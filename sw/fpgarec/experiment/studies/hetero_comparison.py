"""``fpgarec study hetero-comparison [--social FILE | --generate-social]``: the bipartite-only
teacher vs heterogeneous message passing on both splits of the data; one JSON line (NDCG@10 on
all, cold and new users), see docs/hetero.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from fpgarec.config import DemoConfig

log = logging.getLogger(__name__)


def _ndcg(results: dict) -> dict:
    return {group: round(v["ndcg@10"], 4) for group, v in results.items()}


def _social(prep, social_path: Path | None, generate: bool, seed: int):
    """The social edges to use (``generate``: a SYNTHETIC file from the .user demographics)."""
    from fpgarec.data.social import generate_social, read_social
    from fpgarec.errors import DataFormatError

    if generate:
        users = sorted(prep.data.folder.glob("*.user"))
        if not users:
            raise DataFormatError(prep.data.folder, "no .user file to derive a social file from")
        social_path = Path("build/social") / f"{prep.data.name}.net"
        generate_social(users[0], social_path, seed=seed)
    return read_social(social_path, prep.data.user_tokens) if social_path is not None else None


def run(cfg: DemoConfig, social_path: Path | None = None, generate: bool = False, hcfg=None) -> dict:
    """Bipartite-only (the demo's teacher) vs hetero on both splits: NDCG@10 on all, cold and
    new users, training seconds per split, the hetero models' report entries.

    Per split the teacher is trained once; ``hetero`` (knowledge-graph relations) and, with a
    social file, ``hetero+social`` (knowledge graph + user-user) both start from it.
    """
    from fpgarec.experiment.prepare import prepare
    from fpgarec.experiment.tasks import train_settings
    from fpgarec.train.evaluate import evaluate_new, evaluate_test
    from fpgarec.train.hetero import HeteroConfig, train_hetero
    from fpgarec.train.recipes import train_teacher

    hcfg = hcfg or HeteroConfig()
    prep, s = prepare(cfg), train_settings(cfg)
    social = _social(prep, social_path, generate, cfg.seed)
    variants = {"hetero": None} | ({"hetero+social": social} if social is not None else {})
    names = ["bipartite", *variants]
    metrics, seconds, epochs = ({n: {} for n in names} for _ in range(3))
    entries: dict = {n: {} for n in variants}
    for split_name, split in (("standard", prep.standard), ("new", prep.new)):
        trained = {"bipartite": train_teacher(prep, split, s)}
        for name, soc in variants.items():
            trained[name] = train_hetero(prep, split, s, soc, trained["bipartite"][0], hcfg)
            entries[name][split_name] = trained[name][0].report_entry()
        for name, (model, hist) in trained.items():
            if split_name == "standard":
                metrics[name].update(_ndcg(evaluate_test(model, split)))
            else:
                metrics[name]["new"] = round(evaluate_new(model, split)["ndcg@10"], 4)
            seconds[name][split_name] = round(hist.seconds, 1)
            epochs[name][split_name] = hist.best_epoch
        log.info("after the %s split: %s", split_name, metrics)
    return {"data": prep.data.summary(), "kg": hcfg.kg, "social": social.report if social else None,
            "ndcg@10": metrics, "train_seconds": seconds, "best_epoch": epochs, "threads": cfg.threads,
            "hetero_models": entries}


def main(argv: list[str]) -> int:
    from fpgarec.models.hetero import KG_MODES
    from fpgarec.train.hetero import HeteroConfig

    p = argparse.ArgumentParser(prog="fpgarec study hetero-comparison", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--social", type=Path, default=None, help="a .net social file (docs/hetero.md)")
    src.add_argument("--generate-social", action="store_true",
                     help="derive a SYNTHETIC social file from the .user demographics and use it")
    p.add_argument("--kg", choices=KG_MODES, default="typed")
    p.add_argument("--data", type=Path, default=None, help="RecBole folder (default: ml-100k)")
    p.add_argument("--cache", type=Path, default=Path("build/cache"), help="text-vector cache")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = DemoConfig(data=a.data, cache=a.cache, threads=a.threads, seed=a.seed, progress=False)
    result = run(cfg, a.social, a.generate_social, HeteroConfig(kg=a.kg))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
