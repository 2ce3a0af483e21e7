"""Checkpoints: weights as safetensors (no pickles on disk), shapes and metrics as JSON.

Two kinds, each written and read here only:

* a **student** ``<name>.safetensors`` (its whole state dict) + ``<name>.json`` (its
  :class:`~fpgarec.models.student.StudentShape`) + optionally ``<name>.metrics.json`` (which
  the compile flow copies into the bundle's manifest): :func:`save_student`,
  :func:`load_student`; what ``fpgarec build`` compiles;
* **parameters** of any model (not the buffers it rebuilds on construction), loaded into a
  freshly built model of the same shape: :func:`save_parameters`, :func:`load_parameters`;
  how one task hands its trained teacher to the next.

Both load from a file or from the same tensors held in memory (:func:`parameters`,
:func:`student_state`): a process that made a checkpoint needs no file system to use it again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from fpgarec.errors import FpgarecError
from fpgarec.models.student import QuantStudent, StudentShape


def student_files(path: Path) -> tuple[Path, Path, Path]:
    """(weights, shape, metrics) files of the student ``path`` (any suffix is replaced)."""
    path = Path(path)
    return path.with_suffix(".safetensors"), path.with_suffix(".json"), path.with_suffix(".metrics.json")


def save_student(student: QuantStudent, path: Path, metrics: dict | None = None) -> None:
    """Weights as safetensors next to a JSON of the shape (and one of the metrics)."""
    from safetensors.torch import save_file

    weights, shape, metrics_file = student_files(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in student.state_dict().items()}, str(weights))
    shape.write_text(json.dumps(student.shape.__dict__, indent=2))
    if metrics is not None:
        metrics_file.write_text(json.dumps(metrics, indent=2))


def load_student(path: Path) -> QuantStudent:
    """A trained student from ``<name>.safetensors`` and its shape ``<name>.json``."""
    from safetensors.torch import load_file

    weights, shape_file, _ = student_files(path)
    for p in (weights, shape_file):
        if not p.is_file():
            raise FpgarecError(f"{p}: file not found (a student is <name>.safetensors + <name>.json)")
    try:
        shape = StudentShape(**json.loads(shape_file.read_text()))
    except (TypeError, ValueError) as exc:
        raise FpgarecError(f"{shape_file}: not a student shape ({exc})") from exc
    try:
        return student_from_state(shape, load_file(str(weights)))
    except RuntimeError as exc:
        raise FpgarecError(f"{weights}: weights do not fit the shape in {shape_file.name} ({exc})") from exc


def student_state(student: QuantStudent) -> tuple[StudentShape, dict[str, torch.Tensor]]:
    """(shape, state) of a student: what :func:`save_student` writes, as tensors in memory."""
    return student.shape, {k: v.detach().clone() for k, v in student.state_dict().items()}


def student_from_state(shape: StudentShape, state: dict[str, torch.Tensor]) -> QuantStudent:
    """The student of :func:`student_state` (or of a loaded file), in eval mode."""
    student = QuantStudent(shape)
    student.load_state_dict(state)
    return student.eval()


def save_parameters(model: nn.Module, path: Path) -> None:
    """A model's parameters (not its rebuilt-on-construction buffers) as safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(path))


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of what :func:`save_parameters` writes, held in memory."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def load_parameters(model: nn.Module, source: Path | dict[str, torch.Tensor]) -> nn.Module:
    """Load :func:`save_parameters`' file (or :func:`parameters`' tensors) into a freshly built
    model of the same shape."""
    if isinstance(source, dict):
        tensors = source
    else:
        from safetensors.torch import load_file

        tensors = load_file(str(source))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    params = {k for k, _ in model.named_parameters()}
    if unexpected or params & set(missing):
        where = "the tensors" if isinstance(source, dict) else source
        raise RuntimeError(f"{where}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
    model.eval()
    return model
