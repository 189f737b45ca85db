"""Workload operations the cost models price (the explorer builds them from presets)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Gemm:
    """``C[m, n] = sum_k A[m, k] * B[k, n]``: M activations rows, N outputs, K reduction."""
    m: int
    n: int
    k: int
    name: str = "gemm"

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 24:
                raise ValueError(f"gemm.{name} must be an integer in 1..{1 << 24}, not {value!r}")

    @property
    def ops(self) -> int:
        """Useful operations, counting a multiply and an add as two."""
        return 2 * self.m * self.n * self.k

    @classmethod
    def parse(cls, text: str) -> "Gemm":
        """``"M,N,K"`` as given on the command line."""
        parts = text.replace("x", ",").split(",")
        if len(parts) != 3:
            raise ValueError(f"gemm must be M,N,K (three integers), not {text!r}")
        try:
            m, n, k = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"gemm must be M,N,K (three integers), not {text!r}") from None
        return cls(m=m, n=n, k=k)
