"""How close the explorer's samplers get to the exact Pareto front, by hypervolume.

Usage: python bench/search_quality.py [--nsga2 500,2000,10000] [--tpe 500,2000] [--seed 0] [--smoke]

Space: the systolic family for BitNet b1.58 3B decode on ecp5-85k (a_bits,
w_bits and signed pinned by the workload, m_tile at its default), rows and
cols 1..64, both dataflows, k_max 1..256: 2,097,152 designs (``--smoke``: rows and cols
1..8, k_max 1..16, 200 trials of each sampler; seconds, to show that it runs). Objectives: latency and LUTs,
designs that do not fit the device excluded. The exact front comes from
evaluating every design with the vectorised model; each sampler then runs
through the real explorer (SQLite storage, batches of 50, resumed between
checkpoints) and its feasible front's hypervolume is printed as a fraction
of the exact front's. Hypervolume is measured on log10 of both objectives
(they span orders of magnitude), with the reference point 0.1 decades past
the worst feasible design in each.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dse.evaluate import constraint_values, evaluate, pareto_mask
from dse.explorer import ExploreConfig, Explorer
from dse.report import trials_frame
from generators.systolic import SystolicParams

SPACE = dict(family="systolic", workload="bitnet-b1.58-3b-decode", target="ecp5-85k",
             objectives=("latency", "area"), ranges={"k_max": (1, 256)},
             pins={"m_tile": str(SystolicParams.field_info("m_tile").default)})


def hypervolume_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by ``points`` (both objectives minimised) below ``ref``."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask(pts, ("minimize", "minimize"))]
    pts = pts[np.argsort(pts[:, 0])]
    widths = np.diff(np.append(pts[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - pts[:, 1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsga2", default="500,2000,10000")
    parser.add_argument("--tpe", default="500,2000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a small space and few trials (seconds)")
    args = parser.parse_args()
    space = dict(SPACE)
    if args.smoke:
        space["ranges"] = {"rows": (1, 8), "cols": (1, 8), "k_max": (1, 16)}
        args.nsga2, args.tpe = "200", "200"

    with tempfile.TemporaryDirectory() as scratch:
        grid = Explorer(ExploreConfig(**space, trials=1, sampler="grid", out=f"{scratch}/grid"))
        start = time.perf_counter()
        cols, _ = grid.space.grid_columns()
        metrics = evaluate(grid.family, cols, grid.workload, grid.target)
        feasible = np.all(constraint_values(metrics, grid.target) <= 0, axis=1)
        values = np.log10(np.stack([metrics["latency_s"], metrics["area"]], axis=1)[feasible])
        ref = values.max(axis=0) + 0.1
        exact = hypervolume_2d(values, ref)
        seconds = time.perf_counter() - start
        print(f"space: {grid.space.size():,} designs, {int(feasible.sum()):,} fit; exact front "
              f"{int(pareto_mask(values, ('minimize', 'minimize')).sum())} designs, evaluated in {seconds:.1f} s")
        for sampler, checkpoints in (("nsga2", args.nsga2), ("tpe", args.tpe)):
            out = Path(scratch) / sampler
            elapsed = 0.0
            for trials in (int(t) for t in checkpoints.split(",") if t):
                explorer = Explorer(ExploreConfig(**space, trials=trials, sampler=sampler, seed=args.seed,
                                                  out=str(out)))
                start = time.perf_counter()
                explorer.run()
                elapsed += time.perf_counter() - start
                frame = trials_frame(explorer)
                ok = frame[frame["feasible"]]
                found = np.log10(ok[["latency_s", "area"]].to_numpy(dtype=float))
                share = hypervolume_2d(found, ref) / exact
                print(f"{sampler:<6} {trials:>6} trials: hypervolume {share * 100:6.2f}% of the exact front "
                      f"({elapsed:.0f} s of search so far)", flush=True)


if __name__ == "__main__":
    main()
