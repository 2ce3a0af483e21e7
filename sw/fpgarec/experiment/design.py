"""The demo's hardware half: compile the 4-bit student, verify the design bit for bit, score
its own output, simulate it, and explain every recommendation it makes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from fpgarec.config import DemoConfig
from fpgarec.data.prepared import Prepared
from fpgarec.models.student import QuantStudent

log = logging.getLogger(__name__)


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
        progress=cfg.progress,
    )
    n = cfg.bitexact_queries
    result = compare(bundle, student, n_queries=n, finn_queries=min(n, cfg.finn_queries),
                     workers=max(1, cfg.threads), progress=cfg.progress)
    mismatches = max(v["any"] for k, v in result.items() if k.startswith("emulation_vs_"))
    out = design_summary(bundle, n, mismatches) | {"bitexact": result}
    out["delivered"] = design_test_metrics(bundle, split)
    log.info("the design's own output: NDCG@10 all %.4f cold %.4f, %.1f %% of users get top_k unseen items",
             out["delivered"]["all"]["ndcg@10"], out["delivered"]["cold"]["ndcg@10"],
             100 * out["delivered"]["all"]["share_k_unseen"])
    if cfg.rtl_sim_queries:
        from fpgarec.errors import USER_ERRORS
        from fpgarec.hwsim.measure import measure

        sized = cfg.design_fifo_depths
        depths = json.loads(Path(sized).read_text()) if folding and sized and Path(sized).is_file() else None
        try:
            measure(bundle, queries=cfg.rtl_sim_queries, record=True, cache=cfg.out.parent / "rtlsim",
                    depths=depths)
            out = design_summary(bundle, n, mismatches) | {"bitexact": result, "delivered": out["delivered"]}
        except USER_ERRORS as err:  # a missing tool: the report says so, the demo goes on
            log.error("whole-design simulation skipped: %s", err)
            out["measured"] = {"skipped": str(err)}
    reference = committed_synthesis(cfg, bundle)
    if reference is not None:
        out["reference_synthesis"] = reference
    return out


#: a student's folding file beside ``DemoConfig.design_folding`` (the 8-bit student has the 4-bit one's layers)
FOLDING_OF = {"student_w8": "student_w4.json",
              "student_w4_attention": "student_w4_attention.json"}


def estimate_student(cfg: DemoConfig, name: str, student: QuantStudent) -> dict:
    """FINN's resource and cycle estimate of a student the demo does not build as its design
    (about 15 s: the flow to code generation, every step checked on sample queries), at the
    demo design's folding where the design's folding folder (``hw/folding/``; none with
    ``--quick``, whose item count differs) has one for it, else FINN's automatic folding.

    Returns ``{"LUT", "DSP", "BRAM18", "cycles", "source"}`` (LUT a lower bound: FINN counts 0
    for some layers). The bundle goes to ``<out>/work/estimates/`` (not a deliverable)."""
    from fpgarec.compile.config import BuildConfig, VivadoStages
    from fpgarec.compile.flow import build
    from fpgarec.train.checkpoint import save_student

    work = Path(cfg.out) / "work" / "estimates"
    save_student(student, work / "models" / name)
    folding = Path(cfg.design_folding).parent / FOLDING_OF.get(name, "-") if cfg.design_folding else None
    folding = folding if folding is not None and folding.is_file() else None
    bundle = build(work / "models" / f"{name}.safetensors",
                   BuildConfig(board=cfg.board, output_dir=work, design=f"{name}_{cfg.board}",
                               build_dir=work / "finn" / name, folding_file=folding,
                               pad_items_multiple=cfg.pad_items_multiple, exclude_seen=cfg.exclude_seen,
                               check_fit=False, vivado=VivadoStages.SKIP),
                   progress=False)
    est = json.loads((bundle / "manifest.json").read_text())["estimates"]
    used = est["resources"]["used"]
    folded = f"folding {folding.name}" if folding else "FINN's automatic folding"
    return {"LUT": used["LUT"], "DSP": used["DSP"], "BRAM18": used["BRAM18"], "cycles": est["max_cycles"],
            "source": f"FINN estimate, {folded} (LUT a lower bound)"}


def committed_synthesis(cfg: DemoConfig, bundle: Path) -> dict | None:
    """The Yosys figures of the committed bundle for the demo's board (``bitstreams/``), when it
    has the same folding as ``bundle``: the demo does not synthesize (about 10 minutes), and
    the committed design is the same RTL at the same folding with the weights of an earlier
    training run (LUT-MACs with constant weights vary a little with the weights)."""
    root = Path(__file__).resolve().parents[3] / "bitstreams" / f"student_w4_{cfg.board}"
    try:
        ref = json.loads((root / "manifest.json").read_text())
        own = json.loads((Path(bundle) / "manifest.json").read_text())
        total = ref["measured"]["synthesis"]["total"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if ref.get("folding") != own.get("folding"):
        return None
    return {
        "bundle": f"bitstreams/{root.name}",
        "resources": {"LUT": total["LUT"] + total.get("LUTRAM", 0), "FF": total["FF"], "BRAM18": total["BRAM18"],
                      "DSP": total["DSP"], "URAM": total.get("URAM", 0)},
        "source": f"Yosys synthesis (no place and route) of the committed bundle bitstreams/{root.name}: "
                  "the same RTL and folding, weights of an earlier training run",
    }


def explain_demo(cfg: DemoConfig, prep: Prepared, bundle_dir: Path) -> dict:
    """Explain every recommendation the demo's design makes to every test user (compact JSON)
    and write one user's full page; returns the report's ``"explanations"`` entry."""
    from fpgarec.explain.attribution import Explainer
    from fpgarec.explain.page import (
        ExplainConfig,
        explain_all,
        explain_user,
        item_titles,
        write_all_users,
    )
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.sampler import HostSampler

    explainer = Explainer(EmulationBackend(bundle_dir))
    known = prep.standard.known_before_test()
    users = np.flatnonzero(prep.standard.test.lengths() > 0)
    sampler = HostSampler.from_manifest(explainer.backend.bundle.manifest)
    contexts = sampler.items([known.of(u).tolist() for u in users])
    tokens = [prep.data.user_tokens[u] for u in users]
    compact = explain_all(explainer, contexts, tokens, item_ids=prep.data.item_tokens, titles=item_titles(prep.data))
    out = cfg.out / "explain"
    out.mkdir(parents=True, exist_ok=True)
    write_all_users(compact, out / "all_users.json")
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
