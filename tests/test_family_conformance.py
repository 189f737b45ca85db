"""Every registered family, and a toy family registered only here, keeps the family contract.

In the manner of Optuna's storage and sampler tests: one suite, run over every
implementation. The toy family (``tests/toy_family.py``) joins the command line and the
explorer with no edit to ``dse/``.
"""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from cost_models.targets import get_target
from dse import cli
from dse.families import FAMILIES, Family
from dse.workloads import load
from tests.model_checks import wraps_in_axi
from tests.toy_family import ToyParams, toy_family

ALL = [*FAMILIES.values(), toy_family()]
WORKLOAD = "bitnet-b1.58-2b4t-decode"
AXI = [f for f in ALL if f.testbench and wraps_in_axi(f)]


def _ids(f: Family) -> str:
    return f.name


def _designs(family: Family, n: int, seed: int = 0):
    """``n`` designs the explorer would propose for the workload, and the space."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = family.space(load(WORKLOAD), {}, {})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space, [space.suggest(study.ask()) for _ in range(n)]


@pytest.mark.parametrize("family", ALL, ids=_ids)
def test_params_round_trip_through_json_with_a_stable_hash(family):
    p = family.params()
    again = family.params.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and again.digest() == p.digest() and p.top_name() == f"af_{p.family}_{p.digest()}"


@pytest.mark.parametrize("family", ALL, ids=_ids)
def test_bad_values_name_the_family_field_and_range(family):
    for info in family.params.fields():
        rng = info.spec.range
        bad = rng.hi + 1 if rng else "maybe"
        with pytest.raises(ValueError) as raised:
            family.params.from_dict({info.name: bad})
        assert str(raised.value).startswith(f"{family.params.family}.{info.name} must be "), str(raised.value)
        assert repr(bad) in str(raised.value)


@pytest.mark.parametrize("family", ALL, ids=_ids)
def test_workload_pins_hold_in_every_proposed_design(family):
    space, rows = _designs(family, 30)
    if not space.pinned:                            # a family the workload fixes nothing of
        assert family.workload_pins(load(WORKLOAD)) == {}
        return
    checked = 0
    for row in rows:
        try:
            design = space.point(row).to_dict()
        except ValueError:                          # a ruled-out combination of free fields: never feasible
            continue
        for key, value in space.pinned.items():
            if key in design:                       # a composed design's other kinds' pins do not apply
                assert design[key] == value, (key, design[key], value)
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("family", ALL, ids=_ids)
def test_pricing_a_batch_equals_pricing_each_design(family):
    space, rows = _designs(family, 6, seed=3)
    wl, target = load(WORKLOAD), get_target("kv260")
    batch = family.price(space.columns(rows), wl, target)
    for i, row in enumerate(rows):
        one = family.price(space.columns([row]), wl, target)
        for key in ("latency_s", "energy_per_token_j", "lut", "ff", "dsp", "fits"):
            assert one[key][0] == pytest.approx(batch[key][i], rel=1e-12), (key, i)


@pytest.mark.parametrize("family", ALL, ids=_ids)
def test_designs_price_no_faster_than_their_bandwidth_allows(family):
    space, rows = _designs(family, 40, seed=5)
    m = family.price(space.columns(rows), load(WORKLOAD), get_target("kv260"))
    assert np.all(m["latency_s"] >= m["offchip_bytes"] / 19.2e9 * (1 - 1e-9))


CANNOT_RUN = {"lut_mpgemm": ("opt-6.7b-decode", "8-bit weights"), "mac_mpgemm": ("opt-6.7b-decode", "8-bit weights")}
"""Families whose engines cannot run a preset, with what their refusal must name."""


@pytest.mark.parametrize("name", CANNOT_RUN)
def test_a_family_that_cannot_run_a_workload_says_what_it_lacks(name, capsys, tmp_path):
    family, (workload, missing) = FAMILIES[name], CANNOT_RUN[name]
    with pytest.raises(ValueError, match=missing):
        family.space(load(workload), {}, {})
    out = tmp_path / "explore"
    assert cli.main(["explore", "--family", name, "--workload", workload, "--trials", "2", "--out", str(out),
                     "--json"]) == 2
    assert missing in capsys.readouterr().err and not out.exists()


@pytest.fixture
def with_toy(monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", toy_family())


def test_a_family_registered_in_a_test_joins_every_command(with_toy, tmp_path, capsys):
    assert cli.main(["params", "toy"]) == 0
    assert "k_max" in capsys.readouterr().out
    assert cli.main(["estimate", "toy", "--set", "k_max=8", "--gemm", "2,3,20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cycles"] == 2 * 3 * (20 + 3)                 # three K chunks of at most 8
    assert cli.main(["estimate", "toy", "--workload", WORKLOAD, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens_per_s"] > 0
    assert cli.main(["generate", "toy", "--set", "bits=4", "--out", str(tmp_path / "gen"), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert json.loads(open(files["manifest"]).read())["family"] == "toy"
    assert cli.main(["estimate", "toy", "--set", "bits=99"]) == 2
    assert "toy.bits must be an integer in 2..16, not 99" in capsys.readouterr().err
    out = tmp_path / "explore"
    assert cli.main(["explore", "--family", "toy", "--workload", WORKLOAD, "--target", "kv260", "--trials", "20",
                     "--batch", "10", "--top", "1", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trials"] == 20 and doc["pinned"] == {"bits": 8}
    assert list((out / "designs").glob("af_toy_*/af_toy_*.v"))


@pytest.mark.sim
def test_the_toy_family_verifies_on_verilator(with_toy, capsys):
    assert cli.main(["verify", "toy", "--set", "bits=5", "--set", "k_max=12", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["cycles_match"] and len(doc["measured_cycles"]) == 16
    assert ToyParams(bits=5, k_max=12).digest() == doc["hash"]


SMALL_ATTENTION = dict(head_dim=16, lanes=4, kv_block=8, q_rows=2, max_seq_len=64)


@pytest.mark.sim
@pytest.mark.parametrize("family", AXI, ids=_ids)
def test_every_family_wrapped_in_axi_lints_clean_and_passes_its_axi_bench(family, tmp_path):
    """One wrapper for every family, the toy included: it lints clean, and the AXI bench (the
    Python driver over cocotbext-axi) gets golden-checked results with the wrapper's latency
    exact on top of the engine's own cycles."""
    from dse.verify import verify
    from generators.artifact import write
    from generators.axi import render_axi
    from verif.verilator import lint

    params = family.params(**(SMALL_ATTENTION if family.name == "attention" else {}))
    artifact = render_axi(params, family.build)
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])
    verification = verify(family, params, interface="axi")
    assert verification.sim.passed and verification.sim.tests == 3, verification.sim.summary()
    figures = {c.figure for c in verification.checks}
    assert figures == {"write_to_last_beat", "last_beat_to_irq"} and len(verification.checks) == 6
    assert all(c.ok and c.exact for c in verification.checks), [c.to_dict() for c in verification.checks]


@pytest.mark.parametrize("family", [f for f in ALL if f.testbench], ids=_ids)
def test_every_bench_passes_on_icarus_too(family):
    """A four-state simulator shows what Verilator's two-state model hides (undriven inputs,
    state without reset, X into control); an X on a sampled output fails the bench. Our
    Verilog is Verilog-2005 and is compiled as such (``-g2005``): in SystemVerilog mode Icarus
    gives declaration initialisers no time-zero event, and Yosys's combinational blocks stay X
    until an input changes."""
    from dse.verify import verify
    from generators.attention import AttentionParams

    small = {"attention": AttentionParams(**SMALL_ATTENTION)}
    result = verify(family, small.get(family.name, family.params()), simulator="icarus")
    assert result.sim.passed, result.sim.summary()
    assert result.checks and all(c.ok for c in result.checks)


@pytest.mark.sim
@pytest.mark.parametrize("family, interface", [(f, "engine") for f in ALL if f.testbench]
                         + [(f, "axi") for f in AXI], ids=lambda v: v if isinstance(v, str) else v.name)
def test_the_smallest_legal_design_passes_every_bench(family, interface, tmp_path):
    """Each family's smallest legal design (every integer field at the lowest value its rules
    allow: a 1x1 array, k_max 1, one lane): its Verilog, alone and wrapped in AXI, lints clean
    under Verilator's -Wall (no constant comparison, which fails a Verilator build), and both
    benches pass on Icarus, golden-checked with exact cycles; the AXI bench must not assume
    that a run outlasts a register read. Icarus keeps this quick (no C++ build per design) and
    four-state: an X anywhere reaches the sampled outputs."""
    from dse.verify import verify
    from generators.artifact import render, write
    from generators.axi import render_axi
    from verif.verilator import lint

    params = family.params.smallest()
    artifact = (render_axi if interface == "axi" else render)(params, family.build)
    linted = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert linted.ok, "\n".join(linted.messages[:20])
    result = verify(family, params, simulator="icarus", interface=interface)
    assert result.sim.passed, result.sim.summary()
    assert result.checks and all(c.ok for c in result.checks), [c.to_dict() for c in result.checks if not c.ok]
