"""Synthesize the machine (its default design, or ``--set`` items) on each target, and the
vector unit alone beside it, so what the DMA, buffer, controller and GEMM engine add shows.

    python bench/machine_synth.py [--set key=value ...] [--target xilinx-7 --target ecp5-85k] [--smoke]

Results come from (and go to) the synthesis cache, so a second run is instant. ``--smoke``
synthesizes the smallest machine alone for xilinx-7 (seconds once cached).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.synth import make_job, run_job  # noqa: E402
from generators.artifact import render as render_engine  # noqa: E402
from generators.machine import MachineParams, render  # noqa: E402
from generators.vector import build as build_vector  # noqa: E402
from verif.runner import cache_root  # noqa: E402

FIGURES = ("lut", "ff", "dsp", "bram", "lutram", "fmax_mhz")
SMALLEST = {"buffer_beats": "16", "max_burst": "1", "vector.lanes": "2", "vector.bits": "16",
            "vector.max_beats": "1", "vector.table_bits": "0"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--target", action="append", help="default: xilinx-7 and ecp5-85k")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    items = dict(item.partition("=")[::2] for item in args.set)
    targets = args.target or ["xilinx-7", "ecp5-85k"]
    if args.smoke:
        items, targets = SMALLEST, ["xilinx-7"]
    try:
        p = MachineParams.from_dict(MachineParams.parse_strings(items))
    except ValueError as exc:
        ap.error(str(exc))
    cache = cache_root() / "synth"
    designs = {"machine": render(p)}
    if not args.smoke:                               # the unit alone: what the rest of the machine adds
        designs["vector unit alone"] = render_engine(p.vector, build_vector)
    print(f"machine {p.digest()} ({p.port_bits}-bit port, {p.buffer_beats}-beat buffer, "
          f"{p.vector.lanes}-lane vector unit, {p.gemm.n_tile}x{p.gemm.k_lanes} {p.gemm.weight_format.value} GEMM)")
    print(f"{'target':<10} {'design':<18} " + " ".join(f"{f:>8}" for f in FIGURES) + f" {'time':>7}")
    for target in targets:
        for name, artifact in designs.items():
            start = time.time()
            result = run_job(make_job(artifact, target, cache_root=cache))
            cells = " ".join(f"{'-' if getattr(result, f) is None else round(getattr(result, f), 1):>8}"
                             for f in FIGURES)
            print(f"{target:<10} {name:<18} {cells} {time.time() - start:>6.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
