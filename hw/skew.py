"""Skew and de-skew buffers: turn a vector into a diagonal wavefront and back."""
from __future__ import annotations

from amaranth.hdl import Module, Shape, ShapeCastable
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import DelayLine


class SkewBuffer(wiring.Component):
    """Delays lane ``i`` of an array by ``i`` cycles, or by ``lanes-1-i`` when ``deskew``.

    Skewing feeds a systolic array so that element ``i`` meets its partner
    ``i`` cycles later; de-skewing realigns the diagonal results of a column
    wavefront into one row. Register bits: ``lanes*(lanes-1)/2 * width``.
    """

    def __init__(self, elem_shape: Shape | ShapeCastable, lanes: int, *, deskew: bool = False):
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        self._elem_shape = elem_shape
        self._lanes = lanes
        self._deskew = deskew
        layout = data.ArrayLayout(elem_shape, lanes)
        super().__init__({"i": In(layout), "en": In(1), "o": Out(layout)})

    def depth_of(self, lane: int) -> int:
        return self._lanes - 1 - lane if self._deskew else lane

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._lanes):
            line = m.submodules[f"lane{lane}"] = DelayLine(self._elem_shape, self.depth_of(lane))
            m.d.comb += [line.i.eq(self.i[lane]), line.en.eq(self.en), self.o[lane].eq(line.o)]
        return m
