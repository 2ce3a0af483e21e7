"""``fpgarec study multimodal --media DIR [--generate N]``: align text, image, audio and video
(:mod:`fpgarec.encoders.multimodal`) and measure cross-modal retrieval on held-out items.

With ``--generate N`` it first writes GENERATED synthetic media for N items into the folder
(:mod:`fpgarec.encoders.generated_media`); on such a folder it also reports the R@1 an oracle
reaches (items with the same metadata get media that differ only by noise). The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError


def _ceiling(manifest: dict, held_tokens: list[str], features_tokens: dict[str, set]) -> dict:
    """R@1 an oracle reaches on generated media: items with the same (year, genres) get media
    that differ only by noise, so among n held-out items sharing a key the best expected R@1 is
    1/n each. Returned per modality pool."""
    out = {}
    for m, tokens in features_tokens.items():
        pool = [t for t in held_tokens if t in tokens and t in manifest["items"]]
        if len(pool) < 2:
            continue
        keys = [manifest["items"][t]["key"] for t in pool]
        counts = {k: keys.count(k) for k in set(keys)}
        out[m] = round(float(np.mean([1.0 / counts[k] for k in keys])), 4)
    return out


def main(argv: list[str]) -> int:
    """One JSON line of the retrieval figures on stdout (logs on stderr)."""
    import torch

    from fpgarec.data.dataset import load_interactions
    from fpgarec.encoders.generated_media import generate_media, is_generated_folder
    from fpgarec.encoders.multimodal import MultimodalConfig, multimodal_item_vectors
    from fpgarec.encoders.text import encode_texts

    p = argparse.ArgumentParser(prog="fpgarec study multimodal", description=__doc__.split("\n")[0])
    p.add_argument("--media", type=Path, required=True, help="media folder (<item id>.png|.jpg|.wav|.gif ...)")
    p.add_argument("--generate", type=int, default=None, metavar="N",
                   help="first write GENERATED synthetic media for N items into --media (an empty or generated folder)")
    p.add_argument("--data", type=Path, default=None, help="RecBole atomic-file folder (default: ml-100k)")
    p.add_argument("--cache", type=Path, default=Path("build/cache"), help="cache folder (text and media features)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=MultimodalConfig.dim)
    p.add_argument("--epochs", type=int, default=MultimodalConfig.epochs)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--report", type=Path, default=None, help="also write the whole report as JSON here")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.verbose:
        logging.getLogger("fpgarec").setLevel(logging.DEBUG)
    if args.threads:
        torch.set_num_threads(args.threads)
    progress = not args.no_progress
    data = load_interactions(args.data)
    if args.generate is not None:
        if args.generate < 1:
            raise FpgarecError(f"--generate {args.generate}: give a number of items >= 1")
        generate_media(data.item_tokens, data.item_text, args.media, args.generate, seed=args.seed,
                       progress=progress)
    text = encode_texts(data.item_text, args.cache / "text", show_progress=progress)
    cfg = MultimodalConfig(dim=args.dim, epochs=args.epochs, seed=args.seed)
    t0 = time.perf_counter()
    _, report = multimodal_item_vectors(data, text, args.media, args.cache / "media", cfg, progress)
    out = {"media": str(args.media), "generated": is_generated_folder(args.media), "items": report["items"],
           "modalities": report["modalities"], "skipped": report["files"]["skipped"], **report["retrieval"],
           "train_seconds": report["train_seconds"],
           "encode_seconds_per_item": {m: t["seconds_per_item"] for m, t in report["encoding"].items()},
           "seconds": round(time.perf_counter() - t0, 1)}
    manifest_path = args.media / "README.generated.json"
    if out["generated"] and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        tokens = {m: {t for t, v in manifest["items"].items() if any(f.endswith(ext) for f in v["files"])}
                  for m, ext in (("image", ".png"), ("audio", ".wav"), ("video", ".gif"))}
        out["oracle_R@1_same_metadata"] = _ceiling(manifest, report["held_out_tokens"], tokens)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
