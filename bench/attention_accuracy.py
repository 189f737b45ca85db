"""Accuracy of the attention engine's arithmetic against float softmax attention.

For each configuration of the cocotb regression (whose RTL equals the golden
model bit for bit) and a few numeric variants, runs the bit-exact golden model
on random int inputs (scores spread to a base-2 standard deviation of 3) and
prints the largest |O_fixed - O_float| in V's units and as a fraction of V's
full scale, next to the guaranteed bound the tests assert.

    python bench/attention_accuracy.py [--runs 20] [--n 256]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.attention import AttentionParams  # noqa: E402
from verif.golden.attention import attention_fixed, attention_float, error_bound  # noqa: E402
from verif.tb.attention import random_run  # noqa: E402

VARIANTS = {
    "pwl 8 seg, exp rescale (default)": {},
    "pwl 1 seg (2^v = 1 + v)": {"exp_index_bits": 0},
    "pwl 16 seg": {"exp_index_bits": 4},
    "table 64": {"exp": "table", "exp_index_bits": 6},
    "table 256": {"exp": "table", "exp_index_bits": 8},
    "integer max, shift rescale": {"rescale": "shift"},
    "two-pass": {"softmax": "two_pass"},
    "prob_frac 12": {"prob_frac": 12},
    "score_frac 4": {"score_frac": 4, "exp_index_bits": 3},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--n", type=int, default=256, help="keys per run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"head_dim 64, int8 Q/K/V, q_rows 4, kv_block 16, n = {args.n}, {args.runs} runs each")
    print(f"{'variant':<36} {'max|dO| (V LSB)':>16} {'/ full scale':>13} {'bound (V LSB)':>14}")
    for name, changes in VARIANTS.items():
        p = AttentionParams(max_seq_len=max(args.n, 16), **changes)
        worst = 0.0
        for _ in range(args.runs):
            run = random_run(p, rng, args.n)
            fixed = attention_fixed(p, run.q, run.k, run.v, run.scale, run.q_pos) / (1 << p.out_frac)
            exact = attention_float(p, run.q, run.k, run.v, run.scale, run.q_pos)
            worst = max(worst, float(np.max(np.abs(fixed - exact))))
        full = 1 << (p.v_bits - 1)
        print(f"{name:<36} {worst:>16.4f} {worst / full:>13.2e} {error_bound(p, args.n):>14.3f}")


if __name__ == "__main__":
    main()
