"""One engine priced on a whole workload, vectorised.

Each op the engine computes (GEMMs for the GEMM engines, attention for the
attention engine) costs ``max(compute time, off-chip bytes / bandwidth)``
(a roofline with perfect overlap), times how often the workload runs it.
Energy adds the off-chip traffic at the target's pJ/bit and static power
over the op's real duration. A GEMM engine leaves the attention ops out and
the attention engine the GEMMs (the whole accelerator, ``cost_models.accelerator``,
prices every op of a token).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from cost_models.targets import Target
from generators.params import ParamError


def rollup(estimate: Callable[..., dict[str, np.ndarray]], op_type: type, family: str,
           columns: Mapping[str, np.ndarray], workload, target: Target) -> dict[str, np.ndarray]:
    """One engine's workload PPA: ``estimate`` summed over ``workload``'s ops of ``op_type``."""
    ops = workload.kind_ops(op_type)
    if not ops:
        raise ParamError(f"workload {workload.name} has no {op_type.label} for {family}")
    bandwidth = target.offchip_gbytes_s * 1e9
    latency = energy = compute = offchip = 0.0
    resources, valid = None, True
    for op, count in ops:
        est = estimate(columns, op, target)
        if resources is None:
            resources = est
        t_compute = est["latency_s"]
        t_op = np.maximum(t_compute, est["offchip_bytes"] / bandwidth) if bandwidth else t_compute
        static_w = est["energy_static_j"] / t_compute
        e_op = (est["energy_j"] - est["energy_static_j"] + static_w * t_op
                + est["offchip_bytes"] * 8 * target.dram_pj_per_bit * 1e-12)
        latency = latency + count * t_op
        compute = compute + count * t_compute
        energy = energy + count * e_op
        offchip = offchip + count * est["offchip_bytes"]
        valid = valid & est["valid"]
    assert resources is not None
    out = {k: resources[k] for k in ("lut", "ff", "dsp", "bram", "lutram", "area_transistors", "fmax_mhz",
                                     "clock_mhz", "fits")}
    out.update({
        "latency_s": latency, "tokens_per_s": workload.tokens / latency,
        "energy_per_token_j": energy / workload.tokens, "compute_s": compute,
        "memory_bound": compute < latency * (1 - 1e-9), "offchip_bytes": offchip,
        "area": target.area(resources["lut"], resources["ff"], resources["dsp"], resources["bram"],
                            resources["area_transistors"]),
        "valid": np.broadcast_to(valid, np.shape(latency)),
    })
    out["fits"] = out["fits"] & out["valid"]
    return out
