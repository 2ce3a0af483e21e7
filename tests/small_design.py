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


def make_attention_student(folder, seed: int = 0):
    """The small student with ``aggregation="attention"`` (3 behaviour types, 8 recency buckets),
    a non-uniform query and biases, scales calibrated on (B, K, 3) contexts; saved as
    ``student.safetensors`` + ``student.json`` in ``folder``."""
    import torch
    from safetensors.torch import save_file

    from fpgarec.models.student import QuantStudent, StudentShape

    shape = {**SHAPE, "aggregation": "attention"}
    torch.manual_seed(seed)
    student = QuantStudent(StudentShape(**shape))
    student.train()
    n, k = SHAPE["n_items"], SHAPE["k"]
    with torch.no_grad():
        student.fusion.gate.copy_(torch.tensor([0.3, -0.2]))
        student.aggregate.q.copy_(torch.randn(SHAPE["dim"]) * 0.05)
        student.aggregate.b_type.copy_(torch.tensor([0.03, -0.04, 0.08]))
        student.aggregate.b_pos.copy_(torch.linspace(0.05, -0.05, 8))
        for _ in range(4):
            ids = torch.randint(0, n, (64, k))
            ids[::3, 2:] = n
            student(torch.stack([ids, torch.randint(0, 3, (64, k)), torch.randint(0, 8, (64, k))], -1))
    student.eval()
    path = folder / "student.safetensors"
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(path))
    (folder / "student.json").write_text(json.dumps(shape))
    return student, path


def small_build_config(tmp, **overrides):
    from fpgarec.compile.config import BuildConfig

    args = dict(board="pynq-z2", output_dir=tmp / "bitstreams", build_dir=tmp / "work", design="small",
                target_qps=1e6, target_latency_us=1.0, vivado="skip", check_queries=6)
    args.update(overrides)
    return BuildConfig(**args)


def build_attention_weights_design(student_path, tmp, design: str = "attention_weights", **overrides):
    """The small attention design built with ``emit_weights`` (the weight stream as a second
    output) from the student at ``student_path``; ``overrides``: other BuildConfig fields.
    Returns the bundle's folder."""
    from fpgarec.compile.flow import build

    return build(student_path, small_build_config(tmp, design=design, emit_weights=True, **overrides))
