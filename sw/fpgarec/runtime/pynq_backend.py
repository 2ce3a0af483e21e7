"""PYNQ backend: a bundle's bitstream on a Zynq board, driven through the ``pynq`` package.

``pynq`` is imported inside this module's functions only, never when ``fpgarec.runtime`` is
imported: the runtime must load where pynq is absent (this machine's main environment) and
pynq 4.0.0 pins numpy < 2.

How the accelerator is driven follows FINN's generated PYNQ driver, ``FINNExampleOverlay`` in
FINN's ``src/finn/qnn-data/templates/driver/driver_base.py`` (finn-plus 1.6.1 no longer ships
the template: it publishes it as the ``finn-plus-driver`` package), for the ``zynq-iodma``
platform:

* ``Overlay(bitfile)`` opens the ``.bit`` with the ``.hwh`` of the same stem beside it; the
  IODMAs are the overlay's top-level IPs named in ``manifest["dma"]`` (FINN's
  ``MakeZYNQProject`` names them ``idma0`` / ``odma0``). They carry no driver signature, so
  they are started by register writes;
* one ``allocate(shape, dtype=np.uint8, cacheable=True)`` buffer per DMA, of the packed shape
  with the batch axis set to ``batch_size``; ``flush()`` (= ``sync_to_device``) after writing
  each input, ``invalidate()`` (= ``sync_from_device``) before reading the output;
* a batch of ``b <= batch_size`` queries (``execute_on_buffers``)::

      odma.read(0x00) & 0x4 != 0                     # ap_idle: the output DMA is free
      odma.write(0x10, obuf.device_address & 0xFFFFFFFF); odma.write(0x14, address >> 32)
      odma.write(0x1C, b); odma.write(0x00, 1)      # numReps = b, ap_start
      for idma in (idma0, idma1):                   # every input DMA, in manifest order
          idma.write(0x10, ...); idma.write(0x14, ...); idma.write(0x1C, b); idma.write(0x00, 1)
      while odma.read(0x00) & 0x2 == 0: ...         # ap_done (cleared by the read that sees it)

  the output DMA is armed before the input DMAs feed the streams (FINN's multi-input drivers
  start every input DMA the same way, in order). Unlike FINN's driver the wait is bounded:
  after ``timeout_s`` :class:`DmaTimeoutError` reports every DMA's registers;
* the Zynq PL clock through ``pynq.Clocks.fclk0_mhz``.

Data path for B queries, shapes from ``manifest["io"]`` (``K`` neighbour ids per query, top-k
ids out; the demo bundle: UINT11 ids in 16-bit words, UINT16 ids out)::

    ids (B, K) --split--> (b, K) --fold--> (b, K, 1) --pack--> (b, K, 2) uint8 --copy, flush--> ibuf
    obuf --invalidate, copy--> (b, top_k, 2) uint8 --unpack--> (b, top_k, 1) --unfold--> (b, top_k) int64

with :mod:`fpgarec.runtime.packing` (bit-exact with FINN's ``finnpy_to_packed_bytearray`` /
``packed_bytearray_to_finnpy`` with ``reverse_endian`` and ``reverse_inner``).

Seen items. A design built with a seen-items input (``fpgarec build --exclude-seen``:
``manifest["io"]["seen"]``, a LabelSelect with ``SeenMode`` 2) has a second input DMA
(``manifest["dma"]["input"][1]``, ``idma1``) that streams, per query, a bitmap of the N labels
(bit i = 1: item i was seen, never returned) in words of PE bits, BINARY lanes packed the same
way (the demo bundle: N = 1728, PE = 48)::

    seen (B, n_items or N) bool --pad to N--> (b, N) --fold--> (b, N/PE, PE) --pack--> (b, N/PE, ceil(PE/8)) uint8 --> sbuf

``run(ids, seen=None)``: ``seen`` None means the query's own context ids, as
``EmulationBackend.run``. Slots left empty (fewer than top_k unseen items) hold N.

Attention weights. A design built with the weight stream (``fpgarec build --emit-weights``:
``manifest["io"]["weights"]``, the AttentionAggregate layer's second output) has a second
output DMA (``manifest["dma"]["output"][1]``, ``odma1``) that writes, per query, the K integer
weights a_j in [0, 2^W] (UINT(W+1), one per beat)::

    wbuf --invalidate, copy--> (b, K, ceil((W+1)/8)) uint8 --unpack--> (b, K) int64

Both output DMAs are armed before the inputs start, and the batch ends when each has shown
``ap_done``: the weight stream must be drained or the design stalls, so it is read on every
batch; ``run`` drops it, ``run_with_weights`` returns it (as ``EmulationBackend.run_with_weights``).

Loading the bitstream (sha256 checks, pynq's metadata, FCLK0): :mod:`fpgarec.runtime.pynq_overlay`.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np

from fpgarec.runtime import packing
from fpgarec.runtime.bundle import Bundle, BundleError, load_bundle
from fpgarec.runtime.pynq_hwh import AP_DONE, AP_IDLE, AP_READY, AP_START, AUTO_RESTART, dma_ios
from fpgarec.runtime.pynq_overlay import (
    PynqBackendError,
    import_pynq,
    map_ip,
    open_overlay,
    resolve_bitstream,
    set_fclk0,
)

log = logging.getLogger(__name__)

#: IODMA register offsets (HLS s_axilite of FINN's IODMA): control, buffer address, numReps
REG_CTRL, REG_ADDR_LO, REG_ADDR_HI, REG_COUNT = 0x00, 0x10, 0x14, 0x1C
#: options besides batch_size / timeout_s / clock_mhz
OPTIONS = ("bitfile", "device", "download")
_CTRL_BITS = ((AP_START, "ap_start"), (AP_DONE, "ap_done"), (AP_IDLE, "ap_idle"), (AP_READY, "ap_ready"),
              (AUTO_RESTART, "auto_restart"))


class SeenBitmapError(PynqBackendError, ValueError):
    """A seen-items bitmap that does not fit the design (shape), or one given to a design that
    has no seen-items input."""


class DmaTimeoutError(PynqBackendError):
    """The accelerator did not answer in time. ``registers``: every DMA's register state
    ``{name: {"ctrl", "addr", "count"}}`` read after the timeout."""

    def __init__(self, message: str, registers: dict[str, dict[str, int]]):
        super().__init__(message)
        self.registers = registers


def board_present() -> bool:
    """True when ``pynq`` imports and finds at least one device; never raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynq

            return len(pynq.Device.devices) > 0
    except Exception:  # noqa: BLE001 - any failure means: no usable board
        return False


def describe_ctrl(value: int) -> str:
    """``0x6`` -> ``"ap_done|ap_idle"`` (HLS ap_ctrl_hs bits of register 0x00)."""
    names = [name for bit, name in _CTRL_BITS if value & bit]
    return "|".join(names) if names else "none"


def format_dma_state(state: dict[str, dict[str, int]]) -> str:
    """One line: ``odma0 ctrl=0x00000001 (ap_start) addr=0x16001000 count=64; idma0 ...``."""
    return "; ".join(
        f"{name} ctrl=0x{r['ctrl']:08x} ({describe_ctrl(r['ctrl'])}) addr=0x{r['addr']:08x} count={r['count']}"
        for name, r in state.items())


class _Port:
    """One stream end of the design: datatype and normal / folded / packed shapes (batch
    axis excluded), from ``manifest["io"]["input" | "seen" | "output"]``."""

    def __init__(self, io: dict):
        self.name = io.get("name", "")
        self.datatype = io["datatype"]
        self.bits, self.signed = packing.parse_datatype(self.datatype)
        self.normal = tuple(int(x) for x in io["shape_normal"][1:])
        self.folded = tuple(int(x) for x in io["shape_folded"][1:])
        self.packed = tuple(int(x) for x in io["shape_packed"][1:])
        if self.packed[-1] != packing.packed_nbytes(self.folded[-1], self.bits):
            raise ValueError(f"io {self.name}: packed shape {self.packed} does not hold folded {self.folded} "
                             f"of {self.datatype}")


class PynqBackend:
    """Runs a bundle on a PYNQ (Zynq) board: ``run(ids)`` -> top-k item ids.

    Arguments: ``bundle`` (folder or :class:`~fpgarec.runtime.bundle.Bundle`), ``batch_size``
    (queries per DMA transfer; the buffers hold that many), ``timeout_s`` (wait per batch before
    :class:`DmaTimeoutError`), ``clock_mhz`` (set FCLK0; default: as the bitstream sets it).
    Options: ``bitfile`` (a generated ``*.emulated.bit``; only with an emulated device),
    ``device`` (a ``pynq.Device``; default ``pynq.Device.active_device``), ``download`` (load
    the bitstream, default True; False reuses the one already loaded).

    Shapes: ``run``: ids (B, K) integers in [0, n_items) -> (B, top_k) int64, B any size
    (split into batches of at most ``batch_size``). A design with a seen-items input
    (``manifest["io"]["seen"]``, a second input DMA) also takes ``seen``: (B, n_items) or
    (B, N labels) bool, default the query's context ids; empty slots then hold N. A design
    with the weight stream (``manifest["io"]["weights"]``, a second output DMA) also answers
    ``run_with_weights``: (top-k (B, top_k), weights (B, K)) int64.
    """

    name = "pynq"

    def __init__(self, bundle: Bundle | Path | str, *, batch_size: int = 1024, timeout_s: float = 1.0,
                 clock_mhz: float | None = None, **options):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise PynqBackendError(f"PynqBackend: unknown option(s) {', '.join(unknown)}; "
                                   f"accepted: batch_size, timeout_s, clock_mhz, {', '.join(OPTIONS)}")
        if int(batch_size) < 1:
            raise PynqBackendError(f"PynqBackend: batch_size must be at least 1, got {batch_size}")
        if not float(timeout_s) > 0:
            raise PynqBackendError(f"PynqBackend: timeout_s must be positive, got {timeout_s}")
        if clock_mhz is not None and not float(clock_mhz) > 0:
            raise PynqBackendError(f"PynqBackend: clock_mhz must be positive, got {clock_mhz}")
        self._ibuf = self._sbuf = self._obuf = self._overlay = None
        self._ibufs: list = []
        self._obufs: list = []
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.bundle.manifest
        where = self.bundle.root / "manifest.json"
        if m.get("shell") != "zynq-iodma":
            raise PynqBackendError(f"{where}: shell {m.get('shell')!r}; the PYNQ backend drives zynq-iodma designs")
        try:
            ios = dma_ios(m)  # every DMA's io entry: idma0 ids, [idma1 seen,] odma0 top-k[, odma1 weights]
        except (KeyError, TypeError, ValueError) as exc:
            raise PynqBackendError(f"{where}: {exc}") from exc
        try:
            ports = {name: _Port(io) for name, io in ios.items()}
        except (KeyError, ValueError) as exc:
            raise BundleError(f"{where}: io: {exc}") from exc
        #: DMA names in manifest order: inputs (ids, then the seen bitmap), outputs (top-k, then
        #: the attention weights)
        self._in_names, self._out_names = tuple(m["dma"]["input"]), tuple(m["dma"]["output"])
        self._out_name = self._out_names[0]
        self._in, self._out = ports[self._in_names[0]], ports[self._out_name]
        self._seen = ports[self._in_names[1]] if len(self._in_names) > 1 else None
        self._weights = ports[self._out_names[1]] if len(self._out_names) > 1 else None
        self.n_items, self.k, self.top_k = (int(m["model"][x]) for x in ("n_items", "k", "top_k"))
        self._check_ports(m, where)
        self.batch_size = int(batch_size)
        self.timeout_s = float(timeout_s)
        self.bitfile, self.hwh, self.emulated = resolve_bitstream(self.bundle, options.get("bitfile"))

        pynq = import_pynq()
        device = options.get("device")
        if device is None:
            try:
                device = pynq.Device.active_device
            except RuntimeError as exc:
                raise PynqBackendError(f"no PYNQ device found ({exc}); is this a PYNQ board image, run as root?") from exc
        if self.emulated and not getattr(device, "emulated", False):
            raise PynqBackendError(
                f"{self.bitfile}: generated for emulation; refusing to load it onto device "
                f"{getattr(device, 'name', device)!r}, which is not an emulated device")
        self.device = device
        self._overlay = open_overlay(pynq, self.bitfile, self.hwh, device, bool(options.get("download", True)))
        self.fclk0_mhz = set_fclk0(pynq, clock_mhz)
        self._idmas = [map_ip(self._overlay, name, self.bitfile, self.hwh) for name in self._in_names]
        self._idma = self._idmas[0]
        self._odmas = [map_ip(self._overlay, name, self.bitfile, self.hwh) for name in self._out_names]
        self._odma = self._odmas[0]
        self._ports = [ports[name] for name in self._in_names]
        self._out_ports = [ports[name] for name in self._out_names]
        # one buffer per DMA, as FINN's driver allocates them: each input's in manifest order,
        # then each output's
        for port in self._ports:
            self._ibufs.append(pynq.allocate(shape=(self.batch_size, *port.packed), dtype=np.uint8,
                                             cacheable=True, target=device))
        for port in self._out_ports:
            self._obufs.append(pynq.allocate(shape=(self.batch_size, *port.packed), dtype=np.uint8,
                                             cacheable=True, target=device))
        self._obuf = self._obufs[0]
        self._ibuf = self._ibufs[0]
        self._sbuf = self._ibufs[1] if self._seen is not None else None
        log.info("PYNQ backend: %s on %s (%s), FCLK0 %.3f MHz (design clock %s MHz), batch %d, "
                 "buffers %s", self.bitfile.name, getattr(device, "name", device),
                 "emulated" if self.emulated else "hardware", self.fclk0_mhz, m.get("clock_mhz"),
                 self.batch_size, ", ".join(f"{name} 0x{buf.device_address:x}" for name, buf in self._buffers()))

    def _check_ports(self, m: dict, where) -> None:
        """The io streams against the model record: K ids in, top_k out, the seen bitmap of the
        N labels (and an output that holds N), the weights K x UINT(W+1). Sets ``n_labels``."""
        if int(np.prod(self._in.normal)) != self.k or int(np.prod(self._out.normal)) != self.top_k:
            raise BundleError(f"{where}: io shapes {self._in.normal} -> {self._out.normal} do not match "
                              f"k={self.k}, top_k={self.top_k}")
        #: N: the labels the top-k stage ranks (n_items padded); an empty slot holds N
        self.n_labels = int(m["model"].get("n_labels", self.n_items))
        if self._seen is not None:
            n_seen = int(np.prod(self._seen.normal))
            if (self._seen.bits, self._seen.signed) != (1, False) or n_seen != self.n_labels:
                raise BundleError(f"{where}: io seen: expected a BINARY bitmap of the {self.n_labels} labels, "
                                  f"got {self._seen.datatype} of shape {self._seen.normal}")
            if packing.value_range(self._out.bits, self._out.signed)[1] < self.n_labels:
                raise BundleError(f"{where}: io output: {self._out.datatype} cannot hold {self.n_labels}, "
                                  "the id of an empty slot of a design with a seen-items input")
        if self._weights is not None:
            bits = int(m["model"]["aggregation"]["weight_bits"]) + 1
            if (self._weights.bits, self._weights.signed) != (bits, False) or int(np.prod(self._weights.normal)) != self.k:
                raise BundleError(f"{where}: io weights: expected UINT{bits} of shape ({self.k},) (K weights of "
                                  f"W+1 bits), got {self._weights.datatype} of shape {self._weights.normal}")

    # ---------------------------------------------------------------------------- running
    def _buffers(self) -> list[tuple[str, object]]:
        """``(DMA name, buffer)`` of every DMA: the inputs in manifest order, then the outputs."""
        return [*zip(self._in_names, self._ibufs, strict=True), *zip(self._out_names, self._obufs, strict=True)]

    def dma_state(self) -> dict[str, dict[str, int]]:
        """Every DMA's registers, the output DMAs first, then the input DMAs, each in manifest
        order: ``{name: {"ctrl": 0x00, "addr": 0x14:0x10, "count": 0x1C}}``. Reading ``ctrl``
        clears a pending ``ap_done`` (clear on read)."""
        out = {}
        for name, ip in (*zip(self._out_names, self._odmas, strict=True), *zip(self._in_names, self._idmas, strict=True)):
            out[name] = {"ctrl": int(ip.read(REG_CTRL)),
                         "addr": int(ip.read(REG_ADDR_LO)) | int(ip.read(REG_ADDR_HI)) << 32,
                         "count": int(ip.read(REG_COUNT))}
        return out

    def _start(self, ip, buf, rows: int) -> None:
        address = int(buf.device_address)
        ip.write(REG_ADDR_LO, address & 0xFFFFFFFF)
        ip.write(REG_ADDR_HI, (address >> 32) & 0xFFFFFFFF)
        ip.write(REG_COUNT, rows)
        ip.write(REG_CTRL, AP_START)

    def _execute(self, rows: int) -> None:
        """Start every DMA on the first ``rows`` buffer rows (the output DMAs first, then the
        input DMAs, each in manifest order) and wait until every output DMA has shown
        ``ap_done`` (clear on read: each is polled until it has been seen once)."""
        if self._obuf is None:
            raise PynqBackendError("PynqBackend: closed")
        for name, ip in zip(self._out_names, self._odmas, strict=True):
            if not int(ip.read(REG_CTRL)) & AP_IDLE:
                raise PynqBackendError(
                    f"output DMA {name} is not idle before start (an earlier batch never "
                    f"finished?); DMA registers: {format_dma_state(self.dma_state())}")
        for ip, buf in zip(self._odmas, self._obufs, strict=True):
            self._start(ip, buf, rows)
        for ip, buf in zip(self._idmas, self._ibufs, strict=True):
            self._start(ip, buf, rows)
        deadline = time.monotonic() + self.timeout_s
        waiting = dict(zip(self._out_names, self._odmas, strict=True))
        while waiting:
            for name in [n for n, ip in waiting.items() if int(ip.read(REG_CTRL)) & AP_DONE]:
                del waiting[name]
            if waiting and time.monotonic() > deadline:
                state = self.dma_state()
                raise DmaTimeoutError(
                    f"{self.bitfile.name}: output DMA {', '.join(waiting)} did not finish a batch of {rows} "
                    f"queries within {self.timeout_s:g} s; DMA registers: {format_dma_state(state)}",
                    state)

    def _write_input(self, port: _Port, buf, values: np.ndarray) -> None:
        rows = len(values)
        words = packing.pack(packing.fold(values, (rows, *port.folded)), port.bits, port.signed)
        np.copyto(buf[:rows], words.reshape(rows, *port.packed))
        buf.flush()

    def _read_output(self, port: _Port, buf, rows: int) -> np.ndarray:
        """(rows, normal size) int64 values an output DMA wrote into ``buf``."""
        buf.invalidate()
        raw = np.array(buf[:rows], dtype=np.uint8)
        folded = packing.unpack(raw, port.bits, port.signed, (rows, *port.folded))
        return packing.unfold(folded, (rows, *port.normal)).reshape(rows, -1).astype(np.int64)

    def _run_batch(self, ids: np.ndarray, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(top-k, attention weights or None) of one batch."""
        rows = len(ids)
        if self._obuf is None:
            raise PynqBackendError("PynqBackend: closed")
        self._write_input(self._in, self._ibuf, ids)
        if self._seen is not None:
            self._write_input(self._seen, self._sbuf, seen)
        self._execute(rows)
        top = self._read_output(self._out, self._obuf, rows)
        weights = None if self._weights is None else self._read_output(self._weights, self._obufs[1], rows)
        return top, weights

    @property
    def seen_on_chip(self) -> bool:
        """True for a design with a seen-items input (a second input DMA)."""
        return self._seen is not None

    def seen_bitmap(self, ids: np.ndarray, seen=None) -> np.ndarray | None:
        """The (B, N labels) bool bitmap streamed to the seen-items DMA, as
        ``EmulationBackend.seen_bitmap`` builds it: ``seen`` ((B, n_items) or (B, N) bool) padded
        to N, or by default the query's own context ids (the null id and other ids >= n_items
        set bits the design never returns anyway). None for a design without a seen-items
        input. Raises :class:`SeenBitmapError` (one line, naming the expected shape)."""
        ids = self.bundle.check_ids(ids)
        seen = self._check_seen(len(ids), seen)
        return None if self._seen is None else self._bitmap(ids, seen)

    def _check_seen(self, b: int, seen) -> np.ndarray | None:
        """``seen`` as an array of shape (b, n_items) or (b, N), or None."""
        if seen is None:
            return None
        if self._seen is None:
            raise SeenBitmapError(
                f"{self.bundle.manifest['design']}: the design has no seen-items input (manifest io has no "
                "'seen'); call run(ids) without seen, or build with --exclude-seen")
        seen = np.asarray(seen)
        if seen.ndim != 2 or len(seen) != b or seen.shape[1] not in (self.n_items, self.n_labels):
            raise SeenBitmapError(
                f"seen bitmap of shape {seen.shape}: expected ({b}, {self.n_items}) bool, one row per query "
                f"and one column per item (or ({b}, {self.n_labels}) with the padding labels)")
        return seen

    def _bitmap(self, ids: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
        """(b, N) bool rows of checked ``ids`` and ``seen`` (None: the context ids; an attention
        design's meta words: their id field, as ``EmulationBackend.seen_bitmap``)."""
        n = self.n_labels
        if seen is not None:
            out = np.zeros((len(ids), n), dtype=bool)
            out[:, : seen.shape[1]] = seen.astype(bool, copy=False)
            return out
        ids = self.bundle.item_ids(ids)  # an attention design's meta words: their id field
        out = np.zeros((len(ids), n + 1), dtype=bool)
        np.put_along_axis(out, np.minimum(ids, n), True, axis=1)
        return out[:, :n]

    def run(self, ids: np.ndarray, seen=None) -> np.ndarray:
        """Top-k item ids per query. Shapes: (B, K) -> (B, top_k) int64. ``seen`` (designs with
        a seen-items input only): (B, n_items) or (B, N) bool, the items each query must not
        get back; default the query's context ids. Slots left empty hold N."""
        return self._run(ids, seen)[0]

    @property
    def weights_output(self) -> str | None:
        """The name of the design's attention-weight output (``io.weights``, a second output
        DMA), or None."""
        return None if self._weights is None else self._weights.name

    def run_with_weights(self, ids: np.ndarray, seen=None) -> tuple[np.ndarray, np.ndarray]:
        """(top-k (B, top_k) int64, attention weights (B, K) int64) read from the design's two
        output DMAs, as ``EmulationBackend.run_with_weights``. Raises :class:`PynqBackendError`
        for a design without the weight stream."""
        if self._weights is None:
            raise PynqBackendError(f"{self.bundle.manifest['design']}: the design has no attention-weight output "
                                   "(build an attention student with `fpgarec build --emit-weights`)")
        return self._run(ids, seen)

    def _run(self, ids: np.ndarray, seen) -> tuple[np.ndarray, np.ndarray | None]:
        ids = self.bundle.check_ids(ids)
        seen = self._check_seen(len(ids), seen)
        out = np.empty((len(ids), self.top_k), dtype=np.int64)
        weights = None if self._weights is None else np.empty((len(ids), self.k), dtype=np.int64)
        for start in range(0, len(ids), self.batch_size):
            stop = min(start + self.batch_size, len(ids))
            bitmap = None
            if self._seen is not None:  # built per batch: B may be far larger than a batch
                bitmap = self._bitmap(ids[start:stop], None if seen is None else seen[start:stop])
            out[start:stop], w = self._run_batch(ids[start:stop], bitmap)
            if weights is not None:
                weights[start:stop] = w
        return out, weights

    def info(self) -> dict:
        """What is loaded where: bitstream, emulated or not, FCLK0, batch, every DMA's register
        base (``dma``) and the io stream it carries (``streams``)."""
        dmas = [*zip(self._in_names, self._idmas, strict=True), *zip(self._out_names, self._odmas, strict=True)]
        streams = [*zip(self._in_names, self._ports, strict=True), *zip(self._out_names, self._out_ports, strict=True)]
        return {"backend": self.name, "design": self.bundle.manifest["design"], "bitfile": str(self.bitfile),
                "emulated": self.emulated, "fclk0_mhz": self.fclk0_mhz,
                "design_clock_mhz": self.bundle.manifest.get("clock_mhz"), "batch_size": self.batch_size,
                "timeout_s": self.timeout_s, "device": str(getattr(self.device, "name", self.device)),
                "seen_on_chip": self.seen_on_chip, "weights_output": self.weights_output,
                "dma": {name: ip.mmio.base_addr for name, ip in dmas},
                "streams": {name: port.name for name, port in streams}}

    def close(self) -> None:
        """Free every DMA buffer and drop the overlay (idempotent)."""
        for buf in (*self._ibufs, *self._obufs):
            if buf is not None:
                try:
                    buf.freebuffer()
                except Exception:  # noqa: BLE001 - freeing must never mask the caller's error
                    log.debug("freeing a PYNQ buffer failed", exc_info=True)
        self._ibufs, self._obufs = [], []
        self._ibuf = self._sbuf = self._obuf = None
        self._overlay = None

    def __enter__(self) -> PynqBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

