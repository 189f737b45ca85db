"""Generated Verilog passes `verilator --lint-only -Wall` with only the documented waivers."""
from __future__ import annotations

import pytest

from generators.artifact import render, write
from generators.systolic import SystolicParams, build
from generators import attention, lut_mpgemm, mac_mpgemm
from tests.test_attention_sim import CONFIGS as ATTENTION_CONFIGS, config_id as attention_id
from tests.test_mpgemm_sim import LUT_CONFIGS, MAC_CONFIGS, config_id
from tests.test_systolic_sim import CONFIGS, _config_id
from verif.verilator import WAIVED_WARNINGS, lint


@pytest.mark.parametrize("params", CONFIGS[:6] + [SystolicParams(rows=16, cols=9, dataflow="ws")],
                         ids=_config_id)
def test_generated_verilog_lints_clean(params, tmp_path):
    artifact = render(params, build)
    files = write(artifact, tmp_path)
    result = lint(files["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


@pytest.mark.parametrize("params", LUT_CONFIGS[:6] + MAC_CONFIGS[:3], ids=config_id)
def test_mpgemm_verilog_lints_clean(params, tmp_path):
    build_fn = lut_mpgemm.build if params.family == "lut_mpgemm" else mac_mpgemm.build
    artifact = render(params, build_fn)
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


@pytest.mark.parametrize("params", ATTENTION_CONFIGS[:4], ids=attention_id)
def test_attention_verilog_lints_clean(params, tmp_path):
    artifact = render(params, attention.build)
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


def test_every_waiver_has_a_reason_and_no_error_is_waived():
    assert WAIVED_WARNINGS
    for name, reason in WAIVED_WARNINGS.items():
        assert name.isupper() and len(reason) > 40
    assert not any(name.startswith("E") and "ERROR" in name for name in WAIVED_WARNINGS)


def test_lint_reports_real_problems(tmp_path):
    source = tmp_path / "broken.v"
    source.write_text("module broken(input a, output b);\n  assign b = c;\nendmodule\n")
    assert not lint(source, "broken").ok
