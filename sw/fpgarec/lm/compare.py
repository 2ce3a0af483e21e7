"""The frozen / LoRA / full comparison: every mode on the same data and schedule, and its bars.

Measurements per mode: ``train_seconds`` (wall clock of the schedule of :mod:`fpgarec.lm.loop`,
including, for LoRA, the frozen-prefix cache, and the re-encoding, also reported alone as
``encode_seconds``; excluding imports and loading the model from disk), ``peak_mb`` (the peak
resident set size of a fresh process started for the mode alone, :mod:`fpgarec.lm.isolation`:
its ``VmHWM`` (/proc/self/status) read at its end, see :func:`fpgarec.lm.loop.peak_mb`;
``setup_peak_mb`` is the same reading after the process's imports and data loading,
``loaded_peak_mb`` after building the mode's model (importing transformers and peft, loading
the weights), ``peak_over_loaded_mb`` what training and evaluation added on top),
``trainable_params`` (head + encoder) and the test metrics of :mod:`fpgarec.train.evaluate`.

Splits: by default (``train_on="new"``) one model per mode is trained on ``prep.new.train``.
It is the standard temporal train set minus the held-out new users, so it holds no test
interaction of either protocol; the model is inductive (a user is its history), so the same
model is evaluated on all and cold users of ``prep.standard`` (history = train + valid) and on
the new users of ``prep.new`` (history = their 5 context items). ``train_on="both"`` trains a
second model on ``prep.standard`` for all/cold instead (twice the time; the times are summed).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fpgarec.lm.config import MODES, FinetuneConfig
from fpgarec.lm.data import FinetuneData
from fpgarec.lm.isolation import run_isolated, save_payload
from fpgarec.lm.loop import run_mode

log = logging.getLogger(__name__)


def finetune_bars(results: dict) -> list[dict]:
    """Issue 6's bars: LoRA time <= 0.5 x full, LoRA NDCG@10 (all users) >= 0.98 x full."""
    bars = []
    if "lora" in results and "full" in results:
        lo, fu = results["lora"], results["full"]
        t = lo["train_seconds"] / fu["train_seconds"] if fu["train_seconds"] else float("nan")
        bars.append(
            {
                "name": "LoRA / full fine-tuning train_seconds",
                "value": t,
                "target": 0.5,
                "passed": bool(t <= 0.5),
                "detail": f"{lo['train_seconds']:.1f} s vs {fu['train_seconds']:.1f} s",
            }
        )
        q = lo["ndcg@10"] / fu["ndcg@10"] if fu["ndcg@10"] else float("nan")
        bars.append(
            {
                "name": "LoRA / full fine-tuning NDCG@10, all",
                "value": q,
                "target": 0.98,
                "passed": bool(q >= 0.98),
                "detail": " ".join(
                    f"{g} {lo[g]['ndcg@10']:.4f} vs {fu[g]['ndcg@10']:.4f};"
                    for g in ("all", "cold", "new")
                ),
            }
        )
    return bars


def compare_finetuning(prep, cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Train and evaluate every mode of ``cfg.modes`` on the same data and schedule.

    ``prep`` is a :class:`fpgarec.data.prepared.Prepared` (fields data, standard, new, text).
    Returns ``{mode: {"train_seconds", "encode_seconds", "peak_mb", "setup_peak_mb",
    "trainable_params", "ndcg@10", "all": {...}, "cold": {...}, "new": {...}, ...},
    "bars": [...], "meta": {...}}`` where ``"ndcg@10"`` is the all-users NDCG@10.
    """
    cfg = FinetuneConfig(**{**cfg.as_dict(), "progress": progress and cfg.progress})
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    data = FinetuneData.from_prepared(prep, cfg.max_length)
    results: dict = {}

    def done(mode: str, r: dict, seconds: float) -> None:
        results[mode] = r
        log.info(
            "%-6s NDCG@10 all %.4f cold %.4f new %.4f | train %.1f s | peak %.0f MB | %d trainable "
            "(%.1f s with process start)",
            mode,
            r["all"]["ndcg@10"],
            r["cold"]["ndcg@10"],
            r["new"]["ndcg@10"],
            r["train_seconds"],
            r["peak_mb"],
            r["trainable_params"],
            seconds,
        )

    if not cfg.isolate:
        for mode in cfg.modes:
            tm = time.perf_counter()
            done(mode, run_mode(data, cfg, mode), time.perf_counter() - tm)
    else:
        with tempfile.TemporaryDirectory(prefix="fpgarec-lm-") as tmp:
            save_payload(data, cfg, Path(tmp))

            def job(mode: str) -> tuple[str, dict, float]:
                tm = time.perf_counter()
                r = run_isolated(Path(tmp), mode)
                return mode, r, time.perf_counter() - tm

            order = sorted(
                cfg.modes, key=lambda m: -MODES.index(m)
            )  # full, lora, frozen: longest first
            with ThreadPoolExecutor(cfg.workers) as pool:
                for fut in [pool.submit(job, m) for m in order]:
                    done(*fut.result())
    results = {m: results[m] for m in cfg.modes}
    results["bars"] = finetune_bars(results)
    results["meta"] = {
        "items": data.n_items,
        "tokens (mean / max)": [round(float(data.lengths.mean()), 2), int(data.lengths.max())],
        "processes": f"one per mode, {cfg.workers} at a time, {cfg.threads} torch thread(s) each"
        if cfg.isolate
        else f"in the calling process, {cfg.threads} torch thread(s)",
        "memory": "peak RSS (VmHWM) of a fresh process per mode"
        if cfg.isolate
        else "peak RSS (VmHWM) of the calling process (not per mode: isolate=False)",
        "config": cfg.as_dict(),
        "cpus": os.cpu_count(),
        "load average (1 min) before / after": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    return results
