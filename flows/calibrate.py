"""Fit a family's cost-model coefficients to synthesis results.

Designs are sampled from the Params' declared ranges (capped by the family's
calibration box), synthesized in parallel through the flow cache, split into
a training and a held-out set, and each coefficient table (``lut``, ``ff``,
``period_ns``, or ``transistors`` for the generic flow) is fitted by
non-negative least squares on relative error, so the fit minimises
percentage error and every coefficient stays physical (no negative LUTs).
The DSP placement rule is the (min operand bits, min product bits) pair that
reproduces the most measured DSP counts. The fitted values replace the
technology's entry in ``cost_models/data/<family>.json``, with the held-out
errors and the command that produced them.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cost_models import coefficients as coeff_store
from cost_models.targets import Target, get_target, on_hard_multiplier
from flows.cluster import Cluster
from flows.synth import SynthResult, get_synth_target, make_job, run_jobs
from generators.artifact import render, write_atomic
from generators.params import ParamError, Params


def sample_points(params_cls: type[Params], box: Mapping[str, tuple[int, int]], n: int,
                  seed: int, strata: Callable[[list[Params]], np.ndarray] | None = None) -> list[Params]:
    """``n`` distinct random points of the searchable fields, inside ``box``.

    ``strata`` labels points by the regime synthesis maps them in (e.g. products on DSPs
    or in fabric); when it finds more than one, the regimes share the sample equally (in
    draw order, a scarce regime's shortfall filled from the others), so that a regime
    uniform sampling makes rare still gets enough designs to fit its own terms. With a
    single regime the sample is the first ``n`` distinct draws.
    """
    pool = _draw(params_cls, box, n if strata is None else 50 * n, seed)
    if strata is None or len(pool) <= n:
        return pool[:n]
    labels = np.asarray(strata(pool))
    groups = [[p for p, label in zip(pool, labels, strict=True) if label == value]
              for value in dict.fromkeys(labels.tolist())]
    if len(groups) == 1:
        return pool[:n]
    chosen: list[Params] = []
    while len(chosen) < n:                  # round-robin over the regimes, in draw order
        for group in groups:
            if group and len(chosen) < n:
                chosen.append(group.pop(0))
    order = {p.digest(): i for i, p in enumerate(pool)}
    return sorted(chosen, key=lambda p: order[p.digest()])


def _draw(params_cls: type[Params], box: Mapping[str, tuple[int, int]], n: int, seed: int) -> list[Params]:
    """Up to ``n`` distinct valid points, in the order the seeded generator draws them."""
    rng = np.random.default_rng(seed)
    points: dict[str, Params] = {}
    for _ in range(50 * n):
        values: dict[str, Any] = {}
        for info in params_cls.fields():
            if not info.spec.search:
                continue
            if info.kind is bool or issubclass(info.kind, enum.Enum):
                values[info.name] = info.choices[rng.integers(len(info.choices))]
                continue
            lo, hi = box.get(info.name, (info.spec.range.lo, info.spec.range.hi))
            lo, hi = max(lo, info.spec.range.lo), min(hi, info.spec.range.hi)
            if info.spec.range.log:
                values[info.name] = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
            else:
                values[info.name] = int(rng.integers(lo, hi, endpoint=True))
        try:
            p = params_cls(**values)
        except ValueError:                  # a cross-field constraint rules this combination out
            continue
        points.setdefault(p.digest(), p)
        if len(points) == n:
            break
    return list(points.values())


def synthesize_all(points: Sequence[Params], build: Callable, target: str, *, cluster: Cluster,
                   cache_root: Path, clock_mhz: float | None = None,
                   progress: bool = False) -> list[SynthResult]:
    """Synthesize every point (cached) on ``cluster``; results in the order of ``points``."""
    jobs = [make_job(render(p, build), target, clock_mhz=clock_mhz, cache_root=cache_root) for p in points]
    return run_jobs(jobs, cluster, progress=progress, description=f"synthesizing for {target}")


def split(n: int, seed: int, holdout: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) indices of ``n`` samples; the same for the same seed."""
    order = np.random.default_rng(seed + 1).permutation(n)
    n_test = max(2, int(round(holdout * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def fit_relative(feats: Mapping[str, np.ndarray], measured: np.ndarray, offset=0) -> dict[str, float]:
    """Non-negative weights minimising the squared relative error of ``offset`` + sum(weight x
    feature) against ``measured`` (``offset``: a part counted exactly, such as memory LUTs)."""
    from scipy.optimize import nnls

    names = sorted(feats)
    y = np.asarray(measured, dtype=np.float64)
    matrix = np.stack([np.asarray(feats[k], dtype=np.float64) / y for k in names], axis=1)
    scale = np.maximum(np.abs(matrix).max(axis=0), 1e-30)      # condition the columns
    weights, _ = nnls(matrix / scale, 1.0 - np.broadcast_to(offset, y.shape) / y)
    return {k: float(w / s) for k, w, s in zip(names, weights, scale, strict=True)}


Roles = list[tuple[np.ndarray, np.ndarray, np.ndarray]]
"""A family's multipliers by role: (count per design, operand a bits, operand b bits)."""


def dsps_by_rule(roles: Roles, rule: tuple[int, int], per_product: Callable, designs: int) -> np.ndarray:
    """DSP blocks per design when ``rule`` decides which products go to hard multipliers."""
    return sum((np.where(on_hard_multiplier(a, b, rule), n * per_product(a, b), 0) for n, a, b in roles),
               start=np.zeros(designs, dtype=np.int64))


def fit_dsp_rule(roles: Roles, measured: np.ndarray, per_product: Callable) -> tuple[int, int]:
    """The (min bits, min product bits) that explains the most measured DSP counts."""
    best, best_hits = (99, 99), -1
    for min_bits in range(1, 17):
        for min_product in range(0, 33):
            hits = int(np.sum(dsps_by_rule(roles, (min_bits, min_product), per_product, len(measured))
                              == measured))
            if hits > best_hits:
                best, best_hits = (min_bits, min_product), hits
    return best


def _mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - measured) / np.abs(measured)) * 100.0)


@dataclass
class CalibrationReport:
    family: str
    target: str
    tech: str
    samples: int
    train: int
    held_out: int
    dsp_rule: tuple[int, int]
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    coefficients: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)   # held-out predicted vs measured

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("family", "target", "tech", "samples", "train", "held_out",
                                              "dsp_rule", "errors", "coefficients", "rows")}


@dataclass(frozen=True)
class Calibratable:
    """What calibration needs from a family (provided by its cost-model module)."""
    family: str
    params: type[Params]
    build: Callable
    box: Mapping[str, tuple[int, int]]
    # (points, DSP rule, the model target calibrated, its measured tables) -> feature tables
    features: Callable[[Sequence[Params], tuple[int, int], Target, Mapping[str, Any]],
                       dict[str, dict[str, np.ndarray]]]
    # (points, the model target) -> multipliers by role, operands as that target's DSPs take them
    multipliers: Callable[[Sequence[Params], Target], Roles]
    # (points, technology) -> exact "bram" and "lutram" counts; None: the family keeps no memories
    memories: Callable[[Sequence[Params], str], dict[str, np.ndarray]] | None = None
    # (technology, cache root, cluster) -> the tables the family's features read, measured on
    # that technology's flow before the fit and kept beside the coefficients; None: it reads none
    characterize: Callable[[str, Path, Cluster], dict[str, Any]] | None = None
    # a smaller box for a flow whose place and route of the biggest designs runs past its limit
    flow_boxes: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=dict)

    def box_for(self, flow: str) -> Mapping[str, tuple[int, int]]:
        return {**self.box, **self.flow_boxes.get(flow, {})}

    def memory_counts(self, points: Sequence[Params], tech: str) -> dict[str, np.ndarray]:
        zero = np.zeros(len(points), dtype=np.int64)
        counts = self.memories(points, tech) if self.memories is not None else {}
        return {"bram": np.asarray(counts.get("bram", zero)), "lutram": np.asarray(counts.get("lutram", zero))}


def calibration_sample(fam: Calibratable, target_name: str, samples: int, seed: int) -> list[Params]:
    """The designs calibration synthesizes for ``target_name``: stratified by where the
    committed DSP rule of the target's technology puts their multipliers (DSP or fabric),
    so both regimes are fitted; the generic flow has one regime."""
    synth_target = get_synth_target(target_name)
    box = fam.box_for(synth_target.flow)
    if synth_target.flow == "generic":
        return sample_points(fam.params, box, samples, seed)
    model_target = get_target(synth_target.model_target)
    committed = coeff_store.coefficients(fam.family, model_target.tech, coeff_store.FabricCoefficients)
    rule = (committed.dsp_min_bits, committed.dsp_min_product_bits)

    def on_dsp(points: list[Params]) -> np.ndarray:
        return dsps_by_rule(fam.multipliers(points, model_target), rule, lambda a, b: 1, len(points)) > 0

    return sample_points(fam.params, box, samples, seed, strata=on_dsp)


def calibrate(fam: Calibratable, target_name: str, *, samples: int, seed: int = 0, jobs: int | None = None,
              scheduler: str | None = None, cache_root: Path, out_file: Path | None = None,
              holdout: float = 0.25, command: str = "", progress: bool = False) -> CalibrationReport:
    """Fit ``fam``'s coefficients for ``target_name`` (see the module docstring); the designs
    are synthesized on the Dask cluster at ``scheduler`` (default ``ACCELFORGE_SCHEDULER``),
    else on a local one of ``jobs`` workers. Where they ran changes nothing in the result."""
    if not isinstance(samples, int) or not 16 <= samples <= 1000:     # a fit needs more designs
        raise ParamError(f"samples must be an integer in 16..1000, not {samples!r}")  # than features
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 256):
        raise ParamError(f"calibrate.jobs must be an integer in 1..256, not {jobs!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 2 ** 31 - 1:
        raise ParamError(f"calibrate.seed must be an integer in 0..{2 ** 31 - 1}, not {seed!r}")
    synth_target = get_synth_target(target_name)
    model_target = get_target(synth_target.model_target)
    tech = "cmos" if synth_target.flow == "generic" else model_target.tech
    points = calibration_sample(fam, target_name, samples, seed)
    cluster = Cluster.chosen(scheduler, jobs)
    results = synthesize_all(points, fam.build, target_name, cluster=cluster,
                             cache_root=cache_root, progress=progress)
    train_idx, test_idx = split(len(points), seed, holdout)
    report = CalibrationReport(fam.family, target_name, tech, len(points), len(train_idx), len(test_idx),
                               dsp_rule=(99, 99))
    tables: dict[str, Any] = {}
    if fam.characterize is not None and synth_target.flow != "generic":
        tables = fam.characterize(model_target.tech, cache_root, cluster)
        report.coefficients["tables"] = tables
    measured: dict[str, np.ndarray] = {}
    offsets: dict[str, np.ndarray] = {}
    if synth_target.flow == "generic":
        figures = {"transistors": "transistors"}
        rule = (99, 99)
    else:
        figures = {"lut": "lut", "ff": "ff"}
        if synth_target.has_fmax:
            figures["period_ns"] = "fmax_mhz"
        roles = fam.multipliers(points, model_target)
        dsp = np.array([r.dsp for r in results], dtype=np.int64)
        train_roles = [(n[train_idx], a[train_idx], b[train_idx]) for n, a, b in roles]
        rule = fit_dsp_rule(train_roles, dsp[train_idx], model_target.dsps_per_product)
        predicted_dsp = dsps_by_rule(roles, rule, model_target.dsps_per_product, len(points))
        report.errors["dsp"] = {"held_out_exact": float(np.mean(predicted_dsp[test_idx] == dsp[test_idx]))}
        memories = fam.memory_counts(points, tech)
        for kind in ("bram", "lutram"):
            counted = np.array([getattr(r, kind) or 0 for r in results], dtype=np.int64)
            report.errors[kind] = {"held_out_exact": float(np.mean(memories[kind][test_idx] == counted[test_idx])),
                                   "exact": float(np.mean(memories[kind] == counted))}
            measured[kind] = counted
        offsets["lut"] = memories["lutram"]         # memory LUTs are counted, not fitted
        measured["dsp"] = dsp
        report.coefficients["dsp_min_bits"], report.coefficients["dsp_min_product_bits"] = rule
    report.dsp_rule = rule
    feats_all = fam.features(points, rule, model_target, tables)
    group_of = {"transistors": "cmos"}
    predictions: dict[str, np.ndarray] = {}
    for table, attr in figures.items():
        values = np.array([getattr(r, attr) for r in results], dtype=np.float64)
        y = 1e3 / values if table == "period_ns" else values
        offset = offsets.get(table, 0)
        group = feats_all[group_of.get(table, table)]
        fitted = fit_relative({k: v[train_idx] for k, v in group.items()}, y[train_idx],
                              np.broadcast_to(offset, y.shape)[train_idx])
        pred = coeff_store.weighted(fitted, group) + offset
        if table == "period_ns":
            pred, y, label = 1e3 / pred, values, "fmax_mhz"
        else:
            label = table
        report.coefficients[table] = fitted
        report.errors[label] = {"train_mape_pct": _mape(pred[train_idx], y[train_idx]),
                                "held_out_mape_pct": _mape(pred[test_idx], y[test_idx]),
                                "held_out_max_pct": float(np.max(np.abs(pred[test_idx] - y[test_idx])
                                                                 / y[test_idx]) * 100.0)}
        predictions[label], measured[label] = pred, y
    for i in test_idx:
        row = {"params": points[i].to_dict(), "hash": points[i].digest()}
        for label in predictions:
            row[f"{label}_measured"] = float(measured[label][i])
            row[f"{label}_predicted"] = float(predictions[label][i])
        report.rows.append(row)
    if out_file is not None:
        _store(fam.family, tech, report, out_file, command)
    return report


def _store(family: str, tech: str, report: CalibrationReport, out_file: Path, command: str) -> None:
    source = coeff_store.DATA_DIR / f"{family}.json"
    document = json.loads((out_file if out_file.exists() else source).read_text())
    entry = document["techs"][tech]
    entry.update(report.coefficients)
    document["version"] = int(document.get("version", 0)) + 1
    document.setdefault("calibration", {})[tech] = {
        "target": report.target, "date": date.today().isoformat(), "samples": report.samples,
        "train": report.train, "held_out": report.held_out, "errors": report.errors,
        "command": command,
    }
    document["calibrated"] = True
    write_atomic(out_file, json.dumps(document, indent=2) + "\n")
    coeff_store.reload()
