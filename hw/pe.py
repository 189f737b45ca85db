"""Multiply-accumulate processing elements for the two systolic dataflows.

Products are formed at full width (``a_bits + b_bits``) and added into an
``acc`` register of the accumulator shape: assignment truncates, so a narrow
accumulator wraps modulo ``2**acc_bits`` exactly as the golden model does.
"""
from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class OutputStationaryPE(wiring.Component):
    """Keeps one output ``acc``; operands pass through to the right and downwards.

    ``clear`` zeroes the accumulator (at the start of a tile); every enabled
    cycle adds ``a_in * b_in`` and forwards both operands one register on.
    """

    def __init__(self, a_shape: Shape, b_shape: Shape, acc_shape: Shape):
        super().__init__({
            "a_in": In(a_shape), "b_in": In(b_shape), "en": In(1), "clear": In(1),
            "a_out": Out(a_shape), "b_out": Out(b_shape), "acc": Out(acc_shape),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Elif(self.en):
            m.d.sync += [
                self.acc.eq(self.acc + self.a_in * self.b_in),
                self.a_out.eq(self.a_in),
                self.b_out.eq(self.b_in),
            ]
        return m


class WeightStationaryPE(wiring.Component):
    """Holds one weight; activations pass right, partial sums pass down.

    ``w_load`` writes ``w_data`` into the weight register at the end of the
    cycle, so the product formed in that same cycle still uses the old weight.
    """

    def __init__(self, a_shape: Shape, w_shape: Shape, acc_shape: Shape):
        super().__init__({
            "a_in": In(a_shape), "psum_in": In(acc_shape), "en": In(1),
            "w_load": In(1), "w_data": In(w_shape),
            "a_out": Out(a_shape), "psum_out": Out(acc_shape),
        })
        self._w_shape = w_shape

    def elaborate(self, platform):
        m = Module()
        weight = Signal(self._w_shape)
        with m.If(self.w_load):
            m.d.sync += weight.eq(self.w_data)
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.psum_out.eq(self.psum_in + self.a_in * weight),
            ]
        return m
