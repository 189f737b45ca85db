"""Mutation testing: small faults injected into generated Verilog, each run through the
family's own cocotb bench, to measure what the benches catch.

A mutant changes one site of the design's Verilog: an operator swapped (``+``/``-``,
``&``/``|``, ``==``/``!=``, ``<``/``<=``, ``>``/``>=``), a constant off by one (counter
bounds, increments, comparisons), or a one-bit condition inverted. Mutants run on Icarus
Verilog (a build takes about a second, where Verilator takes tens), each in its own cache
folder. A mutant is *killed* when the bench fails (a wrong tile, an X, a stall) or a measured
cycle count misses the cost model's, *survives* when every test still passes, and is *invalid* when it does not
compile. A survivor is either a real gap in the bench or an equivalent mutant (a change
that cannot alter any output, such as an off-by-one in a counter bound never reached).
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from generators.artifact import Artifact

_SWAPS = {" + ": " - ", " - ": " + ", " & ": " | ", " | ": " & ", " == ": " != ", " != ": " == ",
          " < ": " <= ", " <= ": " < ", " > ": " >= ", " >= ": " > "}
_OPERATOR = re.compile("|".join(re.escape(k) for k in _SWAPS))
_CONSTANT = re.compile(r"(\d+)'h([0-9a-f]+)")
_ASSIGN = re.compile(r"^\s*assign\s+\S+\s*=\s*(.+);$")


@dataclass(frozen=True)
class Mutant:
    """One fault: line ``line`` (1-based) of the Verilog, ``before`` replaced by ``after``."""
    kind: str
    line: int
    before: str
    after: str

    def apply(self, verilog: str) -> str:
        lines = verilog.splitlines(keepends=True)
        assert lines[self.line - 1] == self.before
        lines[self.line - 1] = self.after
        return "".join(lines)

    def describe(self) -> str:
        return f"{self.kind} at line {self.line}: {self.before.strip()} -> {self.after.strip()}"


_DECLARATION = re.compile(r"^\s*(?:wire|reg|input|output)\s+(?:signed\s+)?(\[\d+:\d+\]\s+)?(\\\S+|[\w$]+)\s*[;=]")


def sites(verilog: str) -> Iterator[Mutant]:
    """Every mutant of the kinds above, in the combinational ``assign`` statements (where the
    datapath and the control conditions are) of wires the module reads again; ``invert``
    negates a one-bit wire's whole expression (a condition, a handshake). A wire only declared and assigned is an alias
    nobody reads, and a mutant there is equivalent by construction."""
    lines = verilog.splitlines(keepends=True)
    module_of, modules, current = [], {}, None
    for text in lines:
        if text.startswith("module "):
            current = len(modules)
            modules[current] = []
        module_of.append(current)
        if current is not None:
            modules[current].append(text)
    reads = {m: _token_counts("".join(body)) for m, body in modules.items()}
    one_bit: dict[tuple, bool] = {}
    for number, text in enumerate(lines, start=1):
        module = module_of[number - 1]
        declared = _DECLARATION.match(text)
        if declared:
            one_bit[(module, declared.group(2))] = declared.group(1) is None
        match = _ASSIGN.match(text.rstrip("\n"))
        if not match:
            continue
        name = text.split()[1]
        if reads[module].get(name, 0) <= 2:
            continue
        start = match.start(1)
        for op in _OPERATOR.finditer(text, start):
            yield Mutant("operator", number, text, text[:op.start()] + _SWAPS[op.group()] + text[op.end():])
        for const in _CONSTANT.finditer(text, start):
            width, value = int(const.group(1)), int(const.group(2), 16)
            for changed in (value + 1, value - 1):
                if 0 <= changed < (1 << width):
                    after = text[:const.start()] + f"{width}'h{changed:x}" + text[const.end():]
                    yield Mutant("constant", number, text, after)
        rhs = match.group(1)
        if one_bit.get((module, name)) and "'" not in rhs:          # a condition, not a constant
            yield Mutant("invert", number, text, text[:start] + f"~({rhs})" + text[start + len(rhs):])


def _token_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for token in re.findall(r"(?<![.\w$\\])(?:\\\S+|[A-Za-z_][\w$]*)", text):   # not .port( names
        counts[token] = counts.get(token, 0) + 1
    return counts


def sample(verilog: str, count: int, seed: int) -> list[Mutant]:
    """``count`` mutants drawn without replacement (all of them when there are fewer)."""
    every = list(sites(verilog))
    return random.Random(seed).sample(every, min(count, len(every)))


def small_design(family):
    """A design of ``family`` small enough that a mutant runs in seconds (the defaults are,
    but for attention's 1024-key engine)."""
    if family.name == "attention":
        from generators.attention import AttentionParams
        return AttentionParams(head_dim=16, lanes=4, kv_block=8, q_rows=2, max_seq_len=64)
    return family.params()


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str          # "killed" | "survived" | "invalid"
    detail: str = ""


def run_mutant(artifact: Artifact, testbench: str, mutant: Mutant, *, seed: int = 1,
               cycles: Callable[[list[dict]], str] | None = None) -> Outcome:
    """Build ``mutant`` of ``artifact`` on Icarus and run ``testbench`` on it. ``cycles`` judges the
    bench's measured records against the cost model (what ``accelforge verify`` does) and names
    any figure that misses it: the model promises exact cycles, so a mutant that changes them is
    caught even when every tile is right."""
    from verif.runner import run

    mutated = dataclasses.replace(artifact, verilog=mutant.apply(artifact.verilog))
    saved = os.environ.get("ACCELFORGE_CACHE")
    with tempfile.TemporaryDirectory(prefix="mutant-") as cache:
        os.environ["ACCELFORGE_CACHE"] = cache
        try:
            sim = run(mutated, testbench, seed=seed, simulator="icarus", run_dir=Path(cache) / "run")
        except RuntimeError as exc:                     # the mutant does not build
            return Outcome(mutant, "invalid", str(exc).splitlines()[0])
        finally:
            if saved is None:
                os.environ.pop("ACCELFORGE_CACHE", None)
            else:
                os.environ["ACCELFORGE_CACHE"] = saved
    if not sim.passed:
        return Outcome(mutant, "killed", ", ".join(sim.failures) or "no results")
    missed = cycles(sim.records) if cycles else ""
    return Outcome(mutant, "killed", f"cycles: {missed}") if missed else Outcome(mutant, "survived")
