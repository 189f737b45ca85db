"""Golden model of the machine: a program executed over a memory image, bit-exact with the RTL.

The activation buffer holds raw beats (lane 0 in the low bits); the vector unit is the unit's
own golden (:class:`verif.golden.vector.Unit`), whose scalar and offset carry across the
program's runs as the RTL's do. The machine's checks (:mod:`generators.machine`) are the
golden's too: a program the RTL would stop on raises ``ValueError`` naming the instruction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from generators.isa import decode
from generators.lanes import pack_lanes, unpack_lanes
from generators.machine import MachineParams
from generators.mpgemm import WeightFormat
from generators.vector import VectorOpcode
from verif.golden.lut_mpgemm import reference
from verif.golden.vector import Unit

__all__ = ["Golden"]


@dataclass
class Golden:
    """The machine's state: its buffer of beats and its vector unit."""
    p: MachineParams
    buffer: list[int] = field(default_factory=list)
    unit: Unit | None = None

    def __post_init__(self) -> None:
        self.buffer = self.buffer or [0] * self.p.buffer_beats
        self.unit = self.unit or Unit(self.p.vector.lanes, self.p.vector.bits, self.p.vector.gate_table)

    @property
    def beat_bytes(self) -> int:
        return self.p.port_bits // 8

    def run(self, program: list[int], image: bytearray) -> int:
        """Execute ``program`` (instruction words) over ``image`` (changed in place) up to its
        ``HALT``; returns the instructions retired, ``HALT`` included."""
        for pc, word in enumerate(program):
            name, f = decode(word)
            if name == "HALT":
                return pc + 1
            self._check(pc, name, f)
            if name == "LOAD":
                for i in range(f["beats"]):
                    at = (f["dram"] + i) * self.beat_bytes
                    self.buffer[f["buffer"] + i] = int.from_bytes(image[at:at + self.beat_bytes], "little")
            elif name == "STORE":
                for i in range(f["beats"]):
                    at = (f["dram"] + i) * self.beat_bytes
                    image[at:at + self.beat_bytes] = self.buffer[f["buffer"] + i].to_bytes(self.beat_bytes, "little")
            elif name == "GEMM":
                self._gemm(f, image)
            else:
                self._vector(f)
        raise ValueError(f"the program has no HALT in its {len(program)} instructions")

    def _lanes(self, first: int, beats: int) -> np.ndarray:
        v = self.p.vector
        return np.array([unpack_lanes(w, v.lanes, v.bits) for w in self.buffer[first:first + beats]])

    def _vector(self, f: dict[str, int]) -> None:
        op = VectorOpcode(f["op"])
        x = self._lanes(f["x"], f["beats"])
        y = self._lanes(f["y"], f["beats"]) if op.binary else None
        out = self.unit.run(op, x, y, f["shift"])
        beats = out if op.reduction else pack_lanes(np.reshape(out, x.shape), self.p.vector.bits)
        self.buffer[f["z"]:f["z"] + len(beats)] = beats

    def weights(self, f: dict[str, int], tile: int, image: bytearray) -> np.ndarray:
        """The ``K x n_tile`` weights of one tile of a GEMM, as its DRAM beats hold them."""
        p, g = self.p, self.p.gemm
        groups = -(-f["k"] // g.k_lanes)
        span = p.weight_beats * self.beat_bytes
        first = (f["w"] + tile * groups * p.weight_beats) * self.beat_bytes
        w = np.zeros((groups, g.k_lanes, g.n_tile), dtype=np.int64)
        for gi in range(groups):
            word = int.from_bytes(image[first + gi * span:first + (gi + 1) * span], "little")
            for j in range(g.n_tile):
                lane = word >> (j * g.k_lanes * g.w_bits)
                w[gi, :, j] = unpack_lanes(lane, g.k_lanes, g.w_bits)
        if g.weight_format is WeightFormat.TERNARY:       # the engine reads 0b10 as zero, as it does 0b00
            w[w == -2] = 0
        return w.reshape(groups * g.k_lanes, g.n_tile)

    def _gemm(self, f: dict[str, int], image: bytearray) -> None:
        p, g = self.p, self.p.gemm
        groups = -(-f["k"] // g.k_lanes)
        rows = self._lanes(f["x"], groups).reshape(1, groups * g.k_lanes)
        a = ((rows + (1 << (g.a_bits - 1))) % (1 << g.a_bits)) - (1 << (g.a_bits - 1))    # each lane's low a_bits
        lo, hi = -(1 << (p.vector.bits - 1)), (1 << (p.vector.bits - 1)) - 1
        shift = f["shift"]
        for tile in range(f["tiles"]):
            y = reference(a, self.weights(f, tile, image), g.weight_format.value)[0]
            z = np.clip((y + ((1 << shift) >> 1)) >> shift, lo, hi)
            self.buffer[f["z"] + tile] = pack_lanes([z], p.vector.bits)[0]

    def _check(self, pc: int, name: str, f: dict[str, int]) -> None:
        where = f"instruction {pc} ({name})"
        if name == "GEMM":
            self._check_gemm(where, f)
            return
        limit = self.p.max_beats
        if not 1 <= f["beats"] <= limit:
            raise ValueError(f"{where}: beats must be in 1..{limit}, not {f['beats']}")
        if name == "VECTOR":
            if f["op"] >= len(VectorOpcode):
                raise ValueError(f"{where}: op must be in 0..{len(VectorOpcode) - 1}, not {f['op']}")
            op = VectorOpcode(f["op"])
            if f["shift"] >= self.p.vector.shift_limit:
                raise ValueError(f"{where}: shift must be in 0..{self.p.vector.shift_limit - 1}, not {f['shift']}")
            spans = [("x", f["beats"]), ("z", 1 if op.reduction else f["beats"])]
            spans += [("y", f["beats"])] if op.binary else []
        else:
            spans = [("buffer", f["beats"])]
        self._spans(where, f, spans)

    def _check_gemm(self, where: str, f: dict[str, int]) -> None:
        g = self.p.gemm
        if not 1 <= f["k"] <= g.k_max:
            raise ValueError(f"{where}: k must be in 1..{g.k_max}, not {f['k']}")
        if f["tiles"] < 1:
            raise ValueError(f"{where}: tiles must be at least 1, not 0")
        if f["shift"] >= self.p.gemm_shift_limit:
            raise ValueError(f"{where}: shift must be in 0..{self.p.gemm_shift_limit - 1}, not {f['shift']}")
        self._spans(where, f, [("x", -(-f["k"] // g.k_lanes)), ("z", f["tiles"])])

    def _spans(self, where: str, f: dict[str, int], spans: list[tuple[str, int]]) -> None:
        depth = self.p.buffer_beats
        for key, beats in spans:
            if f[key] + beats > depth:
                raise ValueError(f"{where}: {key} + beats must be at most the buffer's {depth} beats, "
                                 f"not {f[key]} + {beats}")
