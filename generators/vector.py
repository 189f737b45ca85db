"""The vector unit: element-wise ops and row reductions over ``lanes``-wide beats.

A run applies one op (:class:`VectorOpcode`, sampled with ``start`` as ``op``, with the
rounding ``shift``) to a row of ``n`` beats of ``x_stream`` (and, for the binary ops, ``n``
beats of ``y_stream``, taken in the same cycle as ``x``):

* element-wise ops (``ADD``, ``MUL``, ``RELU``, ``RELU2``) compute a wide value ``w`` per
  element, then ``z = sat(round(w / 2**shift))``, rounding half up and saturating to the
  signed ``bits`` of a lane; ``n`` beats leave on ``z_stream``. Two pipeline stages
  (:data:`ELEMENTWISE_LATENCY`): the wide value, then the shift and saturation.
* reductions (``ABSMAX``, ``ARGMAX``) keep one running result per lane and emit one beat,
  :data:`REDUCTION_LATENCY` cycle after the row's last beat: ``ABSMAX`` the largest
  ``|x|`` (unsigned, in lane 0), ``ARGMAX`` the index of the first largest ``x`` (unsigned,
  in the beat's low bits); the beat's other bits are zero.

``done`` pulses in the cycle the run's last ``z`` beat leaves; the next start is taken in
that cycle. A start whose ``op`` names no op is refused, as one with ``n`` outside
1..max_beats is. With no stream stalling, a run of ``n`` beats takes ``n + latency`` cycles from
its accepted start to ``done``, back to back: the stated latencies are the ones the cost
model prices (:mod:`cost_models.vector`), held by the bench.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from generators.params import Params, Rule, int_field
from generators.widths import bit_length
from hw.run_control import RunSignature

__all__ = ["VectorOpcode", "VectorParams", "VectorUnit", "build", "ELEMENTWISE_LATENCY", "REDUCTION_LATENCY"]

ELEMENTWISE_LATENCY = 2
"""Cycles an element-wise run takes beyond its ``n`` beats (its two pipeline stages)."""
REDUCTION_LATENCY = 1
"""Cycles a reduction takes beyond its ``n`` beats (the lane tree's result beat)."""


class VectorOpcode(enum.IntEnum):
    """The op a run applies; its value is what ``op`` carries with ``start``."""
    ADD = 0       # x + y: residual and bias adds, group partial sums
    MUL = 1       # x * y: gated product, dequantization by scales
    RELU = 2      # max(x, 0)
    RELU2 = 3     # max(x, 0) ** 2 (BitNet b1.58 2B4T's FFN)
    ABSMAX = 4    # max |x| over the row: the per-token quantization scale
    ARGMAX = 5    # index of the first largest x: greedy decoding

    @property
    def binary(self) -> bool:
        return self in (VectorOpcode.ADD, VectorOpcode.MUL)

    @property
    def reduction(self) -> bool:
        return self in (VectorOpcode.ABSMAX, VectorOpcode.ARGMAX)

    @property
    def latency(self) -> int:
        return REDUCTION_LATENCY if self.reduction else ELEMENTWISE_LATENCY


def index_bits(max_beats, lanes) -> np.ndarray:
    """Width of an element index in a row of ``max_beats`` beats of ``lanes``."""
    return np.maximum(bit_length(np.asarray(max_beats, dtype=np.int64) * lanes - 1), 1)


@dataclass(frozen=True, kw_only=True)
class VectorParams(Params):
    """Parameters of the vector unit."""

    family: ClassVar[str] = "vector"

    lanes: int = int_field(8, 1, 64, log=True, doc="elements per beat: element operations per cycle")
    bits: int = int_field(16, 4, 32, doc="signed fixed-point width of an element in and out")
    max_beats: int = int_field(512, 1, 65536, log=True, doc="longest row one run takes, in beats")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("max_beats", ("lanes", "bits"),
             lambda c: index_bits(c["max_beats"], c["lanes"]) <= np.asarray(c["lanes"]) * c["bits"],
             lambda v: f"at most {1 << min(v['lanes'] * v['bits'], 62)} // lanes ({v['lanes']}) beats, "
                       f"so that an ARGMAX index fits in a beat of lanes x bits"),
    )

    @property
    def wide_bits(self) -> int:
        """Signed width of an element-wise op's value before the shift: a product of two lanes."""
        return 2 * self.bits

    @property
    def shift_limit(self) -> int:
        """``shift`` takes 0..shift_limit - 1."""
        return self.wide_bits


class VectorUnit(wiring.Component):
    """The vector unit (see the module docstring)."""

    def __init__(self, p: VectorParams):
        self.p = p
        self.run_protocol, self.beats_per_run = RunSignature("n", p.max_beats), None
        lane = data.ArrayLayout(signed(p.bits), p.lanes)
        super().__init__({**self.run_protocol.members,
                          "op": In(range(len(VectorOpcode))),
                          "shift": In(range(p.shift_limit)),
                          "x_stream": In(stream.Signature(lane)),
                          "y_stream": In(stream.Signature(lane)),
                          "z_stream": Out(stream.Signature(unsigned(p.lanes * p.bits)))})

    def elaborate(self, platform):
        m = Module()
        p = self.p
        lo, hi = -(1 << (p.bits - 1)), (1 << (p.bits - 1)) - 1
        op = Signal(range(len(VectorOpcode)))
        shift = Signal(range(p.shift_limit))
        feed_left = Signal(range(p.max_beats + 1))          # x beats still to take
        out_left = Signal(range(p.max_beats + 1))           # z beats still to give
        beat = Signal(range(max(p.max_beats, 2)))           # index of the next x beat
        accept = Signal()
        binary = (op == VectorOpcode.ADD) | (op == VectorOpcode.MUL)
        reduction = (op == VectorOpcode.ABSMAX) | (op == VectorOpcode.ARGMAX)

        # ---- the two element-wise stages: a stall moves neither
        v1, v2 = Signal(), Signal()
        w1 = [Signal(signed(p.wide_bits), name=f"w1_{i}") for i in range(p.lanes)]
        z2 = [Signal(signed(p.bits), name=f"z2_{i}") for i in range(p.lanes)]
        advance = ~v2 | self.z_stream.ready
        feeding = self.busy & (feed_left != 0) & (self.y_stream.valid | ~binary) & (advance | reduction)
        take = feeding & self.x_stream.valid
        m.d.comb += [self.x_stream.ready.eq(feeding & (self.y_stream.valid | ~binary)),
                     self.y_stream.ready.eq(feeding & binary & self.x_stream.valid)]
        with m.If(advance):
            m.d.sync += [v1.eq(take & ~reduction), v2.eq(v1)]
        for i in range(p.lanes):
            x, y = self.x_stream.payload[i], self.y_stream.payload[i]
            relu = Mux(x[-1], 0, x)
            square = op == VectorOpcode.RELU2
            product = Mux(square, relu, x) * Mux(square, relu, y)
            wide = Mux(op == VectorOpcode.ADD, x + y, Mux(op == VectorOpcode.RELU, relu, product))
            halves = (w1[i] << 1) >> shift                  # floor(w / 2**(shift - 1))
            rounded = (halves + 1) >> 1                     # floor(w / 2**shift + 1/2)
            with m.If(advance):
                m.d.sync += [w1[i].eq(wide),
                             z2[i].eq(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded)))]

        # ---- the reductions: a running result per lane, then a tree across lanes
        best = [Signal(signed(p.bits + 1), name=f"best_{i}") for i in range(p.lanes)]
        where = [Signal(range(max(p.max_beats, 2)), name=f"where_{i}") for i in range(p.lanes)]
        absmax = op == VectorOpcode.ABSMAX
        for i in range(p.lanes):
            x = self.x_stream.payload[i]
            value = Mux(absmax & x[-1], -x, x)
            with m.If(accept):
                m.d.sync += [best[i].eq(Mux(self.op == VectorOpcode.ABSMAX, 0, lo)), where[i].eq(0)]
            with m.Elif(take & reduction & (value > best[i])):
                m.d.sync += [best[i].eq(value), where[i].eq(beat)]
        width = int(index_bits(p.max_beats, p.lanes))
        pairs = [(best[i], (where[i] * p.lanes + i)[:width]) for i in range(p.lanes)]
        while len(pairs) > 1:                               # the first largest wins a tie
            merged = []
            for (va, ia), (vb, ib) in zip(pairs[0::2], pairs[1::2]):
                later = (vb > va) | ((vb == va) & (ib < ia))
                merged.append((Mux(later, vb, va), Mux(later, ib, ia)))
            pairs = merged + ([pairs[-1]] if len(pairs) % 2 else [])
        top, top_index = pairs[0]
        result = Mux(absmax, top[:p.bits], top_index)

        # ---- run control
        out_valid = Mux(reduction, self.busy & (feed_left == 0), v2)
        gives = out_valid & self.z_stream.ready
        m.d.comb += [accept.eq(self.run_protocol.accepts(self) & (self.op < len(VectorOpcode))),
                     self.done.eq(gives & (out_left == 1)),
                     self.z_stream.valid.eq(out_valid),
                     self.z_stream.payload.eq(Mux(reduction, result, Cat(*z2)))]
        with m.If(take):
            m.d.sync += [feed_left.eq(feed_left - 1), beat.eq(beat + 1)]
        with m.If(gives):
            m.d.sync += out_left.eq(out_left - 1)
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        with m.If(accept):
            n = self.n
            is_reduction = (self.op == VectorOpcode.ABSMAX) | (self.op == VectorOpcode.ARGMAX)
            m.d.sync += [self.busy.eq(1), op.eq(self.op), shift.eq(self.shift), feed_left.eq(n),
                         out_left.eq(Mux(is_reduction, 1, n)), beat.eq(0)]
        return m


def build(p: VectorParams) -> VectorUnit:
    return VectorUnit(p)
