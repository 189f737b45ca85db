"""Golden model and accumulator sizing, checked against plain Python integers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from generators.systolic import SystolicParams, full_precision_acc_bits, pack_a, pack_b, unpack_lanes
from verif.golden.systolic import gemm, operand_range, wrap


def _fits(value: int, bits: int, is_signed: bool) -> bool:
    lo, hi = operand_range(bits, is_signed)
    return lo <= value <= hi


@given(a=st.integers(2, 16), w=st.integers(2, 16), k=st.integers(1, 65536), s=st.booleans())
@settings(max_examples=300, deadline=None)
def test_full_precision_width_is_the_narrowest_that_holds_every_sum(a, w, k, s):
    bits = int(full_precision_acc_bits(a, w, k, s))
    (alo, ahi), (wlo, whi) = operand_range(a, s), operand_range(w, s)
    products = [x * y for x, y in itertools.product((alo, ahi), (wlo, whi))]
    extremes = (k * min(products), k * max(products))
    assert all(_fits(v, bits, s) for v in extremes)
    assert not all(_fits(v, bits - 1, s) for v in extremes) or bits == 1


def test_full_precision_width_is_vectorised():
    got = full_precision_acc_bits(np.array([8, 2, 16]), np.array([8, 2, 16]),
                                  np.array([1, 1, 65536]), np.array([True, True, False]))
    assert got.tolist() == [16, 4, 48]


@given(bits=st.integers(2, 61), s=st.booleans(), values=st.lists(st.integers(-2**61, 2**61), min_size=1))
def test_wrap_matches_python_modular_arithmetic(bits, s, values):
    got = wrap(np.array(values, dtype=np.int64), bits, s).tolist()
    for v, g in zip(values, got):
        u = v % (1 << bits)
        assert g == (u - (1 << bits) if s and u >> (bits - 1) else u)


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_gemm_equals_python_integer_gemm(data):
    s = data.draw(st.booleans())
    acc = data.draw(st.integers(2, 40))
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    lo, hi = operand_range(8, s)
    a = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=m * k, max_size=m * k))).reshape(m, k)
    b = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=k * n, max_size=k * n))).reshape(k, n)
    got = gemm(a, b, acc, s)
    for i in range(m):
        for j in range(n):
            exact = sum(int(a[i, t]) * int(b[t, j]) for t in range(k))
            assert got[i, j] == wrap(np.array([exact]), acc, s)[0]


def test_packing_is_lane_zero_low_and_round_trips():
    p = SystolicParams(rows=2, cols=3, a_bits=4, w_bits=4, signed=True, dataflow="os", k_max=4)
    a = np.array([[1, -2], [3, -8]])                 # rows x K
    beats = pack_a(p, a)
    assert beats[0] == (1 | (3 << 4))                # column 0: lane0=A[0,0], lane1=A[1,0]
    assert unpack_lanes(beats[1], 2, 4, True).tolist() == [-2, -8]
    b = np.array([[1, 2, 3]])
    assert pack_b(p, b) == [1 | (2 << 4) | (3 << 8)]


def test_ws_packing_streams_m_tile_rows_per_slice_and_pads_k():
    p = SystolicParams(rows=2, cols=1, dataflow="ws", k_max=8, m_tile=3)
    a = np.arange(9).reshape(3, 3)                   # K = 3 -> 2 slices of m_tile = 3 beats
    beats = pack_a(p, a)
    assert len(beats) == p.a_beats(3) == 6
    assert unpack_lanes(beats[0], 2, 8, True).tolist() == [0, 1]   # A[0, 0:2]
    assert unpack_lanes(beats[4], 2, 8, True).tolist() == [5, 0]   # A[1, 2:4] zero-padded
    b = np.array([[1], [2], [3]])
    assert pack_b(p, b) == [1, 2, 3, 0] and p.b_beats(3) == 4      # B rows padded to the slice
    with pytest.raises(ValueError, match="A must have 3 rows"):
        pack_a(p, a[:2])
