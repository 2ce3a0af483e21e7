"""Command line: thin subcommands over library functions.

User errors (:data:`~fpgarec.errors.USER_ERRORS`: ``FpgarecError``, a kernel's
``KernelParameterError``) print one line and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fpgarec.cli_serving import add_serving_commands
from fpgarec.errors import USER_ERRORS, FpgarecError
from fpgarec.logs import setup_logging

log = logging.getLogger("fpgarec")


def _common(p: argparse.ArgumentParser, out: Path | None = None, out_help: str = "build/demo") -> None:
    p.add_argument("--config", type=Path, default=None, metavar="FILE.json",
                   help="settings: a JSON object of DemoConfig fields (fpgarec.config; flags given override it)")
    p.add_argument("--print-config", action="store_true", help="print the resolved settings as JSON and exit")
    p.add_argument("--data", type=Path, default=None, help="RecBole atomic-file folder (default: ml-100k)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default: {out_help})")
    p.set_defaults(default_out=out, show_config=lambda args: _flow_config(args).as_dict())
    p.add_argument("--quick", action="store_true", help="small seeded subsample, short training")
    p.add_argument("--cache", type=Path, default=None, help="language-model vector cache (default: build/cache)")
    p.add_argument("--seed", type=int, default=None, help="seed of splits, initialisation and batch order (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="take the results of tasks an earlier run into the same --out finished with the same "
                   "settings; run only the rest")
    p.add_argument("--social", type=Path, default=None,
                   help="user-user social file (RecBole .net: source_id:token, target_id:token)")
    p.add_argument("--media", type=Path, default=None,
                   help="media folder (images/audio/GIF named by item id) aligned with the item text")


def _workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes training models side by side (default: all cores; 1: all in this "
                   "process; under torchrun: 1)")


def _config(args: argparse.Namespace):
    from fpgarec.cli_support import demo_config

    return demo_config(args)


def _table(report: dict) -> str:
    from fpgarec.train.evaluate import METRIC_NAMES
    w = 2 + max([5, *(len(n) for n, r in report.items() if isinstance(r, dict) and "all" in r)])
    rows = [f"{'model':<{w}}{'group':<6}" + "".join(f"{m:>11}" for m in METRIC_NAMES) + f"{'train s':>9}"]
    for name, res in report.items():
        if not (isinstance(res, dict) and "all" in res):
            continue
        for group in ("all", "cold", "new"):
            if not isinstance(res.get(group), dict):  # a few-shot method serves new users only
                continue
            vals = "".join(f"{res[group][m]:>11.4f}" for m in METRIC_NAMES)
            secs = f"{res.get('train_seconds', 0):>9.1f}" if group == "all" else ""
            rows.append(f"{name:<{w}}{group:<6}{vals}{secs}")
    return "\n".join(rows)


def _flow_config(args: argparse.Namespace):
    """The demo's and train's config: the common options plus ``--workers``."""
    from dataclasses import replace

    cfg = _config(args)
    if args.workers is not None and not cfg.distributed:
        if args.workers < 1:
            raise FpgarecError(f"--workers {args.workers}: give 1 or more worker processes")
        cfg = replace(cfg, workers=args.workers)
    return cfg


def _train_config(args: argparse.Namespace):
    """``train``'s config: the flow's, without the demo's extras (ablation, fine-tuning
    comparison, design): it trains the one model named (and its teacher)."""
    from dataclasses import replace

    return replace(_flow_config(args), distillation_ablation=False, lora=False, build_design=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from fpgarec.experiment.run import run_demo
    from fpgarec.train.distributed import init_from_torchrun, is_main_process

    cfg = _flow_config(args)
    joined = init_from_torchrun(cfg.distributed)
    report = run_demo(cfg)
    if joined:
        import torch

        torch.distributed.destroy_process_group()
    if not is_main_process():
        return 0
    log.info("results (test split; new = new-user protocol)\n%s", _table(report))
    for b in report["bars"]:
        log.info("bar %-48s %.3f (target %.2f) %s  [%s]", b["name"], b["value"], b["target"],
                 "PASS" if b["passed"] else "FAIL", b["detail"])
    log.info("report: %s", (cfg.out / "report.html").resolve())
    if report.get("failed"):
        log.error("%d task(s) did not finish (the report holds the others): %s", len(report["failed"]),
                  "; ".join(f"{k}: {v}" for k, v in report["failed"].items()))
        return 1
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model (and its teacher where it needs one); write its metrics as JSON.

    Runs unchanged under ``torchrun --nproc_per_node=N`` (DDP over gloo).
    """

    import torch

    from fpgarec.experiment.prepare import prepare
    from fpgarec.experiment.run import train_models
    from fpgarec.train.distributed import init_from_torchrun, is_main_process

    cfg = _train_config(args)
    joined = init_from_torchrun(cfg.distributed)
    torch.set_num_threads(cfg.threads)
    prep = prepare(cfg)
    needs_teacher = args.model.startswith("student_w") or args.model in ("sequence", "hetero")
    names = ["teacher", args.model] if needs_teacher else [args.model]
    results, _, _, _ = train_models(prep, cfg, names)
    if is_main_process():
        out = args.metrics or (cfg.out / f"{args.model}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results[args.model], indent=2))
        log.info("metrics of %s written to %s", args.model, out)
        for name in names:  # the teacher it trained first, too
            if name != args.model and name in results:
                (out.parent / f"{name}.json").write_text(json.dumps(results[name], indent=2))
    if joined:
        torch.distributed.destroy_process_group()
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """``fpgarec build SOURCE``: settings from the defaults, ``--config`` and the flags; an
    existing bundle folder is replaced only with ``--force``."""
    from fpgarec.cli_support import build_config, check_build_source

    cfg = build_config(args)
    if args.print_config:
        sys.stdout.write(json.dumps(cfg.to_json(), indent=2) + "\n")
        return 0
    source = check_build_source(args.source)
    target = cfg.output_dir / cfg.design_name(source)
    if target.exists() and not args.force:
        raise FpgarecError(f"{target}: the bundle folder exists; --force replaces it (or choose --out / --design)")
    from fpgarec.compile.flow import build

    bundle = build(source, cfg, progress=not args.no_progress)
    log.info("bundle: %s", bundle)
    return 0


def _add_build_command(sub) -> None:
    """The ``build`` subcommand: its flags default to None (not given), the help shows BuildConfig's defaults."""
    from fpgarec.cli_support import config_default
    from fpgarec.compile.config import BuildConfig

    def dflt(name: str) -> str:
        return f"(default: {config_default(BuildConfig, name)})"

    p = sub.add_parser("build", help="compile a student (.safetensors) or QONNX file into a bundle")
    p.add_argument("source", type=Path, nargs="?", default=None,
                   help="a trained student <name>.safetensors (beside <name>.json) or a QONNX .onnx file")
    p.add_argument("--config", type=Path, default=None, metavar="FILE.json",
                   help="build settings: a JSON object of BuildConfig fields (flags given override it)")
    p.add_argument("--print-config", action="store_true", help="print the resolved settings as JSON and exit")
    p.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the build steps")
    p.add_argument("--board", default=None, help=f"board name, one of hw/boards/*.json {dflt('board')}")
    p.add_argument("--clock-mhz", type=float, default=None, help="fabric clock (default: the board's clock)")
    p.add_argument("--target-qps", type=float, default=None, help=f"throughput goal, queries/s {dflt('target_qps')}")
    p.add_argument("--folding-file", type=Path, default=None,
                   help="FINN folding JSON (PE/SIMD per layer; default: automatic folding)")
    p.add_argument("--out", type=Path, default=None, help=f"folder that receives <design>/ {dflt('output_dir')}")
    p.add_argument("--design", default=None, help="design name (default: <source stem>_<board>)")
    p.add_argument("--top-k", type=int, default=None, help="item ids the design returns per query; a service "
                   f"that excludes seen items needs more, e.g. 64 {dflt('top_k')}")
    p.add_argument("--pad-items-multiple", type=int, default=None,
                   help="pad the scored item count to a multiple of this: more divisors, finer folding of the "
                   f"scoring layer (1,682 items: 128 -> 1,792, 48 -> 1,728) {dflt('pad_items_multiple')}")
    p.add_argument("--exclude-seen", action="store_true", default=None,
                   help="drop the items a query has seen on chip (a seen-items bitmap streamed with the ids)")
    p.add_argument("--emit-weights", action="store_true", default=None,
                   help=f"attention students: a second output, each query's K attention weights (0..2^W) {dflt('emit_weights')}")
    p.add_argument("--no-fit-check", action="store_true",
                   help="do not refuse a design whose FINN resource estimate exceeds the board (for "
                   "fpgarec's own RTL, measured by `fpgarec sim --synth`: FINN counts DSP48 MACs "
                   "where it uses LUTs)")
    p.set_defaults(func=cmd_build)


def cmd_sim(args: argparse.Namespace) -> int:
    from fpgarec.hwsim.measure import measure

    summary = measure(args.bundle, queries=args.queries, seed=args.seed, gap=args.gap,
                      backpressure=args.backpressure, size=args.size_fifos, synth=args.synth,
                      record=args.record, cache=args.cache)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if summary["mismatches"] == 0 else 1


def cmd_report(args: argparse.Namespace) -> int:
    """``fpgarec report BUNDLE [--out DIR]``: the report on stdout (and in DIR); a read command,
    it never writes into the bundle."""
    from fpgarec.compile.report import report

    sys.stdout.write(report(args.bundle, args.out) + "\n")
    return 0


def _student_for(args):
    if args.student is None:
        return None
    from fpgarec.compile.export import load_student

    return load_student(args.student)


def cmd_bench(args: argparse.Namespace) -> int:
    from fpgarec.compile.verify import bench

    result = bench(args.bundle, _student_for(args), batch=args.batch)
    sys.stdout.write(json.dumps(result) + "\n")  # the benchmark's last line: one JSON object
    return 0


def cmd_bench_packing(args: argparse.Namespace) -> int:
    from fpgarec.compile.bench_packing import bench_packing

    result = bench_packing(batch=args.batch)
    for name, case in result.get("cases", {}).items():
        log.info("packing %s: %s", name, case)
    log.info("%s", result.get("note", ""))
    keys = ("pack_speedup", "unpack_speedup", "bitexact", "batch", "host_us_per_query")
    sys.stdout.write(json.dumps({k: result[k] for k in keys}) + "\n")
    return 0 if result["bitexact"] else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from fpgarec.compile.verify import compare

    result = compare(args.bundle, _student_for(args), n_queries=args.queries, workers=args.workers,
                     progress=not args.no_progress)
    sys.stdout.write(json.dumps(result) + "\n")
    bad = sum(v["any"] for k, v in result.items() if k.startswith("emulation_vs_"))
    return 1 if bad else 0


def cmd_study(args: argparse.Namespace) -> int:
    """``fpgarec study NAME [options]``: one of the studies (fpgarec.experiment.studies)."""
    from fpgarec.experiment.studies import STUDIES, UnknownStudyError, known, run_study

    if args.list:
        for name in sorted(STUDIES):
            sys.stdout.write(f"{name:<24}{STUDIES[name]}\n")
        return 0
    if args.name is None:
        raise UnknownStudyError(f"name a study; known studies: {known()}")
    return run_study(args.name, args.options)


def _add_study_command(sub) -> None:
    p = sub.add_parser("study", help="run a study (experiments beside the demo); --list names them",
                       description="Run a study: fpgarec study NAME [its options] (fpgarec study NAME --help).")
    p.add_argument("name", nargs="?", default=None, help="the study (see --list)")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the study's own options")
    p.set_defaults(func=cmd_study)


def build_parser() -> argparse.ArgumentParser:
    from fpgarec.cli_support import DESCRIPTION, EXIT_CODES, document, version

    parser = argparse.ArgumentParser(prog="fpgarec", description=DESCRIPTION, epilog=EXIT_CODES)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of these (fpgarec COMMAND --help: its options and an example)")
    p = sub.add_parser("demo", help="train and evaluate all models, write build/demo/report.{json,html}")
    _common(p, out_help="build/demo; with --quick: build/demo-quick")
    _workers(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("train", help="train one model and write its metrics (torchrun-aware)")
    _common(p, out=Path("build/train"), out_help="build/train")
    _workers(p)
    students = [f"student_w{b}{a}" for a in ("", "_attention") for b in (8, 4, 2)]
    p.add_argument("model", help="the model to train", choices=["bpr", "lightgcn", "teacher", *students, "sequence", "hetero", "gru4rec", "sasrec"])
    p.set_defaults(show_config=lambda args: _train_config(args).as_dict())
    p.add_argument("--metrics", type=Path, default=None, help="where to write the metrics JSON (default: <out>/<model>.json)")
    p.set_defaults(func=cmd_train)

    _add_build_command(sub)

    p = sub.add_parser("report", help="per-layer cycles, resources, latency and throughput estimates")
    p.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
    p.add_argument("--out", type=Path, default=None,
                   help="also write report.{json,txt} into this folder (outside the bundle; symlinks are refused); "
                        "the bundle itself is never written")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="benchmarks; the last output line is one JSON object")
    bench_sub = p.add_subparsers(dest="what", required=True, metavar="WHAT", help="the benchmark")
    b = bench_sub.add_parser("emulation", help="emulation vs float PyTorch vs Brevitas queries/s")
    b.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
    b.add_argument("--student", type=Path, default=None, help="the trained student (.safetensors)")
    b.add_argument("--batch", type=int, default=1024, help="queries per call")
    b.set_defaults(func=cmd_bench)
    b = bench_sub.add_parser("packing", help="our bit packing vs finn-plus' at the demo bundle's datatypes")
    b.add_argument("--batch", type=int, default=1000, help="queries packed per call")
    b.set_defaults(func=cmd_bench_packing)

    p = sub.add_parser("sim", help="Verilator simulation of the whole design, bit for bit against the "
                       "emulation; last line: one JSON object")
    p.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
    p.add_argument("--queries", type=int, default=1000, help="generated queries to stream (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the queries, gaps and back-pressure (default 0)")
    p.add_argument("--gap", type=float, default=0.2, help="input gap probability of the random pass (default 0.2)")
    p.add_argument("--backpressure", type=float, default=0.2,
                   help="output back-pressure probability of the random pass (default 0.2)")
    p.add_argument("--size-fifos", action="store_true", help="size the FIFOs anew even if the bundle has depths")
    p.add_argument("--synth", action="store_true", help="also synthesize the design with Yosys")
    p.add_argument("--record", action="store_true",
                   help="store the measurements (and FIFO depths) in the bundle's manifest")
    p.add_argument("--cache", type=Path, default=Path("build/rtlsim"), help="build cache (default build/rtlsim)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("verify", help="bit-exactness: emulation vs FINN execution vs Brevitas")
    p.add_argument("bundle", type=Path, help="the compiled design (bundle folder)")
    p.add_argument("--student", type=Path, default=None,
                   help="the trained student (.safetensors) to compare with Brevitas (default: FINN only)")
    p.add_argument("--queries", type=int, default=10_000, help="random queries")
    p.add_argument("--workers", type=int, default=2, help="processes running FINN's execution")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over FINN's execution")
    p.set_defaults(func=cmd_verify)
    add_serving_commands(sub)
    _add_study_command(sub)
    document(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if getattr(args, "print_config", False) and getattr(args, "show_config", None) is not None:
            sys.stdout.write(json.dumps(args.show_config(args), indent=2) + "\n")  # demo, train
            return 0
        return args.func(args)
    except USER_ERRORS as err:
        print(f"fpgarec: error: {err}", file=sys.stderr)  # the one line a user sees
        return 2
    except KeyboardInterrupt:
        print("fpgarec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
