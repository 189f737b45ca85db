"""PPA model of the attention engine, vectorised over design points.

Cycles are exact for our RTL (:mod:`generators.attention`; the cocotb
regression measures them). A run of ``n`` keys on an idle engine, streams
never stalling, asserts ``done`` (with its last O beat)

    1 + max(q_rows, min(kv_block, n)) * chunks      Q tile and first K/V block
      + slots(n) * slot                             QK and PV jobs
      + q_rows * (recip + 2 + chunks)               reciprocal, then the row's O beats
      + out                                         normaliser pipeline

cycles after its start was accepted, with ``slots = blocks * q_rows + 1``
(online: PV one slot behind QK) or ``2 * blocks * q_rows`` (two-pass),
``slot = kv_block * chunks + tail + 1`` (see ``generators.attention``).
Back-to-back runs follow each other exactly: the next start is taken in the
``done`` cycle.

A workload attention op is cut into runs: for every (batch, KV head) the
rows are the query positions of the GQA group's heads (``n_q`` times ``g``
rows over the same keys); a causal prefill keeps its rows in position order
per head and streams each tile only the keys it can see (whole masked
blocks are never fetched). Off-chip traffic: each run streams its Q tile,
its keys and values, and its O tile.

On-chip memory is the sum of the memories the RTL instantiates (tests read
them from the Verilog); resources, area and energy are structural counts
times coefficients in ``cost_models/data/attention.json``.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.memory import placement
from cost_models.ops import AttentionOp
from cost_models.pricing import price
from cost_models.targets import Target, TargetKind
from generators import attention as gen
from generators import attention_units as units
from generators.attention_units import index_bits, staged_bits
from generators import fixed_softmax as fx
from generators.attention import AttentionParams
from generators.widths import bits_for, ceil_div
from hw.softmax import STAGE_SPLIT, is_staged

Points = Union[AttentionParams, Sequence[AttentionParams], Mapping[str, np.ndarray]]

def prepare(points: Points) -> dict[str, np.ndarray]:
    """Parameter columns plus every derived width the RTL uses."""
    if isinstance(points, AttentionParams):
        points = [points]
    return gen.derived(dict(points) if isinstance(points, Mapping) else AttentionParams.columns(points))


# ---------------------------------------------------------------------- cycles (exact)
def slots(c: Mapping[str, np.ndarray], n) -> np.ndarray:
    jobs = ceil_div(n, c["kv_block"]) * c["q_rows"]
    return np.where(c["two_pass"], 2 * jobs, jobs + 1)


def run_cycles(c: Mapping[str, np.ndarray], n) -> np.ndarray:
    """Cycles from the accepted ``start`` to ``done`` (= the last O beat) for ``n`` keys."""
    n = np.asarray(n, dtype=np.int64)
    load = np.maximum(c["q_rows"], np.minimum(c["kv_block"], n)) * c["chunks"]
    rows = c["q_rows"] * (c["recip"] + 1 + c["chunks"] + units.fanout_copies(c["lanes"], c["pipeline"]))
    return 1 + load + slots(c, n) * c["slot"] + rows + c["out_latency"]


def runs_of(c: Mapping[str, np.ndarray], op: AttentionOp) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The op's runs as (key counts, how many runs have that count), per design point."""
    rows = c["q_rows"]
    group = op.heads // op.kv_heads
    if op.causal and op.n_q > 1:
        tiles = ceil_div(op.n_q, rows)
        prefix = op.n_kv - op.n_q
        # tile i sees prefix + (i + 1) * rows keys, the last tile all n_kv
        t_max = int(np.max(tiles))
        keys, counts = [], []
        for i in range(t_max):
            present = i < tiles
            keys.append(np.where(present, np.minimum(op.n_kv, prefix + (i + 1) * rows), 1))
            counts.append(np.where(present, op.batch * op.heads, 0))
        return keys, counts
    tiles = ceil_div(group * op.n_q, rows)
    return [np.broadcast_to(np.int64(op.n_kv), np.shape(rows))], [op.batch * op.kv_heads * tiles]


def op_cycles(c: Mapping[str, np.ndarray], op: AttentionOp) -> dict[str, np.ndarray]:
    """Cycles and counts of a whole op issued back to back on one engine."""
    keys, counts = runs_of(c, op)
    cycles = sum(cnt * run_cycles(c, k) for k, cnt in zip(keys, counts))
    runs = sum(counts)
    streamed_keys = sum(cnt * k for k, cnt in zip(keys, counts))
    blocks = sum(cnt * ceil_div(k, c["kv_block"]) for k, cnt in zip(keys, counts))
    return {"cycles": cycles, "runs": runs, "keys": streamed_keys, "blocks": blocks,
            "tiles": runs}


# ---------------------------------------------------------------------- memories
def memories(c: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(width, rows) of every memory the RTL instantiates."""
    return gen.memory_plan(c)


def buffer_bits(c: Mapping[str, np.ndarray], mems=None) -> dict[str, np.ndarray]:
    """On-chip bits: data buffers and state (``buffers``), exp coefficients (``rom``)."""
    mems = memories(c) if mems is None else mems
    data = sum(w * d for name, (w, d) in mems.items() if not name.startswith("rom"))
    rom = sum(w * d for name, (w, d) in mems.items() if name.startswith("rom"))
    return {"buffers": data, "rom": rom, "n_dependent": np.where(c["two_pass"], mems["s_buf"][0]
                                                                     * mems["s_buf"][1], 0)}


def memory_placement(c: Mapping[str, np.ndarray], tech: str, mems=None) -> dict[str, np.ndarray]:
    """Block RAMs and LUTs used as distributed RAM per design (none for an ASIC technology)."""
    return placement(memories(c) if mems is None else mems, tech, np.shape(c["q_rows"]), gen.READ_ENABLED)


# ---------------------------------------------------------------------- structure
def _operand(bits, is_signed, signed_only: bool):
    """An operand's width as the hard multiplier takes it: where the DSPs multiply signed only,
    an unsigned operand gains a sign bit (a 1-bit one is an AND gate, never a DSP: left as is)."""
    return bits + (signed_only and not is_signed) * (np.asarray(bits) > 1)


def _staged(n, a_bits, a_signed: bool, b_bits, staged, signed_only: bool):
    """The multiplies of ``a * b`` (``b`` unsigned) as :func:`hw.softmax.staged_product` writes
    them when ``staged``: a wide ``a`` is cut into its low ``STAGE_SPLIT`` bits and the rest,
    each meeting ``b`` in its own multiplier. A signed ``a`` makes Amaranth widen ``b`` by a
    sign bit; an unsigned one leaves both unsigned."""
    split = staged & is_staged(a_bits)
    b = _operand(b_bits + a_signed, a_signed, signed_only)
    low = _operand(np.full_like(a_bits, STAGE_SPLIT), False, signed_only)
    return {"": (np.where(split, 0, n), _operand(a_bits, a_signed, signed_only), b),
            "_lo": (np.where(split, n, 0), low, _operand(b_bits, False, signed_only)),
            "_hi": (np.where(split, n, 0), _operand(np.maximum(a_bits - STAGE_SPLIT, 1), a_signed, signed_only), b)}


def products(c: Mapping[str, np.ndarray],
             signed_only: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The RTL's multipliers by role: (count, operand a bits, operand b bits) as Yosys's
    ``mul2dsp`` sees them after ``wreduce`` (tests read them off the netlist); ``signed_only``
    for DSPs that multiply signed operands only (Xilinx), which widen an unsigned one."""
    lanes = c["lanes"]
    pf, ab, lb = c["prob_frac"], c["acc_bits"], c["l_bits"]
    cf = fx.coef_frac(pf)
    one = np.ones_like(lanes)
    scaled = np.where(c["shift"], 0, 1)             # a shift rescales without multiplying
    rescale_staged = units.rescale_latency(c["pipeline"]) >= 2
    roles = {"qk": (lanes, c["q_bits"], c["k_bits"]), "pv": (lanes, pf + 2, c["v_bits"])}   # p widened by Amaranth
    for name, (n, a, a_signed, b, staged) in {
            "rescale": (lanes * scaled, ab, True, pf + 1, rescale_staged),
            "rescale_l": (scaled * one, lb, False, pf + 1, rescale_staged),
            "normalise": (lanes, ab, True, c["recip_bits"] + 1, c["pipeline"] >= 1),
            "prescale": (one, c["raw_bits"], True, np.full_like(lanes, fx.SCALE_BITS),
                         units.prescale_latency(c["pipeline"]) == 2)}.items():
        roles.update({name + piece: v for piece, v in _staged(n, a, a_signed, b, staged, signed_only).items()})
    rem = np.maximum(c["score_frac"] - c["exp_index_bits"], 1)
    roles["exp"] = (np.where(c["pwl"] & (c["score_frac"] > c["exp_index_bits"]), 1, 0),
                    _operand(cf + 1, False, signed_only), _operand(rem, False, signed_only))
    return roles


def register_bits(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flip-flop bits of the generated RTL, unit by unit (memory read ports included): the slot
    controller, QK and PV units state theirs (``generators.attention_units``)."""
    lanes, chunks, rows = c["lanes"], c["chunks"], c["q_rows"]
    pf, sf = c["prob_frac"], c["score_frac"]
    lb, ab, ob, rb = c["l_bits"], c["acc_bits"], c["out_bits"], c["recip_bits"]
    piped = c["pipeline"] >= 1
    cf = fx.coef_frac(pf)
    frac = fx.exp_frac(c["pwl"], pf, sf) + 2
    cap = bits_for(fx.exp_shift_cap(pf) + 1)
    rem = np.maximum(sf - c["exp_index_bits"], 1)
    exp = (3 * cap + index_bits(1 << c["exp_index_bits"]) + 2 * rem + frac + (pf + 3) + (pf + 1)
           + (cf + 1) * np.where(c["pwl"], 2, 1)
           + np.where(c["pwl"] & piped, (cf + 1) + rem + (cf + 1) + cap, 0)
           + np.where(c["pipeline"] >= 2, frac + cap, 0))
    r_copies = units.fanout_copies(lanes, c["pipeline"])
    prod_bits = ab + rb + 2
    o_prod = np.where(piped, staged_bits(ab, rb + 1) + (c["pipeline"] >= 2) * ab, prod_bits)
    out = (lanes * (o_prod + prod_bits + ob) + np.where(piped, lanes * (ob + 4) + 4, 0) + 8
           + r_copies * (rb + 1) + bits_for(rb + lb + 1) + 3 + index_bits(rows) + index_bits(chunks) + 7
           + 2 * lb + 1 + bits_for(lb) + bits_for(gen.recip_latency(lb, rb) + 1) + (rb + 1))
    read_ports = lanes * (c["q_bits"] + c["k_bits"] + c["v_bits"] + ab) + (c["y_bits"] + 1) + c["m_bits"] + lb
    blocks = bits_for(c["max_blocks"] + 1)
    keys = bits_for(c["max_seq_len"] + 1)
    bc = c["kv_block"]
    loaders = (2 * (keys + index_bits(chunks) + index_bits(bc) + index_bits(bc * chunks) + 1 + blocks)
               + (bits_for(rows + 1) + index_bits(chunks) + index_bits(rows) + index_bits(rows * chunks) + 1 + 2))
    run = keys + fx.SCALE_BITS + np.where(c["causal"], index_bits(c["max_seq_len"]), 0)
    return {"slots": units.SlotController.register_bits(c), "qk": units.QKUnit.register_bits(c), "exp": exp,
            "pv": units.PVUnit.register_bits(c), "normalise": out, "read_ports": read_ports,
            "control": run + loaders}


def features(c: Mapping[str, np.ndarray], prods: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
             on_dsp: Mapping[str, np.ndarray], sram_bits: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Structural features by the figure they price (``prods``: :func:`products` for the
    target); LUT RAM is counted exactly elsewhere."""
    lanes, acc = c["lanes"], c["acc_bits"]
    soft = sum(n * a * b * ~on_dsp[k] for k, (n, a, b) in prods.items())
    hard_glue = sum(n * (a + b) * on_dsp[k] for k, (n, a, b) in prods.items())
    norm_bits = acc + c["recip_bits"] + 2
    staged_sums = sum(n * (a + b) for k, (n, a, b) in prods.items() if k.endswith("_hi"))   # hi << split + lo
    adders = ((lanes - 1) * c["raw_bits"] + c["raw_bits"] + 2 * lanes * acc + c["l_bits"] + c["m_bits"] * 3
              + lanes * norm_bits + staged_sums)
    shifters = ((c["prob_frac"] + 3) * bits_for(c["prob_frac"] + 3)
                + lanes * norm_bits * bits_for(c["l_bits"] + c["recip_bits"])
                + np.where(c["shift"], (lanes + 1) * acc * bits_for(acc), 0))
    regs = register_bits(c)
    counters = regs["control"]
    pipe = sum(v for k, v in regs.items() if k != "control")
    one = np.ones_like(lanes)
    return {
        "lut": {"const": one, "soft_mult": soft, "dsp_glue": hard_glue, "adder": adders, "shifter": shifters,
                "control": counters},
        "ff": {"const": one, "datapath": pipe - regs["exp"], "exp": regs["exp"], "control": counters},
        "period_ns": {"const": one, "acc_bit": acc, "lanes_log": bits_for(lanes),
                      "soft_mult": np.log2(np.maximum(soft, 1)),
                      "unpipelined": 2 - c["pipeline"]},          # stages the pipeline knob leaves out
        "cmos": {"const": one, "reg": pipe + counters, "mult": sum(n * a * b for n, a, b in prods.values()),
                 "adder": adders, "shifter": shifters, "sram_bits": sram_bits},
    }


def estimate(points: Points, op: AttentionOp, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point running attention op ``op`` on ``target``."""
    c = prepare(points)
    fab = coefficients("attention", target.tech, FabricCoefficients)
    cmos = coefficients("attention", "cmos", CmosCoefficients)
    fpga = target.kind is TargetKind.FPGA
    rule = (fab.dsp_min_bits, fab.dsp_min_product_bits)
    prods = products(c, target.dsp_signed_only)
    on_dsp = {k: (target.hard_multiplier(a, b, rule) if fpga else np.zeros(np.shape(a), dtype=bool))
              for k, (n, a, b) in prods.items()}
    dsp = sum(np.where(on_dsp[k], n * target.dsps_per_product(a, b), 0) for k, (n, a, b) in prods.items()) \
        if fpga else np.zeros(np.shape(c["lanes"]), dtype=np.int64)
    mems = memories(c)
    bufs = buffer_bits(c, mems)
    placed = memory_placement(c, target.tech, mems)         # none for an ASIC technology
    feats = features(c, prods, on_dsp, bufs["buffers"])
    counts = op_cycles(c, op)
    # the op must fit the engine: head_dim zero-padded up, keys within max_seq_len
    valid = c["valid"] & (op.head_dim <= c["head_dim"]) & (op.n_kv <= c["max_seq_len"])
    pairs = counts["blocks"] * c["kv_block"] * c["q_rows"]          # scores the engine forms
    macs = 2 * pairs * c["head_dim"]
    e = fab.energy
    e_compute = (pairs * c["head_dim"] * (e["j_per_mult_bit2"] * (c["q_bits"] * c["k_bits"]
                                                                  + (c["prob_frac"] + 1) * c["v_bits"]))
                 + pairs * c["chunks"] * e["j_per_exp"] + macs * e["j_per_adder_bit"] * c["acc_bits"]
                 + counts["keys"] * c["head_dim"] * (c["k_bits"] + c["v_bits"]) * e["j_per_sram_bit"])
    traffic = (counts["runs"] * c["q_rows"] * c["head_dim"] * (c["q_bits"] + c["out_bits"])
               + counts["keys"] * c["head_dim"] * (c["k_bits"] + c["v_bits"]))
    return price(ops=op.ops, target=target, fab=fab, counts=counts,
                 lut=weighted(fab.lut, feats["lut"]) + placed["lutram"], ff=weighted(fab.ff, feats["ff"]),
                 dsp=dsp, bram=placed["bram"], lutram=placed["lutram"],
                 area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]), reg_bits=feats["cmos"]["reg"],
                 e_compute=e_compute, offchip=traffic, valid=valid,
                 extra={"buffer_bits": bufs["buffers"], "rom_bits": bufs["rom"],
                        "seq_dependent_bits": bufs["n_dependent"], "macs": macs,
                        "macs_per_cycle": 2 * c["lanes"], "slot_cycles": c["slot"],
                        "blocks": counts["blocks"]})


def model_info() -> dict[str, object]:
    return {"family": "attention", "coefficients": provenance("attention")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"head_dim": (8, 64), "q_rows": (1, 8), "kv_block": (2, 32), "lanes": (1, 16),
                   "max_seq_len": (16, 2048)}
"""Where calibration samples designs: capped so each synthesizes in a few minutes on one core."""


def multipliers(points: Points, target: Target) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The products by role as ``target``'s DSPs take them, for fitting the DSP rule."""
    return list(products(prepare(points), target.dsp_signed_only).values())


def placed_memories(points: Points, tech: str) -> dict[str, np.ndarray]:
    """Block RAMs and LUT RAM LUTs of each point on ``tech``, counted (not fitted)."""
    return memory_placement(prepare(points), tech)


def calibration_features(points: Points, dsp_rule: tuple[int, int], target: Target,
                         tables: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    c = prepare(points)
    prods = products(c, target.dsp_signed_only)
    on_dsp = {k: target.hard_multiplier(a, b, dsp_rule) for k, (n, a, b) in prods.items()}
    return features(c, prods, on_dsp, buffer_bits(c)["buffers"])
