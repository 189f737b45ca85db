"""The attention engine's measured accuracy, and a check tight enough to catch a regression.

The float error bound (:func:`verif.golden.attention.error_bound`) holds for every input but
is loose (random data use a few percent of it), so a tenfold loss of accuracy would pass it.
This check measures each standard variant on a fixed set of realistic runs and of adversarial
score patterns (the golden model, which the cocotb regression proves equal to the RTL bit for
bit) and fails when either figure exceeds ``FACTOR`` times the committed reference,
``bench/results/attention_accuracy.json`` (written by ``python bench/attention_accuracy.py
--write``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from generators.attention import AttentionParams
from verif.attention_patterns import SHAPES, pattern_run, realistic_runs
from verif.golden.attention import attention_fixed, attention_float

FACTOR = 2.0
KEYS = 128                                   # eight blocks of the default kv_block
REFERENCE = Path(__file__).resolve().parents[1] / "bench" / "results" / "attention_accuracy.json"
VARIANTS: dict[str, dict] = {
    "pwl 8 seg, exp rescale (default)": {},
    "pwl 1 seg (2^v = 1 + v)": {"exp_index_bits": 0},
    "pwl 16 seg": {"exp_index_bits": 4},
    "table 64": {"exp": "table", "exp_index_bits": 6},
    "table 256": {"exp": "table", "exp_index_bits": 8},
    "integer max, shift rescale": {"rescale": "shift"},
    "two-pass": {"softmax": "two_pass"},
    "one key per block": {"kv_block": 1},
    "prob_frac 12": {"prob_frac": 12},
    "score_frac 4": {"score_frac": 4, "exp_index_bits": 3},
}


def variant(name: str, keys: int = KEYS) -> AttentionParams:
    return AttentionParams(max_seq_len=max(keys, 16), **VARIANTS[name])


def _error(p: AttentionParams, run) -> float:
    fixed = attention_fixed(p, run.q, run.k, run.v, run.scale, run.q_pos) / (1 << p.out_frac)
    exact = attention_float(p, run.q, run.k, run.v, run.scale, run.q_pos)
    return float(np.max(np.abs(fixed - exact)))


def measure(p: AttentionParams, keys: int = KEYS, seed: int = 0) -> dict[str, float]:
    """Largest |O_fixed - O_float| (V units) on the realistic runs and on the adversarial grid
    (every shape, base-2 spreads 0.5, 2 and 8, V early-high and random)."""
    rng = np.random.default_rng(seed)
    adversarial = [pattern_run(p, shape, keys, spread, v_mode, rng)
                   for shape in SHAPES for spread in (0.5, 2.0, 8.0) for v_mode in ("early_high", "random")]
    return {"realistic": max(_error(p, r) for r in realistic_runs(p, keys, seed)),
            "adversarial": max(_error(p, r) for r in adversarial)}


def reference() -> dict[str, dict[str, float]]:
    return json.loads(REFERENCE.read_text())["variants"]


def check(name: str, measured: dict[str, float], ref: dict[str, dict[str, float]] | None = None) -> list[str]:
    """What is worse than ``FACTOR`` times the reference of variant ``name`` (empty when fine)."""
    ref = reference() if ref is None else ref
    return [f"{name}: {kind} error {measured[kind]:.4g} > {FACTOR:g} x reference {ref[name][kind]:.4g}"
            for kind in ("realistic", "adversarial") if measured[kind] > FACTOR * ref[name][kind]]
