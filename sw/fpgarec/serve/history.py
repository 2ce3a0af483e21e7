"""Where the service's known users come from: a history file or the data they were trained on.

A *history source* is one of

- a ``.npz`` history file (:meth:`fpgarec.runtime.sampler.History.save`; numpy only, no
  pickles: what a board image loads);
- a RecBole atomic-file data folder: its interactions are split as in training
  (:func:`fpgarec.data.split.temporal_split`) and each user's train + valid items, in time
  order, are the history (everything known before the test period, the input the models are
  evaluated with);
- ``ml-100k``: the demo's data (MovieLens-100k inside the installed recbole package).

The history carries each interaction's behaviour type (:mod:`fpgarec.data.behaviour`: view,
like, comment from ratings), which attention designs read, and the data set's own user and
item ids and its item titles
(:mod:`fpgarec.runtime.ids`); queries and answers use those, internal indices (0 .. U-1,
0 .. N-1, in the order :func:`fpgarec.data.dataset.load_interactions` assigns, the ids the
model was trained on) stay inside.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fpgarec.errors import FpgarecError
from fpgarec.runtime.ids import IdMap
from fpgarec.runtime.sampler import History

log = logging.getLogger(__name__)

#: the source name of the demo's data set
DEMO_DATA = "ml-100k"


def history_from_data(folder: Path | str | None = None) -> History:
    """Train + valid items of every user of a data folder (None: the demo's MovieLens-100k)."""
    from fpgarec.data.behaviour import BehaviourLog
    from fpgarec.data.dataset import item_titles, load_interactions
    from fpgarec.data.split import temporal_split

    data = load_interactions(folder)
    known = temporal_split(data).known_before_test()
    source = f"{data.folder} (train + valid)"
    ids = IdMap(data.user_tokens, data.item_tokens, item_titles(data), source=source)
    types, _ = BehaviourLog.from_data(data).aligned(known)  # behaviour types (from ratings), for attention designs
    history = History(known.indptr, known.items, data.n_items, source=source, ids=ids, types=types)
    log.info("history of %d users, %d interactions, %d items from %s", history.n_users, len(history.items),
             history.n_items, data.folder)
    return history


def load_history(source: str | Path | None) -> History | None:
    """The :class:`History` a source names (module docstring); None for None."""
    if source is None:
        return None
    text = str(source)
    if text == DEMO_DATA and not Path(text).exists():
        return history_from_data(None)
    path = Path(text)
    if path.is_dir():
        return history_from_data(path)
    if path.suffix == ".npz" or path.is_file():
        return History.load(path)
    raise FpgarecError(f"{path}: history source not found (a .npz history file, a data folder or {DEMO_DATA!r})")
