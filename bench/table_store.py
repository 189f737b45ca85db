"""Where an FPGA LUT engine should keep its tables: flip-flops or distributed RAM, per fetcher.

The LUT engine holds each table in flip-flops, loaded whole in one cycle, and every fetcher
(a column's lookup) reads it through its own multiplexer. Distributed RAM (Xilinx RAM32M /
RAM64M, ECP5 TRELLIS_DPR16X4) keeps one copy per read port but needs no multiplexer; it is
written one entry per cycle, so a table must be used for at least as many cycles as it takes to
fill. This bench synthesizes one table of int8-activation entries through each fabric's Yosys
mapping both ways: the store alone read by 1 and 8 fetchers, and read by 8 with its builder
(:class:`hw.lut.TableBuilder` into the flip-flops, :class:`hw.lut.SerialTableFill` into the
RAM); it prints LUTs, LUTs used as RAM and flip-flops per fetcher. ``--out`` writes them as JSON.

    python bench/table_store.py [--flows xilinx-7-fabric,ecp5-85k-fabric] [--jobs N] [--scheduler tcp://HOST:PORT] [--out FILE] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import Module, Signal, signed, unsigned  # noqa: E402
from amaranth.lib import data, wiring  # noqa: E402
from amaranth.lib.memory import Memory  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from flows.synth import SYNTH_TARGETS, make_job, run_jobs  # noqa: E402
from flows.cluster import Cluster  # noqa: E402
from generators.artifact import Artifact, ports_of, write_atomic  # noqa: E402
from generators.lut_mpgemm import LutMpGemmParams, table_coefficients  # noqa: E402
from hw.lut import SerialTableFill, TableBuilder  # noqa: E402
from verif.runner import cache_root  # noqa: E402

A_BITS = 8
TABLES = [("ternary", True, 3), ("ternary", True, 4), ("ternary", False, 3),
          ("uint", False, 4), ("uint", True, 5), ("uint", True, 4)]
"""(weight format, symmetric, g): the engine's 14-, 41-, 27-, 16-, 16- and 8-entry tables."""
CASES = ((1, False), (8, False), (8, True))
"""(fetchers, built): the store alone read by 1 and 8 fetchers, and with its builder by 8."""
STORES = ("registers", "lutram")


class TableStore(wiring.Component):
    """One table read by ``readers`` fetchers: ``registers`` (loaded whole when ``load``) or
    ``lutram`` (one entry written per cycle at ``waddr``). With ``coefficients`` the table is built
    from ``a`` here: by :class:`hw.lut.TableBuilder` in one cycle, or by
    :class:`hw.lut.SerialTableFill` into the RAM, one entry per cycle from ``start``."""

    def __init__(self, entries: int, entry_bits: int, readers: int, store: str,
                 coefficients: tuple[tuple[int, ...], ...] | None = None):
        self._entries, self._bits, self._readers, self._store = entries, entry_bits, readers, store
        self._coefficients = coefficients
        index = unsigned(max(entries - 1, 1).bit_length())
        ports = {"index": In(index).array(readers), "value": Out(signed(entry_bits)).array(readers)}
        if coefficients is not None:
            ports |= {"a": In(data.ArrayLayout(signed(A_BITS), len(coefficients[0]))),
                      ("start" if store == "lutram" else "load"): In(1)}
        elif store == "lutram":
            ports |= {"we": In(1), "waddr": In(index), "wdata": In(signed(entry_bits))}
        else:
            ports |= {"load": In(1), "table": In(data.ArrayLayout(signed(entry_bits), entries))}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        built = self._coefficients is not None
        if self._store == "lutram":
            m.submodules.memory = memory = Memory(shape=signed(self._bits), depth=self._entries, init=[])
            write = memory.write_port()
            if built:
                m.submodules.fill = fill = SerialTableFill(self._coefficients, A_BITS, signed(self._bits))
                m.d.comb += [fill.a.eq(self.a), fill.start.eq(self.start)]
                m.d.comb += [write.addr.eq(fill.waddr), write.data.eq(fill.wdata), write.en.eq(fill.we)]
            else:
                m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.we)]
            for r in range(self._readers):
                read = memory.read_port(domain="comb")
                m.d.comb += read.addr.eq(self.index[r])
                m.d.sync += self.value[r].eq(read.data)
        else:
            source = self.table if not built else None
            if built:
                m.submodules.build = builder = TableBuilder(self._coefficients, A_BITS, signed(self._bits))
                m.d.comb += builder.a.eq(self.a)
                source = builder.table
            table = Signal(data.ArrayLayout(signed(self._bits), self._entries))
            with m.If(self.load):
                m.d.sync += table.eq(source)
            for r in range(self._readers):
                m.d.sync += self.value[r].eq(table[self.index[r]])
        return m


def artifact(fmt: str, symmetric: bool, g: int, readers: int, store: str, built: bool) -> Artifact:
    params = LutMpGemmParams(g=g, symmetric=symmetric, weight_format=fmt, w_bits=2 if fmt == "ternary" else 4,
                             a_bits=A_BITS)
    top = f"table_store_{fmt[0]}{'s' if symmetric else 'f'}{g}_r{readers}_{store}{'_built' if built else ''}"
    coefficients = table_coefficients(fmt == "ternary", symmetric, g) if built else None
    component = TableStore(params.entries, params.entry_bits, readers, store, coefficients)
    return Artifact(params=params, top=top, verilog=verilog.convert(component, name=top, emit_src=False),
                    ports=ports_of(component), extra={"entries": params.entries, "entry_bits": params.entry_bits})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", default="xilinx-7-fabric,ecp5-85k-fabric")
    ap.add_argument("--jobs", type=int, default=None, help="local Dask workers (default: cores)")
    ap.add_argument("--scheduler", help="a Dask scheduler's address (default: $ACCELFORGE_SCHEDULER, else local)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="one table, one fetcher: that the bench runs")
    args = ap.parse_args()
    tables, cases = (TABLES[:1], CASES[:1]) if args.smoke else (TABLES, CASES)
    fabrics = [name for name, t in SYNTH_TARGETS.items() if t.flow != "generic"]
    flows = args.flows.split(",")
    if not set(flows) <= set(fabrics):
        ap.error(f"--flows: each one of the FPGA targets {', '.join(fabrics)}, not {args.flows!r}")
    jobs = []
    for fmt, symmetric, g in tables:
        for readers, built in cases:
            for store in STORES:
                art = artifact(fmt, symmetric, g, readers, store, built)
                jobs += [((fmt, symmetric, g, readers, built, store, flow), art,
                          make_job(art, flow, cache_root=cache_root())) for flow in flows]
    results = dict(zip([key for key, _, _ in jobs],
                       run_jobs([job for _, _, job in jobs], Cluster.chosen(args.scheduler, args.jobs))))
    shape = {key[:3]: (art.extra["entries"], art.extra["entry_bits"]) for key, art, _ in jobs}
    print(f"int{A_BITS} activations; per fetcher: LUT (of which RAM) / FF, registers | distributed RAM; "
          f"x = registers' LUTs over distributed RAM's; built: with the table's builder "
          f"(TableBuilder | SerialTableFill)")
    print(f"{'table':<16} {'entries':>7} {'bits':>4} {'fetchers':>8} {'built':>5}"
          + "".join(f" {flow:>42}" for flow in flows))
    doc = []
    for fmt, symmetric, g in tables:
        entries, bits = shape[(fmt, symmetric, g)]
        for readers, built in cases:
            row = {"table": f"{fmt} g={g}{' half' if symmetric else ''}", "entries": entries,
                   "entry_bits": bits, "fetchers": readers, "built": built}
            cells = []
            for flow in flows:
                reg, ram = (results[(fmt, symmetric, g, readers, built, store, flow)] for store in STORES)
                row[flow] = {store: {"lut": r.lut, "lutram": r.lutram, "ff": r.ff}
                             for store, r in zip(STORES, (reg, ram))}
                cells.append(f" {reg.lut / readers:>7.1f} / {reg.ff / readers:>5.1f}"
                             f" | {ram.lut / readers:>6.1f} ({ram.lutram / readers:>5.1f}) / {ram.ff / readers:>5.1f}"
                             f" {reg.lut / ram.lut:>5.1f}x")
            doc.append(row)
            print(f"{row['table']:<16} {entries:>7} {bits:>4} {readers:>8} {'yes' if built else 'no':>5}"
                  + "".join(cells))
    if args.out:
        write_atomic(args.out, json.dumps({"command": "python bench/table_store.py --out " + str(args.out),
                                           "a_bits": A_BITS, "rows": doc}, indent=2) + "\n")


if __name__ == "__main__":
    main()
