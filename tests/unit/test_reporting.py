"""Tests of fpgarec.reporting.write_report.

All numbers in the report below are MADE UP for the test; they are not results of any run.
"""

from __future__ import annotations

import json
import math

import pytest

from fpgarec.reporting import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def _metrics(base: float) -> dict[str, float]:
    """Made-up metric values around ``base``."""
    return {"recall@10": base, "ndcg@10": base / 2, "recall@20": base * 1.5, "ndcg@20": base / 1.5}


@pytest.fixture
def made_up_report() -> dict:
    """A small report dict with MADE-UP numbers (not measured), incl. NaN/None for missing."""
    return {
        "popularity": {
            "all": _metrics(0.05),
            "cold": _metrics(0.04),
            "new": {"recall@10": NAN, "ndcg@10": None, "recall@20": NAN, "ndcg@20": NAN},
            "train_seconds": 0.01,
        },
        "bpr": {
            "all": _metrics(0.10),
            "cold": _metrics(0.08),
            "new": _metrics(0.02),
            "train_seconds": 12.5,
        },
        "student_w4": {
            "all": _metrics(0.12),
            "cold": _metrics(0.11),
            "new": _metrics(0.09),
            "train_seconds": NAN,
        },
        "curves": {
            "bpr": {
                "epochs": [1, 2, 3, 4],
                "loss": [0.69, 0.5, 0.4, 0.35],
                "valid_ndcg@10": [0.01, 0.03, 0.05, 0.04],
                "best_epoch": 3,
            },
            "student_w4": {
                "epochs": [1, 2, 3],
                "loss": [1.0, NAN, 0.7],
                "valid_ndcg@10": [0.02, 0.04, 0.06],
                "best_epoch": 3,
            },
        },
        "meta": {
            "dataset": "made-up: 10 users, 20 items, 100 interactions",
            "config": {"dim": 64, "lr": 1e-3, "nested": {"x": NAN}},
            "python": "3.x <test & escape>",
            "total_seconds": 42.0,
            "missing": None,
        },
        "bars": [
            {
                "name": "student beats bpr",
                "value": 0.06,
                "target": 0.05,
                "passed": True,
                "detail": "made-up",
            },
            {
                "name": "w4 within 2% of teacher",
                "value": NAN,
                "target": 0.98,
                "passed": False,
                "detail": "made-up <b>not bold</b>",
            },
        ],
        "design": {"clock_mhz": 200, "board": "made-up-board", "latency_us": 3.0, "queries_per_s": 1e6,
                   "estimate_source": "FINN estimate",
                   "resources": {"used": {"LUT": 1234, "FF": None, "BRAM18": 10, "DSP": 90},
                                 "available": {"LUT": 10000, "FF": 20000, "BRAM18": 100, "DSP": 100}}},
    }


def test_write_report_outputs(tmp_path, made_up_report):
    out = tmp_path / "out"
    html_path = write_report(made_up_report, out)
    assert html_path == out / "report.html"
    assert html_path.is_file()

    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "written_at" in data["meta"] and data["meta"]["machine"]["cpus"] >= 1
    assert "written_at" not in made_up_report["meta"]  # the input is not modified
    # JSON round-trips; NaN became null, other numbers are kept
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["popularity"]["new"]["recall@10"] is None
    assert data["popularity"]["new"]["ndcg@10"] is None
    assert data["student_w4"]["train_seconds"] is None
    assert data["curves"]["student_w4"]["loss"] == [1.0, None, 0.7]
    assert data["meta"]["config"]["nested"]["x"] is None
    assert data["bpr"]["all"]["recall@10"] == pytest.approx(0.10)
    assert data["bars"][0]["passed"] is True
    # strict parse: no NaN/Infinity tokens at all
    json.loads(
        (out / "report.json").read_text(encoding="utf-8"),
        parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"),
    )

    # the input dict is not modified
    assert math.isnan(made_up_report["student_w4"]["train_seconds"])

    page = html_path.read_text(encoding="utf-8")
    for name in ("popularity", "bpr", "student_w4"):
        assert name in page
    assert '<td class="pass">PASS</td>' in page
    assert "student beats bpr" in page and "0.06x" in page and "\u2265 0.05x" in page
    assert '<td class="fail">FAIL</td>' in page
    assert "\u2013" in page  # missing values
    assert "0.1000" in page  # 4 decimals (bpr all recall@10)
    assert "plots/training_curves.png" in page and "plots/metrics.png" in page
    # strings are escaped
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "&lt;test &amp; escape&gt;" in page
    # the design box: clock, FINN's figures labelled as estimates, the 80 % flag
    assert "200 MHz" in page and "1,234 / 10,000 (12\u00a0%)" in page
    assert "FINN estimate" in page and "Verilator simulation" not in page and "Yosys synthesis" not in page
    assert "fpgarec sim BUNDLE --synth" in page and "over 80 % of the board" in page  # DSP 90 of 100
    # no raw JSON on the page; report.json is linked
    assert '{"' not in page and '": ' not in page and 'href="report.json"' in page
    # run information stamped at write time, in the page and in the JSON
    assert {"written_at", "command", "machine"} <= set(data["meta"]) and "written at" in page

    pngs = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in pngs} == {"training_curves.png", "metrics.png"}
    for p in pngs:
        raw = p.read_bytes()
        assert len(raw) > 1000
        assert raw[:8] == PNG_MAGIC


def test_write_report_minimal(tmp_path):
    """No curves, no bars, no design: still writes every file."""
    report = {
        "only": {"all": _metrics(0.1), "cold": {}, "new": {}, "train_seconds": None},
        "meta": {},
    }
    html_path = write_report(report, tmp_path)
    assert "only" in html_path.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "report.json").read_text())["only"]["train_seconds"] is None
    for name in ("training_curves.png", "metrics.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG_MAGIC


def test_readable_numbers():
    from fpgarec.reporting.format import num, percent, ratio, seconds

    assert num(138002.0) == "138,002" and num(320.0) == "320" and num(0.5) == "0.5"
    assert num(694444.4444) == "694,444" and num(None) == "\u2013" and num(float("nan")) == "\u2013"
    assert ratio(1.4074) == "1.41x" and percent(0.147, 1, signed=True) == "+14.7\u00a0%"
    assert seconds(119.8) == "2\u00a0min 0\u00a0s" and seconds(1.1) == "1.10\u00a0s"


def test_bar_views_label_ratios_and_noise():
    from fpgarec.reporting.accuracy import bar_view

    fail = bar_view({"name": "student_w4 / popularity NDCG@10, new", "value": 1.1188, "target": 1.5,
                     "passed": False, "detail": "0.5250 vs 0.4693"})
    assert (fail["name"], fail["value"], fail["op"], fail["target"], fail["verdict"]) == (
        "student_w4 / popularity NDCG@10 (new users)", "1.12x", "\u2265", "1.50x", "fail")
    # passes by (1.0333 - 1.0) * 0.1381 = 0.0046 NDCG@10: within one seed's noise
    assert bar_view({"name": "hetero / teacher NDCG@10, cold", "value": 1.0333, "target": 1.0, "passed": True,
                     "detail": "0.1427 vs 0.1381"})["verdict"] == "noise"
    lower = bar_view({"name": "LoRA / full train_seconds", "value": 0.415, "target": 0.5, "passed": True})
    assert lower["op"] == "\u2264" and lower["verdict"] == "pass"
    gain = bar_view({"name": "distillation gain: with / without - 1, mean of all, cold, new", "value": 0.147,
                     "target": 0.0, "passed": True})
    assert gain["value"] == "+14.7\u00a0%" and gain["name"].endswith("all, cold, new")


def test_design_sources(tmp_path):
    """Yosys counts replace FINN's estimates where measured, and say so; the CPU baseline is the
    emulation's queries/s."""
    from fpgarec.reporting.design import cpu_queries_per_s, resources, timing

    design = {"latency_us": 4.0, "queries_per_s": 5e5, "estimate_source": "FINN estimate",
              "resources": {"used": {"LUT": 900, "FF": None, "BRAM18": 3, "DSP": 8},
                            "available": {"LUT": 1000, "FF": 2000, "BRAM18": 10, "DSP": 10}},
              "measured": {"latency_us": 2.0, "queries_per_s": 6e5,
                           "resources": {"LUT": 850, "FF": 1500, "BRAM18": 4, "DSP": None}},
              "bitexact": {"queries": 1000, "emulation_seconds": 0.5}}
    rows = {r["name"]: r for r in resources(design)}
    assert rows["LUT"]["used"] == 850 and rows["LUT"]["source"].startswith("Yosys synthesis")
    assert rows["DSP"]["used"] == 8 and rows["DSP"]["source"] == "FINN estimate"
    assert timing(design)["latency_us"][:2] == (2.0, "Verilator simulation")
    assert cpu_queries_per_s(design) == 2000
    page = write_report({"m": {"all": _metrics(0.1)}, "design": design}, tmp_path).read_text()
    assert "Yosys synthesis (no place and route)" in page and "over 80 % of the board" in page  # LUT 850 of 1000


def test_a_finn_estimate_over_the_board_is_flagged_beside_a_measured_figure(tmp_path):
    """Yosys' DSP count is the headline; FINN's estimate of 15 on a 10-DSP board is shown beside
    it and flagged (it was shown unflagged: "DSP 320 = 145 %")."""
    design = {"latency_us": 4.0, "queries_per_s": 5e5, "estimate_source": "FINN estimate",
              "resources": {"used": {"LUT": 500, "FF": 100, "BRAM18": 3, "DSP": 15},
                            "available": {"LUT": 1000, "FF": 2000, "BRAM18": 10, "DSP": 10}},
              "measured": {"resources": {"LUT": 400, "FF": 90, "BRAM18": 3, "DSP": 5}}}
    page = write_report({"m": {"all": _metrics(0.1)}, "design": design}, tmp_path).read_text()
    assert "FINN estimate 15 = 150\u00a0%" in page and "does not fit by FINN's estimate" in page
    assert "over 80 % of the board" not in page  # the measured figures are within the board


def test_lora_setup_is_rows_and_one_line_of_settings(tmp_path):
    lora = {"frozen": {"all": {"ndcg@10": 0.1}}, "lora": {"all": {"ndcg@10": 0.11}},
            "meta": {"items": 1682, "cpus": 2, "config": {"lora_r": 8, "lora_targets": ["query", "key"],
                                                          "n_negatives": None}}}
    page = write_report({"m": {"all": _metrics(0.1)}, "lora": lora}, tmp_path).read_text()
    setup = page[page.index("<h3>Set-up</h3>"):]
    assert "lora_r 8, lora_targets query/key, n_negatives none" in setup
    assert 'class="inner"' not in setup.split("</table>")[0]  # no nested table of the settings


def test_resource_points_compare_every_student_on_one_source():
    """The accuracy-against-resources chart: the demo's FINN estimate of the students it does
    not build, and the design's model by FINN's estimate and by Yosys (it had Yosys only, so
    the 8-bit student had no figure of the same source to compare with)."""
    from fpgarec.reporting.design import resource_points

    design = {"bundle": "build/demo/bitstreams/w4_pynq-z2", "estimate_source": "FINN estimate",
              "resources": {"used": {"LUT": 900, "FF": None, "BRAM18": 3, "DSP": 8},
                            "available": {"LUT": 1000, "FF": 2000, "BRAM18": 10, "DSP": 10}},
              "measured": {"resources": {"LUT": 850, "FF": 1500, "BRAM18": 4, "DSP": 6}}}
    est = {"LUT": 2000.0, "DSP": 16.0, "BRAM18": 6.0, "cycles": 144, "source": "FINN estimate, x"}
    report = {"teacher": {"all": _metrics(0.2)}, "w8": {"all": _metrics(0.19), "resources": est},
              "w4": {"all": _metrics(0.18)}, "design": design}
    points = resource_points(report)
    assert points["w8"] == [{"LUT": 2000.0, "DSP": 16.0, "source": "FINN estimate, x"}]
    assert [(p["LUT"], p["DSP"]) for p in points["w4"]] == [(900, 8), (850, 6)]
    assert points["w4"][0]["source"].startswith("FINN estimate") and points["w4"][1]["source"].startswith("Yosys")
    assert "teacher" not in points
    design.pop("measured")  # FINN's estimate is the design's only figure: listed once
    assert resource_points(report)["w4"] == [{"LUT": 900, "DSP": 8, "source": "FINN estimate"}]
