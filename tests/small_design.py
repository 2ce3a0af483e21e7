"""Helpers of the compile and runtime tests: a small calibrated random student (200 items, D=16, K=4,
4 bit) and the build configuration used for it."""

from __future__ import annotations

import json

SHAPE = {"n_items": 200, "dim": 16, "k": 4, "weight_bits": 4, "act_bits": 4}


def make_student(folder, seed: int = 0):
    """Random student, activation scales calibrated by a few train-mode passes; saved as
    ``student.safetensors`` + ``student.json`` in ``folder``."""
    import torch
    from safetensors.torch import save_file

    from fpgarec.models.student import QuantStudent, StudentShape

    torch.manual_seed(seed)
    student = QuantStudent(StudentShape(**SHAPE))
    student.train()
    with torch.no_grad():
        student.fusion.gate.copy_(torch.tensor([0.3, -0.2]))
        for _ in range(4):
            ctx = torch.randint(0, SHAPE["n_items"], (64, SHAPE["k"]))
            ctx[::3, 2:] = SHAPE["n_items"]  # some cold-start users (null-padded)
            student(ctx)
    student.eval()
    path = folder / "student.safetensors"
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(path))
    (folder / "student.json").write_text(json.dumps(SHAPE))
    return student, path


def small_build_config(tmp, **overrides):
    from fpgarec.compile.config import BuildConfig

    args = dict(board="pynq-z2", output_dir=tmp / "bitstreams", build_dir=tmp / "work", design="small",
                target_qps=1e6, target_latency_us=1.0, vivado="skip", check_queries=6)
    args.update(overrides)
    return BuildConfig(**args)
