"""MAC baseline for mixed-precision GEMM: dequantize each weight, then multiply-accumulate.

Same tile, ports, control and output format as the LUT engine
(:mod:`generators.mpgemm`), so the two compare on equal terms; the
difference is the datapath: every output element has ``k_lanes``
multipliers of ``a_bits x`` :func:`weight_operand_bits` behind an adder tree, fed by one
a_stream beat (``k_lanes`` activations per row) and one w_stream beat
(``k_lanes`` codes per column) per cycle. Weights in {-1, 0, +1} (ternary,
or one bit) take the best multiply-free design instead, so a LUT win over
it is real: each activation is added, subtracted or skipped, the subtraction
a carry-in of the accumulator's carry-chain adders (:mod:`hw.adders`).

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
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data

from generators.lanes import pack_lanes
from generators.mpgemm import (TERNARY_CODE, UINT_CODE, MpGemmEngine, MpGemmParams, WeightFormat, check_weights,
                               pack_activations, padded_weights)
from generators.params import int_field
from hw.adders import signed_sum

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

    @property
    def multiply_free(self) -> bool:
        return bool(multiply_free(self.fmt_code, self.w_bits))


def multiply_free(fmt, w_bits):
    """Weights in {-1, 0, +1} (ternary, or one bit with or without a zero point): each product is
    the activation added, subtracted or skipped, on the accumulator's carry chain, no multiplier."""
    return (np.asarray(fmt) == TERNARY_CODE) | (np.asarray(w_bits) == 1)


def weight_operand_bits(fmt, w_bits):
    """Signed width of the weight a multiplier takes: a ``uint`` code less its zero point needs
    one bit more than the code; an ``int`` code is multiplied as it is."""
    return np.asarray(w_bits) + (np.asarray(fmt) == UINT_CODE)


class MacMpGemmEngine(MpGemmEngine):
    """``m_tile x n_tile x k_lanes`` dequantizing multipliers on the shared frame; for weights in
    {-1, 0, +1} (:func:`multiply_free`) each multiplier is an add, subtract or skip instead."""

    def __init__(self, params: MacMpGemmParams):
        p = params
        operand = data.ArrayLayout(data.ArrayLayout(signed(p.a_bits), p.k_lanes), p.m_tile)
        super().__init__(p, operand, operand, p.k_lanes * p.w_bits, p.out_bits,
                         rowsum=False, tile_zero_point=False)

    def contributions(self, m: Module, operand, w_payload, pass_index, zero_point):
        p = self.params
        b = p.w_bits
        codes = [[w_payload[j][t * b:(t + 1) * b] for t in range(p.k_lanes)] for j in range(p.n_tile)]
        if p.multiply_free:
            return [[[self._signed_activation(m, operand[i][t], codes[j][t], zero_point, j)
                      for t in range(p.k_lanes)] for j in range(p.n_tile)] for i in range(p.m_tile)]
        weights = []                                   # per column, the k_lanes dequantized weights
        for j in range(p.n_tile):
            column = []
            for t in range(p.k_lanes):
                value = Signal(signed(int(weight_operand_bits(p.fmt_code, b))), name=f"w{j}_{t}")
                if p.weight_format is WeightFormat.UINT:
                    m.d.comb += value.eq(codes[j][t] - zero_point[j])
                else:
                    m.d.comb += value.eq(codes[j][t].as_signed())
                column.append(value)
            weights.append(column)
        return [[sum(operand[i][t] * weights[j][t] for t in range(p.k_lanes)) for j in range(p.n_tile)]
                for i in range(p.m_tile)]

    def _signed_activation(self, m: Module, a, code, zero_point, j):
        """``(value, negate)``: the activation or zero, and whether the weight is -1."""
        fmt = self.params.weight_format
        if fmt is WeightFormat.TERNARY:              # 2-bit two's complement: 00, 01, 11
            nonzero, negative = code[0], code[1]
        elif fmt is WeightFormat.UINT:               # q - z with q, z in {0, 1}
            nonzero, negative = code[0] ^ zero_point[j][0], zero_point[j][0]
        else:                                        # 1-bit two's complement: 0 or -1
            nonzero, negative = code[0], 1
        value = Signal(signed(len(a)))
        m.d.comb += value.eq(Mux(nonzero, a, 0))
        return value, negative

    def accumulate(self, m: Module, acc, contribution):
        if self.params.multiply_free:
            return signed_sum(m, acc, contribution, self.params.out_bits)
        return acc + contribution


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
