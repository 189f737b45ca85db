"""The lock-step host the engine testbenches share.

It drives ``start``/``k`` and valid/ready input streams and sinks one
output stream, one clock at a time: inputs are written after the falling
edge and outputs sampled in the ReadOnly phase that follows, and a
transfer counts on every stream where valid and ready were both high.
Gaps on the inputs and backpressure on the output come from a seeded PRNG.
Inputs that must be ignored carry random junk (a second PRNG, so the gap pattern is the
same): the run length and held arguments while ``start`` is low, a payload while its
``valid`` is low; an engine that reads them early or late fails the check.
Cycle figures count rising edges from the edge that accepted ``start``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from verif.runner import bench_dut


@dataclass
class Case:
    """One run as any host sees it, whatever drives the ports (the lock-step host, or the AXI
    driver): the run length, the held arguments by port, the beats of each input stream by
    stream name, and a check that raises unless the output beats are right."""
    length: int
    arguments: dict[str, int]
    inputs: dict[str, list[int]]
    check: Callable[[list[int]], object]


@dataclass
class Timing:
    """One run: the cycles of its accepted start, its done pulse and its last output beat."""
    start: int = -1
    done: int = -1
    last_out: int = -1
    tile: list[int] = field(default_factory=list)


class LockStepHost:
    """Runs a sequence of back-to-back engine runs and collects each run's output beats."""

    def __init__(self, dut, *, inputs: tuple[str, ...], output: str, rows_per_tile: int, seed: int,
                 gaps: tuple[float, ...] | None = None, stall: float = 0.0,
                 held: Sequence[str] = (), length_port: str = "k", maximum: int | None = None):
        self.dut = bench_dut(dut)
        self.inputs, self.output, self.rows = inputs, output, rows_per_tile
        self.gaps, self.stall = gaps or (0.0,) * len(inputs), stall
        self.held = tuple(held)              # further input ports the caller drives with start
        self.length = length_port            # the run-length input sampled with start
        self.maximum = maximum               # the longest run a start may ask for
        self.prng = random.Random(seed)
        self.junk = random.Random(seed ^ 0x5EED)
        self.cycle = 0

    def _port(self, stream: str, name: str):
        return getattr(self.dut, f"{stream}__{name}")

    def _junk(self, handle) -> None:
        handle.value = self.junk.getrandbits(len(handle))

    def sample(self, handle, name: str) -> int:
        """An output's value as an integer; an X or Z (a four-state simulator shows what a
        two-state one hides) fails the test, naming the port and the cycle."""
        value = handle.value
        if not value.is_resolvable:
            raise AssertionError(f"{name} is {value} (not 0/1) at cycle {self.cycle}")
        return int(value) if not hasattr(value, "to_unsigned") else value.to_unsigned()

    async def reset(self) -> None:
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        for name in ("start", self.length, *self.held):
            getattr(dut, name).value = 0
        for stream in self.inputs:
            self._port(stream, "valid").value = 0
            self._port(stream, "payload").value = 0
        self._port(self.output, "ready").value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        if self.maximum is not None:
            await self.offer_refused_starts()

    async def offer_refused_starts(self) -> None:
        """A start asking for no run (length 0) or a longer one than the engine takes (where the
        port can carry it) is ignored: the engine stays idle."""
        dut = self.dut
        port = getattr(dut, self.length)
        for length in (0, self.maximum + 1):
            if length >= 1 << len(port):
                continue
            await FallingEdge(dut.clk)
            dut.start.value, port.value = 1, length
            await ReadOnly()
            await FallingEdge(dut.clk)
            dut.start.value = 0
            await ReadOnly()
            assert not self.sample(dut.busy, "busy"), f"a start with {self.length} = {length} was accepted"

    async def run(self, ks: Sequence[int], beats: Sequence[Sequence[int]], limit: int,
                  on_start: Callable[[int], None] | None = None,
                  rows: Sequence[int] | None = None) -> list[Timing]:
        """Issue runs of depth ``ks`` back to back, feeding ``beats[i]`` to input stream ``i``.

        ``on_start(r)`` drives the extra ports of run ``r`` while its start is offered;
        ``rows[r]`` is the number of output beats run ``r`` makes (``rows_per_tile`` each
        unless given).
        Raises if the engine stops before every run's tile has left, or leaves beats unread.
        """
        dut = self.dut
        timings = [Timing() for _ in ks]
        rows = list(rows) if rows is not None else [self.rows] * len(ks)
        index = [0] * len(self.inputs)
        offered = [False] * len(self.inputs)
        started = finished = drained = 0
        for _ in range(limit):
            await FallingEdge(dut.clk)
            self.cycle += 1
            for i, stream in enumerate(self.inputs):
                if not offered[i] and index[i] < len(beats[i]) and self.prng.random() >= self.gaps[i]:
                    offered[i] = True
                    self._port(stream, "payload").value = beats[i][index[i]]
                elif not offered[i]:
                    self._junk(self._port(stream, "payload"))
                self._port(stream, "valid").value = int(offered[i])
            want_start = started < len(ks)
            dut.start.value = int(want_start)
            if want_start:
                getattr(dut, self.length).value = ks[started]
                if on_start is not None:
                    on_start(started)
            else:
                for name in (self.length, *self.held):
                    self._junk(getattr(dut, name))
            out_ready = self.prng.random() >= self.stall
            self._port(self.output, "ready").value = int(out_ready)

            await ReadOnly()
            for i, stream in enumerate(self.inputs):
                if offered[i] and self.sample(self._port(stream, "ready"), f"{stream}.ready"):
                    offered[i], index[i] = False, index[i] + 1
            done, busy = self.sample(dut.done, "done"), self.sample(dut.busy, "busy")
            if done:
                timings[finished].done = self.cycle
                finished += 1
            if want_start and (not busy or done):
                timings[started].start = self.cycle
                started += 1
            if out_ready and self.sample(self._port(self.output, "valid"), f"{self.output}.valid"):
                t = timings[drained]
                t.tile.append(self.sample(self._port(self.output, "payload"), f"{self.output}.payload"))
                if len(t.tile) == rows[drained]:
                    t.last_out = self.cycle
                    drained += 1
                    if drained == len(ks):
                        break
        else:
            raise AssertionError(f"engine stalled: {drained}/{len(ks)} tiles after {limit} cycles")
        assert index == [len(b) for b in beats], "engine left stream beats unread"
        return timings
