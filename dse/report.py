"""What an exploration leaves in its run folder, rebuilt from storage at any time.

``trials.parquet``/``trials.csv`` (every completed trial with its parameters
and PPA), ``pareto.csv`` (the feasible Pareto front), ``pareto.png``,
``report.html`` (self-contained) and ``designs/<top>/`` (Verilog and
manifest of the best designs). Verification and synthesis of top designs
are kept in ``checks.json`` so the report can show them again.
"""
from __future__ import annotations

import base64
import html
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from cost_models.coefficients import calibration_status
from dse.evaluate import OBJECTIVES, pareto_mask
from dse.explorer import Explorer, public_url, stored_metrics
from generators.artifact import write_atomic, write_if_changed
from generators.params import ParamError


def _stored_checks(path: Path) -> dict[str, Any]:
    """The verification and synthesis checks an explore run kept, if any."""
    if not path.exists():
        return {}
    try:
        checks = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ParamError(f"{path} is not a valid checks file ({exc}); remove it or run explore again") from None
    if not isinstance(checks, dict) or not all(isinstance(v, list) for v in checks.values()):
        raise ParamError(f"{path} is not a valid checks file: it must map check kinds to lists")
    return checks


def trials_frame(explorer: Explorer) -> pd.DataFrame:
    study = explorer.open_study()
    where = public_url(explorer.cfg.storage_url())
    try:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    except json.JSONDecodeError as exc:            # an attribute edited or damaged in the database
        raise ParamError(f"the study in {where} holds a trial attribute that is not JSON ({exc})") from None
    rows = []
    for t in trials:
        row: dict[str, Any] = {"trial": t.number}
        row.update({**explorer.space.pinned, **t.params})
        metrics = stored_metrics(t.user_attrs)
        if not isinstance(metrics, dict):
            raise ParamError(f"trial {t.number} of the study in {where} has a malformed 'metrics' attribute "
                             f"({str(metrics)[:60]!r}); it must be a table of figures")
        for name, value in metrics.items():
            if value is not None and not isinstance(value, (int, float)):
                raise ParamError(f"trial {t.number} of the study in {where} has a malformed {name!r} attribute "
                                 f"({str(value)[:60]!r}); it must be a number or null")
        row.update(metrics)
        row["feasible"] = bool(t.constraints) and all(c <= 0 for c in t.constraints.values())
        try:
            row["hash"] = explorer.space.point(t.params).digest()
        except ValueError:                  # a combination the family rules out (never feasible)
            row["hash"] = ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("trial").reset_index(drop=True)


def pareto_frame(explorer: Explorer, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    feasible = frame[frame["feasible"]]
    columns = [o.column for o in explorer.objectives]
    values = feasible[columns].to_numpy(dtype=float)
    front = feasible[pareto_mask(values, explorer.directions)]
    first = explorer.objectives[0]
    return front.sort_values(first.column, ascending=first.direction == "minimize").reset_index(drop=True)


def param_names(explorer: Explorer) -> list[str]:
    return [i.name for i in explorer.family.params.fields() if i.name in explorer.space.pinned
            or any(d.name == i.name for d in explorer.space.dimensions)]


def _label(explorer: Explorer, objective) -> str:
    if objective.name == "area":
        return f"area ({explorer.target.area_label})"
    if objective.name == "latency":
        return "latency per workload pass (s)"
    return f"{objective.name} ({objective.unit})"


def _plot(explorer: Explorer, frame: pd.DataFrame, front: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objs = explorer.objectives
    x_obj = objs[0]
    y_obj = objs[1] if len(objs) > 1 else None
    y_col = y_obj.column if y_obj else "area"
    fig, ax = plt.subplots(figsize=(7, 5))
    bad = frame[~frame["feasible"]]
    good = frame[frame["feasible"]]
    ax.scatter(bad[x_obj.column], bad[y_col], s=8, marker="x", color="#e0a0a0", label="does not fit")
    color = front[objs[2].column] if len(objs) > 2 else None
    ax.scatter(good[x_obj.column], good[y_col], s=8, color="#b0b0b0", label="feasible")
    points = ax.scatter(front[x_obj.column], front[y_col], s=30, c=color, cmap="viridis", norm=_color_norm(color),
                        edgecolors="black", linewidths=0.5, label="Pareto front", zorder=3)
    if color is not None:
        fig.colorbar(points, ax=ax, label=_label(explorer, objs[2]))
    _log_where_wide(ax, frame[x_obj.column], frame[y_col])
    ax.set_xlabel(_label(explorer, x_obj))
    ax.set_ylabel(_label(explorer, y_obj) if y_obj else "area")
    cfg = explorer.cfg
    ax.set_title(f"{cfg.family} on {cfg.target}: {explorer.workload.name}, {len(frame)} trials ({cfg.sampler})")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _wide(values) -> bool:
    """Whether the positive ``values`` span more than two decades (a log scale reads them)."""
    positive = values[values > 0]
    return bool(len(positive)) and positive.max() / positive.min() > 100


def _log_where_wide(ax, x, y) -> None:
    for axis, values in (("x", x), ("y", y)):
        if _wide(values):
            getattr(ax, f"set_{axis}scale")("log")


def _color_norm(values):
    """A log colour scale where the coloured objective (all positive) spans more than two decades."""
    from matplotlib.colors import LogNorm

    if values is None or len(values) == 0 or not (values > 0).all() or not _wide(values):
        return None
    return LogNorm(values.min(), values.max())


TRADEOFFS = (("area", "tokens_per_s", "area", "tokens/s", ("minimize", "maximize")),
             ("tokens_per_s", "energy_per_token_j", "tokens/s", "energy per token (J)", ("maximize", "minimize")))
"""The two panels of ``tradeoffs.png``: x and y columns, their labels and directions."""


def panel_front(designs: pd.DataFrame, x: str, y: str, directions: tuple[str, str]) -> pd.DataFrame:
    """The designs that no other beats on both ``x`` and ``y`` (a 2-D front)."""
    if designs.empty:
        return designs
    values = designs[[x, y]].to_numpy(dtype=float)
    return designs[pareto_mask(values, directions)]


def _tradeoffs(explorer: Explorer, frame: pd.DataFrame, front: pd.DataFrame, path: Path) -> None:
    """The trade-offs users choose between, whatever the study's objectives: throughput against
    area (device utilisation on an FPGA) and energy per token against throughput, every design
    that fits in grey, in colour the designs no other beats on both of the panel's axes (the
    study's own front, over all its objectives, is not that)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = frame[frame["feasible"]]
    area_label = _label(explorer, OBJECTIVES["area"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (x, y, xlabel, ylabel, directions) in zip(axes, TRADEOFFS, strict=True):
        xlabel = area_label if x == "area" else xlabel
        best = panel_front(good, x, y, directions)
        ax.scatter(good[x], good[y], s=8, color="#b0b0b0", label="fits the device")
        ax.scatter(best[x], best[y], s=30, color="#2a788e", edgecolors="black", linewidths=0.5,
                   label="best of these two", zorder=3)
        _log_where_wide(ax, good[x], good[y])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{explorer.cfg.family} on {explorer.cfg.target}: {explorer.workload.name}")
    fig.tight_layout()
    _save(fig, path)


def distinct_designs(explorer: Explorer, frame: pd.DataFrame) -> int:
    """Distinct designs among the trials (a sampler may propose one again)."""
    names = [d.name for d in explorer.space.dimensions if d.name in frame]
    return int(len(frame[names].astype(str).drop_duplicates())) if names else min(len(frame), 1)


def summary_table(explorer: Explorer, front: pd.DataFrame, limit: int = 10) -> str:
    if front.empty:
        return "no feasible design found"
    shown_rows = front.head(limit)
    names = [d.name for d in explorer.space.dimensions           # a composed design's nested fields
             if "." not in d.name]                                # (gemm kind's, attention's) are in the report
    fabric = ["lut", "dsp"] if explorer.target.kind.value == "fpga" else []
    cols = ["hash", *names, *[o.column for o in explorer.objectives], *fabric, "fmax_mhz", "memory_bound"]
    cols = list(dict.fromkeys(c for c in cols if c in front))
    shown = shown_rows[cols].copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f":
            shown[c] = shown[c].map(lambda v: f"{v:.4g}")
    return shown.to_string(index=False)


def front_points(explorer: Explorer, front: pd.DataFrame, limit: int) -> list[tuple[pd.Series, Any]]:
    """The first ``limit`` front rows, each with the design (Params) it stands for."""
    names = [d.name for d in explorer.space.dimensions]
    return [(row, explorer.space.point({n: row[n] for n in names})) for _, row in front.head(limit).iterrows()]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def breakdown_plots(explorer: Explorer, front: pd.DataFrame, out: Path,
                    limit: int = 10) -> tuple[dict[str, Path], pd.DataFrame]:
    """For a family that prices every op of a token (the accelerator): the front designs'
    time per engine as stacked bars, a roofline of their throughput, and the first design's
    price per op. Nothing otherwise."""
    if front.empty:
        return {}, pd.DataFrame()
    points = [p for _, p in front_points(explorer, front, limit)]
    priced = explorer.family.price(explorer.family.params.columns(points), explorer.workload, explorer.target,
                                   breakdown=True)
    if "ops" not in priced:
        return {}, pd.DataFrame()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [p.digest() for p in points]
    shown = (f"the first {len(points)} of {len(front)} front designs, by {explorer.objectives[0].name}"
             if len(points) < len(front) else f"all {len(front)} front designs")
    engines = list(dict.fromkeys(o["engine"] for o in priced["ops"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(points))
    for engine in engines:
        t = sum(o["count"] * np.asarray(o["seconds"]) for o in priced["ops"] if o["engine"] == engine)
        ax.bar(labels, t, bottom=bottom, label=engine)
        bottom = bottom + t
    ax.set_ylabel("seconds per pass")
    ax.set_title(f"time per engine, {explorer.workload.name} on {explorer.cfg.target}\n({shown})", fontsize=10)
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = {"breakdown.png": out / "breakdown.png", "roofline.png": out / "roofline.png"}
    _save(fig, paths["breakdown.png"])

    ops = float(sum(count * op.ops for op, count in explorer.workload.ops))
    intensity = ops / np.asarray(priced["offchip_bytes"])
    perf = ops / np.asarray(priced["latency_s"])
    bandwidth = explorer.target.offchip_gbytes_s * 1e9
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.logspace(np.log10(min(intensity.min(), 0.1)), np.log10(max(intensity.max(), 10) * 10), 50)
    ax.loglog(x, bandwidth * x, color="black", linewidth=1, label=f"bandwidth {explorer.target.offchip_gbytes_s:g} GB/s")
    best = ops / explorer.workload.min_offchip_bytes()
    ax.axvline(best, color="grey", linestyle="--", linewidth=1, label="workload's least traffic")
    placed = ax.scatter(intensity, perf, c=np.arange(1, len(points) + 1), cmap="viridis", edgecolors="black",
                        zorder=3, label="front designs")
    fig.colorbar(placed, ax=ax, label=f"place on the front, by {explorer.objectives[0].name}")
    ax.set_xlabel("operations per off-chip byte (a multiply and an add count two)")
    ax.set_ylabel("operations per second")
    ax.set_title(f"roofline of {shown}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, paths["roofline.png"])
    per_op = pd.DataFrame([{"op": o["name"], "engine": o["engine"], "per pass": o["count"],
                            "bound by": str(np.asarray(o["bound"])[0]),
                            "seconds each": float(np.asarray(o["seconds"])[0]),
                            "share of the pass": float(o["count"] * np.asarray(o["seconds"])[0]
                                                       / np.asarray(priced["latency_s"])[0])}
                           for o in priced["ops"]])
    return paths, per_op


def write_designs(explorer: Explorer, front: pd.DataFrame, out: Path, top: int) -> list[dict[str, Any]]:
    """Verilog and manifest of the first ``top`` front designs; one written before by the same
    tools is kept (a report rebuilt with nothing changed generates no Verilog)."""
    written = []
    chosen = front_points(explorer, front, top)
    for i, (row, params) in enumerate(chosen, 1):
        if sys.stderr.isatty():                  # a large design's Verilog takes a minute to generate
            print(f"writing design {i} of {len(chosen)} ({params.digest()}) under {out / 'designs'}",
                  file=sys.stderr, flush=True)
        metrics = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()
                   if k in ("latency_s", "tokens_per_s", "energy_per_token_j", "area", "lut", "ff", "dsp", "bram")}
        extra = {"explore": {"workload": explorer.workload.name, "target": explorer.cfg.target,
                             "predicted": metrics}}
        files = write_if_changed(params, explorer.family.build, out / "designs" / params.top_name(), extra)
        written.append({"top": params.top_name(), "hash": params.digest(), "params": params.to_dict(),
                        "verilog": str(files["verilog"].relative_to(out)),
                        "manifest": str(files["manifest"].relative_to(out))})
    return written


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="t")


def write_outputs(explorer: Explorer, *, top: int = 3, frame: pd.DataFrame | None = None) -> dict[str, Path]:
    """Every output of a run, from ``frame`` (its :func:`trials_frame`, read again if not given)."""
    out = Path(explorer.cfg.out)
    frame = trials_frame(explorer) if frame is None else frame
    front = pareto_frame(explorer, frame)
    paths = {name: out / name for name in ("trials.parquet", "trials.csv", "pareto.csv", "pareto.png",
                                           "tradeoffs.png", "report.html")}
    if frame.empty:
        raise ParamError(f"no completed trials in {public_url(explorer.cfg.storage_url())}")
    tmp = out / ".trials.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(paths["trials.parquet"])
    write_atomic(paths["trials.csv"], frame.to_csv(index=False))
    write_atomic(paths["pareto.csv"], front.to_csv(index=False))
    _plot(explorer, frame, front, paths["pareto.png"])
    _tradeoffs(explorer, frame, front, paths["tradeoffs.png"])
    designs = write_designs(explorer, front, out, top)
    extra_plots, per_op = breakdown_plots(explorer, front, out)
    paths.update(extra_plots)
    checks_file = out / "checks.json"
    checks = _stored_checks(checks_file)
    pngs = [paths["pareto.png"], paths["tradeoffs.png"], *extra_plots.values()]
    write_atomic(paths["report.html"], _html(explorer, frame, front, designs, checks, pngs, per_op))
    return paths


def _scope(explorer) -> str:
    """What the figures cover, said where users read them."""
    kind = explorer.family.op_type
    if kind is None:
        return ("Every op of a token is priced (GEMMs, attention, element-wise ops, KV-cache write), each "
                "on the engine whose RTL runs it, the vector unit's included.")
    return f"Only the workload's {kind.label} are priced; the rest of a token is left out."


def model_families(explorer: Explorer) -> list[str]:
    """The coefficient sets the explorer's figures come from (a composed family's engines too)."""
    info = explorer.family.model_info()
    names = list(info.get("engines", {})) or [info["family"]]
    names += [v["family"] for v in info.values() if isinstance(v, dict) and "coefficients" in v]
    return list(dict.fromkeys(names))


def calibration_frame(explorer: Explorer) -> pd.DataFrame:
    """Per coefficient set, where each figure on this target comes from."""
    target = explorer.target
    fpga = target.kind.value == "fpga"
    tech = target.tech if fpga else "cmos"
    figures = ("lut", "ff", "dsp", "bram", "fmax_mhz") if fpga else ("transistors",)
    rows = []
    for name in model_families(explorer):
        status = calibration_status(name, tech)
        rows.append({"model": name, "coefficients": status["source"],
                     **{f: status.get(f, "not fitted") for f in figures}})
    return pd.DataFrame(rows)


def not_fitted(calibration: pd.DataFrame) -> str:
    """Which figures of which models rest on coefficients never fitted, as one phrase ("" if none)."""
    figures = [c for c in calibration.columns if c not in ("model", "coefficients")]
    parts = []
    for _, row in calibration.iterrows():
        missing = [f for f in figures if str(row[f]).startswith("not fitted")]
        if missing:
            parts.append(f"{', '.join(missing)} of {row['model']}")
    return "; ".join(parts)


def shown_columns(explorer: Explorer, front: pd.DataFrame) -> list[str]:
    """The front's columns a reader compares: the hash and the objectives first (what one
    reads at a glance), then throughput and every device resource, then the parameters, each
    once (a figure equal to an earlier one is dropped)."""
    names = [d.name for d in explorer.space.dimensions]
    fabric = ["lut", "ff", "dsp", "bram"] if explorer.target.kind.value == "fpga" else []
    wanted = ["hash", *[o.column for o in explorer.objectives], "tokens_per_s", "energy_per_token_j",
              "area", *fabric, "fmax_mhz", "memory_bound", *names]
    shown: list[str] = []
    for c in dict.fromkeys(c for c in wanted if c in front):
        if c in names or not any(front[c].equals(front[k]) for k in shown):
            shown.append(c)
    return shown


def _cell(value: Any) -> str:
    """A parameter as shown: blank where the design has no such part, integers without '.0'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return html.escape(str(value))


def _html(explorer, frame, front, designs, checks, pngs: list[Path], per_op: pd.DataFrame) -> str:
    cfg = explorer.cfg
    images = "".join(f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" '
                     f'alt="{html.escape(p.stem)}" style="max-width:100%">' for p in pngs)
    table = front[shown_columns(explorer, front)].head(50).copy()
    links = {d["hash"]: d for d in designs}
    for c in table.columns:                      # the table is written unescaped, for the links
        if table[c].dtype == object or c in {d.name for d in explorer.space.dimensions}:
            table[c] = [_cell(v) for v in table[c]]
    if "hash" in table:
        table["hash"] = [f'<a href="{html.escape(links[h]["verilog"])}">{h}</a>' if h in links else h
                         for h in table["hash"]]
    front_table = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="t",
                                escape=False)
    sections = []
    if not per_op.empty:
        sections.append(f"<h2>Per op of a pass, design {html.escape(str(front['hash'].iloc[0]))}</h2>"
                        + _html_table(per_op))
    for kind in ("verify", "synth"):
        rows = checks.get(kind)
        if rows:
            sections.append(f"<h2>{kind} of the top designs (predicted vs measured)</h2>"
                            + _html_table(pd.DataFrame(rows)))
    design_items = "".join(
        f'<li><code>{html.escape(d["hash"])}</code>: <a href="{html.escape(d["verilog"])}">Verilog</a>, '
        f'<a href="{html.escape(d["manifest"])}">manifest</a></li>' for d in designs)
    settings = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in cfg.to_dict().items())
    pins = ", ".join(f"{k}={v}" for k, v in explorer.space.pinned.items())
    distinct = distinct_designs(explorer, frame)
    calibration = calibration_frame(explorer)
    unfitted = not_fitted(calibration)
    warning = (f'<p><b>Not fitted:</b> {html.escape(unfitted)}; the figures that rest on them (and the '
               f'tokens/s a clock sets) are first guesses, not synthesis-checked (see "Where the figures '
               f'come from").</p>' if unfitted else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>accelforge: {html.escape(cfg.family)} on {html.escape(cfg.target)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table.t{{border-collapse:collapse;font-size:12px}}
.t td,.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}} th{{text-align:left}}</style></head><body>
<h1>{html.escape(cfg.family)} for {html.escape(explorer.workload.name)} on {html.escape(cfg.target)}</h1>
<p>{len(frame)} completed trials ({distinct} distinct designs), {int(frame['feasible'].sum())} fit the device and
run the workload, {len(front)} on the Pareto front ({html.escape(', '.join(o.name for o in explorer.objectives))}).
Area is {html.escape(explorer.target.area_label)}. Pinned by the workload or --set: {html.escape(pins)}.
{html.escape(_scope(explorer))}</p>
{warning}
{images}
<h2>Pareto front</h2>{front_table}
<h2>Generated designs</h2><ul>{design_items}</ul>
{''.join(sections)}
<h2>Where the figures come from</h2>
<p>Each model's coefficients on this target: fitted to synthesis (with the error on designs left out of
the fit) or not fitted. A figure from a set that was not fitted is a first guess. Energy is never fitted
(no power measurement); cycles are exact for the engines with RTL.</p>
{_html_table(calibration)}
<h2>Settings</h2><table class="t">{settings}</table>
</body></html>
"""
