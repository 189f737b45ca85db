"""The driver's board backend: PYNQ (the KV260's usual Python stack), imported only when used.

The overlay holds the wrapped engine (``ip``) and one AXI DMA per stream, named in ``dmas``
by the wrapper's stream port (``{"s_axis_a": "axi_dma_a", ..., "m_axis_y": "axi_dma_y"}``);
an input stream uses its DMA's MM2S channel, the output stream its S2MM channel. Waits for a
transfer yield to the event loop instead of blocking it. A frame is at most what the DMA's
buffer length register counts: 16,383 bytes at Vivado's default width of 14 bits
(``dma_length_bits``; the AXI DMA takes up to 26, "Width of Buffer Length Register").
"""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

from driver.axi import DriverError

DEFAULT_DMA_LENGTH_BITS = 14
"""The AXI DMA IP's default buffer length register width (c_sg_length_width)."""


def check_frame(nbytes: int, length_bits: int = DEFAULT_DMA_LENGTH_BITS) -> None:
    """Refuse a frame the AXI DMA cannot move in one transfer, saying how to widen it."""
    limit = (1 << length_bits) - 1
    if nbytes > limit:
        raise DriverError(f"a frame of {nbytes:,} bytes is over the AXI DMA's {limit:,}-byte transfer limit "
                          f"(a {length_bits}-bit buffer length register): widen the DMA's \"Width of Buffer "
                          f"Length Register\" (up to 26 bits) and pass dma_length_bits, or run shorter")


async def _finished(channel) -> None:
    """Wait for a DMA channel without blocking the event loop."""
    while not channel.idle:
        await asyncio.sleep(0)


class PynqBackend:
    def __init__(self, overlay: Any, ip: str, dmas: Mapping[str, str], register_map: Mapping[str, Any], *,
                 dma_length_bits: int = DEFAULT_DMA_LENGTH_BITS):
        try:
            from pynq import allocate
        except ImportError as exc:
            raise RuntimeError("the PYNQ backend needs the pynq package (on the board's image)") from exc
        self._allocate = allocate
        self.ip = getattr(overlay, ip)
        self.dmas = {port: getattr(overlay, name) for port, name in dmas.items()}
        self.frame_bytes = {s["port"]: register_map["beats_per_run"] * s["tdata_bits"] // 8
                            for s in register_map["streams"] if s["direction"] == "out"}
        self.dma_length_bits = dma_length_bits
        for nbytes in self.frame_bytes.values():
            check_frame(nbytes, dma_length_bits)
        self._buffers: list[Any] = []
        self._sent: set[str] = set()

    async def write(self, offset: int, value: int) -> None:
        self.ip.write(offset, value)

    async def read(self, offset: int) -> int:
        return int(self.ip.read(offset))

    async def send(self, port: str, data: bytes) -> None:
        import numpy as np

        check_frame(len(data), self.dma_length_bits)
        buf = self._allocate(shape=(len(data),), dtype=np.uint8)
        buf[:] = np.frombuffer(data, dtype=np.uint8)
        self._buffers.append(buf)                  # kept until the transfer is done
        self.dmas[port].sendchannel.transfer(buf)
        self._sent.add(port)

    async def receive(self, port: str) -> bytes:
        import numpy as np

        buf = self._allocate(shape=(self.frame_bytes[port],), dtype=np.uint8)
        channel = self.dmas[port].recvchannel
        channel.transfer(buf)
        await _finished(channel)
        for sent in self._sent:
            await _finished(self.dmas[sent].sendchannel)
        self._buffers.clear()
        self._sent.clear()
        return bytes(np.asarray(buf))

    async def tick(self) -> None:
        await asyncio.sleep(0)
