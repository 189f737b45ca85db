"""LLM workloads: named model presets and user files, expanded into GEMM and attention ops.

A workload is one forward pass of one transformer layer stack in one phase:

* ``prefill``: ``batch`` sequences of ``seq_len`` tokens each (M = batch * seq_len);
* ``decode``: one new token for each of ``batch`` sequences over a context of
  ``seq_len`` tokens (M = batch), attention reads the whole KV cache.

Per layer it has the Q, K, V and output projections, the FFN (gated: gate,
up and down; plain: up and down) and attention (scores and context). GEMM
shapes follow ``C[M, N] = A[M, K] @ W[K, N]`` with activations A and weights W.
Architecture numbers are from each model's published configuration
(``config.json`` on its model card).
"""
from __future__ import annotations

import enum
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cost_models.ops import AttentionOp, Gemm


class Phase(enum.Enum):
    PREFILL = "prefill"
    DECODE = "decode"


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """A decoder-only transformer's shape (from its ``config.json``)."""
    name: str
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    layers: int
    gated_ffn: bool = True          # SwiGLU-style gate + up + down (Llama, BitNet) vs up + down (OPT)
    weight_bits: int = 16
    act_bits: int = 8
    ternary: bool = False           # weights in {-1, 0, +1} (held in weight_bits = 2)
    source: str = ""

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


MODELS: dict[str, ModelShape] = {m.name: m for m in (
    ModelShape(name="llama2-7b", hidden=4096, ffn=11008, heads=32, kv_heads=32, layers=32,
               weight_bits=4, act_bits=8, source="meta-llama/Llama-2-7b-hf config.json"),
    ModelShape(name="llama3-8b", hidden=4096, ffn=14336, heads=32, kv_heads=8, layers=32,
               weight_bits=4, act_bits=8, source="meta-llama/Meta-Llama-3-8B config.json"),
    ModelShape(name="bitnet-b1.58-3b", hidden=3200, ffn=8640, heads=32, kv_heads=32, layers=26,
               weight_bits=2, act_bits=8, ternary=True, source="1bitLLM/bitnet_b1_58-3B config.json; ternary "
               "weights held in 2 bits"),
    ModelShape(name="opt-6.7b", hidden=4096, ffn=16384, heads=32, kv_heads=32, layers=32,
               gated_ffn=False, weight_bits=8, act_bits=8, source="facebook/opt-6.7b config.json"),
)}


@dataclass(frozen=True)
class GemmOp:
    gemm: Gemm
    count: int                      # how many times the workload runs it (layers x ...)
    weight_bits: int
    act_bits: int
    weights_stationary_bytes: int   # bytes of weights read from off-chip once per run


@dataclass(frozen=True, kw_only=True)
class Workload:
    name: str
    model: ModelShape
    phase: Phase
    batch: int
    seq_len: int
    gemms: tuple[GemmOp, ...] = field(default=())
    attention: tuple[tuple[AttentionOp, int], ...] = field(default=())

    @property
    def tokens(self) -> int:
        """Tokens the workload produces (decode) or consumes (prefill)."""
        return self.batch * (self.seq_len if self.phase is Phase.PREFILL else 1)

    @property
    def weight_bits(self) -> int:
        return self.model.weight_bits

    @property
    def act_bits(self) -> int:
        return self.model.act_bits


def expand(model: ModelShape, phase: Phase, *, batch: int, seq_len: int) -> Workload:
    """All GEMM and attention ops of one pass through every layer."""
    for name, value, hi in (("batch", batch, 4096), ("seq_len", seq_len, 1 << 20)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise ValueError(f"workload.{name} must be an integer in 1..{hi}, not {value!r}")
    m = batch * seq_len if phase is Phase.PREFILL else batch
    h, f, kv_dim = model.hidden, model.ffn, model.kv_heads * model.head_dim
    shapes = [("q_proj", h, h), ("k_proj", kv_dim, h), ("v_proj", kv_dim, h), ("o_proj", h, h)]
    shapes += [("gate_proj", f, h), ("up_proj", f, h), ("down_proj", h, f)] if model.gated_ffn \
        else [("fc1", f, h), ("fc2", h, f)]
    gemms = tuple(GemmOp(Gemm(m=m, n=n, k=k, name=name), model.layers, model.weight_bits,
                         model.act_bits, math.ceil(n * k * model.weight_bits / 8))
                  for name, n, k in shapes)
    n_q = seq_len if phase is Phase.PREFILL else 1
    attention = AttentionOp(batch=batch, heads=model.heads, kv_heads=model.kv_heads, n_q=n_q,
                            n_kv=seq_len, head_dim=model.head_dim, causal=phase is Phase.PREFILL)
    return Workload(name=f"{model.name}-{phase.value}", model=model, phase=phase, batch=batch,
                    seq_len=seq_len, gemms=gemms, attention=((attention, model.layers),))


PRESET_PHASES = {"prefill": dict(batch=1, seq_len=128), "decode": dict(batch=1, seq_len=1024)}


def preset_names() -> list[str]:
    return [f"{m}-{p}" for m in MODELS for p in PRESET_PHASES]


def preset(name: str) -> Workload:
    """``<model>-<phase>``, e.g. ``bitnet-b1.58-3b-decode`` (batch 1, 1024-token context)."""
    for model in MODELS.values():
        for phase, shape in PRESET_PHASES.items():
            if name == f"{model.name}-{phase}":
                return expand(model, Phase(phase), **shape)
    raise ValueError(f"workload must be a preset ({', '.join(preset_names())}) or a .toml/.yaml "
                     f"file, not {name!r}")


def _from_mapping(doc: Any, origin: str) -> Workload:
    if not isinstance(doc, dict):
        raise ValueError(f"{origin}: the file must hold a table of keys")
    allowed = {"model", "phase", "batch", "seq_len"}
    unknown = set(doc) - allowed
    if unknown:
        raise ValueError(f"{origin}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(allowed))}")
    model_doc = doc.get("model")
    if isinstance(model_doc, str):
        if model_doc not in MODELS:
            raise ValueError(f"{origin}: model must be one of {', '.join(MODELS)} or a table, "
                             f"not {model_doc!r}")
        model = MODELS[model_doc]
    elif isinstance(model_doc, dict):
        names = {f.name for f in fields(ModelShape)}
        bad = set(model_doc) - names
        if bad:
            raise ValueError(f"{origin}: unknown key model.{sorted(bad)[0]}; allowed: {', '.join(sorted(names))}")
        for key in ("hidden", "ffn", "heads", "kv_heads", "layers", "weight_bits", "act_bits"):
            value = model_doc.get(key)
            if key in ("weight_bits", "act_bits") and value is None:
                continue
            lo, hi = (1, 16) if key.endswith("bits") else (1, 1 << 20)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{origin}: model.{key} must be an integer in {lo}..{hi}, not {value!r}")
        if not isinstance(model_doc.get("ternary", False), bool):
            raise ValueError(f"{origin}: model.ternary must be true or false, not {model_doc['ternary']!r}")
        if model_doc["hidden"] % model_doc["heads"] or model_doc["heads"] % model_doc["kv_heads"]:
            raise ValueError(f"{origin}: model.heads must divide model.hidden and model.kv_heads "
                             f"must divide model.heads")
        model = ModelShape(**{"name": "custom", **model_doc})
    else:
        raise ValueError(f"{origin}: model must be a preset name or a table, not {model_doc!r}")
    try:
        phase = Phase(doc.get("phase"))
    except ValueError:
        raise ValueError(f"{origin}: phase must be 'prefill' or 'decode', not {doc.get('phase')!r}") from None
    shape = PRESET_PHASES[phase.value]
    try:
        return expand(model, phase, batch=doc.get("batch", shape["batch"]),
                      seq_len=doc.get("seq_len", shape["seq_len"]))
    except ValueError as exc:
        raise ValueError(f"{origin}: {exc}") from None


def load(spec: str) -> Workload:
    """A preset name, or a TOML/YAML file with ``model``, ``phase``, ``batch``, ``seq_len``."""
    path = Path(spec)
    if path.suffix.lower() not in (".toml", ".yaml", ".yml"):
        return preset(spec)
    if not path.is_file():
        raise ValueError(f"workload file {spec!r} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{spec}: {exc}") from None
    else:
        import yaml
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ValueError(f"{spec}:{where} {getattr(exc, 'problem', exc)}") from None
    return _from_mapping(doc, spec)
