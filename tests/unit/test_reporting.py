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
        "design": {"clock_mhz": 200, "resources": {"LUT": 1234, "DSP": 56}},
    }


def test_write_report_outputs(tmp_path, made_up_report):
    out = tmp_path / "out"
    html_path = write_report(made_up_report, out)
    assert html_path == out / "report.html"
    assert html_path.is_file()

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
    assert '<td class="fail">FAIL</td>' in page
    assert "\u2013" in page  # missing values
    assert "0.1000" in page  # 4 decimals (bpr all recall@10)
    assert "plots/training_curves.png" in page and "plots/metrics.png" in page
    # strings are escaped
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "&lt;test &amp; escape&gt;" in page
    assert "clock_mhz" in page and "LUT" in page

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
