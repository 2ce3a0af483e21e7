"""End to end: the quick demo on a seeded subsample, through the console script."""

from __future__ import annotations

import json
import subprocess

import pytest

from fpgarec.train.evaluate import METRIC_NAMES

MODELS = ("popularity", "bpr", "lightgcn", "teacher", "student_w8", "student_w4", "sequence", "hetero", "gru4rec",
          "sasrec")


@pytest.mark.slow
def test_quick_demo_writes_a_complete_report(tmp_path, venv_bin, text_cache):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [str(venv_bin / "fpgarec"), "demo", "--quick", "--no-progress", "--out", str(out), "--cache", str(text_cache)],
        capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    for name in MODELS:
        for group in ("all", "cold", "new"):
            for metric in METRIC_NAMES:
                value = report[name][group][metric]
                assert value is not None and 0.0 <= value <= 1.0, (name, group, metric, value)
        assert report[name]["train_seconds"] >= 0
        ctr = report[name]["ctr"]
        assert 0.5 < ctr["auc"] <= 1.0 and 0.0 < ctr["logloss"] < 0.75, (name, ctr)
    # trained models beat random ranking by a wide margin (random NDCG@10 is about 10/n_items)
    assert report["teacher"]["all"]["ndcg@10"] > 0.05
    assert report["student_w4"]["all"]["ndcg@10"] > 0.05
    assert (out / "report.html").read_text().count("student_w4") >= 1
    assert (out / "plots" / "metrics.png").stat().st_size > 1000
    assert (out / "models" / "student_w4.safetensors").exists()
    assert {b["name"] for b in report["bars"]}
    # issue 6: distillation and fine-tuning figures; text only without --media
    for side in ("with", "without"):
        assert set(report["distillation"][side]) == {"all", "cold", "new"}
    for mode in ("frozen", "lora", "full"):
        entry = report["lora"][mode]
        assert entry["train_seconds"] > 0 and entry["peak_mb"] > 0 and 0 < entry["ndcg@10"] <= 1
    assert report["lora"]["lora"]["trainable_params"] < report["lora"]["full"]["trainable_params"]
    assert report["multimodal"]["status"].startswith("text only")
    # issue 7: models' notes and one explanation page per demo, every recommendation explained
    assert "host" in report["sequence"]["about"]["attention"]
    ex = report["explanations"]
    assert ex["explained"] == ex["recommendations"] == 10 * ex["users"]
    assert (out / ex["example"]).read_text().count("<tr>") > 10
    assert ex["example"] in (out / "report.html").read_text()
    # issue 13: the design drops seen items on chip, its own output is scored, and the whole
    # design ran in Verilator bit for bit against the emulation
    d = report["design"]
    assert d["delivered"]["all"]["seen_on_chip"] and d["delivered"]["all"]["share_k_unseen"] >= 0.99
    assert d["delivered"]["all"]["ndcg@10"] > 0.05
    assert d["measured"]["mismatches"] == 0 and d["measured"]["queries"] == 300
    # issue 16: FINN's estimate of the students the demo does not build (accuracy against resources)
    for name in ("student_w8", "student_w4_attention"):
        res = report[name]["resources"]
        assert res["source"].startswith("FINN estimate") and res["LUT"] > 0, (name, res)
    # issue 15: the few-shot references of the new-user bar and the sequential baselines' bars
    assert 0 < report["ease"]["new"]["ndcg@10"] <= 1 and 0 < report["fewshot_ridge"]["new"]["ndcg@10"] <= 1
    names = [b["name"] for b in report["bars"]]
    assert any(n.startswith("student_w4 / best few-shot method") for n in names)
    assert sum(n.startswith("student_w4 / best sequential recommender") for n in names) == 2
