"""The registry that ties each family's stages together for the command line.

A family is its Params class, its Amaranth builder, its cocotb testbench
module and its cost model; adding a family is one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

import cost_models.attention as attention_model
import cost_models.lut_mpgemm as lut_model
import cost_models.mac_mpgemm as mac_model
import cost_models.mpgemm as mpgemm_model
import cost_models.systolic as systolic_model
import cost_models.vector as vector_model
import generators.attention as attention_gen
import generators.lut_mpgemm as lut_gen
import generators.mac_mpgemm as mac_gen
import generators.systolic as systolic_gen
import generators.vector as vector_gen
from cost_models.ops import AttentionOp, Gemm, VectorOp
from cost_models.rollup import rollup
from flows import characterize as lookup_units
from flows.calibrate import Calibratable
from dse.space import PinConflict, derive, fitted_defaults
from generators.params import ParamError, Params, nested_errors


@dataclass(frozen=True)
class Family:
    """One family's stages as the command line and the explorer use them.

    ``estimate(points, op, target)`` prices one op of ``op_type`` (``Gemm`` for the GEMM
    engines, ``AttentionOp`` for attention; ``None`` for a family that only prices whole
    workloads). ``price_workload``, ``derive_space`` and ``make_design`` replace the
    defaults (the roll-up of ``estimate`` over the workload's ops of ``op_type``, the
    space of ``params`` with the workload's pins, those pins under the user's) for a
    composed family; ``parts`` lists the engines a design verifies as.
    """
    name: str
    params: type[Params]
    build: Callable[[Any], Any]
    model_info: Callable[[], dict[str, Any]]
    testbench: str | None = None
    estimate: Callable[..., dict[str, np.ndarray]] | None = None
    record_model: Callable[[Any, Mapping[str, Any]], dict[str, int]] | None = None
    default_op: Callable[[Any], Gemm | AttentionOp] | None = None
    workload_pins: Callable[[Any], dict[str, Any]] = lambda workload: {}
    calibration: Calibratable | None = None
    op_type: type | None = Gemm
    price_workload: Callable[..., dict[str, Any]] | None = None
    derive_space: Callable[..., Any] | None = None
    make_design: Callable[..., Params] | None = None
    parts: Callable[[Any], tuple[Params, list[tuple["Family", Params, str]]]] | None = None

    def parse_op(self, text: str) -> Gemm | AttentionOp:
        return self.op_type.parse(text)

    def pins_for(self, workload, user: Mapping[str, str], *, path: str = "") -> dict[str, Any]:
        """The workload's pins, then the user's ``--set`` items (checked field by field); a
        user value that contradicts the workload is refused, naming both. ``path`` names
        this family's part in a composed design (``accelerator.gemm``) in errors."""
        fixed = self.params.check_fields(self.workload_pins(workload))
        with nested_errors(path or self.params.family, self.params):
            mine = self.params.parse_fields(user)
        for key, value in mine.items():
            if key in fixed and fixed[key] != value:
                raise PinConflict(f"--set {path or self.name}.{key}={value} contradicts workload "
                                 f"{workload.name}, which fixes {key}={fixed[key]}")
        return {**fixed, **mine}

    def space(self, workload, user: Mapping[str, str], ranges: Mapping[str, tuple[int, int]]):
        if self.derive_space:
            return self.derive_space(workload, user, ranges)
        return derive(self.params, self.pins_for(workload, user), ranges)

    def design(self, workload, user: Mapping[str, str]) -> Params:
        """One design for ``workload``: the user's items over the workload's pins."""
        return self.fitted_design(workload, user)[0]

    def fitted_design(self, workload, user: Mapping[str, str]) -> tuple[Params, dict[str, Any]]:
        """:meth:`design`, and the unset fields whose defaults the workload rules out, each with
        the nearest value it allows (which the design took)."""
        if self.make_design:
            return self.make_design(workload, user)
        pins = self.pins_for(workload, user)
        fitted = fitted_defaults(self.params, pins)
        return self.params.from_dict({**pins, **fitted}), fitted

    def price(self, columns, workload, target, *, breakdown: bool = False) -> dict[str, Any]:
        if self.price_workload:
            return self.price_workload(columns, workload, target, breakdown=breakdown)
        return rollup(self.estimate, self.op_type, self.name, columns, workload, target)

    def engines(self, params: Params) -> list[tuple["Family", Params, str]]:
        """The engines a design verifies as, each with the prefix of its ports in the top the
        verification builds: itself (no prefix), or a composed design's parts."""
        return self.parts(params)[1] if self.parts else [(self, params, "")]


def _systolic_record_model(p: systolic_gen.SystolicParams, record: Mapping[str, Any]) -> dict[str, int]:
    """Model figures for one measured record of ``verif.tb.systolic``."""
    ws = p.dataflow is systolic_gen.Dataflow.WS
    if "gemm" in record:
        m, n, k = record["gemm"]
        cycles = systolic_model.gemm_cycles(p.rows, p.cols, ws, p.m_tile, p.k_max, m, n, k)
        return {"first_start_to_last_c": int(cycles)}
    if record.get("stalled"):                      # held to the least any run can take
        done, last = systolic_model.least_run_cycles(p.rows, p.cols, ws, p.m_tile, record["k"])
        return {"start_to_done": int(done), "start_to_last_c": int(last)}
    place = (record["k"], record.get("index", 0), record.get("k_prev", 0))   # in a back-to-back stream
    return {"start_to_done": int(systolic_model.run_cycles(p.rows, p.cols, ws, p.m_tile, *place)),
            "start_to_last_c": int(systolic_model.run_to_last_c(p.rows, p.cols, ws, p.m_tile, *place))}


def _systolic_space(workload, user: Mapping[str, str], ranges: Mapping[str, tuple[int, int]]):
    """The Params space, but ``m_tile`` (it shapes only a weight-stationary run) is left at its
    default, not searched, once the dataflow is pinned to output-stationary."""
    family = FAMILIES["systolic"]
    pins = family.pins_for(workload, user)
    if systolic_gen.Dataflow(pins.get("dataflow", "ws")) is systolic_gen.Dataflow.OS and "m_tile" not in pins:
        pins = {**pins, "m_tile": systolic_gen.SystolicParams.field_info("m_tile").default}
    return derive(family.params, pins, ranges)


def _mpgemm_record_model(p, record: Mapping[str, Any]) -> dict[str, int]:
    """Model figures for one measured record of ``verif.tb.mpgemm`` (LUT and MAC engines)."""
    if "gemm" in record:
        m, n, k = record["gemm"]
        return {"first_start_to_last_y": int(mpgemm_model.gemm_cycles(
            p.group, p.passes, p.m_tile, p.n_tile, p.k_max, m, n, k, p.beat_cycles, p.fill_cycles))}
    k = record["k"]
    return {"start_to_done": int(mpgemm_model.run_cycles(p.group, p.passes, k, p.beat_cycles, p.fill_cycles)),
            "start_to_last_y": int(mpgemm_model.run_to_last_y(p.group, p.passes, p.m_tile, k, p.beat_cycles,
                                                              p.fill_cycles))}


def _mpgemm_pins(workload) -> dict[str, Any]:
    """Operand formats a workload fixes: 8/16-bit activations, 1..4-bit or ternary weights."""
    pins: dict[str, Any] = {"a_bits": min(16, max(4, workload.act_bits))}
    if workload.model.ternary:
        return {**pins, "weight_format": "ternary", "w_bits": 2}
    if workload.weight_bits > 4:
        raise ParamError(f"the mpGEMM engines take 1..4-bit or ternary weights; workload "
                         f"{workload.name} has {workload.weight_bits}-bit weights")
    return {**pins, "weight_format": "uint", "w_bits": workload.weight_bits}


def _mpgemm_family(name, gen, model, params, characterize=None, memories=None) -> Family:
    return Family(name=name, params=params, build=gen.build, testbench="verif.tb.mpgemm",
                  estimate=model.estimate, model_info=model.model_info,
                  record_model=_mpgemm_record_model,
                  default_op=lambda p: Gemm(m=p.m_tile, n=p.n_tile, k=p.k_max, name="one-tile"),
                  workload_pins=_mpgemm_pins,
                  calibration=Calibratable(name, params, gen.build, model.CALIBRATION_BOX,
                                           model.calibration_features, model.multipliers, memories,
                                           characterize=characterize,
                                           flow_boxes=model.FLOW_BOXES))


def _attention_record_model(p: attention_gen.AttentionParams, record: Mapping[str, Any]) -> dict[str, int]:
    """Model figures for one measured record of ``verif.tb.attention``."""
    c = attention_model.prepare(p)
    if "ns" in record:
        return {"first_start_to_last_o": int(sum(attention_model.run_cycles(c, n)[0] for n in record["ns"]))}
    cycles = int(attention_model.run_cycles(c, record["n"])[0])
    return {"start_to_done": cycles, "start_to_last_o": cycles}


def _attention_pins(workload) -> dict[str, Any]:
    """The workload fixes the head dimension, the longest context and causality (prefill)."""
    op = workload.attention[0][0]
    if not 8 <= op.head_dim <= 256:
        raise ParamError(f"the attention engine takes head_dim 8..256; workload {workload.name} has {op.head_dim}")
    longest = attention_gen.AttentionParams.field_info("max_seq_len").spec.range.hi
    if op.n_kv > longest:
        raise ParamError(f"the attention engine takes contexts of 1..{longest} keys (max_seq_len); "
                         f"workload {workload.name} has {op.n_kv}")
    bits = min(16, max(4, workload.act_bits))
    return {"head_dim": op.head_dim, "max_seq_len": 1 << max(op.n_kv - 1, 1).bit_length(),
            "causal": op.causal and op.n_q > 1, "q_bits": bits, "k_bits": bits, "v_bits": bits}


def _vector_record_model(p: vector_gen.VectorParams, record: Mapping[str, Any]) -> dict[str, int]:
    """Model figures for one measured record of ``verif.tb.vector``."""
    cycles = int(vector_model.run_cycles(vector_gen.VectorOpcode[record["op"]], record["n"], p.lanes, p.bits,
                                         p.max_beats))
    return {"start_to_done": cycles, "start_to_last_z": cycles}


def _vector_pins(workload) -> dict[str, Any]:
    """The vector unit fixes nothing of a workload: its RTL runs every element-wise kind."""
    return {}


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(name="systolic", params=systolic_gen.SystolicParams, build=systolic_gen.build,
           testbench="verif.tb.systolic", estimate=systolic_model.estimate,
           model_info=systolic_model.model_info, record_model=_systolic_record_model,
           default_op=lambda p: Gemm(m=p.tile_rows, n=p.cols, k=p.k_max, name="one-tile"),
           workload_pins=lambda wl: {"a_bits": max(2, wl.act_bits), "w_bits": max(2, wl.weight_bits),
                                     "signed": True},
           derive_space=_systolic_space,
           calibration=Calibratable("systolic", systolic_gen.SystolicParams, systolic_gen.build,
                                    systolic_model.CALIBRATION_BOX, systolic_model.calibration_features,
                                    systolic_model.multipliers, systolic_model.placed_memories,
                                    flow_boxes=systolic_model.FLOW_BOXES)),
    _mpgemm_family("lut_mpgemm", lut_gen, lut_model, lut_gen.LutMpGemmParams,
                   characterize=lookup_units.calibration_tables, memories=lut_model.placed_memories),
    _mpgemm_family("mac_mpgemm", mac_gen, mac_model, mac_gen.MacMpGemmParams),
    Family(name="attention", params=attention_gen.AttentionParams, build=attention_gen.build,
           testbench="verif.tb.attention", estimate=attention_model.estimate,
           model_info=attention_model.model_info, record_model=_attention_record_model,
           default_op=lambda p: AttentionOp(batch=1, heads=1, kv_heads=1, n_q=min(p.q_rows, p.max_seq_len),
                                            n_kv=p.max_seq_len,
                                            head_dim=p.head_dim, causal=p.causal, name="one-run"),
           workload_pins=_attention_pins, op_type=AttentionOp,
           calibration=Calibratable("attention", attention_gen.AttentionParams, attention_gen.build,
                                    attention_model.CALIBRATION_BOX, attention_model.calibration_features,
                                    attention_model.multipliers, attention_model.placed_memories)),
    Family(name="vector", params=vector_gen.VectorParams, build=vector_gen.build, testbench="verif.tb.vector",
           estimate=vector_model.estimate, model_info=vector_model.model_info,
           record_model=_vector_record_model, op_type=VectorOp, workload_pins=_vector_pins,
           default_op=lambda p: VectorOp(kind="residual", elements=p.lanes * p.max_beats, name="one-run"),
           calibration=Calibratable("vector", vector_gen.VectorParams, vector_gen.build,
                                    vector_model.CALIBRATION_BOX, vector_model.calibration_features,
                                    vector_model.multipliers, None, flow_boxes=vector_model.FLOW_BOXES)),
)}


def _accelerator_family() -> Family:
    import cost_models.accelerator as accelerator_model
    import dse.accelerator as accelerator
    import generators.accelerator as accelerator_gen

    def parts(p: accelerator_gen.AcceleratorParams) -> tuple[Params, list[tuple[Family, Params, str]]]:
        """The top with one replica of each engine (replicas are the same module), and its engines."""
        return (p.replace(gemm_instances=1, attention_instances=1),
                [(FAMILIES[p.gemm.value], p.gemm_params, "gemm0__"),
                 (FAMILIES["attention"], p.attention, "attention0__")])

    return Family(name="accelerator", params=accelerator_gen.AcceleratorParams, build=accelerator_gen.build,
                  model_info=accelerator_model.model_info, op_type=None,
                  price_workload=accelerator.price,
                  derive_space=lambda wl, user, ranges: accelerator.derive_space(FAMILIES, wl, user, ranges),
                  make_design=lambda wl, user: accelerator.design(FAMILIES, wl, user), parts=parts)


FAMILIES["accelerator"] = _accelerator_family()


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParamError(f"family must be one of {', '.join(FAMILIES)}, not {name!r}") from None
