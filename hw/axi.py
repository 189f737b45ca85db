"""The AMBA AXI4-Stream and AXI4-Lite interfaces as Amaranth signatures.

Both are written from the manager's (master's) side, as ``amaranth.lib.stream`` writes a
stream from its source: a subordinate takes them ``In(...)`` (flipped). Member names are
the specification's lower-case signal names, so a port named ``<prefix>_<member>`` is what
Vivado's interface inference and cocotbext-axi's ``from_prefix`` look for.
"""
from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

LITE_DATA_BITS = 32
"""AXI4-Lite data width; every register of a map is one 32-bit word."""


def tdata_bits(payload_bits: int) -> int:
    """``tdata`` width for a payload: whole bytes (the specification), rounded up to a power of two
    so that an AXI DMA or an integer-ratio width converter connects directly."""
    return 8 * (1 << (-(-payload_bits // 8) - 1).bit_length())


class AxiStreamSignature(wiring.Signature):
    """An AXI4-Stream carrying ``payload_bits`` per beat in the low bits of ``tdata`` (see
    :func:`tdata_bits`), with ``tkeep`` and ``tlast``."""

    def __init__(self, payload_bits: int):
        if not isinstance(payload_bits, int) or payload_bits < 1:
            raise ValueError(f"payload_bits must be a positive integer, not {payload_bits!r}")
        self.payload_bits = payload_bits
        self.data_bits = tdata_bits(payload_bits)
        super().__init__({"tdata": Out(self.data_bits), "tkeep": Out(self.data_bits // 8),
                          "tlast": Out(1), "tvalid": Out(1), "tready": In(1)})

    def __eq__(self, other):
        return isinstance(other, AxiStreamSignature) and other.payload_bits == self.payload_bits

    def __repr__(self):
        return f"AxiStreamSignature({self.payload_bits})"


class AxiLiteSignature(wiring.Signature):
    """An AXI4-Lite port with ``addr_bits`` of byte address and 32-bit data: the five channels
    (AW, W, B, AR, R) with their protection and response fields."""

    def __init__(self, addr_bits: int):
        if not isinstance(addr_bits, int) or not 4 <= addr_bits <= 32:
            raise ValueError(f"addr_bits must be an integer in 4..32, not {addr_bits!r}")
        self.addr_bits = addr_bits
        strb = LITE_DATA_BITS // 8
        super().__init__({
            "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(LITE_DATA_BITS), "wstrb": Out(strb), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(LITE_DATA_BITS), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, AxiLiteSignature) and other.addr_bits == self.addr_bits

    def __repr__(self):
        return f"AxiLiteSignature({self.addr_bits})"


MAX_BURST_BEATS = 256
"""The longest AXI4 INCR burst (``axlen`` is 8 bits)."""
PAGE_BYTES = 4096
"""No AXI4 burst crosses a 4 KB boundary."""


class AxiSignature(wiring.Signature):
    """An AXI4 (full) manager port with ``addr_bits`` of byte address and ``data_bits`` of data
    (8..1024, a power of two): the five channels with one ID bit, INCR bursts of up to
    :data:`MAX_BURST_BEATS` beats, and byte strobes. The cache and protection fields are left
    to the defaults an interconnect assumes, so they are not ports."""

    def __init__(self, addr_bits: int, data_bits: int):
        if not isinstance(addr_bits, int) or not 12 <= addr_bits <= 64:
            raise ValueError(f"addr_bits must be an integer in 12..64, not {addr_bits!r}")
        if not isinstance(data_bits, int) or data_bits < 8 or data_bits > 1024 or data_bits & (data_bits - 1):
            raise ValueError(f"data_bits must be a power of two in 8..1024, not {data_bits!r}")
        self.addr_bits, self.data_bits = addr_bits, data_bits
        burst = {"addr": Out(addr_bits), "len": Out(8), "size": Out(3), "burst": Out(2), "id": Out(1),
                 "valid": Out(1), "ready": In(1)}
        super().__init__({
            **{f"aw{k}": v for k, v in burst.items()},
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1), "wvalid": Out(1),
            "wready": In(1),
            "bid": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            **{f"ar{k}": v for k, v in burst.items()},
            "rid": In(1), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
            "rready": Out(1),
        })

    @property
    def size(self) -> int:
        """``axsize``: log2 of the bytes of a beat."""
        return (self.data_bits // 8).bit_length() - 1

    def __eq__(self, other):
        return isinstance(other, AxiSignature) and (other.addr_bits, other.data_bits) == (self.addr_bits,
                                                                                        self.data_bits)

    def __repr__(self):
        return f"AxiSignature({self.addr_bits}, {self.data_bits})"
