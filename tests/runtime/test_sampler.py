"""The numpy-only host sampler picks the same K items as the training-side sampler
(fpgarec.data.sampler) in both padding schemes, reads history files without pickles and
refuses bad queries with a message."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.runtime.sampler import (
    History,
    HostSampler,
    Padding,
    QueryError,
    QueryTypeError,
    UnknownUserError,
)

N_ITEMS, K = 300, 20


def _history(seed: int, n_users: int = 400) -> History:
    rng = np.random.default_rng(seed)
    lens = np.where(rng.random(n_users) < 0.4, rng.integers(1, K + 1, n_users), rng.integers(K, 120, n_users))
    return History.from_lists([rng.integers(0, N_ITEMS, n) for n in lens], N_ITEMS)


def _reference(history: History, users, n_recent, null_id):
    from fpgarec.data.sampler import recent_items
    from fpgarec.data.split import UserSequences

    seqs = UserSequences(history.indptr, history.items)
    if null_id is None:
        return recent_items(seqs, users, K, n_recent)
    if "null_id" not in inspect.signature(recent_items).parameters:
        pytest.skip("fpgarec.data.sampler has no null padding yet")
    return recent_items(seqs, users, K, n_recent, null_id=null_id)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_recent", [None, 12, 0, 19, 20, 30])
@pytest.mark.parametrize("null_id", [None, N_ITEMS])
@pytest.mark.parametrize("cached", [True, False])
def test_known_users_equal_the_training_sampler(seed, n_recent, null_id, cached):
    history = _history(seed)
    padding = Padding("null", null_id) if null_id is not None else Padding()
    sampler = HostSampler(K, N_ITEMS, padding, n_recent, history, cache_entries=1 << 24 if cached else 0)
    users = np.random.default_rng(seed + 10).integers(0, history.n_users, 1000)
    np.testing.assert_array_equal(sampler.users(users), _reference(history, users, n_recent, null_id))


@pytest.mark.parametrize("n_recent", [None, 12])
@pytest.mark.parametrize("null_id", [None, N_ITEMS])
def test_item_lists_and_mixed_batches_equal_the_training_sampler(n_recent, null_id):
    history = _history(5)
    padding = Padding("null", null_id) if null_id is not None else Padding()
    sampler = HostSampler(K, N_ITEMS, padding, n_recent, history)
    users = np.arange(60)
    want = _reference(history, users, n_recent, null_id)
    lists = [history.of(u).tolist() for u in users]
    np.testing.assert_array_equal(sampler.items(lists), want)
    mixed = [int(u) if u % 3 else lists[u] for u in users]
    np.testing.assert_array_equal(sampler.contexts(mixed), want)


def test_null_padding_puts_real_items_first():
    sampler = HostSampler(5, 10, Padding("null", 10), None, History.from_lists([[3, 1], [1, 2, 3, 4, 5, 6]], 10))
    np.testing.assert_array_equal(sampler.users([0, 1]), [[3, 1, 10, 10, 10], [2, 3, 4, 5, 6]])
    cyclic = HostSampler(5, 10, Padding(), None, sampler.history)
    np.testing.assert_array_equal(cyclic.users([0]), [[3, 1, 3, 1, 3]])


def test_padding_from_manifest():
    assert Padding.from_manifest({"model": {"n_items": 10}}) == Padding()
    assert Padding.from_manifest({"model": {"n_items": 10, "padding": {"scheme": "cyclic"}}}) == Padding()
    assert Padding.from_manifest({"model": {"n_items": 10, "padding": {"scheme": "null", "null_id": 10}}}) == Padding("null", 10)
    for bad in ({"scheme": "zero"}, {"scheme": "null"}, {"scheme": "null", "null_id": 3}, "null"):
        with pytest.raises(FpgarecError, match="padding"):
            Padding.from_manifest({"model": {"n_items": 10, "padding": bad}})
    s = HostSampler.from_manifest({"model": {"k": 4, "n_items": 10, "n_recent": 2,
                                             "padding": {"scheme": "null", "null_id": 10}}})
    assert (s.k, s.n_items, s.n_recent, s.padding.null_id) == (4, 10, 2, 10)


def test_history_file_round_trip_and_refusals(tmp_path):
    h = _history(1, 30)
    path = h.save(tmp_path / "h.npz")
    back = History.load(path)
    np.testing.assert_array_equal(back.indptr, h.indptr)
    np.testing.assert_array_equal(back.items, h.items)
    assert back.n_items == N_ITEMS
    with pytest.raises(FpgarecError, match="not found"):
        History.load(tmp_path / "nope.npz")
    np.savez(tmp_path / "pickled.npz", indptr=np.array([0, 1]), items=np.array([object()]), n_items=np.array(3))
    with pytest.raises(FpgarecError, match="pickled.npz"):
        History.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "range.npz", indptr=np.array([0, 2]), items=np.array([1, 7]), n_items=np.array(5))
    with pytest.raises(FpgarecError, match=r"\[0, 5\)"):
        History.load(tmp_path / "range.npz")
    np.savez(tmp_path / "indptr.npz", indptr=np.array([0, 3, 2]), items=np.array([1, 2]), n_items=np.array(5))
    with pytest.raises(FpgarecError, match="indptr"):
        History.load(tmp_path / "indptr.npz")
    np.savez(tmp_path / "keys.npz", items=np.array([1]))
    with pytest.raises(FpgarecError, match="missing"):
        History.load(tmp_path / "keys.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(FpgarecError, match="text.npz"):
        History.load(tmp_path / "text.npz")
    with pytest.raises(FpgarecError, match="history has 300 items"):
        HostSampler(K, 50, history=h)


def test_bad_queries_are_refused_with_a_message():
    h = History.from_lists([[1, 2], [], [3]], 10)
    s = HostSampler(4, 10, history=h, max_items=5)
    assert s.check_user(2) == 2 and s.check_items([0, 9]) == [0, 9]
    with pytest.raises(UnknownUserError, match="unknown user 7"):
        s.check_user(7)
    with pytest.raises(UnknownUserError):
        s.check_user(1)  # no items
    with pytest.raises(UnknownUserError):
        s.users([0, 1])
    with pytest.raises(UnknownUserError):
        s.users([-1])
    for bad in ("3", 1.0, True, None):
        with pytest.raises(QueryTypeError):
            s.check_user(bad)
    for bad, err in (([], QueryError), ([1] * 6, QueryError), ([10], QueryError), ([-1], QueryError),
                     ([1.5], QueryTypeError), ([True], QueryTypeError), ("12", QueryTypeError),
                     (np.array([1.0]), QueryTypeError)):
        with pytest.raises(err):
            s.check_items(bad)
    with pytest.raises(UnknownUserError, match="no user history"):
        HostSampler(4, 10).check_user(0)


def test_runtime_sampler_and_accelerator_import_numpy_only():
    code = ("import sys, fpgarec.runtime.sampler, fpgarec.runtime.accelerator; "
            "heavy = [m for m in ('torch', 'finn', 'qonnx', 'brevitas', 'onnx', 'starlette', 'uvicorn', "
            "'fpgarec.data') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
