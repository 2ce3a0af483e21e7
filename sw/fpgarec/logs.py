"""The one logging set-up: the command line, the pool workers and child processes call it.

Records go to stderr (stdout carries the commands' JSON lines) as
``HH:MM:SS LEVEL [process] logger: message``; the process name only where it tells something
(pool workers, a fine-tuning mode's child process). Chatty third-party loggers are held at
WARNING. This module sits beside :mod:`fpgarec.errors` and :mod:`fpgarec.config` at the bottom
of the layers: it imports the standard library only.
"""

from __future__ import annotations

import logging
import sys

#: third-party loggers that report every download check, file and model load at INFO.
NOISY = ("sentence_transformers", "transformers", "httpx", "matplotlib", "PIL")


def log_format(process_name: bool = False) -> str:
    """The record format; with ``process_name`` the process (``[ForkProcess-1]``) is named."""
    where = " [%(processName)s]" if process_name else ""
    return f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s"


def setup_logging(verbose: bool = False, process_name: bool = False, level: int | str | None = None) -> None:
    """Configure the root logger of this process (a no-op where it already has handlers).

    Args:
        verbose: DEBUG instead of INFO.
        process_name: name the process in every record (workers and child processes).
        level: an explicit level (a child process gets its parent's), overriding ``verbose``.
    """
    if level is None:
        level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=log_format(process_name), datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def current_level() -> str:
    """The root logger's effective level as a name, to hand to a child process."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())
