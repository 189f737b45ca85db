"""A whole accelerator: one GEMM engine kind, one attention engine, replicas of each and a
vector unit, sharing one device and its off-chip memory.

``AcceleratorParams`` nests the families' own Params: the GEMM engine's fields are
addressed as ``gemm.<field>`` (``gemm.n_tile=64``), the attention engine's as
``attention.<field>`` and the vector unit's as ``vector.<field>``; the engine kind itself
is ``gemm`` (``systolic``, ``lut_mpgemm``, ``mac_mpgemm``). Errors name the nested field
(``accelerator.gemm.n_tile must be ...``). The top module instantiates every engine
replica with its ports brought out under ``gemm<i>__`` / ``attention<i>__``; the vector
unit is priced from its own RTL's model (:mod:`generators.vector`), and joins the top with
the controller that will issue its runs.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from generators import attention, lut_mpgemm, mac_mpgemm, systolic
from generators.attention import AttentionParams
from generators.params import ParamError, Params, choice_field, int_field, nested_errors, split_nested
from generators.vector import VectorParams


class GemmKind(enum.Enum):
    SYSTOLIC = "systolic"
    LUT_MPGEMM = "lut_mpgemm"
    MAC_MPGEMM = "mac_mpgemm"


# kind -> (its Params class, its builder)
GEMM_ENGINES: dict[GemmKind, tuple[type[Params], Callable[[Any], wiring.Component]]] = {
    GemmKind.SYSTOLIC: (systolic.SystolicParams, systolic.build),
    GemmKind.LUT_MPGEMM: (lut_mpgemm.LutMpGemmParams, lut_mpgemm.build),
    GemmKind.MAC_MPGEMM: (mac_mpgemm.MacMpGemmParams, mac_mpgemm.build),
}
PARTS: dict[str, type[Params]] = {"attention": AttentionParams, "vector": VectorParams}
"""The nested parts of one fixed family, each an attribute of that name (the GEMM engine's
family is a choice: ``gemm`` and ``gemm_params``)."""
NESTED = ("gemm", *PARTS)


def _nested(prefix: str, cls: type[Params], make: Callable[[], Any]) -> Any:
    """Run ``make`` and name the nested field in its error (``accelerator.gemm.n_tile ...``)."""
    with nested_errors(f"accelerator.{prefix}", cls):
        return make()


@dataclass(frozen=True, kw_only=True)
class AcceleratorParams(Params):
    """Parameters of a whole accelerator (see the module docstring)."""

    family: ClassVar[str] = "accelerator"

    gemm: GemmKind = choice_field(GemmKind.LUT_MPGEMM, doc="GEMM engine kind; its fields are gemm.<field>")
    gemm_instances: int = int_field(1, 1, 8, doc="GEMM engine replicas, each a slice of every GEMM's N")
    attention_instances: int = int_field(1, 1, 8, doc="attention engine replicas, each a share of the KV heads")
    gemm_params: Params | None = field(default=None)
    attention: AttentionParams = field(default_factory=AttentionParams)
    vector: VectorParams = field(default_factory=VectorParams)

    def __post_init__(self) -> None:
        kind = self._coerce(self.field_info("gemm"), self.gemm)
        cls, _ = GEMM_ENGINES[kind]
        if self.gemm_params is None:                 # the kind's defaults
            object.__setattr__(self, "gemm_params", cls())
        super().__post_init__()
        if not isinstance(self.gemm_params, cls):
            raise ParamError(f"accelerator.gemm_params must be {cls.__name__} for gemm "
                             f"{self.gemm.value!r}, not {type(self.gemm_params).__name__}")
        for prefix, cls in PARTS.items():
            if not isinstance(getattr(self, prefix), cls):
                raise ParamError(f"accelerator.{prefix} must be {cls.__name__}, not {getattr(self, prefix)!r}")

    @property
    def gemm_class(self) -> type[Params]:
        return GEMM_ENGINES[self.gemm][0]

    # ------------------------------------------------------------------ round trips
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({f"gemm.{k}": v for k, v in self.gemm_params.to_dict().items()})
        for prefix in PARTS:
            out.update({f"{prefix}.{k}": v for k, v in getattr(self, prefix).to_dict().items()})
        return out

    def digest_values(self) -> dict[str, Any]:
        """The nested parts' values as their own digests take them (late fields at their
        default left out there too)."""
        out = {k: v for k, v in super().digest_values().items() if not k.startswith(tuple(f"{p}." for p in NESTED))}
        out.update({f"gemm.{k}": v for k, v in self.gemm_params.digest_values().items()})
        for prefix in PARTS:
            out.update({f"{prefix}.{k}": v for k, v in getattr(self, prefix).digest_values().items()})
        return out

    @staticmethod
    def split(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Top-level items and the ``gemm.`` / ``attention.`` / ``vector.`` items by prefix."""
        return split_nested("accelerator", values, NESTED)

    @classmethod
    def kind_of(cls, top: Mapping[str, Any]) -> GemmKind:
        """The GEMM kind that top-level items choose (the declared default if none)."""
        return cls._coerce(cls.field_info("gemm"), top.get("gemm", cls.field_info("gemm").default))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "AcceleratorParams":
        top, nested = cls.split(values)
        for name in top:
            cls.field_info(name)
        gemm_cls = GEMM_ENGINES[cls.kind_of(top)][0]
        gemm = _nested("gemm", gemm_cls, lambda: gemm_cls.from_dict(nested["gemm"]))
        parts = {prefix: _nested(prefix, part, lambda: part.from_dict(nested[prefix])) for prefix, part in PARTS.items()}
        return cls(**top, gemm_params=gemm, **parts)

    @classmethod
    def check_fields(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        top, nested = cls.split(values)
        out = super().check_fields(top)
        gemm_cls = GEMM_ENGINES[cls.kind_of(out)][0]
        out.update({f"gemm.{k}": v for k, v in _nested(
            "gemm", gemm_cls, lambda: gemm_cls.check_fields(nested["gemm"])).items()})
        for prefix, part in PARTS.items():
            out.update({f"{prefix}.{k}": v for k, v in _nested(
                prefix, part, lambda: part.check_fields(nested[prefix])).items()})
        return out

    @classmethod
    def parse_strings(cls, values: Mapping[str, str]) -> dict[str, Any]:
        """Top-level and nested ``--set`` text as typed values, nested names checked against the
        chosen GEMM kind's, the attention engine's and the vector unit's fields."""
        top, nested = cls.split(values)
        parsed = super().parse_strings(top)
        gemm_cls = GEMM_ENGINES[cls.kind_of(parsed)][0]
        for prefix, part in (("gemm", gemm_cls), *PARTS.items()):
            for name, text in nested[prefix].items():
                info = _nested(prefix, part, lambda: part.field_info(name))
                parsed[f"{prefix}.{name}"] = info.parse(text)
        return parsed

    @classmethod
    def columns(cls, points) -> dict[str, np.ndarray]:
        """Top fields, then every GEMM kind's fields as ``<kind>.<field>`` (the kind's
        defaults where a point uses another kind), ``attention.<field>`` and ``vector.<field>``."""
        out = super().columns(points)
        for kind, (gemm_cls, _) in GEMM_ENGINES.items():
            own = [p.gemm_params if p.gemm is kind else gemm_cls() for p in points]
            out.update({f"{kind.value}.{k}": v for k, v in gemm_cls.columns(own).items()})
        for prefix, part in PARTS.items():
            out.update({f"{prefix}.{k}": v for k, v in part.columns([getattr(p, prefix) for p in points]).items()})
        return out

    @classmethod
    def nested_help(cls) -> list[str]:
        return ["gemm.<field>: the fields of the chosen GEMM engine (accelforge params systolic | "
                "lut_mpgemm | mac_mpgemm)", "attention.<field>: the attention engine's fields "
                "(accelforge params attention)", "vector.<field>: the vector unit's fields (accelforge params vector)"]


class Accelerator(wiring.Component):
    """Every engine replica of an accelerator, each with its own ports at the top."""

    def __init__(self, params: AcceleratorParams):
        self.params = params
        _, build_gemm = GEMM_ENGINES[params.gemm]
        self.engines = {f"gemm{i}": (build_gemm(params.gemm_params), params.gemm_params)
                        for i in range(params.gemm_instances)}       # name -> (engine, its Params)
        self.engines.update({f"attention{i}": (attention.build(params.attention), params.attention)
                             for i in range(params.attention_instances)})
        super().__init__({name: Out(engine.signature) for name, (engine, _) in self.engines.items()})

    def elaborate(self, platform):
        m = Module()
        for name, (engine, _) in self.engines.items():
            m.submodules[name] = engine
            wiring.connect(m, wiring.flipped(getattr(self, name)), engine)
        return m


def build(params: AcceleratorParams) -> Accelerator:
    return Accelerator(params)
