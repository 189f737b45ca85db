"""Stored trials per second of an accelerator exploration, and where the time goes.

Usage: python bench/explore_speed.py [--trials 1000] [--batch 50,200] [--sampler nsga2] [--smoke]

Runs ``accelforge explore --family accelerator --workload bitnet-b1.58-2b4t-decode --target
kv260`` in-process into a fresh SQLite study (the embedded default) for each batch size and
prints trials stored per second, on one core. Beside it, the same trials with each stage
alone: the sampler's ask and suggest on an in-memory study, the cost model's pricing, and the
storage writes, so the figure says which stage bounds it. The report is not timed.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import optuna  # noqa: E402

from dse.explorer import CONSTRAINTS, ExploreConfig, Explorer, make_sampler  # noqa: E402
from dse.storage import make_storage, store_batch  # noqa: E402

WORKLOAD, TARGET = "bitnet-b1.58-2b4t-decode", "kv260"


def explore_rate(trials: int, batch: int, sampler: str) -> float:
    with tempfile.TemporaryDirectory(prefix="accelforge-bench-") as out:
        explorer = Explorer(ExploreConfig(family="accelerator", workload=WORKLOAD, target=TARGET, trials=trials,
                                          out=out, sampler=sampler, batch=batch))
        start = time.perf_counter()
        explorer.run()
        wall = time.perf_counter() - start
        assert explorer.finished(explorer.open_study()) == trials
    return trials / wall


def stage_rates(trials: int, batch: int, sampler: str) -> dict[str, float]:
    """Trials per second of each stage alone, on the same designs."""
    with tempfile.TemporaryDirectory(prefix="accelforge-bench-") as out:
        explorer = Explorer(ExploreConfig(family="accelerator", workload=WORKLOAD, target=TARGET, trials=trials,
                                          out=out, sampler=sampler, batch=batch))
        mirror = optuna.create_study(directions=list(explorer.directions), sampler=make_sampler(sampler, 0))
        ask = price = tell = 0.0
        finished = []
        for first in range(0, trials, batch):
            start = time.perf_counter()
            asked = [mirror.ask() for _ in range(min(batch, trials - first))]
            rows = [explorer.space.suggest(t) for t in asked]
            ask += time.perf_counter() - start
            start = time.perf_counter()
            priced = explorer.evaluate_rows(rows)
            price += time.perf_counter() - start
            start = time.perf_counter()
            for trial, p in zip(asked, priced, strict=True):
                for name, value in p.metrics.items():
                    trial.set_user_attr(name, value)
                for name, value in zip(CONSTRAINTS, p.constraints, strict=True):
                    trial.set_constraint(name, value)
                finished.append(mirror.tell(trial, p.values))
            tell += time.perf_counter() - start
        study = optuna.create_study(storage=make_storage(f"sqlite:///{out}/stages.db"), study_name="stages",
                                    directions=list(explorer.directions))
        start = time.perf_counter()
        for i in range(0, trials, batch):
            store_batch(study, finished[i:i + batch])
        store = time.perf_counter() - start
    return {"ask+suggest": trials / ask, "price": trials / price, "tell": trials / tell, "store": trials / store}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--batch", default="50,200", help="batch sizes, comma-separated")
    ap.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe", "random"))
    ap.add_argument("--smoke", action="store_true", help="100 trials in batches of 50 (seconds): that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.trials, args.batch = 100, "50"
    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        ap.error(f"--batch: comma-separated integers, not {args.batch!r}")
    print(f"accelerator explore, {WORKLOAD} on {TARGET}, {args.trials} trials, {args.sampler}, "
          f"SQLite study, one core")
    print(f"{'batch':>6} {'stored/s':>9}   each stage alone (trials/s)")
    for batch in batches:
        rate = explore_rate(args.trials, batch, args.sampler)
        stages = stage_rates(args.trials, batch, args.sampler)
        print(f"{batch:>6} {rate:>9.0f}   " + "  ".join(f"{k} {v:,.0f}" for k, v in stages.items()))


if __name__ == "__main__":
    main()
