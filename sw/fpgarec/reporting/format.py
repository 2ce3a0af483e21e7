"""Numbers and values as an engineer reads them: thousands separators, integers as integers,
ratios as ``1.41x``, shares as ``19 %``, missing values as an en dash; and the JSON-safe copy
of a report.

Every function here returns text that is already HTML-escaped (``esc`` for other strings).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

#: the metric columns of the full results table, in order.
METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
#: the user groups of the results tables, in order.
GROUPS = ("all", "cold", "new")
#: shown for a missing value (None or NaN).
MISSING = "\u2013"


def esc(value: Any) -> str:
    """``str(value)``, HTML-escaped."""
    return html.escape(str(value))


def is_missing(value: Any) -> bool:
    """True for None and for float NaN."""
    if value is None:
        return True
    try:
        return isinstance(value, (int, float)) and math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def as_float(value: Any) -> float | None:
    """A plain float, or None where the value is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def num(value: Any, digits: int | None = None) -> str:
    """A number for people: integral values as integers with thousands separators
    (``138,002``), others with ``digits`` decimals (default: 4 below 10, 1 below 1000, else 0).
    Missing -> en dash; booleans -> yes/no; other values escaped."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    f = as_float(value)
    if f is None:
        return esc(value)
    if math.isinf(f):
        return "\u221e" if f > 0 else "-\u221e"
    if digits is None:
        if f == int(f) and abs(f) < 1e15:
            return f"{int(f):,}"
        if 0 < abs(f) < 1e-3:
            return f"{f:.2g}"
        digits = 4 if abs(f) < 10 else 1 if abs(f) < 1000 else 0
        text = f"{f:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{f:,.{digits}f}"


def metric(value: Any) -> str:
    """A ranking metric (NDCG, recall, AUC): always 4 decimals."""
    return num(value, 4)


def ratio(value: Any, digits: int = 2) -> str:
    """A ratio as ``1.41x``."""
    f = as_float(value)
    return MISSING if f is None else f"{f:,.{digits}f}x"


def percent(value: Any, digits: int = 0, signed: bool = False) -> str:
    """A share (0.19) as ``19 %``; ``signed`` writes ``+14.7 %``."""
    f = as_float(value)
    if f is None:
        return MISSING
    sign = "+" if signed and f >= 0 else ""
    return f"{sign}{100 * f:.{digits}f}\u00a0%"


def seconds(value: Any) -> str:
    """A duration: ``0.8 ms``, ``1.10 s``, ``4 min 14 s``."""
    f = as_float(value)
    if f is None:
        return MISSING
    if f < 1e-3:
        return f"{1e6 * f:.1f}\u00a0\u00b5s"
    if f < 1:
        return f"{1000 * f:.1f}\u00a0ms"
    if f < 100:
        return f"{f:.2f}\u00a0s"
    minutes, rest = divmod(int(round(f)), 60)
    return f"{minutes}\u00a0min {rest}\u00a0s"


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(allow_nan=False)`` accepts.

    Float NaN and +-inf become None, numpy scalars/arrays become Python numbers/lists, tuples
    and sets become lists, paths and other unknown objects become their ``str``.
    """
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return None if (math.isnan(obj) or math.isinf(obj)) else obj
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return json_safe(tolist())
    return str(obj)


def model_names(report: Mapping[str, Any]) -> list[str]:
    """Names of the models in ``report``: top-level keys whose value is a dict with ``"all"``."""
    return [k for k, v in report.items() if isinstance(v, Mapping) and "all" in v]


def get_metric(report: Mapping[str, Any], model: str, group: str, name: str) -> float | None:
    """``report[model][group][name]`` as a float, None where absent."""
    block = report.get(model, {}).get(group)
    if not isinstance(block, Mapping):
        return None
    return as_float(block.get(name))


def label(key: Any) -> str:
    """A JSON key as a heading: ``train_seconds`` -> ``train seconds``, escaped."""
    return esc(str(key).replace("_", " "))
