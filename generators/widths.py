"""Integer width arithmetic, vectorised: shared by the generators and the cost models."""
from __future__ import annotations

import numpy as np


def bit_length(values) -> np.ndarray:
    """Exact ``int.bit_length`` for non-negative integers below 2**53, vectorised."""
    values = np.asarray(values, dtype=np.float64)
    return np.frexp(values)[1].astype(np.int64)


def signed_bits(max_abs) -> np.ndarray:
    """Width of a two's complement value holding every integer in [-max_abs, max_abs]."""
    return bit_length(max_abs) + 1


def bits_for(n) -> np.ndarray:
    """Width of an Amaranth ``range(n)`` signal (at least 1 bit)."""
    n = np.asarray(n, dtype=np.int64)
    return np.maximum(bit_length(np.maximum(n - 1, 0)), 1)


def ceil_div(a, b) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))
