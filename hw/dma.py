"""A DMA engine on one AXI4 manager port: reads and writes of whole beats, in bursts.

A transfer is named in beats: ``beat`` (the byte address divided by the bytes of a beat) and
``count`` (1..``max_beats``). The engine splits it into INCR bursts of at most ``max_burst``
beats that never cross a 4 KB page (:func:`bursts`, which the cost model reads too), and
issues every address as soon as the port takes the one before, so the memory may stream a
long read back to back. The read and the write side run independently, each one transfer
at a time:

* a read's beats leave on ``read_data`` in address order; ``read_done`` pulses with the last;
* a write takes its beats from ``write_data``; ``write_done`` pulses in the cycle its last
  write response arrives.

A response other than OKAY sets ``error`` until reset: the data moved is not to be trusted.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi import MAX_BURST_BEATS, PAGE_BYTES, AxiSignature

__all__ = ["BurstSplitter", "Dma", "bursts"]

INCR = 1
"""``axburst`` of an incrementing burst."""


def bursts(beat: int, count: int, max_burst: int, page_beats: int) -> list[tuple[int, int]]:
    """The (first beat, beats) of each burst that moves ``count`` beats from ``beat``: as long
    as ``max_burst`` allows and never across a page of ``page_beats`` beats."""
    out = []
    while count:
        length = min(count, max_burst, page_beats - beat % page_beats)
        out.append((beat, length))
        beat, count = beat + length, count - length
    return out


class BurstSplitter(wiring.Component):
    """Splits a transfer (``start`` with ``beat`` and ``count``) into bursts (see :func:`bursts`),
    offered one at a time as ``valid`` with ``first`` and ``length - 1`` (``len``, as AXI has it)
    until taken by ``ready``; the next is offered in the cycle after, so bursts go back to back.
    A start is taken while ``idle``."""

    def __init__(self, beat_bits: int, max_beats: int, max_burst: int, page_beats: int):
        if not 1 <= max_burst <= MAX_BURST_BEATS or max_burst & (max_burst - 1):
            raise ValueError(f"max_burst must be a power of two in 1..{MAX_BURST_BEATS}, not {max_burst!r}")
        if page_beats < 1 or page_beats & (page_beats - 1):
            raise ValueError(f"page_beats must be a power of two, not {page_beats!r}")
        self.max_burst, self.page_beats = max_burst, page_beats
        super().__init__({"start": In(1), "beat": In(beat_bits), "count": In(range(max_beats + 1)),
                          "idle": Out(1), "valid": Out(1), "ready": In(1), "first": Out(beat_bits),
                          "len": Out(8)})

    def elaborate(self, platform):
        m = Module()
        next_beat, left = Signal.like(self.beat), Signal.like(self.count)
        room = Signal(range(self.page_beats + 1))           # beats to the end of next_beat's page
        capped, length = (Signal(range(max(self.max_burst, 2) + 1)) for _ in range(2))
        m.d.comb += room.eq(self.page_beats - next_beat[:(self.page_beats - 1).bit_length()])
        limit = min(self.max_burst, self.page_beats)
        m.d.comb += [capped.eq(Mux(left < limit, left, limit)), length.eq(Mux(room < capped, room, capped))]
        m.d.comb += self.idle.eq((left == 0) & ~self.valid)
        with m.If(self.start & self.idle):
            m.d.sync += [next_beat.eq(self.beat), left.eq(self.count)]
        with m.Elif((left != 0) & (~self.valid | self.ready)):
            m.d.sync += [self.valid.eq(1), self.first.eq(next_beat), self.len.eq(length - 1),
                         next_beat.eq(next_beat + length), left.eq(left - length)]
        with m.Elif(self.ready):
            m.d.sync += self.valid.eq(0)
        return m


class Dma(wiring.Component):
    """The DMA engine (see the module docstring) on ``axi``, an :class:`AxiSignature` port."""

    def __init__(self, addr_bits: int, data_bits: int, max_beats: int, max_burst: int = 16):
        if not isinstance(max_beats, int) or max_beats < 1:
            raise ValueError(f"max_beats must be a positive integer, not {max_beats!r}")
        self.port = AxiSignature(addr_bits, data_bits)
        self.max_beats, self.max_burst = max_beats, max_burst
        self.page_beats = PAGE_BYTES // (data_bits // 8) if data_bits // 8 <= PAGE_BYTES else 1
        self.beat_bits = addr_bits - self.port.size
        command = {"start": In(1), "beat": In(self.beat_bits), "count": In(range(max_beats + 1)),
                   "busy": Out(1), "done": Out(1)}
        super().__init__({"axi": Out(self.port),
                          **{f"read_{k}": v for k, v in command.items()},
                          "read_data": Out(stream.Signature(data_bits)),
                          **{f"write_{k}": v for k, v in command.items()},
                          "write_data": In(stream.Signature(data_bits)),
                          "error": Out(1)})

    def _splitter(self) -> BurstSplitter:
        return BurstSplitter(self.beat_bits, self.max_beats, self.max_burst, self.page_beats)

    def _address(self, m: Module, splitter: BurstSplitter, channel: str) -> None:
        """Drive the ``ar`` or ``aw`` channel from a splitter's bursts."""
        axi = self.axi
        m.d.comb += [getattr(axi, f"{channel}addr").eq(splitter.first << self.port.size),
                     getattr(axi, f"{channel}len").eq(splitter.len),
                     getattr(axi, f"{channel}size").eq(self.port.size),
                     getattr(axi, f"{channel}burst").eq(INCR),
                     getattr(axi, f"{channel}valid").eq(splitter.valid),
                     splitter.ready.eq(getattr(axi, f"{channel}ready"))]

    def elaborate(self, platform):
        m = Module()
        axi = self.axi

        # ---- reads: addresses from one splitter, data straight through to read_data
        m.submodules.ar = ar = self._splitter()
        read_left = Signal.like(self.read_count)
        m.d.comb += [ar.start.eq(self.read_start & ~self.read_busy), ar.beat.eq(self.read_beat),
                     ar.count.eq(self.read_count), self.read_busy.eq(read_left != 0)]
        self._address(m, ar, "ar")
        r_beat = Signal()
        m.d.comb += [self.read_data.payload.eq(axi.rdata), self.read_data.valid.eq(axi.rvalid & self.read_busy),
                     axi.rready.eq(self.read_data.ready & self.read_busy),
                     r_beat.eq(axi.rvalid & axi.rready),
                     self.read_done.eq(r_beat & (read_left == 1))]
        with m.If(self.read_start & ~self.read_busy):
            m.d.sync += read_left.eq(self.read_count)
        with m.Elif(r_beat):
            m.d.sync += read_left.eq(read_left - 1)

        # ---- writes: addresses from one splitter; a second one's bursts say where wlast falls
        m.submodules.aw = aw = self._splitter()
        m.submodules.w = w = self._splitter()
        writing = Signal()
        responses = Signal(range(self.max_beats + 1))        # bursts whose response is still due
        burst_left = Signal(range(MAX_BURST_BEATS + 1))       # beats left in the burst on W
        w_beat, b_beat, aw_beat = Signal(), Signal(), Signal()
        take = self.write_start & ~writing
        m.d.comb += [aw.start.eq(take), w.start.eq(take), aw.beat.eq(self.write_beat), w.beat.eq(self.write_beat),
                     aw.count.eq(self.write_count), w.count.eq(self.write_count), self.write_busy.eq(writing)]
        self._address(m, aw, "aw")
        m.d.comb += [axi.wdata.eq(self.write_data.payload), axi.wstrb.eq((1 << len(axi.wstrb)) - 1),
                     axi.wvalid.eq(self.write_data.valid & (burst_left != 0)),
                     self.write_data.ready.eq(axi.wready & (burst_left != 0)),
                     axi.wlast.eq(burst_left == 1),
                     w_beat.eq(axi.wvalid & axi.wready), aw_beat.eq(axi.awvalid & axi.awready),
                     axi.bready.eq(1), b_beat.eq(axi.bvalid)]
        m.d.comb += w.ready.eq((burst_left == 0) | ((burst_left == 1) & w_beat))
        with m.If(w.valid & w.ready):
            m.d.sync += burst_left.eq(w.len + 1)
        with m.Elif(w_beat):
            m.d.sync += burst_left.eq(burst_left - 1)
        m.d.sync += responses.eq(responses + aw_beat - b_beat)
        finished = writing & aw.idle & w.idle & (burst_left == 0) & (responses == Mux(b_beat, 1, 0)) & ~aw_beat
        m.d.comb += self.write_done.eq(finished & b_beat)
        with m.If(take):
            m.d.sync += writing.eq(1)
        with m.Elif(self.write_done):
            m.d.sync += writing.eq(0)

        # ---- responses other than OKAY
        with m.If((r_beat & (axi.rresp != 0)) | (b_beat & (axi.bresp != 0))):
            m.d.sync += self.error.eq(1)
        return m
