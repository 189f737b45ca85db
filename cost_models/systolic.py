"""PPA model of the systolic tile engine, vectorised over design points.

Cycles are exact for our RTL (the cocotb regression measures them): with
``R = rows``, ``C = cols``, a run of depth ``k`` asserts ``done``

* output-stationary: ``k + R + C - 1`` cycles after ``start`` is accepted
  (1 start cycle, ``k`` feed cycles, ``R + C - 2`` wavefront flush);
* weight-stationary: ``k + P*R + (P-1)*max(C-2, 0) + R + C`` cycles, with
  ``P = ceil(k/R)`` passes (weights load one row per cycle, ``R`` activation
  rows stream per pass, a ``C-2`` gap keeps new weights behind the last
  activation, ``R + C - 1`` flush into the row accumulator);

and its last C row leaves ``R`` cycles after ``done`` when C is never stalled.
A new run is accepted in the ``done`` cycle and the finished tile drains
while the next computes, so back-to-back runs cost their ``done`` latency
each plus one final drain of ``R`` rows.

A GEMM (M, N, K) is tiled as ``ceil(M/R) * ceil(N/C)`` output tiles, each
reduced in ``ceil(K/k_max)`` runs whose partial tiles the host adds.

Resources, area and energy are first-order structural counts times
coefficients kept in ``cost_models/data/systolic.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import coefficients, provenance
from cost_models.ops import Gemm
from cost_models.targets import Target, TargetKind
from generators.systolic import Dataflow, SystolicParams, full_precision_acc_bits

WS_CODE = list(Dataflow).index(Dataflow.WS)

Points = Union[SystolicParams, Sequence[SystolicParams], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class FabricCoefficients:
    """Per-technology coefficients (FPGA fabric or standard cells)."""
    lut_per_adder_bit: float        # LUTs per accumulator adder bit
    lut_per_mult_bit2: float        # LUTs per a_bits*w_bits of a soft multiplier
    lut_per_mux_bit: float          # LUTs per 2:1 multiplexer bit
    lut_control: float              # LUTs of the controller and counters
    ff_per_reg_bit: float           # flip-flops per register bit of the structure
    ff_control: float               # flip-flops of the controller
    dsp_min_bits: int               # narrower multipliers stay in LUTs
    ns_base: float                  # clock-to-out + setup + routing, ns
    ns_per_adder_bit: float         # carry chain, ns per accumulator bit
    ns_dsp: float                   # hard multiplier delay, ns
    ns_per_mult_level: float        # soft multiplier, ns per partial-product tree level
    ns_per_fanout_doubling: float   # global enable fan-out, ns per doubling of PEs
    j_per_mult_bit2: float          # J per multiply, per a_bits*w_bits
    j_per_adder_bit: float          # J per accumulate, per accumulator bit
    j_per_reg_bit_cycle: float      # J per register bit per clock cycle (activity folded in)
    w_static: float                 # W of static power attributed to the design


@dataclass(frozen=True)
class CmosCoefficients:
    """Technology-neutral area proxy, in transistors (Yosys ``stat -tech cmos`` style)."""
    transistors_per_reg_bit: float
    transistors_per_adder_bit: float
    transistors_per_mult_bit2: float
    transistors_per_mux_bit: float
    transistors_control: float


def _columns(points: Points) -> dict[str, np.ndarray]:
    if isinstance(points, SystolicParams):
        points = [points]
    if isinstance(points, Mapping):
        return {k: np.asarray(v) for k, v in points.items()}
    return SystolicParams.columns(points)


def _ceil_div(a, b):
    return -(-a // b)


def run_cycles(rows, cols, ws, k):
    """Cycles from the accepted ``start`` to ``done`` for one run of depth ``k``."""
    rows, cols, k = (np.asarray(x, dtype=np.int64) for x in (rows, cols, k))
    passes = _ceil_div(k, rows)
    ws_cycles = k + passes * rows + (passes - 1) * np.maximum(cols - 2, 0) + rows + cols
    return np.where(ws, ws_cycles, k + rows + cols - 1)


def run_to_last_c(rows, cols, ws, k):
    """Cycles from the accepted ``start`` to the run's last C beat (C never stalled)."""
    return run_cycles(rows, cols, ws, k) + np.asarray(rows, dtype=np.int64)


def array_passes(rows, ws, k):
    """Times the array is swept in a run: ``K`` feed steps (os) or ``ceil(K/R)`` passes (ws)."""
    return np.where(ws, _ceil_div(k, rows) * rows, k)


def gemm_cycles(rows, cols, ws, k_max, m, n, k):
    """Cycles from the first accepted ``start`` to the last C beat of a tiled GEMM."""
    rows, cols, k_max, m, n, k = (np.asarray(x, dtype=np.int64) for x in (rows, cols, k_max, m, n, k))
    tiles = _ceil_div(m, rows) * _ceil_div(n, cols)
    chunks = _ceil_div(k, k_max)
    k_last = k - (chunks - 1) * k_max
    per_tile = (chunks - 1) * run_cycles(rows, cols, ws, k_max) + run_cycles(rows, cols, ws, k_last)
    return tiles * per_tile + rows


def structure(rows, cols, a_bits, w_bits, acc, ws):
    """Register, adder, multiplier and multiplexer bits of the generated RTL."""
    r, c = rows, cols
    pes = r * c
    skew = a_bits * r * (r - 1) // 2
    pe_regs = pes * (a_bits + w_bits + acc)
    drain = pes * acc
    os_regs = skew + w_bits * c * (c - 1) // 2 + pe_regs + drain
    index_bits = np.maximum(np.ceil(np.log2(np.maximum(r, 2))), 1)
    ws_regs = (skew + acc * c * (c - 1) // 2 + pe_regs + 2 * drain
               + (r + c - 1) * (2 + index_bits))
    reg_bits = np.where(ws, ws_regs, os_regs)
    adder_bits = pes * acc + np.where(ws, c * acc, 0)
    mult_bits2 = pes * a_bits * w_bits
    feed_gates = a_bits * r + np.where(ws, 0, w_bits * c)
    mux_bits = drain + feed_gates + np.where(ws, c * acc * (r - 1), 0)
    return reg_bits, adder_bits, mult_bits2, mux_bits


def estimate(points: Points, gemm: Gemm, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point in ``points`` running ``gemm`` on ``target``.

    ``points`` is one Params, a sequence of them, or columns as produced by
    ``SystolicParams.columns`` (arrays broadcast together). Returns a dict of
    equally long NumPy arrays.
    """
    col = _columns(points)
    fab = coefficients("systolic", target.tech, FabricCoefficients)
    cmos = coefficients("systolic", "cmos", CmosCoefficients)
    rows, cols = col["rows"].astype(np.int64), col["cols"].astype(np.int64)
    a_bits, w_bits = col["a_bits"].astype(np.int64), col["w_bits"].astype(np.int64)
    k_max, signed = col["k_max"].astype(np.int64), col["signed"].astype(bool)
    ws = col["dataflow"] == WS_CODE
    given = col["acc_bits"].astype(np.int64)
    acc = np.where(given > 0, given, full_precision_acc_bits(a_bits, w_bits, k_max, signed))

    cycles = gemm_cycles(rows, cols, ws, k_max, gemm.m, gemm.n, gemm.k)
    tiles = _ceil_div(gemm.m, rows) * _ceil_div(gemm.n, cols)
    chunks = _ceil_div(gemm.k, k_max)
    k_last = gemm.k - (chunks - 1) * k_max
    sweeps = (chunks - 1) * array_passes(rows, ws, k_max) + array_passes(rows, ws, k_last)
    macs = tiles * rows * cols * sweeps

    reg_bits, adder_bits, mult_bits2, mux_bits = structure(rows, cols, a_bits, w_bits, acc, ws)
    pes = rows * cols
    if target.kind is TargetKind.FPGA:
        on_dsp = np.minimum(a_bits, w_bits) >= fab.dsp_min_bits
        per_mult = _ceil_div(a_bits, target.dsp_a_bits) * _ceil_div(w_bits, target.dsp_b_bits)
        dsp = np.where(on_dsp, pes * per_mult, 0)
        soft_mult = np.where(on_dsp, 0, mult_bits2)
    else:
        on_dsp = np.zeros_like(ws)
        dsp = np.zeros_like(rows)
        soft_mult = mult_bits2
    lut = (fab.lut_per_adder_bit * adder_bits + fab.lut_per_mult_bit2 * soft_mult
           + fab.lut_per_mux_bit * mux_bits + fab.lut_control)
    ff = fab.ff_per_reg_bit * reg_bits + fab.ff_control
    area = (cmos.transistors_per_reg_bit * reg_bits + cmos.transistors_per_adder_bit * adder_bits
            + cmos.transistors_per_mult_bit2 * mult_bits2 + cmos.transistors_per_mux_bit * mux_bits
            + cmos.transistors_control)

    mult_levels = np.ceil(np.log2(np.maximum(np.minimum(a_bits, w_bits), 2)))
    mult_ns = np.where(on_dsp, fab.ns_dsp, fab.ns_per_mult_level * mult_levels)
    crit_ns = (fab.ns_base + mult_ns + fab.ns_per_adder_bit * acc
               + fab.ns_per_fanout_doubling * np.log2(np.maximum(pes, 1)))
    fmax = 1e3 / crit_ns
    clock = np.minimum(fmax, target.clock_mhz)
    latency = cycles / (clock * 1e6)

    e_mac = macs * (fab.j_per_mult_bit2 * a_bits * w_bits + fab.j_per_adder_bit * acc)
    e_reg = fab.j_per_reg_bit_cycle * reg_bits * cycles
    e_static = fab.w_static * latency
    n = np.broadcast_shapes(rows.shape, cycles.shape)
    out = {
        "cycles": cycles, "latency_s": latency, "throughput_ops_s": gemm.ops / latency,
        "lut": lut, "ff": ff, "dsp": dsp, "bram": np.zeros_like(rows),
        "area_transistors": area, "energy_j": e_mac + e_reg + e_static,
        "energy_mac_j": e_mac, "energy_reg_j": e_reg, "energy_static_j": e_static,
        "fmax_mhz": fmax, "clock_mhz": clock, "acc_bits": acc,
        "tiles": tiles, "runs": tiles * chunks, "macs": macs,
        "utilization": (gemm.m * gemm.n * gemm.k) / (pes * cycles),
    }
    if target.kind is TargetKind.FPGA:
        out["fits"] = ((lut <= target.luts) & (ff <= target.ffs) & (dsp <= target.dsps))
    else:
        out["fits"] = np.ones_like(ws)
    return {k: np.broadcast_to(v, n) for k, v in out.items()}


def model_info() -> dict[str, object]:
    return {"family": "systolic", "coefficients": provenance("systolic")}
