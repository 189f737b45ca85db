"""The FPGA attention engine: ``O = softmax(Q K^T * scale) V`` for a tile of query rows.

A run takes ``q_rows`` query rows against ``n`` keys (1..``max_seq_len``),
with Q, K and V streamed in and O streamed out (valid/ready, ``lanes``
elements of one row per beat, lane 0 in the least significant bits):

* ``q_stream``: ``q_rows * chunks`` beats, row-major (``chunks = head_dim / lanes``).
* ``k_stream``, ``v_stream``: ``n * chunks`` beats each, key-major.
* ``o_stream``: ``q_rows * chunks`` beats of signed ``v_bits + out_frac``-bit
  codes with ``out_frac`` fraction bits in V's units.
* ``scale`` (16-bit, ``scale_frac`` fraction bits) and, when ``causal``,
  ``q_pos`` (the key position of query row 0) are sampled with ``start``.

Work is cut into *slots* of a fixed length. A QK job (block ``j``, row ``r``)
computes the row's ``kv_block`` scores against K block ``j`` into the score
buffer and updates the row's running max; a PV job turns the scores into
probabilities (exp2), rescales the row's denominator and accumulators and adds
``p * v``. ``online`` runs PV job ``i`` beside QK job ``i + 1`` (one slot
apart), so buffers hold a Q tile, two K and two V blocks, two score blocks and
the per-row state, whatever ``n`` is; ``two_pass`` runs every QK job first,
keeping all ``n`` scores of every row (the FLAT-like baseline), then every PV
job with the final maximum. K/V blocks load into double buffers while other
blocks compute. After the last slot each row's reciprocal is formed once
(deferred division) and multiplies its accumulators into O.

The top wires the memories, the loaders, the slot controller, the QK and PV
units (:mod:`generators.attention_units`, each stating its latency and its
flip-flops) and the output normaliser; :func:`memory_plan` is the one list of
its memories. Causal masking hides keys after ``q_pos + r``; the host skips whole masked
blocks by streaming only ``n = q_pos + q_rows`` keys. Arithmetic and widths:
:mod:`generators.fixed_softmax`, golden model: :mod:`verif.golden.attention`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from generators import fixed_softmax as fx
from generators.lanes import pack_lanes, unpack_lanes
from generators.params import ParamError, Params, Rule, bool_field, choice_field, int_field
from generators.widths import bits_for, ceil_div
from hw.block_loader import BlockLoader
from hw.run_control import RunSignature
from hw.softmax import RowNormaliser
from generators.attention_units import PVUnit, QKUnit, SlotController, fanout_copies


class ExpKind(enum.Enum):
    PWL = "pwl"             # chords on 2^exp_index_bits segments of the fraction
    TABLE = "table"         # a 2^exp_index_bits-entry table of the fraction


class Rescale(enum.Enum):
    EXP = "exp"             # alpha = exp2(m - m') through the exp unit
    SHIFT = "shift"         # integer running max: alpha is a power of two, a shift


class Softmax(enum.Enum):
    ONLINE = "online"       # single pass, buffers independent of n
    TWO_PASS = "two_pass"   # all scores of a row on chip, then one pass over V


PWL_CODE, TABLE_CODE = range(2)
EXP_RESCALE, SHIFT_RESCALE = range(2)
ONLINE_CODE, TWO_PASS_CODE = range(2)


def mem_depth(rows) -> np.ndarray:
    """Rows of an instantiated memory: at least two, so its address is never zero bits wide."""
    return np.maximum(np.asarray(rows, dtype=np.int64), 2)


# ---------------------------------------------------------------------- schedule (vectorised)
def recip_latency(l_bits, recip_bits) -> np.ndarray:
    """Cycles of :class:`hw.softmax.Reciprocal`: leading-one search, then one quotient bit each."""
    return bits_for(np.maximum(np.asarray(l_bits) - 1, 1) + 1) + np.asarray(recip_bits) + 3


def output_latency(pipeline) -> np.ndarray:
    """Stages from an accumulator read to the O register: read, multiply (two steps when
    pipelined, its input registered at ``pipeline = 2``), shift, (narrow and flag overflow when
    pipelined), round and saturate."""
    pipeline = np.asarray(pipeline, dtype=np.int64)
    return 4 + 2 * (pipeline >= 1) + (pipeline >= 2)


@dataclass(frozen=True, kw_only=True)
class AttentionParams(Params):
    """Parameters of the attention engine."""

    family: ClassVar[str] = "attention"

    head_dim: int = int_field(64, 8, 256, log=True, doc="head dimension d of Q, K and V")
    q_rows: int = int_field(4, 1, 64, log=True, doc="query rows per run (1 = decode)")
    kv_block: int = int_field(16, 1, 64, log=True, doc="keys per K/V block (online softmax step)")
    lanes: int = int_field(8, 1, 64, log=True, doc="parallel MACs along head_dim; must divide it")
    q_bits: int = int_field(8, 4, 16, doc="signed Q width")
    k_bits: int = int_field(8, 4, 16, doc="signed K width")
    v_bits: int = int_field(8, 4, 16, doc="signed V width")
    scale_frac: int = int_field(20, 8, 32, search=False, doc="fraction bits of the run-time scale port")
    score_frac: int = int_field(8, 2, 12, doc="fraction bits of a score (base-2 domain)")
    prob_frac: int = int_field(16, 8, 20, doc="fraction bits of a probability")
    exp: ExpKind = choice_field(ExpKind.PWL, doc="exp2 fraction: pwl chords or a table")
    exp_index_bits: int = int_field(3, 0, 10, doc="log2 of the PWL segments or table entries")
    rescale: Rescale = choice_field(Rescale.EXP, doc="online rescale: exp2(m - m') or an exact shift "
                                                     "with an integer running max")
    softmax: Softmax = choice_field(Softmax.ONLINE, doc="online (buffers independent of n) or two_pass "
                                                        "(all scores of a row on chip)")
    causal: bool = bool_field(False, search=False, doc="mask keys after each query's position")
    max_seq_len: int = int_field(1024, 1, 16384, log=True, search=False, doc="largest n a run accepts")
    pipeline: int = int_field(1, 0, 2, doc="extra registers in the exp, rescale and output paths (Fmax)")
    recip_bits: int = int_field(16, 8, 24, search=False, doc="quotient bits of the row reciprocal")
    out_frac: int = int_field(8, 0, 12, search=False, doc="fraction bits of O in V's units")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("lanes", ("head_dim",), lambda c: np.asarray(c["head_dim"]) % np.maximum(c["lanes"], 1) == 0,
             "a divisor of head_dim ({head_dim})"),
        Rule("exp_index_bits", ("score_frac",), lambda c: np.asarray(c["exp_index_bits"]) <= c["score_frac"],
             "at most score_frac ({score_frac})"),
        Rule("scale_frac", ("score_frac",), lambda c: np.asarray(c["scale_frac"]) > c["score_frac"],
             "greater than score_frac ({score_frac})"),
        Rule("recip_bits", ("out_frac",), lambda c: np.asarray(c["recip_bits"]) > c["out_frac"],
             "greater than out_frac ({out_frac})"),
    )

    # ------------------------------------------------------------------ derived
    @property
    def chunks(self) -> int:
        return self.head_dim // self.lanes

    @property
    def max_blocks(self) -> int:
        return self.blocks(self.max_seq_len)

    def blocks(self, n: int) -> int:
        return -(-n // self.kv_block)

    @property
    def pwl(self) -> bool:
        return self.exp is ExpKind.PWL

    @property
    def score_bits(self) -> int:
        return int(fx.score_bits(self.head_dim, self.q_bits, self.k_bits, self.scale_frac, self.score_frac))

    @property
    def raw_score_bits(self) -> int:
        return int(fx.raw_score_bits(self.head_dim, self.q_bits, self.k_bits))

    @property
    def denominator_bits(self) -> int:
        return int(fx.denominator_bits(self.max_seq_len, self.prob_frac))

    @property
    def acc_bits(self) -> int:
        return int(fx.acc_bits(self.max_seq_len, self.prob_frac, self.v_bits))

    @property
    def out_bits(self) -> int:
        return int(fx.out_bits(self.v_bits, self.out_frac))

    @property
    def two_pass(self) -> bool:
        return self.softmax is Softmax.TWO_PASS

    @property
    def rescale_shift(self) -> bool:
        return self.rescale is Rescale.SHIFT

    @property
    def slot_cycles(self) -> int:
        return int(SlotController.cycles(self.kv_block, self.chunks, self.lanes, self.pwl, self.pipeline))


def derived(col: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parameter columns (``AttentionParams.columns``) plus every derived width and latency of
    the RTL, vectorised: what the units, the memory plan and the cost model read."""
    c = {k: np.asarray(v).astype(np.int64) for k, v in col.items()}
    c["valid"] = AttentionParams.valid_columns(col)
    lanes = np.maximum(c["lanes"], 1)
    c["chunks"] = c["head_dim"] // lanes
    c["pwl"] = c["exp"] == PWL_CODE
    c["two_pass"] = c["softmax"] == TWO_PASS_CODE
    c["shift"] = c["rescale"] == SHIFT_RESCALE
    c["raw_bits"] = fx.raw_score_bits(c["head_dim"], c["q_bits"], c["k_bits"])
    c["y_bits"] = fx.score_bits(c["head_dim"], c["q_bits"], c["k_bits"], c["scale_frac"], c["score_frac"])
    c["m_bits"] = fx.max_bits(c["y_bits"])
    c["l_bits"] = fx.denominator_bits(c["max_seq_len"], c["prob_frac"])
    c["acc_bits"] = fx.acc_bits(c["max_seq_len"], c["prob_frac"], c["v_bits"])
    c["out_bits"] = fx.out_bits(c["v_bits"], c["out_frac"])
    c["max_blocks"] = ceil_div(c["max_seq_len"], c["kv_block"])
    c["slot"] = SlotController.cycles(c["kv_block"], c["chunks"], lanes, c["pwl"], c["pipeline"])
    c["recip"] = recip_latency(c["l_bits"], c["recip_bits"])
    c["out_latency"] = output_latency(c["pipeline"])
    return c


READ_ENABLED = frozenset({"acc"})
"""Memories whose read port holds its word under an enable (the normaliser stalls it); the
others read every cycle. Synthesis prices a LUT RAM's read enable (``cost_models.memory``)."""


def memory_plan(c: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(width, rows) of every memory the engine instantiates, over :func:`derived` columns: the
    buffers and per-row state it builds, the exp unit's coefficient ROMs (``rom_a`` offsets or
    the table, ``rom_b`` slopes, PWL only)."""
    lanes, rows, chunks, bc = c["lanes"], c["q_rows"], c["chunks"], c["kv_block"]
    s_rows = np.where(c["two_pass"], rows * c["max_blocks"] * bc, 2 * bc)
    rom_width = fx.coef_frac(c["prob_frac"]) + 1
    rom_rows = mem_depth(1 << c["exp_index_bits"])
    return {
        "q_buf": (lanes * c["q_bits"], mem_depth(rows * chunks)),
        "k_buf": (lanes * c["k_bits"], mem_depth(2 * bc * chunks)),
        "v_buf": (lanes * c["v_bits"], mem_depth(2 * bc * chunks)),
        "s_buf": (c["y_bits"] + 1, mem_depth(s_rows)),
        "m_state": (c["m_bits"], mem_depth(rows)),
        "l_state": (c["l_bits"], mem_depth(rows)),
        "acc": (lanes * c["acc_bits"], mem_depth(rows * chunks)),
        "rom_a": (rom_width, rom_rows),
        "rom_b": (np.where(c["pwl"], rom_width, 0), rom_rows),
    }


class AttentionEngine(wiring.Component):
    """Loaders, the slot controller, the QK and PV units, and the output normaliser."""

    def __init__(self, params: AttentionParams):
        self.params = p = params
        self.run_protocol, self.beats_per_run = RunSignature("n", p.max_seq_len), p.q_rows * p.chunks
        signature = {
            **self.run_protocol.members,
            "scale": In(unsigned(fx.SCALE_BITS)),
            "q_stream": In(stream.Signature(data.ArrayLayout(signed(p.q_bits), p.lanes))),
            "k_stream": In(stream.Signature(data.ArrayLayout(signed(p.k_bits), p.lanes))),
            "v_stream": In(stream.Signature(data.ArrayLayout(signed(p.v_bits), p.lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(signed(p.out_bits), p.lanes))),
        }
        if p.causal:
            signature["q_pos"] = In(range(max(p.max_seq_len, 2)))
        super().__init__(signature)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        R, D, Bc, L = p.q_rows, p.chunks, p.kv_block, p.lanes

        # memories: the plan the cost model prices (memory_plan), one port per use
        mem = {name: Memory(shape=unsigned(int(width[0])), depth=int(rows[0]), init=[])
               for name, (width, rows) in memory_plan(derived(AttentionParams.columns([p]))).items()
               if not name.startswith("rom")}
        for name, memory in mem.items():
            m.submodules[name] = memory
        qr, kr, vr, sr = (mem[x].read_port() for x in ("q_buf", "k_buf", "v_buf", "s_buf"))
        mr, lr, ar = (mem[x].read_port() for x in ("m_state", "l_state", "acc"))
        sw, mw, lw, aw = (mem[x].write_port() for x in ("s_buf", "m_state", "l_state", "acc"))

        # run registers, sampled with an accepted start
        n_run, scale_run = Signal.like(self.n), Signal.like(self.scale)
        qpos_run = Signal(range(max(p.max_seq_len, 2)))
        accept, begin = Signal(), Signal()
        m.d.comb += accept.eq(self.run_protocol.accepts(self))
        with m.If(accept):
            m.d.sync += [n_run.eq(self.n), scale_run.eq(self.scale)]
            if p.causal:
                m.d.sync += qpos_run.eq(self.q_pos)

        slots = m.submodules.slots = SlotController(p)
        qk = m.submodules.qk = QKUnit(p)
        pv = m.submodules.pv = PVUnit(p)
        loaded = {}
        for name, stream_port, bits, block, buffers, keys, released, memory in (
                ("q_load", self.q_stream, p.q_bits, R, 1, R, 0, "q_buf"),
                ("k_load", self.k_stream, p.k_bits, Bc, 2, self.n, slots.k_released, "k_buf"),
                ("v_load", self.v_stream, p.v_bits, Bc, 2, self.n, slots.v_released, "v_buf")):
            loader = m.submodules[name] = BlockLoader(
                L * bits, beats=D, block=block, buffers=buffers, max_keys=p.max_seq_len if buffers == 2 else R,
                max_blocks=p.max_blocks if buffers == 2 else 1)
            port = mem[memory].write_port()
            m.d.comb += [
                loader.begin.eq(accept), loader.keys.eq(keys), loader.released.eq(released),
                loader.i.valid.eq(stream_port.valid), loader.i.payload.eq(stream_port.payload.as_value()),
                stream_port.ready.eq(loader.i.ready),
                port.en.eq(loader.w_en), port.addr.eq(loader.w_addr), port.data.eq(loader.w_data),
            ]
            loaded[name] = loader.loaded

        # the slot schedule drives both units; QK's maxima reach PV through the controller (online)
        m.d.comb += [
            slots.begin.eq(begin), slots.n.eq(n_run), slots.q_loaded.eq(loaded["q_load"] != 0),
            slots.k_loaded.eq(loaded["k_load"]), slots.v_loaded.eq(loaded["v_load"]),
            slots.qk_m_old.eq(qk.m_old), slots.qk_m_new.eq(qk.m_new),
            qk.in_slot.eq(slots.in_slot), qk.tau.eq(slots.tau), qk.on.eq(slots.qk_on), qk.j.eq(slots.qk_j),
            qk.r.eq(slots.qk_r), qk.key0.eq(slots.qk_key0), qk.q_base.eq(slots.q_base), qk.srow.eq(slots.qk_srow),
            qk.half.eq(slots.qk_half), qk.n.eq(n_run), qk.q_pos.eq(qpos_run), qk.scale.eq(scale_run),
            qk.q_data.eq(qr.data), qk.k_data.eq(kr.data), qk.m_data.eq(mr.data),
            qr.addr.eq(qk.q_addr), kr.addr.eq(qk.k_addr),
            sw.en.eq(qk.s_en), sw.addr.eq(qk.s_addr), sw.data.eq(qk.s_data),
            mw.en.eq(slots.slot_end & slots.qk_on), mw.addr.eq(slots.qk_r), mw.data.eq(qk.m_new.as_unsigned()),
            mr.addr.eq(Mux(slots.qk_on, slots.qk_r, slots.pv_r)),
            pv.in_slot.eq(slots.in_slot), pv.tau.eq(slots.tau), pv.on.eq(slots.pv_on), pv.j.eq(slots.pv_j),
            pv.r.eq(slots.pv_r), pv.key0.eq(slots.pv_key0), pv.a_base.eq(slots.a_base), pv.srow.eq(slots.pv_srow),
            pv.half.eq(slots.pv_half),
            pv.m_old.eq(mr.data.as_signed() if p.two_pass else slots.pvh_old),
            pv.m_new.eq(mr.data.as_signed() if p.two_pass else slots.pvh_new),
            pv.s_data.eq(sr.data), pv.v_data.eq(vr.data), pv.l_data.eq(lr.data), pv.acc_data.eq(ar.data),
            sr.addr.eq(pv.s_addr), vr.addr.eq(pv.v_addr),
            aw.en.eq(pv.acc_en), aw.addr.eq(pv.acc_w_addr), aw.data.eq(pv.acc_w_data),
            lw.en.eq(pv.l_en), lw.addr.eq(pv.l_w_addr), lw.data.eq(pv.l_w_data),
        ]

        # output normaliser: after the last slot, each row's reciprocal times its accumulators
        norm = m.submodules.normaliser = RowNormaliser(
            rows=R, chunks=D, lanes=L, acc_bits=p.acc_bits, l_bits=p.denominator_bits, recip_bits=p.recip_bits,
            out_frac=p.out_frac, out_bits=p.out_bits, pipeline=p.pipeline, copies=int(fanout_copies(L, p.pipeline)))
        assert norm.latency == int(output_latency(p.pipeline))
        outputting = Signal()
        wiring.connect(m, norm.o, wiring.flipped(self.o_stream))
        m.d.comb += [
            norm.active.eq(outputting), norm.l_data.eq(lr.data), norm.acc_data.eq(ar.data),
            lr.addr.eq(Mux(outputting, norm.l_addr, slots.pv_r)),
            ar.addr.eq(Mux(outputting, norm.acc_addr, pv.acc_addr)),
            ar.en.eq(~outputting | norm.acc_en),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    m.d.comb += begin.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~slots.in_slot):
                    with m.If(slots.done):
                        m.d.comb += norm.start.eq(1)
                        m.next = "OUT"
                    with m.Elif(slots.ready):
                        m.d.comb += slots.go.eq(1)
            with m.State("OUT"):
                m.d.comb += [self.busy.eq(1), outputting.eq(1)]
                m.d.comb += self.done.eq(self.o_stream.valid & self.o_stream.ready & norm.last)
                with m.If(self.done):
                    with m.If(accept):
                        m.d.comb += begin.eq(1)
                        m.next = "RUN"
                    with m.Else():
                        m.next = "IDLE"
        return m


def build(params: AttentionParams) -> AttentionEngine:
    return AttentionEngine(params)


# ---------------------------------------------------------------------- host-side packing
def _checked_codes(params: AttentionParams, name: str, x: np.ndarray, rows: int | None, bits: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != params.head_dim or (rows is not None and x.shape[0] != rows):
        want = f"{rows if rows is not None else 'n'} x {params.head_dim}"
        raise ParamError(f"{name} must be {want}, not {x.shape}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ParamError(f"{name} codes must lie in {lo}..{hi}")
    return x


def pack_rows(params: AttentionParams, x: np.ndarray, bits: int) -> list[int]:
    """Rows of ``head_dim`` codes as beats of ``lanes`` codes, row-major."""
    chunks = np.asarray(x, dtype=np.int64).reshape(-1, params.lanes)
    return pack_lanes(chunks, bits)


def pack_q(params: AttentionParams, q: np.ndarray) -> list[int]:
    return pack_rows(params, _checked_codes(params, "Q", q, params.q_rows, params.q_bits), params.q_bits)


def pack_k(params: AttentionParams, k: np.ndarray) -> list[int]:
    return pack_rows(params, _checked_codes(params, "K", k, None, params.k_bits), params.k_bits)


def pack_v(params: AttentionParams, v: np.ndarray) -> list[int]:
    return pack_rows(params, _checked_codes(params, "V", v, None, params.v_bits), params.v_bits)


def unpack_o(params: AttentionParams, beats: list[int]) -> np.ndarray:
    rows = [unpack_lanes(b, params.lanes, params.out_bits) for b in beats]
    return np.concatenate(rows).reshape(params.q_rows, params.head_dim)


def scale_code(params: AttentionParams, factor: float) -> int:
    """The ``scale`` port value for a real factor on the raw dot product (natural-log softmax).

    The engine works in base 2, so the code carries ``factor * log2(e)``.
    """
    code = round(factor * np.log2(np.e) * (1 << params.scale_frac))
    if not 0 <= code < 1 << fx.SCALE_BITS:
        raise ParamError(f"scale factor {factor:g} does not fit the 16-bit scale port with "
                         f"scale_frac={params.scale_frac}")
    return code


__all__ = ["AttentionParams", "AttentionEngine", "ExpKind", "Rescale", "Softmax", "build", "pack_q",
           "pack_k", "pack_v", "unpack_o", "scale_code"]
