"""The whole accelerator as one more family: its search space and its workload pricing.

The space is conditional: the GEMM engine kind is a categorical choice and each kind's
fields come from that family's own Params declarations and workload pins (so a new
field joins the search with no edit here); the attention engine's and the vector unit's
fields likewise. Trials store the fields as ``<kind>.<field>``, ``attention.<field>`` and
``vector.<field>``, so two kinds never share a name; ``gemm.<field>`` is how a user pins
them (``--set gemm.n_tile=64``). A kind the workload rules out (8-bit weights on an mpGEMM
engine) or that lacks a pinned field drops out of the choice. The vector unit's lanes are
16 bits (:data:`PART_DEFAULTS`) unless the user sets ``vector.bits``: no objective
weighs precision, so a free width would only ever narrow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import optuna

from cost_models import accelerator as model
from dse.space import Dimension, PinConflict, SearchSpace, derive, fitted_defaults
from generators.accelerator import GEMM_ENGINES, PARTS, AcceleratorParams, GemmKind
from generators.params import ParamError, nested_errors

PART_DEFAULTS: dict[str, dict[str, Any]] = {"vector": {"bits": 16}}
"""Each fixed part's pins under the workload's and the user's: the vector unit's lanes hold
the hidden state's 16-bit fixed point."""


@dataclass(frozen=True)
class AcceleratorSpace:
    """A conditional space: top fields, one sub-space per allowed GEMM kind, then one per fixed
    part (attention, vector)."""
    top: SearchSpace
    kinds: Mapping[str, SearchSpace]
    parts: Mapping[str, SearchSpace]
    params: type[AcceleratorParams] = AcceleratorParams
    supports_grid: bool = False
    dimensions: tuple[Dimension, ...] = field(init=False)
    pinned: Mapping[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        dims = [*self.top.dimensions]
        for kind, space in self.kinds.items():
            dims += space.keyed(kind)
        for prefix, space in self.parts.items():
            dims += space.keyed(prefix)
        object.__setattr__(self, "dimensions", tuple(dims))
        pinned = dict(self.top.pinned)
        for prefix, space in {**self.kinds, **self.parts}.items():
            pinned.update({f"{prefix}.{k}": v for k, v in space.pinned.items()})
        object.__setattr__(self, "pinned", pinned)

    def _kind(self, values: Mapping[str, Any]) -> str:
        return values.get("gemm", self.top.pinned.get("gemm"))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        values = self.top.suggest(trial)
        kind = self._kind(values)
        for prefix, space in {kind: self.kinds[kind], **self.parts}.items():
            values.update({d.name: d.suggest(trial) for d in space.keyed(prefix)})
        return values

    def size(self) -> int:
        top = math.prod(d.size() for d in self.top.dimensions if d.name != "gemm")
        return top * sum(s.size() for s in self.kinds.values()) * math.prod(s.size() for s in self.parts.values())

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        raise ParamError("explore.sampler grid needs a flat space; the accelerator's space is conditional "
                         "(use nsga2, tpe or random)")

    def columns(self, rows: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The ``AcceleratorParams.columns`` layout for sampled rows."""
        out = self.top.columns(rows)
        for kind, (cls, _) in GEMM_ENGINES.items():
            space = self.kinds.get(kind.value)
            pins = space.pinned if space else {}
            for info in cls.fields():
                key = f"{kind.value}.{info.name}"
                out[key] = info.encode([r.get(key, pins.get(info.name, info.default)) for r in rows])
        for prefix, cls in PARTS.items():
            pins = self.parts[prefix].pinned
            for info in cls.fields():
                key = f"{prefix}.{info.name}"
                out[key] = info.encode([r.get(key, pins.get(info.name, info.default)) for r in rows])
        return out

    def point(self, values: Mapping[str, Any]) -> AcceleratorParams:
        """The design of one trial or report row (other kinds' fields and blanks ignored)."""
        values = {k: v for k, v in values.items() if not _blank(v)}
        kind = self._kind(values)
        flat = {k: v for k, v in {**self.top.pinned, **values}.items() if k in self.top.params.field_names()}
        flat.update({f"gemm.{k}": v for k, v in self.kinds[kind].pinned.items()})
        for prefix, space in self.parts.items():
            flat.update({f"{prefix}.{k}": v for k, v in space.pinned.items()})
        for key, value in values.items():
            prefix, _, name = key.partition(".")
            if prefix == kind:
                flat[f"gemm.{name}"] = value
            elif prefix in self.parts:
                flat[key] = value
        return AcceleratorParams.from_dict({k: _plain_int(v) for k, v in flat.items()})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain_int(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _part_pins(families: Mapping[str, Any], prefix: str, workload, user: Mapping[str, str]) -> dict[str, Any]:
    """A fixed part's pins: its defaults (:data:`PART_DEFAULTS`) under the workload's and the
    user's ``<prefix>.*``."""
    return {**PART_DEFAULTS.get(prefix, {}), **families[prefix].pins_for(workload, user, path=f"accelerator.{prefix}")}


def _kind_pins(families: Mapping[str, Any], kind: GemmKind, workload, user: Mapping[str, str]) -> dict[str, Any]:
    """One GEMM kind's pins: the workload's, then the user's ``gemm.*`` (a contradiction is an error)."""
    family = families[kind.value]
    return family.pins_for(workload, user, path="accelerator.gemm")


def derive_space(families: Mapping[str, Any], workload, user: Mapping[str, str],
                 ranges: Mapping[str, tuple[int, int]]) -> AcceleratorSpace:
    """The accelerator's space for ``workload`` with the user's ``--set`` and ``--range`` items."""
    top_user, nested = AcceleratorParams.split(user)
    top_ranges, nested_ranges = AcceleratorParams.split(ranges)
    top_pins = AcceleratorParams.parse_fields(top_user)
    kinds = [GemmKind(top_pins["gemm"])] if "gemm" in top_pins else list(GemmKind)
    spaces: dict[str, SearchSpace] = {}
    refusals = []
    for kind in kinds:
        try:
            pins = _kind_pins(families, kind, workload, nested["gemm"])
            spaces[kind.value] = derive(GEMM_ENGINES[kind][0], pins, nested_ranges["gemm"])
        except PinConflict:
            raise
        except ValueError as exc:                   # the workload rules this kind out
            refusals.append(f"{kind.value}: {exc}")
    if not spaces:
        raise ParamError("no GEMM engine kind can run this design: " + "; ".join(refusals))
    parts = {prefix: derive(cls, _part_pins(families, prefix, workload, nested[prefix]), nested_ranges[prefix])
             for prefix, cls in PARTS.items()}
    top = derive(AcceleratorParams, top_pins, top_ranges)
    if "gemm" not in top_pins:
        allowed = tuple(k for k in spaces)
        top = SearchSpace(top.params, tuple(
            Dimension(d.info, allowed) if d.name == "gemm" else d for d in top.dimensions)
            if len(allowed) > 1 else tuple(d for d in top.dimensions if d.name != "gemm"),
            {**top.pinned, **({} if len(allowed) > 1 else {"gemm": allowed[0]})})
    return AcceleratorSpace(top=top, kinds=spaces, parts=parts)


def design(families: Mapping[str, Any], workload,
           user: Mapping[str, str]) -> tuple[AcceleratorParams, dict[str, Any]]:
    """One accelerator for ``workload``: the user's ``--set`` items over the workload's pins,
    and the engines' unset fields whose defaults the workload rules out, with the values taken."""
    top_user, nested = AcceleratorParams.split(user)
    values = AcceleratorParams.parse_strings(top_user)
    kind = AcceleratorParams.kind_of(values)
    fitted: dict[str, Any] = {}
    parts = (("gemm", GEMM_ENGINES[kind][0], _kind_pins(families, kind, workload, nested["gemm"])),
             *((prefix, cls, _part_pins(families, prefix, workload, nested[prefix])) for prefix, cls in PARTS.items()))
    for prefix, cls, pins in parts:
        with nested_errors(f"accelerator.{prefix}", cls):
            part_fitted = fitted_defaults(cls, pins)
        values.update({f"{prefix}.{k}": v for k, v in {**pins, **part_fitted}.items()})
        fitted.update({f"{prefix}.{k}": v for k, v in part_fitted.items()})
    return AcceleratorParams.from_dict(values), fitted


def price(columns: Mapping[str, np.ndarray], workload, target, *, breakdown: bool = False) -> dict[str, Any]:
    return model.price(columns, workload.ops, target, tokens=workload.tokens,
                       min_offchip_bytes=workload.min_offchip_bytes(), breakdown=breakdown)
