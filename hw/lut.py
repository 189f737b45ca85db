"""Table-lookup building blocks of the LUT-based mpGEMM engine.

A table holds, for one activation group ``a[0..g-1]``, every signed
combination ``sum_t coef[e][t] * a[t]`` a weight code can ask for; a lookup
unit turns one column's weight codes into a weighted sum of table entries.
"""
from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape


def _sum_bits(a_bits: int, terms: int) -> int:
    """Signed width of a sum of ``terms`` signed ``a_bits`` values."""
    return (terms * (1 << (a_bits - 1))).bit_length() + 1


def shared_adders(coefficients: Sequence[Sequence[int]]) -> frozenset[tuple[int, ...]]:
    """The adders :class:`TableBuilder` builds: one per distinct leading run of an entry's
    coefficients that adds a term to a non-zero partial sum (a run ending in 0 reuses the
    shorter run's sum; a lone term is a wire or a negation). The cost model counts these."""
    return frozenset(row[:t] for row in (tuple(r) for r in coefficients) for t in range(2, len(row) + 1)
                     if row[t - 1] != 0 and any(row[:t - 1]))


class TableBuilder(wiring.Component):
    """Computes the entries ``table[e] = sum_t coefficients[e][t] * a[t]`` (coefficients in -1..1).

    Entries that share a leading run of coefficients share its partial sum,
    so a full {0,1} or {-1,+1} table costs about one adder per entry (the
    incremental build of the notes), not ``g - 1``.
    """

    def __init__(self, coefficients: Sequence[Sequence[int]], a_bits: int, entry_shape: Shape):
        self._coefficients = tuple(tuple(int(c) for c in row) for row in coefficients)
        self._a_bits = a_bits
        self.adders = len(shared_adders(self._coefficients))
        g = len(self._coefficients[0])
        super().__init__({
            "a": In(data.ArrayLayout(signed(a_bits), g)),
            "table": Out(data.ArrayLayout(entry_shape, len(self._coefficients))),
        })

    def elaborate(self, platform):
        m = Module()
        partial: dict[tuple[int, ...], object] = {}

        def prefix(coefs: tuple[int, ...]):
            """The partial sum for ``coefs`` (a leading slice of an entry's coefficients)."""
            if not coefs or not any(coefs):
                return 0
            if coefs in partial:
                return partial[coefs]
            before = prefix(coefs[:-1])
            t, c = len(coefs) - 1, coefs[-1]
            if c == 0:
                value = before
            else:
                term = self.a[t] if c > 0 else -self.a[t]
                node = Signal(signed(_sum_bits(self._a_bits, len(coefs))), name=f"p{len(partial)}")
                m.d.comb += node.eq(term if isinstance(before, int) else before + term)
                value = node
            partial[coefs] = value
            return value

        for e, row in enumerate(self._coefficients):
            m.d.comb += self.table[e].eq(prefix(row))
        return m


class LutDotUnit(wiring.Component):
    """One output element's share of a w_stream beat: ``slots`` table lookups, weighted.

    ``code`` holds ``slots`` fields of ``code_bits``; with ``symmetric`` the
    top bit of a field negates the entry its low bits select (half tables).
    ``plane_weights[pass][slot]`` is the signed power of two (or 0 for an
    unused slot) that slot's lookup carries in that pass; ``pass_index``
    picks the pass, so bit-serial designs need no barrel shifter.
    """

    def __init__(self, table_layout: data.ArrayLayout, code_bits: int, symmetric: bool,
                 plane_weights: Sequence[Sequence[int]], out_shape: Shape):
        self._code_bits = code_bits
        self._symmetric = symmetric
        self._weights = tuple(tuple(row) for row in plane_weights)
        slots = len(self._weights[0])
        super().__init__({
            "table": In(table_layout),
            "code": In(code_bits * slots),
            "pass_index": In(index_shape(len(self._weights))),
            "out": Out(out_shape),
        })

    def elaborate(self, platform):
        m = Module()
        cb = self._code_bits
        index_bits = cb - 1 if self._symmetric else cb
        entries = []
        for slot in range(len(self._weights[0])):
            field = self.code[slot * cb:(slot + 1) * cb]
            entry = self.table[field[:index_bits]] if index_bits else self.table[0]
            if self._symmetric:
                value = Signal(signed(len(entry) + 1), name=f"v{slot}")
                m.d.comb += value.eq(Mux(field[cb - 1], -entry, entry))
                entry = value
            entries.append(entry)

        def weighted_sum(weights):
            total = 0
            for entry, w in zip(entries, weights, strict=True):
                if w:
                    term = entry << (abs(w).bit_length() - 1)
                    total = total + term if w > 0 else total - term
            return total

        if len(self._weights) == 1:
            m.d.comb += self.out.eq(weighted_sum(self._weights[0]))
        else:
            with m.Switch(self.pass_index):
                for p, weights in enumerate(self._weights):
                    with m.Case(p):
                        m.d.comb += self.out.eq(weighted_sum(weights))
        return m


def shift_add_product(small, value):
    """``small * value`` for a few-bit unsigned ``small``, as shifted adds.

    Written out so synthesis keeps these narrow products (zero-point
    corrections, one per column) in fabric instead of spending a hard
    multiplier on each.
    """
    total = 0
    for bit in range(len(small)):
        total = total + Mux(small[bit], value << bit, 0)
    return total
