"""The start/busy/done run protocol every engine speaks, and its controller pieces for the
tile engines that drain through a TileDrain.

A ``start`` with a length (``k`` for the GEMM engines, ``n`` keys for attention)
in 1..maximum is accepted while the engine is idle or in its ``done`` cycle
(back-to-back runs); ``done`` pulses when the run's result is handed on (for a
tile engine: to the output bank, which needs the previous tile to have drained).
"""
from __future__ import annotations

from typing import Callable

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.tile_buffer import TileDrain


class RunSignature(wiring.Signature):
    """The run protocol as the engine sees it: ``start``, the run length ``length``
    (1..``maximum``), ``busy`` and ``done``. Engines take its members at top level (the
    ports the testbenches and drivers name); a host controller uses it flipped."""

    def __init__(self, length: str = "k", maximum: int = 1):
        if not isinstance(maximum, int) or maximum < 1:
            raise ValueError(f"maximum must be a positive integer, not {maximum!r}")
        self.length, self.maximum = length, maximum
        super().__init__({"start": In(1), length: In(range(maximum + 1)), "busy": Out(1), "done": Out(1)})

    def accepts(self, engine) -> Value:
        """The protocol's acceptance: ``start`` with a length in 1..maximum while ``engine`` is
        idle or in its ``done`` cycle."""
        length = getattr(engine, self.length)
        ok = length != 0
        if self.maximum < 2 ** len(length) - 1:         # else the port cannot exceed the maximum
            ok &= length <= self.maximum
        return engine.start & ok & (~engine.busy | engine.done)

    def __eq__(self, other):
        return (isinstance(other, RunSignature) and (self.length, self.maximum) == (other.length, other.maximum))

    def __repr__(self):
        return f"RunSignature({self.length!r}, {self.maximum})"


def run_handshake(m: Module, engine, drain: TileDrain) -> tuple[Signal, Signal]:
    """Drive ``engine.done`` and ``drain.load``; return (accept, handoff).

    ``engine`` speaks its ``run_protocol`` (a :class:`RunSignature`); the controller
    raises ``handoff`` in its hand-off state (see :func:`handoff_state`).
    """
    accept, handoff = Signal(), Signal()
    m.d.comb += [
        engine.done.eq(handoff & drain.empty),
        accept.eq(engine.run_protocol.accepts(engine)),
        drain.load.eq(engine.done),
    ]
    return accept, handoff


def handoff_state(m: Module, engine, accept: Signal, handoff: Signal, drain: TileDrain,
                  begin_run: Callable[[], None]) -> None:
    """The HANDOFF state: move the finished tile to the drain; start the next run in the same
    cycle if asked, else go idle once the drain is empty."""
    with m.State("HANDOFF"):
        m.d.comb += [engine.busy.eq(1), handoff.eq(1)]
        with m.If(accept):
            begin_run()
        with m.Elif(drain.empty):
            m.next = "IDLE"
