"""Shared test settings: offline model hubs, a session-wide temporary cache for text vectors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    return VENV_BIN


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory) -> Path:
    """One text-vector cache for the whole session (encoding 1,682 titles takes ~6 s)."""
    return tmp_path_factory.mktemp("cache")


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


#: test folders whose tests share build folders in the Verilator/Yosys cache build/rtlsim (a build
#: is cached by its hash; two processes building one hash at once would race): each folder runs
#: in one process (the kernels' builds, "<top>-<hash>", and the whole designs', "design_top-" /
#: "synth-", never share a name)
RTL_FOLDERS = ("kernels", "hwsim")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``): one group per test file,
    so a module's fixtures (built designs, trained models) are made once, and one group per RTL
    folder (:data:`RTL_FOLDERS`). Without xdist (.venv-pynq's board tests) no marker is added."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = Path(str(item.path)).resolve()
        rel = path.relative_to(REPO / "tests") if path.is_relative_to(REPO / "tests") else path
        group = rel.parts[0] if rel.parts[0] in RTL_FOLDERS else rel.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
