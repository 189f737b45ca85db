"""Fixed-point numbers of the attention engine: formats, widths and the exp2 tables.

One place defines every width and every table the RTL instantiates, so the
generator, the golden model and the cost model cannot disagree. Widths are
vectorised NumPy functions of the parameters (the cost model prices arrays
of designs); the tables are plain integer tuples.

Formats (``F`` = fraction bits; "units" are input LSBs):

* score ``y``: signed, ``score_frac`` fraction bits, in the base-2 domain:
  ``y = round(s_raw * scale / 2^(scale_frac - score_frac))`` where
  ``s_raw = q . k`` is exact and ``scale`` is the 16-bit run-time factor
  (``log2(e) / sqrt(d)`` times the Q and K quantisation scales, with
  ``scale_frac`` fraction bits).
* probability ``p``: unsigned ``1 + prob_frac`` bits, value in [0, 1].
* exp2 of ``x <= 0``: ``x = u + v`` (integer ``u <= 0``, fraction ``v``);
  ``2^v`` from the top ``exp_index_bits`` of ``v`` (PWL chords with
  ``A``/``B`` coefficients, or a table), then one rounding shift by ``-u``.
"""
from __future__ import annotations

import math

import numpy as np

from generators.widths import bit_length, signed_bits

SCALE_BITS = 16                 # width of the run-time scale port


def coef_frac(prob_frac) -> np.ndarray:
    """Fraction bits of the exp2 coefficients: two guard bits below the probability LSB."""
    return np.asarray(prob_frac, dtype=np.int64) + 2


def exp_frac(pwl, prob_frac, score_frac) -> np.ndarray:
    """Fraction bits of 2^v before the final shift: ``cf + score_frac`` (PWL) or ``cf`` (table)."""
    cf = coef_frac(prob_frac)
    return np.where(pwl, cf + np.asarray(score_frac, dtype=np.int64), cf)


def exp_shift_cap(prob_frac) -> np.ndarray:
    """Largest ``-u`` the shifter applies: any larger shift already rounds to zero."""
    return np.asarray(prob_frac, dtype=np.int64) + 2


def raw_score_max(head_dim, q_bits, k_bits) -> np.ndarray:
    """Largest |q . k| of signed inputs (both operands at their most negative code)."""
    return np.asarray(head_dim, dtype=np.int64) << (np.asarray(q_bits) + np.asarray(k_bits) - 2)


def raw_score_bits(head_dim, q_bits, k_bits) -> np.ndarray:
    return signed_bits(raw_score_max(head_dim, q_bits, k_bits))


def scale_shift(scale_frac, score_frac) -> np.ndarray:
    return np.asarray(scale_frac, dtype=np.int64) - np.asarray(score_frac, dtype=np.int64)


def score_bits(head_dim, q_bits, k_bits, scale_frac, score_frac) -> np.ndarray:
    """Width of ``y``: the largest raw score times the largest scale, rounded, never saturates."""
    sh = scale_shift(scale_frac, score_frac)
    top = raw_score_max(head_dim, q_bits, k_bits) * ((1 << SCALE_BITS) - 1)
    return signed_bits((top + (1 << (sh - 1))) >> sh)


def max_bits(y_bits) -> np.ndarray:
    """Width of the running max: one more than a score, as rounding it up may carry."""
    return np.asarray(y_bits, dtype=np.int64) + 1


def prob_bits(prob_frac) -> np.ndarray:
    return np.asarray(prob_frac, dtype=np.int64) + 1


def denominator_bits(max_seq_len, prob_frac) -> np.ndarray:
    """``l <= N`` probabilities of at most 1 each: no rescale floor ever grows it."""
    return bit_length(np.asarray(max_seq_len, dtype=np.int64) << np.asarray(prob_frac, dtype=np.int64))


def acc_bits(max_seq_len, prob_frac, v_bits) -> np.ndarray:
    """``|acc| <= N * (2^prob_frac * 2^(v_bits-1) + 1)``: the ``+1`` covers the floor of each rescale."""
    n = np.asarray(max_seq_len, dtype=np.int64)
    return signed_bits(n * ((np.int64(1) << (np.asarray(prob_frac) + np.asarray(v_bits) - 1)) + 1))


def out_bits(v_bits, out_frac) -> np.ndarray:
    """O keeps V's integer range and adds ``out_frac`` fraction bits."""
    return np.asarray(v_bits, dtype=np.int64) + np.asarray(out_frac, dtype=np.int64)


# ---------------------------------------------------------------------- exp2 tables
def pwl_coefficients(index_bits: int, prob_frac: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Chord coefficients of ``2^v`` on ``2^index_bits`` equal segments of [0, 1).

    ``A[k] = round(2^(k/K) 2^cf)``, ``B[k] = round((2^((k+1)/K) - 2^(k/K)) K 2^cf)``
    (the chord's slope per unit of ``v``).
    """
    segments = 1 << index_bits
    cf = int(coef_frac(prob_frac))
    a = tuple(round(2 ** (k / segments) * 2 ** cf) for k in range(segments))
    b = tuple(round((2 ** ((k + 1) / segments) - 2 ** (k / segments)) * segments * 2 ** cf)
              for k in range(segments))
    return a, b


def table_entries(index_bits: int, prob_frac: int) -> tuple[int, ...]:
    """``2^v`` at each bin's midpoint, except bin 0, which holds exactly 1 so that the
    running maximum maps to probability 1."""
    entries = 1 << index_bits
    cf = int(coef_frac(prob_frac))
    return (1 << cf,) + tuple(round(2 ** ((k + 0.5) / entries) * 2 ** cf) for k in range(1, entries))


def float_exp2_error(index_bits: int, pwl: bool) -> float:
    """Relative error bound of the fraction approximation alone, before any rounding.

    A chord over a segment of width ``h = 1/K`` errs by at most ``h^2/8 max f''``,
    and ``f''/f`` varies by ``2^h`` inside it; a table entry sits at most one bin
    (bin 0) from its argument in the exponent.
    """
    segments = 1 << index_bits
    if pwl:
        return (math.log(2) ** 2) / (8 * segments ** 2) * 2 ** (1 / segments)
    return 2 ** (1 / segments) - 1
