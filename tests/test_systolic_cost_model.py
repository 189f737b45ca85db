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
                           k_max=int(2 ** rng.integers(0, 13))) for _ in range(n)]


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
                          "dataflow": np.array(0), "k_max": np.array(256)},
                         Gemm(m=16, n=16, k=64), get_target("ecp5-85k"))
    assert out["cycles"].shape == (8,)


@pytest.mark.parametrize("ws", [False, True])
def test_gemm_cycles_compose_from_run_cycles(ws):
    rows, cols, k_max = 3, 5, 7
    m, n, k = 10, 11, 20                      # 4 x 3 tiles, K in chunks 7 + 7 + 6
    expected = 12 * (2 * model.run_cycles(rows, cols, ws, 7) + model.run_cycles(rows, cols, ws, 6)) + rows
    assert model.gemm_cycles(rows, cols, ws, k_max, m, n, k) == expected


def test_run_cycles_formulas():
    assert model.run_cycles(2, 3, False, 8) == 8 + 2 + 3 - 1
    # ws, 5x4, K=12: 3 passes, gap of 2 between passes
    assert model.run_cycles(5, 4, True, 12) == 12 + 3 * 5 + 2 * 2 + 5 + 4
    assert model.run_to_last_c(5, 4, True, 12) == model.run_cycles(5, 4, True, 12) + 5


def test_dsp_inference_follows_what_yosys_does():
    """Measured with flows/synth.py: synth_ecp5 puts even 2x2 products on MULT18X18D;
    synth_xilinx keeps products narrower than 9 bits (4x4) in LUTs."""
    points = [SystolicParams(a_bits=2, w_bits=2), SystolicParams(a_bits=4, w_bits=4),
              SystolicParams(a_bits=4, w_bits=5), SystolicParams(a_bits=16, w_bits=16)]
    gemm = Gemm(m=4, n=4, k=16)
    assert model.estimate(points, gemm, get_target("ecp5-85k"))["dsp"].tolist() == [16, 16, 16, 16]
    assert model.estimate(points, gemm, get_target("xilinx-7"))["dsp"].tolist() == [0, 0, 16, 16]
    assert model.estimate(points, gemm, get_target("asic-45nm"))["dsp"].tolist() == [0, 0, 0, 0]



def test_row_read_multiplexer_counts_luts_of_the_target():
    """A LUT4 tree of 2:1 selects costs ways - 1; a LUT6 selects 4:1, so 16 ways are 4 + 1
    and 5 ways are one 4:1 LUT and one 2:1 LUT."""
    ways = np.array([1, 2, 4, 5, 8, 10, 16, 64])
    assert model.mux_luts(ways, 4).tolist() == (ways - 1).tolist()
    assert model.mux_luts(ways, 6).tolist() == [0, 1, 1, 2, 3, 4, 5, 21]

def test_given_accumulator_width_overrides_full_precision():
    out = model.estimate([SystolicParams(acc_bits=12), SystolicParams()], Gemm(m=4, n=4, k=4),
                         get_target("asic-45nm"))
    assert out["acc_bits"].tolist() == [12, SystolicParams().acc_width]
    assert out["area_transistors"][0] < out["area_transistors"][1]


def test_ws_sweeps_whole_passes_of_the_array():
    out = model.estimate([SystolicParams(rows=4, cols=2, dataflow="ws", k_max=64)],
                         Gemm(m=4, n=2, k=5), get_target("ecp5-85k"))
    assert out["macs"][0] == 4 * 2 * 8       # 2 passes of 4 rows each


def test_bad_gemm_is_named():
    with pytest.raises(ValueError, match=r"gemm.k must be an integer in 1\.\."):
        Gemm(m=1, n=1, k=0)
    with pytest.raises(ValueError, match="gemm must be M,N,K"):
        Gemm.parse("4,4")
    with pytest.raises(ValueError, match="target must be one of"):
        get_target("ecp9")
