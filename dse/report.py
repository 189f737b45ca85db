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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from dse.evaluate import pareto_mask
from dse.explorer import Explorer, public_url
from generators.artifact import render, write, write_atomic


def trials_frame(explorer: Explorer) -> pd.DataFrame:
    study = explorer.open_study()
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        row: dict[str, Any] = {"trial": t.number}
        row.update({**explorer.space.pinned, **t.params})
        row.update(t.user_attrs.get("metrics", {}))
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
        return "area (LUTs)" if explorer.target.kind.value == "fpga" else "area (transistors)"
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
    points = ax.scatter(front[x_obj.column], front[y_col], s=30, c=color, cmap="viridis",
                        edgecolors="black", linewidths=0.5, label="Pareto front", zorder=3)
    if color is not None:
        fig.colorbar(points, ax=ax, label=_label(explorer, objs[2]))
    for axis, values in (("x", frame[x_obj.column]), ("y", frame[y_col])):
        positive = values[values > 0]
        if len(positive) and positive.max() / positive.min() > 100:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(_label(explorer, x_obj))
    ax.set_ylabel(_label(explorer, y_obj) if y_obj else "area")
    cfg = explorer.cfg
    ax.set_title(f"{cfg.family} on {cfg.target}: {explorer.workload.name}, {len(frame)} trials ({cfg.sampler})")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def summary_table(explorer: Explorer, front: pd.DataFrame, limit: int = 10) -> str:
    if front.empty:
        return "no feasible design found"
    shown_rows = front.head(limit)
    names = [d.name for d in explorer.space.dimensions           # a composed design's nested fields
             if "." not in d.name]                                # (gemm kind's, attention's) are in the report
    cols = ["hash", *names, *[o.column for o in explorer.objectives], "lut", "dsp", "fmax_mhz", "memory_bound"]
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


def breakdown_plots(explorer: Explorer, front: pd.DataFrame, out: Path, limit: int = 10) -> dict[str, Path]:
    """For a family that prices every op of a token (the accelerator): the front designs'
    time per engine as stacked bars, and a roofline of their throughput. None otherwise."""
    if front.empty:
        return {}
    points = [p for _, p in front_points(explorer, front, limit)]
    priced = explorer.family.price(explorer.family.params.columns(points), explorer.workload, explorer.target,
                                   breakdown=True)
    if "ops" not in priced:
        return {}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [p.digest() for p in points]
    engines = list(dict.fromkeys(o["engine"] for o in priced["ops"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(points))
    for engine in engines:
        t = sum(o["count"] * np.asarray(o["seconds"]) for o in priced["ops"] if o["engine"] == engine)
        ax.bar(labels, t, bottom=bottom, label=engine)
        bottom = bottom + t
    ax.set_ylabel("seconds per pass")
    ax.set_title(f"time per engine, {explorer.workload.name} on {explorer.cfg.target}")
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
    ax.scatter(intensity, perf, c=np.arange(len(points)), cmap="viridis", edgecolors="black", zorder=3,
               label="front designs")
    ax.set_xlabel("operations per off-chip byte")
    ax.set_ylabel("operations per second")
    ax.set_title("roofline of the front designs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, paths["roofline.png"])
    return paths


def write_designs(explorer: Explorer, front: pd.DataFrame, out: Path, top: int) -> list[dict[str, Any]]:
    written = []
    for row, params in front_points(explorer, front, top):
        metrics = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()
                   if k in ("latency_s", "tokens_per_s", "energy_per_token_j", "area", "lut", "ff", "dsp")}
        artifact = render(params, explorer.family.build,
                          extra={"explore": {"workload": explorer.workload.name,
                                             "target": explorer.cfg.target, "predicted": metrics}})
        files = write(artifact, out / "designs" / artifact.top)
        written.append({"top": artifact.top, "params": params.to_dict(),
                        "verilog": str(files["verilog"].relative_to(out))})
    return written


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="t")


def write_outputs(explorer: Explorer, *, top: int = 3) -> dict[str, Path]:
    out = Path(explorer.cfg.out)
    frame = trials_frame(explorer)
    front = pareto_frame(explorer, frame)
    paths = {name: out / name for name in ("trials.parquet", "trials.csv", "pareto.csv", "pareto.png",
                                           "report.html")}
    if frame.empty:
        raise ValueError(f"no completed trials in {public_url(explorer.cfg.storage_url())}")
    tmp = out / ".trials.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(paths["trials.parquet"])
    write_atomic(paths["trials.csv"], frame.to_csv(index=False))
    write_atomic(paths["pareto.csv"], front.to_csv(index=False))
    _plot(explorer, frame, front, paths["pareto.png"])
    designs = write_designs(explorer, front, out, top)
    extra_plots = breakdown_plots(explorer, front, out)
    paths.update(extra_plots)
    checks_file = out / "checks.json"
    checks = json.loads(checks_file.read_text()) if checks_file.exists() else {}
    write_atomic(paths["report.html"], _html(explorer, frame, front, designs, checks,
                                             [paths["pareto.png"], *extra_plots.values()]))
    return paths


def _scope(explorer) -> str:
    """What the figures cover, said where users read them."""
    kind = explorer.family.op_type
    if kind is None:
        return ("Every op of a token is priced (GEMMs, attention, element-wise ops, KV-cache write); the "
                "vector unit that runs the element-wise ops is modelled without RTL, its coefficients not "
                "fitted.")
    return f"Only the workload's {kind.label} are priced; the rest of a token is left out."


def _html(explorer, frame, front, designs, checks, pngs: list[Path]) -> str:
    cfg = explorer.cfg
    images = "".join(f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" '
                     f'alt="{html.escape(p.stem)}" style="max-width:48%">' for p in pngs)
    names = [d.name for d in explorer.space.dimensions]
    cols = ["hash", *names, *[o.column for o in explorer.objectives], "lut", "ff", "dsp", "fmax_mhz",
            "memory_bound"]
    front_table = _html_table(front[[c for c in dict.fromkeys(cols) if c in front]].head(50))
    sections = []
    for kind in ("verify", "synth"):
        rows = checks.get(kind)
        if rows:
            sections.append(f"<h2>{kind} of the top designs (predicted vs measured)</h2>"
                            + _html_table(pd.DataFrame(rows)))
    design_items = "".join(f"<li><code>{html.escape(d['verilog'])}</code></li>" for d in designs)
    settings = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in cfg.to_dict().items())
    pins = ", ".join(f"{k}={v}" for k, v in explorer.space.pinned.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>accelforge: {html.escape(cfg.family)} on {html.escape(cfg.target)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table.t{{border-collapse:collapse;font-size:12px}}
.t td,.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}} th{{text-align:left}}</style></head><body>
<h1>{html.escape(cfg.family)} for {html.escape(explorer.workload.name)} on {html.escape(cfg.target)}</h1>
<p>{len(frame)} completed trials, {int(frame['feasible'].sum())} fit the device, {len(front)} on the Pareto front
({html.escape(', '.join(o.name for o in explorer.objectives))}). Pinned by the workload or --set: {html.escape(pins)}.
{html.escape(_scope(explorer))}</p>
{images}
<h2>Pareto front</h2>{front_table}
<h2>Generated designs</h2><ul>{design_items}</ul>
{''.join(sections)}
<h2>Settings</h2><table class="t">{settings}</table>
</body></html>
"""
