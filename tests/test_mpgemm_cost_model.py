"""The mpGEMM cost models: closed forms against the generators, vectorisation, structure."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import cost_models.lut_mpgemm as lut_model
import cost_models.mac_mpgemm as mac_model
import cost_models.mpgemm as frame
from cost_models.ops import Gemm
from cost_models.targets import TARGETS
from flows.structure import flop_bits, top_ports
from generators.artifact import render
from generators.lut_mpgemm import LutMpGemmParams, build as lut_build, table_coefficients
from generators.mac_mpgemm import MacMpGemmParams, build as mac_build
from generators.mpgemm import WeightFormat
from tests.model_checks import assert_batch_equals_points
from tests.test_mpgemm_sim import LONG_LOOKUP_CONFIGS, LOOKUP_CONFIGS, LUT_CONFIGS, MAC_CONFIGS, config_id


@pytest.mark.parametrize("g", range(1, 6))
def test_table_closed_forms(g):
    """Entries 2^g, 2^(g-1), 3^g, (3^g+1)/2 and code bits, as the notes give them."""
    for fmt, sym, entries in (("uint", False, 2 ** g), ("uint", True, 2 ** (g - 1)),
                              ("ternary", False, 3 ** g), ("ternary", True, (3 ** g + 1) // 2)):
        p = LutMpGemmParams(g=g, weight_format=fmt, symmetric=sym, w_bits=2)
        assert p.entries == entries == len(table_coefficients(fmt == "ternary", sym, g))
        assert p.entry_bits == (g * 128).bit_length() + 1
        assert 2 ** (p.code_bits - sym) >= (entries if fmt == "ternary" else 2 ** (g - sym))
        storage = lut_model.table_storage_bits(p.fmt_code, g, sym, p.a_bits, p.m_tile)
        assert storage == p.m_tile * entries * p.entry_bits


def test_table_build_is_about_one_adder_per_entry():
    for g in range(2, 6):
        full = int(lut_model.table_adders(0, g, False))
        half = int(lut_model.table_adders(0, g, True))
        assert full == 2 ** g - g - 1            # every entry with two or more bits set, one add each
        assert half <= 2 ** g                    # ... and the half table no more than that


def test_lookups_and_throughput_follow_the_notes():
    """Lookups per output element = planes * ceil(K/g); MAC-equivalents per cycle."""
    gemm = Gemm(m=4, n=32, k=256)
    for w_bits, ppc in ((1, 1), (2, 1), (4, 1), (4, 2), (4, 4)):
        p = LutMpGemmParams(m_tile=2, n_tile=16, w_bits=w_bits, planes_per_cycle=ppc, k_max=256)
        est = lut_model.estimate(p, gemm, TARGETS["ecp5-85k"])
        assert est["lookups"][0] == gemm.m * gemm.n * w_bits * 256 // p.g
        assert est["macs_per_cycle"][0] == 2 * 16 * p.g * ppc / w_bits


def test_gemm_cycles_match_a_run_by_run_sum():
    """The closed form equals issuing every run with the drain spacing, for many shapes."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        group, passes, mt, nt, steps = (int(x) for x in rng.integers(1, 9, size=5))
        fill = int(rng.integers(0, 20))
        k_max = int(rng.integers(1, 40))
        m, n, k = (int(x) for x in rng.integers(1, 50, size=3))
        runs = []
        for _tile in range(-(-m // mt) * -(-n // nt)):
            for k0 in range(0, k, k_max):
                runs.append(int(frame.run_cycles(group, passes, min(k_max, k - k0), steps, fill)))
        expected = runs[0] + sum(max(r, mt + 1) for r in runs[1:]) + mt
        assert frame.gemm_cycles(group, passes, mt, nt, k_max, m, n, k, steps, fill) == expected


def test_a_run_with_filled_tables_is_bound_by_the_slower_of_fill_and_lookup():
    """No fill: ``G L + 2``. A fill: the first table's, then one group per ``max(fill, L)``."""
    assert frame.run_cycles(4, 2, 12) == 3 * 2 + 2
    assert frame.run_cycles(4, 2, 12, steps=3, fill=0) == 3 * 6 + 2
    assert frame.run_cycles(4, 2, 12, steps=3, fill=14) == 14 + 2 + 2 * 14 + 6      # fill-bound
    assert frame.run_cycles(4, 2, 12, steps=8, fill=14) == 14 + 2 + 2 * 16 + 16     # lookup-bound
    assert frame.run_cycles(4, 2, 4, steps=8, fill=14) == 14 + 2 + 16               # one group


def test_the_fill_takes_one_cycle_per_entry_and_the_walk_to_a_half_table_s_first():
    """``fill_cycles`` (what the cost model prices) is the serial fill's own schedule length."""
    from generators.lut_mpgemm import fill_cycles
    from hw.lut import fill_schedule

    for fmt, sym, g in itertools.product(("uint", "ternary"), (False, True), range(1, 6)):
        p = LutMpGemmParams(weight_format=fmt, w_bits=2, g=g, symmetric=sym, table_store="lutram")
        steps = len(fill_schedule(table_coefficients(fmt == "ternary", sym, g)))
        assert p.fill_cycles == steps == int(fill_cycles(p.fmt_code, g, sym))
        assert steps == p.entries + (g - 1 if sym and fmt != "ternary" else 0)


def test_distributed_ram_counts_reproduce_the_measured_tables():
    """:func:`cost_models.memory.read_ported_lutram` against every table ``bench/table_store.py``
    synthesized into distributed RAM (counted, never fitted, so it must be exact)."""
    from pathlib import Path
    import json
    from cost_models.memory import read_ported_lutram

    rows = json.loads((Path(__file__).parents[1] / "bench/results/table_store.json").read_text())["rows"]
    checked = 0
    for row in rows:
        for flow, tech in (("xilinx-7-fabric", "xilinx"), ("ecp5-85k-fabric", "ecp5")):
            measured = row[flow]["lutram"]["lutram"]
            if measured == 0:                  # kept in logic (the 8-entry table with 8 readers)
                continue
            got = read_ported_lutram(row["entry_bits"], row["entries"], row["fetchers"], tech)["lutram"]
            assert int(got) == measured, (row["table"], row["fetchers"], flow)
            checked += 1
    assert checked >= 20
    assert read_ported_lutram(10, 28, 4, "generic")["lutram"] == 0


def test_estimates_are_vectorised_and_match_single_points():
    points = LUT_CONFIGS
    gemm = Gemm(m=8, n=64, k=300)
    targets = ("ecp5-85k", "xilinx-7", "asic-45nm")
    assert_batch_equals_points(lut_model.estimate, points, gemm, targets)
    for target in targets:
        mac = mac_model.estimate(MAC_CONFIGS, gemm, TARGETS[target])
        assert mac["cycles"].shape == (len(MAC_CONFIGS),)


def test_invalid_combinations_never_fit():
    cols = LutMpGemmParams.columns([LutMpGemmParams(w_bits=2, planes_per_cycle=2)] * 2)
    cols["planes_per_cycle"] = np.array([2, 4])           # 4 planes per cycle of a 2-bit weight
    est = lut_model.estimate(cols, Gemm(m=1, n=64, k=64), TARGETS["ecp5-85k"])
    assert list(est["valid"]) == [True, False] and not est["fits"][1]
    with pytest.raises(ValueError, match="planes_per_cycle must be an integer in 1..2"):
        LutMpGemmParams(w_bits=2, planes_per_cycle=4)
    with pytest.raises(ValueError, match="w_bits must be 2 when weight_format is 'ternary'"):
        LutMpGemmParams(weight_format=WeightFormat.TERNARY, w_bits=3)
    with pytest.raises(ValueError, match=r"lut_mpgemm.column_steps must be a divisor of n_tile \(12\), not 5"):
        LutMpGemmParams(n_tile=12, column_steps=5)
    with pytest.raises(ValueError, match="table_store must be 'registers' when table_source is 'external'"):
        LutMpGemmParams(table_source="external", table_store="lutram")


def test_mac_dsp_count_follows_the_rule():
    p = MacMpGemmParams(m_tile=2, n_tile=4, k_lanes=3, w_bits=4, a_bits=8)
    est = mac_model.estimate(p, Gemm(m=2, n=4, k=64), TARGETS["ecp5-85k"])
    assert est["dsp"][0] == 2 * 4 * 3                         # ECP5 maps every product
    est = mac_model.estimate(p, Gemm(m=2, n=4, k=64), TARGETS["asic-45nm"])
    assert est["dsp"][0] == 0


@pytest.mark.parametrize("params", LUT_CONFIGS + LOOKUP_CONFIGS + LONG_LOOKUP_CONFIGS + MAC_CONFIGS, ids=config_id)
def test_manifest_ports_and_registers_match_the_parsed_verilog(params):
    """pyverilog's view of the RTL: the manifest's ports, and exactly the model's register bits."""
    lut = params.family == "lut_mpgemm"
    artifact = render(params, lut_build if lut else mac_build)
    parsed = {(p.name, p.width, p.direction) for p in top_ports(artifact.verilog, artifact.top)}
    manifest = {(p["name"], p["width"], p["direction"]) for p in artifact.manifest()["ports"]}
    assert parsed == manifest
    if lut:
        c = lut_model.prepare(params)
        memory = 2 * c["m_tile"] * c["k_groups"] * c["entries"] * c["entry_bits"] * c["lutram"]
        regs = lut_model.features(c, 0, lut_model.table_memories(c, "cmos"))["cmos"]["reg"] - memory
    else:
        c = mac_model.prepare(params)
        regs = mac_model.features(c, np.zeros(1, dtype=bool))["cmos"]["reg"]
    assert flop_bits(artifact.verilog, artifact.top) == int(regs[0])


def test_the_characterized_lookup_units_cover_every_slot_the_engine_builds():
    """Each (entries, passes, half table) a design can have is in the characterization grid."""
    from flows.characterize import ENTRY_BITS, shapes

    grid = set(shapes())
    for fmt, w_bits, g, sym, ppc in itertools.product(("uint", "int", "ternary"), range(1, 5), range(1, 6),
                                                      (False, True), range(1, 5)):
        try:
            p = LutMpGemmParams(weight_format=fmt, w_bits=2 if fmt == "ternary" else w_bits, g=g,
                                symmetric=sym, planes_per_cycle=ppc)
        except ValueError:
            continue
        assert (p.entries, p.passes, p.symmetric) in grid, p
        assert ENTRY_BITS[0] <= p.entry_bits <= ENTRY_BITS[-1]
    for a_bits, g in ((4, 1), (16, 5)):
        assert ENTRY_BITS[0] <= LutMpGemmParams(a_bits=a_bits, g=g).entry_bits <= ENTRY_BITS[-1]


def test_a_lookup_unit_is_priced_from_its_table_between_the_widths_measured():
    table = {"entry_bits": [5, 10, 15, 20], "luts": {lut_model.unit_key(16, 2, True): [50, 100, 160, 200],
                                                     lut_model.unit_key(16, 2, False): [1, 2, 3, 4]}}
    got = lut_model.lookup_unit_luts(table, np.array([16, 16, 16, 16]), np.array([5, 12, 20, 12]),
                                     np.array([2, 2, 2, 2]), np.array([True, True, True, False]))
    assert got.tolist() == [50.0, 124.0, 200.0, 2.4]
    assert lut_model.lookup_unit_luts(None, 16, 12, 2, True).tolist() == 0.0   # no table: not priced
    with pytest.raises(KeyError):                                               # a shape never measured
        lut_model.lookup_unit_luts(table, 8, 12, 2, True)
