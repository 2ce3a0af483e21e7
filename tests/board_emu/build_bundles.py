"""Build the bundles the board-emulation tests need beyond the committed one, in the main
environment (FINN, Brevitas and torch are not in ``.venv-pynq``)::

    .venv/bin/python tests/board_emu/build_bundles.py build/board_emu

writes ``build/board_emu/attention_weights``: the small attention design of
``tests/small_design.py`` (200 items, K=4, 4 bit) built as the demo builds its attention
design, with ``exclude_seen`` and ``emit_weights``: two input DMAs (``idma0`` meta words,
``idma1`` the seen bitmap) and two output DMAs (``odma0`` top-k, ``odma1`` each query's
attention weights). ``make test`` and
``make test-board-emu`` run this before the ``.venv-pynq`` tests; the bundle is rebuilt each
time (about 20 s), so it always follows today's compile flow.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
#: the folder under the output root that conftest.py reads
WEIGHTS_BUNDLE = "attention_weights"


def main(out_root: Path) -> Path:
    sys.path.insert(0, str(TESTS))
    from small_design import build_attention_weights_design, make_attention_student

    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        tmp = Path(tmp)
        _, student = make_attention_student(tmp)
        built = Path(build_attention_weights_design(student, tmp, design=WEIGHTS_BUNDLE, exclude_seen=True))
        target = out_root / WEIGHTS_BUNDLE
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(built), target)
    logging.getLogger(__name__).info("board-emulation bundle written: %s", target)
    return target


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) != 2:
        sys.exit("usage: build_bundles.py OUT_FOLDER")
    main(Path(sys.argv[1]))
