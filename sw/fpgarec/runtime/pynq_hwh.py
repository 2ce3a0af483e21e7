"""Emulation overlays: a generated ``.hwh`` and placeholder ``.bit`` for running the PYNQ backend
against an emulated device. Nothing here comes from Vivado.

Without Vivado a bundle has no bitstream (``manifest["bitstream"]["built"]`` is false), yet the
PYNQ backend should still run unchanged through the real ``pynq`` package (``Overlay``,
``allocate``, ``MMIO``, ``Clocks``) on a registered emulated ``pynq.Device`` (see
``tests/board_emu``). This module writes the three files such a run needs, next to each other
and outside the bundle (the bundle never claims a bitstream was built)::

    <design>.emulated.hwh    GENERATED FOR EMULATION: Vivado-style hardware handoff XML
    <design>.emulated.bit    GENERATED FOR EMULATION: a .bit header around a text notice,
                             no configuration data and no sync word (an FPGA rejects it)
    <design>.emulated.json   sidecar: generated_for_emulation, design, part, sha256 of both

What the ``.hwh`` describes is the block design FINN's ``MakeZYNQProject`` builds for a
``zynq-iodma`` shell (finn-plus 1.6.1, ``transformation/fpgadataflow/templates.py`` and
``make_zynq_proj.py``):

* ``zynq_ps``: the Zynq-7000 PS (``processing_system7``), FCLK0 enabled at 100 MHz from the
  IO PLL (the reference of the Clocking Wizard), ``M_AXI_GP0`` mapping the DMAs' control
  registers, ``S_AXI_HP0`` giving the DMAs the DDR (0x0000_0000 .. 0x1FFF_FFFF, 512 MiB);
* one IODMA per name in ``manifest["dma"]`` (``idma0``, ``odma0``; a design with a seen-items
  input has a second input DMA ``idma1``, one with the attention weight stream a second
  output DMA ``odma1``), VLNV ``xilinx_finn:finn:finn_design:1.0``, whose
  AXI-lite ``s_axi_control_0`` is placed by FINN's ``assign_axi_addr_proc``: from 0x4000_0000
  upwards, 4 KiB each, inputs first. Each carries the ``manifest["io"]`` entry it streams
  (:func:`dma_ios`): its ``STREAM_WIDTH_BITS`` and ``STREAM_NAME`` parameters. Their
  HLS ``ap_ctrl_hs`` register map: ``CTRL`` 0x00 (``AP_START`` bit 0, ``AP_DONE`` 1, clear on
  read, ``AP_IDLE`` 2, ``AP_READY`` 3, ``AUTO_RESTART`` 7), ``GIER`` 0x04, ``IP_IER`` 0x08,
  ``IP_ISR`` 0x0C, buffer address 0x10 (low) / 0x14 (high), ``numReps`` 0x1C: the registers
  FINN's driver writes;
* ``clk_wiz_0``: the Clocking Wizard that derives the design clock (``manifest["clock_mhz"]``)
  from FCLK0.

pynq 4.0.0 reads it with ``pynqmetadata`` (``RuntimeMetadataParser(Metadata(input=hwh))``),
the parser its Zynq device uses. Files are generated from the manifest alone and are
deterministic (timestamps come from the manifest's ``created``), so their hashes are stable.

stdlib only (plus the bundle reader): it ships with the runtime to a board image.
"""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import Bundle, load_bundle, sha256_file

#: marker in a placeholder's .bit design field and in every generated file
EMULATION_MARKER = "FPGAREC_EMULATION_PLACEHOLDER"
#: generated files end with these suffixes (pynq finds the .hwh by the .bit's stem)
BIT_SUFFIX, HWH_SUFFIX, SIDECAR_SUFFIX = ".emulated.bit", ".emulated.hwh", ".emulated.json"

#: FINN's first AXI-lite peripheral address on Zynq-7000 (``axi_peripheral_base``)
AXI_PERIPHERAL_BASE = 0x4000_0000
#: aperture per IODMA: ``2**ADDR_WIDTH`` of its control interface, at least 4 KiB
IODMA_RANGE = 0x1000
#: DDR the PS exposes to the DMAs through S_AXI_HP0 on a PYNQ-Z1/Z2 (512 MiB)
DDR_BASE, DDR_SIZE = 0x0000_0000, 0x2000_0000
#: the stitched IP FINN instantiates for every dataflow partition
IODMA_VLNV = "xilinx_finn:finn:finn_design:1.0"
#: the PS reference frequency FINN requests for FCLK0 (Clocking Wizard input)
FCLK0_MHZ = 100.0

#: HLS ap_ctrl_hs control bits of register 0x00
AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART = 0x1, 0x2, 0x4, 0x8, 0x80

_NOTICE = (
    "GENERATED FOR EMULATION by fpgarec.runtime.pynq_hwh, NOT produced by Vivado. The "
    "placeholder .bit holds no configuration data and no sync word; only an emulated pynq "
    "device loads it."
)


class EmulationOverlayError(FpgarecError):
    """A generated emulation overlay is missing, altered, or does not match the bundle."""


@dataclass(frozen=True)
class EmulationOverlay:
    """The generated files of one design: ``bit`` is what ``pynq.Overlay`` opens."""

    bit: Path
    hwh: Path
    sidecar: Path
    design: str


# --------------------------------------------------------------------------- .bit header


def bit_part(bundle_part: str) -> str:
    """The part as a .bit header writes it: ``xc7z020clg400-1`` -> ``7z020clg400``."""
    part = bundle_part.lower()
    part = part[2:] if part.startswith("xc") else part
    return part.split("-")[0]


def make_bit(design: str, part: str, date: str = "2000/01/01", time: str = "00:00:00") -> bytes:
    """A Xilinx ``.bit`` file: header fields and a payload that is a text notice.

    Layout (the one ``pynq.pl_server.embedded_device.parse_bit_header`` reads)::

        u16 9, 0F F0 0F F0 0F F0 0F F0 00    first field
        u16 1
        'a' u16 n  "<design>;UserID=...;Version=..." NUL
        'b' u16 n  part NUL                 'c' date NUL    'd' time NUL
        'e' u32 n  payload (n a multiple of 4: pynq's bit2bin swaps 32-bit words)
    """

    def field(key: bytes, text: str) -> bytes:
        data = text.encode("ascii") + b"\0"
        return key + struct.pack(">H", len(data)) + data

    payload = (_NOTICE + " ").encode("ascii")
    payload += b" " * (-len(payload) % 4)
    head = struct.pack(">H", 9) + bytes.fromhex("0ff00ff00ff00ff000") + struct.pack(">H", 1)
    head += field(b"a", f"{design}_{EMULATION_MARKER};UserID=0XFFFFFFFF;Version=none")
    head += field(b"b", part) + field(b"c", date) + field(b"d", time)
    return head + b"e" + struct.pack(">I", len(payload)) + payload


def read_bit_header(data: bytes, check_length: bool = True) -> dict:
    """Header fields of a Xilinx ``.bit``: ``design``, ``version``, ``part``, ``date``,
    ``time``, ``length`` (payload bytes). Raises ``ValueError`` if the header is malformed (with
    ``check_length``, also if the payload length differs from the data's size)."""
    try:
        offset = 2 + struct.unpack(">H", data[:2])[0] + 2
        out: dict = {}
        while True:
            key = data[offset:offset + 1]
            offset += 1
            if key == b"e":
                length = struct.unpack(">I", data[offset:offset + 4])[0]
                if check_length and offset + 4 + length != len(data):
                    raise ValueError("payload length differs from the file size")
                out["length"] = length
                return out
            if key not in (b"a", b"b", b"c", b"d"):
                raise ValueError(f"unknown field {key!r} at byte {offset - 1}")
            n = struct.unpack(">H", data[offset:offset + 2])[0]
            text = data[offset + 2:offset + 2 + n].rstrip(b"\0").decode("ascii")
            offset += 2 + n
            if key == b"a":
                parts = text.split(";")
                out["design"], out["version"] = parts[0], parts[-1]
            else:
                out[{b"b": "part", b"c": "date", b"d": "time"}[key]] = text
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise ValueError(f"not a Xilinx .bit header ({exc})") from exc


# --------------------------------------------------------------------------- .hwh


def _sub(parent: ET.Element, tag: str, **attrs) -> ET.Element:
    return ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})


def _params(module: ET.Element, params: dict) -> None:
    el = _sub(module, "PARAMETERS")
    for name, value in params.items():
        _sub(el, "PARAMETER", NAME=name, VALUE=value)


def _register(regs: ET.Element, name: str, offset: int, description: str, access: str = "read-write",
              fields: tuple = ()) -> None:
    reg = _sub(regs, "REGISTER", NAME=name)
    for key, value in (("DESCRIPTION", description), ("ADDRESS_OFFSET", f"{offset:#x}"), ("SIZE", 32),
                       ("ACCESS", access), ("IS_ENABLED", "true"), ("RESET_VALUE", 0)):
        _sub(reg, "PROPERTY", NAME=key, VALUE=value)
    if fields:
        fs = _sub(reg, "FIELDS")
        for fname, bit, width, faccess in fields:
            f = _sub(fs, "FIELD", NAME=fname)
            for key, value in (("DESCRIPTION", f"Control signal {fname.lower()}"), ("ACCESS", faccess),
                               ("BIT_OFFSET", bit), ("BIT_WIDTH", width)):
                _sub(f, "PROPERTY", NAME=key, VALUE=value)


_CTRL_FIELDS = (
    ("AP_START", 0, 1, "read-write"), ("AP_DONE", 1, 1, "read-only"), ("AP_IDLE", 2, 1, "read-only"),
    ("AP_READY", 3, 1, "read-only"), ("AUTO_RESTART", 7, 1, "read-write"),
)


def _bus(parent: ET.Element, name: str, kind: str, role: str, busname: str, width: int | None = None) -> None:
    attrs = {"BUSNAME": busname, "NAME": name, "TYPE": role, "VLNV": f"xilinx.com:interface:{kind}:1.0"}
    if width:
        attrs["DATAWIDTH"] = width
    _sub(parent, "BUSINTERFACE", **attrs)


def _memrange(mm: ET.Element, *, block: str, base: int, size: int, instance: str, master: str, memtype: str,
              slave: str) -> None:
    _sub(mm, "MEMRANGE", ADDRESSBLOCK=block, BASENAME="C_BASEADDR", BASEVALUE=f"0x{base:08X}",
         HIGHNAME="C_HIGHADDR", HIGHVALUE=f"0x{base + size - 1:08X}", INSTANCE=instance, IS_DATA="TRUE",
         IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE=master, MEMTYPE=memtype, SLAVEBUSINTERFACE=slave)


#: the ``manifest["io"]`` entries streamed by the input DMAs, in ``manifest["dma"]["input"]`` order
INPUT_IOS = ("input", "seen")
#: the ``manifest["io"]`` entries written by the output DMAs, in ``manifest["dma"]["output"]`` order
OUTPUT_IOS = ("output", "weights")


def dma_ios(manifest: dict) -> dict[str, dict]:
    """The ``manifest["io"]`` entry each DMA streams, inputs then outputs: the first input DMA
    carries ``io["input"]`` (the query ids), a second one ``io["seen"]`` (the seen-items bitmap
    of a design built with one); the first output DMA ``io["output"]`` (the top-k), a second
    one ``io["weights"]`` (the attention weights of a design built with ``emit_weights``).
    FINN's ``MakeZYNQProject`` names the DMAs of the graph's inputs ``idma0, idma1, ...`` and
    of its outputs ``odma0, odma1, ...`` in graph order. Raises ``ValueError`` when the DMA
    lists do not match these entries."""
    io, dma = manifest.get("io", {}), manifest.get("dma", {})
    if "input" not in io or "output" not in io:
        raise ValueError(f"io needs an 'input' and an 'output' entry, has {sorted(io)}")
    in_keys = [k for k in INPUT_IOS if k in io]
    out_keys = [k for k in OUTPUT_IOS if k in io]
    inputs, outputs = list(dma.get("input", [])), list(dma.get("output", []))
    if (len(inputs) != len(in_keys) or len(outputs) != len(out_keys)
            or len({*inputs, *outputs}) != len(inputs) + len(outputs)):
        raise ValueError(
            f"dma {dma}: expected {len(in_keys)} input DMA(s) (streaming io {', '.join(in_keys)}, in that order) "
            f"and {len(out_keys)} output DMA(s) (io {', '.join(out_keys)}), all named differently")
    out = {name: io[key] for name, key in zip(inputs, in_keys, strict=True)}
    out.update({name: io[key] for name, key in zip(outputs, out_keys, strict=True)})
    return out


def dma_addresses(manifest: dict) -> dict[str, int]:
    """Base address of each DMA's control registers, as FINN's ``assign_axi_addr_proc`` places
    them: inputs then outputs, ``IODMA_RANGE`` apart from ``AXI_PERIPHERAL_BASE``."""
    names = [*manifest["dma"]["input"], *manifest["dma"]["output"]]
    return {name: AXI_PERIPHERAL_BASE + i * IODMA_RANGE for i, name in enumerate(names)}


def make_hwh(manifest: dict) -> str:
    """The emulation ``.hwh`` text of a Zynq-7000 bundle (see the module docstring)."""
    part = bit_part(manifest["part"])
    if not part.startswith("7z"):
        raise EmulationOverlayError(
            f"{manifest['design']}: emulation overlays describe Zynq-7000 boards only, part is {manifest['part']}")
    device, package = part[:5], part[5:]
    speed = "-" + manifest["part"].split("-")[-1] if "-" in manifest["part"] else "-1"
    try:
        ios = dma_ios(manifest)
    except ValueError as exc:
        raise EmulationOverlayError(f"{manifest['design']}: {exc}") from exc
    addrs = dma_addresses(manifest)
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", TIMESTAMP=str(manifest.get("created", "")),
                      VIVADOVERSION=f"none ({EMULATION_MARKER})")
    _sub(root, "SYSTEMINFO", ARCH="zynq", DEVICE=device, NAME="top", PACKAGE=package, SPEEDGRADE=speed)
    _sub(root, "EXTERNALPORTS")
    _sub(root, "EXTERNALINTERFACES")
    modules = _sub(root, "MODULES")
    _ps_module(modules, addrs)
    for index, (name, base) in enumerate(addrs.items()):
        _iodma_module(modules, index, name, base, ios[name], is_input=name in manifest["dma"]["input"])
    _clock_module(modules, float(manifest["clock_mhz"]))

    ET.indent(root, space="  ")
    header = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
        f"<!-- {_NOTICE}\n"
        f"     {EMULATION_MARKER}: design {manifest['design']}, part {manifest['part']}, board "
        f"{manifest['board']}. -->\n"
    )
    return header + ET.tostring(root, encoding="unicode") + "\n"


def _ps_module(modules: ET.Element, addrs: dict[str, int]) -> None:
    """The Zynq PS7: FCLK0 enabled at ``FCLK0_MHZ`` (the others off), GP0 master mapping every
    DMA's registers, HP0 slave for the DMAs' memory traffic."""
    ps = _sub(modules, "MODULE", FULLNAME="/zynq_ps", HWVERSION="5.5", INSTANCE="zynq_ps", IPTYPE="PERIPHERAL",
              IS_ENABLE="1", IS_PL="FALSE", MODTYPE="processing_system7",
              VLNV="xilinx.com:ip:processing_system7:5.5")
    ps_params = {"Component_Name": "top_zynq_ps_0", "PCW_USE_S_AXI_HP0": "1", "PCW_USE_M_AXI_GP0": "1"}
    for i in range(4):
        on = i == 0
        ps_params.update({
            f"PCW_FPGA_FCLK{i}_ENABLE": "1" if on else "0",
            f"PCW_EN_CLK{i}_PORT": "1" if on else "0",
            f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ": f"{FCLK0_MHZ:g}" if on else "50",
            f"PCW_ACT_FPGA{i}_PERIPHERAL_FREQMHZ": f"{FCLK0_MHZ:.6f}" if on else "10.000000",
            f"PCW_FCLK{i}_PERIPHERAL_CLKSRC": "IO PLL",
            f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0": "10" if on else "1",
            f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1": "1",
        })
    _params(ps, ps_params)
    _sub(ps, "PORTS")
    buses = _sub(ps, "BUSINTERFACES")
    _bus(buses, "M_AXI_GP0", "aximm", "MASTER", "zynq_ps_M_AXI_GP0", 32)
    _bus(buses, "S_AXI_HP0", "aximm", "SLAVE", "smartconnect_0_M00_AXI", 64)
    mm = _sub(ps, "MEMORYMAP")
    for name, base in addrs.items():
        _memrange(mm, block="Reg", base=base, size=IODMA_RANGE, instance=name, master="M_AXI_GP0",
                  memtype="REGISTER", slave="s_axi_control_0")


def _iodma_module(modules: ET.Element, index: int, name: str, base: int, io: dict, *, is_input: bool) -> None:
    """One FINN IODMA ``name`` (the ``index``-th on the GP0 interconnect) streaming ``io``: its
    HLS register map at ``base`` and its HP0 memory map."""
    ptr = "in0_V" if is_input else "out_V"
    mod = _sub(modules, "MODULE", FULLNAME=f"/{name}", HWVERSION="1.0", INSTANCE=name, IPTYPE="PERIPHERAL",
               IS_ENABLE="1", MODCLASS="PERIPHERAL", MODTYPE="finn_design", VLNV=IODMA_VLNV)
    _params(mod, {"Component_Name": f"top_{name}_0", "C_S_AXI_CONTROL_0_ADDR_WIDTH": "6",
                  "STREAM_WIDTH_BITS": io["stream_width_bits"], "STREAM_NAME": io.get("name", ""),
                  "C_BASEADDR": f"0x{base:08X}",
                  "C_HIGHADDR": f"0x{base + IODMA_RANGE - 1:08X}"})
    blocks = _sub(mod, "ADDRESSBLOCKS")
    block = _sub(blocks, "ADDRESSBLOCK", ACCESS="read-write", INTERFACE="s_axi_control_0", NAME="Reg",
                 RANGE=IODMA_RANGE, USAGE="register")
    regs = _sub(block, "REGISTERS")
    _register(regs, "CTRL", 0x00, "Control signals", fields=_CTRL_FIELDS)
    _register(regs, "GIER", 0x04, "Global Interrupt Enable Register")
    _register(regs, "IP_IER", 0x08, "IP Interrupt Enable Register")
    _register(regs, "IP_ISR", 0x0C, "IP Interrupt Status Register")
    _register(regs, f"{ptr}_1", 0x10, f"Data signal of {ptr} (bits 31:0): buffer address")
    _register(regs, f"{ptr}_2", 0x14, f"Data signal of {ptr} (bits 63:32): buffer address")
    _register(regs, "numReps", 0x1C, "Data signal of numReps: rows (queries) to transfer")
    _sub(mod, "PORTS")
    buses = _sub(mod, "BUSINTERFACES")
    _bus(buses, "s_axi_control_0", "aximm", "SLAVE", f"axi_interconnect_0_M{index:02d}_AXI", 32)
    _bus(buses, "m_axi_gmem0", "aximm", "MASTER", f"{name}_m_axi_gmem0", 64)
    _bus(buses, "m_axis_0" if is_input else "s_axis_0", "axis", "MASTER" if is_input else "SLAVE",
         f"{name}_axis_0")
    mm = _sub(mod, "MEMORYMAP")
    _memrange(mm, block="HP0_DDR_LOWOCM", base=DDR_BASE, size=DDR_SIZE, instance="zynq_ps",
              master="m_axi_gmem0", memtype="MEMORY", slave="S_AXI_HP0")


def _clock_module(modules: ET.Element, clock_mhz: float) -> None:
    """The Clocking Wizard that makes the design clock (``clock_mhz``) from FCLK0."""
    clk = _sub(modules, "MODULE", FULLNAME="/clk_wiz_0", HWVERSION="6.0", INSTANCE="clk_wiz_0", IPTYPE="PERIPHERAL",
               IS_ENABLE="1", MODCLASS="PERIPHERAL", MODTYPE="clk_wiz", VLNV="xilinx.com:ip:clk_wiz:6.0")
    _params(clk, {"Component_Name": "top_clk_wiz_0_0", "PRIM_IN_FREQ": f"{FCLK0_MHZ:.3f}", "PRIMITIVE": "PLL",
                  "CLKOUT1_REQUESTED_OUT_FREQ": f"{clock_mhz:.3f}"})
    _sub(clk, "PORTS")
    _sub(clk, "BUSINTERFACES")


# --------------------------------------------------------------------------- files


def _paths(out_dir: Path, design: str) -> EmulationOverlay:
    return EmulationOverlay(out_dir / f"{design}{BIT_SUFFIX}", out_dir / f"{design}{HWH_SUFFIX}",
                            out_dir / f"{design}{SIDECAR_SUFFIX}", design)


def write_emulation_overlay(bundle: Bundle | Path | str, out_dir: Path | str) -> EmulationOverlay:
    """Write ``<design>.emulated.{hwh,bit,json}`` for ``bundle`` into ``out_dir`` (created) and
    return their paths. ``out_dir`` must not be inside the bundle."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    m = bundle.manifest
    out_dir = Path(out_dir)
    if out_dir.resolve().is_relative_to(Path(bundle.root).resolve()):
        raise EmulationOverlayError(f"{out_dir}: emulation files never go inside the bundle {bundle.root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    ov = _paths(out_dir, m["design"])
    created = str(m.get("created", ""))
    date, time = (created[:10].replace("-", "/"), created[11:19]) if len(created) >= 19 else ("2000/01/01", "00:00:00")
    ov.hwh.write_text(make_hwh(m), encoding="utf-8")
    ov.bit.write_bytes(make_bit(m["design"], bit_part(m["part"]), date, time))
    sidecar = {
        "generated_for_emulation": True,
        "not_from_vivado": True,
        "generator": "fpgarec.runtime.pynq_hwh",
        "marker": EMULATION_MARKER,
        "design": m["design"],
        "board": m["board"],
        "part": m["part"],
        "dma": dma_addresses(m),
        "streams": {name: io.get("name", "") for name, io in dma_ios(m).items()},
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in (ov.bit, ov.hwh)},
    }
    ov.sidecar.write_text(json.dumps(sidecar, indent=2) + "\n")
    return ov


def is_emulation_bitfile(path: Path | str) -> bool:
    """True for a ``*.emulated.bit`` name or a .bit whose design field carries the marker."""
    path = Path(path)
    if path.name.endswith(BIT_SUFFIX):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
        return EMULATION_MARKER in read_bit_header(head, check_length=False).get("design", "")
    except (OSError, ValueError):
        return False


def verify_emulation_overlay(bit: Path | str, design: str | None = None, part: str | None = None) -> EmulationOverlay:
    """Check a generated overlay before it is loaded: the sidecar exists and says it was
    generated for emulation, the ``.bit`` and ``.hwh`` have the sizes and sha256 it lists, the
    ``.bit`` header carries the marker, and (if given) the design and part match. Raises
    :class:`EmulationOverlayError` naming the offending file."""
    bit = Path(bit)
    if not bit.name.endswith(BIT_SUFFIX):
        raise EmulationOverlayError(
            f"{bit}: not a generated emulation overlay (*{BIT_SUFFIX}); a real bitstream is loaded only "
            "from a bundle whose manifest lists its sha256")
    ov = _paths(bit.parent, bit.name[: -len(BIT_SUFFIX)])
    if not ov.sidecar.is_file():
        raise EmulationOverlayError(f"{ov.sidecar}: missing (the sidecar listing the overlay's sha256)")
    try:
        info = json.loads(ov.sidecar.read_text())
    except ValueError as exc:
        raise EmulationOverlayError(f"{ov.sidecar}: not valid JSON ({exc})") from exc
    if info.get("generated_for_emulation") is not True or info.get("marker") != EMULATION_MARKER:
        raise EmulationOverlayError(f"{ov.sidecar}: does not describe a generated emulation overlay")
    if design is not None and info.get("design") != design:
        raise EmulationOverlayError(f"{ov.sidecar}: generated for design {info.get('design')!r}, not {design!r}")
    if part is not None and info.get("part") != part:
        raise EmulationOverlayError(f"{ov.sidecar}: generated for part {info.get('part')!r}, not {part!r}")
    files = info.get("files", {})
    for path in (ov.bit, ov.hwh):
        entry = files.get(path.name)
        if entry is None:
            raise EmulationOverlayError(f"{ov.sidecar}: does not list {path.name}")
        if not path.is_file():
            raise EmulationOverlayError(f"{path}: missing")
        if path.stat().st_size != int(entry["bytes"]) or sha256_file(path) != entry["sha256"]:
            raise EmulationOverlayError(f"{path}: sha256 differs from {ov.sidecar.name} (altered)")
    try:
        header = read_bit_header(ov.bit.read_bytes())
    except ValueError as exc:
        raise EmulationOverlayError(f"{ov.bit}: {exc}") from exc
    if EMULATION_MARKER not in header.get("design", ""):
        raise EmulationOverlayError(f"{ov.bit}: header lacks the {EMULATION_MARKER} marker")
    return EmulationOverlay(ov.bit, ov.hwh, ov.sidecar, str(info["design"]))
