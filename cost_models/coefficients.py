"""Model coefficients kept as versioned data (``cost_models/data/<family>.json``).

Each family declares a frozen dataclass of its coefficients, with units in
the field comments; the JSON file holds one set per technology (``ecp5``,
``xilinx``, ``asic45``). Calibration against synthesis rewrites the file,
never the code.
"""
from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar
from generators.params import ParamError

DATA_DIR = Path(__file__).resolve().parent / "data"

C = TypeVar("C")


@dataclass(frozen=True)
class FabricCoefficients:
    """Per-technology coefficients; each table maps a structural feature to its weight.

    ``lut``, ``ff``: primitives per unit of feature; ``period_ns``: ns per unit
    (critical path = weighted sum, Fmax = 1/period); ``energy``: J per MAC
    bit-product and accumulator bit, J per register bit per cycle, W static;
    ``tables``: what calibration measured rather than fitted (``flows.characterize``).
    """
    dsp_min_bits: int               # both operands at least this wide go to a hard multiplier
    dsp_min_product_bits: int       # ... and their product at least this wide
    lut: Mapping[str, float]
    ff: Mapping[str, float]
    period_ns: Mapping[str, float]
    energy: Mapping[str, float]
    tables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CmosCoefficients:
    """Technology-neutral area proxy: transistors per feature (Yosys ``stat -tech cmos``)."""
    transistors: Mapping[str, float]


@lru_cache(maxsize=None)
def _load(family: str) -> dict[str, Any]:
    path = DATA_DIR / f"{family}.json"
    document = json.loads(path.read_text())
    if document.get("family") != family or "techs" not in document:
        raise ParamError(f"{path} is not a coefficient file for {family}")
    return document


def coefficients(family: str, tech: str, cls: type[C]) -> C:
    """The ``cls`` coefficient set of ``family`` for technology ``tech``."""
    document = _load(family)
    try:
        values = document["techs"][tech]
    except KeyError:
        raise ParamError(f"{family} has no coefficients for technology {tech!r}; "
                         f"known: {', '.join(document['techs'])}") from None
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if not required <= set(values) <= names:
        raise ValueError(f"{family}/{tech} coefficients differ from {cls.__name__}: "
                         f"missing {sorted(required - set(values))}, extra {sorted(set(values) - names)}")
    return cls(**values)


def weighted(table: Mapping[str, float], feats: Mapping[str, Any]):
    """Sum of coefficient x feature; the table must name exactly the features given."""
    import numpy as np

    if set(table) != set(feats):
        raise ValueError(f"coefficients {sorted(table)} do not match features {sorted(feats)}")
    return sum(float(table[k]) * np.asarray(feats[k], dtype=np.float64) for k in feats)


def provenance(family: str) -> dict[str, Any]:
    """Version and source of a family's coefficients, for manifests and reports; ``calibrated_for``
    names the technologies ``accelforge calibrate`` fitted (the others are first guesses)."""
    document = _load(family)
    return {**{k: document[k] for k in ("version", "calibrated", "source") if k in document},
            "calibrated_for": sorted(document.get("calibration", {}))}


def reload() -> None:
    """Forget cached coefficient files (after calibration rewrote one)."""
    _load.cache_clear()


FIGURES = ("lut", "ff", "dsp", "bram", "fmax_mhz", "transistors")


def calibration_status(family: str, tech: str) -> dict[str, str]:
    """Per figure of ``family`` on ``tech``, whether its coefficients were fitted to synthesis
    and how well they predict held-out designs; "not fitted" marks a first guess."""
    if not (DATA_DIR / f"{family}.json").is_file():
        return {"source": "no coefficient file: not fitted"}
    fit = _load(family).get("calibration", {}).get(tech)
    if not fit:
        return {"source": "not fitted (first-guess coefficients)"}
    status = {"source": f"fitted on {fit['target']} synthesis, {fit['date']}: {fit['samples']} designs, "
                        f"{fit['held_out']} held out"}
    for figure in FIGURES:
        error = fit["errors"].get(figure)
        if error is None:
            status[figure] = "not fitted"
        elif "held_out_mape_pct" in error:
            status[figure] = (f"held-out error {error['held_out_mape_pct']:.1f}% mean, "
                              f"{error['held_out_max_pct']:.0f}% max")
        else:
            status[figure] = f"exact for {error['held_out_exact']:.0%} of held-out designs"
    return status
