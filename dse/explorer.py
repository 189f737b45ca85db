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
import json
import math
import multiprocessing
import os
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
from dse.storage import CONSTRAINTS_ATTR, make_storage, public_url, store_batch
from dse.workloads import Workload, load
from generators.artifact import write_atomic

STUDY_NAME = "accelforge"
SAMPLERS = ("nsga2", "tpe", "random", "grid")
GRID_LIMIT = 5_000_000
CONSTRAINTS = ("lut", "ff", "dsp", "bram", "params")   # over budget as a fraction; 1 = cannot run
KEPT_METRICS = ("latency_s", "tokens_per_s", "energy_per_token_j", "area", "lut", "ff", "dsp", "bram",
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

    def __post_init__(self) -> None:
        checks = (("trials", self.trials, 1, 1_000_000), ("batch", self.batch, 1, 10_000),
                  ("workers", self.workers, 1, 64), ("seed", self.seed, 0, 2 ** 31 - 1))
        for name, value, lo, hi in checks:
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"explore.{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"explore.sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if not self.objectives or any(o not in OBJECTIVES for o in self.objectives):
            raise ValueError(f"explore.objectives must be names from {', '.join(OBJECTIVES)}, "
                             f"not {self.objectives!r}")

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

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
        return cls(**{**d, "objectives": tuple(d["objectives"]), "pins": dict(d["pins"]),
                      "ranges": {k: tuple(v) for k, v in d.get("ranges", {}).items()}})


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

    def __init__(self, cfg: ExploreConfig):
        self.cfg = cfg
        self.family: Family = get_family(cfg.family)
        self.workload: Workload = load(cfg.workload)
        self.target: Target = get_target(cfg.target)
        self.space: SearchSpace = self.family.space(self.workload, dict(cfg.pins), cfg.ranges)
        self.objectives = [OBJECTIVES[o] for o in cfg.objectives]
        self.directions = tuple(o.direction for o in self.objectives)
        self._priced: dict[tuple, Priced] = {}
        if cfg.sampler == "grid" and not self.space.supports_grid:
            self.space.distributions()                  # raises, saying why
        if cfg.sampler == "grid" and self.space.size() > GRID_LIMIT:
            raise ValueError(f"explore.sampler grid needs a space of at most {GRID_LIMIT:,} points; this one "
                             f"has {self.space.size():,}: pin fields with --set")

    # ------------------------------------------------------------------ storage
    def open_study(self, seed: int | None = None) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=STUDY_NAME, storage=make_storage(self.cfg.storage_url()),
                                    directions=list(self.directions),
                                    sampler=make_sampler(self.cfg.sampler, self.cfg.seed if seed is None else seed),
                                    load_if_exists=True)
        names = [o.column for o in self.objectives]
        if study.user_attrs.get("constraint_names") != list(CONSTRAINTS):
            study.set_user_attr("constraint_names", list(CONSTRAINTS))   # what each stored constraint is
        if study.metric_names != names:          # named objectives for optuna-dashboard and pandas
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)
        return study

    def check_settings(self, study: optuna.Study, *, adopt: bool) -> None:
        """Refuse a study run with other settings; ``adopt`` stores ours in a study without any."""
        stored = study.user_attrs.get("config")
        mine = {k: v for k, v in self.cfg.to_dict().items() if k not in ("trials", "workers", "out", "batch")}
        if stored is None:
            if adopt:
                study.set_user_attr("config", mine)
            return
        diff = [k for k in mine if stored.get(k) != mine[k] and k != "storage"]
        if diff:
            raise ValueError(f"the study in {public_url(self.cfg.storage_url())} was run with other settings "
                             f"({', '.join(diff)}); use a new --out folder or the same settings")

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
        cons = trial.system_attrs.get(CONSTRAINTS_ATTR)
        if cons is not None and "metrics" in trial.user_attrs and trial.values is not None:
            self._priced.setdefault(_design_key(trial.params),
                                    Priced(trial.user_attrs["metrics"], list(cons), list(trial.values)))

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
            for t in shared.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                origin = t.user_attrs.get("origin", f"storage:{t.number}")
                if origin not in mirrored:
                    mirrored.add(origin)
                    mirror.add_trial(t)
                    self._remember(t)
            size = min(self.cfg.batch, quota - done)
            trials = [mirror.ask() for _ in range(size)]
            priced = self.evaluate_rows([self.space.suggest(t) for t in trials])
            finished = []
            for trial, price in zip(trials, priced, strict=True):
                origin = f"{tag}:{batches}:{size}:{trial.number}"     # worker, batch and its size, trial
                mirrored.add(origin)
                trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_ATTR, price.constraints)
                trial.set_user_attr("origin", origin)
                trial.set_user_attr("metrics", price.metrics)
                finished.append(mirror.tell(trial, price.values))
            store_batch(shared, finished)
            batches += 1
            done += size
            if on_batch:
                on_batch(size)

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
                system_attrs={CONSTRAINTS_ATTR: [float(c) for c in cons[i]]},
                user_attrs={"exhaustive": True, "origin": f"grid:{i}", "metrics": _kept(metrics, i)}))
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
                raise ValueError(f"another explore is running in {out}") from None
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
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            bar.set(self.finished(study))
        bar.close()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} explore worker(s) failed (exit codes {failed})")


WORKERS_LOCK = ".workers.lock"


def _no_workers_left(out: Path) -> None:
    """Refuse to start while workers of an earlier run of this folder still run (they hold a
    shared lock until they exit, which they do within a second of losing their parent)."""
    with open(out / WORKERS_LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"workers of an earlier explore in {out} are still stopping; "
                             f"run again in a few seconds") from None


def _worker(cfg: dict[str, Any], quota: int, seed: int, parent: int) -> None:
    """One worker's quota; it dies with its parent, so a killed run leaves no writer behind."""
    explorer = Explorer(ExploreConfig.from_dict(cfg))
    with open(Path(explorer.cfg.out) / WORKERS_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(3)

        threading.Thread(target=watch, daemon=True).start()
        explorer.run_quota(quota, seed)


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
