"""The attention engine's units: the slot controller, the QK unit and the PV unit.

Work is cut into slots of one length (:meth:`SlotController.cycles`). In a slot
the QK unit computes one row's scores against one K block and the row's running
maximum; the PV unit turns one row's scores into probabilities and rescales and
accumulates that row's state. Each unit says how many cycles after the slot's
start it needs (its ``tail``), and the slot is as long as the longer of the two
(the exact cycle counts the cost model and the regression use). Each also states
the flip-flop bits it holds (``register_bits``, vectorised over the cost model's
columns); the tests count them in the unit's own Verilog.

``c`` in the vectorised functions is the column table of
:func:`cost_models.attention.prepare` (every derived width of the engine).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from generators import fixed_softmax as fx
from generators.widths import bits_for, ceil_div
from hw import index_shape
from hw.softmax import STAGE_SPLIT, Exp2Unit, adder_tree, is_staged, staged_product

Columns = Mapping[str, np.ndarray]


# ---------------------------------------------------------------------- latencies (vectorised)
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


def fanout_copies(lanes, pipeline) -> np.ndarray:
    """Copies of a factor every lane's multiplier reads (alpha, the row reciprocal): one per four
    lanes when pipelined, so no register drives more than eight hard multipliers."""
    return np.where(np.asarray(pipeline) >= 1, ceil_div(lanes, 4), 1)


def index_bits(n) -> np.ndarray:
    """Width of an ``index_shape(n)`` signal."""
    return bits_for(np.maximum(n, 2))


def staged_bits(a_bits, b_bits) -> np.ndarray:
    """Register bits of :func:`hw.softmax.staged_product`."""
    out = a_bits + b_bits + 1
    split = (a_bits - STAGE_SPLIT + b_bits + 1) + (STAGE_SPLIT + b_bits)
    return out + np.where(is_staged(a_bits), split, out)


def _tree_registers(lanes: int) -> int:
    """Registers :func:`hw.softmax.adder_tree` places for ``lanes`` inputs (output included)."""
    count, depth, level = 1, 0, lanes
    while level > 1:
        level, depth = -(-level // 2), depth + 1
        if depth % 2 == 0 and level > 1:
            count += level
    return count


def delayed(m: Module, value, cycles: int, name: str):
    """``value`` seen ``cycles`` clock edges later (free-running registers)."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def lanes_of(word, lanes: int, bits: int, is_signed: bool = True) -> list:
    out = []
    for i in range(lanes):
        part = word[i * bits:(i + 1) * bits]
        out.append(part.as_signed() if is_signed else part)
    return out


def _s_rows(p) -> int:
    return p.q_rows * p.max_blocks * p.kv_block if p.two_pass else 2 * p.kv_block


# ---------------------------------------------------------------------- slot controller
class SlotController(wiring.Component):
    """Which QK and PV jobs run in the current slot, where their operands and state live,
    and when a slot may start (its K/V block loaded). ``begin`` restarts the schedule for a
    run of ``n`` keys; ``go`` starts a slot (the run FSM raises it when ``ready``); the QK
    job's old and new running maxima pass to the PV job one slot later (online)."""

    @staticmethod
    def cycles(kv_block, chunks, lanes, pwl, pipeline) -> np.ndarray:
        """Cycles of one slot, including the boundary cycle that starts the next."""
        issue = np.asarray(kv_block, dtype=np.int64) * chunks
        return issue + np.maximum(QKUnit.tail(lanes, pipeline), PVUnit.tail(pwl, pipeline)) + 1

    @staticmethod
    def register_bits(c: Columns) -> np.ndarray:
        rows, bc, chunks = c["q_rows"], c["kv_block"], c["chunks"]
        blocks = bits_for(c["max_blocks"] + 1)
        key_span = bits_for(c["max_blocks"] * bc + 1)
        s_span = index_bits(np.where(c["two_pass"], rows * c["max_blocks"] * bc, 2 * bc))
        return (2 * blocks + 6 + bits_for(c["slot"]) + 2 * blocks + 2 * index_bits(rows) + 2 * key_span
                + 2 * index_bits(rows * chunks) + 2 * s_span + 2 + 2 * c["m_bits"])

    def __init__(self, p):
        self.p = p
        blk = range(p.max_blocks + 1)
        m_shape = signed(int(fx.max_bits(p.score_bits)))
        s_span = index_shape(max(_s_rows(p), 2))
        key_span = range(p.max_blocks * p.kv_block + 1)
        super().__init__({
            "begin": In(1), "go": In(1), "n": In(range(p.max_seq_len + 1)),
            "q_loaded": In(range(2)), "k_loaded": In(blk), "v_loaded": In(blk),
            "qk_m_old": In(m_shape), "qk_m_new": In(m_shape),
            "in_slot": Out(1), "tau": Out(range(p.slot_cycles)), "slot_end": Out(1),
            "qk_on": Out(1), "pv_on": Out(1), "ready": Out(1), "done": Out(1),
            "qk_j": Out(blk), "pv_j": Out(blk), "qk_r": Out(index_shape(p.q_rows)), "pv_r": Out(index_shape(p.q_rows)),
            "qk_key0": Out(key_span), "pv_key0": Out(key_span),
            "q_base": Out(index_shape(p.q_rows * p.chunks)), "a_base": Out(index_shape(p.q_rows * p.chunks)),
            "qk_srow": Out(s_span), "pv_srow": Out(s_span), "qk_half": Out(1), "pv_half": Out(1),
            "pvh_old": Out(m_shape), "pvh_new": Out(m_shape), "k_released": Out(blk), "v_released": Out(blk),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        R, Bc = p.q_rows, p.kv_block
        two_pass = p.two_pass
        stride = p.max_blocks * Bc if two_pass else 0
        qk_pend, pv_pend, pv_started = Signal(), Signal(), Signal()
        pv_want = pv_pend & pv_started
        qk_ok = ~qk_pend | ((self.q_loaded != 0) & (self.qk_j < self.k_loaded))
        pv_ok = ~pv_want | (self.pv_j < self.v_loaded)
        m.d.comb += [
            self.slot_end.eq(self.in_slot & (self.tau == p.slot_cycles - 2)),
            self.done.eq(~qk_pend & ~pv_pend),
            self.ready.eq((qk_pend | pv_want) & qk_ok & pv_ok),
        ]
        with m.If(self.in_slot):
            m.d.sync += self.tau.eq(self.tau + 1)
        with m.If(self.slot_end):
            m.d.sync += self.in_slot.eq(0)
            if not two_pass:
                m.d.sync += pv_started.eq(1)
            with m.If(self.qk_on):
                m.d.sync += [self.pvh_old.eq(self.qk_m_old), self.pvh_new.eq(self.qk_m_new),
                             self.qk_half.eq(~self.qk_half)]
                with m.If(self.qk_r == R - 1):
                    m.d.sync += [self.qk_r.eq(0), self.qk_j.eq(self.qk_j + 1), self.qk_key0.eq(self.qk_key0 + Bc),
                                 self.q_base.eq(0), self.qk_srow.eq(0), self.k_released.eq(self.k_released + 1)]
                    with m.If(self.qk_key0 + Bc >= self.n):
                        m.d.sync += qk_pend.eq(0)
                        if two_pass:
                            m.d.sync += pv_started.eq(1)
                with m.Else():
                    m.d.sync += [self.qk_r.eq(self.qk_r + 1), self.q_base.eq(self.q_base + p.chunks),
                                 self.qk_srow.eq(self.qk_srow + stride)]
            with m.If(self.pv_on):
                m.d.sync += self.pv_half.eq(~self.pv_half)
                with m.If(self.pv_r == R - 1):
                    m.d.sync += [self.pv_r.eq(0), self.pv_j.eq(self.pv_j + 1), self.pv_key0.eq(self.pv_key0 + Bc),
                                 self.a_base.eq(0), self.pv_srow.eq(0), self.v_released.eq(self.v_released + 1)]
                    with m.If(self.pv_key0 + Bc >= self.n):
                        m.d.sync += pv_pend.eq(0)
                with m.Else():
                    m.d.sync += [self.pv_r.eq(self.pv_r + 1), self.a_base.eq(self.a_base + p.chunks),
                                 self.pv_srow.eq(self.pv_srow + stride)]
        with m.If(self.go):
            m.d.sync += [self.in_slot.eq(1), self.tau.eq(0), self.qk_on.eq(qk_pend), self.pv_on.eq(pv_want)]
        with m.If(self.begin):
            m.d.sync += [qk_pend.eq(1), pv_pend.eq(1), pv_started.eq(0), self.in_slot.eq(0)]
            m.d.sync += [s.eq(0) for s in (self.qk_j, self.pv_j, self.qk_r, self.pv_r, self.qk_key0, self.pv_key0,
                                           self.q_base, self.a_base, self.qk_srow, self.pv_srow, self.qk_half,
                                           self.pv_half, self.k_released, self.v_released)]
        return m


# ---------------------------------------------------------------------- QK unit
class QKUnit(wiring.Component):
    """One row's ``kv_block`` scores against a K block: ``lanes`` products per cycle into an
    adder tree, scaled and rounded into the score buffer, and the row's running maximum
    (read at tau 1, the new one ready two cycles after the last score lands)."""

    @staticmethod
    def tail(lanes, pipeline) -> np.ndarray:
        """Cycles after the last operand issue until the new maximum is written."""
        return 8 + tree_latency(lanes) + prescale_latency(pipeline)

    @staticmethod
    def register_bits(c: Columns) -> np.ndarray:
        lanes, raw = c["lanes"], c["raw_bits"]
        tl, lat_s = tree_latency(lanes), prescale_latency(c["pipeline"])
        tree = np.vectorize(_tree_registers)(lanes) * raw
        q_tag = 4 + index_bits(c["kv_block"])
        scaled = np.where(lat_s == 2, staged_bits(raw, fx.SCALE_BITS), raw + fx.SCALE_BITS + 1)
        counters = index_bits(c["kv_block"]) + index_bits(c["chunks"])
        return (2 * lanes * (c["q_bits"] + c["k_bits"]) + tree + q_tag * (3 + tl + 1 + lat_s + 1) + raw + scaled
                + c["y_bits"] + 4 * c["m_bits"] + counters)

    def __init__(self, p):
        self.p = p
        L = p.lanes
        m_shape = signed(int(fx.max_bits(p.score_bits)))
        super().__init__({
            "in_slot": In(1), "tau": In(range(p.slot_cycles)), "on": In(1), "slot_end": In(1),
            "j": In(range(p.max_blocks + 1)), "r": In(index_shape(p.q_rows)),
            "key0": In(range(p.max_blocks * p.kv_block + 1)), "q_base": In(index_shape(p.q_rows * p.chunks)),
            "srow": In(index_shape(max(_s_rows(p), 2))), "half": In(1),
            "n": In(range(p.max_seq_len + 1)), "q_pos": In(range(max(p.max_seq_len, 2))),
            "scale": In(unsigned(fx.SCALE_BITS)),
            "q_data": In(L * p.q_bits), "k_data": In(L * p.k_bits), "m_data": In(m_shape.width),
            "q_addr": Out(index_shape(p.q_rows * p.chunks)), "k_addr": Out(index_shape(2 * p.kv_block * p.chunks)),
            "s_en": Out(1), "s_addr": Out(index_shape(max(_s_rows(p), 2))), "s_data": Out(p.score_bits + 1),
            "m_old": Out(m_shape), "m_new": Out(m_shape),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        D, Bc, L, sf = p.chunks, p.kv_block, p.lanes, p.score_frac
        issue = Bc * D
        y_bits = p.score_bits
        m_bits = int(fx.max_bits(y_bits))
        lowest = -(1 << (m_bits - 1))
        qt, qc = Signal(index_shape(Bc)), Signal(index_shape(D))
        q_issue = Signal()
        m.d.comb += q_issue.eq(self.in_slot & self.on & (self.tau < issue))
        with m.If(q_issue):
            m.d.sync += [qc.eq(Mux(qc == D - 1, 0, qc + 1)), qt.eq(Mux(qc == D - 1, qt + 1, qt))]
        with m.If(~self.in_slot):
            m.d.sync += [qc.eq(0), qt.eq(0)]
        k_base = Mux(self.j[0], issue, 0)
        m.d.comb += [self.q_addr.eq(self.q_base + qc), self.k_addr.eq(k_base + self.tau)]
        key = self.key0 + qt
        key_ok = key < self.n
        if p.causal:
            key_ok &= key <= self.q_pos + self.r
        q_tag = Signal(data.StructLayout({"on": 1, "first": 1, "last": 1, "t": index_shape(Bc), "ok": 1}))
        m.d.comb += [q_tag.on.eq(q_issue), q_tag.first.eq(qc == 0), q_tag.last.eq(qc == D - 1),
                     q_tag.t.eq(qt), q_tag.ok.eq(key_ok)]
        qd, kd = Signal(L * p.q_bits), Signal(L * p.k_bits)
        m.d.sync += [qd.eq(self.q_data), kd.eq(self.k_data)]
        raw_bits = p.raw_score_bits
        products = []
        for i, (a, b) in enumerate(zip(lanes_of(qd, L, p.q_bits), lanes_of(kd, L, p.k_bits))):
            prod = Signal(signed(p.q_bits + p.k_bits), name=f"qk_prod{i}")
            m.d.sync += prod.eq(a * b)
            products.append(prod)
        tree, tree_lat = adder_tree(m, products, raw_bits)
        assert tree_lat == int(tree_latency(L))
        tag_acc = delayed(m, q_tag, 3 + tree_lat, "qtag")
        s_acc = Signal(signed(raw_bits))
        m.d.sync += s_acc.eq(Mux(tag_acc.first, tree, s_acc + tree))
        tag_raw = delayed(m, tag_acc, 1, "qtag_raw")
        sh = p.scale_frac - sf
        lat_s = int(prescale_latency(p.pipeline))
        if lat_s == 2:
            scaled = staged_product(m, s_acc, self.scale, "qk_scaled")
        else:
            scaled = Signal(signed(raw_bits + fx.SCALE_BITS + 1))
            m.d.sync += scaled.eq(s_acc * self.scale)
        y = Signal(signed(y_bits))
        m.d.sync += y.eq((scaled + (1 << (sh - 1))) >> sh)
        tag_y = delayed(m, tag_raw, lat_s + 1, "qtag_y")
        write_s = tag_y.on & tag_y.last
        s_base = self.srow + self.key0 if p.two_pass else Mux(self.half, Bc, 0)
        m.d.comb += [self.s_en.eq(write_s), self.s_addr.eq(s_base + tag_y.t), self.s_data.eq(Cat(y, tag_y.ok))]
        block_max = Signal(signed(m_bits))
        with m.If(~self.in_slot):
            m.d.sync += block_max.eq(lowest)
        with m.Elif(write_s & tag_y.ok & (y > block_max)):
            m.d.sync += block_max.eq(y)
        # running max: read the old one at tau 0, combine two cycles after the last score lands
        max_ready = issue + 5 + tree_lat + lat_s
        bm_up = Signal(signed(m_bits))
        one = 1 << sf
        m.d.sync += bm_up.eq(((block_max + one - 1) >> sf) << sf if p.rescale_shift else block_max)
        with m.If(self.tau == 1):
            m.d.sync += self.m_old.eq(self.m_data.as_signed())
        with m.If(self.tau == max_ready + 1):
            m.d.sync += self.m_new.eq(Mux((self.j == 0) | (bm_up > self.m_old), bm_up, self.m_old))
        assert max_ready + 2 <= p.slot_cycles - 2
        return m


# ---------------------------------------------------------------------- PV unit
class PVUnit(wiring.Component):
    """One row's PV job: probabilities ``p = exp2(s - m)`` of the block's scores, the rescale
    factor ``alpha = exp2(m_old - m_new)`` (or a shift), ``lanes`` products ``p * v`` per cycle,
    and the row's accumulators and denominator rescaled and written back per chunk."""

    @staticmethod
    def tail(pwl, pipeline) -> np.ndarray:
        """Cycles after the last operand issue until the last accumulator is written."""
        return 7 + exp_latency(pwl, pipeline) + rescale_latency(pipeline)

    @staticmethod
    def register_bits(c: Columns) -> np.ndarray:
        lanes, bc, chunks = c["lanes"], c["kv_block"], c["chunks"]
        vb, pf, mb, lb, ab = c["v_bits"], c["prob_frac"], c["m_bits"], c["l_bits"], c["acc_bits"]
        lat_r = rescale_latency(c["pipeline"])
        e_lat = exp_latency(c["pwl"], c["pipeline"])
        p_tag = 4 + index_bits(chunks)
        in_reg = lat_r == 3
        rescale_lane = np.where(c["shift"], ab * lat_r, np.where(lat_r >= 2, staged_bits(ab, pf + 1) + in_reg * ab, ab))
        rescale_l = np.where(c["shift"], lb * lat_r, np.where(lat_r >= 2, staged_bits(lb, pf + 1) + in_reg * lb, lb))
        alpha_copies = np.where(lat_r >= 2, np.minimum(fanout_copies(lanes + 1, c["pipeline"]), bc + 1), 0)
        counters = 1 + index_bits(bc) + index_bits(chunks) + 2 * index_bits(2 * bc * chunks)
        return ((mb + 1) + (pf + 1) + np.where(c["shift"], bits_for(ab + 1), 0) + lb + (1 + e_lat) + p_tag * (2 + e_lat + 3 + lat_r)
                + lanes * vb * (2 + e_lat) + 2 * (pf + 1) + lanes * (pf + vb + 2) + lanes * ab + lb
                + lanes * rescale_lane + rescale_l + lanes * ab * lat_r + lb * lat_r + alpha_copies * (pf + 1)
                + counters)

    def __init__(self, p):
        self.p = p
        L = p.lanes
        m_shape = signed(int(fx.max_bits(p.score_bits)))
        self.exp = Exp2Unit(
            x_bits=m_shape.width + 1, score_frac=p.score_frac, prob_frac=p.prob_frac, index_bits=p.exp_index_bits,
            pipeline=p.pipeline, tables=fx.pwl_coefficients(p.exp_index_bits, p.prob_frac) if p.pwl
            else (fx.table_entries(p.exp_index_bits, p.prob_frac),),
            frac_bits=int(fx.exp_frac(p.pwl, p.prob_frac, p.score_frac)), cap=int(fx.exp_shift_cap(p.prob_frac)))
        super().__init__({
            "in_slot": In(1), "tau": In(range(p.slot_cycles)), "on": In(1),
            "j": In(range(p.max_blocks + 1)), "r": In(index_shape(p.q_rows)),
            "key0": In(range(p.max_blocks * p.kv_block + 1)), "a_base": In(index_shape(p.q_rows * p.chunks)),
            "srow": In(index_shape(max(_s_rows(p), 2))), "half": In(1),
            "m_old": In(m_shape), "m_new": In(m_shape),
            "s_data": In(p.score_bits + 1), "v_data": In(L * p.v_bits),
            "l_data": In(p.denominator_bits), "acc_data": In(L * p.acc_bits),
            "s_addr": Out(index_shape(max(_s_rows(p), 2))), "v_addr": Out(index_shape(2 * p.kv_block * p.chunks)),
            "acc_addr": Out(index_shape(p.q_rows * p.chunks)),
            "acc_en": Out(1), "acc_w_addr": Out(index_shape(p.q_rows * p.chunks)), "acc_w_data": Out(L * p.acc_bits),
            "l_en": Out(1), "l_w_addr": Out(index_shape(p.q_rows)), "l_w_data": Out(p.denominator_bits),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        D, Bc, L = p.chunks, p.kv_block, p.lanes
        issue = Bc * D
        y_bits = p.score_bits
        l_bits, a_bits, pf, sf = p.denominator_bits, p.acc_bits, p.prob_frac, p.score_frac
        exp_x_bits = int(fx.max_bits(y_bits)) + 1
        shift = p.rescale_shift
        exp = m.submodules.exp = self.exp
        E = exp.latency
        pv_first = Signal()                      # the row's first block: no old state to rescale
        with m.If(self.tau == 0):
            m.d.sync += pv_first.eq(self.j == 0)
        pt, pc = Signal(index_shape(Bc)), Signal(index_shape(D))
        v_addr = Signal(index_shape(2 * issue))
        v_chunk = Signal(index_shape(2 * issue))
        v_base = Mux(self.j[0], issue, 0)
        p_issue = Signal()
        m.d.comb += p_issue.eq(self.in_slot & self.on & (self.tau >= 2) & (self.tau < 2 + issue))
        with m.If(~self.in_slot):
            m.d.sync += [pt.eq(0), pc.eq(0), v_chunk.eq(0)]
        with m.Elif(self.tau == 1):
            m.d.sync += v_addr.eq(v_base)
        with m.Elif(p_issue):
            with m.If(pt == Bc - 1):
                m.d.sync += [pt.eq(0), pc.eq(pc + 1), v_chunk.eq(v_chunk + 1), v_addr.eq(v_base + v_chunk + 1)]
            with m.Else():
                m.d.sync += [pt.eq(pt + 1), v_addr.eq(v_addr + D)]
        s_read_base = self.srow + self.key0 if p.two_pass else Mux(self.half, Bc, 0)
        m.d.comb += [self.s_addr.eq(s_read_base + pt), self.v_addr.eq(v_addr)]
        p_tag = Signal(data.StructLayout({"on": 1, "t0": 1, "last": 1, "c0": 1, "c": index_shape(D)}))
        m.d.comb += [p_tag.on.eq(p_issue), p_tag.t0.eq(pt == 0), p_tag.last.eq(pt == Bc - 1),
                     p_tag.c0.eq(pc == 0), p_tag.c.eq(pc)]
        # alpha at tau 1, scores from tau 3 on: both through the exp unit's input register
        ex = Signal(signed(exp_x_bits))
        s_ok = self.s_data[y_bits]
        s_y = self.s_data[:y_bits].as_signed()
        with m.If(self.tau == 1):
            m.d.sync += ex.eq(self.m_old - self.m_new)
        with m.Else():
            m.d.sync += ex.eq(s_y - self.m_new)
        m.d.comb += exp.x.eq(ex)
        alpha = Signal(unsigned(pf + 1))
        with m.If(self.in_slot & (self.tau == 2 + E)):
            m.d.sync += alpha.eq(Mux(pv_first, 0, exp.p))
        s_amount = Signal(range(a_bits + 1))
        if shift:
            gap = Signal(signed(exp_x_bits))
            m.d.comb += gap.eq((self.m_new - self.m_old) >> sf)
            with m.If(self.tau == 2):
                m.d.sync += s_amount.eq(Mux(gap > a_bits, a_bits, gap))
        l_old = Signal(unsigned(l_bits))
        with m.If(self.tau == 1):
            m.d.sync += l_old.eq(Mux(self.j == 0, 0, self.l_data))
        # the item issued at cycle i: S/V data at i+1, exp input at i+2, p at i+2+E
        ok_at_p = delayed(m, s_ok, 1 + E, "pv_ok")
        tag_p = delayed(m, p_tag, 2 + E, "ptag")
        vd = delayed(m, self.v_data, 1 + E, "pv_v")
        pm = Signal(unsigned(pf + 1))
        m.d.sync += pm.eq(Mux(ok_at_p, exp.p, 0))
        tag_m = delayed(m, tag_p, 1, "ptag_m")
        vd_m = delayed(m, vd, 1, "pv_vm")
        prods = []
        for i, v_lane in enumerate(lanes_of(vd_m, L, p.v_bits)):
            prod = Signal(signed(pf + 1 + p.v_bits + 1), name=f"pv_prod{i}")
            m.d.sync += prod.eq(pm * v_lane)
            prods.append(prod)
        pm_d = delayed(m, pm, 1, "pv_pm")
        tag_s = delayed(m, tag_m, 1, "ptag_s")
        accp = [Signal(signed(a_bits), name=f"pv_sum{i}") for i in range(L)]
        psum = Signal(unsigned(l_bits))
        with m.If(tag_s.on):
            for acc_lane, prod in zip(accp, prods):
                m.d.sync += acc_lane.eq(Mux(tag_s.t0, prod, acc_lane + prod))
        with m.If(tag_s.on & tag_s.c0):
            m.d.sync += psum.eq(Mux(tag_s.t0, pm_d, psum + pm_d))
        # the old accumulators of the chunk are read as its last sum forms
        m.d.comb += self.acc_addr.eq(self.a_base + tag_s.c)
        tag_r = delayed(m, tag_s, 1, "ptag_r")
        old = lanes_of(self.acc_data, L, a_bits)
        lat_r = int(rescale_latency(p.pipeline))
        sums = [delayed(m, a, lat_r, f"pv_total{i}") for i, a in enumerate(accp)]
        psum_d = delayed(m, psum, lat_r, "pv_psum")

        def rescale(value, factor, name: str):
            """``(value * alpha) >> prob_frac`` or ``value >> s``, registered ``lat_r`` times; zero in
            the first block (alpha is zero there; the shift result is masked)."""
            out = Signal(value.shape(), name=name)
            if shift:
                value = delayed(m, value, lat_r - 1, f"{name}_mid")
                m.d.sync += out.eq(Mux(pv_first, 0, value >> s_amount))
            elif lat_r >= 2:
                m.d.comb += out.eq(staged_product(m, value, factor, f"{name}_prod", in_reg=lat_r == 3) >> pf)
            else:
                m.d.sync += out.eq((value * factor) >> pf)
            return out

        # copies of alpha, loaded one per cycle once it is known: well before the first chunk ends
        alphas = [alpha]
        if lat_r >= 2:
            alphas = [Signal.like(alpha, name=f"alpha{g}")
                      for g in range(min(int(fanout_copies(L + 1, p.pipeline)), Bc + 1))]
            for g, copy in enumerate(alphas):
                with m.If(self.in_slot & (self.tau == 3 + E + g)):
                    m.d.sync += copy.eq(alpha)
        rescaled = [rescale(lane, alphas[i * len(alphas) // (L + 1)], f"pv_rescaled{i}") for i, lane in enumerate(old)]
        l_scaled = rescale(l_old, alphas[-1], "pv_l_rescaled")
        tag_w = delayed(m, tag_r, lat_r, "ptag_w")
        m.d.comb += [
            self.acc_en.eq(tag_w.on & tag_w.last), self.acc_w_addr.eq(self.a_base + tag_w.c),
            self.acc_w_data.eq(Cat(*[(r + s)[:a_bits] for r, s in zip(rescaled, sums)])),
            self.l_en.eq(tag_w.on & tag_w.last & tag_w.c0), self.l_w_addr.eq(self.r),
            self.l_w_data.eq(l_scaled + psum_d),
        ]
        assert issue + 7 + E + lat_r <= p.slot_cycles - 1
        return m
