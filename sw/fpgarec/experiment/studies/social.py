"""``fpgarec study social OUT [--user-file F]``: write a GENERATED social file.

The file (RecBole ``.net``) links users of the same occupation and zip-code region
(:func:`fpgarec.data.social.generate_social`): synthetic, derived from the demographics, not a
real social network. One JSON line of its statistics on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from fpgarec.data.dataset import default_data_dir
    from fpgarec.data.social import generate_social

    p = argparse.ArgumentParser(prog="fpgarec study social", description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="the .net file to write (e.g. build/social/ml-100k.net)")
    p.add_argument("--user-file", type=Path, default=None, help="default: ml-100k.user of recbole")
    p.add_argument("--zip-digits", type=int, default=1)
    p.add_argument("--max-degree", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    user_file = a.user_file or default_data_dir() / "ml-100k.user"
    stats = generate_social(user_file, a.out, a.zip_digits, a.max_degree, a.seed)
    sys.stdout.write(json.dumps(stats) + "\n")
    return 0
