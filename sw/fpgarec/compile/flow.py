"""``fpgarec build``: from a trained student (or its QONNX export) to a bundle.

:func:`build` runs :data:`fpgarec.compile.steps.STEPS` through :func:`run_steps`, which after
every step saves ``<work>/intermediate_models/<step>.onnx`` and checks the new model against the
previous one on sample queries (:mod:`fpgarec.compile.checks`). The first model is checked
against the Brevitas student itself when the source is a student. Where Vivado is available the
Vivado stages follow; otherwise the build stops after code generation with one log line saying
so, and the manifest records that the bitstream was not built. Finally the bundle is written
and the CPU emulation of the bundle is checked against FINN's execution of the final model.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from fpgarec.compile import _finn, checks
from fpgarec.compile.config import BuildConfig
from fpgarec.errors import USER_ERRORS, FpgarecError

log = logging.getLogger(__name__)


class BuildStepError(FpgarecError):
    """A build step failed inside FINN/qonnx; the message names the step."""

    def __init__(self, step: str, exc: Exception):
        self.step = step
        super().__init__(f"step {step} failed: {type(exc).__name__}: {exc}")


def _step_name(step) -> str:
    return getattr(step, "__name__", str(step))


def run_steps(model, cfg: BuildConfig, steps, work_dir: Path, queries: np.ndarray,
              score_scale: float | None, n_items: int, previous: checks.Probe | None = None,
              reference: np.ndarray | None = None, float_reference: np.ndarray | None = None,
              near_tie: np.ndarray | None = None, progress: bool = True):
    """Run ``steps`` in order; save and check each against the previous model (and, where the
    scores are exact integers, against the student's integer scores (Q, N)). Returns
    (model, last probe, seconds per step).

    Until a step marked ``exact_rounding`` has put the exact thresholds in
    (:mod:`fpgarec.compile.exact_rounding`) the graphs round in float32, so they are checked on
    the queries that are not ``near_tie`` (Q,) bool, against ``float_reference`` (the student's
    float32 forward, what Brevitas exported). That step and every later one are checked on all
    queries against ``reference``, the student's exact integer scores. ``near_tie`` None: all
    queries throughout; ``float_reference`` None: ``reference`` throughout. Without a reference
    the exact step's changes on sample queries are allowed and named in a warning. A list of
    steps without an exact step is checked as already exact (e.g. the Vivado stages)."""
    from qonnx.core.modelwrapper import ModelWrapper

    inter = Path(work_dir) / "intermediate_models"
    inter.mkdir(parents=True, exist_ok=True)
    if previous is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            previous = checks.probe(model, queries, score_scale)
    exact = not any(getattr(step, "exact_rounding", False) for step in steps)  # no exact step: past it
    keep = None if near_tie is None else ~np.asarray(near_tie, bool)
    prev_probe = previous
    timings = {}
    from tqdm.auto import tqdm

    # a terminal only, and not with --no-progress
    bar = tqdm(steps, desc="build", unit="step", disable=None if progress else True, leave=False)
    for step in bar:
        name = _step_name(step)
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        prev_model = ModelWrapper(copy.deepcopy(model.model))  # steps may change the model in place
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = step(model, cfg)
        except USER_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - FINN/qonnx errors become one line naming the step
            log.debug("step %s failed", name, exc_info=True)
            raise BuildStepError(name, exc) from exc
        model.save(str(inter / f"{name}.onnx"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new_probe = checks.probe(model, queries, score_scale)
        exact_step = getattr(step, "exact_rounding", False)
        if exact:
            checks.compare(name, prev_model, model, prev_probe, new_probe, n_items)
        elif not exact_step or reference is not None:
            checks.compare(name, prev_model, model, prev_probe.rows(keep), new_probe.rows(keep), n_items)
        else:  # the exact step without a student: nothing to confirm its tie changes against
            try:
                checks.compare(name, prev_model, model, prev_probe, new_probe, n_items)
            except checks.StepCheckError as err:
                log.warning("%s: sample queries changed at rounding ties, unconfirmed without a student (%s)",
                            name, err)
        exact = exact or exact_step
        ref = reference if exact or float_reference is None else float_reference
        if ref is not None:
            checks.compare_reference(name, model, new_probe.rows(None if exact else keep),
                                     ref if exact else ref[keep] if keep is not None else ref, n_items)
        prev_probe = new_probe
        timings[name] = time.perf_counter() - t0
        log.info("%-34s ok  %5.2f s  (%d nodes)", name, timings[name], len(model.graph.node))
    return model, prev_probe, timings


def _load_source(source: Path, work_dir: Path, emit_weights: bool = False):
    """(QONNX ModelWrapper, student or None, metrics) for a .onnx or a student (.safetensors/.json).
    ``emit_weights``: the attention weights as a second graph output (refused for a student or
    model without attention)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile import export

    if source.suffix == ".onnx":
        if not source.is_file():
            raise FpgarecError(f"{source}: file not found")
        try:
            model = ModelWrapper(str(source))
        except Exception as exc:  # noqa: BLE001
            raise FpgarecError(f"{source}: not an ONNX model ({exc})") from exc
        return (export.add_weights_output(model) if emit_weights else model), None, {}
    student = export.load_student(source)
    path = export.export_qonnx(student, work_dir / "export.qonnx.onnx", emit_weights=emit_weights)
    metrics = {}
    metrics_file = source.with_suffix(".metrics.json")
    if metrics_file.is_file():
        import json

        metrics = json.loads(metrics_file.read_text())
    return ModelWrapper(str(path)), student, metrics


def build(source: Path | str, cfg: BuildConfig, metrics: dict | None = None, progress: bool = True) -> Path:
    """Compile ``source`` for ``cfg.board`` and return the bundle folder.

    ``source``: a QONNX file written by :func:`fpgarec.compile.export.export_qonnx`, or a trained
    student (``<name>.safetensors`` next to ``<name>.json``; a ``<name>.metrics.json`` is copied
    into the manifest). ``metrics`` (optional) overrides them. ``progress``: the steps' bar
    (shown on a terminal only).
    """
    from fpgarec.compile import export, steps
    from fpgarec.compile.bundle import write_bundle
    from fpgarec.compile.finn_builder import finn_config

    t_start = time.perf_counter()
    source = Path(source)
    board = cfg.resolve_board()  # unknown board: error before any work
    design = cfg.design_name(source)
    cfg = replace(cfg, design=design, build_dir=cfg.work_dir(design))
    work = Path(cfg.build_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    vivado = cfg.vivado_path()
    _finn.use_build_dir(work / "finn_build", vivado)
    _finn.quiet_finn_logging()
    _finn.register_kernels()
    log.info("building %s for %s (%s, %g MHz), target %.0f queries/s%s", design, board.name, board.part,
             cfg.clock(), cfg.target_qps,
             f", latency <= {cfg.target_latency_us:g} us" if cfg.target_latency_us else "")

    model, student, source_metrics = _load_source(source, work, cfg.emit_weights)
    meta = export.read_metadata(model)
    n_items = int(meta.get("n_items") or model.get_tensor_shape(model.graph.output[0].name)[-1])
    k = int(meta.get("k") or model.get_tensor_shape(model.graph.input[0].name)[-1])
    scale = meta.get("score_scale")
    queries = checks.sample_inputs(meta, n_items, k, cfg.check_queries, cfg.seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = checks.probe(model, queries, scale)
    ref, ref_float, near_tie = _student_references(model, student, queries, first, n_items)
    model, last, timings = run_steps(model, cfg, steps.STEPS, work, queries, scale, n_items, first, ref, ref_float,
                                     near_tie, progress=progress)

    finn_cfg = finn_config(cfg)
    bit_files: list[Path] = []
    if vivado is None:
        reason = "Vivado not found (XILINX_VIVADO unset)" if cfg.vivado.value == "auto" else "Vivado stages skipped (vivado=skip)"
        log.warning("%s: stopped after code generation; HLS/RTL sources and estimates are in %s. "
                    "To build the bitstream, run the same `fpgarec build` on a machine with Vivado "
                    "(XILINX_VIVADO set).", reason, work)
        bitstream = {"built": False, "reason": reason}
    else:
        model, last, more = run_steps(model, cfg, steps.VIVADO_STEPS, work, queries, scale, n_items, last, ref,
                                   progress=progress)
        timings.update(more)
        bit_dir = Path(finn_cfg.output_dir) / "bitfile"
        bit_files = sorted([*bit_dir.glob("*.bit"), *bit_dir.glob("*.hwh"), *bit_dir.glob("*.xclbin")])
        bitstream = {"built": bool(bit_files), "reason": "" if bit_files else "FINN produced no bitfile",
                     "vivado": str(vivado)}

    out = Path(cfg.output_dir) / design
    write_bundle(out, model, design=design, board=board, clock_mhz=cfg.clock(),
                 model_info=_model_info(model, meta, cfg, source, n_items, k),
                 finn_report_dir=Path(finn_cfg.output_dir) / "report", build_config=cfg.to_json(),
                 metrics={**source_metrics, **(metrics or {})}, bitstream=bitstream, bitstream_files=bit_files,
                 build_info={"seconds": round(time.perf_counter() - t_start, 2),
                             "step_seconds": {name: round(sec, 3) for name, sec in timings.items()},
                             "check_queries": int(len(queries))})
    e = _check_emulation(out, queries, last, n_items).bundle.manifest["estimates"]
    seconds = time.perf_counter() - t_start
    log.info("bundle %s: %.2f us, %.0f queries/s (estimates), built in %.1f s", out, e["latency_us"],
             e["queries_per_s"], seconds)
    return out


def _student_references(model, student, queries: np.ndarray, first: checks.Probe, n_items: int):
    """``(ref, ref_float, near_tie)`` for :func:`run_steps`, all None without a student: the
    student's exact integer scores (Q, N), its float32 forward (what Brevitas exported) and the
    (Q,) queries within 1e-3 of a rounding tie. The exported model (``first``, its probe) is
    checked against the float32 forward on the other queries."""
    if student is None:
        return None, None, None
    from fpgarec.compile import export
    from fpgarec.compile.exact_rounding import near_tie_queries

    ctx = export.student_contexts(student, queries)  # the ids, or the attention's (Q, K, 3)
    ref = export.integer_scores(student, ctx)
    ref_float = export.integer_scores(student, ctx, exact=False)  # what Brevitas exported
    near_tie = near_tie_queries(student, ctx)
    if near_tie.any():
        log.info("%d of %d check queries are within 1e-3 of a rounding tie: float32 steps skip them, "
                 "exact steps check them", int(near_tie.sum()), len(queries))
    keep = ~near_tie
    if first.approx is None or not checks.approx_equal(ref_float[keep].astype(np.float64),
                                                        first.approx[keep, :n_items]):
        raise checks.StepCheckError("export", first.scores_name, "QONNX",
                                    "QONNX execution differs from the Brevitas student")
    checks.compare_reference("export", model, first.rows(keep), ref_float[keep], n_items)
    return ref, ref_float, near_tie


def _model_info(model, meta: dict, cfg: BuildConfig, source: Path, n_items: int, k: int) -> dict:
    """The manifest's ``model`` entry: sizes (N items, N labels after padding, K, top-k), widths
    and the export's metadata."""
    n_labels = int(model.get_tensor_shape(checks._topk_node(checks.generic_view(model)).input[0])[-1])
    return {
        "n_items": n_items, "n_labels": n_labels, "k": k, "top_k": cfg.top_k, "dim": meta.get("dim"),
        "weight_bits": meta.get("weight_bits"), "act_bits": meta.get("act_bits"),
        "score_scale": meta.get("score_scale"), "fusion": meta.get("fusion"),
        "modality_weights": meta.get("modality_weights"), "source": source.name,
        **{key: meta[key] for key in ("fusion_weights", "fusion_frac_bits", "padding", "n_recent", "aggregation")
           if key in meta},
    }


def _check_emulation(out: Path, queries: np.ndarray, last: checks.Probe, n_items: int):
    """The bundle's CPU emulation (returned) on the check queries must equal FINN's execution
    of the final model (``last``): top-k ids (B, top_k), integer scores (B, N) and, for a design
    with the weight stream, the attention weights (B, K)."""
    from fpgarec.runtime.emulation import EmulationBackend

    emu = EmulationBackend(out)
    top, scores = emu.run_with_scores(queries)
    # a design with a seen-items input ranks FINN's scores with the same rule (the checks ran
    # FINN's graph with nothing seen; the emulation's default bitmap is the query's context)
    want = last.topk if emu.seen_input is None else emu.select_from_scores(last.scores[:, :n_items], queries)
    if not (np.array_equal(top, want) and np.array_equal(scores, last.scores[:, :n_items])):
        raise checks.StepCheckError("bundle", "emulation", "EmulationBackend",
                                    "CPU emulation of the bundle differs from FINN's execution of the final model")
    if (emu.weights_output is None) != (last.weights is None) or (
            last.weights is not None and not np.array_equal(emu.run_with_weights(queries)[1], last.weights)):
        raise checks.StepCheckError("bundle", "emulation", "EmulationBackend", "the CPU emulation's attention "
                                    "weights differ from FINN's execution of the final model")
    return emu
