#!/usr/bin/env python3
"""Run a compiled fpgarec design on this PYNQ board, or on its CPU emulation.

``fpgarec deploy`` copies this file as ``run.py`` into a self-contained folder (``lib/`` holds
the numpy-only runtime, ``bundle/<design>/`` the verified bundle). Needs Python 3.10+ and numpy;
the FPGA path also needs the ``pynq`` package and root (PYNQ board images have both)::

    python3 run.py                          # a batch of random queries on the FPGA
    python3 run.py --emulate                # the same on the CPU (bit-exact emulation)
    python3 run.py --check                  # FPGA vs CPU emulation, bit for bit
    python3 run.py --throughput --seconds 5 # queries/s over full batches
    python3 run.py --ids queries.npy        # your own (B, K) neighbour ids (int .npy), internal indices
    python3 run.py --history history.npz --user 196 --user 186   # known users' recommendations
    python3 run.py --history history.npz --items 242,302 --k 5  # a new user's items, oldest first

``--user`` and ``--items`` take the data set's own ids (MovieLens "196", "242"; a RecBole data
set's "customer_17", "sku-0001") and print the recommended items by id and title; the maps come
from a history file (``fpgarec serve BUNDLE --history DATA --save-history history.npz``, copied
next to ``run.py``). Without ``--history`` only ``--items`` works, with internal item indices.
``--ids``, random queries and ``--out`` are internal indices (the design's own input and output).

Log lines go to stderr; stdout ends with one JSON object (the result). Exit codes: 0 done,
1 the FPGA differs from the emulation (``--check``), 2 a user error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

log = logging.getLogger("run")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: the one in bundle/)")
    p.add_argument("--emulate", action="store_true", help="run the CPU emulation instead of the FPGA")
    p.add_argument("--queries", type=int, default=1024, help="random queries to run (default 1024)")
    p.add_argument("--ids", type=Path, default=None, help="(B, K) integer .npy of neighbour ids instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--history", type=Path, default=None,
                   help="history .npz with the data set's ids (fpgarec serve ... --save-history FILE)")
    p.add_argument("--user", action="append", default=[], metavar="ID",
                   help="a known user's id in the data set (repeatable; needs --history)")
    p.add_argument("--items", action="append", default=[], metavar="ID,ID,...",
                   help="a new user's item ids, comma-separated, oldest first (repeatable)")
    p.add_argument("--k", type=int, default=None, help="items per --user/--items answer (default: the design's top_k)")
    p.add_argument("--batch", type=int, default=1024, help="queries per DMA transfer (default 1024)")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for one batch (default 1)")
    p.add_argument("--clock-mhz", type=float, default=None, help="set FCLK0 (default: as the bitstream sets it)")
    p.add_argument("--bitfile", type=Path, default=None, help="a generated *.emulated.bit (emulated devices only)")
    p.add_argument("--check", action="store_true", help="compare with the CPU emulation bit for bit")
    p.add_argument("--throughput", action="store_true", help="measure queries/s over full batches")
    p.add_argument("--seconds", type=float, default=3.0, help="duration of --throughput (default 3)")
    p.add_argument("--show", type=int, default=3, help="queries whose top-k is printed (default 3)")
    p.add_argument("--out", type=Path, default=None, help="save the top-k ids as .npy")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _default_bundle() -> Path:
    found = sorted(p.parent for p in (HERE / "bundle").glob("*/manifest.json"))
    if len(found) != 1:
        from fpgarec.errors import FpgarecError

        raise FpgarecError(f"{HERE / 'bundle'}: expected one bundle, found {len(found)}; pass --bundle")
    return found[0]


def _check_options(args) -> None:
    """Refuse option values that cannot run, before the design is opened."""
    from fpgarec.errors import FpgarecError

    for name in ("queries", "batch"):
        if getattr(args, name) < 1:
            raise FpgarecError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("timeout", "seconds"):
        if not getattr(args, name) > 0:
            raise FpgarecError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.k is not None and not (args.user or args.items):
        raise FpgarecError(f"--k {args.k}: --k applies to --user/--items answers; the queries of --ids or "
                           "--queries get the design's top_k")
    if args.out is not None and not args.out.resolve().parent.is_dir():
        raise FpgarecError(f"--out {args.out}: folder {args.out.resolve().parent} does not exist")


def _queries(args, bundle):
    """The queries: random ids of real items, or ``--ids`` (a (B, K) integer .npy, B >= 1, ids in
    [0, n_items), or the null id n_items where the design pads with null ids)."""
    import numpy as np

    from fpgarec.errors import FpgarecError

    model = bundle.manifest["model"]
    n_items, k = int(model["n_items"]), int(model["k"])
    if args.ids is None:
        return np.random.default_rng(args.seed).integers(0, n_items, size=(args.queries, k))
    try:
        ids = np.load(args.ids, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FpgarecError(f"{args.ids}: not a readable .npy array ({exc})") from exc
    if ids.ndim != 2 or ids.shape[1] != k or not np.issubdtype(ids.dtype, np.integer):
        raise FpgarecError(f"{args.ids}: expected integer ids of shape (B, {k}), got {ids.dtype} {ids.shape}")
    if not len(ids):
        raise FpgarecError(f"{args.ids}: holds no queries (shape {ids.shape}); expected at least one row")
    if ids.min() < 0 or ids.max() > bundle.max_id:
        null = f", {bundle.null_id} = the null id of an empty slot" if bundle.null_id is not None else ""
        raise FpgarecError(f"{args.ids}: ids must lie in [0, {bundle.max_id}]{null}")
    return ids


def _open(args, bundle):
    if args.emulate:
        from fpgarec.runtime.emulation import EmulationBackend

        return EmulationBackend(bundle)
    from fpgarec.runtime.pynq_backend import PynqBackend

    options = {"bitfile": args.bitfile} if args.bitfile else {}
    return PynqBackend(bundle, batch_size=args.batch, timeout_s=args.timeout, clock_mhz=args.clock_mhz, **options)


def _throughput(backend, ids, batch: int, seconds: float) -> dict:
    import numpy as np

    reps = -(-batch // len(ids))
    block = np.concatenate([ids] * reps)[:batch]
    times = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or not times:
        t0 = time.perf_counter()
        backend.run(block)
        times.append(time.perf_counter() - t0)
    total = float(np.sum(times))
    return {"batches": len(times), "batch": len(block), "queries_per_s": round(len(times) * len(block) / total, 1),
            "batch_ms_median": round(1e3 * float(np.median(times)), 3),
            "batch_ms_p99": round(1e3 * float(np.percentile(times, 99)), 3)}


def recommend(args, bundle) -> int:
    """``--user`` / ``--items``: the design's answers in the data set's ids, with titles."""
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.sampler import History

    if args.ids is not None or args.check or args.throughput:
        raise FpgarecError("--user/--items answer queries by id: leave out --ids, --check and --throughput")
    if args.user and args.history is None:
        raise FpgarecError("--user needs --history FILE (the known users' items and the data set's ids)")
    history = History.load(args.history) if args.history is not None else None
    queries = [{"user": u} for u in args.user]
    queries += [{"items": [t.strip() for t in text.split(",") if t.strip()]} for text in args.items]
    backend = _open(args, bundle)
    with Accelerator(bundle, backend, history=history) as acc:
        t0 = time.perf_counter()
        rows = acc.recommend(users=args.user, k=args.k) if args.user else []
        rows += acc.recommend(items=[q["items"] for q in queries[len(args.user):]], k=args.k) if args.items else []
        seconds = time.perf_counter() - t0
        answers = []
        for query, row in zip(queries, rows, strict=True):
            items = [{"id": i, "title": acc.ids.title(acc.ids.item_index(i))} for i in row]
            answers.append({**query, "items": items})
            who = f"user {query['user']}" if "user" in query else f"items {','.join(query['items'])}"
            print(f"{who} -> " + "; ".join(f"{x['id']} {x['title']}" if x["title"] else x["id"] for x in items))
        result = {"backend": acc.backend_name, "design": bundle.manifest["design"], "ids": acc.ids.kind,
                  "queries": len(queries), "seconds": round(seconds, 6), "answers": answers,
                  "runtime": str(Path(sys.modules["fpgarec"].__file__).parent)}
    print(json.dumps(result))
    return 0


def run(args) -> int:
    import numpy as np

    from fpgarec.runtime.bundle import load_bundle

    _check_options(args)
    bundle = load_bundle(args.bundle or _default_bundle())
    if args.user or args.items:
        return recommend(args, bundle)
    ids = _queries(args, bundle)
    backend = _open(args, bundle)
    try:
        t0 = time.perf_counter()
        top = backend.run(ids)
        seconds = time.perf_counter() - t0
        info = backend.info() if hasattr(backend, "info") else {"backend": backend.name}
        result = {**info, "design": bundle.manifest["design"], "board": bundle.manifest["board"],
                  "queries": int(len(ids)), "seconds": round(seconds, 6),
                  "queries_per_s": round(len(ids) / seconds, 1) if seconds > 0 else None,
                  "runtime": str(Path(sys.modules["fpgarec"].__file__).parent)}
        if args.check:
            from fpgarec.runtime.emulation import EmulationBackend

            ref = EmulationBackend(bundle).run(ids)
            bad = np.nonzero((ref != top).any(axis=1))[0]
            result["bitexact_vs_emulation"] = not len(bad)
            result["queries_differing"] = int(len(bad))
        if args.throughput:
            result["throughput"] = _throughput(backend, ids, args.batch, args.seconds)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    if args.out is not None:
        np.save(args.out, top)
    for i in range(min(args.show, len(ids))):
        print(f"query {i}: neighbours {ids[i].tolist()} -> top-{top.shape[1]} items {top[i].tolist()}")
    print(json.dumps(result))
    return 0 if result.get("bitexact_vs_emulation", True) else 1


def main(argv: list[str] | None = None) -> int:
    lib = HERE / "lib"
    if lib.is_dir() and str(lib) not in sys.path:
        sys.path.insert(0, str(lib))  # the deployed runtime comes first
    args = _parser().parse_args(argv)
    try:
        import numpy  # noqa: F401 - the runtime needs it; say so in one line, not a traceback
    except ImportError:
        print("numpy is required: pip install numpy", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from fpgarec.errors import USER_ERRORS

    try:
        return run(args)
    except USER_ERRORS as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
