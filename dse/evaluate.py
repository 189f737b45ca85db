"""The explorer's view of a priced design: objectives, fit-the-device constraints and
the Pareto front (the family prices its designs on the workload, see
``Family.price``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cost_models.targets import Target
from dse.families import Family
from dse.workloads import Workload
from generators.params import ParamError


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
        raise ParamError(f"objectives must be 1 to 3 distinct names from {', '.join(OBJECTIVES)}, "
                         f"not {text!r}")
    return names


def evaluate(family: Family, columns: dict[str, np.ndarray], workload: Workload,
             target: Target) -> dict[str, np.ndarray]:
    """Workload-level PPA of every design in ``columns`` (the family's own pricing)."""
    return family.price(columns, workload, target)


def constraint_values(metrics: dict[str, np.ndarray], target: Target) -> np.ndarray:
    """Per design, the LUT, FF, DSP, block-RAM and distributed-RAM use over budget as
    fractions, then 1 for a design that cannot run the workload or a combination the family
    rules out (every value <= 0 means it fits)."""
    over = target.over_budget(metrics["lut"], metrics["ff"], metrics["dsp"], metrics["bram"],
                              metrics.get("lutram", 0))
    over = np.nan_to_num(np.asarray(over, dtype=np.float64), nan=1.0)   # a figure the model could not give: over
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
