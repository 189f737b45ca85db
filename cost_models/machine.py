"""Cycles of a program on the machine (:mod:`generators.machine`), exact against a memory of
stated latency.

The controller runs one instruction at a time: fetch (``instruction_beats`` beats read over
the DMA), decode, execute. Every cycle below is a state of its FSM or of the DMA, counted
from the RTL:

* a read started in cycle ``s`` offers its first address in ``s + 2`` (the burst splitter
  registers the transfer, then the burst); with the memory's read latency ``L`` its first
  beat arrives in ``s + 2 + L`` and, the bursts back to back, its last in ``s + 1 + L + n``;
* a write's first beat leaves three cycles after its start (the buffer reader registers the
  transfer, reads, queues), its beats back to back, and it ends with the last burst's
  response, the memory's write latency ``W`` after the last beat;
* a vector run's first x beat reaches the unit three cycles after its start, so the run
  takes its ``n + latency(op)`` (:func:`generators.vector.latency`) plus that feed delay;
* a GEMM runs its tiles one after another, each a cycle to start the engine, the x reader and
  the weights' read, then the read (``groups x weight_beats`` beats: the engine takes a group
  as its weight beat completes, the activations being there first) and the engine's drain of
  :data:`GEMM_DRAIN_CYCLES` to its output beat, which the buffer takes in that cycle (one
  more where a weight beat spans several DRAM beats: the register that gathers them).

:class:`Memory` states the two latencies; the bench measures them on every burst of
cocotbext-axi's ``AxiRam`` at full rate (read 2, write 2: :data:`AXI_RAM`) and holds the
cycle figures exact there.
"""
from __future__ import annotations

from dataclasses import dataclass

from generators.isa import decode
from generators.machine import MachineParams
from generators.vector import VectorOpcode

__all__ = ["AXI_RAM", "Memory", "instruction_cycles", "program_cycles"]

SPLIT_CYCLES = 2
"""Cycles from a DMA start to its first address on the port."""
READER_CYCLES = 3
"""Cycles from a buffer reader's start to its first beat: register, read, queue."""
GEMM_DRAIN_CYCLES = 2
"""Cycles from the GEMM engine's last weight beat to its output beat: the last group's
accumulation, then the tile's move to the output bank."""


@dataclass(frozen=True)
class Memory:
    """A DRAM's latencies at full rate, in cycles: address handshake to first read beat, and
    last write beat to its burst's response."""
    read_latency: int
    write_latency: int


AXI_RAM = Memory(read_latency=2, write_latency=2)
"""cocotbext-axi's ``AxiRam`` with no backpressure, as the bench measures it."""


def _read(memory: Memory, beats: int) -> int:
    """Cycles from a read's start to its last beat, inclusive of neither end's state change."""
    return SPLIT_CYCLES + memory.read_latency + beats - 1


def instruction_cycles(p: MachineParams, word: int, memory: Memory = AXI_RAM) -> int:
    """Cycles one instruction keeps the machine busy: its fetch, decode and execution."""
    return _cycles(p, *decode(word), memory)


def _cycles(p: MachineParams, name: str, f: dict[str, int], memory: Memory) -> int:
    fetch = 1 + _read(memory, p.instruction_beats) + 1          # FETCH, the read, DECODE
    if name == "HALT":
        return fetch
    if name == "LOAD":
        return fetch + _read(memory, f["beats"])
    if name == "STORE":
        return fetch + READER_CYCLES + f["beats"] - 1 + memory.write_latency
    if name == "GEMM":
        groups = -(-f["k"] // p.gemm.k_lanes)
        gather = 1 if p.weight_beats > 1 else 0             # the register that gathers a weight beat
        tile = 1 + _read(memory, groups * p.weight_beats) + gather + GEMM_DRAIN_CYCLES
        return fetch + f["tiles"] * tile
    op = VectorOpcode(f["op"])
    return fetch + READER_CYCLES + f["beats"] + p.vector.latency(op) - 1


def program_cycles(p: MachineParams, program: list[int], memory: Memory = AXI_RAM) -> int:
    """``CYCLES`` of a run of ``program``: its instructions up to and including ``HALT``."""
    total = 0
    for word in program:
        name, f = decode(word)
        total += _cycles(p, name, f, memory)
        if name == "HALT":
            return total
    raise ValueError(f"the program has no HALT in its {len(program)} instructions")
