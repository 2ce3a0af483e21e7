"""Session fixtures: the small student and its bundle, built once.

tests/runtime/conftest.py builds the same bundle into the same session folder (it is reused
when the compile tests ran first).
"""

from __future__ import annotations

import pytest

from small_design import make_student, small_build_config


@pytest.fixture(scope="session")
def small_student(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "small_student"
    folder.mkdir(exist_ok=True)
    return make_student(folder)


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory, small_student):
    """(bundle folder, build config) of the small student for PYNQ-Z2."""
    from fpgarec.compile.flow import build

    tmp = tmp_path_factory.getbasetemp() / "small_build"
    cfg = small_build_config(tmp)
    bundle = tmp / "bitstreams" / "small"
    if not (bundle / "manifest.json").is_file():
        bundle = build(small_student[1], cfg)
    return bundle, cfg
