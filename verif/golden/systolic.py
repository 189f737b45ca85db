"""Bit-exact reference of the systolic engine: integer GEMM wrapped to the accumulator.

The RTL adds full-width products into an ``acc_bits`` register, so every
partial sum is reduced modulo ``2**acc_bits``; because that reduction commutes
with addition, wrapping the exact sum once gives the same bits.
"""
from __future__ import annotations

import numpy as np


def operand_range(bits: int, is_signed: bool) -> tuple[int, int]:
    """Inclusive (min, max) of a ``bits``-wide operand."""
    if is_signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def wrap(values: np.ndarray, bits: int, is_signed: bool) -> np.ndarray:
    """Reduce integers modulo ``2**bits`` into the signed or unsigned range.

    Inputs must be exact int64 values (|v| < 2**62); every engine's sums are
    below 2**50, so widths from 62 bits up leave them unchanged.
    """
    v = np.asarray(values, dtype=np.int64)
    if bits >= 62:
        return v
    u = v & ((1 << bits) - 1)
    if is_signed:
        u = np.where(u >> (bits - 1), u - (1 << bits), u)
    return u


def gemm(a: np.ndarray, b: np.ndarray, acc_bits: int, is_signed: bool) -> np.ndarray:
    """``C = A @ B`` as the engine computes it: exact products, ``acc_bits`` wrap."""
    exact = np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)
    return wrap(exact, acc_bits, is_signed)
