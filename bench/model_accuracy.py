"""Cost model vs synthesis on the designs calibration held out.

Usage: python bench/model_accuracy.py [--target ecp5-85k] [--samples 40] [--seed 0] [--all] [--png FILE]

Samples designs exactly as `accelforge calibrate` does (same seed, same
held-out split), synthesizes them through the flow cache (instant when
calibration already ran), prices them with the committed coefficients and
prints predicted against measured, with the mean absolute percentage error
per figure; a scatter plot goes to --png. With a seed other than the
calibration's, ``--all`` prices every sampled design: none of them was fitted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cost_models.targets import get_target
from dse.families import get_family
from flows.calibrate import calibration_sample, split, synthesize_all
from flows.cluster import Cluster
from flows.synth import get_synth_target
from verif.runner import cache_root

FIGURES = {"lut": "lut", "lutram": "lutram", "ff": "ff", "dsp": "dsp", "bram": "bram", "fmax_mhz": "fmax_mhz",
           "area_transistors": "transistors"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="systolic")
    parser.add_argument("--target", default="ecp5-85k")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="every sampled design, not the held-out split")
    parser.add_argument("--png", default="out/bench/model_accuracy_{target}.png")
    parser.add_argument("--smoke", action="store_true", help="the two smallest designs of the sample only")
    args = parser.parse_args()
    family = get_family(args.family)
    cal = family.calibration
    synth_target = get_synth_target(args.target)
    points = calibration_sample(cal, args.target, args.samples, args.seed)
    if not args.all:
        _, held_out = split(len(points), args.seed)
        points = [points[i] for i in held_out]
    if args.smoke:                          # the two the model prices smallest: seconds to synthesize
        priced = family.estimate(points, family.default_op(points[0]), get_target(synth_target.model_target))
        size = next(priced[f] for f in ("area_transistors", "lut") if f in priced)
        points = [points[i] for i in np.argsort(np.asarray(size, dtype=float), kind="stable")[:2]]
    measured = synthesize_all(points, cal.build, args.target, cluster=Cluster.chosen(), cache_root=cache_root())
    predicted = family.estimate(points, family.default_op(points[0]), get_target(synth_target.model_target))
    rows = []
    for p, m, i in zip(points, measured, range(len(points)), strict=True):
        row = {"design": p.digest()}
        for fig, attr in FIGURES.items():
            value = getattr(m, attr)
            if value is not None:
                row[f"{fig}_meas"], row[f"{fig}_pred"] = value, float(predicted[fig][i])
        rows.append(row)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    which = "sampled" if args.all else "held-out"
    print(f"{family.name} on {args.target}: {len(points)} {which} designs (seed {args.seed})")
    print(table.round(1).to_string(index=False))
    figs = [f for f in FIGURES if f"{f}_meas" in table]
    for fig in figs:
        meas, pred = table[f"{fig}_meas"].to_numpy(float), table[f"{fig}_pred"].to_numpy(float)
        if fig in ("dsp", "bram", "lutram"):
            print(f"{fig:<17} exact on {np.mean(meas == pred) * 100:.0f}% of designs")
        else:
            err = np.abs(pred - meas) / meas * 100
            print(f"{fig:<17} MAPE {err.mean():.1f}%  max {err.max():.1f}%")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig_, axes = plt.subplots(1, len(figs), figsize=(4 * len(figs), 4))
    for ax, fig in zip(np.atleast_1d(axes), figs, strict=True):
        meas, pred = table[f"{fig}_meas"], table[f"{fig}_pred"]
        lim = [0, max(meas.max(), pred.max()) * 1.1 or 1]
        ax.plot(lim, lim, color="grey", lw=1)
        ax.scatter(meas, pred, s=18)
        ax.set(title=fig, xlabel="measured", ylabel="predicted", xlim=lim, ylim=lim)
    fig_.suptitle(f"{family.name} cost model vs {args.target} (held-out designs)")
    fig_.tight_layout()
    png = Path(args.png.format(target=args.target))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig_.savefig(png, dpi=110)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
