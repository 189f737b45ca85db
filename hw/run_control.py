"""The start/busy/done protocol shared by the tile engines that drain through a TileDrain.

A ``start`` with ``k`` in 1..``k_max`` is accepted while the engine is idle
or in its ``done`` cycle (back-to-back runs); ``done`` pulses when the
controller hands the finished tile to the output bank, which needs the
previous tile to have drained.
"""
from __future__ import annotations

from typing import Callable

from amaranth.hdl import Module, Signal

from hw.tile_buffer import TileDrain


def run_handshake(m: Module, engine, k_max: int, drain: TileDrain) -> tuple[Signal, Signal]:
    """Drive ``engine.done`` and ``drain.load``; return (accept, handoff).

    ``engine`` has ``start``, ``k``, ``busy`` and ``done``; the controller
    raises ``handoff`` in its hand-off state (see :func:`handoff_state`).
    """
    k_ok = engine.k != 0
    if k_max < 2 ** len(engine.k) - 1:          # else the port cannot exceed k_max
        k_ok &= engine.k <= k_max
    accept, handoff = Signal(), Signal()
    m.d.comb += [
        engine.done.eq(handoff & drain.empty),
        accept.eq(engine.start & k_ok & (~engine.busy | engine.done)),
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
