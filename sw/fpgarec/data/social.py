"""User-user (social) edges: a reader with a validation report, and a generator of a SYNTHETIC
social file derived from a data set's ``.user`` demographics (for tests and the demo).

File format (``*.net``, RecBole-style atomic file, as RecBole-GNN's social data sets)::

    # optional comment lines start with '#' (anywhere; RecBole itself has no comments)
    source_id:token<TAB>target_id:token
    <user token><TAB><user token>
    ...

* The first line that is neither blank nor a comment is the header; it must hold exactly the
  two fields ``source_id:token`` and ``target_id:token`` (either order).
* Every further non-blank, non-comment line holds exactly two tab-separated, non-empty user
  tokens: the ``user_id`` values of the data set's ``.inter`` / ``.user`` files.
* An edge is a symmetric tie (friendship): ``a b`` and ``b a`` are the same edge.

Bad input is handled in two ways:

* a malformed file (missing or wrong header, a line without exactly two fields, an empty
  field) stops with :class:`~fpgarec.errors.DataFormatError` naming the file and 1-based line;
* edges that parse but cannot be used are dropped, COUNTED and REPORTED (the run goes on):
  a token that is not a user of the data set (``unknown_user_lines``; distinct tokens in
  ``unknown_users``), a self-loop (``self_loops``), an edge already seen in either direction
  (``duplicates``). The report is a dict returned with the edges and logged once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgarec.data.atomic import read_atomic
from fpgarec.errors import DataFormatError

log = logging.getLogger(__name__)

SOURCE, TARGET = "source_id:token", "target_id:token"
HEADER = f"{SOURCE}\t{TARGET}"
#: how many example tokens/lines of each problem the report keeps.
_EXAMPLES = 5


@dataclass
class SocialEdges:
    """Validated user-user edges.

    Attributes:
        src, dst: user indices (into the data set's ``user_tokens``), one entry per distinct
            undirected edge, shape (E,) int64, ``src != dst``.
        report: the validation report (see the module docstring), JSON-serialisable.
    """

    src: np.ndarray
    dst: np.ndarray
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.src)

    def restricted_to(self, keep_user: np.ndarray) -> SocialEdges:
        """Only the edges whose two ends are kept. Shapes: keep_user (U,) bool; same report."""
        keep = keep_user[self.src] & keep_user[self.dst]
        return SocialEdges(self.src[keep], self.dst[keep], self.report)


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line.rstrip("\r") for line in text.split("\n")]


def _skip(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _header(path: Path, lines: list[str]) -> tuple[int, bool]:
    """(1-based line of the header, whether it names the target first); a bad header raises."""
    header_at = next((n for n, line in enumerate(lines, start=1) if not _skip(line)), None)
    if header_at is None:
        raise DataFormatError(path, f"no header line; expected {HEADER!r}", 1)
    fields = [f.strip() for f in lines[header_at - 1].split("\t")]
    if sorted(fields) != sorted([SOURCE, TARGET]):
        raise DataFormatError(
            path, f"header must be {HEADER!r} (a RecBole .net file), found {fields}", header_at
        )
    return header_at, fields[0] == TARGET


def _report(path: Path, counts: dict, n_edges: int, unknown: dict, examples: dict) -> dict:
    """The validation report of :func:`read_social`, logged once (a warning if lines were dropped)."""
    report = {
        "file": str(path),
        "lines": counts["lines"],
        "edges": n_edges,
        "unknown_user_lines": counts["unknown_user_lines"],
        "unknown_users": len(unknown),
        "self_loops": counts["self_loops"],
        "duplicates": counts["duplicates"],
        "examples": {
            "unknown_user_tokens": sorted(unknown)[:_EXAMPLES],
            **{f"{k}_lines": v for k, v in examples.items()},
        },
    }
    dropped = counts["unknown_user_lines"] + counts["self_loops"] + counts["duplicates"]
    (log.warning if dropped else log.info)(
        "social file %s: %d edge lines, %d edges kept; dropped %d with unknown users (%d distinct "
        "tokens, e.g. %s), %d self-loops, %d duplicates",
        path,
        counts["lines"],
        n_edges,
        counts["unknown_user_lines"],
        len(unknown),
        report["examples"]["unknown_user_tokens"],
        counts["self_loops"],
        counts["duplicates"],
    )
    return report


def read_social(path: Path | str, user_tokens: list[str]) -> SocialEdges:
    """Read and validate a ``*.net`` social file against the data set's users.

    Args:
        path: the file.
        user_tokens: the data set's user index -> token list (``InteractionData.user_tokens``).

    Returns:
        The usable edges and the report ``{"file", "lines", "edges", "unknown_user_lines",
        "unknown_users", "self_loops", "duplicates", "examples"}`` (``lines`` counts edge lines,
        ``edges`` the edges kept).

    Raises:
        DataFormatError: file missing, header missing or wrong, a line that does not hold
            exactly two non-empty tab-separated fields (file:line in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "social file not found")
    lines = _lines(path)
    vocab = {t: i for i, t in enumerate(user_tokens)}
    header_at, swap = _header(path, lines)
    src, dst = [], []
    seen: set[tuple[int, int]] = set()
    unknown: dict[str, int] = defaultdict(int)
    examples: dict[str, list[int]] = {"unknown_user": [], "self_loop": [], "duplicate": []}
    counts = {"lines": 0, "unknown_user_lines": 0, "self_loops": 0, "duplicates": 0}

    def note(kind: str, counter: str, lineno: int) -> None:
        counts[counter] += 1
        if len(examples[kind]) < _EXAMPLES:
            examples[kind].append(lineno)

    for lineno in range(header_at + 1, len(lines) + 1):
        line = lines[lineno - 1]
        if _skip(line):
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(
                path, f"expected 2 tab-separated fields, found {len(parts)}", lineno
            )
        a, b = (p.strip() for p in (parts[::-1] if swap else parts))
        if not a or not b:
            raise DataFormatError(path, "empty user token", lineno)
        counts["lines"] += 1
        ia, ib = vocab.get(a), vocab.get(b)
        if ia is None or ib is None:
            for tok, i in ((a, ia), (b, ib)):
                if i is None:
                    unknown[tok] += 1
            note("unknown_user", "unknown_user_lines", lineno)
            continue
        if ia == ib:
            note("self_loop", "self_loops", lineno)
            continue
        key = (min(ia, ib), max(ia, ib))
        if key in seen:
            note("duplicate", "duplicates", lineno)
            continue
        seen.add(key)
        src.append(ia)
        dst.append(ib)
    report = _report(path, counts, len(src), unknown, examples)
    return SocialEdges(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), report)


def generate_social(
    user_file: Path | str, out: Path | str, zip_digits: int = 1, max_degree: int = 10, seed: int = 0
) -> dict:
    """Write a SYNTHETIC social file derived from demographics; it is not a real network.

    GENERATED / DERIVED data: users are linked when they share their ``occupation`` and the
    first ``zip_digits`` digits of ``zip_code`` (columns of MovieLens' ``.user`` file), a
    homophily assumption, nothing observed. Only signup-time attributes are used (no ratings),
    so the file leaks nothing from any evaluation split. Inside a group of n users sorted by
    token and shuffled with ``seed``, user j is linked to users j+1 .. j+m (cyclically),
    m = min(n - 1, max_degree // 2), so the degree is at most ``max_degree`` (a ring lattice;
    a full clique when n - 1 <= max_degree // 2 * 2).

    The output starts with a comment line saying it is generated and from what. Nothing
    generated belongs in the repository; write it under ``build/`` or a temporary folder.

    Returns:
        ``{"file", "users", "groups", "edges", "rule"}``.

    Raises:
        DataFormatError: the user file is missing or lacks ``user_id``, ``occupation`` or
            ``zip_code``.
    """
    user_file, out = Path(user_file), Path(out)
    table = read_atomic(user_file)
    table.require("user_id", "occupation", "zip_code")
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tok, occ, zc in zip(
        table.columns["user_id"],
        table.columns["occupation"],
        table.columns["zip_code"],
        strict=True,
    ):
        groups[(occ, zc[:zip_digits])].append(tok)
    rng = np.random.default_rng(seed)
    edges: list[tuple[str, str]] = []
    for key in sorted(groups):
        members = sorted(groups[key])
        n = len(members)
        if n < 2:
            continue
        order = [members[i] for i in rng.permutation(n)]
        m = min(n - 1, max(1, max_degree // 2))
        pairs = set()
        for j in range(n):
            for step in range(1, m + 1):
                a, b = order[j], order[(j + step) % n]
                pairs.add((min(a, b), max(a, b)))
        edges.extend(sorted(pairs))
    rule = f"same occupation and same first {zip_digits} zip-code digit(s), degree <= {max_degree}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        f.write(
            f"# GENERATED by fpgarec.data.social.generate_social (seed {seed}): DERIVED from "
            f"{user_file.name} demographics ({rule}); synthetic, not a real social network.\n"
        )
        f.write(HEADER + "\n")
        for a, b in edges:
            f.write(f"{a}\t{b}\n")
    stats = {
        "file": str(out),
        "users": len(table),
        "groups": len(groups),
        "edges": len(edges),
        "rule": rule,
    }
    log.info(
        "generated synthetic social file %s: %d edges among %d users", out, len(edges), len(table)
    )
    return stats
