"""The Optuna-driven explorer behind ``accelforge explore``.

Designs are evaluated in batches through Optuna's ask-and-tell interface:
each batch is asked for at once, priced in one vectorised cost-model call,
and told back, so Optuna's per-trial overhead rather than the model sets the
pace. The study lives in Optuna storage: ``study.db`` (SQLite) inside the run
folder by default, or any SQLAlchemy URL. ``workers`` processes share one
study, each with its own quota, so the total is exact. Each worker samples
on an in-memory mirror of the study and stores every finished batch at once,
so the storage never holds a half-done trial: a killed run loses at most
the batch in flight and resumes from what is stored. ``grid`` evaluates every point of a small enough space with
the vectorised model and stores its Pareto front as trials.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import optuna
from optuna.trial import TrialState

from cost_models.targets import Target, get_target
from dse.evaluate import DEFAULT_OBJECTIVES, OBJECTIVES, constraint_values, evaluate, pareto_mask
from dse.families import Family, get_family
from dse.space import SearchSpace
from dse.storage import make_storage, public_url, storage_fault, store_batch
from dse.workloads import Workload, load
from generators.artifact import write_atomic
from generators.params import ParamError

STUDY_NAME = "accelforge"
"""The study of a run that names none: every run before runs were named by their settings."""
STUDY_NAME_LIMIT = 128
SAMPLERS = ("nsga2", "tpe", "random", "grid")
GRID_LIMIT = 5_000_000
CONSTRAINTS = ("lut", "ff", "dsp", "bram", "lutram", "params")   # over budget as a fraction; 1 = cannot run
KEPT_METRICS = ("latency_s", "tokens_per_s", "energy_per_token_j", "area", "lut", "ff", "dsp", "bram", "lutram",
                "area_transistors", "fmax_mhz", "clock_mhz", "memory_bound", "offchip_bytes",
                "roofline_tokens_per_s", "roofline_fraction", "memory_bound_fraction")


@dataclass(frozen=True, kw_only=True)
class ExploreConfig:
    family: str
    workload: str
    target: str
    trials: int
    out: str
    sampler: str = "nsga2"
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    seed: int = 0
    batch: int = 50
    workers: int = 1
    storage: str | None = None
    pins: Mapping[str, str] = field(default_factory=dict)
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    workload_digest: str | None = None      # the workload's content, so an edited file is noticed
    study_name: str | None = None           # the study in the storage (None: STUDY_NAME, older runs)

    def __post_init__(self) -> None:
        checks = (("trials", self.trials, 1, 1_000_000), ("batch", self.batch, 1, 10_000),
                  ("workers", self.workers, 1, 64), ("seed", self.seed, 0, 2 ** 31 - 1))
        for name, value, lo, hi in checks:
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ParamError(f"explore.{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.sampler not in SAMPLERS:
            raise ParamError(f"explore.sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if not self.objectives or any(o not in OBJECTIVES for o in self.objectives):
            raise ParamError(f"explore.objectives must be names from {', '.join(OBJECTIVES)}, "
                             f"not {self.objectives!r}")
        for name in ("family", "workload", "target", "out"):
            if not isinstance(getattr(self, name), str):
                raise ParamError(f"explore.{name} must be a string, not {getattr(self, name)!r}")
        if self.storage is not None and not isinstance(self.storage, str):
            raise ParamError(f"explore.storage must be a URL string, not {self.storage!r}")
        if self.study_name is not None and not (
                isinstance(self.study_name, str) and 1 <= len(self.study_name) <= STUDY_NAME_LIMIT
                and self.study_name.isprintable() and self.study_name.strip() == self.study_name):
            raise ParamError(f"explore.study_name must be 1..{STUDY_NAME_LIMIT} printable characters without "
                             f"leading or trailing spaces, not {self.study_name!r}")
        if self.workload_digest is not None and not isinstance(self.workload_digest, str):
            raise ParamError(f"explore.workload_digest must be a string, not {self.workload_digest!r}")
        if not isinstance(self.pins, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in self.pins.items()):
            raise ParamError(f"explore.pins must map field names to value strings, not {self.pins!r}")
        if not isinstance(self.ranges, Mapping) or not all(
                isinstance(k, str) and isinstance(v, tuple) and len(v) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
                for k, v in self.ranges.items()):
            raise ParamError(f"explore.ranges must map field names to [lo, hi] integer pairs, not {self.ranges!r}")

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    @property
    def study(self) -> str:
        """The study's name in the storage."""
        return self.study_name or STUDY_NAME

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored in run.json and the study, and shown in the report: the
        storage URL without its password."""
        d = dataclasses.asdict(self)
        d["storage"] = public_url(self.storage) if self.storage else None
        d["objectives"], d["pins"] = list(self.objectives), dict(self.pins)
        d["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExploreConfig":
        """The settings as ``to_dict`` wrote them; a field of the wrong type (a hand-edited
        run.json) is a ``ValueError`` naming it."""
        if not isinstance(d, Mapping):
            raise ParamError(f"explore settings must be a table of fields, not {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParamError(f"explore.{unknown[0]} is not a setting; allowed: {', '.join(sorted(known))}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ParamError(f"explore.{missing[0]} is missing")
        objectives, ranges = d.get("objectives", DEFAULT_OBJECTIVES), d.get("ranges", {})
        if isinstance(objectives, str) or not isinstance(objectives, (list, tuple)):
            raise ParamError(f"explore.objectives must be a list of names, not {objectives!r}")
        if not isinstance(ranges, Mapping) or not all(isinstance(v, (list, tuple)) for v in ranges.values()):
            raise ParamError(f"explore.ranges must map field names to [lo, hi] pairs, not {ranges!r}")
        return cls(**{**d, "objectives": tuple(objectives), "pins": d.get("pins", {}),
                      "ranges": {k: tuple(v) for k, v in ranges.items()}})


def workload_digest(workload: Workload) -> str:
    """A short content hash of a workload (its model shape, phase and sizes): a run is keyed on
    what its workload says, not on the file's name or path."""
    text = repr((workload.model, workload.phase.value, workload.batch, workload.seq_len))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_study_name(family: str, workload: str, target: str) -> str:
    """A run's study name from what it explores, so that runs of different families, workloads
    or targets share one storage (a workload file by its file name)."""
    name = Path(workload).stem if workload.endswith((".toml", ".yaml", ".yml")) else workload
    return f"{family}:{name}:{target}"[:STUDY_NAME_LIMIT]


def settings_differ(stored: Mapping[str, Any], mine: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """The settings in which a stored run and this one differ. A setting the stored run does
    not record (an older run) is not compared; with both content digests at hand the
    workload is compared by content, so a file named by another path is the same run."""
    skipped = set(skip)
    if stored.get("workload_digest") and mine.get("workload_digest"):
        skipped.add("workload")
    return [k for k in mine if k not in skipped and k in stored and stored[k] != mine[k]]


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    return optuna.samplers.RandomSampler(seed=seed)


class Priced(NamedTuple):
    """One design's price as stored with its trials."""
    metrics: dict[str, Any]          # KEPT_METRICS, JSON-ready
    constraints: list[float]         # in CONSTRAINTS order; all <= 0 means it fits and runs
    values: list[float]              # the objectives, in the study's order


class Explorer:
    """One exploration: a family, a workload, a target and a study in storage."""

    def __init__(self, cfg: ExploreConfig, *, read_only: bool = False):
        self.family: Family = get_family(cfg.family)
        self.workload: Workload = load(cfg.workload)
        digest = workload_digest(self.workload)
        if cfg.workload_digest is None:
            cfg = dataclasses.replace(cfg, workload_digest=digest)
        elif cfg.workload_digest != digest:
            raise ParamError(f"workload {cfg.workload!r} has changed since the run began (content "
                             f"{cfg.workload_digest} then, {digest} now); restore it or use a new --out folder")
        self.cfg = cfg
        self.read_only = read_only                  # report: open the study without writing to it
        self.target: Target = get_target(cfg.target)
        self.space: SearchSpace = self.family.space(self.workload, dict(cfg.pins), cfg.ranges)
        self.objectives = [OBJECTIVES[o] for o in cfg.objectives]
        self.directions = tuple(o.direction for o in self.objectives)
        self._priced: dict[tuple, Priced] = {}
        if cfg.sampler == "grid" and not self.space.supports_grid:
            self.space.distributions()                  # raises, saying why
        if cfg.sampler == "grid" and self.space.size() > GRID_LIMIT:
            raise ParamError(f"explore.sampler grid needs a space of at most {GRID_LIMIT:,} points; this one "
                             f"has {self.space.size():,}: pin fields with --set")

    # ------------------------------------------------------------------ storage
    def open_study(self, seed: int | None = None) -> optuna.Study:
        """The run's study, created on first use (never by a read-only explorer); a stored
        study of other objectives or settings is refused before anything is written."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = make_storage(self.cfg.storage_url(), read_only=self.read_only)
        self.check_settings(storage, adopt=False)
        sampler = make_sampler(self.cfg.sampler, self.cfg.seed if seed is None else seed)
        if self.read_only:
            try:
                return optuna.load_study(study_name=self.cfg.study, storage=storage, sampler=sampler)
            except KeyError:
                raise ParamError(f"{public_url(self.cfg.storage_url())} holds no study {self.cfg.study!r}") from None
        study = optuna.create_study(study_name=self.cfg.study, storage=storage, directions=list(self.directions),
                                    sampler=sampler, load_if_exists=True)
        names = [o.column for o in self.objectives]
        if study.user_attrs.get("constraint_names") != list(CONSTRAINTS):
            study.set_user_attr("constraint_names", list(CONSTRAINTS))   # what each stored constraint is
        if study.metric_names != names:          # named objectives for optuna-dashboard and pandas
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)
        return study

    def study_settings(self) -> dict[str, Any]:
        """The settings a study is keyed on (those that change what its trials mean)."""
        return {k: v for k, v in self.cfg.to_dict().items()
                if k not in ("trials", "workers", "out", "batch", "study_name")}

    def check_settings(self, where: optuna.Study | optuna.storages.BaseStorage, *, adopt: bool) -> None:
        """Refuse a stored study run with other settings or objectives, naming both; ``adopt``
        stores ours in a study without any. ``where`` is the study or its storage (checked
        before the study is opened, so a refusal writes nothing)."""
        if isinstance(where, optuna.Study):
            stored, directions = where.user_attrs.get("config"), where.directions
        else:
            try:
                study_id = where.get_study_id_from_name(self.cfg.study)
            except KeyError:
                return                                  # a new study: nothing to compare
            stored = where.get_study_user_attrs(study_id).get("config")
            directions = where.get_study_directions(study_id)
        url = public_url(self.cfg.storage_url())
        mine = self.study_settings()
        if stored is None:
            if len(directions) != len(self.directions):
                raise ParamError(f"the study in {url} has {len(directions)} objectives; this run asks for "
                                 f"{len(self.directions)} ({', '.join(self.cfg.objectives)})")
            if adopt and isinstance(where, optuna.Study):
                where.set_user_attr("config", mine)
            return
        if not isinstance(stored, Mapping):
            raise ParamError(f"the study in {url} has a malformed 'config' attribute: {str(stored)[:80]!r}")
        if list(stored.get("objectives", [])) != list(mine["objectives"]):
            raise ParamError(f"the study {self.cfg.study!r} in {url} was run with --objectives "
                             f"{','.join(map(str, stored.get('objectives', [])))}; this run gives "
                             f"{','.join(mine['objectives'])}: use the same objectives, or another "
                             f"--study-name for a study of its own")
        diff = settings_differ(stored, mine, skip=("storage",))
        if diff:
            what = ", ".join(f"{k} {stored.get(k)!r}, not {mine.get(k)!r}" for k in diff)
            raise ParamError(f"the study {self.cfg.study!r} in {url} was run with other settings ({what}); "
                             f"use the same settings, or another --study-name for a study of its own")

    def finished(self, study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    # ------------------------------------------------------------------ evaluation
    def evaluate_rows(self, rows: list[Mapping[str, Any]]) -> list[Priced]:
        """Each row's kept metrics, constraint values and objective values. A design is priced once per
        explorer: one proposed again (in this batch, an earlier one or a stored trial)
        comes from the cache."""
        keys = [_design_key(r) for r in rows]
        new = list(dict.fromkeys(k for k in keys if k not in self._priced))
        if new:
            metrics = evaluate(self.family, self.space.columns([dict(k) for k in new]), self.workload, self.target)
            cons = constraint_values(metrics, self.target)
            for i, key in enumerate(new):
                self._priced[key] = Priced(_kept(metrics, i), [float(c) for c in cons[i]],
                                           [float(np.asarray(metrics[o.column])[i]) for o in self.objectives])
        return [self._priced[k] for k in keys]

    def _remember(self, trial: optuna.trial.FrozenTrial) -> None:
        """Take a stored trial's price into the cache (its design is not priced again)."""
        cons = stored_constraints(trial)
        metrics = stored_metrics(trial.user_attrs)
        if cons is not None and metrics and trial.values is not None:
            self._priced.setdefault(_design_key(trial.params), Priced(metrics, list(cons), list(trial.values)))

    def run_quota(self, quota: int, seed: int, on_batch: Callable[[int], None] | None = None) -> None:
        """Ask, price and tell ``quota`` trials in batches.

        The sampler works on an in-memory mirror of the study; before each batch the
        mirror takes in what other workers stored, and after it the finished batch
        is stored in one transaction. The shared storage only ever holds whole batches
        of finished trials.
        """
        shared = self.open_study(seed)
        mirror = optuna.create_study(directions=list(self.directions),
                                     sampler=make_sampler(self.cfg.sampler, seed))
        tag = f"{uuid.uuid4().hex[:12]}"
        mirrored: set[str] = set()
        done = batches = 0
        while done < quota:
            stored = shared.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            for t in stored:
                origin = t.user_attrs.get("origin", f"storage:{t.number}")
                if origin not in mirrored:
                    mirrored.add(origin)
                    mirror.add_trial(t)
                    self._remember(t)
            size = min(self.cfg.batch, quota - done, self.cfg.trials - len(stored))
            if size <= 0:
                return                                  # other runs of this study filled it
            trials = [mirror.ask() for _ in range(size)]
            priced = self.evaluate_rows([self.space.suggest(t) for t in trials])
            finished = []
            for trial, price in zip(trials, priced, strict=True):
                origin = f"{tag}:{batches}:{size}:{trial.number}"     # worker, batch and its size, trial
                mirrored.add(origin)
                for name, value in zip(CONSTRAINTS, price.constraints, strict=True):
                    trial.set_constraint(name, value)       # what Optuna's samplers and best_trials weigh
                trial.set_user_attr("origin", origin)
                for name, value in price.metrics.items():     # each its own column in optuna-dashboard
                    trial.set_user_attr(name, value)
                finished.append(mirror.tell(trial, price.values))
            kept = store_batch(shared, finished, limit=self.cfg.trials,
                               trim=lambda batch: [_relabel(t, len(batch)) for t in batch])
            batches += 1
            done += size
            if on_batch:
                on_batch(kept)
            if kept < size:
                return                                  # the study is full: another run stored the rest

    def run_grid(self) -> int:
        """Exhaustive vectorised evaluation; the feasible Pareto front goes into the study
        once (a grid run again on the same study finds its front already stored)."""
        study = self.open_study()
        if "grid_points" in study.user_attrs:
            return 0
        cols, raw = self.space.grid_columns()
        metrics = evaluate(self.family, cols, self.workload, self.target)
        cons = constraint_values(metrics, self.target)
        feasible = np.all(cons <= 0, axis=1)
        values = np.stack([metrics[o.column] for o in self.objectives], axis=1)
        front = np.flatnonzero(feasible)[pareto_mask(values[feasible], self.directions)]
        dists = self.space.distributions()
        new = []
        for i in front:
            params = {k: _py(raw[k][i]) for k in raw}
            new.append(optuna.trial.create_trial(
                params=params, distributions=dists, values=[float(v) for v in values[i]],
                constraints={name: float(c) for name, c in zip(CONSTRAINTS, cons[i], strict=True)},
                user_attrs={"exhaustive": True, "origin": f"grid:{i}", **_kept(metrics, i)}))
        store_batch(study, new)
        study.set_user_attr("grid_points", int(len(feasible)))
        study.set_user_attr("grid_feasible", int(feasible.sum()))
        return len(new)

    # ------------------------------------------------------------------ the whole run
    def run(self, progress: bool = False) -> None:
        out = Path(self.cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ParamError(f"another explore is running in {out}") from None
            _no_workers_left(out)
            study = self.open_study()
            self.check_settings(study, adopt=True)
            write_atomic(out / "run.json", json.dumps(self.cfg.to_dict(), indent=2) + "\n")
            if self.cfg.sampler == "grid":
                self.run_grid()
                return
            remaining = self.cfg.trials - self.finished(study)
            if remaining <= 0:
                return
            self._run_workers(study, remaining, progress)

    def _run_workers(self, study: optuna.Study, remaining: int, progress: bool) -> None:
        workers = min(self.cfg.workers, remaining)
        quotas = [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]
        base = self.finished(study)
        bar = _Progress(self.cfg.trials, base, enabled=progress)
        if workers == 1:
            self.run_quota(quotas[0], self.cfg.seed + base, on_batch=bar.advance)
            bar.close()
            return
        ctx = multiprocessing.get_context("spawn")
        cfg = {**self.cfg.to_dict(), "storage": self.cfg.storage}      # the workers need the password
        procs = [ctx.Process(target=_worker, args=(cfg, q, self.cfg.seed + base + 7919 * (i + 1), os.getpid()))
                 for i, q in enumerate(quotas)]
        try:
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs):
                time.sleep(0.5)
                bar.set(self.finished(study))
        finally:                      # interrupted or failed: no worker runs on without its parent
            for p in procs:
                if p.is_alive():
                    p.terminate()     # a batch in flight is rolled back, never half-stored
            for p in procs:
                if p.pid is not None:
                    p.join()
            bar.close()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            raise WorkersFailed(f"{len(failed)} of {len(procs)} explore workers failed (exit codes {failed}; "
                                f"each said why above); what they stored is whole: run the same command "
                                f"again to resume")


class WorkersFailed(RuntimeError):
    """An explore worker process ended with an error (it printed the reason itself)."""


WORKERS_LOCK = ".workers.lock"


def _no_workers_left(out: Path) -> None:
    """Refuse to start while workers of an earlier run of this folder still run (they hold a
    shared lock until they exit, which they do within a second of losing their parent)."""
    with open(out / WORKERS_LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParamError(f"workers of an earlier explore in {out} are still stopping; "
                             f"run again in a few seconds") from None


def _worker(cfg: dict[str, Any], quota: int, seed: int, parent: int) -> None:
    """One worker's quota; it dies with its parent, so a killed run leaves no writer behind.
    Ctrl-C reaches the whole process group: the parent alone answers it (it stops the
    workers), so a worker prints no traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    explorer = Explorer(ExploreConfig.from_dict(cfg))
    with open(Path(explorer.cfg.out) / WORKERS_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(3)

        threading.Thread(target=watch, daemon=True).start()
        try:
            explorer.run_quota(quota, seed)
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise                                   # a bug: its traceback is the report
            print(f"accelforge: explore worker {os.getpid()}: {fault}", file=sys.stderr, flush=True)
            sys.exit(1)


def _relabel(trial: optuna.trial.FrozenTrial, size: int) -> optuna.trial.FrozenTrial:
    """``trial`` with the batch size in its origin set to ``size`` (a batch cut short to fit
    the study's quota is stored, and labelled, as the smaller batch it became)."""
    head, number = trial.user_attrs["origin"].rsplit(":", 1)
    trial.user_attrs = {**trial.user_attrs, "origin": f"{head.rsplit(':', 1)[0]}:{size}:{number}"}
    return trial


def stored_constraints(trial: optuna.trial.FrozenTrial) -> list[float] | None:
    """A stored trial's constraint values in CONSTRAINTS order: one named constraint each
    (``Trial.set_constraint``), or for a trial stored before, the one list it kept; ``None``
    when it has not these (its design is then priced again)."""
    found = trial.constraints
    if set(found) == set(CONSTRAINTS):
        return [float(found[name]) for name in CONSTRAINTS]
    if set(found) == {str(i) for i in range(len(CONSTRAINTS))}:
        return [float(found[str(i)]) for i in range(len(CONSTRAINTS))]
    return None                   # none, or the five of a study begun before the LUT RAM budget


def stored_metrics(user_attrs: Mapping[str, Any]) -> Any:
    """A stored trial's metrics: one user attribute each (KEPT_METRICS, so that optuna-dashboard
    sorts and plots them), or for a trial stored before, the one ``metrics`` table it kept
    (returned as found: a damaged one is the caller's to name)."""
    if "metrics" in user_attrs:
        return user_attrs["metrics"]
    return {k: user_attrs[k] for k in KEPT_METRICS if k in user_attrs}


def _kept(metrics: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Design ``i``'s metrics as a trial stores them (KEPT_METRICS, JSON-ready)."""
    return {k: _py(np.asarray(metrics[k])[i] if np.ndim(metrics[k]) else metrics[k])
            for k in KEPT_METRICS if k in metrics}


def _design_key(row: Mapping[str, Any]) -> tuple:
    return tuple(sorted(row.items()))


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Progress:
    """A rich progress bar on a terminal; silent otherwise (CI, pipes, --json)."""

    def __init__(self, total: int, start: int, enabled: bool):
        import sys

        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.progress import Progress
            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("exploring", total=total, completed=start)

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.advance(self.task, n)

    def set(self, completed: int) -> None:
        if self.bar:
            self.bar.update(self.task, completed=completed)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
