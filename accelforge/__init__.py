"""accelforge as a library: the command line's jobs as functions that take typed values.

    import accelforge
    design = accelforge.design("lut_mpgemm", {"n_tile": 64, "weight_format": "ternary"})
    figures = accelforge.estimate("accelerator", {"gemm": "lut_mpgemm", "gemm.n_tile": 64},
                                  workload="bitnet-b1.58-2b4t-decode", target="kv260")
    files = accelforge.generate("systolic", {"rows": 8}, out="build/sys8")
    results = accelforge.verify("vector", {"lanes": 4})

Bad values raise ``ValueError`` naming the field and its allowed range, as the command line
says them. The machine of issue 34 (controller, DMA, buffer, engines) is ``MachineParams``
and :func:`generators.machine.render`; its programs come from :mod:`generators.isa`.
"""
from accelforge.api import design, estimate, families, generate, verify
from generators.isa import ISA, assemble, disassemble, encode
from generators.machine import MachineParams

__all__ = ["ISA", "MachineParams", "assemble", "design", "disassemble", "encode", "estimate", "families",
           "generate", "verify"]
