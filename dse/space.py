"""Search spaces derived from a family's Params declarations.

Every field that declares ``search=True`` becomes one dimension: integer
ranges (log-scaled where declared), booleans and enums as categorical
choices. Fields the workload decides (operand widths, signedness) and
fields the user fixes with ``--set`` are pinned instead. A parameter added
to a Params class therefore joins the search with no edit here.
"""
from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import optuna

from generators.params import Params, ParamInfo


@dataclass(frozen=True)
class Dimension:
    info: ParamInfo
    choices: tuple[Any, ...] | None = None      # set for categorical dimensions
    bounds: tuple[int, int] | None = None       # a narrower integer range than declared

    @property
    def lo_hi(self) -> tuple[int, int]:
        return self.bounds or (self.info.spec.range.lo, self.info.spec.range.hi)

    @property
    def name(self) -> str:
        return self.info.name

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        lo, hi = self.lo_hi
        return optuna.distributions.IntDistribution(lo, hi, log=self.info.spec.range.log)

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

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {d.name: d.distribution() for d in self.dimensions}

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
            out[info.name] = _encode(info, values)
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
                cols[info.name] = _encode(info, list(raw[info.name]))
            else:
                cols[info.name] = np.repeat(_encode(info, [self.pinned.get(info.name, info.default)]), n)
        return cols, raw


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _encode(info: ParamInfo, values: list[Any]) -> np.ndarray:
    if info.kind is bool:
        return np.array([bool(v) for v in values], dtype=bool)
    if issubclass(info.kind, enum.Enum):
        order = [c.value for c in info.kind]
        return np.array([order.index(_plain(v)) for v in values], dtype=np.int64)
    return np.array([0 if v is None else int(v) for v in values], dtype=np.int64)


def parse_ranges(items: list[str] | tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """``["k_max=1..256"]`` as given to ``--range``."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        lo, dots, hi = text.partition("..")
        try:
            out[key.strip()] = (int(lo), int(hi))
        except ValueError:
            raise ValueError(f"--range expects KEY=LO..HI with integers, not {item!r}") from None
        if not sep or not dots:
            raise ValueError(f"--range expects KEY=LO..HI with integers, not {item!r}")
    return out


def derive(params: type[Params], pinned: Mapping[str, Any],
           ranges: Mapping[str, tuple[int, int]] | None = None) -> SearchSpace:
    """The space of ``params`` with ``pinned`` fields fixed and integer ``ranges`` narrowed."""
    params.from_dict(dict(pinned))                  # names and values checked once, here
    ranges = dict(ranges or {})
    dims = []
    for info in params.fields():
        if info.name in ranges:
            lo, hi = ranges.pop(info.name)
            declared = info.spec.range
            if declared is None or info.name in pinned or not info.spec.search:
                raise ValueError(f"{params.family}.{info.name} is not a searched integer field")
            if not declared.lo <= lo <= hi <= declared.hi:
                raise ValueError(f"{params.family}.{info.name} range must lie in "
                                 f"{declared.lo}..{declared.hi}, not {lo}..{hi}")
            dims.append(Dimension(info, None, (lo, hi)))
            continue
        if not info.spec.search or info.name in pinned:
            continue
        choices = tuple(_plain(c) for c in info.choices) if info.choices else None
        dims.append(Dimension(info, choices))
    if ranges:
        params.field_info(next(iter(ranges)))       # raises: unknown field
    return SearchSpace(params, tuple(dims), {k: _plain(v) for k, v in pinned.items()})
