"""Fixed-point softmax units: a pipelined exp2, a normalised reciprocal, the row normaliser,
a pipelined adder tree and staged products.

Each has a fixed latency (a Python property), so the engine that uses them
can schedule around them and its cycle count stays a closed form. The
number formats and tables come from the family (the attention engine's are
in :mod:`generators.fixed_softmax`); these blocks only implement them.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw import index_shape


class Exp2Unit(wiring.Component):
    """``p = 2^x`` for ``x <= 0`` with ``score_frac`` fraction bits; one result per cycle.

    Stages: split ``x`` into ``-u`` (clamped) and the fraction's index and
    remainder; read the coefficient ROM; form ``2^v`` (PWL: ``(A << sf) + B t``);
    shift right by the constant part plus ``-u``; round half up.
    ``pipeline >= 1`` registers the PWL product before the add;
    ``pipeline >= 2`` splits the barrel shifter into two registered halves.
    ``tables`` are ``(A, B)`` chord coefficients (PWL) or ``(T,)`` (table), with
    ``frac_bits`` fraction bits in ``2^v``; ``cap`` is the largest shift applied.
    """

    def __init__(self, *, x_bits: int, score_frac: int, prob_frac: int, index_bits: int,
                 tables: tuple[tuple[int, ...], ...], frac_bits: int, cap: int, pipeline: int):
        self.sf, self.pf, self.kb, self.pipeline = score_frac, prob_frac, index_bits, pipeline
        self.pwl = len(tables) == 2
        self.tables, self.frac_bits, self.cap = tables, frac_bits, cap
        super().__init__({"x": In(signed(x_bits)), "p": Out(unsigned(prob_frac + 1))})

    @property
    def latency(self) -> int:
        return 5 + (1 if self.pwl and self.pipeline >= 1 else 0) + (1 if self.pipeline >= 2 else 0)

    def elaborate(self, platform):
        m = Module()
        sf, kb = self.sf, self.kb
        rem_bits = sf - kb
        # 1: split
        neg_u = Signal(range(self.cap + 1))
        k = Signal(index_shape(1 << kb))
        t = Signal(max(rem_bits, 1))
        # -u saturates at cap; below that only the low bits of u matter, so no wide negation
        # or comparison shares the cycle: x < -cap * 2^sf is a comparison with a constant
        low = self.x[sf:sf + len(neg_u) + 1]
        m.d.sync += [neg_u.eq(Mux(self.x < -(self.cap << sf), self.cap, (-low)[:len(neg_u)])),
                     k.eq(self.x[rem_bits:sf] if kb else 0),
                     t.eq(self.x[:rem_bits] if rem_bits else 0)]
        # 2: coefficient ROM
        def rom(values):          # at least two rows: a one-row memory has a zero-bit address
            values = tuple(values) * (2 if len(values) == 1 else 1)
            return Memory(shape=unsigned(max(1, max(values).bit_length())), depth=len(values), init=values)

        if self.pwl:
            rom_a, rom_b = m.submodules.rom_a, m.submodules.rom_b = rom(self.tables[0]), rom(self.tables[1])
            ports = [rom_a.read_port(), rom_b.read_port()]
        else:
            table = m.submodules.rom = rom(self.tables[0])
            ports = [table.read_port()]
        for port in ports:
            m.d.comb += port.addr.eq(k)
        t2, sh2 = Signal.like(t), Signal.like(neg_u)
        m.d.sync += [t2.eq(t), sh2.eq(neg_u)]
        # 3: 2^v with frac_bits fraction bits
        frac = Signal(unsigned(self.frac_bits + 2))
        sh3 = Signal.like(neg_u)
        if self.pwl:
            a_val, b_val = ports[0].data, ports[1].data
            if self.pipeline >= 1:
                prod, a_reg, sh_mid = Signal(len(b_val) + len(t2)), Signal.like(a_val), Signal.like(neg_u)
                m.d.sync += [prod.eq(b_val * t2), a_reg.eq(a_val), sh_mid.eq(sh2)]
                m.d.sync += [frac.eq((a_reg << sf) + prod), sh3.eq(sh_mid)]
            else:
                m.d.sync += [frac.eq((a_val << sf) + b_val * t2), sh3.eq(sh2)]
        else:
            m.d.sync += [frac.eq(ports[0].data), sh3.eq(sh2)]
        # 4: shift by the constant part and -u, keeping one bit for rounding
        base = self.frac_bits - self.pf - 1
        shifted = Signal(unsigned(self.pf + 3))
        if self.pipeline >= 2:
            low_bits = (self.cap + 1).bit_length() // 2
            half = Signal.like(frac)
            sh_hi = Signal(range(self.cap + 1))
            m.d.sync += [half.eq((frac >> base) >> sh3[:low_bits]), sh_hi.eq(sh3)]
            m.d.sync += shifted.eq(half >> (sh_hi[low_bits:] << low_bits))
        else:
            m.d.sync += shifted.eq((frac >> base) >> sh3)
        # 5: round half up
        m.d.sync += self.p.eq((shifted + 1) >> 1)
        return m


class Reciprocal(wiring.Component):
    """``r = floor(2^(L-1+R) / (l << (L-1-n)))`` and ``n = msb(l)`` for ``l >= 1``, sequentially.

    ``start`` samples ``l``; ``r`` and ``n`` are valid ``latency`` cycles after
    the start cycle and stay until the next start. The leading one is found by
    a binary search, one shift step per cycle, then a restoring divider makes
    one quotient bit per cycle: the numerator is a power of two, so only the
    remainder register moves. Once per output row, so a short cycle beats area.
    """

    def __init__(self, *, l_bits: int, recip_bits: int):
        self.l_bits, self.recip_bits = l_bits, recip_bits
        self.shifts = [1 << i for i in reversed(range(max(l_bits - 1, 1).bit_length()))]
        super().__init__({"start": In(1), "l": In(unsigned(l_bits)),
                          "r": Out(unsigned(recip_bits + 1)), "n": Out(range(l_bits))})

    @property
    def latency(self) -> int:
        return len(self.shifts) + self.recip_bits + 3

    def elaborate(self, platform):
        m = Module()
        width = self.l_bits
        norm = Signal(unsigned(width))
        zeros = Signal(range(width))
        rem = Signal(unsigned(width + 1))
        step = Signal(range(self.latency + 1))
        first_div = len(self.shifts) + 2
        m.d.comb += self.n.eq(width - 1 - zeros)
        with m.If(self.start):
            m.d.sync += [norm.eq(self.l), zeros.eq(0), step.eq(1)]
        with m.Elif(step != 0):
            m.d.sync += step.eq(Mux(step == self.latency - 1, 0, step + 1))
            with m.Switch(step):
                for i, s in enumerate(self.shifts):
                    with m.Case(i + 1):
                        with m.If(norm[width - s:] == 0):
                            m.d.sync += [norm.eq(norm << s), zeros.eq(zeros + s)]
                with m.Case(first_div - 1):
                    m.d.sync += [rem.eq(1 << (width - 1)), self.r.eq(0)]
                with m.Default():
                    fits = rem >= norm
                    m.d.sync += [self.r.eq((self.r << 1) | fits), rem.eq(Mux(fits, rem - norm, rem) << 1)]
        return m


def adder_tree(m: Module, values: list, width: int, levels_per_stage: int = 2) -> tuple[Signal, int]:
    """Sum ``values`` with a register after every ``levels_per_stage`` levels and at the output.

    Returns the registered sum and its latency in cycles.
    """
    level, latency, depth = list(values), 0, 0
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])
        depth += 1
        if depth % levels_per_stage == 0 and len(pairs) > 1:
            regs = [Signal(signed(width), name=f"tree_l{depth}_{i}") for i in range(len(pairs))]
            m.d.sync += [r.eq(v) for r, v in zip(regs, pairs)]
            pairs, latency = regs, latency + 1
        level = pairs
    out = Signal(signed(width), name="tree_sum")
    m.d.sync += out.eq(level[0])
    return out, latency + 1


STAGE_SPLIT = 17
"""Low bits of ``a`` that :func:`staged_product` multiplies on their own (an unsigned 17-bit
slice is an 18-bit signed operand: one DSP48 or MULT18X18D port)."""


def is_staged(a_bits, split: int = STAGE_SPLIT):
    """Whether :func:`staged_product` cuts an ``a_bits``-wide ``a`` in two (ints or arrays)."""
    return a_bits > split + 1


def staged_product(m: Module, a, b, name: str, *, en=None, split: int = STAGE_SPLIT,
                   in_reg: bool = False) -> Signal:
    """``a * b`` (``b`` unsigned) in two registered steps (three with ``in_reg``).

    The low ``split`` bits and the rest of ``a`` each meet ``b`` in their own
    hard multiplier; the partial products are registered before they are
    added, so no cycle holds a multiplier and a wide carry chain in series.
    ``in_reg`` registers ``a`` first, so the multiplier's input does not
    share a cycle with the logic that produced it. ``en`` (optional) holds every step.
    """
    a = Value.cast(a)
    width = len(a) + len(b) + 1
    out = Signal(signed(width), name=name)
    steps = []
    if in_reg:
        held = Signal(a.shape(), name=f"{name}_in")
        steps.append(held.eq(a))
        a = held
    if not is_staged(len(a), split):
        prod = Signal(signed(width), name=f"{name}_p")
        steps += [prod.eq(a * b), out.eq(prod)]
    else:
        lo = Signal(unsigned(split + len(b)), name=f"{name}_lo")
        top = a[split:].as_signed() if a.shape().signed else a[split:]
        hi = Signal(signed(len(a) - split + len(b) + 1), name=f"{name}_hi")
        steps += [lo.eq(a[:split] * b), hi.eq(top * b), out.eq((hi << split) + lo)]
    if en is None:
        m.d.sync += steps
    else:
        with m.If(en):
            m.d.sync += steps
    return out


class RowNormaliser(wiring.Component):
    """Streams ``rows x chunks`` accumulator words out as ``acc / l``, one row reciprocal each.

    ``start`` begins a pass over rows ``0 .. rows-1``: per row, read ``l``, form
    the reciprocal (:class:`Reciprocal`), load ``copies`` copies of it (one per
    cycle, so no register drives more than a few multipliers), then issue the
    row's ``chunks`` accumulator words through ``acc * r`` (one step, or a
    staged product when pipelined), the shift by ``recip_bits + n - out_frac``,
    round half up and saturation to ``out_bits``. The caller's memories answer
    ``l_addr``/``acc_addr`` one cycle later (``acc_en`` holds the read while the
    output stalls); everything advances only when the output can take a beat.
    ``last`` marks the pass's final beat.
    """

    def __init__(self, *, rows: int, chunks: int, lanes: int, acc_bits: int, l_bits: int, recip_bits: int,
                 out_frac: int, out_bits: int, pipeline: int, copies: int):
        self.rows, self.chunks, self.lanes = rows, chunks, lanes
        self.acc_bits, self.l_bits, self.recip_bits = acc_bits, l_bits, recip_bits
        self.out_frac, self.out_bits, self.pipeline, self.copies = out_frac, out_bits, pipeline, copies
        super().__init__({
            "start": In(1), "active": In(1),
            "l_addr": Out(index_shape(rows)), "l_data": In(unsigned(l_bits)),
            "acc_addr": Out(index_shape(rows * chunks)), "acc_en": Out(1),
            "acc_data": In(unsigned(lanes * acc_bits)),
            "o": Out(stream.Signature(data.ArrayLayout(signed(out_bits), lanes))),
            "last": Out(1),
        })

    @property
    def latency(self) -> int:
        """Stages from issuing an accumulator read to the O register."""
        return 4 + 2 * (self.pipeline >= 1) + (self.pipeline >= 2)

    def elaborate(self, platform):
        m = Module()
        rows, chunks, lanes = self.rows, self.chunks, self.lanes
        m.submodules.recip = recip = Reciprocal(l_bits=self.l_bits, recip_bits=self.recip_bits)
        stage = Signal(range(5))            # 0 read l, 1 start reciprocal, 2 wait, 3 issue, 4 drained
        row = Signal(index_shape(rows))
        chunk = Signal(index_shape(chunks))
        base = Signal(index_shape(rows * chunks))
        wait = Signal(range(recip.latency + self.copies + 1))
        factor = [Signal.like(recip.r, name=f"row_r{g}") for g in range(self.copies)]   # copy g at wait == g
        shift = Signal(range(self.recip_bits + self.l_bits + 1))
        adv = Signal()
        issue = Signal()
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            issue.eq(self.active & (stage == 3) & adv),
            recip.start.eq(self.active & (stage == 1) & adv), recip.l.eq(self.l_data),
            self.l_addr.eq(row), self.acc_addr.eq(base + chunk), self.acc_en.eq(adv),
        ]
        with m.If(self.start):
            m.d.sync += [stage.eq(0), row.eq(0), chunk.eq(0), base.eq(0)]
        with m.Elif(self.active & adv):
            with m.Switch(stage):
                with m.Case(0):
                    m.d.sync += stage.eq(1)
                with m.Case(1):
                    m.d.sync += [stage.eq(2), wait.eq(recip.latency - 1 + self.copies - 1)]
                with m.Case(2):
                    for g, copy in enumerate(factor):
                        with m.If(wait == g):
                            m.d.sync += copy.eq(recip.r)
                    with m.If(wait == 0):
                        m.d.sync += [stage.eq(3), shift.eq(self.recip_bits + recip.n - self.out_frac - 1)]
                    with m.Else():
                        m.d.sync += wait.eq(wait - 1)
                with m.Case(3):
                    m.d.sync += chunk.eq(Mux(chunk == chunks - 1, 0, chunk + 1))
                    with m.If(chunk == chunks - 1):
                        m.d.sync += [stage.eq(Mux(row == rows - 1, 4, 0)), base.eq(base + chunks),
                                     row.eq(row + 1)]
        # valid and last travel with the data, advancing only when the output can move
        valid, last = issue, issue & (chunk == chunks - 1) & (row == rows - 1)
        for s in range(self.latency - 1):
            v_next, l_next = Signal(name=f"valid_s{s}"), Signal(name=f"last_s{s}")
            with m.If(adv):
                m.d.sync += [v_next.eq(valid), l_next.eq(last)]
            valid, last = v_next, l_next
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(valid), self.last.eq(last)]
        piped = self.pipeline >= 1
        prod_bits = self.acc_bits + self.recip_bits + 2
        narrow = self.out_bits + 2
        top = (1 << (self.out_bits - 1)) - 1
        for i in range(lanes):
            lane = self.acc_data[i * self.acc_bits:(i + 1) * self.acc_bits].as_signed()
            prod = Signal(signed(prod_bits), name=f"prod{i}")
            shifted = Signal(signed(prod_bits), name=f"shifted{i}")
            if piped:
                m.d.comb += prod.eq(staged_product(m, lane, factor[i * self.copies // lanes], f"mul{i}",
                                                   en=adv, in_reg=self.pipeline >= 2))
            else:
                with m.If(adv):
                    m.d.sync += prod.eq(lane * factor[0])
            with m.If(adv):
                m.d.sync += shifted.eq(prod >> shift)
            if piped:
                # narrow to the output width plus rounding and overflow bits; flag what does not fit
                low = Signal(signed(narrow), name=f"low{i}")
                high = shifted[narrow - 1:]
                over, under = Signal(name=f"over{i}"), Signal(name=f"under{i}")
                with m.If(adv):
                    m.d.sync += [low.eq(shifted[:narrow]), over.eq(~high[-1] & high.any()),
                                 under.eq(high[-1] & ~high.all())]
                rounded = (low + 1) >> 1
            else:
                over = under = 0
                rounded = (shifted + 1) >> 1
            with m.If(adv):
                m.d.sync += self.o.payload[i].eq(
                    Mux(over | (rounded > top), top, Mux(under | (rounded < -top - 1), -top - 1, rounded)))
        return m
