"""Regression: the attention engine on Verilator against the bit-exact golden model.

Each configuration runs the whole cocotb bench (one key, ragged n, n =
max_seq_len, equal and dominant scores, extreme codes, random runs, back to
back runs or a causal prefill's tiles, gaps and backpressure); every O tile
must equal the golden model bit for bit, the golden model must stay within
its float error bound, and every measured cycle count must equal the cost
model without stalls (at least the model with them).
"""
from __future__ import annotations

import pytest

from generators.attention import AttentionParams as A
from tests.regression import check_regression

CONFIGS = [
    A(q_rows=1, head_dim=16, lanes=4, kv_block=8, max_seq_len=64),                        # decode
    A(q_rows=4, head_dim=8, lanes=8, kv_block=4, max_seq_len=32, causal=True),            # causal prefill
    A(q_rows=2, head_dim=8, lanes=2, kv_block=3, max_seq_len=24, causal=True, softmax="two_pass"),
    A(q_rows=3, head_dim=16, lanes=16, kv_block=1, max_seq_len=16, exp="table", exp_index_bits=6,
      rescale="shift", pipeline=0),
    A(q_rows=2, head_dim=8, lanes=1, kv_block=2, max_seq_len=12, q_bits=16, k_bits=16, v_bits=16,
      prob_frac=20, out_frac=12, recip_bits=20, pipeline=2),
    A(q_rows=5, head_dim=12, lanes=3, kv_block=5, max_seq_len=40, q_bits=4, k_bits=4, v_bits=4,
      score_frac=4, exp_index_bits=0, prob_frac=8, scale_frac=12, rescale="shift"),
    A(q_rows=1, head_dim=32, lanes=8, kv_block=16, max_seq_len=48, softmax="two_pass", exp="table",
      exp_index_bits=8),
    A(q_rows=4, head_dim=64, lanes=8, kv_block=16, max_seq_len=64),                        # the ECP5 shape
    A(q_rows=2, head_dim=8, lanes=8, kv_block=1, max_seq_len=16, exp="table", exp_index_bits=6),  # compounding
]
EXPECTED_TESTS = {"one_key", "ragged_n", "max_seq_len", "equal_scores", "dominant_score", "extremes",
                  "random_runs", "back_to_back", "gaps_and_backpressure", "adversarial_patterns"}


def config_id(p: A) -> str:
    return (f"r{p.q_rows}_d{p.head_dim}_l{p.lanes}_b{p.kv_block}_{p.softmax.value}_{p.exp.value}{p.exp_index_bits}"
            f"_{p.rescale.value}_{'causal' if p.causal else 'dense'}_q{p.q_bits}_p{p.pipeline}_n{p.max_seq_len}")


@pytest.mark.sim
@pytest.mark.parametrize("params", CONFIGS, ids=config_id)
def test_attention_regression(params, tmp_path):
    check_regression(params, tmp_path, seed=5, expected_tests=EXPECTED_TESTS,
                     whole_figure="first_start_to_last_o", min_exact=20)
