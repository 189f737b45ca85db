"""Regression: the LUT mpGEMM engine and its MAC baseline on Verilator against the golden models.

Each configuration runs the whole cocotb bench (K = g, K = k_max, ragged K,
random tiles, extreme codes and zero points, a tiled GEMM issued back to
back, gaps and backpressure) and holds every measured cycle count against
the cost model: equal without stalls, at least the model with them.
"""
from __future__ import annotations

import pytest

from generators.lut_mpgemm import LutMpGemmParams as L
from generators.mac_mpgemm import MacMpGemmParams as M
from tests.regression import check_regression

LUT_CONFIGS = [
    L(m_tile=2, n_tile=3, g=4, w_bits=2, weight_format="uint", symmetric=True, k_groups=2, k_max=16),
    L(m_tile=1, n_tile=4, g=2, w_bits=1, weight_format="int", symmetric=False, k_max=9),
    L(m_tile=3, n_tile=2, g=3, w_bits=3, weight_format="uint", symmetric=False, planes_per_cycle=3,
      a_bits=16, k_max=13),
    L(m_tile=2, n_tile=5, g=5, w_bits=4, weight_format="int", symmetric=True, planes_per_cycle=2,
      table_source="external", a_bits=6, k_groups=2, k_max=20),
    L(m_tile=2, n_tile=4, g=3, w_bits=2, weight_format="ternary", symmetric=True, k_groups=3, k_max=20),
    L(m_tile=1, n_tile=3, g=4, w_bits=2, weight_format="ternary", symmetric=False,
      table_source="external", a_bits=4, k_max=11),
    L(m_tile=4, n_tile=8, g=2, w_bits=4, weight_format="uint", symmetric=True, planes_per_cycle=4, k_max=32),
    L(m_tile=1, n_tile=16, g=4, w_bits=3, weight_format="int", symmetric=True, table_source="external",
      k_max=7),
    L(m_tile=1, n_tile=1, g=1, w_bits=3, weight_format="uint", symmetric=True, k_max=3),
]
# fetchers (column_steps) and tables in distributed RAM: fills longer than a group's beats,
# shorter, and equal; rows sums read from a fill; several read ports per fetcher
LOOKUP_CONFIGS = [
    L(m_tile=2, n_tile=6, g=2, w_bits=2, weight_format="uint", symmetric=True, k_groups=2, column_steps=3,
      k_max=12),
    L(m_tile=2, n_tile=4, g=3, w_bits=2, weight_format="ternary", symmetric=True, table_store="lutram",
      column_steps=4, k_max=20),
    L(m_tile=2, n_tile=6, g=3, w_bits=2, weight_format="uint", symmetric=False, table_store="lutram",
      k_groups=2, k_max=30),
]
LONG_LOOKUP_CONFIGS = [
    L(m_tile=1, n_tile=8, g=2, w_bits=3, weight_format="int", symmetric=True, table_store="lutram",
      column_steps=2, k_max=16),
    L(m_tile=1, n_tile=4, g=4, w_bits=4, weight_format="uint", symmetric=True, table_store="lutram",
      column_steps=2, planes_per_cycle=2, k_max=20),
    L(m_tile=2, n_tile=3, g=2, w_bits=3, weight_format="int", symmetric=True, table_store="lutram", k_max=10),
    L(m_tile=1, n_tile=2, g=1, w_bits=1, weight_format="uint", symmetric=True, table_store="lutram", k_max=5),
    L(m_tile=3, n_tile=8, g=4, w_bits=2, weight_format="ternary", symmetric=False, column_steps=8, k_max=9),
]
MAC_CONFIGS = [
    M(m_tile=2, n_tile=3, k_lanes=4, w_bits=4, weight_format="uint", k_max=16),
    M(m_tile=1, n_tile=5, k_lanes=1, w_bits=1, weight_format="int", k_max=7),
    M(m_tile=3, n_tile=2, k_lanes=3, w_bits=2, weight_format="ternary", a_bits=16, k_max=11),
    M(m_tile=4, n_tile=8, k_lanes=5, w_bits=1, weight_format="uint", a_bits=4, k_max=20),
]
EXPECTED_TESTS = {"k_equals_group", "k_max", "k_ragged", "random_tiles", "extremes", "back_to_back_gemm",
                  "gaps_and_backpressure"}


def config_id(p) -> str:
    fmt = p.weight_format.value
    if p.family == "lut_mpgemm":
        sym = "sym" if p.symmetric else "01"
        return (f"lut_{p.m_tile}x{p.n_tile}_g{p.g}x{p.k_groups}_{fmt}{p.w_bits}_{sym}_p{p.planes_per_cycle}"
                f"_{p.table_source.value}_{p.table_store.value}_s{p.column_steps}_a{p.a_bits}_k{p.k_max}")
    return f"mac_{p.m_tile}x{p.n_tile}_l{p.k_lanes}_{fmt}{p.w_bits}_a{p.a_bits}_k{p.k_max}"


def _check(params, tmp_path) -> None:
    check_regression(params, tmp_path, seed=11, expected_tests=EXPECTED_TESTS,
                     whole_figure="first_start_to_last_y", min_exact=10)


@pytest.mark.sim
@pytest.mark.parametrize("params", LUT_CONFIGS + LOOKUP_CONFIGS + MAC_CONFIGS, ids=config_id)
def test_mpgemm_regression(params, tmp_path):
    _check(params, tmp_path)


@pytest.mark.sim
@pytest.mark.regress
@pytest.mark.parametrize("params", LONG_LOOKUP_CONFIGS, ids=config_id)
def test_mpgemm_long_regression(params, tmp_path):
    _check(params, tmp_path)
