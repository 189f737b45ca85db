"""LLM workloads: named model presets and user files, expanded into every op of a pass.

A workload is one forward pass of one transformer layer stack in one phase:

* ``prefill``: ``batch`` sequences of ``seq_len`` tokens each (M = batch * seq_len); it ends
  with the first generated token, so its latency is the time to the first token;
* ``decode``: one new token for each of ``batch`` sequences over a context of
  ``seq_len`` tokens (M = batch), attention reads the whole KV cache.

Per layer, in order: the input norm, the Q, K, V projections, RoPE, the KV-cache write of
the new tokens, attention, the output projection, the residual add, the FFN norm, the FFN
(gated: gate, up, activation, down; plain: up, activation, down), the residual add, and
the activation quantization in front of each projection group for models with
activations under 16 bits. Then the final norm and the LM head (its weights quantized
like the layers', for the last position of each sequence only). GEMM shapes follow
``C[M, N] = A[M, K] @ W[K, N]`` with activations A and weights W. Architecture numbers
are from each model's published configuration (``config.json`` on its model card).
"""
from __future__ import annotations

import enum
import math
import tomllib
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union

from cost_models.ops import AttentionOp, Gemm, TransferOp, VectorOp
from generators.params import ParamError

Op = Union[Gemm, AttentionOp, VectorOp, TransferOp]


class Phase(enum.Enum):
    PREFILL = "prefill"
    DECODE = "decode"


class Activation(enum.Enum):
    SILU = "silu"          # x * sigmoid(x) (Llama, BitNet 3B)
    RELU2 = "relu2"        # relu(x)^2 (BitNet b1.58 2B4T)
    RELU = "relu"          # OPT


class Norm(enum.Enum):
    RMS = "rms"
    LAYER = "layer"


EMBEDDING_BYTES = 2        # an fp16 embedding row per token


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """A decoder-only transformer's shape (from its ``config.json``)."""
    name: str
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    layers: int
    vocab: int = 32000
    gated_ffn: bool = True          # SwiGLU-style gate + up + down (Llama, BitNet) vs up + down (OPT)
    activation: Activation = Activation.SILU
    norm: Norm = Norm.RMS
    rope: bool = True               # rotary positions (else learned positions, added once)
    sub_norms: bool = False         # BitNet 2B4T's extra norms before o_proj and down_proj
    biases: bool = False            # OPT's projection biases
    weight_bits: int = 16
    weight_group: int = 0           # K elements per weight scale; 0 = one scale per output column
    act_bits: int = 8
    ternary: bool = False           # weights in {-1, 0, +1} (held in weight_bits = 2)
    source: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = _FIELD_TYPES[f.name]
            value = getattr(self, f.name)
            if isinstance(kind, type) and issubclass(kind, enum.Enum) and not isinstance(value, kind):
                try:
                    object.__setattr__(self, f.name, kind(value))
                except ValueError:
                    raise ParamError(f"model.{f.name} must be one of "
                                     f"{', '.join(repr(c.value) for c in kind)}, not {value!r}") from None
            elif kind is bool and not isinstance(value, bool):
                raise ParamError(f"model.{f.name} must be true or false, not {value!r}")
            elif kind is int:
                lo, hi = _INT_RANGES.get(f.name, (1, 1 << 20))
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise ParamError(f"model.{f.name} must be an integer in {lo}..{hi}, not {value!r}")
            elif kind is str and not isinstance(value, str):
                raise ParamError(f"model.{f.name} must be a string, not {value!r}")
        if self.hidden % self.heads:
            raise ParamError(f"model.heads must divide model.hidden ({self.hidden}), not {self.heads}")
        if self.heads % self.kv_heads:
            raise ParamError(f"model.kv_heads must divide model.heads ({self.heads}), not {self.kv_heads}")
        if self.ternary and self.weight_bits != 2:
            raise ParamError(f"model.weight_bits must be 2 for ternary weights, not {self.weight_bits}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


_FIELD_TYPES = typing.get_type_hints(ModelShape)
_INT_RANGES = {"weight_bits": (1, 16), "act_bits": (1, 16), "weight_group": (0, 1 << 20),
               "vocab": (1, 1 << 22)}


MODELS: dict[str, ModelShape] = {m.name: m for m in (
    ModelShape(name="llama2-7b", hidden=4096, ffn=11008, heads=32, kv_heads=32, layers=32, vocab=32000,
               weight_bits=4, act_bits=8, source="meta-llama/Llama-2-7b-hf config.json; W4A8, a scale "
               "per output column"),
    ModelShape(name="llama2-7b-w4g128", hidden=4096, ffn=11008, heads=32, kv_heads=32, layers=32,
               vocab=32000, weight_bits=4, weight_group=128, act_bits=8,
               source="meta-llama/Llama-2-7b-hf config.json; W4A8 with a scale per 128 weights "
                      "(GPTQ/AWQ-style groups)"),
    ModelShape(name="llama3-8b", hidden=4096, ffn=14336, heads=32, kv_heads=8, layers=32, vocab=128256,
               weight_bits=4, act_bits=8, source="meta-llama/Meta-Llama-3-8B config.json"),
    ModelShape(name="bitnet-b1.58-3b", hidden=3200, ffn=8640, heads=32, kv_heads=32, layers=26,
               vocab=32002, weight_bits=2, act_bits=8, ternary=True,
               source="1bitLLM/bitnet_b1_58-3B config.json; ternary weights held in 2 bits"),
    ModelShape(name="bitnet-b1.58-2b4t", hidden=2560, ffn=6912, heads=20, kv_heads=5, layers=30,
               vocab=128256, activation=Activation.RELU2, sub_norms=True, weight_bits=2, act_bits=8,
               ternary=True, source="microsoft/bitnet-b1.58-2B-4T config.json (relu2, subln, GQA 20/5); "
               "ternary weights held in 2 bits"),
    ModelShape(name="opt-6.7b", hidden=4096, ffn=16384, heads=32, kv_heads=32, layers=32, vocab=50272,
               gated_ffn=False, activation=Activation.RELU, norm=Norm.LAYER, rope=False, biases=True,
               weight_bits=8, act_bits=8, source="facebook/opt-6.7b config.json"),
)}


@dataclass(frozen=True)
class GemmOp:
    gemm: Gemm
    count: int                      # how many times the workload runs it (layers x ...)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Every op of one pass in execution order, each with how often the pass runs it."""
    name: str
    model: ModelShape
    phase: Phase
    batch: int
    seq_len: int
    ops: tuple[tuple[Op, int], ...]

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

    @property
    def gemms(self) -> tuple[GemmOp, ...]:
        return tuple(GemmOp(op, count) for op, count in self.ops if isinstance(op, Gemm))

    @property
    def attention(self) -> tuple[tuple[AttentionOp, int], ...]:
        return tuple((op, count) for op, count in self.ops if isinstance(op, AttentionOp))

    def kind_ops(self, kind: type) -> list[tuple[Op, int]]:
        return [(op, count) for op, count in self.ops if isinstance(op, kind)]

    def min_offchip_bytes(self) -> float:
        """Bytes a pass must move however it is scheduled: every weight (and scale) read
        once at its information content (log2(3) bits for a ternary weight), the KV cache
        read once per attention, the new K/V and embeddings moved."""
        total = 0.0
        weight_bits = math.log2(3) if self.model.ternary else self.model.weight_bits   # ternary: 1.58 bits
        for op, count in self.ops:
            if isinstance(op, Gemm):
                total += count * op.n * op.k * weight_bits / 8
            elif isinstance(op, AttentionOp):
                total += count * op.batch * op.kv_heads * op.n_kv * op.head_dim * 2 * self.act_bits / 8
            elif isinstance(op, TransferOp):
                total += count * op.bytes
        return total


def expand(model: ModelShape, phase: Phase, *, batch: int, seq_len: int) -> Workload:
    """Every op of one pass through every layer, in execution order."""
    for name, value, hi in (("batch", batch, 4096), ("seq_len", seq_len, 1 << 20)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise ParamError(f"workload.{name} must be an integer in 1..{hi}, not {value!r}")
    m = batch * seq_len if phase is Phase.PREFILL else batch
    h, f, kv_dim, layers = model.hidden, model.ffn, model.kv_heads * model.head_dim, model.layers
    group = model.weight_group
    ops: list[tuple[Op, int]] = [(TransferOp(name="embedding", bytes=m * h * EMBEDDING_BYTES), 1)]

    def vector(name: str, kind: str, elements: int, count: int = layers) -> None:
        ops.append((VectorOp(name=name, kind=kind, elements=elements), count))

    def gemm(name: str, n: int, k: int, rows: int = m, count: int = layers) -> None:
        if not group or group >= k:
            ops.append((Gemm(m=rows, n=n, k=k, name=name), count))
            return
        chunks = math.ceil(k / group)           # a run per scale group; partial sums scaled and added
        ops.append((Gemm(m=rows, n=n, k=group, name=name), count * chunks))
        ops.append((TransferOp(name=f"{name}.scales", bytes=2 * n * chunks), count))
        vector(f"{name}.group_scale", "group_scale", rows * n * chunks, count)

    norm = "rms_norm" if model.norm is Norm.RMS else "layer_norm"
    quantized = model.act_bits < 16
    if not model.rope:
        vector("position", "position", m * h)
    vector("attn_norm", norm, m * h)
    if quantized:
        vector("attn_quant", "act_quant", m * h)
    for name, n in (("q_proj", h), ("k_proj", kv_dim), ("v_proj", kv_dim)):
        gemm(name, n, h)
    if model.biases:
        vector("qkv_bias", "bias", m * (h + 2 * kv_dim))
    if model.rope:
        vector("rope", "rope", m * (h + kv_dim))
    ops.append((TransferOp(name="kv_write", bytes=math.ceil(2 * m * kv_dim * model.act_bits / 8)), layers))
    n_q = seq_len if phase is Phase.PREFILL else 1
    ops.append((AttentionOp(batch=batch, heads=model.heads, kv_heads=model.kv_heads, n_q=n_q, n_kv=seq_len,
                            head_dim=model.head_dim, causal=phase is Phase.PREFILL), layers))
    if model.sub_norms:
        vector("attn_sub_norm", norm, m * h)
    if quantized:
        vector("o_quant", "act_quant", m * h)
    gemm("o_proj", h, h)
    if model.biases:
        vector("o_bias", "bias", m * h)
    vector("attn_residual", "residual", m * h)
    vector("ffn_norm", norm, m * h)
    if quantized:
        vector("ffn_quant", "act_quant", m * h)
    if model.gated_ffn:
        gemm("gate_proj", f, h)
        gemm("up_proj", f, h)
        vector("ffn_act", model.activation.value, m * f)
        vector("gate_mul", "gate_mul", m * f)
    else:
        gemm("fc1", f, h)
        if model.biases:
            vector("fc1_bias", "bias", m * f)
        vector("ffn_act", model.activation.value, m * f)
    if model.sub_norms:
        vector("ffn_sub_norm", norm, m * f)
    if quantized:
        vector("down_quant", "act_quant", m * f)
    gemm("down_proj" if model.gated_ffn else "fc2", h, f)
    if model.biases:
        vector("down_bias", "bias", m * h)
    vector("ffn_residual", "residual", m * h)
    vector("final_norm", norm, batch * h, count=1)
    if quantized:
        vector("lm_head_quant", "act_quant", batch * h, count=1)
    gemm("lm_head", model.vocab, h, rows=batch, count=1)
    name = f"{model.name}-{phase.value}"
    if dict(batch=batch, seq_len=seq_len) != PRESET_PHASES[phase.value]:    # not the preset's shape: say so
        name += f" (batch {batch}, seq_len {seq_len})"
    return Workload(name=name, model=model, phase=phase, batch=batch, seq_len=seq_len, ops=tuple(ops))


PRESET_PHASES = {"prefill": dict(batch=1, seq_len=128), "decode": dict(batch=1, seq_len=1024)}


def preset_names() -> list[str]:
    return [f"{m}-{p}" for m in MODELS for p in PRESET_PHASES]


def preset(name: str) -> Workload:
    """``<model>-<phase>``, e.g. ``bitnet-b1.58-3b-decode`` (batch 1, 1024-token context)."""
    for model in MODELS.values():
        for phase, shape in PRESET_PHASES.items():
            if name == f"{model.name}-{phase}":
                return expand(model, Phase(phase), **shape)
    raise ParamError(f"workload must be a preset ({', '.join(preset_names())}) or a .toml/.yaml "
                     f"file, not {name!r}")


def _from_mapping(doc: Any, origin: str) -> Workload:
    if not isinstance(doc, dict):
        raise ParamError(f"{origin}: the file must hold a table of keys")
    allowed = {"model", "phase", "batch", "seq_len"}
    unknown = set(doc) - allowed
    if unknown:
        raise ParamError(f"{origin}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(allowed))}")
    model_doc = doc.get("model")
    if isinstance(model_doc, str):
        if model_doc not in MODELS:
            raise ParamError(f"{origin}: model must be one of {', '.join(MODELS)} or a table, "
                             f"not {model_doc!r}")
        model = MODELS[model_doc]
    elif isinstance(model_doc, dict):
        names = {f.name for f in fields(ModelShape)}
        bad = set(model_doc) - names
        if bad:
            raise ParamError(f"{origin}: unknown key model.{sorted(bad)[0]}; allowed: {', '.join(sorted(names))}")
        missing = [k for k in ("hidden", "ffn", "heads", "kv_heads", "layers") if k not in model_doc]
        if missing:
            raise ParamError(f"{origin}: model.{missing[0]} is required")
        try:
            model = ModelShape(**{"name": "custom", **model_doc})
        except ValueError as exc:
            raise ParamError(f"{origin}: {exc}") from None
    else:
        raise ParamError(f"{origin}: model must be a preset name or a table, not {model_doc!r}")
    try:
        phase = Phase(doc.get("phase"))
    except ValueError:
        raise ParamError(f"{origin}: phase must be 'prefill' or 'decode', not {doc.get('phase')!r}") from None
    shape = PRESET_PHASES[phase.value]
    try:
        return expand(model, phase, batch=doc.get("batch", shape["batch"]),
                      seq_len=doc.get("seq_len", shape["seq_len"]))
    except ValueError as exc:
        raise ParamError(f"{origin}: {exc}") from None


WORKLOAD_FILE_BYTES = 64 * 1024      # a workload file is a handful of keys; more is not one
MAX_NESTING = 8                      # collections inside collections a YAML file may open


def _is_file_spec(spec: str) -> bool:
    return Path(spec).suffix.lower() in (".toml", ".yaml", ".yml")


def canonical(spec: str) -> str:
    """``spec`` as a run stores it: a workload file by its absolute path (so the run can be
    reported from any folder), a preset by its name."""
    return str(Path(spec).resolve()) if _is_file_spec(spec) and Path(spec).is_file() else spec


def _yaml_document(text: str, spec: str) -> Any:
    """A YAML workload file's document. Anchors and aliases are refused before anything is
    built: a few aliased lists expand to billions of nodes (a YAML "billion laughs")."""
    import yaml
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ParamError(f"{spec}: YAML anchors and aliases are not allowed in a workload file")
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            if depth > MAX_NESTING:
                raise ParamError(f"{spec}: nests more than {MAX_NESTING} levels deep; a workload file has two")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamError(f"{spec}:{where} {getattr(exc, 'problem', None) or exc}") from None


def load(spec: str) -> Workload:
    """A preset name, or a TOML/YAML file with ``model``, ``phase``, ``batch``, ``seq_len``
    (UTF-8, at most ``WORKLOAD_FILE_BYTES``)."""
    path = Path(spec)
    if not _is_file_spec(spec):
        return preset(spec)
    if not path.is_file():
        raise ParamError(f"workload file {spec!r} does not exist")
    size = path.stat().st_size
    if size > WORKLOAD_FILE_BYTES:
        raise ParamError(f"workload file {spec!r} has {size:,} bytes; a workload file holds at most "
                         f"{WORKLOAD_FILE_BYTES:,}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamError(f"workload file {spec!r} is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParamError(f"{spec}: {exc}") from None
        except RecursionError:                        # tomllib parses nested arrays recursively
            raise ParamError(f"{spec}: nests too deeply; a workload file has two levels") from None
    else:
        doc = _yaml_document(text, spec)
    return _from_mapping(doc, spec)
