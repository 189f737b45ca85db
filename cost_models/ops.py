"""Workload operations the cost models price (the explorer builds them from presets)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from generators.params import ParamError, parse_int
from generators.widths import ceil_div


MAX_OP_WORK = 1 << 48
"""The most multiply-accumulates one op may hold (2.8e14, some 10x a 70B model's largest
prefill GEMM of 128k tokens). The cost models count cycles, bytes and energy of an op in
int64 and float64 arrays; under this bound no count can wrap, whatever the design."""


def _bounded_work(what: str, formula: str, work: int) -> None:
    if work > MAX_OP_WORK:
        raise ParamError(f"{what}: {formula} must be at most 2^48 ({MAX_OP_WORK:,}) multiply-accumulates "
                         f"per op, not {work:,}")


@dataclass(frozen=True, kw_only=True)
class Gemm:
    """``C[m, n] = sum_k A[m, k] * B[k, n]``: M activations rows, N outputs, K reduction."""
    m: int
    n: int
    k: int
    name: str = "gemm"
    label: ClassVar[str] = "GEMMs"
    flag: ClassVar[str] = "gemm"
    metavar: ClassVar[str] = "M,N,K"
    flag_help: ClassVar[str] = "GEMM to price (the GEMM engines; default: one tile at k_max)"

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 24:
                raise ParamError(f"gemm.{name} must be an integer in 1..{1 << 24}, not {value!r}")
        _bounded_work(f"gemm {self.name}", "m*n*k", self.m * self.n * self.k)

    @property
    def ops(self) -> int:
        """Useful operations, counting a multiply and an add as two."""
        return 2 * self.m * self.n * self.k

    def offchip_bits(self, m_tile, n_tile, chunks, a_bits_per_element, w_bits_per_element, out_bits):
        """Off-chip traffic of an ``m_tile x n_tile`` tiling in ``chunks`` K chunks (no reuse
        across tiles): every output tile streams its A slab and W slab as the engine's streams
        carry them; partial tiles of each K chunk go back to the host."""
        return (ceil_div(self.n, n_tile) * self.m * self.k * a_bits_per_element
                + ceil_div(self.m, m_tile) * self.n * self.k * w_bits_per_element
                + chunks * self.m * self.n * out_bits)

    @classmethod
    def parse(cls, text: str) -> "Gemm":
        """``"M,N,K"`` as given on the command line."""
        parts = text.replace("x", ",").split(",")
        if len(parts) != 3:
            raise ParamError(f"gemm must be M,N,K (three integers), not {text!r}")
        try:
            m, n, k = (parse_int(p) for p in parts)
        except ValueError:
            raise ParamError(f"gemm must be M,N,K (three integers), not {text!r}") from None
        return cls(m=m, n=n, k=k)

    def describe(self) -> dict[str, object]:
        return {"gemm": [self.m, self.n, self.k]}

    def text(self) -> str:
        return f"GEMM {self.m}x{self.n}x{self.k}"


@dataclass(frozen=True, kw_only=True)
class AttentionOp:
    """Attention of ``heads`` query heads over ``kv_heads`` KV heads (one layer).

    ``n_q`` queries attend over ``n_kv`` keys; with ``causal`` the queries are
    the last ``n_q`` positions of the ``n_kv`` (a prefill has ``n_q = n_kv``,
    a decode step ``n_q = 1``).
    """
    batch: int
    heads: int
    kv_heads: int
    n_q: int
    n_kv: int
    head_dim: int
    causal: bool
    name: str = "attention"
    label: ClassVar[str] = "attention ops"
    flag: ClassVar[str] = "attention"
    metavar: ClassVar[str] = "B,H,HKV,NQ,NKV,D[,causal]"
    flag_help: ClassVar[str] = "attention op to price (attention family; default: one run at max_seq_len)"

    def __post_init__(self) -> None:
        for name, hi in (("batch", 1 << 16), ("heads", 1 << 12), ("kv_heads", 1 << 12), ("n_q", 1 << 24),
                         ("n_kv", 1 << 24), ("head_dim", 1 << 12)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
                raise ParamError(f"attention.{name} must be an integer in 1..{hi}, not {value!r}")
        if self.heads % self.kv_heads:
            raise ParamError(f"attention.kv_heads must divide heads ({self.heads}), not {self.kv_heads}")
        if self.n_q > self.n_kv:
            raise ParamError(f"attention.n_q must be at most n_kv ({self.n_kv}), not {self.n_q}")
        _bounded_work(f"attention {self.name}", "batch*heads*n_q*n_kv*head_dim",
                      self.batch * self.heads * self.n_q * self.n_kv * self.head_dim)

    @property
    def pairs(self) -> int:
        """(query, key) pairs that take part, per (batch, head)."""
        if not self.causal:
            return self.n_q * self.n_kv
        prefix = self.n_kv - self.n_q
        return self.n_q * prefix + self.n_q * (self.n_q + 1) // 2

    @property
    def ops(self) -> int:
        """Useful operations: QK^T and PV, a multiply and an add each."""
        return 4 * self.batch * self.heads * self.pairs * self.head_dim

    def as_gemms(self) -> list[tuple[Gemm, int]]:
        """Scores (Q K^T) and context (P V) as GEMMs, with how often each runs."""
        count = self.batch * self.heads
        return [(Gemm(m=self.n_q, n=self.n_kv, k=self.head_dim, name=f"{self.name}.scores"), count),
                (Gemm(m=self.n_q, n=self.head_dim, k=self.n_kv, name=f"{self.name}.context"), count)]

    @classmethod
    def parse(cls, text: str) -> "AttentionOp":
        """``"B,H,HKV,NQ,NKV,D[,causal]"`` as given on the command line."""
        parts = [p.strip() for p in text.split(",")]
        causal = len(parts) == 7 and parts[6].lower() in ("causal", "1", "true")
        if len(parts) not in (6, 7) or (len(parts) == 7 and not causal and parts[6].lower()
                                         not in ("dense", "0", "false")):
            raise ParamError(f"attention must be B,H,HKV,NQ,NKV,D[,causal], not {text!r}")
        try:
            b, h, hkv, nq, nkv, d = (parse_int(p) for p in parts[:6])
        except ValueError:
            raise ParamError(f"attention must be B,H,HKV,NQ,NKV,D[,causal], not {text!r}") from None
        return cls(batch=b, heads=h, kv_heads=hkv, n_q=nq, n_kv=nkv, head_dim=d, causal=causal)

    def describe(self) -> dict[str, object]:
        return {"attention": {"batch": self.batch, "heads": self.heads, "kv_heads": self.kv_heads,
                              "n_q": self.n_q, "n_kv": self.n_kv, "head_dim": self.head_dim,
                              "causal": self.causal}}

    def text(self) -> str:
        return (f"attention B{self.batch} H{self.heads}/{self.kv_heads} Nq{self.n_q} Nkv{self.n_kv} "
                f"d{self.head_dim}" + (" causal" if self.causal else ""))


# Lane operations per element of each kind of element-wise op, as the accelerator's stated
# vector model prices them: RMSNorm square + accumulate + scale + gain; LayerNorm adds the
# mean subtraction and the bias; RoPE two products and an add per element; SiLU (GELU) a
# table sigmoid (Phi) and a product, relu2 a compare and a square (each then times `up` in a gated
# FFN); quantization an absmax, a scale and a round; argmax a compare.
OPS_PER_ELEMENT = {"rms_norm": 4, "layer_norm": 7, "rope": 3, "silu": 3, "gelu": 3, "relu2": 2, "relu": 1,
                   "gate_mul": 1, "residual": 1, "bias": 1, "position": 1, "act_quant": 3,
                   "group_scale": 2, "argmax": 1}


@dataclass(frozen=True, kw_only=True)
class VectorOp:
    """Element-wise work of one ``kind`` (:data:`OPS_PER_ELEMENT`: norms, activations, RoPE,
    residual adds, quantization) over ``elements`` values, run on the vector unit."""
    kind: str
    elements: int
    name: str = "vector"
    label: ClassVar[str] = "element-wise ops"
    flag: ClassVar[str] = "vector"
    metavar: ClassVar[str] = "KIND,ELEMENTS"
    flag_help: ClassVar[str] = ("element-wise op to price (vector family; KIND one of "
                                + ", ".join(OPS_PER_ELEMENT) + "; default: one residual add of max_beats)")

    def __post_init__(self) -> None:
        if self.kind not in OPS_PER_ELEMENT:
            raise ParamError(f"vector.kind must be one of {', '.join(OPS_PER_ELEMENT)}, not {self.kind!r}")
        value = self.elements
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OP_WORK:
            raise ParamError(f"vector.elements must be an integer in 1..{MAX_OP_WORK}, not {value!r}")

    @property
    def ops_per_element(self) -> int:
        return OPS_PER_ELEMENT[self.kind]

    @property
    def ops(self) -> int:
        return self.elements * self.ops_per_element

    @classmethod
    def parse(cls, text: str) -> "VectorOp":
        """``"KIND,ELEMENTS"`` as given on the command line."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2:
            raise ParamError(f"vector must be KIND,ELEMENTS (one of {', '.join(OPS_PER_ELEMENT)}, and an "
                             f"integer), not {text!r}")
        try:
            elements = parse_int(parts[1])
        except ValueError:
            raise ParamError(f"vector must be KIND,ELEMENTS (ELEMENTS an integer), not {text!r}") from None
        return cls(kind=parts[0], elements=elements)

    def describe(self) -> dict[str, object]:
        return {"vector": {"kind": self.kind, "elements": self.elements}}

    def text(self) -> str:
        return f"{self.kind} of {self.elements} elements"


@dataclass(frozen=True, kw_only=True)
class TransferOp:
    """Data moved between the chip and off-chip memory with no compute of its own (the new
    token's K and V written to the KV cache, the embedding row read, group scales)."""
    name: str
    bytes: int

    @property
    def ops(self) -> int:
        return 0


PRICED_OPS = (Gemm, AttentionOp, VectorOp)
"""The op types an engine family prices one at a time; each brings its command-line flag."""
