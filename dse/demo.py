"""`make demo`: the main job on its embedded defaults.

An NSGA-II sweep of the systolic engine for BitNet b1.58 3B decoding (batch 1,
1024-token context) on a Lattice ECP5-85F: 1000 designs priced on the whole
workload (latency, energy per token, LUTs; designs that do not fit excluded),
the Pareto report, Verilog and manifests of the best designs, and a cocotb
verification on Verilator of the fastest one against the golden model and
the cost model's cycle counts.
"""
from __future__ import annotations

import argparse
import sys

from dse.cli import main as cli

DEMO = ["explore", "--family", "systolic", "--workload", "bitnet-b1.58-3b-decode", "--target", "ecp5-85k",
        "--trials", "1000", "--sampler", "nsga2", "--seed", "0", "--top", "3", "--verify-top", "1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dse.demo")
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args(argv)
    command = [*DEMO, "--out", args.out]
    print(f"$ accelforge {' '.join(command)}", flush=True)
    return cli(command)


if __name__ == "__main__":
    sys.exit(main())
