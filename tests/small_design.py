"""Helpers of the compile and runtime tests: a small calibrated random student (200 items, D=16, K=4,
4 bit) and the build configuration used for it."""

from __future__ import annotations

import json

SHAPE = {"n_items": 200, "dim": 16, "k": 4, "weight_bits": 4, "act_bits": 4}


def calibrated_student(shape: dict, path, seed: int = 0, setup=None):
    """A random student of ``shape`` (StudentShape fields), activation scales calibrated by a few
    train-mode passes on random contexts (a third of them null-padded: short histories; an
    attention student's carry random types and recency buckets); ``setup(student)`` may set
    weights first. Saved as ``path`` (.safetensors) + its .json (the shape); returns the student."""
    import torch
    from safetensors.torch import save_file

    from fpgarec.models.student import QuantStudent, StudentShape

    torch.manual_seed(seed)
    student = QuantStudent(StudentShape(**shape))
    n, k = shape["n_items"], shape["k"]
    student.train()
    with torch.no_grad():
        if setup is not None:
            setup(student)
        for _ in range(4):
            ids = torch.randint(0, n, (64, k))
            ids[::3, k // 2:] = n
            if student.attention:
                ids = torch.stack([ids, torch.randint(0, 3, (64, k)), torch.randint(0, 8, (64, k))], -1)
            student(ids)
    student.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: t.contiguous() for name, t in student.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(shape))
    return student


def make_student(folder, seed: int = 0):
    """The small student (:data:`SHAPE`), saved as ``student.safetensors`` + ``student.json``
    in ``folder``; returns (student, path)."""
    import torch

    def gate(student):
        student.fusion.gate.copy_(torch.tensor([0.3, -0.2]))

    path = folder / "student.safetensors"
    return calibrated_student(SHAPE, path, seed, gate), path


def make_attention_student(folder, seed: int = 0):
    """The small student with ``aggregation="attention"`` (3 behaviour types, 8 recency buckets),
    a non-uniform query and biases; saved as ``student.safetensors`` + ``student.json`` in
    ``folder``; returns (student, path)."""
    import torch

    def setup(student):
        student.fusion.gate.copy_(torch.tensor([0.3, -0.2]))
        student.aggregate.q.copy_(torch.randn(SHAPE["dim"]) * 0.05)
        student.aggregate.b_type.copy_(torch.tensor([0.03, -0.04, 0.08]))
        student.aggregate.b_pos.copy_(torch.linspace(0.05, -0.05, 8))

    path = folder / "student.safetensors"
    return calibrated_student({**SHAPE, "aggregation": "attention"}, path, seed, setup), path


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
