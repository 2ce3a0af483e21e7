"""An emulated PYNQ-Z2 for the real pynq 4.0.0 package: a ``pynq.Device`` subclass found through
pynq's own device registry, on which FINN's IODMAs run the CPU emulation of a bundle.

Registration. ``pynq.pl_server.device.DeviceMeta`` records every ``Device`` subclass that
defines ``_probe_`` under its ``_probe_priority_``; ``Device.devices`` calls each ``_probe_()``
in priority order and ``Device.active_device`` is the first device found. This class
(priority 250, after pynq's own 40/50/100/200) probes to the device made by :func:`install`,
or to none, so importing this module changes nothing until a test installs a device.

What is emulated, and what stays pynq's own code:

* metadata: ``get_bitfile_metadata`` does what pynq's Zynq device does through
  ``BitstreamHandler.get_parser``: pynq's ``BitfileHandler`` (``parse_bit_header`` and
  ``bit2bin`` on the ``.bit``) and ``RuntimeMetadataParser(Metadata(input=hwh))`` on the
  ``.hwh``. Left out: the pickled metadata cache and the XRT ``.xclbin`` that pynq builds with
  ``xclbinutil`` (XRT, absent here) for memory allocation;
* ``download``: accepts only fpgarec's emulation placeholders (marker in the .bit header, part
  7z020clg400) instead of writing the FPGA manager, then pynq's ``Device.post_download``;
* ``allocate``: real ``pynq.buffer.PynqBuffer`` arrays with physical addresses in a simulated
  512 MiB DDR. A cacheable buffer has a host copy and a DDR copy: ``flush()`` copies host ->
  DDR and ``invalidate()`` DDR -> host, so a driver that forgets either reads stale data, as on
  the board;
* ``mmap`` (the ``MEMORY_MAPPED`` capability, as pynq's Zynq device): ``pynq.MMIO`` reads and
  writes a uint32 array. The SLCR (0xF800_0000) is a plain array with PYNQ-Z2 reset values, so
  pynq's ``Clocks`` computes FCLK0 from real divisor registers. Each IODMA's registers are a
  numpy subclass whose element reads and writes drive a model of FINN's IODMA (HLS
  ``ap_ctrl_hs``): writing ``ap_start`` latches address (0x10/0x14) and numReps (0x1C);
  ``ap_done`` and ``ap_ready`` clear when read; ``ap_idle`` is set at reset and after a run.
  Only element access (``array[i]``, which ``MMIO.read``/``write`` use) drives the model;
  numpy views of the array (``RegisterMap``) see the values but trigger nothing;
* the fabric: once every input and every output DMA has been started, each input DMA's rows
  are read from DDR and decoded with an independent scalar reader of FINN's stream layout
  (``int.from_bytes``, element 0 in the low bits; 1-bit lanes: ``np.unpackbits`` little bit
  order), cross-checked with :func:`fpgarec.runtime.packing.unpack`. The first input DMA
  carries the ids, a second one (a design with ``io["seen"]``) the seen-items bitmap:
  ``EmulationBackend(bundle).run(ids, seen=bitmap)`` computes the top-k (``run(ids)`` with one
  input DMA); the ids are encoded the same way into the output DMA's DDR rows; ``ap_done`` then
  shows after ``latency_polls`` reads of the output DMA's control register. A design with the
  attention weight stream (``io["weights"]``) has a second output DMA: ``run_with_weights``
  computes both outputs, and the weight DMA's ``ap_done`` shows 3 polls after the top-k's. ``inputs`` holds
  the decoded arrays of the last batch, per input DMA.

Modes: ``"ok"``; ``"hang"`` (DMAs start but never finish: ``ap_start`` stays, no ``ap_idle``,
no ``ap_done``); ``dmas_never_done``, a set of output DMA names, leaves those DMAs running
while the others finish. A DMA address outside every allocation, or a row count the DMAs disagree
on, is recorded in ``errors`` and hangs the design, like a stalled AXI transaction.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer
from pynq.pl_server.device import Device
from pynq.pl_server.embedded_device import _get_bitstream_handler, parse_bit_header
from pynqmetadata.frontends import Metadata
from pynqmetadata.views.runtime import RuntimeMetadataParser

from fpgarec.runtime import packing
from fpgarec.runtime.bundle import Bundle
from fpgarec.runtime.emulation import EmulationBackend
from fpgarec.runtime.pynq_hwh import AP_DONE, AP_IDLE, AP_READY, AP_START, EMULATION_MARKER, dma_ios

log = logging.getLogger(__name__)

SLCR_BASE, SLCR_WORDS = 0xF800_0000, 0x200 // 4
#: PYNQ-Z2 PS clocks from a 50 MHz reference: IO PLL x20 = 1000 MHz, ARM PLL x26 = 1300 MHz
#: (CPU 650 MHz), DDR PLL x21; FCLK0 = IO PLL / (10 * 1) = 100 MHz
SLCR_RESET = {0x100: 26 << 12, 0x104: 21 << 12, 0x108: 20 << 12, 0x120: 2 << 8,
              0x170: (1 << 20) | (10 << 8), 0x180: (1 << 20) | (10 << 8),
              0x190: (1 << 20) | (10 << 8), 0x1A0: (1 << 20) | (10 << 8)}
#: where buffers are allocated (PYNQ images reserve their CMA pool near here)
CMA_BASE, DDR_END = 0x1600_0000, 0x2000_0000


class BusError(Exception):
    """A DMA touched memory no buffer occupies."""


class _RegisterWindow(np.ndarray):
    """uint32 register array whose element reads/writes call the owning model."""

    def __array_finalize__(self, obj):
        self._model = None  # views made by numpy carry no hooks

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if self._model is not None and isinstance(key, (int, np.integer)):
            self._model.after_read(int(key))
        return value

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if self._model is not None and isinstance(key, (int, np.integer)):
            self._model.after_write(int(key))


class IodmaModel:
    """Registers and state of one FINN IODMA (HLS s_axilite, ap_ctrl_hs)."""

    def __init__(self, device: EmulatedZynqDevice, name: str, base: int, addr_range: int, is_input: bool):
        self.device, self.name, self.base, self.is_input = device, name, base, is_input
        self.regs = np.zeros(addr_range // 4, dtype=np.uint32)
        self.regs[0] = AP_IDLE
        self.busy = False
        self.address = self.count = 0
        self.polls_left = 0
        self.runs = 0

    def window(self, length: int) -> _RegisterWindow:
        w = self.regs[: length // 4].view(_RegisterWindow)
        w._model = self
        return w

    def after_write(self, word: int) -> None:
        self.device.writes.append((self.name, 4 * word, int(self.regs[word])))
        if word == 0 and self.regs[0] & AP_START and not self.busy:
            self.busy = True
            self.address = int(self.regs[4]) | int(self.regs[5]) << 32
            self.count = int(self.regs[7])
            self.regs[0] &= np.uint32(~AP_IDLE & 0xFFFFFFFF)
            self.device.dma_started()

    def after_read(self, word: int) -> None:
        if word != 0:
            return
        if self.polls_left:
            self.polls_left -= 1
            if not self.polls_left:
                self._complete()
        elif self.regs[0] & (AP_DONE | AP_READY):
            self.regs[0] &= np.uint32(~(AP_DONE | AP_READY) & 0xFFFFFFFF)  # clear on read

    def finish(self, polls: int) -> None:
        """The transfer is over; ap_done shows after ``polls`` more control reads."""
        self.busy = False
        self.runs += 1
        self.polls_left = polls
        if not polls:
            self._complete()

    def _complete(self) -> None:
        self.regs[0] = (int(self.regs[0]) & ~AP_START) | AP_DONE | AP_IDLE | AP_READY


@dataclass
class _Allocation:
    address: int
    nbytes: int
    host: np.ndarray
    ddr: np.ndarray


def decode_words(raw: np.ndarray, n: int, bits: int, signed: bool) -> np.ndarray:
    """FINN stream words -> integers, one word at a time: word w (little-endian bytes) holds
    element i in bits [i*bits, (i+1)*bits). Shapes: (words, nbytes) uint8 -> (words, n) int64."""
    if bits == 1:  # bit p of the word is bit p % 8 of byte p // 8
        return np.unpackbits(np.asarray(raw, dtype=np.uint8), axis=1, bitorder="little")[:, :n].astype(np.int64)
    out = np.empty((len(raw), n), dtype=np.int64)
    mask = (1 << bits) - 1
    for r, row in enumerate(raw):
        word = int.from_bytes(row.tobytes(), "little")
        for i in range(n):
            v = (word >> (i * bits)) & mask
            out[r, i] = v - (1 << bits) if signed and v >> (bits - 1) else v
    return out


def encode_words(values: np.ndarray, bits: int, nbytes: int) -> np.ndarray:
    """Inverse of :func:`decode_words`. Shapes: (words, n) int -> (words, nbytes) uint8."""
    mask = (1 << bits) - 1
    out = np.empty((len(values), nbytes), dtype=np.uint8)
    for r, row in enumerate(values):
        word = sum((int(v) & mask) << (i * bits) for i, v in enumerate(row))
        out[r] = np.frombuffer(word.to_bytes(nbytes, "little"), dtype=np.uint8)
    return out


class EmulatedZynqDevice(Device):
    """A PYNQ-Z2 whose fabric runs ``EmulationBackend(bundle)`` (see the module docstring)."""

    _probe_priority_ = 250
    _installed: EmulatedZynqDevice | None = None

    @classmethod
    def _probe_(cls):
        return [cls._installed] if cls._installed is not None else []

    def __init__(self, bundle: Bundle, mode: str = "ok", latency_polls: int = 2, emulated: bool = True):
        super().__init__("emulated_pynq_z2")
        if mode not in ("ok", "hang"):
            raise ValueError(f"mode must be 'ok' or 'hang', got {mode!r}")
        self.name = "emulated-pynq-z2"
        self.arch = "armv7l"  # pynq.Clocks picks its Zynq-7000 implementation from this
        self.capabilities = {"MEMORY_MAPPED": True, "REGISTER_RW": False, "CALLABLE": False}
        self.emulated = emulated  # what PynqBackend checks before loading a placeholder
        self.timestamp = ""
        self.bitfile_name = ""
        self.bundle, self.mode, self.latency_polls = bundle, mode, int(latency_polls)
        self.fabric = EmulationBackend(bundle)
        #: each DMA's io entry (in manifest order: inputs ids, then the seen bitmap; outputs top-k,
        #: then the attention weights)
        self.ios = dma_ios(bundle.manifest)
        self.input_names = list(bundle.manifest["dma"]["input"])
        self.output_names = list(bundle.manifest["dma"]["output"])
        self.slcr = np.zeros(SLCR_WORDS, dtype=np.uint32)
        for offset, value in SLCR_RESET.items():
            self.slcr[offset // 4] = value
        self.dmas: dict[str, IodmaModel] = {}
        self._allocs: dict[int, _Allocation] = {}
        self._next_address = CMA_BASE
        self._handles = itertools.count(1)
        self.downloads = self.flushes = self.invalidates = 0
        self.writes: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.batches: list[int] = []
        self.inputs: dict[str, np.ndarray] = {}
        #: output DMAs whose transfer never ends (``ap_start`` stays, no ``ap_done``)
        self.dmas_never_done: set[str] = set()

    # ----------------------------------------------------------------- bitstream, metadata
    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False):
        handler = _get_bitstream_handler(bitfile_name)  # pynq's BitfileHandler for a .bit
        if handler.get_hwh_data() is None:
            raise RuntimeError("Unable to find metadata for bitstream")
        parser = RuntimeMetadataParser(Metadata(input=Path(bitfile_name).with_suffix(".hwh")))
        parser.bin_data = handler.get_bin_data()  # pynq's parse_bit_header + bit2bin
        parser.xclbin_data = None
        parser.dtbo_data = handler.get_dtbo_data()
        parser.refresh_hierarchy_dict()
        return parser

    def download(self, bitstream, parser=None):
        header = parse_bit_header(Path(bitstream.bitfile_name).read_bytes())
        if EMULATION_MARKER not in header["design"]:
            raise RuntimeError(f"emulated device: {bitstream.bitfile_name} is not an fpgarec emulation placeholder")
        if header["part"] != "7z020clg400":
            raise RuntimeError(f"emulated device: bitstream for part {header['part']}, this is a 7z020clg400")
        names = {*self.bundle.manifest["dma"]["input"], *self.bundle.manifest["dma"]["output"]}
        self.dmas = {
            name: IodmaModel(self, name, int(d["phys_addr"]), int(d["addr_range"]),
                             name in self.bundle.manifest["dma"]["input"])
            for name, d in parser.ip_dict.items() if name in names}
        self.downloads += 1
        super().post_download(bitstream, parser, self.name)

    # ------------------------------------------------------------------------ memory map
    def mmap(self, base_addr: int, length: int):
        if base_addr == SLCR_BASE and length <= 4 * SLCR_WORDS:
            return self.slcr[: length // 4]
        for dma in self.dmas.values():
            if dma.base == base_addr and length <= 4 * len(dma.regs):
                return dma.window(length)
        raise RuntimeError(f"emulated device: nothing mapped at 0x{base_addr:08x} (+{length:#x})")

    # ---------------------------------------------------------------------------- memory
    def allocate(self, shape, dtype, cacheable: bool = True, **kwargs):
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        address = self._next_address
        if address + nbytes > DDR_END:
            raise RuntimeError("emulated device: out of DDR")
        self._next_address += max(4096, -(-nbytes // 4096) * 4096)
        host = np.zeros(nbytes, dtype=np.uint8)
        ddr = np.zeros(nbytes, dtype=np.uint8) if cacheable else host
        bo = next(self._handles)
        self._allocs[bo] = _Allocation(address, nbytes, host, ddr)
        buf = PynqBuffer(shape, dtype, buffer=host, device=self, device_address=address, bo=bo,
                         coherent=not cacheable)
        weakref.finalize(buf, self._allocs.pop, bo, None)
        return buf

    def flush(self, bo, offset, ptr, nbytes):
        a = self._allocs[bo]
        a.ddr[offset:offset + nbytes] = a.host[offset:offset + nbytes]
        self.flushes += 1

    def invalidate(self, bo, offset, ptr, nbytes):
        a = self._allocs[bo]
        a.host[offset:offset + nbytes] = a.ddr[offset:offset + nbytes]
        self.invalidates += 1

    def _ddr(self, address: int, nbytes: int) -> np.ndarray:
        for a in self._allocs.values():
            if a.address <= address and address + nbytes <= a.address + a.nbytes:
                return a.ddr[address - a.address: address - a.address + nbytes]
        raise BusError(f"no buffer holds 0x{address:08x} .. 0x{address + nbytes:08x}")

    # ---------------------------------------------------------------------------- fabric
    def dma_started(self) -> None:
        """Runs the design once every DMA has been started (FINN starts odma, then each idma)."""
        if not self.dmas or not all(d.busy for d in self.dmas.values()) or self.mode == "hang":
            return
        idmas = [self.dmas[name] for name in self.input_names]
        odmas = [self.dmas[name] for name in self.output_names]
        try:
            self._transfer(idmas, odmas)
        except (BusError, ValueError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            log.error("emulated fabric stalls: %s", exc)
            return
        for idma in idmas:
            idma.finish(0)
        for i, odma in enumerate(odmas):  # the weight DMA finishes a few polls after the top-k's
            if odma.name not in self.dmas_never_done:
                odma.finish(self.latency_polls + 3 * i)

    def _read_input(self, idma: IodmaModel, rows: int) -> np.ndarray:
        """The (rows, normal size) integers an input DMA streams from DDR."""
        io = self.ios[idma.name]
        bits, signed = packing.parse_datatype(io["datatype"])
        word, n = int(io["shape_packed"][-1]), int(io["shape_folded"][-1])
        raw = np.array(self._ddr(idma.address, rows * int(np.prod(io["shape_packed"][1:]))))
        values = decode_words(raw.reshape(-1, word), n, bits, signed)
        folded = (rows, *io["shape_folded"][1:])
        if not np.array_equal(values.reshape(folded), packing.unpack(raw, bits, signed, folded)):
            raise ValueError(f"{idma.name}: packing.unpack disagrees with the scalar stream reader")
        return values.reshape(rows, -1)

    def _write_output(self, odma: IodmaModel, rows: int, values: np.ndarray) -> None:
        """Encode (rows, normal size) integers into the output DMA's DDR rows."""
        io = self.ios[odma.name]
        bits, _ = packing.parse_datatype(io["datatype"])
        word, row = int(io["shape_packed"][-1]), int(np.prod(io["shape_packed"][1:]))
        words = encode_words(values.reshape(-1, int(io["shape_folded"][-1])), bits, word)
        self._ddr(odma.address, rows * row)[:] = words.reshape(-1)

    def _transfer(self, idmas: list[IodmaModel], odmas: list[IodmaModel]) -> None:
        rows = odmas[0].count
        for dma in (*idmas, *odmas[1:]):
            if dma.count != rows:
                raise ValueError(f"{dma.name} numReps {dma.count} != {odmas[0].name} numReps {rows}")
        self.inputs = {idma.name: self._read_input(idma, rows) for idma in idmas}
        ids = self.inputs[idmas[0].name]
        # the seen-items bitmap: bit i = 1, item i is never returned
        seen = {"seen": self.inputs[idmas[1].name].astype(bool)} if len(idmas) > 1 else {}
        if len(odmas) > 1:  # the attention weight stream: the design's second output
            top, weights = self.fabric.run_with_weights(ids, **seen)
            self._write_output(odmas[1], rows, weights)
        else:
            top = self.fabric.run(ids, **seen)
        self._write_output(odmas[0], rows, top)
        self.batches.append(rows)


def _reset_pynq_caches() -> None:
    """Forget the devices and clock driver pynq cached at class level."""
    for cls, attrs in ((Device, ("_devices", "_active_device")), (pynq.Clocks, ("_real_instance",))):
        for attr in attrs:
            if attr in cls.__dict__:
                delattr(cls, attr)
    pynq.Clocks.device = None


def install(bundle: Bundle, **kwargs) -> EmulatedZynqDevice:
    """Make a fresh emulated device the one ``pynq.Device.active_device`` returns."""
    _reset_pynq_caches()
    EmulatedZynqDevice._installed = EmulatedZynqDevice(bundle, **kwargs)
    return EmulatedZynqDevice._installed


def uninstall() -> None:
    """Remove the emulated device: pynq then finds no device."""
    EmulatedZynqDevice._installed = None
    _reset_pynq_caches()
