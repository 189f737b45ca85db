"""Stream a sequence of fixed-size blocks into a multi-buffered memory.

The consumer tells the loader how many blocks it has released; the loader
writes block ``b`` into buffer ``b % buffers`` as soon as that buffer is free
and reports how many blocks are complete. With ``buffers = 2`` the next K/V
block loads while the engine computes on the current one.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape


class BlockLoader(wiring.Component):
    """Loads ``keys`` items of ``beats`` stream beats each, ``block`` items per buffer.

    ``begin`` samples ``keys`` (1..``max_keys``) and restarts the counts.
    Write address = buffer base + beat index inside the block.
    """

    def __init__(self, payload_bits: int, *, beats: int, block: int, buffers: int, max_keys: int,
                 max_blocks: int):
        if buffers not in (1, 2):
            raise ValueError(f"buffers must be 1 or 2, not {buffers!r}")
        self.beats, self.block, self.buffers = beats, block, buffers
        depth = buffers * block * beats
        super().__init__({
            "begin": In(1),
            "keys": In(range(max_keys + 1)),
            "i": In(stream.Signature(unsigned(payload_bits))),
            "released": In(range(max_blocks + 1)),
            "loaded": Out(range(max_blocks + 1)),
            "w_en": Out(1),
            "w_addr": Out(index_shape(depth)),
            "w_data": Out(unsigned(payload_bits)),
        })
        self.max_blocks = max_blocks

    def elaborate(self, platform):
        m = Module()
        left = Signal.like(self.keys)                     # items not yet complete
        beat = Signal(index_shape(self.beats))
        item = Signal(index_shape(self.block))
        offset = Signal(index_shape(self.block * self.beats))
        buffer = Signal(index_shape(self.buffers))
        room = self.loaded < self.released + self.buffers
        take = Signal()
        m.d.comb += [
            self.i.ready.eq((left != 0) & room),
            take.eq(self.i.valid & self.i.ready),
            self.w_en.eq(take),
            self.w_addr.eq(offset + (Mux(buffer, self.block * self.beats, 0) if self.buffers == 2 else 0)),
            self.w_data.eq(self.i.payload),
        ]
        item_end = beat == self.beats - 1
        block_end = item_end & ((item == self.block - 1) | (left == 1))
        with m.If(self.begin):
            m.d.sync += [left.eq(self.keys), beat.eq(0), item.eq(0), offset.eq(0), buffer.eq(0),
                         self.loaded.eq(0)]
        with m.Elif(take):
            m.d.sync += [beat.eq(Mux(item_end, 0, beat + 1)), offset.eq(Mux(block_end, 0, offset + 1))]
            with m.If(item_end):
                m.d.sync += [left.eq(left - 1), item.eq(Mux(block_end, 0, item + 1))]
            with m.If(block_end):
                m.d.sync += [self.loaded.eq(self.loaded + 1),
                             buffer.eq(Mux(buffer == self.buffers - 1, 0, buffer + 1))]
        return m
