"""Design points per second the cost models evaluate: the systolic model on one GEMM shape,
and whole accelerators on every op of a decode token.

Usage: python bench/cost_model_speed.py [--points N] [--accelerators N] [--repeats R] [--smoke]
Prints the best of R timings of one vectorised call over random design points
(columns, as the explorer passes them), on one core. The accelerator points are drawn
from the explorer's own space (every GEMM kind, replicas, attention and vector unit);
aim: over 100,000 accelerator design points per second.
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


def random_columns(params, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` random design points of ``params`` as model columns, every field drawn from its own
    declaration (so a field added to the family is drawn too; points a rule rules out are
    priced as invalid, as the explorer's would be)."""
    rng = np.random.default_rng(seed)
    columns = {}
    for info in params.fields():
        if info.choices:
            values = [info.choices[i] for i in rng.integers(0, len(info.choices), n)]
        elif info.spec.optional:
            values = [None] * n                        # unset: derived by the family
        else:
            lo, hi = info.spec.range.lo, info.spec.range.hi
            values = (np.exp(rng.uniform(np.log(lo), np.log(hi + 1), n)).astype(np.int64).clip(lo, hi)
                      if info.spec.range.log else rng.integers(lo, hi + 1, n)).tolist()
        columns[info.name] = info.encode(values)
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--accelerators", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a few points, once (seconds): that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.points, args.accelerators, args.repeats = 1000, 200, 1
    accelerator_speed(args.accelerators, args.repeats)
    from generators.systolic import SystolicParams
    columns = random_columns(SystolicParams, args.points)
    gemm = Gemm(m=128, n=4096, k=4096, name="llama2-7b q_proj, 128-token prefill")
    for target in ("ecp5-85k", "asic-45nm"):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            systolic.estimate(columns, gemm, get_target(target))
            best = min(best, time.perf_counter() - start)
        print(f"systolic estimate, {gemm.name} on {target}: {args.points:,} points in "
              f"{best * 1e3:.1f} ms = {args.points / best / 1e6:.2f} M points/s (best of {args.repeats})")


def accelerator_speed(n: int, repeats: int) -> None:
    import optuna

    from dse.families import get_family
    from dse.workloads import load

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    family = get_family("accelerator")
    for name, target in (("bitnet-b1.58-3b-decode", "kv260"), ("llama2-7b-w4g128-decode", "kv260")):
        workload = load(name)
        space = family.space(workload, {}, {})
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        rows = [space.suggest(study.ask()) for _ in range(min(n, 5000))]
        rows = [rows[i % len(rows)] for i in range(n)]
        columns = space.columns(rows)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            family.price(columns, workload, get_target(target))
            best = min(best, time.perf_counter() - start)
        print(f"accelerator price, {name} ({len(workload.ops)} ops per token) on {target}: {n:,} points in "
              f"{best * 1e3:.1f} ms = {n / best / 1e3:.0f} k points/s (best of {repeats})")


if __name__ == "__main__":
    main()
