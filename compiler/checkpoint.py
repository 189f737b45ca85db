"""A model as users have it: a Hugging Face-style folder with ``config.json`` and
``model.safetensors`` (read with the ``safetensors`` library), tensors by their Llama names
(``model.layers.0.mlp.down_proj.weight``). Every problem with the folder is a ``ValueError``
that names the file or the tensor."""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "load"]

CONFIG, WEIGHTS = "config.json", "model.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    config: dict[str, Any]
    tensors: dict[str, np.ndarray]

    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """One tensor as float64, its shape checked when ``shape`` is given."""
        if name not in self.tensors:
            near = difflib.get_close_matches(name, list(self.tensors), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; it has {len(self.tensors)} tensors"
            raise ValueError(f"{self.folder / WEIGHTS} has no tensor {name!r}{hint}")
        value = self.tensors[name]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(f"{self.folder / WEIGHTS}: tensor {name!r} must be {tuple(shape)}, not {tuple(value.shape)}")
        return np.asarray(value, dtype=np.float64)


def load(folder: str | Path) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"model folder {folder} does not exist or is not a folder")
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise ValueError(f"model folder {folder} has no {name}")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder / CONFIG} is not readable JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{folder / CONFIG} must hold a JSON object, not {type(config).__name__}")
    try:
        tensors = load_file(folder / WEIGHTS)
    except TypeError:                    # numpy has no bfloat16: Hugging Face's usual checkpoint dtype
        tensors = _with_bfloat16(folder / WEIGHTS)
    except (OSError, SafetensorError, ValueError) as exc:
        raise ValueError(f"{folder / WEIGHTS} is not a readable safetensors file: {exc}") from None
    return Checkpoint(folder, config, tensors)


def _with_bfloat16(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, bfloat16 ones widened to float32 (its top half),
    read from the format's header: an 8-byte little-endian length, then JSON naming each
    tensor's dtype, shape and byte range after the header."""
    from safetensors.numpy import load

    data = path.read_bytes()
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None
    body = data[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info.get("dtype") != "BF16":
            continue
        lo, hi = info["data_offsets"]
        half = np.frombuffer(body[lo:hi], dtype="<u2").astype(np.uint32) << 16
        out[name] = half.view(np.float32).reshape(info["shape"])
    rest = {k: v for k, v in header.items() if k not in out}
    if len(rest) > ("__metadata__" in rest):
        offsets = {k: v for k, v in rest.items() if k != "__metadata__"}
        out.update(load(_repack(offsets, body, rest.get("__metadata__"))))
    return out


def _repack(tensors: dict[str, dict], body: bytes, metadata) -> bytes:
    """A safetensors file of the given tensors only (their bytes copied), for the library to read."""
    header, chunks, at = {}, [], 0
    for name, info in tensors.items():
        lo, hi = info["data_offsets"]
        header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [at, at + hi - lo]}
        chunks.append(body[lo:hi])
        at += hi - lo
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)
