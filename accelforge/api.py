"""The public API behind :mod:`accelforge` (see there): thin functions over the registry, the
cost models, the generators and the benches, which the command line also drives."""
from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Mapping

from cost_models.ops import AttentionOp, Gemm, VectorOp
from cost_models.targets import get_target
from dse.families import FAMILIES, Family, get_family
from generators.params import Params

__all__ = ["design", "estimate", "families", "generate", "verify"]

Values = Mapping[str, Any] | None


def families() -> list[str]:
    """The families every function here takes, the composed ``accelerator`` included."""
    return list(FAMILIES)


def _text(value: Any) -> str:
    """A typed value as the command line would type it (the one parser checks both)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (int, str)):
        return str(value)
    raise ValueError(f"a parameter value must be an int, a bool, a str or an enum member, not {value!r}")


def _workload(workload: Any):
    from dse.workloads import Workload, load

    return workload if isinstance(workload, Workload) else load(str(workload))


def design(family: str, values: Values = None, *, workload: Any = None) -> Params:
    """One design of ``family``: ``values`` over its defaults, or over ``workload``'s pins
    (a preset name, a file, or a :class:`dse.workloads.Workload`) with unset fields fitted to it."""
    f = get_family(family)
    text = {key: _text(value) for key, value in (values or {}).items()}
    if workload is not None:
        return f.design(_workload(workload), text)
    return f.params.from_strings(text)


def _op(f: Family, params: Params, op: Any):
    if op is None:
        if f.op_type is None:
            raise ValueError(f"{f.name} prices whole workloads: give workload=")
        return f.default_op(params)
    if isinstance(op, (Gemm, AttentionOp, VectorOp)):
        if f.op_type is None or not isinstance(op, f.op_type):
            raise ValueError(f"{f.name} prices {f.op_type.label if f.op_type else 'whole workloads'}, "
                             f"not {type(op).__name__}")
        return op
    if f.op_type is None:
        raise ValueError(f"{f.name} prices whole workloads: give workload=")
    return f.parse_op(str(op))


def estimate(family: str, values: Values = None, *, workload: Any = None, op: Any = None,
             target: str = "kv260") -> dict[str, Any]:
    """The cost model's figures for one design: on a whole ``workload``, or on one ``op`` (a
    ``Gemm``/``AttentionOp``/``VectorOp`` or its command-line text, default the family's own).
    Figures are plain floats, ints and bools; a workload's also has ``ops``, the breakdown."""
    f, tech = get_family(family), get_target(target)
    if workload is not None and op is not None:
        raise ValueError("estimate prices a whole workload or one op, not both")
    if workload is not None:
        wl = _workload(workload)
        params = design(family, values, workload=wl)
        table = f.price(f.params.columns([params]), wl, tech, breakdown=True)
        out = {k: _plain(v[0]) for k, v in table.items() if k != "ops"}
        out["ops"] = [{"name": o["name"], "engine": o["engine"], "count": o["count"],
                       "seconds": _plain(o["seconds"][0]), "bound": _plain(o["bound"][0])}
                      for o in table.get("ops", [])]
    else:
        params = design(family, values)
        table = f.estimate(params, _op(f, params, op), tech)
        out = {k: _plain(v[0]) for k, v in table.items()}
    return {"family": f.name, "hash": params.digest(), "params": params.to_dict(), "target": tech.name, **out}


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def generate(family: str, values: Values = None, *, out: str | Path, interface: str = "engine",
             workload: Any = None) -> dict[str, Path]:
    """Write the design's Verilog and manifest (and, for ``interface="axi"``, its register map)
    into ``out``; returns the files by kind."""
    from generators.artifact import write
    from generators.axi import render_as, write_register_map

    f = get_family(family)
    params = design(family, values, workload=workload)
    artifact = render_as(interface, params, f.build)
    files = write(artifact, Path(out))
    if interface == "axi":
        files.update(write_register_map(artifact, Path(out)))
    return files


def verify(family: str, values: Values = None, *, simulator: str = "verilator", seed: int = 1,
           interface: str = "engine") -> list:
    """Simulate the design on its bench (each engine of a composed design through its top) and
    hold its cycles against the model; one :class:`dse.verify.Verification` per engine."""
    from dse.verify import verify_parts

    f = get_family(family)
    params = design(family, values)
    return [result for *_, result in verify_parts(f, params, seed=seed, simulator=simulator, interface=interface)]
