"""How much a second Dask worker speeds up a calibration.

Usage: python bench/cluster_speedup.py [--family systolic] [--target generic] [--samples 16]
       [--workers 1,2] [--scheduler tcp://HOST:PORT] [--smoke]

Runs ``accelforge calibrate``'s calibration of ``--family`` on ``--target`` once per local
cluster size in ``--workers``, each from an empty cache of its own (so every design is
synthesized), and prints the wall time of each and its speed-up over the first; with
``--scheduler`` it adds a run on that cluster. Every run's report must equal the first's (the
sample, the coefficients and the held-out rows): where the jobs ran changes nothing. The
figures depend on the machine's cores: two workers cannot beat one on a single core.
``--smoke``: systolic arrays of a few PEs (a second of synthesis each), to show that it runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.families import FAMILIES, get_family  # noqa: E402
from flows.calibrate import calibrate  # noqa: E402

SMOKE_BOX = {"rows": (1, 2), "cols": (1, 2), "a_bits": (2, 4), "w_bits": (2, 4), "k_max": (4, 16), "m_tile": (2, 8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="systolic", choices=[n for n, f in FAMILIES.items() if f.calibration])
    ap.add_argument("--target", default="generic")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", default="1,2", help="local cluster sizes, comma-separated")
    ap.add_argument("--scheduler", help="also run on this Dask cluster")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    try:
        sizes = [int(w) for w in args.workers.split(",")]
    except ValueError:
        ap.error(f"--workers: comma-separated integers, not {args.workers!r}")
    fam = get_family(args.family).calibration
    if args.smoke:
        fam, args.family = dataclasses.replace(get_family("systolic").calibration, box=SMOKE_BOX), "systolic"
    runs = [(f"{n} local worker{'s' * (n > 1)}", dict(jobs=n)) for n in sizes]
    if args.scheduler:
        runs.append((args.scheduler, dict(scheduler=args.scheduler)))
    print(f"calibration of {args.family} on {args.target}, {args.samples} designs, seed {args.seed}"
          + (" (smoke: a few PEs)" if args.smoke else ""))
    print(f"{'where':<28} {'wall s':>8} {'speed-up':>9}  same report")
    first, base = None, None
    for label, where in runs:
        with tempfile.TemporaryDirectory(prefix="accelforge-bench-") as cache:
            start = time.perf_counter()
            report = calibrate(fam, args.target, samples=args.samples, seed=args.seed, cache_root=Path(cache),
                               **where).to_dict()
            wall = time.perf_counter() - start
        first, base = first or report, base or wall
        print(f"{label:<28} {wall:>8.1f} {base / wall:>8.2f}x  {report == first}")
        if report != first:
            sys.exit(f"{label}: the report differs from the first run's")


if __name__ == "__main__":
    main()
