"""PPA model of the systolic tile engine, vectorised over design points.

Cycles are exact for our RTL (the cocotb regression measures them). With
``R = rows``, ``C = cols``, ``P = 2R + C``, a run of depth ``k`` asserts ``done``

* output-stationary: ``k`` cycles after ``start`` is accepted (its last operand pair
  enters). A one-cycle bubble behind it clears the PEs and captures the tile along
  the wavefront into the output bank, whose last row leaves ``P - 1`` cycles later;
  a bubble waits for the one before to have drained (``P`` cycles apart at least). A
  run accepted in the done cycle follows its bubble, so a stream of runs costs
  ``max(k + 1, P)`` each, with no fill between tiles;
* weight-stationary (``M = m_tile`` rows of A per run, ``S = ceil(k/R)`` slices):
  a slice costs ``max(M, P)`` (its ``M`` rows, or the swap's wavefront plus the next
  slice's ``R``-row load when ``M`` is short); the first run of a stream waits ``R``
  cycles for its first slice's weights and ends ``M - 1`` cycles into its last slice,
  ``R + (S-1) max(M, P) + M - 1``, every later one ``S max(M, P)``. Its last C row
  leaves ``R + C`` cycles after ``done``.

A GEMM (M, N, K) is tiled as ``ceil(M/tile_rows) * ceil(N/C)`` output tiles, each
reduced in ``ceil(K/k_max)`` runs whose partial tiles the host adds.

Resources, area and energy are first-order structural counts times
coefficients kept in ``cost_models/data/systolic.json``.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.memory import placement
from cost_models.ops import Gemm
from cost_models.pricing import price
from cost_models.targets import Target, TargetKind
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


def capture_period(rows, cols):
    """The fewest cycles between two output-stationary bubbles (through the operand register
    and across ``R + C - 1`` diagonals into the output bank, then ``R`` rows drain), and
    between two weight-stationary swaps (the swap's wavefront, then the next ``R`` weight
    rows)."""
    return 2 * np.asarray(rows, dtype=np.int64) + np.asarray(cols, dtype=np.int64)


def tile_rows(rows, ws, m_tile):
    """Rows of C one run produces."""
    return np.where(ws, m_tile, rows)


def run_cycles(rows, cols, ws, m_tile, k, index=0, k_prev=0):
    """Cycles from the accepted ``start`` to ``done`` for one run of depth ``k``.

    ``index`` is the run's place in a back-to-back stream (0: the first, or a run on an
    idle engine) and ``k_prev`` the depth of the run before. Output-stationary: a run
    taken in the done cycle of the one before starts after that run's bubble, which
    (from the third run on) waits for the bubble before it to have drained.
    """
    rows, cols, m_tile, k, index, k_prev = (np.asarray(x, dtype=np.int64)
                                            for x in (rows, cols, m_tile, k, index, k_prev))
    period = capture_period(rows, cols)
    slices, per_slice = ceil_div(k, rows), np.maximum(m_tile, period)
    ws_cycles = np.where(index >= 1, slices * per_slice, rows + (slices - 1) * per_slice + m_tile - 1)
    wait = np.where(index >= 2, np.maximum(period - 1 - k_prev, 0), 0)
    return np.where(ws, ws_cycles, k + np.where(index >= 1, 1 + wait, 0))


def run_to_last_c(rows, cols, ws, m_tile, k, index=0, k_prev=0):
    """Cycles from the accepted ``start`` to the run's last C beat (C never stalled); ``index``
    and ``k_prev`` as for :func:`run_cycles`."""
    rows, cols, k, index = (np.asarray(x, dtype=np.int64) for x in (rows, cols, k, index))
    period = capture_period(rows, cols)
    bubble_wait = np.where(index >= 1, np.maximum(period - 1 - k, 0), 0)
    tail = np.where(ws, rows + cols, period + bubble_wait)
    return run_cycles(rows, cols, ws, m_tile, k, index, k_prev) + tail


def least_run_cycles(rows, cols, ws, m_tile, k):
    """(start to ``done``, start to the last C beat): the fewest cycles a run of depth ``k`` can
    take whatever its streams do (gaps, backpressure, a stream that runs ahead): the bound a
    stalled run is held to. Weight-stationary: its first slice's weights may be loaded
    before its start."""
    rows, cols, m_tile, k = (np.asarray(x, dtype=np.int64) for x in (rows, cols, m_tile, k))
    period = capture_period(rows, cols)
    done = np.where(ws, (ceil_div(k, rows) - 1) * np.maximum(m_tile, period) + m_tile, k)
    return done, done + np.where(ws, rows + cols, period)


def array_steps(rows, ws, m_tile, k):
    """Cycles the array computes in a run: ``k`` operand pairs (os), or ``m_tile`` rows per
    ``R``-deep slice (ws)."""
    return np.where(ws, ceil_div(k, rows) * m_tile, k)


def gemm_cycles(rows, cols, ws, m_tile, k_max, m, n, k):
    """Cycles from the first accepted ``start`` to the last C beat of a tiled GEMM, its runs
    issued back to back: output-stationary, the first run costs its ``k``, every later one
    ``max(k + 1, P)``, and the last tile's capture and drain ``P``; weight-stationary, every
    slice ``max(M, P)`` but for the first weight load and the last slice's tail."""
    rows, cols, m_tile, k_max, m, n, k = (np.asarray(x, dtype=np.int64)
                                          for x in (rows, cols, m_tile, k_max, m, n, k))
    tiles = ceil_div(m, tile_rows(rows, ws, m_tile)) * ceil_div(n, cols)
    chunks = ceil_div(k, k_max)
    k_last = k - (chunks - 1) * k_max
    period = capture_period(rows, cols)
    k_first = np.where(chunks > 1, k_max, k_last)
    streamed = (tiles * ((chunks - 1) * np.maximum(k_max + 1, period) + np.maximum(k_last + 1, period))
                - np.maximum(k_first + 1, period) + k_first + period)
    slices = tiles * ((chunks - 1) * ceil_div(k_max, rows) + ceil_div(k_last, rows))
    ws_cycles = rows + (slices - 1) * np.maximum(m_tile, period) + m_tile - 1 + rows + cols
    return np.where(ws, ws_cycles, streamed)


def features(col: Mapping[str, np.ndarray], on_dsp, tech: str | None = None, *,
             reduce_widths: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Structural features of the generated RTL, grouped by the figure they price.

    Register counts are exact for our RTL: PE accumulators, weights and operand
    pass-through registers (without the ones synthesis drops at the array's far
    edges and the ws partial-sum bits it proves constant), skew/de-skew lines, the
    os output bank and bubble line, the ws swap and token lines, and the
    controllers' counters and state. The ws output buffer is a memory (see
    :func:`buffer_shape`), not counted here but for the CMOS flow, which builds it
    of flip-flops. ``reduce_widths=False`` counts every register bit the RTL
    declares instead.
    """
    r, c = col["rows"], col["cols"]
    a, w, acc, ws, k_max, m_tile = (col[k] for k in ("a_bits", "w_bits", "acc", "ws", "k_max", "m_tile"))
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
    ws_pass = a * r * (c - 1) + 2 * w * pes                  # a weight and its shadow per PE
    pe_pass = np.where(ws, ws_pass, os_pass)
    diagonals = r + c - 1                                    # the bubble's or the swap's delay line
    os_other = (a * r * (r + 1) // 2 + w * c * (c + 1) // 2  # operand register and skew
                + pes * acc + bits_for(r + 1) + bits_for(k_max + 1) + diagonals + 1 + 2)  # + queued, FSM
    row_bits = bits_for(np.maximum(m_tile, 2))
    ws_other = (a * r * (r + 1) // 2 + last_row_bits * c * (c - 1) // 2
                + (r + c) * (3 + row_bits) + diagonals  # token line (valid, first, last, row)
                + 1 + bits_for(np.maximum(r, 2))             # shadow full, load row
                + bits_for(k_max + 1) + row_bits + 1 + 1)    # k left, row, first slice, FSM state
    other = np.where(ws, ws_other, os_other)
    port = np.where(ws, c * acc, 0)                          # the ws buffer's read and write word
    buffer_bits = port * m_tile
    # os output bank: rows 0..R-2 capture or shift (a LUT per bit); the last row only captures,
    # which its flip-flops' clock enable does
    drain_mux = np.where(ws, 0, (r - 1) * c * acc)
    feed_gates = a * r + np.where(ws, 0, w * c)             # operands gated to zero when idle
    # ... but on Xilinx a DSP48 that is an operand's only reader can zero it with its input
    # register's reset: one row's weights, one column's activations (measured: a one-row
    # array's gating takes no LUT; on ECP5 the fit is worse with the same rule)
    absorbs = on_dsp & (tech == "xilinx")
    feed_luts = a * r * ~(absorbs & (c == 1)) + np.where(ws, 0, w * c * ~(absorbs & (r == 1)))
    # gate-level 2:1 multiplexers for the CMOS count: every os bank bit captures; the ws buffer
    # (flip-flops there) writes every bit through one and reads through an m_tile:1 tree
    mux = np.where(ws, buffer_bits + port * (m_tile - 1) + pes * w, pes * acc) + feed_gates
    one = np.ones_like(pes)
    soft_levels = np.ceil(np.log2(np.maximum(np.minimum(a, w), 2)))
    return {
        "lut": {"const": one, "pe": pes,
                # a ws partial sum (psum_in + a*w) is the DSP post-adder's own pattern, and in
                # fabric an adder of its own; an os accumulator merges into a fabric product's
                # last adder row
                "acc_adder_soft_os": pe_acc * soft * ~ws, "acc_adder_soft_ws": pe_acc * soft * ws,
                "acc_adder_dsp_os": pe_acc * on_dsp * ~ws, "acc_adder_dsp_ws": pe_acc * on_dsp * ws,
                # a fabric product is an array multiplier of (min-1) x max adder bits; os sign-extends
                # signed products to the accumulator width, one more adder row
                "soft_mult": pes * (np.minimum(a, w) - 1) * np.maximum(a, w) * soft,
                "soft_signed_os": pes * acc * col["signed"] * ~ws * soft,
                "drain_mux": drain_mux, "weight_swap": np.where(ws, pes * w, 0),
                "feed_gates": feed_luts, "buffer_adder": port},
        "ff": {"const": one, "pe_acc_soft": pe_acc * soft, "pe_acc_dsp": pe_acc * on_dsp,
               "pe_pass_soft": pe_pass * soft, "pe_pass_dsp": pe_pass * on_dsp, "other": other,
               "buffer_port": buffer_flops(col, tech)},
        "period_ns": {"const": one, "dsp": on_dsp.astype(np.float64), "soft_mult_level": soft_levels * soft,
                      "acc_bit": acc, "log2_pes": np.log2(np.maximum(pes, 1))},
        "cmos": {"const": one, "reg": pe_acc + pe_pass + other + buffer_bits + port,
                 "adder": pe_acc + port, "mult": pes * a * w, "mux": mux},
    }


def buffer_shape(col: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(width, depth) of the memories the RTL instantiates: the ws output buffer, ``m_tile``
    rows of ``cols`` sums (a zero-depth one for os, which keeps none)."""
    return {"out_buffer": (col["cols"] * col["acc"], np.where(col["ws"], col["m_tile"], 0))}


def buffer_flops(col: Mapping[str, np.ndarray], tech: str | None) -> np.ndarray:
    """Flip-flops the ws output buffer's ports take: its read register, or on an ECP5 block RAM
    (which has it inside) the registers Yosys adds to give the read its old-data rule when a
    write hits the same row (write data, address and enable, the bypassed word, its select:
    measured, 2 x width + address bits + 2)."""
    width, depth = buffer_shape(col)["out_buffer"]
    in_bram = placement(buffer_shape(col), tech, np.shape(width))["bram"] > 0 if tech == "ecp5" else False
    return np.where(depth > 0, np.where(in_bram, 2 * width + bits_for(np.maximum(depth, 2)) + 2, width), 0)


def placed_memories(points: Points, tech: str) -> dict[str, np.ndarray]:
    """Block RAMs and LUT RAM LUTs of each point on ``tech``, counted (not fitted)."""
    col = prepare(points)
    return placement(buffer_shape(col), tech, np.shape(col["rows"]))


def prepare(points: Points) -> dict[str, np.ndarray]:
    """Columns with the derived fields the model needs (``acc``, ``ws``, ``signed``)."""
    col = _columns(points)
    out = {k: col[k].astype(np.int64) for k in ("rows", "cols", "a_bits", "w_bits", "k_max", "m_tile")}
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

    m_tile = col["m_tile"]
    cycles = gemm_cycles(rows, cols, ws, m_tile, k_max, gemm.m, gemm.n, gemm.k)
    out_rows = tile_rows(rows, ws, m_tile)
    tiles = ceil_div(gemm.m, out_rows) * ceil_div(gemm.n, cols)
    chunks = ceil_div(gemm.k, k_max)
    k_last = gemm.k - (chunks - 1) * k_max
    steps = (chunks - 1) * array_steps(rows, ws, m_tile, k_max) + array_steps(rows, ws, m_tile, k_last)
    macs = tiles * rows * cols * steps

    fpga = target.kind is TargetKind.FPGA
    on_dsp = (target.hard_multiplier(a_bits, w_bits, (fab.dsp_min_bits, fab.dsp_min_product_bits)) if fpga
              else np.zeros(np.shape(a_bits), dtype=bool))
    feats = features(col, on_dsp, target.tech)
    pes = rows * cols
    dsp = (np.where(on_dsp, pes * target.dsps_per_product(a_bits, w_bits), 0) if fpga
           else np.zeros_like(pes))
    energy = fab.energy
    e_mac = macs * (energy["j_per_mult_bit2"] * a_bits * w_bits + energy["j_per_adder_bit"] * acc)
    counts = {"cycles": cycles, "tiles": tiles, "runs": tiles * chunks}
    placed = placement(buffer_shape(col), target.tech, np.shape(pes))    # none for an ASIC technology
    return price(ops=gemm.ops, target=target, fab=fab, counts=counts,
                 lut=weighted(fab.lut, feats["lut"]) + placed["lutram"], ff=weighted(fab.ff, feats["ff"]),
                 dsp=dsp, bram=placed["bram"], lutram=placed["lutram"],
                 area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]),
                 reg_bits=feats["cmos"]["reg"] - np.prod(buffer_shape(col)["out_buffer"], axis=0),
                 e_compute=e_mac, offchip=gemm.offchip_bits(out_rows, cols, chunks, a_bits, w_bits, acc),
                 valid=np.broadcast_to(SystolicParams.valid_columns(_columns(points)), np.shape(pes)),
                 extra={"energy_mac_j": e_mac, "acc_bits": acc, "macs": macs,
                        "utilization": (gemm.m * gemm.n * gemm.k) / (pes * cycles)})


def model_info() -> dict[str, object]:
    return {"family": "systolic", "coefficients": provenance("systolic")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"rows": (1, 10), "cols": (1, 10), "k_max": (4, 1024), "m_tile": (2, 512)}
"""Where calibration samples designs: the declared ranges, capped so each sample synthesizes in
well under a minute on one core. The structural features extrapolate beyond the box."""
FLOW_BOXES = {"generic": {"m_tile": (2, 16)}, "ecp5": {"rows": (1, 6), "cols": (1, 6)}}
"""The CMOS flow builds the ws output buffer of flip-flops and gates: deep buffers would take it
many minutes each, and the buffer's bits and read tree scale linearly beyond the box. ECP5 place
and route of the box's largest arrays takes several minutes each on two cores."""


def calibration_features(points: Points, dsp_rule: tuple[int, int], target: Target,
                         tables: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    """Feature tables for ``points`` with multipliers placed by ``dsp_rule`` = (min bits, min
    product bits), on the fabric of ``target`` (the generic flow's model target has none)."""
    col = prepare(points)
    tech = target.tech if target.kind is TargetKind.FPGA else None
    return features(col, target.hard_multiplier(col["a_bits"], col["w_bits"], dsp_rule), tech)


def multipliers(points: Points, target: Target) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One role: (multiplier count, a_bits, w_bits) of each point, for fitting the DSP rule."""
    col = prepare(points)
    return [(col["rows"] * col["cols"], col["a_bits"], col["w_bits"])]


def register_bits(points: Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flip-flop bits synthesis keeps, bits it drops, the ws output buffer's port word).

    Dropped: the operand pass-through registers at the array's far edges and
    the ws partial-sum bits ``wreduce`` proves constant. Kept plus dropped is every
    register the RTL declares outside the buffer; the buffer adds its read register (its
    memory array is RAM): what the structural count checks.
    """
    col = prepare(points)
    soft = np.zeros(col["rows"].shape, dtype=bool)

    def flops(reduce_widths):
        ff = features(col, soft, reduce_widths=reduce_widths)["ff"]
        return ff["pe_acc_soft"] + ff["pe_pass_soft"] + ff["other"]

    kept = flops(True)
    edges = col["a_bits"] * col["rows"] + np.where(col["ws"], 0, col["w_bits"] * col["cols"])
    return kept, flops(False) - kept + edges, buffer_shape(col)["out_buffer"][0] * col["ws"]
