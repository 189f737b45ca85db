"""Search spaces derived from a family's Params declarations.

Every field that declares ``search=True`` becomes one dimension: integer
ranges (log-scaled where declared), booleans and enums as categorical
choices. Fields the workload decides (operand widths, signedness) and
fields the user fixes with ``--set`` are pinned instead. A parameter added
to a Params class therefore joins the search with no edit here.
"""
from __future__ import annotations

import dataclasses
import enum
import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import optuna

from generators.params import ParamError, ParamInfo, Params, parse_int


class PinConflict(ParamError):
    """A ``--set`` value that contradicts what the workload fixes."""


@dataclass(frozen=True)
class Dimension:
    info: ParamInfo
    choices: tuple[Any, ...] | None = None      # set for categorical dimensions
    bounds: tuple[int, int] | None = None       # a narrower integer range than declared
    key: str | None = None                      # the name stored in the study (default: the field's)

    @property
    def lo_hi(self) -> tuple[int, int]:
        return self.bounds or (self.info.spec.range.lo, self.info.spec.range.hi)

    @property
    def name(self) -> str:
        return self.key or self.info.name

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        lo, hi = self.lo_hi
        return optuna.distributions.IntDistribution(lo, hi, log=self.info.spec.range.log)

    def suggest(self, trial: optuna.Trial) -> Any:
        """This dimension's value for ``trial``, stored under its name."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, self.choices)
        lo, hi = self.lo_hi
        return trial.suggest_int(self.name, lo, hi, log=self.info.spec.range.log)

    def size(self) -> int:
        if self.choices is not None:
            return len(self.choices)
        lo, hi = self.lo_hi
        return hi - lo + 1

    def values(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        lo, hi = self.lo_hi
        return list(range(lo, hi + 1))


@dataclass(frozen=True)
class SearchSpace:
    params: type[Params]
    dimensions: tuple[Dimension, ...]
    pinned: Mapping[str, Any]
    supports_grid: bool = True

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {d.name: d.distribution() for d in self.dimensions}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one design through ``trial`` (define-by-run: a conditional space, such as
        the accelerator's, asks only for the dimensions its earlier choices enable)."""
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def keyed(self, prefix: str) -> tuple[Dimension, ...]:
        """The dimensions stored as ``<prefix>.<field>`` (a part of a composed space)."""
        return tuple(dataclasses.replace(d, key=f"{prefix}.{d.info.name}") for d in self.dimensions)

    def size(self) -> int:
        return math.prod(d.size() for d in self.dimensions)

    def point(self, values: Mapping[str, Any]) -> Params:
        """The Params for one set of sampled values (categoricals travel as plain values)."""
        return self.params.from_dict({**self.pinned, **values})

    def columns(self, rows: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """Struct-of-arrays for the cost model, without building Params objects."""
        out: dict[str, np.ndarray] = {}
        for info in self.params.fields():
            values = [r.get(info.name, self.pinned.get(info.name, info.default)) for r in rows]
            out[info.name] = info.encode(values)
        return out

    def grid(self) -> Iterator[dict[str, Any]]:
        names = [d.name for d in self.dimensions]
        for combo in itertools.product(*(d.values() for d in self.dimensions)):
            yield dict(zip(names, combo, strict=True))

    def grid_columns(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Every point of the space as columns: (model columns, raw sampled values)."""
        axes = [np.asarray(d.values(), dtype=object if d.choices is not None else np.int64)
                for d in self.dimensions]
        mesh = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")
        raw = {d.name: axes[i][mesh[i].ravel()] for i, d in enumerate(self.dimensions)}
        n = mesh[0].size if mesh else 1
        cols: dict[str, np.ndarray] = {}
        for info in self.params.fields():
            if info.name in raw:
                cols[info.name] = info.encode(list(raw[info.name]))
            else:
                cols[info.name] = np.repeat(info.encode([self.pinned.get(info.name, info.default)]), n)
        return cols, raw


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def parse_ranges(items: list[str] | tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """``["k_max=1..256"]`` as given to ``--range``."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        lo, dots, hi = text.partition("..")
        try:
            out[key.strip()] = (parse_int(lo), parse_int(hi))
        except ValueError:
            raise ParamError(f"--range expects KEY=LO..HI with integers, not {item!r}") from None
        if not sep or not dots:
            raise ParamError(f"--range expects KEY=LO..HI with integers, not {item!r}")
    return out


def derive(params: type[Params], pinned: Mapping[str, Any],
           ranges: Mapping[str, tuple[int, int]] | None = None) -> SearchSpace:
    """The space of ``params`` with ``pinned`` fields fixed and integer ``ranges`` narrowed.

    Pins are checked field by field and by the rules among pinned fields only (a
    free field's default never meets a rule). A free field that a rule ties to pinned
    fields alone keeps only the values that satisfy it (the divisors of a pinned
    ``head_dim`` for ``lanes``), so the sampler never proposes a ruled-out value.
    """
    pinned = params.check_fields(dict(pinned))
    ranges = dict(ranges or {})
    dims = []
    for info in params.fields():
        bounds = None
        if info.name in ranges:
            lo, hi = ranges.pop(info.name)
            declared = info.spec.range
            if declared is None or info.name in pinned or not info.spec.search:
                raise ParamError(f"{params.family}.{info.name} is not a searched integer field")
            if not declared.lo <= lo <= hi <= declared.hi:
                raise ParamError(f"{params.family}.{info.name} range must lie in "
                                 f"{declared.lo}..{declared.hi}, not {lo}..{hi}")
            bounds = (lo, hi)
        elif not info.spec.search or info.name in pinned:
            continue
        choices = tuple(_plain(c) for c in info.choices) if info.choices else None
        dims.append(_narrowed(params, Dimension(info, choices, bounds), pinned))
    if ranges:
        params.field_info(next(iter(ranges)))       # raises: unknown field
    return SearchSpace(params, tuple(dims), pinned)


def fitted_defaults(params: type[Params], pinned: Mapping[str, Any]) -> dict[str, Any]:
    """The unset fields whose default a rule over ``pinned`` fields rules out, each with the
    allowed value nearest its default (the first allowed choice for a categorical field).
    ``estimate``, ``generate`` and a composed design take these as the explorer's narrowed
    space does, and say which they took: ``lanes`` 4 for a ``head_dim`` of 100, where the
    default 8 does not divide it."""
    fitted: dict[str, Any] = {}
    pins = params.check_fields(dict(pinned))
    for info in params.fields():
        if info.name in pins or info.spec.optional or not any(
                info.name in r.names and all(n == info.name or n in pins for n in r.names) for r in params.rules):
            continue
        choices = tuple(_plain(c) for c in info.choices) if info.choices else None
        allowed = _narrowed(params, Dimension(info, choices), pins).values()
        default = _plain(info.default)
        if default in allowed:
            continue
        value = min(allowed, key=lambda v: (abs(v - default), v)) if choices is None else allowed[0]
        fitted[info.name] = value
        pins[info.name] = value
    return fitted


def _narrowed(params: type[Params], dim: Dimension, pinned: Mapping[str, Any]) -> Dimension:
    """``dim`` restricted to the values the rules over it and pinned fields allow."""
    rules = [r for r in params.rules if dim.name in r.names
             and all(n == dim.name or n in pinned for n in r.names)]
    if not rules or dim.size() > 1 << 16:
        return dim
    values = dim.values()
    infos = {i.name: i for i in params.fields()}
    col = {n: np.repeat(infos[n].encode([pinned[n]]), len(values)) for r in rules for n in r.names
           if n != dim.name}
    col[dim.name] = dim.info.encode(values)
    ok = np.ones(len(values), dtype=bool)
    for rule in rules:
        ok &= np.asarray(rule.holds(col), dtype=bool)
    if not ok.any():
        rule = rules[0]
        raise ParamError(f"{params.family}.{dim.name} has no value that is "
                         f"{rule.describe(pinned)} (pinned: "
                         + ", ".join(f"{n}={pinned[n]}" for n in rule.needs) + ")")
    if ok.all():
        return dim
    return Dimension(dim.info, tuple(v for v, keep in zip(values, ok, strict=True) if keep))
