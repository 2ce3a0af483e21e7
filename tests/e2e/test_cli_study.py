"""``fpgarec study``: the list of studies, and a name that does not exist (one line, exit 2)."""

from __future__ import annotations

import importlib
import subprocess

import pytest

from fpgarec.experiment.studies import STUDIES


def _run(venv_bin, *args):
    return subprocess.run([str(venv_bin / "fpgarec"), *args], capture_output=True, text=True, timeout=120)


def test_list_names_every_study(venv_bin):
    proc = _run(venv_bin, "study", "--list")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == sorted(STUDIES) and names


def test_unknown_study_lists_the_known_ones(venv_bin):
    proc = _run(venv_bin, "study", "no-such-study")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fpgarec: error")]
    assert len(lines) == 1 and "'no-such-study'" in lines[0], proc.stderr
    assert all(name in lines[0] for name in STUDIES)


def test_no_study_named_is_a_user_error(capsys):
    from fpgarec import cli

    assert cli.main(["study"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fpgarec: error: name a study")


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_entry_point_exists(name):
    module, function = STUDIES[name].split(":")
    assert callable(getattr(importlib.import_module(module), function))
