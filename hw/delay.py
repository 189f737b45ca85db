"""Clock-enabled delay lines: the pipeline spine of every systolic structure."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Shape, ShapeCastable, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class DelayLine(wiring.Component):
    """``depth`` registers in series that advance only while ``en`` is high.

    A global enable (rather than per-stage valid bits) keeps every lane of a
    wavefront aligned when the engine stalls on a stream gap, which is what
    makes the engine's cycle count a function of its schedule alone.
    ``depth == 0`` is a wire.
    """

    def __init__(self, shape: Shape | ShapeCastable, depth: int):
        if not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({"i": In(shape), "en": In(1), "o": Out(shape)})

    def elaborate(self, platform):
        m = Module()
        prev = self.i
        for n in range(self._depth):
            stage = Signal(self._shape, name=f"stage{n}")
            with m.If(self.en):
                m.d.sync += stage.eq(prev)
            prev = stage
        m.d.comb += self.o.eq(prev)
        return m


def wavefront(m: Module, flag, diagonals: int, en=1) -> Signal:
    """``flag`` delayed 1 .. ``diagonals`` cycles (advancing while ``en``), bit ``d`` delayed
    ``d + 1``: where a control flag that entered with an array's operand register reaches
    anti-diagonal ``d``. One delay line for the whole array, not a flag register per PE."""
    taps = Signal(diagonals)
    with m.If(en):
        m.d.sync += taps.eq(Cat(flag, taps[:-1]))
    return taps
