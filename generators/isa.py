"""The machine's instruction set, declared once as data.

The controller's decoder (:mod:`generators.machine`), the assembler and disassembler below,
the golden model (:mod:`verif.golden.machine`), the cost model's schedule
(:mod:`cost_models.machine`) and the documentation all read :data:`ISA`. An instruction is
:data:`INSTRUCTION_BITS` wide: the opcode in its low :data:`OPCODE_BITS` bits, then each field
in declaration order, least significant first; the bits above the last field are zero.

Addresses: ``buffer`` fields count beats of the activation buffer; ``dram`` fields count beats
from the memory image's base (the ``IMAGE`` register), so an image may be loaded anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["Field", "INSTRUCTION_BITS", "ISA", "Instruction", "OPCODE_BITS", "assemble", "disassemble",
           "encode", "decode"]

INSTRUCTION_BITS = 128
OPCODE_BITS = 4


@dataclass(frozen=True)
class Field:
    name: str
    bits: int
    doc: str


@dataclass(frozen=True)
class Instruction:
    """One instruction: its name, opcode, fields (after the opcode, low bits first) and what it does."""
    name: str
    opcode: int
    fields: tuple[Field, ...]
    doc: str

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Each field's (low bit, width) in the instruction word."""
        out, at = {}, OPCODE_BITS
        for f in self.fields:
            out[f.name] = (at, f.bits)
            at += f.bits
        return out


_BEATS = Field("beats", 17, "beats moved or computed: 1..the machine's limit")
ISA: tuple[Instruction, ...] = (
    Instruction("HALT", 0, (), "stop the program: STATUS.DONE rises, and irq with IER.DONE"),
    Instruction("LOAD", 1, (Field("buffer", 16, "first beat written in the activation buffer"),
                            Field("dram", 32, "first beat read, from the image base"), _BEATS),
                "copy beats from DRAM into the activation buffer (burst reads)"),
    Instruction("STORE", 2, (Field("buffer", 16, "first beat read from the activation buffer"),
                             Field("dram", 32, "first beat written, from the image base"), _BEATS),
                "copy beats from the activation buffer to DRAM (burst writes)"),
    Instruction("VECTOR", 3, (Field("op", 4, "the vector unit's opcode (VectorOpcode)"),
                              Field("shift", 8, "the rounding shift of the op"),
                              Field("x", 16, "first beat of x in the activation buffer"),
                              Field("y", 16, "first beat of y (binary ops; else ignored)"),
                              Field("z", 16, "first beat the result is written to"), _BEATS),
                "run one vector op over beats of x (and y) from the buffer; its result beats "
                "(one for a reduction) go back to the buffer"),
    Instruction("GEMM", 4, (Field("x", 16, "first beat of the activation row in the buffer: one group a beat"),
                            Field("w", 32, "first beat of the weights, from the image base: the tiles one "
                                           "after another, each in the engine's w_stream layout"),
                            Field("z", 16, "first beat the outputs go to: one beat per tile"),
                            Field("k", 17, "the reduction depth K: 1..gemm.k_max"),
                            Field("tiles", 16, "output tiles of n_tile columns, one engine run each"),
                            Field("shift", 8, "the outputs' rounding shift before they saturate to vector.bits")),
                "y = x @ W for one activation row: each tile's weights stream from DRAM through the GEMM "
                "engine, and its outputs, rounded and saturated, go back to the buffer"),
)
BY_NAME: Mapping[str, Instruction] = {i.name: i for i in ISA}
BY_OPCODE: Mapping[int, Instruction] = {i.opcode: i for i in ISA}


def encode(name: str, **values: int) -> int:
    """One instruction word; every field must be given and fit its width."""
    if name not in BY_NAME:
        raise ValueError(f"instruction must be one of {', '.join(BY_NAME)}, not {name!r}")
    inst = BY_NAME[name]
    offsets = inst.offsets()
    unknown = set(values) - set(offsets)
    if unknown:
        raise ValueError(f"{name} has no field {sorted(unknown)[0]!r}; its fields: {', '.join(offsets) or 'none'}")
    word = inst.opcode
    for field, (low, bits) in offsets.items():
        if field not in values:
            raise ValueError(f"{name}.{field} must be given")
        value = values[field]
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise ValueError(f"{name}.{field} must be an integer in 0..{(1 << bits) - 1}, not {value!r}")
        word |= value << low
    return word


def decode(word: int) -> tuple[str, dict[str, int]]:
    """The instruction a word holds, and its fields."""
    opcode = word & ((1 << OPCODE_BITS) - 1)
    if opcode not in BY_OPCODE:
        raise ValueError(f"opcode must be one of {sorted(BY_OPCODE)}, not {opcode}")
    inst = BY_OPCODE[opcode]
    return inst.name, {f: (word >> low) & ((1 << bits) - 1) for f, (low, bits) in inst.offsets().items()}


def assemble(program: list[tuple[str, dict[str, int]]]) -> list[int]:
    """Instruction words of a program given as (name, fields) pairs."""
    return [encode(name, **fields) for name, fields in program]


def disassemble(words: list[int]) -> list[tuple[str, dict[str, int]]]:
    return [decode(w) for w in words]
