"""Mutation testing of the cocotb benches: how many injected faults each family's bench kills.

For each family (and the machine, ``--family machine``), ``--mutants`` faults are drawn (seeded) from the sites of one small design's
Verilog (operators swapped, constants off by one, one-bit conditions inverted; see
``verif/mutants.py``), each built and run through the family's bench on Icarus, its tiles
checked by the bench and its cycle counts against the cost model. Prints per
family the killed, surviving and invalid (not compiling) mutants and the kill rate, then each
survivor: a gap in the bench or an equivalent mutant, to be explained. ``--out FILE`` also
writes every outcome as JSON.

    python bench/mutants.py [--family F ...] [--mutants 30] [--seed 0 --seed 1] [--out FILE] [--smoke]

Each ``--seed`` draws its own sample (the two may share sites); the kill rate counts every
mutant that builds, equivalent ones included (``bench/results/equivalent_mutants.json``
explains those, and ``make regress`` requires every survivor to be one of them).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.families import FAMILIES, get_family  # noqa: E402
from dse.verify import cycle_misses  # noqa: E402
from generators.artifact import render, write_atomic  # noqa: E402
from verif.mutants import run_mutant, sample, small_design  # noqa: E402


def _bench(name: str):
    """A small design's Params, its Verilog, its bench and its cycle judge: a family's, or the
    machine's (``machine``)."""
    if name == "machine":
        from generators.machine import render as render_machine
        from verif.machine_run import BENCH, cycle_misses as machine_misses, small_machine

        params = small_machine()
        return params, render_machine(params), BENCH, machine_misses(params)
    family = get_family(name)
    params = small_design(family)
    return params, render(params, family.build), family.testbench, cycle_misses(family, params)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    engines = [name for name, f in FAMILIES.items() if f.testbench] + ["machine"]
    ap.add_argument("--family", action="append", choices=engines, help="default: every engine family")
    ap.add_argument("--mutants", type=int, default=30)
    ap.add_argument("--seed", type=int, action="append", help="default: 0; give it again for more samples")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="one mutant of the systolic bench: that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.mutants, args.family = 1, args.family or ["systolic"]
    if args.mutants < 1:
        ap.error("--mutants must be a positive integer")
    seeds = args.seed or [0]
    report = {}
    print(f"{'family':<12} {'seed':>4} {'mutants':>7} {'killed':>6} {'survived':>8} {'invalid':>7} "
          f"{'kill rate':>9} {'time':>6}")
    survivors = []
    for name in args.family or engines:
        params, artifact, testbench, judge = _bench(name)
        report[name] = {"params": params.to_dict(), "hash": params.digest(), "seeds": {}}
        for seed in seeds:
            start = time.time()
            outcomes = [run_mutant(artifact, testbench, m, cycles=judge)
                        for m in sample(artifact.verilog, args.mutants, seed)]
            counts = Counter(o.verdict for o in outcomes)
            valid = counts["killed"] + counts["survived"]
            rate = counts["killed"] / valid if valid else float("nan")
            print(f"{name:<12} {seed:>4} {len(outcomes):>7} {counts['killed']:>6} {counts['survived']:>8} "
                  f"{counts['invalid']:>7} {rate:>9.0%} {time.time() - start:>5.0f}s", flush=True)
            survivors += [f"{name} {params.digest()} seed {seed}: {o.mutant.describe()}"
                          for o in outcomes if o.verdict == "survived"]
            report[name]["seeds"][str(seed)] = [{"verdict": o.verdict, "mutant": o.mutant.describe(),
                                                 "detail": o.detail} for o in outcomes]
    for line in survivors:
        print("survived:", line)
    if args.out:
        write_atomic(args.out, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
