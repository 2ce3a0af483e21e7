"""Board definitions: one small JSON file per board in ``hw/boards/``.

Each file names the FPGA part, the default fabric clock, the board memory, the shell the
design is wrapped in and the resource totals the estimates are checked against::

    {"name": "pynq-z2", "part": "xc7z020clg400-1", "finn_board": "Pynq-Z2",
     "clock_mhz": 100.0, "memory": {"type": "DDR3", "size_mb": 512},
     "shell": "zynq-iodma",
     "resources": {"LUT": 53200, "FF": 106400, "BRAM18": 280, "URAM": 0, "DSP": 220}}

Resource keys are always ``LUT, FF, BRAM18, URAM, DSP`` (:data:`RESOURCE_KEYS`); BRAM is counted
in 18 Kib halves, the unit FINN's estimates use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from fpgarec.errors import FpgarecError

#: the resource classes every board file and every report lists, in this order
RESOURCE_KEYS = ("LUT", "FF", "BRAM18", "URAM", "DSP")

#: where the board files live in a source checkout (``<repo>/hw/boards``)
DEFAULT_BOARDS_DIR = Path(__file__).resolve().parents[3] / "hw" / "boards"


class ShellType(str, Enum):
    """How the accelerator is wrapped on the board (FINN's shell flows)."""

    #: Zynq SoC: AXI DMA engines in the fabric, PYNQ on the ARM cores
    ZYNQ_IODMA = "zynq-iodma"
    #: Alveo card: Vitis XDMA platform over PCIe
    VITIS_ALVEO = "vitis-alveo"


class UnknownBoardError(FpgarecError):
    """The board name has no file in the boards folder."""


@dataclass(frozen=True)
class Board:
    """One FPGA board as the build flow sees it."""

    #: short name used on the command line (the file name without ``.json``)
    name: str
    #: Xilinx part number, e.g. ``xc7z020clg400-1``
    part: str
    #: default fabric clock in MHz
    clock_mhz: float
    #: shell the design is wrapped in
    shell: ShellType
    #: resource totals of the part: LUT, FF, BRAM18, URAM, DSP
    resources: dict[str, int]
    #: board memory, e.g. ``{"type": "DDR3", "size_mb": 512}``
    memory: dict = field(default_factory=dict)
    #: the board's name in FINN's tables (``finn.util.basic.part_map``)
    finn_board: str = ""
    #: Vitis platform (Alveo only)
    platform: str = ""
    #: one line for humans
    description: str = ""

    @property
    def clock_period_ns(self) -> float:
        """Period of the default clock in ns: 1000 / f_MHz."""
        return 1000.0 / self.clock_mhz


def known_boards(boards_dir: Path | None = None) -> list[str]:
    """Names of all boards with a file in ``boards_dir`` (sorted)."""
    folder = Path(boards_dir) if boards_dir is not None else DEFAULT_BOARDS_DIR
    return sorted(p.stem for p in folder.glob("*.json"))


def load_board(name: str, boards_dir: Path | None = None) -> Board:
    """The board called ``name`` (case-insensitive, ``_`` and ``-`` alike).

    Raises :class:`UnknownBoardError` listing the known boards when there is no such file.
    """
    folder = Path(boards_dir) if boards_dir is not None else DEFAULT_BOARDS_DIR
    key = name.strip().lower().replace("_", "-")
    path = folder / f"{key}.json"
    if not path.is_file():
        known = ", ".join(known_boards(folder)) or "(none)"
        raise UnknownBoardError(f"unknown board {name!r}; known boards: {known}")
    try:
        raw = json.loads(path.read_text())
        resources = {k: int(raw["resources"][k]) for k in RESOURCE_KEYS}
        return Board(
            name=raw["name"], part=raw["part"], clock_mhz=float(raw["clock_mhz"]),
            shell=ShellType(raw["shell"]), resources=resources, memory=dict(raw.get("memory", {})),
            finn_board=raw.get("finn_board", ""), platform=raw.get("platform", ""),
            description=raw.get("description", ""),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise FpgarecError(f"{path}: malformed board file ({exc})") from exc
