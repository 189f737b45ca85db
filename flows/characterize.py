"""The LUT engine's lookup unit, characterized on each fabric by the flow's own mapping.

Yosys and ABC map a wide table-lookup multiplexer erratically: on ECP5 a
16-entry lookup of 10-bit entries takes 300 LUT4s, an 8-entry one 70, a
27-entry one 322 and a 41-entry half table 717, so no smooth count of mux inputs prices it (the LUT
engine's ECP5 model was 19% off on held-out designs with one). As a cell
library is characterized, the unit (:class:`hw.lut.LutDotUnit`, one slot) is
synthesized alone over every table size and pass count the engine can
have, at a few entry widths, and the cost model interpolates in width.
``accelforge calibrate lut_mpgemm`` runs this before it fits
(:func:`calibration_tables`, the family's hook), through the synthesis cache,
and keeps the table beside the fabric's coefficients (``tables.lookup_unit``
in ``cost_models/data/lut_mpgemm.json``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from amaranth.hdl import signed
from amaranth.lib import data

from cost_models.lut_mpgemm import UNIT_TABLE, unit_key
from generators.params import ParamError, Params, bool_field, int_field
from hw.lut import LutDotUnit

if TYPE_CHECKING:
    from flows.cluster import Cluster

ENTRY_BITS = (5, 10, 15, 20)
"""Entry widths characterized: the engine's span 5..19 bits (4..16-bit activations, g 1..5)."""

MAX_PASSES = 4                             # w_bits up to 4, bit-serial


def shapes() -> list[tuple[int, int, bool]]:
    """Every (entries, passes, symmetric) a lookup slot of the engine has: {0,1} tables 2^g,
    half tables 2^(g-1) with a sign, 1..4 passes; ternary 3^g, or (3^g + 1)/2 with a sign, one."""
    out = []
    for g in range(1, 6):
        out += [(1 << g, p, False) for p in range(1, MAX_PASSES + 1)]
        out += [(1 << (g - 1), p, True) for p in range(1, MAX_PASSES + 1)]
        out += [(3 ** g, 1, False), ((3 ** g + 1) // 2, 1, True)]
    return sorted(set(out))


FLOW_TARGETS = {"ecp5": "ecp5-85k-fabric", "xilinx": "xilinx-7-fabric"}
"""The flow each fabric's units are mapped by: Yosys's mapping without place and route (the
unit holds no multiplier, so these map it as the full targets do)."""


@dataclass(frozen=True, kw_only=True)
class LookupUnitParams(Params):
    """One lookup slot: a table of ``entries`` signed ``entry_bits`` values, read once per
    cycle and shifted to one of ``passes`` bit-planes."""

    family: ClassVar[str] = "lut_lookup_unit"

    entries: int = int_field(8, 1, 243, doc="table entries")
    entry_bits: int = int_field(10, 2, 24, doc="signed width of an entry")
    passes: int = int_field(1, 1, MAX_PASSES, doc="bit-planes the slot is shifted to, one per pass")
    symmetric: bool = bool_field(False, doc="a sign bit beside the index (half tables)")


def build(p: LookupUnitParams) -> LutDotUnit:
    index_bits = max(p.entries - 1, 0).bit_length()
    weights = [[1 << plane] for plane in range(p.passes)]
    return LutDotUnit(data.ArrayLayout(signed(p.entry_bits), p.entries), index_bits + int(p.symmetric),
                      p.symmetric, weights, signed(p.entry_bits + p.passes - 1))


def grid() -> list[LookupUnitParams]:
    """Every slot shape the engine builds, at each characterized width."""
    return [LookupUnitParams(entries=e, entry_bits=b, passes=p, symmetric=sym)
            for (e, p, sym), b in itertools.product(shapes(), ENTRY_BITS)]


def characterize(tech: str, *, cache_root: Path, cluster: Cluster, progress: bool = False) -> dict[str, Any]:
    """LUTs of every grid unit on ``tech``'s flow: ``{"entry_bits": [...], "luts": {key: [...]}}``."""
    from flows.calibrate import synthesize_all

    if tech not in FLOW_TARGETS:
        raise ParamError(f"tech must be one of {', '.join(FLOW_TARGETS)}, not {tech!r}")
    points = grid()
    results = synthesize_all(points, build, FLOW_TARGETS[tech], cluster=cluster, cache_root=cache_root,
                             progress=progress)
    luts: dict[str, list[int]] = {}
    for p, r in zip(points, results, strict=True):
        luts.setdefault(unit_key(p.entries, p.passes, p.symmetric), []).append(int(r.lut))
    return {"target": FLOW_TARGETS[tech], "entry_bits": list(ENTRY_BITS), "luts": luts}


def calibration_tables(tech: str, cache_root: Path, cluster: Cluster) -> dict[str, Any]:
    """The LUT engine's calibration hook: its measured tables on ``tech`` (none off the FPGAs)."""
    return {UNIT_TABLE: characterize(tech, cache_root=cache_root, cluster=cluster)} if tech in FLOW_TARGETS else {}
