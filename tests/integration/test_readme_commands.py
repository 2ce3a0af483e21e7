"""The README's by-hand commands leave ``git status`` clean.

The bar: no ``.venv/bin/fpgarec ...`` line a user copies from README.md modifies a tracked file
or creates an untracked file git does not ignore. Everything a command writes must land in the
ignored ``build/`` (or wherever else the README's own command line names, if git ignores it).

How: the README's indented code blocks are parsed for the command lines (``.venv/bin/fpgarec``
and ``.venv/bin/torchrun ... fpgarec``, backslash continuations joined), plus the one deploy
command the README gives inline. Each command must be in :data:`TREATMENT`, so a command added
to the README fails here until someone decides how to check it. In a throwaway ``git clone`` of
HEAD, with the inputs the README assumes (random students of the demo's shapes) in its ignored
``build/demo/models/``:

- ``run``: the command runs for real, as the README writes it (through bash, so its ``>``
  redirect too), after the substitutions the table names (a placeholder, fewer queries);
- ``config``: too slow to run (demo, train); run with ``--print-config`` and the folders it
  would write (``out``, ``cache``) must be ignored by git;
- ``parse``: too slow or blocking (sim, serve, loadtest); its arguments are parsed with
  :func:`fpgarec.cli.build_parser` and every output option (and a ``--record``-ed bundle) must
  be ignored by git or unset.

After every command, ``git status --porcelain`` of the clone must still be empty.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FPGAREC = Path(sys.executable).parent / "fpgarec"
PREFIX = ".venv/bin/"
COMMANDS = (PREFIX + "fpgarec", PREFIX + "torchrun")
#: the deploy command is given inline in the README's prose, not in a code block
INLINE_DEPLOY = re.compile(r"`(fpgarec deploy [^`]+)`")
#: argparse destinations that name something a command writes
OUTPUT_DESTS = ("out", "save_history", "metrics", "cache")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Treatment:
    """How the test treats one README command: ``kind`` is ``run``, ``config`` or ``parse``;
    ``replace`` swaps tokens (placeholders), ``extra`` appends arguments (before a redirect)."""

    kind: str
    why: str
    replace: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()


_BUNDLE = "build/bitstreams/student_w4_pynq-z2"
_STUDENT = "build/demo/models/student_w4.safetensors"
_BUILD = ("fpgarec build build/demo/models/student_w4.safetensors --board pynq-z2 --folding-file "
          "hw/folding/student_w4.json --pad-items-multiple 48 --exclude-seen --no-fit-check")

#: every README command (its text without ``.venv/bin/``, the comment dropped, one space between
#: arguments) and how it is checked; a README command missing here fails the test
TREATMENT: dict[str, Treatment] = {
    "fpgarec demo --media DIR": Treatment("config", "trains for minutes"),
    "fpgarec demo --social FILE": Treatment("config", "trains for minutes"),
    "fpgarec explain --user 196": Treatment("run", "about 2 s"),
    "fpgarec study --list": Treatment("run", "instant"),
    "fpgarec study NAME --help": Treatment("run", "NAME is a placeholder", replace={"NAME": "ease"}),
    _BUILD: Treatment("run", "about 12 s"),
    f"fpgarec sim {_BUNDLE} --queries 10000 --synth --record":
        Treatment("parse", "Verilator build + 10,000 queries + Yosys: minutes"),
    f"fpgarec report {_BUNDLE}": Treatment("run", "instant"),
    f"fpgarec verify {_BUNDLE} --student {_STUDENT}":
        Treatment("run", "FINN's execution of 10,000 queries takes minutes; 200 take ~8 s",
                  extra=("--queries", "200")),
    f"fpgarec bench emulation {_BUNDLE} --student {_STUDENT}": Treatment("run", "about 4 s"),
    "fpgarec bench packing": Treatment("run", "about 1 s"),
    "torchrun --standalone --nproc_per_node=2 .venv/bin/fpgarec train student_w4":
        Treatment("config", "trains for minutes"),
    "torchrun --nnodes 2 --nproc_per_node 1 --node_rank 0 --master_addr HOST0 --master_port 29500 "
    ".venv/bin/fpgarec train student_w4": Treatment("config", "needs a second host"),
    "fpgarec demo --print-config > build/demo.json": Treatment("run", "instant"),
    "fpgarec demo --config build/demo.json --out build/demo-dim32": Treatment("config", "trains for minutes"),
    "fpgarec build --print-config --folding-file hw/folding/student_w4.json --pad-items-multiple 48 "
    "--exclude-seen --no-fit-check > build/student_w4.json": Treatment("run", "instant"),
    f"fpgarec build {_STUDENT} --config build/student_w4.json --force": Treatment("run", "about 12 s"),
    "fpgarec serve bitstreams/student_w4_pynq-z2": Treatment("parse", "blocks (a server)"),
    "fpgarec loadtest bitstreams/student_w4_pynq-z2": Treatment("parse", "50,000 requests: minutes"),
    "fpgarec build build/demo/models/student_w4_attention.safetensors --board pynq-z2 "
    "--pad-items-multiple 48 --exclude-seen --emit-weights --no-fit-check": Treatment("run", "about 13 s"),
    "fpgarec serve build/bitstreams/student_w4_attention_pynq-z2": Treatment("parse", "blocks (a server)"),
    "fpgarec deploy bitstreams/student_w4_pynq-z2 --out DIR":
        Treatment("run", "DIR is a placeholder", replace={"DIR": "build/deploy-test"}),
}


def readme_commands(text: str) -> list[list[str]]:
    """The README's by-hand commands, each as its argument list (``.venv/bin/`` dropped from
    the first one, comments dropped): the lines of indented code blocks that start with a
    :data:`COMMANDS` entry (with their backslash continuations), then the inline deploy."""
    found, pending = [], None
    for line in text.splitlines():
        code = line[4:] if line.startswith("    ") else None
        if pending is not None and code is not None:
            pending += " " + code.strip()
        elif code is not None and code.strip().startswith(COMMANDS):
            pending = code.strip()
        else:
            pending = None
            continue
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        argv = shlex.split(pending, comments=True)
        found.append([argv[0].removeprefix(PREFIX), *argv[1:]])
        pending = None
    found += [shlex.split(m) for m in INLINE_DEPLOY.findall(text)]
    return found


def git_dirty(repo: Path) -> list[str]:
    """``git status --porcelain`` of ``repo``, one entry a line (every untracked file listed):
    what a command changed that git tracks or does not ignore."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def git_ignored(repo: Path, path: str | Path) -> bool:
    """Whether git ignores ``path`` (relative to ``repo``; it need not exist)."""
    if Path(path).is_absolute():
        return False
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=repo).returncode == 0


def _shell_line(argv: list[str], treatment: Treatment) -> str:
    """The bash line that runs ``argv`` (README form) with the treatment's substitutions, the
    venv's ``fpgarec`` as the program and ``>`` kept as a redirect."""
    argv = [treatment.replace.get(a, a) for a in argv]
    redirect = argv[argv.index(">"):] if ">" in argv else []
    cmd = argv[: len(argv) - len(redirect)] + list(treatment.extra)
    line = shlex.join([str(FPGAREC), *cmd[1:]])
    return line + (f" > {shlex.quote(redirect[1])}" if redirect else "")


def _run(repo: Path, line: str) -> subprocess.CompletedProcess:
    log.info("running in %s: %s", repo, line)
    proc = subprocess.run(["bash", "-c", line], cwd=repo, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\nstderr (tail):\n{proc.stderr[-3000:]}"
    return proc


def _fpgarec_argv(argv: list[str]) -> list[str]:
    """The arguments after ``fpgarec`` (a torchrun line's too)."""
    at = next(i for i, a in enumerate(argv) if a.endswith("fpgarec"))
    return argv[at + 1:]


def _check_config(repo: Path, argv: list[str], treatment: Treatment) -> list[str]:
    """Run the slow command's ``--print-config``; the folders it would write must be ignored."""
    line = _shell_line(["fpgarec", *_fpgarec_argv(argv)], treatment) + " --print-config"
    printed = json.loads(_run(repo, line).stdout)
    written = {k: printed[k] for k in ("out", "cache") if printed.get(k) is not None}
    assert "out" in written, printed
    return [f"--print-config {k}={v} is not ignored by git" for k, v in written.items() if not git_ignored(repo, v)]


def _check_parse(repo: Path, argv: list[str]) -> list[str]:
    """Parse the command as the CLI does; every output option set (and a bundle it records
    into) must be ignored by git."""
    from fpgarec import cli

    args = cli.build_parser().parse_args(_fpgarec_argv(argv))
    written = {d: getattr(args, d) for d in OUTPUT_DESTS if getattr(args, d, None) is not None}
    if getattr(args, "record", False):
        written["bundle (--record writes its manifest)"] = args.bundle
    return [f"{d}={v} is not ignored by git" for d, v in written.items() if not git_ignored(repo, v)]


def _save_student(path: Path, attention: bool) -> None:
    """A random calibrated 4-bit student of the demo's shape (the committed bundle's ``model``),
    saved as the demo saves it: ``<name>.safetensors`` + ``<name>.json`` (its StudentShape)."""
    from small_design import calibrated_student

    model = json.loads((REPO / "bitstreams" / "student_w4_pynq-z2" / "manifest.json").read_text())["model"]
    keys = ("n_items", "dim", "k", "weight_bits", "act_bits", "n_recent")
    calibrated_student({**{k: model.get(k) for k in keys}, "aggregation": "attention" if attention else "mean"}, path)


def _clone(tmp: Path) -> Path:
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(repo)], check=True)
    assert git_dirty(repo) == [] and git_ignored(repo, "build/x"), "the clone must start clean, build/ ignored"
    return repo


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of HEAD with the students the README's commands read in its ignored build/."""
    repo = _clone(tmp_path_factory.mktemp("readme"))
    models = repo / "build" / "demo" / "models"
    _save_student(models / "student_w4.safetensors", attention=False)
    _save_student(models / "student_w4_attention.safetensors", attention=True)
    assert git_dirty(repo) == []
    return repo


def test_every_readme_command_has_a_treatment():
    """A command added to (or changed in) the README fails here until it is in TREATMENT."""
    commands = [" ".join(argv) for argv in readme_commands((REPO / "README.md").read_text())]
    assert any(c.startswith("fpgarec deploy") for c in commands), "the README's inline deploy command is gone"
    unknown = [c for c in commands if c not in TREATMENT]
    assert not unknown, "README commands this test does not know how to treat (add them to TREATMENT):\n" + \
        "\n".join(unknown)
    stale = sorted(set(TREATMENT) - set(commands))
    assert not stale, "TREATMENT entries no longer in the README:\n" + "\n".join(stale)


@pytest.mark.slow
def test_readme_commands_leave_git_status_clean(clone):
    """Each README command, in README order, run or checked as TREATMENT says; after each one
    the clone's ``git status`` is still clean (the first command that dirties it is named)."""
    problems = []
    for argv in readme_commands((REPO / "README.md").read_text()):
        key = " ".join(argv)
        treatment = TREATMENT.get(key)
        assert treatment is not None, f"README command not in TREATMENT: {key}"
        if treatment.kind == "run":
            _run(clone, _shell_line(argv, treatment))
        elif treatment.kind == "config":
            problems += [f"{key}: {p}" for p in _check_config(clone, argv, treatment)]
        else:
            problems += [f"{key}: {p}" for p in _check_parse(clone, argv)]
        dirty = git_dirty(clone)
        assert not dirty, f"after `{key}` ({treatment.kind}) git status is not clean:\n" + "\n".join(dirty)
    assert not problems, "\n".join(problems)
    assert git_dirty(clone) == []


def test_the_checker_sees_a_tracked_output_path(tmp_path):
    """Self-test: a README-like command told to write into the committed ``bitstreams/`` (or
    over a tracked file) is reported by :func:`git_dirty` and refused by :func:`git_ignored`."""
    repo = _clone(tmp_path)
    _run(repo, _shell_line(["fpgarec", "report", "bitstreams/student_w4_pynq-z2", "--out", "bitstreams/x"],
                           Treatment("run", "self-test")))
    assert any(e.startswith("?? bitstreams/x/") for e in git_dirty(repo)), git_dirty(repo)
    _run(repo, _shell_line(["fpgarec", "demo", "--print-config", ">", "README.md"], Treatment("run", "self-test")))
    assert " M README.md" in git_dirty(repo), git_dirty(repo)
    assert not git_ignored(repo, "bitstreams/x") and git_ignored(repo, "build/x")
