"""Issue 16 item 1: the report's first screen, as headless Chromium renders it at 1400x1000.

The report below is SYNTHETIC: every number is made up for the test (it is not a result of any
run). Chromium loads the written report.html with a small probe script appended, which writes
the positions (getBoundingClientRect) and texts of the elements an engineer must see without
scrolling into the DOM; ``--dump-dom`` prints that DOM.

Chromium comes from Debian (``make test`` installs it when missing); without it the test is
skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from fpgarec.reporting import write_report

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 1000
RESOURCES = ("LUT", "FF", "BRAM18", "DSP")


def _metrics(base: float) -> dict[str, float]:
    return {"recall@10": base, "ndcg@10": base * 1.1, "recall@20": base * 1.5, "ndcg@20": base * 1.2}


def synthetic_report() -> dict:
    """A full-shaped report with MADE-UP numbers (design measured in Verilator, no Yosys)."""
    models = {"popularity": 0.07, "bpr": 0.10, "lightgcn": 0.11, "teacher": 0.15, "student_w8": 0.148,
              "student_w4": 0.145, "sequence": 0.16, "hetero": 0.15}
    report: dict = {name: {"all": _metrics(b), "cold": _metrics(b * 0.8), "new": _metrics(b * 3),
                           "train_seconds": 10.0 * (i + 1)} for i, (name, b) in enumerate(models.items())}
    report["curves"] = {
        "bpr": {"epochs": [1, 2, 3], "loss": [0.69, 0.3, 0.1], "valid_ndcg@10": [0.05, 0.09, 0.1], "best_epoch": 3},
        "student_w4": {"epochs": [1, 2, 3], "loss": [7.0, 5.0, 4.0], "valid_ndcg@10": [0.1, 0.12, 0.13],
                       "best_epoch": 3},
    }
    report["bars"] = [
        {"name": "teacher / best(BPR, LightGCN) NDCG@10, all", "value": 1.36, "target": 1.05, "passed": True,
         "detail": "teacher 0.1650 vs 0.1210"},
        {"name": "student_w4 / popularity NDCG@10, new", "value": 1.12, "target": 1.5, "passed": False,
         "detail": "0.5000 vs 0.4460"},
    ]
    report["meta"] = {"dataset": "synthetic: 100 users, 50 items", "users evaluated (all / cold / new)": "100 / 20 / 10",
                      "protocol": "per-user temporal 80/10/10; cold = <=30 interactions; new = 10% users held out, "
                                  "5 context interactions", "config": {"seed": 0, "dim": 64}}
    layers = {f"Layer_rtl_{i}": {"finn_cycles": 10 * i + 1, "rtl_cycles": 10 * i + 1, "finn_lut": 100.0 * i,
                                 "yosys_lut": None, "finn_bram18": 2.0, "yosys_bram18": None, "finn_dsp": 4.0 * i,
                                 "yosys_dsp": None} for i in range(4)}
    report["design"] = {
        "board": "pynq-z2", "latency_us": 4.3, "queries_per_s": 694444.4, "estimate_source": "FINN estimate",
        "resources": {"used": {"LUT": 10246.0, "FF": None, "BRAM18": 165.0, "URAM": 0.0, "DSP": 320.0},
                      "available": {"LUT": 53200, "FF": 106400, "BRAM18": 280, "URAM": 0, "DSP": 220}},
        "bundle": "build/demo/bitstreams/student_w4_pynq-z2", "bitexact_queries": 1000, "bitexact_mismatches": 0,
        "measured": {"latency_us": 2.9, "queries_per_s": 694444.4, "resources": None, "queries": 1000,
                     "mismatches": 0, "source": "Verilator simulation"},
        "layers": layers,
        "bitexact": {"queries": 1000, "emulation_seconds": 0.25, "emulation_vs_finn": {"topk": 0, "scores": 0, "any": 0}},
    }
    return report


PROBE = """
<pre id="probe"></pre>
<script>
(function () {
  function box(el) {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
            text: el.innerText};
  }
  const out = {inner: [window.innerWidth, window.innerHeight],
               scroll_width: document.documentElement.scrollWidth,
               latency: box(document.getElementById("latency")),
               latency_fig: box(document.getElementById("latency").closest(".fig")),
               throughput: box(document.getElementById("throughput")),
               throughput_fig: box(document.getElementById("throughput").closest(".fig")),
               cpu: box(document.getElementById("cpu-qps") && document.getElementById("cpu-qps").closest(".fig")),
               accuracy: box(document.getElementById("accuracy")),
               definitions: box(document.getElementById("definitions")),
               failed: box(document.getElementById("failed")),
               summary: box(document.getElementById("summary")),
               design: box(document.getElementById("design")),
               resources: {}};
  document.querySelectorAll(".res").forEach(function (el) {
    out.resources[el.dataset.resource] = {row: box(el), fill: box(el.querySelector(".fill")),
                                          track: box(el.querySelector(".track")), src: box(el.querySelector(".src"))};
  });
  document.getElementById("probe").textContent = JSON.stringify(out);
})();
</script>
"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make test installs it: apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    return exe


def _render(tmp_path, page) -> dict:
    """Load ``page`` (report.html plus the probe) in headless Chromium; the probe's JSON."""
    probe_page = page.parent / "probe.html"
    probe_page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--window-size={WIDTH},{HEIGHT}",
           "--dump-dom", probe_page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match and match.group(1), f"no probe output; chromium said:\n{done.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def _on_first_screen(box: dict | None, what: str) -> None:
    assert box is not None, f"{what}: not on the page"
    assert box["width"] > 0 and box["height"] > 0, f"{what}: not visible {box}"
    assert box["top"] >= 0 and box["bottom"] <= HEIGHT, f"{what}: not within the first {HEIGHT} px: {box}"
    assert box["left"] >= 0 and box["right"] <= WIDTH, f"{what}: not within {WIDTH} px: {box}"


def test_first_screen_shows_design_and_accuracy(tmp_path):
    page = write_report(synthetic_report(), tmp_path / "out")
    got = _render(tmp_path, page)
    assert got["inner"][0] == WIDTH, got["inner"]
    assert got["scroll_width"] <= WIDTH, "the page scrolls sideways"

    # latency and throughput: measured in Verilator, labelled so; FINN's estimate beside
    for key in ("latency", "throughput", "latency_fig", "throughput_fig", "cpu"):
        _on_first_screen(got[key], key)
    assert "2.90 \u00b5s" in got["latency"]["text"]
    assert "Verilator simulation" in got["latency_fig"]["text"] and "FINN estimate 4.30" in got["latency_fig"]["text"]
    assert "694,444 queries/s" in got["throughput"]["text"]
    assert "Verilator simulation" in got["throughput_fig"]["text"]
    # the CPU baseline: 1000 queries in 0.25 s
    assert "4,000 queries/s" in got["cpu"]["text"] and "measured on this CPU" in got["cpu"]["text"]

    # one bar per resource against the board, each with its source; no Yosys here: FINN's estimate
    assert set(got["resources"]) == set(RESOURCES)
    for name, res in got["resources"].items():
        _on_first_screen(res["row"], f"resource bar {name}")
        _on_first_screen(res["src"], f"source label of {name}")
    for name in ("LUT", "BRAM18", "DSP"):
        assert got["resources"][name]["src"]["text"].strip() == "FINN estimate"
    assert "--synth" in got["resources"]["FF"]["src"]["text"]  # FINN estimates no FF: say how to measure
    lut = got["resources"]["LUT"]
    assert lut["fill"]["width"] == pytest.approx(lut["track"]["width"] * 10246 / 53200, abs=1.5)
    dsp = got["resources"]["DSP"]
    assert dsp["fill"]["width"] == pytest.approx(dsp["track"]["width"], abs=1)  # capped at the board
    assert "does not fit" in dsp["row"]["text"] and "does not fit" not in lut["row"]["text"]

    # the accuracy table with its definitions beside it, and the failed check
    _on_first_screen(got["accuracy"], "accuracy table")
    for model in ("popularity", "teacher", "student_w4"):
        assert model in got["accuracy"]["text"]
    assert "NDCG@10" in got["accuracy"]["text"] and "cold users" in got["accuracy"]["text"]
    _on_first_screen(got["definitions"], "definitions")
    assert got["definitions"]["left"] >= got["accuracy"]["right"] - 1, "definitions are not beside the table"
    assert got["definitions"]["right"] <= got["summary"]["right"], "the definitions overflow their box"
    assert got["design"]["right"] <= got["summary"]["left"], "the design box and the accuracy box overlap"
    assert "30 interactions" in got["definitions"]["text"] and "held out" in got["definitions"]["text"]
    _on_first_screen(got["failed"], "failed checks")
    assert "FAIL" in got["failed"]["text"] and "= 1.12x, bar \u2265 1.50x" in got["failed"]["text"]
