"""Systolic GEMM tile engine: ``C = A @ B`` for one output tile of ``tile_rows x cols``
(``tile_rows`` = ``rows`` output-stationary, ``m_tile`` weight-stationary).

Stream contract (all streams valid/ready, lane 0 in the least significant bits):

* output-stationary (``os``): ``a_stream`` carries ``K`` beats, beat ``k`` = column
  ``A[:, k]`` (``rows`` lanes of ``a_bits``), and ``b_stream`` ``K`` beats, beat ``k`` =
  row ``B[k, :]`` (``cols`` lanes of ``w_bits``); A and B beats are consumed in pairs.
* weight-stationary (``ws``): the run's K is cut into ``S = ceil(K/rows)`` slices.
  ``b_stream`` carries ``S*rows`` beats, beat ``k`` = row ``B[k, :]``, zero past ``K``
  (the packer pads). ``a_stream`` carries ``S`` passes of ``m_tile`` beats; in pass
  ``s`` beat ``m`` = ``A[m, s*rows : s*rows+rows]`` (``rows`` lanes, zero past ``K``).
  The engine loads a slice's weights whenever its shadow registers are free, also
  ahead of the run they belong to, so B may run ahead of A and of ``start``.
* ``c_stream`` carries ``tile_rows`` beats per run, beat ``i`` = ``C[i, :]``
  (``cols`` lanes of ``acc_bits``), wrapped modulo ``2**acc_bits``.

Control: ``start`` with ``k`` (1..``k_max``) is accepted while ``busy`` is low
or ``done`` is high (back-to-back runs); a start with ``k`` out of range is
ignored. ``done`` pulses in the cycle the run's last A beat is taken; its C rows
follow (output-stationary: once a one-cycle bubble behind the run has captured the
tile into the output bank; weight-stationary: as the last slice's sums leave the
array), while the next run computes. :func:`pack_a` / :func:`pack_b` /
:func:`unpack_c` are the host-side packers for exactly this contract.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from generators.lanes import pack_lanes, unpack_lanes
from generators.params import ParamError, Params, bool_field, choice_field, int_field
from generators.widths import bit_length
from hw import index_shape
from hw.delay import DelayLine, wavefront
from hw.run_control import RunSignature
from hw.skew import SkewBuffer
from hw.systolic_array import OutputStationaryArray, WeightStationaryArray
from hw.tile_buffer import DiagonalDrain


class Dataflow(enum.Enum):
    OS = "os"     # output-stationary: C stays in the PEs, A and B flow
    WS = "ws"     # weight-stationary: B stays in the PEs, A flows, partial sums flow down


def full_precision_acc_bits(a_bits, w_bits, k_max, signed_) -> np.ndarray:
    """Narrowest accumulator that holds any sum of ``k_max`` products without wrapping.

    Vectorised over NumPy arrays; the Params property and the cost model share it.
    """
    a = np.asarray(a_bits, dtype=np.int64)
    w = np.asarray(w_bits, dtype=np.int64)
    k = np.asarray(k_max, dtype=np.int64)
    sgn = np.asarray(signed_, dtype=bool)
    top = np.ldexp(1.0, a + w - 2)                           # min_a * min_w
    most_negative = top - np.ldexp(1.0, np.minimum(a, w) - 1)
    signed_bits = np.maximum(bit_length(k * top), bit_length(k * most_negative - 1)) + 1
    unsigned_bits = bit_length(k * (np.ldexp(1.0, a) - 1) * (np.ldexp(1.0, w) - 1))
    return np.where(sgn, signed_bits, np.maximum(unsigned_bits, 1))


def acc_width(c) -> np.ndarray:
    """The accumulator width in effect over encoded columns (``acc_bits`` 0 = full precision)."""
    given = np.asarray(c["acc_bits"], dtype=np.int64)
    return np.where(given > 0, given, full_precision_acc_bits(c["a_bits"], c["w_bits"], c["k_max"], c["signed"]))


@dataclass(frozen=True, kw_only=True)
class SystolicParams(Params):
    """Parameters of the systolic tile engine (see the module docstring for the contract)."""

    family: ClassVar[str] = "systolic"

    rows: int = int_field(4, 1, 64, doc="PE rows: C tile rows (os), the K slice per pass (ws)")
    cols: int = int_field(4, 1, 64, doc="PE columns; output tile columns")
    a_bits: int = int_field(8, 2, 16, doc="width of A elements")
    w_bits: int = int_field(8, 2, 16, doc="width of B (weight) elements")
    acc_bits: int | None = int_field(
        None, 2, 64, optional=True, search=False,
        doc="accumulator and C width; unset = full precision for k_max, narrower wraps")
    signed: bool = bool_field(True, doc="two's complement A, B and C (else unsigned)")
    dataflow: Dataflow = choice_field(Dataflow.OS, doc="os = output-stationary, ws = weight-stationary")
    k_max: int = int_field(256, 1, 65536, log=True, doc="deepest reduction K one run accepts")
    m_tile: int = int_field(
        64, 2, 4096, log=True,
        doc="weight-stationary: rows of A a run streams through the stationary weights (C's rows); "
            "output-stationary: not used (C has rows rows)")

    @property
    def acc_width(self) -> int:
        """The accumulator width in effect (given, or full precision for ``k_max``)."""
        return int(acc_width(type(self).columns([self]))[0])

    def shape(self, bits: int) -> Shape:
        return signed(bits) if self.signed else unsigned(bits)

    @property
    def tile_rows(self) -> int:
        """Rows of the C tile one run produces (its c_stream beats)."""
        return self.rows if self.dataflow is Dataflow.OS else self.m_tile

    def slices(self, k: int) -> int:
        """Weight-stationary: the ``rows``-deep K slices of a run of depth ``k``."""
        return -(-k // self.rows)

    def a_beats(self, k: int) -> int:
        """A-stream beats one run of depth ``k`` consumes."""
        return k if self.dataflow is Dataflow.OS else self.slices(k) * self.m_tile

    def b_beats(self, k: int) -> int:
        """B-stream beats one run of depth ``k`` consumes."""
        return k if self.dataflow is Dataflow.OS else self.slices(k) * self.rows


class SystolicEngine(wiring.Component):
    """The complete tile engine: skew, PE array, de-skew/accumulate, drain and controller."""

    def __init__(self, params: SystolicParams):
        self.params = params
        p = params
        self._a_shape, self._w_shape = p.shape(p.a_bits), p.shape(p.w_bits)
        self._acc_shape = p.shape(p.acc_width)
        self.run_protocol, self.beats_per_run = RunSignature("k", p.k_max), p.tile_rows
        super().__init__({
            **self.run_protocol.members,
            "a_stream": In(stream.Signature(data.ArrayLayout(self._a_shape, p.rows))),
            "b_stream": In(stream.Signature(data.ArrayLayout(self._w_shape, p.cols))),
            "c_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, p.cols))),
        })

    def elaborate(self, platform):
        m = Module()
        if self.params.dataflow is Dataflow.OS:
            self._elaborate_os(m)
        else:
            self._elaborate_ws(m)
        return m

    # ------------------------------------------------------------------ output-stationary
    def _elaborate_os(self, m):
        """Tiles follow each other one cycle apart: the array runs every cycle, and after a
        run's last operand pair a one-cycle bubble (zeros, taken from no stream) clears each
        PE as it passes while the output bank captures the finished sum there. The bubble
        waits only for the bank to have drained the tile before."""
        p = self.params
        skew_a = m.submodules.skew_a = SkewBuffer(self._a_shape, p.rows)
        skew_b = m.submodules.skew_b = SkewBuffer(self._w_shape, p.cols)
        array = m.submodules.array = OutputStationaryArray(
            p.rows, p.cols, self._a_shape, self._w_shape, self._acc_shape)
        drain = m.submodules.drain = DiagonalDrain(data.ArrayLayout(self._acc_shape, p.cols), p.rows)
        wiring.connect(m, drain.o, wiring.flipped(self.c_stream))

        accept = Signal()
        take = Signal()            # this cycle's A/B pair enters the array
        k_left = Signal(range(p.k_max + 1))
        queued = Signal()          # a run was accepted in the done cycle: feed it after the bubble
        # operands enter through a register, so that no stream handshake reaches a multiplier
        a_in, b_in = Signal.like(self.a_stream.payload), Signal.like(self.b_stream.payload)
        m.d.sync += [a_in.eq(Mux(take, self.a_stream.payload, 0)), b_in.eq(Mux(take, self.b_stream.payload, 0))]
        m.d.comb += [
            accept.eq(self.run_protocol.accepts(self)),
            skew_a.en.eq(1), skew_b.en.eq(1),
            skew_a.i.eq(a_in), skew_b.i.eq(b_in),
            array.a_in.eq(skew_a.o), array.b_in.eq(skew_b.o),
            array.clear.eq(drain.diagonals),
            *(drain.tile[r].eq(array.acc[r]) for r in range(p.rows)),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    m.d.sync += k_left.eq(self.k)
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [
                    self.busy.eq(1), take.eq(self.a_stream.valid & self.b_stream.valid),
                    self.a_stream.ready.eq(take), self.b_stream.ready.eq(take),
                ]
                with m.If(take):
                    m.d.sync += k_left.eq(k_left - 1)
                    with m.If(k_left == 1):
                        m.d.comb += self.done.eq(1)
                        m.d.sync += [queued.eq(accept), k_left.eq(self.k)]
                        m.next = "BUBBLE"
            with m.State("BUBBLE"):
                m.d.comb += self.busy.eq(1)
                with m.If(drain.free):
                    m.d.comb += drain.launch.eq(1)
                    with m.If(queued):
                        m.next = "FEED"
                    with m.Else():
                        m.next = "IDLE"

    # ------------------------------------------------------------------ weight-stationary
    def _elaborate_ws(self, m):
        """A slice of ``rows`` weights (K-slice x ``cols``) stays in the array while the run's
        ``m_tile`` rows of A stream through it; the next slice preloads into the PEs' shadows
        behind it and swaps in along the wavefront, so slices (and runs) follow with no gap.
        Partial sums leave the array into an ``m_tile``-row output buffer; the last slice's
        sums stream straight out as C. A C beat that cannot leave stalls the engine."""
        p = self.params
        rows, cols, m_tile = p.rows, p.cols, p.m_tile
        row_layout = data.ArrayLayout(self._acc_shape, cols)
        en = Signal()
        skew_a = m.submodules.skew_a = SkewBuffer(self._a_shape, rows)
        array = m.submodules.array = WeightStationaryArray(
            rows, cols, self._a_shape, self._w_shape, self._acc_shape)
        deskew = m.submodules.deskew = SkewBuffer(self._acc_shape, cols, deskew=True)
        buffer = m.submodules.out_buffer = Memory(shape=row_layout, depth=m_tile, init=[])
        write, read = buffer.write_port(), buffer.read_port(domain="sync")
        token_layout = data.StructLayout({"valid": 1, "first": 1, "last": 1, "row": index_shape(m_tile)})
        # a row's token travels as long as the row does from its operand register to the de-skew
        # (rows + cols - 1), plus that register, less the buffer's read, which meets the sums
        tokens = m.submodules.tokens = DelayLine(token_layout, rows + cols - 1)
        token = Signal(token_layout)        # the row whose sums leave the de-skew now

        # the swap follows its slice's first activations; a new slice may load once none is in flight
        launch_swap = Signal()
        swap = wavefront(m, launch_swap, rows + cols - 1, en)
        swap_idle = swap == 0

        shadow_full = Signal()
        load_row = Signal(index_shape(rows))
        load = Signal()
        m.d.comb += [
            self.b_stream.ready.eq(en & ~shadow_full & swap_idle),
            load.eq(self.b_stream.ready & self.b_stream.valid),
            array.w_load.eq(load), array.w_row.eq(load_row), array.w_data.eq(self.b_stream.payload),
        ]
        with m.If(load):
            m.d.sync += load_row.eq(Mux(load_row == rows - 1, 0, load_row + 1))
            with m.If(load_row == rows - 1):
                m.d.sync += shadow_full.eq(1)

        accept = Signal()
        take = Signal()                     # this cycle's A row enters the array
        a_in = Signal.like(self.a_stream.payload)     # operands enter through a register
        k_left = Signal(range(p.k_max + 1))     # reduction depth from this slice on
        row = Signal(index_shape(m_tile))
        first_slice = Signal()
        last_slice = k_left <= rows
        sums = Signal(row_layout)
        m.d.comb += [
            accept.eq(self.run_protocol.accepts(self)),
            en.eq(~(self.c_stream.valid & ~self.c_stream.ready)),
            skew_a.en.eq(en), array.en.eq(en), deskew.en.eq(en), tokens.en.eq(en),
            skew_a.i.eq(a_in),
            self.a_stream.ready.eq(take),
            array.a_in.eq(skew_a.o), array.swap.eq(swap), launch_swap.eq(take & (row == 0)),
            deskew.i.eq(array.psum),
            tokens.i.valid.eq(take), tokens.i.first.eq(first_slice), tokens.i.last.eq(last_slice),
            tokens.i.row.eq(row),
            # a stall re-reads the held row: a read port without an enable is what block RAMs offer
            read.addr.eq(Mux(en, tokens.o.row, token.row)),
            *(sums[j].eq(Mux(token.first, deskew.o[j], read.data[j] + deskew.o[j])) for j in range(cols)),
            write.addr.eq(token.row), write.data.eq(sums), write.en.eq(en & token.valid & ~token.last),
            self.c_stream.payload.eq(sums), self.c_stream.valid.eq(token.valid & token.last),
        ]
        with m.If(en):
            m.d.sync += [token.eq(tokens.o), a_in.eq(Mux(take, self.a_stream.payload, 0))]

        def begin_run():
            m.d.sync += [k_left.eq(self.k), first_slice.eq(1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    begin_run()
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [self.busy.eq(1),
                             take.eq(en & self.a_stream.valid & ((row != 0) | shadow_full))]
                with m.If(take):
                    m.d.sync += row.eq(Mux(row == m_tile - 1, 0, row + 1))
                    with m.If(row == 0):
                        m.d.sync += shadow_full.eq(0)
                    with m.If(row == m_tile - 1):
                        with m.If(last_slice):
                            m.d.comb += self.done.eq(1)
                            with m.If(accept):
                                begin_run()
                            with m.Else():
                                m.next = "IDLE"
                        with m.Else():
                            m.d.sync += [k_left.eq(k_left - rows), first_slice.eq(0)]


def build(params: SystolicParams) -> SystolicEngine:
    return SystolicEngine(params)


# ---------------------------------------------------------------------- host-side packing
def pack_a(params: SystolicParams, a: np.ndarray) -> list[int]:
    """A (``tile_rows x K``) as the a_stream beats of one run, per the module contract."""
    a = np.asarray(a, dtype=np.int64)
    m, k = a.shape
    if m != params.tile_rows:
        raise ParamError(f"A must have {params.tile_rows} rows, not {m}")
    if params.dataflow is Dataflow.OS:
        return pack_lanes(a.T, params.a_bits)
    r = params.rows
    padded = np.zeros((m, params.slices(k) * r), dtype=np.int64)
    padded[:, :k] = a
    return [beat for s in range(params.slices(k)) for beat in pack_lanes(padded[:, s * r:(s + 1) * r], params.a_bits)]


def pack_b(params: SystolicParams, b: np.ndarray) -> list[int]:
    """B (``K x cols``) as the b_stream beats of one run: one row per beat, zero rows to the
    end of the last slice (weight-stationary)."""
    b = np.asarray(b, dtype=np.int64)
    if b.shape[1] != params.cols:
        raise ParamError(f"B must have {params.cols} columns, not {b.shape[1]}")
    padded = np.zeros((params.b_beats(b.shape[0]), params.cols), dtype=np.int64)
    padded[:b.shape[0]] = b
    return pack_lanes(padded, params.w_bits)


def unpack_c(params: SystolicParams, beats: list[int]) -> np.ndarray:
    """The ``tile_rows`` c_stream beats of one run as a ``tile_rows x cols`` integer array."""
    return np.stack([unpack_lanes(w, params.cols, params.acc_width, params.signed) for w in beats])
