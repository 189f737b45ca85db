"""Structural analysis of generated Verilog with pyverilog: modules, ports, flip-flop bits.

pyverilog's ``parse()`` preprocesses with Icarus Verilog; Amaranth's output
needs no preprocessing, so we strip its ``(* ... *)`` attributes and hand the
text to pyverilog's parser directly. Flip-flop bits are the widths of the
registers assigned in ``always @(posedge ...)`` blocks, summed over the
instance hierarchy: an independent count of the state the RTL holds.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache

from pyverilog.vparser import ast as vast
from pyverilog.vparser.parser import VerilogParser
from generators.params import ParamError

_ATTRIBUTE = re.compile(r"\(\*.*?\*\)", re.S)


@dataclass(frozen=True)
class PortInfo:
    name: str
    width: int
    direction: str          # "input" | "output" | "inout"


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    ports: tuple[PortInfo, ...]
    flop_bits: int                       # in this module alone
    instances: tuple[str, ...]           # module names instantiated here, with repeats


def _width(node) -> int:
    if node.width is None:
        return 1
    return abs(int(node.width.msb.value) - int(node.width.lsb.value)) + 1


def _walk(node):
    yield node
    for child in node.children():
        yield from _walk(child)


def _lvalue_names(node) -> set[str]:
    names: set[str] = set()
    for item in _walk(node):
        if isinstance(item, (vast.NonblockingSubstitution, vast.BlockingSubstitution)):
            left = item.left.var
            while isinstance(left, vast.Pointer):       # mem[addr] <= ...: the memory, not its address
                left = left.var
            for ident in _walk(left):
                if isinstance(ident, vast.Identifier):
                    names.add(ident.name)
    return names


def _module_info(module: vast.ModuleDef) -> ModuleInfo:
    widths: dict[str, int] = {}
    ports: list[PortInfo] = []
    clocked: set[str] = set()
    instances: list[str] = []
    for item in module.items:
        if isinstance(item, vast.Decl):
            for decl in item.list:
                if isinstance(decl, (vast.Input, vast.Output, vast.Inout)):
                    ports.append(PortInfo(decl.name, _width(decl), type(decl).__name__.lower()))
                if isinstance(decl, vast.Reg) and decl.dimensions is not None:
                    widths[decl.name] = 0             # a memory array: RAM, not flip-flops
                elif isinstance(decl, (vast.Reg, vast.Output, vast.Input, vast.Wire)):
                    widths.setdefault(decl.name, _width(decl))
                    if isinstance(decl, vast.Reg):
                        widths[decl.name] = _width(decl)
        elif isinstance(item, vast.Always):
            edges = {s.type for s in item.sens_list.list}
            if edges & {"posedge", "negedge"}:
                clocked |= _lvalue_names(item.statement)
        elif isinstance(item, vast.InstanceList):
            instances.extend(item.module for _ in item.instances)
    flops = sum(widths.get(name, 1) for name in clocked)
    return ModuleInfo(module.name, tuple(ports), flops, tuple(instances))


@lru_cache(maxsize=32)
def analyze(verilog: str) -> dict[str, ModuleInfo]:
    """Every module of a Verilog text, by name."""
    text = _ATTRIBUTE.sub("", verilog)
    with tempfile.TemporaryDirectory() as scratch:       # pyverilog writes its parse tables here
        tree = VerilogParser(outputdir=scratch, debug=False).parse(text)
    modules = [d for d in tree.description.definitions if isinstance(d, vast.ModuleDef)]
    return {m.name: _module_info(m) for m in modules}


def flop_bits(verilog: str, top: str) -> int:
    """Flip-flop bits of ``top`` including every instance below it (memory arrays are RAM, not
    counted)."""
    modules = analyze(verilog)

    @lru_cache(maxsize=None)
    def total(name: str) -> int:
        info = modules[name]
        return info.flop_bits + sum(total(child) for child in info.instances if child in modules)

    return total(top)


def top_ports(verilog: str, top: str) -> tuple[PortInfo, ...]:
    modules = analyze(verilog)
    if top not in modules:
        raise ParamError(f"module {top!r} is not in the Verilog; modules: {', '.join(sorted(modules))}")
    return modules[top].ports
