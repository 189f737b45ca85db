"""The frame shared by the mixed-precision GEMM engines (LUT-based and MAC baseline).

Both compute one output tile ``Y = A @ W`` of ``m_tile x n_tile`` integers,
``A`` signed ``a_bits`` activations (``m_tile x K``), ``W`` low-bit weights
(``K x n_tile``) in one of three formats:

* ``uint``: unsigned codes ``q`` with a per-column zero point ``z``;
  the weight is ``q - z`` (the host applies the per-column scale).
* ``int``: two's complement codes, the weight is the code.
* ``ternary``: weights in {-1, 0, +1} (``w_bits`` must be 2).

Stream contract (valid/ready; lane 0 in the least significant bits):

* ``a_stream``: ``ceil(K / group)`` beats, beat ``j`` carries for every
  row ``i`` the ``group`` activations ``A[i, j*group : (j+1)*group]``;
  the last beat is zero-filled past ``K`` (zero activations add nothing).
  The LUT engine with ``table_source=external`` takes precomputed tables
  here instead (see :mod:`generators.lut_mpgemm`).
* ``w_stream``: ``passes`` beats per group, ``n_tile`` lanes each; the lane
  layout is the engine's own (bit-planes for LUT, plain codes for MAC).
* ``zero_point`` (``uint`` only): ``n_tile`` codes, sampled with ``start``.
* ``y_stream``: ``m_tile`` beats per run, beat ``i`` = ``Y[i, :]`` as
  signed ``out_bits`` lanes, wide enough that nothing ever wraps.

Control as in the systolic family: ``start`` with ``k`` (1..``k_max``) is
taken while idle or in the ``done`` cycle; ``done`` pulses when the tile
moves to the output bank, which drains while the next run computes.
A run asserts ``done`` ``ceil(k/group) * passes + 2`` cycles after its
start was accepted when the streams never stall; with a beat held
``column_steps`` cycles and tables filled over ``F`` cycles (the LUT engine's
``table_store=lutram``), ``F + 2 + (G - 1) max(F, L) + L`` with
``G = ceil(k/group)`` and ``L = passes * column_steps``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from generators.lanes import pack_lanes, unpack_lanes
from generators.params import ParamError, Params, Rule, choice_field, int_field
from generators.widths import signed_bits
from hw.run_control import RunSignature, handoff_state, run_handshake
from hw.tile_buffer import TileDrain


class WeightFormat(enum.Enum):
    UINT = "uint"           # unsigned codes with a per-column zero point
    INT = "int"             # two's complement codes
    TERNARY = "ternary"     # {-1, 0, +1}


UINT_CODE, INT_CODE, TERNARY_CODE = range(3)       # index codes in Params.columns()
assert [f.value for f in WeightFormat] == ["uint", "int", "ternary"]


# ---------------------------------------------------------------------- widths (vectorised)
def weight_magnitude(fmt, w_bits) -> np.ndarray:
    """Largest |weight|: ``2^b - 1`` (uint minus a zero point), ``2^(b-1)`` (int), 1 (ternary)."""
    fmt, w = np.asarray(fmt), np.asarray(w_bits, dtype=np.int64)
    return np.where(fmt == UINT_CODE, (1 << w) - 1, np.where(fmt == INT_CODE, 1 << np.maximum(w - 1, 0), 1))


def out_bits(a_bits, w_bits, fmt, k_max) -> np.ndarray:
    """Width of Y: any sum of ``k_max`` products fits."""
    a, k = np.asarray(a_bits, dtype=np.int64), np.asarray(k_max, dtype=np.int64)
    return signed_bits(k * (1 << (a - 1)) * weight_magnitude(fmt, w_bits))


def rowsum_bits(a_bits, k_max) -> np.ndarray:
    """Width of one row's activation sum over ``k_max`` elements."""
    a, k = np.asarray(a_bits, dtype=np.int64), np.asarray(k_max, dtype=np.int64)
    return signed_bits(k * (1 << (a - 1)))


@dataclass(frozen=True, kw_only=True)
class MpGemmParams(Params):
    """Fields both engines share (the tile, the operands, the reduction depth)."""

    family: ClassVar[str] = "mpgemm"

    m_tile: int = int_field(2, 1, 16, doc="activation rows (tokens) per output tile")
    n_tile: int = int_field(16, 1, 256, log=True,
                            doc="weight columns per output tile; each activation group serves all of them")
    a_bits: int = int_field(8, 4, 16, doc="signed activation width")
    w_bits: int = int_field(2, 1, 4, doc="weight code width (2 for ternary)")
    weight_format: WeightFormat = choice_field(
        WeightFormat.UINT, doc="uint = codes with a per-column zero point, int = two's complement, "
                               "ternary = {-1, 0, +1}")
    k_max: int = int_field(256, 1, 65536, log=True, doc="deepest reduction K one run accepts")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("w_bits", ("weight_format",), lambda c: (np.asarray(c["weight_format"]) != TERNARY_CODE)
             | (np.asarray(c["w_bits"]) == 2), "2 when weight_format is 'ternary'"),)

    # ------------------------------------------------------------------ derived
    @property
    def group(self) -> int:
        """Activations per row in one a_stream beat."""
        raise NotImplementedError

    @property
    def passes(self) -> int:
        """w_stream beats per activation group."""
        raise NotImplementedError

    @property
    def beat_cycles(self) -> int:
        """Cycles each w_stream beat is held (the LUT engine's ``column_steps``)."""
        return 1

    @property
    def fill_cycles(self) -> int:
        """Cycles an operand takes to fill after its a_stream beat (0: loaded in one)."""
        return 0

    @property
    def fmt_code(self) -> int:
        return list(WeightFormat).index(self.weight_format)

    @property
    def out_bits(self) -> int:
        return int(out_bits(self.a_bits, self.w_bits, self.fmt_code, self.k_max))

    @property
    def rowsum_bits(self) -> int:
        return int(rowsum_bits(self.a_bits, self.k_max))

    @property
    def has_zero_point(self) -> bool:
        return self.weight_format is WeightFormat.UINT

    def groups(self, k: int) -> int:
        return -(-k // self.group)

    def weight_range(self) -> tuple[int, int]:
        """Inclusive range of the weight codes the host passes (uint codes, int or ternary values)."""
        b = self.w_bits
        if self.weight_format is WeightFormat.UINT:
            return 0, (1 << b) - 1
        if self.weight_format is WeightFormat.INT:
            return -(1 << (b - 1)), (1 << (b - 1)) - 1
        return -1, 1



class MpGemmEngine(wiring.Component):
    """Controller, accumulators, output bank and ports; subclasses supply the datapath.

    The activation side is a one-deep operand register (a table, or the raw
    activations) loaded from ``a_stream``; each ``w_stream`` beat it meets adds
    one contribution per output element. The next group loads in the cycle
    its predecessor's last pass is consumed, so groups follow back to back.

    ``beat_cycles`` > 1 (the params') holds each ``w_stream`` beat that many cycles, its columns
    served ``n_tile / beat_cycles`` at a time (fewer fetchers, each with its accumulators' read
    mux). ``fill_cycles`` > 0 replaces the operand register by two table banks the subclass fills
    (:meth:`fill`) over that many cycles while the other is read, so a group takes
    ``max(fill_cycles, passes * beat_cycles)`` cycles once the first is filled. With neither, the
    netlist is the one both engines had before them, statement for statement, so cached
    synthesis results keep their keys: hence the separate branches below.
    """

    def __init__(self, params: MpGemmParams, operand_layout: data.Layout, a_payload: data.Layout,
                 w_lane_bits: int, acc_bits: int, *, rowsum: bool, tile_zero_point: bool):
        self.params = p = params
        self._lane_bits = w_lane_bits
        self._operand_layout = operand_layout
        self._acc_bits = acc_bits
        self._rowsum = rowsum
        self._tile_zero_point = tile_zero_point
        self.run_protocol, self.beats_per_run = RunSignature("k", p.k_max), p.m_tile
        signature = {
            **self.run_protocol.members,
            "a_stream": In(stream.Signature(a_payload)),
            "w_stream": In(stream.Signature(data.ArrayLayout(unsigned(w_lane_bits), p.n_tile))),
            "y_stream": Out(stream.Signature(data.ArrayLayout(signed(p.out_bits), p.n_tile))),
        }
        if p.has_zero_point:
            signature["zero_point"] = In(data.ArrayLayout(unsigned(p.w_bits), p.n_tile))
        super().__init__(signature)

    # ------------------------------------------------------------------ datapath hooks
    def operand(self, m: Module, payload) -> object:
        """The operand register's next value from an accepted a_stream payload."""
        return payload

    def fill(self, m: Module, payload, start, bank) -> list[object] | None:
        """With ``fill_cycles``: start filling ``bank`` of the two table banks from ``payload``
        when ``start`` (the bank held for the next ``fill_cycles`` cycles); per row, what the
        row's activation sum grows by in a fill cycle (when ``rowsum`` is kept)."""
        raise NotImplementedError

    def contributions(self, m: Module, operand, w_payload, pass_index, zero_point) -> list[list[object]]:
        """Per row ``i`` and fetcher ``j``, what one cycle adds to the accumulator the fetcher
        serves: column ``j`` (``column_steps`` 1), or column ``j * column_steps + step`` of the
        lanes the frame passes in ``w_payload``. ``operand`` is the operand register, or with
        ``fill_cycles`` the bank to read."""
        raise NotImplementedError

    def group_sums(self, m: Module, operand) -> list[object]:
        """Per row, the sum of the group's activations (when ``rowsum`` is kept)."""
        raise NotImplementedError

    def accumulate(self, m: Module, acc, contribution):
        """An accumulator's next value from what one w_stream beat adds to it."""
        return acc + contribution

    def correct(self, m: Module, accs, rowsum, zero_points) -> list[object]:
        """A drained row's output elements from its accumulators (and the row's activation sum
        and the tile's zero points, where the engine keeps them)."""
        return accs

    # ------------------------------------------------------------------ frame
    def elaborate(self, platform):
        m = Module()
        p = self.params
        acc_shape = signed(self._acc_bits)
        row_fields = {"acc": data.ArrayLayout(acc_shape, p.n_tile)}
        if self._rowsum:
            row_fields["sum"] = signed(p.rowsum_bits)
        row_layout = data.StructLayout(row_fields)
        drain = m.submodules.drain = TileDrain(row_layout, p.m_tile)

        # a signal per row (tile_buffer); no reset: every run clears them before use
        acc = [Signal(row_layout, name=f"acc{i}", reset_less=True) for i in range(p.m_tile)]
        clear = Signal()                                # a run begins: the accumulators start at 0
        zp_shape = data.ArrayLayout(unsigned(p.w_bits), p.n_tile)
        zp_run = Signal(zp_shape)
        zp_tile = Signal(zp_shape)
        banked = p.fill_cycles > 0
        if not banked:
            opnd = Signal(self._operand_layout)
            opnd_valid = Signal()
            opnd_last = Signal()
        more = Signal()                                 # a_stream beats still to take
        k_left = Signal(range(p.k_max + 1))             # activations not yet taken
        pass_index = Signal(range(max(p.passes, 2)))

        accept, handoff = run_handshake(m, self, drain)
        m.d.comb += [
            *(drain.tile[i].eq(acc[i]) for i in range(p.m_tile)),
            drain.o.ready.eq(self.y_stream.ready),
            self.y_stream.valid.eq(drain.o.valid),
        ]
        if self._tile_zero_point:          # the draining tile keeps its own zero points
            with m.If(self.done):
                m.d.sync += zp_tile.eq(zp_run)
        out_row = drain.o.payload
        values = self.correct(m, [out_row.acc[j] for j in range(p.n_tile)],
                              out_row.sum if self._rowsum else None,
                              [zp_tile[j] for j in range(p.n_tile)] if self._tile_zero_point else None)
        m.d.comb += [self.y_stream.payload[j].eq(value) for j, value in enumerate(values)]

        # one activation group in the operand register meets its w_stream beats
        consume = Signal()
        group_end = Signal()
        load = Signal()
        running = Signal()
        steps = p.beat_cycles
        if banked:                         # which banks hold a filled group, and the run's last
            full = Signal(2)
            last = Signal(2)
            read_bank = Signal()
            fill_bank = Signal()
            writing_bank = Signal()
            fill_left = Signal(range(p.fill_cycles + 1))    # cycles the running fill has left
            opnd_valid, opnd_last = full.bit_select(read_bank, 1), last.bit_select(read_bank, 1)
        if steps > 1:
            column_step = Signal(range(steps))
            m.d.comb += [
                consume.eq(running & opnd_valid & self.w_stream.valid),
                self.w_stream.ready.eq(running & opnd_valid & (column_step == steps - 1)),
                group_end.eq(consume & (column_step == steps - 1) & (pass_index == p.passes - 1)),
            ]
        else:
            m.d.comb += [
                consume.eq(running & opnd_valid & self.w_stream.valid),
                self.w_stream.ready.eq(running & opnd_valid),
                group_end.eq(consume & (pass_index == p.passes - 1)),
            ]
        if banked:                         # a fill may start in a running fill's last cycle, into a bank
            idle = (fill_left == 0) | (fill_left == 1)                      # released in this one
            free = ~full.bit_select(fill_bank, 1) | (group_end & (read_bank == fill_bank))
            m.d.comb += [self.a_stream.ready.eq(running & more & idle & free),
                         load.eq(self.a_stream.ready & self.a_stream.valid)]
            growth = self.fill(m, self.a_stream.payload, load, writing_bank)
            with m.If(fill_left != 0):
                m.d.sync += fill_left.eq(fill_left - 1)
                with m.If(fill_left == 1):
                    m.d.sync += full.bit_select(writing_bank, 1).eq(1)
                if self._rowsum:
                    for i in range(p.m_tile):
                        m.d.sync += acc[i].sum.eq(acc[i].sum + growth[i])
            with m.If(group_end):
                m.d.sync += [full.bit_select(read_bank, 1).eq(0), read_bank.eq(~read_bank)]
            with m.If(load):
                m.d.sync += [
                    fill_left.eq(p.fill_cycles),
                    writing_bank.eq(fill_bank),
                    fill_bank.eq(~fill_bank),
                    last.bit_select(fill_bank, 1).eq(_at_most(k_left, p.group)),
                    more.eq(_above(k_left, p.group)),
                    k_left.eq(_floor_sub(k_left, p.group)),
                ]
            operand = read_bank
        else:
            m.d.comb += [
                self.a_stream.ready.eq(running & more & (~opnd_valid | group_end)),
                load.eq(self.a_stream.ready & self.a_stream.valid),
            ]
            # the datapath is built outside any enable, so none of its signals is gated by one
            next_opnd = self.operand(m, self.a_stream.payload)
            with m.If(load):
                m.d.sync += [
                    opnd.eq(next_opnd),
                    opnd_valid.eq(1),
                    opnd_last.eq(_at_most(k_left, p.group)),
                    more.eq(_above(k_left, p.group)),
                    k_left.eq(_floor_sub(k_left, p.group)),
                ]
            with m.Elif(group_end):
                m.d.sync += opnd_valid.eq(0)
            operand = opnd
        if steps > 1:                      # fetcher j serves columns j*steps .. j*steps + steps - 1
            fetchers = p.n_tile // steps
            lanes = Signal(data.ArrayLayout(unsigned(self._lane_bits), fetchers))
            words = self.w_stream.payload.as_value()
            m.d.comb += [lanes[j].eq(words[j * steps * self._lane_bits:(j + 1) * steps * self._lane_bits]
                                     .word_select(column_step, self._lane_bits)) for j in range(fetchers)]
            adds = self.contributions(m, operand, lanes, pass_index, zp_run if p.has_zero_point else None)
            served = [[acc[i].acc.as_value()[j * steps * self._acc_bits:(j + 1) * steps * self._acc_bits]
                       .word_select(column_step, self._acc_bits) for j in range(fetchers)]
                      for i in range(p.m_tile)]
            next_acc = [[self.accumulate(m, served[i][j].as_signed(), adds[i][j]) for j in range(fetchers)]
                        for i in range(p.m_tile)]
        else:
            adds = self.contributions(m, operand, self.w_stream.payload, pass_index,
                                      zp_run if p.has_zero_point else None)
            next_acc = [[self.accumulate(m, acc[i].acc[j], adds[i][j]) for j in range(p.n_tile)]
                        for i in range(p.m_tile)]
        sums = self.group_sums(m, opnd) if self._rowsum and not banked else None
        with m.If(consume):
            if steps == 1:
                m.d.sync += pass_index.eq(_next_index(pass_index, p.passes))
                for i in range(p.m_tile):
                    for j in range(p.n_tile):
                        m.d.sync += acc[i].acc[j].eq(next_acc[i][j])
            else:
                m.d.sync += column_step.eq(_next_index(column_step, steps))
                with m.If(column_step == steps - 1):
                    m.d.sync += pass_index.eq(_next_index(pass_index, p.passes))
                for i in range(p.m_tile):
                    for j in range(p.n_tile // steps):
                        m.d.sync += served[i][j].eq(next_acc[i][j])
            if sums is not None:           # once per group: its first beat's first step
                first = (pass_index == 0) if steps == 1 else (pass_index == 0) & (column_step == 0)
                with m.If(first):
                    for i in range(p.m_tile):
                        m.d.sync += acc[i].sum.eq(acc[i].sum + sums[i])
        # the clear is one signal and the last word on the accumulators, so synthesis sees a
        # clear over an enable: each flip-flop's synchronous reset and clock enable, no LUT in
        # front (spread over the FSM's states, the clear and the enable became a LUT per bit)
        with m.If(clear):
            m.d.sync += [row.eq(0) for row in acc]

        def begin_run():
            m.d.comb += clear.eq(1)
            if banked:
                m.d.sync += [k_left.eq(self.k), more.eq(1), full.eq(0), read_bank.eq(0), fill_bank.eq(0),
                             pass_index.eq(0)]
            else:
                m.d.sync += [k_left.eq(self.k), more.eq(1), opnd_valid.eq(0), pass_index.eq(0)]
            if steps > 1:
                m.d.sync += column_step.eq(0)
            if p.has_zero_point:
                m.d.sync += zp_run.eq(self.zero_point)
            m.next = "RUN"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    begin_run()
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), running.eq(1)]
                with m.If(group_end & opnd_last):
                    m.next = "HANDOFF"
            handoff_state(m, self, accept, handoff, drain, begin_run)
        return m


def _above(value, step: int):
    """``value > step``; a constant where ``value``'s width cannot exceed ``step`` (k_max <= g:
    Verilator refuses a comparison its operand's range decides, CMPCONST)."""
    return value > step if step < (1 << len(value)) - 1 else Const(0, 1)


def _at_most(value, step: int):
    """``value <= step``, a constant where ``value``'s width decides it (see :func:`_above`)."""
    return value <= step if step < (1 << len(value)) - 1 else Const(1, 1)


def _floor_sub(value, step: int):
    """``value - step`` floored at zero."""
    return Mux(_above(value, step), value - step, 0)


def _next_index(index, count: int):
    """``index + 1`` modulo ``count``."""
    return Mux(index == count - 1, 0, index + 1)


# ---------------------------------------------------------------------- host-side packing
def padded_groups(params: MpGemmParams, a: np.ndarray) -> np.ndarray:
    """``A`` (``m_tile x K``) zero-padded to whole groups: ``groups x m_tile x group``."""
    a = np.asarray(a, dtype=np.int64)
    if a.ndim != 2 or a.shape[0] != params.m_tile:
        raise ParamError(f"A must be {params.m_tile} x K, not {a.shape}")
    groups = params.groups(a.shape[1])
    padded = np.zeros((params.m_tile, groups * params.group), dtype=np.int64)
    padded[:, :a.shape[1]] = a
    return padded.reshape(params.m_tile, groups, params.group).transpose(1, 0, 2)


def pack_activations(params: MpGemmParams, a: np.ndarray) -> list[int]:
    """A as a_stream beats: per beat, ``m_tile`` rows of ``group`` activations."""
    groups = padded_groups(params, a)
    row_bits = params.group * params.a_bits
    return pack_lanes([pack_lanes(g, params.a_bits) for g in groups], row_bits)


def check_weights(params: MpGemmParams, w: np.ndarray, k: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.int64)
    if w.shape != (k, params.n_tile):
        raise ParamError(f"W must be {k} x {params.n_tile}, not {w.shape}")
    lo, hi = params.weight_range()
    if w.size and (w.min() < lo or w.max() > hi):
        raise ParamError(f"{params.weight_format.value} weights must lie in {lo}..{hi}")
    return w


def padded_weights(params: MpGemmParams, w: np.ndarray) -> np.ndarray:
    """W (``K x n_tile``) padded with zero codes to whole groups: ``groups x group x n_tile``."""
    k = w.shape[0]
    groups = params.groups(k)
    padded = np.zeros((groups * params.group, params.n_tile), dtype=np.int64)
    padded[:k] = w
    return padded.reshape(groups, params.group, params.n_tile)


def pack_zero_point(params: MpGemmParams, zero_point) -> int:
    return pack_lanes([np.asarray(zero_point, dtype=np.int64)], params.w_bits)[0]


def unpack_y(params: MpGemmParams, beats: list[int]) -> np.ndarray:
    """The ``m_tile`` y_stream beats of one run as an ``m_tile x n_tile`` array."""
    return np.stack([unpack_lanes(w, params.n_tile, params.out_bits) for w in beats])
