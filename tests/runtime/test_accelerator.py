"""fpgarec.runtime.accelerator.Accelerator on the committed demo bundle: backend choice,
recommend for known and new users equals sampler + emulation, bad queries raise."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.runtime import accelerator as acc_mod
from fpgarec.runtime.accelerator import Accelerator
from fpgarec.runtime.bundle import Bundle
from fpgarec.runtime.sampler import History, QueryError, UnknownUserError

DEMO = Path(__file__).resolve().parents[2] / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="module")
def history() -> History:
    rng = np.random.default_rng(0)
    return History.from_lists([rng.integers(0, 1682, rng.integers(1, 60)) for _ in range(80)], 1682)


@pytest.fixture(scope="module")
def acc(history):
    with Accelerator(DEMO, "emulation", history=history) as a:
        yield a


class Recorder:
    """A backend that records what it is given and returns the first ids of each row."""

    name = "recorder"

    def __init__(self, top_k=10):
        self.calls, self.closed, self.top_k = [], False, top_k

    def run(self, ids, seen=None):
        self.calls.append(np.array(ids))
        return np.tile(np.arange(self.top_k), (len(ids), 1))

    def close(self):
        self.closed = True


def test_recommend_equals_sampler_then_emulation(acc, history):
    from fpgarec.runtime.emulation import EmulationBackend

    emu = EmulationBackend(DEMO)
    users = np.arange(0, 80, 3)
    ctx = acc.sampler.users(users)
    want = emu.run(ctx)  # the design's default seen items: the context ids
    np.testing.assert_array_equal(acc.execute(ctx), want)
    # recommend sends each user's whole history as seen: the design drops it on chip
    assert acc.seen_on_chip
    seen = np.zeros((len(users), 1682), dtype=bool)
    for b, u in enumerate(users):
        seen[b, history.of(u)] = True
    want_rec = emu.run(ctx, seen=seen)
    assert not np.take_along_axis(seen, want_rec, axis=1).any()
    assert not np.array_equal(want_rec, want)  # the history beyond the context matters
    np.testing.assert_array_equal(acc.recommend_indices(users=users), want_rec)
    np.testing.assert_array_equal(acc.recommend_indices(users, k=3), want_rec[:, :3])
    lists = [history.of(u).tolist() for u in users]
    np.testing.assert_array_equal(acc.recommend_indices(items=lists, k=5), want_rec[:, :5])
    mixed = [int(u) if i % 2 else lists[i] for i, u in enumerate(users)]
    np.testing.assert_array_equal(acc.recommend_queries_indices(mixed), want_rec)
    assert acc.recommend_indices(users=[]).shape == (0, 10)
    assert acc.backend_name == "emulation" and (acc.k, acc.top_k, acc.n_items) == (20, 10, 1682)


def test_bad_queries_raise(acc):
    with pytest.raises(QueryError, match="out of range"):
        acc.recommend_indices(users=[0], k=11)
    with pytest.raises(QueryError):
        acc.recommend_indices(users=[0], k=0)
    with pytest.raises(QueryError, match="exactly one"):
        acc.recommend_indices()
    with pytest.raises(UnknownUserError):
        acc.recommend_indices(users=[80])
    with pytest.raises(QueryError, match="empty"):
        acc.recommend_indices(items=[[]])
    with pytest.raises(QueryError, match="shape"):
        acc.execute(np.zeros((2, 19), np.int64))
    with pytest.raises(QueryError, match="integers"):
        acc.execute(np.zeros((2, 20)))


def test_throughput_test(acc):
    res = acc.throughput_test(batch=64, seconds=0.05)
    assert res["backend"] == "emulation" and res["queries"] == 64 * res["batches"] and res["queries_per_s"] > 0


def test_backend_choice(monkeypatch, history):
    monkeypatch.setattr(acc_mod, "_pynq_module", lambda: None)
    with Accelerator(DEMO, "auto") as a:
        assert a.backend_name == "emulation"
    with pytest.raises(FpgarecError, match="pynq"):
        Accelerator(DEMO, "pynq")
    with pytest.raises(FpgarecError, match="expected one of"):
        Accelerator(DEMO, "gpu")
    with pytest.raises(FpgarecError, match="bad options"):
        Accelerator(DEMO, "emulation", no_such_option=1)

    fake = types.ModuleType("fpgarec.runtime.pynq_backend")
    fake.present = False
    fake.board_present = lambda: fake.present

    class PynqBackend(Recorder):
        name = "pynq"

        def __init__(self, bundle, **options):
            super().__init__()
            self.options = options

    fake.PynqBackend = PynqBackend
    monkeypatch.setattr(acc_mod, "_pynq_module", lambda: fake)
    assert Accelerator(DEMO, "auto").backend_name == "emulation"
    assert Accelerator(DEMO, "pynq", device="x").backend.options == {"device": "x"}
    fake.present = True  # a board, but the bundle has no bitstream: emulation
    assert Accelerator(DEMO, "auto").backend_name == "emulation"
    monkeypatch.setattr(Bundle, "bitstream_built", property(lambda self: True))
    a = Accelerator(DEMO, "auto", history=history)
    assert a.backend_name == "pynq" and acc_mod.board_present()
    a.close()
    assert a.backend.closed


def test_missing_pynq_module_means_no_board(monkeypatch):
    monkeypatch.setitem(sys.modules, "fpgarec.runtime.pynq_backend", None)  # import raises
    assert acc_mod._pynq_module() is None and not acc_mod.board_present()
    monkeypatch.delitem(sys.modules, "fpgarec.runtime.pynq_backend")

    def no_pynq(name):  # the module is there but its own imports fail off-board
        raise ModuleNotFoundError("No module named 'pynq'", name="pynq")

    monkeypatch.setattr(acc_mod.importlib, "import_module", no_pynq)
    assert acc_mod._pynq_module() is None and not acc_mod.board_present()
    with pytest.raises(FpgarecError, match="'pynq'"):
        Accelerator(DEMO, "pynq")


def test_null_padded_bundle_sends_null_ids(tmp_path, history):
    bundle = tmp_path / "null"
    shutil.copytree(DEMO, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["model"]["padding"] = {"scheme": "null", "null_id": 1682}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    rec = Recorder()
    a = Accelerator(bundle, rec, history=History.from_lists([[5, 6, 7]], 1682))
    np.testing.assert_array_equal(a.recommend_indices(users=[0], k=2), [[0, 1]])
    np.testing.assert_array_equal(rec.calls[0], [[5, 6, 7] + [1682] * 17])
    a.recommend_indices(items=[[9]])
    np.testing.assert_array_equal(rec.calls[1], [[9] + [1682] * 19])
    with pytest.raises(FpgarecError, match="expected one of"):
        Accelerator(bundle, object())


def test_first_unseen_keeps_order_and_pads():
    from fpgarec.runtime.accelerator import first_unseen

    row = np.array([9, 4, 7, 1, 3])
    assert first_unseen(row, np.array([4, 1]), 2).tolist() == [9, 7]
    assert first_unseen(row, np.array([9, 4, 7, 1]), 3).tolist() == [3]
    assert first_unseen(row, np.zeros(0, np.int64), 3).tolist() == [9, 4, 7]


def test_recommend_excluding_seen_items(small_bundle):
    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.sampler import History

    with Accelerator(small_bundle, "emulation") as probe:
        top = probe.recommend_indices(items=[[1, 2, 3]])[0]
    lists = [[1, 2, 3] + top[:4].tolist(), top.tolist() + list(range(100, 190))]  # user 1: a long history
    with Accelerator(small_bundle, "emulation", history=History.from_lists(lists, 200)) as acc:
        full = acc.recommend_indices(users=[0, 1])
        out = acc.recommend_indices(users=[0, 1], k=8, exclude_seen=True)
        for b, seen in enumerate(map(set, lists)):
            want = [i for i in full[b].tolist() if i not in seen][:8]
            assert out[b, :len(want)].tolist() == want and (out[b, len(want):] == -1).all()
            assert not seen & set(out[b].tolist())
        assert (out == -1).any()  # the design's top_k ran out of unseen ids somewhere: padded
        given = acc.recommend_indices(items=[top[:3].tolist()], k=3, exclude_seen=True)[0]
        assert not set(top[:3].tolist()) & set(given.tolist())


# ------------------------------------------------------------------ the data set's ids
@pytest.fixture(scope="module")
def token_acc():
    """The demo design behind a history whose ids are tokens (a RecBole-style data set)."""
    from fpgarec.runtime.ids import IdMap

    rng = np.random.default_rng(1)
    lists = [rng.integers(0, 1682, rng.integers(1, 40)) for _ in range(30)]
    lists[4] = np.zeros(0, np.int64)
    ids = IdMap([f"customer_{u}" for u in range(30)], [f"sku-{i:04d}" for i in range(1682)],
                [f"Title {i}" if i % 2 else "" for i in range(1682)])
    with Accelerator(DEMO, "emulation", history=History.from_lists(lists, 1682, ids=ids)) as a:
        yield a


def test_recommend_takes_and_returns_the_data_sets_ids(token_acc):
    acc = token_acc
    got = acc.recommend(users=["customer_3", "customer_0"], k=4)
    want = acc.recommend_indices(users=[3, 0], k=4)
    assert got == [[f"sku-{i:04d}" for i in row] for row in want.tolist()]
    got = acc.recommend(items=[["sku-0005", "sku-0017"]])
    want = acc.recommend_indices(items=[[5, 17]])
    assert got == [[f"sku-{i:04d}" for i in row] for row in want.tolist()]
    assert acc.recommend_queries(["customer_3", ["sku-0005", "sku-0017"]]) == [
        [f"sku-{i:04d}" for i in row] for row in acc.recommend_queries_indices([3, [5, 17]]).tolist()]
    assert acc.ids.title(acc.ids.item_index("sku-0003")) == "Title 3" and acc.ids.title(2) is None


@pytest.mark.parametrize(("call", "error", "text"), [
    (dict(users=["customer_99"]), UnknownUserError, "unknown user 'customer_99'"),
    (dict(users=["customer_4"]), UnknownUserError, "user 'customer_4' has no history"),
    (dict(users=[3]), QueryError, "strings: got int 3"),  # an internal index is not a user id
    (dict(items=[["sku-0005", "sku-9999"]]), QueryError, "unknown item 'sku-9999'"),
    (dict(items=[[5]]), QueryError, "strings: got int 5"),
    (dict(items=[[]]), QueryError, "empty"),
])
def test_unknown_or_internal_ids_are_refused_by_name(token_acc, call, error, text):
    with pytest.raises(error, match=text):
        token_acc.recommend(**call)


def test_history_file_carries_the_id_maps_and_old_files_load_with_internal_ids(tmp_path, caplog):
    from fpgarec.runtime.ids import IdMap

    ids = IdMap(["u1", "u2"], ["a", "b", "c"], ["A (1990)", "", "C"])
    path = History.from_lists([[0, 2], [1]], 3, ids=ids).save(tmp_path / "h.npz")
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == "fpgarec-history/2" and z["item_ids"].dtype.kind == "U"
    back = History.load(path).ids
    assert (back.users.tolist(), back.items.tolist(), back.titles.tolist()) == (
        ["u1", "u2"], ["a", "b", "c"], ["A (1990)", "", "C"])
    assert not back.internal and back.user_index("u2") == 1 and back.title(0) == "A (1990)"
    old = tmp_path / "old.npz"  # a fpgarec-history/1 file: no maps
    np.savez(old, format=np.array("fpgarec-history/1"), indptr=np.array([0, 2, 3]), items=np.array([0, 2, 1]),
             n_items=np.array(3))
    with caplog.at_level("WARNING"):
        h = History.load(old)
    assert h.ids.internal and "no id maps" in caplog.text
    assert h.ids.user_index(1) == h.ids.user_index("1") == 1 and h.ids.items.tolist() == ["0", "1", "2"]


@pytest.mark.parametrize(("arrays", "text"), [
    (dict(user_ids=np.array(["a", "b"])), "not \\['item_ids'\\]"),
    (dict(user_ids=np.array(["a"]), item_ids=np.array(["x", "y", "z"])), "id maps of 1 users"),
    (dict(user_ids=np.array(["a", "a"]), item_ids=np.array(["x", "y", "z"])), "duplicate user id 'a'"),
    (dict(user_ids=np.array([1, 2]), item_ids=np.array(["x", "y", "z"])), "user_ids must be strings"),
])
def test_malformed_id_maps_are_one_line_errors(tmp_path, arrays, text):
    path = tmp_path / "bad.npz"
    np.savez(path, format=np.array("fpgarec-history/2"), indptr=np.array([0, 2, 3]), items=np.array([0, 2, 1]),
             n_items=np.array(3), **arrays)
    with pytest.raises(FpgarecError, match=text):
        History.load(path)
