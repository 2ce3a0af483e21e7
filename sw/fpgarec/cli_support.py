"""What ``fpgarec --help`` says (descriptions, examples, exit codes) and the build config file.

:func:`document` fills every subcommand's description and example epilog from
:data:`SUBCOMMANDS` and gives it :class:`HelpFormatter` (defaults shown, text kept as written).
:func:`build_config` resolves ``fpgarec build``'s settings: :class:`BuildConfig`'s defaults,
then ``--config FILE.json`` (keys are BuildConfig's fields), then the flags given.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import fields
from importlib import metadata
from pathlib import Path

from fpgarec.errors import FpgarecError

DESCRIPTION = ("Train a recommender (graph neural network + language-model item text), compile its "
               "quantized student for an FPGA through QONNX and FINN, check it bit for bit, simulate, "
               "serve and deploy it.")

EXIT_CODES = """\
a typical session:
  fpgarec demo                                   # train, compile, check -> build/demo (about 15 min)
  fpgarec report bitstreams/student_w4_pynq-z2   # the committed design: cycles, resources, latency
  fpgarec serve bitstreams/student_w4_pynq-z2    # serve it on 127.0.0.1:8000

exit codes:
  0    done (for demo: it ran; its quality bars' PASS/FAIL are in the report)
  1    a check failed: sim (mismatches), verify (emulation differs), loadtest (lost,
       failed or wrong answers), bench packing (not bit-exact); an unexpected error
       (a bug) also exits 1, with a traceback
  2    user error: bad arguments, a missing or malformed file, an unknown board or
       study; one line "fpgarec: error: ..." on stderr, no traceback
  130  interrupted (Ctrl-C)
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and epilogs as written; ``(default: X)`` after every option that has one
    (not for None, False or a help text that already names its default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # identity for None / False: 0 == False, and a default of 0 is shown
        if "default" in text or action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS or action.nargs == 0:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def version() -> str:
    """``fpgarec X.Y.Z`` from the installed package's metadata."""
    try:
        return f"fpgarec {metadata.version('fpgarec')}"
    except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        from fpgarec import __version__

        return f"fpgarec {__version__}"


_BUNDLE = "bitstreams/student_w4_pynq-z2"
_STUDENT = "build/demo/models/student_w4.safetensors"

#: subcommand -> (description, examples); ``bench emulation`` for nested ones
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("Train and evaluate every model on a data set, compile the 4-bit student, check it bit for bit "
             "and write report.json / report.html (build/demo; with --quick build/demo-quick).",
             "  fpgarec demo                        # MovieLens-100k, about 15 minutes on 2 cores\n"
             "  fpgarec demo --quick                # 200-user subsample -> build/demo-quick\n"
             "  fpgarec demo --data DIR --out build/mydata\n"
             "  fpgarec demo --print-config > demo.json     # edit (DemoConfig fields), then:\n"
             "  fpgarec demo --config demo.json --out build/mine"),
    "train": ("Train one model (and the teacher it distils from) and write its test metrics as JSON "
              "(build/train/<model>.json). Runs unchanged under torchrun (DDP over gloo).",
              "  fpgarec train student_w4 --quick\n"
              "  torchrun --standalone --nproc_per_node=2 .venv/bin/fpgarec train student_w4"),
    "build": ("Compile a trained student (<name>.safetensors + <name>.json) or its QONNX export (.onnx) "
              "through QONNX and FINN into a bundle <out>/<design>/. An existing bundle folder is refused "
              "unless --force. Settings: BuildConfig's defaults, then --config FILE.json (keys: BuildConfig's "
              "fields, see --print-config; relative paths from the current folder), then the flags given.",
              f"  fpgarec build {_STUDENT} --board pynq-z2       # -> build/bitstreams/student_w4_pynq-z2\n"
              "  fpgarec build --print-config > build.json     # edit, then:\n"
              f"  fpgarec build {_STUDENT} --config build.json --force"),
    "report": ("Per-layer cycles, resources, latency and throughput of a bundle (FINN estimates beside the "
               "Verilator/Yosys measurements), printed on stdout; with --out DIR also written there as "
               "report.{json,txt}. A read command: the bundle is never written.",
               f"  fpgarec report {_BUNDLE}\n  fpgarec report {_BUNDLE} --out build/report"),
    "bench": ("Benchmarks; the last output line is one JSON object.",
              f"  fpgarec bench emulation {_BUNDLE} --student {_STUDENT}\n  fpgarec bench packing"),
    "bench emulation": ("Queries/s of the bundle's CPU emulation against float PyTorch and Brevitas.",
                        f"  fpgarec bench emulation {_BUNDLE} --student {_STUDENT}"),
    "bench packing": ("Host-side bit packing of fpgarec against finn-plus' functions at the demo bundle's "
                      "datatypes; exit 1 if they differ.", "  fpgarec bench packing --batch 1000"),
    "sim": ("Verilator simulation of the whole design, bit for bit against the emulation (a plain pass and "
            "one with random gaps and back-pressure); exit 1 on a mismatch. Last line: one JSON object.",
            "  fpgarec sim build/bitstreams/student_w4_pynq-z2 --queries 10000 --synth --record"),
    "verify": ("Bit-exactness of the bundle's CPU emulation against FINN's execution and (with --student) "
               "Brevitas; exit 1 on a difference. Last line: one JSON object.",
               f"  fpgarec verify {_BUNDLE} --student {_STUDENT} --queries 2000"),
    "deploy": ("Write a self-contained folder (numpy-only runtime, the verified bundle, run.py) to copy onto "
               "a PYNQ board. The board is the bundle's (its manifest); --board only checks it.",
               f"  fpgarec deploy {_BUNDLE} --out build/deploy\n"
               "  python3 build/deploy/run.py --emulate    # works here too, without a bitstream"),
    "serve": ("HTTP recommendation service: POST /recommend, GET /healthz, GET /metrics (docs/serve.md).",
              f"  fpgarec serve {_BUNDLE}                       # known users: ml-100k\n"
              f"  fpgarec serve {_BUNDLE} --history build/serve/history.npz --port 8080"),
    "loadtest": ("Loopback load test: starts the service on a free port and sends generated requests, "
                 "checking every answer against the emulation; exit 1 on lost, failed or wrong answers. "
                 "Last line: one JSON object.",
                 f"  fpgarec loadtest {_BUNDLE}\n  fpgarec loadtest {_BUNDLE} --requests 2000 --concurrency 16"),
    "explain": ("Why a user gets the design's recommendations: neighbours, modalities, interest over time "
                "(PNG + HTML in --out).",
                "  fpgarec explain --user 196\n"
                "  fpgarec explain build/demo/bitstreams/student_w4_pynq-z2 --user 196 --out build/explain"),
    "study": ("Run a study (an experiment beside the demo); its options follow its name.",
              "  fpgarec study --list\n  fpgarec study NAME --help"),
}


def document(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Description, examples and :class:`HelpFormatter` for every subcommand below ``parser``."""
    parser.formatter_class = HelpFormatter
    if not prefix and parser.description:
        parser.description = textwrap.fill(parser.description, 88)
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subparsers here only
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        for name, sub in action.choices.items():
            key = f"{prefix}{name}"
            if key in SUBCOMMANDS:
                description, examples = SUBCOMMANDS[key]
                sub.description = textwrap.fill(sub.description or description, 88)
                sub.epilog = f"examples:\n{examples}"
            document(sub, f"{key} ")


def config_default(cls, name: str):
    """The default of dataclass field ``name`` of ``cls`` (for help texts)."""
    field = next(f for f in fields(cls) if f.name == name)
    return field.default_factory() if callable(field.default_factory) else field.default


def read_config_file(path: Path, cls) -> dict:
    """The JSON object in ``path`` whose keys are fields of dataclass ``cls`` (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise FpgarecError(f"{path}: config file not found")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FpgarecError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
    if not isinstance(values, dict):
        raise FpgarecError(f"{path}: a config file is one JSON object of {cls.__name__} fields")
    kinds = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise FpgarecError(f"{path}: unknown {cls.__name__} field(s) {', '.join(unknown)}; "
                           f"known: {', '.join(sorted(kinds))}")
    for name, value in values.items():
        if not _json_fits(value, kinds[name]):
            raise FpgarecError(f"{path}: {name} is {json.dumps(value)}; expected {kinds[name]}")
    return values


def _json_fits(value, kind: str) -> bool:
    """Whether a JSON value can be a field annotated ``kind`` (the annotation's text)."""
    if value is None:
        return "None" in kind
    base = kind.split("|")[0].strip()
    if base == "bool":
        return isinstance(value, bool)
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base.startswith("tuple"):
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, str)  # str, Path and the str enums


def build_config(args: argparse.Namespace):
    """``fpgarec build``'s :class:`BuildConfig`: defaults < ``--config`` file < flags given."""
    from fpgarec.compile.config import BuildConfig

    values = read_config_file(args.config, BuildConfig) if args.config is not None else {}
    flags = dict(board=args.board, clock_mhz=args.clock_mhz, target_qps=args.target_qps,
                 folding_file=args.folding_file, output_dir=args.out, design=args.design, top_k=args.top_k,
                 pad_items_multiple=args.pad_items_multiple, exclude_seen=args.exclude_seen,
                 emit_weights=args.emit_weights,
                 check_fit=False if args.no_fit_check else None)
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return BuildConfig(**values)
    except (TypeError, ValueError, FpgarecError) as exc:
        where = f"{args.config}: " if args.config is not None else ""
        raise FpgarecError(f"{where}{exc}") from exc


def demo_config(args: argparse.Namespace):
    """``fpgarec demo``'s and ``train``'s :class:`DemoConfig`: defaults < ``--config`` file < flags
    given (then the environment: torchrun, ``--quick``'s caps). ``args.default_out``: the
    subcommand's output folder when neither the file nor ``--out`` names one."""
    from fpgarec.config import DemoConfig

    values = {}
    if args.config is not None:
        given = read_config_file(args.config, DemoConfig)
        try:
            typed = DemoConfig.from_dict(given)
        except (TypeError, ValueError) as exc:
            raise FpgarecError(f"{args.config}: {exc}") from exc
        values = {k: getattr(typed, k) for k in given}
    out = args.out if args.out is not None else values.get("out", args.default_out)
    flags = dict(data=args.data, out=out, cache=args.cache, quick=args.quick or None, seed=args.seed,
                 progress=False if args.no_progress else None, media=args.media, social=args.social,
                 resume=True if args.resume else None)
    values.update({k: v for k, v in flags.items() if v is not None})
    return DemoConfig.from_environment(**values)


def check_build_source(source: Path | None) -> Path:
    """The file ``fpgarec build`` compiles: a student's .safetensors/.json or a .onnx, existing."""
    if source is None:
        raise FpgarecError("build: name the source (a student <name>.safetensors or a QONNX .onnx file)")
    source = Path(source)
    if source.suffix not in (".safetensors", ".json", ".onnx"):
        raise FpgarecError(f"{source}: not a build source (a student <name>.safetensors + <name>.json, "
                           "or a QONNX .onnx file)")
    if not source.is_file():
        raise FpgarecError(f"{source}: file not found")
    return source
