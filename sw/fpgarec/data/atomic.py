"""Reader for RecBole atomic files (``.inter .item .user .kg .link``).

An atomic file is tab separated text. Its first line is a typed header, one ``name:type`` per
column, with type one of ``token``, ``token_seq``, ``float``, ``float_seq``. Every further line
has exactly as many fields as the header. ``*_seq`` fields are space separated lists.

Text that is not valid UTF-8 (older MovieLens dumps are Latin-1) is decoded line by line with a
Latin-1 fallback, so no byte is lost and no line is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgarec.errors import DataFormatError

log = logging.getLogger(__name__)

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass
class AtomicTable:
    """One parsed atomic file.

    Attributes:
        path: the file it came from.
        types: column name -> RecBole type, in header order.
        columns: column name -> values. ``float`` columns are float64 arrays of shape (rows,),
            ``token`` columns are lists of str, ``*_seq`` columns lists of lists.
    """

    path: Path
    types: dict[str, str]
    columns: dict[str, object] = field(default_factory=dict)
    line_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        first = next(iter(self.columns.values()), [])
        return len(first)

    def require(self, *names: str) -> None:
        """Raise a DataFormatError naming the file if a column is missing."""
        missing = [n for n in names if n not in self.types]
        if missing:
            raise DataFormatError(
                self.path, f"missing column(s) {', '.join(missing)}; header has {list(self.types)}", 1
            )


def _decode_lines(raw: bytes, path: Path) -> list[str]:
    # only "\n" ends a line (str.splitlines would also split on U+2028, \x1c, ... inside fields)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return [line.rstrip("\r") for line in raw.decode("utf-8").split("\n")]
    except UnicodeDecodeError:
        pass
    lines, fallback = [], 0
    for chunk in raw.split(b"\n"):
        chunk = chunk.rstrip(b"\r")
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("latin-1"))
            fallback += 1
    log.warning("%s: %d line(s) are not UTF-8; decoded them as Latin-1", path, fallback)
    return lines


def _parse_header(line: str, path: Path) -> dict[str, str]:
    types: dict[str, str] = {}
    for col in line.split("\t"):
        name, sep, ftype = col.strip().rpartition(":")
        if not sep or not name:
            raise DataFormatError(path, f"header field {col!r} is not of the form name:type", 1)
        if ftype not in FIELD_TYPES:
            raise DataFormatError(
                path, f"column {name!r} has unknown type {ftype!r} (known: {', '.join(FIELD_TYPES)})", 1
            )
        if name in types:
            raise DataFormatError(path, f"column {name!r} appears twice in the header", 1)
        types[name] = ftype
    return types


def read_atomic(path: Path | str) -> AtomicTable:
    """Parse one atomic file.

    Raises:
        DataFormatError: the file is missing, empty, has a bad header, a line with the wrong
            number of fields, or a value that is not a number in a float column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    lines = _decode_lines(path.read_bytes(), path)
    if not lines or not lines[0].strip():
        raise DataFormatError(path, "file is empty (no header line)", 1)
    types = _parse_header(lines[0], path)
    names = list(types)
    n_cols = len(names)
    raw_cols: list[list[str]] = [[] for _ in names]
    linenos: list[int] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != n_cols:
            raise DataFormatError(path, f"expected {n_cols} tab-separated fields, found {len(fields)}", lineno)
        for col, value in zip(raw_cols, fields, strict=True):
            col.append(value)
        linenos.append(lineno)
    table = AtomicTable(path=path, types=types, line_numbers=np.asarray(linenos, dtype=np.int64))
    for name, values in zip(names, raw_cols, strict=True):
        table.columns[name] = _convert(values, types[name], name, path, table.line_numbers)
    return table


def _convert(
    values: list[str], ftype: str, name: str, path: Path, linenos: np.ndarray
) -> object:
    if ftype == "token":
        return [v.strip() for v in values]
    if ftype == "token_seq":
        return [[t for t in v.split(" ") if t] for v in values]  # RecBole: space separated
    if ftype == "float":
        try:
            return np.array([float(v) if v.strip() else np.nan for v in values], dtype=np.float64)
        except ValueError:
            pass
        for i, v in enumerate(values):  # find the culprit for the message
            try:
                float(v) if v.strip() else None
            except ValueError:
                raise DataFormatError(path, f"column {name!r}: {v!r} is not a number", int(linenos[i])) from None
    seqs = []
    for i, v in enumerate(values):
        try:
            seqs.append(np.array([float(x) for x in v.split()], dtype=np.float64))
        except ValueError:
            raise DataFormatError(path, f"column {name!r}: {v!r} is not a list of numbers", int(linenos[i])) from None
    return seqs
