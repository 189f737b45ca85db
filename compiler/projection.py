"""One BitNet b1.58 projection for one token, compiled for the machine.

The recipe (BitNet b1.58): the weights are ternary by absmean, ``codes = clip(round(W /
s_w), -1, 1)`` with ``s_w = mean(|W|)``; the activations are int8 by absmax per token,
``q = clip(round(x * 127 / max|x|), -127, 127)``; ``y = (q @ codes.T) * s_w * max|x| / 127``.

On the machine, ``x`` arrives in the buffer as ``vector.bits``-bit fixed point with
``frac`` fractional bits. The program is ``ABSMAX`` and ``SCALE`` (the int8 quantization, as
the vector unit rounds it), then ``GEMM`` (the exact integer product), then two ``STORE``s.
One stores the products, rounded by a shift the compiler picks so that no product can
saturate (:func:`output_shift`). The other stores the row's absmax, which the host needs to
dequantize. :func:`dequantize` turns the stored beats back into floats. The distance from
:func:`reference` (the recipe in float64) comes from the fixed-point input, the unit's
quantization scalar and the output shift, and the tests state it on their models.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from generators.isa import encode
from generators.lanes import pack_lanes, unpack_lanes
from generators.mac_mpgemm import pack_weights
from generators.machine import MachineParams
from generators.mpgemm import WeightFormat
from generators.vector import QUANT_LEVELS, VectorOpcode


__all__ = ["Compiled", "compile_projection", "dequantize", "output_shift", "reference", "ternary"]


def ternary(weight: np.ndarray) -> tuple[np.ndarray, float]:
    """BitNet b1.58's absmean quantization: the codes (same shape) and the scale."""
    scale = float(np.mean(np.abs(weight))) or 1.0
    return np.clip(np.round(weight / scale), -1, 1).astype(np.int64), scale


def reference(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The recipe in float64: ``weight`` is ``out x in`` (as a Linear layer keeps it)."""
    codes, scale = ternary(weight)
    amax = float(np.max(np.abs(x))) or 1.0
    q = np.clip(np.round(x * QUANT_LEVELS / amax), -QUANT_LEVELS, QUANT_LEVELS)
    return (codes @ q) * scale * amax / QUANT_LEVELS


def output_shift(p: MachineParams, k: int) -> int:
    """The least shift at which no product of ``k`` int8 activations and ternary weights can
    saturate ``vector.bits``: ``|y| <= 127 k``."""
    shift = 0
    while (QUANT_LEVELS * k + (1 << shift >> 1)) >> shift > (1 << (p.vector.bits - 1)) - 1:
        shift += 1
    return shift


@dataclass(frozen=True)
class Compiled:
    """A program, its memory image, and where each tensor lies (beats from the image base)."""
    program: list[int]
    image: bytes
    regions: dict[str, tuple[int, int]]
    shift: int
    frac: int
    scale: float
    out_features: int
    notes: dict[str, object] = field(default_factory=dict)


def _check(p: MachineParams, weight: np.ndarray, x: np.ndarray, frac: int) -> tuple[int, int]:
    if p.gemm.weight_format is not WeightFormat.TERNARY:
        raise ValueError(f"machine.gemm.weight_format must be 'ternary' for a BitNet projection, not "
                         f"{p.gemm.weight_format.value!r}")
    if weight.ndim != 2 or x.shape != (weight.shape[1],):
        raise ValueError(f"a projection's weight must be out x in and x must have in ({weight.shape[-1]}) "
                         f"elements, not {weight.shape} and {x.shape}")
    out, k = weight.shape
    groups, tiles = -(-k // p.gemm.k_lanes), -(-out // p.gemm.n_tile)
    if k > p.gemm.k_max or groups > p.max_beats:
        raise ValueError(f"in_features must be at most {min(p.gemm.k_max, p.max_beats * p.gemm.k_lanes)} on this "
                         f"machine (gemm.k_max, vector.max_beats x lanes), not {k}")
    if 2 * groups + 1 + tiles > p.buffer_beats or tiles > p.max_beats:
        raise ValueError(f"the projection needs {2 * groups + 1 + tiles} buffer beats and {tiles} output beats; "
                         f"the machine has buffer_beats {p.buffer_beats} and max_beats {p.max_beats}")
    if not 0 <= frac < p.vector.bits:
        raise ValueError(f"frac must be an integer in 0..{p.vector.bits - 1}, not {frac!r}")
    return groups, tiles


def compile_projection(p: MachineParams, weight: np.ndarray, x: np.ndarray, *, frac: int = 8) -> Compiled:
    """The program and image that compute ``weight @ x`` by the recipe, ``x`` in fixed point."""
    weight, x = np.asarray(weight, dtype=np.float64), np.asarray(x, dtype=np.float64)
    groups, tiles = _check(p, weight, x, frac)
    out, k = weight.shape
    g, v, beat = p.gemm, p.vector, p.port_bits // 8
    codes, scale = ternary(weight)
    columns = np.zeros((k, tiles * g.n_tile), dtype=np.int64)
    columns[:, :out] = codes.T
    words = [w for t in range(tiles) for w in pack_weights(g, columns[:, t * g.n_tile:(t + 1) * g.n_tile])]

    lo, hi = -(1 << (v.bits - 1)), (1 << (v.bits - 1)) - 1
    fixed = np.zeros(groups * v.lanes, dtype=np.int64)
    fixed[:k] = np.clip(np.round(x * (1 << frac)), lo, hi)
    regions = {"x": (0, groups), "w": (groups, len(words) * p.weight_beats)}
    regions["absmax"] = (sum(regions["w"]), 1)
    regions["y"] = (sum(regions["absmax"]), tiles)
    image = bytearray(sum(regions["y"]) * beat)
    for i, word in enumerate(pack_lanes(fixed.reshape(groups, v.lanes), v.bits)):
        image[i * beat:(i + 1) * beat] = word.to_bytes(beat, "little")
    first = regions["w"][0] * beat
    span = p.weight_beats * beat
    for i, word in enumerate(words):
        image[first + i * span:first + (i + 1) * span] = word.to_bytes(span, "little")

    shift = output_shift(p, k)
    amax_at, q_at, y_at = groups, groups + 1, 2 * groups + 1
    program = [encode("LOAD", buffer=0, dram=0, beats=groups),
               encode("VECTOR", op=int(VectorOpcode.ABSMAX), shift=0, x=0, y=0, z=amax_at, beats=groups),
               encode("VECTOR", op=int(VectorOpcode.SCALE), shift=v.bits + 1, x=0, y=0, z=q_at, beats=groups),
               encode("GEMM", x=q_at, w=regions["w"][0], z=y_at, k=k, tiles=tiles, shift=shift),
               encode("STORE", buffer=amax_at, dram=regions["absmax"][0], beats=1),
               encode("STORE", buffer=y_at, dram=regions["y"][0], beats=tiles),
               encode("HALT")]
    return Compiled(program, bytes(image), regions, shift, frac, scale, out)


def dequantize(p: MachineParams, compiled: Compiled, image: bytes) -> np.ndarray:
    """The projection's outputs as floats, from the image after the run."""
    beat, v = p.port_bits // 8, p.vector
    at = compiled.regions["absmax"][0] * beat
    amax = int(unpack_lanes(int.from_bytes(image[at:at + beat], "little"), v.lanes, v.bits, is_signed=False)[0])
    first, tiles = compiled.regions["y"]
    y = np.concatenate([unpack_lanes(int.from_bytes(image[(first + t) * beat:(first + t + 1) * beat], "little"),
                                     v.lanes, v.bits) for t in range(tiles)])[:compiled.out_features]
    return y * float(1 << compiled.shift) * compiled.scale * amax / (QUANT_LEVELS * (1 << compiled.frac))
