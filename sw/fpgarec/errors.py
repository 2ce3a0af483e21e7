"""User-facing errors: the CLI prints their message as one line and exits 2, no traceback."""

from __future__ import annotations

from pathlib import Path

from kernels._params import KernelParameterError


class FpgarecError(Exception):
    """An error caused by the user's input (data, bundle, options), not by a bug."""


#: what the commands report as one line (``except USER_ERRORS``): fpgarec's own errors and a
#: kernel parameter that cannot be built (the kernels never import fpgarec, so their error is
#: not a FpgarecError)
USER_ERRORS: tuple[type[Exception], ...] = (FpgarecError, KernelParameterError)


class DataFormatError(FpgarecError):
    """A data file is missing or malformed.

    The message always names the file and, where it applies, the 1-based line number.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")
