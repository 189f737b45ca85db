"""Bit-exact golden models of the mpGEMM engines, written from the notes' formulas.

:func:`reference` is the plain integer GEMM both engines must equal (the MAC
baseline computes exactly this). :func:`lut_gemm` follows the LUT engine's
arithmetic step by step (tables per activation group, one lookup per
bit-plane or base-3 code, plane weights, the output correction) so that a
test can hold each path, {0,1}, symmetric {-1,+1} and ternary, against
:func:`reference`. Everything is exact integer arithmetic: the RTL never
rounds or saturates (its widths are derived so nothing overflows) and the
symmetric path's final halving is exact.
"""
from __future__ import annotations

import numpy as np


def reference(a: np.ndarray, w: np.ndarray, weight_format: str,
              zero_point: np.ndarray | None = None) -> np.ndarray:
    """``Y = A @ W`` with ``W - z`` for ``uint`` codes."""
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if weight_format == "uint":
        w = w - np.asarray(zero_point, dtype=np.int64)[None, :]
    return a @ w


# ---------------------------------------------------------------------- tables (notes 1.1, 1.2, 1.4)
def table_01(group: np.ndarray) -> np.ndarray:
    """``T[idx] = sum_t bit_t(idx) * a_t`` for every idx in 0..2^g-1."""
    g = len(group)
    return np.array([sum(int(group[t]) for t in range(g) if idx >> t & 1) for idx in range(1 << g)],
                    dtype=np.int64)


def table_pm(group: np.ndarray) -> np.ndarray:
    """The full {-1,+1} table ``T[idx] = sum_t (2 bit_t(idx) - 1) * a_t``."""
    g = len(group)
    return np.array([sum((1 if idx >> t & 1 else -1) * int(group[t]) for t in range(g))
                     for idx in range(1 << g)], dtype=np.int64)


def table_ternary(group: np.ndarray) -> np.ndarray:
    """``T[idx] = sum_t (digit_t(idx) - 1) * a_t`` for every base-3 idx in 0..3^g-1."""
    g = len(group)
    return np.array([sum(((idx // 3 ** t) % 3 - 1) * int(group[t]) for t in range(g))
                     for idx in range(3 ** g)], dtype=np.int64)


def half_lookup(full: np.ndarray, idx: int, g: int) -> int:
    """A {-1,+1} lookup through the half table: store entries with bit 0 set, negate the rest."""
    if idx & 1:
        return int(full[idx])
    return -int(full[~idx & ((1 << g) - 1)])


def ternary_half_lookup(full: np.ndarray, idx: int, g: int) -> int:
    """A ternary lookup through the ``(3^g + 1)/2`` upper entries and a sign."""
    c = (3 ** g - 1) // 2
    return int(full[idx]) if idx >= c else -int(full[3 ** g - 1 - idx])


# ---------------------------------------------------------------------- the LUT computation
def lut_gemm(a: np.ndarray, w: np.ndarray, *, weight_format: str, w_bits: int, g: int,
             symmetric: bool, zero_point: np.ndarray | None = None) -> np.ndarray:
    """What the LUT engine computes for ``A`` (``M x K``) and ``W`` (``K x N``), K zero-padded to g."""
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    m, k = a.shape
    n = w.shape[1]
    groups = -(-k // g)
    a_pad = np.zeros((m, groups * g), dtype=np.int64)
    a_pad[:, :k] = a
    w_pad = np.zeros((groups * g, n), dtype=np.int64)
    w_pad[:k] = w
    acc = np.zeros((m, n), dtype=np.int64)
    rowsum = a_pad.sum(axis=1)
    for j in range(groups):
        block_w = w_pad[j * g:(j + 1) * g]
        for i in range(m):
            group = a_pad[i, j * g:(j + 1) * g]
            if weight_format == "ternary":
                full = table_ternary(group)
                for col in range(n):
                    idx = sum(int(block_w[t, col] + 1) * 3 ** t for t in range(g))
                    acc[i, col] += ternary_half_lookup(full, idx, g) if symmetric else int(full[idx])
                continue
            full = table_pm(group) if symmetric else table_01(group)
            for col in range(n):
                for plane in range(w_bits):
                    idx = sum(((int(block_w[t, col]) >> plane) & 1) << t for t in range(g))
                    value = half_lookup(full, idx, g) if symmetric else int(full[idx])
                    weight = 1 << plane
                    if weight_format == "int" and plane == w_bits - 1:
                        weight = -weight
                    acc[i, col] += weight * value
    if weight_format == "ternary":
        return acc
    if not symmetric:
        if weight_format == "uint":
            return acc - rowsum[:, None] * np.asarray(zero_point, dtype=np.int64)[None, :]
        return acc
    if weight_format == "uint":
        c = (1 << w_bits) - 1 - 2 * np.asarray(zero_point, dtype=np.int64)
    else:
        c = np.full(n, -1, dtype=np.int64)
    doubled = acc + rowsum[:, None] * c[None, :]
    assert np.all(doubled % 2 == 0), "the symmetric correction must be exact"
    return doubled // 2
