"""Bad input reaches the user as one line naming the file and line, exit code 2, no traceback."""

from __future__ import annotations

import subprocess

import pytest


def _run(venv_bin, *args):
    return subprocess.run([str(venv_bin / "fpgarec"), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "no .inter file"),
        ({"x.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t2\n"}, "x.inter:2"),
        ({"x.inter": "user_id:token\titem_id:tok\ttimestamp:float\n1\t2\t3\n"}, "unknown type 'tok'"),
        ({"x.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t9\t3\n",
          "x.item": "item_id:token\ttitle:token_seq\n1\tA\n"}, "unknown item_id '9'"),
    ],
)
def test_bad_data_folder_gives_one_line(tmp_path, venv_bin, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    proc = _run(venv_bin, "demo", "--quick", "--no-progress", "--data", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fpgarec: error")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_missing_data_folder(tmp_path, venv_bin):
    proc = _run(venv_bin, "demo", "--data", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "data folder not found" in proc.stderr and "Traceback" not in proc.stderr


def test_kernel_parameter_error_gives_one_line(monkeypatch, capsys, tmp_path):
    """A kernel's parameter error (kernels never import fpgarec, so it is no FpgarecError) is a
    user error too: one line, exit code 2."""
    from kernels._params import KernelParameterError

    import fpgarec.compile.report
    from fpgarec import cli
    from fpgarec.errors import USER_ERRORS

    assert KernelParameterError in USER_ERRORS

    def refuse(*args, **kwargs):
        raise KernelParameterError("PE=3 does not divide D=8")

    monkeypatch.setattr(fpgarec.compile.report, "report", refuse)
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "fpgarec: error: PE=3 does not divide D=8"


@pytest.mark.parametrize("command", ["report", "deploy"])
@pytest.mark.parametrize(("manifest", "expected"), [
    ("[]", "the manifest is a JSON list"),
    ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ('{"format": "fpgarec-bundle/1", "layers": {}}', "key 'design' is missing"),
])
def test_tampered_bundle_gives_one_line(tmp_path, capsys, command, manifest, expected):
    """A tampered bundle: one line naming its manifest, exit code 2, no traceback (issue 16)."""
    import shutil
    from pathlib import Path

    from fpgarec import cli

    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).resolve().parents[2] / "bitstreams" / "student_w4_pynq-z2", bundle)
    (bundle / "manifest.json").write_text(manifest)
    args = [command, str(bundle)] + (["--out", str(tmp_path / "out")] if command == "deploy" else [])
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("fpgarec: error: ") and expected in err, err
    assert str(bundle / "manifest.json") in err
