"""HTML tables of report values: no raw JSON, nested values become small nested tables or
comma-separated lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fpgarec.reporting.format import MISSING, esc, is_missing, label, num

#: nested tables deeper than this are cut (the full value is in report.json)
MAX_DEPTH = 3
#: a dict of scalars with more entries than this is shown in columns, not as a table
COMPACT = 6


def cell(value: Any, depth: int = 0) -> str:
    """One value as cell content: numbers readable, lists of scalars comma-separated, dicts and
    lists of dicts as nested tables."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, int, float)):
        return num(value)
    if isinstance(value, str):
        return esc(value)
    if depth >= MAX_DEPTH:
        return '<span class="note">(see report.json)</span>'
    if isinstance(value, Mapping):
        if len(value) > COMPACT and all(_scalar(v) for v in value.values()):
            return compact(value)
        return kv_table(value, depth + 1, cls="inner") if value else MISSING
    if isinstance(value, Sequence):
        items = list(value)
        if not items:
            return MISSING
        if all(isinstance(v, Mapping) for v in items):
            return "".join(kv_table(v, depth + 1, cls="inner") for v in items)
        return ", ".join(cell(v, depth + 1) for v in items)
    return esc(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value))


def compact(data: Mapping[str, Any]) -> str:
    """Many scalar settings as ``key value`` pairs in columns (a long config stays short)."""
    items = "".join(f'<div><span class="k">{label(k)}</span> {cell(v, MAX_DEPTH - 1)}</div>' for k, v in data.items())
    return f'<div class="compact">{items}</div>'


def kv_table(data: Mapping[str, Any], depth: int = 0, cls: str = "kv") -> str:
    """A two-column table (key, value)."""
    rows = [f"<tr><th>{label(k)}</th><td>{cell(v, depth)}</td></tr>" for k, v in data.items()]
    return f'<table class="{cls}">' + "".join(rows) + "</table>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "",
          numeric_from: int = 1, text_from: int = 10**6) -> str:
    """A table from already-formatted cells; columns ``numeric_from`` to ``text_from`` - 1 are
    right-aligned (numbers); the first column is a row heading."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f"<th>{row[0]}</th>"] + [
            f'<td class="num">{c}</td>' if numeric_from <= i < text_from else f"<td>{c}</td>"
            for i, c in enumerate(row[1:], start=1)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><tr>{head}</tr>" + "".join(body) + "</table>"


def grid_table(data: Mapping[str, Any], row_keys: Sequence[str], col_keys: Sequence[str],
               fmt=num, corner: str = "") -> str:
    """Rows ``row_keys`` of ``data``, columns ``col_keys`` of each row, formatted by ``fmt``."""
    rows = [[label(r)] + [fmt(data[r].get(c)) for c in col_keys]
            for r in row_keys if isinstance(data.get(r), Mapping)]
    return table([esc(corner)] + [label(c) for c in col_keys], rows)
