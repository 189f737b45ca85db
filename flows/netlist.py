"""Where a mapped design's LUTs go, block by block.

Synthesis flattens the design, so the utilization tools report one number.
To see which part of the RTL a LUT serves, every LUT is charged to the block
whose registers it feeds: the walk goes forward through combinational cells
(LUTs, carry chains, wide-mux and unregistered multiplier cells) to the
first flip-flop, DSP or block RAM, and the module whose Verilog declares
that cell (its ``src`` line) names the block: a submodule by its instance
name, the top module by the register's own name. Without the Verilog, the
cell's deepest output net name stands in (the first part of a flattened
``block.sub.signal`` name), which charges a top-level register feeding a
submodule's input port to that submodule. A LUT that feeds several blocks is
charged to ``shared``. This is how the cost models' structural features were
checked (e.g. the systolic output bank: ``(rows-1) x cols x acc`` LUTs).
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flows.synth import XILINX_LOGIC, XILINX_LUTRAM
from generators.params import ParamError

LUT_WEIGHT = {
    "xilinx": {**{name: 1 for name in XILINX_LOGIC}, **XILINX_LUTRAM},
    "ecp5": {"LUT4": 1, "CCU2C": 2},            # a CCU2C carry cell holds two LUT4s
}
"""LUTs a cell counts as, per flow (memory LUTs included); what nextpnr and `stat` report as LUTs."""

PASS_THROUGH = {"MUXF7", "MUXF8", "MUXF9", "CARRY4", "CARRY8", "PFUMX", "L6MUX21", "MULT18X18D", "ALU54B"}
"""Combinational cells that are not LUTs themselves (multipliers are unregistered in our flows)."""

SHARED, OUTPUTS, UNUSED = "shared", "(outputs)", "(unused)"


def block_of(net: str) -> str:
    """``array.pe_3_1.acc`` -> ``array``; a top-level register keeps its name without indices."""
    name = net.lstrip("\\")
    name = re.sub(r"\[\d+\]$", "", name)
    return name.split(".", 1)[0]


def _better(name: str, than: str | None) -> bool:
    """A net has many names (a block's port is also a wire of its parent); the deepest
    hierarchical one names the register's own block."""
    def rank(n: str) -> tuple[int, bool, int]:
        return (-n.count("."), "$" in n, len(n))
    return than is None or rank(name) < rank(than)


def _plainer(name: str, than: str | None) -> bool:
    """Of a top-level register's names, a user's (no ``$``) and then the shortest names it."""
    return than is None or ("$" in name, len(name)) < ("$" in than, len(than))


_MODULE = re.compile(r"^module\s+\\?(\S+)\s*\(", re.M)
_SRC_LINE = re.compile(r"^[^|:]*:(\d+)\.")


def module_spans(verilog: str) -> list[tuple[int, str]]:
    """(first line, module name) of every module of a Verilog text, in line order."""
    return [(verilog.count("\n", 0, match.start()) + 1, match.group(1)) for match in _MODULE.finditer(verilog)]


def _declaring_block(cell: Mapping[str, Any], spans: list[tuple[int, str]], top: str) -> str | None:
    """The submodule instance whose Verilog declares ``cell``; ``""`` for the top; None if unknown."""
    match = _SRC_LINE.match(str(cell.get("attributes", {}).get("src", "")))
    if not match or not spans:
        return None
    line = int(match.group(1))
    name = next((n for first, n in reversed(spans) if first <= line), None)
    if name is None:
        return None
    if name == top:
        return ""
    return name[len(top) + 1:].split(".", 1)[0] if name.startswith(top + ".") else None


def lut_breakdown(netlist: Mapping[str, Any], top: str, flow: str, verilog: str = "") -> dict[str, int]:
    """LUTs of ``top`` by the block they feed, largest first; the values sum to the LUT count.

    ``verilog``, the text that was synthesized, lets each register be charged to the module that
    declares it (see the module docstring)."""
    if flow not in LUT_WEIGHT:
        raise ParamError(f"flow must be one of {', '.join(LUT_WEIGHT)}, not {flow!r}")
    weight = LUT_WEIGHT[flow]
    module = netlist["modules"][top]
    cells = module["cells"]
    spans = module_spans(verilog)
    name_of: dict[int, str] = {}             # the deepest name of each net
    top_name_of: dict[int, str] = {}         # its name in the top module, if it has one
    for net, info in module["netnames"].items():
        if not info.get("hide_name"):
            for bit in info["bits"]:
                if isinstance(bit, int) and _better(net, name_of.get(bit)):
                    name_of[bit] = net
                if isinstance(bit, int) and "." not in net and _plainer(net, top_name_of.get(bit)):
                    top_name_of[bit] = net
    output_ports = {bit for port in module["ports"].values() if port["direction"] == "output"
                    for bit in port["bits"] if isinstance(bit, int)}
    sinks: dict[int, list[str]] = defaultdict(list)
    for cell_name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for bit in bits:
                    if isinstance(bit, int):
                        sinks[bit].append(cell_name)

    def outputs(cell: Mapping[str, Any]) -> list[int]:
        return [bit for port, bits in cell["connections"].items()
                if cell["port_directions"].get(port) == "output" for bit in bits if isinstance(bit, int)]

    def owner(cell: Mapping[str, Any]) -> str:
        declared = _declaring_block(cell, spans, top)
        if declared:
            return declared
        for bit in outputs(cell):
            if declared == "" and bit in top_name_of:
                return block_of(top_name_of[bit])
            if bit in name_of:
                return block_of(name_of[bit])
        return "(unnamed)"

    reached: dict[str, frozenset[str]] = {}

    def blocks_fed(start: str) -> frozenset[str]:
        """Blocks reached from ``start``'s outputs through combinational cells (iterative DFS)."""
        stack, seen, found = [start], {start}, set()
        while stack:
            cell_name = stack.pop()
            if cell_name != start and cell_name in reached:
                found |= reached[cell_name]
                continue
            for bit in outputs(cells[cell_name]):
                if bit in output_ports:
                    found.add(OUTPUTS)
                for sink in sinks.get(bit, ()):
                    kind = cells[sink]["type"]
                    if kind in weight or kind in PASS_THROUGH:
                        if sink not in seen:
                            seen.add(sink)
                            stack.append(sink)
                    else:
                        found.add(owner(cells[sink]))
        reached[start] = frozenset(found)
        return reached[start]

    counts: Counter[str] = Counter()
    for cell_name, cell in cells.items():
        luts = weight.get(cell["type"], 0)
        if luts:
            fed = blocks_fed(cell_name)
            counts[next(iter(fed)) if len(fed) == 1 else SHARED if fed else UNUSED] += luts
    return dict(counts.most_common())


def breakdown_of(folder: Path, top: str, flow: str) -> dict[str, int]:
    """The breakdown of a synthesis cache folder's ``netlist.json``."""
    from flows.tools import FlowError

    path = Path(folder) / "netlist.json"
    if not path.exists():
        raise FlowError(f"{path} is missing: this synthesis kept no mapped netlist")
    source = Path(folder) / f"{top}.v"
    verilog = source.read_text() if source.exists() else ""
    return lut_breakdown(json.loads(path.read_text()), top, flow, verilog)
