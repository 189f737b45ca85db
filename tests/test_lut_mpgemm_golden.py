"""The LUT golden model's three paths against a plain integer GEMM, and the host packers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.lut_mpgemm import LutMpGemmParams, table_coefficients, tables
from verif.golden.lut_mpgemm import lut_gemm, reference, table_01, table_pm, table_ternary


@st.composite
def problems(draw):
    fmt = draw(st.sampled_from(["uint", "int", "ternary"]))
    w_bits = 2 if fmt == "ternary" else draw(st.integers(1, 4))
    g = draw(st.integers(1, 5))
    a_bits = draw(st.integers(4, 16))
    m, n, k = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 13))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(-(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1, size=(m, k), endpoint=True)
    if fmt == "uint":
        w = rng.integers(0, (1 << w_bits) - 1, size=(k, n), endpoint=True)
        z = rng.integers(0, (1 << w_bits) - 1, size=n, endpoint=True)
    elif fmt == "int":
        w = rng.integers(-(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, size=(k, n), endpoint=True)
        z = None
    else:
        w = rng.integers(-1, 1, size=(k, n), endpoint=True)
        z = None
    return fmt, w_bits, g, a, w, z


@settings(max_examples=300, deadline=None)
@given(problems(), st.booleans())
def test_lut_paths_equal_integer_gemm(problem, symmetric):
    fmt, w_bits, g, a, w, z = problem
    got = lut_gemm(a, w, weight_format=fmt, w_bits=w_bits, g=g, symmetric=symmetric, zero_point=z)
    np.testing.assert_array_equal(got, reference(a, w, fmt, z))


def test_extreme_codes_and_zero_points():
    """All-minimum and all-maximum codes with zero points at both ends, most negative activations."""
    for w_bits in range(1, 5):
        top = (1 << w_bits) - 1
        a = np.full((2, 9), -128)
        for code in (0, top):
            for zp in (0, top):
                w = np.full((9, 3), code)
                z = np.full(3, zp)
                for symmetric in (False, True):
                    got = lut_gemm(a, w, weight_format="uint", w_bits=w_bits, g=4, symmetric=symmetric,
                                   zero_point=z)
                    np.testing.assert_array_equal(got, reference(a, w, "uint", z))


@pytest.mark.parametrize("g", range(1, 6))
def test_table_symmetry(g):
    """T+-[~idx] = -T+-[idx] and the ternary mirror T[3^g-1-idx] = -T[idx] (what halves the tables)."""
    rng = np.random.default_rng(g)
    group = rng.integers(-100, 100, size=g)
    full = table_pm(group)
    mask = (1 << g) - 1
    assert all(full[~i & mask] == -full[i] for i in range(1 << g))
    tern = table_ternary(group)
    assert all(tern[3 ** g - 1 - i] == -tern[i] for i in range(3 ** g))
    assert table_01(group)[mask] == group.sum() == full[mask]


@pytest.mark.parametrize("fmt,symmetric,g", [("uint", False, 3), ("uint", True, 4), ("ternary", True, 3),
                                             ("ternary", False, 2), ("int", True, 1)])
def test_host_tables_match_golden_tables(fmt, symmetric, g):
    """The tables the host streams (table_source=external) are the golden tables' stored entries."""
    w_bits = 2
    p = LutMpGemmParams(m_tile=2, g=g, symmetric=symmetric, weight_format=fmt, w_bits=w_bits)
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 127, size=(2, 2 * g))
    host = tables(p, a)
    for j in range(2):
        for i in range(2):
            group = a[i, j * g:(j + 1) * g]
            if fmt == "ternary":
                full = table_ternary(group)
                stored = full[(3 ** g - 1) // 2:] if symmetric else full
            elif symmetric:
                stored = table_pm(group)[1::2]
            else:
                stored = table_01(group)
            np.testing.assert_array_equal(host[j, i], stored)
    assert len(table_coefficients(fmt == "ternary", symmetric, g)) == p.entries
