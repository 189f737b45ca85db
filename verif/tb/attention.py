"""cocotb testbench of the attention engine.

Every run is checked twice: the O codes must equal the bit-exact golden
model, and the golden model must stay within the stated float error bound
(:func:`verif.golden.attention.error_bound`) of exact softmax attention on
the same integer inputs. Cycle figures count rising edges from the edge
that accepted ``start`` (:mod:`verif.tb.host`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from generators.attention import AttentionParams, pack_k, pack_q, pack_v, unpack_o
from verif.attention_patterns import pattern_run
from verif.golden.attention import attention_fixed, attention_float, error_bound
from verif.runner import bench_params, bench_report
from verif.tb.host import Case, LockStepHost, Timing


@dataclass
class Run:
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scale: int
    q_pos: int = 0

    @property
    def n(self) -> int:
        return self.k.shape[0]


def _params() -> AttentionParams:
    return AttentionParams.from_dict(bench_params()["params"])


def _codes(rng: np.random.Generator, bits: int, shape) -> np.ndarray:
    half = 1 << (bits - 1)
    return rng.integers(-half, half - 1, size=shape, endpoint=True)


def spread_scale(p: AttentionParams, q: np.ndarray, k: np.ndarray, spread: float = 3.0) -> int:
    """A scale code that gives base-2 scores a standard deviation near ``spread``."""
    sd = max(float(np.std(q @ k.T)), 1.0)
    return int(min(max(round(spread / sd * (1 << p.scale_frac)), 1), (1 << 16) - 1))


def random_run(p: AttentionParams, rng: np.random.Generator, n: int, q_pos: int | None = None) -> Run:
    q = _codes(rng, p.q_bits, (p.q_rows, p.head_dim))
    k = _codes(rng, p.k_bits, (n, p.head_dim))
    v = _codes(rng, p.v_bits, (n, p.head_dim))
    if q_pos is None:
        q_pos = max(n - p.q_rows, 0)
    return Run(q, k, v, spread_scale(p, q, k), q_pos)


def check(p: AttentionParams, run: Run, tile: list[int]) -> float:
    """RTL == golden bit for bit; golden within the float bound. Returns the float error (V units)."""
    got = unpack_o(p, tile)
    want = attention_fixed(p, run.q, run.k, run.v, run.scale, run.q_pos)
    np.testing.assert_array_equal(got, want)
    exact = attention_float(p, run.q, run.k, run.v, run.scale, run.q_pos)
    err = float(np.max(np.abs(want / (1 << p.out_frac) - exact)))
    bound = error_bound(p, run.n)
    assert err <= bound, f"golden vs float {err:.3g} > bound {bound:.3g} (V units)"
    return err


class Host(LockStepHost):
    def __init__(self, dut, params: AttentionParams, *, seed: int, gap: float = 0.0, stall: float = 0.0):
        held = ("scale", "q_pos") if params.causal else ("scale",)
        super().__init__(dut, inputs=("q_stream", "k_stream", "v_stream"), output="o_stream",
                         rows_per_tile=params.q_rows * params.chunks, seed=seed, gaps=(gap, gap, gap),
                         stall=stall, held=held, length_port="n", maximum=params.max_seq_len)
        self.p = params

    async def execute(self, runs: list[Run]) -> tuple[list[Timing], list[float]]:
        p = self.p
        beats = [[b for r in runs for b in pack_q(p, r.q)], [b for r in runs for b in pack_k(p, r.k)],
                 [b for r in runs for b in pack_v(p, r.v)]]
        slots = sum((2 * p.blocks(r.n) * p.q_rows + 1) * p.slot_cycles for r in runs)
        limit = 10 * (sum(map(len, beats)) + slots) + 200 * len(runs) * p.q_rows + 2000

        def drive(r: int) -> None:
            self.dut.scale.value = runs[r].scale
            if p.causal:
                self.dut.q_pos.value = runs[r].q_pos

        timings = await self.run([r.n for r in runs], beats, limit, drive)
        errors = [check(p, run, t.tile) for run, t in zip(runs, timings, strict=True)]
        return timings, errors


def case(p: AttentionParams, rng: np.random.Generator, n: int) -> Case:
    """A random run over ``n`` keys for hosts other than the lock-step one (the AXI bench)."""
    run = random_run(p, rng, n)
    arguments = {"scale": run.scale, **({"q_pos": run.q_pos} if p.causal else {})}
    return Case(n, arguments, {"q_stream": pack_q(p, run.q), "k_stream": pack_k(p, run.k),
                               "v_stream": pack_v(p, run.v)}, lambda tile: check(p, run, tile))


def _report(test: str, runs: list[Run], timings: list[Timing], errors: list[float], stalled: bool) -> None:
    for run, t, err in zip(runs, timings, errors, strict=True):
        bench_report({"test": test, "n": run.n, "start_to_done": t.done - t.start,
                      "start_to_last_o": t.last_out - t.start, "float_error": err, "stalled": stalled})


async def _isolated(dut, test: str, make_runs: Callable[[AttentionParams, np.random.Generator], list[Run]],
                    salt: int) -> None:
    """Each run on an idle engine, no gaps or stalls: the exact-cycle case."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + salt)
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    for run in make_runs(p, rng):
        timings, errors = await host.execute([run])
        _report(test, [run], timings, errors, stalled=False)
        await ClockCycles(dut.clk, 2)


@cocotb.test()
async def one_key(dut):
    await _isolated(dut, "one_key", lambda p, rng: [random_run(p, rng, 1, q_pos=0)], 0)


@cocotb.test()
async def ragged_n(dut):
    """n just below, just above and not a multiple of the block."""
    def runs(p, rng):
        ns = {min(p.max_seq_len, max(1, p.kv_block - 1)), min(p.max_seq_len, p.kv_block + 1),
              min(p.max_seq_len, 2 * p.kv_block + p.kv_block // 2 + 1)}
        return [random_run(p, rng, n) for n in sorted(ns)]
    await _isolated(dut, "ragged_n", runs, 1)


@cocotb.test()
async def max_seq_len(dut):
    await _isolated(dut, "max_seq_len", lambda p, rng: [random_run(p, rng, p.max_seq_len)], 2)


@cocotb.test()
async def equal_scores(dut):
    """Every key identical: uniform probabilities, O = the mean of V."""
    def runs(p, rng):
        n = min(p.max_seq_len, 2 * p.kv_block + 1)
        run = random_run(p, rng, n)
        run.k[:] = run.k[0]
        return [run]
    await _isolated(dut, "equal_scores", runs, 3)


@cocotb.test()
async def dominant_score(dut):
    """One key aligned with every query at full scale, the rest small: O near that key's V."""
    def runs(p, rng):
        n = min(p.max_seq_len, 3 * p.kv_block)
        run = random_run(p, rng, n)
        top = (1 << (p.k_bits - 1)) - 1
        run.q[:] = (1 << (p.q_bits - 1)) - 1
        run.k[:] = rng.integers(-2, 2, size=run.k.shape, endpoint=True)
        run.k[n // 2] = top
        run.scale = (1 << 16) - 1
        run.q_pos = n
        return [run]
    await _isolated(dut, "dominant_score", runs, 4)


@cocotb.test()
async def extremes(dut):
    """Codes at both ends of their ranges with the largest scale (the widest scores)."""
    def runs(p, rng):
        n = min(p.max_seq_len, p.kv_block + 2)
        out = []
        for qv, kv, vv in ((-1, -1, -1), (-1, 1, 1), (1, 1, -1)):
            def fill(bits, sign, shape):
                return np.full(shape, -(1 << (bits - 1)) if sign < 0 else (1 << (bits - 1)) - 1)
            q = fill(p.q_bits, qv, (p.q_rows, p.head_dim))
            k = fill(p.k_bits, kv, (n, p.head_dim))
            k[1::2] = ~k[1::2]                                  # every other key at the other end
            v = fill(p.v_bits, vv, (n, p.head_dim))
            out.append(Run(q, k, v, (1 << 16) - 1, n))
        return out
    await _isolated(dut, "extremes", runs, 5)


@cocotb.test()
async def adversarial_patterns(dut):
    """Score patterns that stress the arithmetic (:mod:`verif.attention_patterns`): a maximum
    rising key by key and block by block (the rescale compounding), saw-tooth, one late
    dominant key, all equal; V set to turn weight errors into output error."""
    def runs(p, rng):
        n = min(p.max_seq_len, 3 * p.kv_block + 1)
        cases = (("ramp_up", 1.0, "early_high"), ("staircase", 2.0, "early_high"), ("saw_tooth", 8.0, "random"),
                 ("late_dominant", 8.0, "late_high"), ("all_equal", 1.0, "alternating"))
        return [Run(r.q, r.k, r.v, r.scale, r.q_pos) for r in
                (pattern_run(p, shape, n, spread, v_mode, rng) for shape, spread, v_mode in cases)]
    await _isolated(dut, "adversarial_patterns", runs, 9)


@cocotb.test()
async def random_runs(dut):
    def runs(p, rng):
        ns = rng.integers(1, p.max_seq_len, size=3, endpoint=True)
        return [random_run(p, rng, int(n), q_pos=int(rng.integers(0, n)) if p.causal else None) for n in ns]
    await _isolated(dut, "random_runs", runs, 6)


@cocotb.test()
async def back_to_back(dut):
    """Runs issued back to back, no stalls; for a causal engine the tiles of one prefill."""
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 7)
    if p.causal:
        total = min(p.max_seq_len, 3 * p.q_rows)
        q_all = _codes(rng, p.q_bits, (total + p.q_rows, p.head_dim))
        k_all = _codes(rng, p.k_bits, (total, p.head_dim))
        v_all = _codes(rng, p.v_bits, (total, p.head_dim))
        scale = spread_scale(p, q_all, k_all)
        runs = [Run(q_all[i:i + p.q_rows], k_all[:min(total, i + p.q_rows)], v_all[:min(total, i + p.q_rows)],
                    scale, i) for i in range(0, total, p.q_rows)]
    else:
        runs = [random_run(p, rng, int(n)) for n in rng.integers(1, min(p.max_seq_len, 3 * p.kv_block),
                                                                 size=3, endpoint=True)]
    host = Host(dut, p, seed=cocotb.RANDOM_SEED)
    await host.reset()
    timings, errors = await host.execute(runs)
    _report("back_to_back", runs, timings, errors, stalled=False)
    bench_report({"test": "back_to_back", "ns": [r.n for r in runs],
                  "first_start_to_last_o": timings[-1].last_out - timings[0].start, "stalled": False})


@cocotb.test()
async def gaps_and_backpressure(dut):
    p = _params()
    rng = np.random.default_rng(cocotb.RANDOM_SEED + 8)
    runs = [random_run(p, rng, int(n)) for n in rng.integers(1, min(p.max_seq_len, 3 * p.kv_block),
                                                             size=3, endpoint=True)]
    host = Host(dut, p, seed=cocotb.RANDOM_SEED + 9, gap=0.3, stall=0.4)
    await host.reset()
    timings, errors = await host.execute(runs)
    _report("gaps_and_backpressure", runs, timings, errors, stalled=True)
