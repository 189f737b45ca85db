"""cocotb testbench of the machine: programs run from DRAM, as software runs them.

DRAM is cocotbext-axi's ``AxiRam`` on ``m_axi``; the host is cocotbext-axi's AXI4-Lite
manager on ``s_axi_control``. Each test writes a program and its memory image, starts the
machine, waits for ``irq`` and checks the whole image against the golden model
(:mod:`verif.golden.machine`), and ``CYCLES`` and ``RETIRED`` against what it reports for
the pytest side to hold against the cost model. A monitor holds the memory's read latency
(address handshake to first data beat) and its write latency (last data beat to response)
at the values the cost model assumes, so a cycle figure rests on a stated memory; one test
pauses every channel of the memory at random, where the model's figure is a lower bound.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from cost_models.machine import program_cycles
from generators.isa import disassemble, encode
from generators.mac_mpgemm import pack_weights
from generators.machine import REGISTER, MachineParams
from generators.vector import VectorOpcode
from verif.golden.machine import Golden
from verif.golden.vector import limits
from verif.runner import bench_params, bench_report
from verif.tb.axi import reset_aclk

PROGRAM_BASE = 0x1000
IMAGE_BASE = 0x10000
RAM_BYTES = 1 << 22
TIMEOUT_SLACK = 4
"""A run may take this many times its modelled cycles (plus TIMEOUT_FLOOR) before it counts as
hung: the model is exact at full rate, and the stalling memory stays well inside the factor."""
TIMEOUT_FLOOR = 2_000
ERROR_TIMEOUT = 20_000
"""Cycles a program that must stop with ERROR may take (the model prices only whole programs)."""


def _params() -> MachineParams:
    return MachineParams.from_dict(bench_params()["params"])


@dataclass
class Latency:
    """The memory's latencies as the monitor sees them: from an address taken while no read
    was outstanding to its first beat, and from each burst's last write beat to its response."""
    dut: object
    reads: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)

    async def watch(self) -> None:
        d, cycle = self.dut, 0
        outstanding, asked, last_beats = 0, None, []
        while True:
            await FallingEdge(d.aclk)
            await ReadOnly()
            cycle += 1
            if d.m_axi_rvalid.value and d.m_axi_rready.value:
                if asked is not None:
                    self.reads.append(cycle - asked)
                    asked = None
                outstanding -= 1
            if d.m_axi_arvalid.value and d.m_axi_arready.value:
                if outstanding == 0:
                    asked = cycle
                outstanding += int(d.m_axi_arlen.value) + 1
            if d.m_axi_wvalid.value and d.m_axi_wready.value and d.m_axi_wlast.value:
                last_beats.append(cycle)
            if d.m_axi_bvalid.value and d.m_axi_bready.value:
                self.writes.append(cycle - last_beats.pop(0))


class Bench:
    def __init__(self, dut, salt: int = 0):
        self.dut, self.p = dut, _params()
        self.rng = np.random.default_rng(cocotb.RANDOM_SEED + salt)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.aclk, dut.aresetn, reset_active_level=False,
                          size=RAM_BYTES)
        self.lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        self.latency = Latency(dut)
        self.golden = Golden(self.p)
        self.image = bytearray(RAM_BYTES - IMAGE_BASE)

    @property
    def beat_bytes(self) -> int:
        return self.p.port_bits // 8

    async def reset(self) -> None:
        await reset_aclk(self.dut)
        cocotb.start_soon(self.latency.watch())
        await self.lite.write_dword(REGISTER["IER"].offset, 1)

    def put(self, beat: int, rows: np.ndarray) -> None:
        """Write ``rows`` (beats x lanes) at ``beat`` of the image, here and in the golden's copy."""
        v = self.p.vector
        mask = (1 << v.bits) - 1
        for i, row in enumerate(rows):
            word = sum((int(x) & mask) << (lane * v.bits) for lane, x in enumerate(row))
            at = (beat + i) * self.beat_bytes
            self.image[at:at + self.beat_bytes] = word.to_bytes(self.beat_bytes, "little")

    def values(self, beats: int) -> np.ndarray:
        """Uniform values, a quarter of them the extremes."""
        lo, hi = limits(self.p.vector.bits)
        shape = (beats, self.p.vector.lanes)
        values = self.rng.integers(lo, hi, size=shape, endpoint=True)
        edges = np.array([lo, hi, 0, 1, -1])
        return np.where(self.rng.random(shape) < 0.25, edges[self.rng.integers(0, len(edges), size=shape)], values)

    async def run(self, program: list[int], *, expect_error: bool = False) -> dict:
        """Run ``program`` on the RTL and on the golden; check the image, return the counters."""
        d, lite = self.dut, self.lite
        code = b"".join(w.to_bytes(self.p.instruction_beats * self.beat_bytes, "little") for w in program)
        self.ram.write(PROGRAM_BASE, code)
        self.ram.write(IMAGE_BASE, bytes(self.image))
        try:
            retired = self.golden.run(program, self.image)
            limit = TIMEOUT_SLACK * program_cycles(self.p, program) + TIMEOUT_FLOOR
        except ValueError:
            if not expect_error:
                raise
            retired, limit = None, ERROR_TIMEOUT
        await lite.write_dword(REGISTER["PROGRAM"].offset, PROGRAM_BASE)
        await lite.write_dword(REGISTER["IMAGE"].offset, IMAGE_BASE)
        await lite.write_dword(REGISTER["CTRL"].offset, 1)
        for _ in range(limit):
            await RisingEdge(d.aclk)
            if d.irq.value:
                break
        else:
            raise AssertionError(f"no irq within {limit} cycles")
        status = await lite.read_dword(REGISTER["STATUS"].offset)
        counters = {name: await lite.read_dword(REGISTER[name].offset) for name in ("CYCLES", "RETIRED", "PC")}
        if expect_error:
            assert status & 0b111 == 0b100, f"STATUS {status:#x}: expected ERROR"
            return counters
        assert status & 0b111 == 0b010, f"STATUS {status:#x}: expected DONE ({counters})"
        assert counters["RETIRED"] == retired, f"RETIRED {counters['RETIRED']} != golden {retired}"
        got = self.ram.read(IMAGE_BASE, len(self.image))
        if got != bytes(self.image):
            first = next(i for i, (a, b) in enumerate(zip(got, self.image)) if a != b)
            listing = "; ".join(f"{n} {f}" for n, f in disassemble(program))
            beat = first // self.beat_bytes * self.beat_bytes
            raise AssertionError(f"image differs from the golden's first at byte {first:#x} "
                                 f"(beat {first // self.beat_bytes}: {got[beat:beat + self.beat_bytes].hex()}, "
                                 f"golden {self.image[beat:beat + self.beat_bytes].hex()}) after: {listing}")
        return counters

    def random_program(self, ops: int, beats: int) -> list[int]:
        """LOADs of four regions of ``beats`` (one across a 4 KB page) and of eight beats for the
        reductions (up to eight), ``ops`` random vector ops
        over them, STOREs of every region and of the reductions' beats, HALT."""
        p, rng = self.p, self.rng
        page = max(1, 4096 // self.beat_bytes)
        dram = [page - 2, page + 2 * beats + 5, 3 * page + 7, 5 * page]
        out = 6 * page
        program = []
        for r, at in enumerate(dram):
            self.put(at, self.values(beats))
            program.append(encode("LOAD", buffer=r * beats, dram=at, beats=beats))
        reduced = 4 * beats                     # the reductions' beats, loaded first: a run reads no stale beat
        kept = min(8, p.max_beats)
        self.put(out + 5 * beats, self.values(kept))
        program.append(encode("LOAD", buffer=reduced, dram=out + 5 * beats, beats=kept))
        for i in range(ops):
            op = VectorOpcode(int(rng.integers(len(VectorOpcode))))
            x, y, z = (int(r) * beats for r in rng.integers(0, 4, size=3))
            if op.reduction:
                z = reduced + i % kept
            shift = int(rng.integers(0, p.vector.shift_limit))
            program.append(encode("VECTOR", op=int(op), shift=shift, x=x, y=y, z=z, beats=beats))
        for r in range(4):
            program.append(encode("STORE", buffer=r * beats, dram=out + r * beats, beats=beats))
        program.append(encode("STORE", buffer=reduced, dram=out + 4 * beats, beats=kept))
        return [*program, encode("HALT")]


def _report(bench: Bench, name: str, program: list[int], counters: dict) -> None:
    bench_report({"test": name, "program": [hex(w) for w in program], **counters,
                  "read_latency": sorted(set(bench.latency.reads)), "write_latency": sorted(set(bench.latency.writes))})


@cocotb.test()
async def programs_match_the_golden(dut):
    """Random programs over every vector op, back to back, each checked whole."""
    b = Bench(dut)
    await b.reset()
    top = min(b.p.max_beats, max(1, (b.p.buffer_beats - 8) // 4), 24)
    for beats in sorted({1, top, int(b.rng.integers(1, top + 1))}):
        program = b.random_program(ops=10, beats=beats)
        _report(b, "programs_match_the_golden", program, await b.run(program))


@cocotb.test()
async def long_transfers_in_bursts(dut):
    """A transfer longer than a burst, from a beat just before a 4 KB page, there and back."""
    b = Bench(dut, salt=1)
    await b.reset()
    beats = min(b.p.max_beats, 3 * b.p.max_burst + 3, b.p.buffer_beats)
    page = max(1, 4096 // b.beat_bytes)
    b.put(page - 1, b.values(beats))
    program = [encode("LOAD", buffer=0, dram=page - 1, beats=beats),
               encode("STORE", buffer=0, dram=4 * page - 2, beats=beats), encode("HALT")]
    _report(b, "long_transfers_in_bursts", program, await b.run(program))


@cocotb.test()
async def bad_instructions_stop_with_error(dut):
    """Every check of the decoder stops the run with ERROR and the instruction's index in PC;
    the next good program runs."""
    b = Bench(dut, salt=2)
    await b.reset()
    p = b.p
    bad = [encode("LOAD", buffer=0, dram=0, beats=0),
           encode("LOAD", buffer=p.buffer_beats - 1, dram=0, beats=2),
           encode("STORE", buffer=0, dram=0, beats=p.max_beats + 1) if p.max_beats + 1 < 1 << 17 else
           encode("STORE", buffer=0, dram=0, beats=0),
           encode("VECTOR", op=len(VectorOpcode), shift=0, x=0, y=0, z=0, beats=1),
           encode("VECTOR", op=int(VectorOpcode.ADD), shift=p.vector.shift_limit, x=0, y=0, z=0, beats=1),
           encode("VECTOR", op=int(VectorOpcode.ADD), shift=0, x=0, y=p.buffer_beats - 1, z=0, beats=2),
           encode("GEMM", x=0, w=0, z=0, k=0, tiles=1, shift=0),
           encode("GEMM", x=0, w=0, z=0, k=p.gemm.k_max + 1, tiles=1, shift=0),
           encode("GEMM", x=0, w=0, z=0, k=1, tiles=0, shift=0),
           encode("GEMM", x=p.buffer_beats - 1, w=0, z=0, k=p.gemm.k_lanes + 1, tiles=1, shift=0),
           encode("GEMM", x=0, w=0, z=p.buffer_beats - 1, k=1, tiles=2, shift=0),
           encode("GEMM", x=0, w=0, z=0, k=1, tiles=1, shift=p.gemm_shift_limit),
           15]                                                          # an opcode the ISA lacks
    for i, word in enumerate(bad):
        program = [encode("LOAD", buffer=0, dram=0, beats=1)] * (i % 2) + [word, encode("HALT")]
        counters = await b.run(program, expect_error=True)
        assert counters["PC"] == i % 2, f"bad instruction {i}: PC {counters['PC']}, expected {i % 2}"
    program = b.random_program(ops=4, beats=min(2, p.max_beats))
    _report(b, "bad_instructions_stop_with_error", program, await b.run(program))


def _gemm_program(b: Bench, *, quantize: bool) -> list[int]:
    """One activation row through a GEMM of random weights (``quantize``: through ABSMAX and
    SCALE first, as a BitNet projection's int8 input is), the outputs stored."""
    p, g, rng = b.p, b.p.gemm, b.rng
    groups_room = max(1, (p.buffer_beats - 16) // 2)
    k = int(rng.integers(1, min(g.k_max, min(groups_room, p.max_beats, 40) * g.k_lanes) + 1))
    groups = -(-k // g.k_lanes)
    tiles = int(rng.integers(1, min(4, p.buffer_beats - 2 * groups, p.max_beats) + 1))
    lo, hi = g.weight_range()
    words = []
    for _ in range(tiles):
        words += pack_weights(g, rng.integers(lo, hi, size=(k, g.n_tile), endpoint=True))
    page = max(1, 4096 // b.beat_bytes)
    x_at, w_at, out = 2 * page - 1, 3 * page - 5, 8 * page
    for i, word in enumerate(words):
        at = (w_at + i * p.weight_beats) * b.beat_bytes
        b.image[at:at + p.weight_beats * b.beat_bytes] = word.to_bytes(p.weight_beats * b.beat_bytes, "little")
    b.put(x_at, b.values(groups))
    program = [encode("LOAD", buffer=0, dram=x_at, beats=groups)]
    x = 0
    if quantize and groups <= p.max_beats:
        program += [encode("VECTOR", op=int(VectorOpcode.ABSMAX), shift=0, x=0, y=0, z=groups, beats=groups),
                    encode("VECTOR", op=int(VectorOpcode.SCALE), shift=p.vector.bits + 1, x=0, y=0, z=groups + 1,
                           beats=groups)]
        x = groups + 1
    shift = int(rng.integers(0, p.gemm_shift_limit))
    z = x + groups
    program += [encode("GEMM", x=x, w=w_at, z=z, k=k, tiles=tiles, shift=shift),
                encode("STORE", buffer=z, dram=out, beats=tiles), encode("HALT")]
    return program


@cocotb.test()
async def gemm_rows_match_the_golden(dut):
    """Activation rows through the GEMM engine, weights from DRAM, with and without the int8
    quantization before it, each K and tile count random."""
    b = Bench(dut, salt=4)
    await b.reset()
    for quantize in (False, True, False, True):
        program = _gemm_program(b, quantize=quantize)
        _report(b, "gemm_rows_match_the_golden", program, await b.run(program))


def _stalls(rng: np.random.Generator, share: float):
    while True:
        yield bool(rng.random() < share)


@cocotb.test()
async def a_stalling_memory_changes_no_result(dut):
    """The memory pauses every channel at random (a third of the cycles): the image is still
    exact, and the run only takes longer than the model's full-rate figure."""
    b = Bench(dut, salt=3)
    await b.reset()
    channels = (b.ram.read_if.ar_channel, b.ram.read_if.r_channel, b.ram.write_if.aw_channel,
                b.ram.write_if.w_channel, b.ram.write_if.b_channel)
    for i, channel in enumerate(channels):
        channel.set_pause_generator(_stalls(np.random.default_rng(cocotb.RANDOM_SEED + 10 + i), 1 / 3))
    top = min(b.p.max_beats, max(1, (b.p.buffer_beats - 8) // 4), 3 * b.p.max_burst + 1)
    for program in (b.random_program(ops=6, beats=top), _gemm_program(b, quantize=True)):
        counters = await b.run(program)
        bench_report({"test": "a_stalling_memory_changes_no_result", "program": [hex(w) for w in program],
                      **counters, "stalled": True})
