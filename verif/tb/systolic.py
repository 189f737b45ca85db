"""cocotb testbench for the systolic tile engine.

The lock-step host (:mod:`verif.tb.host`) drives the engine one clock at a
time; cycle figures count rising edges from the edge that accepted ``start``.

Each test compares every C tile with the golden model and appends what it
measured to the run's report; the pytest side compares those figures with
the cost model, so the bench itself knows nothing about cost models.
"""
from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from generators.systolic import SystolicParams, pack_a, pack_b, unpack_c
from verif.golden.systolic import gemm, operand_range, wrap
from verif.runner import bench_params, bench_report
from verif.tb.host import Case, LockStepHost, Timing


@dataclass
class Run:
    """One tile run: ``a`` is tile_rows x k, ``b`` is k x cols."""
    a: np.ndarray
    b: np.ndarray

    @property
    def k(self) -> int:
        return self.a.shape[1]


class Host(LockStepHost):
    """Feeds packed A and B beats, sinks C and checks every tile against the golden model."""

    def __init__(self, dut, params: SystolicParams, *, seed: int,
                 a_gap: float = 0.0, b_gap: float = 0.0, c_stall: float = 0.0):
        super().__init__(dut, inputs=("a_stream", "b_stream"), output="c_stream", rows_per_tile=params.tile_rows,
                         seed=seed, gaps=(a_gap, b_gap), stall=c_stall, maximum=params.k_max)
        self.p = params

    async def execute(self, runs: list[Run]) -> list[Timing]:
        """Issue ``runs`` back to back; return per-run timing with the C tile words."""
        p = self.p
        a_beats = [w for r in runs for w in pack_a(p, r.a)]
        b_beats = [w for r in runs for w in pack_b(p, r.b)]
        limit = 64 * (len(a_beats) + len(b_beats) + len(runs) * (p.rows + p.cols) ** 2) + 1000
        timings = await self.run([r.k for r in runs], [a_beats, b_beats], limit)
        for run, t in zip(runs, timings, strict=True):
            expected = gemm(run.a, run.b, p.acc_width, p.signed)
            np.testing.assert_array_equal(unpack_c(p, t.tile), expected)
        return timings


def _params() -> SystolicParams:
    return SystolicParams.from_dict(bench_params()["params"])


def _random_run(p: SystolicParams, rng: np.random.Generator, k: int) -> Run:
    a_lo, a_hi = operand_range(p.a_bits, p.signed)
    w_lo, w_hi = operand_range(p.w_bits, p.signed)
    return Run(rng.integers(a_lo, a_hi, size=(p.tile_rows, k), endpoint=True),
               rng.integers(w_lo, w_hi, size=(k, p.cols), endpoint=True))


def case(p: SystolicParams, rng: np.random.Generator, k: int) -> Case:
    """A random run of depth ``k`` for hosts other than the lock-step one (the AXI bench)."""
    run = _random_run(p, rng, k)
    expected = gemm(run.a, run.b, p.acc_width, p.signed)
    return Case(k, {}, {"a_stream": pack_a(p, run.a), "b_stream": pack_b(p, run.b)},
                lambda tile: np.testing.assert_array_equal(unpack_c(p, tile), expected))


def _report(test: str, p: SystolicParams, runs: list[Run], timings: list[Timing], *,
            back_to_back: bool = False, **extra) -> None:
    """Each run's figures; runs issued back to back say where they stand in the stream and
    the depth of the run before (the output-stationary engine overlaps them)."""
    for n, (run, t) in enumerate(zip(runs, timings, strict=True)):
        place = {"index": n, "k_prev": runs[n - 1].k if n else 0} if back_to_back else {}
        bench_report({"test": test, "k": run.k, "start_to_done": t.done - t.start,
                      "start_to_last_c": t.last_out - t.start, **place, **extra})


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
    runs = [Run(np.full((p.tile_rows, k), a), np.full((k, p.cols), w))
            for a, w in ((a_lo, w_lo), (a_hi, w_hi), (a_lo, w_hi), (a_hi, w_lo))]
    await _isolated(dut, "extremes", runs, cocotb.RANDOM_SEED)


def tile_gemm(p: SystolicParams, a: np.ndarray, b: np.ndarray) -> tuple[list[Run], list[tuple]]:
    """Split ``A @ B`` into engine runs: zero-padded edge tiles, K in ``k_max`` chunks.

    Returns the runs in issue order (m-tile, n-tile, k-chunk) and where each lands.
    """
    m, k = a.shape
    n = b.shape[1]
    tr = p.tile_rows
    runs, places = [], []
    for i in range(0, m, tr):
        for j in range(0, n, p.cols):
            for k0 in range(0, k, p.k_max):
                k1 = min(k, k0 + p.k_max)
                ta = np.zeros((tr, k1 - k0), dtype=np.int64)
                tb = np.zeros((k1 - k0, p.cols), dtype=np.int64)
                ta[:min(tr, m - i)] = a[i:i + tr, k0:k1]
                tb[:, :min(p.cols, n - j)] = b[k0:k1, j:j + p.cols]
                runs.append(Run(ta, tb))
                places.append((i, j))
    return runs, places


@cocotb.test()
async def back_to_back_gemm(dut):
    """A whole GEMM larger than one tile, runs issued back to back, no stalls."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 3)
    m, n = 2 * p.tile_rows - 1 if p.tile_rows > 1 else 2, p.cols + 1
    k = p.k_max + 3 if p.k_max <= 64 else int(rng.integers(p.k_max // 2, p.k_max))
    a_lo, a_hi = operand_range(p.a_bits, p.signed)
    w_lo, w_hi = operand_range(p.w_bits, p.signed)
    a = rng.integers(a_lo, a_hi, size=(m, k), endpoint=True)
    b = rng.integers(w_lo, w_hi, size=(k, n), endpoint=True)
    runs, places = tile_gemm(p, a, b)
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    timings = await host.execute(runs)
    c = np.zeros((m + p.tile_rows, n + p.cols), dtype=np.int64)
    for (i, j), t in zip(places, timings, strict=True):
        c[i:i + p.tile_rows, j:j + p.cols] += unpack_c(p, t.tile)
    got = wrap(c[:m, :n], p.acc_width, p.signed)
    np.testing.assert_array_equal(got, gemm(a, b, p.acc_width, p.signed))
    _report("back_to_back_gemm", p, runs, timings, stalled=False, back_to_back=True)
    bench_report({"test": "back_to_back_gemm", "gemm": [m, n, k], "runs": len(runs),
                  "first_start_to_last_c": timings[-1].last_out - timings[0].start, "stalled": False})


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
