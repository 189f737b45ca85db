"""cocotb testbench for the systolic tile engine.

The host model drives the engine one clock at a time: it writes inputs after
the falling edge, samples outputs in the ReadOnly phase that follows, and
counts a transfer on every stream where valid and ready were both high. Cycle
figures are counted in rising edges from the edge that accepted ``start``.

Each test compares every C tile with the golden model and appends what it
measured to the run's report; the pytest side compares those figures with
the cost model, so the bench itself knows nothing about cost models.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from generators.systolic import SystolicParams, pack_a, pack_b, unpack_c
from verif.golden.systolic import gemm, operand_range, wrap
from verif.runner import bench_params, bench_report


@dataclass
class Run:
    """One tile run: ``a`` is rows x k, ``b`` is k x cols."""
    a: np.ndarray
    b: np.ndarray

    @property
    def k(self) -> int:
        return self.a.shape[1]


@dataclass
class Timing:
    start: int = -1
    done: int = -1
    last_c: int = -1
    tile: list[int] = field(default_factory=list)


class Host:
    """Drives ``start``/``k`` and the A/B streams, sinks C; gaps and stalls are seeded."""

    def __init__(self, dut, params: SystolicParams, *, seed: int,
                 a_gap: float = 0.0, b_gap: float = 0.0, c_stall: float = 0.0):
        self.dut, self.p = dut, params
        self.prng = random.Random(seed)
        self.a_gap, self.b_gap, self.c_stall = a_gap, b_gap, c_stall
        self.cycle = 0

    async def reset(self) -> None:
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        for name in ("start", "k", "a_stream__valid", "b_stream__valid", "c_stream__ready",
                     "a_stream__payload", "b_stream__payload"):
            getattr(dut, name).value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0

    async def execute(self, runs: list[Run]) -> list[Timing]:
        """Issue ``runs`` back to back; return per-run timing with the C tile words."""
        dut, p = self.dut, self.p
        a_beats = [w for r in runs for w in pack_a(p, r.a)]
        b_beats = [w for r in runs for w in pack_b(p, r.b)]
        timings = [Timing() for _ in runs]
        a_idx = b_idx = started = finished = drained = 0
        a_on = b_on = False
        limit = 64 * (len(a_beats) + len(b_beats) + len(runs) * (p.rows + p.cols) ** 2) + 1000
        for _ in range(limit):
            await FallingEdge(dut.clk)
            self.cycle += 1
            if not a_on and a_idx < len(a_beats) and self.prng.random() >= self.a_gap:
                a_on = True
                dut.a_stream__payload.value = a_beats[a_idx]
            if not b_on and b_idx < len(b_beats) and self.prng.random() >= self.b_gap:
                b_on = True
                dut.b_stream__payload.value = b_beats[b_idx]
            dut.a_stream__valid.value = int(a_on)
            dut.b_stream__valid.value = int(b_on)
            want_start = started < len(runs)
            dut.start.value = int(want_start)
            dut.k.value = runs[started].k if want_start else 0
            c_ready = self.prng.random() >= self.c_stall
            dut.c_stream__ready.value = int(c_ready)

            await ReadOnly()
            if a_on and dut.a_stream__ready.value:
                a_on, a_idx = False, a_idx + 1
            if b_on and dut.b_stream__ready.value:
                b_on, b_idx = False, b_idx + 1
            done, busy = int(dut.done.value), int(dut.busy.value)
            if done:
                timings[finished].done = self.cycle
                finished += 1
            if want_start and (not busy or done):
                timings[started].start = self.cycle
                started += 1
            if c_ready and dut.c_stream__valid.value:
                t = timings[drained]
                t.tile.append(int(dut.c_stream__payload.value.to_unsigned()))
                if len(t.tile) == p.rows:
                    t.last_c = self.cycle
                    drained += 1
                    if drained == len(runs):
                        break
        else:
            raise AssertionError(f"engine stalled: {drained}/{len(runs)} tiles after {limit} cycles")
        assert a_idx == len(a_beats) and b_idx == len(b_beats), "engine left stream beats unread"
        for run, t in zip(runs, timings, strict=True):
            expected = gemm(run.a, run.b, p.acc_width, p.signed)
            np.testing.assert_array_equal(unpack_c(p, t.tile), expected)
        return timings


def _params() -> SystolicParams:
    return SystolicParams.from_dict(bench_params()["params"])


def _random_run(p: SystolicParams, rng: np.random.Generator, k: int) -> Run:
    a_lo, a_hi = operand_range(p.a_bits, p.signed)
    w_lo, w_hi = operand_range(p.w_bits, p.signed)
    return Run(rng.integers(a_lo, a_hi, size=(p.rows, k), endpoint=True),
               rng.integers(w_lo, w_hi, size=(k, p.cols), endpoint=True))


def _report(test: str, p: SystolicParams, runs: list[Run], timings: list[Timing], **extra) -> None:
    for run, t in zip(runs, timings, strict=True):
        bench_report({"test": test, "k": run.k, "start_to_done": t.done - t.start,
                      "start_to_last_c": t.last_c - t.start, **extra})


async def _isolated(dut, test: str, runs: list[Run], seed: int) -> None:
    """Each run on an idle engine, no gaps or stalls: the exact-cycle case."""
    p = _params()
    host = Host(dut, p, seed=seed)
    await host.reset()
    for run in runs:
        timings = await host.execute([run])
        _report(test, p, [run], timings, stalled=False)
        await ClockCycles(dut.clk, 2)


@cocotb.test()
async def k_one(dut):
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    await _isolated(dut, "k_one", [_random_run(p, rng, 1)], cocotb.RANDOM_SEED)


@cocotb.test()
async def k_max(dut):
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 1)
    await _isolated(dut, "k_max", [_random_run(p, rng, p.k_max)], cocotb.RANDOM_SEED)


@cocotb.test()
async def random_tiles(dut):
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 2)
    ks = rng.integers(1, p.k_max, size=3, endpoint=True)
    await _isolated(dut, "random_tiles", [_random_run(p, rng, int(k)) for k in ks], cocotb.RANDOM_SEED)


@cocotb.test()
async def extremes(dut):
    """All-minimum, all-maximum and min x max operands at K = k_max (largest sums)."""
    p = _params()
    (a_lo, a_hi), (w_lo, w_hi) = operand_range(p.a_bits, p.signed), operand_range(p.w_bits, p.signed)
    k = p.k_max
    runs = [Run(np.full((p.rows, k), a), np.full((k, p.cols), w))
            for a, w in ((a_lo, w_lo), (a_hi, w_hi), (a_lo, w_hi), (a_hi, w_lo))]
    await _isolated(dut, "extremes", runs, cocotb.RANDOM_SEED)


def tile_gemm(p: SystolicParams, a: np.ndarray, b: np.ndarray) -> tuple[list[Run], list[tuple]]:
    """Split ``A @ B`` into engine runs: zero-padded edge tiles, K in ``k_max`` chunks.

    Returns the runs in issue order (m-tile, n-tile, k-chunk) and where each lands.
    """
    m, k = a.shape
    n = b.shape[1]
    runs, places = [], []
    for i in range(0, m, p.rows):
        for j in range(0, n, p.cols):
            for k0 in range(0, k, p.k_max):
                k1 = min(k, k0 + p.k_max)
                ta = np.zeros((p.rows, k1 - k0), dtype=np.int64)
                tb = np.zeros((k1 - k0, p.cols), dtype=np.int64)
                ta[:min(p.rows, m - i)] = a[i:i + p.rows, k0:k1]
                tb[:, :min(p.cols, n - j)] = b[k0:k1, j:j + p.cols]
                runs.append(Run(ta, tb))
                places.append((i, j))
    return runs, places


@cocotb.test()
async def back_to_back_gemm(dut):
    """A whole GEMM larger than one tile, runs issued back to back, no stalls."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 3)
    m, n = 2 * p.rows - 1 if p.rows > 1 else 2, p.cols + 1
    k = p.k_max + 3 if p.k_max <= 64 else int(rng.integers(p.k_max // 2, p.k_max))
    a_lo, a_hi = operand_range(p.a_bits, p.signed)
    w_lo, w_hi = operand_range(p.w_bits, p.signed)
    a = rng.integers(a_lo, a_hi, size=(m, k), endpoint=True)
    b = rng.integers(w_lo, w_hi, size=(k, n), endpoint=True)
    runs, places = tile_gemm(p, a, b)
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    timings = await host.execute(runs)
    c = np.zeros((m + p.rows, n + p.cols), dtype=np.int64)
    for (i, j), t in zip(places, timings, strict=True):
        c[i:i + p.rows, j:j + p.cols] += unpack_c(p, t.tile)
    got = wrap(c[:m, :n], p.acc_width, p.signed)
    np.testing.assert_array_equal(got, gemm(a, b, p.acc_width, p.signed))
    _report("back_to_back_gemm", p, runs, timings, stalled=False, back_to_back=True)
    bench_report({"test": "back_to_back_gemm", "gemm": [m, n, k], "runs": len(runs),
                  "first_start_to_last_c": timings[-1].last_c - timings[0].start, "stalled": False})


@cocotb.test()
async def gaps_and_backpressure(dut):
    """Random gaps on A and B, random backpressure on C, back-to-back runs."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 4)
    runs = [_random_run(p, rng, int(k)) for k in rng.integers(1, min(p.k_max, 24), size=4, endpoint=True)]
    host = Host(dut, p, seed=cocotb.RANDOM_SEED + 5, a_gap=0.3, b_gap=0.3, c_stall=0.4)
    await host.reset()
    timings = await host.execute(runs)
    _report("gaps_and_backpressure", p, runs, timings, stalled=True)
