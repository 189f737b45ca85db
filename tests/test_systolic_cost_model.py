"""Cost model of the systolic engine: contract, vectorisation, internal consistency.

Exactness against the RTL is proven in test_systolic_sim.py; these tests pin
the model's own algebra so that a formula edit cannot silently drift.
"""
from __future__ import annotations

import numpy as np
import pytest

from cost_models import systolic as model
from cost_models.ops import Gemm
from cost_models.targets import TARGETS, get_target
from generators.systolic import SystolicParams
from tests.model_checks import assert_batch_equals_points

REQUIRED = {"cycles", "latency_s", "throughput_ops_s", "lut", "ff", "dsp", "bram",
            "area_transistors", "energy_j", "fmax_mhz"}


def _random_points(n: int, seed: int = 0) -> list[SystolicParams]:
    rng = np.random.default_rng(seed)
    return [SystolicParams(rows=int(rng.integers(1, 65)), cols=int(rng.integers(1, 65)),
                           a_bits=int(rng.integers(2, 17)), w_bits=int(rng.integers(2, 17)),
                           signed=bool(rng.integers(2)), dataflow=["os", "ws"][rng.integers(2)],
                           k_max=int(2 ** rng.integers(0, 13)), m_tile=int(rng.integers(2, 600)))
            for _ in range(n)]


@pytest.mark.parametrize("target", list(TARGETS))
def test_estimate_has_the_contract_columns_for_every_target(target):
    out = model.estimate(_random_points(20), Gemm(m=64, n=96, k=300), get_target(target))
    assert REQUIRED <= set(out)
    for key, column in out.items():
        assert column.shape == (20,), key
    assert np.all(out["cycles"] > 0) and np.all(out["energy_j"] > 0)
    assert np.allclose(out["throughput_ops_s"] * out["latency_s"], 2 * 64 * 96 * 300)


def test_batch_equals_point_by_point():
    points = _random_points(50, seed=1)
    assert_batch_equals_points(model.estimate, points, Gemm(m=33, n=70, k=1000), ("xilinx-7",))


def test_columns_broadcast_against_each_other():
    out = model.estimate({"rows": np.arange(1, 9), "cols": np.array(4), "a_bits": np.array(8),
                          "w_bits": np.array(8), "acc_bits": np.array(0), "signed": np.array(True),
                          "dataflow": np.array(0), "k_max": np.array(256), "m_tile": np.array(64)},
                         Gemm(m=16, n=16, k=64), get_target("ecp5-85k"))
    assert out["cycles"].shape == (8,)


@pytest.mark.parametrize("ws", [False, True])
@pytest.mark.parametrize("k_max", [3, 7, 40])
@pytest.mark.parametrize("m_tile", [2, 4, 30])
def test_gemm_cycles_compose_from_run_cycles(ws, k_max, m_tile):
    """A GEMM is its runs issued back to back: each next start is taken in the done cycle of
    the one before, so the whole is every run's start-to-done plus the last one's drain."""
    rows, cols = 3, 5
    m, n, k = 10, 11, 20                      # 3 column tiles, K in chunks of k_max
    row_tiles = -(-m // (m_tile if ws else rows))
    ks = [min(k_max, k - k0) for _ in range(3 * row_tiles) for k0 in range(0, k, k_max)]
    place = [(i, ks[i - 1] if i else 0) for i in range(len(ks))]
    whole = sum(int(model.run_cycles(rows, cols, ws, m_tile, kk, *pp)) for kk, pp in zip(ks[:-1], place))
    whole += int(model.run_to_last_c(rows, cols, ws, m_tile, ks[-1], *place[-1]))
    assert model.gemm_cycles(rows, cols, ws, m_tile, k_max, m, n, k) == whole


def test_run_cycles_formulas():
    # os, 2x3 (P = 7): a run costs its depth, one bubble cycle between runs, and a bubble
    # at most every P cycles
    assert model.run_cycles(2, 3, False, 9, 8) == 8
    assert model.run_to_last_c(2, 3, False, 9, 8) == 8 + 2 * 2 + 3
    assert model.run_cycles(2, 3, False, 9, 2, index=1, k_prev=1) == 2 + 1
    assert model.run_cycles(2, 3, False, 9, 2, index=2, k_prev=1) == 2 + 1 + (7 - 1 - 1)
    assert model.run_to_last_c(2, 3, False, 9, 2, index=1) == 2 + 1 + 7 + (7 - 1 - 2)
    # ws, 5x4 (P = 14), K = 12: 3 slices of max(M, P) cycles; the first run also waits for
    # its first weights and ends M - 1 cycles into its last slice
    assert model.run_cycles(5, 4, True, 20, 12) == 5 + 2 * 20 + 20 - 1
    assert model.run_cycles(5, 4, True, 7, 12, index=1) == 3 * 14
    assert model.run_to_last_c(5, 4, True, 7, 12) == model.run_cycles(5, 4, True, 7, 12) + 5 + 4


def test_dsp_inference_follows_what_yosys_does():
    """Measured with flows/synth.py: synth_ecp5 puts even 2x2 products on MULT18X18D;
    synth_xilinx keeps products narrower than 9 bits (4x4) in LUTs."""
    points = [SystolicParams(a_bits=2, w_bits=2), SystolicParams(a_bits=4, w_bits=4),
              SystolicParams(a_bits=4, w_bits=5), SystolicParams(a_bits=16, w_bits=16)]
    gemm = Gemm(m=4, n=4, k=16)
    assert model.estimate(points, gemm, get_target("ecp5-85k"))["dsp"].tolist() == [16, 16, 16, 16]
    assert model.estimate(points, gemm, get_target("xilinx-7"))["dsp"].tolist() == [0, 0, 16, 16]
    assert model.estimate(points, gemm, get_target("asic-45nm"))["dsp"].tolist() == [0, 0, 0, 0]



def test_given_accumulator_width_overrides_full_precision():
    out = model.estimate([SystolicParams(acc_bits=12), SystolicParams()], Gemm(m=4, n=4, k=4),
                         get_target("asic-45nm"))
    assert out["acc_bits"].tolist() == [12, SystolicParams().acc_width]
    assert out["area_transistors"][0] < out["area_transistors"][1]


def test_ws_sweeps_whole_slices_of_the_array():
    out = model.estimate([SystolicParams(rows=4, cols=2, dataflow="ws", k_max=64, m_tile=6)],
                         Gemm(m=4, n=2, k=5), get_target("ecp5-85k"))
    assert out["macs"][0] == 4 * 2 * 2 * 6       # 2 slices of m_tile rows each


def test_bad_gemm_is_named():
    with pytest.raises(ValueError, match=r"gemm.k must be an integer in 1\.\."):
        Gemm(m=1, n=1, k=0)
    with pytest.raises(ValueError, match="gemm must be M,N,K"):
        Gemm.parse("4,4")
    with pytest.raises(ValueError, match="target must be one of"):
        get_target("ecp9")


def test_the_least_cycles_bound_every_run_of_a_stream():
    """The bound a stalled run is held to lies at or below the exact figures of a run in any
    place of an unstalled stream."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        rows, cols, m_tile, k, k_prev = (int(rng.integers(1, 40)) for _ in range(5))
        for ws in (False, True):
            done, last = model.least_run_cycles(rows, cols, ws, m_tile, k)
            for index in range(4):
                assert done <= model.run_cycles(rows, cols, ws, m_tile, k, index, k_prev)
                assert last <= model.run_to_last_c(rows, cols, ws, m_tile, k, index, k_prev)
