"""The demo flow's one configuration object; the only place environment variables are read."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

#: output folder of ``--quick`` runs when no ``out`` is given (the full demo's is ``build/demo``)
QUICK_OUT = Path("build/demo-quick")


@dataclass
class DemoConfig:
    """Everything ``fpgarec demo`` (and ``fpgarec train``) needs to know."""

    #: RecBole atomic-file folder; None = MovieLens-100k from the installed recbole package.
    data: Path | None = None
    #: media folder (item images, audio, videos named by item id, docs/multimodal.md): the
    #: item content vectors become the aligned text+image+audio vectors; None = text only.
    media: Path | None = None
    #: user-user social file (RecBole ``.net``, docs/hetero.md) for the heterogeneous model.
    social: Path | None = None
    #: output folder of report.json, report.html, plots and trained weights (``quick``
    #: without an explicit ``out``: :data:`QUICK_OUT`).
    out: Path = Path("build/demo")
    #: cache folder for language-model vectors (keyed by text hash).
    cache: Path = Path("build/cache")
    #: run on a seeded user subsample with short training (smoke test, a few minutes on 2 cores,
    #: as the README says); output in :data:`QUICK_OUT` unless ``out`` is given.
    quick: bool = False
    #: users kept by --quick.
    quick_users: int = 200
    #: seed of splits, initialisation and batch order.
    seed: int = 0
    #: embedding width D of every model.
    dim: int = 64
    #: neighbours K aggregated per query by the teacher's context and the student.
    k: int = 20
    #: of the students' K slots, how many hold the most recent items (the rest are spread evenly
    #: over older history); None = all K are the most recent.
    n_recent: int | None = 12
    #: gap (in interactions) drawn between a training context and its target, 1..horizon.
    horizon: int = 10
    #: share of the students' training examples whose target lies anywhere after the context.
    long_context_prob: float = 0.0
    #: LightGCN / teacher propagation layers.
    layers: int = 3
    #: student bit widths trained by the demo (weights and activations alike).
    student_bits: tuple[int, ...] = (8, 4)
    #: weight λ of the distillation term in the student loss (0 = no teacher).
    distill_weight: float = 0.5
    #: distillation temperature τ.
    distill_temperature: float = 1.0
    #: use the knowledge graph's item-entity edges in the teacher's propagation.
    teacher_kg: bool = False
    #: compile the 4-bit student after training and verify its emulation bit for bit.
    build_design: bool = True
    #: board the demo compiles for.
    board: str = "pynq-z2"
    #: random queries of the bit-exactness check (emulation vs Brevitas; FINN: finn_queries).
    bitexact_queries: int = 10_000
    #: of those, the queries FINN's numpy execution also runs (about 25 ms each; the
    #: Verilator simulation checks the RTL on rtl_sim_queries besides).
    finn_queries: int = 2_000
    #: queries of the whole-design Verilator simulation (0 = none).
    rtl_sim_queries: int = 10_000
    #: folding of the demo design (PE/SIMD per layer, for fpgarec's RTL); None = automatic.
    design_folding: Path | None = field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "hw" / "folding" / "student_w4.json")
    #: FIFO depths of that folding, sized once by ``fpgarec sim BUNDLE --size-fifos`` (the
    #: committed bundles' ``rtl.fifo_depths``): the demo's simulation skips its own sizing run
    #: (about a minute); depths that no longer name the design's FIFOs are sized again.
    design_fifo_depths: Path | None = field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "hw" / "folding" / "student_w4.fifo_depths.json")
    #: pad the scored items to a multiple of this (1,682 -> 1,728: PE 48 divides it).
    pad_items_multiple: int = 48
    #: the design drops each query's seen items on chip (a seen bitmap beside the ids).
    exclude_seen: bool = True
    #: maximum epochs of any model (early stopping usually ends sooner).
    max_epochs: int = 300
    #: torch intra-op threads (default: all cores of this machine).
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: worker processes training models side by side, one torch thread each (default: all
    #: cores; 1 = everything in this process). These models gain nothing from a second
    #: intra-op thread, so two single-threaded workers do about twice the work (experiment/scheduler.py).
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: also train the 4-bit student without the teacher (the distillation report).
    distillation_ablation: bool = True
    #: compare frozen / LoRA / full fine-tuning of the text encoder (fpgarec.lm).
    lora: bool = True
    #: train the behaviour-sequence and heterogeneous models too.
    extended_models: bool = True
    #: train the standard sequential recommenders GRU4Rec and SASRec (docs/sequence.md).
    sequential_baselines: bool = True
    #: train the 4-bit student with the attention aggregation too (``student_w4_attention``:
    #: kernels/attention_aggregate, docs/sequence.md).
    attention_student: bool = True
    #: the attention student's distillation weight λ (docs/sequence.md, attempt 6).
    attention_distill_weight: float = 0.25
    #: show progress bars.
    progress: bool = True
    #: take the results of tasks an earlier run with the same settings finished (their
    #: records under ``<out>/work/tasks/``, fpgarec.experiment.resume) and run only the rest.
    resume: bool = False
    #: started by torchrun (WORLD_SIZE set): train with DDP over gloo.
    distributed: bool = False

    @classmethod
    def from_environment(cls, **overrides) -> DemoConfig:
        """Defaults, then what the process environment says, then explicit overrides."""
        cfg = cls(**{k: v for k, v in overrides.items() if v is not None})
        if cfg.quick and overrides.get("out") is None:  # never over the full demo's report
            cfg.out = QUICK_OUT
        cfg.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if cfg.distributed:  # torchrun gives each process a share of the cores
            cfg.threads = max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"]))
            cfg.workers = 1  # the ranks already share the cores
        if cfg.quick:
            cfg.max_epochs = min(cfg.max_epochs, 30)
            cfg.bitexact_queries = min(cfg.bitexact_queries, 500)
            cfg.finn_queries = min(cfg.finn_queries, 200)
            cfg.rtl_sim_queries = min(cfg.rtl_sim_queries, 300)
            cfg.design_folding = None  # a subsample's item count needs its own folding
            cfg.design_fifo_depths = None
        return cfg

    @classmethod
    def from_dict(cls, values: dict) -> DemoConfig:
        """The inverse of :meth:`as_dict` (paths back to Path, tuples back to tuples)."""
        kinds = {f.name: f.type for f in fields(cls)}
        out = {}
        for k, v in values.items():
            if k not in kinds:
                raise ValueError(f"unknown DemoConfig field {k!r}")
            if isinstance(v, str) and "Path" in str(kinds[k]) and v != "None":
                v = Path(v)
            elif isinstance(v, list):
                v = tuple(v)
            out[k] = v
        return cls(**out)

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
