"""``fpgarec study attention-bits``: its table and chart say where every figure comes from, a
failed synthesis is shown (not dropped), and bad input is one line. The measurements themselves
come from the real flow (build, Verilator, Yosys: tests/hwsim, tests/compile); the study's full
run on the demo's students is in docs/results.md."""

from __future__ import annotations

import pytest

from fpgarec.experiment.studies.attention_bits import FINN, YOSYS, main, plot, table


def _entry(bits: int, ndcg: float, synth: dict) -> dict:
    """One student's figures as design_entry returns them (generated data)."""
    return {"bits": bits, "aggregation": "attention",
            "accuracy": {"student": {"all": {"ndcg@10": ndcg}, "cold": {"ndcg@10": ndcg - 0.03}},
                         "design": {"all": {"ndcg@10": ndcg}, "cold": {"ndcg@10": ndcg - 0.03}}},
            "finn": {"LUT": 20000.0 + bits, "DSP": 300.0, "BRAM18": 100.0 * bits, "cycles_per_query": 144,
                     "latency_cycles": 400, "source": FINN},
            "simulation": {"queries": 10000, "mismatches": 0, "weight_mismatches": 0, "cycles_per_query": 144.0,
                           "latency_cycles": 360 + bits},
            "synthesis": synth}


def test_table_and_chart_name_their_sources_and_show_a_failed_synthesis(tmp_path):
    entries = [_entry(8, 0.17, {"failed": "Yosys did not finish in 1500 s"}),
               _entry(4, 0.173, {"LUT": 31718, "LUTRAM": 2728, "FF": 24618, "DSP": 129, "BRAM18": 148}),
               _entry(2, 0.10, {"LUT": 14517, "LUTRAM": 1676, "FF": 12986, "DSP": 95, "BRAM18": 67})]
    md = table(entries)
    lines = md.splitlines()
    assert lines[0].startswith("| | w8 attention | w4 attention | w2 attention | source |")
    assert all(line.count("|") == len(entries) + 3 for line in lines), md
    yosys = next(line for line in lines if line.endswith(f"{YOSYS} |"))
    assert "— (Yosys did not finish in 1500 s)" in yosys and "31,718 / 24,618 / 129 / 148" in yosys
    assert any(line.endswith(f"{FINN} |") for line in lines)
    assert "0 / 0 of 10,000" in md and "144, 364" in md
    plot(entries, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 10_000


def test_a_missing_student_is_one_line(tmp_path):
    with pytest.raises(Exception, match="student not found"):
        main([str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "out")])
