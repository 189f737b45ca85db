"""The accelerator's vector unit: a stated model, not yet backed by RTL.

``lanes`` 16-bit fixed-point lanes each retire one element operation per cycle; an
element-wise op of ``elements * ops_per_element`` lane operations takes
``ceil(ops / lanes) + latency_cycles`` cycles (the latency covers the pipeline and the
row reduction of a norm). Its operands stream from and to off-chip memory at 16 bits,
as the GEMM engines' tiles do. Resources, Fmax and energy are first-order figures
(``cost_models/data/vector_unit.json``, ``calibrated: false``) that no synthesis has
checked; every output that uses them says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cost_models.coefficients import coefficients, provenance
from cost_models.ops import VectorOp
from cost_models.targets import Target, TargetKind

OPERAND_BYTES = 2            # 16-bit operands in and out


@dataclass(frozen=True)
class VectorCoefficients:
    """Per lane and fixed: LUTs, FFs, DSPs, block RAMs, transistors (ASIC); cycles of
    latency per op; ns of critical path; J per lane operation; W static."""
    lut_per_lane: float
    ff_per_lane: float
    dsp_per_lane: int
    lut_fixed: float
    ff_fixed: float
    bram_fixed: int
    transistors_per_lane: float
    transistors_fixed: float
    latency_cycles: int
    period_ns: float
    j_per_lane_op: float
    w_static: float


def _coefficients(target: Target) -> VectorCoefficients:
    return coefficients("vector_unit", target.tech, VectorCoefficients)


def resources(lanes, target: Target) -> dict[str, np.ndarray]:
    """LUT, FF, DSP, BRAM, transistors, Fmax and static power of a ``lanes``-wide unit."""
    c = _coefficients(target)
    lanes = np.asarray(lanes)
    fpga = target.kind is TargetKind.FPGA
    return {"lut": (c.lut_fixed + c.lut_per_lane * lanes) if fpga else np.zeros(lanes.shape),
            "ff": c.ff_fixed + c.ff_per_lane * lanes,
            "dsp": (c.dsp_per_lane * lanes) if fpga else np.zeros(lanes.shape, dtype=np.int64),
            "bram": np.full(lanes.shape, c.bram_fixed if fpga else 0),
            "area_transistors": c.transistors_fixed + c.transistors_per_lane * lanes,
            "fmax_mhz": np.full(lanes.shape, 1e3 / c.period_ns), "w_static": np.full(lanes.shape, c.w_static)}


def op_cost(lanes, op: VectorOp, target: Target) -> dict[str, np.ndarray]:
    """Cycles, dynamic energy and off-chip bytes of one element-wise op."""
    c = _coefficients(target)
    lanes = np.asarray(lanes)
    return {"cycles": -(-op.ops // lanes) + c.latency_cycles,
            "energy_j": np.full(lanes.shape, op.ops * c.j_per_lane_op),
            "offchip_bytes": np.full(lanes.shape, 2.0 * op.elements * OPERAND_BYTES)}


def model_info() -> dict[str, object]:
    return {"family": "vector_unit", "rtl": False, "coefficients": provenance("vector_unit")}
