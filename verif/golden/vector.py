"""Golden model of the vector unit, bit-exact with :mod:`generators.vector`, and its
real-number references with the bounds that hold between them.

Element-wise ops: ``z = sat(floor(w / 2**shift + 1/2))`` with ``w`` the op's exact integer
value (``x + y``, ``x * y``, ``max(x, 0)``, ``max(x, 0)**2``, ``x * scalar``, a lane pair's
complex product by ``(cos, sin)``, ``x`` times its table gate, ``x - offset``) and ``sat`` the
clamp to ``bits``-bit two's complement. Against ``clamp(w / 2**shift)`` in exact rationals
the golden result is within :data:`ELEMENTWISE_BOUND` for every input (rounding half up moves
at most half a unit; a clamp only brings both to the same limit).

The scalars are exact floors (:class:`Unit`), so the composed ops have bounds of their own:
quantization (``ABSMAX``, then ``SCALE`` at ``quant_shift``, on lanes of at least 8 bits)
lands within :data:`QUANT_BOUND` of ``127 * x / absmax``, and normalization (``RMS``, then ``SCALE`` at
``shift``) within ``1/2 + |x| / 2**shift`` of ``x * 2**(norm_shift - shift) / sqrt(mean(x**2) + 1)``.
The gated ops (``SILU``, ``GELU``) land within :func:`gate_bound` of the real
``x * gate(x)`` (float64), for every input: half a unit of rounding, plus the table's
largest ``|x| * |entry - gate|`` over a segment, which for a monotonic gate is reached at
the segment's ends, and beyond the table ``8 * gate(-8)`` (``|x| * gate(-|x|)`` falls
there).
Python integers throughout: a 32-bit lane times the scalar needs 73 bits.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
import math
from math import isqrt

import numpy as np

from generators.vector import (GATE_RANGE, GATES, QUANT_LEVELS, GateTable, VectorOpcode, norm_shift, quant_shift,
                               scalar_bits)

ELEMENTWISE_BOUND = Fraction(1, 2)
"""Largest distance, in output units, between an element-wise result and its reference."""
QUANT_BOUND = Fraction(3, 4)
"""Quantization's bound: half a unit of rounding, and below a quarter from the scalar's floor
(``|x| * 1 / 2**(bits + 1)`` with ``|x| <= 2**(bits - 1)``); strict."""


def limits(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel()]


def _rotations(x, y) -> list[int]:
    """``ROPE``'s complex products per beat (the last dimension is the lanes): ``x[2i] c -
    x[2i+1] s`` and ``x[2i] s + x[2i+1] c`` with ``(c, s) = (y[2i], y[2i+1])``; an unpaired
    last lane is ``x y``."""
    xs, ys = np.asarray(x, dtype=object), np.asarray(y, dtype=object)
    lanes = xs.shape[-1]
    out = []
    for xb, yb in zip(xs.reshape(-1, lanes), ys.reshape(-1, lanes)):
        for i in range(lanes):
            if i % 2:
                out.append(int(xb[i]) * int(yb[i - 1]) + int(xb[i - 1]) * int(yb[i]))
            elif i + 1 < lanes:
                out.append(int(xb[i]) * int(yb[i]) - int(xb[i + 1]) * int(yb[i + 1]))
            else:
                out.append(int(xb[i]) * int(yb[i]))
    return out


def gate(table: GateTable, op: VectorOpcode, x: int) -> int:
    """The gate the lane's table gives ``x``: its segment's entry, 0 below, ``one`` above."""
    segment = x >> table.drop
    if segment < table.first:
        return 0
    if segment > table.last:
        return table.one
    return table.entries(op)[segment - table.first]


def wide(op: VectorOpcode, x, y=None, scalar: int = 0, table: GateTable | None = None, offset: int = 0) -> list[int]:
    """The op's exact integer value per element, before the shift (``x`` and ``y`` as beats x
    lanes for ``ROPE``; a gated op needs the unit's ``table``)."""
    if op is VectorOpcode.ROPE:
        return _rotations(x, y)
    xs = _ints(x)
    if op.gated:
        return [v * gate(table, op, v) for v in xs]
    ys = _ints(y) if op.binary else [0] * len(xs)
    value = {VectorOpcode.ADD: lambda a, b: a + b, VectorOpcode.MUL: lambda a, b: a * b,
             VectorOpcode.RELU: lambda a, b: max(a, 0), VectorOpcode.RELU2: lambda a, b: max(a, 0) ** 2,
             VectorOpcode.SCALE: lambda a, b: a * scalar, VectorOpcode.CENTER: lambda a, b: a - offset}
    if op not in value:
        raise ValueError(f"{op.name} is a reduction, not an element-wise op")
    return [value[op](a, b) for a, b in zip(xs, ys, strict=True)]


def round_shift(w: int, shift: int, bits: int) -> int:
    """``sat(floor(w / 2**shift + 1/2))``: the unit's rounding and saturation."""
    lo, hi = limits(bits)
    return min(max((((w << 1) >> shift) + 1) >> 1, lo), hi)


def elementwise(op: VectorOpcode, x, y, shift: int, bits: int, scalar: int = 0,
                table: GateTable | None = None, offset: int = 0) -> np.ndarray:
    """What the unit's ``z`` lanes hold, in the shape of ``x``."""
    out = [round_shift(w, shift, bits) for w in wide(op, x, y, scalar, table, offset)]
    return np.array(out, dtype=np.int64).reshape(np.shape(x))


def absmax(x) -> int:
    return max(abs(v) for v in _ints(x))


def argmax(x) -> int:
    return int(np.argmax(np.asarray(x, dtype=np.int64)))       # the first largest


def quant_scalar(amax: int, bits: int) -> int:
    """``floor(127 * 2**(bits + 1) / amax)``; the divider's all-ones quotient for ``amax = 0``."""
    width = int(scalar_bits(bits))
    return (QUANT_LEVELS << int(quant_shift(bits))) // amax if amax else (1 << width) - 1


def mean_offset(x) -> int:
    """``floor(mean(x) + 1/2)``, exactly."""
    xs = _ints(x)
    return (2 * sum(xs) + len(xs)) // (2 * len(xs))


def rms_scalar(x, bits: int) -> int:
    """``floor(2**(bits + 7) / sqrt(mean(x**2) + 1))``, exactly: the integer square root of the
    divider's floor (``isqrt(floor(a)) == floor(sqrt(a))``)."""
    xs = _ints(x)
    total = sum(v * v + 1 for v in xs)
    return isqrt((len(xs) << (2 * int(norm_shift(bits)))) // total)


@dataclass
class Unit:
    """The unit's state across runs: the scalar ``SCALE`` reads and the offset ``CENTER``
    reads (zero after reset); ``table`` is its gate tables' shape (``VectorParams.gate_table``)."""
    lanes: int
    bits: int
    table: GateTable | None = None
    scalar: int = 0
    offset: int = 0

    def run(self, op: VectorOpcode, x, y=None, shift: int = 0) -> list[int]:
        """One run's ``z`` beats as integers: a reduction's one beat, else each element."""
        if op is VectorOpcode.ARGMAX:
            return [argmax(x)]
        if op is VectorOpcode.ABSMAX:
            amax = absmax(x)
            self.scalar = quant_scalar(amax, self.bits)
            return [amax]
        if op is VectorOpcode.RMS:
            self.scalar = rms_scalar(x, self.bits)
            return [self.scalar & ((1 << (self.lanes * self.bits)) - 1)]
        if op is VectorOpcode.MEAN:
            self.offset = mean_offset(x)
            return [self.offset & ((1 << self.bits) - 1)]
        return elementwise(op, x, y, shift, self.bits, self.scalar, self.table, self.offset).ravel().tolist()


def reference(op: VectorOpcode, x, y, shift: int, bits: int, scalar: int = 0) -> list[Fraction]:
    """The element-wise op in exact rationals: ``clamp(w / 2**shift)``, no rounding."""
    lo, hi = limits(bits)
    scale = Fraction(1, 1 << shift)
    return [min(max(Fraction(w) * scale, Fraction(lo)), Fraction(hi)) for w in wide(op, x, y, scalar)]


def worst_error(op: VectorOpcode, x, y, shift: int, bits: int, scalar: int = 0) -> Fraction:
    """Largest ``|golden - reference|`` over the elements."""
    got = elementwise(op, x, y, shift, bits, scalar).ravel()
    return max(abs(Fraction(int(g)) - r) for g, r in zip(got, reference(op, x, y, shift, bits, scalar),
                                                       strict=True))


def quant_error(x, bits: int) -> Fraction:
    """Largest distance of the row's quantization from ``127 * x / absmax`` (a zero row: 0)."""
    amax = absmax(x)
    if amax == 0:
        return Fraction(0)
    got = elementwise(VectorOpcode.SCALE, x, None, int(quant_shift(bits)), bits, quant_scalar(amax, bits))
    return max(abs(int(g) - Fraction(QUANT_LEVELS * v, amax)) for g, v in zip(got.ravel(), _ints(x)))


def norm_error_excess(x, bits: int, shift: int) -> float:
    """The row's worst distance from the real normalization, less its bound ``1/2 + |x| / 2**shift``
    (negative: within the bound), in float64 from exact integers."""
    xs = _ints(x)
    got = elementwise(VectorOpcode.SCALE, x, None, shift, bits, rms_scalar(x, bits)).ravel()
    rms = math.sqrt(Fraction(sum(v * v + 1 for v in xs), len(xs)))
    lo, hi = limits(bits)
    worst = -np.inf
    for g, v in zip(got, xs):
        real = min(max(v * 2.0 ** (int(norm_shift(bits)) - shift) / float(rms), lo), hi)
        worst = max(worst, abs(int(g) - real) - (0.5 + abs(v) / 2.0 ** shift))
    return worst


def gate_bound(table: GateTable, op: VectorOpcode, shift: int) -> float:
    """The largest distance, in output units, of a gated op's result from the real
    ``x * gate(x / 2**frac) * 2**(bits - 1 - shift)`` (clamped to the lane), for every ``x``."""
    g, one, scale = GATES[op], table.one, 2.0 ** table.frac
    worst = 0.0
    for index, entry in zip(range(table.first, table.last + 1), table.entries(op), strict=True):
        a, b = table.segment(index)
        worst = max(worst, max(abs(a), abs(b)) * scale * max(abs(entry - one * g(a)), abs(entry - one * g(b))))
    lo, hi = limits(table.bits)
    if (lo >> table.drop) < table.first or (hi >> table.drop) > table.last:   # inputs beyond the table
        worst = max(worst, GATE_RANGE * scale * one * g(-GATE_RANGE))
    return 0.5 + worst / 2.0 ** shift


def gate_reference(table: GateTable, op: VectorOpcode, x, shift: int) -> np.ndarray:
    """``clamp(x * gate(x / 2**frac) * 2**(bits - 1 - shift))`` per element, in float64."""
    lo, hi = limits(table.bits)
    g = GATES[op]
    return np.array([min(max(v * g(v / 2.0 ** table.frac) * 2.0 ** (table.bits - 1 - shift), lo), hi)
                     for v in _ints(x)])
