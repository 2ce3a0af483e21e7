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
