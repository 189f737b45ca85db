"""The explorer end to end: sweeps in SQLite and PostgreSQL, resume after a kill, bad input."""
from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from cost_models.targets import get_target
from dse.evaluate import pareto_mask
from dse.explorer import CONSTRAINTS, ExploreConfig, Explorer
from dse.space import derive
from dse.workloads import load
from generators.params import Params, int_field
from generators.systolic import SystolicParams

ROOT = Path(__file__).resolve().parents[1]
BASE = ["explore", "--family", "systolic", "--workload", "bitnet-b1.58-3b-decode", "--target", "ecp5-85k"]


def _cli(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def _study(url: str) -> optuna.Study:
    """The storage's one study, whatever the run named it."""
    return optuna.load_study(study_name=None, storage=url)


def _assert_clean(study: optuna.Study, expected: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == expected
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(expected))
    origins = [t.user_attrs["origin"] for t in trials]
    assert len(set(origins)) == expected, "a trial was stored twice"


def test_small_sweep_writes_every_output(tmp_path):
    out = tmp_path / "run"
    proc = _cli(*BASE, "--trials", "120", "--batch", "40", "--top", "1", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["trials"] == 120 and doc["pinned"] == {"a_bits": 8, "w_bits": 2, "signed": True}
    for name in ("trials.parquet", "trials.csv", "pareto.csv", "pareto.png", "report.html", "study.db"):
        assert (out / name).stat().st_size > 0, name
    frame = pd.read_parquet(out / "trials.parquet")
    assert len(frame) == 120 and frame["trial"].is_unique
    front = pd.read_csv(out / "pareto.csv")
    feasible = frame[frame["feasible"]]
    objectives = ["latency_s", "energy_per_token_j", "area"]
    exact = feasible[pareto_mask(feasible[objectives].to_numpy(), ("minimize",) * 3)]
    assert set(front["trial"]) == set(exact["trial"]) and len(front) > 0
    design = next((out / "designs").iterdir())
    manifest = json.loads((design / "manifest.json").read_text())
    assert manifest["explore"]["workload"] == "bitnet-b1.58-3b-decode"
    assert (design / f"{manifest['top']}.v").exists()
    assert "<img src=\"data:image/png;base64," in (out / "report.html").read_text()
    _assert_clean(_study(f"sqlite:///{out / 'study.db'}"), 120)
    target = get_target("ecp5-85k")                 # area: the resource the design exhausts first
    used = frame[["lut", "ff", "dsp", "bram"]].to_numpy() / [target.luts, target.ffs, target.dsps, target.brams]
    assert np.allclose(frame["area"], used.max(axis=1))


def test_each_tradeoff_panel_marks_its_own_two_axis_front():
    """A design beaten on both of a panel's axes is never marked, though it may be on the study's
    own front over other objectives; every unbeaten design is."""
    from dse.report import TRADEOFFS, panel_front

    rng = np.random.default_rng(5)
    designs = pd.DataFrame({"area": rng.uniform(0.01, 1, 300), "tokens_per_s": rng.uniform(0.01, 20, 300),
                            "energy_per_token_j": rng.uniform(0.1, 50, 300)})
    for x, y, _, _, directions in TRADEOFFS:
        sx, sy = (1 if d == "minimize" else -1 for d in directions)
        marked = panel_front(designs, x, y, directions)
        for i, row in designs.iterrows():
            beaten = ((sx * designs[x] <= sx * row[x]) & (sy * designs[y] <= sy * row[y])
                      & ((designs[x] != row[x]) | (designs[y] != row[y]))).any()
            assert (i in marked.index) == (not beaten), (x, y, i)


def test_the_report_links_designs_says_where_figures_come_from_and_reuses_verilog(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "40", "--batch", "20", "--top", "1", "--out", str(out)).returncode == 0
    text = (out / "report.html").read_text()
    design = next((out / "designs").iterdir())
    top = json.loads((design / "manifest.json").read_text())["top"]
    assert f'href="designs/{design.name}/{top}.v"' in text and f'href="designs/{design.name}/manifest.json"' in text
    assert "Where the figures come from" in text and "held-out error" in text     # systolic on ECP5 is fitted
    assert "device utilisation" in text and 'alt="tradeoffs"' in text
    assert "<b>Not fitted:</b>" not in text or "fmax_mhz of systolic" in text
    head = re.findall(r"<th>([^<]*)</th>", text[text.index("<h2>Pareto front</h2>"):])
    assert head[0] == "hash" and max(head.index(c) for c in ("latency_s", "area", "fmax_mhz")) < head.index("rows")
    verilog = design / f"{top}.v"
    stamp = verilog.stat().st_mtime_ns
    assert _cli("report", str(out), "--top", "1").returncode == 0
    assert verilog.stat().st_mtime_ns == stamp       # nothing changed: the Verilog is not generated again


def test_area_on_an_fpga_is_the_resource_it_exhausts_first():
    t = get_target("kv260")
    area = t.area(np.array([100, t.luts // 2]), np.array([100, 100]), np.array([t.dsps - 48, 0]),
                  np.array([0, 0]), np.zeros(2))
    assert area == pytest.approx([(t.dsps - 48) / t.dsps, (t.luts // 2) / t.luts])


def _kill_mid_run(out: Path, flags: list[str], stored_at_least: int, timeout: float) -> str:
    """Start an explore in ``out``, SIGKILL it once the study holds ``stored_at_least`` trials;
    returns the study's URL."""
    argv = [sys.executable, "-m", "dse.cli", *BASE, *flags, "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"sqlite:///{out / 'study.db'}"
    deadline = time.time() + timeout            # generous: a loaded machine (Verilator builds) is slow
    while time.time() < deadline:
        time.sleep(0.5)
        assert proc.poll() is None, "the explore ended before it was killed"
        try:
            if len(_study(url).get_trials(deepcopy=False)) >= stored_at_least:
                break
        except Exception:                     # study not created yet
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return url


def test_resume_after_kill_neither_loses_nor_duplicates(tmp_path):
    out = tmp_path / "run"
    url = _kill_mid_run(out, ["--trials", "600", "--batch", "10"], 30, 120)
    stored = len(_study(url).get_trials(deepcopy=False))
    assert 0 < stored < 600, "the kill should land mid-run"
    done = _cli(*BASE, "--trials", "200", "--batch", "10", "--out", str(out))
    assert done.returncode == 0, done.stderr
    _assert_clean(_study(url), max(stored, 200))


def test_workers_die_with_their_killed_parent_and_the_resume_is_exact(tmp_path):
    out = tmp_path / "run"
    url = _kill_mid_run(out, ["--trials", "1000", "--batch", "10", "--workers", "2", "--top", "0"], 40, 600)
    for _ in range(60):                        # the orphans stop within a second or two
        time.sleep(0.5)
        first = len(_study(url).get_trials(deepcopy=False))
        time.sleep(1.0)
        if len(_study(url).get_trials(deepcopy=False)) == first:
            break
    stored = len(_study(url).get_trials(deepcopy=False))
    assert 0 < stored < 1000, "the kill should land mid-run"
    for _ in range(20):
        done = _cli(*BASE, "--trials", str(stored + 30), "--batch", "10", "--top", "0", "--out", str(out))
        if "still stopping" not in done.stderr:
            break
        time.sleep(0.5)
    assert done.returncode == 0, done.stderr
    time.sleep(2.0)                            # nothing writes after the resume has ended
    _assert_clean(_study(url), stored + 30)


def test_workers_share_one_sqlite_study(tmp_path):
    out = tmp_path / "run"
    proc = _cli(*BASE, "--trials", "90", "--batch", "10", "--workers", "2", "--top", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    _assert_clean(_study(f"sqlite:///{out / 'study.db'}"), 90)


def test_report_rebuilds_from_storage(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "60", "--top", "0", "--out", str(out)).returncode == 0
    (out / "pareto.csv").unlink()
    (out / "report.html").unlink()
    proc = _cli("report", str(out), "--top", "0")
    assert proc.returncode == 0, proc.stderr
    assert (out / "pareto.csv").exists() and (out / "report.html").exists()


def test_changed_settings_on_an_existing_study_are_refused(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "20", "--top", "0", "--out", str(out)).returncode == 0
    proc = _cli(*BASE[:-2], "--target", "xilinx-7", "--trials", "20", "--out", str(out))
    assert proc.returncode == 2 and "holds another exploration (target" in proc.stderr


def test_grid_finds_the_exact_front_of_a_pinned_space(tmp_path):
    cfg = ExploreConfig(family="systolic", workload="bitnet-b1.58-3b-decode", target="ecp5-85k", trials=1,
                        sampler="grid", out=str(tmp_path / "g"), pins={"k_max": "256", "dataflow": "os"})
    explorer = Explorer(cfg)
    assert explorer.space.size() == 64 * 64
    explorer.run()
    stored = explorer.open_study().get_trials(deepcopy=False)
    rows = [dict(rows=r, cols=c) for r in range(1, 65) for c in range(1, 65)]
    priced = explorer.evaluate_rows(rows)
    values = np.array([p.values for p in priced if all(c <= 0 for c in p.constraints)])
    assert len(stored) == int(pareto_mask(values, ("minimize",) * 3).sum())


def test_space_follows_the_params_declaration():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Toy(Params):
        family = "toy"
        depth: int = int_field(4, 1, 8, doc="a new knob")
        width: int = int_field(2, 1, 3, doc="another", search=False)

    space = derive(Toy, {})
    assert [d.name for d in space.dimensions] == ["depth"] and space.size() == 8
    systolic = derive(SystolicParams, {"a_bits": 8})
    names = {d.name for d in systolic.dimensions}
    assert names == {"rows", "cols", "w_bits", "signed", "dataflow", "k_max", "m_tile"}
    assert systolic.distributions()["k_max"].log


def test_workload_presets_expand_into_the_published_shapes():
    wl = load("llama3-8b-decode")
    shapes = {op.gemm.name: (op.gemm.m, op.gemm.n, op.gemm.k) for op in wl.gemms}
    assert shapes["k_proj"] == (1, 1024, 4096)            # 8 KV heads x 128
    assert shapes["down_proj"] == (1, 4096, 14336)
    assert shapes["lm_head"] == (1, 128256, 4096)        # the vocabulary, once per token
    assert all(op.count == (1 if op.gemm.name == "lm_head" else 32) for op in wl.gemms)
    prefill = load("opt-6.7b-prefill")
    assert {op.gemm.name for op in prefill.gemms} == {"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2",
                                                      "lm_head"}
    assert prefill.gemms[0].gemm.m == 128
    assert {op.gemm.name: op.gemm.m for op in prefill.gemms}["lm_head"] == 1   # the last position only


@pytest.mark.parametrize("text, suffix, message", [
    ('model = "llama2-7b"\nphase = "decode"\nbatchsize = 4\n', ".toml", "unknown key 'batchsize'"),
    ('model = "llama2-7b"\nphase = "train"\n', ".toml", "phase must be 'prefill' or 'decode', not 'train'"),
    ('model = "llama2-7b"\nphase = "decode"\nbatch = 0\n', ".toml", "workload.batch must be an integer in 1..4096"),
    ('model = {hidden = 4096, ffn = 11008, heads = 32, kv_heads = 32, layers = "x"}\nphase = "decode"\n',
     ".toml", "model.layers must be an integer"),
    ('model: llama2-7b\nphase: [decode\n', ".yaml", "line 3"),
    ('model: {hidden: 4096, ffn: 11008, heads: 32, kv_heads: 32, layers: 32, gated_ffn: "no"}\nphase: decode\n',
     ".yaml", "model.gated_ffn must be true or false, not 'no'"),
    ('model = {hidden = 4096, ffn = 11008, heads = 32, kv_heads = 32, layers = 32, norm = "batch"}\n'
     'phase = "decode"\n', ".toml", "model.norm must be one of 'rms', 'layer', not 'batch'"),
    ('model = "llama2-7b\n', ".toml", "line 1"),
])
def test_bad_workload_file_names_the_key_or_line(tmp_path, text, suffix, message):
    path = tmp_path / f"wl{suffix}"
    path.write_text(text)
    proc = _cli("explore", "--family", "systolic", "--workload", str(path), "--trials", "5",
                "--out", str(tmp_path / "never"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_custom_workload_file_runs(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("model: {hidden: 512, ffn: 1024, heads: 8, kv_heads: 8, layers: 2, weight_bits: 4}\n"
                    "phase: prefill\nbatch: 2\nseq_len: 16\n")
    proc = _cli(*BASE[:4], str(path), "--trials", "30", "--top", "0", "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pinned"]["w_bits"] == 4


@pytest.mark.parametrize("flags, message", [
    (["--trials", "0"], "explore.trials must be an integer in 1..1000000, not 0"),
    (["--sampler", "cmaes"], "explore.sampler must be one of nsga2, tpe, random, grid"),
    (["--objectives", "speed"], "objectives must be 1 to 3 distinct names"),
    (["--workers", "0"], "explore.workers must be an integer in 1..64"),
    (["--set", "rows=100"], "systolic.rows must be an integer in 1..64, not 100"),
    (["--sampler", "grid"], "grid needs a space of at most"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, flags, message):
    proc = _cli(*BASE, "--out", str(tmp_path / "never"), *flags)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries are missing; `make test` installs Debian's postgresql")
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="accelforge-pg-"))   # pytest's own tmp is private to root
    data = base / "data"
    if os.geteuid() == 0:                 # initdb refuses root; the cluster belongs to postgres
        shutil.chown(base, "postgres")
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "af"]),
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                                 "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "af", "study"],
                       check=True, capture_output=True)
        yield f"postgresql://af:s3cret-pw@127.0.0.1:{port}/study"   # the README form; trust auth ignores the password
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_workers_neither_lose_nor_duplicate_trials(postgres_url, tmp_path):
    proc = _cli(*BASE, "--trials", "150", "--batch", "10", "--workers", "3", "--storage", postgres_url,
                "--top", "0", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    _assert_clean(_study(postgres_url), 150)
    again = _cli(*BASE, "--trials", "200", "--batch", "25", "--workers", "2", "--storage", postgres_url,
                 "--top", "0", "--out", str(tmp_path / "run"))
    assert again.returncode == 0, again.stderr
    _assert_clean(_study(postgres_url), 200)


@pytest.mark.sim
@pytest.mark.synth
def test_top_designs_are_verified_and_synthesized(tmp_path):
    out = tmp_path / "run"
    proc = _cli("explore", "--family", "systolic", "--workload", "llama2-7b-decode", "--target", "xilinx-7",
                "--trials", "20", "--set", "rows=2", "--set", "cols=2", "--range", "k_max=4..16",
                "--verify-top", "1", "--synth-top", "1", "--top", "1", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    checks = json.loads(proc.stdout)["checks"]
    verified, synthesized = checks["verify"][0], checks["synth"][0]
    assert verified["passed"] and verified["cycle_mismatches"] == 0 and verified["tests"] == 6
    assert synthesized["target"] == "xilinx-7" and synthesized["lut_measured"] > 0
    assert synthesized["lut_predicted"] > 0 and synthesized["dsp_measured"] == synthesized["dsp_predicted"]
    text = (out / "report.html").read_text()
    assert "verify of the top designs" in text and "synth of the top designs" in text


@pytest.mark.parametrize("family", ["lut_mpgemm", "mac_mpgemm"])
def test_mpgemm_families_explore_with_workload_formats(tmp_path, family):
    """BitNet pins ternary weights; ruled-out combinations are stored but never feasible."""
    out = tmp_path / family
    proc = _cli("explore", "--family", family, "--workload", "bitnet-b1.58-3b-decode", "--target",
                "ecp5-85k", "--trials", "80", "--batch", "40", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["pinned"] == {"a_bits": 8, "weight_format": "ternary", "w_bits": 2}
    frame = pd.read_parquet(out / "trials.parquet")
    assert len(frame) == 80 and frame["feasible"].any()
    if family == "lut_mpgemm":          # only one plane for ternary weights
        assert not frame[frame["planes_per_cycle"] > 1]["feasible"].any()
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) > 0 and (front["hash"].str.len() == 10).all()
    bad = _cli("explore", "--family", family, "--workload", "opt-6.7b-decode", "--trials", "5",
               "--out", str(tmp_path / "opt"))
    assert bad.returncode == 2 and "1..4-bit or ternary weights" in bad.stderr


def test_attention_family_explores_the_attention_ops(tmp_path):
    """The workload pins the head dimension, the context and causality; the designs price attention."""
    out = tmp_path / "attention"
    proc = _cli("explore", "--family", "attention", "--workload", "llama3-8b-prefill", "--target",
                "ecp5-85k", "--trials", "60", "--batch", "30", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["pinned"] == {"head_dim": 128, "max_seq_len": 128, "causal": True, "q_bits": 8, "k_bits": 8,
                             "v_bits": 8}
    frame = pd.read_parquet(out / "trials.parquet")
    assert len(frame) == 60 and frame["feasible"].any()
    assert not frame[(128 % frame["lanes"]) != 0]["feasible"].any()
    assert len(pd.read_csv(out / "pareto.csv")) > 0
    long = tmp_path / "long.toml"
    long.write_text('model = "llama2-7b"\nphase = "decode"\nbatch = 1\nseq_len = 40000\n')
    bad = _cli("explore", "--family", "attention", "--workload", str(long), "--trials", "5",
               "--out", str(tmp_path / "never"))
    assert bad.returncode == 2 and "contexts of 1..16384 keys (max_seq_len)" in bad.stderr
    assert "40000" in bad.stderr and not (tmp_path / "never").exists()


def test_report_and_out_refuse_bad_input_without_writing(tmp_path):
    run = tmp_path / "run"
    assert _cli(*BASE, "--trials", "20", "--batch", "10", "--top", "0", "--out", str(run)).returncode == 0
    for top in ("-1", "100000"):
        proc = _cli("report", str(run), "--top", top)
        assert proc.returncode == 2 and f"--top must be an integer in 0..50, not {top}" in proc.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    proc = _cli("report", str(broken))
    assert proc.returncode == 2 and "run.json is not a valid run file" in proc.stderr
    (broken / "run.json").write_text(json.dumps({"family": "systolic"}))
    proc = _cli("report", str(broken))
    assert proc.returncode == 2 and "run.json is not a valid run file: explore.workload is missing" in proc.stderr
    nostudy = tmp_path / "nostudy"
    nostudy.mkdir()
    shutil.copy(run / "run.json", nostudy / "run.json")
    proc = _cli("report", str(nostudy))
    assert proc.returncode == 2 and "holds no study.db" in proc.stderr
    assert not (nostudy / "study.db").exists()
    proc = _cli(*BASE, "--trials", "5", "--out", "")
    assert proc.returncode == 2 and "--out must name a folder, not an empty string" in proc.stderr


def test_grid_run_again_stores_its_front_once(tmp_path):
    args = [*BASE, "--sampler", "grid", "--set", "dataflow=os", "--set", "k_max=256", "--range", "rows=1..4",
            "--range", "cols=1..8", "--top", "0", "--out", str(tmp_path / "grid")]
    counts = []
    for _ in range(2):
        assert _cli(*args).returncode == 0
        counts.append(len(_study(f"sqlite:///{tmp_path / 'grid' / 'study.db'}").trials))
    assert counts[0] == counts[1] > 0


def test_the_dashboard_and_optuna_see_the_objectives_and_the_fit_constraints(tmp_path):
    out = tmp_path / "named"
    assert _cli(*BASE, "--trials", "60", "--batch", "20", "--top", "0", "--objectives", "latency,area",
                "--out", str(out)).returncode == 0
    study = _study(f"sqlite:///{out / 'study.db'}")
    assert study.metric_names == ["latency_s", "area"]
    assert study.user_attrs["constraint_names"] == ["lut", "ff", "dsp", "bram", "lutram", "params"]
    trials = study.get_trials(deepcopy=False)
    assert all(set(t.constraints) == set(CONSTRAINTS) for t in trials)   # named, as the dashboard reads them
    frame = pd.read_parquet(out / "trials.parquet")
    assert 0 < frame["feasible"].sum() < len(frame), "the check needs designs that do not fit"
    front = pd.read_csv(out / "pareto.csv")
    best = {tuple(t.values) for t in study.best_trials}                   # Optuna's own constrained front
    assert best == set(map(tuple, front[["latency_s", "area"]].to_numpy()))


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path):
    from dse.storage import make_storage, store_batch

    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"), study_name="s")
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    good = [optuna.trial.create_trial(params={"x": i}, distributions=dist, value=float(i)) for i in range(3)]
    store_batch(study, good)
    bad = good + [optuna.trial.create_trial(params={"x": 1}, distributions=dist, value=1.0,
                                            user_attrs={"not json": object()})]
    with pytest.raises(Exception):
        store_batch(study, bad)                 # the fourth trial fails after three were written
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").trials) == 3


def test_a_stored_batch_reads_back_as_optunas_own_writer_stores_it(tmp_path):
    """store_batch writes Optuna's tables itself, in a few multi-row statements: what a study
    reads back (numbers, states, values, infinite ones too, parameters of every distribution,
    attributes, times) equals what ``Study.add_trials`` stores, and a parameter whose
    distribution clashes with the stored one is refused as Optuna refuses it."""
    from dse.storage import make_storage, store_batch

    dists = {"n": optuna.distributions.IntDistribution(1, 64, log=True),
             "kind": optuna.distributions.CategoricalDistribution(["lut", "mac", None]),
             "f": optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25)}
    trials = [optuna.trial.create_trial(
        params={"n": 2 ** (i % 7), "kind": ["lut", "mac", None][i % 3], "f": 0.25 * (i % 5)}, distributions=dists,
        values=[float(i), [1.5, math.inf, -math.inf][i % 3]], user_attrs={"i": i, "tag": f"t{i}", "none": None},
        system_attrs={"constraints": [float(i) - 3.0, -1.0]}) for i in range(7)]
    studies = []
    for name, write in (("ours", lambda st, ts: store_batch(st, ts)), ("optuna", lambda st, ts: st.add_trials(ts))):
        study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / name}.db"), study_name=name,
                                    directions=["minimize", "maximize"])
        write(study, trials[:3])
        write(study, trials[3:])                       # numbered on from what is stored
        studies.append(optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / name}.db"))

    def fields(t):
        return (t.number, t.state, t.values, t.params, t.distributions, t.user_attrs, t.system_attrs,
                t.datetime_start, t.datetime_complete, t.intermediate_values)
    ours, theirs = ([fields(t) for t in s.get_trials()] for s in studies)
    assert len(ours) == 7 and ours == theirs
    clash = optuna.trial.create_trial(params={"n": 3}, distributions={"n": optuna.distributions.FloatDistribution(0, 9)},
                                      values=[0.0, 0.0])
    with pytest.raises(ValueError, match="different distribution"):
        store_batch(studies[0], [clash])
    assert len(studies[0].get_trials()) == 7


_OPEN_TOGETHER = """
import json, sys, time
from dse.storage import make_storage
for url, start in json.loads(sys.argv[1]):
    while time.time() < start:          # every process reaches the new database together
        pass
    try:
        make_storage(url)
        print("opened")
    except ValueError as exc:
        print(exc)
"""


def test_processes_opening_a_new_database_at_once_all_get_it(tmp_path):
    """Workers starting together race to create the tables; each must open the study, not
    stop with "table studies already exists" (before the retry, 9 of 10 such starts lost one)."""
    begin = time.time() + 5.0                   # after the interpreters have imported Optuna
    plan = json.dumps([(f"sqlite:///{tmp_path / f'{k}.db'}", begin + 0.5 * k) for k in range(5)])
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_TOGETHER, plan], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    outcomes = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outcomes]
    assert [out.split("\n")[:5] for out, _ in outcomes] == [["opened"] * 5] * 4


def test_each_distinct_design_is_priced_once(tmp_path, monkeypatch):
    import dse.explorer as explorer_module

    priced = []

    def counting(family, columns, workload, target):
        priced.append(len(next(iter(columns.values()))))
        return explorer_module.evaluate.__wrapped__(family, columns, workload, target)

    counting.__wrapped__ = explorer_module.evaluate
    monkeypatch.setattr(explorer_module, "evaluate", counting)
    cfg = ExploreConfig(family="systolic", workload="bitnet-b1.58-3b-decode", target="ecp5-85k", trials=120,
                        batch=20, out=str(tmp_path / "run"), pins={"dataflow": "os"},
                        ranges={"rows": (1, 2), "cols": (1, 4), "k_max": (1, 4)})
    Explorer(cfg).run()
    distinct = {tuple(sorted(t.params.items())) for t in _study(cfg.storage_url()).trials}
    assert sum(priced) == len(distinct) < 120
    priced.clear()
    Explorer(dataclasses.replace(cfg, trials=180)).run()     # a resume knows the stored designs' prices
    distinct_after = {tuple(sorted(t.params.items())) for t in _study(cfg.storage_url()).trials}
    assert sum(priced) == len(distinct_after - distinct)


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    """The reader is gone before the command writes (`| true`), as `| head -1` can be."""
    for command in ("params attention", "estimate systolic --json"):
        proc = subprocess.run(["bash", "-c", f"{sys.executable} -m dse.cli {command} | true"],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("url, says", [
    ("postgresql://af:s3cret-pw@127.0.0.1:1/study", "explore.storage cannot open postgresql://af@127.0.0.1:1/study"),
    ("foo://bar", "explore.storage cannot open foo://bar"),
    ("not a url", "explore.storage cannot open <storage URL>"),
    ("sqlite:////nonexistent-folder/sub/study.db", "explore.storage cannot open sqlite:////nonexistent-folder"),
])
def test_a_storage_that_cannot_open_is_one_line_and_writes_nothing(tmp_path, url, says):
    out = tmp_path / "never"
    proc = _cli(*BASE, "--trials", "5", "--storage", url, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "s3cret-pw" not in proc.stderr and not out.exists()


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_the_storage_password_is_never_written_or_shown(postgres_url, tmp_path, form):
    public = postgres_url.replace(":s3cret-pw", "")
    url = postgres_url if form == "userinfo" else public + "?password=s3cret-pw&sslpassword=s3cret-pw"
    out = tmp_path / "run"
    proc = _cli(*BASE, "--trials", "20", "--batch", "10", "--top", "1", "--storage", url,
                "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["storage"] == public
    report = _cli("report", str(out), "--top", "1")            # reopens the study from run.json
    assert report.returncode == 0, report.stderr
    changed = _cli(*BASE, "--trials", "20", "--seed", "9", "--storage", url, "--out", str(out))
    assert changed.returncode == 2 and "other settings" in changed.stderr
    other = _cli("explore", "--family", "lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode", "--trials", "5",
                 "--out", str(out))                            # a later user, with no credentials at all
    assert other.returncode == 2 and "holds another exploration" in other.stderr
    failed = _cli(*BASE, "--trials", "5", "--storage", url.replace(str(_port(url)), "1"),
                  "--out", str(tmp_path / "never"))            # a failed connection's error line
    assert failed.returncode == 2
    texts = [proc.stdout, proc.stderr, report.stdout, report.stderr, changed.stderr, other.stderr, failed.stderr]
    texts += [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    assert not [t for t in texts if "s3cret-pw" in t]
    study = _study(public)
    assert "s3cret-pw" not in json.dumps(study.user_attrs)
    optuna.delete_study(study_name=study.study_name, storage=public)


def _port(url: str) -> int:
    from sqlalchemy.engine import make_url
    return make_url(url).port


def test_a_run_says_how_many_distinct_designs_it_priced(tmp_path):
    out = tmp_path / "distinct"
    proc = _cli(*BASE, "--trials", "200", "--batch", "50", "--top", "0", "--set", "dataflow=os",
                "--range", "rows=1..2", "--range", "cols=1..4", "--range", "k_max=1..4", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    frame = pd.read_parquet(out / "trials.parquet")
    distinct = len(frame[["rows", "cols", "k_max"]].drop_duplicates())
    assert doc["distinct"] == distinct < doc["trials"] == 200      # 32 designs: the sampler repeats
    repeated = frame[frame.duplicated(["rows", "cols", "k_max"], keep=False)]
    for _, group in repeated.groupby(["rows", "cols", "k_max"]):
        assert group["latency_s"].nunique() == 1                    # one design, one price


def test_an_out_folder_that_cannot_be_written_is_one_line(tmp_path):
    proc = _cli(*BASE, "--trials", "5", "--out", "/sys/accelforge-run")     # sysfs refuses mkdir, even to root
    assert proc.returncode == 2 and "--out '/sys/accelforge-run' cannot be written" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    locked = tmp_path / "immutable"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        return                                   # no immutable folders here (file system or capability)
    try:
        proc = _cli(*BASE, "--trials", "5", "--out", str(locked / "run"))
        assert proc.returncode == 2 and "cannot be written" in proc.stderr, proc.stderr
    finally:
        subprocess.run(["chattr", "-i", str(locked)])
    assert not list(locked.iterdir())


def test_a_run_folder_is_not_written_over_by_another_exploration(tmp_path):
    first = tmp_path / "first"
    assert _cli(*BASE, "--trials", "20", "--batch", "10", "--top", "0", "--out", str(first)).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    other = ["explore", "--family", "lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode", "--target", "ecp5-85k",
             "--trials", "20", "--top", "0"]
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    proc = _cli(*other, "--storage", elsewhere, "--out", str(first))          # its report would land here
    assert proc.returncode == 2 and "holds another exploration (family 'systolic'" in proc.stderr, proc.stderr
    proc = _cli(*other, "--storage", f"sqlite:///{first / 'study.db'}", "--study-name",
                "systolic:bitnet-b1.58-3b-decode:ecp5-85k", "--out", str(tmp_path / "second"))
    assert proc.returncode == 2 and "other settings" in proc.stderr, proc.stderr     # its trials would land here
    assert _cli(*other, "--storage", elsewhere, "--out", str(tmp_path / "third")).returncode == 0
    proc = _cli("report", str(first), "--storage", elsewhere)                  # another study's report here
    assert proc.returncode == 2 and "holds no study 'systolic:" in proc.stderr, proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == before


@pytest.mark.regress
def test_random_kills_leave_no_lost_duplicated_or_half_written_trial(tmp_path):
    """Fault injection: SIGKILL at random moments, with one or two workers, then resume (a
    minute of kills: `make regress`; `make test` kills once, mid-run, in the tests above)."""
    import random
    from collections import Counter

    out, total, rng = tmp_path / "run", 100_000, random.Random(11)
    url = f"sqlite:///{out / 'study.db'}"

    def check() -> int:
        try:
            trials = _study(url).get_trials(deepcopy=False)
        except (KeyError, ValueError):          # killed before the study was created
            return 0
        assert all(t.state is TrialState.COMPLETE and t.values is not None for t in trials)
        assert all(set(t.constraints) == set(CONSTRAINTS) and "latency_s" in t.user_attrs
                   for t in trials)
        assert sorted(t.number for t in trials) == list(range(len(trials)))
        origins = [t.user_attrs["origin"] for t in trials]
        assert len(set(origins)) == len(origins), "a trial was stored twice"
        batches = Counter(o.rsplit(":", 1)[0] for o in origins)        # worker:batch:size
        assert all(n == int(b.rsplit(":", 1)[1]) for b, n in batches.items()), "half a batch was stored"
        return len(trials)

    stored = 0
    for _ in range(5):
        workers = rng.choice((1, 2))
        argv = [sys.executable, "-m", "dse.cli", *BASE, "--trials", str(total), "--batch", "50",
                "--workers", str(workers), "--top", "0", "--out", str(out)]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(2.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for _ in range(40):                     # the orphaned workers stop within a second or two
            time.sleep(0.5)
            if not (out / "study.db").exists():
                break
            first = check()
            time.sleep(1.0)
            if check() == first:
                break
        now = check() if (out / "study.db").exists() else 0
        assert now >= stored, "a kill lost stored trials"
        stored = now
    assert stored < total, "every kill should land before the end"
    for _ in range(20):                         # the resume's quota is exact
        done = _cli(*BASE, "--trials", str(stored + 120), "--batch", "50", "--workers", "2", "--top", "0",
                    "--out", str(out))
        if "still stopping" not in done.stderr:
            break
        time.sleep(0.5)
    assert done.returncode == 0, done.stderr
    assert check() == stored + 120


def test_runs_of_other_settings_share_one_storage_each_in_a_study_of_its_own(tmp_path):
    """The study is named by family, workload and target (or --study-name); a run from before
    studies were named (run.json without one, the study called "accelforge") resumes its own."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    other = ["explore", "--family", "lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode", "--target", "ecp5-85k"]
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--storage", url, "--out", str(tmp_path / "a")).returncode == 0
    assert _cli(*other, "--trials", "10", "--top", "0", "--storage", url, "--out", str(tmp_path / "b")).returncode == 0
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert names == ["lut_mpgemm:bitnet-b1.58-3b-decode:ecp5-85k", "systolic:bitnet-b1.58-3b-decode:ecp5-85k"]
    for run in ("a", "b"):
        assert _cli("report", str(tmp_path / run)).returncode == 0
    legacy = tmp_path / "legacy"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--study-name", "accelforge", "--out", str(legacy)).returncode == 0
    stored = json.loads((legacy / "run.json").read_text())
    del stored["study_name"]                                     # as an older run wrote it
    (legacy / "run.json").write_text(json.dumps(stored))
    assert _cli(*BASE, "--trials", "20", "--top", "0", "--out", str(legacy)).returncode == 0
    legacy_url = f"sqlite:///{legacy / 'study.db'}"
    assert [s.study_name for s in optuna.get_all_study_summaries(legacy_url)] == ["accelforge"]
    assert len(_study(legacy_url).trials) == 20


def test_each_metric_is_a_user_attribute_of_its_own_and_older_trials_still_report(tmp_path):
    """optuna-dashboard sorts and plots user attributes one by one; a trial stored before kept
    one ``metrics`` table, which still reads."""
    from dse.explorer import KEPT_METRICS, stored_metrics

    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(out)).returncode == 0
    trials = _study(f"sqlite:///{out / 'study.db'}").trials
    for t in trials:
        assert {"latency_s", "tokens_per_s", "lut", "area"} <= set(t.user_attrs) and "metrics" not in t.user_attrs
        assert all(isinstance(t.user_attrs[k], (int, float, bool)) for k in KEPT_METRICS if k in t.user_attrs)
    assert stored_metrics({"origin": "w:0", "metrics": {"lut": 3.0}}) == {"lut": 3.0}
    assert stored_metrics({"origin": "w:0", "lut": 3.0, "tokens_per_s": 2.0}) == {"lut": 3.0, "tokens_per_s": 2.0}


def test_a_workload_of_another_shape_than_its_preset_says_so_in_its_name(tmp_path):
    from dse.workloads import load

    assert load("bitnet-b1.58-2b4t-decode").name == "bitnet-b1.58-2b4t-decode"
    (tmp_path / "w.toml").write_text('model = "bitnet-b1.58-2b4t"\nphase = "decode"\n')
    assert load(str(tmp_path / "w.toml")).name == "bitnet-b1.58-2b4t-decode"         # the preset's shape
    (tmp_path / "long.toml").write_text('model = "bitnet-b1.58-2b4t"\nphase = "decode"\nseq_len = 2048\n')
    assert load(str(tmp_path / "long.toml")).name == "bitnet-b1.58-2b4t-decode (batch 1, seq_len 2048)"
