"""Regression: the generated systolic engine on Verilator against the golden model.

Each configuration runs the whole cocotb bench (random tiles, extremes, K = 1,
K = k_max, a tiled GEMM issued back to back, gaps and backpressure) and holds
every measured cycle count against the cost model: equal without stalls, at
least the model with them.
"""
from __future__ import annotations

import pytest

from generators.systolic import SystolicParams
from tests.regression import check_regression

S = SystolicParams
CONFIGS = [
    S(rows=1, cols=1, dataflow="os", signed=True, k_max=4),
    S(rows=1, cols=1, dataflow="ws", signed=False, k_max=5, m_tile=2),
    S(rows=2, cols=3, dataflow="os", signed=True, k_max=8),
    S(rows=2, cols=3, dataflow="ws", signed=True, k_max=8, m_tile=9),
    S(rows=3, cols=8, dataflow="os", signed=False, a_bits=4, w_bits=6, k_max=16),
    S(rows=5, cols=4, dataflow="ws", signed=False, a_bits=6, w_bits=3, k_max=12, m_tile=3),
    S(rows=4, cols=4, dataflow="os", signed=True, acc_bits=12, k_max=16),
    S(rows=4, cols=4, dataflow="ws", signed=True, a_bits=16, w_bits=16, k_max=8, m_tile=16),
    S(rows=3, cols=1, dataflow="ws", signed=True, a_bits=2, w_bits=2, k_max=7, m_tile=6),
    S(rows=8, cols=8, dataflow="ws", signed=True, acc_bits=10, k_max=20, m_tile=24),
    S(rows=6, cols=5, dataflow="os", signed=True, a_bits=3, w_bits=16, k_max=33),
]
LONG_CONFIGS = [
    S(rows=16, cols=16, dataflow="os", k_max=64),
    S(rows=16, cols=16, dataflow="ws", k_max=64, m_tile=40),
    S(rows=1, cols=64, dataflow="ws", a_bits=4, w_bits=4, k_max=32, m_tile=70),
    S(rows=32, cols=2, dataflow="os", signed=False, k_max=40),
    S(rows=32, cols=32, dataflow="os", k_max=48),
    S(rows=32, cols=32, dataflow="ws", k_max=70, m_tile=100),
]
EXPECTED_TESTS = {"k_one", "k_max", "random_tiles", "extremes", "back_to_back_gemm",
                  "gaps_and_backpressure"}


def _config_id(p: SystolicParams) -> str:
    acc = f"_acc{p.acc_bits}" if p.acc_bits else ""
    acc += f"_m{p.m_tile}" if p.dataflow.value == "ws" else ""
    sign = "s" if p.signed else "u"
    return f"{p.dataflow.value}_{p.rows}x{p.cols}_a{p.a_bits}w{p.w_bits}{sign}{acc}_k{p.k_max}"


def _check(params: SystolicParams, tmp_path) -> None:
    check_regression(params, tmp_path, seed=7, expected_tests=EXPECTED_TESTS,
                     whole_figure="first_start_to_last_c")


@pytest.mark.sim
@pytest.mark.parametrize("params", CONFIGS, ids=_config_id)
def test_systolic_regression(params, tmp_path):
    _check(params, tmp_path)


@pytest.mark.sim
@pytest.mark.regress
@pytest.mark.parametrize("params", LONG_CONFIGS, ids=_config_id)
def test_systolic_long_regression(params, tmp_path):
    _check(params, tmp_path)
