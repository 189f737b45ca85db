"""The accelforge command line: outputs, JSON contract, and bad input."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_generate_writes_verilog_and_manifest(tmp_path):
    out = tmp_path / "gen"
    status = main(["generate", "systolic", "--set", "rows=3", "--set", "cols=2", "--set", "dataflow=ws",
                   "--gemm", "30,20,100", "--target", "xilinx-7", "--out", str(out)])
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    verilog = (out / f"{manifest['top']}.v").read_text()
    assert manifest["family"] == "systolic" and manifest["params"]["rows"] == 3
    assert manifest["top"] == f"af_systolic_{manifest['hash']}"
    assert manifest["prediction"]["target"] == "xilinx-7" and manifest["prediction"]["cycles"] > 0
    assert {"amaranth", "python", "accelforge"} <= set(manifest["tools"])
    header = re.search(rf"module {manifest['top']}\((.*?)\);", verilog, re.S).group(1)
    declared = {name.strip() for name in header.split(",")}
    assert declared == {p["name"] for p in manifest["ports"]}
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert widths["a_stream__payload"] == 3 * 8 and widths["b_stream__payload"] == 2 * 8
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", f"{manifest['top']}.v",
                                                          f"{manifest['top']}.core"])


@pytest.mark.parametrize("argv, field", [
    (["generate", "systolic", "--set", "rows=0"], "systolic.rows must be an integer in 1..64, not 0"),
    (["generate", "systolic", "--set", "dataflow=xs"], "systolic.dataflow must be one of 'os', 'ws'"),
    (["generate", "systolic", "--set", "bogus=1"], "systolic has no parameter 'bogus'"),
    (["generate", "systolic", "--set", "rows"], "--set expects key=value, not 'rows'"),
    (["generate", "systolic", "--gemm", "1,2"], "gemm must be M,N,K"),
    (["generate", "systolic", "--target", "ecp9"], "target must be one of"),
    (["generate", "gemmini"], "family must be one of systolic"),
    (["generate", "lut_mpgemm", "--set", "g=6"], "lut_mpgemm.g must be an integer in 1..5, not 6"),
    (["generate", "lut_mpgemm", "--set", "w_bits=2", "--set", "planes_per_cycle=3"],
     "lut_mpgemm.planes_per_cycle must be an integer in 1..2"),
    (["generate", "lut_mpgemm", "--set", "weight_format=ternary", "--set", "w_bits=4"],
     "lut_mpgemm.w_bits must be 2 when weight_format is 'ternary'"),
    (["generate", "mac_mpgemm", "--set", "k_lanes=17"], "mac_mpgemm.k_lanes must be an integer in 1..16"),
    (["generate", "lut_mpgemm", "--set", "table_source=dram"], "lut_mpgemm.table_source must be one of"),
    (["generate", "attention", "--set", "lanes=48"], "attention.lanes must be a divisor of head_dim (64), not 48"),
    (["generate", "attention", "--set", "exp=cordic"], "attention.exp must be one of 'pwl', 'table'"),
    (["generate", "attention", "--gemm", "1,2,3"], "attention prices attention ops: use --attention"),
    (["generate", "attention", "--attention", "1,32,5,1,64,64"], "attention.kv_heads must divide heads"),
    (["generate", "systolic", "--attention", "1,1,1,1,64,64"], "systolic prices GEMMs: use --gemm"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, field):
    out = tmp_path / "never"
    result = _run(*argv, "--out", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_unknown_flag_and_missing_command_exit_2():
    for argv in (["estimate", "systolic", "--frobnicate"], []):
        result = _run(*argv)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_estimate_json_is_one_document(capsys):
    assert main(["estimate", "systolic", "--set", "rows=8", "--gemm", "64,64,512", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    runs = (64 // 8) * (64 // 4) * (512 // 256)    # 8x4 engine over a 64x64 output, K in two runs
    # back to back: the first run its K, every later one K plus its bubble, then the last
    # tile's capture and drain (2R + C)
    assert doc["cycles"] == 256 + (runs - 1) * (256 + 1) + (2 * 8 + 4)
    assert {"lut", "ff", "dsp", "bram", "area_transistors", "energy_j", "fmax_mhz"} <= set(doc)


def test_params_lists_every_field(capsys):
    assert main(["params", "systolic", "--json"]) == 0
    names = [f["name"] for f in json.loads(capsys.readouterr().out)]
    assert names == ["rows", "cols", "a_bits", "w_bits", "acc_bits", "signed", "dataflow", "k_max", "m_tile"]


@pytest.mark.sim
def test_verify_json_reports_measured_and_model_cycles():
    result = _run("verify", "systolic", "--set", "rows=2", "--set", "cols=2", "--set", "k_max=6",
                  "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] and doc["tests"] == 6 and doc["cycles_match"]
    assert len(doc["measured_cycles"]) == len(doc["model_cycles"]) > 0
    for measured, model in zip(doc["measured_cycles"], doc["model_cycles"]):
        if model["exact"]:
            assert measured["cycles"] == model["cycles"]


@pytest.mark.parametrize("family, lanes", [("lut_mpgemm", {"a_stream__payload": 2 * 4 * 8,
                                                          "w_stream__payload": 16 * 4, "zero_point": 16 * 2}),
                                           ("mac_mpgemm", {"a_stream__payload": 2 * 4 * 8,
                                                           "w_stream__payload": 16 * 4 * 2})])
def test_mpgemm_generate_and_estimate(tmp_path, capsys, family, lanes):
    out = tmp_path / family
    assert main(["generate", family, "--out", str(out), "--target", "asic-45nm"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert all(widths[k] == v for k, v in lanes.items()), widths
    assert widths["y_stream__payload"] == 16 * 18          # signed_bits(256 * 128 * 3)
    capsys.readouterr()
    assert main(["estimate", family, "--gemm", "1,3200,8640", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] > 0 and doc["valid"] is True and doc["family"] == family


def test_attention_generate_and_estimate(tmp_path, capsys):
    out = tmp_path / "attention"
    assert main(["generate", "attention", "--set", "causal=true", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert widths["q_stream__payload"] == widths["k_stream__payload"] == 8 * 8
    assert widths["o_stream__payload"] == 8 * 16 and widths["scale"] == 16 and "q_pos" in widths
    capsys.readouterr()
    assert main(["estimate", "attention", "--attention", "1,32,8,1,1024,64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["attention"]["kv_heads"] == 8 and doc["valid"] is True
    assert doc["runs"] == 8 and doc["seq_dependent_bits"] == 0            # 4 GQA heads per run


def test_a_relative_cache_folder_is_made_absolute(monkeypatch, tmp_path):
    """Benches run in their own folder, so a relative ACCELFORGE_CACHE must not be read from there."""
    from verif.runner import cache_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELFORGE_CACHE", "rel/cache")
    assert cache_root() == tmp_path / "rel" / "cache"


def _strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity are not values."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_explore_json_is_strict_json_with_null_where_a_figure_is_missing(tmp_path, capsys):
    """An accelerator run's front holds designs without some figures (NaN in the frame): they
    print as null."""
    assert main(["explore", "--family", "accelerator", "--workload", "bitnet-b1.58-2b4t-decode", "--target",
                 "kv260", "--trials", "60", "--top", "0", "--out", str(tmp_path / "run"), "--json"]) == 0
    text = capsys.readouterr().out
    doc = _strict_json(text)
    assert doc["trials"] == 60 and "null" in text


def test_version_and_every_option_says_what_it_does(capsys):
    from importlib.metadata import version

    from dse.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"accelforge {version('accelforge')}"
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"accelforge {name} {'/'.join(action.option_strings) or action.dest} has no help"
    explore = commands["explore"].format_help()
    assert "(default: 1000)" in explore and "(default: 0)" in explore and "(default: None)" not in explore


def test_only_param_errors_are_bad_input_any_other_value_error_is_a_bug(monkeypatch, capsys):
    """A ParamError (what every validator raises) is one line, exit 2; a ValueError from
    anywhere else (NumPy, Amaranth, our own code) is a bug and keeps its traceback."""
    import dse.cli as cli
    from generators.params import ParamError

    def fails_with(exc):
        def command(args):
            raise exc
        return command

    monkeypatch.setattr(cli, "cmd_params", fails_with(ParamError("systolic.rows must be an integer in 1..64, not 0")))
    assert main(["params", "systolic"]) == 2
    assert capsys.readouterr().err.strip() == "accelforge: error: systolic.rows must be an integer in 1..64, not 0"
    monkeypatch.setattr(cli, "cmd_params", fails_with(ValueError("operands could not be broadcast together")))
    with pytest.raises(ValueError, match="broadcast"):
        main(["params", "systolic"])
    with pytest.raises(ParamError, match="systolic.rows must be"):   # the validators raise it
        from generators.systolic import SystolicParams
        SystolicParams(rows=0)
