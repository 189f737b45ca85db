"""Signed sums that stay on carry chains.

``total + sum_t (-1)^negate_t * value_t`` written the plain way (negations,
then one multi-operand add) is what Yosys merges into a ``$macc`` and lowers
to full adders in plain LUTs. Here every add is a two-operand adder whose
operands are concatenations, so no two merge, and each negation enters as a
carry-in: ``{x, 1} + {v ^ n, n}`` without its low bit is ``x + v`` for
``n = 0`` and ``x - v`` for ``n = 1`` (``~v + 1 = -v``), the XOR folding
into the LUT in front of each carry bit.
"""
from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Cat, Const, Module, Signal, signed


def _flipped(m: Module, value, negate, width: int):
    """``value`` at ``width`` bits, inverted where ``negate`` (a bit or the constant 0/1) is set."""
    negate = Const(negate, 1) if isinstance(negate, int) else negate
    wide = Signal(signed(width))
    m.d.comb += wide.eq(value)
    return (wide ^ negate.replicate(width))[:width].as_signed(), negate


def add_signed(m: Module, x, value, negate, width: int, carry=None):
    """``x + (-1)^negate * value (+ carry)`` on one ``width``-bit carry chain (signed result).

    ``carry`` is an extra one-bit addend, taken only when ``negate`` is the constant 0."""
    a = Signal(signed(width))
    m.d.comb += a.eq(x)
    flipped, negate = _flipped(m, value, negate, width)
    low = carry if carry is not None else negate
    return (Cat(Const(1, 1), a) + Cat(low, flipped))[1:width + 1].as_signed()


def signed_sum(m: Module, total, terms: Sequence[tuple[object, object]], width: int):
    """``total + sum_t (-1)^n_t * v_t`` for ``terms = [(v_t, n_t)]`` as a balanced tree of
    ``len(terms)`` carry-chain adders, each taking one pending negation as its carry-in
    (a pair of terms leaves one negation pending, the accumulator's adder takes the last)."""
    if not terms:
        return total
    nodes = []                          # (value, pending negations still to add as +1 each)
    for value, negate in terms:
        flipped, n = _flipped(m, value, negate, width)
        nodes.append((flipped, [n]))
    while len(nodes) > 1:
        paired = []
        for i in range(0, len(nodes) - 1, 2):
            (a, pa), (b, pb) = nodes[i], nodes[i + 1]
            pending = pa + pb
            paired.append((add_signed(m, a, b, 0, width, carry=pending[0]), pending[1:]))
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
    value, pending = nodes[0]
    assert len(pending) == 1, "one negation per adder"
    return add_signed(m, total, value, 0, width, carry=pending[0])
