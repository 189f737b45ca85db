"""PPA model of the LUT-based mpGEMM engine, vectorised over design points.

Cycles, tiling and traffic are the shared exact forms of
:mod:`cost_models.mpgemm` with ``group = g * k_groups`` and
``passes = ceil(planes / planes_per_cycle)`` (``planes = w_bits``, 1 for
ternary). The closed forms of the notes (section 1.3) are exact here:

* table entries per activation row: ``2^g``, ``2^(g-1)`` (symmetric),
  ``3^g`` or ``(3^g + 1)/2`` (ternary), each ``entry_bits`` wide;
  :func:`table_storage_bits` is what the operand register holds;
* table build: :func:`table_adders` adders per row and group (shared
  prefixes, about one per entry), none for external tables;
* lookups per output element: ``planes * ceil(K/g)``, each followed by an
  accumulate.

With ``column_steps`` a weight beat takes that many cycles, and with tables in
distributed RAM a group takes ``max(fill, passes * column_steps)`` once the
first table is filled (:func:`cost_models.mpgemm.run_cycles`); their RAM is
counted (:func:`table_memories`), never fitted.

Resources, area and energy are structural counts times coefficients kept
in ``cost_models/data/lut_mpgemm.json`` (fitted by ``accelforge calibrate``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.memory import read_ported_lutram
from cost_models.mpgemm import group_cycles, tiling
from cost_models.pricing import price
from cost_models.ops import Gemm
from cost_models.targets import Target
from generators import lut_mpgemm as gen
from generators.mpgemm import TERNARY_CODE, UINT_CODE, out_bits, rowsum_bits
from generators.widths import bits_for
from hw.lut import table_ops

EXTERNAL_CODE = list(gen.TableSource).index(gen.TableSource.EXTERNAL)
LUTRAM_CODE = list(gen.TableStore).index(gen.TableStore.LUTRAM)

Points = Union[gen.LutMpGemmParams, Sequence[gen.LutMpGemmParams], Mapping[str, np.ndarray]]


@lru_cache(maxsize=None)
def _adders(ternary: bool, symmetric: bool, g: int) -> int:
    """Adders :class:`hw.lut.TableBuilder` builds for one table (as the RTL counts them)."""
    return len(table_ops(gen.table_coefficients(ternary, symmetric, g)))


_ADDERS = np.array([[[_adders(bool(t), bool(s), g) if g else 0 for g in range(6)] for s in (0, 1)]
                    for t in (0, 1)], dtype=np.int64)


@lru_cache(maxsize=None)
def _kept_bits(ternary: bool, symmetric: bool, g: int, a_bits: int) -> int:
    """Table register bits synthesis keeps: an entry needs only the width of its own range
    (the empty entry none, a single activation ``a_bits``); the sign-extension bits above
    repeat one flip-flop, which synthesis merges."""
    lo, hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    kept = 0
    for row in gen.table_coefficients(ternary, symmetric, g):
        low = sum(c * (lo if c > 0 else hi) for c in row)
        high = sum(c * (hi if c > 0 else lo) for c in row)
        if low or high:
            kept += max(int(low).bit_length() if low >= 0 else int(-low - 1).bit_length(),
                        int(high).bit_length() if high >= 0 else int(-high - 1).bit_length()) + 1
    return kept


_KEPT = np.array([[[[_kept_bits(bool(t), bool(s), g, a) if g and a else 0 for a in range(17)] for g in range(6)]
                   for s in (0, 1)] for t in (0, 1)], dtype=np.int64)


def table_adders(fmt, g, symmetric):
    """Adders per activation row to build one group's table on chip."""
    return _ADDERS[(np.asarray(fmt) == TERNARY_CODE).astype(np.int64),
                   np.asarray(symmetric, dtype=np.int64), np.asarray(g, dtype=np.int64)]


def table_storage_bits(fmt, g, symmetric, a_bits, tables):
    """Bits of table the engine holds: ``tables * entries * entry_bits`` (``tables = m_tile *
    k_groups``; independent of K and N)."""
    return (np.asarray(tables, dtype=np.int64) * gen.stored_entries(fmt, g, symmetric)
            * gen.entry_bits(a_bits, g))


def prepare(points: Points) -> dict[str, np.ndarray]:
    """Model columns with every derived width of the generator."""
    if isinstance(points, gen.LutMpGemmParams):
        points = [points]
    col = dict(points) if isinstance(points, Mapping) else gen.LutMpGemmParams.columns(points)
    col = {k: np.asarray(v) for k, v in col.items()}
    fmt, g, sym = col["weight_format"].astype(np.int64), col["g"].astype(np.int64), col["symmetric"].astype(bool)
    a, b, k_max = col["a_bits"].astype(np.int64), col["w_bits"].astype(np.int64), col["k_max"].astype(np.int64)
    planes = gen.planes(fmt, b)
    ppc = np.minimum(col["planes_per_cycle"].astype(np.int64), planes)      # invalid points clamp
    keeps = gen.keeps_rowsum(fmt, sym)
    steps = np.maximum(col["column_steps"].astype(np.int64), 1)
    lutram = col["table_store"] == LUTRAM_CODE
    return {
        "m_tile": col["m_tile"].astype(np.int64), "n_tile": col["n_tile"].astype(np.int64),
        "g": g, "k_groups": col["k_groups"].astype(np.int64), "group": g * col["k_groups"].astype(np.int64),
        "a_bits": a, "w_bits": b, "fmt": fmt, "sym": sym, "k_max": k_max,
        "external": col["table_source"] == EXTERNAL_CODE, "planes": planes, "ppc": ppc,
        "passes": -(-planes // ppc), "entries": gen.stored_entries(fmt, g, sym),
        "code_bits": gen.code_bits(fmt, g, sym), "entry_bits": gen.entry_bits(a, g),
        "acc": gen.acc_bits(a, b, fmt, k_max), "out": out_bits(a, b, fmt, k_max),
        "rowsum": np.where(keeps, rowsum_bits(a, k_max), 0), "keeps": keeps,
        "uint": fmt == UINT_CODE, "adders": table_adders(fmt, g, sym),
        "steps": steps, "fetchers": col["n_tile"].astype(np.int64) // steps, "lutram": lutram,
        "fill": np.where(lutram, gen.fill_cycles(fmt, g, sym), 0),
        "lane_bits": col["k_groups"].astype(np.int64) * ppc * gen.code_bits(fmt, g, sym),
        "valid": gen.LutMpGemmParams.valid_columns(col),
    }


UNIT_TABLE = "lookup_unit"
"""The characterized lookup unit's table among a technology's measured ``tables``."""


def unit_key(entries: int, passes: int, symmetric: bool) -> str:
    return f"{entries}/{passes}/{'sym' if symmetric else 'full'}"


def lookup_unit_luts(table: Mapping | None, entries, entry_bits, passes, symmetric) -> np.ndarray:
    """LUTs of one lookup slot, interpolated in entry width from ``table``, the unit as
    synthesized alone on a fabric (``flows.characterize``); zero without a table."""
    entries, entry_bits, passes, symmetric = np.broadcast_arrays(
        np.asarray(entries), np.asarray(entry_bits), np.asarray(passes), np.asarray(symmetric, dtype=bool))
    out = np.zeros(entries.shape, dtype=np.float64)
    if table is None:
        return out
    for e, p, sym in set(zip(entries.ravel().tolist(), passes.ravel().tolist(), symmetric.ravel().tolist())):
        where = (entries == e) & (passes == p) & (symmetric == sym)
        out[where] = np.interp(entry_bits[where], table["entry_bits"], table["luts"][unit_key(e, p, sym)])
    return out


def table_memories(c: Mapping[str, np.ndarray], tech: str) -> dict[str, np.ndarray]:
    """Distributed RAM of tables kept there (``table_store=lutram``): per table one memory of
    both banks (``2 * entries`` deep), one read port per fetcher and slot (a one-entry table's
    ports all read the bank's one word, and Yosys merges them); zeros otherwise."""
    tables = np.where(c["lutram"], c["m_tile"] * c["k_groups"], 0)
    reads = np.where(c["entries"] == 1, 1, c["fetchers"] * c["ppc"])
    one = read_ported_lutram(c["entry_bits"], 2 * c["entries"], reads, tech)
    return {"lutram": tables * one["lutram"], "stack_mux": tables * one["stack_mux"]}


def features(c: Mapping[str, np.ndarray], unit_luts, memories: Mapping[str, np.ndarray]
             ) -> dict[str, dict[str, np.ndarray]]:
    """Structural features of the generated RTL, grouped by the figure they price.

    Read off mapped netlists (``accelforge synth lut_mpgemm --breakdown``), block by block:
    each lookup unit's entry mux and pass select (counted, and as the characterized unit costs on
    the fabric, ``unit_luts`` a slot), and its adders (one per slot, acc-wide, the
    sign a carry-in); the output correction, one carry-chain adder per column and zero-point
    digit with a small mux in front; the drain bank's shifting rows; the table build's adders.
    A unit is a fetcher (``n_tile / column_steps`` per row); with ``column_steps`` > 1 each
    selects its weight lane and accumulator per step (``column_select``). Tables in distributed
    RAM have no entry mux (a read port each: the RAM's LUTs are counted, not fitted, beside the
    multiplexers over stacked primitives, ``ram_mux``, of :func:`table_memories`) and fill with
    one adder (``table_fill``).
    """
    mt, nt, e, eb, kg = c["m_tile"], c["n_tile"], c["entries"], c["entry_bits"], c["k_groups"]
    ram, regs = c["lutram"], ~c["lutram"]
    units = mt * c["fetchers"]
    slots = c["ppc"] * kg                                        # lookups per unit and cycle
    tables = mt * kg
    contrib = eb + c["planes"]                                 # an entry shifted to its plane
    lookup = units * slots * np.where(ram, 2, 1) * e * eb      # as a multiplexer (the generic flow's)
    pass_mux = units * slots * (c["passes"] - 1) * contrib     # the pass picks a shift of the lookup
    adders = units * slots * c["acc"]
    acc_bits = mt * (nt * c["acc"] + c["rowsum"])
    build = np.where(c["external"] | ram, 0, tables * c["adders"] * eb)
    fill = np.where(ram, tables * (eb + c["g"] * c["a_bits"]), 0)     # one adder, its operand's select
    select = (c["steps"] - 1) * c["fetchers"] * (c["lane_bits"] + mt * c["acc"])
    correction = np.where(c["keeps"], nt * c["out"] * np.where(c["uint"], gen.correction_digits(c["w_bits"]), 1), 0)
    table_reg = np.where(ram, 0, tables * e * eb)
    # per table its held group, running sum, step and busy; the banks' seven state bits less the
    # operand register's valid and last, and the fill counter
    fill_reg = np.where(ram, tables * (c["g"] * c["a_bits"] + eb + bits_for(c["fill"]) + 1)
                        + 5 + bits_for(c["fill"] + 1), 0)
    zp_reg = np.where(c["uint"], 2 * nt * c["w_bits"], 0)
    control = (bits_for(c["k_max"] + 1) + bits_for(np.maximum(c["passes"], 2)) + bits_for(mt + 1) + 5
               + np.where(c["steps"] > 1, bits_for(c["steps"]), 0))
    one = np.ones_like(mt)
    registers = table_reg + fill_reg + 2 * acc_bits + zp_reg + control    # every flip-flop of the RTL
    kept_table = np.where(c["external"] | ram, table_reg,
                          tables * _KEPT[(c["fmt"] == TERNARY_CODE).astype(np.int64), c["sym"].astype(np.int64),
                                     c["g"], c["a_bits"]])
    return {
        "lut": {"const": one, "lookup": np.where(regs, units * slots * eb * (e - 1), 0), "pass_mux": pass_mux,
                "unit": np.where(regs & (c["steps"] == 1), units * slots * unit_luts, 0),
                "stepped_unit": np.where(regs & (c["steps"] > 1), units * slots * unit_luts, 0),
                "adders": adders, "rowsum": tables * c["rowsum"], "table_build": build,
                "drain": (mt - 1) * (nt * c["acc"] + c["rowsum"]), "correction": correction,
                "column_select": select, "table_fill": fill, "ram_mux": memories["stack_mux"]},
        "ff": {"const": one, "registers": registers - table_reg + kept_table},
        "period_ns": {"const": one, "lookup_levels": np.log2(np.maximum(np.where(ram, 1, e), 2)),
                      "acc_bit": c["acc"], "table_levels": np.where(c["external"] | ram, 0, c["g"]),
                      "combine_levels": np.log2(slots) + (c["passes"] > 1) + np.log2(c["steps"]),
                      "ram_read": ram.astype(np.float64),       # an asynchronous read, its address decode
                      "fill_bits": np.where(ram, eb + c["rowsum"], 0)},   # fill adder into the row sum
        "cmos": {"const": one, "reg": registers + np.where(ram, 2 * tables * e * eb, 0),
                 "mux": lookup + pass_mux + select,
                 "adder": adders + tables * c["rowsum"] + build + correction + np.where(ram, tables * eb, 0)},
    }


def estimate(points: Points, gemm: Gemm, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point running ``gemm`` on ``target`` (dict of equal-length arrays)."""
    c = prepare(points)
    fab = coefficients("lut_mpgemm", target.tech, FabricCoefficients)
    cmos = coefficients("lut_mpgemm", "cmos", CmosCoefficients)
    memories = table_memories(c, target.tech)                 # zeros for an ASIC technology
    feats = features(c, _unit_luts(fab.tables, c), memories)
    counts = tiling(c["group"], c["passes"], c["m_tile"], c["n_tile"], c["k_max"], gemm, c["steps"], c["fill"])
    lutram = memories["lutram"]
    units = c["m_tile"] * c["n_tile"]
    lookups = counts["beats"] * units * c["ppc"] * c["k_groups"]
    builds = np.where(c["external"], 0, counts["groups"] * c["m_tile"] * c["k_groups"] * c["adders"])
    e = fab.energy
    e_compute = (e["j_per_lookup_bit"] * lookups * c["entry_bits"]
                 + e["j_per_adder_bit"] * (counts["beats"] * units * c["acc"] + builds * c["entry_bits"]))
    reg_bits = feats["cmos"]["reg"]
    a_per_element = np.where(c["external"], c["entries"] * c["entry_bits"] / c["g"], c["a_bits"])
    w_per_element = c["passes"] * c["ppc"] * c["code_bits"] / c["g"]
    traffic = gemm.offchip_bits(c["m_tile"], c["n_tile"], counts["chunks"], a_per_element, w_per_element,
                           c["out"])
    extra = {"acc_bits": c["acc"], "out_bits": c["out"], "entries": c["entries"],
             "table_bits": table_storage_bits(c["fmt"], c["g"], c["sym"], c["a_bits"], c["m_tile"] * c["k_groups"]),
             "lookups": lookups,
             "macs_per_cycle": units * c["group"] / group_cycles(c["passes"], c["steps"], c["fill"])}
    return price(ops=gemm.ops, target=target, fab=fab, counts=counts,
                 lut=weighted(fab.lut, feats["lut"]) + lutram, lutram=lutram, ff=weighted(fab.ff, feats["ff"]),
                 dsp=np.zeros_like(units), area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]), reg_bits=reg_bits,
                 e_compute=e_compute, offchip=traffic, valid=c["valid"], extra=extra)


def model_info() -> dict[str, object]:
    return {"family": "lut_mpgemm", "coefficients": provenance("lut_mpgemm")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"m_tile": (1, 4), "n_tile": (1, 24), "k_groups": (1, 4), "k_max": (4, 1024),
                   "column_steps": (1, 8)}
"""Where calibration samples designs: capped so each synthesizes in about a minute on one core."""
FLOW_BOXES = {"ecp5": {"m_tile": (1, 2), "n_tile": (1, 12), "k_groups": (1, 2), "k_max": (4, 256)}}
"""ECP5: nextpnr placed a 57,297-LUT4 design of the full box for over 30 minutes (its time
limit) on a 2-core machine; this box keeps designs to about a quarter of that."""


def calibration_features(points: Points, dsp_rule: tuple[int, int], target: Target,
                         tables: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    c = prepare(points)
    return features(c, _unit_luts(tables, c), table_memories(c, target.tech))


def placed_memories(points: Points, tech: str) -> dict[str, np.ndarray]:
    """LUTs of the tables kept in distributed RAM (counted, never fitted)."""
    return {"lutram": table_memories(prepare(points), tech)["lutram"]}


def _unit_luts(tables: Mapping[str, object], c: Mapping[str, np.ndarray]) -> np.ndarray:
    return lookup_unit_luts(tables.get(UNIT_TABLE), c["entries"], c["entry_bits"], c["passes"], c["sym"])



def multipliers(points: Points, target: Target) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """None: the LUT engine's zero-point products are shift-adds in fabric."""
    return []
