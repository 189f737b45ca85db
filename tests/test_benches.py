"""Every bench runs: its ``--smoke`` mode (a few points, seconds from the caches) runs here, so
a bench cannot rot unseen between the ``make bench`` runs that print its full figures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, f"bench/{script}", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_cost_model_speed_runs():
    out = _bench("cost_model_speed.py", "--smoke")
    assert "accelerator price" in out and "systolic estimate" in out and "points/s" in out


def test_search_quality_runs():
    out = _bench("search_quality.py", "--smoke")
    assert "exact front" in out and "nsga2" in out and "tpe" in out and "hypervolume" in out


def test_published_runs():
    out = _bench("published.py", "--smoke")
    assert out.count("| ") > 5 and "tokens/s" in out


def test_attention_accuracy_runs():
    out = _bench("attention_accuracy.py", "--smoke")
    assert "(default)" in out


def test_systolic_bound_runs():
    assert "SCALE-Sim" in _bench("systolic_bound.py")


@pytest.mark.synth
def test_lut_vs_mac_runs(tmp_path):
    out = _bench("lut_vs_mac.py", "--smoke", "--csv", str(tmp_path / "t.csv"), "--png", str(tmp_path / "t.png"))
    assert "LUT/MAC at the best g" in out and (tmp_path / "t.csv").is_file()


@pytest.mark.synth
def test_model_accuracy_runs(tmp_path):
    out = _bench("model_accuracy.py", "--smoke", "--target", "generic", "--png", str(tmp_path / "m.png"))
    assert "transistors" in out


@pytest.mark.synth
def test_table_build_runs():
    assert "ours / naive" in _bench("table_build.py", "--smoke", "--flows", "generic")


@pytest.mark.synth
def test_table_store_runs():
    assert "per fetcher" in _bench("table_store.py", "--smoke", "--flows", "xilinx-7-fabric")


@pytest.mark.sim
def test_mutants_runs():
    assert "systolic" in _bench("mutants.py", "--smoke")


@pytest.mark.synth
def test_cluster_speedup_runs():
    out = _bench("cluster_speedup.py", "--smoke", "--workers", "2")
    assert "2 local workers" in out and out.rstrip().endswith("True")


def test_explore_speed_runs():
    out = _bench("explore_speed.py", "--smoke")
    assert "stored/s" in out and "ask+suggest" in out


@pytest.mark.synth
def test_machine_synth_runs():
    out = _bench("machine_synth.py", "--smoke")
    assert "machine" in out and "xilinx-7" in out and "lut" in out
