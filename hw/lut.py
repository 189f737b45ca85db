"""Table-lookup building blocks of the LUT-based mpGEMM engine.

A table holds, for one activation group ``a[0..g-1]``, every signed
combination ``sum_t coef[e][t] * a[t]`` a weight code can ask for; a lookup
unit turns one column's weight codes into a weighted sum of table entries.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from amaranth.hdl import Module, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape


def _sum_bits(a_bits: int, terms: int) -> int:
    """Signed width of a sum of ``terms`` signed ``a_bits`` values."""
    return (terms * (1 << (a_bits - 1))).bit_length() + 1


def entry_range_bits(coefs: Sequence[int], a_bits: int) -> int:
    """Signed width that holds ``sum_t coefs[t] * a[t]`` for every signed ``a_bits`` input."""
    lo_a, hi_a = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    hi = sum(c * (hi_a if c > 0 else lo_a) for c in coefs)
    lo = sum(c * (lo_a if c > 0 else hi_a) for c in coefs)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


@dataclass(frozen=True)
class TableOp:
    """One adder of a table build: ``node = left + sign * (right << shift)``; ``left`` and
    ``right`` are coefficient vectors of nodes built before (or of one activation, a wire);
    ``left`` is ``None`` for a negation."""
    node: tuple[int, ...]
    left: tuple[int, ...] | None
    right: tuple[int, ...]
    sign: int
    shift: int


def _unit(g: int, t: int, c: int = 1) -> tuple[int, ...]:
    return tuple(c if i == t else 0 for i in range(g))


@lru_cache(maxsize=None)
def table_ops(coefficients: tuple[tuple[int, ...], ...]) -> tuple[TableOp, ...]:
    """The adders that build every entry, fewest first: each entry with two or more terms is
    one add or subtract from a node already built, where one exists: an entry one term away
    (``e' +- a_t``), or one doubled term away (``e' +- 2 a_t``, which makes a {-1,+1} table one
    adder per entry, Gray-code order), or the sum or difference of two built entries. Only an
    entry with no such pair is built as its first term added to the node of the others. A
    lone negative term is a negation. The cost model counts ``len(table_ops(...))``."""
    g = len(coefficients[0])
    built: dict[tuple[int, ...], None] = {_unit(g, t): None for t in range(g)}   # wires
    ops: list[TableOp] = []

    def one_op(v):
        for u in built:
            d = tuple(x - y for x, y in zip(v, u))
            nz = [(t, c) for t, c in enumerate(d) if c]
            if len(nz) == 1 and abs(nz[0][1]) in (1, 2):
                t, c = nz[0]
                return TableOp(v, u, _unit(g, t), 1 if c > 0 else -1, abs(c) - 1)
            if d in built:
                return TableOp(v, u, d, 1, 0)
            neg = tuple(-x for x in d)
            if neg in built:
                return TableOp(v, u, neg, -1, 0)
        return None

    def ensure(v):
        if v in built or not any(v):
            return
        nz = [t for t, c in enumerate(v) if c]
        if len(nz) == 1:                                  # a lone term: a negation
            op = TableOp(v, None, _unit(g, nz[0]), -1, 0)
        else:
            op = one_op(v)
            if op is None:                                # through its leading terms
                head = tuple(0 if t == nz[0] else c for t, c in enumerate(v))
                ensure(head)
                op = TableOp(v, head, _unit(g, nz[0]), v[nz[0]], 0)
        ops.append(op)
        built[v] = None

    # fewest terms first (then fewest negative ones), so every entry's neighbours one term
    # away are there before it and a chain starts from an all-positive entry
    for row in sorted(dict.fromkeys(coefficients), key=lambda r: (sum(map(abs, r)), sum(c < 0 for c in r), r)):
        ensure(row)
    return tuple(ops)


class TableBuilder(wiring.Component):
    """Computes the entries ``table[e] = sum_t coefficients[e][t] * a[t]`` (coefficients in -1..1)
    with the adders of :func:`table_ops`, each exactly as wide as the node it makes."""

    def __init__(self, coefficients: Sequence[Sequence[int]], a_bits: int, entry_shape: Shape):
        self._coefficients = tuple(tuple(int(c) for c in row) for row in coefficients)
        self._a_bits = a_bits
        self.ops = table_ops(self._coefficients)
        self.adders = len(self.ops)
        g = len(self._coefficients[0])
        super().__init__({
            "a": In(data.ArrayLayout(signed(a_bits), g)),
            "table": Out(data.ArrayLayout(entry_shape, len(self._coefficients))),
        })

    def elaborate(self, platform):
        m = Module()
        g = len(self._coefficients[0])
        nodes: dict[tuple[int, ...], object] = {_unit(g, t): self.a[t] for t in range(g)}
        for i, op in enumerate(self.ops):
            node = Signal(signed(entry_range_bits(op.node, self._a_bits)), name=f"t{i}")
            right = nodes[op.right] << op.shift if op.shift else nodes[op.right]
            if op.left is None:
                m.d.comb += node.eq(-right)
            else:
                m.d.comb += node.eq(nodes[op.left] + right if op.sign > 0 else nodes[op.left] - right)
            nodes[op.node] = node
        for e, row in enumerate(self._coefficients):
            m.d.comb += self.table[e].eq(nodes.get(row, 0) if any(row) else 0)
        return m


class NaiveTableBuilder(TableBuilder):
    """The reference :class:`TableBuilder` is measured against (``bench/table_build.py``): every
    entry written as the plain signed sum of its terms, nothing shared, as a simple generator
    would write it; synthesis may share what it finds."""

    def __init__(self, coefficients: Sequence[Sequence[int]], a_bits: int, entry_shape: Shape):
        super().__init__(coefficients, a_bits, entry_shape)
        self.adders = sum(max(sum(1 for c in row if c) - 1, 0) + (next((c for c in row if c), 1) < 0)
                          for row in self._coefficients)

    def elaborate(self, platform):
        m = Module()
        for e, row in enumerate(self._coefficients):
            total = 0
            for t, c in enumerate(row):
                if c:
                    total = total + self.a[t] if c > 0 else total - self.a[t]
            m.d.comb += self.table[e].eq(total)
        return m


class LutDotUnit(wiring.Component):
    """One output element's share of a w_stream beat: ``slots`` table lookups.

    ``code`` holds ``slots`` fields of ``code_bits``; with ``symmetric`` the
    top bit of a field negates the entry its low bits select (half tables).
    ``plane_weights[pass][slot]`` is the signed power of two (or 0 for an
    unused slot) that slot's lookup carries in that pass; ``pass_index``
    picks the pass, so bit-serial designs need no barrel shifter. Each slot
    leaves as a term ``(value, negate)``: the shifted entry and whether to
    subtract it, which the accumulator's adder takes as its carry-in
    (:func:`hw.adders.signed_sum`), so no negation costs an adder here.
    """

    def __init__(self, table_layout: data.ArrayLayout, code_bits: int, symmetric: bool,
                 plane_weights: Sequence[Sequence[int]], value_shape: Shape):
        self._code_bits = code_bits
        self._symmetric = symmetric
        self._weights = tuple(tuple(row) for row in plane_weights)
        slots = len(self._weights[0])
        super().__init__({
            "table": In(table_layout),
            "code": In(code_bits * slots),
            "pass_index": In(index_shape(len(self._weights))),
            "terms": Out(data.ArrayLayout(data.StructLayout({"value": value_shape, "negate": 1}), slots)),
        })

    def elaborate(self, platform):
        m = Module()
        cb = self._code_bits
        index_bits = cb - 1 if self._symmetric else cb
        for slot in range(len(self._weights[0])):
            field = self.code[slot * cb:(slot + 1) * cb]
            entry = self.table[field[:index_bits]] if index_bits else self.table[0]
            sign = field[cb - 1] if self._symmetric else 0
            term = self.terms[slot]

            def weighted(w):
                if not w:
                    return [term.value.eq(0), term.negate.eq(0)]
                return [term.value.eq(entry << (abs(w).bit_length() - 1)), term.negate.eq(sign ^ int(w < 0))]

            if len(self._weights) == 1:
                m.d.comb += weighted(self._weights[0][slot])
            else:
                with m.Switch(self.pass_index):
                    for p, weights in enumerate(self._weights):
                        with m.Case(p):
                            m.d.comb += weighted(weights[slot])
        return m
