"""An AXI wrapper around any engine: AXI4-Stream data, an AXI4-Lite register map for control.

The wrapper reads what it needs from the engine's own signature, so one wrapper serves
every family: each ``stream.Signature`` input becomes an AXI4-Stream subordinate
``s_axis_<name>`` and the output stream a manager ``m_axis_<name>`` (``<name>`` is the
engine's stream name without ``_stream``); every other engine input (the run length and
the held arguments such as ``scale`` or ``zero_point``) becomes argument registers. The
engine declares its run protocol (``run_protocol``) and how many output beats a run makes
(``beats_per_run``), which is what ``tlast`` and the done flag count.

Protocol, as software sees it (offsets in :func:`register_map`):

* Write the arguments, then ``CTRL.START``: the start waits in ``STATUS.PENDING`` until the
  engine takes it (at once when idle, or in the done cycle of the run before: a start
  written while busy is queued, one deep). The engine samples the arguments when it takes
  the start, so the next run's arguments may be written as soon as ``PENDING`` falls.
* A start with a run length outside 1..maximum is dropped and sets ``STATUS.ERROR``.
* ``CTRL.AUTO_RESTART`` keeps ``PENDING`` set: the engine restarts with the same arguments
  until ``CTRL`` is written with ``START`` and ``AUTO_RESTART`` clear, which also withdraws a
  start not yet taken. ``STARTS`` and ``RUNS`` count taken starts and completed runs.
* ``STATUS.DONE`` is set when the last beat of a run's output has left (the beat with
  ``tlast``); it and ``ERROR`` clear when ``STATUS`` is read or written with the bit set.
  ``irq`` (the interrupt) is ``DONE & IER.DONE``.
* Latency the wrapper adds (exact, held by the AXI bench): the engine takes a start
  :data:`START_LATENCY` cycle after the cycle whose AXI4-Lite write set ``START``; ``DONE`` and
  ``irq`` rise :data:`DONE_LATENCY` cycle after the cycle of the run's last output beat.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Shape, Signal, Value
from amaranth.hdl import _ir
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from generators.artifact import Artifact, Port, render, write_atomic
from generators.params import ParamError, Params
from hw.axi import LITE_DATA_BITS, AxiLiteSignature, AxiStreamSignature, tdata_bits
from hw.run_control import RunSignature

START_LATENCY = 1
"""Cycles from the cycle of the AXI4-Lite write that sets ``CTRL.START`` to the engine's start
(on an idle engine, with a valid run length)."""
DONE_LATENCY = 1
"""Cycles from the cycle of a run's last output beat to ``STATUS.DONE`` and ``irq``."""
MAGIC = 0x41464745
"""Reads as ASCII ``AFGE`` from the ``MAGIC`` register: an accelforge wrapper is there."""
INFLIGHT_BITS = 8
ARGUMENT_BASE = 0x40
MAX_STREAMS = 7


@dataclass(frozen=True)
class BitField:
    name: str
    bit: int
    description: str


@dataclass(frozen=True)
class Register:
    """One 32-bit register. ``argument``/``word`` tie an argument register to the engine input
    it drives (bits ``32*word ..`` of it); ``value`` is a read-only identification constant."""
    name: str
    offset: int
    access: str                       # "rw", "ro" or "rw1c" (STATUS: clear on read / write 1)
    description: str
    fields: tuple[BitField, ...] = ()
    value: int | None = None
    argument: str | None = None
    word: int = 0
    bits: int = LITE_DATA_BITS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "offset": self.offset, "access": self.access,
                               "bits": self.bits, "description": self.description}
        if self.fields:
            out["fields"] = {f.name: {"bit": f.bit, "description": f.description} for f in self.fields}
        if self.value is not None:
            out["value"] = self.value
        if self.argument is not None:
            out.update(argument=self.argument, word=self.word)
        return out


@dataclass(frozen=True)
class Stream:
    name: str                         # the engine's member name, e.g. "a_stream"
    port: str                         # the AXI4-Stream prefix, e.g. "s_axis_a"
    payload_bits: int
    direction: str                    # "in" (to the engine) or "out"

    @property
    def data_bits(self) -> int:
        return tdata_bits(self.payload_bits)


@dataclass(frozen=True)
class Argument:
    name: str                         # the engine's input port
    bits: int
    description: str


@dataclass(frozen=True)
class RegisterMap:
    """What software needs to drive a wrapped engine; written into the manifest, a C header and
    a Python module, so drivers never restate it."""
    top: str
    family: str
    digest: str
    length: str
    maximum: int
    beats_per_run: int
    registers: tuple[Register, ...]
    streams: tuple[Stream, ...]
    addr_bits: int
    prefix: str = ""                  # an engine's port prefix inside a composed top ("gemm0_")
    start_latency: int = START_LATENCY
    done_latency: int = DONE_LATENCY

    @property
    def control(self) -> str:
        return f"{self.prefix}s_axi_control"

    @property
    def irq(self) -> str:
        return f"{self.prefix}irq"

    def __getitem__(self, name: str) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def arguments(self, name: str) -> list[Register]:
        """The argument registers of engine input ``name``, lowest word first."""
        return [r for r in self.registers if r.argument == name]

    def to_dict(self) -> dict[str, Any]:
        return {"top": self.top, "prefix": self.prefix, "control": self.control, "irq": self.irq,
                "family": self.family, "hash": self.digest, "length": self.length,
                "maximum": self.maximum, "beats_per_run": self.beats_per_run,
                "addr_bits": self.addr_bits, "start_latency": self.start_latency,
                "done_latency": self.done_latency,
                "registers": [r.to_dict() for r in self.registers],
                "streams": [{"name": s.name, "port": s.port, "direction": s.direction,
                             "payload_bits": s.payload_bits, "tdata_bits": s.data_bits}
                            for s in self.streams]}


def _split_members(engine: wiring.Component, run: RunSignature, prefix: str):
    """The engine's streams and argument inputs, in signature order."""
    streams, arguments = [], []
    control = set(run.members) - {run.length}              # start, busy, done: the wrapper drives them
    for name, member in engine.signature.members.items():
        if name in control:
            continue
        if member.is_signature and isinstance(member.signature, stream.Signature):
            bits = Shape.cast(member.signature.members["payload"].shape).width
            base = name.removesuffix("_stream")
            inward = member.flow is In
            streams.append(Stream(name, f"{prefix}{'s' if inward else 'm'}_axis_{base}", bits,
                                  "in" if inward else "out"))
        elif member.is_port and member.flow is In:
            arguments.append(Argument(name, Shape.cast(member.shape).width,
                                      f"run length, 1..{run.maximum}" if name == run.length
                                      else "held argument, sampled at the start"))
        else:
            raise ValueError(f"engine member {name!r} is neither a stream nor an input argument; "
                             "the AXI wrapper cannot map it")
    outs = [s for s in streams if s.direction == "out"]
    if len(outs) != 1 or len(streams) > MAX_STREAMS:
        raise ValueError(f"the AXI wrapper needs exactly one output stream and at most {MAX_STREAMS} "
                         f"streams; the engine has {len(outs)} output and {len(streams)} streams")
    arguments.sort(key=lambda a: a.name != run.length)      # the run length first
    return streams, arguments


def frames_runs(engine: wiring.Component) -> bool:
    """Whether the wrapper can frame ``engine``'s runs: it declares a fixed ``beats_per_run``."""
    return getattr(engine, "beats_per_run", None) is not None


def register_map(engine: wiring.Component, params: Params, *, prefix: str = "",
                 top: str | None = None) -> RegisterMap:
    """The register map of ``engine`` wrapped: control and status, identification, arguments.
    ``prefix`` and ``top`` place it inside a composed top."""
    if not frames_runs(engine):
        raise ParamError(f"{params.family} has no AXI wrapper: its runs make as many output beats as "
                         f"their op asks, and the wrapper frames a run by a fixed count")
    run: RunSignature = engine.run_protocol
    streams, arguments = _split_members(engine, run, prefix)
    regs = [
        Register("CTRL", 0x00, "rw", "run control",
                 (BitField("START", 0, "write 1 to request a run, 0 to withdraw one still pending; "
                           "reads 1 while pending"),
                  BitField("AUTO_RESTART", 1, "keep restarting with the current arguments"))),
        Register("STATUS", 0x04, "rw1c", "run status; DONE and ERROR clear on read or on writing 1",
                 (BitField("BUSY", 0, "a run is computing or its output is leaving"),
                  BitField("DONE", 1, "a run's last output beat has left"),
                  BitField("IDLE", 2, "no run busy and none pending"),
                  BitField("PENDING", 3, "a start waits for the engine"),
                  BitField("ERROR", 4, "a start with a run length outside 1..maximum was dropped"))),
        Register("IER", 0x08, "rw", "interrupt enable", (BitField("DONE", 0, "interrupt on DONE"),)),
        Register("STARTS", 0x0C, "ro", "starts the engine has taken since reset (wraps)"),
        Register("RUNS", 0x10, "ro", "runs completed since reset (wraps)"),
        Register("MAGIC", 0x14, "ro", "identifies an accelforge wrapper", value=MAGIC),
        Register("FAMILY", 0x18, "ro", f"CRC-32 of the family name {params.family!r}",
                 value=zlib.crc32(params.family.encode())),
        Register("HASH", 0x1C, "ro", "first 8 hex digits of the design's Params hash",
                 value=int(params.digest()[:8], 16)),
        Register("BEATS", 0x20, "ro", "output beats per run", value=engine.beats_per_run),
    ]
    for i, s in enumerate(streams):
        regs.append(Register(f"{s.port.removeprefix(prefix).upper()}_BITS", 0x24 + 4 * i, "ro",
                             f"payload bits of {s.port} (tdata is {s.data_bits} bits)", value=s.payload_bits))
    offset = ARGUMENT_BASE
    for arg in arguments:
        words = -(-arg.bits // LITE_DATA_BITS)
        for w in range(words):
            name = arg.name.upper() + (f"_{w}" if words > 1 else "")
            regs.append(Register(name, offset, "rw", arg.description, argument=arg.name, word=w,
                                 bits=min(LITE_DATA_BITS, arg.bits - LITE_DATA_BITS * w)))
            offset += 4
    addr_bits = max(8, (offset - 1).bit_length())
    return RegisterMap(top=top or axi_top(params), family=params.family, digest=params.digest(),
                       length=run.length, maximum=run.maximum, beats_per_run=engine.beats_per_run,
                       registers=tuple(regs), streams=tuple(streams), addr_bits=addr_bits, prefix=prefix)


def axi_top(params: Params) -> str:
    return f"{params.top_name()}_axi"


def engine_maps(axi: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine register maps in a manifest's ``axi`` entry: the map itself for one engine,
    one per engine (``engines``) for a composed top."""
    return list(axi["engines"].values()) if "engines" in axi else [axi]


class _AxiClocked(wiring.Component):
    """A top with the AXI clock and active-low reset as its ``sync`` domain, and its ports
    named as AXI expects (``s_axis_a_tdata``)."""

    def _clock(self, m: Module) -> None:
        """``sync`` on ``aclk``, its reset ``aresetn`` inverted through a flip-flop: an inverter
        on the reset net keeps Yosys from packing the engines' accumulators into DSP48s
        (measured: the MAC engine's 1,240 LUTs became 2,122), so reset takes hold one
        cycle after ``aresetn`` falls and lets go one cycle after it rises."""
        m.domains.sync = cd = ClockDomain("sync")
        m.domains.axi_reset = reset = ClockDomain("axi_reset", reset_less=True, local=True)
        reset_q = Signal(init=1)
        m.d.comb += [cd.clk.eq(self.aclk), reset.clk.eq(self.aclk), cd.rst.eq(reset_q)]
        m.d.axi_reset += reset_q.eq(~self.aresetn)

    def ports(self) -> dict[str, tuple[Value, Any]]:
        """The ports for ``verilog.convert``: member paths joined by ``_``."""
        out = {}
        for path, member, value in self.signature.flatten(self):
            direction = _ir.PortDirection.Input if member.flow is In else _ir.PortDirection.Output
            out["_".join(map(str, path))] = (Value.cast(value), direction)
        return out


CLOCK = {"aclk": In(1), "aresetn": In(1)}


class AxiWrapper(_AxiClocked):
    """``engine`` behind AXI4-Stream ports and an AXI4-Lite register map (see the module).
    ``clocked=False`` leaves the clock to a composed top (:class:`AxiComposite`)."""

    def __init__(self, engine: wiring.Component, params: Params, *, prefix: str = "",
                 top: str | None = None, clocked: bool = True):
        for attr in ("run_protocol", "beats_per_run"):
            if not hasattr(engine, attr):
                raise ValueError(f"the engine {type(engine).__name__} does not declare {attr}")
        self.engine, self.clocked = engine, clocked
        self.map = register_map(engine, params, prefix=prefix, top=top)
        members: dict[str, Any] = {**(CLOCK if clocked else {}),
                                   self.map.control: In(AxiLiteSignature(self.map.addr_bits)),
                                   self.map.irq: Out(1)}
        for s in self.map.streams:
            members[s.port] = (In if s.direction == "in" else Out)(AxiStreamSignature(s.payload_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rmap, engine, run = self.map, self.engine, self.engine.run_protocol
        if self.clocked:
            self._clock(m)
        m.submodules.engine = engine

        # ---- streams: payload in the low bits of tdata; whole beats only
        out = next(s for s in rmap.streams if s.direction == "out")
        for s in rmap.streams:
            axis, port = getattr(self, s.port), getattr(engine, s.name)
            if s.direction == "in":
                m.d.comb += [port.payload.eq(axis.tdata[:s.payload_bits]), port.valid.eq(axis.tvalid),
                             axis.tready.eq(port.ready)]
            else:
                m.d.comb += [axis.tdata.eq(port.payload), axis.tvalid.eq(port.valid),
                             port.ready.eq(axis.tready), axis.tkeep.eq(Const(-1, len(axis.tkeep)))]

        # ---- registers
        lite = getattr(self, rmap.control)
        ctrl_start, auto_restart, done, error, ier = (Signal(name=n) for n in
                                                      ("start_pending", "auto_restart", "done_flag",
                                                       "error_flag", "ier_done"))
        runs, starts = Signal(LITE_DATA_BITS), Signal(LITE_DATA_BITS)
        inflight = Signal(INFLIGHT_BITS)
        beat = Signal(range(max(rmap.beats_per_run, 2)))
        words = {r.name: Signal(r.bits, name=f"arg_{r.name.lower()}") for r in rmap.registers if r.argument}
        for name in dict.fromkeys(r.argument for r in rmap.registers if r.argument):
            port = getattr(engine, name)
            m.d.comb += port.eq(Cat(*(words[r.name] for r in rmap.arguments(name))))

        # ---- run control
        length = getattr(engine, run.length)
        length_ok = length != 0
        if run.maximum < (1 << len(length)) - 1:        # a bound the length's width already keeps needs
            length_ok &= length <= run.maximum          # no compare (Verilator: CMPCONST at k_max = 1)
        accepted = Signal()
        m.d.comb += [engine.start.eq(ctrl_start & length_ok), accepted.eq(run.accepts(engine))]
        axis_out = getattr(self, out.port)
        out_beat = axis_out.tvalid & axis_out.tready
        last = Signal()
        m.d.comb += [last.eq(beat == rmap.beats_per_run - 1), axis_out.tlast.eq(last)]
        finished = out_beat & last
        with m.If(out_beat):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        m.d.sync += inflight.eq(inflight + accepted - finished)
        with m.If(accepted):
            m.d.sync += starts.eq(starts + 1)
        with m.If(accepted & ~auto_restart):
            m.d.sync += ctrl_start.eq(0)
        with m.If(ctrl_start & ~length_ok):
            m.d.sync += ctrl_start.eq(0)
        busy = engine.busy | (inflight != 0)
        status = Cat(busy, done, ~busy & ~ctrl_start, ctrl_start, error)
        m.d.comb += getattr(self, rmap.irq).eq(done & ier)

        # ---- AXI4-Lite reads: one outstanding; data registered with the address handshake
        values: dict[str, Value] = {"CTRL": Cat(ctrl_start, auto_restart), "STATUS": status, "IER": ier,
                                    "STARTS": starts, "RUNS": runs, **words}
        read = lite.arvalid & lite.arready
        m.d.comb += [lite.arready.eq(~lite.rvalid), lite.rresp.eq(0), lite.bresp.eq(0)]
        read_status = Signal()
        with m.If(read):
            m.d.sync += lite.rvalid.eq(1)
            with m.Switch(lite.araddr[2:]):
                for r in rmap.registers:
                    with m.Case(r.offset >> 2):
                        m.d.sync += lite.rdata.eq(Const(r.value) if r.value is not None else values[r.name])
                        if r.name == "STATUS":
                            m.d.comb += read_status.eq(1)
                with m.Default():
                    m.d.sync += lite.rdata.eq(0)
        with m.Elif(lite.rready):
            m.d.sync += lite.rvalid.eq(0)

        # ---- AXI4-Lite writes: address and data taken together, byte strobes honoured
        write = Signal()
        m.d.comb += [write.eq(lite.awvalid & lite.wvalid & ~lite.bvalid),
                     lite.awready.eq(write), lite.wready.eq(write)]
        with m.If(write):
            m.d.sync += lite.bvalid.eq(1)
        with m.Elif(lite.bready):
            m.d.sync += lite.bvalid.eq(0)
        byte0 = lite.wstrb[0]
        clear_status = Signal()
        with m.If(write):
            with m.Switch(lite.awaddr[2:]):
                with m.Case(rmap["CTRL"].offset >> 2):
                    with m.If(byte0):
                        m.d.sync += [ctrl_start.eq(lite.wdata[0]), auto_restart.eq(lite.wdata[1])]
                with m.Case(rmap["STATUS"].offset >> 2):
                    m.d.comb += clear_status.eq(byte0)
                with m.Case(rmap["IER"].offset >> 2):
                    with m.If(byte0):
                        m.d.sync += ier.eq(lite.wdata[0])
                for r in rmap.registers:
                    if r.argument is None:
                        continue
                    with m.Case(r.offset >> 2):
                        reg = words[r.name]
                        for b in range(0, r.bits, 8):
                            with m.If(lite.wstrb[b // 8]):
                                m.d.sync += reg[b:min(b + 8, r.bits)].eq(lite.wdata[b:min(b + 8, r.bits)])

        # ---- sticky flags: a set in the same cycle as a clear wins, so no event is lost
        with m.If(read_status | (clear_status & lite.wdata[1])):
            m.d.sync += done.eq(0)
        with m.If(read_status | (clear_status & lite.wdata[4])):
            m.d.sync += error.eq(0)
        with m.If(finished):
            m.d.sync += [done.eq(1), runs.eq(runs + 1)]
        with m.If(ctrl_start & ~length_ok):
            m.d.sync += error.eq(1)
        return m


class AxiComposite(_AxiClocked):
    """A composed design's engines (``design.engines``: name -> (engine, Params)) each behind its
    own AXI wrapper, its ports prefixed by its name (``gemm0_s_axi_control_awaddr``), under one
    AXI clock and reset."""

    def __init__(self, design: wiring.Component, top: str):
        design._MustUse__silence = True         # its engines are wrapped and used, not the design
        self.wrappers = {name: AxiWrapper(engine, params, prefix=f"{name}_", top=top, clocked=False)
                         for name, (engine, params) in design.engines.items()}
        members = dict(CLOCK)
        for wrapper in self.wrappers.values():
            members.update(wrapper.signature.members)
        super().__init__(members)

    def map_dict(self) -> dict[str, Any]:
        top = next(iter(self.wrappers.values())).map.top
        return {"top": top, "engines": {name: w.map.to_dict() for name, w in self.wrappers.items()}}

    def elaborate(self, platform):
        m = Module()
        self._clock(m)
        for name, wrapper in self.wrappers.items():
            m.submodules[name] = wrapper
            for name, member in wrapper.signature.members.items():
                outer, inner = getattr(self, name), getattr(wrapper, name)
                if member.is_signature:
                    wiring.connect(m, wiring.flipped(outer), inner)
                else:
                    m.d.comb += inner.eq(outer) if member.flow is In else outer.eq(inner)
        return m


def c_header(axi: dict[str, Any]) -> str:
    """``#define``s for C drivers from a manifest's ``axi`` entry: per engine, offsets, bit masks,
    identification values, the run length's maximum, beats per run and stream widths."""
    top = axi["top"]
    guard = f"{top.upper()}_REGS_H"
    lines = [f"/* Register map of {top}, generated by accelforge. */", f"#ifndef {guard}", f"#define {guard}"]
    for rmap in engine_maps(axi):
        lines += ["", f"/* {rmap['family']} {rmap['hash']}{' at ' + rmap['control'] if rmap['prefix'] else ''} */"]
        lines += _engine_defines(rmap, f"{top}_{rmap['prefix']}".rstrip("_").upper())
    return "\n".join([*lines, "", f"#endif /* {guard} */", ""])


def _engine_defines(rmap: dict[str, Any], up: str) -> list[str]:
    lines = []
    for r in rmap["registers"]:
        lines.append(f"#define {up}_{r['name']}_OFFSET 0x{r['offset']:02X}u  /* {r['access']}: {r['description']} */")
        for name, f in r.get("fields", {}).items():
            lines.append(f"#define {up}_{r['name']}_{name} (1u << {f['bit']})")
        if "value" in r:
            lines.append(f"#define {up}_{r['name']}_VALUE 0x{r['value']:08X}u")
    lines += [f"#define {up}_LENGTH_MAX {rmap['maximum']}u", f"#define {up}_BEATS_PER_RUN {rmap['beats_per_run']}u"]
    for s in rmap["streams"]:
        lines.append(f"#define {up}_{s['port'].removeprefix(rmap['prefix']).upper()}_TDATA_BITS {s['tdata_bits']}u")
    return lines


def python_module(axi: dict[str, Any]) -> str:
    """A Python module holding ``REGISTER_MAP``, the manifest's ``axi`` dict, for
    :mod:`driver.axi` (a composed top's: one map per engine under ``engines``)."""
    import pprint

    return (f'"""Register map of {axi["top"]}, generated by accelforge."""\n\n'
            f"REGISTER_MAP = {pprint.pformat(axi, sort_dicts=False, width=100)}\n")


def write_register_map(artifact: Artifact, out_dir: Path) -> dict[str, Path]:
    """``<top>_regs.h`` and ``<top>_regs.py`` beside the Verilog, from the manifest's map."""
    files = {"c_header": Path(out_dir) / f"{artifact.top}_regs.h",
             "python_map": Path(out_dir) / f"{artifact.top}_regs.py"}
    write_atomic(files["c_header"], c_header(artifact.extra["axi"]))
    write_atomic(files["python_map"], python_module(artifact.extra["axi"]))
    return files


INTERFACES = ("engine", "axi")
"""What a design can be generated, verified and synthesized as: its own ports, or wrapped in AXI."""


def render_as(interface: str, params: Params, build, extra: dict[str, Any] | None = None) -> Artifact:
    """``render`` for the engine's own ports, :func:`render_axi` for its AXI wrapper."""
    if interface not in INTERFACES:
        raise ParamError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    return render_axi(params, build, extra) if interface == "axi" else render(params, build, extra)


def render_axi(params: Params, build, extra: dict[str, Any] | None = None) -> Artifact:
    """The wrapped design as an Artifact: Verilog, AXI-named ports, the register map in the
    manifest's ``axi`` entry."""
    design, top = build(params), axi_top(params)
    if hasattr(design, "engines"):
        wrapper = AxiComposite(design, top)
        rmap = wrapper.map_dict()
    else:
        wrapper = AxiWrapper(design, params, top=top)
        rmap = wrapper.map.to_dict()
    ports = wrapper.ports()
    text = verilog.convert(wrapper, name=top, ports=ports, emit_src=False)
    listed = tuple(Port(name, len(value), "input" if d is _ir.PortDirection.Input else "output")
                   for name, (value, d) in ports.items())
    return Artifact(params=params, top=top, verilog=text, ports=listed,
                    extra={**(extra or {}), "interface": "axi", "axi": rmap})
