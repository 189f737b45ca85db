"""Where batches of expensive jobs run: the one seam to ``dask.distributed``.

Synthesis, calibration and characterization hand their batches to :func:`run_batch`. With no
scheduler named it starts a :class:`~distributed.LocalCluster` of worker processes sized to
the machine (``--jobs``), so one machine works as it always did; with ``--scheduler
tcp://HOST:PORT`` (or ``ACCELFORGE_SCHEDULER``) the jobs go to that cluster, started with
``dask scheduler`` and ``dask worker``, or on LSF, SLURM or PBS through ``dask-jobqueue``.

The rules every caller relies on:

* a job is a picklable, module-level function of one picklable item, which runs anywhere
  and touches no shared disk; it returns what it made, and the client, which owns the
  cache, keeps it (``on_result``, called on the client as each job finishes, in whatever
  order they finish), so a killed client's rerun finds every finished job kept;
* jobs are keyed by content (``keys``): the same key is one job, run once;
* a worker that dies mid-job (even by ``kill -9``) has its jobs run again on another; a job
  whose workers keep dying is reported by name once the scheduler's
  ``distributed.scheduler.allowed-failures`` is spent (:data:`ALLOWED_FAILURES` on the local
  cluster);
* the results come back in the order of ``items``; if a job raised, the others still finish
  (and are kept) before the first error is raised.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from flows.tools import FlowError
from generators.params import ParamError

__all__ = ["ALLOWED_FAILURES", "SCHEDULER_ENV", "Cluster", "JobKilledWorkers", "run_batch", "where"]

SCHEDULER_ENV = "ACCELFORGE_SCHEDULER"
ALLOWED_FAILURES = 2
"""Worker deaths a job may cause on the local cluster before it is reported as the culprit."""
RESTART_WAIT_S = 10.0
"""How long closing a local cluster waits for a worker its nanny is restarting."""

_ADDRESS = re.compile(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d{1,5})?")


class JobKilledWorkers(FlowError):
    """A job that every worker it ran on died running."""


@dataclass(frozen=True)
class Cluster:
    """Where :func:`run_batch` sends jobs: ``scheduler`` (an address) or a local cluster of
    ``workers`` processes (``None``: one per core)."""

    scheduler: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None and not _ADDRESS.fullmatch(self.scheduler):
            raise ParamError(f"scheduler must be an address like tcp://HOST:PORT, not {self.scheduler!r}")
        if self.workers is not None and not (isinstance(self.workers, int) and 1 <= self.workers <= 1024):
            raise ParamError(f"workers must be an integer in 1..1024, not {self.workers!r}")

    @classmethod
    def chosen(cls, scheduler: str | None = None, workers: int | None = None) -> "Cluster":
        """The cluster a command names, else the one ``ACCELFORGE_SCHEDULER`` names, else local."""
        return cls(scheduler or os.environ.get(SCHEDULER_ENV) or None, workers)

    @property
    def local_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def describe(self) -> str:
        return self.scheduler or f"a local cluster of {self.local_workers} worker processes"


def where() -> str:
    """The worker this code runs on, for messages a client reads ("this machine" off a cluster)."""
    try:
        from distributed import get_worker
        return f"worker {get_worker().address}"
    except (ImportError, ValueError):
        return "this machine"


def run_batch(fn: Callable[[Any], Any], items: Sequence[Any], *, keys: Sequence[str], names: Sequence[str],
              cluster: Cluster, on_result: Callable[[int, Any], None] | None = None,
              description: str = "jobs", progress: bool = False) -> list[Any]:
    """``[fn(item) for item in items]``, run on ``cluster`` (see the module docstring).

    ``keys`` name each job's content (equal keys are one job); ``names`` are what an error
    calls the job. An empty batch starts no cluster."""
    if not (len(items) == len(keys) == len(names)):
        raise ValueError("items, keys and names must be as long as each other")
    if not items:
        return []
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = list(first.values())
    with _client(cluster) as client:
        futures = {client.submit(fn, items[i], key=f"accelforge-{keys[i]}", pure=False): i for i in unique}
        results: dict[int, Any] = {}
        errors: list[tuple[int, BaseException]] = []
        for future in _watched(futures, description, progress):
            i = futures[future]
            try:
                results[i] = future.result()
            except BaseException as exc:         # noqa: BLE001 - kept, raised once the rest finish
                errors.append((i, _named(exc, names[i])))
                continue
            if on_result is not None:
                on_result(i, results[i])
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return [results[first[key]] for key in keys]


def _named(exc: BaseException, name: str) -> BaseException:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        last = getattr(exc.last_worker, "address", exc.last_worker)
        return JobKilledWorkers(f"{name} killed every worker it ran on ({exc.allowed_failures + 1}, "
                                f"the last {last}): the scheduler allows {exc.allowed_failures} retries")
    return exc


class _client:
    """A ``distributed.Client`` on the chosen cluster, closed (with its local cluster) on exit."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.local = cluster, None

    # The local cluster's own logs are silenced: what a job raises comes back through its
    # future, and a worker's last heartbeat racing the scheduler's shutdown logs a harmless
    # traceback on stderr at ERROR level.
    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        if self.cluster.scheduler is not None:
            try:
                self.client = Client(self.cluster.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(f"no Dask scheduler answers at {self.cluster.scheduler}: {exc}") from None
            return self.client
        with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
            self.local = LocalCluster(n_workers=self.cluster.local_workers, threads_per_worker=1,
                                      processes=True, memory_limit=0, dashboard_address=None,
                                      silence_logs=logging.CRITICAL)
        self.client = Client(self.local)
        return self.client

    def __exit__(self, *exc_info) -> None:
        if self.local is not None:
            # A worker that a job just killed is being restarted by its nanny, and closing in
            # that moment fails inside distributed ("can only join a started process"): let
            # the restart finish first (at once when every worker is up).
            try:
                self.client.wait_for_workers(self.cluster.local_workers, timeout=RESTART_WAIT_S)
            except (TimeoutError, OSError):
                pass
        self.client.close()
        if self.local is not None:
            self.local.close()


def _watched(futures, description: str, progress: bool):
    """The futures as they finish, with a bar of done, running and failed jobs on a terminal."""
    from distributed import as_completed

    finished = as_completed(list(futures))
    if not (progress and sys.stderr.isatty()):
        yield from finished
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    done = failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[state]}"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=len(futures), state="")
        for future in finished:
            failed += future.status == "error"
            done += future.status != "error"
            bar.update(task, completed=done + failed,
                       state=f"{len(futures) - done - failed} queued or running, {failed} failed")
            yield future
