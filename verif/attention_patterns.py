"""Score patterns that stress the attention engine's arithmetic, and realistic ones.

Random scores rarely make the running maximum rise from block to block, which is what makes
``online`` softmax with ``rescale=exp`` compound its EXP2 error; these patterns do it on
purpose. A run is built so that every query row sees the shape ``f`` (one value in [-1, 1]
per key) as its base-2 scores, spanning ``spread`` (``q . k`` through the first head
dimension; the scale code sets the span), and V is chosen to turn weight errors into output
error (``early_high``: the first keys at +max and the rest at -max).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from generators.attention import AttentionParams
from generators.params import ParamError

SHAPES: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "ramp_up": lambda n, block, rng: np.linspace(-1.0, 1.0, n),
    "ramp_down": lambda n, block, rng: np.linspace(1.0, -1.0, n),
    "staircase": lambda n, block, rng: np.linspace(-1.0, 1.0, -(-n // block))[np.arange(n) // block],
    "saw_tooth": lambda n, block, rng: (np.arange(n) % max(2, block + 1)) / max(1, block) * 2 - 1,
    "late_dominant": lambda n, block, rng: np.where(np.arange(n) == n - 1, 1.0, -1.0),
    "all_equal": lambda n, block, rng: np.zeros(n),
    "gaussian": lambda n, block, rng: np.clip(rng.normal(0.0, 0.35, n), -1.0, 1.0),
}
"""Adversarial shapes (a maximum that rises every key or every block, falls, saw-tooths,
jumps at the end, never moves) and one realistic one (``gaussian``)."""
V_MODES = ("random", "early_high", "late_high", "alternating")


@dataclass(frozen=True)
class PatternRun:
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scale: int
    q_pos: int

    @property
    def n(self) -> int:
        return self.k.shape[0]


def pattern_run(p: AttentionParams, shape: str, n: int, spread: float, v_mode: str,
                rng: np.random.Generator) -> PatternRun:
    """One run whose base-2 scores follow ``shape`` across ``spread`` (see the module)."""
    if shape not in SHAPES or v_mode not in V_MODES:
        raise ParamError(f"shape must be one of {', '.join(SHAPES)} and v_mode one of {', '.join(V_MODES)}")
    f = SHAPES[shape](n, p.kv_block, rng)
    q_top, k_top, v_top = ((1 << (b - 1)) - 1 for b in (p.q_bits, p.k_bits, p.v_bits))
    q = np.zeros((p.q_rows, p.head_dim), dtype=np.int64)
    q[:, 0] = q_top
    k = np.zeros((n, p.head_dim), dtype=np.int64)
    k[:, 0] = np.round(f * k_top)
    code = spread / (2 * q_top * k_top) * (1 << p.scale_frac)
    scale = int(min(max(round(code), 1), (1 << 16) - 1))
    first = np.arange(n) < max(1, n // 2)
    column = {"random": lambda: rng.integers(-v_top - 1, v_top, size=(n, p.head_dim), endpoint=True),
              "early_high": lambda: np.where(first, v_top, -v_top - 1)[:, None],
              "late_high": lambda: np.where(first, -v_top - 1, v_top)[:, None],
              "alternating": lambda: np.where(np.arange(n) % 2 == 0, v_top, -v_top - 1)[:, None]}[v_mode]()
    v = np.broadcast_to(column, (n, p.head_dim)).astype(np.int64)
    return PatternRun(q, k, v, scale, q_pos=max(n - p.q_rows, 0))


def realistic_runs(p: AttentionParams, n: int, seed: int = 0) -> list[PatternRun]:
    """The fixed set the empirical accuracy check measures: random Q, K, V codes with base-2
    score spreads of 1, 3 and 8 (peaked to flat attention), and gaussian-shaped scores."""
    rng = np.random.default_rng(seed)
    runs = []
    for spread in (1.0, 3.0, 8.0):
        half = [1 << (b - 1) for b in (p.q_bits, p.k_bits, p.v_bits)]
        q = rng.integers(-half[0], half[0] - 1, size=(p.q_rows, p.head_dim), endpoint=True)
        k = rng.integers(-half[1], half[1] - 1, size=(n, p.head_dim), endpoint=True)
        v = rng.integers(-half[2], half[2] - 1, size=(n, p.head_dim), endpoint=True)
        sd = max(float(np.std(q @ k.T)), 1.0)
        scale = int(min(max(round(spread / sd * (1 << p.scale_frac)), 1), (1 << 16) - 1))
        runs.append(PatternRun(q, k, v, scale, q_pos=max(n - p.q_rows, 0)))
    runs.append(pattern_run(p, "gaussian", n, 8.0, "random", rng))
    return runs
