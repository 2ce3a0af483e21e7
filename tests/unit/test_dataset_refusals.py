"""Data sets the loader and the splits must refuse up front, each with one line naming the file
(and line) and what is wrong: ids that differ only by surrounding whitespace, empty ids,
non-finite timestamps, and data too small to split (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgarec.config import DemoConfig
from fpgarec.data.dataset import load_interactions
from fpgarec.data.prepared import prepare
from fpgarec.errors import DataFormatError, FpgarecError
from fpgarec.runtime.ids import IdMap

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"


def write_dataset(folder: Path, rows, name: str = "d", item_file: str | None = None) -> Path:
    """A RecBole folder ``folder/<name>.inter`` of (user, item, timestamp) rows, written as
    given (no stripping), and optionally ``<name>.item``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.inter").write_text(HEADER + "".join(f"{u}\t{i}\t{t}\n" for u, i, t in rows))
    if item_file is not None:
        (folder / f"{name}.item").write_text(item_file)
    return folder


def refusal(folder: Path) -> str:
    with pytest.raises(DataFormatError) as info:
        load_interactions(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_user_ids_differing_only_by_whitespace_are_refused_naming_both(tmp_path):
    folder = write_dataset(tmp_path / "ws", [("4", "a", 1), ("5", "a", 2), ("4 ", "b", 3)])
    message = refusal(folder)
    assert "d.inter:4" in message and "'4'" in message and "'4 '" in message and "whitespace" in message


def test_item_ids_differing_only_by_whitespace_are_refused(tmp_path):
    folder = write_dataset(tmp_path / "wi", [("1", " b", 1), ("1", "b", 2)])
    message = refusal(folder)
    assert "d.inter:3" in message and "' b'" in message and "'b'" in message


def test_item_file_ids_differing_only_by_whitespace_are_refused(tmp_path):
    items = "item_id:token\ttitle:token\nb\tBeta\nb \tBeta again\n"
    folder = write_dataset(tmp_path / "wf", [("1", "b", 1)], item_file=items)
    message = refusal(folder)
    assert "d.item:3" in message and "'b'" in message and "'b '" in message


def test_consistent_surrounding_whitespace_still_loads(tmp_path):
    """One spelling per id (even with a trailing blank) is one id, as before."""
    folder = write_dataset(tmp_path / "ok", [("4 ", "a", 1), ("4 ", "b", 2), ("5", "a", 3)])
    data = load_interactions(folder)
    assert data.user_tokens == ["4", "5"]


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_or_blank_user_id_is_refused_naming_the_line(tmp_path, token):
    folder = write_dataset(tmp_path / "e", [("1", "a", 1), (token, "b", 2)])
    message = refusal(folder)
    assert "d.inter:3" in message and "empty user_id" in message


@pytest.mark.parametrize(("value", "words"), [("inf", "'inf' is not finite"), ("-inf", "'-inf' is not finite"),
                                              ("nan", "'nan' is not a number"), ("", "empty timestamp")])
def test_non_finite_timestamps_are_refused_naming_the_row(tmp_path, value, words):
    folder = write_dataset(tmp_path / "t", [("1", "a", 1), ("1", "b", 2), ("2", "a", value)])
    message = refusal(folder)
    assert "d.inter:4" in message and words in message


def test_id_maps_refuse_ids_that_differ_only_by_whitespace():
    with pytest.raises(FpgarecError, match="'4' and '4 ' differ only by surrounding whitespace"):
        IdMap(["4", "4 "], ["a"])
    with pytest.raises(FpgarecError, match="whitespace-only item id"):
        IdMap(["4"], ["a", "  "])
    assert IdMap(["4", "5"], ["a"]).user_index("4") == 0


def _prepare_refusal(folder: Path) -> str:
    """prepare() refuses the data before the item encoder (and any training) runs."""
    encoded = []

    def item_vectors(data):
        encoded.append(data.name)
        text = np.zeros((data.n_items, 4), np.float32)
        return text, text, None

    with pytest.raises(FpgarecError) as info:
        prepare(DemoConfig(data=folder), item_vectors)
    assert encoded == []
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    return message


def test_one_interaction_per_user_cannot_be_split(tmp_path):
    folder = write_dataset(tmp_path / "one", [(f"u{u}", f"i{u % 3}", u) for u in range(30)])
    message = _prepare_refusal(folder)
    assert "temporal 80/10/10 split" in message and "4 or more interactions" in message
    assert "longest history here has 1" in message


def test_a_one_user_data_set_cannot_be_split(tmp_path):
    folder = write_dataset(tmp_path / "solo", [("u", f"i{t}", t) for t in range(40)])
    message = _prepare_refusal(folder)
    assert "new-user split" in message and "at least 2 users" in message


def test_a_small_but_sufficient_data_set_is_prepared(tmp_path):
    rows = [(f"u{u}", f"i{(u + t) % 15}", t) for u in range(12) for t in range(8)]
    folder = write_dataset(tmp_path / "fine", rows)

    def item_vectors(data):
        text = np.zeros((data.n_items, 4), np.float32)
        return text, text, None

    prepared = prepare(DemoConfig(data=folder), item_vectors)
    assert prepared.standard.valid.items.size and prepared.new.test.items.size
