"""The ``accelforge`` command line.

Every command validates all of its input before it writes anything; bad
input ends with one line on stderr and exit status 2. ``--json`` prints one
JSON document on stdout and nothing else there.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cost_models.coefficients import calibration_status
from cost_models.ops import PRICED_OPS, AttentionOp, Gemm, VectorOp
from cost_models.targets import TARGETS, get_target
from dse.families import FAMILIES, Family, get_family
from generators.artifact import render, write
from generators.axi import INTERFACES, render_as
from generators.params import ParamError, Params, parse_int

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default, unless it has none or says it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == [] or default == argparse.SUPPRESS \
                or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Errors in one line (not usage + message); every option's help shows its default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        raise UsageError(message)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: arrays as lists, NumPy scalars as Python ones, and a figure that is
    not a number (NaN, infinity: a design without one) as null, which JSON has."""
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n")


def _settings(items: Sequence[str]) -> dict[str, str]:
    """``--set key=value`` items as a dict of strings."""
    values: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, not {item!r}")
        values[key.strip()] = value
    return values


def _params(family: Family, settings: Sequence[str]) -> Params:
    return family.params.from_strings(_settings(settings))


def _given_ops(args: argparse.Namespace) -> dict[type, str]:
    """The ops named on the command line, by op type (``--gemm``, ``--attention``, ``--vector``)."""
    return {kind: text for kind in PRICED_OPS if (text := getattr(args, kind.flag, None))}


def _op(family: Family, params: Params, args: argparse.Namespace) -> Gemm | AttentionOp | VectorOp:
    """The op to price: the one given with the family's op type's flag, else its default op."""
    given = _given_ops(args)
    if family.op_type is None:
        if given:
            raise UsageError(f"{family.name} prices whole workloads: use --workload NAME|FILE")
        raise UsageError(f"{family.name} prices whole workloads: give --workload NAME|FILE")
    for kind in given:
        if kind is not family.op_type:
            raise UsageError(f"{family.name} prices {family.op_type.label}: use --{family.op_type.flag} "
                             f"{family.op_type.metavar}")
    text = given.get(family.op_type)
    return family.parse_op(text) if text else family.default_op(params)


def _one_op_flags() -> str:
    return " and ".join(f"--{kind.flag}" for kind in PRICED_OPS)


def _estimate_row(family: Family, params: Params, op: Gemm | AttentionOp | VectorOp, target_name: str) -> dict[str, Any]:
    table = family.estimate(params, op, get_target(target_name))
    return {key: _jsonable(column[0]) for key, column in table.items()}


def _status(message: str, quiet: bool):
    """A spinner on an interactive stderr, nothing in CI or with --json."""
    if quiet or not sys.stderr.isatty():
        from contextlib import nullcontext
        return nullcontext()
    from rich.console import Console
    return Console(stderr=True).status(message)


# ---------------------------------------------------------------------- commands
def cmd_generate(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    target = get_target(args.target)
    out = _out_folder(args.out)
    if args.workload and _given_ops(args):
        raise UsageError(f"--workload designs for a whole workload; leave out {_one_op_flags()}")
    if args.workload:
        from dse.workloads import load
        workload = load(args.workload)
        params, fitted = family.fitted_design(workload, _settings(args.set))
        table = family.price(family.params.columns([params]), workload, target)
        prediction = {"target": target.name, "workload": workload.name,
                      **{k: _jsonable(v[0]) for k, v in table.items()}, "model": family.model_info(),
                      **({"fitted_defaults": fitted} if fitted else {})}
    else:
        params = _params(family, args.set)
        gemm = _op(family, params, args)
        prediction = {"target": target.name, **gemm.describe(),
                      **_estimate_row(family, params, gemm, target.name),
                      "model": family.model_info()}
    _check_clock(args.clock_mhz)
    if args.flow == "vivado" and not args.part:
        raise UsageError("--flow vivado needs --part, for example --part xc7a100tcsg324-1")
    if args.part and args.flow != "vivado":
        raise UsageError("--part only applies with --flow vivado")
    artifact = render_as(args.interface, params, family.build, {"prediction": _jsonable(prediction)})
    project = None
    if args.flow == "vivado":
        from flows.vivado import vivado_project
        project = vivado_project(artifact, part=args.part, clock_mhz=args.clock_mhz or 200.0)
    _check_writable(out)
    files = write(artifact, out)
    if args.interface == "axi":
        from generators.axi import write_register_map
        files.update(write_register_map(artifact, out))
    from flows.fusesoc import write_core
    files["core"] = write_core(artifact, out, **({"part": args.part} if args.part else {}))
    if project is not None:
        from flows.vivado import write_vivado
        files.update(write_vivado(project, artifact, out))
    fitted = prediction.get("fitted_defaults", {})
    if args.json:
        _print_json({"top": artifact.top, "files": {k: str(v) for k, v in files.items()},
                     "hash": params.digest(), **({"fitted_defaults": fitted} if fitted else {})})
    else:
        print(f"{artifact.top}: wrote " + ", ".join(str(p) for p in files.values()))
        for line in _fitted_notes(family, fitted):
            print(f"note: {line}")
    return 0


def _check_clock(clock_mhz: float | None) -> None:
    if clock_mhz is not None and not 1.0 <= clock_mhz <= 2000.0:
        raise UsageError(f"--clock-mhz must be a number of MHz in 1..2000, not {clock_mhz:g}")


def _fitted_notes(family: Family, fitted: dict[str, Any]) -> list[str]:
    """What a design took in place of defaults that the workload rules out."""
    return [f"{family.name}.{key} set to {value}: its default does not fit the workload"
            for key, value in fitted.items()]


def cmd_estimate(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    if args.workload:
        return _estimate_workload(family, args)
    params = _params(family, args.set)
    gemm = _op(family, params, args)
    row = _estimate_row(family, params, gemm, args.target)
    fit = calibration_status(family.name, get_target(args.target).tech)
    document = {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                "target": args.target, **gemm.describe(), **row,
                "model": family.model_info(), "calibration": fit}
    if args.json:
        _print_json(document)
    else:
        width = max(len(k) for k in row)
        print(f"{family.name} {params.digest()} on {args.target}, {gemm.text()}")
        for key, value in row.items():
            print(f"  {key:<{width}}  {value:.6g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
        for line in _unfitted_notes(family, get_target(args.target)):
            print(f"  note: {line}")
    return 0


def _estimate_workload(family: Family, args: argparse.Namespace) -> int:
    """One design priced on a whole workload (the design takes the workload's pins)."""
    from dse.workloads import Phase, load

    if _given_ops(args):
        raise UsageError(f"--workload prices a whole workload; leave out {_one_op_flags()}")
    workload = load(args.workload)
    target = get_target(args.target)
    params, fitted = family.fitted_design(workload, _settings(args.set))
    table = family.price(family.params.columns([params]), workload, target, breakdown=True)
    row = {k: _jsonable(v[0]) for k, v in table.items() if k != "ops"}
    headline = ({"ttft_s": row["latency_s"]} if workload.phase is Phase.PREFILL
                else {"tokens_per_s": row["tokens_per_s"]})
    ops = [{"name": o["name"], "engine": o["engine"], "count": o["count"], "seconds": _jsonable(o["seconds"][0]),
            "bound": _jsonable(o["bound"][0])} for o in table.get("ops", [])]
    document = {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                "target": target.name, "workload": workload.name, "tokens": workload.tokens,
                **headline, **row, "ops": ops, "model": family.model_info(),
                **({"fitted_defaults": fitted} if fitted else {})}
    if args.json:
        _print_json(document)
        return 0
    print(f"{family.name} {params.digest()} on {target.name}, {workload.name} ({workload.tokens} tokens)")
    keys = [*headline, "latency_s", "roofline_tokens_per_s", "roofline_fraction", "energy_per_token_j",
            "fits", "lut", "ff", "dsp", "bram", "lutram", "clock_mhz"]
    budgets = {"lut": "luts", "ff": "ffs", "dsp": "dsps", "bram": "brams", "lutram": "lutrams"}
    for key in dict.fromkeys(k for k in keys if k in document):
        value = document[key]
        if key in budgets:
            budget = getattr(target, budgets[key])
            print(f"  {key:<22}  {value:,.0f}" + (f" of {budget:,}" if budget else ""))
        else:
            print(f"  {key:<22}  {value:.4g}" if isinstance(value, float) else f"  {key:<22}  {value}")
    if ops:
        total = sum(o["count"] * o["seconds"] for o in ops)
        print(f"  {'op':<22} {'engine':<10} {'count':>6} {'s each':>11} {'s total':>10} {'share':>6}  bound")
        for o in ops:
            t = o["count"] * o["seconds"]
            print(f"  {o['name']:<22} {o['engine']:<10} {o['count']:>6} {o['seconds']:>11.4g} {t:>10.4g} "
                  f"{t / total:>6.1%}  {o['bound']}")
    notes = _fitted_notes(family, fitted) + _unfitted_notes(family, target)
    if family.op_type is not None:
        notes.append(f"only the workload's {family.op_type.label} are priced; the rest of a token is left "
                     f"out (the accelerator family prices every op)")
    for line in notes:
        print(f"  note: {line}")
    return 0


def _unfitted_notes(family: Family, target) -> list[str]:
    """A line for an engine family whose coefficients for the target's technology were never
    fitted (a composed family's engines say theirs in the report)."""
    if family.op_type is None or not calibration_status(family.name, target.tech)["source"].startswith(
            ("not fitted", "no coefficient")):
        return []
    what = "resources, Fmax and energy" if target.kind.value == "fpga" else "Fmax and energy"
    return [f"{family.name}'s coefficients for {target.tech} are not fitted: its {what} are first guesses"]




def cmd_verify(args: argparse.Namespace) -> int:
    from dse.verify import verify_parts

    family = get_family(args.family)
    params = _params(family, args.set)
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {args.seed}")
    with _status(f"verifying {family.name} {params.digest()} on {args.simulator}", args.json):
        results = [(e, p, r) for e, p, _, r in verify_parts(family, params, seed=args.seed, waves=args.waves,
                                                             simulator=args.simulator, interface=args.interface)]
    passed = all(r.passed for _, _, r in results)
    if args.json:
        documents = [{"family": e.name, "params": p.to_dict(), "hash": p.digest(), "seed": args.seed,
                      **r.to_dict()} for e, p, r in results]
        _print_json(documents[0] if len(documents) == 1 and family.parts is None else
                    {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                     "passed": passed, "engines": documents})
        return 0 if passed else EXIT_FAILED
    for engine, part, result in results:
        if len(results) > 1:
            print(f"{engine.name} {part.digest()}:")
        print(result.sim.summary())
        bad = [c for c in result.checks if not c.ok]
        print(f"{len(result.checks)} cycle checks against the model, {len(bad)} mismatched:")
        tw = max([22, *(len(c.test) for c in result.checks)])
        print(f"  {'test':<{tw}} {'figure':<22} {'measured':>9} {'model':>9}  rule")
        shown = set()
        for c in result.checks:
            if (c.test, c.figure) in shown and c.ok:
                continue                                  # one line per figure unless it failed
            shown.add((c.test, c.figure))
            rule = ("==" if c.exact else ">=") + ("" if c.ok else "  MISMATCH")
            print(f"  {c.test:<{tw}} {c.figure:<22} {c.measured:>9} {c.model:>9}  {rule}")
    return 0 if passed else EXIT_FAILED


def cmd_synth(args: argparse.Namespace) -> int:
    from flows.synth import get_synth_target, make_job, run_job
    from flows.tools import FlowError
    from verif.runner import cache_root

    family = get_family(args.family)
    if family.estimate is None:
        raise UsageError(f"{family.name} has no single-op prediction to hold synthesis against; synthesize "
                         f"its engines one by one (accelforge synth <engine family> ...)")
    params = _params(family, args.set)
    target = get_synth_target(args.target)
    if args.breakdown and target.flow == "generic":
        raise UsageError("--breakdown needs an FPGA target (ecp5-*, xilinx-*): the generic flow has no LUTs")
    _check_clock(args.clock_mhz)
    if not 1.0 <= args.timeout <= 86400.0:
        raise UsageError(f"--timeout must be a number of seconds in 1..86400, not {args.timeout:g}")
    artifact = render_as(args.interface, params, family.build)
    with _status(f"synthesizing {artifact.top} for {target.name}", args.json):
        try:
            result = run_job(make_job(artifact, target.name, clock_mhz=args.clock_mhz,
                                      cache_root=cache_root(), timeout_s=args.timeout))
        except FlowError as exc:
            print(f"accelforge: synthesis failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    gemm = family.default_op(params)
    predicted = _estimate_row(family, params, gemm, target.model_target)
    keys = ("lut", "lutram", "ff", "dsp", "bram", "fmax_mhz") if target.flow != "generic" else ("area_transistors",)
    pairs = {}
    for key in keys:
        measured = getattr(result, "transistors" if key == "area_transistors" else key)
        pairs[key] = {"measured": measured, "predicted": predicted[key]}
    document = {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                "interface": args.interface, "target": target.name, "figures": pairs,
                "met_timing": result.met_timing,
                "clock_mhz": result.clock_mhz, "measured": result.to_dict(),
                "model": family.model_info()}
    if args.breakdown:
        from flows.netlist import breakdown_of
        try:
            document["lut_breakdown"] = breakdown_of(Path(result.log).parent, artifact.top, target.flow)
        except FlowError as exc:
            print(f"accelforge: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        _print_json(document)
    else:
        print(f"{artifact.top} on {target.name}" + (f" at {result.clock_mhz:g} MHz" if result.clock_mhz else "")
              + (" (cached)" if result.cached else f" ({result.runtime_s:.1f} s)"))
        print(f"  {'figure':<18} {'measured':>12} {'predicted':>12}"
              + ("  (predicted: the engine alone, without its AXI wrapper)" if args.interface == "axi" else ""))
        for key, pair in pairs.items():
            m, p = pair["measured"], pair["predicted"]
            m_text = "-" if m is None else (f"{m:.1f}" if isinstance(m, float) else str(m))
            print(f"  {key:<18} {m_text:>12} {p:>12.1f}")
        if result.met_timing is not None:
            print(f"  met_timing         {result.met_timing}")
        if args.breakdown:
            blocks = document["lut_breakdown"]
            print(f"LUTs of the mapped netlist by the block they feed ({sum(blocks.values())} in all):")
            for block, luts in blocks.items():
                print(f"  {block:<30} {luts:>8}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from flows.calibrate import calibrate
    from flows.tools import FlowError
    from verif.runner import cache_root

    family = get_family(args.family)
    if family.calibration is None:
        raise UsageError(f"{family.name} has no calibration hooks yet")
    out = Path(args.out) if args.out else None
    command = (f"accelforge calibrate {family.name} --target {args.target} --samples {args.samples} "
               f"--seed {args.seed}")
    try:
        report = calibrate(family.calibration, args.target, samples=args.samples, seed=args.seed,
                           jobs=args.jobs, scheduler=args.scheduler, cache_root=cache_root(), out_file=out or _default_coeff_file(family),
                           command=command, progress=not args.json)
    except FlowError as exc:            # the finished designs stay cached: a rerun resumes
        print(f"accelforge: calibration stopped, a synthesis failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"{family.name} on {args.target}: {report.samples} designs, {report.train} fitted, "
          f"{report.held_out} held out; DSP rule {report.dsp_rule}")
    for figure, errors in report.errors.items():
        print(f"  {figure:<12} " + ", ".join(f"{k} {v:.3g}" for k, v in errors.items()))
    return 0


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    from flows.cluster import SCHEDULER_ENV

    p.add_argument("--jobs", type=_integer, default=None,
                   help="worker processes of the local Dask cluster (default: one per core)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help=f"run the syntheses on this Dask cluster (default: ${SCHEDULER_ENV}, else a local one)")


def _default_coeff_file(family: Family) -> Path:
    from cost_models.coefficients import DATA_DIR
    return DATA_DIR / f"{family.name}.json"


def _check_top_designs(explorer, front, verify_n: int, synth_n: int, quiet: bool, cluster) -> dict[str, list]:
    """Verify and/or synthesize the best designs (the syntheses on ``cluster``); predicted
    against measured."""
    from dse.verify import verify_parts
    from flows.synth import SYNTH_TARGETS, cached_result, make_job, run_jobs
    from flows.tools import FlowError
    from verif.runner import cache_root

    from dse.report import front_points

    checks: dict[str, list] = {}
    points = front_points(explorer, front, max(verify_n, synth_n))
    for _, params in points[:verify_n]:
        with _status(f"verifying {params.digest()}", quiet):
            results = verify_parts(explorer.family, params)
        for engine, part, _, result in results:
            checks.setdefault("verify", []).append({
                "hash": params.digest(), **({"engine": engine.name} if explorer.family.parts else {}),
                "passed": result.passed, "tests": result.sim.tests, "cycle_checks": len(result.checks),
                "cycle_mismatches": sum(not c.ok for c in result.checks)})
    synth_target = explorer.cfg.target if explorer.cfg.target in SYNTH_TARGETS else "generic"
    chosen = points[:synth_n]
    jobs = [make_job(render(params, explorer.family.build), synth_target, cache_root=cache_root())
            for _, params in chosen]
    failure = ""
    try:                                          # one batch on the cluster; every finished one is kept
        run_jobs(jobs, cluster, progress=not quiet, description=f"synthesizing for {synth_target}")
    except FlowError as exc:
        failure = str(exc)
    for (row, params), job in zip(chosen, jobs, strict=True):
        entry: dict[str, Any] = {"hash": params.digest(), "target": synth_target}
        result = cached_result(job)
        if result is None:
            entry["error"] = failure
        else:
            for key in ("lut", "ff", "dsp", "fmax_mhz"):
                entry[f"{key}_predicted"] = _jsonable(row.get(key))
                entry[f"{key}_measured"] = getattr(result, key)
            entry["met_timing"] = result.met_timing
        checks.setdefault("synth", []).append(entry)
    return checks


def cmd_explore(args: argparse.Namespace) -> int:
    from dse.evaluate import parse_objectives
    from dse.explorer import ExploreConfig, Explorer, make_storage, public_url
    from dse.space import parse_ranges
    from dse.report import distinct_designs, pareto_frame, summary_table, trials_frame, write_outputs

    out = _out_folder(args.out)
    pins = _settings(args.set)
    for flag in ("verify_top", "synth_top", "top"):
        value = getattr(args, flag)
        if not 0 <= value <= 50:
            raise UsageError(f"--{flag.replace('_', '-')} must be an integer in 0..50, not {value}")
    from flows.cluster import Cluster
    cluster = Cluster.chosen(args.scheduler)      # a bad address is refused before the study runs
    if args.synth_top and get_family(args.family).estimate is None:
        raise UsageError(f"--synth-top: {args.family} designs are synthesized engine by engine "
                         f"(accelforge synth <engine family> ...)")
    from dse.workloads import canonical
    workload = canonical(args.workload)
    cfg = ExploreConfig(family=args.family, workload=workload, target=args.target, trials=args.trials,
                        out=args.out, sampler=args.sampler, objectives=parse_objectives(args.objectives),
                        seed=args.seed, batch=args.batch, workers=args.workers, storage=args.storage,
                        pins=pins, ranges=parse_ranges(args.range),
                        study_name=_study_name(args.study_name, out, args.family, workload, args.target))
    explorer = Explorer(cfg)
    cfg = explorer.cfg                            # with the workload's content digest
    if cfg.storage:                               # a bad URL, a silent server or another run's study is
        explorer.check_settings(make_storage(cfg.storage), adopt=False)   # refused before --out is made
    _check_run_folder(out, cfg)
    new_folder = not out.exists()
    _check_writable(out)
    try:
        explorer.run(progress=not args.json)
    except (UsageError, ParamError):
        if new_folder:                            # refused before any trial: leave no folder behind
            _remove_new_run_folder(out)
        raise
    frame = trials_frame(explorer)
    front = pareto_frame(explorer, frame)
    if args.verify_top or args.synth_top:
        from generators.artifact import write_atomic
        checks = _check_top_designs(explorer, front, args.verify_top, args.synth_top, args.json, cluster)
        write_atomic(out / "checks.json", json.dumps(_jsonable(checks), indent=2, allow_nan=False) + "\n")
    paths = write_outputs(explorer, top=max(args.top, args.verify_top, args.synth_top), frame=frame)
    document = {"family": cfg.family, "workload": explorer.workload.name, "target": cfg.target,
                "trials": len(frame), "distinct": distinct_designs(explorer, frame),
                "feasible": int(frame["feasible"].sum()), "pareto": len(front),
                "pinned": explorer.space.pinned, "storage": public_url(cfg.storage_url()),
                "files": {k: str(v) for k, v in paths.items()},
                "front": _jsonable(front.head(10).to_dict(orient="records"))}
    if (out / "checks.json").exists():
        document["checks"] = json.loads((out / "checks.json").read_text())
    if args.json:
        _print_json(document)
        return 0
    print(f"{cfg.family} for {explorer.workload.name} on {cfg.target}: {len(frame)} trials "
          f"({document['distinct']} distinct designs), {document['feasible']} fit, {len(front)} on the Pareto front "
          f"(pinned: {', '.join(f'{k}={v}' for k, v in explorer.space.pinned.items())})")
    print(summary_table(explorer, front))
    for kind, rows in document.get("checks", {}).items():
        for row in rows:
            print(f"{kind}: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    print(f"report: {paths['report.html']}")
    return 0


def _out_folder(text: str, flag: str = "--out") -> Path:
    """``text`` as an output folder, refused (a usage error) when it cannot be one: empty,
    the file system's root, not encodable as UTF-8, a dangling link or an existing file."""
    if not text.strip():
        raise UsageError(f"{flag} must name a folder, not an empty string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{flag} must be a UTF-8 path, not {text!r}") from None
    out = Path(text)
    try:
        if out.is_symlink() and not out.exists():
            raise UsageError(f"{flag} {text!r} is a link to {os.readlink(out)!r}, which does not exist")
        if out.exists() and out.resolve() == Path(out.resolve().anchor):
            raise UsageError(f"{flag} must not be the file system's root; name a folder for the outputs")
        if out.exists() and not out.is_dir():
            raise UsageError(f"{flag} must be a folder, not the file {text!r}")
    except OSError as exc:                           # a name too long, a loop of links, ...
        raise UsageError(f"{flag} {text!r} cannot be written: {exc.strerror or exc}") from None
    return out


def _remove_new_run_folder(out: Path) -> None:
    """Undo a refused run's new folder: its lock files, then the folder if nothing else is in it."""
    from dse.explorer import WORKERS_LOCK
    for name in (".lock", WORKERS_LOCK):
        with contextlib.suppress(OSError):
            (out / name).unlink()
    with contextlib.suppress(OSError):
        out.rmdir()


def _check_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written (a read-only file system, an immutable or
    foreign folder) before anything is written; folders made for the probe are removed."""
    made = [p for p in (out, *out.parents) if not p.exists()][::-1]
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise UsageError(f"--out {str(out)!r} cannot be written: {exc.strerror or exc}") from None


def _study_name(given: str | None, out: Path, family: str, workload: str, target: str) -> str | None:
    """The name given, else the one the run folder's run.json keeps (None for a run from before
    runs were named: its study keeps the old shared name), else one from the settings."""
    from dse.explorer import default_study_name
    if given is not None:
        return given
    try:
        stored = json.loads((out / "run.json").read_text())
    except (OSError, ValueError, RecursionError):
        stored = None
    if isinstance(stored, dict):
        return stored.get("study_name")
    return default_study_name(family, workload, target)


def _check_run_folder(out: Path, cfg) -> None:
    """A run folder belongs to one exploration: refuse to write another family's (or another
    study's) results over the ones its run.json describes."""
    try:
        stored = json.loads((out / "run.json").read_text())
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(stored, dict):
        return
    from dse.explorer import settings_differ
    mine = {k: v for k, v in cfg.to_dict().items() if k in ("family", "workload", "target", "storage",
                                                           "workload_digest", "study_name")}
    clash = settings_differ(stored, mine, skip=("workload_digest",))
    if stored.get("workload_digest") not in (None, mine["workload_digest"]):
        if not clash and stored.get("workload") == mine["workload"]:
            raise UsageError(f"workload {mine['workload']!r} has changed since the run in {str(out)!r} began "
                             f"(content {stored['workload_digest']} then, {mine['workload_digest']} now); "
                             f"restore it or use a new --out folder")
        clash.append("workload_digest")
    if clash:
        what = ", ".join(f"{k} {stored.get(k)!r}" for k in clash)
        raise UsageError(f"--out {str(out)!r} holds another exploration ({what}); use a new --out folder")


def cmd_report(args: argparse.Namespace) -> int:
    from dse.explorer import ExploreConfig, Explorer
    from dse.report import write_outputs

    if not 0 <= args.top <= 50:
        raise UsageError(f"--top must be an integer in 0..50, not {args.top}")
    run = Path(args.dir) / "run.json"
    if not run.is_file():
        raise UsageError(f"{args.dir} is not an explore run folder (no run.json)")
    try:
        stored = json.loads(run.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ParamError("it must hold a table of settings")
        cfg = ExploreConfig.from_dict({**stored, "out": args.dir,
                                       **({"storage": args.storage} if args.storage else {})})
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UsageError(f"{run} is not a valid run file: {exc}") from None
    if cfg.storage is None and not (Path(args.dir) / "study.db").is_file():
        raise UsageError(f"{args.dir} holds no study.db: nothing to report")
    explorer = Explorer(cfg, read_only=True)     # a report reads the study; it never creates or repairs it
    explorer.open_study()                         # another run's study is not reported here
    _check_writable(Path(args.dir))
    paths = write_outputs(explorer, top=args.top)
    print(f"report: {paths['report.html']}")
    return 0


# ---------------------------------------------------------------------- parser
def _add_design_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="set a parameter (repeatable); `accelforge params FAMILY` lists them")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    for kind in PRICED_OPS:
        p.add_argument(f"--{kind.flag}", metavar=kind.metavar, help=kind.flag_help)
    p.add_argument("--workload", help="price a whole workload (preset name or .toml/.yaml) instead of one op; "
                                      "the design takes the workload's operand widths and shapes")
    p.add_argument("--target", default="ecp5-85k", help=f"one of: {', '.join(TARGETS)}")


def cmd_params(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    infos = family.params.fields()
    if args.json:
        _print_json([{"name": i.name, "allowed": i.describe(),
                      "default": i.default.value if hasattr(i.default, "value") else i.default,
                      "doc": i.spec.doc} for i in infos])
        return 0
    rows = [(i.name, i.describe(), str(i.default.value if hasattr(i.default, "value") else i.default),
             i.spec.doc) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for name, allowed, default, doc in rows:
        print(f"{name:<{widths[0]}}  {allowed:<{widths[1]}}  default {default:<{widths[2]}}  {doc}")
    for line in family.params.nested_help():
        print(line)
    return 0


def _add_interface_arg(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--interface", choices=INTERFACES, default="engine", help=text)


def _integer(text: str) -> int:
    """An integer flag, spelled as ``--set`` values are (ASCII digits; argparse's own ``int``
    would take ``1_000`` and other scripts' digits)."""
    try:
        return parse_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def _number(text: str) -> float:
    """A finite number flag (``nan`` and ``inf`` are not clocks or time limits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value) or not re.fullmatch(r"[+-]?[0-9.eE+-]+", text.strip()):
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("accelforge")
    except PackageNotFoundError:                  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelforge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("generate", help="write Verilog and manifest.json for one design")
    _add_design_args(p)
    _add_workload_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--flow", choices=["vivado"], help="also write a Vivado project script and XDC")
    p.add_argument("--part", help="Xilinx part for --flow vivado, e.g. xc7a100tcsg324-1")
    p.add_argument("--clock-mhz", type=_number, help="clock constraint for --flow vivado (default 200)")
    _add_interface_arg(p, "the engine's own ports, or an AXI wrapper (AXI4-Stream data, AXI4-Lite "
                          "registers, one set per engine of a composed design; also writes the "
                          "register map as <top>_regs.h and <top>_regs.py)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("estimate", help="print the cost model's PPA for one design")
    _add_design_args(p)
    _add_workload_args(p)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("verify", help="simulate one design with cocotb on Verilator or Icarus")
    _add_design_args(p)
    p.add_argument("--seed", type=_integer, default=1, help="random seed of the testbench")
    p.add_argument("--waves", action="store_true", help="dump a VCD of the run")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                   help="verilator (two-state, default) or icarus (four-state: an X on a sampled "
                        "output fails the test)")
    _add_interface_arg(p, "the engine's own bench, or the AXI wrapper's bench (cocotbext-axi through "
                          "the Python driver; the wrapper's latency held exact)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("synth", help="synthesize one design (Yosys/nextpnr), measured vs predicted")
    _add_design_args(p)
    p.add_argument("--target", default="ecp5-85k",
                   help="ecp5-25k, ecp5-85k, xilinx-7, xilinx-us or generic")
    p.add_argument("--clock-mhz", type=_number, help="clock constraint (ECP5 flows; default 100)")
    p.add_argument("--timeout", type=_number, default=1800.0, help="time limit per tool call, s")
    _add_interface_arg(p, "the engine alone, or wrapped in AXI (what the wrapper adds shows in "
                          "--breakdown as the top level's own logic)")
    p.add_argument("--breakdown", action="store_true",
                   help="also list the mapped netlist's LUTs by the block whose registers they feed")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("calibrate", help="fit the cost model's coefficients to synthesis")
    p.add_argument("family", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--target", default="ecp5-85k", help="ecp5-85k, xilinx-7, generic, ...")
    p.add_argument("--samples", type=_integer, default=40, help="designs to synthesize (16..1000)")
    p.add_argument("--seed", type=_integer, default=0, help="seed of the design sample and the held-out split")
    _cluster_arguments(p)
    p.add_argument("--out", help="coefficient file to write (default: the package's own)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON document")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("explore", help="search a family's design space for a workload with Optuna")
    p.add_argument("--family", required=True, help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--workload", required=True, help="preset name (e.g. bitnet-b1.58-3b-decode) or .toml/.yaml")
    p.add_argument("--target", default="ecp5-85k", help=f"one of: {', '.join(TARGETS)}")
    p.add_argument("--trials", type=_integer, default=1000, help="completed trials the study should hold")
    p.add_argument("--sampler", default="nsga2", help="nsga2 (default), tpe, random or grid")
    p.add_argument("--objectives", default="latency,energy,area",
                   help="1-3 of latency, tokens_per_s, energy, area (FPGA: device utilisation, the largest "
                        "of the LUT, FF, DSP and block-RAM fractions; ASIC: transistors)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[], help="pin a parameter")
    p.add_argument("--range", action="append", metavar="KEY=LO..HI", default=[],
                   help="narrow an integer parameter's search range")
    p.add_argument("--seed", type=_integer, default=0, help="the sampler's seed")
    p.add_argument("--batch", type=_integer, default=50, help="trials asked and priced together")
    p.add_argument("--workers", type=_integer, default=1, help="processes sharing the study")
    p.add_argument("--storage", help="SQLAlchemy URL (default: sqlite study.db in --out)")
    p.add_argument("--study-name", help="the study's name in the storage (default: FAMILY:WORKLOAD:TARGET, "
                                        "so that runs of other settings share a --storage)")
    p.add_argument("--top", type=_integer, default=3, help="write Verilog for this many front designs")
    p.add_argument("--verify-top", type=_integer, default=0, help="cocotb-verify the N best designs")
    p.add_argument("--synth-top", type=_integer, default=0, help="synthesize the N best designs")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run --synth-top's syntheses on this Dask cluster (default: $ACCELFORGE_SCHEDULER, "
                        "else a local one)")
    p.add_argument("--out", required=True, help="run folder (resumes if it holds a run)")
    p.add_argument("--json", action="store_true", help="print the run's summary as one JSON document")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("report", help="rebuild an explore run's report from its storage")
    p.add_argument("dir", help="the run folder")
    p.add_argument("--top", type=_integer, default=3, help="write Verilog for this many front designs")
    p.add_argument("--storage", help="the study's SQLAlchemy URL when it is not the stored one (run.json keeps "
                                     "it without a password: PGPASSWORD or ~/.pgpass supply that)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("params", help="list a family's parameters and allowed values")
    p.add_argument("family", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--json", action="store_true", help="print them as one JSON document")
    p.set_defaults(func=cmd_params)
    return parser


ERROR_LINE_LIMIT = 400


def _error_line(exc: BaseException) -> str:
    """An error as one readable line: its first line, cut to ``ERROR_LINE_LIMIT`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= ERROR_LINE_LIMIT else text[:ERROR_LINE_LIMIT] + f"... ({len(text):,} characters)"


class _Interrupts:
    """Ctrl-C raises ``KeyboardInterrupt`` as usual and is also remembered, so an interrupt
    that a library swallowed (one raised inside a finalizer is only printed) still ends the
    command with status 130 instead of 0."""

    def __init__(self):
        self.seen = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.seen = True
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def main(argv: Sequence[str] | None = None) -> int:
    with _Interrupts() as interrupts:
        status = _run(argv, interrupts)
    return status


def _interrupted(args) -> int:
    resume = ("; run the same command again to resume from what is stored"
              if getattr(args, "command", None) == "explore" else "")
    print(f"accelforge: interrupted{resume}", file=sys.stderr)
    return 130


def _run(argv: Sequence[str] | None, interrupts: _Interrupts) -> int:
    from dse.explorer import WorkersFailed
    from dse.storage import StorageFault, storage_fault

    args = None
    try:
        args = build_parser().parse_args(argv)
        status = args.func(args)
        sys.stdout.flush()                        # a closed pipe shows here, not at exit
        return _interrupted(args) if interrupts.seen else status
    except (UsageError, ParamError) as exc:
        fault = storage_fault(exc)
        if fault:
            print(f"accelforge: error: {fault}", file=sys.stderr)
            return EXIT_FAILED
        print(f"accelforge: error: {_error_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted(args)
    except (StorageFault, WorkersFailed) as exc:  # a worker failed; it said why
        print(f"accelforge: error: {_error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:                       # `accelforge ... | head -1`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:                        # a disk that fills or a folder that goes away mid-run
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"accelforge: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        fault = storage_fault(exc)                # the study's database failed: say which fault, in one line
        if fault is None:
            raise
        print(f"accelforge: error: {fault}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
