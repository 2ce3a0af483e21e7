"""Studies: experiments beside the demo, run as ``fpgarec study NAME [options]``.

Each study is one module of this package with a function ``main(argv: list[str]) -> int`` that
parses its own options (``fpgarec study NAME --help``), logs to stderr and prints its result as
one JSON line on stdout. :data:`STUDIES` names them; a study's module is imported only when it
runs (studies import heavy stacks: transformers, FINN, Yosys wrappers).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from fpgarec.errors import FpgarecError

#: study name -> "module:function" of its entry point.
STUDIES: dict[str, str] = {
    "ease": "fpgarec.experiment.studies.ease:main",
    "lm-finetuning": "fpgarec.experiment.studies.lm_finetuning:main",
    "multimodal": "fpgarec.experiment.studies.multimodal:main",
    "social": "fpgarec.experiment.studies.social:main",
    "aggregation-workaround": "fpgarec.experiment.studies.aggregation_workaround:main",
    "sequence-ablations": "fpgarec.experiment.studies.sequence_ablations:main",
    "hetero-comparison": "fpgarec.experiment.studies.hetero_comparison:main",
    "sequential-baselines": "fpgarec.experiment.studies.sequential_baselines:main",
    "attention-student": "fpgarec.experiment.studies.attention_student:main",
    "attention-bits": "fpgarec.experiment.studies.attention_bits:main",
}


class UnknownStudyError(FpgarecError, KeyError):
    """No study of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def known() -> str:
    """The study names, one line."""
    return ", ".join(sorted(STUDIES))


def entry_point(name: str) -> Callable[[list[str]], int]:
    """The ``main`` of study ``name`` (its module imported now)."""
    if name not in STUDIES:
        raise UnknownStudyError(f"unknown study {name!r}; known studies: {known()}")
    module, function = STUDIES[name].split(":")
    return getattr(importlib.import_module(module), function)


def run_study(name: str, argv: list[str]) -> int:
    """Run study ``name`` with its own command-line options ``argv``; its exit code."""
    return entry_point(name)(list(argv))
