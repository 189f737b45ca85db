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


def _cheapest(w, d, shapes, mux) -> tuple[np.ndarray, np.ndarray]:
    """(cost, primitives) of a ``w x d`` memory built from the cheapest of ``shapes`` ((width,
    depth, cost) of one primitive), the read mux of stacked ones (``mux`` per bit and extra
    stack) included."""
    best_cost, prims = np.full(np.shape(w), np.inf), np.zeros(np.shape(w), dtype=np.int64)
    for width, depth, each in shapes:
        stacks = ceil_div(d, depth)
        n = ceil_div(w, width) * stacks
        total = n * each + mux * w * (stacks - 1)
        better = total < best_cost
        best_cost, prims = np.where(better, total, best_cost), np.where(better, n, prims)
    return best_cost, prims


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
            whole_cost, whole = _cheapest(w, d, shapes, mux)
            top_cost, top_blocks = _cheapest(w, top, shapes, mux)
            rest_cost, rest_blocks = _cheapest(w, np.maximum(d - top, 1), shapes, mux)
            split = (d > top) & (top_cost + rest_cost + mux * w < whole_cost)
            options.append((np.where(split, top_cost + rest_cost + mux * w, whole_cost), zero,
                            np.where(split, top_blocks + rest_blocks, whole) / per_block))
        if name.startswith("rom"):
            options.append((w * d * ROM_LOGIC_COST_PER_BIT[tech], zero, zero))
        else:
            cost, prims = _cheapest(w, d, lut_shapes, mux)
            options.append((cost + READ_ENABLE_COST[tech] * w * (name in read_enabled), LUTS_PER_LUTRAM * prims,
                            zero))
        costs = np.stack([np.asarray(o[0], dtype=np.float64) * np.ones(np.shape(w)) for o in options])
        best = np.argmin(costs, axis=0)
        present = d > 0                                # a family may declare a memory some designs lack
        lutram = lutram + present * np.choose(best, [np.broadcast_to(o[1], np.shape(w)) for o in options])
        brams = brams + present * np.choose(best, [np.broadcast_to(o[2], np.shape(w)) for o in options])
    return {"bram": np.ceil(brams - 1e-9).astype(np.int64), "lutram": lutram.astype(np.int64)}


READ_PORTED_LUTRAM = {
    "xilinx": ((32, 6, 1, 8), (64, 3, 1, 8), (32, 2, 3, 7), (64, 1, 3, 7)),
    "ecp5": ((16, 4, 1, 8),),
}
"""Distributed-RAM primitives for a memory with one write port and several asynchronous read
ports, as Yosys's ``memory_libmap`` library lists them: (depth, bits per read port, read ports,
cost). Xilinx RAM32M / RAM64M as simple dual port (one read, 6 or 3 bits) or quad port (three
reads, 2 or 1 bits); ECP5 TRELLIS_DPR16X4 (one read, 4 bits). A memory with more reads is
copied, a deeper one stacked (a read multiplexer in logic), whichever costs least."""


def read_ported_lutram(width, depth, reads, tech: str) -> dict[str, np.ndarray]:
    """LUTs of distributed RAM (``lutram``, counted: 4 per primitive) and the read multiplexers'
    inputs over stacked primitives (``stack_mux``: per read port, bits times extra stacks) of a
    ``width x depth`` memory with ``reads`` asynchronous read ports; zeros without LUT RAM."""
    w, d, r = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (width, depth, reads)))
    if tech not in READ_PORTED_LUTRAM:
        return {"lutram": np.zeros(w.shape, dtype=np.int64), "stack_mux": np.zeros(w.shape, dtype=np.int64)}
    best = np.full(w.shape, np.inf)
    prims, mux = np.zeros(w.shape, dtype=np.int64), np.zeros(w.shape, dtype=np.int64)
    for p_depth, p_bits, p_reads, cost in READ_PORTED_LUTRAM[tech]:
        stacks = ceil_div(d, p_depth)
        copies = ceil_div(r, p_reads)
        n = copies * ceil_div(w, p_bits) * stacks
        total = n * cost + STACK_MUX_COST[tech] * w * (stacks - 1) * copies
        better = total < best
        best, prims = np.where(better, total, best), np.where(better, n, prims)
        mux = np.where(better, r * w * (stacks - 1), mux)
    present = d > 0
    return {"lutram": present * LUTS_PER_LUTRAM * prims, "stack_mux": present * mux}
