"""LUT-based mixed-precision GEMM engine: table lookups instead of multiplications.

Per activation group of ``g`` elements a table of signed sums of those
activations is built once and shared by all ``n_tile`` weight columns; each
weight column then indexes it with ``g`` bits of one bit-plane (or one
base-3 code for ternary weights). The arithmetic is that of
``../shared/notes/lut_mpgemm.md`` section 1:

* {0,1} tables (``symmetric=false``): ``T[idx] = sum_t bit_t(idx) a_t``,
  ``2^g`` entries; plane ``i`` weighs ``2^i`` (``-2^(b-1)`` for the MSB of
  ``int`` weights). ``uint`` subtracts ``z * rowsum(A)`` at the output.
* {-1,+1} half tables (``symmetric=true``): ``H[u] = a_0 + sum_{t>=1} (2 bit_{t-1}(u) - 1) a_t``,
  ``2^(g-1)`` entries plus a sign; the accumulator holds
  ``sum_i 2^i sum_j T+-`` and the output is ``(acc + c * rowsum) / 2``
  (exact) with ``c = 2^b - 1 - 2z`` (``uint``) or ``-1`` (``int``).
* ternary base-3 tables: ``T[idx] = sum_t (digit_t(idx) - 1) a_t``, ``3^g``
  entries, or with ``symmetric`` the ``(3^g + 1)/2`` entries
  ``H[u] = T[c + u]`` (``c = (3^g - 1)/2``, ``H[0] = 0``) plus a sign.

An a_stream beat carries ``k_groups`` groups per row (``group = k_groups *
g`` activations), each with its own table; every column looks all of them
up in the same cycle (K-parallelism, as the MAC baseline's ``k_lanes``).

Weight stream layout (:func:`pack_weights`): per a_stream beat, ``passes``
beats; lane ``j`` of a beat holds ``k_groups * planes_per_cycle`` fields of
``code_bits``, field ``q * planes_per_cycle + s`` of pass ``p`` = group
``q``'s plane ``p * planes_per_cycle + s`` (plane 0 = LSB; fields past the
last plane are zero). A binary field is the ``g``
bits of that plane (bit ``t`` from element ``t``); a symmetric field is
``sign << (g-1) | u`` with the sign set when element 0's bit is 0 and
``u`` the upper ``g-1`` bits, complemented when the sign is set (LUT
Tensor Core's offline weight reinterpretation). A ternary field is
``idx = sum_t (w_t + 1) 3^t``, symmetric: ``sign << (code_bits-1) | |idx - c|``
with the sign set when ``idx < c``.

``column_steps`` holds each w_stream beat that many cycles, its columns served ``n_tile /
column_steps`` at a time (the fetchers per table); ``table_store=lutram`` keeps each table in
distributed RAM, two banks of one memory, filled one entry per cycle by
:class:`hw.lut.SerialTableFill` while the other bank is read, one read port per fetcher and
slot. Neither changes the streams (see :mod:`generators.mpgemm` for the cycles).

With ``table_source=external`` the a_stream carries the tables themselves
(per beat, row and group, the ``entries`` values of ``entry_bits``, as
:func:`pack_tables` builds them from A): the operator-fusion variant of
LUT Tensor Core, where the precompute runs elsewhere. K past the last whole
group is zero-padded by the packers; zero activations make every entry of
the padded elements' share zero, so any weight code there adds nothing.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory

from generators.lanes import pack_lanes
from generators.mpgemm import (INT_CODE, TERNARY_CODE, UINT_CODE, MpGemmEngine, MpGemmParams,
                               WeightFormat, check_weights, pack_activations, padded_groups,
                               padded_weights)
from generators.params import Rule, bool_field, choice_field, int_field
from generators.widths import signed_bits
from hw.adders import add_signed, signed_sum
from hw.lut import LutDotUnit, RamLookupUnit, SerialTableFill, TableBuilder

__all__ = ["LutMpGemmParams", "LutMpGemmEngine", "TableSource", "TableStore", "build", "pack_a", "pack_weights",
           "pack_tables", "table_coefficients"]


class TableSource(enum.Enum):
    ONCHIP = "onchip"         # a precompute unit builds the tables from streamed activations
    EXTERNAL = "external"     # tables arrive precomputed on the a_stream


class TableStore(enum.Enum):
    REGISTERS = "registers"   # flip-flops, built in one cycle, a multiplexer per lookup
    LUTRAM = "lutram"         # distributed RAM, two banks, filled one entry per cycle, a read port per lookup


# ---------------------------------------------------------------------- closed forms (vectorised)
def planes(fmt, w_bits):
    """Weight bit-planes a group is looked up in: ``w_bits``, or 1 base-3 code for ternary."""
    return np.where(np.asarray(fmt) == TERNARY_CODE, 1, np.asarray(w_bits))


def stored_entries(fmt, g, symmetric):
    """Table entries per activation row: 2^g, 2^(g-1), 3^g or (3^g + 1)/2."""
    g = np.asarray(g, dtype=np.int64)
    ternary = np.asarray(fmt) == TERNARY_CODE
    binary = np.where(symmetric, 1 << np.maximum(g - 1, 0), 1 << g)
    three = 3 ** g
    return np.where(ternary, np.where(symmetric, (three + 1) // 2, three), binary)


def code_bits(fmt, g, symmetric):
    """Bits of one lookup field in a weight lane."""
    g = np.asarray(g, dtype=np.int64)
    ternary = np.asarray(fmt) == TERNARY_CODE
    sym = np.asarray(symmetric, dtype=bool)
    three = 3 ** g
    half_bits = np.maximum(np.ceil(np.log2(np.maximum((three + 1) // 2, 2))), 1).astype(np.int64)
    full_bits = np.ceil(np.log2(three)).astype(np.int64)
    return np.where(ternary, np.where(sym, 1 + half_bits, full_bits), g)


def fill_cycles(fmt, g, symmetric):
    """Cycles :class:`hw.lut.SerialTableFill` takes per table: one per entry, and for a {-1,+1}
    half table (no zero entry) ``g - 1`` more to reach its first."""
    g = np.asarray(g, dtype=np.int64)
    pm_one = (np.asarray(fmt) != TERNARY_CODE) & np.asarray(symmetric, dtype=bool)
    return stored_entries(fmt, g, symmetric) + np.where(pm_one, np.maximum(g - 1, 0), 0)


def entry_bits(a_bits, g):
    """Signed width of a table entry: any signed sum of ``g`` activations."""
    return signed_bits(np.asarray(g, dtype=np.int64) << (np.asarray(a_bits, dtype=np.int64) - 1))


def acc_bits(a_bits, w_bits, fmt, k_max):
    """Accumulator width: ``sum_i 2^i sum_j T`` over ``k_max`` activations never overflows."""
    k = np.asarray(k_max, dtype=np.int64)
    a = np.asarray(a_bits, dtype=np.int64)
    w = np.asarray(w_bits, dtype=np.int64)
    binary = signed_bits(k * (1 << (a - 1)) * ((1 << w) - 1))
    return np.where(np.asarray(fmt) == TERNARY_CODE, signed_bits(k * (1 << (a - 1))), binary)


def keeps_rowsum(fmt, symmetric):
    """The output needs ``rowsum(A)``: zero points, or halving symmetric int weights."""
    fmt = np.asarray(fmt)
    return (fmt == UINT_CODE) | ((fmt == INT_CODE) & np.asarray(symmetric, dtype=bool))


@lru_cache(maxsize=None)
def table_coefficients(ternary: bool, symmetric: bool, g: int) -> tuple[tuple[int, ...], ...]:
    """Entry ``e`` of a table is ``sum_t coef[e][t] * a_t`` (the host and the RTL share this)."""
    if ternary:
        c = (3 ** g - 1) // 2
        indices = range(c, 3 ** g) if symmetric else range(3 ** g)
        return tuple(tuple((idx // 3 ** t) % 3 - 1 for t in range(g)) for idx in indices)
    if symmetric:
        return tuple((1,) + tuple(2 * ((u >> (t - 1)) & 1) - 1 for t in range(1, g))
                     for u in range(1 << (g - 1)))
    return tuple(tuple((idx >> t) & 1 for t in range(g)) for idx in range(1 << g))


@dataclass(frozen=True, kw_only=True)
class LutMpGemmParams(MpGemmParams):
    """Parameters of the LUT-based engine (see the module docstring for the arithmetic)."""

    family: ClassVar[str] = "lut_mpgemm"

    g: int = int_field(4, 1, 5, doc="activations per table (K group); the table has 2^g entries, "
                                    "half with symmetric, 3^g for ternary")
    symmetric: bool = bool_field(True, doc="half tables plus a sign select (T[~idx] = -T[idx])")
    planes_per_cycle: int = int_field(1, 1, 4, doc="bit-planes looked up per cycle: 1 = bit-serial, "
                                                   "w_bits = bit-parallel (1 for ternary)")
    k_groups: int = int_field(1, 1, 8, doc="activation groups per a_stream beat, each its own table "
                                           "that every column reads in the same cycle (K-parallelism)")
    table_source: TableSource = choice_field(
        TableSource.ONCHIP, doc="onchip = tables built from streamed activations, "
                                "external = precomputed tables streamed in (operator fusion)")
    column_steps: int = int_field(1, 1, 64, log=True, late=True,
                                  doc="cycles each weight beat is held: its n_tile columns are looked up "
                                      "n_tile / column_steps at a time (the fetchers per table)")
    table_store: TableStore = choice_field(
        TableStore.REGISTERS, late=True,
        doc="registers = flip-flops built in one cycle, a multiplexer per lookup; lutram = "
            "distributed RAM in two banks, one filled an entry per cycle while the other is read")

    rules: ClassVar[tuple[Rule, ...]] = MpGemmParams.rules + (
        Rule("planes_per_cycle", ("weight_format", "w_bits"),
             lambda c: np.asarray(c["planes_per_cycle"]) <= planes(c["weight_format"], c["w_bits"]),
             lambda v: f"an integer in 1..{1 if v['weight_format'] == 'ternary' else v['w_bits']} "
                       f"(the weight's bit-planes)"),
        Rule("column_steps", ("n_tile",),
             lambda c: np.asarray(c["n_tile"]) % np.asarray(c["column_steps"]) == 0,
             "a divisor of n_tile ({n_tile})"),
        Rule("table_store", ("table_source",),
             lambda c: (np.asarray(c["table_store"]) == 0) | (np.asarray(c["table_source"]) == 0),
             "'registers' when table_source is 'external' (a whole table arrives per beat)"),)

    @property
    def ternary(self) -> bool:
        return self.weight_format is WeightFormat.TERNARY

    @property
    def planes(self) -> int:
        return 1 if self.ternary else self.w_bits

    @property
    def group(self) -> int:
        return self.g * self.k_groups

    @property
    def passes(self) -> int:
        return -(-self.planes // self.planes_per_cycle)

    @property
    def fetchers(self) -> int:
        """Lookups of each table per slot and cycle: the columns served at once."""
        return self.n_tile // self.column_steps

    @property
    def beat_cycles(self) -> int:
        return self.column_steps

    @property
    def lutram(self) -> bool:
        return self.table_store is TableStore.LUTRAM

    @property
    def fill_cycles(self) -> int:
        """Cycles a table takes to fill (0: registers, built in the cycle it loads)."""
        return int(fill_cycles(self.fmt_code, self.g, self.symmetric)) if self.lutram else 0

    @property
    def entries(self) -> int:
        return int(stored_entries(self.fmt_code, self.g, self.symmetric))

    @property
    def code_bits(self) -> int:
        return int(code_bits(self.fmt_code, self.g, self.symmetric))

    @property
    def entry_bits(self) -> int:
        return int(entry_bits(self.a_bits, self.g))

    @property
    def acc_bits(self) -> int:
        return int(acc_bits(self.a_bits, self.w_bits, self.fmt_code, self.k_max))

    @property
    def keeps_rowsum(self) -> bool:
        return bool(keeps_rowsum(self.fmt_code, self.symmetric))

    def plane_weights(self) -> list[list[int]]:
        """``[pass][slot]``: the signed power of two a lookup carries (0 = unused slot)."""
        out = []
        for p in range(self.passes):
            row = []
            for s in range(self.planes_per_cycle):
                plane = p * self.planes_per_cycle + s
                if plane >= self.planes:
                    row.append(0)
                elif self.weight_format is WeightFormat.INT and plane == self.w_bits - 1:
                    row.append(-(1 << plane))
                else:
                    row.append(1 << plane)
            out.append(row)
        return out


class LutMpGemmEngine(MpGemmEngine):
    """Table precompute (or external tables), ``m_tile x n_tile`` lookup units, shared frame.

    The operand register holds ``m_tile x k_groups`` tables (table ``i * k_groups + q`` is row
    ``i``'s group ``q``); every column reads each of its row's tables once per slot and cycle."""

    def __init__(self, params: LutMpGemmParams):
        p = params
        self._table_layout = data.ArrayLayout(signed(p.entry_bits), p.entries)
        operand = data.ArrayLayout(self._table_layout, p.m_tile * p.k_groups)
        if p.table_source is TableSource.ONCHIP:
            a_payload = data.ArrayLayout(data.ArrayLayout(signed(p.a_bits), p.group), p.m_tile)
        else:
            a_payload = operand
        super().__init__(p, operand, a_payload, p.k_groups * p.planes_per_cycle * p.code_bits, p.acc_bits,
                         rowsum=p.keeps_rowsum, tile_zero_point=p.has_zero_point)
        self._memories: list = []

    def _name(self, base: str, q: int) -> str:
        return base if self.params.k_groups == 1 else f"{base}_{q}"

    def operand(self, m: Module, payload):
        p = self.params
        if p.table_source is TableSource.EXTERNAL:
            return payload
        tables = Signal(self._operand_layout)
        coefficients = table_coefficients(p.ternary, p.symmetric, p.g)
        for i in range(p.m_tile):
            for q in range(p.k_groups):
                builder = TableBuilder(coefficients, p.a_bits, signed(p.entry_bits))
                m.submodules[self._name(f"table{i}", q)] = builder
                m.d.comb += [builder.a.eq(payload[i].as_value()[q * p.g * p.a_bits:(q + 1) * p.g * p.a_bits]),
                             tables[i * p.k_groups + q].eq(builder.table)]
        return tables

    def fill(self, m: Module, payload, start, bank):
        """Per table a :class:`hw.lut.SerialTableFill` writing its bank of a two-bank distributed
        RAM (address ``entry * 2 + bank``, so no adder); a row's activation sum is its tables'
        all-ones entry, added as it is written."""
        p = self.params
        coefficients = table_coefficients(p.ternary, p.symmetric, p.g)
        self._memories = []
        growth = []
        for i in range(p.m_tile):
            row = 0
            for q in range(p.k_groups):
                builder = SerialTableFill(coefficients, p.a_bits, signed(p.entry_bits))
                assert builder.cycles == p.fill_cycles, "the frame counts the fill's cycles"
                memory = Memory(shape=signed(p.entry_bits), depth=2 * p.entries, init=[],
                                attrs={"ram_style": "distributed"})    # LUT RAM, never logic
                m.submodules[self._name(f"fill{i}", q)] = builder
                m.submodules[self._name(f"table{i}", q)] = memory
                write = memory.write_port()
                m.d.comb += [builder.a.eq(payload[i].as_value()[q * p.g * p.a_bits:(q + 1) * p.g * p.a_bits]),
                             builder.start.eq(start),
                             write.addr.eq(Cat(bank, builder.waddr)), write.data.eq(builder.wdata),
                             write.en.eq(builder.we)]
                self._memories.append(memory)
                if p.keeps_rowsum:
                    row = row + Mux(builder.we & (builder.waddr == p.entries - 1), builder.wdata, 0)
            growth.append(row)
        return growth if p.keeps_rowsum else None

    def _lookup_unit(self, m: Module, operand, i: int, j: int, q: int, weights, value_shape):
        """Row ``i``'s fetcher ``j`` of group ``q``: a multiplexer over the table register, or
        its own read ports of the table's RAM (``operand`` the bank to read)."""
        p = self.params
        if not p.lutram:
            unit = LutDotUnit(self._table_layout, p.code_bits, p.symmetric, weights, value_shape)
            m.submodules[self._name(f"dot{i}_{j}", q)] = unit
            m.d.comb += unit.table.eq(operand[i * p.k_groups + q])
            return unit
        unit = RamLookupUnit(p.entries, signed(p.entry_bits), p.code_bits, p.symmetric, weights, value_shape)
        m.submodules[self._name(f"look{i}_{j}", q)] = unit
        for slot in range(p.planes_per_cycle):
            read = self._memories[i * p.k_groups + q].read_port(domain="comb")
            m.d.comb += [read.addr.eq(Cat(operand, unit.index[slot])), unit.entry[slot].eq(read.data)]
        return unit

    def contributions(self, m: Module, operand, w_payload, pass_index, zero_point):
        p = self.params
        weights = p.plane_weights()
        shift = max(abs(w).bit_length() - 1 for row in weights for w in row if w)
        value_shape = signed(p.entry_bits + shift)
        field_bits = p.planes_per_cycle * p.code_bits
        terms = []
        for i in range(p.m_tile):
            row = []
            for j in range(p.fetchers):
                element = []
                for q in range(p.k_groups):
                    unit = self._lookup_unit(m, operand, i, j, q, weights, value_shape)
                    m.d.comb += [unit.code.eq(w_payload[j][q * field_bits:(q + 1) * field_bits]),
                                 unit.pass_index.eq(pass_index)]
                    element += [(term.value, term.negate) for term in unit.terms]
                row.append(element)
            terms.append(row)
        return terms

    def accumulate(self, m: Module, acc, terms):
        return signed_sum(m, acc, terms, self.params.acc_bits)

    def group_sums(self, m: Module, operand):
        # the all-ones entry: sum of the group ({0,1} table: 2^g - 1; half table: 2^(g-1) - 1)
        p = self.params
        last = p.entries - 1
        return [sum(operand[i * p.k_groups + q][last] for q in range(p.k_groups)) for i in range(p.m_tile)]

    def correct(self, m: Module, accs, rowsum, zero_points):
        """``acc - z rowsum`` ({0,1} tables) or ``(acc + (2^b - 1 - 2z) rowsum) / 2`` (half
        tables), the product read per 2-bit digit of ``z`` from multiples of the row's sum that
        all columns share: one carry-chain adder per digit and column (see
        :func:`correction_digits`); written as one expression it was a multi-operand adder that
        Yosys lowered to full adders in LUTs."""
        p = self.params
        if not p.keeps_rowsum:
            return accs
        if not p.has_zero_point:                    # symmetric int: (acc - rowsum) / 2
            return [(acc - rowsum) >> 1 for acc in accs]
        three = Signal(signed(len(rowsum) + 2))
        m.d.comb += three.eq(rowsum + (rowsum << 1))
        width = p.out_bits + int(p.symmetric)          # the exact result fits; partial sums may wrap
        out = []
        for acc, z in zip(accs, zero_points, strict=True):
            total = acc
            for low in range(0, p.w_bits, 2):
                digit = z[low:low + 2]
                if p.symmetric:                     # (2^n - 1 - 2 digit) rowsum: +-3 or +-1 times it
                    magnitude = Mux(digit[0] ^ digit[1], rowsum, three) if len(digit) == 2 else rowsum
                    total = add_signed(m, total, magnitude << low, digit[-1], width)
                else:                               # digit * rowsum, subtracted
                    magnitude = (Mux(digit[1], Mux(digit[0], three, rowsum << 1), Mux(digit[0], rowsum, 0))
                                 if len(digit) == 2 else Mux(digit[0], rowsum, 0))
                    total = add_signed(m, total, magnitude << low, 1, width)
            out.append(total >> 1 if p.symmetric else total)
        return out


def correction_digits(w_bits):
    """Carry-chain adders per output column of the zero-point correction: one per 2-bit digit."""
    return (np.asarray(w_bits, dtype=np.int64) + 1) // 2


def build(params: LutMpGemmParams) -> LutMpGemmEngine:
    return LutMpGemmEngine(params)


# ---------------------------------------------------------------------- host-side packing
def _codes(params: LutMpGemmParams, w: np.ndarray) -> np.ndarray:
    """Per table group, column and plane the lookup field: ``groups x n_tile x planes`` (groups of
    ``g``: a beat's ``k_groups`` of them follow each other)."""
    p = params
    beats = padded_weights(p, w)                               # beats x (k_groups g) x n_tile
    groups = beats.reshape(-1, p.g, p.n_tile)                  # groups x g x n_tile
    place = np.array([1 << t for t in range(p.g)], dtype=np.int64)
    if p.ternary:
        idx = np.einsum("xtn,t->xn", groups + 1, 3 ** np.arange(p.g, dtype=np.int64))
        if not p.symmetric:
            return idx[:, :, None]
        c = (3 ** p.g - 1) // 2
        sign = (idx < c).astype(np.int64)
        return (np.abs(idx - c) | (sign << (p.code_bits - 1)))[:, :, None]
    bits = (groups[..., None] & (1 << np.arange(p.w_bits))) != 0     # groups x g x n x planes
    idx = np.einsum("xtnp,t->xnp", bits.astype(np.int64), place)
    if not p.symmetric:
        return idx
    mask = (1 << (p.g - 1)) - 1
    sign = 1 - (idx & 1)
    upper = np.where(sign == 1, (~idx >> 1) & mask, idx >> 1)
    return upper | (sign << (p.g - 1))


def pack_weights(params: LutMpGemmParams, w: np.ndarray) -> list[int]:
    """W (``K x n_tile``) as the w_stream beats of one run (layout in the module docstring)."""
    p = params
    w = check_weights(p, w, np.asarray(w).shape[0])
    codes = _codes(p, w).reshape(-1, p.k_groups, p.n_tile, p.planes)   # beat x table x n x planes
    beats = []
    for beat in codes:
        for pass_ in range(p.passes):
            lanes = []
            for j in range(p.n_tile):
                word = 0
                for q in range(p.k_groups):
                    for slot in range(p.planes_per_cycle):
                        plane = pass_ * p.planes_per_cycle + slot
                        if plane < p.planes:
                            word |= int(beat[q, j, plane]) << ((q * p.planes_per_cycle + slot) * p.code_bits)
                lanes.append(word)
            beats.extend(pack_lanes([lanes], p.k_groups * p.planes_per_cycle * p.code_bits))
    return beats


def tables(params: LutMpGemmParams, a: np.ndarray) -> np.ndarray:
    """The stored tables of every a_stream beat: ``beats x (m_tile k_groups) x entries``, row
    ``i``'s group ``q`` at ``i * k_groups + q``."""
    p = params
    coef = np.array(table_coefficients(p.ternary, p.symmetric, p.g), dtype=np.int64)
    beats = padded_groups(p, a)                                  # beats x m_tile x (k_groups g)
    split = beats.reshape(beats.shape[0], p.m_tile * p.k_groups, p.g)
    return np.einsum("xmt,et->xme", split, coef)


def pack_tables(params: LutMpGemmParams, a: np.ndarray) -> list[int]:
    """A's precomputed tables as a_stream beats for ``table_source=external``."""
    p = params
    row_bits = p.entries * p.entry_bits
    return pack_lanes([pack_lanes(rows, p.entry_bits) for rows in tables(p, a)], row_bits)


def pack_a(params: LutMpGemmParams, a: np.ndarray) -> list[int]:
    """The a_stream beats of one run: activations, or tables for ``table_source=external``."""
    if params.table_source is TableSource.EXTERNAL:
        return pack_tables(params, a)
    return pack_activations(params, a)

