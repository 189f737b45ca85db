"""Workload operations the cost models price (the explorer builds them from presets)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from generators.params import parse_int
from generators.widths import ceil_div


MAX_OP_WORK = 1 << 48
"""The most multiply-accumulates one op may hold (2.8e14, some 10x a 70B model's largest
prefill GEMM of 128k tokens). The cost models count cycles, bytes and energy of an op in
int64 and float64 arrays; under this bound no count can wrap, whatever the design."""


def _bounded_work(what: str, formula: str, work: int) -> None:
    if work > MAX_OP_WORK:
        raise ValueError(f"{what}: {formula} must be at most 2^48 ({MAX_OP_WORK:,}) multiply-accumulates "
                         f"per op, not {work:,}")


@dataclass(frozen=True, kw_only=True)
class Gemm:
    """``C[m, n] = sum_k A[m, k] * B[k, n]``: M activations rows, N outputs, K reduction."""
    m: int
    n: int
    k: int
    name: str = "gemm"
    label: ClassVar[str] = "GEMMs"

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 24:
                raise ValueError(f"gemm.{name} must be an integer in 1..{1 << 24}, not {value!r}")
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
            raise ValueError(f"gemm must be M,N,K (three integers), not {text!r}")
        try:
            m, n, k = (parse_int(p) for p in parts)
        except ValueError:
            raise ValueError(f"gemm must be M,N,K (three integers), not {text!r}") from None
        return cls(m=m, n=n, k=k)


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

    def __post_init__(self) -> None:
        for name, hi in (("batch", 1 << 16), ("heads", 1 << 12), ("kv_heads", 1 << 12), ("n_q", 1 << 24),
                         ("n_kv", 1 << 24), ("head_dim", 1 << 12)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
                raise ValueError(f"attention.{name} must be an integer in 1..{hi}, not {value!r}")
        if self.heads % self.kv_heads:
            raise ValueError(f"attention.kv_heads must divide heads ({self.heads}), not {self.kv_heads}")
        if self.n_q > self.n_kv:
            raise ValueError(f"attention.n_q must be at most n_kv ({self.n_kv}), not {self.n_q}")
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
            raise ValueError(f"attention must be B,H,HKV,NQ,NKV,D[,causal], not {text!r}")
        try:
            b, h, hkv, nq, nkv, d = (parse_int(p) for p in parts[:6])
        except ValueError:
            raise ValueError(f"attention must be B,H,HKV,NQ,NKV,D[,causal], not {text!r}") from None
        return cls(batch=b, heads=h, kv_heads=hkv, n_q=nq, n_kv=nkv, head_dim=d, causal=causal)


@dataclass(frozen=True, kw_only=True)
class VectorOp:
    """Element-wise work (norms, activations, RoPE, residual adds, quantization): ``elements``
    values of ``ops_per_element`` lane operations each, run on the accelerator's vector unit."""
    name: str
    elements: int
    ops_per_element: int

    @property
    def ops(self) -> int:
        return self.elements * self.ops_per_element


@dataclass(frozen=True, kw_only=True)
class TransferOp:
    """Data moved between the chip and off-chip memory with no compute of its own (the new
    token's K and V written to the KV cache, the embedding row read, group scales)."""
    name: str
    bytes: int

    @property
    def ops(self) -> int:
        return 0
