"""PPA of whole accelerators on whole workloads, vectorised over design points.

Every op of a pass runs on the engine that computes it: GEMMs on the GEMM engine (its
``gemm_instances`` replicas each take a ``ceil(N / instances)`` slice of the columns),
attention on the attention engine (replicas share the KV heads, each with its GQA
group of query heads), element-wise ops on the vector unit (:mod:`cost_models.vector`, its
RTL's exact runs and fitted resources) and the KV-cache write and embedding read as plain
transfers. Ops run one after another in layer order (no overlap
between ops); each costs ``max(compute, off-chip bytes / bandwidth)`` with the engines'
own exact cycle counts at the accelerator's one clock (the target's, capped by the
slowest engine's Fmax), and all engines share the board's bandwidth. Resources of every
engine and replica add up and must fit the device; energy is each op's dynamic energy,
its off-chip traffic, and every engine's static power over the whole pass.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

import cost_models.attention as attention_model
import cost_models.lut_mpgemm as lut_model
import cost_models.mac_mpgemm as mac_model
import cost_models.systolic as systolic_model
import cost_models.vector as vector_model
from cost_models.ops import AttentionOp, Gemm, TransferOp, VectorOp
from cost_models.targets import Target
from generators.accelerator import GEMM_ENGINES, GemmKind
from generators.attention import AttentionParams
from generators.vector import VectorParams

GEMM_MODELS: dict[GemmKind, Callable[..., dict[str, np.ndarray]]] = {
    GemmKind.SYSTOLIC: systolic_model.estimate,
    GemmKind.LUT_MPGEMM: lut_model.estimate,
    GemmKind.MAC_MPGEMM: mac_model.estimate,
}
RESOURCES = ("lut", "ff", "dsp", "bram", "lutram", "area_transistors")


class _Ledger:
    """Per op and design point: cycles, off-chip bytes, dynamic energy; and the design's
    summed resources, slowest Fmax, static power and validity."""

    def __init__(self, n: int, ops: Sequence[tuple[Any, int]]):
        self.cycles = np.zeros((len(ops), n))
        self.bytes = np.zeros((len(ops), n))
        self.energy = np.zeros((len(ops), n))
        self.res = {k: np.zeros(n) for k in RESOURCES}
        self.fmax = np.full(n, np.inf)
        self.w_static = np.zeros(n)
        self.valid = np.ones(n, dtype=bool)

    def add_engine(self, sel, est: Mapping[str, np.ndarray], copies) -> None:
        for k in RESOURCES:
            self.res[k][sel] += copies * est[k]
        self.fmax[sel] = np.minimum(self.fmax[sel], est["fmax_mhz"])
        self.w_static[sel] += copies * est["energy_static_j"] / est["latency_s"]
        self.valid[sel] &= est["valid"]

    def add_op(self, i: int, sel, est: Mapping[str, np.ndarray], copies) -> None:
        self.cycles[i, sel] = est["cycles"]
        self.bytes[i, sel] = copies * est["offchip_bytes"]
        self.energy[i, sel] = copies * (est["energy_compute_j"] + est["energy_reg_j"])
        self.valid[sel] &= est["valid"]


def _sub(col: Mapping[str, np.ndarray], prefix: str, names, sel) -> dict[str, np.ndarray]:
    return {n: np.asarray(col[f"{prefix}.{n}"])[sel] for n in names}


def _gemms(led: _Ledger, col, ops, target: Target) -> None:
    kinds = np.asarray(col["gemm"])
    copies_all = np.asarray(col["gemm_instances"])
    gemm_ops = [(i, op) for i, (op, _) in enumerate(ops) if isinstance(op, Gemm)]
    for code, kind in enumerate(GemmKind):
        names = [f.name for f in GEMM_ENGINES[kind][0].fields()]
        for copies in np.unique(copies_all[kinds == code]):
            sel = np.flatnonzero((kinds == code) & (copies_all == copies))
            sub = _sub(col, kind.value, names, sel)
            cache: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
            for i, op in gemm_ops:
                key = (op.m, -(-op.n // int(copies)), op.k)
                if key not in cache:
                    cache[key] = GEMM_MODELS[kind](sub, Gemm(m=key[0], n=key[1], k=key[2], name=op.name), target)
                    if len(cache) == 1:
                        led.add_engine(sel, cache[key], copies)
                led.add_op(i, sel, cache[key], copies)
            if not gemm_ops:               # a workload with no GEMM still pays for the engine
                led.add_engine(sel, GEMM_MODELS[kind](sub, Gemm(m=1, n=1, k=1), target), copies)


def _attention(led: _Ledger, col, ops, target: Target) -> None:
    names = [f.name for f in AttentionParams.fields()]
    copies_all = np.asarray(col["attention_instances"])
    att_ops = [(i, op) for i, (op, _) in enumerate(ops) if isinstance(op, AttentionOp)]
    for copies in np.unique(copies_all):
        sel = np.flatnonzero(copies_all == copies)
        sub = _sub(col, "attention", names, sel)
        first = True
        for i, op in att_ops:
            kv = -(-op.kv_heads // int(copies))
            share = AttentionOp(batch=op.batch, heads=kv * (op.heads // op.kv_heads), kv_heads=kv, n_q=op.n_q,
                                n_kv=op.n_kv, head_dim=op.head_dim, causal=op.causal, name=op.name)
            est = attention_model.estimate(sub, share, target)
            if first:
                led.add_engine(sel, est, copies)
                first = False
            led.add_op(i, sel, est, copies)
        if first:
            probe = AttentionOp(batch=1, heads=1, kv_heads=1, n_q=1, n_kv=1, head_dim=8, causal=False)
            led.add_engine(sel, attention_model.estimate(sub, probe, target), copies)


def _vector(led: _Ledger, col, ops, target: Target) -> None:
    """One vector unit per design: each element-wise op's runs back to back on it."""
    sel = np.arange(len(led.fmax))
    sub = _sub(col, "vector", [f.name for f in VectorParams.fields()], sel)
    vec_ops = [(i, op) for i, (op, _) in enumerate(ops) if isinstance(op, VectorOp)]
    cache: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for i, op in vec_ops:
        key = (op.kind, op.elements)
        if key not in cache:
            cache[key] = vector_model.estimate(sub, op, target)
            if len(cache) == 1:
                led.add_engine(sel, cache[key], 1)
        led.add_op(i, sel, cache[key], 1)
    if not vec_ops:                        # a workload with no element-wise op still pays for the unit
        led.add_engine(sel, vector_model.estimate(sub, VectorOp(kind="residual", elements=1), target), 1)


def price(col: Mapping[str, np.ndarray], ops: Sequence[tuple[Any, int]], target: Target, *,
          tokens: int, min_offchip_bytes: float, breakdown: bool = False) -> dict[str, Any]:
    """Whole-pass PPA of every design in ``col`` (``AcceleratorParams.columns`` layout) for
    ``ops`` (``(op, count)`` in execution order) producing ``tokens`` tokens.

    ``min_offchip_bytes`` is what the pass must move however it is scheduled (weights,
    KV cache): ``roofline_tokens_per_s`` is the rate the bandwidth allows for it, and no
    design is priced above it. With ``breakdown`` the result's ``ops`` lists, per op,
    its engine, count, seconds per run and whether memory bounds it.
    """
    n = len(np.asarray(col["gemm"]))
    led = _Ledger(n, ops)
    _gemms(led, col, ops, target)
    _attention(led, col, ops, target)
    _vector(led, col, ops, target)
    for i, (op, _) in enumerate(ops):
        if isinstance(op, TransferOp):
            led.bytes[i] = op.bytes

    clock = np.minimum(led.fmax, target.clock_mhz)
    bandwidth = target.offchip_gbytes_s * 1e9
    counts = np.array([count for _, count in ops], dtype=np.float64)[:, None]
    t_compute = led.cycles / (clock * 1e6)
    t_memory = led.bytes / bandwidth
    seconds = np.maximum(t_compute, t_memory)
    latency = (counts * seconds).sum(axis=0)
    offchip = (counts * led.bytes).sum(axis=0)
    energy = ((counts * led.energy).sum(axis=0) + offchip * 8 * target.dram_pj_per_bit * 1e-12
              + led.w_static * latency)
    res = led.res
    fits = led.valid & target.fits(res["lut"], res["ff"], res["dsp"], res["bram"], res["lutram"])
    roofline = tokens * bandwidth / min_offchip_bytes
    out: dict[str, Any] = {
        "latency_s": latency, "tokens_per_s": tokens / latency, "energy_per_token_j": energy / tokens,
        **res, "uram": np.zeros(n, dtype=np.int64),
        "area": target.area(res["lut"], res["ff"], res["dsp"], res["bram"], res["area_transistors"]),
        "fmax_mhz": led.fmax, "clock_mhz": clock, "fits": fits, "valid": led.valid,
        "compute_s": (counts * t_compute).sum(axis=0), "offchip_bytes": offchip,
        "memory_bound": (counts * np.where(t_memory > t_compute, seconds, 0)).sum(axis=0) > latency / 2,
        "memory_bound_fraction": (counts * np.where(t_memory > t_compute, seconds, 0)).sum(axis=0) / latency,
        "roofline_tokens_per_s": np.full(n, roofline), "roofline_fraction": tokens / latency / roofline,
    }
    if breakdown:
        out["ops"] = [{"name": op.name, "engine": _engine(op), "count": count, "seconds": seconds[i],
                       "bound": np.where(t_memory[i] > t_compute[i], "memory", "compute")}
                      for i, (op, count) in enumerate(ops)]
    return out


def _engine(op) -> str:
    if isinstance(op, Gemm):
        return "gemm"
    if isinstance(op, AttentionOp):
        return "attention"
    return "vector" if isinstance(op, VectorOp) else "transfer"


def model_info() -> dict[str, object]:
    return {"family": "accelerator", "engines": {
        **{k.value: m.__module__ for k, m in GEMM_MODELS.items()}, "attention": attention_model.__name__,
        "vector": vector_model.__name__},
        "schedule": "ops in layer order, one at a time; each max(compute, bytes / bandwidth)"}
