"""The serving side of the command line: ``serve``, ``loadtest``, ``deploy`` and ``explain``.

The four take the compiled design as their positional ``bundle`` and name the users they know
the same way: ``--history SOURCE``, a history ``.npz``, a RecBole data folder, ``ml-100k`` (the
demo's data) or ``none`` (see :mod:`fpgarec.serve.history`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fpgarec.errors import FpgarecError

log = logging.getLogger("fpgarec")


def _serve_config(args: argparse.Namespace, **overrides):
    from fpgarec.serve.config import ServeConfig

    history = None if str(args.history).lower() == "none" else args.history
    fields = dict(bundle=args.bundle, backend=args.backend, history=history, host=args.host,
                  port=getattr(args, "port", 0),
                  max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                  max_body_bytes=args.max_body_bytes, max_items=args.max_items, backend_thread=args.backend_thread,
                  blas_threads=args.blas_threads or None, read_timeout_s=args.read_timeout,
                  shutdown_timeout_s=args.shutdown_timeout)
    fields.update(overrides)
    return ServeConfig(**fields)


def cmd_serve(args: argparse.Namespace) -> int:
    """``fpgarec serve BUNDLE``: the HTTP service (or, with --save-history, write the history file)."""
    if args.save_history is not None:
        from fpgarec.serve.history import load_history

        history = load_history(None if str(args.history).lower() == "none" else args.history)
        if history is None:
            raise FpgarecError("--save-history needs --history SOURCE (a data folder or ml-100k)")
        log.info("history of %d users written to %s", history.n_users, history.save(args.save_history))
        return 0
    from fpgarec.serve.app import serve

    serve(_serve_config(args))
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    """``fpgarec loadtest BUNDLE``: loopback load test; the last output line is one JSON object."""
    from fpgarec.serve.config import LoadTestConfig
    from fpgarec.serve.loadtest import run_loadtest

    cfg = LoadTestConfig(serve=_serve_config(args, port=0), requests=args.requests, concurrency=args.concurrency,
                         user_share=args.user_share, seed=args.seed, max_seconds=args.max_seconds,
                         check_answers=not args.no_check)
    result = run_loadtest(cfg)
    log.info("loadtest: %d requests, %d lost, %d failed, %.0f requests/s, p50 %.2f ms, p99 %.2f ms; bars %s",
             result["requests"], result["lost"], result["failed"], result["rps"], result["p50_ms"] or 0,
             result["p99_ms"] or 0, "passed" if result["passed"] else f"missed: {result['bars']}")
    sys.stdout.write(json.dumps(result) + "\n")  # the last line: one JSON object
    return 0 if result["lost"] == 0 and result["failed"] == 0 and not result["wrong"] else 1


def _add_serve_commands(sub) -> None:
    """The ``serve`` and ``loadtest`` subcommands (fpgarec.serve)."""

    def service_options(p) -> None:
        p.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
        p.add_argument("--backend", default="auto", choices=["auto", "pynq", "emulation", "finn"],
                       help="auto: the board where present, else the CPU emulation")
        p.add_argument("--history", default="ml-100k",
                       help="known users: a history .npz, a RecBole data folder, ml-100k, or none")
        p.add_argument("--host", default="127.0.0.1", help="address to listen on")
        p.add_argument("--max-batch", type=int, default=64, help="largest accelerator batch")
        p.add_argument("--max-wait-ms", type=float, default=1.0, help="how long a batch waits for more requests")
        p.add_argument("--max-queue", type=int, default=4096, help="waiting queries beyond which requests get 503")
        p.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="largest request body (larger: 413)")
        p.add_argument("--max-items", type=int, default=1024, help="longest item list a request may carry")
        p.add_argument("--backend-thread", action="store_true", help="run batches in a worker thread")
        p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads of the server (0: unchanged)")
        p.add_argument("--read-timeout", type=float, default=10.0,
                       help="seconds a request body may take to arrive (then 408 and the connection closed)")
        p.add_argument("--shutdown-timeout", type=float, default=5.0,
                       help="seconds unfinished requests get at shutdown (then 503)")

    p = sub.add_parser("serve", help="HTTP recommendation service: POST /recommend, GET /healthz, GET /metrics")
    service_options(p)
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--save-history", type=Path, default=None, metavar="FILE.npz",
                   help="write the --history source as a history file and exit")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("loadtest", help="loopback load test of the service; last line: one JSON object")
    service_options(p)
    p.add_argument("--requests", type=int, default=50_000, help="requests to send")
    p.add_argument("--concurrency", type=int, default=64, help="connections sending at once")
    p.add_argument("--user-share", type=float, default=0.5, help="share of requests naming a known user")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated requests")
    p.add_argument("--max-seconds", type=float, default=300.0, help="no request starts after this")
    p.add_argument("--no-check", action="store_true", help="do not check answers against the emulation")
    p.set_defaults(func=cmd_loadtest)


def cmd_deploy(args: argparse.Namespace) -> int:
    """``fpgarec deploy BUNDLE --out DIR``: a self-contained folder for the bundle's board."""
    from fpgarec.deploy import deploy

    out = deploy(args.bundle, args.board, args.out)
    if json.loads((out / "deploy.json").read_text()).get("bitstream_built"):
        log.info("copy %s to the board and run `python3 run.py` there (see %s)", out, out / "README.md")
    else:
        log.info("%s: no bitstream in this bundle (Vivado has not run): `python3 run.py --emulate` runs the "
                 "CPU emulation, here or on the board (see %s)", out, out / "README.md")
    return 0


def _add_deploy_command(sub) -> None:
    """The ``deploy`` subcommand (fpgarec.deploy)."""
    p = sub.add_parser("deploy", help="write a self-contained folder (runtime, bundle, run.py) for a PYNQ board")
    p.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
    p.add_argument("--board", default=None,
                   help="the board it runs on (default: the bundle's, from its manifest); an error if they differ")
    p.add_argument("--out", type=Path, required=True,
                   help="folder to write (an existing one is replaced only if it is an earlier deploy)")
    p.set_defaults(func=cmd_deploy)


def _explain_data(args: argparse.Namespace) -> Path | None:
    """The data folder ``explain`` reads (None: the demo's ml-100k) from ``--history`` (or the
    older ``--data``). The page needs the data set itself (item genres, each user's dated
    sequence), so a history ``.npz`` or ``none`` is refused in one line."""
    source = args.data if args.data is not None else args.history
    text = str(source)
    if text == "ml-100k" and not Path(text).exists():
        return None
    if text.lower() == "none" or text.endswith(".npz"):
        raise FpgarecError(f"--history {text}: explain reads the data set itself (item genres, dates); "
                           "give a RecBole data folder or ml-100k")
    return Path(text)


def cmd_explain(args: argparse.Namespace) -> int:
    """``fpgarec explain --user ID``: PNG + HTML of why the design recommends what it does."""
    from fpgarec.explain.page import ExplainConfig, explain_user

    cfg = ExplainConfig(user=args.user, bundle=args.bundle_option or args.bundle, data=_explain_data(args),
                        out=args.out, windows=args.windows)
    result = explain_user(cfg)
    log.info("top recommendation %r: %s", result["titles"][0] if result["titles"] else None,
             (cfg.out / f"user_{cfg.user}.html").resolve())
    return 0


def _add_explain_command(sub) -> None:
    p = sub.add_parser("explain", help="why a user gets their recommendations: neighbours, modalities, interest over time")
    p.add_argument("--user", required=True, help="the user's id (token) in the data set, e.g. 196")
    p.add_argument("bundle", type=Path, nargs="?", default=Path("bitstreams/student_w4_pynq-z2"),
                   help="the design to explain (bundle folder)")
    p.add_argument("--bundle", type=Path, dest="bundle_option", default=None, help=argparse.SUPPRESS)
    p.add_argument("--history", default="ml-100k",
                   help="known users, as for serve and loadtest: a RecBole data folder or ml-100k (the page "
                   "reads the data set's genres and dates, so not a history .npz)")
    p.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)  # the older name of --history
    p.add_argument("--out", type=Path, default=Path("build/explain"), help="output folder")
    p.add_argument("--windows", type=int, default=4, help="time windows of the interest panel")
    p.set_defaults(func=cmd_explain)


def add_serving_commands(sub) -> None:
    """Add ``deploy``, ``serve``, ``loadtest`` and ``explain`` to the subcommands ``sub``."""
    _add_deploy_command(sub)
    _add_serve_commands(sub)
    _add_explain_command(sub)
