"""The main job: data -> language-model text features -> baselines, hybrid teacher and the 8-
and 4-bit students -> one evaluation -> report.json / report.html.

Every model is evaluated by :mod:`fpgarec.train.evaluate` on the same three groups:
``all`` and ``cold`` users of the temporal split, ``new`` users of the new-user split (models
are trained a second time on that split, without the new users).
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fpgarec.config import DemoConfig
from fpgarec.data.dataset import InteractionData, load_interactions, subsample_users
from fpgarec.data.graph import normalized_adjacency, useful_kg_edges
from fpgarec.data.split import Split, new_user_split, temporal_split
from fpgarec.encoders.text import encode_texts
from fpgarec.models.baselines import BPRMF, LightGCN, Popularity
from fpgarec.models.student import DistillationObjective, QuantStudent, StudentShape
from fpgarec.models.teacher import HybridTeacher
from fpgarec.train.ctr import evaluate_ctr
from fpgarec.train.distributed import is_main_process
from fpgarec.train.evaluate import evaluate_new, evaluate_test
from fpgarec.train.loop import TrainConfig, TrainHistory, fit
from fpgarec.train.sampling import bpr_batches, next_item_batches

log = logging.getLogger(__name__)

BASELINES = ("popularity", "bpr", "lightgcn")


@dataclass
class Prepared:
    data: InteractionData
    standard: Split
    new: Split
    #: the item content vectors every model reads: MiniLM text vectors (I, 384), or with
    #: ``--media`` the aligned multimodal vectors (I, 256)
    text: np.ndarray
    #: the multimodal encoder's report (None: text only)
    multimodal: dict | None = None


MULTIMODAL_FILES = ("multimodal_vectors.npy", "multimodal.json")


def _item_content(cfg: DemoConfig, data: InteractionData, text: np.ndarray, reuse: bool):
    """(vectors, report): the text vectors, or with ``cfg.media`` the aligned multimodal ones.

    The multimodal heads are trained once, by the process that prepares first; worker
    processes (``reuse``) load that result from ``<out>/work/`` so every model reads the same
    vectors bit for bit.
    """
    if cfg.media is None:
        return text, None
    import json

    vec_path, rep_path = (cfg.out / "work" / f for f in MULTIMODAL_FILES)
    if reuse and vec_path.exists() and rep_path.exists():
        return np.load(vec_path, allow_pickle=False), json.loads(rep_path.read_text())
    from fpgarec.encoders.multimodal import MultimodalConfig, multimodal_item_vectors

    vectors, report = multimodal_item_vectors(
        data, text, cfg.media, cfg.cache / "media", MultimodalConfig(seed=cfg.seed),
        progress=cfg.progress and is_main_process(),
        heads_out=cfg.out / "models" / "multimodal_heads" if is_main_process() else None,
    )
    if is_main_process():
        vec_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(vec_path, vectors.astype(np.float32))
        rep_path.write_text(json.dumps(report, default=str))
    return vectors, report


def prepare(cfg: DemoConfig, reuse_content: bool = False) -> Prepared:
    """Data, splits and item content vectors (``reuse_content``: a worker process, see
    :func:`_item_content`)."""
    data = load_interactions(cfg.data)
    if cfg.quick:
        data = subsample_users(data, cfg.quick_users, cfg.seed)
        log.info("quick run on a subsample: %s", data.summary())
    text = encode_texts(data.item_text, cfg.cache / "text", show_progress=cfg.progress and is_main_process())
    content, multimodal = _item_content(cfg, data, text, reuse_content)
    if multimodal is None and not reuse_content:
        log.info("item content: text only (%s has no media folder; give --media DIR for image/audio/video)",
                 data.name)
    return Prepared(data, temporal_split(data), new_user_split(data, seed=cfg.seed), content, multimodal)


def _train_cfg(cfg: DemoConfig, lr: float, patience: int, eval_every: int) -> TrainConfig:
    return TrainConfig(
        epochs=cfg.max_epochs, lr=lr, patience=patience, eval_every=eval_every, seed=cfg.seed,
        progress=cfg.progress,
    )


#: the baselines' tuning grid: (learning rate, batch size); the best validation NDCG@10 wins.
BASELINE_GRID = {"bpr": ((1e-3, 2048), (5e-3, 2048)), "lightgcn": ((5e-3, 2048), (1e-2, 4096))}


def baseline_builder(name: str, prep: Prepared, split: Split, cfg: DemoConfig):
    """A function returning a fresh, untrained ``name`` baseline ("bpr" or "lightgcn")."""
    if name == "bpr":
        return lambda: BPRMF(split.train, prep.data.n_items, cfg.dim, seed=cfg.seed)
    adj, _ = normalized_adjacency(split.train, prep.data.n_items)
    return lambda: LightGCN(split.train, prep.data.n_items, adj, cfg.dim, cfg.layers, seed=cfg.seed)


def train_grid_point(name: str, variant: int, prep: Prepared, split: Split, cfg: DemoConfig, build=None):
    """Train baseline ``name`` at grid point ``BASELINE_GRID[name][variant]``."""
    lr, batch = BASELINE_GRID[name][variant]
    model = (build or baseline_builder(name, prep, split, cfg))()
    hist = fit(model, split, bpr_batches(split.train, prep.data.n_items, batch), _train_cfg(cfg, lr, 10, 2), name)
    log.info("%s lr %g batch %d: valid NDCG@10 %.4f", name, lr, batch, hist.best_valid_ndcg10)
    hist.chosen = {"lr": lr, "batch": batch}
    return model, hist


def _tuned(name: str, prep: Prepared, split: Split, cfg: DemoConfig):
    """Train once per grid point; keep the model with the best validation NDCG@10.

    The returned history's ``seconds`` is the time of the whole grid (the tuning cost).
    """
    build = baseline_builder(name, prep, split, cfg)
    runs = [train_grid_point(name, v, prep, split, cfg, build) for v in range(len(BASELINE_GRID[name]))]
    model, hist = max(runs, key=lambda r: r[1].best_valid_ndcg10)
    hist.seconds = sum(h.seconds for _, h in runs)
    return model, hist


def train_bpr(prep: Prepared, split: Split, cfg: DemoConfig):
    return _tuned("bpr", prep, split, cfg)


def train_lightgcn(prep: Prepared, split: Split, cfg: DemoConfig):
    return _tuned("lightgcn", prep, split, cfg)


def build_teacher(prep: Prepared, split: Split, cfg: DemoConfig) -> HybridTeacher:
    """An untrained hybrid teacher for ``split`` (also what saved teacher weights load into)."""
    kg = useful_kg_edges(prep.data.kg) if (cfg.teacher_kg and prep.data.kg is not None) else None
    adj, layout = normalized_adjacency(split.train, prep.data.n_items, kg)
    return HybridTeacher(
        split.train, prep.data.n_items, adj, prep.text, cfg.dim, cfg.layers, seed=cfg.seed,
        n_extra_nodes=layout.n_entities, k=cfg.k,
    )


def train_teacher(prep: Prepared, split: Split, cfg: DemoConfig):
    model = build_teacher(prep, split, cfg)
    batches = next_item_batches(split.train, prep.data.n_items, cfg.k, cfg.horizon, 4096)
    hist = fit(model, split, batches, _train_cfg(cfg, 1e-2, 8, 2), "teacher")
    return model, hist


def train_student(prep: Prepared, split: Split, cfg: DemoConfig, bits: int, teacher: HybridTeacher | None):
    torch.manual_seed(cfg.seed)
    student = QuantStudent(StudentShape(prep.data.n_items, cfg.dim, cfg.k, bits, bits, cfg.n_recent))
    if teacher is not None:
        with torch.no_grad():
            _, items = teacher.propagate()
            student.init_from(items, teacher.projected_text(), teacher.context)
    objective = DistillationObjective(student, teacher, cfg.distill_weight, cfg.distill_temperature)
    batches = next_item_batches(
        split.train, prep.data.n_items, cfg.k, cfg.horizon, 1024, cfg.long_context_prob, cfg.n_recent,
        null_id=student.shape.null_id,
    )
    hist = fit(objective, split, batches, _train_cfg(cfg, 1e-3, 5, 1), f"student_w{bits}")
    return student, hist


TRAINERS = {"bpr": train_bpr, "lightgcn": train_lightgcn, "teacher": train_teacher}


def model_names(cfg: DemoConfig) -> list[str]:
    extended = ["sequence", "hetero"] if cfg.extended_models and not (cfg.distributed or cfg.workers <= 1) else []
    return [*BASELINES, "teacher", *(f"student_w{b}" for b in cfg.student_bits), *extended]


def train_and_evaluate(prep: Prepared, cfg: DemoConfig, names: list[str]) -> tuple[dict, dict, dict]:
    """Train every named model on both splits and evaluate it on all, cold and new users.

    Returns (metrics per model, training curves per model, trained standard-split models).
    BPR-MF and LightGCN cannot serve users unseen in training: on the new-user split every
    evaluated user is unseen, so their ``new`` metrics are those of their popularity fallback,
    computed without training them a second time (the result would be identical).
    """
    results: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    trained: dict[str, object] = {}
    teachers: dict[str, HybridTeacher | None] = {"standard": None, "new": None}
    pop_new = evaluate_new(Popularity(prep.new.train, prep.data.n_items), prep.new)
    for name in names:
        t0 = time.perf_counter()
        if name == "popularity":
            model = Popularity(prep.standard.train, prep.data.n_items)
            res = evaluate_test(model, prep.standard) | {"new": pop_new}
            res["ctr"] = evaluate_ctr(model, prep.standard, seed=cfg.seed)
            results[name] = res | {"train_seconds": time.perf_counter() - t0}
            trained[name] = model
            continue
        hists: list[TrainHistory] = []
        per_split = {}
        for split_name, split in (("standard", prep.standard), ("new", prep.new)):
            if name in ("bpr", "lightgcn") and split_name == "new":
                continue
            if name.startswith("student_w"):
                model, hist = train_student(prep, split, cfg, int(name.removeprefix("student_w")), teachers[split_name])
            else:
                model, hist = TRAINERS[name](prep, split, cfg)
                if name == "teacher":
                    teachers[split_name] = model
            per_split[split_name] = model
            hists.append(hist)
        res = evaluate_test(per_split["standard"], prep.standard)
        res["ctr"] = evaluate_ctr(per_split["standard"], prep.standard, seed=cfg.seed)
        res["new"] = evaluate_new(per_split["new"], prep.new) if "new" in per_split else pop_new
        if "new" not in per_split:
            res["new_note"] = "user unseen in training: popularity fallback"
        results[name] = res | {"train_seconds": sum(h.seconds for h in hists)}
        curves[name] = hists[0].as_dict()
        trained[name] = per_split["standard"]
        log.info(
            "%-11s NDCG@10 all %.4f cold %.4f new %.4f (%.0f s)",
            name, res["all"]["ndcg@10"], res["cold"]["ndcg@10"], res["new"]["ndcg@10"], results[name]["train_seconds"],
        )
    return results, curves, trained


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def check_bars(results: dict) -> list[dict]:
    """The first issue's quality bars, each with the figures behind it."""
    bars = []

    def bar(name, value, target, detail):
        bars.append({"name": name, "value": value, "target": target, "passed": bool(value >= target), "detail": detail})

    def nd(model, group):
        return results[model][group]["ndcg@10"]

    if all(m in results for m in ("teacher", "bpr", "lightgcn")):
        for group, target in (("all", 1.05), ("cold", 1.10)):
            best = max(nd("bpr", group), nd("lightgcn", group))
            bar(f"teacher / best(BPR, LightGCN) NDCG@10, {group}", _ratio(nd("teacher", group), best), target,
                f"teacher {nd('teacher', group):.4f} vs {best:.4f}")
    if "student_w4" in results and "popularity" in results:
        bar("student_w4 / popularity NDCG@10, new", _ratio(nd("student_w4", "new"), nd("popularity", "new")), 1.5,
            f"{nd('student_w4', 'new'):.4f} vs {nd('popularity', 'new'):.4f}")
    if "sequence" in results and "teacher" in results:
        bar("sequence / teacher (no sequences) NDCG@10, all", _ratio(nd("sequence", "all"), nd("teacher", "all")), 1.0,
            f"{nd('sequence', 'all'):.4f} vs {nd('teacher', 'all'):.4f}")
    if "hetero" in results and "teacher" in results:
        bar("hetero / teacher (bipartite only) NDCG@10, cold", _ratio(nd("hetero", "cold"), nd("teacher", "cold")), 1.0,
            f"{nd('hetero', 'cold'):.4f} vs {nd('teacher', 'cold'):.4f}")
    for bits, target in ((8, 0.97), (4, 0.93)):
        m = f"student_w{bits}"
        if m in results and "teacher" in results:
            bar(f"{m} / teacher NDCG@10, all", _ratio(nd(m, "all"), nd("teacher", "all")), target,
                f"{nd(m, 'all'):.4f} vs {nd('teacher', 'all'):.4f}")
    return bars


def save_student(student: QuantStudent, path: Path, metrics: dict | None = None) -> None:
    """Weights as safetensors (no pickle) next to a JSON of the shape (and of the metrics,
    which the compile flow copies into the bundle's manifest)."""
    import json

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(student.shape.__dict__, indent=2))
    if metrics is not None:
        path.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2))


def build_and_verify(cfg: DemoConfig, student: QuantStudent, split) -> dict:
    """Compile the 4-bit student for the demo board, check the emulation bit for bit against
    FINN's execution of the HW-layer graph and against Brevitas, measure what the design
    delivers from its own output (seen items dropped on chip), and simulate the whole design
    in Verilator (bit exact against the emulation; latency and throughput measured)."""
    from fpgarec.compile.config import BuildConfig
    from fpgarec.compile.design_metrics import design_test_metrics
    from fpgarec.compile.flow import build
    from fpgarec.compile.report import design_summary
    from fpgarec.compile.verify import compare

    folding = cfg.design_folding if cfg.design_folding and Path(cfg.design_folding).is_file() else None
    bundle = build(
        cfg.out / "models" / "student_w4.safetensors",
        BuildConfig(board=cfg.board, output_dir=cfg.out / "bitstreams", design=f"student_w4_{cfg.board}",
                    folding_file=folding, pad_items_multiple=cfg.pad_items_multiple,
                    exclude_seen=cfg.exclude_seen,
                    # fpgarec's RTL puts 4-bit MACs in LUTs where FINN's estimate counts DSPs:
                    # the fixed folding is checked by Yosys (docs/rtl.md), not FINN's estimate
                    check_fit=folding is None),
    )
    n = cfg.bitexact_queries
    result = compare(bundle, student, n_queries=n, finn_queries=min(n, cfg.finn_queries),
                     workers=max(1, cfg.threads))
    mismatches = max(v["any"] for k, v in result.items() if k.startswith("emulation_vs_"))
    out = design_summary(bundle, n, mismatches) | {"bitexact": result}
    out["delivered"] = design_test_metrics(bundle, split)
    log.info("the design's own output: NDCG@10 all %.4f cold %.4f, %.1f %% of users get top_k unseen items",
             out["delivered"]["all"]["ndcg@10"], out["delivered"]["cold"]["ndcg@10"],
             100 * out["delivered"]["all"]["share_k_unseen"])
    if cfg.rtl_sim_queries:
        from fpgarec.errors import USER_ERRORS
        from fpgarec.hwsim.measure import measure

        try:
            measure(bundle, queries=cfg.rtl_sim_queries, record=True, cache=cfg.out.parent / "rtlsim")
            out = design_summary(bundle, n, mismatches) | {"bitexact": result, "delivered": out["delivered"]}
        except USER_ERRORS as err:  # a missing tool: the report says so, the demo goes on
            log.error("whole-design simulation skipped: %s", err)
            out["measured"] = {"skipped": str(err)}
    return out


def train_in_workers(prep: Prepared, cfg: DemoConfig, names: list[str]) -> tuple[dict, dict, dict, dict]:
    """Like :func:`train_and_evaluate`, with every model trained as a task of
    :mod:`fpgarec.pipeline` (``cfg.workers`` single-threaded processes side by side).

    Returns (metrics per model, curves, trained standard-split students, extra report keys).
    """
    from fpgarec.compile.export import load_student
    from fpgarec.pipeline import run_tasks
    from fpgarec.tasks import assemble, distillation_report, plan, student_path

    pop_model = Popularity(prep.standard.train, prep.data.n_items)
    pop_new = evaluate_new(Popularity(prep.new.train, prep.data.n_items), prep.new)
    tasks = plan(cfg, names)
    log.info("%d training tasks on %d worker process(es), 1 torch thread each", len(tasks), cfg.workers)
    done = run_tasks(cfg, tasks, cfg.workers, progress=cfg.progress)
    results, curves = assemble(done, names, pop_new)
    if "popularity" in names:
        t0 = time.perf_counter()
        pop = evaluate_test(pop_model, prep.standard) | {"new": pop_new}
        pop["ctr"] = evaluate_ctr(pop_model, prep.standard, seed=cfg.seed)
        results = {"popularity": pop | {"train_seconds": time.perf_counter() - t0}, **results}
    for name in names:
        if name in results:
            r = results[name]
            log.info("%-11s NDCG@10 all %.4f cold %.4f new %.4f (%.0f s)", name, r["all"]["ndcg@10"],
                     r["cold"]["ndcg@10"], r["new"]["ndcg@10"], r["train_seconds"])
    trained = {n: load_student(student_path(cfg, n, "standard")) for n in names if n.startswith("student_w")}
    extra = {}
    lora = [r.value["lora"] for r in done.values() if r.task.model == "lora"]
    if lora:
        extra["lora"] = lora[0]
    distill = distillation_report(results)
    if distill is not None:
        extra["distillation"] = distill
        results.pop("student_w4_nodistill")
    return results, curves, trained, extra


def explain_demo(cfg: DemoConfig, prep: Prepared, bundle_dir: Path) -> dict:
    """Explain every recommendation the demo's design makes to every test user (compact JSON)
    and write one user's full page; returns the report's ``"explanations"`` entry."""
    import json

    from fpgarec.explain.attribution import Explainer
    from fpgarec.explain.page import ExplainConfig, explain_all, explain_user
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.sampler import HostSampler

    explainer = Explainer(EmulationBackend(bundle_dir))
    known = prep.standard.known_before_test()
    users = np.flatnonzero(prep.standard.test.lengths() > 0)
    sampler = HostSampler.from_manifest(explainer.backend.bundle.manifest)
    contexts = sampler.items([known.of(u).tolist() for u in users])
    tokens = [prep.data.user_tokens[u] for u in users]
    compact = explain_all(explainer, contexts, tokens)
    out = cfg.out / "explain"
    out.mkdir(parents=True, exist_ok=True)
    (out / "all_users.json").write_text(json.dumps(compact))
    n_recs = sum(len(v) for v in compact.values())
    n_explained = sum(1 for v in compact.values() for r in v if r["top_neighbour"] is not None and r["top_modality"])
    # the example: the cold user (few interactions) with the most test items, else the first user
    cold = [u for u in prep.standard.cold_users if prep.standard.test.lengths()[u] > 0]
    example_user = max(cold, key=lambda u: prep.standard.test.lengths()[u]) if cold else users[0]
    token = prep.data.user_tokens[example_user]
    explain_user(ExplainConfig(user=token, bundle=bundle_dir, data=cfg.data, out=out), data=prep.data,
                 history=known, explainer=explainer)
    return {
        "users": len(compact), "recommendations": n_recs, "explained": n_explained,
        "example": f"explain/user_{token}.html", "all_users": "explain/all_users.json",
        "source": "the design's bit-exact emulation (aggregation and fusion kernel weights; exact score effects)",
    }


def _multimodal_entry(prep: Prepared) -> dict:
    """The report's ``"multimodal"`` object: what the item content vectors were made of."""
    if prep.multimodal is None:
        return {"status": f"text only: {prep.data.name} has no media folder (MovieLens ships no images, "
                          "audio or video); run with --media DIR to align image, audio and video with the text",
                "content_dim": int(prep.text.shape[1])}
    mm = prep.multimodal
    keep = ("items", "dim", "modalities", "files", "retrieval", "train_seconds", "encoders", "heads")
    return {"status": "text + media aligned into one item space (InfoNCE)", "content_dim": int(prep.text.shape[1]),
            **{k: mm[k] for k in keep if k in mm}, "skipped_files": len(mm.get("skipped", []))}


def run_demo(cfg: DemoConfig) -> dict:
    """Run the whole job; returns the report (rank 0 also writes it)."""
    from fpgarec.reporting.html import write_report

    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    prep = prepare(cfg)
    extra: dict = {}
    if cfg.distributed or cfg.workers <= 1:
        results, curves, trained = train_and_evaluate(prep, cfg, model_names(cfg))
    else:
        results, curves, trained, extra = train_in_workers(prep, cfg, model_names(cfg))
    report = dict(results)
    report.update(extra)
    report["multimodal"] = _multimodal_entry(prep)
    report["curves"] = curves
    report["bars"] = check_bars(results) + list((extra.get("lora") or {}).get("bars", []))
    if "distillation" in extra:
        from fpgarec.tasks import mean_gain

        gain, mean = extra["distillation"]["gain"], mean_gain(extra["distillation"])
        report["bars"].append({
            "name": "distillation gain: student_w4 with / without teacher - 1, NDCG@10 mean of all, cold, new",
            "value": mean, "target": 0.0, "passed": bool(mean > 0),
            "detail": ", ".join(f"{g} {v:+.1%}" for g, v in gain.items()),
        })
    report["meta"] = {
        "dataset": prep.data.summary(),
        "protocol": "per-user temporal 80/10/10; full ranking excluding earlier interactions; "
        "cold = <=30 interactions; new = 10% users held out, 5 context interactions",
        "users evaluated (all / cold / new)": f"{int((prep.standard.test.lengths() > 0).sum())} / "
        f"{len(prep.standard.cold_users)} / {len(prep.new.new_users)}",
        "config": cfg.as_dict(),
        "student modality weights (id, text)": {
            n: [round(float(x), 4) for x in trained[n].modality_weights().detach()] for n in trained if n.startswith("student_w")
        },
        "training": f"{cfg.workers} worker process(es) side by side, 1 torch thread each"
        if not (cfg.distributed or cfg.workers <= 1) else f"one process, {cfg.threads} torch threads",
        "ctr protocol": "test positives vs one uniformly sampled never-interacted negative each; "
        "AUC pooled over users (GAUC: per user); log-loss after Platt scaling fitted on validation",
        "total_seconds": round(time.perf_counter() - t0, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if is_main_process():
        for name, model in trained.items():
            if name.startswith("student_w"):
                save_student(model, cfg.out / "models" / name, results[name])
        if cfg.build_design and "student_w4" in trained:
            report["design"] = build_and_verify(cfg, trained["student_w4"], prep.standard)
            report["explanations"] = explain_demo(cfg, prep, cfg.out / "bitstreams" / f"student_w4_{cfg.board}")
        report["meta"]["total_seconds"] = round(time.perf_counter() - t0, 1)
        html = write_report(report, cfg.out)
        log.info("report written: %s", html)
    return report
