"""The driver's board backend: PYNQ (the KV260's usual Python stack), imported only when used.

The overlay holds the wrapped engine (``ip``) and one AXI DMA per stream, named in ``dmas``
by the wrapper's stream port (``{"s_axis_a": "axi_dma_a", ..., "m_axis_y": "axi_dma_y"}``);
an input stream uses its DMA's MM2S channel, the output stream its S2MM channel.
"""
from __future__ import annotations

import asyncio
from typing import Any, Mapping


class PynqBackend:
    def __init__(self, overlay: Any, ip: str, dmas: Mapping[str, str], register_map: Mapping[str, Any]):
        try:
            from pynq import allocate
        except ImportError as exc:
            raise RuntimeError("the PYNQ backend needs the pynq package (on the board's image)") from exc
        self._allocate = allocate
        self.ip = getattr(overlay, ip)
        self.dmas = {port: getattr(overlay, name) for port, name in dmas.items()}
        self.frame_bytes = {s["port"]: register_map["beats_per_run"] * s["tdata_bits"] // 8
                            for s in register_map["streams"] if s["direction"] == "out"}
        self._buffers: list[Any] = []
        self._sent: set[str] = set()

    async def write(self, offset: int, value: int) -> None:
        self.ip.write(offset, value)

    async def read(self, offset: int) -> int:
        return int(self.ip.read(offset))

    async def send(self, port: str, data: bytes) -> None:
        import numpy as np

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
        channel.wait()
        for sent in self._sent:
            self.dmas[sent].sendchannel.wait()
        self._buffers.clear()
        self._sent.clear()
        return bytes(np.asarray(buf))

    async def tick(self) -> None:
        await asyncio.sleep(0)
