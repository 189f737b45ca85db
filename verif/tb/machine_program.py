"""cocotb testbench that runs one given program and image on the machine (a compiled model's).

The pytest side writes ``{"program": [hex words], "image": hex}`` to the file named by the
bench context's ``program_file``. The bench runs it as :mod:`verif.tb.machine` runs its own
programs, checking the image against the golden model bit for bit. It writes the image after
the run to ``image_file`` and reports ``CYCLES`` and ``RETIRED``.
"""
from __future__ import annotations

import json
from pathlib import Path

import cocotb

from verif.runner import bench_params, bench_report
from verif.tb.machine import IMAGE_BASE, Bench


@cocotb.test()
async def compiled_program_matches_the_golden(dut):
    spec = bench_params()
    given = json.loads(Path(spec["program_file"]).read_text())
    program, image = [int(w, 16) for w in given["program"]], bytes.fromhex(given["image"])
    b = Bench(dut)
    if len(image) > len(b.image):
        raise ValueError(f"the image ({len(image)} bytes) does not fit the bench's memory ({len(b.image)} bytes)")
    b.image[:len(image)] = image
    await b.reset()
    counters = await b.run(program)
    Path(spec["image_file"]).write_bytes(b.ram.read(IMAGE_BASE, len(image)))
    bench_report({"test": "compiled_program_matches_the_golden", "program": given["program"], **counters})
