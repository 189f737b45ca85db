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

Causal masking hides keys after ``q_pos + r``; the host skips whole masked
blocks by streaming only ``n = q_pos + q_rows`` keys. Arithmetic and widths:
:mod:`generators.fixed_softmax`, golden model: :mod:`verif.golden.attention`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from generators import fixed_softmax as fx
from generators.lanes import pack_lanes, unpack_lanes
from generators.params import Params, Rule, bool_field, choice_field, int_field
from generators.widths import bits_for, ceil_div
from hw import index_shape
from hw.block_loader import BlockLoader
from hw.run_control import RunSignature
from hw.softmax import Exp2Unit, RowNormaliser, adder_tree, staged_product


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
def tree_latency(lanes) -> np.ndarray:
    """Registers in the QK adder tree: one every two levels plus the output register."""
    levels = bits_for(lanes) * (np.asarray(lanes) > 1)
    return (np.maximum(levels - 1, 0) // 2) + 1


def exp_latency(pwl, pipeline) -> np.ndarray:
    pipeline = np.asarray(pipeline, dtype=np.int64)
    return 5 + (np.asarray(pwl) & (pipeline >= 1)) + (pipeline >= 2)


def rescale_latency(pipeline) -> np.ndarray:
    """Stages of the rescale multiply: one; two (partial products registered) when pipelined;
    three (its input registered too) at ``pipeline = 2``."""
    pipeline = np.asarray(pipeline, dtype=np.int64)
    return 1 + (pipeline >= 1) + (pipeline >= 2)


def prescale_latency(pipeline) -> np.ndarray:
    return 1 + (np.asarray(pipeline, dtype=np.int64) >= 1)


def slot_cycles(kv_block, chunks, lanes, pwl, pipeline) -> np.ndarray:
    """Cycles of one slot, including the boundary cycle that starts the next."""
    issue = np.asarray(kv_block, dtype=np.int64) * chunks
    qk_tail = 8 + tree_latency(lanes) + prescale_latency(pipeline)
    pv_tail = 7 + exp_latency(pwl, pipeline) + rescale_latency(pipeline)
    return issue + np.maximum(qk_tail, pv_tail) + 1


def fanout_copies(lanes, pipeline) -> np.ndarray:
    """Copies of a factor every lane's multiplier reads (alpha, the row reciprocal): one per four
    lanes when pipelined, so no register drives more than eight hard multipliers."""
    return np.where(np.asarray(pipeline) >= 1, ceil_div(lanes, 4), 1)


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
    def slot_cycles(self) -> int:
        return int(slot_cycles(self.kv_block, self.chunks, self.lanes, self.pwl, self.pipeline))


def _delayed(m: Module, value, cycles: int, name: str):
    """``value`` seen ``cycles`` clock edges later (free-running registers)."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _lanes(word, lanes: int, bits: int, is_signed: bool = True) -> list:
    out = []
    for i in range(lanes):
        part = word[i * bits:(i + 1) * bits]
        out.append(part.as_signed() if is_signed else part)
    return out


class AttentionEngine(wiring.Component):
    """Loaders, the slot controller, the QK and PV units, and the output normaliser."""

    def __init__(self, params: AttentionParams):
        self.params = p = params
        signature = {
            **RunSignature("n", p.max_seq_len).members,
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
        issue = Bc * D
        slot_len = p.slot_cycles - 1                # cycles inside a slot; one more starts the next
        y_bits = p.score_bits
        m_bits = int(fx.max_bits(y_bits))
        l_bits, a_bits, pf, sf = p.denominator_bits, p.acc_bits, p.prob_frac, p.score_frac
        two_pass = p.softmax is Softmax.TWO_PASS
        shift = p.rescale is Rescale.SHIFT
        lowest = -(1 << (m_bits - 1))

        # -------------------------------------------------------------- memories
        s_rows = R * p.max_blocks * Bc if two_pass else 2 * Bc
        mems = {
            "q_buf": (p.lanes * p.q_bits, R * D), "k_buf": (L * p.k_bits, 2 * Bc * D),
            "v_buf": (L * p.v_bits, 2 * Bc * D), "s_buf": (y_bits + 1, s_rows),
            "m_state": (m_bits, R), "l_state": (l_bits, R), "acc": (L * a_bits, R * D),
        }
        mem = {name: Memory(shape=unsigned(width), depth=int(mem_depth(rows)), init=[])
               for name, (width, rows) in mems.items()}
        for name, memory in mem.items():
            m.submodules[name] = memory
        qr, kr, vr, sr = (mem[x].read_port() for x in ("q_buf", "k_buf", "v_buf", "s_buf"))
        mr, lr, ar = (mem[x].read_port() for x in ("m_state", "l_state", "acc"))
        sw, mw, lw, aw = (mem[x].write_port() for x in ("s_buf", "m_state", "l_state", "acc"))

        # -------------------------------------------------------------- run registers and loaders
        n_run = Signal.like(self.n)
        scale_run = Signal.like(self.scale)
        qpos_run = Signal(range(max(p.max_seq_len, 2)))
        accept = Signal()
        m.d.comb += accept.eq(self.start & (self.n != 0) & (self.n <= p.max_seq_len)
                              & (~self.busy | self.done))
        with m.If(accept):
            m.d.sync += [n_run.eq(self.n), scale_run.eq(self.scale)]
            if p.causal:
                m.d.sync += qpos_run.eq(self.q_pos)

        k_released = Signal(range(p.max_blocks + 1))
        v_released = Signal(range(p.max_blocks + 1))
        loaders = {}
        for name, stream_port, bits, block, buffers, keys, released, memory in (
                ("q_load", self.q_stream, p.q_bits, R, 1, R, 0, "q_buf"),
                ("k_load", self.k_stream, p.k_bits, Bc, 2, self.n, k_released, "k_buf"),
                ("v_load", self.v_stream, p.v_bits, Bc, 2, self.n, v_released, "v_buf")):
            loader = BlockLoader(L * bits, beats=D, block=block, buffers=buffers,
                                 max_keys=p.max_seq_len if buffers == 2 else R,
                                 max_blocks=p.max_blocks if buffers == 2 else 1)
            m.submodules[name] = loader
            port = mem[memory].write_port()
            m.d.comb += [
                loader.begin.eq(accept), loader.keys.eq(keys), loader.released.eq(released),
                loader.i.valid.eq(stream_port.valid), loader.i.payload.eq(stream_port.payload.as_value()),
                stream_port.ready.eq(loader.i.ready),
                port.en.eq(loader.w_en), port.addr.eq(loader.w_addr), port.data.eq(loader.w_data),
            ]
            loaders[name] = loader

        # -------------------------------------------------------------- slot controller
        in_slot = Signal()
        tau = Signal(range(slot_len + 1))
        qk_pend, pv_pend, pv_started = Signal(), Signal(), Signal()
        qk_on, pv_on = Signal(), Signal()
        blk = range(p.max_blocks + 1)
        qk_j, pv_j = Signal(blk), Signal(blk)
        qk_r, pv_r = Signal(index_shape(R)), Signal(index_shape(R))
        key_span = range(p.max_blocks * Bc + 1)
        qk_key0, pv_key0 = Signal(key_span), Signal(key_span)
        q_base, a_base = Signal(index_shape(R * D)), Signal(index_shape(R * D))
        s_span = index_shape(int(mem_depth(s_rows)))
        qk_srow, pv_srow = Signal(s_span), Signal(s_span)
        qk_half, pv_half = Signal(), Signal()
        qk_m_new = Signal(signed(m_bits))
        qk_m_old = Signal(signed(m_bits))
        pvh_old, pvh_new, pvh_first = Signal(signed(m_bits)), Signal(signed(m_bits)), Signal()
        slots_done = Signal()

        qk_ok = ~qk_pend | ((loaders["q_load"].loaded != 0) & (qk_j < loaders["k_load"].loaded))
        pv_want = pv_pend & pv_started
        pv_ok = ~pv_want | (pv_j < loaders["v_load"].loaded)
        slot_end = in_slot & (tau == slot_len - 1)
        m.d.comb += slots_done.eq(~qk_pend & ~pv_pend)

        def begin_run():
            m.d.sync += [qk_pend.eq(1), pv_pend.eq(1), pv_started.eq(0), in_slot.eq(0),
                         qk_j.eq(0), pv_j.eq(0), qk_r.eq(0), pv_r.eq(0), qk_key0.eq(0), pv_key0.eq(0),
                         q_base.eq(0), a_base.eq(0), qk_srow.eq(0), pv_srow.eq(0), qk_half.eq(0),
                         pv_half.eq(0), k_released.eq(0), v_released.eq(0)]

        with m.If(in_slot):
            m.d.sync += tau.eq(tau + 1)
        with m.If(slot_end):
            m.d.sync += in_slot.eq(0)
            if not two_pass:
                m.d.sync += pv_started.eq(1)
            with m.If(qk_on):
                m.d.sync += [pvh_old.eq(qk_m_old), pvh_new.eq(qk_m_new), pvh_first.eq(qk_j == 0),
                             qk_half.eq(~qk_half)]
                with m.If(qk_r == R - 1):
                    m.d.sync += [qk_r.eq(0), qk_j.eq(qk_j + 1), qk_key0.eq(qk_key0 + Bc), q_base.eq(0),
                                 qk_srow.eq(0), k_released.eq(k_released + 1)]
                    with m.If(qk_key0 + Bc >= n_run):
                        m.d.sync += qk_pend.eq(0)
                        if two_pass:
                            m.d.sync += pv_started.eq(1)
                with m.Else():
                    m.d.sync += [qk_r.eq(qk_r + 1), q_base.eq(q_base + D),
                                 qk_srow.eq(qk_srow + (p.max_blocks * Bc if two_pass else 0))]
            with m.If(pv_on):
                m.d.sync += pv_half.eq(~pv_half)
                with m.If(pv_r == R - 1):
                    m.d.sync += [pv_r.eq(0), pv_j.eq(pv_j + 1), pv_key0.eq(pv_key0 + Bc), a_base.eq(0),
                                 pv_srow.eq(0), v_released.eq(v_released + 1)]
                    with m.If(pv_key0 + Bc >= n_run):
                        m.d.sync += pv_pend.eq(0)
                with m.Else():
                    m.d.sync += [pv_r.eq(pv_r + 1), a_base.eq(a_base + D),
                                 pv_srow.eq(pv_srow + (p.max_blocks * Bc if two_pass else 0))]

        # -------------------------------------------------------------- QK unit
        qt, qc = Signal(index_shape(Bc)), Signal(index_shape(D))
        q_issue = Signal()
        m.d.comb += q_issue.eq(in_slot & qk_on & (tau < issue))
        with m.If(q_issue):
            m.d.sync += [qc.eq(Mux(qc == D - 1, 0, qc + 1)), qt.eq(Mux(qc == D - 1, qt + 1, qt))]
        with m.If(~in_slot):
            m.d.sync += [qc.eq(0), qt.eq(0)]
        k_base = Mux(qk_j[0], issue, 0)
        m.d.comb += [qr.addr.eq(q_base + qc), kr.addr.eq(k_base + tau)]
        key = qk_key0 + qt
        key_ok = key < n_run
        if p.causal:
            key_ok &= key <= qpos_run + qk_r
        q_tag = Signal(data.StructLayout({"on": 1, "first": 1, "last": 1, "t": index_shape(Bc), "ok": 1}))
        m.d.comb += [q_tag.on.eq(q_issue), q_tag.first.eq(qc == 0), q_tag.last.eq(qc == D - 1),
                     q_tag.t.eq(qt), q_tag.ok.eq(key_ok)]
        qd, kd = Signal(L * p.q_bits), Signal(L * p.k_bits)
        m.d.sync += [qd.eq(qr.data), kd.eq(kr.data)]
        raw_bits = p.raw_score_bits
        products = []
        for i, (a, b) in enumerate(zip(_lanes(qd, L, p.q_bits), _lanes(kd, L, p.k_bits))):
            prod = Signal(signed(p.q_bits + p.k_bits), name=f"qk_prod{i}")
            m.d.sync += prod.eq(a * b)
            products.append(prod)
        tree, tree_lat = adder_tree(m, products, raw_bits)
        assert tree_lat == int(tree_latency(L))
        tag_acc = _delayed(m, q_tag, 3 + tree_lat, "qtag")
        s_acc = Signal(signed(raw_bits))
        m.d.sync += s_acc.eq(Mux(tag_acc.first, tree, s_acc + tree))
        tag_raw = _delayed(m, tag_acc, 1, "qtag_raw")
        sh = p.scale_frac - sf
        lat_s = int(prescale_latency(p.pipeline))
        if lat_s == 2:
            scaled = staged_product(m, s_acc, scale_run, "qk_scaled")
        else:
            scaled = Signal(signed(raw_bits + fx.SCALE_BITS + 1))
            m.d.sync += scaled.eq(s_acc * scale_run)
        y = Signal(signed(y_bits))
        m.d.sync += y.eq((scaled + (1 << (sh - 1))) >> sh)
        tag_y = _delayed(m, tag_raw, lat_s + 1, "qtag_y")
        write_s = tag_y.on & tag_y.last
        s_base = qk_srow + qk_key0 if two_pass else Mux(qk_half, Bc, 0)
        m.d.comb += [sw.en.eq(write_s), sw.addr.eq(s_base + tag_y.t), sw.data.eq(Cat(y, tag_y.ok))]
        block_max = Signal(signed(m_bits))
        with m.If(~in_slot):
            m.d.sync += block_max.eq(lowest)
        with m.Elif(write_s & tag_y.ok & (y > block_max)):
            m.d.sync += block_max.eq(y)
        # running max: read the old one at tau 0, combine two cycles after the last score lands
        max_ready = issue + 5 + tree_lat + lat_s
        bm_up = Signal(signed(m_bits))
        one = 1 << sf
        m.d.sync += bm_up.eq(((block_max + one - 1) >> sf) << sf if shift else block_max)
        with m.If(tau == 1):
            m.d.sync += qk_m_old.eq(mr.data.as_signed())
        with m.If(tau == max_ready + 1):
            m.d.sync += qk_m_new.eq(Mux((qk_j == 0) | (bm_up > qk_m_old), bm_up, qk_m_old))
        assert max_ready + 2 <= slot_len - 1
        m.d.comb += [mw.en.eq(slot_end & qk_on), mw.addr.eq(qk_r), mw.data.eq(qk_m_new.as_unsigned())]
        m.d.comb += mr.addr.eq(Mux(qk_on, qk_r, pv_r))

        # -------------------------------------------------------------- PV unit
        exp_x_bits = m_bits + 1
        kb = p.exp_index_bits
        exp = m.submodules.exp = Exp2Unit(
            x_bits=exp_x_bits, score_frac=sf, prob_frac=pf, index_bits=kb, pipeline=p.pipeline,
            tables=fx.pwl_coefficients(kb, pf) if p.pwl else (fx.table_entries(kb, pf),),
            frac_bits=int(fx.exp_frac(p.pwl, pf, sf)), cap=int(fx.exp_shift_cap(pf)))
        E = exp.latency
        pv_m_new = mr.data.as_signed() if two_pass else pvh_new
        pv_m_old = mr.data.as_signed() if two_pass else pvh_old
        pv_first = Signal()                      # the row's first block: no old state to rescale
        with m.If(tau == 0):
            m.d.sync += pv_first.eq(pv_j == 0)
        pt, pc = Signal(index_shape(Bc)), Signal(index_shape(D))
        v_addr = Signal(index_shape(2 * issue))
        v_chunk = Signal(index_shape(2 * issue))
        v_base = Mux(pv_j[0], issue, 0)
        p_issue = Signal()
        m.d.comb += p_issue.eq(in_slot & pv_on & (tau >= 2) & (tau < 2 + issue))
        with m.If(~in_slot):
            m.d.sync += [pt.eq(0), pc.eq(0), v_chunk.eq(0)]
        with m.Elif(tau == 1):
            m.d.sync += v_addr.eq(v_base)
        with m.Elif(p_issue):
            with m.If(pt == Bc - 1):
                m.d.sync += [pt.eq(0), pc.eq(pc + 1), v_chunk.eq(v_chunk + 1),
                             v_addr.eq(v_base + v_chunk + 1)]
            with m.Else():
                m.d.sync += [pt.eq(pt + 1), v_addr.eq(v_addr + D)]
        s_read_base = pv_srow + pv_key0 if two_pass else Mux(pv_half, Bc, 0)
        m.d.comb += [sr.addr.eq(s_read_base + pt), vr.addr.eq(v_addr)]
        p_tag = Signal(data.StructLayout({"on": 1, "t0": 1, "last": 1, "c0": 1, "c": index_shape(D)}))
        m.d.comb += [p_tag.on.eq(p_issue), p_tag.t0.eq(pt == 0), p_tag.last.eq(pt == Bc - 1),
                     p_tag.c0.eq(pc == 0), p_tag.c.eq(pc)]
        # alpha at tau 1, scores from tau 3 on: both through the exp unit's input register
        ex = Signal(signed(exp_x_bits))
        s_word = sr.data
        s_ok = s_word[y_bits]
        s_y = s_word[:y_bits].as_signed()
        with m.If(tau == 1):
            m.d.sync += ex.eq(pv_m_old - pv_m_new)
        with m.Else():
            m.d.sync += ex.eq(s_y - pv_m_new)
        m.d.comb += exp.x.eq(ex)
        alpha = Signal(unsigned(pf + 1))
        with m.If(in_slot & (tau == 2 + E)):
            m.d.sync += alpha.eq(Mux(pv_first, 0, exp.p))
        s_amount = Signal(range(a_bits + 1))
        if shift:
            gap = Signal(signed(exp_x_bits))
            m.d.comb += gap.eq((pv_m_new - pv_m_old) >> sf)
            with m.If(tau == 2):
                m.d.sync += s_amount.eq(Mux(gap > a_bits, a_bits, gap))
        l_old = Signal(unsigned(l_bits))
        with m.If(tau == 1):
            m.d.sync += l_old.eq(Mux(pv_j == 0, 0, lr.data))
        # the item issued at cycle i: S/V data at i+1, exp input at i+2, p at i+2+E
        ok_at_p = _delayed(m, s_ok, 1 + E, "pv_ok")
        tag_p = _delayed(m, p_tag, 2 + E, "ptag")
        vd = _delayed(m, vr.data, 1 + E, "pv_v")
        pm = Signal(unsigned(pf + 1))
        m.d.sync += pm.eq(Mux(ok_at_p, exp.p, 0))
        tag_m = _delayed(m, tag_p, 1, "ptag_m")
        vd_m = _delayed(m, vd, 1, "pv_vm")
        prods = []
        for i, v_lane in enumerate(_lanes(vd_m, L, p.v_bits)):
            prod = Signal(signed(pf + 1 + p.v_bits + 1), name=f"pv_prod{i}")
            m.d.sync += prod.eq(pm * v_lane)
            prods.append(prod)
        pm_d = _delayed(m, pm, 1, "pv_pm")
        tag_s = _delayed(m, tag_m, 1, "ptag_s")
        accp = [Signal(signed(a_bits), name=f"pv_sum{i}") for i in range(L)]
        psum = Signal(unsigned(l_bits))
        with m.If(tag_s.on):
            for acc_lane, prod in zip(accp, prods):
                m.d.sync += acc_lane.eq(Mux(tag_s.t0, prod, acc_lane + prod))
        with m.If(tag_s.on & tag_s.c0):
            m.d.sync += psum.eq(Mux(tag_s.t0, pm_d, psum + pm_d))
        # the old accumulators of the chunk are read as its last sum forms
        tag_r = _delayed(m, tag_s, 1, "ptag_r")
        old = _lanes(ar.data, L, a_bits)
        lat_r = int(rescale_latency(p.pipeline))
        sums = [_delayed(m, a, lat_r, f"pv_total{i}") for i, a in enumerate(accp)]
        psum_d = _delayed(m, psum, lat_r, "pv_psum")

        def rescale(value, factor, name: str):
            """``(value * alpha) >> prob_frac`` or ``value >> s``, registered ``lat_r`` times; zero in
            the first block (alpha is zero there; the shift result is masked)."""
            out = Signal(value.shape(), name=name)
            if shift:
                value = _delayed(m, value, lat_r - 1, f"{name}_mid")
                m.d.sync += out.eq(Mux(pv_first, 0, value >> s_amount))
            elif lat_r >= 2:
                m.d.comb += out.eq(staged_product(m, value, factor, f"{name}_prod", in_reg=lat_r == 3) >> pf)
            else:
                m.d.sync += out.eq((value * factor) >> pf)
            return out

        # copies of alpha, loaded one per cycle once it is known: well before the first chunk ends
        alphas = [alpha]
        if lat_r >= 2:
            alphas = [Signal.like(alpha, name=f"alpha{g}") for g in range(min(int(fanout_copies(L + 1, p.pipeline)),
                                                                              Bc + 1))]
            for g, copy in enumerate(alphas):
                with m.If(in_slot & (tau == 3 + E + g)):
                    m.d.sync += copy.eq(alpha)
        rescaled = [rescale(lane, alphas[i * len(alphas) // (L + 1)], f"pv_rescaled{i}") for i, lane in enumerate(old)]
        l_scaled = rescale(l_old, alphas[-1], "pv_l_rescaled")
        tag_w = _delayed(m, tag_r, lat_r, "ptag_w")
        m.d.comb += [
            aw.en.eq(tag_w.on & tag_w.last), aw.addr.eq(a_base + tag_w.c),
            aw.data.eq(Cat(*[(r + s)[:a_bits] for r, s in zip(rescaled, sums)])),
            lw.en.eq(tag_w.on & tag_w.last & tag_w.c0), lw.addr.eq(pv_r), lw.data.eq(l_scaled + psum_d),
        ]
        assert issue + 7 + E + lat_r <= slot_len

        # -------------------------------------------------------------- output normaliser
        norm = m.submodules.normaliser = RowNormaliser(
            rows=R, chunks=D, lanes=L, acc_bits=a_bits, l_bits=l_bits, recip_bits=p.recip_bits,
            out_frac=p.out_frac, out_bits=p.out_bits, pipeline=p.pipeline,
            copies=int(fanout_copies(L, p.pipeline)))
        assert norm.latency == int(output_latency(p.pipeline))
        outputting = Signal()
        wiring.connect(m, norm.o, wiring.flipped(self.o_stream))
        m.d.comb += [
            norm.active.eq(outputting), norm.l_data.eq(lr.data), norm.acc_data.eq(ar.data),
            lr.addr.eq(Mux(outputting, norm.l_addr, pv_r)),
            ar.addr.eq(Mux(outputting, norm.acc_addr, a_base + tag_s.c)),
            ar.en.eq(~outputting | norm.acc_en),
        ]

        # -------------------------------------------------------------- run FSM
        with m.FSM():
            with m.State("IDLE"):
                with m.If(accept):
                    begin_run()
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~in_slot):
                    with m.If(slots_done):
                        m.d.comb += norm.start.eq(1)
                        m.next = "OUT"
                    with m.Elif((qk_pend | pv_want) & qk_ok & pv_ok):
                        m.d.sync += [in_slot.eq(1), tau.eq(0), qk_on.eq(qk_pend), pv_on.eq(pv_want)]
            with m.State("OUT"):
                m.d.comb += [self.busy.eq(1), outputting.eq(1)]
                m.d.comb += self.done.eq(self.o_stream.valid & self.o_stream.ready & norm.last)
                with m.If(self.done):
                    with m.If(accept):
                        begin_run()
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
        raise ValueError(f"{name} must be {want}, not {x.shape}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"{name} codes must lie in {lo}..{hi}")
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
        raise ValueError(f"scale factor {factor:g} does not fit the 16-bit scale port with "
                         f"scale_frac={params.scale_frac}")
    return code


__all__ = ["AttentionParams", "AttentionEngine", "ExpKind", "Rescale", "Softmax", "build", "pack_q",
           "pack_k", "pack_v", "unpack_o", "scale_code"]
