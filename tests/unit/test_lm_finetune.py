"""fpgarec.lm: frozen / LoRA / full fine-tuning of the text encoder on a tiny user subsample.

Texts are truncated to 8 tokens and the "pre-trained vectors" are those of the truncated texts,
so every run takes about a second.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fpgarec.data.dataset import InteractionData, load_interactions, subsample_users
from fpgarec.data.split import Split, new_user_split, temporal_split
from fpgarec.lm import tower as tower_module
from fpgarec.lm.compare import compare_finetuning, finetune_bars
from fpgarec.lm.config import MODES, TEXT_DIM, FinetuneConfig, FinetuneConfigError
from fpgarec.lm.data import FinetuneData
from fpgarec.lm.isolation import load_payload, save_payload
from fpgarec.lm.loop import run_mode, train_mode
from fpgarec.lm.plot import plot_finetuning
from fpgarec.lm.tower import TextTower, build_tower, load_encoder, tokenize
from fpgarec.train.evaluate import evaluate_new

MAX_LEN = 8


@dataclass
class Prepared:  # the fields of a prepared run that compare_finetuning reads
    data: InteractionData
    standard: Split
    new: Split
    text: np.ndarray


def tiny_cfg(**kw) -> FinetuneConfig:
    base = dict(
        max_length=MAX_LEN,
        epochs=1,
        head_epochs=1,
        refit_epochs=1,
        item_batch=32,
        threads=1,
        isolate=False,
        progress=False,
        dim=16,
        k=5,
    )
    return FinetuneConfig(**(base | kw))


@pytest.fixture(scope="module", autouse=True)
def encoder_loaded_once():
    """Every build_tower() gets a deep copy of one loaded encoder (loading takes seconds)."""
    model = load_encoder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tower_module, "load_encoder", lambda: copy.deepcopy(model))
        yield


@pytest.fixture(scope="module")
def prep() -> Prepared:
    torch.set_num_threads(1)
    data = subsample_users(load_interactions(), 4, seed=0)
    ids, lengths = tokenize(data.item_text, MAX_LEN)
    text = TextTower(tower_module.load_encoder(), ids, lengths).encode_all().numpy()
    return Prepared(data, temporal_split(data), new_user_split(data, seed=0), text)


@pytest.fixture(scope="module")
def fdata(prep) -> FinetuneData:
    return FinetuneData.from_prepared(prep, MAX_LEN)


@pytest.fixture(scope="module")
def base_state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tower_module.load_encoder().state_dict().items()}


def base_weights(tower: TextTower) -> dict[str, torch.Tensor]:
    """The encoder's non-adapter weights under their plain BERT names."""
    return {
        k.replace("base_layer.", ""): v
        for k, v in tower.bert.state_dict().items()
        if "lora_" not in k
    }


def head_params(n_items: int, d: int) -> int:
    return TEXT_DIM * d + d * d + n_items + n_items * d  # P, W, item bias, id embedding


def bert_params() -> int:
    """all-MiniLM-L6-v2 without its pooler, counted by hand."""
    h, f, vocab, pos = 384, 1536, 30522, 512
    embeddings = (vocab + pos + 2) * h + 2 * h
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return embeddings + 6 * layer


@pytest.mark.parametrize(
    "kw, word",
    [
        ({"modes": ("lora", "bogus")}, "modes"),
        ({"modes": ()}, "modes"),
        ({"train_on": "standard"}, "train_on"),
        ({"lora_layers": 0}, "lora_layers"),
        ({"epochs": -1}, "epochs"),
        ({"full_lr": 0.0}, "full_lr"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"lora_targets": ()}, "lora_targets"),
        ({"n_negatives": 0}, "n_negatives"),
        ({"max_length": 2}, "max_length"),
    ],
)
def test_bad_config_is_a_clear_error(kw, word):
    with pytest.raises(FinetuneConfigError, match=word):
        FinetuneConfig(**kw)


def test_bad_lora_layout_is_a_clear_error(fdata):
    with pytest.raises(FinetuneConfigError, match="lora_layers must be <= 6"):
        build_tower(fdata, tiny_cfg(lora_layers=7), "lora")
    with pytest.raises(FinetuneConfigError, match="not linear layers"):
        build_tower(fdata, tiny_cfg(lora_targets=("query", "qkv")), "lora")
    with pytest.raises(FinetuneConfigError, match="mode"):
        train_mode(fdata, fdata.new.train, tiny_cfg(), "half")


def test_tokenizer_matches_the_models_own(prep):
    from transformers import AutoTokenizer

    from fpgarec.lm.tower import model_path

    ids, lengths = tokenize(prep.data.item_text[:50], 128)
    ref = AutoTokenizer.from_pretrained(str(model_path()))(prep.data.item_text[:50])["input_ids"]
    assert [list(r[:n]) for r, n in zip(ids, lengths, strict=True)] == ref


def test_prefix_cache_gives_the_same_vectors(fdata):
    bert = tower_module.load_encoder()
    items = torch.arange(0, fdata.n_items, 3)
    full = TextTower(bert, fdata.token_ids, fdata.lengths, start=0)
    top = TextTower(bert, fdata.token_ids, fdata.lengths, start=4)
    top.build_prefix_cache(batch=64)
    with torch.no_grad():
        torch.testing.assert_close(top(items), full(items), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        full.encode_all()[items], torch.from_numpy(fdata.text)[items], atol=1e-5, rtol=1e-5
    )


def test_lora_trains_only_the_adapters(fdata, base_state):
    cfg = tiny_cfg(lora_r=4, lora_layers=2, lora_targets=("query", "value"))
    run = train_mode(fdata, fdata.new.train, cfg, "lora")
    after = base_weights(run.tower)
    assert after.keys() == base_state.keys()
    for name, value in base_state.items():
        assert torch.equal(after[name], value), f"base weight {name} changed"
    lora_b = {k: v for k, v in run.tower.bert.named_parameters() if "lora_B" in k}
    assert len(lora_b) == 2 * 2  # 2 layers x (query, value)
    assert all(".layer.4." in k or ".layer.5." in k for k in lora_b)
    assert any(bool(v.abs().sum() > 0) for v in lora_b.values()), (
        "the adapters did not move from B = 0"
    )
    assert run.tower.start == 4 and run.tower.cache is not None
    hand = 2 * 2 * 4 * (384 + 384)  # layers x targets x r x (n_in + n_out)
    assert run.encoder_trainable_params == hand
    assert run.trainable_params == hand + head_params(fdata.n_items, cfg.dim)


def test_full_changes_the_base_weights(fdata, base_state):
    cfg = tiny_cfg(item_batch=128)  # 2 steps are enough to move every layer
    run = train_mode(fdata, fdata.new.train, cfg, "full")
    after = base_weights(run.tower)
    changed = [k for k, v in base_state.items() if not torch.equal(after[k], v)]
    assert any("layer.0." in k for k in changed) and any("layer.5." in k for k in changed)
    assert run.encoder_trainable_params == bert_params()
    assert run.trainable_params == bert_params() + head_params(fdata.n_items, cfg.dim)


def test_frozen_uses_the_pretrained_vectors_untouched(fdata):
    text_before = fdata.text.copy()
    cfg = tiny_cfg()
    run = train_mode(fdata, fdata.new.train, cfg, "frozen")
    assert run.tower is None and run.encoder_trainable_params == 0
    assert run.trainable_params == head_params(fdata.n_items, cfg.dim)
    assert np.array_equal(run.model.table.numpy(), text_before)
    assert np.array_equal(fdata.text, text_before)


def test_pure_text_tower_and_sampled_softmax(fdata):
    cfg = tiny_cfg(id_embedding=False, n_negatives=16)
    run = train_mode(fdata, fdata.new.train, cfg, "frozen")
    assert run.trainable_params == TEXT_DIM * cfg.dim + cfg.dim * cfg.dim + fdata.n_items
    assert all(np.isfinite(run.losses))


def test_model_scores_every_item_and_runs_through_evaluate(fdata):
    run = train_mode(fdata, fdata.new.train, tiny_cfg(), "frozen")
    users = np.arange(fdata.new.n_users)
    scores = run.model.score(users, fdata.new.context)  # most users have no context: biases only
    assert scores.shape == (len(users), fdata.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    metrics = evaluate_new(run.model, fdata.new)
    assert 0.0 <= metrics["ndcg@10"] <= 1.0


def test_compare_in_process_reports_every_field(prep):
    res = compare_finetuning(prep, tiny_cfg(modes=("frozen", "lora")), progress=False)
    for mode in ("frozen", "lora"):
        r = res[mode]
        for key in ("train_seconds", "peak_mb", "trainable_params", "ndcg@10", "encode_seconds"):
            assert np.isfinite(r[key])
        assert set(r) >= {"all", "cold", "new"} and r["ndcg@10"] == r["all"]["ndcg@10"]
    assert res["bars"] == []  # no full run, nothing to compare with
    assert res["meta"]["items"] == prep.data.n_items


def test_payload_round_trip(fdata, tmp_path):
    cfg = tiny_cfg(modes=("lora",), lora_targets=("query", "key"))
    save_payload(fdata, cfg, tmp_path)
    data, back = load_payload(tmp_path)
    assert back == cfg
    assert np.array_equal(data.token_ids, fdata.token_ids) and np.array_equal(data.text, fdata.text)
    for split in ("standard", "new"):
        a, b = getattr(data, split), getattr(fdata, split)
        assert np.array_equal(a.train.items, b.train.items) and np.array_equal(
            a.context.indptr, b.context.indptr
        )
        assert np.array_equal(a.new_users, b.new_users) and (a.n_users, a.n_items) == (
            b.n_users,
            b.n_items,
        )


def fake_results() -> dict:
    def row(t, mb, params, nd):
        groups = {
            g: {"ndcg@10": nd * f, "recall@10": 0.1, "ndcg@20": 0.1, "recall@20": 0.1}
            for g, f in (("all", 1.0), ("cold", 0.8), ("new", 3.0))
        }
        return groups | {
            "train_seconds": t,
            "peak_mb": mb,
            "trainable_params": params,
            "ndcg@10": nd,
        }

    return {
        "frozen": row(5.0, 400, 1e5, 0.130),
        "lora": row(20.0, 800, 1.3e5, 0.129),
        "full": row(60.0, 1100, 2.3e7, 0.131),
    }


def test_bars():
    bars = {b["name"]: b for b in finetune_bars(fake_results())}
    time_bar = bars["LoRA / full fine-tuning train_seconds"]
    assert time_bar["value"] == pytest.approx(20 / 60) and time_bar["passed"]
    nd = bars["LoRA / full fine-tuning NDCG@10, all"]
    assert nd["value"] == pytest.approx(0.129 / 0.131) and nd["passed"]
    res = fake_results()
    res["lora"]["train_seconds"] = 31.0
    assert not finetune_bars(res)[0]["passed"]


def test_plot_writes_a_png(tmp_path):
    path = plot_finetuning(fake_results(), tmp_path / "plots")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_isolated_processes_all_modes(prep):
    res = compare_finetuning(prep, tiny_cfg(isolate=True), progress=False)
    assert [m for m in MODES if m in res] == list(MODES)
    assert (
        res["full"]["trainable_params"]
        > res["lora"]["trainable_params"]
        > res["frozen"]["trainable_params"]
    )
    assert all(
        res[m]["peak_mb"] >= res[m]["loaded_peak_mb"] >= res[m]["setup_peak_mb"] > 50 for m in MODES
    )
    assert res["full"]["loaded_peak_mb"] > res["frozen"]["loaded_peak_mb"]  # transformers + weights
    assert len(res["bars"]) == 2


def test_run_mode_both_splits(fdata):
    res = run_mode(fdata, tiny_cfg(train_on="both"), "frozen")
    assert res["ndcg@10"] == res["all"]["ndcg@10"] and len(res["loss"]) == 3


def test_wrong_pretrained_vectors_are_refused(fdata):
    bad = FinetuneData(
        fdata.token_ids, fdata.lengths, np.roll(fdata.text, 1, axis=0), fdata.standard, fdata.new
    )
    with pytest.raises(FinetuneConfigError, match="prep.text"):
        train_mode(bad, bad.new.train, tiny_cfg(), "lora")
