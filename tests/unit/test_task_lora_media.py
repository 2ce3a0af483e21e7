"""With --media the demo's item content is the aligned multimodal table (I, 256); the LoRA
comparison fine-tunes MiniLM and must get MiniLM's own (I, 384) vectors (a quick --media demo
stopped on this: "prep.text must be (1345, 384), got (1345, 256)")."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fpgarec import tasks
from fpgarec.demo import Prepared
from fpgarec.encoders.text import encode_texts


def test_lora_task_gets_minilm_vectors_under_media(tmp_path, monkeypatch):
    import fpgarec.lm.finetune as finetune
    import fpgarec.lm.plot as plot

    texts = ["movie title: A; release year: 1990", "movie title: B; release year: 1991", "movie title: C"]
    data = SimpleNamespace(item_text=texts)
    aligned = np.ones((3, 256), np.float32)
    seen = {}

    def fake_compare(prep, cfg, progress=False):  # the heavy fine-tuning itself runs in the demo
        seen["text"] = prep.text
        return {m: {"train_seconds": 1.0} for m in cfg.modes}

    monkeypatch.setattr(finetune, "compare_finetuning", fake_compare)
    monkeypatch.setattr(plot, "plot_finetuning", lambda res, out, name: out / name)
    cfg = SimpleNamespace(dim=8, k=4, horizon=1, seed=0, out=tmp_path, cache=tmp_path / "cache")
    prep = Prepared(data, None, None, aligned, multimodal={"dim": 256})
    tasks.task_lora(None, cfg, prep)
    want = encode_texts(texts, tmp_path / "cache" / "text", show_progress=False)
    assert seen["text"].shape == (3, 384) and np.array_equal(seen["text"], want)
    tasks.task_lora(None, cfg, Prepared(data, None, None, want))  # text only: passed through as is
    assert seen["text"] is want
