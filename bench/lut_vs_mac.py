"""Where does table lookup beat multiply-accumulate? Synthesized area per unit throughput.

Usage: python bench/lut_vs_mac.py [--quick | --smoke] [--fabric [TARGETS]] [--store registers|lutram] [--m-tile 1]
                                  [--png FILE] [--csv FILE]

Synthesizes the LUT engine (bit-serial, symmetric half tables, tables built
on chip) and the MAC baseline over a grid of weight formats (uint 1, 2, 4
bits and ternary), activation widths (8, 16), tile widths ``n_tile``
(4, 16, 64) and, for LUT, group sizes ``g`` (2..4), and prints the area
per multiply-equivalent per cycle: Yosys ``stat -tech cmos`` transistors
(the ``generic`` flow) and, with ``--fabric``, FPGA LUTs with every
multiplier in fabric: Xilinx 7-series LUT6 (``xilinx-7-fabric``) and ECP5
LUT4 (``ecp5-85k-fabric``, Yosys's mapping without place and route);
``--fabric xilinx-7-fabric`` picks one. The MAC baseline is multiply-free for ternary
and 1-bit weights (add, subtract or skip), its best known form there.
Throughput is structural: ``m_tile * n_tile * g / w_bits`` products per
cycle for the bit-serial LUT engine (``g`` for ternary), ``m_tile *
n_tile * k_lanes`` for MAC. ``--store lutram`` keeps the tables in
distributed RAM, each weight beat held the fewest cycles that hide the next
table's serial fill (``column_steps``), and divides by that time instead.
The ratio LUT/MAC below 1 means lookup wins.
``--quick`` keeps ``n_tile`` 4 and 64 and ``g = 4``. Results go through
the synthesis cache, so a second run is instant.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd

from cost_models.mpgemm import group_cycles
from flows.calibrate import synthesize_all
from flows.cluster import Cluster
from generators import lut_mpgemm, mac_mpgemm
from verif.runner import cache_root

WEIGHTS = (("uint", 1), ("uint", 2), ("uint", 4), ("ternary", 2))


def designs(quick: bool, m_tile: int, k_lanes: int, store: str = "registers", smoke: bool = False):
    n_tiles = (4,) if smoke else (4, 64) if quick else (4, 16, 64)
    groups = (4,) if quick or smoke else (2, 3, 4)
    weights, a_widths = (WEIGHTS[-1:], (8,)) if smoke else (WEIGHTS, (8, 16))
    lut, mac = [], []
    for (fmt, w_bits), a_bits, n_tile in itertools.product(weights, a_widths, n_tiles):
        common = dict(m_tile=m_tile, n_tile=n_tile, a_bits=a_bits, w_bits=w_bits, weight_format=fmt,
                      k_max=256)
        mac.append(mac_mpgemm.MacMpGemmParams(k_lanes=k_lanes, **common))
        for g in groups:
            p = lut_mpgemm.LutMpGemmParams(g=g, symmetric=True, planes_per_cycle=1, table_source="onchip",
                                           table_store=store, **common)
            lut.append(p.replace(column_steps=hiding_steps(p)) if p.lutram else p)
    return lut, mac


def hiding_steps(p: lut_mpgemm.LutMpGemmParams) -> int:
    """The fewest cycles per weight beat (a divisor of ``n_tile``) in which a group's lookups
    take as long as the next table's fill, so fills never hold the lookups up; ``n_tile`` (one
    fetcher) where none does."""
    return next((s for s in range(1, p.n_tile + 1) if p.n_tile % s == 0 and p.passes * s >= p.fill_cycles),
                p.n_tile)


def products_per_cycle(p) -> float:
    """Structural throughput: products a group's ``m_tile x n_tile x group`` share takes per
    cycle of the group's steady-state time (LUT: ``max(fill, passes * column_steps)``)."""
    if p.family == "mac_mpgemm":
        return p.m_tile * p.n_tile * p.k_lanes
    return p.m_tile * p.n_tile * p.group / int(group_cycles(p.passes, p.column_steps, p.fill_cycles))


FABRICS = ("xilinx-7-fabric", "ecp5-85k-fabric")


def metric(target: str) -> str:
    """The column a target's figure goes to: transistors, or LUTs of that fabric."""
    return "transistors" if target == "generic" else "lut_" + target.split("-")[0]


def measure(points, build, targets):
    rows = [dict(p.to_dict()) for p in points]
    for target in targets:
        results = synthesize_all(points, build, target, cluster=Cluster.chosen(), cache_root=cache_root(),
                                 progress=True)
        for row, r in zip(rows, results, strict=True):
            row[metric(target)] = r.transistors if target == "generic" else r.lut
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one ternary int8 cell (seconds from the cache)")
    parser.add_argument("--fabric", nargs="?", const=",".join(FABRICS), default="",
                        help=f"also FPGA LUTs without DSPs: {', '.join(FABRICS)}")
    parser.add_argument("--store", choices=("registers", "lutram"), default="registers",
                        help="where the LUT engine keeps its tables; lutram holds each weight beat the "
                             "fewest cycles that hide the next table's fill (column_steps)")
    parser.add_argument("--m-tile", type=int, default=1)
    parser.add_argument("--k-lanes", type=int, default=2)
    parser.add_argument("--png", default="out/bench/lut_vs_mac.png")
    parser.add_argument("--csv", default="out/bench/lut_vs_mac.csv")
    args = parser.parse_args()
    fabrics = [t for t in args.fabric.split(",") if t]
    if any(t not in FABRICS for t in fabrics):
        parser.error(f"--fabric takes a comma-separated list of {', '.join(FABRICS)}, not {args.fabric!r}")
    targets = ["generic"] + fabrics
    try:
        lut_points, mac_points = designs(args.quick, args.m_tile, args.k_lanes, args.store, args.smoke)
    except ValueError as exc:
        parser.error(str(exc))
    lut = measure(lut_points, lut_mpgemm.build, targets)
    lut["macs_per_cycle"] = [products_per_cycle(p) for p in lut_points]
    mac = measure(mac_points, mac_mpgemm.build, targets)
    mac["macs_per_cycle"] = [products_per_cycle(p) for p in mac_points]
    metrics = [metric(t) for t in targets]
    for frame in (lut, mac):
        for k in metrics:
            frame[f"{k}_per_mac"] = frame[k] / frame["macs_per_cycle"]
    keys = ["weight_format", "w_bits", "a_bits", "n_tile"]
    table = lut.merge(mac[keys + [f"{k}_per_mac" for k in metrics]], on=keys, suffixes=("", "_mac"))
    for k in metrics:
        table[f"{k}_ratio"] = table[f"{k}_per_mac"] / table[f"{k}_per_mac_mac"]
    shown = keys + ["g", "column_steps"] + [c for k in metrics
                                             for c in (f"{k}_per_mac", f"{k}_per_mac_mac", f"{k}_ratio")]
    pd.set_option("display.width", 200)
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
    for k in metrics:
        best_k = table.loc[table.groupby(keys)[f"{k}_ratio"].idxmin()]
        wins = best_k[best_k[f"{k}_ratio"] < 1]
        print(f"\nLUT beats MAC ({k} per product per cycle, best g) in {len(wins)} of {len(best_k)} "
              f"(format, a_bits, n_tile) cells:")
        print(wins[keys + ["g", f"{k}_ratio"]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nLUT/MAC at the best g, per figure and n_tile (bold: lookup wins):\n")
    print(crossover_markdown(table, [(metric(t), LABELS[metric(t)]) for t in targets]))
    best = table.loc[table.groupby(keys)["transistors_ratio"].idxmin()]
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    _plot(best, args.png)
    print(f"\ntable: {args.csv}\nplot: {args.png}")


LABELS = {"transistors": "transistors", "lut_xilinx": "LUT6", "lut_ecp5": "LUT4"}


def crossover_markdown(table: pd.DataFrame, metrics: list[tuple[str, str]]) -> str:
    """The README's crossover table: a row per weight format and activation width, a column
    per figure and ``n_tile``, each cell the LUT/MAC ratio at the best ``g``."""
    keys = ["weight_format", "w_bits", "a_bits", "n_tile"]
    n_tiles = sorted(table["n_tile"].unique())
    cells: dict[tuple, str] = {}
    for k, label in metrics:
        for _, row in table.loc[table.groupby(keys)[f"{k}_ratio"].idxmin()].iterrows():
            text = f"{row[f'{k}_ratio']:.2f} (g{row['g']})"
            cells[(row["weight_format"], row["w_bits"], row["a_bits"], label, row["n_tile"])] = (
                f"**{text}**" if row[f"{k}_ratio"] < 1 else text)
    header = ["weights", "a_bits"] + [f"{label} n_tile {n}" for _, label in metrics for n in n_tiles]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    present = set(zip(table["weight_format"], table["w_bits"]))
    for fmt, w_bits in (w for w in WEIGHTS if w in present):
        for a_bits in sorted(table["a_bits"].unique()):
            name = "ternary" if fmt == "ternary" else f"{fmt}{w_bits}"
            row = [cells[(fmt, w_bits, a_bits, label, n)] for _, label in metrics for n in n_tiles]
            lines.append(f"| {name} | {a_bits} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _plot(best: pd.DataFrame, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (fmt, w_bits, a_bits), part in best.groupby(["weight_format", "w_bits", "a_bits"]):
        label = f"{'ternary' if fmt == 'ternary' else f'w{w_bits}'} x a{a_bits}"
        ax.plot(part["n_tile"], part["transistors_ratio"], marker="o", label=label)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n_tile (weight columns sharing one table)")
    ax.set_ylabel("LUT / MAC transistors per product per cycle")
    ax.set_title("Below 1: table lookup is cheaper (best g per point)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main()
