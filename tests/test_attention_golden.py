"""The attention golden model against float: exp2, reciprocal, the online recurrence, the bound."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from generators import fixed_softmax as fx
from generators.attention import AttentionParams
from verif.golden.attention import (attention_fixed, attention_float, error_bound, exp2_fixed, key_mask,
                                    reciprocal, softmax_state)
from verif.attention_accuracy import KEYS, VARIANTS, check, measure, variant
from verif.attention_patterns import SHAPES, V_MODES, pattern_run, realistic_runs
from verif.tb.attention import random_run


@pytest.mark.parametrize("exp,bits", [("pwl", 0), ("pwl", 3), ("pwl", 4), ("table", 6), ("table", 8)])
def test_exp2_is_exact_at_zero_bounded_monotone_and_accurate(exp, bits):
    p = AttentionParams(exp=exp, exp_index_bits=bits, score_frac=8, prob_frac=16)
    x = -np.arange(0, 40 << p.score_frac)                   # 0 down to -40 in steps of 2^-8
    got = exp2_fixed(p, x)
    assert got[0] == 1 << p.prob_frac                        # the running max maps to exactly 1
    assert got.max() <= 1 << p.prob_frac
    assert np.all(np.diff(got) <= 0), "exp2 must not increase as its argument falls"
    assert got[-1] == 0
    exact = np.exp2(x / (1 << p.score_frac))
    rel = fx.float_exp2_error(bits, exp == "pwl")
    tol = exact * rel * 1.02 + 2.0 ** -(p.prob_frac + 1) * 1.01
    assert np.all(np.abs(got / (1 << p.prob_frac) - exact) <= tol)


def test_exp2_refuses_positive_arguments():
    with pytest.raises(ValueError, match="non-positive"):
        exp2_fixed(AttentionParams(), np.array([1]))


@given(st.integers(1, (1 << 30) - 1), st.integers(8, 24))
def test_reciprocal_is_the_floor_quotient(l, recip_bits):
    p = AttentionParams(prob_frac=16, max_seq_len=16384, recip_bits=recip_bits, out_frac=0)
    r, n = reciprocal(p, l)
    width = p.denominator_bits
    assert n == l.bit_length() - 1
    assert r == (1 << (width - 1 + recip_bits)) // (l << (width - 1 - n))
    assert (1 << (recip_bits - 1)) <= r <= (1 << recip_bits)
    assert abs(r / 2 ** (recip_bits + n) - 1 / l) <= 2.0 ** -(recip_bits + n)


def test_causal_mask_hides_later_keys_and_padding():
    p = AttentionParams(q_rows=3, kv_block=4, causal=True, max_seq_len=16)
    mask = key_mask(p, 6, q_pos=2)
    assert mask.shape == (3, 8)
    assert mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert mask[2].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    dense = key_mask(p.replace(causal=False), 6, q_pos=0)
    assert dense[:, :6].all() and not dense[:, 6:].any()


configs = st.builds(
    dict, q_rows=st.integers(1, 4), head_dim=st.sampled_from([8, 16, 32]), kv_block=st.integers(1, 9),
    score_frac=st.integers(4, 10), prob_frac=st.integers(10, 18), exp=st.sampled_from(["pwl", "table"]),
    rescale=st.sampled_from(["exp", "shift"]), softmax=st.sampled_from(["online", "two_pass"]),
    causal=st.booleans(), bits=st.sampled_from([4, 8, 12]))


@settings(max_examples=60, deadline=None)
@given(configs, st.integers(1, 70), st.integers(0, 2 ** 31))
def test_fixed_point_stays_within_its_float_bound(cfg, n, seed):
    bits = cfg.pop("bits")
    p = AttentionParams(lanes=8, max_seq_len=128, exp_index_bits=min(3 if cfg["exp"] == "pwl" else 6,
                                                                      cfg["score_frac"]),
                        q_bits=bits, k_bits=bits, v_bits=bits, **cfg)
    run = random_run(p, np.random.default_rng(seed), n)
    fixed = attention_fixed(p, run.q, run.k, run.v, run.scale, run.q_pos)
    exact = attention_float(p, run.q, run.k, run.v, run.scale, run.q_pos)
    assert np.max(np.abs(fixed / (1 << p.out_frac) - exact)) <= error_bound(p, n)
    top = (1 << (p.out_bits - 1)) - 1
    assert fixed.min() >= -top - 1 and fixed.max() <= top


def _observed(p: AttentionParams, run) -> float:
    fixed = attention_fixed(p, run.q, run.k, run.v, run.scale, run.q_pos)
    exact = attention_float(p, run.q, run.k, run.v, run.scale, run.q_pos)
    return float(np.max(np.abs(fixed / (1 << p.out_frac) - exact)))


@settings(max_examples=150, deadline=None)
@given(configs, st.integers(1, 96), st.sampled_from(sorted(SHAPES)), st.floats(0.05, 40.0),
       st.sampled_from(V_MODES), st.integers(0, 2 ** 31))
def test_the_bound_holds_on_adversarial_score_patterns(cfg, n, shape, spread, v_mode, seed):
    """Rising and falling ramps, block staircases, saw-tooth, one late dominant key, all equal,
    over the parameter space: the running maximum that rises block after block is what makes
    online softmax with ``rescale=exp`` compound its EXP2 error."""
    bits = cfg.pop("bits")
    p = AttentionParams(lanes=8, max_seq_len=128, exp_index_bits=min(3 if cfg["exp"] == "pwl" else 6,
                                                                      cfg["score_frac"]),
                        q_bits=bits, k_bits=bits, v_bits=bits, **cfg)
    run = pattern_run(p, shape, n, spread, v_mode, np.random.default_rng(seed))
    observed, bound = _observed(p, run), error_bound(p, n)
    if np.isfinite(bound):
        target(observed / bound)                           # steer the search to the worst inputs
    assert observed <= bound


def test_the_compounding_is_real_and_the_bound_counts_it():
    """A table-exp engine with one key per block on a rising ramp: every block's maximum rises,
    every rescale carries the table's error again. The error is several times what one EXP2
    error allows, and within the bound that counts every rescale."""
    p = AttentionParams(q_rows=1, head_dim=8, lanes=8, kv_block=1, max_seq_len=64, exp="table",
                        exp_index_bits=6, score_frac=8, prob_frac=16)
    run = pattern_run(p, "ramp_up", 64, 1.0, "early_high", np.random.default_rng(0))
    once = 2 * float(1 << (p.v_bits - 1)) * (2.0 ** (1 / 64) - 1)    # one EXP2 error, counted once
    err = _observed(p, run)
    assert 3 * once < err <= error_bound(p, 64)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.integers(1, 16), st.sampled_from(["exp", "shift"]), st.integers(0, 2 ** 31))
def test_state_stays_inside_the_derived_widths(n, kv_block, rescale, seed):
    """The worst inputs for the widths: extreme codes and the largest scale."""
    p = AttentionParams(q_rows=2, head_dim=8, lanes=8, kv_block=kv_block, max_seq_len=64, rescale=rescale)
    rng = np.random.default_rng(seed)
    top = (1 << (p.v_bits - 1)) - 1
    q = rng.choice([-top - 1, top], size=(2, 8))
    k = rng.choice([-top - 1, top], size=(n, 8))
    v = rng.choice([-top - 1, top], size=(n, 8))
    m, l, acc = softmax_state(p, q, k, v, (1 << 16) - 1)
    assert all(0 < int(x) < 1 << p.denominator_bits for x in l)
    assert all(-(1 << (p.acc_bits - 1)) <= int(a) < 1 << (p.acc_bits - 1) for a in acc.ravel())
    assert np.all(np.abs(m) < 1 << int(fx.max_bits(p.score_bits)) - 1)


def test_shift_rescale_is_exact_where_exp_rescale_rounds():
    """With an integer running max, alpha is a power of two: the state matches a one-block run."""
    rng = np.random.default_rng(3)
    base = AttentionParams(q_rows=2, head_dim=8, lanes=8, max_seq_len=64, rescale="shift", prob_frac=18)
    run = random_run(base, rng, 48)
    one = attention_fixed(base.replace(kv_block=64), run.q, run.k, run.v, run.scale, run.q_pos)
    many = attention_fixed(base.replace(kv_block=4), run.q, run.k, run.v, run.scale, run.q_pos)
    assert np.max(np.abs(one - many)) <= 2          # only the floor of each shift differs


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_keeps_its_measured_accuracy(name):
    """Realistic and adversarial errors within 2x of the committed reference (a regression
    check tighter than the bound, which random data use a few percent of)."""
    assert not check(name, measure(variant(name)))


@pytest.mark.parametrize("degraded", [{"exp_index_bits": 1}, {"exp_index_bits": 2}, {"prob_frac": 9}])
def test_a_degraded_engine_fails_the_accuracy_check(degraded):
    """Coarser exp2 segments or fewer probability bits, passed off as the default engine: the
    check fails, where the float bound would still pass it."""
    default = "pwl 8 seg, exp rescale (default)"
    p = variant(default).replace(**degraded)
    assert check(default, measure(p))
    run = realistic_runs(p, KEYS)[0]
    assert _observed(p, run) <= error_bound(variant(default), KEYS)
