"""Resource-aware folding: the parallelism (PE, SIMD) of every layer, within the board.

FINN's ``SetFolding`` gives every layer the smallest parallelism that meets one
cycles-per-query target T, growing SIMD before PE. That is a good start but, on 7-series
parts, not what the hardware likes: the RTL MVAU packs four PEs into one DSP48E1
(DSPs = ceil(PE/4) · SIMD), so SIMD-first folding spends up to 4x the DSPs. It also ignores
latency: a query passes through every layer, so the latency is the sum of the layer cycles

    latency = Σ_l c_l,    throughput = f_clk / max_l c_l,

and cheap layers (a 64-channel threshold) can run much faster than T at almost no cost.

:func:`balance` therefore chooses, per layer, among all legal (PE, SIMD) pairs (divisors of
the layer's dimensions) using FINN's own cycle and resource models (``get_exp_cycles``,
``node_res_estimation``):

1. per layer keep the Pareto front of (cycles, cost), cost = Σ_r used_r / available_r over
   LUT, BRAM18, URAM and DSP;
   (for layers FINN estimates at 0 LUT although they grow with PE, :func:`lut_floor`
   supplies a rough count so that their parallelism is not free);
2. start each layer at its cheapest option with c_l <= T;
3. while Σ c_l exceeds the latency budget, move the layer whose next faster option saves the
   most cycles per unit of added cost, as long as every resource stays within the allowed
   fraction of the board.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kernels import registry

log = logging.getLogger(__name__)

#: FINN resource keys -> board resource keys
FINN_TO_BOARD = {"LUT": "LUT", "BRAM_18K": "BRAM18", "URAM": "URAM", "DSP": "DSP"}
#: FINN's ops folded by PE up to their channel count (FINN's SetFolding ``pe_ops`` we use); the
#: project's kernels (``_rtl`` ops of kernels/registry.py) fold PE over their ``fold`` attribute
PE_OPS = ("GlobalAccPool_hls", "Thresholding_hls", "Thresholding_rtl", "Unsqueeze_hls",
          "Squeeze_hls", "Reshape_rtl", "DuplicateStreams_hls")
#: FINN's ops folded by PE over their labels
LABEL_OPS = ("LabelSelect_hls",)
MVAU_OPS = ("MVAU_hls", "MVAU_rtl")


def divisors(n: int) -> list[int]:
    """Positive divisors of n, ascending."""
    n = int(n)
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@dataclass
class Option:
    """One folding choice of one layer and what FINN estimates for it."""

    attrs: dict
    cycles: int
    resources: dict  # board keys -> amount
    cost: float


def _choices(inst, op_type: str) -> list[dict]:
    if op_type in MVAU_OPS:
        mh, mw = int(inst.get_nodeattr("MH")), int(inst.get_nodeattr("MW"))
        return [{"PE": pe, "SIMD": simd} for pe in divisors(mh) for simd in divisors(mw)]
    if registry.folding_attr(op_type):
        return [{"PE": pe} for pe in divisors(int(inst.get_nodeattr(registry.folding_attr(op_type))))]
    if op_type in LABEL_OPS:
        return [{"PE": pe} for pe in divisors(int(inst.get_nodeattr("Labels")))]
    if op_type in PE_OPS:
        try:
            channels = int(inst.get_nodeattr("NumChannels"))
        except AttributeError:
            channels = int(inst.get_normal_output_shape()[-1])
        return [{"PE": pe} for pe in divisors(channels)]
    return []


def _hls_width_ok(inst, op_type: str) -> bool:
    """HLS layers cannot have a stream wider than ap_int's maximum width (8191 bits)."""
    if not op_type.endswith("_hls"):
        return True
    from finn.util.basic import MAX_ALLOWED_AP_INT_W

    widths = [inst.get_instream_width(), inst.get_outstream_width()]
    if op_type == "MVAU_hls":
        widths.append(inst.get_instream_width(1))
    return max(widths) <= MAX_ALLOWED_AP_INT_W


def lut_floor(inst, op_type: str) -> float:
    """A rough LUT count for per-PE logic FINN estimates as 0 LUT (folding cost only).

    LabelSelect keeps a sorted list of K candidates and inserts PE scores per cycle:
    about PE · K comparators of the score width. GlobalAccPool keeps PE accumulators.
    Other layers: 0 (FINN's own estimate stands).
    """
    if op_type not in ("LabelSelect_hls", "GlobalAccPool_hls"):
        return 0.0
    pe = int(inst.get_nodeattr("PE"))
    if op_type == "LabelSelect_hls":
        width = inst.get_input_datatype(0).bitwidth()
        return float(pe * int(inst.get_nodeattr("K")) * (width + 8))
    return float(pe * 2 * inst.get_output_datatype(0).bitwidth())


def fold_kernels(model, target_cycles: int) -> dict[str, int]:
    """FINN's ``SetFolding`` rule for the kernels' ``_rtl`` layers, which FINN does not know (it
    leaves them at their PE): the smallest PE (a divisor of the kernel's ``fold`` attribute,
    kernels/registry.py) whose cycles meet ``target_cycles``, else the smallest PE with the
    fewest cycles (a top-k layer's cycles stop falling at 2K + D). In place; returns the PEs."""
    from qonnx.custom_op.registry import getCustomOp

    chosen = {}
    for node in model.graph.node:
        attr = registry.folding_attr(node.op_type)
        if not attr:
            continue
        inst = getCustomOp(node)
        cycles = {}
        for pe in divisors(int(inst.get_nodeattr(attr))):
            inst.set_nodeattr("PE", pe)
            cycles[pe] = int(inst.get_exp_cycles())
            if cycles[pe] <= target_cycles:
                break
        best = next((pe for pe, c in cycles.items() if c <= target_cycles), None)
        if best is None:
            best = min(cycles, key=lambda pe: (cycles[pe], pe))
        inst.set_nodeattr("PE", best)
        chosen[node.name] = best
    return chosen


def _evaluate(inst, attrs: dict, part: str, available: dict) -> Option:
    for k, v in attrs.items():
        inst.set_nodeattr(k, v)
    est = inst.node_res_estimation(part)
    res = {b: float(est.get(f, 0) or 0) for f, b in FINN_TO_BOARD.items()}
    if res["LUT"] == 0:
        res["LUT"] = lut_floor(inst, inst.onnx_node.op_type)
    cost = sum(res[r] / available[r] for r in res if available.get(r, 0) > 0)
    cost += sum(1e6 * res[r] for r in res if available.get(r, 0) <= 0 and res[r] > 0)
    return Option(dict(attrs), int(inst.get_exp_cycles()), res, cost)


def _pareto(options: list[Option]) -> list[Option]:
    """Options sorted slowest first, each strictly faster and strictly dearer than the last."""
    best: dict[int, Option] = {}
    for o in options:
        if o.cycles not in best or o.cost < best[o.cycles].cost:
            best[o.cycles] = o
    front, cheapest = [], float("inf")
    for c in sorted(best):  # fastest first: keep an option only if cheaper than all faster ones
        o = best[c]
        if o.cost < cheapest:
            front.append(o)
            cheapest = o.cost
    return front[::-1]


def _totals(chosen: dict[str, Option], fixed: dict) -> dict:
    out = dict(fixed)
    for o in chosen.values():
        for r, v in o.resources.items():
            out[r] = out.get(r, 0.0) + v
    return out


def _fits(totals: dict, available: dict, cap: float) -> bool:
    return all(totals.get(r, 0) <= cap * available[r] for r in FINN_TO_BOARD.values() if r in available)


def balance(model, part: str, available: dict, target_cycles: int, latency_budget: int | None,
            max_utilization: float) -> dict:
    """Set PE/SIMD of every foldable layer of ``model`` (in place); return a summary.

    ``available``: board resources (``LUT``, ``BRAM18``, ``URAM``, ``DSP``); ``target_cycles``:
    cycles per query each layer should meet; ``latency_budget``: cycles the sum may take (None:
    no latency goal). The summary has per-layer cycles, the latency and whether the goals are met.
    """
    # 1. every foldable layer's Pareto front (cycles vs cost); the other layers' fixed share
    fronts, insts, fixed_cycles, fixed_res = _layer_fronts(model, part, available)

    # 2. cheapest option meeting the throughput target (else the fastest)
    pos: dict[str, int] = {}
    for name, front in fronts.items():
        ok = [i for i, o in enumerate(front) if o.cycles <= target_cycles]
        pos[name] = ok[0] if ok else len(front) - 1
        if not ok:
            log.warning("%s cannot meet %d cycles/query (fastest: %d)", name, target_cycles, front[-1].cycles)

    # 3. buy latency where it is cheapest
    if latency_budget is not None:
        _buy_latency(fronts, pos, fixed_cycles, fixed_res, available, latency_budget, max_utilization)

    chosen = _chosen(fronts, pos)
    for name, o in chosen.items():
        for k, v in o.attrs.items():
            insts[name].set_nodeattr(k, v)
    totals = _totals(chosen, fixed_res)
    cycles = {**fixed_cycles, **{n: o.cycles for n, o in chosen.items()}}
    latency = _latency(chosen, fixed_cycles)
    return {
        "cycles": cycles,
        "latency_cycles": latency,
        "max_cycles": max(cycles.values()) if cycles else 0,
        "resources": totals,
        "folding": {n: o.attrs for n, o in chosen.items()},
        "throughput_met": all(c <= target_cycles for c in cycles.values()),
        "latency_met": latency_budget is None or latency <= latency_budget,
    }


def _layer_fronts(model, part: str, available: dict):
    """``(fronts, insts, fixed_cycles, fixed_res)``: the Pareto front of the folding options of
    every foldable layer (``{name: [Option]}``, fastest last) and its custom-op instance; the
    expected cycles of every other layer with cycles, and the board resources they use. The
    layers' attributes are left as they were."""
    from qonnx.custom_op.registry import getCustomOp

    fronts: dict[str, list[Option]] = {}
    insts = {}
    fixed_cycles: dict[str, int] = {}
    fixed_res: dict[str, float] = {}
    for node in model.graph.node:
        inst = getCustomOp(node)
        choices = _choices(inst, node.op_type)
        if not choices:
            if hasattr(inst, "get_exp_cycles"):
                fixed_cycles[node.name] = int(inst.get_exp_cycles())
                est = inst.node_res_estimation(part)
                for f, b in FINN_TO_BOARD.items():
                    fixed_res[b] = fixed_res.get(b, 0.0) + float(est.get(f, 0) or 0)
            continue
        original = {k: inst.get_nodeattr(k) for k in choices[0]}
        options = []
        for attrs in choices:
            for k, v in attrs.items():
                inst.set_nodeattr(k, v)
            if _hls_width_ok(inst, node.op_type):
                options.append(_evaluate(inst, attrs, part, available))
        for k, v in original.items():
            inst.set_nodeattr(k, v)
        fronts[node.name] = _pareto(options)
        insts[node.name] = inst
    return fronts, insts, fixed_cycles, fixed_res


def _chosen(fronts: dict[str, list[Option]], pos: dict[str, int]) -> dict[str, Option]:
    return {n: fronts[n][i] for n, i in pos.items()}


def _latency(chosen: dict[str, Option], fixed_cycles: dict[str, int]) -> int:
    return sum(fixed_cycles.values()) + sum(o.cycles for o in chosen.values())


def _buy_latency(fronts: dict[str, list[Option]], pos: dict[str, int], fixed_cycles: dict[str, int],
                 fixed_res: dict, available: dict, latency_budget: int, max_utilization: float) -> None:
    """Move ``pos`` (each layer's index in its front) to faster options, always the step with
    the most cycles saved per unit of cost that still fits ``max_utilization`` of the board,
    until the latency is within ``latency_budget`` or no step fits (logged)."""
    while _latency(_chosen(fronts, pos), fixed_cycles) > latency_budget:
        cur = _chosen(fronts, pos)
        best, best_score = None, -1.0
        for name, i in pos.items():
            if i + 1 >= len(fronts[name]):
                continue
            a, b = fronts[name][i], fronts[name][i + 1]
            trial = dict(cur)
            trial[name] = b
            if not _fits(_totals(trial, fixed_res), available, max_utilization):
                continue
            gain, price = a.cycles - b.cycles, max(b.cost - a.cost, 1e-12)
            if gain / price > best_score:
                best, best_score = name, gain / price
        if best is None:
            log.warning("latency goal %d cycles not reached within %.0f%% of the board (at %d)",
                        latency_budget, 100 * max_utilization, _latency(cur, fixed_cycles))
            break
        pos[best] += 1
