"""Parameter checks shared by the kernels' golden models (numpy only, no torch/finn).

Every kernel refuses parameters it cannot build when it is created, naming the parameter.
"""

from __future__ import annotations

#: bit widths the RTL kernels are built and simulated for
MIN_BITS, MAX_BITS = 2, 24


class KernelParameterError(ValueError):
    """A kernel parameter that cannot be built; the message names the parameter.

    A user error: ``fpgarec`` (which may import kernels, never the reverse) lists it in
    ``fpgarec.errors.USER_ERRORS``, so its commands print the message as one line."""


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1 (clog2(1) = 0), as Verilog's $clog2."""
    return max(0, (int(n) - 1).bit_length())


def positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise KernelParameterError(f"{name}={value!r}: must be a positive integer")
    return int(value)


def bits(name: str, value, lo: int = MIN_BITS, hi: int = MAX_BITS) -> int:
    if isinstance(value, bool) or int(value) != value or not lo <= int(value) <= hi:
        raise KernelParameterError(f"{name}={value!r}: unsupported width, must be {lo}..{hi} bits")
    return int(value)


def divides(pe_name: str, pe: int, d_name: str, d: int) -> None:
    if d % pe:
        raise KernelParameterError(f"{pe_name}={pe} does not divide {d_name}={d}")


def int_range(n_bits: int, signed: bool) -> tuple[int, int]:
    """[min, max] of an n-bit integer."""
    return (-(1 << (n_bits - 1)), (1 << (n_bits - 1)) - 1) if signed else (0, (1 << n_bits) - 1)


def parse_datatype(name: str, value: str) -> tuple[int, bool]:
    """``"INT4"`` -> (4, True), ``"UINT11"`` -> (11, False); anything else is refused (floats,
    BIPOLAR, TERNARY, fixed point: the kernels are integer datapaths)."""
    text = str(value).upper()
    for prefix, signed in (("UINT", False), ("INT", True)):
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return bits(name, int(text[len(prefix):])), signed
    raise KernelParameterError(f"{name}={value!r}: unsupported datatype, use INTn or UINTn "
                               f"({MIN_BITS} <= n <= {MAX_BITS})")


def datatype_name(n_bits: int, signed: bool) -> str:
    return f"{'INT' if signed else 'UINT'}{n_bits}"


class IntStreamTypes:
    """``in_datatype`` / ``out_datatype`` (FINN names, e.g. "INT4") of a kernel's parameter
    dataclass with ``in_bits``, ``in_signed``, ``out_bits``, ``out_signed``."""

    @property
    def in_datatype(self) -> str:
        return datatype_name(self.in_bits, self.in_signed)

    @property
    def out_datatype(self) -> str:
        return datatype_name(self.out_bits, self.out_signed)
