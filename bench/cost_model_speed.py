"""Design points per second the systolic cost model evaluates for one GEMM shape.

Usage: python bench/cost_model_speed.py [--points N] [--repeats R]
Prints the best of R timings of one vectorised `estimate` call over N random
design points (columns, as the explorer passes them), on one core.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from cost_models import systolic  # noqa: E402
from cost_models.ops import Gemm  # noqa: E402
from cost_models.targets import get_target  # noqa: E402


def random_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "rows": rng.integers(1, 65, n), "cols": rng.integers(1, 65, n),
        "a_bits": rng.integers(2, 17, n), "w_bits": rng.integers(2, 17, n),
        "acc_bits": np.zeros(n, dtype=np.int64), "signed": rng.integers(0, 2, n).astype(bool),
        "dataflow": rng.integers(0, 2, n), "k_max": 2 ** rng.integers(0, 17, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    columns = random_columns(args.points)
    gemm = Gemm(m=128, n=4096, k=4096, name="llama2-7b q_proj, 128-token prefill")
    for target in ("ecp5-85k", "asic-45nm"):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            systolic.estimate(columns, gemm, get_target(target))
            best = min(best, time.perf_counter() - start)
        print(f"systolic estimate, {gemm.name} on {target}: {args.points:,} points in "
              f"{best * 1e3:.1f} ms = {args.points / best / 1e6:.2f} M points/s (best of {args.repeats})")


if __name__ == "__main__":
    main()
