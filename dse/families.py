"""The registry that ties each family's stages together for the command line.

A family is its Params class, its Amaranth builder, its cocotb testbench
module and its cost model; adding a family is one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

import cost_models.systolic as systolic_model
import generators.systolic as systolic_gen
from cost_models.ops import Gemm
from flows.calibrate import Calibratable
from generators.params import Params


@dataclass(frozen=True)
class Family:
    name: str
    params: type[Params]
    build: Callable[[Any], Any]
    testbench: str
    estimate: Callable[..., dict[str, np.ndarray]]
    model_info: Callable[[], dict[str, Any]]
    record_model: Callable[[Any, Mapping[str, Any]], dict[str, int]]
    default_gemm: Callable[[Any], Gemm]
    workload_pins: Callable[[Any], dict[str, Any]] = lambda workload: {}
    calibration: Calibratable | None = None


def _systolic_record_model(p: systolic_gen.SystolicParams, record: Mapping[str, Any]) -> dict[str, int]:
    """Model figures for one measured record of ``verif.tb.systolic``."""
    ws = p.dataflow is systolic_gen.Dataflow.WS
    if "gemm" in record:
        m, n, k = record["gemm"]
        cycles = systolic_model.gemm_cycles(p.rows, p.cols, ws, p.k_max, m, n, k)
        return {"first_start_to_last_c": int(cycles)}
    k = record["k"]
    return {"start_to_done": int(systolic_model.run_cycles(p.rows, p.cols, ws, k)),
            "start_to_last_c": int(systolic_model.run_to_last_c(p.rows, p.cols, ws, k))}


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(name="systolic", params=systolic_gen.SystolicParams, build=systolic_gen.build,
           testbench="verif.tb.systolic", estimate=systolic_model.estimate,
           model_info=systolic_model.model_info, record_model=_systolic_record_model,
           default_gemm=lambda p: Gemm(m=p.rows, n=p.cols, k=p.k_max, name="one-tile"),
           workload_pins=lambda wl: {"a_bits": max(2, wl.act_bits), "w_bits": max(2, wl.weight_bits),
                                     "signed": True},
           calibration=Calibratable("systolic", systolic_gen.SystolicParams, systolic_gen.build,
                                    systolic_model.CALIBRATION_BOX, systolic_model.calibration_features,
                                    systolic_model.multipliers)),
)}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {name!r}") from None
