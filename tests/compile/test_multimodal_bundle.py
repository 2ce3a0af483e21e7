"""A multimodal design through the unchanged compile flow: aligned text + image + audio + video
item vectors (from GENERATED synthetic media) are the item content ``prep.content`` in place of
the MiniLM table, the teacher projects them, the 4-bit student's text table starts from that
projection, and the bundle's CPU emulation is bit-exact with FINN's execution and with
Brevitas, as for text only.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_multimodal_bundle_is_bitexact(tmp_path, text_cache):
    import torch

    from fpgarec.compile.flow import build
    from fpgarec.compile.verify import compare
    from fpgarec.data.dataset import load_interactions, subsample_users
    from fpgarec.data.prepared import Prepared
    from fpgarec.data.split import new_user_split, temporal_split
    from fpgarec.encoders.generated_media import generate_media
    from fpgarec.encoders.multimodal import MultimodalConfig, multimodal_item_vectors
    from fpgarec.encoders.text import encode_texts
    from fpgarec.runtime.bundle import load_bundle
    from fpgarec.train.checkpoint import save_student
    from fpgarec.train.recipes import StudentSettings, TrainSettings, train_student, train_teacher
    from small_design import small_build_config

    data = subsample_users(load_interactions(), 8, seed=0)
    text = encode_texts(data.item_text, text_cache / "text", show_progress=False)
    media = tmp_path / "media"
    generate_media(data.item_tokens, data.item_text, media, n_items=40, seed=0, n_videos=2)
    (media / "7777777.png").write_bytes(b"not an image, and no such item")  # skipped, run goes on
    cfg = MultimodalConfig(epochs=20)
    vectors, report = multimodal_item_vectors(data, text, media, tmp_path / "cache", cfg, progress=False)
    assert vectors.shape == (data.n_items, cfg.dim)
    assert report["modalities"]["image"] > 20 and report["modalities"]["audio"] > 20
    assert report["modalities"]["video"] == 2 and report["files"]["skipped"] == 1

    # the multimodal vectors take the place of the MiniLM table as item content: no other change
    prep = Prepared(data, temporal_split(data), new_user_split(data, seed=0), text, vectors)
    settings = TrainSettings(dim=16, k=4, max_epochs=2, progress=False)
    teacher, _ = train_teacher(prep, prep.standard, settings)
    assert torch.equal(teacher.text, torch.from_numpy(vectors))
    assert teacher.projected_text().shape == (data.n_items, 16)
    student, _ = train_student(prep, prep.standard, settings, StudentSettings(bits=4, n_recent=None), teacher)
    student.eval()
    save_student(student, tmp_path / "models" / "student_w4")

    bundle = build(tmp_path / "models" / "student_w4.safetensors",
                   small_build_config(tmp_path, design="multimodal", target_qps=2e5, target_latency_us=None))
    assert load_bundle(bundle).manifest["model"]["n_items"] == data.n_items
    res = compare(bundle, student, n_queries=2000, finn_queries=80, seed=2)
    assert res["emulation_vs_finn"] == {"topk": 0, "scores": 0, "any": 0}
    assert res["emulation_vs_brevitas"] == {"topk": 0, "scores": 0, "any": 0}
