"""Session fixtures of the runtime tests: the small calibrated random student of
tests/small_design.py and its PYNQ-Z2 bundle, shared with tests/compile (built once per
session into the same folder).
"""

from __future__ import annotations

import pytest

from small_design import make_student, small_build_config


@pytest.fixture(scope="session")
def small_student(tmp_path_factory):
    from fpgarec.compile.export import load_student

    folder = tmp_path_factory.getbasetemp() / "small_student"
    folder.mkdir(exist_ok=True)
    path = folder / "student.safetensors"
    if path.is_file():  # written by the compile tests' fixture in this session
        return load_student(path), path
    return make_student(folder)


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory, small_student):
    """The bundle folder of the small student for PYNQ-Z2."""
    from fpgarec.compile.flow import build

    tmp = tmp_path_factory.getbasetemp() / "small_build"
    bundle = tmp / "bitstreams" / "small"
    if not (bundle / "manifest.json").is_file():
        bundle = build(small_student[1], small_build_config(tmp))
    return bundle
