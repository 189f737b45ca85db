"""The whole accelerator: nested Params, per-token pricing, the roofline, the explorer, the top."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from cost_models.targets import TARGETS, get_target
from dse.families import FAMILIES, get_family
from dse.workloads import load, preset_names
from generators.accelerator import AcceleratorParams, GemmKind, build
from generators.artifact import render, write
from generators.axi import render_axi
from verif.verilator import lint

ROOT = Path(__file__).resolve().parents[1]
ACC = get_family("accelerator")
# a small design every test can build and simulate in seconds
SMALL = {"gemm": "mac_mpgemm", "gemm.n_tile": "4", "gemm.k_max": "32", "gemm.k_lanes": "2",
         "attention.head_dim": "16", "attention.lanes": "4", "attention.max_seq_len": "32",
         "attention.q_rows": "2", "attention.kv_block": "4", "gemm_instances": "2"}


def _cli(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_nested_params_round_trip_and_hash():
    p = AcceleratorParams.from_strings(SMALL)
    assert p.gemm is GemmKind.MAC_MPGEMM and p.gemm_params.n_tile == 4 and p.attention.lanes == 4
    again = AcceleratorParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and again.digest() == p.digest()
    assert p.replace(gemm_instances=3).digest() != p.digest()
    assert AcceleratorParams.from_strings({**SMALL, "attention.lanes": "8"}).digest() != p.digest()


@pytest.mark.parametrize("items, message", [
    ({"gemm.n_tile": "999"}, "accelerator.gemm.n_tile must be an integer in 1..256, not 999"),
    ({"gemm": "systolic", "gemm.n_tile": "4"}, "accelerator.gemm (systolic) has no parameter 'n_tile'"),
    ({"attention.lanes": "5"}, "accelerator.attention.lanes must be a divisor of head_dim (64), not 5"),
    ({"gemm": "tpu"}, "accelerator.gemm must be one of 'systolic', 'lut_mpgemm', 'mac_mpgemm', not 'tpu'"),
    ({"gemm_instances": "9"}, "accelerator.gemm_instances must be an integer in 1..8, not 9"),
    ({"vector.lanes": "65"}, "accelerator.vector.lanes must be an integer in 1..64, not 65"),
    ({"memory.ports": "4"}, "accelerator has no nested part 'memory'; known: gemm, attention, vector"),
])
def test_bad_nested_values_name_the_nested_field(items, message):
    with pytest.raises(ValueError) as info:
        AcceleratorParams.from_strings(items)
    assert message in str(info.value)
    proc = _cli("estimate", "accelerator", *[f"--set={k}={v}" for k, v in items.items()],
                "--workload", "llama2-7b-decode")
    assert proc.returncode == 2 and proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert message.split(" must")[0].split(" has")[0] in proc.stderr


@pytest.mark.parametrize("workload, headline", [("bitnet-b1.58-3b-decode", "tokens_per_s"),
                                                ("bitnet-b1.58-2b4t-prefill", "ttft_s"),
                                                ("llama2-7b-w4g128-decode", "tokens_per_s")])
def test_estimate_lists_every_op_and_they_sum_to_the_latency(workload, headline):
    proc = _cli("estimate", "accelerator", "--set", "gemm.n_tile=64", "--set", "attention.lanes=4",
                "--workload", workload, "--target", "kv260", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in (headline, "latency_s", "roofline_tokens_per_s", "fits", "lut", "ff", "dsp", "bram",
                "energy_per_token_j", "ops"):
        assert key in doc, key
    ops = doc["ops"]
    assert sum(o["count"] * o["seconds"] for o in ops) == pytest.approx(doc["latency_s"], rel=1e-9)
    engines = {o["engine"] for o in ops}
    assert engines == {"gemm", "attention", "vector", "transfer"}
    names = {o["name"] for o in ops}
    assert {"lm_head", "kv_write", "attention", "attn_norm", "rope", "ffn_act", "attn_residual"} <= names
    assert all(o["bound"] in ("compute", "memory") for o in ops)
    assert doc["tokens_per_s"] <= doc["roofline_tokens_per_s"]
    if headline == "ttft_s":
        assert doc["ttft_s"] == doc["latency_s"]
    assert doc["model"]["engines"]["vector"] == "cost_models.vector"      # the RTL's own model


def _random_designs(workload, target, n: int, seed: int):
    space = ACC.space(workload, {}, {})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    rows = [space.suggest(study.ask()) for _ in range(n)]
    return ACC.price(space.columns(rows), workload, get_target(target))


@pytest.mark.parametrize("workload", ["bitnet-b1.58-3b-decode", "llama3-8b-decode", "opt-6.7b-prefill",
                                      "llama2-7b-w4g128-decode"])
@pytest.mark.parametrize("target", ["kv260", "ecp5-85k", "u280", "asic-45nm"])
def test_no_design_is_priced_above_the_roofline(workload, target):
    m = _random_designs(load(workload), target, 300, seed=len(workload) + len(target))
    assert np.all(m["tokens_per_s"] <= m["roofline_tokens_per_s"] * (1 + 1e-9))
    assert np.all(m["latency_s"] >= m["offchip_bytes"] / (TARGETS[target].offchip_gbytes_s * 1e9) * (1 - 1e-9))
    assert np.all(m["offchip_bytes"] >= load(workload).min_offchip_bytes() * (1 - 1e-9))


def test_replicas_add_resources_and_split_the_work():
    wl, target = load("llama2-7b-decode"), get_target("kv260")
    one = ACC.design(wl, {"gemm.n_tile": "16", "attention.lanes": "8"})
    two = one.replace(gemm_instances=2, attention_instances=2)
    m = ACC.price(AcceleratorParams.columns([one, two]), wl, target, breakdown=True)
    base = AcceleratorParams.columns([one.replace(gemm_instances=1, attention_instances=1,
                                                  vector=one.vector.replace(lanes=1))])
    assert m["lut"][1] > m["lut"][0] and m["dsp"][1] >= m["dsp"][0]
    ops = {o["name"]: o for o in m["ops"]}
    assert ops["attention"]["seconds"][1] < ops["attention"]["seconds"][0]
    assert ops["q_proj"]["seconds"][1] <= ops["q_proj"]["seconds"][0]
    assert ACC.price(base, wl, target)["lut"][0] < m["lut"][0]


def test_every_preset_explores_with_every_family_whose_ops_it_has(tmp_path):
    """Each preset's pins give every family a space, and the rules hold across pins (head_dim 100)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in preset_names():
        wl = load(name)
        for family in FAMILIES.values():
            if family.op_type is not None and not wl.kind_ops(family.op_type):
                continue
            try:
                space = family.space(wl, {}, {})
            except ValueError as exc:           # the mpGEMM engines take at most 4-bit weights; the
                assert (("1..4-bit" in str(exc) and wl.weight_bits > 4)   # vector RTL lacks RoPE and LayerNorm
                        or (family.name == "vector" and "RTL does not run" in str(exc))), (name, family.name, exc)
                continue
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
            rows = [space.suggest(study.ask()) for _ in range(40)]
            metrics = family.price(space.columns(rows), wl, get_target("kv260"))
            assert np.all(np.isfinite(metrics["latency_s"])), (name, family.name)
            if family.name == "attention":      # lanes sampled only among divisors of head_dim
                assert all(wl.model.head_dim % r["lanes"] == 0 for r in rows), name


def test_attention_explores_a_head_dim_100_model_with_nothing_set(tmp_path):
    proc = _cli("explore", "--family", "attention", "--workload", "bitnet-b1.58-3b-decode", "--target",
                "ecp5-85k", "--trials", "40", "--batch", "20", "--top", "0", "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(tmp_path / "r" / "trials.parquet")
    assert set(frame["lanes"]) <= {1, 2, 4, 5, 10, 20, 25, 50}
    proc = _cli("estimate", "attention", "--set", "lanes=5", "--workload", "bitnet-b1.58-3b-decode", "--json")
    assert proc.returncode == 0, proc.stderr


def test_a_set_that_contradicts_the_workload_is_refused(tmp_path):
    proc = _cli("explore", "--family", "lut_mpgemm", "--workload", "llama2-7b-decode", "--set", "w_bits=1",
                "--trials", "5", "--out", str(tmp_path / "never"))
    assert proc.returncode == 2
    assert "w_bits=1 contradicts workload llama2-7b-decode, which fixes w_bits=4" in proc.stderr
    assert not (tmp_path / "never").exists()


def test_explore_of_the_accelerator_end_to_end(tmp_path):
    out = tmp_path / "acc"
    proc = _cli("explore", "--family", "accelerator", "--workload", "bitnet-b1.58-2b4t-decode", "--target", "kv260",
                "--trials", "60", "--batch", "30", "--top", "1", "--objectives", "tokens_per_s,energy,area",
                "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["trials"] == 60 and doc["pareto"] >= 1
    frame = pd.read_parquet(out / "trials.parquet")
    assert set(frame["gemm"]) <= {"systolic", "lut_mpgemm", "mac_mpgemm"} and frame["gemm"].nunique() >= 2
    front = pd.read_csv(out / "pareto.csv")
    assert (front["tokens_per_s"] <= front["roofline_tokens_per_s"] * (1 + 1e-9)).all()
    designs = list((out / "designs").glob("af_accelerator_*/manifest.json"))
    assert len(designs) == 1
    manifest = json.loads(designs[0].read_text())
    assert manifest["family"] == "accelerator" and manifest["params"]["attention.head_dim"] == 128
    for name in ("breakdown.png", "roofline.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.html").read_text()              # Xilinx fits have no place and route: Fmax only
    assert text.index("<b>Not fitted:</b>") < text.index("<h2>Pareto front</h2>")
    assert "fmax_mhz of vector;" in text and "lut, ff" not in text and "modelled without RTL" not in text
    proc = _cli("report", str(out))
    assert proc.returncode == 0, proc.stderr


def test_generated_top_lints_clean(tmp_path):
    params = AcceleratorParams.from_strings(SMALL)
    artifact = render(params, build)
    names = {p.name for p in artifact.ports}
    assert {"gemm0__start", "gemm1__start", "attention0__start", "attention0__o_stream__valid"} <= names
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


@pytest.mark.sim
def test_verify_runs_each_engine_bench_through_the_top():
    proc = _cli("verify", "accelerator", *[f"--set={k}={v}" for k, v in SMALL.items()], "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] and [e["family"] for e in doc["engines"]] == ["mac_mpgemm", "attention"]
    for engine in doc["engines"]:
        assert engine["tests"] >= 7 and engine["cycles_match"] and not engine["mismatches"]
        assert "af_accelerator_" in engine["log"]


@pytest.mark.sim
def test_the_axi_wrapped_accelerator_runs_each_engine_through_its_own_control_port(tmp_path):
    """A composed design wrapped in AXI: one AXI4-Lite port, streams and interrupt per engine,
    every engine's AXI bench run through the one top, its wrapper latency exact."""
    proc = _cli("verify", "accelerator", *[f"--set={k}={v}" for k, v in SMALL.items()], "--interface", "axi",
                "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] and [e["family"] for e in doc["engines"]] == ["mac_mpgemm", "attention"]
    for engine in doc["engines"]:
        assert engine["tests"] == 3 and engine["cycles_match"] and len(engine["measured_cycles"]) == 6
        assert "af_accelerator_" in engine["log"] and "_axi-" in engine["log"]
    params = AcceleratorParams.from_strings(SMALL)
    artifact = render_axi(params, build)
    names = {p.name for p in artifact.ports}
    assert {"gemm0_s_axi_control_awaddr", "gemm1_m_axis_y_tlast", "attention0_irq", "aclk"} <= names
    assert sorted(artifact.extra["axi"]["engines"]) == ["attention0", "gemm0", "gemm1"]
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


@pytest.mark.parametrize("family, workload, items, says", [
    ("lut_mpgemm", "llama2-7b-decode", ["w_bits=1"], "--set lut_mpgemm.w_bits=1 contradicts workload llama2-7b-decode, which fixes w_bits=4"),
    ("lut_mpgemm", "bitnet-b1.58-3b-decode", ["weight_format=uint"], "which fixes weight_format=ternary"),
    ("systolic", "bitnet-b1.58-3b-decode", ["a_bits=4", "w_bits=8"], "which fixes a_bits=8"),
    ("attention", "llama2-7b-decode", ["head_dim=64"], "which fixes head_dim=128"),
    ("attention", "llama2-7b-decode", ["max_seq_len=64"], "which fixes max_seq_len=1024"),
    ("accelerator", "llama2-7b-decode", ["attention.head_dim=64"], "--set accelerator.attention.head_dim=64 contradicts"),
])
def test_every_set_that_contradicts_the_workload_is_refused(tmp_path, family, workload, items, says):
    sets = [f"--set={i}" for i in items]
    proc = _cli("explore", "--family", family, "--workload", workload, *sets, "--trials", "5",
                "--out", str(tmp_path / "never"))
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "never").exists()


def test_block_ram_budget_is_a_constraint(tmp_path):
    """On the small ECP5 (56 block RAMs) no design over the budget is called feasible."""
    out = tmp_path / "bram"
    proc = _cli("explore", "--family", "attention", "--workload", "llama2-7b-decode", "--target", "ecp5-25k",
                "--trials", "80", "--batch", "40", "--top", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out / "trials.parquet")
    assert (frame["bram"] > 56).any(), "the sample should hold designs over the budget"
    assert not frame[frame["bram"] > 56]["feasible"].any()


def test_a_report_names_each_figure_whose_coefficients_were_never_fitted():
    """The attention engine was never fitted to transistor counts, and no engine's Fmax on
    Xilinx (no place and route here); ECP5's figures are all fitted."""
    from types import SimpleNamespace

    from dse.report import calibration_frame, not_fitted

    def named(target):
        return not_fitted(calibration_frame(SimpleNamespace(target=get_target(target), family=ACC)))

    assert named("asic-45nm") == "transistors of attention"
    assert named("kv260") == "; ".join(f"fmax_mhz of {e}" for e in ACC.model_info()["engines"])
    assert named("ecp5-85k") == ""
