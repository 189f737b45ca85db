"""The check every cocotb family regression makes of one configuration.

Simulate with the family's bench, then require: every cocotb test passed,
exactly the expected tests reported cycles, no figure differs from the cost
model (equal when unstalled, at least the model when stalled), the
whole-workload figure was measured exactly, and at least ``min_exact`` figures
were exact.
"""
from __future__ import annotations

from pathlib import Path

from dse.families import get_family
from dse.verify import verify
from generators.params import Params


def check_regression(params: Params, tmp_path: Path, *, seed: int, expected_tests: set[str],
                     whole_figure: str, min_exact: int = 1) -> None:
    result = verify(get_family(params.family), params, seed=seed, run_dir=tmp_path)
    assert result.sim.passed, result.sim.summary()
    assert result.sim.tests == len(expected_tests)
    assert {c.test for c in result.checks} == expected_tests
    bad = [c.to_dict() for c in result.checks if not c.ok]
    assert not bad, f"cycles differ from the model: {bad}"
    exact = [c for c in result.checks if c.exact]
    assert any(c.figure == whole_figure for c in exact)
    assert all(c.measured >= c.model for c in result.checks if not c.exact)
    assert len(exact) >= min_exact
