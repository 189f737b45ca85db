"""PPA model of the vector unit (:mod:`generators.vector`), vectorised over design points.

Cycles are exact: a run of ``n`` beats takes ``n`` plus the op's stated latency
(:func:`generators.vector.latency`) from its accepted start to ``done``, back to back, and a
workload op of ``elements`` values is ``ceil(elements / lanes)`` beats in runs of
at most ``max_beats``, one run per RTL op it needs (:data:`RTL_OPS`). Resources, Fmax, area
and energy are structural counts of the RTL times the coefficients in
``cost_models/data/vector.json``.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.ops import VectorOp
from cost_models.pricing import price
from cost_models.targets import Target, TargetKind
from generators.vector import (VectorOpcode, VectorParams, derived_input_frac, divide_steps, gate_segments,
                               index_bits, latency, root_steps, sum_bits)
from generators.widths import bit_length, bits_for, ceil_div

Points = Union[VectorParams, Sequence[VectorParams], Mapping[str, np.ndarray]]

RTL_OPS: dict[str, tuple[VectorOpcode, ...]] = {
    "residual": (VectorOpcode.ADD,), "bias": (VectorOpcode.ADD,), "position": (VectorOpcode.ADD,),
    "gate_mul": (VectorOpcode.MUL,), "group_scale": (VectorOpcode.MUL, VectorOpcode.ADD),
    "relu": (VectorOpcode.RELU,), "relu2": (VectorOpcode.RELU2,), "argmax": (VectorOpcode.ARGMAX,),
    "act_quant": (VectorOpcode.ABSMAX, VectorOpcode.SCALE),
    "rms_norm": (VectorOpcode.RMS, VectorOpcode.SCALE, VectorOpcode.MUL),
    "rope": (VectorOpcode.ROPE,), "silu": (VectorOpcode.SILU,), "gelu": (VectorOpcode.GELU,),
    "layer_norm": (VectorOpcode.MEAN, VectorOpcode.CENTER, VectorOpcode.RMS, VectorOpcode.SCALE, VectorOpcode.MUL,
                   VectorOpcode.ADD),
}
"""The unit's runs for each kind of workload op it can execute, each a pass over the row: a
W4 group's partial sums are scaled, then added; quantization finds the row's absmax, then
scales; RMSNorm finds the factor, scales, then multiplies by the gain; RoPE rotates lane
pairs by the (cos, sin) its y stream brings; SiLU and GELU look their gate up; LayerNorm
finds the mean, centres the row, then normalizes it as RMSNorm does and adds the bias."""


def rtl_ops(kind: str) -> tuple[VectorOpcode, ...]:
    """The runs of a kind of :class:`cost_models.ops.VectorOp` (every kind has them)."""
    return RTL_OPS[kind]


def run_cycles(op: VectorOpcode, n, lanes, bits, max_beats) -> np.ndarray:
    """Cycles from a run's accepted start to its ``done`` (and its last ``z`` beat)."""
    return np.asarray(n, dtype=np.int64) + latency(op, lanes, bits, max_beats)


def op_cycles(lanes, bits, max_beats, kind: str, elements: int) -> tuple[np.ndarray, np.ndarray]:
    """Cycles and runs of a workload op of ``elements`` values, its runs issued back to back."""
    beats = ceil_div(elements, lanes)
    runs = ceil_div(beats, max_beats)
    cycles = sum(beats + runs * latency(op, lanes, bits, max_beats) for op in rtl_ops(kind))
    return cycles, runs * len(rtl_ops(kind))


def prepare(points: Points) -> dict[str, np.ndarray]:
    if isinstance(points, VectorParams):
        points = [points]
    col = dict(points) if isinstance(points, Mapping) else VectorParams.columns(points)
    col = {k: np.asarray(v) for k, v in col.items()}
    lanes, bits, beats = (col[k].astype(np.int64) for k in ("lanes", "bits", "max_beats"))
    return {"lanes": lanes, "bits": bits, "max_beats": beats, "index": index_bits(beats, lanes),
            "entries": gate_entries(bits, col["input_frac"], col["table_bits"]),
            "valid": VectorParams.valid_columns(col)}


def gate_entries(bits, input_frac, table_bits) -> np.ndarray:
    """Entries of each gate table (:class:`generators.vector.GateTable`): its segments from the
    lowest to the highest input within [-8, 8)."""
    bits = np.asarray(bits, dtype=np.int64)
    given = np.asarray(input_frac, dtype=np.int64)
    frac = np.where(given > 0, given, derived_input_frac(bits))
    first, last = gate_segments(bits, frac, np.minimum(np.asarray(table_bits, dtype=np.int64), frac))
    return last - first + 1


def features(c: Mapping[str, np.ndarray], on_dsp) -> dict[str, dict[str, np.ndarray]]:
    """Structural features of the RTL, grouped by the figure they price: per lane two adders
    (``x + y``, ``x - offset``), a ``bits x (bits + 9)`` multiplier and RoPE's ``bits x bits``
    one (in fabric or on DSPs), the wide-value select, a rounding barrel shifter, a saturating
    clamp, the reduction's compare and select, its share of the sums, and the two gate tables
    (ROM bits, and their read's depth in the first stage); across lanes the argmax tree; once,
    the divider and square-root sequencer (with ``MEAN``'s rounding and magnitude). The
    flip-flop feature is the RTL's register bits."""
    lanes, bits, index = c["lanes"], c["bits"], c["index"]
    wide = 2 * bits + 9                               # a lane times the scalar
    sums = sum_bits(lanes, bits, c["max_beats"])      # RMS's sum of squares
    steps, roots = divide_steps(lanes, bits, c["max_beats"]), root_steps(bits)
    hard, hard_rope = (np.asarray(h, dtype=bool) for h in on_dsp)
    count = bits_for(c["max_beats"] + 1)
    elements = np.maximum(index, bit_length(c["max_beats"] * lanes))   # the elements-taken counter
    paired = _paired(lanes)
    scalar = bits + 8
    rom_bits = 2 * c["entries"] * (bits + 1)          # SILU's and GELU's tables, bits + 1 wide
    sequencer = sums + 2 * steps + sums + 4 * roots + 2 + bits_for(np.maximum(steps, 2 * roots) + 1) + 2
    registers = (lanes * (wide + bits + bits + 1 + index) + 2 * count + elements + 4 + bits_for(wide) + 3
                 + scalar + bits + 1 + sums + sequencer)           # bits + 1: MEAN's offset and its sign
    one = np.ones_like(lanes)
    return {
        "lut": {"const": one, "adders": 2 * lanes * bits,
                "soft_products": bits * (lanes * ~hard * (bits + 9) + paired * ~hard_rope * bits),
                "select": lanes * wide, "shifter": lanes * (wide + 1) * np.log2(wide + 1),
                "clamp": lanes * bits, "reduce": lanes * (bits + 1 + index),
                "tree": (lanes - 1) * (bits + 1 + index), "sum": lanes * sums,
                "sequencer": sequencer + 2 * sums, "control": 2 * count + elements, "gate_tables": lanes * rom_bits / 64},
        "ff": {"const": one, "registers": registers},
        "period_ns": {"const": one, "dsp": (hard | hard_rope).astype(np.float64),
                      "soft_mult_level": ~hard * np.log2(bits),
                      "shift_levels": np.log2(wide + 1), "tree_levels": np.log2(lanes),
                      "table_levels": np.log2(2 * c["entries"])},
        "cmos": {"const": one, "reg": registers, "mult": bits * (lanes * (bits + 9) + paired * bits),
                 "adder": lanes * (2 * bits + 3 * wide + sums) + sequencer + 2 * sums,
                 "mux": lanes * (wide + 1) * np.log2(wide + 1) + (lanes - 1) * (bits + 1 + index),
                 "rom": lanes * rom_bits},
    }


def _paired(lanes: np.ndarray) -> np.ndarray:
    """Lanes with a RoPE partner, each with a second multiplier (an odd ``lanes``' last has none)."""
    return lanes - lanes % 2


def _on_dsp(c, target: Target, rule: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each lane's two products go: (the main one, RoPE's)."""
    if target.kind is not TargetKind.FPGA:
        return np.zeros(c["bits"].shape, dtype=bool), np.zeros(c["bits"].shape, dtype=bool)
    return (target.hard_multiplier(c["bits"], c["bits"] + 9, rule),
            target.hard_multiplier(c["bits"], c["bits"], rule))


def estimate(points: Points, op: VectorOp, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point running the element-wise ``op`` on ``target``."""
    c = prepare(points)
    fab = coefficients("vector", target.tech, FabricCoefficients)
    cmos = coefficients("vector", "cmos", CmosCoefficients)
    on_dsp = _on_dsp(c, target, (fab.dsp_min_bits, fab.dsp_min_product_bits))
    feats = features(c, on_dsp)
    cycles, runs = op_cycles(c["lanes"], c["bits"], c["max_beats"], op.kind, op.elements)
    element_ops = op.elements * len(rtl_ops(op.kind))
    e = fab.energy
    e_compute = element_ops * (e["j_per_mult_bit2"] * c["bits"] ** 2 + e["j_per_adder_bit"] * 2 * c["bits"])
    fpga = target.kind is TargetKind.FPGA
    dsp = (c["lanes"] * np.where(on_dsp[0], target.dsps_per_product(c["bits"], c["bits"] + 9), 0)
           + _paired(c["lanes"]) * np.where(on_dsp[1], target.dsps_per_product(c["bits"], c["bits"]), 0)
           if fpga else np.zeros(c["bits"].shape, dtype=np.int64))
    operands = 2 if any(o.binary for o in rtl_ops(op.kind)) else 1
    traffic = (operands + 1) * op.elements * c["bits"]             # streamed in and out, in bits
    valid = c["valid"] & ((c["bits"] >= 8) | (op.kind != "act_quant"))   # +-127 must fit a lane
    if op.kind == "rope":                                 # its pairs must not straddle beats
        valid = valid & (c["lanes"] % 2 == 0)
    return price(ops=element_ops, target=target, fab=fab,
                 counts={"cycles": cycles, "tiles": runs, "runs": runs},
                 lut=weighted(fab.lut, feats["lut"]), ff=weighted(fab.ff, feats["ff"]), dsp=dsp,
                 area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]), reg_bits=feats["ff"]["registers"],
                 e_compute=e_compute, offchip=traffic, valid=valid,
                 extra={"elements_per_cycle": c["lanes"]})


def model_info() -> dict[str, object]:
    return {"family": "vector", "coefficients": provenance("vector")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"lanes": (1, 16), "bits": (4, 24), "max_beats": (1, 4096), "table_bits": (0, 6)}
FLOW_BOXES: dict[str, dict[str, tuple[int, int]]] = {}


def calibration_features(points: Points, dsp_rule: tuple[int, int], target: Target,
                         tables: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    c = prepare(points)
    return features(c, _on_dsp(c, target, dsp_rule))


def multipliers(points: Points, target: Target) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Two roles: per lane a ``bits x (bits + 9)`` product (a lane times ``y`` or the scalar),
    and per paired lane RoPE's second, ``bits x bits``."""
    c = prepare(points)
    return [(c["lanes"], c["bits"], c["bits"] + 9), (_paired(c["lanes"]), c["bits"], c["bits"])]
