"""Every top-level module and package of fpgarec is in the import-linter layers contract
(pyproject.toml), so a new one cannot escape the layer rule (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_fpgarec_module_has_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")
    named = {m.strip() for layer in layers["layers"] for m in layer.replace("|", ":").split(":")}
    pkg = ROOT / "sw" / "fpgarec"
    present = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    present |= {p.name for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert present - named == set(), f"add these to the layers contract in pyproject.toml: {sorted(present - named)}"
    assert named - present == set(), f"the layers contract names modules that do not exist: {sorted(named - present)}"
