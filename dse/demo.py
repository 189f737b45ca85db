"""`make demo`: generate the default systolic engine, verify it, price a GEMM.

The GEMM is the query projection of Llama-2-7B over a 128-token prompt
(M = 128 tokens, N = K = 4096 hidden), int8 x int8 on an ECP5-85F.
"""
from __future__ import annotations

import argparse
import sys

from dse.cli import main as cli

DEMO_SETTINGS = ["rows=8", "cols=8", "dataflow=os", "k_max=512"]
DEMO_GEMM = "128,4096,4096"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dse.demo")
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args(argv)
    sets = [f"--set={s}" for s in DEMO_SETTINGS]
    steps = [
        ("generate", ["generate", "systolic", *sets, "--gemm", DEMO_GEMM, "--out", args.out]),
        ("verify", ["verify", "systolic", *sets]),
        ("estimate", ["estimate", "systolic", *sets, "--gemm", DEMO_GEMM, "--target", "ecp5-85k"]),
    ]
    for title, argv_ in steps:
        print(f"\n$ accelforge {' '.join(argv_)}", flush=True)
        status = cli(argv_)
        if status:
            print(f"demo: {title} failed with status {status}", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
