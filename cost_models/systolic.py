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

from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.ops import Gemm
from cost_models.pricing import price
from cost_models.targets import Target, TargetKind, on_hard_multiplier
from generators.systolic import Dataflow, SystolicParams, acc_width
from generators.widths import bits_for, ceil_div

WS_CODE = list(Dataflow).index(Dataflow.WS)

Points = Union[SystolicParams, Sequence[SystolicParams], Mapping[str, np.ndarray]]


def _columns(points: Points) -> dict[str, np.ndarray]:
    if isinstance(points, SystolicParams):
        points = [points]
    if isinstance(points, Mapping):
        return {k: np.asarray(v) for k, v in points.items()}
    return SystolicParams.columns(points)


def run_cycles(rows, cols, ws, k):
    """Cycles from the accepted ``start`` to ``done`` for one run of depth ``k``."""
    rows, cols, k = (np.asarray(x, dtype=np.int64) for x in (rows, cols, k))
    passes = ceil_div(k, rows)
    ws_cycles = k + passes * rows + (passes - 1) * np.maximum(cols - 2, 0) + rows + cols
    return np.where(ws, ws_cycles, k + rows + cols - 1)


def run_to_last_c(rows, cols, ws, k):
    """Cycles from the accepted ``start`` to the run's last C beat (C never stalled)."""
    return run_cycles(rows, cols, ws, k) + np.asarray(rows, dtype=np.int64)


def array_passes(rows, ws, k):
    """Times the array is swept in a run: ``K`` feed steps (os) or ``ceil(K/R)`` passes (ws)."""
    return np.where(ws, ceil_div(k, rows) * rows, k)


def gemm_cycles(rows, cols, ws, k_max, m, n, k):
    """Cycles from the first accepted ``start`` to the last C beat of a tiled GEMM."""
    rows, cols, k_max, m, n, k = (np.asarray(x, dtype=np.int64) for x in (rows, cols, k_max, m, n, k))
    tiles = ceil_div(m, rows) * ceil_div(n, cols)
    chunks = ceil_div(k, k_max)
    k_last = k - (chunks - 1) * k_max
    per_tile = (chunks - 1) * run_cycles(rows, cols, ws, k_max) + run_cycles(rows, cols, ws, k_last)
    return tiles * per_tile + rows


def mux_luts(ways, lut_inputs: int):
    """LUTs of one ``ways``:1 multiplexer bit built as a tree of ``lut_inputs``-input LUTs.

    A k-input LUT selects among m inputs when m + log2(m) <= k (4 for LUT6, 2 for
    LUT4, a 2:1 gate otherwise), so a LUT4 tree costs ``ways - 1`` and a LUT6 tree
    about a third of that; synthesis maps the ws row accumulator's read port so.
    """
    per_lut = 4 if lut_inputs >= 6 else 2
    level = np.asarray(ways, dtype=np.int64)
    total = np.zeros(level.shape, dtype=np.int64)
    while np.any(level > 1):
        full, rest = np.divmod(level, per_lut)
        total += full + (rest > 1)          # a lone leftover input passes up without a LUT
        level = np.where(level > 1, full + (rest > 0), 1)
    return total


def features(col: Mapping[str, np.ndarray], on_dsp, lut_inputs: int = 4, *,
             reduce_widths: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Structural features of the generated RTL, grouped by the figure they price.

    Register counts are exact for our RTL: PE accumulators and operand
    pass-through registers (without the ones synthesis drops at the array's
    far edges and the ws partial-sum bits it proves constant), skew/de-skew
    lines, the ws row accumulator and token line, the output bank and the
    controller's counters and state. ``reduce_widths=False`` counts every
    register bit the RTL declares instead.
    """
    r, c = col["rows"], col["cols"]
    a, w, acc, ws, k_max = col["a_bits"], col["w_bits"], col["acc"], col["ws"], col["k_max"]
    pes = r * c
    soft = ~on_dsp
    # ws partial sums start from a constant 0, so synthesis (wreduce) keeps only the bits a
    # sum of r+1 products can reach: row r holds min(acc, a+w+r) bits; os accumulators feed
    # back on themselves and keep all acc bits.
    product = a + w
    full_rows = np.clip(acc - product, 0, r) if reduce_widths else np.zeros_like(r)
    ws_psum_bits = full_rows * product + full_rows * (full_rows - 1) // 2 + (r - full_rows) * acc
    last_row_bits = np.minimum(acc, product + r - 1) if reduce_widths else acc
    pe_acc = np.where(ws, c * ws_psum_bits, pes * acc)
    os_pass = a * r * (c - 1) + w * c * (r - 1)
    ws_pass = a * r * (c - 1) + w * pes
    pe_pass = np.where(ws, ws_pass, os_pass)
    index = bits_for(np.maximum(r, 2))
    drain = pes * acc + bits_for(r + 1)
    os_other = (a * r * (r - 1) // 2 + w * c * (c - 1) // 2 + drain
                + bits_for(k_max + 1) + bits_for(np.maximum(r + c - 1, 2))
                + bits_for(np.where(r + c > 2, 4, 3)))
    gap = np.maximum(c - 2, 0)
    ws_other = (a * r * (r - 1) // 2 + last_row_bits * c * (c - 1) // 2 + drain + pes * acc
                + (r + c - 1) * (2 + index)
                + bits_for(k_max + 1) + bits_for(r + 1) + 2 * index + 1
                + bits_for(np.maximum(gap, r + c - 1) + 1) + bits_for(np.where(gap > 0, 6, 5)))
    other = np.where(ws, ws_other, os_other)
    # output bank: rows 0..R-2 load or shift (a LUT per bit); the last row only loads, which
    # its flip-flops' clock enable does
    drain_mux = (r - 1) * c * acc
    read_mux = np.where(ws, c * acc * mux_luts(r, lut_inputs), 0)   # ws row accumulator read port
    feed_gates = a * r + np.where(ws, 0, w * c)             # operands gated to zero when idle
    # gate-level 2:1 multiplexers for the CMOS count: every bank bit loads, every rows:1 read
    # port is rows - 1 of them
    mux = pes * acc + np.where(ws, c * acc * (r - 1), 0) + feed_gates
    one = np.ones_like(pes)
    soft_levels = np.ceil(np.log2(np.maximum(np.minimum(a, w), 2)))
    return {
        "lut": {"const": one, "pe": pes, "acc_adder_soft": pe_acc * soft,
                # a ws partial sum (psum_in + a*w) is the DSP post-adder's own pattern; an os
                # accumulator with its clear and enable often stays in fabric
                "acc_adder_dsp_os": pe_acc * on_dsp * ~ws, "acc_adder_dsp_ws": pe_acc * on_dsp * ws,
                # a fabric product is an array multiplier of (min-1) x max adder bits; os sign-extends
                # signed products to the accumulator width, one more adder row
                "soft_mult": pes * (np.minimum(a, w) - 1) * np.maximum(a, w) * soft,
                "soft_signed_os": pes * acc * col["signed"] * ~ws * soft,
                "drain_mux": drain_mux, "read_mux": read_mux,
                "feed_gates": feed_gates, "bank_adder": np.where(ws, c * acc, 0)},
        "ff": {"const": one, "pe_acc_soft": pe_acc * soft, "pe_acc_dsp": pe_acc * on_dsp,
               "pe_pass_soft": pe_pass * soft, "pe_pass_dsp": pe_pass * on_dsp, "other": other},
        "period_ns": {"const": one, "dsp": on_dsp.astype(np.float64), "soft_mult_level": soft_levels * soft,
                      "acc_bit": acc, "log2_pes": np.log2(np.maximum(pes, 1))},
        "cmos": {"const": one, "reg": pe_acc + pe_pass + other, "adder": pe_acc + np.where(ws, c * acc, 0),
                 "mult": pes * a * w, "mux": mux},
    }


def prepare(points: Points) -> dict[str, np.ndarray]:
    """Columns with the derived fields the model needs (``acc``, ``ws``, ``signed``)."""
    col = _columns(points)
    out = {k: col[k].astype(np.int64) for k in ("rows", "cols", "a_bits", "w_bits", "k_max")}
    signed = col["signed"].astype(bool)
    out["acc"] = acc_width(col)
    out["ws"] = np.asarray(col["dataflow"] == WS_CODE)
    out["signed"] = signed
    return out


def estimate(points: Points, gemm: Gemm, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point in ``points`` running ``gemm`` on ``target``.

    ``points`` is one Params, a sequence of them, or columns as produced by
    ``SystolicParams.columns`` (arrays broadcast together). Returns a dict of
    equally long NumPy arrays.
    """
    col = prepare(points)
    fab = coefficients("systolic", target.tech, FabricCoefficients)
    cmos = coefficients("systolic", "cmos", CmosCoefficients)
    rows, cols, ws, k_max = col["rows"], col["cols"], col["ws"], col["k_max"]
    a_bits, w_bits, acc = col["a_bits"], col["w_bits"], col["acc"]

    cycles = gemm_cycles(rows, cols, ws, k_max, gemm.m, gemm.n, gemm.k)
    tiles = ceil_div(gemm.m, rows) * ceil_div(gemm.n, cols)
    chunks = ceil_div(gemm.k, k_max)
    k_last = gemm.k - (chunks - 1) * k_max
    sweeps = (chunks - 1) * array_passes(rows, ws, k_max) + array_passes(rows, ws, k_last)
    macs = tiles * rows * cols * sweeps

    fpga = target.kind is TargetKind.FPGA
    on_dsp = (on_hard_multiplier(a_bits, w_bits, (fab.dsp_min_bits, fab.dsp_min_product_bits)) if fpga
              else np.zeros(np.shape(a_bits), dtype=bool))
    feats = features(col, on_dsp, target.lut_inputs)
    pes = rows * cols
    dsp = (np.where(on_dsp, pes * target.dsps_per_product(a_bits, w_bits), 0) if fpga
           else np.zeros_like(pes))
    energy = fab.energy
    e_mac = macs * (energy["j_per_mult_bit2"] * a_bits * w_bits + energy["j_per_adder_bit"] * acc)
    counts = {"cycles": cycles, "tiles": tiles, "runs": tiles * chunks}
    return price(ops=gemm.ops, target=target, fab=fab, counts=counts,
                 lut=weighted(fab.lut, feats["lut"]), ff=weighted(fab.ff, feats["ff"]),
                 dsp=dsp, area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]), reg_bits=feats["cmos"]["reg"],
                 e_compute=e_mac, offchip=gemm.offchip_bits(rows, cols, chunks, a_bits, w_bits, acc),
                 valid=np.broadcast_to(SystolicParams.valid_columns(_columns(points)), np.shape(pes)),
                 extra={"energy_mac_j": e_mac, "acc_bits": acc, "macs": macs,
                        "utilization": (gemm.m * gemm.n * gemm.k) / (pes * cycles)})


def model_info() -> dict[str, object]:
    return {"family": "systolic", "coefficients": provenance("systolic")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"rows": (1, 10), "cols": (1, 10), "k_max": (4, 1024)}
"""Where calibration samples designs: the declared ranges, capped so each sample synthesizes in
well under a minute on one core. The structural features extrapolate beyond the box."""


def calibration_features(points: Points, dsp_rule: tuple[int, int],
                         lut_inputs: int) -> dict[str, dict[str, np.ndarray]]:
    """Feature tables for ``points`` with multipliers placed by ``dsp_rule`` = (min bits, min
    product bits) and multiplexers built of ``lut_inputs``-input LUTs."""
    col = prepare(points)
    return features(col, on_hard_multiplier(col["a_bits"], col["w_bits"], dsp_rule), lut_inputs)


def multipliers(points: Points) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One role: (multiplier count, a_bits, w_bits) of each point, for fitting the DSP rule."""
    col = prepare(points)
    return [(col["rows"] * col["cols"], col["a_bits"], col["w_bits"])]


def register_bits(points: Points) -> tuple[np.ndarray, np.ndarray]:
    """(flip-flop bits synthesis keeps, bits it drops).

    Dropped: the operand pass-through registers at the array's far edges and
    the ws partial-sum bits ``wreduce`` proves constant. Their sum is every
    register the RTL declares, which the pyverilog structural count checks.
    """
    col = prepare(points)
    kept = features(col, np.zeros(col["rows"].shape, dtype=bool))["cmos"]["reg"]
    declared = features(col, np.zeros(col["rows"].shape, dtype=bool), reduce_widths=False)["cmos"]["reg"]
    edges = col["a_bits"] * col["rows"] + np.where(col["ws"], 0, col["w_bits"] * col["cols"])
    return kept, declared - kept + edges
