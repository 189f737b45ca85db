"""The attention cost model: cycles, tiling of workload ops, memories read back from the RTL."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from cost_models import attention as model
from cost_models.ops import AttentionOp
from cost_models.targets import TARGETS
from flows.structure import flop_bits, top_ports
from generators.artifact import render
from generators.attention import AttentionParams, build
from tests.model_checks import assert_batch_equals_points
from tests.test_attention_sim import CONFIGS, config_id
from tests.yosys_runs import run_yosys

_MEMORY = re.compile(r"reg \[(\d+):0\] (\S+) \[(\d+):0\];")


def rtl_memories(verilog: str) -> dict[str, tuple[int, int]]:
    """(width, rows) of every memory array declared in generated Verilog, by name."""
    return {name: (int(msb) + 1, int(rows) + 1) for msb, name, rows in _MEMORY.findall(verilog)}


@pytest.mark.parametrize("params", CONFIGS, ids=config_id)
def test_memory_bits_ports_and_registers_match_the_rtl(params):
    art = render(params, build)
    mems = rtl_memories(art.verilog)
    bits = model.buffer_bits(model.prepare(params))
    rams = {k: w * d for k, (w, d) in mems.items() if not k.startswith("rom")}
    assert sum(rams.values()) == int(bits["buffers"][0])
    assert sum(w * d for k, (w, d) in mems.items() if k.startswith("rom")) == int(bits["rom"][0])
    assert {(p.name, p.width, p.direction) for p in top_ports(art.verilog, art.top)} == \
        {(p["name"], p["width"], p["direction"]) for p in art.manifest()["ports"]}
    flops = flop_bits(art.verilog, art.top)                 # memory arrays are RAM, not counted
    structural = int(sum(model.register_bits(model.prepare(params)).values())[0])
    assert abs(structural - flops) <= 0.02 * flops, (structural, flops)


def test_online_buffers_do_not_grow_with_the_sequence():
    base = AttentionParams(max_seq_len=256)
    online = [model.buffer_bits(model.prepare(base.replace(max_seq_len=n))) for n in (256, 4096, 16384)]
    two = [model.buffer_bits(model.prepare(base.replace(max_seq_len=n, softmax="two_pass")))
           for n in (256, 4096, 16384)]
    assert all(int(b["n_dependent"][0]) == 0 for b in online)
    growth = int(online[-1]["buffers"][0]) - int(online[0]["buffers"][0])
    assert 0 < growth < 0.05 * int(online[0]["buffers"][0])        # only the wider counters of l and acc
    assert [int(b["n_dependent"][0]) for b in two] == [4 * n * (base.score_bits + 1)
                                                               for n in (256, 4096, 16384)]


def test_run_cycles_follow_the_schedule():
    p = AttentionParams(head_dim=8, lanes=4, q_rows=2, kv_block=4, max_seq_len=32, pipeline=0)
    c = model.prepare(p)
    slot = int(c["slot"][0])
    assert slot == p.slot_cycles
    one, five = int(model.run_cycles(c, 1)[0]), int(model.run_cycles(c, 5)[0])
    assert five - one == 2 * slot + 4                                # one more block: q_rows more slots,
    #                                                                 and a longer first K block (4 -> 8 beats)
    two = model.prepare(p.replace(softmax="two_pass"))
    assert int(model.run_cycles(two, 9)[0]) - int(model.run_cycles(c, 9)[0]) == (3 * 2 - 1) * slot


def test_decode_packs_the_gqa_group_and_prefill_skips_masked_blocks():
    p = AttentionParams(q_rows=4, kv_block=16, max_seq_len=1024)
    c = model.prepare(p)
    decode = AttentionOp(batch=1, heads=32, kv_heads=8, n_q=1, n_kv=1000, head_dim=64, causal=False)
    counts = model.op_cycles(c, decode)
    assert int(counts["runs"][0]) == 8                                # four heads share one run
    assert int(counts["cycles"][0]) == 8 * int(model.run_cycles(c, 1000)[0])
    prefill = AttentionOp(batch=1, heads=2, kv_heads=2, n_q=10, n_kv=10, head_dim=64, causal=True)
    counts = model.op_cycles(c, prefill)
    expected = 2 * sum(int(model.run_cycles(c, n)[0]) for n in (4, 8, 10))
    assert int(counts["runs"][0]) == 6 and int(counts["cycles"][0]) == expected
    assert int(counts["keys"][0]) == 2 * (4 + 8 + 10)


def test_vectorised_equals_one_at_a_time_and_ops_outside_the_engine_are_invalid():
    op = AttentionOp(batch=2, heads=8, kv_heads=2, n_q=1, n_kv=60, head_dim=16, causal=False)
    assert_batch_equals_points(model.estimate, CONFIGS, op, ("ecp5-85k", "xilinx-7", "asic-45nm"))
    valid = model.estimate(CONFIGS, op, TARGETS["ecp5-85k"])["valid"]
    assert valid.tolist() == [p.head_dim >= 16 and p.max_seq_len >= 60 for p in CONFIGS]


def test_a_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match=r"attention.lanes must be a divisor of head_dim \(64\), not 48"):
        AttentionParams(lanes=48)
    with pytest.raises(ValueError, match="attention.exp_index_bits must be at most score_frac"):
        AttentionParams(exp_index_bits=9, score_frac=8)
    with pytest.raises(ValueError, match="attention.kv_heads must divide heads"):
        AttentionOp(batch=1, heads=6, kv_heads=4, n_q=1, n_kv=8, head_dim=8, causal=False)


@pytest.mark.parametrize("params", CONFIGS, ids=config_id)
def test_each_unit_holds_the_register_bits_it_states(params):
    """The slot controller, QK and PV units (with its exp unit) state their flip-flop bits,
    which the cost model reads; each unit's own Verilog holds exactly that many."""
    from amaranth.back import verilog

    from generators.attention_units import PVUnit, QKUnit, SlotController

    regs = model.register_bits(model.prepare(params))
    for unit, stated in ((SlotController, regs["slots"]), (QKUnit, regs["qk"]), (PVUnit, regs["pv"] + regs["exp"])):
        text = verilog.convert(unit(params), name="unit", emit_src=False)
        assert flop_bits(text, "unit") == int(stated[0]), unit.__name__


def test_the_slot_is_as_long_as_the_slower_unit_needs():
    from generators.attention_units import PVUnit, QKUnit, SlotController

    for params in CONFIGS:
        issue = params.kv_block * params.chunks
        tails = (int(QKUnit.tail(params.lanes, params.pipeline)), int(PVUnit.tail(params.pwl, params.pipeline)))
        assert params.slot_cycles == issue + max(tails) + 1 == int(SlotController.cycles(
            params.kv_block, params.chunks, params.lanes, params.pwl, params.pipeline))


@pytest.mark.parametrize("params", [CONFIGS[3], CONFIGS[4]], ids=config_id)
def test_the_models_multipliers_are_the_rtls(params, tmp_path):
    """Every ``$mul`` Yosys keeps after ``wreduce`` (operand widths as a signed multiplier takes
    them, an unsigned one a bit wider) is a product the model prices, and nothing else: the
    staged products of a pipelined engine are counted piece by piece, so DSP counts are exact."""
    run_yosys(build(params), tmp_path, "opt; wreduce; opt_clean; write_json top.json")
    rtl = Counter()
    for cell in json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"].values():
        if cell["type"] == "$mul":
            widths = [int(cell["parameters"][f"{x}_WIDTH"], 2) for x in "AB"]
            signs = [int(cell["parameters"][f"{x}_SIGNED"], 2) for x in "AB"]
            rtl[tuple(sorted(w + (not s and w > 1) for w, s in zip(widths, signs)))] += 1
    modelled = Counter()
    for n, a, b in model.products(model.prepare(params)).values():
        if int(n[0]):
            modelled[tuple(sorted((int(a[0]), int(b[0]))))] += int(n[0])
    assert rtl == modelled
