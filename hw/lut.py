"""Table-lookup building blocks of the LUT-based mpGEMM engine.

A table holds, for one activation group ``a[0..g-1]``, every signed
combination ``sum_t coef[e][t] * a[t]`` a weight code can ask for; a lookup
unit turns one column's weight codes into a weighted sum of table entries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape
from hw.adders import add_signed


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


@dataclass(frozen=True)
class FillStep:
    """One cycle of a serial table fill: ``acc += delta * a[term]`` (``delta`` in -2..2), then
    the new ``acc`` is written at ``address``; ``None`` is a step toward the first entry."""
    term: int
    delta: int
    address: int | None


def _gray(values: Sequence[Sequence[int]], start: Sequence[int]) -> list[tuple[int, ...]]:
    """Every point of ``values[0] x values[1] x ...`` from ``start``, one coordinate changing per
    step (reflected mixed-radix Gray code, coordinate 0 fastest, each list rotated to begin at
    ``start``)."""
    lists = [list(v[v.index(s):]) + list(v[:v.index(s)]) for v, s in zip(values, start, strict=True)]
    if not lists:
        return [()]
    inner = _gray(values[1:], start[1:])
    out = []
    for k, rest in enumerate(inner):
        for x in (lists[0] if k % 2 == 0 else lists[0][::-1]):
            out.append((x, *rest))
    return out


def _fill_walk(coefficients: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    """The entries in an order where neighbours differ in one coefficient (any change of a
    coefficient in -1..1 is one step of +-1 or +-2 activations)."""
    rows = set(coefficients)
    g = len(coefficients[0])
    zero = (0,) * g
    values = [sorted({row[t] for row in rows}) for t in range(g)]
    if len(rows) == math.prod(map(len, values)):               # a whole product: {0,1}, {-1,+1} half, ternary
        start = zero if zero in rows else tuple(v[0] for v in values)
        return _gray(values, start)
    # a ternary half table: zero, then for t = 0..g-1 the entries whose top nonzero coefficient
    # is c_t = +1, reached by setting c_t and walking c_0..c_{t-1} from where the walk stands
    walk, here = [zero], list(zero)
    for t in range(g):
        here[t] = 1
        lower = _gray([[-1, 0, 1]] * t, here[:t])
        walk += [(*low, *here[t:]) for low in lower]
        here[:t] = walk[-1][:t]
    return walk


@lru_cache(maxsize=None)
def fill_schedule(coefficients: tuple[tuple[int, ...], ...]) -> tuple[FillStep, ...]:
    """The steps that fill a table one entry per cycle with one adder: from zero to the first
    entry of the walk (steps not written, one fewer than its nonzero coefficients, when no entry
    is zero: the {-1,+1} half tables), then the walk, each step one term of +-1 or +-2 activations."""
    address = {row: e for e, row in enumerate(coefficients)}
    walk = _fill_walk(coefficients)
    assert sorted(walk) == sorted(coefficients), "the walk visits every entry once"
    steps: list[FillStep] = []
    here = [0] * len(walk[0])
    for t, c in enumerate(walk[0]):
        if c and any(walk[0][t + 1:]):                    # toward the first entry, not written
            steps.append(FillStep(t, c, None))
            here[t] = c
    for row in walk:
        diff = [(t, c - h) for t, (c, h) in enumerate(zip(row, here)) if c != h]
        assert len(diff) <= 1, "one term changes per step"
        t, d = diff[0] if diff else (0, 0)
        steps.append(FillStep(t, d, address[row]))
        here = list(row)
    return tuple(steps)


class SerialTableFill(wiring.Component):
    """Writes the table ``sum_t coefficients[e][t] * a[t]`` into a memory one entry per cycle with
    one adder (:func:`fill_schedule`), for tables kept in distributed RAM, which has one write
    port. ``start`` samples ``a``; the next ``len(fill_schedule(...))`` cycles drive the write
    port (``busy`` high); a ``start`` in the last of them begins the next fill, one earlier is
    ignored."""

    def __init__(self, coefficients: Sequence[Sequence[int]], a_bits: int, entry_shape: Shape):
        self._coefficients = tuple(tuple(int(c) for c in row) for row in coefficients)
        rows = self._coefficients
        if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows) or len(set(rows)) != len(rows) \
                or any(c not in (-1, 0, 1) for r in rows for c in r):
            raise ValueError("coefficients must be distinct, equally long, non-empty rows of -1, 0 and 1")
        self.schedule = fill_schedule(self._coefficients)
        g = len(self._coefficients[0])
        super().__init__({
            "a": In(data.ArrayLayout(signed(a_bits), g)),
            "start": In(1),
            "busy": Out(1),
            "we": Out(1),
            "waddr": Out(index_shape(len(self._coefficients))),
            "wdata": Out(entry_shape),
        })

    @property
    def cycles(self) -> int:
        return len(self.schedule)

    def elaborate(self, platform):
        m = Module()
        held = Signal.like(self.a)
        step = Signal(index_shape(self.cycles))
        acc = Signal.like(self.wdata)
        term = Signal(index_shape(len(self.a)))
        delta = Signal(signed(3))
        write = Signal()
        with m.Switch(step):
            for i, s in enumerate(self.schedule):
                with m.Case(i):
                    m.d.comb += [term.eq(s.term), delta.eq(s.delta), write.eq(s.address is not None)]
                    if s.address is not None:
                        m.d.comb += self.waddr.eq(s.address)
        operand = Signal.like(self.wdata)                    # |delta| * a[term], or 0
        m.d.comb += operand.eq(Mux(delta == 0, 0, Mux((delta == 2) | (delta == -2), held[term] << 1, held[term])))
        width = len(self.wdata)
        m.d.comb += self.wdata.eq(add_signed(m, Mux(step == 0, 0, acc), operand, delta[-1], width))
        m.d.comb += self.we.eq(self.busy & write)
        with m.If(self.busy):
            m.d.sync += [acc.eq(self.wdata), step.eq(step + 1)]
            with m.If(step == self.cycles - 1):
                m.d.sync += [self.busy.eq(0), step.eq(0)]
        with m.If(self.start & (~self.busy | (step == self.cycles - 1))):
            m.d.sync += [held.eq(self.a), self.busy.eq(1), step.eq(0)]
        return m


class _LookupTerms(wiring.Component):
    """What both lookup units share: ``slots`` code fields in, one term per slot out."""

    def __init__(self, code_bits: int, symmetric: bool, plane_weights: Sequence[Sequence[int]],
                 value_shape: Shape, *, before: dict | None = None, after: dict | None = None):
        self._code_bits = code_bits
        self._symmetric = symmetric
        self._weights = tuple(tuple(row) for row in plane_weights)
        slots = len(self._weights[0])
        super().__init__({                  # the ports' order is the Verilog's (cached results key on it)
            **(before or {}),
            "code": In(code_bits * slots),
            "pass_index": In(index_shape(len(self._weights))),
            **(after or {}),
            "terms": Out(data.ArrayLayout(data.StructLayout({"value": value_shape, "negate": 1}), slots)),
        })

    def _slots(self):
        """Per slot: its index into the table (``None`` for a one-entry table) and its sign."""
        cb = self._code_bits
        index_bits = cb - 1 if self._symmetric else cb
        for slot in range(len(self._weights[0])):
            field = self.code[slot * cb:(slot + 1) * cb]
            yield slot, (field[:index_bits] if index_bits else None), (field[cb - 1] if self._symmetric else 0)

    def _weigh(self, m: Module, slot: int, entry, sign) -> None:
        """Drive the slot's term from its looked-up ``entry`` and sign: shifted to the plane the
        pass gives the slot, negated for a negative plane weight or a set sign."""
        term = self.terms[slot]

        def weighted(w):
            if not w:
                return [term.value.eq(0), term.negate.eq(0)]
            return [term.value.eq(entry << (abs(w).bit_length() - 1)), term.negate.eq(sign ^ int(w < 0))]

        if len(self._weights) == 1:
            m.d.comb += weighted(self._weights[0][slot])
        else:
            with m.Switch(self.pass_index):
                for p, row in enumerate(self._weights):
                    with m.Case(p):
                        m.d.comb += weighted(row[slot])


class LutDotUnit(_LookupTerms):
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
        super().__init__(code_bits, symmetric, plane_weights, value_shape, before={"table": In(table_layout)})

    def elaborate(self, platform):
        m = Module()
        for slot, index, sign in self._slots():
            entry = self.table[index] if index is not None else self.table[0]
            self._weigh(m, slot, entry, sign)
        return m


class RamLookupUnit(_LookupTerms):
    """:class:`LutDotUnit` for a table kept in distributed RAM: each slot's entry index leaves on
    ``index`` for a read port of its own, and the entry read back (``entry``) is weighed the same
    way; the RAM's read port is the multiplexer."""

    def __init__(self, entries: int, entry_shape: Shape, code_bits: int, symmetric: bool,
                 plane_weights: Sequence[Sequence[int]], value_shape: Shape):
        slots = len(plane_weights[0])
        super().__init__(code_bits, symmetric, plane_weights, value_shape,
                         after={"index": Out(data.ArrayLayout(index_shape(entries), slots)),
                                "entry": In(data.ArrayLayout(entry_shape, slots))})

    def elaborate(self, platform):
        m = Module()
        for slot, index, sign in self._slots():
            if index is not None:
                m.d.comb += self.index[slot].eq(index)
            self._weigh(m, slot, self.entry[slot], sign)
        return m
