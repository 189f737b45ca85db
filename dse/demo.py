"""`make demo`: the main job on its embedded defaults.

An NSGA-II sweep of whole accelerators (a GEMM engine of any kind, an attention engine,
replicas of each and a vector unit) for BitNet b1.58 2B4T decoding (batch 1, 1024-token
context) on an AMD Kria KV260: 1000 designs priced on every op of a token (tokens/s,
energy per token, LUTs; designs that do not fit the device excluded), the Pareto report
with the per-engine time breakdown and the roofline, Verilog and manifests of the best
designs, and a cocotb verification on Verilator of the fastest one's engines, through its
top, against the golden models and the cost models' cycle counts.
"""
from __future__ import annotations

import argparse
import sys

from dse.cli import main as cli

DEMO = ["explore", "--family", "accelerator", "--workload", "bitnet-b1.58-2b4t-decode", "--target", "kv260",
        "--trials", "1000", "--sampler", "nsga2", "--seed", "0", "--objectives", "tokens_per_s,energy,area",
        "--top", "2", "--verify-top", "1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dse.demo")
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args(argv)
    command = [*DEMO, "--out", args.out]
    print(f"$ accelforge {' '.join(command)}", flush=True)
    return cli(command)


if __name__ == "__main__":
    sys.exit(main())
