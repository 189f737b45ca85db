"""MAC baseline for mixed-precision GEMM: dequantize each weight, then multiply-accumulate.

Same tile, ports, control and output format as the LUT engine
(:mod:`generators.mpgemm`), so the two compare on equal terms; the
difference is the datapath: every output element has ``k_lanes``
multipliers of ``a_bits x (w_bits + 1)`` behind an adder tree, fed by one
a_stream beat (``k_lanes`` activations per row) and one w_stream beat
(``k_lanes`` codes per column) per cycle.

Weight lane layout (:func:`pack_weights`): lane ``j`` holds ``k_lanes``
fields of ``w_bits``, field ``t`` = the code of ``W[j*..., j]`` for element
``t`` of the group: ``uint`` codes (dequantized in the engine as
``q - zero_point[j]``), ``int`` two's complement, ``ternary`` as 2-bit two's
complement (-1 = ``0b11``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data

from generators.lanes import pack_lanes
from generators.mpgemm import (MpGemmEngine, MpGemmParams, WeightFormat, check_weights,
                               pack_activations, padded_weights)
from generators.params import int_field

__all__ = ["MacMpGemmParams", "MacMpGemmEngine", "build", "pack_a", "pack_weights"]


@dataclass(frozen=True, kw_only=True)
class MacMpGemmParams(MpGemmParams):
    """Parameters of the dequantize-multiply-accumulate baseline."""

    family: ClassVar[str] = "mac_mpgemm"

    k_lanes: int = int_field(4, 1, 16, doc="multipliers per output element: K elements per cycle")

    @property
    def group(self) -> int:
        return self.k_lanes

    @property
    def passes(self) -> int:
        return 1


class MacMpGemmEngine(MpGemmEngine):
    """``m_tile x n_tile x k_lanes`` dequantizing multipliers on the shared frame."""

    def __init__(self, params: MacMpGemmParams):
        p = params
        operand = data.ArrayLayout(data.ArrayLayout(signed(p.a_bits), p.k_lanes), p.m_tile)
        super().__init__(p, operand, operand, p.k_lanes * p.w_bits, p.out_bits,
                         rowsum=False, tile_zero_point=False)

    def contributions(self, m: Module, operand, w_payload, pass_index, zero_point):
        p = self.params
        b = p.w_bits
        weights = []                                   # per column, the k_lanes dequantized weights
        for j in range(p.n_tile):
            column = []
            for t in range(p.k_lanes):
                code = w_payload[j][t * b:(t + 1) * b]
                value = Signal(signed(b + 1), name=f"w{j}_{t}")
                if p.weight_format is WeightFormat.UINT:
                    m.d.comb += value.eq(code - zero_point[j])
                else:
                    m.d.comb += value.eq(code.as_signed())
                column.append(value)
            weights.append(column)
        return [[sum(operand[i][t] * weights[j][t] for t in range(p.k_lanes)) for j in range(p.n_tile)]
                for i in range(p.m_tile)]


def build(params: MacMpGemmParams) -> MacMpGemmEngine:
    return MacMpGemmEngine(params)


def pack_weights(params: MacMpGemmParams, w: np.ndarray) -> list[int]:
    """W (``K x n_tile``) as w_stream beats: one group of ``k_lanes`` codes per column and beat."""
    p = params
    w = check_weights(p, w, np.asarray(w).shape[0])
    beats = []
    for group in padded_weights(p, w):                 # k_lanes x n_tile
        lanes = pack_lanes(group.T, p.w_bits)
        beats.extend(pack_lanes([lanes], p.k_lanes * p.w_bits))
    return beats


def pack_a(params: MacMpGemmParams, a: np.ndarray) -> list[int]:
    return pack_activations(params, a)
