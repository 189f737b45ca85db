"""Jobs the cluster tests submit: module-level, so that Dask workers import them by name."""
from __future__ import annotations

import os


def square(x: int) -> int:
    if x < 0:
        raise ValueError(f"no square for {x}")
    return x * x


def kill_my_worker(_: object) -> None:
    """Dies as a crashing tool would take its worker down: no exception, no cleanup."""
    os._exit(9)
