"""The estimate table every engine family returns, from its structural figures.

Time at the clock the target allows (the design's Fmax capped by the
target's constraint), energy split into compute, registers and static power,
FPGA resources (zero on an ASIC target) and whether the design fits.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from cost_models.coefficients import FabricCoefficients
from cost_models.targets import Target, TargetKind


def price(*, ops: float, target: Target, fab: FabricCoefficients, counts: Mapping[str, np.ndarray],
          lut, ff, dsp, area, period_ns, reg_bits, e_compute, offchip, valid,
          extra: Mapping[str, np.ndarray], bram=0, lutram=0) -> dict[str, np.ndarray]:
    """The estimate table the engine families return for ``ops`` useful operations: time,
    energy, resources, fit (a ruled-out parameter combination never fits), then the
    family's ``extra`` figures. ``lut`` counts every LUT, ``lutram`` those used as memory."""
    fmax = 1e3 / period_ns
    clock = np.minimum(fmax, target.clock_mhz)
    cycles = counts["cycles"]
    latency = cycles / (clock * 1e6)
    e_reg = fab.energy["j_per_reg_bit_cycle"] * reg_bits * cycles
    e_static = fab.energy["w_static"] * latency
    if target.kind is not TargetKind.FPGA:
        lut = np.zeros(np.shape(lut))
        dsp = np.zeros(np.shape(dsp), dtype=np.int64)
    out = {
        "cycles": cycles, "latency_s": latency, "throughput_ops_s": ops / latency,
        "lut": lut, "ff": ff, "dsp": dsp, "bram": np.asarray(bram if target.kind is TargetKind.FPGA else 0),
        "lutram": np.asarray(lutram if target.kind is TargetKind.FPGA else 0),
        "area_transistors": area, "energy_j": e_compute + e_reg + e_static,
        "energy_compute_j": e_compute, "energy_reg_j": e_reg, "energy_static_j": e_static,
        "fmax_mhz": fmax, "clock_mhz": clock, "tiles": counts["tiles"], "runs": counts["runs"],
        "offchip_bytes": offchip / 8,
    }
    out["fits"] = target.fits(out["lut"], ff, out["dsp"], out["bram"], out["lutram"]) & valid
    out.update(extra)
    out["valid"] = valid
    shape = np.broadcast_shapes(*(np.shape(v) for v in out.values()))
    return {k: np.broadcast_to(v, shape) for k, v in out.items()}
