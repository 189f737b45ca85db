"""Mutation testing's machinery, and a small sample of it: a fault each bench must catch."""
from __future__ import annotations

import pytest

from dse.families import FAMILIES
from generators.artifact import render
from verif.mutants import Mutant, run_mutant, sample, sites, small_design

ENGINES = [f for f in FAMILIES.values() if f.testbench]
CAMPAIGN_MUTANTS, CAMPAIGN_SEEDS = 30, (0, 1)     # the campaign of bench/results/mutants.json
UNEXPLAINED = {("systolic", 1), ("lut_mpgemm", 1), ("mac_mpgemm", 1), ("attention", 0), ("attention", 1),
               ("vector", 0), ("vector", 1)}
"""Samples with survivors neither killed nor explained yet (issue 38; each listed in the results
file): expected to fail, strictly, so that closing a gap makes this list shrink."""


@pytest.mark.parametrize("family", ENGINES, ids=lambda f: f.name)
def test_every_family_offers_each_kind_of_mutant_and_each_changes_one_line(family):
    verilog = render(small_design(family), family.build).verilog
    mutants = list(sites(verilog))
    assert {m.kind for m in mutants} == {"operator", "constant", "invert"}
    for m in sample(verilog, 20, 0):
        changed = [a != b for a, b in zip(verilog.splitlines(), m.apply(verilog).splitlines(), strict=True)]
        assert sum(changed) == 1, m.describe()


@pytest.mark.parametrize("family", ENGINES, ids=lambda f: f.name)
def test_the_bench_kills_an_inverted_handshake_and_passes_the_design_itself(family):
    """Handing a tile on without ``done`` (``load = ~(done)``, or the first inverted condition)
    must fail the bench; the same runner on the unmutated design must pass it."""
    artifact = render(small_design(family), family.build)
    inverted = [m for m in sites(artifact.verilog) if m.kind == "invert"]
    handshake = next((m for m in inverted if "load = ~(done)" in m.after), inverted[0])
    assert run_mutant(artifact, family.testbench, handshake).verdict == "killed", handshake.describe()
    if family.name == "systolic":                     # one false-kill check is enough
        same = Mutant("none", handshake.line, handshake.before, handshake.before)
        assert run_mutant(artifact, family.testbench, same).verdict == "survived"


def test_a_mutant_that_only_changes_cycles_is_killed_by_the_model():
    """The done pulse's condition off by one (it never comes) leaves every tile right: each
    next start waits for the engine to go idle instead of the done cycle. The bench alone
    passes; the cycle judge catches it, as ``verify`` would."""
    from dse.verify import cycle_misses

    family = FAMILIES["systolic"]
    params = small_design(family)
    artifact = render(params, family.build)
    late = next(m for m in sites(artifact.verilog)           # the first is the done condition
                if m.kind == "constant" and "k_left == 1'h1" in m.before and "1'h0" in m.after)
    assert run_mutant(artifact, family.testbench, late).verdict == "survived"
    outcome = run_mutant(artifact, family.testbench, late, cycles=cycle_misses(family, params))
    assert outcome.verdict == "killed" and "start_to_done" in outcome.detail, outcome.detail


@pytest.mark.regress
@pytest.mark.parametrize("seed", CAMPAIGN_SEEDS)
@pytest.mark.parametrize("family", ENGINES, ids=lambda f: f.name)
def test_the_full_campaign_kills_every_mutant_but_the_explained_equivalent_ones(family, seed, request):
    """``python bench/mutants.py --mutants 30 --seed S``'s sample for one family, for each seed:
    each survivor must be one of the equivalent mutants explained in
    ``bench/results/equivalent_mutants.json`` (a change no input can observe), and at least 95%
    of the rest are killed."""
    import json
    from pathlib import Path

    from dse.verify import cycle_misses

    if (family.name, seed) in UNEXPLAINED:
        request.applymarker(pytest.mark.xfail(strict=True, reason="issue 38: survivors not yet killed or explained"))

    explained = json.loads((Path(__file__).resolve().parents[1] / "bench" / "results" /
                            "equivalent_mutants.json").read_text())["families"].get(family.name, {})
    params = small_design(family)
    artifact = render(params, family.build)
    outcomes = [run_mutant(artifact, family.testbench, m, cycles=cycle_misses(family, params))
                for m in sample(artifact.verilog, CAMPAIGN_MUTANTS, seed)]
    unexplained = [o.mutant.describe() for o in outcomes if o.verdict == "survived"
                   and o.mutant.describe() not in explained]
    assert not unexplained, unexplained
    valid = [o for o in outcomes if o.verdict != "invalid" and o.mutant.describe() not in explained]
    assert sum(o.verdict == "killed" for o in valid) >= 0.95 * len(valid)
