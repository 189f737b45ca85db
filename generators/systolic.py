"""Systolic GEMM tile engine: ``C = A @ B`` for one ``rows x cols`` output tile.

Stream contract (all streams valid/ready, lane 0 in the least significant bits):

* ``b_stream`` carries ``K`` beats, beat ``k`` = row ``B[k, :]`` (``cols`` lanes
  of ``w_bits``), in both dataflows.
* ``a_stream`` carries A (``rows`` lanes of ``a_bits``):

  - output-stationary (``os``): ``K`` beats, beat ``k`` = column ``A[:, k]``;
    A and B beats are consumed in pairs.
  - weight-stationary (``ws``): ``ceil(K/rows)`` passes of ``rows`` beats;
    in pass ``p`` beat ``m`` = ``A[m, p*rows : p*rows+rows]``, lanes past
    ``K`` ignored (the packer zero-fills them). Each pass first takes its
    ``min(rows, K - p*rows)`` B beats as weights.

* ``c_stream`` carries ``rows`` beats per run, beat ``i`` = ``C[i, :]``
  (``cols`` lanes of ``acc_bits``), wrapped modulo ``2**acc_bits``.

Control: ``start`` with ``k`` (1..``k_max``) is accepted while ``busy`` is low
or ``done`` is high (back-to-back runs); a start with ``k`` out of range is
ignored. ``done`` pulses when the tile moves to the output bank, from which it
drains while the next run computes. :func:`pack_a` / :func:`pack_b` /
:func:`unpack_c` are the host-side packers for exactly this contract.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from generators.lanes import pack_lanes, unpack_lanes
from generators.params import Params, bool_field, choice_field, int_field
from generators.widths import bit_length
from hw import index_shape
from hw.delay import DelayLine
from hw.run_control import RunSignature, handoff_state, run_handshake
from hw.skew import SkewBuffer
from hw.systolic_array import OutputStationaryArray, WeightStationaryArray
from hw.tile_buffer import RowAccumulator, TileDrain


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

    rows: int = int_field(4, 1, 64, doc="PE rows; output tile rows (and the K slice per pass in ws)")
    cols: int = int_field(4, 1, 64, doc="PE columns; output tile columns")
    a_bits: int = int_field(8, 2, 16, doc="width of A elements")
    w_bits: int = int_field(8, 2, 16, doc="width of B (weight) elements")
    acc_bits: int | None = int_field(
        None, 2, 64, optional=True, search=False,
        doc="accumulator and C width; unset = full precision for k_max, narrower wraps")
    signed: bool = bool_field(True, doc="two's complement A, B and C (else unsigned)")
    dataflow: Dataflow = choice_field(Dataflow.OS, doc="os = output-stationary, ws = weight-stationary")
    k_max: int = int_field(256, 1, 65536, log=True, doc="deepest reduction K one run accepts")

    @property
    def acc_width(self) -> int:
        """The accumulator width in effect (given, or full precision for ``k_max``)."""
        return int(acc_width(type(self).columns([self]))[0])

    def shape(self, bits: int) -> Shape:
        return signed(bits) if self.signed else unsigned(bits)

    def a_beats(self, k: int) -> int:
        """A-stream beats one run of depth ``k`` consumes."""
        if self.dataflow is Dataflow.OS:
            return k
        return -(-k // self.rows) * self.rows


class SystolicEngine(wiring.Component):
    """The complete tile engine: skew, PE array, de-skew/accumulate, drain and controller."""

    def __init__(self, params: SystolicParams):
        self.params = params
        p = params
        self._a_shape, self._w_shape = p.shape(p.a_bits), p.shape(p.w_bits)
        self._acc_shape = p.shape(p.acc_width)
        self.run_protocol, self.beats_per_run = RunSignature("k", p.k_max), p.rows
        super().__init__({
            **self.run_protocol.members,
            "a_stream": In(stream.Signature(data.ArrayLayout(self._a_shape, p.rows))),
            "b_stream": In(stream.Signature(data.ArrayLayout(self._w_shape, p.cols))),
            "c_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, p.cols))),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        drain = m.submodules.drain = TileDrain(data.ArrayLayout(self._acc_shape, p.cols), p.rows)
        wiring.connect(m, drain.o, wiring.flipped(self.c_stream))

        accept, handoff = run_handshake(m, self, drain)

        if p.dataflow is Dataflow.OS:
            self._elaborate_os(m, drain, accept, handoff)
        else:
            self._elaborate_ws(m, drain, accept, handoff)
        return m

    # ------------------------------------------------------------------ output-stationary
    def _elaborate_os(self, m, drain, accept, handoff):
        p = self.params
        en = Signal()
        skew_a = m.submodules.skew_a = SkewBuffer(self._a_shape, p.rows)
        skew_b = m.submodules.skew_b = SkewBuffer(self._w_shape, p.cols)
        array = m.submodules.array = OutputStationaryArray(
            p.rows, p.cols, self._a_shape, self._w_shape, self._acc_shape)
        feeding = Signal()
        m.d.comb += [
            skew_a.en.eq(en), skew_b.en.eq(en), array.en.eq(en),
            skew_a.i.eq(Mux(feeding, self.a_stream.payload, 0)),
            skew_b.i.eq(Mux(feeding, self.b_stream.payload, 0)),
            array.a_in.eq(skew_a.o), array.b_in.eq(skew_b.o),
            array.clear.eq(accept),
            *(drain.tile[r].eq(array.acc[r]) for r in range(p.rows)),
        ]
        k_left = Signal(range(p.k_max + 1))
        flush = p.rows + p.cols - 2
        flush_left = Signal(index_shape(flush + 1))

        def begin_run():
            m.d.sync += k_left.eq(self.k)
            m.next = "FEED"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    begin_run()
            with m.State("FEED"):
                m.d.comb += [self.busy.eq(1), feeding.eq(1)]
                pair = self.a_stream.valid & self.b_stream.valid
                m.d.comb += [en.eq(pair), self.a_stream.ready.eq(pair), self.b_stream.ready.eq(pair)]
                with m.If(pair):
                    m.d.sync += k_left.eq(k_left - 1)
                    with m.If(k_left == 1):
                        m.d.sync += flush_left.eq(flush)
                        m.next = "FLUSH" if flush else "HANDOFF"
            if flush:
                self._countdown(m, "FLUSH", flush_left, en, "HANDOFF")
            handoff_state(m, self, accept, handoff, drain, begin_run)

    # ------------------------------------------------------------------ weight-stationary
    def _elaborate_ws(self, m, drain, accept, handoff):
        p = self.params
        rows, cols = p.rows, p.cols
        en = Signal()
        skew_a = m.submodules.skew_a = SkewBuffer(self._a_shape, rows)
        array = m.submodules.array = WeightStationaryArray(
            rows, cols, self._a_shape, self._w_shape, self._acc_shape)
        deskew = m.submodules.deskew = SkewBuffer(self._acc_shape, cols, deskew=True)
        bank = m.submodules.bank = RowAccumulator(data.ArrayLayout(self._acc_shape, cols), rows)
        token_layout = data.StructLayout({"valid": 1, "first": 1, "row": index_shape(rows)})
        latency = rows + cols - 1           # a row enters the skew -> its sums leave the de-skew
        tokens = m.submodules.tokens = DelayLine(token_layout, latency)

        k_left = Signal(range(p.k_max + 1))     # reduction depth not yet loaded
        chunk = Signal(range(rows + 1))          # K slice of the current pass
        load_row = Signal(index_shape(rows))
        feed_row = Signal(index_shape(rows))
        first_pass = Signal()
        gap = max(cols - 2, 0)                    # keeps new weights behind the last activation
        gap_left = Signal(range(max(gap, latency) + 1))
        feeding = Signal()

        masked = Signal.like(self.a_stream.payload)
        for lane in range(rows):
            m.d.comb += masked[lane].eq(Mux(lane < chunk, self.a_stream.payload[lane], 0))
        m.d.comb += [
            skew_a.en.eq(en), array.en.eq(en), deskew.en.eq(en), tokens.en.eq(en),
            skew_a.i.eq(Mux(feeding, masked, 0)),
            array.a_in.eq(skew_a.o),
            array.w_row.eq(load_row), array.w_data.eq(self.b_stream.payload),
            deskew.i.eq(array.psum),
            tokens.i.valid.eq(feeding), tokens.i.first.eq(first_pass), tokens.i.row.eq(feed_row),
            bank.row.eq(deskew.o), bank.index.eq(tokens.o.row), bank.first.eq(tokens.o.first),
            bank.write.eq(en & tokens.o.valid),
            *(drain.tile[r].eq(bank.tile[r]) for r in range(rows)),
        ]

        def begin_run():
            m.d.sync += [
                k_left.eq(self.k), chunk.eq(Mux(self.k < rows, self.k, rows)),
                load_row.eq(0), first_pass.eq(1),
            ]
            m.next = "LOAD"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    begin_run()
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), en.eq(self.b_stream.valid),
                             self.b_stream.ready.eq(1), array.w_load.eq(self.b_stream.valid)]
                with m.If(self.b_stream.valid):
                    m.d.sync += load_row.eq(load_row + 1)
                    with m.If(load_row == chunk - 1):
                        m.d.sync += [feed_row.eq(0), k_left.eq(k_left - chunk)]
                        m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [self.busy.eq(1), feeding.eq(self.a_stream.valid),
                             en.eq(self.a_stream.valid), self.a_stream.ready.eq(1)]
                with m.If(self.a_stream.valid):
                    m.d.sync += feed_row.eq(feed_row + 1)
                    with m.If(feed_row == rows - 1):
                        m.d.sync += [first_pass.eq(0), load_row.eq(0),
                                     chunk.eq(Mux(k_left < rows, k_left, rows))]
                        with m.If(k_left == 0):
                            m.d.sync += gap_left.eq(latency)
                            m.next = "FLUSH"
                        with m.Else():
                            m.d.sync += gap_left.eq(gap)
                            m.next = "GAP" if gap else "LOAD"
            if gap:
                self._countdown(m, "GAP", gap_left, en, "LOAD")
            self._countdown(m, "FLUSH", gap_left, en, "HANDOFF")
            handoff_state(m, self, accept, handoff, drain, begin_run)

    # ------------------------------------------------------------------ shared controller state
    def _countdown(self, m, state, counter, en, then):
        """Advance the array for ``counter`` cycles (loaded on entry), then go to ``then``."""
        with m.State(state):
            m.d.comb += [self.busy.eq(1), en.eq(1)]
            m.d.sync += counter.eq(counter - 1)
            with m.If(counter == 1):
                m.next = then


def build(params: SystolicParams) -> SystolicEngine:
    return SystolicEngine(params)


# ---------------------------------------------------------------------- host-side packing
def pack_a(params: SystolicParams, a: np.ndarray) -> list[int]:
    """A (``rows x K``) as the a_stream beats of one run, per the module contract."""
    a = np.asarray(a, dtype=np.int64)
    rows, k = a.shape
    if rows != params.rows:
        raise ValueError(f"A must have {params.rows} rows, not {rows}")
    if params.dataflow is Dataflow.OS:
        return pack_lanes(a.T, params.a_bits)
    padded = np.zeros((rows, params.a_beats(k)), dtype=np.int64)
    padded[:, :k] = a
    passes = [padded[:, p * rows:(p + 1) * rows] for p in range(padded.shape[1] // rows)]
    return [beat for chunk in passes for beat in pack_lanes(chunk, params.a_bits)]


def pack_b(params: SystolicParams, b: np.ndarray) -> list[int]:
    """B (``K x cols``) as the b_stream beats of one run: one row per beat."""
    b = np.asarray(b, dtype=np.int64)
    if b.shape[1] != params.cols:
        raise ValueError(f"B must have {params.cols} columns, not {b.shape[1]}")
    return pack_lanes(b, params.w_bits)


def unpack_c(params: SystolicParams, beats: list[int]) -> np.ndarray:
    """The ``rows`` c_stream beats of one run as a ``rows x cols`` integer array."""
    return np.stack([unpack_lanes(w, params.cols, params.acc_width, params.signed) for w in beats])
