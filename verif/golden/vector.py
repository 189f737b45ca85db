"""Golden model of the vector unit, bit-exact with :mod:`generators.vector`, and its
real-number reference with the bound that holds between them.

Element-wise ops: ``z = sat(floor(w / 2**shift + 1/2))`` with ``w`` the op's exact
integer value (``x + y``, ``x * y``, ``max(x, 0)``, ``max(x, 0)**2``) and ``sat`` the clamp
to ``bits``-bit two's complement. The reference is ``clamp(w / 2**shift)`` in exact
rationals; the golden result is within :data:`ELEMENTWISE_BOUND` of it for every input
(rounding half up moves at most half a unit; a clamp only brings both to the same limit).
Reductions are exact: the largest ``|x|``, the index of the first largest ``x``.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from generators.vector import VectorOpcode

ELEMENTWISE_BOUND = Fraction(1, 2)
"""Largest distance, in output units, between the golden result and the reference."""


def limits(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def wide(op: VectorOpcode, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """The op's exact integer value per element, before the shift."""
    x = np.asarray(x, dtype=np.int64)
    relu = np.maximum(x, 0)
    if op is VectorOpcode.ADD:
        return x + np.asarray(y, dtype=np.int64)
    if op is VectorOpcode.MUL:
        return x * np.asarray(y, dtype=np.int64)
    if op is VectorOpcode.RELU:
        return relu
    if op is VectorOpcode.RELU2:
        return relu * relu
    raise ValueError(f"{op.name} is a reduction, not an element-wise op")


def elementwise(op: VectorOpcode, x, y, shift: int, bits: int) -> np.ndarray:
    """What the unit's ``z`` lanes hold: the op's value rounded half up at ``shift`` and
    saturated to ``bits``."""
    w = wide(op, x, y)
    rounded = w if shift == 0 else (np.right_shift(w, min(shift - 1, 63)) + 1) >> 1
    lo, hi = limits(bits)
    return np.clip(rounded, lo, hi)


def absmax(x) -> int:
    return int(np.max(np.abs(np.asarray(x, dtype=np.int64))))


def argmax(x) -> int:
    return int(np.argmax(np.asarray(x, dtype=np.int64)))       # the first largest


def reduce(op: VectorOpcode, x) -> int:
    """The value a reduction's result beat carries."""
    if op is VectorOpcode.ABSMAX:
        return absmax(x)
    if op is VectorOpcode.ARGMAX:
        return argmax(x)
    raise ValueError(f"{op.name} is element-wise, not a reduction")


def reference(op: VectorOpcode, x, y, shift: int, bits: int) -> list[Fraction]:
    """The element-wise op in exact rationals: ``clamp(w / 2**shift)``, no rounding."""
    lo, hi = limits(bits)
    scale = Fraction(1, 1 << shift)
    return [min(max(Fraction(int(w)) * scale, Fraction(lo)), Fraction(hi)) for w in wide(op, x, y).ravel()]


def worst_error(op: VectorOpcode, x, y, shift: int, bits: int) -> Fraction:
    """Largest ``|golden - reference|`` over the elements."""
    got = elementwise(op, x, y, shift, bits).ravel()
    return max(abs(Fraction(int(g)) - r) for g, r in zip(got, reference(op, x, y, shift, bits), strict=True))
