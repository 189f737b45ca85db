"""The machine: a controller that runs a program from DRAM over a DMA, an activation buffer,
the vector unit and a GEMM engine, behind one AXI4-Lite control port and one AXI4 manager port.

This is the machine's first slice (the attention engine and the other GEMM kinds join it
next). Data path::

    DRAM <== m_axi (AXI4, lanes x bits wide) ==> DMA <-> activation buffer <-> vector unit
                                                  |             | x          ^ y (rounded)
                                                  +-> weights --+-> GEMM engine (m_tile 1)

The program is a list of :data:`generators.isa.ISA` instructions at the ``PROGRAM`` base,
one per ``instruction_beats`` beats (the low 128 bits hold it). Software writes ``PROGRAM``
and ``IMAGE`` (byte addresses, multiples of a beat), then ``CTRL.START``; the controller
fetches and executes one instruction at a time until ``HALT``, which sets ``STATUS.DONE``
(and ``irq`` with ``IER.DONE``). An instruction that names no opcode or vector op, moves no
beats or more than ``max_beats``, or runs past the buffer's end stops the program with
``STATUS.ERROR`` and its index in ``PC``; so does a DRAM response other than OKAY, at the
next instruction (the DMA's error holds until reset: the data moved is not to be trusted).
``CYCLES`` counts the cycles the run is busy, from the one after the ``START`` write to the
one that decodes ``HALT``, and ``RETIRED`` the instructions
executed: the figures the cost model (:mod:`cost_models.machine`) predicts exactly.
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from amaranth.back import verilog
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl import _ir
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from generators.artifact import Artifact, Port
from generators.axi import CLOCK, BitField, Register, _AxiClocked
from generators.isa import BY_NAME, INSTRUCTION_BITS, OPCODE_BITS
from generators.params import ParamError, Params, Rule, int_field, nested_errors, split_nested
from generators.mac_mpgemm import MacMpGemmEngine, MacMpGemmParams
from generators.mpgemm import WeightFormat
from generators.vector import VectorOpcode, VectorParams, VectorUnit
from hw.axi import LITE_DATA_BITS, AxiLiteSignature, AxiSignature
from hw.dma import Dma

__all__ = ["Machine", "MachineParams", "REGISTERS", "render"]

ADDR_BITS = 32
"""Byte address width of the DRAM port (KV260's DDR lies in the low 2 GB of the HP ports' map)."""
MAGIC = 0x4146474D
"""Reads as ASCII ``AFGM`` from ``MAGIC``: an accelforge machine is there."""
READ_DEPTH = 4
"""Beats a buffer reader holds ahead of its consumer: enough for one beat a cycle through a
memory with one cycle of read latency."""

REGISTERS: tuple[Register, ...] = (
    Register("MAGIC", 0x00, "ro", "identification: ASCII AFGM", value=MAGIC),
    Register("CTRL", 0x04, "rw", "control", (BitField("START", 0, "write 1 to run the program (ignored while busy)"),)),
    Register("STATUS", 0x08, "ro", "state of the last run; DONE and ERROR clear at the next start",
             (BitField("BUSY", 0, "a program is running"), BitField("DONE", 1, "the last program halted"),
              BitField("ERROR", 2, "the last program stopped on a bad instruction or a DRAM error"))),
    Register("IER", 0x0C, "rw", "interrupt enable", (BitField("DONE", 0, "irq follows STATUS.DONE or ERROR"),)),
    Register("PROGRAM", 0x10, "rw", "byte address of the program's first instruction"),
    Register("IMAGE", 0x14, "rw", "byte address of the memory image that dram fields count from"),
    Register("CYCLES", 0x18, "ro", "cycles of the last (or current) run, from its start to its halt"),
    Register("RETIRED", 0x1C, "ro", "instructions the last (or current) run executed, HALT included"),
    Register("PC", 0x20, "ro", "index of the instruction executing, or of the one that stopped the run"),
)
REGISTER = {r.name: r for r in REGISTERS}
LITE_ADDR_BITS = 6


def _default_gemm(lanes: int = VectorParams().lanes) -> MacMpGemmParams:
    """The GEMM engine this slice takes: one token row, a square tile of the vector unit's
    lanes, ternary weights (BitNet b1.58's projections)."""
    return MacMpGemmParams(m_tile=1, n_tile=lanes, k_lanes=lanes, weight_format=WeightFormat.TERNARY, w_bits=2,
                           a_bits=8, k_max=4096)


PARTS: dict[str, type[Params]] = {"vector": VectorParams, "gemm": MacMpGemmParams}
"""The machine's engines, each nested as ``<name>.<field>``."""


@dataclass(frozen=True, kw_only=True)
class MachineParams(Params):
    """Parameters of the machine; its engines' own are ``vector.<field>`` and ``gemm.<field>``."""

    family: ClassVar[str] = "machine"

    buffer_beats: int = int_field(1024, 16, 65536, log=True, doc="activation buffer depth, in beats of "
                                                                 "vector.lanes x vector.bits")
    max_burst: int = int_field(16, 1, 256, log=True, doc="longest DRAM burst, in beats (a power of two)")
    vector: VectorParams = field(default_factory=VectorParams)
    gemm: MacMpGemmParams = field(default_factory=_default_gemm)

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("max_burst", (), lambda c: _power_of_two(c["max_burst"]), "a power of two"),
        Rule("buffer_beats", (), lambda c: _power_of_two(c["buffer_beats"]), "a power of two"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for prefix, cls in PARTS.items():
            if not isinstance(getattr(self, prefix), cls):
                raise ParamError(f"machine.{prefix} must be {cls.__name__}, not {getattr(self, prefix)!r}")
        width = self.port_bits
        if width < 32 or width > 1024 or width & (width - 1):
            raise ParamError(f"machine.vector.lanes x vector.bits must be a power of two in 32..1024 (the DRAM "
                             f"port's width), not {self.vector.lanes} x {self.vector.bits} = {width}")
        g, lanes = self.gemm, self.vector.lanes
        for name, value, wanted, why in (
                ("m_tile", g.m_tile, 1, "one token row a run"),
                ("k_lanes", g.k_lanes, lanes, "one buffer beat an activation group"),
                ("n_tile", g.n_tile, lanes, "one buffer beat a run's outputs")):
            if value != wanted:
                raise ParamError(f"machine.gemm.{name} must be {wanted} ({why}), not {value}")
        if g.weight_format is WeightFormat.UINT:
            raise ParamError("machine.gemm.weight_format must be 'int' or 'ternary' (no zero points yet), "
                             "not 'uint'")
        if g.a_bits > self.vector.bits:
            raise ParamError(f"machine.gemm.a_bits must be at most vector.bits ({self.vector.bits}), not {g.a_bits}")

    @property
    def port_bits(self) -> int:
        """Width of the DRAM port and of a buffer beat: one vector beat."""
        return self.vector.lanes * self.vector.bits

    @property
    def instruction_beats(self) -> int:
        """Beats one instruction takes in DRAM."""
        return -(-INSTRUCTION_BITS // self.port_bits)

    @property
    def max_beats(self) -> int:
        """Most beats one instruction moves or computes: a vector run's, and the buffer's."""
        return min(self.vector.max_beats, self.buffer_beats)

    @property
    def weight_bits(self) -> int:
        """Bits of one GEMM weight beat: ``n_tile`` columns of ``k_lanes`` codes."""
        return self.gemm.n_tile * self.gemm.k_lanes * self.gemm.w_bits

    @property
    def weight_beats(self) -> int:
        """DRAM beats one GEMM weight beat takes (its low bits first)."""
        return -(-self.weight_bits // self.port_bits)

    @property
    def max_groups(self) -> int:
        """Activation groups (buffer beats) of the deepest GEMM run."""
        return -(-self.gemm.k_max // self.gemm.k_lanes)

    @property
    def gemm_shift_limit(self) -> int:
        """A GEMM's output shift takes 0..gemm_shift_limit - 1."""
        return self.gemm.out_bits

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for prefix in PARTS:
            out.update({f"{prefix}.{k}": v for k, v in getattr(self, prefix).to_dict().items()})
        return out

    def digest_values(self) -> dict[str, Any]:
        out = {k: v for k, v in super().digest_values().items() if "." not in k}
        for prefix in PARTS:
            out.update({f"{prefix}.{k}": v for k, v in getattr(self, prefix).digest_values().items()})
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MachineParams":
        top, nested = split_nested("machine", values, PARTS)
        for name in top:
            cls.field_info(name)
        with nested_errors("machine.vector", VectorParams):
            vector = VectorParams.from_dict(nested["vector"])
        base = _default_gemm(vector.lanes).to_dict()          # the unset GEMM fields fit the lanes
        with nested_errors("machine.gemm", MacMpGemmParams):
            gemm = MacMpGemmParams.from_dict({**base, **nested["gemm"]})
        return cls(**top, vector=vector, gemm=gemm)

    @classmethod
    def parse_strings(cls, values: Mapping[str, str]) -> dict[str, Any]:
        """``--set`` text as typed values, ``<part>.<field>`` against that engine's fields."""
        top, nested = split_nested("machine", values, PARTS)
        parsed = super().parse_strings(top)
        for prefix, part in PARTS.items():
            for name, text in nested[prefix].items():
                with nested_errors(f"machine.{prefix}", part):
                    parsed[f"{prefix}.{name}"] = part.field_info(name).parse(text)
        return parsed


def _power_of_two(value):
    import numpy as np
    v = np.asarray(value)
    return (v & (v - 1)) == 0


class BufferReader(wiring.Component):
    """Streams ``count`` beats of a memory from ``first`` on ``data``, one a cycle when the
    consumer takes one a cycle. The controller starts it only once every beat of its last
    transfer was taken (each consumer takes exactly the beats it asked for), so no stale beat
    is ever queued."""

    def __init__(self, port: memory.ReadPort, depth: int):
        self.port, self.depth = port, depth
        width = len(port.data)
        super().__init__({"start": In(1), "first": In(len(port.addr)), "count": In(range(depth + 1)),
                          "idle": Out(1), "data": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = fifo.SyncFIFO(width=len(self.data.payload), depth=READ_DEPTH)
        addr, left = Signal.like(self.first), Signal.like(self.count)
        pending = Signal()                                   # a read issued last cycle
        issue = Signal()
        m.d.comb += [issue.eq((left != 0) & (queue.level + pending < READ_DEPTH - 1)),
                     self.port.addr.eq(addr), self.port.en.eq(issue),
                     queue.w_data.eq(self.port.data), queue.w_en.eq(pending),
                     self.data.payload.eq(queue.r_data), self.data.valid.eq(queue.r_rdy),
                     queue.r_en.eq(self.data.ready),
                     self.idle.eq((left == 0) & ~pending & ~queue.r_rdy)]
        m.d.sync += pending.eq(issue)
        with m.If(self.start):
            m.d.sync += [addr.eq(self.first), left.eq(self.count)]
        with m.Elif(issue):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
        return m


class Machine(_AxiClocked):
    """The machine (see the module docstring), with AXI-named ports."""

    def __init__(self, p: MachineParams):
        self.p = p
        super().__init__({**CLOCK, "s_axi_control": In(AxiLiteSignature(LITE_ADDR_BITS)),
                          "m_axi": Out(AxiSignature(ADDR_BITS, p.port_bits)),
                          "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        p = self.p
        self._clock(m)
        m.submodules.dma = dma = Dma(ADDR_BITS, p.port_bits,
                                     max(p.max_beats, p.instruction_beats, p.max_groups * p.weight_beats), p.max_burst)
        wiring.connect(m, wiring.flipped(self.m_axi), dma.axi)
        m.submodules.unit = unit = VectorUnit(p.vector)
        m.submodules.buffer = buffer = memory.Memory(shape=p.port_bits, depth=p.buffer_beats, init=[])
        x_port, y_port = buffer.read_port(), buffer.read_port()
        write = buffer.write_port()
        m.submodules.x_reader = x_reader = BufferReader(x_port, max(p.max_beats, p.max_groups))
        m.submodules.gemm = engine = MacMpGemmEngine(p.gemm)
        m.submodules.y_reader = y_reader = BufferReader(y_port, p.max_beats)

        # ---- registers the host sees
        program, image = Signal(ADDR_BITS), Signal(ADDR_BITS)
        cycles, retired = Signal(LITE_DATA_BITS), Signal(LITE_DATA_BITS)
        pc = Signal(LITE_DATA_BITS)
        busy, done, error, ier, go = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += self.irq.eq((done | error) & ier)
        self._lite(m, {"CTRL": Const(0, 1), "STATUS": Cat(busy, done, error), "IER": ier, "PROGRAM": program,
                       "IMAGE": image, "CYCLES": cycles, "RETIRED": retired, "PC": pc},
                   {"PROGRAM": program, "IMAGE": image, "IER": ier}, go)

        # ---- the instruction register and its fields, as the ISA declares them
        inst = Signal(INSTRUCTION_BITS)
        size = p.port_bits.bit_length() - 1 - 3                     # log2 bytes per beat
        opcode = inst[:OPCODE_BITS]
        fields = {name: {f: inst[low:low + bits] for f, (low, bits) in i.offsets().items()}
                  for name, i in BY_NAME.items()}
        move = fields["LOAD"]                                       # LOAD and STORE share a layout
        assert fields["STORE"].keys() == move.keys()
        vec = fields["VECTOR"]
        mm = fields["GEMM"]
        is_load, is_store, is_vector, is_halt, is_gemm = (opcode == BY_NAME[n].opcode for n in
                                                          ("LOAD", "STORE", "VECTOR", "HALT", "GEMM"))
        lanes_log2 = p.vector.lanes.bit_length() - 1
        groups = Signal(range(p.max_groups + 1))                    # a GEMM run's activation beats
        m.d.comb += groups.eq((mm["k"] + p.vector.lanes - 1) >> lanes_log2)
        beats = Mux(is_vector, vec["beats"], move["beats"])
        binary = Signal()
        m.d.comb += binary.eq(functools.reduce(operator.or_, (vec["op"] == code for code in VectorOpcode
                                                              if code.binary)))
        reduction = vec["op"] >= VectorOpcode.ARGMAX
        out_beats = Mux(reduction, 1, beats)
        fits = Signal()
        depth = p.buffer_beats
        m.d.comb += fits.eq(is_halt | ((beats != 0) & (beats <= p.max_beats)))
        with m.If(is_vector):
            with m.If((vec["op"] >= len(VectorOpcode)) | (vec["shift"] >= p.vector.shift_limit)
                      | (vec["x"] + beats > depth) | (binary & (vec["y"] + beats > depth))
                      | (vec["z"] + out_beats > depth)):
                m.d.comb += fits.eq(0)
        with m.Elif(is_load | is_store):
            with m.If(move["buffer"] + beats > depth):
                m.d.comb += fits.eq(0)
        with m.Elif(is_gemm):
            m.d.comb += fits.eq((mm["k"] != 0) & (mm["k"] <= p.gemm.k_max) & (mm["tiles"] != 0)
                                & (mm["x"] + groups <= depth) & (mm["z"] + mm["tiles"] <= depth)
                                & (mm["shift"] < p.gemm_shift_limit))
        with m.Elif(~is_halt):
            m.d.comb += fits.eq(0)

        # ---- datapath steering: who writes the buffer
        w_addr = Signal(range(depth))
        loading, gemming = Signal(), Signal()
        m.d.comb += [write.addr.eq(w_addr),
                     write.data.eq(Mux(loading, dma.read_data.payload,
                                       Mux(gemming, self._requantize(m, engine.y_stream.payload, mm["shift"]),
                                           unit.z_stream.payload))),
                     dma.read_data.ready.eq(1), unit.z_stream.ready.eq(1), engine.y_stream.ready.eq(1)]
        beat_bits = p.port_bits

        # ---- the vector unit takes x and y from the readers
        m.d.comb += [unit.x_stream.payload.eq(x_reader.data.payload), unit.x_stream.valid.eq(x_reader.data.valid),
                     x_reader.data.ready.eq(unit.x_stream.ready),
                     unit.y_stream.payload.eq(y_reader.data.payload), unit.y_stream.valid.eq(y_reader.data.valid),
                     y_reader.data.ready.eq(unit.y_stream.ready),
                     unit.op.eq(vec["op"]), unit.shift.eq(vec["shift"]), unit.n.eq(vec["beats"])]
        # STORE streams the x reader to the DMA's write side
        storing = Signal()
        m.d.comb += [dma.write_data.payload.eq(x_reader.data.payload),
                     dma.write_data.valid.eq(x_reader.data.valid & storing)]
        with m.If(storing):
            m.d.comb += x_reader.data.ready.eq(dma.write_data.ready)

        # ---- the GEMM engine: activations from the x reader (each lane's low a_bits), weights
        # from the DMA (weight_beats DRAM beats a w_stream beat, low bits first)
        g = p.gemm
        m.d.comb += [engine.a_stream.payload.eq(Cat(*(x_reader.data.payload[lane * p.vector.bits:][:g.a_bits]
                                                      for lane in range(g.k_lanes)))),
                     engine.a_stream.valid.eq(x_reader.data.valid & gemming), engine.k.eq(mm["k"])]
        with m.If(gemming):
            m.d.comb += x_reader.data.ready.eq(engine.a_stream.ready)
        self._weights(m, dma.read_data, engine.w_stream, gemming)

        def dram_beat(base: Signal, offset) -> Any:
            return (base >> size)[:dma.beat_bits] + offset

        tile = Signal(16)
        weights_at = Signal(dma.beat_bits)                          # the next tile's first weight beat
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(go):
                    m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), pc.eq(0), cycles.eq(0), retired.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [dma.read_start.eq(1), dma.read_beat.eq(dram_beat(program, pc * p.instruction_beats)),
                             dma.read_count.eq(p.instruction_beats)]
                m.next = "FETCHING"
            with m.State("FETCHING"):
                with m.If(dma.read_data.valid):
                    if p.instruction_beats == 1:
                        m.d.sync += inst.eq(dma.read_data.payload[:INSTRUCTION_BITS])
                    else:
                        m.d.sync += inst.eq(Cat(inst[beat_bits:], dma.read_data.payload))
                with m.If(dma.read_done):
                    m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(~fits | dma.error):
                    m.d.sync += [busy.eq(0), error.eq(1)]
                    m.next = "IDLE"
                with m.Elif(is_halt):
                    m.d.sync += [busy.eq(0), done.eq(1), retired.eq(retired + 1)]
                    m.next = "IDLE"
                with m.Elif(is_load):
                    m.d.comb += [dma.read_start.eq(1), dma.read_beat.eq(dram_beat(image, move["dram"])),
                                 dma.read_count.eq(beats)]
                    m.d.sync += w_addr.eq(move["buffer"])
                    m.next = "LOAD"
                with m.Elif(is_gemm):
                    m.d.sync += [w_addr.eq(mm["z"]), tile.eq(0), weights_at.eq(dram_beat(image, mm["w"]))]
                    m.next = "GEMM"
                with m.Elif(is_store):
                    m.d.comb += [dma.write_start.eq(1), dma.write_beat.eq(dram_beat(image, move["dram"])),
                                 dma.write_count.eq(beats),
                                 x_reader.start.eq(1), x_reader.first.eq(move["buffer"]), x_reader.count.eq(beats)]
                    m.next = "STORE"
                with m.Else():
                    m.d.comb += [unit.start.eq(1), x_reader.start.eq(1), x_reader.first.eq(vec["x"]),
                                 x_reader.count.eq(beats), y_reader.start.eq(binary), y_reader.first.eq(vec["y"]),
                                 y_reader.count.eq(beats)]
                    m.d.sync += w_addr.eq(vec["z"])
                    m.next = "VECTOR"
            with m.State("LOAD"):
                m.d.comb += [loading.eq(1), write.en.eq(dma.read_data.valid)]
                with m.If(dma.read_data.valid):
                    m.d.sync += w_addr.eq(w_addr + 1)
                with m.If(dma.read_done):
                    self._retire(m, retired, pc)
            with m.State("STORE"):
                m.d.comb += storing.eq(1)
                with m.If(dma.write_done):
                    self._retire(m, retired, pc)
            with m.State("GEMM"):
                m.d.comb += [engine.start.eq(1), x_reader.start.eq(1), x_reader.first.eq(mm["x"]),
                             x_reader.count.eq(groups), dma.read_start.eq(1), dma.read_beat.eq(weights_at),
                             dma.read_count.eq(groups * p.weight_beats)]
                m.next = "GEMM_RUN"
            with m.State("GEMM_RUN"):
                m.d.comb += [gemming.eq(1), write.en.eq(engine.y_stream.valid)]
                with m.If(engine.y_stream.valid):
                    m.d.sync += [w_addr.eq(w_addr + 1), tile.eq(tile + 1),
                                 weights_at.eq(weights_at + groups * p.weight_beats)]
                    with m.If(tile + 1 == mm["tiles"]):
                        self._retire(m, retired, pc)
                    with m.Else():
                        m.next = "GEMM"
            with m.State("VECTOR"):
                m.d.comb += write.en.eq(unit.z_stream.valid)
                with m.If(unit.z_stream.valid):
                    m.d.sync += w_addr.eq(w_addr + 1)
                with m.If(unit.done):
                    self._retire(m, retired, pc)
        return m

    def _requantize(self, m: Module, y, shift) -> Signal:
        """A GEMM output beat as a buffer beat: each lane ``sat(floor(y / 2**shift + 1/2))`` in
        vector.bits (``shift = 0`` keeps y as it is)."""
        p = self.p
        bits, wide = p.vector.bits, p.gemm.out_bits + 1
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        lanes = []
        for j in range(p.gemm.n_tile):
            half = Signal(wide, name=f"half{j}")
            rounded = Signal(signed(wide), name=f"rounded{j}")
            m.d.comb += [half.eq((Const(1, wide) << shift) >> 1), rounded.eq((y[j] + half) >> shift)]
            lanes.append(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded))[:bits])
        out = Signal(p.port_bits)
        m.d.comb += out.eq(Cat(*lanes))
        return out

    def _weights(self, m: Module, beats, w_stream, active: Signal) -> None:
        """Feed ``w_stream`` from the DMA's read beats while ``active``: one DRAM beat a weight
        beat, or a shift register that gathers ``weight_beats`` of them."""
        p = self.p
        if p.weight_beats == 1:
            m.d.comb += [w_stream.payload.eq(beats.payload[:p.weight_bits]), w_stream.valid.eq(beats.valid & active)]
            with m.If(active):
                m.d.comb += beats.ready.eq(w_stream.ready)
            return
        gather = Signal(p.weight_beats * p.port_bits)
        have = Signal(range(p.weight_beats + 1))
        full = have == p.weight_beats
        taken = Signal()
        m.d.comb += [w_stream.payload.eq(gather[:p.weight_bits]), w_stream.valid.eq(full & active),
                     taken.eq(w_stream.valid & w_stream.ready)]
        with m.If(active):
            m.d.comb += beats.ready.eq(~full | taken)
        arrive = beats.valid & beats.ready & active
        with m.If(arrive):
            m.d.sync += [gather.eq(Cat(gather[p.port_bits:], beats.payload)), have.eq(Mux(taken, 1, have + 1))]
        with m.Elif(taken):
            m.d.sync += have.eq(0)

    @staticmethod
    def _retire(m: Module, retired: Signal, pc: Signal) -> None:
        m.d.sync += [retired.eq(retired + 1), pc.eq(pc + 1)]
        m.next = "FETCH"

    def _lite(self, m: Module, values: dict[str, Any], writable: dict[str, Signal], go: Signal) -> None:
        """AXI4-Lite: one read and one write at a time, each answered in the cycle after."""
        lite = self.s_axi_control
        read = lite.arvalid & lite.arready
        m.d.comb += [lite.arready.eq(~lite.rvalid), lite.rresp.eq(0), lite.bresp.eq(0)]
        with m.If(read):
            m.d.sync += lite.rvalid.eq(1)
            with m.Switch(lite.araddr[2:]):
                for r in REGISTERS:
                    with m.Case(r.offset >> 2):
                        m.d.sync += lite.rdata.eq(Const(r.value, LITE_DATA_BITS) if r.value is not None
                                                  else values[r.name])
                with m.Default():
                    m.d.sync += lite.rdata.eq(0)
        with m.Elif(lite.rready):
            m.d.sync += lite.rvalid.eq(0)
        write = Signal()
        m.d.comb += [write.eq(lite.awvalid & lite.wvalid & ~lite.bvalid), lite.awready.eq(write),
                     lite.wready.eq(write)]
        with m.If(write):
            m.d.sync += lite.bvalid.eq(1)
        with m.Elif(lite.bready):
            m.d.sync += lite.bvalid.eq(0)
        with m.If(write):
            with m.Switch(lite.awaddr[2:]):
                with m.Case(REGISTER["CTRL"].offset >> 2):
                    m.d.comb += go.eq(lite.wstrb[0] & lite.wdata[0])
                for name, reg in writable.items():
                    with m.Case(REGISTER[name].offset >> 2):
                        for b in range(0, len(reg), 8):
                            with m.If(lite.wstrb[b // 8]):
                                m.d.sync += reg[b:min(b + 8, len(reg))].eq(lite.wdata[b:min(b + 8, len(reg))])


def render(p: MachineParams) -> Artifact:
    """The machine's Verilog, with its register map and ISA in the manifest."""
    from generators.isa import ISA
    machine = Machine(p)
    ports = machine.ports()
    top = p.top_name()
    text = verilog.convert(machine, name=top, ports=ports, emit_src=False)
    listed = tuple(Port(name, len(value), "input" if d is _ir.PortDirection.Input else "output")
                   for name, (value, d) in ports.items())
    return Artifact(params=p, top=top, verilog=text, ports=listed, extra={
        "registers": [r.to_dict() for r in REGISTERS],
        "isa": [{"name": i.name, "opcode": i.opcode, "doc": i.doc,
                 "fields": [{"name": f.name, "bits": f.bits, "doc": f.doc} for f in i.fields]} for i in ISA],
        "instruction_bits": INSTRUCTION_BITS, "instruction_beats": p.instruction_beats})
