"""How Yosys builds a design's memories on each FPGA fabric: block RAM, LUT RAM or logic.

Every family with memories counts them through :func:`placement` (counted, never fitted:
calibration subtracts them before fitting the rest).
"""
from __future__ import annotations

from typing import Collection, Mapping

import numpy as np

from generators.widths import bit_length, ceil_div

RAM_CHOICES = {
    "ecp5": {"lutram": ((16, 4, 4),),
             "bram": ((((18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384), (36, 512)), 128, 1),)},
    "xilinx": {"lutram": ((32, 6, 8), (64, 3, 8)),
               "bram": ((((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)), 129, 2),
                        (((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768)),
                         257, 1))},
}
"""How Yosys's ``memory_libmap`` prices each way to build a memory (its library files): LUT RAM
primitives (depth, width, cost; 4 LUTs each; stacking them deeper adds a read mux) and block
RAMs ((width, depth) aspects, cost, primitives per counted block RAM: two RAMB18 make one
RAMB36). It takes the cheapest; ROMs never go to LUT RAM and stay in logic while that costs
less (:data:`ROM_LOGIC_COST_PER_BIT`). A depth that is not a power of two may be built as its
top power of two and the rest, each in its own aspect (5120 x 39 bits: 4096 rows 4 bits wide
and 1024 rows 18 wide, 13 RAMB18 where one aspect takes 15)."""
LUTS_PER_LUTRAM = 4
STACK_MUX_COST = {"xilinx": 0.2, "ecp5": 0.39}
"""Cost per bit and extra stack of RAM primitives (the read mux of stacked ones, twice as deep
in LUT4s): fitted to where Yosys chose block RAM over deeper LUT RAM, and which block RAM
aspect, for our buffers (Xilinx 0.18..0.28 and ECP5 0.384..0.4 reproduce every choice between
LUT RAM and block RAM on the attention calibration sets, both seeds, and leave every systolic
count as it was)."""
READ_ENABLE_COST = {"xilinx": 0.4, "ecp5": 0.0}
"""Cost per bit of a LUT RAM whose read port has an enable (its read register's clock enable):
Xilinx moved 44- and 80-bit accumulator memories to block RAM that LUT RAM undercut by 0.19
and 0.24 a bit without it, and kept a 74-bit one 0.61 a bit cheaper (0.26..0.6 reproduces every
choice); on ECP5 any such cost moves a 30-bit one that stayed in LUT RAM."""
ROM_LOGIC_COST_PER_BIT = {"xilinx": 1 / 64, "ecp5": 1 / 16}
"""Cost per bit of a ROM left in logic: where Yosys moved our exp ROMs to block RAM (ECP5's
LUT4 logic costs more per bit)."""


def _cheapest(w, d, shapes, mux, reads=1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost, primitives, stacks) of a ``w x d`` memory with ``reads`` read ports built from the
    cheapest of ``shapes`` ((width, depth, cost) of one primitive with one read port, or (width,
    depth, cost, read ports)): copied for more reads, stacked for depth, the read mux of stacked
    ones (``mux`` per bit and extra stack, per copy) included."""
    best_cost = np.full(np.shape(w), np.inf)
    prims, best_stacks = np.zeros(np.shape(w), dtype=np.int64), np.ones(np.shape(w), dtype=np.int64)
    for width, depth, each, *ports in shapes:
        stacks = ceil_div(d, depth)
        copies = ceil_div(reads, ports[0] if ports else 1)
        n = copies * ceil_div(w, width) * stacks
        total = n * each + mux * w * (stacks - 1) * copies
        better = total < best_cost
        best_cost, prims = np.where(better, total, best_cost), np.where(better, n, prims)
        best_stacks = np.where(better, stacks, best_stacks)
    return best_cost, prims, best_stacks


def placement(mems: Mapping[str, tuple[np.ndarray, np.ndarray]], tech: str, shape,
              read_enabled: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Block RAMs and LUTs used as distributed RAM for memories ``{name: (width, depth)}``
    (names starting ``rom`` are read-only; those in ``read_enabled`` have a read enable), each
    built the cheapest way :data:`RAM_CHOICES` lists; zeros of ``shape`` for a technology
    without them (an ASIC)."""
    zero = np.zeros(shape, dtype=np.int64)
    if tech not in RAM_CHOICES:
        return {"bram": zero, "lutram": zero}
    choices, mux = RAM_CHOICES[tech], STACK_MUX_COST[tech]
    lut_shapes = [(width, depth, each) for depth, width, each in choices["lutram"]]
    lutram, brams = zero, zero.astype(np.float64)
    for name, (w, d) in mems.items():
        w, d = np.broadcast_to(w, shape), np.broadcast_to(d, shape)
        options = []                                   # (cost, LUT RAM LUTs, block RAMs)
        # a depth that is not a power of two: its top power of two and the rest, each its own way
        top = np.where(d > 0, 1 << np.maximum(bit_length(d) - 1, 0), 0)
        for aspects, cost, per_block in choices["bram"]:
            shapes = [(aw, ad, cost) for aw, ad in aspects]
            whole_cost, whole, _ = _cheapest(w, d, shapes, mux)
            top_cost, top_blocks, _ = _cheapest(w, top, shapes, mux)
            rest_cost, rest_blocks, _ = _cheapest(w, np.maximum(d - top, 1), shapes, mux)
            split = (d > top) & (top_cost + rest_cost + mux * w < whole_cost)
            options.append((np.where(split, top_cost + rest_cost + mux * w, whole_cost), zero,
                            np.where(split, top_blocks + rest_blocks, whole) / per_block))
        if name.startswith("rom"):
            options.append((w * d * ROM_LOGIC_COST_PER_BIT[tech], zero, zero))
        else:
            cost, prims, _ = _cheapest(w, d, lut_shapes, mux)
            options.append((cost + READ_ENABLE_COST[tech] * w * (name in read_enabled), LUTS_PER_LUTRAM * prims,
                            zero))
        costs = np.stack([np.asarray(o[0], dtype=np.float64) * np.ones(np.shape(w)) for o in options])
        best = np.argmin(costs, axis=0)
        present = d > 0                                # a family may declare a memory some designs lack
        lutram = lutram + present * np.choose(best, [np.broadcast_to(o[1], np.shape(w)) for o in options])
        brams = brams + present * np.choose(best, [np.broadcast_to(o[2], np.shape(w)) for o in options])
    return {"bram": np.ceil(brams - 1e-9).astype(np.int64), "lutram": lutram.astype(np.int64)}


QUAD_PORT_LUTRAM = {"xilinx": ((2, 32, 7, 3), (1, 64, 7, 3))}
"""LUT RAM primitives with several asynchronous read ports beside their write port, as Yosys's
``memory_libmap`` library lists them ((width per read port, depth, cost, read ports)): Xilinx
RAM32M / RAM64M as quad port, three reads of 2 or 1 bits. Every primitive of
:data:`RAM_CHOICES` serves one read (ECP5's TRELLIS_DPR16X4 only that)."""


def read_ported_lutram(width, depth, reads, tech: str) -> dict[str, np.ndarray]:
    """LUTs of distributed RAM (``lutram``, counted: 4 per primitive) and the read multiplexers'
    inputs over stacked primitives (``stack_mux``: per read port, bits times extra stacks) of a
    ``width x depth`` memory with ``reads`` asynchronous read ports, built the cheapest way (a
    memory with more reads than a primitive has is copied, a deeper one stacked); zeros without
    LUT RAM."""
    w, d, r = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (width, depth, reads)))
    if tech not in RAM_CHOICES:
        return {"lutram": np.zeros(w.shape, dtype=np.int64), "stack_mux": np.zeros(w.shape, dtype=np.int64)}
    shapes = [(bits, rows, each) for rows, bits, each in RAM_CHOICES[tech]["lutram"]]
    _, prims, stacks = _cheapest(w, d, shapes + list(QUAD_PORT_LUTRAM.get(tech, ())), STACK_MUX_COST[tech], r)
    present = d > 0
    return {"lutram": present * LUTS_PER_LUTRAM * prims, "stack_mux": present * r * w * (stacks - 1)}
