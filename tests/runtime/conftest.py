"""Session fixtures of the runtime tests: a small calibrated random student (200 items, D=16,
K=4, 4 bit) and its PYNQ-Z2 bundle.

The same student and configuration as tests/compile (test folders are not packages, so the
few lines are repeated); both build into one session folder, so the bundle is built once.
"""

from __future__ import annotations

import json

import pytest

SHAPE = {"n_items": 200, "dim": 16, "k": 4, "weight_bits": 4, "act_bits": 4}


@pytest.fixture(scope="session")
def small_student(tmp_path_factory):
    import torch
    from safetensors.torch import save_file

    from fpgarec.compile.export import load_student
    from fpgarec.models.student import QuantStudent, StudentShape

    folder = tmp_path_factory.getbasetemp() / "small_student"
    folder.mkdir(exist_ok=True)
    path = folder / "student.safetensors"
    if path.is_file():  # written by the compile tests' fixture in this session
        return load_student(path), path
    torch.manual_seed(0)
    student = QuantStudent(StudentShape(**SHAPE))
    student.train()
    with torch.no_grad():
        student.gate.copy_(torch.tensor([0.3, -0.2]))
        for _ in range(4):
            student(torch.randint(0, SHAPE["n_items"], (64, SHAPE["k"])))
    student.eval()
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(path))
    (folder / "student.json").write_text(json.dumps(SHAPE))
    return student, path


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory, small_student):
    """The bundle folder of the small student for PYNQ-Z2."""
    from fpgarec.compile.config import BuildConfig
    from fpgarec.compile.flow import build

    tmp = tmp_path_factory.getbasetemp() / "small_build"
    bundle = tmp / "bitstreams" / "small"
    if not (bundle / "manifest.json").is_file():
        cfg = BuildConfig(board="pynq-z2", output_dir=tmp / "bitstreams", build_dir=tmp / "work", design="small",
                          target_qps=1e6, target_latency_us=1.0, vivado="skip", check_queries=6)
        bundle = build(small_student[1], cfg)
    return bundle
