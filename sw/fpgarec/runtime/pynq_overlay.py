"""Loading a bundle's design on a PYNQ board: the bitstream checks, pynq's overlay, FCLK0.

Used by :class:`fpgarec.runtime.pynq_backend.PynqBackend`. ``pynq`` is imported inside the
functions only (:func:`import_pynq`), never when ``fpgarec.runtime`` is imported.

Clock. FINN's driver sets ``Clocks.fclk0_mhz = fclk_mhz`` because older FINN designs were
clocked by FCLK0 directly. finn-plus 1.6.1 designs feed FCLK0 (100 MHz, set by the ``.hwh``
when the overlay is downloaded) to a Clocking Wizard that makes the design clock, so by default
FCLK0 is left as the bitstream sets it; ``clock_mhz`` overrides it as FINN's ``fclk_mhz`` does.
The value read back from the PS registers is ``PynqBackend.fclk0_mhz``.

pynq 4.0.0 on Zynq-7000: its metadata parser gives ``frequency=None`` for the PS7 clocks
(``ZynqProcSysCore`` has no frequency parameter name), and ``Overlay.download()`` then calls
``Clocks.set_pl_clk(0, clk_mhz=None)``, which fails. The overlay is therefore opened with
``download=False``, the missing frequencies are filled from the PS parameters
``PCW_ACT_FPGA<i>_PERIPHERAL_FREQMHZ`` and then it is downloaded.

Bitstreams are loaded only after their sha256 is checked: a bundle's ``.bit``/``.hwh`` against
its manifest (just before loading), a generated emulation overlay (``bitfile=`` option, see
:mod:`fpgarec.runtime.pynq_hwh`) against its sidecar; and a placeholder is never downloaded onto
a device that does not declare itself emulated.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import Bundle, BundleError, sha256_file
from fpgarec.runtime.pynq_hwh import (
    bit_part,
    is_emulation_bitfile,
    read_bit_header,
    verify_emulation_overlay,
)

log = logging.getLogger(__name__)


class PynqBackendError(FpgarecError):
    """The PYNQ backend cannot run: no pynq, no device, no (valid) bitstream, bad options."""


def import_pynq():
    """The ``pynq`` package, or :class:`PynqBackendError` where it is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pynq warns about an unsupported CPU off the board
            import pynq
    except ImportError as exc:
        raise PynqBackendError(
            "the pynq package is not installed: the PYNQ backend runs on a PYNQ board image "
            "(elsewhere use the emulation backend)") from exc
    return pynq


def resolve_bitstream(bundle: Bundle, bitfile: Path | str | None = None) -> tuple[Path, Path, bool]:
    """``(bit, hwh, emulated)`` to load for ``bundle``, after checking their sha256.

    Without ``bitfile``: the bundle's own ``.bit`` and the ``.hwh`` of the same stem, both listed
    in the manifest and re-hashed now (the manifest was checked when the bundle loaded; this
    catches a file swapped since). With ``bitfile``: a generated emulation overlay
    (``*.emulated.bit``), checked against its sidecar and the bundle's design and part.
    """
    m = bundle.manifest
    if bitfile is not None:
        ov = verify_emulation_overlay(Path(bitfile), design=m["design"], part=m["part"])
        return ov.bit, ov.hwh, True
    if not bundle.bitstream_built:
        reason = m.get("bitstream", {}).get("reason") or "not built"
        raise PynqBackendError(
            f"{bundle.root}: the bundle has no bitstream ({reason}); build it with Vivado, "
            "or run the emulation backend")
    rels = list(m["bitstream"].get("files", []))
    bits = [r for r in rels if r.endswith(".bit")]
    if len(bits) != 1:
        raise BundleError(f"{bundle.root / 'manifest.json'}: expected one .bit in bitstream.files, found {bits}")
    bit_rel = bits[0]
    hwh_rel = bit_rel[: -len(".bit")] + ".hwh"
    if hwh_rel not in rels:
        raise BundleError(f"{bundle.root / bit_rel}: no {Path(hwh_rel).name} beside it in the bundle")
    for rel in (bit_rel, hwh_rel):
        info = m["files"].get(rel)
        if info is None:
            raise BundleError(f"{bundle.root / rel}: not listed in the manifest's files")
        if sha256_file(bundle.root / rel) != info["sha256"]:
            raise BundleError(f"{bundle.root / rel}: sha256 differs from the manifest (tampered)")
    bit = bundle.root / bit_rel
    try:
        header = read_bit_header(bit.read_bytes())
    except ValueError as exc:
        raise BundleError(f"{bit}: {exc}") from exc
    if header.get("part") and header["part"] != bit_part(m["part"]):
        raise BundleError(f"{bit}: built for part {header['part']}, the bundle is for {m['part']}")
    if is_emulation_bitfile(bit):
        raise BundleError(f"{bit}: an emulation placeholder listed as the bundle's bitstream")
    return bit, bundle.root / hwh_rel, False


def open_overlay(pynq, bitfile: Path, hwh: Path, device, download: bool):
    """``pynq.Overlay`` of ``bitfile`` (``hwh`` beside it) on ``device``: opened without
    download, its missing PL clock frequencies filled (see the module docstring), then
    downloaded; ``download=False`` requires the design to be loaded already."""
    try:
        overlay = pynq.Overlay(str(bitfile), download=False, device=device)
    except Exception as exc:  # noqa: BLE001 - pynq raises plain exceptions for bad metadata
        raise PynqBackendError(f"{hwh}: pynq could not open the design ({type(exc).__name__}: {exc})") from exc
    _fill_zynq_clock_frequencies(overlay)
    if download:
        try:
            overlay.download()
        except Exception as exc:  # noqa: BLE001
            raise PynqBackendError(f"{bitfile}: download failed ({type(exc).__name__}: {exc})") from exc
    elif not overlay.is_loaded():
        raise PynqBackendError(f"{bitfile}: not loaded on the device; open with download=True")
    return overlay


def set_fclk0(pynq, clock_mhz: float | None) -> float:
    """Set FCLK0 to ``clock_mhz`` (None: leave it as the bitstream set it); the MHz read back."""
    clocks = pynq.Clocks
    if clock_mhz is not None:
        clocks.fclk0_mhz = float(clock_mhz)  # FINN's driver: Clocks.fclk0_mhz = fclk_mhz
    fclk = float(clocks.fclk0_mhz)
    if clock_mhz is not None and abs(fclk - float(clock_mhz)) > 0.01 * float(clock_mhz):
        log.warning("FCLK0 is %.3f MHz, %.3f MHz was asked (the nearest the PS dividers reach)", fclk, clock_mhz)
    return fclk


def map_ip(overlay, name: str, bitfile: Path, hwh: Path):
    """The overlay's top-level IP ``name`` (an IODMA named in ``manifest["dma"]``), registers mapped."""
    if name not in overlay.ip_dict:
        raise PynqBackendError(
            f"{hwh}: no IP named {name!r} (manifest dma); the design has "
            f"{', '.join(sorted(overlay.ip_dict))}")
    try:
        return getattr(overlay, name)
    except Exception as exc:  # noqa: BLE001 - pynq/MMIO raise plain errors
        raise PynqBackendError(
            f"{bitfile}: cannot map the registers of {name} ({type(exc).__name__}: {exc}); "
            "is the design loaded? (download=False reuses a bitstream already on the device)") from exc


def _fill_zynq_clock_frequencies(overlay) -> None:
    """Give every enabled PL clock of ``overlay.clock_dict`` whose ``frequency`` pynq left as
    None the PS parameter ``PCW_ACT_FPGA<i>_PERIPHERAL_FREQMHZ`` (the rate the design was
    timed at; else the requested ``PCW_FPGA<i>_PERIPHERAL_FREQMHZ``), so that
    ``Overlay.download()`` can set it (pynq 4.0.0 passes None for Zynq-7000, see the module
    docstring)."""
    parser = getattr(overlay, "parser", None)
    ps = overlay.ip_dict.get(getattr(parser, "ps_name", None), {}) if parser is not None else {}
    params = ps.get("parameters", {})
    for i, clock in overlay.clock_dict.items():
        if not clock.get("enable") or clock.get("frequency") is not None:
            continue
        for key in (f"PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ", f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ"):
            if params.get(key):
                clock["frequency"] = float(params[key])
                break
        else:
            raise PynqBackendError(f"PL clock {i} is enabled but the design's metadata gives no frequency")
