"""AXI-Stream source, sink/monitor and scoreboard for the kernels' cocotb benches.

Every driver works on the same per-cycle schedule: after a rising edge it drives the cycle's
values, in the ReadOnly phase it samples the settled handshake (valid & ready = a transfer at
the next edge), so the stamps are exact cycle numbers. Runs inside the simulator (imported by the
cocotb test modules, not by pytest).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

PERIOD_NS = 10


def config() -> dict:
    """The bench's settings from the pytest side (env FPGAREC_TB, JSON)."""
    return json.loads(os.environ["FPGAREC_TB"])


def save_result(name: str, result: dict) -> None:
    """Merge ``{name: result}`` into the JSON results file pytest reads afterwards."""
    path = Path(config()["results"])
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = result
    path.write_text(json.dumps(data, indent=1))


def cycle() -> int:
    return round(get_sim_time("ns") / PERIOD_NS)


async def start_and_reset(dut, clk, rst_n, idle: dict, cycles: int = 5) -> None:
    """Start the clock, hold the active-low synchronous reset for ``cycles`` cycles with the
    given idle values driven (valid low, ready low)."""
    Clock(clk, PERIOD_NS, unit="ns").start()
    for sig, value in idle.items():
        sig.value = value
    rst_n.value = 0
    for _ in range(cycles):
        await RisingEdge(clk)
    rst_n.value = 1
    await RisingEdge(clk)


def pack(values, bits: int) -> int:
    """Lanes (lane 0 in the least significant bits), two's complement per lane."""
    mask = (1 << bits) - 1
    word = 0
    for j, v in enumerate(values):
        word |= (int(v) & mask) << (j * bits)
    return word


def unpack(word: int, lanes: int, bits: int, signed: bool) -> list[int]:
    out = []
    for j in range(lanes):
        v = (word >> (j * bits)) & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


class Source:
    """Drives ``len(streams)`` AXI-Stream channels that share one data/valid/ready bus
    (channel m: data bits [m*width +: width], valid/ready bit m), each with its own random gaps
    (probability ``gap`` that an idle channel does not present its next beat in a cycle).
    Data is random junk while valid is low; once presented a beat is held until accepted.
    ``accepted[m]`` gets the cycle of each accepted beat."""

    def __init__(self, clk, data, valid, ready, streams, width: int, gap: float, rng: random.Random):
        self.clk, self.data, self.valid, self.ready = clk, data, valid, ready
        self.streams = [list(s) for s in streams]
        self.width, self.gap, self.rng = width, gap, rng
        self.accepted: list[list[int]] = [[] for _ in self.streams]

    async def run(self) -> None:
        n = len(self.streams)
        idx = [0] * n
        cur = [None] * n  # the beat presented on channel m, or None
        mask = (1 << self.width) - 1
        while any(idx[m] < len(self.streams[m]) for m in range(n)):
            word, valid = 0, 0
            for m in range(n):
                if cur[m] is None and idx[m] < len(self.streams[m]) and self.rng.random() >= self.gap:
                    cur[m] = self.streams[m][idx[m]]
                value = cur[m] if cur[m] is not None else self.rng.getrandbits(self.width)
                word |= (value & mask) << (m * self.width)
                valid |= (cur[m] is not None) << m
            self.data.value = word
            self.valid.value = valid
            await ReadOnly()
            ready = int(self.ready.value)
            t = cycle()
            for m in range(n):
                if cur[m] is not None and (ready >> m) & 1:
                    self.accepted[m].append(t)
                    idx[m] += 1
                    cur[m] = None
            await RisingEdge(self.clk)
        self.valid.value = 0


class Sink:
    """Output monitor with random back-pressure: ready low with probability ``bp`` per cycle,
    plus, with probability ``stall`` per cycle, a stall of ``stall_len`` cycles. Every
    transfer goes to the scoreboard with its cycle."""

    def __init__(self, clk, data, valid, ready, scoreboard, bp: float, rng: random.Random,
                 stall: float = 0.0, stall_len: tuple[int, int] = (10, 60)):
        self.clk, self.data, self.valid, self.ready = clk, data, valid, ready
        self.scoreboard, self.bp, self.rng = scoreboard, bp, rng
        self.stall, self.stall_len = stall, stall_len
        self.cycles: list[int] = []

    async def run(self) -> None:
        hold = 0
        while True:
            if hold:
                hold -= 1
                ready = 0
            elif self.stall and self.rng.random() < self.stall:
                hold = self.rng.randint(*self.stall_len)
                ready = 0
            else:
                ready = int(self.rng.random() >= self.bp)
            self.ready.value = ready
            await ReadOnly()
            if ready and int(self.valid.value):
                t = cycle()
                self.cycles.append(t)
                self.scoreboard.check(int(self.data.value), t)
            await RisingEdge(self.clk)


class Scoreboard:
    """Compares the output beats, in order, with the golden model's beats."""

    def __init__(self, expected: list[int], lanes: int, bits: int, signed: bool, per_item: int):
        self.expected, self.lanes, self.bits, self.signed = expected, lanes, bits, signed
        self.per_item = per_item
        self.received = 0
        self.errors: list[str] = []

    def check(self, word: int, t: int) -> None:
        i = self.received
        self.received += 1
        if i >= len(self.expected):
            self.errors.append(f"cycle {t}: extra output beat {i}: {self.decode(word)}")
            return
        if word != self.expected[i]:
            self.errors.append(
                f"cycle {t}: item {i // self.per_item} beat {i % self.per_item}: got "
                f"{self.decode(word)}, want {self.decode(self.expected[i])}")

    def decode(self, word: int) -> list[int]:
        return unpack(word, self.lanes, self.bits, self.signed)

    @property
    def done(self) -> bool:
        return self.received >= len(self.expected)

    def report(self) -> dict:
        return {"expected_beats": len(self.expected), "received_beats": self.received,
                "errors": self.errors[:10], "n_errors": len(self.errors)}


async def wait_done(clk, scoreboard: Scoreboard, timeout: int, drain: int = 30) -> bool:
    """Wait until every expected beat arrived (False on timeout), then ``drain`` more cycles
    so that an extra beat would be seen."""
    for _ in range(timeout):
        if scoreboard.done:
            break
        await RisingEdge(clk)
    else:
        return False
    for _ in range(drain):
        await RisingEdge(clk)
    return True


def spans(stamps: list[int], per_item: int) -> list[tuple[int, int]]:
    """(first, last) cycle of each item's beats."""
    return [(stamps[i], stamps[i + per_item - 1]) for i in range(0, len(stamps) - per_item + 1, per_item)]


def steady_cycles(starts: list[int]) -> float:
    """Cycles per item between item starts, without the first item (pipeline fill)."""
    if len(starts) < 3:
        return float("nan")
    return (starts[-1] - starts[1]) / (len(starts) - 2)
