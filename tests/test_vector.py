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
from generators.vector import norm_shift, quant_shift
from verif.golden.vector import (ELEMENTWISE_BOUND, QUANT_BOUND, argmax, absmax, elementwise, gate_bound,
                                 gate_reference, limits, mean_offset, norm_error_excess, quant_error, quant_scalar,
                                 rms_scalar, worst_error)

ELEMENTWISE = [op for op in VectorOpcode
               if not op.reduction and not op.gated and op not in (VectorOpcode.ROPE, VectorOpcode.CENTER)]
"""Checked element by element; ROPE's lane pairs, the gated ops and CENTER have their own tests."""
SCALAR = 1000003                                    # a scalar for SCALE wider than any 4-bit lane


def _definition(op: VectorOpcode, x: int, y: int, shift: int, bits: int, scalar: int = SCALAR) -> int:
    """The unit's arithmetic written out in Python integers: the exact value, halved ``shift``
    times with rounding half up, clamped."""
    value = {VectorOpcode.ADD: x + y, VectorOpcode.MUL: x * y, VectorOpcode.RELU: max(x, 0),
             VectorOpcode.RELU2: max(x, 0) ** 2, VectorOpcode.SCALE: x * scalar}[op]
    lo, hi = limits(bits)
    return min(max(floor(Fraction(value, 1 << shift) + Fraction(1, 2)), lo), hi)


def test_every_4_bit_input_and_shift_meets_the_definition_and_the_bound():
    """Exhaustive at 4 bits: every (x, y) pair and every shift the port carries (0..20). The
    bound is reached (rounding a half), so it is the tightest that holds."""
    bits = 4
    lo, hi = limits(bits)
    pairs = np.array(list(itertools.product(range(lo, hi + 1), repeat=2)))
    x, y = pairs[:, 0], pairs[:, 1]
    worst = Fraction(0)
    for op in ELEMENTWISE:
        for shift in range(VectorParams(bits=bits, lanes=4, max_beats=1).shift_limit):
            got = elementwise(op, x, y, shift, bits, SCALAR)
            want = [_definition(op, int(a), int(b), shift, bits) for a, b in pairs]
            assert got.tolist() == want, (op, shift)
            worst = max(worst, worst_error(op, x, y, shift, bits, SCALAR))
    assert worst == ELEMENTWISE_BOUND


def test_32_bit_extremes_meet_the_definition_and_the_bound():
    """The widest lanes: products of the limits and the largest scalar (2**71) at every shift the
    port carries, beyond what int64 holds."""
    bits = 32
    lo, hi = limits(bits)
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi, 12345, -98765]
    pairs = np.array(list(itertools.product(edges, repeat=2)))
    scalar = (1 << (bits + 8)) - 1
    for op in ELEMENTWISE:
        for shift in range(VectorParams(bits=bits).shift_limit):
            got = elementwise(op, pairs[:, 0], pairs[:, 1], shift, bits, scalar)
            assert got.tolist() == [_definition(op, int(a), int(b), shift, bits, scalar)
                                    for a, b in pairs], (op, shift)
            assert worst_error(op, pairs[:, 0], pairs[:, 1], shift, bits, scalar) <= ELEMENTWISE_BOUND


@pytest.mark.parametrize("bits", [8, 9, 10])
def test_quantization_is_within_its_bound_for_every_row_magnitude_and_value(bits):
    """Exhaustive over every absmax and every value it allows (the row's error depends on nothing
    else): within 3/4 of 127 * x / absmax, and never outside +-127, on lanes wide enough to hold
    +-127 (a narrower design cannot run a quantization, and its estimate says so)."""
    lo, hi = limits(bits)
    worst = Fraction(0)
    for amax in range(1, -lo + 1):
        values = np.arange(-min(amax, hi + 1), min(amax, hi) + 1)
        row = np.concatenate([values, [amax if amax <= hi else lo]])
        assert absmax(row) == amax and quant_scalar(amax, bits) == (127 << (bits + 1)) // amax
        got = elementwise(VectorOpcode.SCALE, row, None, int(quant_shift(bits)), bits, quant_scalar(amax, bits))
        assert np.all(np.abs(got) <= min(127, hi + 1))
        worst = max(worst, quant_error(row, bits))
    assert Fraction(1, 2) < worst < QUANT_BOUND


def _rows(bits: int, lanes: int, rng) -> list[np.ndarray]:
    """Adversarial rows for the norms: zero, one unit, near-zero, the limits, one spike among
    zeros, alternating limits, and uniform rows of every length up to 6 beats."""
    lo, hi = limits(bits)
    rows = [np.zeros(lanes, int), np.ones(lanes, int), np.full(lanes, -1), np.full(8 * lanes, lo),
            np.full(8 * lanes, hi), np.array([lo] + [0] * (64 * lanes - 1)), np.resize([lo, hi], 4 * lanes)]
    rows += [rng.integers(lo, hi, size=n * lanes, endpoint=True) for n in range(1, 7) for _ in range(20)]
    rows += [rng.integers(-2, 3, size=n * lanes) for n in range(1, 7)]
    return rows


@pytest.mark.parametrize("bits", [4, 9, 16, 32])
def test_the_rms_factor_is_the_exact_floor_and_normalization_keeps_its_bound(bits):
    """``r = floor(2**R / sqrt(mean(x**2) + 1))`` exactly (``r**2 * S <= 4**R * N < (r + 1)**2 * S``
    for the sum S of ``x**2 + 1`` over N elements), and every normalized element within
    ``1/2 + |x| / 2**shift`` of the real value, at 0, 8 and R fractional bits."""
    rng = np.random.default_rng(bits)
    big = 1 << (2 * int(norm_shift(bits)))
    for row in _rows(bits, 4, rng):
        r, total = rms_scalar(row, bits), sum(int(v) ** 2 + 1 for v in row)
        assert r * r * total <= big * len(row) < (r + 1) ** 2 * total
        for frac in (0, 8, int(norm_shift(bits))):
            assert norm_error_excess(row, bits, int(norm_shift(bits)) - frac) <= 1e-6 * 2.0 ** frac


def _rotate(x, y, shift: int, bits: int) -> list[int]:
    """RoPE on one beat as a complex product, pair by pair, in Python integers."""
    out = []
    for i in range(0, len(x) - 1, 2):
        re_, im = x[i] * y[i] - x[i + 1] * y[i + 1], x[i] * y[i + 1] + x[i + 1] * y[i]
        out += [_round(re_, shift, bits), _round(im, shift, bits)]
    if len(x) % 2:
        out.append(_round(x[-1] * y[-1], shift, bits))
    return out


def _round(value: int, shift: int, bits: int) -> int:
    lo, hi = limits(bits)
    return min(max(floor(Fraction(value, 1 << shift) + Fraction(1, 2)), lo), hi)


@pytest.mark.parametrize("lanes", [1, 2, 3, 8])
def test_rope_rotates_each_lane_pair_by_its_cos_and_sin(lanes):
    """Against the complex product, at the 16-bit limits and at random, every shift up to the
    port's; a rotation by angle t then by -t returns the pair within the rounding."""
    bits = 16
    lo, hi = limits(bits)
    rng = np.random.default_rng(lanes)
    rows = [np.full((2, lanes), lo), np.full((2, lanes), hi), rng.integers(lo, hi, (5, lanes), endpoint=True)]
    for x in rows:
        y = rng.integers(lo, hi, x.shape, endpoint=True)
        for shift in (0, 1, 14, 15, 31, VectorParams(bits=bits).shift_limit - 1):
            got = elementwise(VectorOpcode.ROPE, x, y, shift, bits)
            assert [list(r) for r in got] == [_rotate([int(v) for v in a], [int(v) for v in b], shift, bits)
                                              for a, b in zip(x, y)], (lanes, shift)
    if lanes >= 2:                                       # cos, sin in Q1.14 at 0.6 rad, and back
        c, s = round(np.cos(0.6) * 2 ** 14), round(np.sin(0.6) * 2 ** 14)
        x = rng.integers(-3000, 3000, (4, lanes))
        turn = np.resize([c, s], lanes) * np.ones((4, 1), int)
        back = np.resize([c, -s], lanes) * np.ones((4, 1), int)
        again = elementwise(VectorOpcode.ROPE, elementwise(VectorOpcode.ROPE, x, turn, 14, bits), back, 14, bits)
        paired = x[:, :lanes - lanes % 2]
        assert np.max(np.abs(again[:, :lanes - lanes % 2] - paired)) <= 2


GATED = (VectorOpcode.SILU, VectorOpcode.GELU)
GATE_DESIGNS = [dict(bits=4), dict(bits=5, table_bits=0), dict(bits=8), dict(bits=8, input_frac=1),
                dict(bits=8, input_frac=7, table_bits=6), dict(bits=12, table_bits=2), dict(bits=16),
                dict(bits=16, input_frac=12, table_bits=5)]


@pytest.mark.parametrize("settings", GATE_DESIGNS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_silu_and_gelu_meet_their_bound_on_every_input_and_the_bound_is_reached(settings):
    """Every input of the lane (all 2**bits), at the input's format and at shifts that round
    coarser and finer: within :func:`gate_bound` of the real ``x * gate(x)``, and the worst
    input reaches at least 45% of it (the bound is not loose: it takes a segment's largest
    ``|x|`` and largest gate error together, which a wide segment may not meet at one input)."""
    p = VectorParams(lanes=1, max_beats=1, **settings)
    table = p.gate_table
    lo, hi = limits(p.bits)
    xs = np.arange(lo, hi + 1)
    for op, shift in itertools.product(GATED, (p.bits - 1, max(p.bits - 3, 0), p.bits + 2)):
        got = elementwise(op, xs, None, shift, p.bits, table=table)
        worst = float(np.abs(got - gate_reference(table, op, xs, shift)).max())
        bound = gate_bound(table, op, shift)
        assert 0.45 * bound <= worst <= bound + 1e-9, (op.name, shift, worst, bound)


def test_32_bit_gates_meet_their_bound_at_every_segments_ends():
    """Where the bound is reached for a monotonic gate: each segment's first and last input,
    and the inputs beyond the table."""
    p = VectorParams(lanes=1, bits=32, max_beats=1, table_bits=4)
    table = p.gate_table
    lo, hi = limits(32)
    xs = [v for i in range(table.first, table.last + 1) for v in (i << table.drop, ((i + 1) << table.drop) - 1)]
    xs = np.array([lo, xs[0] - 1, *xs, xs[-1] + 1, hi], dtype=object)
    for op, shift in itertools.product(GATED, (31, 20, 40)):
        worst = float(np.abs(elementwise(op, xs, None, shift, 32, table=table) - gate_reference(table, op, xs, shift)).max())
        assert worst <= gate_bound(table, op, shift) + 1e-9


def test_the_gate_tables_rise_from_zero_to_one_and_the_model_counts_their_entries():
    """Entries stay in [0, one] and never fall (the bound's premise); the cost model's
    vectorised count of entries is the generator's, over the whole range of the fields."""
    for bits, frac, table_bits in itertools.product((4, 5, 9, 16, 32), (None, 1, 3, 15, 31), (0, 3, 6)):
        try:
            p = VectorParams(bits=bits, input_frac=frac, table_bits=table_bits)
        except ValueError:
            continue
        table = p.gate_table
        for op in GATED:
            entries = table.entries(op)
            assert all(0 <= a <= b <= table.one for a, b in zip(entries, entries[1:])), (p, op)
        assert int(model.prepare(p)["entries"][0]) == len(entries), p


def test_center_subtracts_the_offset_and_mean_rounds_half_up():
    """``CENTER``: every 4-bit ``x`` and offset at every shift, against the definition; ``MEAN``:
    ``floor(mean + 1/2)`` exactly, ties of both signs included, so a centred row's own mean is
    within 1/2 of zero when nothing saturates."""
    bits = 4
    lo, hi = limits(bits)
    xs = np.arange(lo, hi + 1)
    for offset, shift in itertools.product(range(lo, hi + 1), range(VectorParams(bits=bits).shift_limit)):
        want = [min(max(floor(Fraction(int(v) - offset, 1 << shift) + Fraction(1, 2)), lo), hi) for v in xs]
        assert elementwise(VectorOpcode.CENTER, xs, None, shift, bits, offset=offset).tolist() == want
    assert [mean_offset(r) for r in ([0, 1], [-1, 0], [1, 2], [-1, -2], [lo] * 3, [hi, hi, hi - 1])] == \
        [1, 0, 2, -1, lo, hi]
    rng = np.random.default_rng(7)
    for _ in range(200):
        row = rng.integers(-(1 << 20), 1 << 20, size=int(rng.integers(1, 50)))
        offset = mean_offset(row)
        assert offset == floor(Fraction(int(row.sum()), len(row)) + Fraction(1, 2))
        assert abs(Fraction(int(row.sum()), len(row)) - offset) <= Fraction(1, 2)


def test_reductions_take_the_first_largest_and_the_magnitude_of_the_lowest():
    lo, hi = limits(8)
    assert argmax([3, 7, 7, -1]) == 1 and argmax([lo] * 5) == 0
    assert absmax([lo, hi, 0]) == 128 and absmax([-3, 2]) == 3


def test_cycles_of_an_op_are_its_runs_back_to_back():
    """A workload op split as the machine would issue it: ceil(elements / lanes) beats in runs of
    at most max_beats, each run n + the op's latency; a W4 group scale is a MUL then an ADD, an
    RMSNorm an RMS, a SCALE and a MUL."""
    for lanes, bits, max_beats, kind, elements in ((8, 16, 512, "residual", 2560), (3, 5, 7, "group_scale", 100),
                                                   (1, 9, 1, "relu2", 5), (16, 16, 64, "argmax", 128256),
                                                   (8, 16, 512, "rms_norm", 2560), (4, 12, 32, "act_quant", 6912),
                                                   (8, 16, 512, "silu", 6912), (5, 9, 3, "gelu", 50),
                                                   (8, 16, 512, "layer_norm", 4096)):
        p = VectorParams(lanes=lanes, bits=bits, max_beats=max_beats)
        beats = -(-elements // lanes)
        sizes = [min(max_beats, beats - start) for start in range(0, beats, max_beats)]
        want = sum(n + p.latency(op) for op in model.rtl_ops(kind) for n in sizes)
        cycles, runs = model.op_cycles(np.array([lanes]), np.array([bits]), np.array([max_beats]), kind, elements)
        assert int(cycles[0]) == want and int(runs[0]) == len(sizes) * len(model.rtl_ops(kind))


def test_every_kind_of_element_wise_op_runs_in_the_rtl_and_others_are_refused():
    from cost_models.ops import OPS_PER_ELEMENT

    assert set(model.RTL_OPS) == set(OPS_PER_ELEMENT)
    with pytest.raises(ValueError, match="vector.kind must be one of"):
        VectorOp(kind="softmax", elements=4)
    with pytest.raises(ValueError, match="vector must be KIND,ELEMENTS"):
        VectorOp.parse("residual")


def test_pricing_a_batch_equals_pricing_each_design():
    points = [VectorParams(), VectorParams(lanes=3, bits=5, max_beats=7), VectorParams(lanes=64, bits=32)]
    assert_batch_equals_points(model.estimate, points, VectorOp(kind="gate_mul", elements=6912),
                               ["kv260", "ecp5-85k", "asic-45nm"])


def test_two_lane_multipliers_on_dsps_where_synthesis_puts_them_and_none_on_an_asic():
    """Per lane a bits x (bits + 9) product, and per paired lane RoPE's bits x bits one (an odd
    lanes' last lane has none); a 4 x 4 product (8 bits) stays in Xilinx LUTs."""
    for bits, lanes in itertools.product((4, 16, 24), (8, 7)):
        p = VectorParams(lanes=lanes, bits=bits, max_beats=16)
        kv260 = get_target("kv260")
        est = model.estimate(p, VectorOp(kind="residual", elements=8), kv260)
        second = kv260.dsps_per_product(bits, bits) if bits > 4 else 0
        assert est["dsp"][0] == lanes * kv260.dsps_per_product(bits, bits + 9) + (lanes - lanes % 2) * second
        assert model.estimate(p, VectorOp(kind="residual", elements=8), get_target("asic-45nm"))["dsp"][0] == 0


@pytest.mark.parametrize("settings", [dict(lanes=8, bits=16, max_beats=512), dict(lanes=3, bits=5, max_beats=7),
                                      dict(lanes=6, bits=13, max_beats=167), dict(lanes=1, bits=32, max_beats=1)],
                         ids=lambda s: "-".join(map(str, s.values())))
def test_the_register_bits_the_model_prices_are_the_rtls(settings):
    """The flip-flop feature is exact: the Verilog holds that many flip-flop bits."""
    from amaranth.back import verilog

    from flows.structure import flop_bits
    from generators.vector import build

    p = VectorParams(**settings)
    c = model.prepare(p)
    stated = model.features(c, model._on_dsp(c, get_target("kv260"), (1, 9)))["ff"]["registers"]
    assert flop_bits(verilog.convert(build(p), name="unit", emit_src=False), "unit") == int(stated[0])


def test_the_netlist_grows_linearly_with_lanes():
    """No expression is copied into each of its uses (an argmax tree of expressions doubles the
    netlist per level): twice the lanes, at most a little over twice the cells, and one
    multiplier per lane and per paired lane."""
    import re

    from amaranth.back import rtlil

    from generators.vector import build

    def cells(lanes):
        text = rtlil.convert(build(VectorParams(lanes=lanes, bits=12, max_beats=96)))
        kinds = re.findall(r"^\s*cell \$(\w+)", text, re.M)
        return len(kinds), kinds.count("mul")

    (small, small_muls), (large, large_muls) = cells(12), cells(24)
    assert large <= 2.2 * small and (small_muls, large_muls) == (24, 48)


def test_a_design_with_odd_lanes_cannot_run_rope():
    rope = VectorOp(kind="rope", elements=64)
    assert not model.estimate(VectorParams(lanes=3, max_beats=16), rope, get_target("kv260"))["fits"][0]
    assert model.estimate(VectorParams(lanes=4, max_beats=16), rope, get_target("kv260"))["fits"][0]


def test_a_design_with_lanes_narrower_than_int8_cannot_quantize():
    quant = VectorOp(kind="act_quant", elements=64)
    assert not model.estimate(VectorParams(bits=7, max_beats=16), quant, get_target("kv260"))["fits"][0]
    assert model.estimate(VectorParams(bits=8, max_beats=16), quant, get_target("kv260"))["fits"][0]


def test_the_command_line_prices_generates_and_refuses(tmp_path, capsys):
    assert cli.main(["estimate", "vector", "--vector", "residual,4096", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] == 4096 // 8 + 2 and doc["vector"] == {"kind": "residual", "elements": 4096}
    assert cli.main(["estimate", "vector", "--gemm", "1,2,3"]) == 2
    assert "use --vector KIND,ELEMENTS" in capsys.readouterr().err
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
    assert doc["passed"] and doc["cycles_match"] and doc["tests"] == 9
    ops = {r["test"] for r in doc["model_cycles"] if r["exact"]}
    assert ops == {"every_op_at_both_lengths", "back_to_back", "extremes", "quantize_and_normalize",
                   "unknown_ops_are_refused", "argmax_in_every_lane", "unsaturated_values",
                   "gates_over_every_segment"}


def test_the_sum_of_squares_register_is_exactly_as_wide_as_the_longest_row_needs():
    for lanes, bits, max_beats in itertools.product([1, 2, 3, 8, 63, 64], [4, 5, 9, 16, 32],
                                                    [1, 2, 7, 8, 512, 65535, 65536]):
        try:
            p = VectorParams(lanes=lanes, bits=bits, max_beats=max_beats)
        except ValueError:
            continue
        assert p.sum_bits == (max_beats * lanes * ((1 << (2 * bits - 2)) + 1)).bit_length(), p
