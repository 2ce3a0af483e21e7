"""The build's one configuration object.

Every field has a doc comment; choices are ``str`` enums so they read and serialise as plain
strings (``BuildConfig(folding=...)``, JSON in the manifest). This module and
:mod:`fpgarec.compile._finn` are the only places of the compile package that touch the
process environment (``XILINX_VIVADO`` here; ``FINN_BUILD_DIR`` / ``FINN_SETTINGS`` there).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from fpgarec.compile.boards import Board, load_board
from fpgarec.errors import FpgarecError


class FoldingStrategy(str, Enum):
    """How PE/SIMD (the parallelism of each layer) are chosen when no folding file is given."""

    #: FINN's ``SetFolding`` alone: every layer just meets the cycles-per-query target
    FINN = "finn"
    #: FINN's ``SetFolding`` first, then a resource-aware pass that picks, per layer, the
    #: cheapest (PE, SIMD) meeting the target and, while the latency budget is exceeded,
    #: speeds up the layer that buys the most cycles per resource spent
    BALANCED = "balanced"


class VivadoStages(str, Enum):
    """Whether the build goes on past code generation (IP synthesis, stitching, bitfile)."""

    #: run them when Vivado is found (``vivado_dir`` or ``XILINX_VIVADO``), else stop cleanly
    AUTO = "auto"
    #: never run them (estimates and generated sources only)
    SKIP = "skip"


class ImplStyle(str, Enum):
    """Preferred implementation of the matrix-vector units (FINN's ``preferred_impl_style``)."""

    #: FINN decides (RTL MVAU on DSPs where it can)
    AUTO = "auto"
    #: RTL MVAU (DSP-based)
    RTL = "rtl"
    #: HLS MVAU (LUT or DSP multipliers, see ``resType``)
    HLS = "hls"


@dataclass
class BuildConfig:
    """Everything ``fpgarec build`` needs: target board, performance goal, folders."""

    #: board name, one of ``hw/boards/*.json`` (see :func:`fpgarec.compile.boards.known_boards`)
    board: str = "pynq-z2"
    #: fabric clock in MHz; None = the board's default clock
    clock_mhz: float | None = None
    #: throughput goal in queries per second; sets the cycles-per-query target
    #: T = f_clk / target_qps that every layer must meet
    target_qps: float = 200_000.0
    #: latency goal in microseconds (sum of layer cycles / f_clk); None = no latency goal.
    #: Only the ``balanced`` folding strategy works towards it
    target_latency_us: float | None = 5.0
    #: FINN folding JSON (``{"<node>": {"PE": .., "SIMD": ..}}``); when given it is applied
    #: after the automatic folding and wins over it
    folding_file: Path | None = None
    #: how PE/SIMD are chosen when no folding file fixes them
    folding: FoldingStrategy = FoldingStrategy.BALANCED
    #: highest fraction of each board resource (LUT, BRAM18, DSP, URAM) the estimate may use;
    #: a design above it is refused before code generation
    max_utilization: float = 0.9
    #: refuse a design whose FINN estimate exceeds ``max_utilization``. False for designs built
    #: for fpgarec's own RTL (``fpgarec sim --synth`` measures them with Yosys): FINN's MVAU_rtl
    #: estimate counts DSP48 MACs where that RTL puts 4-bit x 4-bit products in LUTs
    check_fit: bool = True
    #: folder that receives ``<design>/`` (the bundle); the committed bundles in ``bitstreams/``
    #: change only when a developer names that folder
    output_dir: Path = Path("build/bitstreams")
    #: name of the design (the bundle's folder); None = ``<model name>_<board>``
    design: str | None = None
    #: work folder of FINN (intermediate models, generated sources, reports);
    #: None = ``build/compile/<design>``
    build_dir: Path | None = None
    #: length k of the top-k list the accelerator returns (LabelSelect)
    top_k: int = 10
    #: pad the scoring layer's item count up to a multiple of this (1 = no padding); more
    #: divisors give the folding finer PE choices. Padded items score no higher than any real
    #: item and lose ties to them, so they never enter the top-k (see ``steps.step_pad_items``)
    pad_items_multiple: int = 128
    #: give the top-k layer a seen-items input: a bitmap of the items each query has seen (a
    #: known user's history) is streamed with the context ids and those items are dropped on
    #: chip before selection (kernels/topk_select, SeenMode 2); without a bitmap the runtime
    #: sends the query's context ids as seen
    exclude_seen: bool = False
    #: attention students only: the design gets a second output stream, each query's K attention
    #: weights a_j (integers 0..2^W, W+1 bits, slot order; kernels/attention_aggregate ``EmitWeights``)
    #: beside its top-k. Refused for a student that does not aggregate with attention
    emit_weights: bool = False
    #: implementation preference of the matrix-vector units
    mvau_impl: ImplStyle = ImplStyle.AUTO
    #: widest weight stream per PE (bits) ``SetFolding`` may choose (FINN's ``mvau_wwidth_max``)
    mvau_wwidth_max: int = 1024
    #: random sample queries every step is checked on (plus a few tie-heavy ones)
    check_queries: int = 8
    #: seed of the sample queries
    seed: int = 0
    #: whether to run the Vivado stages
    vivado: VivadoStages = VivadoStages.AUTO
    #: Vivado install folder; None = ``XILINX_VIVADO`` from the environment
    vivado_dir: Path | None = None
    #: folder of the board files; None = ``hw/boards`` of this checkout
    boards_dir: Path | None = None

    def __post_init__(self) -> None:
        self.folding = FoldingStrategy(self.folding)
        self.vivado = VivadoStages(self.vivado)
        self.mvau_impl = ImplStyle(self.mvau_impl)
        self.output_dir = Path(self.output_dir)
        for name in ("folding_file", "build_dir", "vivado_dir", "boards_dir"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        if self.target_qps <= 0:
            raise FpgarecError(f"target_qps must be > 0, got {self.target_qps}")
        if not 0 < self.max_utilization <= 1:
            raise FpgarecError(f"max_utilization must be in (0, 1], got {self.max_utilization}")
        if self.top_k < 1:
            raise FpgarecError(f"top_k must be >= 1, got {self.top_k}")
        if self.pad_items_multiple < 1 or self.check_queries < 1:
            raise FpgarecError("pad_items_multiple and check_queries must be >= 1")
        if self.clock_mhz is not None and self.clock_mhz <= 0:
            raise FpgarecError(f"clock_mhz must be > 0, got {self.clock_mhz}")
        if self.folding_file is not None and not self.folding_file.is_file():
            raise FpgarecError(f"{self.folding_file}: folding file not found")

    # ----------------------------------------------------------------------------- derived
    def resolve_board(self) -> Board:
        """The :class:`Board` named by ``board`` (raises listing the known boards)."""
        return load_board(self.board, self.boards_dir)

    def clock(self) -> float:
        """Fabric clock in MHz (the explicit one, else the board's)."""
        return float(self.clock_mhz) if self.clock_mhz else self.resolve_board().clock_mhz

    def clock_period_ns(self) -> float:
        """1000 / f_MHz."""
        return 1000.0 / self.clock()

    def target_cycles(self) -> int:
        """Cycles per query every layer must meet: floor(f_clk / target_qps)."""
        return max(1, int(self.clock() * 1e6 / self.target_qps))

    def latency_budget_cycles(self) -> int | None:
        """The latency goal in clock cycles, or None."""
        if self.target_latency_us is None:
            return None
        return int(self.target_latency_us * self.clock())

    def design_name(self, model_path: Path | None = None) -> str:
        """``design`` or ``<model stem>_<board>``."""
        if self.design:
            return self.design
        stem = Path(model_path).stem if model_path is not None else "model"
        return f"{stem}_{self.board}"

    def work_dir(self, design: str) -> Path:
        """FINN's work folder for ``design``."""
        return self.build_dir if self.build_dir is not None else Path("build") / "compile" / design

    def vivado_path(self) -> Path | None:
        """The Vivado install to use, or None when the Vivado stages must be skipped."""
        if self.vivado is VivadoStages.SKIP:
            return None
        if self.vivado_dir is not None:
            return self.vivado_dir
        env = os.environ.get("XILINX_VIVADO")
        return Path(env) if env else None

    def to_json(self) -> dict:
        """The fields as JSON-friendly values (enums as their strings, paths as text)."""
        out = {}
        for k, v in asdict(self).items():
            out[k] = v.value if isinstance(v, Enum) else str(v) if isinstance(v, Path) else v
        return out
