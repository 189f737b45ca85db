"""On-chip tile storage: an accumulating row bank and a streaming drain buffer.

A tile travels as one signal per row (``Member.array``), never as one signal for
the whole tile: Amaranth's netlist caps a signal at 65,536 bits, which a 64 x 64
tile of 24-bit sums would exceed.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape


class RowAccumulator(wiring.Component):
    """A bank of ``rows`` vectors; each enabled write stores or adds one row.

    ``first`` stores the incoming row (the first partial sum of a tile);
    otherwise the row is added lane by lane, wrapping at the lane width.
    One adder per lane behind a row multiplexer, not one per stored element.
    """

    def __init__(self, row_layout: data.ArrayLayout, rows: int):
        self._rows = rows
        self._row_layout = row_layout
        super().__init__({
            "write": In(1), "first": In(1), "index": In(index_shape(rows)),
            "row": In(row_layout),
            "tile": Out(row_layout).array(rows),
        })

    def elaborate(self, platform):
        m = Module()
        current = Signal(self._row_layout)
        with m.Switch(self.index):
            for r in range(self._rows):
                with m.Case(r):
                    m.d.comb += current.eq(self.tile[r])
        summed = Signal(self._row_layout)
        for lane in range(self._row_layout.length):
            m.d.comb += summed[lane].eq(
                Mux(self.first, self.row[lane], current[lane] + self.row[lane]))
        with m.If(self.write):
            for r in range(self._rows):
                with m.If(self.index == r):
                    m.d.sync += self.tile[r].eq(summed)
        return m


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
