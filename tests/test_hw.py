"""The shared hardware blocks on their own, in Amaranth's simulator (fast, no Verilator)."""
from __future__ import annotations

import random

from amaranth.back import verilog
from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.tile_buffer import RowAccumulator, TileDrain


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


class _BankThenDrain(wiring.Component):
    """A row bank feeding a drain, as the weight-stationary engine wires them: the whole tile
    lives inside, the ports carry one row."""

    def __init__(self, row: data.ArrayLayout, rows: int):
        self._row, self._rows = row, rows
        super().__init__({"write": In(1), "index": In(range(rows)), "row": In(row), "load": In(1),
                          "o": Out(stream.Signature(row))})

    def elaborate(self, platform):
        m = Module()
        bank = m.submodules.bank = RowAccumulator(self._row, self._rows)
        drain = m.submodules.drain = TileDrain(self._row, self._rows)
        m.d.comb += [bank.write.eq(self.write), bank.first.eq(1), bank.index.eq(self.index),
                     bank.row.eq(self.row), drain.load.eq(self.load),
                     *(drain.tile[r].eq(bank.tile[r]) for r in range(self._rows))]
        wiring.connect(m, drain.o, wiring.flipped(self.o))
        return m


def test_a_tile_wider_than_one_amaranth_signal_builds_and_drains_row_by_row():
    """17 rows of 64 x 64-bit sums (69,632 bits) exceed the 65,536 bits one Amaranth signal
    can hold; the blocks keep a signal per row, so a 64 x 64 systolic tile of 24-bit sums
    builds, and rows leave in order."""
    row, rows = data.ArrayLayout(signed(64), 64), 17
    verilog.convert(_BankThenDrain(row, rows), name="bank_then_drain")   # AssertionError when one signal
    dut = _BankThenDrain(row, rows)
    rng = random.Random(1)
    tile = [[rng.randrange(-2 ** 63, 2 ** 63) for _ in range(64)] for _ in range(rows)]

    async def bench(ctx):
        ctx.set(dut.write, 1)
        for r in range(rows):
            ctx.set(dut.index, r)
            for j in range(64):
                ctx.set(dut.row[j], tile[r][j])
            await ctx.tick()
        ctx.set(dut.write, 0)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.o.ready, 1)
        got = []
        while ctx.get(dut.o.valid):
            got.append([ctx.get(dut.o.payload[j]) for j in range(64)])
            await ctx.tick()
        assert got == tile

    _run(dut, bench)


def test_the_row_accumulator_stores_then_adds_with_wraparound():
    lane = signed(8)
    dut = RowAccumulator(data.ArrayLayout(lane, 3), 4)
    rng = random.Random(2)
    model = [[0] * 3 for _ in range(4)]

    def wrap(v):
        return (v + 128) % 256 - 128

    async def bench(ctx):
        for _ in range(60):
            index, first = rng.randrange(4), rng.random() < 0.3
            values = [rng.randrange(-128, 128) for _ in range(3)]
            ctx.set(dut.index, index)
            ctx.set(dut.first, first)
            ctx.set(dut.write, 1)
            for j, v in enumerate(values):
                ctx.set(dut.row[j], v)
            await ctx.tick()
            model[index] = values if first else [wrap(a + b) for a, b in zip(model[index], values)]
            assert [[ctx.get(dut.tile[r][j]) for j in range(3)] for r in range(4)] == model

    _run(dut, bench)
