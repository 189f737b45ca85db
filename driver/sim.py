"""The driver's simulation backend: cocotbext-axi's AXI4-Lite manager and AXI4-Stream source and
sink on a wrapped design running under cocotb (Verilator or Icarus)."""
from __future__ import annotations

import logging
import random
from typing import Any, Mapping

from cocotb.triggers import RisingEdge
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink,
                           AxiStreamSource)


def _pauses(prng: random.Random, probability: float):
    """A pause generator for cocotbext-axi: True (hold tvalid / tready low) with ``probability``."""
    while True:
        yield prng.random() < probability


class SimBackend:
    """``dut`` is the wrapper's cocotb handle; ``gap``/``stall`` are the probabilities of a cycle
    without tvalid on every input stream and without tready on the output (seeded)."""

    def __init__(self, dut, register_map: Mapping[str, Any], *, seed: int = 1,
                 gap: float = 0.0, stall: float = 0.0):
        self.dut = dut
        logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)   # not every beat
        self.lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, register_map["control"]), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        prng = random.Random(seed)
        self._stall, self._stall_seeds = stall, {}
        self.sources, self.sinks = {}, {}
        for s in register_map["streams"]:
            bus = AxiStreamBus.from_prefix(dut, s["port"])
            if s["direction"] == "in":
                port = self.sources[s["port"]] = AxiStreamSource(bus, dut.aclk, dut.aresetn,
                                                                 reset_active_level=False)
                if gap:
                    port.set_pause_generator(_pauses(random.Random(prng.random()), gap))
            else:
                port = self.sinks[s["port"]] = AxiStreamSink(bus, dut.aclk, dut.aresetn,
                                                             reset_active_level=False)
                self._stall_seeds[id(port)] = random.Random(prng.random()) if stall else None
                port.set_pause_generator(self.stalls(port))

    def stalls(self, sink):
        """``sink``'s seeded stall pattern (tready low with probability ``stall``), or ``None``."""
        return _pauses(self._stall_seeds[id(sink)], self._stall) if self._stall else None

    async def write(self, offset: int, value: int) -> None:
        await self.lite.write_dword(offset, value)

    async def read(self, offset: int) -> int:
        return await self.lite.read_dword(offset)

    async def send(self, port: str, data: bytes) -> None:
        await self.sources[port].send(AxiStreamFrame(data))

    async def receive(self, port: str) -> bytes:
        return bytes((await self.sinks[port].recv()).tdata)

    async def tick(self) -> None:
        await RisingEdge(self.dut.aclk)


