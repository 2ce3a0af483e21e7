"""The demo's printed accuracy table and the report's accuracy chart read every model name."""

from __future__ import annotations

from fpgarec.cli import _table


def test_long_model_names_keep_the_columns_apart():
    res = {g: {"recall@10": 0.1, "ndcg@10": 0.2, "recall@20": 0.3, "ndcg@20": 0.4} for g in ("all", "cold")}
    rows = _table({"bpr": {**res, "train_seconds": 1.0}, "student_w4_attention": res,
                   "fewshot_ridge": {"all": None, "new": res["all"]}}).splitlines()
    starts = {row.index(group) for row in rows[1:] for group in ("all", "cold", "new") if f" {group} " in row}
    assert len(starts) == 1, rows  # every group column starts at one offset
    assert all(row.split()[0] in {"model", "bpr", "student_w4_attention", "fewshot_ridge"} for row in rows)


def test_the_accuracy_chart_reads_the_bits_of_every_student():
    """student_w4_attention is a 4-bit student on the accuracy-against-resources chart; names
    that are not quantized students are not."""
    from fpgarec.reporting.charts import _bits

    assert [_bits(n) for n in ("teacher", "student_w8", "student_w4_attention", "student_w2_attention")] == [32, 8, 4, 2]
    assert _bits("student_w4_nodistill") is None and _bits("sequence") is None
