"""Golden models of the attention engine: bit-exact fixed point, and float.

:func:`attention_fixed` computes exactly what the RTL computes, rounding
site by rounding site (:mod:`generators.fixed_softmax` defines the formats):

1. ``s_raw = q . k`` exact; ``y = (s_raw * scale + 2^(sh-1)) >> sh`` with
   ``sh = scale_frac - score_frac`` (round half up).
2. Masked keys (past ``n``, or after the query's position when causal)
   take no part in the maximum and get probability 0.
3. ``online``: per KV block of ``kv_block`` keys and per row,
   ``m' = max(m, block max)`` (``rescale=shift`` rounds it up to an integer;
   the first block ignores the old ``m``), ``p = EXP2(y - m')``,
   ``l = ((l * alpha) >> prob_frac) + sum p`` and
   ``acc = ((acc * alpha) >> prob_frac) + sum p v`` with
   ``alpha = EXP2(m - m')``, or ``l >> s`` and ``acc >> s`` (floor) with
   ``s = m' - m`` for ``rescale=shift``.
   ``two_pass``: ``m`` is the maximum over all keys (rounded up likewise),
   then plain sums.
4. ``o = (acc * r + 2^(sh-1)) >> sh`` with the normalised reciprocal
   ``r = floor(2^(L-1+R) / (l << (L-1-n)))`` (``n = msb(l)``,
   ``L`` = denominator width, ``R = recip_bits``) and
   ``sh = R + n - out_frac``, saturated to the output width.

Arithmetic on the accumulator uses Python integers (object arrays): its
products can pass 64 bits.
"""
from __future__ import annotations

import numpy as np

from generators import fixed_softmax as fx
from generators.attention import AttentionParams, ExpKind, Rescale, Softmax


def prescale(p: AttentionParams, s_raw: np.ndarray, scale: int) -> np.ndarray:
    sh = p.scale_frac - p.score_frac
    return (np.asarray(s_raw, dtype=np.int64) * int(scale) + (1 << (sh - 1))) >> sh


def exp2_fixed(p: AttentionParams, x: np.ndarray) -> np.ndarray:
    """``2^x`` for ``x <= 0`` (``score_frac`` fraction bits) as ``prob_frac``-bit fixed point."""
    x = np.asarray(x, dtype=np.int64)
    if np.any(x > 0):
        raise ValueError("exp2_fixed takes non-positive arguments")
    sf, kb = p.score_frac, p.exp_index_bits
    u = x >> sf
    v = x - (u << sf)
    k = v >> (sf - kb)
    t = v & ((1 << (sf - kb)) - 1)
    if p.exp is ExpKind.PWL:
        a, b = (np.array(c, dtype=np.int64) for c in fx.pwl_coefficients(kb, p.prob_frac))
        frac = (a[k] << sf) + b[k] * t
    else:
        frac = np.array(fx.table_entries(kb, p.prob_frac), dtype=np.int64)[k]
    base = int(fx.exp_frac(p.exp is ExpKind.PWL, p.prob_frac, p.score_frac)) - p.prob_frac
    shift = base + np.minimum(-u, int(fx.exp_shift_cap(p.prob_frac)))
    return ((frac >> (shift - 1)) + 1) >> 1


def key_mask(p: AttentionParams, n: int, q_pos: int) -> np.ndarray:
    """``q_rows x padded keys``: which (row, key) pairs take part."""
    keys = np.arange(p.blocks(n) * p.kv_block)
    mask = np.broadcast_to(keys < n, (p.q_rows, keys.size)).copy()
    if p.causal:
        mask &= keys[None, :] <= q_pos + np.arange(p.q_rows)[:, None]
    return mask


def _ceil_int(p: AttentionParams, y: np.ndarray) -> np.ndarray:
    one = 1 << p.score_frac
    return ((y + one - 1) >> p.score_frac) << p.score_frac


def _objects(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.int64).astype(object)


def softmax_state(p: AttentionParams, q, k, v, scale: int, q_pos: int = 0):
    """The per-row state after the last block: ``(m, l, acc)`` (acc as Python ints)."""
    q, k, v = (np.asarray(x, dtype=np.int64) for x in (q, k, v))
    n = k.shape[0]
    bc = p.kv_block
    pad = p.blocks(n) * bc - n
    k = np.concatenate([k, np.zeros((pad, p.head_dim), dtype=np.int64)])
    v = np.concatenate([v, np.zeros((pad, p.head_dim), dtype=np.int64)])
    y = prescale(p, q @ k.T, scale)
    mask = key_mask(p, n, q_pos)
    lowest = -(1 << int(fx.max_bits(p.score_bits)) - 1)
    masked_y = np.where(mask, y, lowest)
    if p.softmax is Softmax.TWO_PASS:
        m = masked_y.max(axis=1)
        if p.rescale is Rescale.SHIFT:
            m = _ceil_int(p, m)
        prob = np.where(mask, exp2_fixed(p, np.minimum(masked_y - m[:, None], 0)), 0)
        return m, prob.sum(axis=1), _objects(prob @ v)
    rows = p.q_rows
    m = np.zeros(rows, dtype=np.int64)
    l = np.zeros(rows, dtype=object)
    acc = np.zeros((rows, p.head_dim), dtype=object)
    for j in range(p.blocks(n)):
        cols = slice(j * bc, (j + 1) * bc)
        block_max = masked_y[:, cols].max(axis=1)
        if p.rescale is Rescale.SHIFT:
            block_max = _ceil_int(p, block_max)
        m_new = block_max if j == 0 else np.maximum(m, block_max)
        prob = np.where(mask[:, cols], exp2_fixed(p, np.minimum(masked_y[:, cols] - m_new[:, None], 0)), 0)
        psum, pv = _objects(prob.sum(axis=1)), _objects(prob @ v[cols])
        if j == 0:
            l, acc = psum, pv
        elif p.rescale is Rescale.SHIFT:
            s = (m_new - m) >> p.score_frac
            l = np.array([int(a) >> int(b) for a, b in zip(l, s)], dtype=object) + psum
            acc = np.array([[int(a) >> int(sr) for a in row] for row, sr in zip(acc, s)], dtype=object) + pv
        else:
            alpha = _objects(exp2_fixed(p, m - m_new))
            l = ((l * alpha) >> p.prob_frac) + psum
            acc = ((acc * alpha[:, None]) >> p.prob_frac) + pv
        m = m_new
    return m, l, acc


def reciprocal(p: AttentionParams, l: int) -> tuple[int, int]:
    """``(r, n)``: the normalised reciprocal of ``l >= 1`` and the position of its leading one."""
    width = p.denominator_bits
    n = int(l).bit_length() - 1
    return (1 << (width - 1 + p.recip_bits)) // (int(l) << (width - 1 - n)), n


def normalize(p: AttentionParams, l, acc) -> np.ndarray:
    """``o = acc / l`` in ``out_frac``-bit fixed point, rounded half up, saturated."""
    top = (1 << (p.out_bits - 1)) - 1
    out = np.zeros(np.shape(acc), dtype=np.int64)
    for i, (li, row) in enumerate(zip(l, acc)):
        r, n = reciprocal(p, li)
        sh = p.recip_bits + n - p.out_frac
        for e, a in enumerate(row):
            out[i, e] = min(max((int(a) * r + (1 << (sh - 1))) >> sh, -top - 1), top)
    return out


def attention_fixed(p: AttentionParams, q, k, v, scale: int, q_pos: int = 0) -> np.ndarray:
    """What the engine streams out for one run: ``q_rows x head_dim`` output codes."""
    _, l, acc = softmax_state(p, q, k, v, scale, q_pos)
    return normalize(p, l, acc)


def attention_float(p: AttentionParams, q, k, v, scale: int, q_pos: int = 0) -> np.ndarray:
    """The exact softmax attention the codes stand for, in float64 and V's units."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    n = k.shape[0]
    logits = (q @ k.T) * (scale / 2.0 ** p.scale_frac)          # base 2
    mask = key_mask(p, n, q_pos)[:, :n]
    logits = np.where(mask, logits, -np.inf)
    weights = np.exp2(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ v


def error_bound(p: AttentionParams, n: int) -> float:
    """Worst-case ``max |o_fixed - o_float|`` in V units for a run of ``n`` keys, for every input.

    ``o`` is a weighted mean of V. Each EXP2 is ``2^x (1 + delta) + eta``: ``|delta| <= d``
    (the fraction approximation, a chord ``ln2^2/(8K^2)`` or a table bin, plus its
    coefficients' rounding) and ``|eta| <= h = 2^-(prob_frac+1)`` (its final rounding).
    With ``online`` softmax and ``rescale=exp`` a key's weight in the final sum is its own
    EXP2 times the ``alpha`` of every later block whose maximum rose, so its relative error
    compounds over up to ``J = blocks`` factors, and each ``alpha``'s rounding ``eta`` adds a
    relative ``h/alpha <= 2h`` while ``alpha >= 1/2``; weights whose factors lie in ``[a, b]``
    move the mean by at most ``(b - a)/a * max|v|``. Absolute errors: each probability's
    rounding (``n h``, grown by later ``alpha``s at most ``G = (1 + d + h)^(J-1)``), each
    ``alpha < 1/2``'s rounding times the mass it scales (a key's mass at least halves at each
    such step, so at most ``2 G / (2 - G)`` of it counts in all), each rescale's floor
    (``2h``); against a denominator of at least ``a`` (``a/2`` when ``rescale=shift``
    rounds the maximum up). ``rescale=shift`` (alpha a power of two) and ``two_pass`` do not
    compound. Then the reciprocal's and the output's rounding. Infinite when the
    compounding leaves no useful bound (``G >= 2``, or the absolute error reaches the
    denominator): see :func:`bounded`.
    """
    ln2 = np.log(2.0)
    h = 2.0 ** -(p.prob_frac + 1)
    d_lo, d = (e + h for e in exp2_error_sides(p))
    s = ln2 * 2.0 ** -(p.score_frac + 1)
    rescales = p.blocks(n) - 1 if p.softmax is Softmax.ONLINE else 0
    compounding = p.rescale is Rescale.EXP and rescales > 0
    factors = 1 + rescales if compounding else 1
    a = (1 - s) * (1 - d_lo) ** factors * ((1 - 2 * h) ** rescales if compounding else 1.0)
    b = (1 + s) * (1 + d) ** factors * ((1 + 2 * h) ** rescales if compounding else 1.0)
    g = (1 + d + h) ** rescales if compounding else 1.0
    if g >= 2:
        return float("inf")
    scaled = n * (1 + d + h) * g * g / (1 - g / 2) * h if compounding else 0.0
    mass = n * h * g + scaled                         # absolute error per unit of V, both sums
    floors = 2 * h * rescales * g                     # each rescale's floor, in l and in acc
    e_l = mass + floors
    l_min = (0.5 if p.rescale is Rescale.SHIFT else 1.0) * a
    if e_l >= l_min:
        return float("inf")
    v_max = float(1 << (p.v_bits - 1))
    mean_shift = (b - a) / a * v_max
    absolute = (v_max * (mass + e_l) + floors) / (l_min - e_l)
    return mean_shift + absolute + v_max * 2.0 ** -(p.recip_bits - 1) + 2.0 ** -(p.out_frac + 1)


def exp2_error_sides(p: AttentionParams) -> tuple[float, float]:
    """How far below and above ``2^v`` the fraction approximation reaches, relatively: a chord
    lies above the convex function (``[0, ln2^2/(8K^2) 2^(1/K)]``); table bin 0 holds 1 for
    ``v`` up to ``1/K`` and the other bins their midpoint (``[1 - 2^(-1/K), 2^(1/(2K)) - 1]``)."""
    if p.pwl:
        return 0.0, fx.float_exp2_error(p.exp_index_bits, True)
    k = 1 << p.exp_index_bits
    return 1 - 2.0 ** (-1 / k), 2.0 ** (0.5 / k) - 1


def bounded(p: AttentionParams, n: int | None = None, *, limit: float = 0.25) -> bool:
    """Whether :func:`error_bound` for ``n`` keys (default: the longest run) stays within
    ``limit`` of V's full scale: a configuration whose bound is looser tells nothing useful."""
    n = p.max_seq_len if n is None else n
    return error_bound(p, n) <= limit * float(1 << (p.v_bits - 1))
