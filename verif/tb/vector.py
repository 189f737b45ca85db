"""cocotb testbench for the vector unit.

The lock-step host (:mod:`verif.tb.host`) drives ``start``/``n`` with the held ``op`` and
``shift``, feeds ``x`` and ``y`` beats and sinks ``z``; every run's output is checked against
the golden model (:mod:`verif.golden.vector`) and its cycles are reported for the pytest
side to hold against the cost model. Inputs mix uniform values with the extremes (the
two's complement limits, zero, one, minus one), so saturation, ``|lo|`` and ties are reached
in every test, and shifts cover the port's whole range.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from generators.lanes import pack_lanes, unpack_lanes
from generators.vector import VectorOpcode, VectorParams
from verif.golden.vector import Unit, limits
from verif.runner import bench_params, bench_report
from verif.tb.host import LockStepHost, Timing


@dataclass
class Run:
    """One run: ``x`` (and ``y`` for a binary op) are ``n x lanes``."""
    op: VectorOpcode
    shift: int
    x: np.ndarray
    y: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def out_beats(self) -> int:
        return 1 if self.op.reduction else self.n


def _params() -> VectorParams:
    return VectorParams.from_dict(bench_params()["params"])


def _values(p: VectorParams, rng: np.random.Generator, shape) -> np.ndarray:
    """Uniform values, a quarter of them replaced by the extremes."""
    lo, hi = limits(p.bits)
    values = rng.integers(lo, hi, size=shape, endpoint=True)
    edges = np.array([lo, hi, 0, 1, -1, lo + 1, hi - 1])
    pick = rng.random(shape) < 0.25
    return np.where(pick, edges[rng.integers(0, len(edges), size=shape)], values)


def _shift(p: VectorParams, rng: np.random.Generator) -> int:
    top = (1 << (p.shift_limit - 1).bit_length()) - 1            # the port's largest value
    picks = [0, 1, p.bits - 1, p.bits, p.wide_bits - 1, top]
    return int(picks[rng.integers(len(picks))] if rng.random() < 0.5 else rng.integers(0, top + 1))


def random_run(p: VectorParams, rng: np.random.Generator, op: VectorOpcode, n: int) -> Run:
    x = _values(p, rng, (n, p.lanes))
    return Run(op, _shift(p, rng), x, _values(p, rng, (n, p.lanes)) if op.binary else None)


def expected(p: VectorParams, unit: Unit, run: Run) -> list[int]:
    """The run's ``z`` beats as the golden model has them (``unit`` carries the scalar on)."""
    out = unit.run(run.op, run.x, run.y, run.shift)
    return out if run.op.reduction else pack_lanes(np.reshape(out, run.x.shape), p.bits)


class Host(LockStepHost):
    """Issues vector runs back to back and checks every output beat against the golden model."""

    def __init__(self, dut, params: VectorParams, *, seed: int, gap: float = 0.0, stall: float = 0.0):
        super().__init__(dut, inputs=("x_stream", "y_stream"), output="z_stream", rows_per_tile=1, seed=seed,
                         gaps=(gap, gap), stall=stall, held=("op", "shift"), length_port="n",
                         maximum=params.max_beats)
        self.p = params
        self.unit = Unit(params.lanes, params.bits, params.gate_table)

    async def reset(self) -> None:
        await super().reset()
        self.unit = Unit(self.p.lanes, self.p.bits, self.p.gate_table)

    async def execute(self, runs: list[Run]) -> list[Timing]:
        p = self.p
        x_beats = [w for r in runs for w in pack_lanes(r.x, p.bits)]
        y_beats = [w for r in runs if r.y is not None for w in pack_lanes(r.y, p.bits)]

        def held(index: int) -> None:
            self.dut.op.value, self.dut.shift.value = int(runs[index].op), runs[index].shift
        limit = 8 * sum(r.n + p.latency(r.op) for r in runs) + 200
        timings = await self.run([r.n for r in runs], [x_beats, y_beats], limit, on_start=held,
                                 rows=[r.out_beats for r in runs])
        for i, (run, t) in enumerate(zip(runs, timings, strict=True)):
            want = expected(p, self.unit, run)
            if t.tile != want:
                got = [unpack_lanes(w, p.lanes, p.bits).tolist() for w in t.tile]
                raise AssertionError(f"run {i} {run.op.name} n={run.n} shift={run.shift}: got {got[:4]} "
                                     f"(raw {t.tile[:4]}), want raw {want[:4]}")
        return timings


def _report(test: str, runs: list[Run], timings: list[Timing], *, stalled: bool) -> None:
    for run, t in zip(runs, timings, strict=True):
        bench_report({"test": test, "op": run.op.name, "n": run.n, "start_to_done": t.done - t.start,
                      "start_to_last_z": t.last_out - t.start, "stalled": stalled})


async def _issue(dut, test: str, runs: list[Run], seed: int, **stalls) -> None:
    p = _params()
    host = Host(dut, p, seed=seed, **stalls)
    await host.reset()
    timings = await host.execute(runs)
    _report(test, runs, timings, stalled=bool(stalls))


@cocotb.test()
async def every_op_at_both_lengths(dut):
    """Each op alone on a one-beat row and on the longest row, on an idle unit."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    for op in VectorOpcode:
        for n in dict.fromkeys((1, p.max_beats)):
            run = random_run(p, rng, op, n)
            _report("every_op_at_both_lengths", [run], await host.execute([run]), stalled=False)
            await ClockCycles(dut.clk, 2)


@cocotb.test()
async def back_to_back(dut):
    """Random ops and lengths issued back to back, each next start in the done cycle."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 1)
    ops = list(VectorOpcode)
    runs = [random_run(p, rng, ops[int(rng.integers(len(ops)))], int(rng.integers(1, min(p.max_beats, 16) + 1)))
            for _ in range(14)]
    await _issue(dut, "back_to_back", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def quantize_and_normalize(dut):
    """The token's composed ops on random rows: ABSMAX then SCALE at the quantization shift;
    RMS then SCALE (8 fractional bits) then MUL by a gain row; LayerNorm's MEAN, CENTER, RMS,
    SCALE, MUL by the gain and ADD of a bias row."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 5)
    runs = []
    for _ in range(3):
        row = random_run(p, rng, VectorOpcode.RELU, int(rng.integers(1, min(p.max_beats, 16) + 1))).x
        gain = random_run(p, rng, VectorOpcode.RELU, row.shape[0]).x
        runs += [Run(VectorOpcode.ABSMAX, 0, row), Run(VectorOpcode.SCALE, p.bits + 1, row),
                 Run(VectorOpcode.RMS, 0, row), Run(VectorOpcode.SCALE, 7 + max(p.bits - 8, 0), row),
                 Run(VectorOpcode.MUL, p.bits - 1, row, gain)]
        centred = np.clip(row - int(np.floor(row.mean() + 0.5)), *limits(p.bits))     # what CENTER leaves
        runs += [Run(VectorOpcode.MEAN, 0, row), Run(VectorOpcode.CENTER, 0, row), Run(VectorOpcode.RMS, 0, centred),
                 Run(VectorOpcode.SCALE, 7 + max(p.bits - 8, 0), centred), Run(VectorOpcode.MUL, p.bits - 1, row, gain),
                 Run(VectorOpcode.ADD, 0, row, gain)]
    await _issue(dut, "quantize_and_normalize", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def extremes(dut):
    """Saturating sums and products (both limits), ``|lo|``, and ties: every element equal (the
    first wins), and the row's largest value found first in a later lane than again later;
    quantization of a row of limits, of a zero row (the divider's zero divisor) and of a
    one-spike row; normalization of a zero row, of a row of limits and of a one-spike row;
    the mean of each (a row of limits: the offset at either limit, so that CENTER of the other
    limit saturates) and means that tie at +-1/2 and +-3/2 (rounded up)."""
    p = _params()
    lo, hi = limits(p.bits)
    n = min(p.max_beats, 4)
    full = lambda v: np.full((n, p.lanes), v)
    tie = full(lo)
    tie[0, -1] = tie[-1, 0] = hi                                   # first in beat 0, the last lane
    spike = full(0)
    spike[-1, -1] = lo
    quant, norm = p.bits + 1, p.bits + 7
    runs = [Run(VectorOpcode.ADD, 0, full(hi), full(hi)), Run(VectorOpcode.ADD, 0, full(lo), full(lo)),
            Run(VectorOpcode.MUL, 0, full(lo), full(lo)), Run(VectorOpcode.MUL, 0, full(lo), full(hi)),
            Run(VectorOpcode.MUL, p.bits * 2 - 1, full(lo), full(lo)),
            Run(VectorOpcode.RELU2, 0, full(hi)), Run(VectorOpcode.RELU2, p.bits - 2, full(hi)),
            Run(VectorOpcode.RELU, 1, full(lo)), Run(VectorOpcode.SCALE, 0, full(hi)),
            Run(VectorOpcode.ROPE, 0, full(lo), full(lo)), Run(VectorOpcode.ROPE, 0, full(hi), full(lo)),
            Run(VectorOpcode.ROPE, p.bits - 2, full(lo), full(hi)),
            Run(VectorOpcode.ARGMAX, 0, full(7 % (hi + 1))), Run(VectorOpcode.ARGMAX, 0, tie),
            Run(VectorOpcode.ARGMAX, 0, full(lo))]
    for row in (full(lo), full(hi), full(0), spike):
        runs += [Run(VectorOpcode.ABSMAX, 0, row), Run(VectorOpcode.SCALE, quant, row),
                 Run(VectorOpcode.SCALE, 0, full(hi)),
                 Run(VectorOpcode.RMS, 0, row), Run(VectorOpcode.SCALE, norm - p.bits + 2, row),
                 Run(VectorOpcode.SCALE, norm, full(lo)),
                 Run(VectorOpcode.MEAN, 0, row), Run(VectorOpcode.CENTER, 0, row),
                 Run(VectorOpcode.CENTER, 0, full(hi)), Run(VectorOpcode.CENTER, 1, full(lo))]
    beats = 2 if p.max_beats > 1 else 1
    if beats * p.lanes % 2 == 0:                                   # an even count of elements can tie
        half = np.arange(beats * p.lanes).reshape(beats, p.lanes) % 2
        for row in (half, -half, half + 1, -half - 1):              # means 1/2, -1/2, 3/2, -3/2
            runs += [Run(VectorOpcode.MEAN, 0, row), Run(VectorOpcode.CENTER, 0, row)]
    await _issue(dut, "extremes", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def argmax_in_every_lane(dut):
    """ARGMAX with the largest value in each lane alone, in the first and in a later beat, then
    tied in each pair of lanes of one beat (the lower lane wins) and across beats (the earlier
    wins): every node of the tree across lanes picks each side, and breaks each tie. Random
    rows rarely do: their largest value is the limit, which comes early and in low lanes."""
    p = _params()
    lo, hi = limits(p.bits)
    n = min(p.max_beats, 3)
    runs = []
    for lane in range(p.lanes):
        for beat in dict.fromkeys((0, n - 1)):
            row = np.full((n, p.lanes), lo + 1)
            row[beat, lane] = hi - 1
            runs.append(Run(VectorOpcode.ARGMAX, 0, row))
    for a, b in itertools.combinations(range(p.lanes), 2):
        row = np.full((1, p.lanes), lo)
        row[0, a] = row[0, b] = hi
        runs.append(Run(VectorOpcode.ARGMAX, 0, row))
    if n > 1:
        for lane in range(p.lanes):
            row = np.full((n, p.lanes), 0)
            row[-1, 0] = row[0, lane] = 5 % (hi + 1)           # the earlier beat wins, whatever the lane
            runs.append(Run(VectorOpcode.ARGMAX, 0, row))
    await _issue(dut, "argmax_in_every_lane", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def unsaturated_values(dut):
    """Every element-wise op on values small enough that no lane saturates, at shifts 0, 1 and
    2: each lane's own wide value, rounding bit and pipeline show in its output, which the
    limits in the other tests mostly clamp away."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 6)
    small = 1 << max((p.bits - 3) // 2, 1)
    runs = []
    for op in (VectorOpcode.ADD, VectorOpcode.MUL, VectorOpcode.RELU, VectorOpcode.RELU2, VectorOpcode.ROPE,
               VectorOpcode.SILU, VectorOpcode.GELU):
        for shift in (0, 1, 2):
            n = int(rng.integers(1, min(p.max_beats, 6) + 1))
            x = rng.integers(-small, small, size=(n, p.lanes), endpoint=True)
            y = rng.integers(-small, small, size=(n, p.lanes), endpoint=True) if op.binary else None
            runs.append(Run(op, shift, x, y))
    row = rng.integers(-small, small, size=(min(p.max_beats, 4), p.lanes), endpoint=True)
    runs += [Run(VectorOpcode.ABSMAX, 0, row), Run(VectorOpcode.SCALE, p.bits + 1, row),
             Run(VectorOpcode.RMS, 0, row), Run(VectorOpcode.SCALE, p.bits + 7, row)]
    await _issue(dut, "unsaturated_values", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def gates_over_every_segment(dut):
    """SILU and GELU on the first and last input of every table segment and on the first input
    beyond each end (where the gate becomes 0 or 1), lanes rotated so that each lane's own
    table reads every entry, at the input's format (``shift = bits - 1``) and at shifts that
    round and saturate."""
    p = _params()
    table = p.gate_table
    lo, hi = limits(p.bits)
    ends = [v for i in range(table.first, table.last + 1) for v in (i << table.drop, ((i + 1) << table.drop) - 1)]
    values = np.array(sorted({min(max(v, lo), hi) for v in [*ends, ends[0] - 1, ends[-1] + 1, lo, hi]}))
    runs = []
    for op, shift in itertools.product((VectorOpcode.SILU, VectorOpcode.GELU), (p.bits - 1, 0, p.bits + 2)):
        for lane in range(p.lanes if shift == p.bits - 1 else 1):
            beats = -(-len(values) // p.lanes)
            x = np.resize(np.roll(values, lane), beats * p.lanes).reshape(beats, p.lanes)
            for first in range(0, beats, p.max_beats):
                runs.append(Run(op, shift, x[first:first + p.max_beats]))
    await _issue(dut, "gates_over_every_segment", runs, cocotb.RANDOM_SEED)


@cocotb.test()
async def gaps_and_backpressure(dut):
    """Random gaps on x and y and backpressure on z, back to back: values still right."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 2)
    ops = list(VectorOpcode)
    runs = [random_run(p, rng, ops[i % len(ops)], int(rng.integers(1, min(p.max_beats, 12) + 1)))
            for i in range(12)]
    await _issue(dut, "gaps_and_backpressure", runs, cocotb.RANDOM_SEED + 3, gap=0.3, stall=0.4)


@cocotb.test()
async def unknown_ops_are_refused(dut):
    """A start whose ``op`` names no op (the port's spare codes) leaves the unit idle; a valid
    run afterwards is still right."""
    p = _params()
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    spare = range(len(VectorOpcode), 1 << len(dut.op))
    assert spare, "the op port has no spare code to refuse"
    for code in spare:
        await FallingEdge(dut.clk)
        dut.start.value, dut.n.value, dut.op.value = 1, 1, code
        await ReadOnly()
        await FallingEdge(dut.clk)
        dut.start.value = 0
        await ReadOnly()
        assert not host.sample(dut.busy, "busy"), f"a start with op = {code} was accepted"
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 4)
    run = random_run(p, rng, VectorOpcode.ROPE, 1)
    _report("unknown_ops_are_refused", [run], await host.execute([run]), stalled=False)
