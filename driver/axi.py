"""Run an AXI-wrapped engine from Python through its generated register map.

The driver knows nothing about a family beyond the map (``REGISTER_MAP`` in the generated
``<top>_regs.py``, or the manifest's ``axi`` entry) and the family's packers, which turn
operands into stream beats. It talks to the hardware through a backend with five coroutines,
so the same code runs a board (:mod:`driver.pynq`) and a simulation (:mod:`driver.sim`)::

    write(offset, value)        read(offset) -> int
    send(port, data: bytes)     queue one frame on an input stream (returns once queued)
    receive(port) -> bytes      one frame from the output stream (ends with tlast)
    tick()                      let time pass while polling

:class:`BlockingDriver` offers the same calls without ``await``, for a notebook or a script.
"""
from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Protocol, Sequence


class Backend(Protocol):
    async def write(self, offset: int, value: int) -> None: ...
    async def read(self, offset: int) -> int: ...
    async def send(self, port: str, data: bytes) -> None: ...
    async def receive(self, port: str) -> bytes: ...
    async def tick(self) -> None: ...


def encode_beats(beats: Sequence[int], tdata_bits: int) -> bytes:
    """Beats as an AXI4-Stream frame: each beat's payload little-endian in its tdata bytes."""
    width = tdata_bits // 8
    return b"".join(int(b).to_bytes(width, "little") for b in beats)


def decode_beats(frame: bytes, tdata_bits: int, payload_bits: int) -> list[int]:
    width = tdata_bits // 8
    if len(frame) % width:
        raise ValueError(f"a frame of {len(frame)} bytes is not whole {width}-byte beats")
    mask = (1 << payload_bits) - 1
    return [int.from_bytes(frame[i:i + width], "little") & mask for i in range(0, len(frame), width)]


class DriverError(RuntimeError):
    """The hardware is not the design the map describes, or it refused or lost a run."""


class Driver:
    def __init__(self, register_map: Mapping[str, Any], backend: Backend, *, poll_limit: int = 100_000):
        self.map, self.backend, self.poll_limit = register_map, backend, poll_limit
        self.regs = {r["name"]: r for r in register_map["registers"]}
        self.streams = {s["name"]: s for s in register_map["streams"]}
        self.output = next(s for s in register_map["streams"] if s["direction"] == "out")

    def offset(self, name: str) -> int:
        return self.regs[name]["offset"]

    def bit(self, register: str, field: str) -> int:
        return 1 << self.regs[register]["fields"][field]["bit"]

    async def identify(self) -> None:
        """Raise unless every identification register reads what the map says (the right
        family, the same Params hash, the same stream widths)."""
        for name, reg in self.regs.items():
            if "value" in reg:
                got = await self.backend.read(reg["offset"])
                if got != reg["value"]:
                    raise DriverError(f"{name} reads 0x{got:08x}, the map of {self.map['top']} "
                                      f"says 0x{reg['value']:08x}: a different design is loaded")

    async def status(self) -> dict[str, bool]:
        """STATUS as named bits (reading it clears DONE and ERROR)."""
        value = await self.backend.read(self.offset("STATUS"))
        return {name: bool(value >> f["bit"] & 1) for name, f in self.regs["STATUS"]["fields"].items()}

    async def set_arguments(self, length: int, arguments: Mapping[str, int]) -> None:
        """Write the run length and held arguments, each split into its 32-bit words."""
        if not 1 <= length <= self.map["maximum"]:
            raise ValueError(f"{self.map['length']} must be in 1..{self.map['maximum']}, not {length}")
        for name, value in {self.map["length"]: length, **arguments}.items():
            words = [r for r in self.regs.values() if r.get("argument") == name]
            if not words:
                raise ValueError(f"{name!r} is not an argument of {self.map['top']}")
            for reg in words:
                await self.backend.write(reg["offset"], (int(value) >> (32 * reg["word"])) & 0xFFFF_FFFF)

    async def start(self, *, auto_restart: bool = False) -> None:
        await self.backend.write(self.offset("CTRL"), self.bit("CTRL", "START")
                                 | (self.bit("CTRL", "AUTO_RESTART") if auto_restart else 0))

    async def queue_inputs(self, inputs: Mapping[str, Sequence[int]]) -> None:
        """One frame per input stream, keyed by the engine's stream name (``a_stream``)."""
        for name, beats in inputs.items():
            s = self.streams[name]
            if s["direction"] != "in":
                raise ValueError(f"{name!r} is not an input stream of {self.map['top']}")
            await self.backend.send(s["port"], encode_beats(beats, s["tdata_bits"]))

    async def receive(self) -> list[int]:
        """One run's output beats (the frame ``tlast`` ends)."""
        s = self.output
        beats = decode_beats(await self.backend.receive(s["port"]), s["tdata_bits"], s["payload_bits"])
        if len(beats) != self.map["beats_per_run"]:
            raise DriverError(f"a run returned {len(beats)} beats, not {self.map['beats_per_run']}")
        return beats

    async def wait_done(self) -> None:
        for _ in range(self.poll_limit):
            state = await self.status()
            if state["ERROR"]:
                raise DriverError("the engine refused the start (run length out of range)")
            if state["DONE"]:
                return
            await self.backend.tick()
        raise DriverError(f"no DONE after {self.poll_limit} polls")

    async def run(self, length: int, inputs: Mapping[str, Sequence[int]],
                  arguments: Mapping[str, int] | None = None) -> list[int]:
        """One run: arguments, input frames, start; returns the output beats once DONE."""
        await self.set_arguments(length, arguments or {})
        await self.queue_inputs(inputs)
        await self.start()
        beats = await self.receive()
        await self.wait_done()
        return beats


def complete(coroutine) -> Any:
    """Run ``coroutine`` to its end from plain code: ``asyncio.run`` where no event loop runs, and
    in a thread of its own where one does (a Jupyter notebook, PYNQ's usual place, runs one, in
    which ``asyncio.run`` refuses to start)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class BlockingDriver:
    """A :class:`Driver` whose calls return their results (``identify()``, ``run(...)``, ...) rather
    than coroutines, each run with :func:`complete`. For a backend bound to no event loop, as the
    PYNQ one is; the simulation backend lives in cocotb's loop and is driven with ``await``."""

    def __init__(self, driver: Driver):
        self.driver = driver

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.driver, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args, **kwargs):
            return complete(attr(*args, **kwargs))
        call.__doc__, call.__name__ = attr.__doc__, name
        return call

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in dir(self.driver) if not n.startswith("_")})
