"""Simulate a design and hold its measured cycles against the cost model.

Records measured with stream gaps or backpressure (``stalled``) only have to
reach the model's figure (a lower bound); all others must equal it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dse.families import Family
from generators.artifact import Artifact
from generators.axi import DONE_LATENCY, START_LATENCY, render_as
from generators.params import Params
from verif.runner import SimResult, run

AXI_TESTBENCH = "verif.tb.axi"


@dataclass(frozen=True)
class CycleCheck:
    test: str
    figure: str
    measured: int
    model: int
    exact: bool           # False: the model is only a lower bound (stalled run)

    @property
    def ok(self) -> bool:
        return self.measured == self.model if self.exact else self.measured >= self.model

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test, "figure": self.figure, "measured": self.measured,
                "model": self.model, "exact": self.exact, "ok": self.ok}


@dataclass(frozen=True)
class Verification:
    sim: SimResult
    checks: list[CycleCheck]

    @property
    def passed(self) -> bool:
        return self.sim.passed and bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "simulation_passed": self.sim.passed,
            "tests": self.sim.tests,
            "failures": self.sim.failures,
            "cycles_match": all(c.ok for c in self.checks),
            "measured_cycles": [{"test": c.test, "figure": c.figure, "cycles": c.measured}
                                for c in self.checks],
            "model_cycles": [{"test": c.test, "figure": c.figure, "cycles": c.model,
                              "exact": c.exact} for c in self.checks],
            "mismatches": [c.to_dict() for c in self.checks if not c.ok],
            "log": str(self.sim.log),
            "waves": str(self.sim.waves) if self.sim.waves else None,
        }


def cycle_checks(family: Family, params: Params, records: list[dict[str, Any]]) -> list[CycleCheck]:
    checks = []
    for record in records:
        for figure, model in family.record_model(params, record).items():
            checks.append(CycleCheck(test=record["test"], figure=figure, measured=int(record[figure]),
                                     model=model, exact=not record.get("stalled", False)))
    return checks


def axi_checks(family: Family, params: Params, records: list[dict[str, Any]]) -> list[CycleCheck]:
    """The AXI bench's figures: the engine's start-to-last-beat cycles (its cost model) plus the
    wrapper's start latency, and the wrapper's done latency; exact (the bench does not stall)."""
    checks = []
    for record in records:
        engine = family.record_model(params, record)
        last = next(v for k, v in engine.items() if k.startswith("start_to_last"))
        for figure, model in (("write_to_last_beat", START_LATENCY + last), ("last_beat_to_irq", DONE_LATENCY)):
            checks.append(CycleCheck(test=record["test"], figure=figure, measured=int(record[figure]),
                                     model=int(model), exact=True))
    return checks


def cycle_misses(family: Family, params: Params) -> Callable[[list[dict[str, Any]]], str]:
    """A judge of a bench's records for :func:`verif.mutants.run_mutant`: the figures that miss
    the model, or an empty string."""
    def judge(records: list[dict[str, Any]]) -> str:
        misses = [f"{c.test} {c.figure} {c.measured} vs {c.model}"
                  for c in cycle_checks(family, params, records) if not c.ok]
        return ", ".join(misses[:3]) + (f" and {len(misses) - 3} more" if len(misses) > 3 else "")
    return judge


def _verify_axi(artifact: Artifact, family: Family, params: Params, rmap: dict[str, Any],
                **run_options) -> Verification:
    """One engine's AXI bench on ``artifact`` (the engine's wrapper or a composed top), given the
    engine family's case module, its Params class and its register map ``rmap``."""
    cls = family.params
    context = {"cases": family.testbench, "params_class": f"{cls.__module__}:{cls.__qualname__}", "axi": rmap}
    sim = run(artifact, AXI_TESTBENCH, engine=params, context=context, **run_options)
    return Verification(sim=sim, checks=axi_checks(family, params, sim.records))


def verify(family: Family, params: Params, *, seed: int = 1, waves: bool = False,
           testcase: str | None = None, run_dir: Path | None = None, simulator: str = "verilator",
           interface: str = "engine") -> Verification:
    """Simulate ``params`` on its family's bench (``interface="engine"``), or wrapped in AXI on the
    AXI bench through the host driver (``"axi"``), and hold the cycles against the model."""
    artifact = render_as(interface, params, family.build)
    if interface == "axi":
        return _verify_axi(artifact, family, params, artifact.extra["axi"], seed=seed, waves=waves,
                           testcase=testcase, run_dir=run_dir, simulator=simulator)
    sim = run(artifact, family.testbench, seed=seed, waves=waves, testcase=testcase, run_dir=run_dir,
              simulator=simulator)
    return Verification(sim=sim, checks=cycle_checks(family, params, sim.records))


def verify_parts(family: Family, params: Params, *, seed: int = 1, waves: bool = False,
                 simulator: str = "verilator", interface: str = "engine"
                 ) -> list[tuple[Family, Params, str, Verification]]:
    """Each engine of a design through its own bench: a plain family's design on its own, a
    composed design's engines inside its top (``family.parts`` names the top to build, one
    replica of each engine since replicas are the same module, and each engine's ports).
    With ``interface="axi"`` the top is the AXI-wrapped one and each engine runs the AXI bench."""
    if family.parts is None:
        return [(family, params, "", verify(family, params, seed=seed, waves=waves, simulator=simulator,
                                            interface=interface))]
    top, engines = family.parts(params)
    artifact = render_as(interface, top, family.build)
    out = []
    for engine, part, prefix in engines:
        if interface == "axi":
            rmap = artifact.extra["axi"]["engines"][prefix.removesuffix("__")]
            result = _verify_axi(artifact, engine, part, rmap, seed=seed, waves=waves, simulator=simulator)
        else:
            sim = run(artifact, engine.testbench, seed=seed, waves=waves, engine=part, prefix=prefix,
                      simulator=simulator)
            result = Verification(sim=sim, checks=cycle_checks(engine, part, sim.records))
        out.append((engine, part, prefix, result))
    return out
