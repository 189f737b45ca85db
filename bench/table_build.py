"""The LUT engine's table builder against a naive one, synthesized on every flow.

For the tables the engine builds (ternary half tables, g = 3..5; the {0,1} table and the
symmetric {-1,+1} half table, g = 4), int8 activations, synthesizes
:class:`hw.lut.TableBuilder` (the adders of :func:`hw.lut.table_ops`) and
:class:`hw.lut.NaiveTableBuilder` (each entry a plain sum of its terms) as stand-alone modules
on the generic CMOS flow (transistors), ECP5 (LUT4 slots: logic and carry, after place and
route) and Xilinx 7-series (LUT6), and prints ours / naive per flow. ``--out`` writes the
figures as JSON.

    python bench/table_build.py [--flows generic,xilinx-7,ecp5-85k] [--jobs N] [--scheduler tcp://HOST:PORT] [--out FILE] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import signed  # noqa: E402

from flows.synth import make_job, run_jobs  # noqa: E402
from flows.cluster import Cluster  # noqa: E402
from generators.artifact import Artifact, ports_of, write_atomic  # noqa: E402
from generators.lut_mpgemm import LutMpGemmParams, entry_bits, table_coefficients  # noqa: E402
from hw.lut import NaiveTableBuilder, TableBuilder  # noqa: E402
from verif.runner import cache_root  # noqa: E402

A_BITS = 8
TABLES = [("ternary", True, True, g) for g in (3, 4, 5)] + [("{0,1}", False, False, 4), ("{-1,+1}", False, True, 4)]
FIGURE = {"generic": "transistors", "xilinx-7": "lut", "ecp5-85k": "lut"}


def artifact(kind: str, builder: type, ternary: bool, symmetric: bool, g: int) -> Artifact:
    """One table builder as a stand-alone top (its own module name, so results cache apart)."""
    coefficients = table_coefficients(ternary, symmetric, g)
    component = builder(coefficients, A_BITS, signed(int(entry_bits(A_BITS, g))))
    top = f"table_{builder.__name__.lower()}_{'t' if ternary else 'b'}{'s' if symmetric else 'f'}{g}"
    params = LutMpGemmParams(g=g, symmetric=symmetric, weight_format="ternary" if ternary else "uint",
                             w_bits=2 if ternary else 1)
    return Artifact(params=params, top=top, verilog=verilog.convert(component, name=top, emit_src=False),
                    ports=ports_of(component), extra={"adders": component.adders, "table": kind})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", default="generic,xilinx-7,ecp5-85k")
    ap.add_argument("--jobs", type=int, default=None, help="local Dask workers (default: cores)")
    ap.add_argument("--scheduler", help="a Dask scheduler's address (default: $ACCELFORGE_SCHEDULER, else local)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="the first table only: that the bench runs")
    args = ap.parse_args()
    tables = TABLES[:1] if args.smoke else TABLES
    flows = args.flows.split(",")
    if not set(flows) <= set(FIGURE):
        ap.error(f"--flows: each one of {', '.join(FIGURE)}, not {args.flows!r}")
    jobs = []
    for kind, ternary, symmetric, g in tables:
        for builder in (TableBuilder, NaiveTableBuilder):
            art = artifact(kind, builder, ternary, symmetric, g)
            jobs += [((kind, g, builder.__name__, flow), art, make_job(art, flow, cache_root=cache_root()))
                     for flow in flows]
    results = dict(zip([key for key, _, _ in jobs],
                       run_jobs([job for _, _, job in jobs], Cluster.chosen(args.scheduler, args.jobs))))
    adders = {key: art.extra["adders"] for key, art, _ in jobs}
    print(f"int{A_BITS} activations; ours / naive per flow ({', '.join(f'{f}: {FIGURE[f]}' for f in flows)})")
    head = "".join(f" {flow:>22}" for flow in flows)
    print(f"{'table':<10} {'g':>2} {'adders ours/naive':>18}{head}")
    doc = []
    for kind, ternary, symmetric, g in tables:
        ours, naive = ((kind, g, "TableBuilder"), (kind, g, "NaiveTableBuilder"))
        cells, row = [], {"table": kind, "g": g, "adders": [adders[(*ours, flows[0])], adders[(*naive, flows[0])]]}
        for flow in flows:
            a = getattr(results[(*ours, flow)], FIGURE[flow])
            b = getattr(results[(*naive, flow)], FIGURE[flow])
            cells.append(f" {a:>8}/{b:<8} {a / b:>4.2f}")
            row[flow] = {"ours": a, "naive": b, "ratio": round(a / b, 3)}
        doc.append(row)
        print(f"{kind:<10} {g:>2} {row['adders'][0]:>8}/{row['adders'][1]:<9}" + "".join(cells))
    if args.out:
        write_atomic(args.out, json.dumps({"command": "python bench/table_build.py --out " + str(args.out),
                                           "a_bits": A_BITS, "tables": doc}, indent=2) + "\n")


if __name__ == "__main__":
    main()
