"""The Params convention every family follows.

A family's parameters are one frozen, keyword-only dataclass deriving from
:class:`Params`. Each field declares its allowed values next to itself
(:func:`int_field`, :func:`bool_field`, :func:`choice_field`), so that one
declaration serves validation, the command line (``--set key=value``), the
explorer's search space and the documentation. Construction validates every
field and raises :class:`ParamError` (a ``ValueError``) of the form
``"<family>.<field> must be <constraint>, not <value!r>"``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import enum
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

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
    late: bool = False              # joined after results were cached: at its default it stays
                                    # out of the digest, so those results keep their keys


def int_field(default: int | None, lo: int, hi: int, *, doc: str, log: bool = False,
              optional: bool = False, search: bool = True, late: bool = False) -> Any:
    return field(default=default, metadata={_META: FieldSpec(
        doc=doc, range=IntRange(lo, hi, log), optional=optional, search=search, late=late)})


def bool_field(default: bool, *, doc: str, search: bool = True) -> Any:
    return field(default=default, metadata={_META: FieldSpec(doc=doc, search=search)})


def choice_field(default: enum.Enum, *, doc: str, search: bool = True, late: bool = False) -> Any:
    return field(default=default, metadata={_META: FieldSpec(doc=doc, search=search, late=late)})


@dataclass(frozen=True)
class Rule:
    """A cross-field constraint, written once as a vectorised predicate.

    ``holds(columns)`` takes the encoded columns of :meth:`Params.columns` (enums as
    their declaration index) and returns a boolean per point. The same predicate
    serves the scalar check at construction, the explorer's feasibility and the
    narrowing of a free field against pinned ones. ``field`` is the field an error
    names, ``needs`` the other fields the rule reads, ``says`` the allowed values in
    words, formatted with the point's plain values (``"a divisor of head_dim
    ({head_dim})"``), or a function of them.
    """
    field: str
    needs: tuple[str, ...]
    holds: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    says: str | Callable[[Mapping[str, Any]], str]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.field, *self.needs)

    def describe(self, values: Mapping[str, Any]) -> str:
        """The allowed values in words, for the point's (plain) ``values``."""
        return self.says(values) if callable(self.says) else self.says.format(**values)


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

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Values as a model column: enums by declaration index (their plain values are
        accepted too), booleans as booleans, an unset derived field as 0."""
        if self.kind is bool:
            return np.array([bool(v) for v in values], dtype=bool)
        if issubclass(self.kind, enum.Enum):
            order = [c.value for c in self.kind]
            return np.array([order.index(v.value if isinstance(v, enum.Enum) else v) for v in values],
                            dtype=np.int64)
        return np.array([0 if v is None else int(v) for v in values], dtype=np.int64)

    def parse(self, text: str) -> Any:
        """One ``--set`` value as the field's type (checked by :meth:`Params.check_fields`)."""
        word = text.strip()
        if self.spec.optional and word.lower() in ("", "none", "auto"):
            return None
        if self.kind is bool:
            return _BOOL_WORDS.get(word.lower(), word)
        if issubclass(self.kind, enum.Enum):
            return word.lower()
        try:
            return parse_int(word)
        except ValueError:
            return word


class ParamError(ValueError):
    """Bad input: a field, setting, file or op outside what accelforge takes, its message naming
    it and the allowed values. Every validator raises this and only this, so the command line
    reports it as one line with exit status 2, while any other ``ValueError`` (from NumPy,
    Amaranth or our own code) is a bug and keeps its traceback."""


_INTEGER = re.compile(r"[+-]?(?:[0-9]+|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)")


def parse_int(text: str) -> int:
    """An integer as typed on a command line: plain ASCII decimal, or hex/octal/binary with a
    ``0x``/``0o``/``0b`` prefix. Python's other spellings (``1_6``) and other scripts' digits
    (``٤``, ``１６``) are refused: a value should read the same to every tool that sees it."""
    word = text.strip()
    if not _INTEGER.fullmatch(word):
        raise ParamError(f"{text!r} is not an integer (ASCII digits, or 0x/0o/0b)")
    return int(word, 0) if not re.fullmatch(r"[+-]?0+[0-9]+", word) else int(word, 10)


@contextlib.contextmanager
def nested_errors(path: str, cls: type["Params"]):
    """Name a nested part's field in its errors: ``lut_mpgemm.n_tile must be ...`` raised
    inside becomes ``accelerator.gemm.n_tile must be ...`` for ``path`` ``accelerator.gemm``."""
    try:
        yield
    except ParamError as exc:
        text, head = str(exc), cls.family
        if text.startswith(f"{head}."):
            text = f"{path}.{text[len(head) + 1:]}"
        elif text.startswith(f"{head} has no parameter"):
            text = f"{path} ({head}){text[len(head):]}"
        raise ParamError(text) from None


def split_nested(family: str, values: Mapping[str, Any], prefixes) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A composed family's items: its own, and each nested part's (``<prefix>.<field>``) by
    prefix; a prefix that names no part is refused, naming the known ones."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {p: {} for p in prefixes}
    for key, value in values.items():
        prefix, dot, name = key.partition(".")
        if dot and prefix in nested:
            nested[prefix][name] = value
        elif dot:
            raise ParamError(f"{family} has no nested part {prefix!r}; known: {', '.join(nested)}")
        else:
            top[key] = value
    return top, nested


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True, kw_only=True)
class Params:
    """Base of every family's parameter dataclass (see the module docstring)."""

    family: ClassVar[str] = "params"
    rules: ClassVar[tuple[Rule, ...]] = ()

    @classmethod
    def smallest(cls) -> "Params":
        """The smallest legal design: each integer field, in declaration order, at the lowest
        value of its range that the rules allow with the fields before it (a field no lower
        value fits keeps its default). The edge every bench must pass."""
        design = cls()
        for info in cls.fields():
            if info.spec.range is None or info.spec.optional:
                continue
            for value in range(info.spec.range.lo, getattr(design, info.name)):
                try:
                    design = design.replace(**{info.name: value})
                    break
                except ValueError:
                    continue
        return design

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        for info in self.fields():
            value = getattr(self, info.name)
            object.__setattr__(self, info.name, self._coerce(info, value))
        self._check_rules(self.to_dict())

    @classmethod
    def _check_rules(cls, values: Mapping[str, Any]) -> None:
        """Raise for the first rule whose fields are all in ``values`` and that fails."""
        known = [r for r in cls.rules if all(n in values for n in r.names)]
        if not known:
            return
        infos = {i.name: i for i in cls.fields()}
        col = {n: infos[n].encode([values[n]]) for r in known for n in r.names}
        for rule in known:
            if not bool(np.asarray(rule.holds(col)).reshape(-1)[0]):
                raise cls._error(rule.field, rule.describe(values), values[rule.field])

    @classmethod
    def _error(cls, name: str, constraint: str, value: Any) -> ParamError:
        return ParamError(f"{cls.family}.{name} must be {constraint}, not {value!r}")

    @classmethod
    def _coerce(cls, info: ParamInfo, value: Any) -> Any:
        if value is None and info.spec.optional:
            return None
        if info.kind is bool:
            if isinstance(value, bool):
                return value
            raise cls._error(info.name, info.describe(), value)
        if issubclass(info.kind, enum.Enum):
            if isinstance(value, info.kind):
                return value
            try:
                return info.kind(value)
            except ValueError:
                raise cls._error(info.name, info.describe(), value) from None
        rng = info.spec.range
        if isinstance(value, bool) or not isinstance(value, int) or not rng.lo <= value <= rng.hi:
            raise cls._error(info.name, info.describe(), value)
        return value

    @classmethod
    def check_fields(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """A partial assignment checked field by field, then by every rule whose fields
        it all holds (rules over fields left free are not applied); plain values back."""
        infos = {i.name: i for i in cls.fields()}
        out = {}
        for name, value in values.items():
            info = cls.field_info(name) if name not in infos else infos[name]
            coerced = cls._coerce(info, value)
            out[name] = coerced.value if isinstance(coerced, enum.Enum) else coerced
        cls._check_rules(out)
        return out

    @classmethod
    def parse_strings(cls, values: Mapping[str, str]) -> dict[str, Any]:
        """``key=value`` text (the command line's ``--set``) as typed values; names checked,
        values not yet."""
        return {name: cls.field_info(name).parse(text) for name, text in values.items()}

    @classmethod
    def parse_fields(cls, values: Mapping[str, str]) -> dict[str, Any]:
        """``key=value`` text checked as :meth:`check_fields` (a partial assignment)."""
        return cls.check_fields(cls.parse_strings(values))

    # ------------------------------------------------------------------ introspection
    @classmethod
    def fields(cls) -> tuple[ParamInfo, ...]:
        """The declared fields, in order (worked out once per class: type hints are slow)."""
        return _fields_of(cls)

    @classmethod
    def _declared_fields(cls) -> tuple[ParamInfo, ...]:
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
    def field_names(cls) -> tuple[str, ...]:
        return tuple(i.name for i in cls.fields())

    @classmethod
    def nested_help(cls) -> list[str]:
        """Lines about nested parts (``gemm.<field>``) for ``accelforge params``; none by default."""
        return []

    @classmethod
    def field_info(cls, name: str) -> ParamInfo:
        for info in cls.fields():
            if info.name == name:
                return info
        known = ", ".join(i.name for i in cls.fields())
        raise ParamError(f"{cls.family} has no parameter {name!r}; known: {known}")

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
        return cls.from_dict(cls.parse_strings(values))

    @classmethod
    def columns(cls, points: Sequence["Params"]) -> dict[str, np.ndarray]:
        """Struct-of-arrays view of many points, as the vectorised cost models take.

        Enums become their index in declaration order, booleans stay booleans,
        an unset optional (derived) field becomes 0.
        """
        return {info.name: info.encode([getattr(p, info.name) for p in points]) for info in cls.fields()}

    @classmethod
    def valid_columns(cls, col: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per point of ``columns()``, whether every cross-field rule holds."""
        ok = np.ones(np.shape(next(iter(col.values()))), dtype=bool)
        for rule in cls.rules:
            ok = ok & np.asarray(rule.holds(col), dtype=bool)
        return ok

    def replace(self, **changes: Any) -> "Params":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ names
    def digest(self) -> str:
        """Stable 10-hex-digit hash of the family and its parameters (:meth:`digest_values`)."""
        text = json.dumps({"family": self.family, "params": self.digest_values()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def digest_values(self) -> dict[str, Any]:
        """What the digest hashes: :meth:`to_dict` less every ``late`` field at its default, so
        designs cached before such a field joined keep their names."""
        values = self.to_dict()
        for info in self.fields():
            if info.spec.late and getattr(self, info.name) == info.default:
                del values[info.name]
        return values

    def top_name(self) -> str:
        """Verilog module name: derived from family and hash only, never from user text."""
        return f"af_{self.family}_{self.digest()}"


@functools.lru_cache(maxsize=None)
def _fields_of(cls: type) -> tuple[ParamInfo, ...]:
    return cls._declared_fields()
