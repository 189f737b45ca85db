"""What a hostile user gets: secrets masked, counts that cannot wrap, studies that stay whole,
interrupts that stop every process, output folders checked before anything is written, input
files bounded, and defaults that fit the workload. Each test fails without its fix."""
from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from cost_models.ops import MAX_OP_WORK, AttentionOp, Gemm
from cost_models.targets import TARGETS, get_target
from dse import cli
from dse.explorer import ExploreConfig
from dse.families import FAMILIES
from dse.storage import mask_secrets, public_url, storage_fault
from dse.workloads import load
from generators.params import parse_int

ROOT = Path(__file__).resolve().parents[1]
BASE = ["explore", "--family", "systolic", "--workload", "bitnet-b1.58-3b-decode", "--target", "ecp5-85k"]


def _cli(*argv, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def _one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _trials(out: Path) -> int:
    return sqlite3.connect(out / "study.db").execute("select count(*) from trials where state = 'COMPLETE'"
                                                     ).fetchone()[0]


# ---------------------------------------------------------------------- secrets
@pytest.mark.parametrize("url", [
    "postgresql://bob:S3CRET@127.0.0.1:5432/db",
    "postgresql://bob@127.0.0.1:5432/db?password=S3CRET",
    "postgresql://bob@127.0.0.1:5432/db?sslmode=require&sslpassword=S3CRET",
    "postgresql+psycopg://bob@127.0.0.1/db?PassWord=S3CRET&application_name=x",
    "mysql://bob@h/db?passwd=S3CRET",
])
def test_every_credential_form_is_masked(url):
    shown = public_url(url)
    assert "S3CRET" not in shown and "bob" in shown
    assert mask_secrets(f"could not connect to {url} (password S3CRET)", url).count("S3CRET") == 0
    assert "S3CRET" not in json.dumps(ExploreConfig(family="systolic", workload="w", target="t", trials=1,
                                                    out="o", storage=url).to_dict())


def test_a_query_password_never_reaches_the_error_line(tmp_path):
    url = "postgresql://bob@127.0.0.1:1/db?password=S3CRET&sslpassword=S3CRET2"
    line = _one_line(_cli(*BASE, "--trials", "5", "--storage", url, "--out", str(tmp_path / "never")))
    assert "S3CRET" not in line and "explore.storage cannot open postgresql://bob@127.0.0.1:1/db" in line
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------- counts that cannot wrap
def test_an_op_too_large_to_price_exactly_is_refused_with_its_bound():
    with pytest.raises(ValueError, match=r"gemm gemm: m\*n\*k must be at most 2\^48"):
        Gemm(m=1 << 21, n=1 << 21, k=1 << 21)
    with pytest.raises(ValueError, match="at most 2\\^48"):
        AttentionOp(batch=1 << 16, heads=1 << 12, kv_heads=1, n_q=1 << 12, n_kv=1 << 12, head_dim=64, causal=False)
    line = _one_line(_cli("estimate", "systolic", "--set", "rows=1", "--set", "cols=1",
                          "--gemm", "16777216,16777216,16777216"))
    assert "must be at most 2^48" in line


def _extreme_gemms() -> list[Gemm]:
    top = 1 << 24
    return [Gemm(m=1, n=1, k=1), Gemm(m=top, n=top, k=MAX_OP_WORK // (top * top)),
            Gemm(m=top, n=MAX_OP_WORK // (top * top), k=top), Gemm(m=MAX_OP_WORK // (top * top), n=top, k=top),
            Gemm(m=1 << 16, n=1 << 16, k=1 << 16)]


@pytest.mark.parametrize("family", [f for f in FAMILIES.values() if f.op_type is Gemm], ids=lambda f: f.name)
def test_gemm_figures_stay_finite_and_non_negative_at_every_extreme(family):
    """The extremes of the op ranges on the smallest, the default and random designs: no count
    wraps to a negative or a tiny number."""
    designs = [family.params.smallest(), family.params()]
    for target in ("ecp5-85k", "asic-45nm"):
        for op in _extreme_gemms():
            table = family.estimate(designs, op, get_target(target))
            for key in ("cycles", "latency_s", "energy_j", "offchip_bytes", "macs", "runs", "tiles"):
                values = np.asarray(table.get(key, 0), dtype=np.float64)
                assert np.all(np.isfinite(values)) and np.all(values >= 0), (key, op, values)
            if "macs" in table:
                macs = op.m * op.n * op.k
                assert np.all(np.asarray(table["macs"], dtype=np.float64) >= macs)   # padded, never wrapped
            assert np.all(np.asarray(table["cycles"], dtype=np.float64) >= 1)


def test_attention_figures_stay_finite_at_the_extremes():
    family = FAMILIES["attention"]
    designs = [family.params.smallest(), family.params()]
    ops = [AttentionOp(batch=1, heads=1, kv_heads=1, n_q=1, n_kv=1, head_dim=8, causal=False),
           AttentionOp(batch=1, heads=1, kv_heads=1, n_q=1 << 12, n_kv=1 << 24, head_dim=4096, causal=True),
           AttentionOp(batch=1 << 16, heads=1 << 12, kv_heads=1 << 12, n_q=1, n_kv=1 << 4, head_dim=64,
                       causal=False)]
    for op in ops:
        table = family.estimate(designs, op, get_target("kv260"))
        for key in ("cycles", "latency_s", "energy_j", "offchip_bytes"):
            values = np.asarray(table[key], dtype=np.float64)
            assert np.all(np.isfinite(values)) and np.all(values >= 0), (key, op, values)


@pytest.mark.parametrize("extreme", [
    dict(hidden=1 << 20, ffn=1 << 20, heads=1 << 10, kv_heads=1, layers=1 << 20, phase="prefill",
         batch=16, seq_len=1 << 20),
    dict(hidden=1 << 14, ffn=1 << 16, heads=128, kv_heads=8, layers=1 << 20, phase="decode", batch=4096,
         seq_len=1 << 20),
    dict(hidden=8, ffn=8, heads=1, kv_heads=1, layers=1, phase="decode", batch=1, seq_len=1),
])
def test_a_workload_at_the_range_extremes_is_refused_or_priced_sanely(tmp_path, extreme):
    """Within the documented ranges a workload is either refused with the bound it passes or
    priced with finite, non-negative figures (negative energy once reached a Pareto front)."""
    phase, batch, seq_len = extreme.pop("phase"), extreme.pop("batch"), extreme.pop("seq_len")
    path = tmp_path / "w.toml"
    model = "\n".join(f"{k} = {v}" for k, v in extreme.items())
    path.write_text(f'phase = "{phase}"\nbatch = {batch}\nseq_len = {seq_len}\n[model]\n{model}\n')
    try:
        workload = load(str(path))
    except ValueError as exc:
        assert "at most 2^48" in str(exc) and str(path) in str(exc)
        return
    family = FAMILIES["accelerator"]
    try:
        space = family.space(workload, {}, {})
    except ValueError as exc:                       # no engine runs it (a context past max_seq_len)
        assert "takes" in str(exc), exc
        return
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rows = [space.suggest(study.ask()) for _ in range(50)]
    table = family.price(space.columns(rows), workload, get_target("kv260"))
    for key in ("latency_s", "energy_per_token_j", "offchip_bytes", "tokens_per_s"):
        values = np.asarray(table[key], dtype=np.float64)
        assert np.all(np.isfinite(values)) and np.all(values > 0), (key, values)


# ---------------------------------------------------------------------- study integrity
def test_two_runs_sharing_one_study_store_exactly_its_quota(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    argv = [sys.executable, "-m", "dse.cli", *BASE, "--trials", "200", "--batch", "10", "--top", "0",
            "--storage", url]
    procs = [subprocess.Popen([*argv, "--out", str(tmp_path / f"s{i}")], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "200 trials" in out, out
    study = optuna.load_study(study_name=None, storage=url)         # one study: both runs named it alike
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 200 and sorted(t.number for t in trials) == list(range(200))
    assert len({t.user_attrs["origin"] for t in trials}) == 200


def test_an_edited_workload_file_is_noticed_and_the_path_is_kept_absolute(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "w.toml").write_text('model = "bitnet-b1.58-3b"\nphase = "decode"\nseq_len = 512\n')
    flags = ["explore", "--family", "systolic", "--workload", "w.toml", "--trials", "20", "--batch", "10",
             "--top", "0", "--out", "run"]
    assert _cli(*flags, cwd=work).returncode == 0
    stored = json.loads((work / "run" / "run.json").read_text())
    assert stored["workload"] == str(work / "w.toml") and stored["workload_digest"]
    assert _cli("report", str(work / "run"), "--top", "0").returncode == 0    # from another folder
    same = [*flags[:4], str(work / "w.toml"), *flags[5:-1], str(work / "run")]
    assert _cli(*same, "--trials", "30").returncode == 0                      # same file, absolute path
    (work / "w.toml").write_text('model = "bitnet-b1.58-3b"\nphase = "decode"\nseq_len = 2048\n')
    line = _one_line(_cli(*flags, cwd=work))
    assert "has changed since the run" in line
    line = _one_line(_cli("report", str(work / "run"), "--top", "0"))
    assert "has changed since the run" in line
    assert _trials(work / "run") == 30


def test_an_in_memory_study_is_refused_before_anything_is_written(tmp_path):
    for url in ("sqlite:///", "sqlite://", "sqlite:///:memory:"):
        line = _one_line(_cli(*BASE, "--trials", "5", "--storage", url, "--out", str(tmp_path / "run")))
        assert "in-memory SQLite database" in line
        assert not (tmp_path / "run").exists()


def test_other_objectives_than_the_stored_study_name_both(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(out)).returncode == 0
    line = _one_line(_cli(*BASE, "--trials", "10", "--objectives", "latency,area", "--out", str(out)))
    assert "--objectives latency,energy,area; this run gives latency,area" in line


def test_a_refused_storage_leaves_no_new_run_folder(tmp_path):
    first = tmp_path / "first"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(first)).returncode == 0
    other = ["explore", "--family", "lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode", "--trials", "10"]
    line = _one_line(_cli(*other, "--storage", f"sqlite:///{first / 'study.db'}", "--study-name",
                          "systolic:bitnet-b1.58-3b-decode:ecp5-85k", "--out", str(tmp_path / "new")))
    assert "other settings" in line and not (tmp_path / "new").exists()


def test_report_only_reads_the_study(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(out)).returncode == 0
    db = sqlite3.connect(out / "study.db")
    db.execute("drop table trial_intermediate_values")
    db.commit()
    before = (out / "study.db").read_bytes()
    line = _one_line(_cli("report", str(out), "--top", "0"))
    assert "not a whole Optuna study" in line
    assert (out / "study.db").read_bytes() == before


def test_corrupted_run_and_study_fields_are_one_line_naming_them(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(out)).returncode == 0
    good = json.loads((out / "run.json").read_text())
    for field, value, says in (("ranges", [], "explore.ranges must map"), ("workload", 5, "explore.workload must"),
                               ("target", ["x"], "explore.target must"), ("pins", "abc", "explore.pins must"),
                               ("objectives", "latency", "explore.objectives must")):
        (out / "run.json").write_text(json.dumps({**good, field: value}))
        assert says in _one_line(_cli("report", str(out), "--top", "0"))
    (out / "run.json").write_text(json.dumps(good))
    db = sqlite3.connect(out / "study.db")
    first = "trial_id = (select min(trial_id) from trials)"
    db.execute(f"update trial_user_attributes set value_json = '{{broken' where key = 'latency_s' and {first}")
    db.commit()
    assert "holds a trial attribute that is not JSON" in _one_line(_cli("report", str(out), "--top", "0"))
    db.execute(f"update trial_user_attributes set value_json = '\"fast\"' where key = 'latency_s' and {first}")
    db.commit()
    assert "has a malformed 'latency_s' attribute" in _one_line(_cli("report", str(out), "--top", "0"))
    db.execute(f"update trial_user_attributes set key = 'metrics', value_json = '5' where key = 'latency_s' and {first}")
    db.commit()
    assert "has a malformed 'metrics' attribute" in _one_line(_cli("report", str(out), "--top", "0"))


# ---------------------------------------------------------------------- interrupts and faults
def _start_workers(out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "dse.cli", *BASE, "--trials", "1000000", "--batch", "20", "--workers", "2",
            "--top", "0", "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,          # its own process group, Ctrl-C's target
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if _trials(out) >= 40:
                return proc
        except sqlite3.Error:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("the workers stored nothing in 120 s")


@pytest.mark.parametrize("whom", ["parent", "group"])
def test_an_interrupt_stops_every_worker_with_one_line(tmp_path, whom):
    out = tmp_path / "run"
    proc = _start_workers(out)
    if whom == "group":
        os.killpg(proc.pid, signal.SIGINT)                   # Ctrl-C at a terminal
    else:
        proc.send_signal(signal.SIGINT)                      # kill -INT of the parent alone
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines() == [
        "accelforge: interrupted; run the same command again to resume from what is stored"], err
    stored = _trials(out)
    time.sleep(2)
    assert _trials(out) == stored, "a worker went on storing trials after its parent stopped"


def test_an_interrupt_a_library_swallowed_still_ends_with_130(monkeypatch, capsys, tmp_path):
    def swallowing(args):
        try:
            signal.raise_signal(signal.SIGINT)             # as inside a finalizer: printed, not raised
        except KeyboardInterrupt:
            pass
        return 0

    monkeypatch.setattr(cli, "cmd_params", swallowing)
    assert cli.main(["params", "systolic"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_storage_faults_are_named_in_one_line():
    from sqlalchemy.exc import OperationalError

    def wrapped(message: str) -> Exception:
        try:
            try:
                raise OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))
            except OperationalError as exc:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit. "
                                                             "e.g. exceeding max length.") from exc
        except optuna.exceptions.StorageInternalError as exc:
            return exc

    assert "disk holding the study is full" in storage_fault(wrapped("database or disk is full"))
    assert "server stopped answering" in storage_fault(wrapped("server closed the connection unexpectedly"))
    assert storage_fault(ValueError("rows must be ...")) is None
    full = OSError(28, "No space left on device")
    assert "full" in storage_fault(full)


# ---------------------------------------------------------------------- output folders
def test_generate_refuses_an_unusable_out_with_exit_2(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for out, says in ((str(afile / "sub"), "cannot be written"), ("/proc/accelforge", "cannot be written"),
                      ("/sys/accelforge", "cannot be written"), ("/dev/null/x", "cannot be written"),
                      (str(tmp_path / ("x" * 300)), "cannot be written"), ("", "not an empty string"),
                      ("/", "must not be the file system's root"), (str(dangling), "which does not exist"),
                      (str(afile), "must be a folder")):
        line = _one_line(_cli("generate", "systolic", "--out", out))
        assert says in line, (out, line)
    assert not (tmp_path / "nowhere").exists()


def test_a_name_that_is_not_utf8_is_refused_before_any_trial(tmp_path):
    out = os.fsencode(tmp_path) + b"/run-\xff"
    proc = subprocess.run([sys.executable, "-m", "dse.cli", *BASE, "--trials", "5", "--out", out],
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and b"must be a UTF-8 path" in proc.stderr, proc.stderr
    assert not os.path.exists(out)


# ---------------------------------------------------------------------- input files and values
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("model: *i")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    start = time.time()
    line = _one_line(_cli("estimate", "systolic", "--workload", str(bomb)), 2)
    assert "anchors and aliases are not allowed" in line and time.time() - start < 60
    big = tmp_path / "big.yaml"
    big.write_text("model: llama2-7b\n" + "#" * 100_000 + "\n")
    assert "holds at most" in _one_line(_cli("estimate", "systolic", "--workload", str(big)))


def test_a_workload_file_that_is_not_utf8_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"model: llama2-7b\nphase: decode\n\xff\n")
    line = _one_line(_cli("estimate", "systolic", "--workload", str(bad)))
    assert str(bad) in line and "not UTF-8" in line


def test_a_huge_error_value_is_cut_to_one_readable_line():
    line = _one_line(_cli("estimate", "systolic", "--set", "rows=" + "9" * 5000))
    assert len(line) < 600 and "characters)" in line


@pytest.mark.parametrize("text", ["1_6", "\u0664", "\uff11\uff16", "1e3", "0x", "--1"])
def test_only_ascii_integers_are_integers(text):
    with pytest.raises(ValueError):
        parse_int(text)
    line = _one_line(_cli("estimate", "systolic", "--set", f"rows={text}"))
    assert "systolic.rows must be an integer" in line


def test_ascii_decimal_and_prefixed_integers_parse():
    assert [parse_int(t) for t in ("16", "+16", "-3", "016", "0x10", "0o20", "0b10000")] == \
        [16, 16, -3, 16, 16, 16, 16]


def test_generate_refuses_an_op_beside_a_workload_and_calibrate_a_bad_jobs(tmp_path):
    line = _one_line(_cli("generate", "systolic", "--gemm", "4,4,4", "--workload", "bitnet-b1.58-3b-decode",
                          "--out", str(tmp_path / "g")))
    assert "leave out --gemm" in line and not (tmp_path / "g").exists()
    for jobs in ("-1", "0", "100000"):
        line = _one_line(_cli("calibrate", "systolic", "--target", "generic", "--samples", "16", "--jobs", jobs))
        assert f"calibrate.jobs must be an integer in 1..256, not {jobs}" in line


# ---------------------------------------------------------------------- defaults and fit
def test_unset_fields_take_the_nearest_value_the_workload_allows():
    proc = _cli("estimate", "accelerator", "--set", "gemm=lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode",
                "--target", "kv260", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["fitted_defaults"] == {"attention.lanes": 10}
    assert doc["params"]["attention.lanes"] == 10 and 100 % 10 == 0
    text = _cli("estimate", "accelerator", "--set", "gemm=lut_mpgemm", "--workload", "bitnet-b1.58-3b-decode",
                "--target", "kv260")
    assert "note: accelerator.attention.lanes set to 10" in text.stdout
    given = _cli("estimate", "accelerator", "--set", "attention.lanes=7", "--workload", "bitnet-b1.58-3b-decode",
                 "--target", "kv260")
    assert given.returncode == 2 and "lanes must be a divisor of head_dim (100), not 7" in given.stderr


def test_distributed_ram_beyond_the_device_does_not_fit():
    for target in TARGETS.values():
        if target.kind.value != "fpga":
            continue
        assert 0 < target.lutrams < target.luts, target.name
        assert bool(target.fits(100, 100, 0, 0, target.lutrams))
        assert not bool(target.fits(100, 100, 0, 0, target.lutrams + 1))
        over = target.over_budget(np.array([100]), np.array([100]), np.array([0]), np.array([0]),
                                  np.array([2 * target.lutrams]))
        assert over.shape == (1, 5) and math.isclose(over[0, 4], 1.0)
    assert get_target("xilinx-7").lutrams == 19000


@pytest.mark.parametrize("argv, says", [
    (["explore", "--family", "systolic", "--workload", "bitnet-b1.58-3b-decode", "--trials", "1_000",
      "--out", "never"], "argument --trials: invalid integer: '1_000'"),
    (["verify", "systolic", "--seed", "\u0663"], "argument --seed: invalid integer"),
    (["synth", "systolic", "--clock-mhz", "nan"], "argument --clock-mhz: invalid number: 'nan'"),
    (["synth", "systolic", "--clock-mhz", "-5"], "--clock-mhz must be a number of MHz in 1..2000, not -5"),
    (["generate", "systolic", "--clock-mhz", "1e9", "--out", "never"], "--clock-mhz must be a number of MHz"),
])
def test_flag_numbers_are_spelled_as_values_are(tmp_path, argv, says):
    assert says in _one_line(_cli(*argv, cwd=tmp_path))
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name, text, says", [
    ("deep.yaml", "model: " + "[" * 20000 + "]" * 20000 + "\n", "nests more than 8 levels deep"),
    ("deep.toml", "model = " + "[" * 20000 + "]" * 20000 + "\n", "nests too deeply"),
])
def test_a_deeply_nested_workload_file_is_one_line(tmp_path, name, text, says):
    path = tmp_path / name
    path.write_text(text)
    assert says in _one_line(_cli("estimate", "systolic", "--workload", str(path)))


def test_deeply_nested_or_broken_run_files_are_one_line(tmp_path):
    out = tmp_path / "run"
    assert _cli(*BASE, "--trials", "10", "--top", "0", "--out", str(out)).returncode == 0
    good = (out / "run.json").read_text()
    (out / "run.json").write_text("[" * 100000 + "]" * 100000)
    assert "is not a valid run file" in _one_line(_cli("report", str(out), "--top", "0"))
    (out / "run.json").write_text(good)
    (out / "checks.json").write_text("{broken")
    assert "is not a valid checks file" in _one_line(_cli("report", str(out), "--top", "0"))
