"""cocotb testbench of any family's AXI wrapper, driven as software would drive it.

The host is :class:`driver.axi.Driver` over the simulation backend (cocotbext-axi's
AXI4-Lite manager, AXI4-Stream sources and sink), so the driver users run on a board is the
code under test here. Runs come from the family's own bench (its ``case(p, rng, length)``)
and are checked by the family's golden model. A monitor samples the ports once a cycle to
hold the wrapper's latency exact: the cycle of the AXI4-Lite write that sets ``START``, the
cycle of each run's last output beat (``tlast``) and the cycle ``irq`` rises.
"""
from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from driver.axi import Driver
from driver.sim import SimBackend
from verif.runner import bench_params, bench_report


@dataclass
class Monitor:
    """Cycle numbers of the events the latency figures are measured between."""
    dut: object
    ctrl: int
    out: str
    control: str
    irq: str
    cycle: int = 0
    start_writes: list[int] = field(default_factory=list)
    last_beats: list[int] = field(default_factory=list)
    irq_rises: list[int] = field(default_factory=list)

    async def watch(self) -> None:
        dut, was = self.dut, 0
        tvalid, tready, tlast = (getattr(dut, f"{self.out}_{n}") for n in ("tvalid", "tready", "tlast"))
        awvalid, awready, awaddr, wstrb, wdata = (getattr(dut, f"{self.control}_{n}") for n in
                                                  ("awvalid", "awready", "awaddr", "wstrb", "wdata"))
        irq = getattr(dut, self.irq)
        while True:
            await FallingEdge(dut.aclk)
            await ReadOnly()
            self.cycle += 1
            if (awvalid.value and awready.value and int(awaddr.value) >> 2 == self.ctrl >> 2
                    and int(wstrb.value) & 1 and int(wdata.value) & 1):
                self.start_writes.append(self.cycle)
            if tvalid.value and tready.value and tlast.value:
                self.last_beats.append(self.cycle)
            if irq.value and not was:
                self.irq_rises.append(self.cycle)
            was = int(irq.value)


class Bench:
    def __init__(self, dut, *, gap: float = 0.0, stall: float = 0.0, salt: int = 0):
        spec = bench_params()
        module, _, name = spec["params_class"].partition(":")
        self.p = getattr(importlib.import_module(module), name).from_dict(spec["params"])
        self.cases = importlib.import_module(spec["cases"])
        self.map = spec["axi"]
        self.dut = dut
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + salt)
        self.backend = SimBackend(dut, self.map, seed=cocotb.RANDOM_SEED + salt, gap=gap, stall=stall)
        self.driver = Driver(self.map, self.backend)
        out = next(s["port"] for s in self.map["streams"] if s["direction"] == "out")
        self.monitor = Monitor(dut, self.driver.offset("CTRL"), out, self.map["control"], self.map["irq"])

    def hold_output(self, held: bool) -> None:
        """Hold the output stream's tready low (``held``), or give it back its seeded stalls:
        a run whose last beat cannot leave keeps the wrapper busy for as long as the bench needs,
        however short the design's runs are."""
        for sink in self.backend.sinks.values():
            if held:
                sink.set_pause_generator(itertools.repeat(True))
            else:
                sink.set_pause_generator(self.backend.stalls(sink))

    async def reset(self) -> None:
        await reset_aclk(self.dut)
        cocotb.start_soon(self.monitor.watch())

    def case(self, length: int):
        return self.cases.case(self.p, self.rng, length)

    def lengths(self, count: int, cap: int = 24) -> list[int]:
        """Short runs (the sim stays quick), the first of length 1."""
        top = min(self.map["maximum"], cap)
        return [1, *map(int, self.rng.integers(1, top, size=count - 1, endpoint=True))]

    def long_lengths(self, count: int, cap: int = 48) -> list[int]:
        """Runs long enough that software writes the next start while the engine is busy."""
        top = min(self.map["maximum"], cap)
        return list(map(int, self.rng.integers((top + 1) // 2, top, size=count, endpoint=True)))


async def reset_aclk(dut) -> None:
    """Start ``aclk`` and hold ``aresetn`` low for 4 cycles, then 2 cycles out of reset: the
    AXI tops' own reset takes a cycle each way (see ``generators.axi._AxiClocked``)."""
    Clock(dut.aclk, 10, unit="ns").start()
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)


async def until_count(backend, offset: int, count: int, limit: int = 20_000) -> None:
    """Poll a counter register until it reaches ``count``; fail rather than hang."""
    for _ in range(limit):
        if await backend.read(offset) >= count:
            return
    raise AssertionError(f"the counter at 0x{offset:02x} did not reach {count} in {limit} reads")


@cocotb.test()
async def identity_and_exact_latency(dut):
    """The identification registers match the map; isolated runs are right, and the wrapper adds
    exactly its stated latency to the engine's own cycles on each side."""
    bench = Bench(dut)
    await bench.reset()
    drv = bench.driver
    await drv.identify()
    await bench.backend.write(drv.offset("IER"), 1)
    for length in bench.lengths(3):
        case = bench.case(length)
        case.check(await drv.run(case.length, case.inputs, case.arguments))
        mon = bench.monitor
        assert len(mon.start_writes) == len(mon.last_beats) == len(mon.irq_rises)
        bench_report({"test": "identity_and_exact_latency", bench.map["length"]: length,
                      "write_to_last_beat": mon.last_beats[-1] - mon.start_writes[-1],
                      "last_beat_to_irq": mon.irq_rises[-1] - mon.last_beats[-1]})
        await ClockCycles(dut.aclk, 3)
    assert await bench.backend.read(drv.offset("RUNS")) == 3


@cocotb.test()
async def back_to_back_under_backpressure(dut):
    """Gaps on every input, a stalling output; each next start is written while the engine is
    busy (queued) with its arguments written as soon as the previous start was taken."""
    bench = Bench(dut, gap=0.3, stall=0.4, salt=1)
    await bench.reset()
    drv, backend = bench.driver, bench.backend
    cases = [bench.case(length) for length in bench.long_lengths(3)]
    for case in cases:
        await drv.queue_inputs(case.inputs)
    busy_starts = 0
    bench.hold_output(True)             # the first run cannot finish before the second start is written,
    for i, case in enumerate(cases):    # even on a design whose runs are shorter than a register read
        await drv.set_arguments(case.length, case.arguments)
        if i and (await drv.status())["BUSY"]:
            busy_starts += 1
        await drv.start()
        if i:
            bench.hold_output(False)
        await until_count(backend, drv.offset("STARTS"), i + 1)   # taken: the arguments are free
    for case in cases:
        case.check(await drv.receive())
    for _ in range(1000):
        state = await drv.status()
        if state["IDLE"]:
            break
    assert state["IDLE"] and not state["BUSY"] and not state["ERROR"]
    assert await backend.read(drv.offset("RUNS")) == len(cases)
    assert busy_starts >= 1, "no start was written while the engine was busy"


@cocotb.test()
async def refused_length_and_auto_restart(dut):
    """A start with a run length outside 1..maximum is dropped with ERROR and no hang; with
    AUTO_RESTART one start runs the engine again until software clears it."""
    bench = Bench(dut, salt=2)
    await bench.reset()
    drv, backend = bench.driver, bench.backend
    maximum = bench.map["maximum"]
    length_reg = drv.regs[bench.map["length"].upper()]
    for bad in (0, maximum + 1):
        if bad >= 1 << length_reg["bits"]:
            continue
        await backend.write(length_reg["offset"], bad)
        await drv.start()
        await ClockCycles(dut.aclk, 2)
        state = await drv.status()
        assert state["ERROR"] and state["IDLE"] and not state["BUSY"], (bad, state)
        assert await backend.read(drv.offset("STARTS")) == 0
    case = bench.case(min(maximum, 48))
    for _ in range(3):                                      # room for one restart past the stop
        await drv.queue_inputs(case.inputs)
    await drv.set_arguments(case.length, case.arguments)
    await drv.start(auto_restart=True)
    await until_count(backend, drv.offset("STARTS"), 2)
    await backend.write(drv.offset("CTRL"), 0)              # stop restarting
    taken = await backend.read(drv.offset("STARTS"))
    assert taken >= 2, taken          # a design faster than the register writes restarts more than once
    for _ in range(taken - 3):        # before the stop lands: each restart it took gets its inputs
        await drv.queue_inputs(case.inputs)
    for _ in range(taken):
        case.check(await drv.receive())
    await drv.wait_done()
    await ClockCycles(dut.aclk, 20)
    assert await backend.read(drv.offset("STARTS")) == taken
    assert await backend.read(drv.offset("RUNS")) == taken
    assert (await drv.status())["IDLE"]
