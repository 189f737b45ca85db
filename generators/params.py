"""The Params convention every family follows.

A family's parameters are one frozen, keyword-only dataclass deriving from
:class:`Params`. Each field declares its allowed values next to itself
(:func:`int_field`, :func:`bool_field`, :func:`choice_field`), so that one
declaration serves validation, the command line (``--set key=value``), the
explorer's search space and the documentation. Construction validates every
field and raises ``ValueError`` of the form
``"<family>.<field> must be <constraint>, not <value!r>"``.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

_META = "accelforge"


@dataclass(frozen=True)
class IntRange:
    """Inclusive integer range; ``log`` asks the explorer to sample it on a log scale."""
    lo: int
    hi: int
    log: bool = False


@dataclass(frozen=True)
class FieldSpec:
    """What a field accepts and how it is searched."""
    doc: str
    range: IntRange | None = None
    optional: bool = False          # None is allowed and means "derived"
    search: bool = True             # the explorer varies this field


def int_field(default: int | None, lo: int, hi: int, *, doc: str, log: bool = False,
              optional: bool = False, search: bool = True) -> Any:
    return field(default=default, metadata={_META: FieldSpec(
        doc=doc, range=IntRange(lo, hi, log), optional=optional, search=search)})


def bool_field(default: bool, *, doc: str, search: bool = True) -> Any:
    return field(default=default, metadata={_META: FieldSpec(doc=doc, search=search)})


def choice_field(default: enum.Enum, *, doc: str, search: bool = True) -> Any:
    return field(default=default, metadata={_META: FieldSpec(doc=doc, search=search)})


@dataclass(frozen=True)
class ParamInfo:
    """One field as the command line and the explorer see it."""
    name: str
    kind: type                       # int, bool or an Enum subclass
    spec: FieldSpec
    default: Any

    @property
    def choices(self) -> tuple[Any, ...]:
        if self.kind is bool:
            return (False, True)
        if issubclass(self.kind, enum.Enum):
            return tuple(self.kind)
        return ()

    def describe(self) -> str:
        """The allowed values in words, as used in error messages."""
        if self.kind is bool:
            return "true or false"
        if issubclass(self.kind, enum.Enum):
            return "one of " + ", ".join(repr(c.value) for c in self.kind)
        rng = self.spec.range
        text = f"an integer in {rng.lo}..{rng.hi}"
        return text + " or unset (derived)" if self.spec.optional else text


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True, kw_only=True)
class Params:
    """Base of every family's parameter dataclass (see the module docstring)."""

    family: ClassVar[str] = "params"

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        for info in self.fields():
            value = getattr(self, info.name)
            object.__setattr__(self, info.name, self._coerce(info, value))
        self._check()

    def _check(self) -> None:
        """Cross-field constraints; families override and raise ``self._error``."""

    def _error(self, name: str, constraint: str, value: Any) -> ValueError:
        return ValueError(f"{self.family}.{name} must be {constraint}, not {value!r}")

    def _coerce(self, info: ParamInfo, value: Any) -> Any:
        if value is None and info.spec.optional:
            return None
        if info.kind is bool:
            if isinstance(value, bool):
                return value
            raise self._error(info.name, info.describe(), value)
        if issubclass(info.kind, enum.Enum):
            if isinstance(value, info.kind):
                return value
            try:
                return info.kind(value)
            except ValueError:
                raise self._error(info.name, info.describe(), value) from None
        rng = info.spec.range
        if isinstance(value, bool) or not isinstance(value, int) or not rng.lo <= value <= rng.hi:
            raise self._error(info.name, info.describe(), value)
        return value

    # ------------------------------------------------------------------ introspection
    @classmethod
    def fields(cls) -> tuple[ParamInfo, ...]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get(_META)
            if spec is None:
                continue
            kind = hints[f.name]
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            if args:                 # "int | None"
                kind = args[0]
            out.append(ParamInfo(f.name, kind, spec, f.default))
        return tuple(out)

    @classmethod
    def field_info(cls, name: str) -> ParamInfo:
        for info in cls.fields():
            if info.name == name:
                return info
        known = ", ".join(i.name for i in cls.fields())
        raise ValueError(f"{cls.family} has no parameter {name!r}; known: {known}")

    # ------------------------------------------------------------------ round trips
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (enums as their values)."""
        out = {}
        for info in self.fields():
            value = getattr(self, info.name)
            out[info.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Params":
        for name in values:
            cls.field_info(name)
        return cls(**dict(values))

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> "Params":
        """Build from ``key=value`` text, as given on the command line."""
        parsed: dict[str, Any] = {}
        for name, text in values.items():
            info = cls.field_info(name)
            word = text.strip()
            if info.spec.optional and word.lower() in ("", "none", "auto"):
                parsed[name] = None
            elif info.kind is bool:
                parsed[name] = _BOOL_WORDS.get(word.lower(), word)
            elif issubclass(info.kind, enum.Enum):
                parsed[name] = word.lower()
            else:
                try:
                    parsed[name] = int(word, 0)
                except ValueError:
                    parsed[name] = word
        return cls(**parsed)

    @classmethod
    def columns(cls, points: Sequence["Params"]) -> dict[str, np.ndarray]:
        """Struct-of-arrays view of many points, as the vectorised cost models take.

        Enums become their index in declaration order, booleans stay booleans,
        an unset optional (derived) field becomes 0.
        """
        out = {}
        for info in cls.fields():
            values = [getattr(p, info.name) for p in points]
            if info.kind is bool:
                out[info.name] = np.array(values, dtype=bool)
            elif issubclass(info.kind, enum.Enum):
                order = list(info.kind)
                out[info.name] = np.array([order.index(v) for v in values], dtype=np.int64)
            else:
                out[info.name] = np.array([0 if v is None else v for v in values], dtype=np.int64)
        return out

    @classmethod
    def valid_columns(cls, col: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per point of ``columns()``, whether the cross-field checks of ``_check`` pass.

        The explorer samples every field independently, so a family with
        cross-field constraints restates them here, vectorised.
        """
        return np.ones(np.shape(next(iter(col.values()))), dtype=bool)

    def replace(self, **changes: Any) -> "Params":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ names
    def digest(self) -> str:
        """Stable 10-hex-digit hash of the family and its parameters."""
        text = json.dumps({"family": self.family, "params": self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def top_name(self) -> str:
        """Verilog module name: derived from family and hash only, never from user text."""
        return f"af_{self.family}_{self.digest()}"
