"""cocotb testbench of the mixed-precision GEMM engines (``lut_mpgemm`` and ``mac_mpgemm``).

Both engines share ports, control and tile semantics, so one bench serves
them; the family named in the run's parameters picks the packers and the
golden model (the LUT engine's step-by-step arithmetic, or the plain
integer GEMM for the MAC baseline). The lock-step host is
:mod:`verif.tb.host`; cycle figures count rising edges from the edge that
accepted ``start``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from generators import lut_mpgemm, mac_mpgemm
from generators.mpgemm import MpGemmParams, pack_zero_point, unpack_y
from verif.golden.lut_mpgemm import lut_gemm, reference
from verif.runner import bench_params, bench_report
from verif.tb.host import Case, LockStepHost, Timing


@dataclass(frozen=True)
class Family:
    params: type[MpGemmParams]
    pack_a: Callable
    pack_w: Callable


FAMILIES = {
    "lut_mpgemm": Family(lut_mpgemm.LutMpGemmParams, lut_mpgemm.pack_a, lut_mpgemm.pack_weights),
    "mac_mpgemm": Family(mac_mpgemm.MacMpGemmParams, mac_mpgemm.pack_a, mac_mpgemm.pack_weights),
}


def _setup() -> tuple[Family, MpGemmParams]:
    spec = bench_params()
    fam = FAMILIES[spec["family"]]
    return fam, fam.params.from_dict(spec["params"])


def golden(p: MpGemmParams, a: np.ndarray, w: np.ndarray, zero_point) -> np.ndarray:
    fmt = p.weight_format.value
    if isinstance(p, lut_mpgemm.LutMpGemmParams):
        return lut_gemm(a, w, weight_format=fmt, w_bits=p.w_bits, g=p.g, symmetric=p.symmetric,
                        zero_point=zero_point)
    return reference(a, w, fmt, zero_point)


@dataclass
class Run:
    """One tile run: ``a`` is m_tile x k, ``w`` is k x n_tile, ``zero_point`` per column (uint)."""
    a: np.ndarray
    w: np.ndarray
    zero_point: np.ndarray

    @property
    def k(self) -> int:
        return self.a.shape[1]


class Host(LockStepHost):
    """Feeds packed A and W beats and the zero points, sinks Y, checks every tile."""

    def __init__(self, dut, fam: Family, params: MpGemmParams, *, seed: int,
                 a_gap: float = 0.0, w_gap: float = 0.0, y_stall: float = 0.0):
        super().__init__(dut, inputs=("a_stream", "w_stream"), output="y_stream", rows_per_tile=params.m_tile,
                         seed=seed, gaps=(a_gap, w_gap), stall=y_stall,
                         held=("zero_point",) if params.has_zero_point else (), maximum=params.k_max)
        self.fam, self.p = fam, params

    async def execute(self, runs: list[Run]) -> list[Timing]:
        """Issue ``runs`` back to back; check every tile; return per-run timing."""
        p, fam = self.p, self.fam
        a_beats = [b for r in runs for b in fam.pack_a(p, r.a)]
        w_beats = [b for r in runs for b in fam.pack_w(p, r.w)]
        limit = 8 * (len(a_beats) + len(w_beats)) + 64 * len(runs) * (p.m_tile + 4) + 1000

        def zero_point(r: int) -> None:
            if p.has_zero_point:
                self.dut.zero_point.value = pack_zero_point(p, runs[r].zero_point)

        timings = await self.run([r.k for r in runs], [a_beats, w_beats], limit, zero_point)
        for run, t in zip(runs, timings, strict=True):
            expected = golden(p, run.a, run.w, run.zero_point)
            np.testing.assert_array_equal(unpack_y(p, t.tile), expected)
            np.testing.assert_array_equal(expected, reference(run.a, run.w, p.weight_format.value,
                                                              run.zero_point))
        return timings


def random_run(p: MpGemmParams, rng: np.random.Generator, k: int) -> Run:
    lo, hi = p.weight_range()
    half = 1 << (p.a_bits - 1)
    return Run(rng.integers(-half, half - 1, size=(p.m_tile, k), endpoint=True),
               rng.integers(lo, hi, size=(k, p.n_tile), endpoint=True),
               rng.integers(0, (1 << p.w_bits) - 1, size=p.n_tile, endpoint=True))


def case(p: MpGemmParams, rng: np.random.Generator, k: int) -> Case:
    """A random run of depth ``k`` for hosts other than the lock-step one (the AXI bench)."""
    fam = FAMILIES[p.family]
    run = random_run(p, rng, k)
    expected = reference(run.a, run.w, p.weight_format.value, run.zero_point)
    return Case(k, {"zero_point": pack_zero_point(p, run.zero_point)} if p.has_zero_point else {},
                {"a_stream": fam.pack_a(p, run.a), "w_stream": fam.pack_w(p, run.w)},
                lambda tile: np.testing.assert_array_equal(unpack_y(p, tile), expected))


def _report(test: str, runs: list[Run], timings: list[Timing], **extra) -> None:
    for run, t in zip(runs, timings, strict=True):
        bench_report({"test": test, "k": run.k, "start_to_done": t.done - t.start,
                      "start_to_last_y": t.last_out - t.start, **extra})


async def _isolated(dut, test: str, make_runs: Callable[[MpGemmParams, np.random.Generator], list[Run]],
                    salt: int) -> None:
    """Each run on an idle engine, no gaps or stalls: the exact-cycle case."""
    fam, p = _setup()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + salt)
    host = Host(dut, fam, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    for run in make_runs(p, rng):
        timings = await host.execute([run])
        _report(test, [run], timings, stalled=False)
        await ClockCycles(dut.clk, 2)


@cocotb.test()
async def k_equals_group(dut):
    await _isolated(dut, "k_equals_group", lambda p, rng: [random_run(p, rng, min(p.group, p.k_max))], 0)


@cocotb.test()
async def k_max(dut):
    await _isolated(dut, "k_max", lambda p, rng: [random_run(p, rng, p.k_max)], 1)


@cocotb.test()
async def k_ragged(dut):
    """K not a multiple of the group (the last group is zero-padded), and K = 1."""
    def runs(p, rng):
        ks = {1, min(p.k_max, p.group + 1), min(p.k_max, 2 * p.group - 1)}
        return [random_run(p, rng, k) for k in sorted(ks)]
    await _isolated(dut, "k_ragged", runs, 2)


@cocotb.test()
async def random_tiles(dut):
    def runs(p, rng):
        return [random_run(p, rng, int(k)) for k in rng.integers(1, p.k_max, size=3, endpoint=True)]
    await _isolated(dut, "random_tiles", runs, 3)


@cocotb.test()
async def extremes(dut):
    """Every weight at its minimum or maximum code, zero points at both ends, extreme activations."""
    def runs(p, rng):
        lo, hi = p.weight_range()
        half = 1 << (p.a_bits - 1)
        k = p.k_max
        top = (1 << p.w_bits) - 1
        out = []
        for a_val, w_val, zp in ((-half, lo, top), (-half, hi, 0), (half - 1, hi, top),
                                 (-half, hi, top), (half - 1, lo, 0)):
            out.append(Run(np.full((p.m_tile, k), a_val), np.full((k, p.n_tile), w_val),
                           np.full(p.n_tile, zp)))
        return out
    await _isolated(dut, "extremes", runs, 4)


def tile_gemm(p: MpGemmParams, a: np.ndarray, w: np.ndarray, z: np.ndarray) -> tuple[list[Run], list]:
    """Split ``A @ W`` into engine runs: zero-padded edge tiles, K in ``k_max`` chunks."""
    m, k = a.shape
    n = w.shape[1]
    runs, places = [], []
    for i in range(0, m, p.m_tile):
        for j in range(0, n, p.n_tile):
            for k0 in range(0, k, p.k_max):
                k1 = min(k, k0 + p.k_max)
                ta = np.zeros((p.m_tile, k1 - k0), dtype=np.int64)
                tw = np.zeros((k1 - k0, p.n_tile), dtype=np.int64)
                tz = np.zeros(p.n_tile, dtype=np.int64)
                ta[:min(p.m_tile, m - i)] = a[i:i + p.m_tile, k0:k1]
                tw[:, :min(p.n_tile, n - j)] = w[k0:k1, j:j + p.n_tile]
                tz[:min(p.n_tile, n - j)] = z[j:j + p.n_tile]
                runs.append(Run(ta, tw, tz))
                places.append((i, j))
    return runs, places


@cocotb.test()
async def back_to_back_gemm(dut):
    """A GEMM larger than one tile, runs issued back to back, no stalls."""
    fam, p = _setup()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 5)
    m, n = p.m_tile + 1, 2 * p.n_tile - 1 if p.n_tile > 1 else 2
    k = p.k_max + 3 if p.k_max <= 64 else int(rng.integers(p.k_max // 2, p.k_max))
    a = rng.integers(-(1 << (p.a_bits - 1)), (1 << (p.a_bits - 1)) - 1, size=(m, k), endpoint=True)
    lo, hi = p.weight_range()
    w = rng.integers(lo, hi, size=(k, n), endpoint=True)
    z = rng.integers(0, (1 << p.w_bits) - 1, size=n, endpoint=True)
    runs, places = tile_gemm(p, a, w, z)
    host = Host(dut, fam, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    timings = await host.execute(runs)
    y = np.zeros((m + p.m_tile, n + p.n_tile), dtype=np.int64)
    for (i, j), t in zip(places, timings, strict=True):
        y[i:i + p.m_tile, j:j + p.n_tile] += unpack_y(p, t.tile)
    np.testing.assert_array_equal(y[:m, :n], reference(a, w, p.weight_format.value, z))
    bench_report({"test": "back_to_back_gemm", "gemm": [m, n, k], "runs": len(runs),
                  "first_start_to_last_y": timings[-1].last_out - timings[0].start, "stalled": False})


@cocotb.test()
async def gaps_and_backpressure(dut):
    """Random gaps on A and W, random backpressure on Y, back-to-back runs."""
    fam, p = _setup()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 6)
    runs = [random_run(p, rng, int(k)) for k in rng.integers(1, min(p.k_max, 24), size=4, endpoint=True)]
    host = Host(dut, fam, p, seed=cocotb.RANDOM_SEED + 7, a_gap=0.3, w_gap=0.3, y_stall=0.4)
    await host.reset()
    timings = await host.execute(runs)
    _report("gaps_and_backpressure", runs, timings, stalled=True)
