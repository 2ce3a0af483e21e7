"""Fixtures of the whole-design tests: a small student compiled with a seen-items input."""

from __future__ import annotations

import pytest

from small_design import make_student, small_build_config


@pytest.fixture(scope="session")
def seen_bundle(tmp_path_factory):
    """A small design (200 items, D=16, K=4, 4 bit) built by the real flow with
    ``exclude_seen``: the top-k layer reads a seen-items bitmap."""
    from fpgarec.compile.flow import build

    tmp = tmp_path_factory.mktemp("seen")
    _, path = make_student(tmp, seed=3)
    return build(path, small_build_config(tmp, exclude_seen=True, design="seen"))


@pytest.fixture(scope="session")
def rtl_cache(repo):
    return repo / "build" / "rtlsim"
