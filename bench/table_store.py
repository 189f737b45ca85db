"""Where an FPGA LUT engine should keep its tables: flip-flops or distributed RAM, per fetcher.

The LUT engine holds each table in flip-flops, loaded whole in one cycle, and every fetcher
(a column's lookup) reads it through its own multiplexer. Distributed RAM (Xilinx RAM32M /
RAM64M, ECP5 TRELLIS_DPR16X4) keeps one copy per read port but needs no multiplexer; it is
written one entry per cycle, so a table must be used for at least ``entries`` cycles to hide
its fill. This bench synthesizes one table of int8-activation entries, read by 1 and 8
fetchers with a registered output, both ways, through each fabric's Yosys mapping, and prints
LUTs, flip-flops and LUTs used as RAM per fetcher. ``--out`` writes the figures as JSON.

    python bench/table_store.py [--flows xilinx-7-fabric,ecp5-85k-fabric] [--jobs 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import Module, Signal, signed, unsigned  # noqa: E402
from amaranth.lib import data, wiring  # noqa: E402
from amaranth.lib.memory import Memory  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from flows.synth import make_job, run_job  # noqa: E402
from generators.artifact import Artifact, ports_of, write_atomic  # noqa: E402
from generators.lut_mpgemm import LutMpGemmParams  # noqa: E402
from verif.runner import cache_root  # noqa: E402

A_BITS = 8
TABLES = [("ternary", True, 3), ("ternary", True, 4), ("ternary", False, 3),
          ("uint", False, 4), ("uint", True, 5), ("uint", True, 4)]
"""(weight format, symmetric, g): the engine's 14-, 41-, 27-, 16-, 16- and 8-entry tables."""
READERS = (1, 8)
STORES = ("registers", "lutram")


class TableStore(wiring.Component):
    """One table read by ``readers`` fetchers: ``registers`` (loaded whole when ``load``) or
    ``lutram`` (one entry written per cycle at ``waddr``)."""

    def __init__(self, entries: int, entry_bits: int, readers: int, store: str):
        self._entries, self._bits, self._readers, self._store = entries, entry_bits, readers, store
        index = unsigned(max(entries - 1, 1).bit_length())
        ports = {"index": In(index).array(readers), "value": Out(signed(entry_bits)).array(readers)}
        if store == "lutram":
            ports |= {"we": In(1), "waddr": In(index), "wdata": In(signed(entry_bits))}
        else:
            ports |= {"load": In(1), "table": In(data.ArrayLayout(signed(entry_bits), entries))}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        if self._store == "lutram":
            m.submodules.memory = memory = Memory(shape=signed(self._bits), depth=self._entries, init=[])
            write = memory.write_port()
            m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.we)]
            for r in range(self._readers):
                read = memory.read_port(domain="comb")
                m.d.comb += read.addr.eq(self.index[r])
                m.d.sync += self.value[r].eq(read.data)
        else:
            table = Signal(data.ArrayLayout(signed(self._bits), self._entries))
            with m.If(self.load):
                m.d.sync += table.eq(self.table)
            for r in range(self._readers):
                m.d.sync += self.value[r].eq(table[self.index[r]])
        return m


def artifact(fmt: str, symmetric: bool, g: int, readers: int, store: str) -> Artifact:
    params = LutMpGemmParams(g=g, symmetric=symmetric, weight_format=fmt, w_bits=2 if fmt == "ternary" else 4,
                             a_bits=A_BITS)
    top = f"table_store_{fmt[0]}{'s' if symmetric else 'f'}{g}_r{readers}_{store}"
    component = TableStore(params.entries, params.entry_bits, readers, store)
    return Artifact(params=params, top=top, verilog=verilog.convert(component, name=top, emit_src=False),
                    ports=ports_of(component), extra={"entries": params.entries, "entry_bits": params.entry_bits})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", default="xilinx-7-fabric,ecp5-85k-fabric")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    flows = args.flows.split(",")
    jobs = []
    for fmt, symmetric, g in TABLES:
        for readers in READERS:
            for store in STORES:
                art = artifact(fmt, symmetric, g, readers, store)
                jobs += [((fmt, symmetric, g, readers, store, flow), art,
                          make_job(art, flow, cache_root=cache_root())) for flow in flows]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip([key for key, _, _ in jobs], pool.map(lambda j: run_job(j[2]), jobs)))
    shape = {key[:3]: (art.extra["entries"], art.extra["entry_bits"]) for key, art, _ in jobs}
    print(f"int{A_BITS} activations; per fetcher: LUT (of which RAM) / FF; "
          f"x = registers' LUTs over distributed RAM's")
    print(f"{'table':<16} {'entries':>7} {'bits':>4} {'fetchers':>8}"
          + "".join(f" {flow:>42}" for flow in flows))
    doc = []
    for fmt, symmetric, g in TABLES:
        entries, bits = shape[(fmt, symmetric, g)]
        for readers in READERS:
            row = {"table": f"{fmt} g={g}{' half' if symmetric else ''}", "entries": entries,
                   "entry_bits": bits, "fetchers": readers}
            cells = []
            for flow in flows:
                reg, ram = (results[(fmt, symmetric, g, readers, store, flow)] for store in STORES)
                row[flow] = {store: {"lut": r.lut, "lutram": r.lutram, "ff": r.ff}
                             for store, r in zip(STORES, (reg, ram))}
                cells.append(f" {reg.lut / readers:>7.1f} / {reg.ff / readers:>5.1f}"
                             f" | {ram.lut / readers:>6.1f} ({ram.lutram / readers:>5.1f}) / {ram.ff / readers:>5.1f}"
                             f" {reg.lut / ram.lut:>5.1f}x")
            doc.append(row)
            print(f"{row['table']:<16} {entries:>7} {bits:>4} {readers:>8}" + "".join(cells))
    if args.out:
        write_atomic(args.out, json.dumps({"command": "python bench/table_store.py --out " + str(args.out),
                                           "a_bits": A_BITS, "rows": doc}, indent=2) + "\n")


if __name__ == "__main__":
    main()
