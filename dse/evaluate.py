"""Price many designs of one family on a whole workload, vectorised.

Each op the family computes (GEMMs for the GEMM engines, attention for the
attention engine) costs ``max(compute time, off-chip bytes / bandwidth)``
(a roofline with perfect overlap), times how often the workload runs it.
Energy adds the off-chip traffic at the target's pJ/bit and static power
over the op's real duration. A GEMM engine leaves the attention ops out and
the attention engine the GEMMs; the result names the family.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cost_models.targets import Target
from dse.families import Family
from dse.workloads import Workload


@dataclass(frozen=True)
class Objective:
    name: str
    column: str
    direction: str          # "minimize" | "maximize"
    unit: str


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("latency", "latency_s", "minimize", "s"),
    Objective("tokens_per_s", "tokens_per_s", "maximize", "tokens/s"),
    Objective("energy", "energy_per_token_j", "minimize", "J/token"),
    Objective("area", "area", "minimize", "device utilisation (FPGA) or transistors (ASIC)"),
)}
DEFAULT_OBJECTIVES = ("latency", "energy", "area")


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not 1 <= len(names) <= 3 or any(n not in OBJECTIVES for n in names) or len(set(names)) != len(names):
        raise ValueError(f"objectives must be 1 to 3 distinct names from {', '.join(OBJECTIVES)}, "
                         f"not {text!r}")
    return names


def evaluate(family: Family, columns: dict[str, np.ndarray], workload: Workload,
             target: Target) -> dict[str, np.ndarray]:
    """Workload-level PPA of every design in ``columns`` (the family's own pricing)."""
    return family.price(columns, workload, target)


def rollup(family: Family, columns: dict[str, np.ndarray], workload: Workload,
           target: Target) -> dict[str, np.ndarray]:
    """One engine's workload PPA: its estimate summed over the workload's ops of its type."""
    ops = workload.kind_ops(family.op_type)
    if not ops:
        raise ValueError(f"workload {workload.name} has no {family.op_type.label} for {family.name}")
    bandwidth = target.offchip_gbytes_s * 1e9
    latency = energy = compute = offchip = 0.0
    resources = None
    for op, count in ops:
        est = family.estimate(columns, op, target)
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
        valid = est["valid"] if resources is est else valid & est["valid"]
    assert resources is not None
    out = {k: resources[k] for k in ("lut", "ff", "dsp", "bram", "area_transistors", "fmax_mhz",
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


def constraint_values(metrics: dict[str, np.ndarray], target: Target) -> np.ndarray:
    """Per design, the LUT, FF, DSP and block-RAM use over budget as fractions, then 1 for a
    design that cannot run the workload or a combination the family rules out (every value
    <= 0 means it fits)."""
    over = target.over_budget(metrics["lut"], metrics["ff"], metrics["dsp"], metrics["bram"])
    invalid = np.where(np.asarray(metrics["valid"]), 0.0, 1.0)
    return np.concatenate([over, np.broadcast_to(invalid, over.shape[:-1])[..., None]], axis=-1)


def pareto_mask(values: np.ndarray, directions: tuple[str, ...]) -> np.ndarray:
    """Non-dominated rows of ``values`` (n x objectives); duplicates keep one representative."""
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    v = np.asarray(values, dtype=np.float64) * signs
    keep = np.zeros(len(v), dtype=bool)
    if len(v) == 0:
        return keep
    order = np.lexsort(v.T[::-1])                 # by first objective, then the next ones
    if v.shape[1] == 1:
        keep[order[0]] = True
        return keep
    if v.shape[1] == 2:                           # sweep: keep points that improve the second
        second = v[order, 1]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(second)[:-1]])
        keep[order[second < best_before]] = True
        return keep
    front = np.empty((0, v.shape[1]))
    for i in order:
        if not np.any(np.all(front <= v[i], axis=1)):   # dominated or equal to a kept point
            keep[i] = True
            front = np.vstack([front, v[i]])
    return keep
