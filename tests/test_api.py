"""``import accelforge``: the command line's jobs as functions over typed values."""
from __future__ import annotations

import subprocess
import sys

import pytest

import accelforge
from cost_models.ops import Gemm
from dse import cli

WORKLOAD = "bitnet-b1.58-2b4t-decode"


def test_the_package_imports_from_anywhere(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import accelforge; print(accelforge.families())"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "accelerator" in done.stdout


def test_typed_values_give_the_same_design_as_the_command_lines_text():
    typed = accelforge.design("lut_mpgemm", {"n_tile": 64, "weight_format": "ternary", "w_bits": 2,
                                             "symmetric": True})
    text = accelforge.design("lut_mpgemm", {"n_tile": "64", "weight_format": "ternary", "w_bits": "2",
                                            "symmetric": "true"})
    assert typed == text and typed.n_tile == 64
    nested = accelforge.design("accelerator", {"gemm": "lut_mpgemm", "gemm.n_tile": 64, "vector.lanes": 16})
    assert nested.gemm_params.n_tile == 64 and nested.vector.lanes == 16


def test_an_estimate_equals_the_command_lines(capsys):
    import json

    mine = accelforge.estimate("accelerator", {"gemm": "lut_mpgemm", "gemm.n_tile": 64}, workload=WORKLOAD)
    assert cli.main(["estimate", "accelerator", "--set", "gemm=lut_mpgemm", "--set", "gemm.n_tile=64",
                     "--workload", WORKLOAD, "--target", "kv260", "--json"]) == 0
    theirs = json.loads(capsys.readouterr().out)
    assert mine["tokens_per_s"] == pytest.approx(theirs["tokens_per_s"], rel=1e-12)
    assert mine["hash"] == theirs["hash"] and len(mine["ops"]) == len(theirs["ops"])
    one = accelforge.estimate("systolic", {"rows": 8}, op=Gemm(m=8, n=8, k=64, name="g"))
    assert one["cycles"] == accelforge.estimate("systolic", {"rows": 8}, op="8,8,64")["cycles"] > 0


@pytest.mark.parametrize("call, message", [
    (lambda: accelforge.design("systolic", {"rows": 99}), "systolic.rows must be an integer in 1..64, not 99"),
    (lambda: accelforge.design("systolic", {"rows": 1.5}), "must be an int, a bool, a str or an enum member"),
    (lambda: accelforge.design("nope"), "family must be one of"),
    (lambda: accelforge.estimate("accelerator"), "accelerator prices whole workloads"),
    (lambda: accelforge.estimate("systolic", workload=WORKLOAD, op="8,8,8"), "not both"),
    (lambda: accelforge.estimate("attention", op=Gemm(m=1, n=1, k=1, name="g")), "attention prices"),
])
def test_bad_input_is_a_value_error_naming_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_generate_writes_the_verilog_and_its_manifest(tmp_path):
    import json

    files = accelforge.generate("systolic", {"rows": 2, "cols": 2}, out=tmp_path / "sys")
    manifest = json.loads(files["manifest"].read_text())
    assert f"module {manifest['top']}" in files["verilog"].read_text() and manifest["params"]["rows"] == 2
    wrapped = accelforge.generate("mac_mpgemm", {"n_tile": 4}, out=tmp_path / "mac", interface="axi")
    assert {"verilog", "manifest"} <= set(wrapped) and len(wrapped) > 2          # and the register map


def test_the_machine_and_its_isa_are_exported():
    p = accelforge.MachineParams()
    word = accelforge.encode("LOAD", buffer=0, dram=1, beats=2)
    assert accelforge.disassemble([word]) == [("LOAD", {"buffer": 0, "dram": 1, "beats": 2})]
    assert p.port_bits == 128 and [i.name for i in accelforge.ISA][0] == "HALT"


@pytest.mark.sim
def test_verify_runs_the_bench_and_holds_the_cycles():
    results = accelforge.verify("vector", {"lanes": 4}, simulator="icarus")
    assert len(results) == 1 and results[0].passed and results[0].sim.tests == 9
    assert results[0].checks and all(c.ok for c in results[0].checks)
