"""The vector unit: element-wise ops and row reductions over ``lanes``-wide beats.

A run applies one op (:class:`VectorOpcode`, sampled with ``start`` as ``op``, with the
rounding ``shift``) to a row of ``n`` beats of ``x_stream`` (and, for the binary ops, ``n``
beats of ``y_stream``, taken in the same cycle as ``x``):

* element-wise ops (``ADD``, ``MUL``, ``RELU``, ``RELU2``, ``SCALE``, ``ROPE``, ``SILU``,
  ``GELU``, ``CENTER``) compute a wide value ``w`` per element, then
  ``z = sat(floor(w / 2**shift + 1/2))``, saturating to the signed ``bits`` of a lane; ``n`` beats leave on ``z_stream``. ``SCALE`` multiplies by the
  unit's scalar, which the last ``ABSMAX`` or ``RMS`` set; ``CENTER`` subtracts the offset the
  last ``MEAN`` set. ``ROPE`` rotates each lane pair
  ``(x[2i], x[2i+1])`` by ``(y[2i], y[2i+1]) = (cos, sin)`` of its position (the complex
  product; with an odd ``lanes`` the last lane has no partner and is only scaled by its
  ``y``): the interleaved convention, to which a compiler brings the rotate-half one by
  permuting the Q and K projections' rows alike. ``SILU`` and ``GELU`` multiply ``x`` by its
  gate, ``sigmoid`` or ``Phi`` of ``x / 2**input_frac``, looked up in each lane's table
  (:class:`GateTable`: ``2**table_bits`` entries per unit over [-8, 8), 0 or 1 beyond, in
  units of ``2**-(bits - 1)``; ``shift = bits - 1`` returns the input's format). Two
  pipeline stages: the wide value, then the shift and saturation.
* reductions (``ARGMAX``, ``ABSMAX``, ``RMS``, ``MEAN``) emit one beat: ``ARGMAX`` the index of the
  first largest ``x`` (unsigned, in the beat's low bits); ``ABSMAX`` the largest ``|x|`` (in
  lane 0), and sets the scalar to ``floor(127 * 2**(bits + 1) / absmax)`` so that ``SCALE``
  at ``shift = bits + 1`` quantizes the row to [-127, 127]; ``RMS`` sets the scalar to
  ``floor(2**(bits + 7) / sqrt(mean(x**2) + 1))``, so that ``SCALE`` normalizes the row (the
  mean is over ``n * lanes`` elements; the ``+ 1`` is an epsilon of one unit squared), and
  emits it (its low ``lanes * bits`` bits); ``MEAN`` sets the offset to ``floor(mean(x) +
  1/2)`` and emits it (in lane 0). The scalars and the offset come from a restoring divider
  and a digit-by-digit square root, one quotient or root bit per cycle.

``done`` pulses in the cycle the run's last ``z`` beat leaves; the next start is taken in
that cycle; a start whose ``op`` names no op is refused, as one with ``n`` outside
1..max_beats is. With no stream stalling, a run of ``n`` beats takes ``n + latency(op)`` cycles
from its accepted start to ``done``, back to back (:func:`latency`): the stated latencies
the cost model prices (:mod:`cost_models.vector`), held by the bench.
"""
from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from generators.params import Params, Rule, int_field
from generators.widths import bit_length, bits_for
from hw.run_control import RunSignature

__all__ = ["GateTable", "VectorOpcode", "VectorParams", "VectorUnit", "build", "latency"]

QUANT_LEVELS = 127
"""``ABSMAX`` readies a symmetric int8 quantization: ``SCALE`` maps the row onto +-127."""


class VectorOpcode(enum.IntEnum):
    """The op a run applies; its value is what ``op`` carries with ``start``."""
    ADD = 0       # x + y: residual and bias adds, group partial sums
    MUL = 1       # x * y: gated product, dequantization by scales, RMSNorm's gain
    RELU = 2      # max(x, 0)
    RELU2 = 3     # max(x, 0) ** 2 (BitNet b1.58 2B4T's FFN)
    SCALE = 4     # x * scalar: quantization after ABSMAX, normalization after RMS
    ROPE = 5      # lane pairs rotated by (cos, sin) from y: rotary positions
    SILU = 6      # x * sigmoid(x) (Llama's FFN)
    GELU = 7      # x * Phi(x) (GPT-style FFNs)
    CENTER = 8    # x - offset, the offset the last MEAN set: LayerNorm's centring
    ARGMAX = 9    # index of the first largest x: greedy decoding
    ABSMAX = 10   # max |x| over the row: the per-token quantization scale
    RMS = 11      # 1 / sqrt(mean(x**2) + 1): RMSNorm's factor
    MEAN = 12     # the row's mean, rounded: LayerNorm's offset

    @property
    def binary(self) -> bool:
        return self in (VectorOpcode.ADD, VectorOpcode.MUL, VectorOpcode.ROPE)

    @property
    def reduction(self) -> bool:
        return self >= VectorOpcode.ARGMAX

    @property
    def gated(self) -> bool:
        return self in GATES


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))   # no overflow


def gauss_cdf(t: float) -> float:
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


GATES: dict[VectorOpcode, Callable[[float], float]] = {VectorOpcode.SILU: sigmoid, VectorOpcode.GELU: gauss_cdf}
"""Each gated op's gate: ``z = x * gate(x)``. Both rise monotonically from 0 to 1, which the
tables' error bound relies on."""
GATE_RANGE = 8
"""The tables cover ``[-8, 8)``; beyond, a gate is 0 or 1 (``sigmoid(-8) = 3.4e-4``)."""


def derived_input_frac(bits):
    """``input_frac`` unset: half the lane's bits are fractional."""
    return np.asarray(bits) // 2


def gate_segments(bits, frac, step):
    """The lowest and highest segment index of a gate table (``x >> (frac - step)`` within
    [-8, 8) and within the lane's range), vectorised."""
    bits, frac, step = (np.asarray(v, dtype=np.int64) for v in (bits, frac, step))
    drop, top = frac - step, np.left_shift(1, bits - 1)
    return (np.maximum(-np.left_shift(GATE_RANGE, step), np.right_shift(-top, drop)),
            np.minimum(np.left_shift(GATE_RANGE, step) - 1, np.right_shift(top - 1, drop)))


@dataclass(frozen=True)
class GateTable:
    """A gate's lookup table for ``bits``-bit lanes whose value is ``x / 2**frac``.

    The entry for ``x >> drop`` (``drop = frac - step``: ``2**step`` entries per unit, at most
    one per input value) holds ``round(2**(bits - 1) * (g(a) + g(b)) / 2)``, with ``a`` and
    ``b`` the first and last input of its segment: the middle of the gate's values there,
    since it is monotonic. Segments reach from the lowest to the highest input within
    ``[-8, 8)``; below the table the gate is 0, above it ``one = 2**(bits - 1)``.
    """
    bits: int
    frac: int
    table_bits: int

    @property
    def step(self) -> int:
        return min(self.table_bits, self.frac)

    @property
    def drop(self) -> int:
        return self.frac - self.step

    @property
    def one(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def first(self) -> int:
        """The lowest segment index in the table (``x >> drop`` below it: gate 0)."""
        return int(gate_segments(self.bits, self.frac, self.step)[0])

    @property
    def last(self) -> int:
        """The highest segment index in the table (above it: gate ``one``)."""
        return int(gate_segments(self.bits, self.frac, self.step)[1])

    def segment(self, index: int) -> tuple[float, float]:
        """The first and last input value of a segment, as reals."""
        return (index << self.drop) / 2 ** self.frac, (((index + 1) << self.drop) - 1) / 2 ** self.frac

    @functools.cache
    def entries(self, op: VectorOpcode) -> tuple[int, ...]:
        gate = GATES[op]
        return tuple(round(self.one * (gate(a) + gate(b)) / 2)
                for a, b in map(self.segment, range(self.first, self.last + 1)))


def index_bits(max_beats, lanes) -> np.ndarray:
    """Width of an element index in a row of ``max_beats`` beats of ``lanes``."""
    return np.maximum(bit_length(np.asarray(max_beats, dtype=np.int64) * lanes - 1), 1)


def quant_shift(bits):
    """The ``shift`` at which ``SCALE`` quantizes after ``ABSMAX``."""
    return np.asarray(bits) + 1


def norm_shift(bits):
    """``RMS``'s scalar is ``2**norm_shift / rms``: ``SCALE`` at ``norm_shift - f`` leaves ``f``
    fractional bits."""
    return np.asarray(bits) + 7


def scalar_bits(bits):
    """Unsigned width of the scalar: it holds ``127 * 2**(bits + 1)`` and ``2**(bits + 7)``."""
    return np.asarray(bits) + 8


def sum_bits(lanes, bits, max_beats):
    """Width of ``RMS``'s sum of ``x**2 + 1`` over the longest row, ``N * (2**k + 1)`` with
    ``N = max_beats * lanes`` elements and ``k = 2 * bits - 2``, in int64 arithmetic."""
    n = np.asarray(max_beats, dtype=np.int64) * lanes
    k = 2 * np.asarray(bits, dtype=np.int64) - 2
    width = bit_length(n)
    gap = np.left_shift(np.int64(1), width) - n                   # N * 2**k + N carries iff N >= gap * 2**k
    carry = (k <= 24) & (n >= np.left_shift(gap, np.minimum(k, 24)))   # (N < 2**23: never for k > 24)
    return width + k + carry


def divide_steps(lanes, bits, max_beats):
    """Quotient bits of the divider: ``RMS``'s dividend ``n * lanes * 2**(2 * norm_shift)``."""
    return bits_for(np.asarray(max_beats, dtype=np.int64) * lanes + 1) + 2 * norm_shift(bits)


def root_steps(bits):
    """Root bits of the square root of ``RMS``'s quotient (at most ``2**(2 * norm_shift)``)."""
    return norm_shift(bits) + 1


def latency(op: VectorOpcode, lanes, bits, max_beats):
    """Cycles a run takes beyond its ``n`` beats, unstalled: the element-wise pipeline's two
    stages; a reduction's result beat after the divider (load, steps, hand-over), for ``MEAN``
    the drained first stage, for ``RMS`` the drained square and the root."""
    divide = 3 + divide_steps(lanes, bits, max_beats)
    return {VectorOpcode.ARGMAX: 1 + 0 * divide, VectorOpcode.ABSMAX: divide, VectorOpcode.MEAN: divide + 1,
            VectorOpcode.RMS: divide + 2 + root_steps(bits)}.get(op, 2 + 0 * divide)


@dataclass(frozen=True, kw_only=True)
class VectorParams(Params):
    """Parameters of the vector unit."""

    family: ClassVar[str] = "vector"

    lanes: int = int_field(8, 1, 64, log=True, doc="elements per beat: element operations per cycle")
    bits: int = int_field(16, 4, 32, doc="signed fixed-point width of an element in and out")
    max_beats: int = int_field(512, 1, 65536, log=True, doc="longest row one run takes, in beats")
    table_bits: int = int_field(3, 0, 6, doc="SILU and GELU tables: log2 of their entries per unit of x, "
                                             "over [-8, 8)")
    input_frac: int | None = int_field(None, 1, 31, optional=True, search=False,
                                       doc="fractional bits of SILU and GELU's input x; unset = bits // 2")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("input_frac", ("bits",), lambda c: np.asarray(c["input_frac"]) < np.asarray(c["bits"]),
             "below bits ({bits})"),
        Rule("max_beats", ("lanes", "bits"),
             lambda c: index_bits(c["max_beats"], c["lanes"]) <= np.asarray(c["lanes"]) * c["bits"],
             lambda v: f"at most {1 << min(v['lanes'] * v['bits'], 62)} // lanes ({v['lanes']}) beats, "
                       f"so that an ARGMAX index fits in a beat of lanes x bits"),
    )

    @property
    def wide_bits(self) -> int:
        """Signed width of an element-wise op's value before the shift: a lane times the scalar."""
        return self.bits + int(scalar_bits(self.bits)) + 1

    @property
    def shift_limit(self) -> int:
        """``shift`` takes 0..shift_limit - 1."""
        return self.wide_bits

    @property
    def sum_bits(self) -> int:
        """Width of ``RMS``'s sum of ``x**2 + 1`` over the longest row."""
        return int(sum_bits(self.lanes, self.bits, self.max_beats))

    def latency(self, op: VectorOpcode) -> int:
        return int(latency(op, self.lanes, self.bits, self.max_beats))

    @property
    def gate_table(self) -> GateTable:
        frac = self.input_frac if self.input_frac is not None else int(derived_input_frac(self.bits))
        return GateTable(self.bits, frac, self.table_bits)


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
        width = int(index_bits(p.max_beats, p.lanes))
        base = Signal(max(width, int(bit_length(p.max_beats * p.lanes))))   # elements taken: the next beat's lane 0
        scalar = Signal(int(scalar_bits(p.bits)))           # SCALE's factor, set by ABSMAX and RMS
        offset = Signal(signed(p.bits))                     # CENTER's offset, set by MEAN
        accept = Signal()
        # decoded once, each a signal: an expression is written out again at every use, and its
        # copies are logic no stimulus can tell apart
        is_op = {code: Signal(name=f"is_{code.name.lower()}") for code in VectorOpcode}
        binary, reduction = Signal(), Signal()
        m.d.comb += [*(is_op[code].eq(op == code) for code in VectorOpcode),
                     binary.eq(is_op[VectorOpcode.ADD] | is_op[VectorOpcode.MUL] | is_op[VectorOpcode.ROPE]),
                     reduction.eq(op >= VectorOpcode.ARGMAX)]
        mean = is_op[VectorOpcode.MEAN]
        pipelined = Signal()                                # RMS squares in the first stage, MEAN sums there
        m.d.comb += pipelined.eq(~reduction | is_op[VectorOpcode.RMS] | mean)

        # ---- the two element-wise stages: a stall moves neither
        v1, v2 = Signal(), Signal()
        w1 = [Signal(signed(p.wide_bits), name=f"w1_{i}") for i in range(p.lanes)]
        z2 = [Signal(signed(p.bits), name=f"z2_{i}") for i in range(p.lanes)]
        advance = ~v2 | self.z_stream.ready
        feeding = self.busy & (feed_left != 0) & (self.y_stream.valid | ~binary) & (advance | ~pipelined)
        take = feeding & self.x_stream.valid
        m.d.comb += [self.x_stream.ready.eq(feeding & (self.y_stream.valid | ~binary)),
                     self.y_stream.ready.eq(feeding & binary & self.x_stream.valid)]
        with m.If(advance):
            m.d.sync += [v1.eq(take & pipelined), v2.eq(v1 & ~reduction)]
        factor = Cat(scalar, Const(0, 1)).as_signed()
        square = is_op[VectorOpcode.RELU2]
        rope = is_op[VectorOpcode.ROPE]
        gated = Signal()
        m.d.comb += gated.eq(is_op[VectorOpcode.SILU] | is_op[VectorOpcode.GELU])
        table = p.gate_table
        silu, gelu = (Array(Const(e, p.bits + 1) for e in table.entries(g))
                      for g in (VectorOpcode.SILU, VectorOpcode.GELU))
        xs, ys = self.x_stream.payload, self.y_stream.payload
        for i in range(p.lanes):
            x, y = xs[i], ys[i]
            relu = Mux(x[-1], 0, x)
            odd = i % 2 == 1
            own_y = Mux(rope, ys[i - 1], y) if odd else y      # lane 2i+1: x[2i+1] * cos
            segment = x >> table.drop
            entry = Signal(range(len(silu)), name=f"entry_{i}")
            gate = Signal(p.bits + 1, name=f"gate_{i}")      # a signal: read from two tables
            m.d.comb += [entry.eq(segment - table.first),
                         gate.eq(Mux(segment < table.first, 0, Mux(segment > table.last, table.one,
                                     Mux(is_op[VectorOpcode.GELU], gelu[entry], silu[entry]))))]
            other = Mux(gated, gate, Mux(is_op[VectorOpcode.RMS], x, Mux(is_op[VectorOpcode.SCALE], factor, own_y)))
            product = Signal(signed(2 * p.bits + 9), name=f"product_{i}")   # a signal: used twice
            m.d.comb += product.eq(Mux(square, relu, x) * Mux(square, relu, other))
            if odd:                                            # + x[2i] * sin
                turned = product + xs[i - 1] * y
            elif i + 1 < p.lanes:                              # - x[2i+1] * sin
                turned = product - xs[i + 1] * ys[i + 1]
            else:                                              # an odd lanes' last lane: unpaired
                turned = product
            centred = x - Mux(is_op[VectorOpcode.CENTER], offset, 0)     # MEAN: x itself
            wide = Mux(is_op[VectorOpcode.ADD], x + y,
                       Mux(is_op[VectorOpcode.RELU], relu,
                           Mux(rope, turned, Mux(is_op[VectorOpcode.CENTER] | mean, centred, product))))
            halves = (w1[i] << 1) >> shift                  # floor(w / 2**(shift - 1))
            rounded = Signal(signed(p.wide_bits + 1), name=f"rounded_{i}")   # a signal: read thrice
            m.d.comb += rounded.eq((halves + 1) >> 1)       # floor(w / 2**shift + 1/2)
            with m.If(advance):
                m.d.sync += [w1[i].eq(wide),
                             z2[i].eq(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded)))]

        # ---- ARGMAX and ABSMAX: a running result per lane, then a tree across lanes
        best = [Signal(signed(p.bits + 1), name=f"best_{i}") for i in range(p.lanes)]
        where = [Signal(width, name=f"where_{i}") for i in range(p.lanes)]     # its beat's lane 0
        absmax = is_op[VectorOpcode.ABSMAX]
        for i in range(p.lanes):
            x = self.x_stream.payload[i]
            value = Mux(absmax & x[-1], -x, x)
            with m.If(accept):
                m.d.sync += [best[i].eq(Mux(self.op == VectorOpcode.ARGMAX, lo, 0)), where[i].eq(0)]
            with m.Elif(take & ~pipelined & (value > best[i])):
                m.d.sync += [best[i].eq(value), where[i].eq(base)]
        pairs = [(best[i], (where[i] + i)[:width]) for i in range(p.lanes)]
        level = 0
        while len(pairs) > 1:                               # the first largest wins a tie
            merged = []
            for k, ((va, ia), (vb, ib)) in enumerate(zip(pairs[0::2], pairs[1::2])):
                # each node is a signal: an expression would be copied into both of its uses,
                # doubling the netlist per level
                value = Signal(signed(p.bits + 1), name=f"tree{level}_{k}")
                index = Signal(width, name=f"tree{level}_{k}_index")
                later = (vb > va) | ((vb == va) & (ib < ia))
                m.d.comb += [value.eq(Mux(later, vb, va)), index.eq(Mux(later, ib, ia))]
                merged.append((value, index))
            pairs = merged + ([pairs[-1]] if len(pairs) % 2 else [])
            level += 1
        top, top_index = pairs[0]

        # ---- RMS: the sum of x**2 + 1 over the row, accumulated from the first stage; MEAN:
        # the sum of x there, in two's complement (it needs bits + width(n) bits: fewer)
        total = Signal(p.sum_bits)
        with m.If(accept):
            m.d.sync += total.eq(0)
        with m.Elif(v1 & is_op[VectorOpcode.RMS]):
            m.d.sync += total.eq(total + sum(w1[i].as_unsigned() for i in range(p.lanes)) + p.lanes)
        with m.Elif(v1 & mean):
            m.d.sync += total.eq(total + sum(w1[i] for i in range(p.lanes)))
        # MEAN's floor(sum / N + 1/2) = floor((2 sum + N) / 2N), a negative one through the
        # magnitude: floor(-a / d) = -floor((a + d - 1) / d)
        doubled = Signal(signed(p.sum_bits + 2))
        m.d.comb += doubled.eq(Cat(Const(0, 1), total).as_signed() + base)
        negative = Signal()

        # ---- the scalar: a restoring divider, then (RMS) a digit-by-digit square root
        steps = int(divide_steps(p.lanes, p.bits, p.max_beats))
        roots = int(root_steps(p.bits))
        divisor = Signal(max(p.sum_bits, p.bits + 1))
        dividend, quotient = Signal(steps), Signal(steps)
        remainder = Signal(len(divisor))
        radicand, root = Signal(2 * roots), Signal(roots)
        root_rem = Signal(roots + 2)
        left = Signal(range(max(steps, 2 * roots) + 1))
        phase = Signal(2)                                   # 0 feed, 1 divide, 2 root, 3 result
        fed = self.busy & (feed_left == 0)
        with m.If(fed & (phase == 0) & ~is_op[VectorOpcode.ARGMAX] & reduction & ~v1):
            below = doubled[-1]
            numerator = Mux(absmax, QUANT_LEVELS << int(quant_shift(p.bits)),
                            Mux(mean, Mux(below, ((base << 1) - 1) - doubled, doubled),
                                base << (2 * int(norm_shift(p.bits)))))    # base: the row's elements
            m.d.sync += [divisor.eq(Mux(absmax, top, Mux(mean, base << 1, total))), dividend.eq(numerator),
                         negative.eq(below), remainder.eq(0),
                         quotient.eq(0), left.eq(steps), phase.eq(1)]
        with m.If(phase == 1):
            with m.If(left != 0):
                trial = Cat(dividend[-1], remainder)
                fits = trial >= divisor
                m.d.sync += [remainder.eq(Mux(fits, trial - divisor, trial)), quotient.eq(Cat(fits, quotient)),
                             dividend.eq(dividend << 1), left.eq(left - 1)]
            with m.Elif(absmax):
                m.d.sync += [scalar.eq(quotient), phase.eq(3)]
            with m.Elif(mean):
                m.d.sync += [offset.eq(Mux(negative, -quotient, quotient)), phase.eq(3)]
            with m.Else():
                m.d.sync += [radicand.eq(quotient), root.eq(0), root_rem.eq(0), left.eq(roots), phase.eq(2)]
        with m.If(phase == 2):
            with m.If(left != 0):
                trial = Cat(radicand[-2:], root_rem)
                odd = Cat(Const(1, 2), root)
                fits = trial >= odd
                m.d.sync += [root_rem.eq(Mux(fits, trial - odd, trial)), root.eq(Cat(fits, root)),
                             radicand.eq(radicand << 2), left.eq(left - 1)]
            with m.Else():
                m.d.sync += [scalar.eq(root), phase.eq(3)]
        result = Mux(is_op[VectorOpcode.ARGMAX], top_index,
                     Mux(absmax, top[:p.bits], Mux(mean, offset.as_unsigned(), scalar)))

        # ---- run control
        out_valid = Mux(reduction, fed & (is_op[VectorOpcode.ARGMAX] | (phase == 3)), v2)
        gives = out_valid & self.z_stream.ready
        m.d.comb += [accept.eq(self.run_protocol.accepts(self) & (self.op < len(VectorOpcode))),
                     self.done.eq(gives & (out_left == 1)),
                     self.z_stream.valid.eq(out_valid),
                     self.z_stream.payload.eq(Mux(reduction, result, Cat(*z2)))]
        with m.If(take):
            m.d.sync += [feed_left.eq(feed_left - 1), base.eq(base + p.lanes)]
        with m.If(gives):
            m.d.sync += out_left.eq(out_left - 1)
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        with m.If(accept):
            m.d.sync += [self.busy.eq(1), op.eq(self.op), shift.eq(self.shift),
                         feed_left.eq(self.n), out_left.eq(Mux(self.op >= VectorOpcode.ARGMAX, 1, self.n)),
                         base.eq(0), phase.eq(0)]
        return m


def build(p: VectorParams) -> VectorUnit:
    return VectorUnit(p)
