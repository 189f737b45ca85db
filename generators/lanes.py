"""Host-side packing of stream beats: lane 0 in the least significant bits."""
from __future__ import annotations

import numpy as np


def pack_lanes(rows, bits: int) -> list[int]:
    """Pack each row (a sequence of integers) into one integer, ``bits`` per lane."""
    mask = (1 << bits) - 1
    out = []
    for row in rows:
        word = 0
        for lane, v in enumerate(row):
            word |= (int(v) & mask) << (lane * bits)
        out.append(word)
    return out


def unpack_lanes(word: int, lanes: int, bits: int, is_signed: bool = True) -> np.ndarray:
    """Split one beat into ``lanes`` integers (two's complement when ``is_signed``)."""
    mask = (1 << bits) - 1
    vals = [(word >> (lane * bits)) & mask for lane in range(lanes)]
    if is_signed:
        vals = [v - (1 << bits) if v >> (bits - 1) else v for v in vals]
    return np.array(vals, dtype=np.int64)
