"""With --media the demo's item content is the aligned multimodal table (I, 256); the LoRA
comparison fine-tunes MiniLM and must get MiniLM's own (I, 384) vectors (a quick --media demo
stopped on this: "prep.text must be (1345, 384), got (1345, 256)"). Prepared data keeps the two
apart: ``text`` is always MiniLM's, ``content`` what the models read."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fpgarec.data.prepared import Prepared
from fpgarec.experiment import tasks


def test_lora_task_gets_minilm_vectors_under_media(tmp_path, monkeypatch):
    import fpgarec.lm.compare as finetune
    import fpgarec.lm.plot as plot

    data = SimpleNamespace(item_text=["A", "B", "C"])
    text = np.full((3, 384), 0.5, np.float32)
    aligned = np.ones((3, 256), np.float32)
    seen = {}

    def fake_compare(prep, cfg, progress=False):  # the heavy fine-tuning itself runs in the demo
        seen["text"] = prep.text
        return {m: {"train_seconds": 1.0} for m in cfg.modes}

    monkeypatch.setattr(finetune, "compare_finetuning", fake_compare)
    monkeypatch.setattr(plot, "plot_finetuning", lambda res, out, name: out / name)
    cfg = SimpleNamespace(dim=8, k=4, horizon=1, seed=0, out=tmp_path, cache=tmp_path / "cache")
    tasks.task_lora(None, cfg, Prepared(data, None, None, text, aligned, multimodal={"dim": 256}))
    assert seen["text"] is text
    prep = Prepared(data, None, None, text)  # text only: the content is the text
    assert prep.content is text
    tasks.task_lora(None, cfg, prep)
    assert seen["text"] is text
