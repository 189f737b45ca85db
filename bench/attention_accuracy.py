"""Accuracy of the attention engine's arithmetic against float softmax attention.

For each standard variant (the default and numeric alternatives), runs the bit-exact golden
model (equal to the RTL, as the cocotb regression proves) on the fixed realistic runs and on
the adversarial score patterns of ``verif/attention_patterns.py`` with ``--keys`` keys, and
prints the largest |O_fixed - O_float| in V's units for each, the worst as a fraction of V's
full scale, and the guaranteed bound the tests assert. ``--write`` records the figures as the
reference the accuracy check of ``make test`` holds each variant to (within 2x).

    python bench/attention_accuracy.py [--keys 128] [--write] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.artifact import write_atomic  # noqa: E402
from verif.attention_accuracy import KEYS, REFERENCE, VARIANTS, measure, variant  # noqa: E402
from verif.golden.attention import error_bound  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--write", action="store_true", help=f"record the figures in {REFERENCE.name}")
    parser.add_argument("--smoke", action="store_true", help="16 keys, the first variant: that the bench runs")
    args = parser.parse_args()
    if args.smoke and args.write:
        parser.error("--smoke figures are not the reference; leave out --write")
    variants = list(VARIANTS)[:1] if args.smoke else list(VARIANTS)
    if args.smoke:
        args.keys = 16
    if args.write and args.keys != KEYS:
        parser.error(f"--write records the reference at --keys {KEYS}")
    print(f"head_dim 64, int8 Q/K/V, q_rows 4, {args.keys} keys; realistic: random codes at base-2 "
          f"spreads 1, 3, 8 and gaussian scores; adversarial: 7 shapes x 3 spreads x 2 V patterns")
    print(f"{'variant':<34} {'realistic':>10} {'adversarial':>12} {'/ full scale':>13} {'bound':>10}")
    figures = {}
    for name in variants:
        p = variant(name, args.keys)
        got = figures[name] = measure(p, args.keys)
        worst = max(got.values())
        print(f"{name:<34} {got['realistic']:>10.4f} {got['adversarial']:>12.4f} "
              f"{worst / (1 << (p.v_bits - 1)):>13.2e} {error_bound(p, args.keys):>10.3f}")
    if args.write:
        doc = {"command": "python bench/attention_accuracy.py --write", "keys": args.keys,
               "units": "max |O_fixed - O_float| in V units", "variants": figures}
        write_atomic(REFERENCE, json.dumps(doc, indent=2) + "\n")
        print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
