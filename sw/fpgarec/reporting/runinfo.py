"""When, from which commit, by which command and on which machine a report was written.

:func:`stamp` adds what ``report["meta"]`` lacks of ``written_at`` (UTC, ISO 8601), ``commit``
(``git rev-parse HEAD`` of the source tree, with ``+ uncommitted changes`` when the tree is
dirty; absent outside a git checkout), ``command`` (this process's command line) and
``machine`` (platform, CPU model, CPU count). The driver may set any of them itself.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fpgarec.reporting.format import esc, seconds
from fpgarec.reporting.tables import kv_table

_SOURCE = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit() -> str | None:
    """The source tree's commit, ``+ uncommitted changes`` when its tracked files differ."""
    head = _git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + (" + uncommitted changes" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "cpu": _cpu_model(), "cpus": os.cpu_count()}


def stamp(report: Mapping[str, Any]) -> dict:
    """A shallow copy of ``report`` whose ``meta`` has the fields above (existing ones kept)."""
    out = dict(report)
    meta = dict(report.get("meta") or {}) if isinstance(report.get("meta"), Mapping) else {}
    meta.setdefault("written_at", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if "commit" not in meta:
        c = commit()
        if c:
            meta["commit"] = c
    meta.setdefault("command", shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "")
    meta.setdefault("machine", machine())
    out["meta"] = meta
    return out


def header_line(meta: Mapping[str, Any]) -> str:
    """One line under the title: date, commit, dataset."""
    bits = [f'<span id="written">{esc(meta.get("written_at", "date unknown"))}</span>']
    if meta.get("commit"):
        bits.append(f'commit <code>{esc(str(meta["commit"])[:12])}{"+" if "uncommitted" in str(meta["commit"]) else ""}</code>')
    m = meta.get("machine")
    if isinstance(m, Mapping) and m.get("cpu"):
        bits.append(f"on {esc(m['cpu'])} \u00d7 {esc(m.get('cpus', '?'))} CPUs")
    if meta.get("dataset"):
        bits.append(esc(meta["dataset"]))
    if meta.get("total_seconds") is not None:
        bits.append(f"run took {seconds(meta['total_seconds'])}")
    return '<p class="sub">' + " \u00b7 ".join(bits) + "</p>"


#: shown first in the run information table, in this order
FIRST = ("written_at", "commit", "command", "machine", "python", "torch", "dataset", "protocol",
         "users evaluated (all / cold / new)", "training", "total_seconds")


def run_info(meta: Mapping[str, Any]) -> str:
    """Every ``meta`` value as a readable table (nested ones as nested tables)."""
    ordered = {k: meta[k] for k in FIRST if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    if "total_seconds" in ordered:
        ordered["total_seconds"] = seconds(ordered["total_seconds"])
    return kv_table(ordered)
