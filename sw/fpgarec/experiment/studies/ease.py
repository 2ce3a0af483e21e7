"""``fpgarec study ease``: new-user NDCG@10 of popularity, EASE and few-shot ridge.

Trains :class:`fpgarec.models.ease.EASE` for λ = 50 / 200 / 500 / 2000 and
:class:`fpgarec.models.ease.FewShotRidge` for λ = 10 / 50 / 200 on the demo's new-user split and
prints ``{"popularity": .., "ease_lambda_50": .., ...}`` (NDCG@10) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    from fpgarec.config import DemoConfig
    from fpgarec.experiment.prepare import prepare
    from fpgarec.models.baselines import Popularity
    from fpgarec.models.ease import EASE, FewShotRidge
    from fpgarec.train.evaluate import evaluate_new

    argparse.ArgumentParser(prog="fpgarec study ease", description=__doc__.split("\n")[0]).parse_args(argv)
    prep = prepare(DemoConfig.from_environment(progress=False))
    new, n = prep.new, prep.data.n_items
    out = {"popularity": evaluate_new(Popularity(new.train, n), new)["ndcg@10"]}
    for lam in (50.0, 200.0, 500.0, 2000.0):
        out[f"ease_lambda_{lam:g}"] = evaluate_new(EASE(new.train, n, lam), new)["ndcg@10"]
    known = new.train.concat(new.valid)  # everything the training users did (no new user in it)
    for lam in (10.0, 50.0, 200.0):
        out[f"fewshot_ridge_lambda_{lam:g}"] = evaluate_new(FewShotRidge(known, n, lam), new)["ndcg@10"]
    log.info("new-user NDCG@10: %s", out)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
