"""How Yosys builds a design's memories on each FPGA fabric: block RAM, LUT RAM or logic.

Every family with memories counts them through :func:`placement` (counted, never fitted:
calibration subtracts them before fitting the rest).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from generators.widths import ceil_div

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
less (one unit per 64 bits: fitted to where Yosys moved our exp ROMs to block RAM)."""
LUTS_PER_LUTRAM = 4
STACK_MUX_COST = 0.2
"""Cost per bit and extra stack of LUT RAM primitives: fitted to where Yosys chose block RAM
over deeper LUT RAM for our buffers (0.16..0.28 reproduces every choice measured)."""
ROM_LOGIC_COST_PER_BIT = 1 / 64


def placement(mems: Mapping[str, tuple[np.ndarray, np.ndarray]], tech: str, shape) -> dict[str, np.ndarray]:
    """Block RAMs and LUTs used as distributed RAM for memories ``{name: (width, depth)}``
    (names starting ``rom`` are read-only), each built the cheapest way :data:`RAM_CHOICES`
    lists; zeros of ``shape`` for a technology without them (an ASIC)."""
    zero = np.zeros(shape, dtype=np.int64)
    if tech not in RAM_CHOICES:
        return {"bram": zero, "lutram": zero}
    choices = RAM_CHOICES[tech]
    lutram, brams = zero, zero.astype(np.float64)
    for name, (w, d) in mems.items():
        w, d = np.broadcast_to(w, shape), np.broadcast_to(d, shape)
        options = []                                   # (cost, LUT RAM LUTs, block RAMs)
        for aspects, cost, per_block in choices["bram"]:
            blocks = np.minimum.reduce([ceil_div(w, aw) * ceil_div(d, ad) for aw, ad in aspects])
            options.append((blocks * cost, zero, blocks / per_block))
        if name.startswith("rom"):
            options.append((w * d * ROM_LOGIC_COST_PER_BIT, zero, zero))
        else:
            cost, prims = np.full(np.shape(w), np.inf), zero
            for depth, width, each in choices["lutram"]:
                stacks = ceil_div(d, depth)
                n = ceil_div(w, width) * stacks
                total = n * each + STACK_MUX_COST * w * (stacks - 1)     # + the read mux of stacked ones
                cost, prims = np.where(total < cost, total, cost), np.where(total < cost, n, prims)
            options.append((cost, LUTS_PER_LUTRAM * prims, zero))
        costs = np.stack([np.asarray(o[0], dtype=np.float64) * np.ones(np.shape(w)) for o in options])
        best = np.argmin(costs, axis=0)
        present = d > 0                                # a family may declare a memory some designs lack
        lutram = lutram + present * np.choose(best, [np.broadcast_to(o[1], np.shape(w)) for o in options])
        brams = brams + present * np.choose(best, [np.broadcast_to(o[2], np.shape(w)) for o in options])
    return {"bram": np.ceil(brams - 1e-9).astype(np.int64), "lutram": lutram.astype(np.int64)}
