"""Output banks: a tile taken in one cycle, or captured along a wavefront, streamed out row by row.

A tile travels as one signal per row (``Member.array``), never as one signal for
the whole tile: Amaranth's netlist caps a signal at 65,536 bits, which a 64 x 64
tile of 24-bit sums would exceed.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.delay import wavefront



class TileDrain(wiring.Component):
    """Takes a finished tile in one cycle and streams it out row by row.

    A separate output bank lets the engine start the next tile while this one
    drains; ``empty`` tells the controller when a new tile may be loaded.
    Rows leave in order ``0 .. rows-1``, one per accepted beat.
    """

    def __init__(self, row_layout: data.ArrayLayout, rows: int):
        self._rows = rows
        super().__init__({
            "load": In(1),
            "tile": In(row_layout).array(rows),
            "empty": Out(1),
            "o": Out(stream.Signature(row_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        rows = self._rows
        bank = [Signal(self.o.payload.shape(), name=f"bank{r}") for r in range(rows)]
        left = Signal(range(rows + 1))
        m.d.comb += [
            self.o.payload.eq(bank[0]),
            self.o.valid.eq(left != 0),
            self.empty.eq(left == 0),
        ]
        with m.If(self.load):
            m.d.sync += [*(bank[r].eq(self.tile[r]) for r in range(rows)), left.eq(rows)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += left.eq(left - 1)
            for r in range(rows - 1):
                m.d.sync += bank[r].eq(bank[r + 1])
        return m


class DiagonalDrain(wiring.Component):
    """An output bank filled along an array's anti-diagonal wavefront, streamed out row by row.

    ``launch`` marks the cycle a bubble between tiles enters the array's operand register;
    ``diagonals`` is that flag delayed ``d + 1`` cycles on bit ``d`` (one delay line of
    ``rows + cols - 1`` bits for the whole array, which clears its PEs with it), and
    element ``(i, j)`` of ``tile`` is stored as the bubble passes it. After the last diagonal the rows leave
    in order ``0 .. rows-1``, one per accepted beat. ``free`` says a new bubble may
    launch: nothing is held or being captured.
    """

    def __init__(self, row_layout: data.ArrayLayout, rows: int):
        self._rows = rows
        super().__init__({
            "launch": In(1),
            "tile": In(row_layout).array(rows),
            "diagonals": Out(rows + row_layout.length - 1),
            "free": Out(1),
            "o": Out(stream.Signature(row_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self.o.payload.shape().length
        capture = wavefront(m, self.launch, len(self.diagonals))
        m.d.comb += self.diagonals.eq(capture)
        bank = [Signal(self.o.payload.shape(), name=f"bank{r}") for r in range(rows)]
        left = Signal(range(rows + 1))
        pop = self.o.valid & self.o.ready
        m.d.comb += [
            self.o.payload.eq(bank[0]),
            self.o.valid.eq(left != 0),
            self.free.eq((left == 0) & (capture == 0)),
        ]
        for r in range(rows):
            for j in range(cols):
                with m.If(capture[r + j]):
                    m.d.sync += bank[r][j].eq(self.tile[r][j])
                if r < rows - 1:                      # the last row only captures
                    with m.Elif(pop):
                        m.d.sync += bank[r][j].eq(bank[r + 1][j])
        with m.If(capture[-1]):
            m.d.sync += left.eq(rows)
        with m.Elif(pop):
            m.d.sync += left.eq(left - 1)
        return m
