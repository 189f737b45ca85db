"""Checks every vectorised cost model must pass, shared by the families' model tests."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import pytest

from cost_models.targets import TARGETS


def assert_batch_equals_points(estimate: Callable, points: Sequence[Any], op: Any,
                               targets: Sequence[str]) -> None:
    """Pricing ``points`` together gives, column by column, what pricing each alone gives."""
    for target in targets:
        batch = estimate(points, op, TARGETS[target])
        for i, p in enumerate(points):
            one = estimate(p, op, TARGETS[target])
            for key, column in batch.items():
                assert one[key][0] == pytest.approx(column[i]), (target, key)


def wraps_in_axi(family) -> bool:
    """Whether ``family``'s engine has an AXI wrapper (a fixed number of output beats per run)."""
    from generators.axi import frames_runs

    engine = family.build(family.params())
    engine._MustUse__silence = True            # built for its attributes only, never elaborated
    return frames_runs(engine)
