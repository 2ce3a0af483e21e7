"""The kernel registry (kernels/registry.py): every entry's dotted paths import and name what
they should, importing the registry imports nothing heavy, and ``kernels`` never imports
``fpgarec`` (the layer rule: kernels sit below the toolkit)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import finn_registry, registry

KERNELS_DIR = Path(registry.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in a file, including those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, node.lineno))
    return out


def test_kernels_never_import_fpgarec():
    bad = [f"{p.relative_to(KERNELS_DIR.parent)}:{line} imports {mod}"
           for p in sorted(KERNELS_DIR.rglob("*.py")) for mod, line in _imports(p)
           if mod == "fpgarec" or mod.startswith("fpgarec.")]
    assert not bad, bad


def test_finn_common_imports_no_kernel_room():
    """finn_common is shared by the rooms' FINN ops: it must not import them back."""
    rooms = {p.parent.name for p in KERNELS_DIR.glob("*/__init__.py")}
    bad = [mod for mod, _ in _imports(KERNELS_DIR / "finn_common.py")
           if mod.startswith("kernels.") and mod.split(".")[1] in rooms]
    assert not bad, bad


def test_registry_imports_nothing_heavy():
    code = ("import sys, kernels.registry; "
            "heavy = [m for m in ('numpy', 'onnx', 'qonnx', 'finn', 'torch', 'brevitas', 'kernels.finn_common') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kernel", registry.KERNELS, ids=lambda k: k.name)
def test_every_entry_imports(kernel):
    pytest.importorskip("finn")
    assert (KERNELS_DIR / kernel.name).is_dir()
    rtl = registry.load(kernel.rtl_op)
    assert rtl.__name__ == f"{kernel.op_type}_rtl"
    assert rtl.core_source().is_file() and rtl.core_source().parent == KERNELS_DIR / kernel.name / "rtl"
    if kernel.finn_op:
        abstract = registry.load(kernel.finn_op)
        assert abstract.__name__ == kernel.op_type and issubclass(rtl, abstract)
    if kernel.qonnx_op:
        assert registry.load(kernel.qonnx_op).__name__ == kernel.op_type and kernel.transform
    if kernel.transform:
        assert registry.load(kernel.transform).OP_TYPE == kernel.op_type
    if kernel.golden:
        assert registry.load(kernel.golden).__name__ == kernel.golden
    if kernel.emulate:
        assert callable(registry.load(kernel.emulate))
    assert registry.by_op(kernel.op_type) is kernel and registry.by_op(f"{kernel.op_type}_rtl") is kernel


def test_registration_with_finn_and_qonnx():
    pytest.importorskip("finn")
    from finn.custom_op.fpgadataflow.rtl import custom_op as rtl_variants
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    from kernels import qonnx_ops

    finn_registry.register_finn()
    finn_registry.register_finn()  # idempotent
    for k in registry.KERNELS:
        assert rtl_variants[f"{k.op_type}_rtl"] is registry.load(k.rtl_op)
    assert set(qonnx_ops.custom_op) == {k.op_type for k in registry.KERNELS if k.qonnx_op}
    node = helper.make_node("NeighborAggregate", ["x", "ids"], ["y"], domain=qonnx_ops.DOMAIN, K=4)
    assert type(getCustomOp(node)) is qonnx_ops.custom_op["NeighborAggregate"]
    assert [type(t).__name__ for t in registry.transforms()] == [
        registry.load(k.transform).__name__ for k in registry.KERNELS if k.transform]
