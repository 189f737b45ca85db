"""The shared hardware blocks on their own, in Amaranth's simulator (fast, no Verilator)."""
from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from cost_models.lut_mpgemm import table_adders
from generators.lut_mpgemm import LutMpGemmParams, entry_bits, table_coefficients
from generators.lut_mpgemm import build as lut_build
from generators.mac_mpgemm import MacMpGemmParams
from generators.mac_mpgemm import build as mac_build
from generators.mpgemm import TERNARY_CODE
from hw.adders import signed_sum
from hw.block_loader import BlockLoader
from hw.delay import DelayLine
from hw.lut import SerialTableFill, TableBuilder
from hw.skew import SkewBuffer
from hw.systolic_array import OutputStationaryArray
from hw.tile_buffer import DiagonalDrain
from tests.yosys_runs import run_yosys


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


class _FillThenDrain(wiring.Component):
    """Rows written one per cycle into registers feeding a DiagonalDrain, as the array's
    accumulators feed it: the whole tile lives inside, the ports carry one row (a design's
    top-level inputs travel as one netlist value)."""

    def __init__(self, row: data.ArrayLayout, rows: int):
        self._row, self._rows = row, rows
        super().__init__({"write": In(1), "index": In(range(rows)), "row": In(row), "launch": In(1),
                          "free": Out(1), "o": Out(stream.Signature(row))})

    def elaborate(self, platform):
        m = Module()
        drain = m.submodules.drain = DiagonalDrain(self._row, self._rows)
        for r in range(self._rows):
            held = Signal(self._row, name=f"held{r}")
            with m.If(self.write & (self.index == r)):
                m.d.sync += held.eq(self.row)
            m.d.comb += drain.tile[r].eq(held)
        m.d.comb += [drain.launch.eq(self.launch), self.free.eq(drain.free)]
        wiring.connect(m, drain.o, wiring.flipped(self.o))
        return m


def test_a_tile_wider_than_one_amaranth_signal_builds_and_drains_row_by_row():
    """17 rows of 64 x 64-bit sums (69,632 bits) exceed the 65,536 bits one Amaranth signal
    can hold; the output bank keeps a signal per row, so a 64 x 64 systolic tile of 24-bit
    sums builds. Captured along the anti-diagonals from one launch, rows leave in order, and
    the bank is free again only once the last has left."""
    row, rows = data.ArrayLayout(signed(64), 64), 17
    verilog.convert(_FillThenDrain(row, rows), name="fill_then_drain")   # AssertionError when one signal
    dut = _FillThenDrain(row, rows)
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
        assert ctx.get(dut.free)
        ctx.set(dut.launch, 1)
        await ctx.tick()
        ctx.set(dut.launch, 0)
        for _ in range(rows + 64 - 1):                  # through its launch register, every diagonal
            assert not ctx.get(dut.free) and not ctx.get(dut.o.valid)
            await ctx.tick()
        ctx.set(dut.o.ready, 1)
        got = []
        while ctx.get(dut.o.valid):
            assert not ctx.get(dut.free)
            got.append([ctx.get(dut.o.payload[j]) for j in range(64)])
            await ctx.tick()
        assert got == tile and ctx.get(dut.free)

    _run(dut, bench)


@pytest.mark.parametrize("ternary, symmetric", [(False, False), (False, True), (True, False), (True, True)])
def test_table_builder_entries_and_the_adder_count_it_publishes(ternary, symmetric):
    """Every entry is its coefficients times the activations, and the adders the RTL holds
    (``$add``, ``$sub`` and ``$neg`` cells in Amaranth's RTLIL) are the count the cost model
    reads: one per entry of two or more terms for the ternary half tables and the {0,1}
    tables (the least possible), Gray-code order for {-1,+1}."""
    for g in range(1, 6):
        coefficients = table_coefficients(ternary, symmetric, g)
        shape = signed(int(entry_bits(8, g)))
        cells = [line.split()[1] for line in rtlil.convert(TableBuilder(coefficients, 8, shape), name="tb")
                 .splitlines() if line.strip().startswith("cell ")]
        dut = TableBuilder(coefficients, 8, shape)
        adders = sum(cells.count(kind) for kind in ("$add", "$sub", "$neg"))
        assert adders == dut.adders == table_adders(TERNARY_CODE if ternary else 0, g, symmetric)
        several = sum(1 for row in coefficients if sum(1 for c in row if c) >= 2)
        if ternary == symmetric:
            assert dut.adders == several
        elif not ternary:
            assert dut.adders <= several + g - 1
        rng = random.Random(g)
        cases = [[-128] * g, [127] * g] + [[rng.randrange(-128, 128) for _ in range(g)] for _ in range(6)]

        async def bench(ctx, dut=dut, coefficients=coefficients, cases=cases, g=g):
            for a in cases:
                for t in range(g):
                    ctx.set(dut.a[t], a[t])
                await ctx.delay(1e-9)
                assert [ctx.get(dut.table[e]) for e in range(len(coefficients))] == \
                    [sum(c * x for c, x in zip(row, a)) for row in coefficients]

        sim = Simulator(dut)
        sim.add_testbench(bench)
        sim.run()


@pytest.mark.parametrize("ternary, symmetric", [(False, False), (False, True), (True, False), (True, True)])
def test_a_serial_fill_writes_every_entry_once_with_one_adder_back_to_back(ternary, symmetric):
    """Distributed RAM takes one entry per cycle: the fill writes each entry exactly once, with
    the table's value, in ``cycles`` cycles (entries, plus the steps toward a first entry that
    is not zero), and a start in its last cycle runs the next fill with no cycle between."""
    for g in range(1, 6):
        coefficients = table_coefficients(ternary, symmetric, g)
        dut = SerialTableFill(coefficients, 8, signed(int(entry_bits(8, g))))
        nonzero_first = 0 if not (symmetric and not ternary) else g - 1
        assert dut.cycles == len(coefficients) + nonzero_first
        assert all(abs(s.delta) <= 2 for s in dut.schedule)
        rng = random.Random(g)
        cases = [[-128] * g, [127] * g] + [[rng.randrange(-128, 128) for _ in range(g)] for _ in range(3)]
        cells = rtlil.convert(dut, name="fill")
        assert sum(line.split()[1] in ("$add", "$sub", "$neg") for line in cells.splitlines()
                   if line.strip().startswith("cell ")) == 2      # the fill's adder and the step counter

        async def bench(ctx, dut=dut, coefficients=coefficients, cases=cases, g=g):
            for t in range(g):
                ctx.set(dut.a[t], cases[0][t])
            ctx.set(dut.start, 1)
            await ctx.tick()
            for n, a in enumerate(cases):
                written = {}
                for cycle in range(dut.cycles):
                    following = cycle == dut.cycles - 1 and n + 1 < len(cases)
                    ctx.set(dut.start, following)                # the next fill starts in the last cycle
                    for t in range(g):                           # sampled at start: others do not matter
                        ctx.set(dut.a[t], cases[n + 1][t] if following else 0)
                    assert ctx.get(dut.busy)
                    if ctx.get(dut.we):
                        address = ctx.get(dut.waddr)
                        assert address not in written
                        written[address] = ctx.get(dut.wdata)
                    await ctx.tick()
                assert written == {e: sum(c * x for c, x in zip(row, a)) for e, row in enumerate(coefficients)}
            assert not ctx.get(dut.busy)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()


def test_delay_line_advances_only_while_enabled():
    dut = DelayLine(unsigned(8), 3)
    rng = random.Random(3)

    async def bench(ctx):
        history = []                                   # values the line took in, oldest first
        for _ in range(40):
            value, en = rng.randrange(256), rng.random() < 0.6
            ctx.set(dut.i, value)
            ctx.set(dut.en, en)
            expected = history[-3] if len(history) >= 3 else 0
            assert ctx.get(dut.o) == expected
            await ctx.tick()
            if en:
                history.append(value)

    _run(dut, bench)


@pytest.mark.parametrize("deskew", [False, True])
def test_skew_buffer_delays_lane_i_by_its_depth(deskew):
    lanes = 4
    dut = SkewBuffer(unsigned(8), lanes, deskew=deskew)
    inputs = [[(10 * c + lane) % 256 for lane in range(lanes)] for c in range(12)]

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for cycle, vector in enumerate(inputs):
            for lane in range(lanes):
                ctx.set(dut.i[lane], vector[lane])
            for lane in range(lanes):
                depth = lanes - 1 - lane if deskew else lane
                expected = inputs[cycle - depth][lane] if cycle >= depth else 0
                assert ctx.get(dut.o[lane]) == expected
            await ctx.tick()

    _run(dut, bench)


def test_output_stationary_array_computes_a_matrix_product_from_skewed_operands():
    """Two tiles one bubble apart: as the bubble's clear passes PE (i, j) along its
    anti-diagonal, that PE holds its element of the finished product, and restarts."""
    rows, cols, k = 3, 2, 5
    dut = OutputStationaryArray(rows, cols, signed(8), signed(8), signed(20))
    rng = np.random.default_rng(4)
    tiles = [(rng.integers(-128, 128, (rows, k)), rng.integers(-128, 128, (k, cols))) for _ in range(2)]
    pairs = [(a[:, kk], b[kk, :]) for a, b in tiles for kk in range(k)]
    order = pairs[:k] + [None] + pairs[k:] + [None]          # None: the bubble after each tile
    bubbles = [n for n, item in enumerate(order) if item is None]

    async def bench(ctx):
        got = [np.zeros((rows, cols), dtype=np.int64) for _ in tiles]
        for cycle in range(len(order) + rows + cols - 2):    # lane i skewed by i cycles
            def entry(n):
                return order[n] if 0 <= n < len(order) else None
            for i in range(rows):
                ctx.set(dut.a_in[i], int(entry(cycle - i)[0][i]) if entry(cycle - i) else 0)
            for j in range(cols):
                ctx.set(dut.b_in[j], int(entry(cycle - j)[1][j]) if entry(cycle - j) else 0)
            ctx.set(dut.clear, sum(1 << d for d in range(rows + cols - 1) if cycle - d in bubbles))
            for t, start in enumerate(bubbles):
                for i in range(rows):
                    for j in range(cols):
                        if cycle == start + i + j:
                            got[t][i, j] = ctx.get(dut.acc[i][j])
            await ctx.tick()
        for (a, b), tile in zip(tiles, got):
            assert (tile == a @ b).all()

    _run(dut, bench)


def test_block_loader_fills_buffers_only_as_they_are_released():
    dut = BlockLoader(8, beats=2, block=3, buffers=2, max_keys=16, max_blocks=8)
    keys = 7                                            # blocks of 3, 3 and 1 items

    async def bench(ctx):
        ctx.set(dut.keys, keys)
        ctx.set(dut.begin, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        ctx.set(dut.i.valid, 1)
        writes, released = [], 0
        for beat in range(200):
            ctx.set(dut.i.payload, beat % 256)
            ctx.set(dut.released, released)
            if ctx.get(dut.w_en):
                writes.append((ctx.get(dut.w_addr), ctx.get(dut.w_data)))
            assert ctx.get(dut.loaded) <= released + 2  # never overwrites a buffer in use
            if ctx.get(dut.loaded) == released + 2 and beat % 7 == 0:
                released += 1                           # the consumer frees a buffer now and then
            await ctx.tick()
            if ctx.get(dut.loaded) == 3:
                break
        assert ctx.get(dut.loaded) == 3 and len(writes) == keys * 2
        bases = [0, 6, 0]                               # block b in buffer b % 2, 3 items x 2 beats each
        expected = [bases[i // 3] + (i % 3) * 2 + beat for i in range(keys) for beat in range(2)]
        assert [addr for addr, _ in writes] == expected

    _run(dut, bench)


def test_every_engine_speaks_the_run_signature():
    """The start/length/busy/done ports of every engine are the run protocol's members."""
    from dse.families import FAMILIES
    from hw.run_control import RunSignature

    for name, family in FAMILIES.items():
        if family.estimate is None:             # a composed family has no single engine
            continue
        engine = family.build(family.params())
        engine._MustUse__silence = True            # built for its signature only, never elaborated
        members = engine.signature.members
        length = "n" if "n" in members else "k"
        maximum = members[length].shape.stop - 1 if hasattr(members[length].shape, "stop") else None
        run = RunSignature(length, maximum)
        assert all(members[k] == member for k, member in run.members.items()), name


class _SignedSum(wiring.Component):
    """``total + sum_t (-1)^n_t v_t`` through :func:`hw.adders.signed_sum`."""

    def __init__(self, terms: int, value_bits: int, width: int):
        self._terms, self._width = terms, width
        super().__init__({"total": In(signed(width)), "values": In(data.ArrayLayout(signed(value_bits), terms)),
                          "negates": In(terms), "out": Out(signed(width))})

    def elaborate(self, platform):
        m = Module()
        terms = [(self.values[t], self.negates[t]) for t in range(self._terms)]
        m.d.comb += self.out.eq(signed_sum(m, self.total, terms, self._width))
        return m


@pytest.mark.parametrize("terms", [1, 2, 3, 5])
def test_signed_sum_is_exact_modulo_its_width_with_every_sign(terms):
    value_bits, width = 6, 9
    dut = _SignedSum(terms, value_bits, width)
    lo, hi = -(1 << (value_bits - 1)), (1 << (value_bits - 1)) - 1
    rng = random.Random(terms)
    cases = [([lo] * terms, (1 << terms) - 1, -(1 << (width - 1))), ([hi] * terms, 0, (1 << (width - 1)) - 1),
             ([lo] * terms, 0, 0), ([0] * terms, (1 << terms) - 1, 0)]
    cases += [([rng.randint(lo, hi) for _ in range(terms)], rng.getrandbits(terms),
               rng.randint(-(1 << (width - 1)), (1 << (width - 1)) - 1)) for _ in range(200)]

    async def bench(ctx):
        for values, negates, total in cases:
            ctx.set(dut.total, total)
            ctx.set(dut.negates, negates)
            for t, v in enumerate(values):
                ctx.set(dut.values[t], v)
            want = total + sum(-v if negates >> t & 1 else v for t, v in enumerate(values))
            want = (want + (1 << (width - 1))) % (1 << width) - (1 << (width - 1))
            await ctx.delay(1e-9)
            assert ctx.get(dut.out) == want, (values, negates, total)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def _cells_after_alumacc(component, tmp_path) -> dict[str, int]:
    """Yosys's cells for ``component`` after the coarse steps the FPGA flows run up to
    ``alumacc`` (which merges adds into ``$macc`` cells, later lowered to full adders in LUTs)."""
    run_yosys(component, tmp_path, "opt; wreduce; peepopt; opt_clean; alumacc; opt_clean; tee -o stat.txt stat")
    stat = (tmp_path / "stat.txt").read_text()
    return {name: int(count) for count, name in re.findall(r"^\s+(\d+)\s+(\$\w+)$", stat, re.M)}


def _merged_or_multiplied(cells: dict[str, int]) -> list[str]:
    return [c for c in cells if c.startswith(("$macc", "$mul", "$neg", "$sub"))]


def test_signed_sum_stays_on_two_operand_adders_after_yosys_alumacc(tmp_path):
    """The point of :mod:`hw.adders`: Yosys must not merge the adds into a ``$macc``; each
    stays an ``$alu`` (a carry chain), one per term."""
    cells = _cells_after_alumacc(_SignedSum(4, 8, 14), tmp_path)
    assert not _merged_or_multiplied(cells) and cells.get("$alu") == 4, cells


@pytest.mark.parametrize("params", [
    MacMpGemmParams(n_tile=3, k_lanes=3, weight_format="ternary", w_bits=2),
    MacMpGemmParams(n_tile=3, k_lanes=2, weight_format="uint", w_bits=1),
    MacMpGemmParams(n_tile=3, k_lanes=2, weight_format="int", w_bits=1),
    LutMpGemmParams(n_tile=3, weight_format="uint", w_bits=3, symmetric=False),
    LutMpGemmParams(n_tile=3, weight_format="uint", w_bits=4, symmetric=True, planes_per_cycle=2,
                    table_source="external"),
], ids=lambda p: f"{p.family}_{p.weight_format.value}{p.w_bits}")
def test_engines_accumulate_and_correct_on_carry_chains_without_multipliers(params, tmp_path):
    """The multiply-free MAC (weights in {-1, 0, +1}) has no multiplier, and neither it nor the
    LUT engine's accumulation and zero-point correction leaves a multi-operand adder for Yosys
    to lower to full adders (the LUT engine's on-chip {-1,+1} table build is checked apart, by
    its adder count)."""
    build = mac_build if params.family == "mac_mpgemm" else lut_build
    cells = _cells_after_alumacc(build(params), tmp_path)
    assert not _merged_or_multiplied(cells) and cells.get("$alu", 0) > 0, cells


def test_the_mac_multiplies_weights_of_two_bits_or_more(tmp_path):
    cells = _cells_after_alumacc(mac_build(MacMpGemmParams(n_tile=2, k_lanes=2, w_bits=2)), tmp_path)
    assert any(c.startswith(("$mul", "$macc")) for c in cells), cells


def _accumulator_flip_flops(component, tmp_path) -> dict[str, set[str]]:
    """Yosys's flip-flop cell types (after ``proc; flatten; opt``, which finds clock enables and
    synchronous resets) holding each bit of the engine's ``acc<row>`` registers."""
    run_yosys(component, tmp_path, "opt; write_json ffs.json")
    module = json.loads((tmp_path / "ffs.json").read_text())["modules"]["top"]
    acc_bits = {bit for name, net in module["netnames"].items() if re.fullmatch(r"acc\d+", name)
                for bit in net["bits"]}
    kinds: dict[str, set[str]] = {}
    for cell in module["cells"].values():
        if "dff" in cell["type"]:
            for bit in cell["connections"]["Q"]:
                if bit in acc_bits:
                    kinds.setdefault(cell["type"], set()).add(bit)
    return kinds


@pytest.mark.parametrize("params", [MacMpGemmParams(m_tile=2, n_tile=3, k_lanes=2, w_bits=4),
                                    LutMpGemmParams(m_tile=2, n_tile=3)], ids=lambda p: p.family)
def test_accumulators_take_their_clear_and_enable_in_the_flip_flop(params, tmp_path):
    """Every accumulator bit is a flip-flop with a synchronous reset (the run's clear) and a clock
    enable (a consumed beat), so FPGA flows put no LUT in front of it; a clear spread over the
    FSM's states or a second reset leaves a mux per bit instead."""
    build = mac_build if params.family == "mac_mpgemm" else lut_build
    kinds = _accumulator_flip_flops(build(params), tmp_path)
    assert set(kinds) == {"$sdffe"}, {kind: len(bits) for kind, bits in kinds.items()}
