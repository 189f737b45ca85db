"""Multiply-accumulate processing elements for the two systolic dataflows.

Products are formed at full width (``a_bits + b_bits``) and added into an
``acc`` register of the accumulator shape: assignment truncates, so a narrow
accumulator wraps modulo ``2**acc_bits`` exactly as the golden model does.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class OutputStationaryPE(wiring.Component):
    """Keeps one output ``acc``; operands pass through to the right and downwards.

    Runs every cycle (idle cycles carry zero operands, which add nothing). ``clear``
    zeroes the accumulator in the one bubble cycle between tiles, when the finished sum
    is on ``acc`` for the output bank to capture: a synchronous reset, which a DSP
    block's accumulator register takes as its own (a restart from the first product
    would put a multiplexer in the fabric on every accumulator bit).
    """

    def __init__(self, a_shape: Shape, b_shape: Shape, acc_shape: Shape):
        super().__init__({
            "a_in": In(a_shape), "b_in": In(b_shape), "clear": In(1),
            "a_out": Out(a_shape), "b_out": Out(b_shape), "acc": Out(acc_shape),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Else():
            m.d.sync += self.acc.eq(self.acc + self.a_in * self.b_in)
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in)]
        return m


class WeightStationaryPE(wiring.Component):
    """Holds one weight and a shadow of the next; activations pass right, partial sums down.

    ``w_load`` writes ``w_data`` into the shadow while the current weight computes.
    ``swap`` (with ``en``) marks the first activation of the next weight slice: that
    product already uses the shadow, which becomes the weight, so the slices follow
    each other with no gap.
    """

    def __init__(self, a_shape: Shape, w_shape: Shape, acc_shape: Shape):
        super().__init__({
            "a_in": In(a_shape), "psum_in": In(acc_shape), "en": In(1),
            "w_load": In(1), "w_data": In(w_shape), "swap": In(1),
            "a_out": Out(a_shape), "psum_out": Out(acc_shape),
        })
        self._w_shape = w_shape

    def elaborate(self, platform):
        m = Module()
        weight, shadow = Signal(self._w_shape), Signal(self._w_shape)
        current = Mux(self.swap, shadow, weight)
        with m.If(self.w_load):
            m.d.sync += shadow.eq(self.w_data)
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.psum_out.eq(self.psum_in + self.a_in * current),
            ]
            with m.If(self.swap):
                m.d.sync += weight.eq(shadow)
        return m
