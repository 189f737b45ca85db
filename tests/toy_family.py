"""A toy engine family that exists only in the tests: one multiply-accumulate lane.

It proves the family contract: registered from a test (``toy_family()``), it joins
``params``, ``estimate``, ``generate``, ``verify`` and ``explore`` with no edit to ``dse/``.
The module is also its own cocotb testbench (``runs``). A run of depth ``k`` takes ``k``
beats of ``(a, w)`` pairs and returns ``sum(a * w)`` as one ``y`` beat; ``done`` pulses
with that beat, ``k + 1`` cycles after the start when no stream stalls, and the next start
is taken in the ``done`` cycle.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cocotb
import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cost_models.coefficients import FabricCoefficients
from cost_models.ops import Gemm
from cost_models.pricing import price
from dse.families import Family
from generators.params import Params, int_field
from generators.widths import ceil_div
from hw.run_control import RunSignature
from verif.runner import bench_params, bench_report
from verif.tb.host import Case, LockStepHost


@dataclass(frozen=True, kw_only=True)
class ToyParams(Params):
    family: ClassVar[str] = "toy"

    bits: int = int_field(8, 2, 16, doc="signed operand width")
    k_max: int = int_field(16, 1, 1024, log=True, doc="deepest reduction one run accepts")

    @property
    def acc_bits(self) -> int:
        return 2 * self.bits + max(self.k_max - 1, 1).bit_length()


class ToyEngine(wiring.Component):
    def __init__(self, p: ToyParams):
        self.p = p
        self.run_protocol, self.beats_per_run = RunSignature("k", p.k_max), 1
        pair = data.StructLayout({"a": signed(p.bits), "w": signed(p.bits)})
        super().__init__({**self.run_protocol.members,
                          "a_stream": In(stream.Signature(pair)),
                          "y_stream": Out(stream.Signature(signed(p.acc_bits)))})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.p.acc_bits))
        left = Signal.like(self.k)
        accept = Signal()
        m.d.comb += [accept.eq(self.run_protocol.accepts(self)),
                     self.y_stream.payload.eq(acc)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    m.d.sync += [acc.eq(0), left.eq(self.k)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), self.a_stream.ready.eq(1)]
                with m.If(self.a_stream.valid):
                    m.d.sync += [acc.eq(acc + self.a_stream.payload.a * self.a_stream.payload.w),
                                 left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.y_stream.valid.eq(1),
                             self.done.eq(self.y_stream.ready)]
                with m.If(self.y_stream.ready):
                    with m.If(accept):
                        m.d.sync += [acc.eq(0), left.eq(self.k)]
                        m.next = "RUN"
                    with m.Else():
                        m.next = "IDLE"
        return m


def build(p: ToyParams) -> ToyEngine:
    return ToyEngine(p)


def estimate(points, gemm: Gemm, target):
    """Exact cycles for a GEMM run output by output in K chunks of ``k_max``; first-order rest."""
    col = ToyParams.columns([points]) if isinstance(points, ToyParams) else dict(points)
    bits, k_max = np.asarray(col["bits"]), np.asarray(col["k_max"])
    chunks = ceil_div(gemm.k, k_max)
    runs = gemm.m * gemm.n * chunks
    cycles = gemm.m * gemm.n * (gemm.k + chunks)          # back to back: k + 1 per run
    fab = FabricCoefficients(dsp_min_bits=99, dsp_min_product_bits=99, lut={}, ff={}, period_ns={},
                             energy={"j_per_reg_bit_cycle": 1e-15, "w_static": 1e-3})
    acc = 2 * bits + np.maximum(np.log2(np.maximum(k_max, 2)), 1)
    return price(ops=gemm.ops, target=target, fab=fab, counts={"cycles": cycles, "tiles": gemm.m * gemm.n,
                                                                "runs": runs},
                 lut=bits * bits + acc, ff=3 * bits + acc, dsp=np.zeros_like(bits), area=30.0 * bits * bits,
                 period_ns=2.0 + 0.1 * bits, reg_bits=3 * bits + acc, e_compute=1e-13 * gemm.ops * bits,
                 offchip=gemm.offchip_bits(1, 1, chunks, bits, bits, acc), valid=np.ones(np.shape(bits), bool),
                 extra={})


def record_model(p: ToyParams, record) -> dict[str, int]:
    return {"start_to_done": record["k"] + 1, "start_to_last_y": record["k"] + 1}


def _pack(p: ToyParams, pairs: np.ndarray) -> list[int]:
    mask = (1 << p.bits) - 1
    return [int(a & mask) | int(w & mask) << p.bits for a, w in pairs]


def _signed_y(p: ToyParams, beat: int) -> int:
    return beat - (1 << p.acc_bits) * (beat >> (p.acc_bits - 1))


def case(p: ToyParams, rng: np.random.Generator, k: int) -> Case:
    """A random run for hosts other than the lock-step one (the AXI bench)."""
    lo, hi = -(1 << (p.bits - 1)), (1 << (p.bits - 1)) - 1
    pairs = rng.integers(lo, hi + 1, (k, 2))
    want = int((pairs[:, 0] * pairs[:, 1]).sum())

    def check(tile: list[int]) -> None:
        assert [_signed_y(p, tile[0])] == [want], (k, tile)
    return Case(k, {}, {"a_stream": _pack(p, pairs)}, check)


def toy_family() -> Family:
    return Family(name="toy", params=ToyParams, build=build, testbench="tests.toy_family",
                  model_info=lambda: {"family": "toy", "coefficients": "first-order, test only"},
                  estimate=estimate, record_model=record_model,
                  default_op=lambda p: Gemm(m=1, n=1, k=p.k_max, name="one-run"),
                  workload_pins=lambda wl: {"bits": min(16, max(2, wl.act_bits))})


@cocotb.test()
async def runs(dut):
    """Random runs back to back, each sum checked, each unstalled run's cycles reported."""
    p = ToyParams.from_dict(bench_params()["params"])
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    lo, hi = -(1 << (p.bits - 1)), (1 << (p.bits - 1)) - 1
    ks = [int(rng.integers(1, p.k_max + 1)) for _ in range(6)] + [p.k_max, 1]
    pairs = [rng.integers(lo, hi + 1, (k, 2)) for k in ks]
    beats = [b for run in pairs for b in _pack(p, run)]
    host = LockStepHost(dut, inputs=("a_stream",), output="y_stream", rows_per_tile=1, seed=cocotb.RANDOM_SEED)
    await host.reset()
    timings = await host.run(ks, [beats], limit=10 * sum(k + 2 for k in ks))
    for k, run, t in zip(ks, pairs, timings, strict=True):
        got = _signed_y(p, t.tile[0])
        assert got == int((run[:, 0] * run[:, 1]).sum()), (k, got)
        bench_report({"test": "runs", "k": k, "start_to_done": t.done - t.start,
                      "start_to_last_y": t.last_out - t.start})
