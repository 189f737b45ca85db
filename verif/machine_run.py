"""Run one program and memory image on the machine's RTL (cocotb, AxiRam as the DRAM), from
the Python side: the image after the run, and the measured counters."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generators.machine import MachineParams, render
from verif.runner import SimResult, cache_root, run

TESTBENCH = "verif.tb.machine_program"
BENCH = "verif.tb.machine"
SMALL = {"buffer_beats": 64, "vector.lanes": 4, "vector.bits": 8, "vector.max_beats": 32, "gemm.k_max": 64}
"""A machine small enough that its bench runs in seconds on Icarus (mutation testing)."""


def small_machine() -> MachineParams:
    return MachineParams.from_dict(SMALL)


def cycle_misses(p: MachineParams):
    """A judge of the machine bench's records (:func:`verif.mutants.run_mutant`): the programs
    whose ``CYCLES`` miss the model (exact at full rate, a lower bound with stalls)."""
    from cost_models.machine import program_cycles

    def judge(records: list[dict]) -> str:
        misses = []
        for r in records:
            model = program_cycles(p, [int(w, 16) for w in r["program"]])
            if (r["CYCLES"] < model) if r.get("stalled") else (r["CYCLES"] != model):
                misses.append(f"{r['test']} CYCLES {r['CYCLES']} vs {model}")
        return ", ".join(misses[:3])
    return judge


@dataclass(frozen=True)
class Outcome:
    sim: SimResult
    image: bytes
    cycles: int
    retired: int


def run_program(p: MachineParams, program: list[int], image: bytes, *, simulator: str = "verilator") -> Outcome:
    """Run ``program`` over ``image`` (loaded at the bench's image base) and check it against
    the golden model; raises ``RuntimeError`` with the simulation's summary if it fails."""
    runs = cache_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="program-", dir=runs))
    given, after = folder / "program.json", folder / "image.bin"
    given.write_text(json.dumps({"program": [hex(w) for w in program], "image": image.hex()}))
    sim = run(render(p), TESTBENCH, simulator=simulator, run_dir=folder,
              context={"program_file": str(given), "image_file": str(after)})
    if not sim.passed or not sim.records:
        raise RuntimeError(f"the program did not run on the RTL: {sim.summary()}")
    record = sim.records[-1]
    return Outcome(sim, after.read_bytes(), int(record["CYCLES"]), int(record["RETIRED"]))
