"""Issue 16 items 3-4: --version, help pages, build's config file and output folder, deploy's board.

No command overwrites what the user did not name: ``build`` writes to build/bitstreams and
refuses an existing bundle folder without ``--force``; ``demo --quick`` and ``train`` have
their own output folders.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from fpgarec import cli, cli_serving

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"


def _subparsers(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _subparsers(sub, f"{prefix}{name} ")


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fpgarec: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_version_from_package_metadata(venv_bin):
    proc = subprocess.run([str(venv_bin / "fpgarec"), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"fpgarec {metadata.version('fpgarec')}"


def test_help_documents_exit_codes_and_every_subcommand_has_an_example():
    parser = cli.build_parser()
    top = parser.format_help()
    assert "exit codes:" in top and all(f"  {code} " in top for code in ("0", "1", "2"))
    subs = dict(_subparsers(parser))
    assert {"demo", "train", "build", "sim", "verify", "deploy", "serve", "loadtest", "explain"} <= set(subs)
    for name, sub in subs.items():
        text = sub.format_help()
        assert "examples:\n  " in text and sub.description, name
        for action in sub._actions:
            if not action.option_strings:  # positionals (and nested subcommands) have help
                assert action.help, (name, action.dest)
            elif (action.default is not None and action.default is not False  # 0 and 0.0 have a default to show
                  and action.default != argparse.SUPPRESS and action.help != argparse.SUPPRESS):
                assert "default" in sub._get_formatter()._expand_help(action) or action.nargs == 0, \
                    (name, action.dest)


def test_serve_and_loadtest_share_backend_and_history_defaults():
    parser = cli.build_parser()
    serve = parser.parse_args(["serve", "B"])
    load = parser.parse_args(["loadtest", "B"])
    assert (serve.backend, serve.history) == (load.backend, load.history) == ("auto", "ml-100k")
    assert cli_serving._serve_config(parser.parse_args(["serve", "B", "--history", "none"])).history is None


def test_explain_names_its_users_like_serve(tmp_path, capsys):
    """explain takes --history (as serve and loadtest do); the page needs the data set itself,
    so a history file or none is refused in one line before anything loads."""
    parser = cli.build_parser()
    explain = parser.parse_args(["explain", "--user", "196"])
    assert explain.history == parser.parse_args(["serve", "B"]).history == "ml-100k"
    assert cli_serving._explain_data(explain) is None  # the demo's data
    folder = parser.parse_args(["explain", "--user", "1", "--history", str(tmp_path)])
    assert cli_serving._explain_data(folder) == tmp_path
    assert cli_serving._explain_data(parser.parse_args(["explain", "--user", "1", "--data", str(tmp_path)])) == tmp_path
    for source in ("build/history.npz", "none"):
        assert cli.main(["explain", "--user", "196", "--history", source]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "explain reads the data set itself" in err and source in err


def test_long_commands_take_no_progress():
    """Every subcommand that can run for minutes has --no-progress (build, verify, demo, train)."""
    parser = cli.build_parser()
    for argv in (["build", "x.safetensors"], ["verify", "B"], ["demo"], ["train", "bpr"]):
        assert parser.parse_args([*argv, "--no-progress"]).no_progress is True, argv


def test_print_config_round_trip(tmp_path, capsys):
    assert cli.main(["build", "--print-config", "--board", "aup-zu3", "--top-k", "64", "--exclude-seen"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["board"] == "aup-zu3" and printed["top_k"] == 64 and printed["exclude_seen"] is True
    assert printed["output_dir"] == "build/bitstreams"  # never the committed bitstreams/
    saved = tmp_path / "build.json"
    saved.write_text(json.dumps(printed))
    assert cli.main(["build", "--config", str(saved), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    # a flag given wins over the file
    assert cli.main(["build", "--config", str(saved), "--top-k", "32", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == {**printed, "top_k": 32}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"board": "pynq-z2", "topk": 3}', "unknown BuildConfig field(s) topk"),
    ('{"board": ', "build.json:1: not JSON"),
    ('{"folding": "fastest"}', "'fastest' is not a valid FoldingStrategy"),
])
def test_bad_config_file_is_one_line(tmp_path, capsys, text, expected):
    path = tmp_path / "build.json"
    path.write_text(text)
    assert cli.main(["build", "--config", str(path), "--print-config"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(path) in line and expected in line, line


def test_build_names_the_file_given(tmp_path, capsys):
    assert cli.main(["build", str(tmp_path / "x.txt")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "x.txt" in line and "x.safetensors" not in line
    assert cli.main(["build", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: file not found" in _error_line(capsys.readouterr().err)


def test_build_refuses_an_existing_bundle_folder_unless_force(tmp_path, capsys, monkeypatch):
    import fpgarec.compile.flow

    built = []
    monkeypatch.setattr(fpgarec.compile.flow, "build", lambda source, cfg, progress=True: built.append(cfg) or cfg.output_dir)
    source = tmp_path / "student_w4.safetensors"
    source.write_bytes(b"")
    target = tmp_path / "out" / "student_w4_pynq-z2"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    assert cli.main(["build", str(source), "--out", str(tmp_path / "out")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(target) in line and "--force" in line
    assert not built and (target / "keep.txt").read_text() == "mine"
    assert cli.main(["build", str(source), "--out", str(tmp_path / "out"), "--force"]) == 0
    assert len(built) == 1 and built[0].output_dir == tmp_path / "out"
    assert cli.main(["build", str(source), "--out", str(tmp_path / "out"), "--design", "other"]) == 0


def test_output_folders_of_quick_demo_and_train_are_not_the_demo_s():
    from fpgarec.config import DemoConfig

    assert DemoConfig.from_environment().out == Path("build/demo")
    assert DemoConfig.from_environment(quick=True).out == Path("build/demo-quick")
    assert DemoConfig.from_environment(quick=True, out=Path("x")).out == Path("x")
    assert cli._config(cli.build_parser().parse_args(["train", "bpr"])).out == Path("build/train")
    assert cli._config(cli.build_parser().parse_args(["demo", "--quick"])).out == Path("build/demo-quick")


def test_deploy_reads_the_board_from_the_manifest(tmp_path, capsys):
    assert cli.main(["deploy", str(BUNDLE), "--out", str(tmp_path / "d")]) == 0
    assert json.loads((tmp_path / "d" / "deploy.json").read_text())["board"] == "pynq-z2"
    assert cli.main(["deploy", str(BUNDLE), "--board", "aup-zu3", "--out", str(tmp_path / "z")]) == 2
    assert "built for board 'pynq-z2', not 'aup-zu3'" in _error_line(capsys.readouterr().err)


def test_explain_takes_the_bundle_first_like_serve_and_deploy():
    parser = cli.build_parser()
    assert parser.parse_args(["explain", "--user", "196"]).bundle == Path("bitstreams/student_w4_pynq-z2")
    args = parser.parse_args(["explain", "B", "--user", "196"])
    assert (args.bundle, args.bundle_option) == (Path("B"), None)
    assert parser.parse_args(["explain", "--user", "196", "--bundle", "C"]).bundle_option == Path("C")  # old form


def test_demo_print_config_round_trip_and_flags_override(tmp_path, capsys):
    assert cli.main(["demo", "--print-config", "--quick"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["quick"] is True and printed["out"] == "build/demo-quick" and printed["max_epochs"] == 30
    saved = tmp_path / "demo.json"
    saved.write_text(json.dumps(printed))
    assert cli.main(["demo", "--config", str(saved), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    assert cli.main(["demo", "--config", str(saved), "--seed", "3", "--out", "x", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == {**printed, "seed": 3, "out": "x"}
    # train: its own folder unless the file or --out names one
    assert cli.main(["train", "bpr", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == "build/train"
    (tmp_path / "part.json").write_text('{"out": "build/mine", "dim": 32}')
    assert cli.main(["train", "bpr", "--config", str(tmp_path / "part.json"), "--print-config"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["out"], got["dim"]) == ("build/mine", 32)


@pytest.mark.parametrize(("command", "text", "expected"), [
    (["demo"], '{"dim": 3.5}', "dim is 3.5; expected int"),
    (["demo"], '{"student_bits": "4"}', "student_bits is \"4\""),
    (["build"], '{"top_k": true}', "top_k is true; expected int"),
])
def test_config_file_values_of_the_wrong_type_are_one_line(tmp_path, capsys, command, text, expected):
    path = tmp_path / "c.json"
    path.write_text(text)
    assert cli.main([*command, "--config", str(path), "--print-config"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(path) in line and expected in line, line


def test_train_prints_the_config_it_runs(capsys):
    """``train --print-config`` shows what ``train`` runs: no ablation, no fine-tuning
    comparison, no design (it printed the demo's extras as true before)."""
    assert cli.main(["train", "student_w4", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["distillation_ablation"] is False and cfg["lora"] is False and cfg["build_design"] is False
