"""What the LUT and MAC mpGEMM models share: exact cycles, tiling, traffic and pricing.

Cycles are exact for our RTL (:mod:`generators.mpgemm`; the cocotb
regression measures them). With ``G = ceil(k / group)`` activation groups
and ``passes`` weight beats per group, a run asserts ``done``
``G * passes + 2`` cycles after its start was accepted (the start cycle,
one cycle to load the first group, then one weight beat per cycle), and
its last Y row leaves ``m_tile`` cycles after ``done``. A start is taken
in the ``done`` cycle, but a tile can only move to the output bank once
the previous one has drained, so back-to-back runs are spaced
``max(run, m_tile + 1)`` cycles apart.

A GEMM (M, N, K) is tiled as ``ceil(M/m_tile) * ceil(N/n_tile)`` output
tiles, each reduced in ``ceil(K/k_max)`` runs whose partial tiles the host
adds; tiles are issued back to back.

The LUT engine's ``column_steps`` (``steps``: cycles a weight beat is held) and
distributed-RAM tables (filled over ``fill`` cycles into one bank while the
other is read) make a run ``fill + 2 + (G - 1) max(fill, L) + L`` cycles
with ``L = passes * steps``: the first table's fill, then one group per
``max(fill, L)``; with ``fill = 0`` that is ``G * L + 2``.
"""
from __future__ import annotations

import numpy as np

from cost_models.ops import Gemm
from generators.widths import ceil_div


def group_cycles(passes, steps=1, fill=0):
    """Cycles one activation group takes once the first table is filled: its weight beats
    (``passes``, each held ``steps`` cycles) or the next table's ``fill``, whichever is longer."""
    return np.maximum(np.asarray(fill, dtype=np.int64),
                      np.asarray(passes, dtype=np.int64) * np.asarray(steps, dtype=np.int64))


def run_cycles(group, passes, k, steps=1, fill=0):
    """Cycles from the accepted ``start`` to ``done`` for one run of depth ``k``: ``steps``
    cycles per weight beat, tables filled over ``fill`` cycles (0: loaded in one)."""
    groups = ceil_div(k, group)
    per_group = np.asarray(passes, dtype=np.int64) * np.asarray(steps, dtype=np.int64)
    return np.asarray(fill, dtype=np.int64) + 2 + (groups - 1) * group_cycles(passes, steps, fill) + per_group


def run_to_last_y(group, passes, m_tile, k, steps=1, fill=0):
    """Cycles from the accepted ``start`` to the run's last Y beat (Y never stalled)."""
    return run_cycles(group, passes, k, steps, fill) + np.asarray(m_tile, dtype=np.int64)


def gemm_cycles(group, passes, m_tile, n_tile, k_max, m, n, k, steps=1, fill=0):
    """Cycles from the first accepted ``start`` to the last Y beat of a tiled GEMM."""
    m_tile = np.asarray(m_tile, dtype=np.int64)
    tiles = ceil_div(m, m_tile) * ceil_div(n, n_tile)
    chunks = ceil_div(k, k_max)
    k_last = np.asarray(k, dtype=np.int64) - (chunks - 1) * k_max
    full = run_cycles(group, passes, k_max, steps, fill)
    last = run_cycles(group, passes, k_last, steps, fill)
    spacing = m_tile + 1
    total = tiles * ((chunks - 1) * np.maximum(full, spacing) + np.maximum(last, spacing))
    first = np.where(chunks > 1, full, last)
    return total - np.maximum(first, spacing) + first + m_tile


def tiling(group, passes, m_tile, n_tile, k_max, gemm: Gemm, steps=1, fill=0) -> dict[str, np.ndarray]:
    """Counts of a GEMM's tiling: tiles, runs, activation groups and weight beats processed."""
    tiles = ceil_div(gemm.m, m_tile) * ceil_div(gemm.n, n_tile)
    chunks = ceil_div(gemm.k, k_max)
    k_last = gemm.k - (chunks - 1) * np.asarray(k_max, dtype=np.int64)
    groups = (chunks - 1) * ceil_div(k_max, group) + ceil_div(k_last, group)
    return {"tiles": tiles, "chunks": chunks, "runs": tiles * chunks, "groups": tiles * groups,
            "beats": tiles * groups * np.asarray(passes, dtype=np.int64),
            "cycles": gemm_cycles(group, passes, m_tile, n_tile, k_max, gemm.m, gemm.n, gemm.k, steps, fill)}


