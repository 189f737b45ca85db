"""The machine: its ISA, its golden model, its Params, and its RTL running programs from
cocotbext-axi's AxiRam with the image and the cycles held against the golden and the model."""
from __future__ import annotations

import numpy as np
import pytest

from cost_models.machine import AXI_RAM, program_cycles
from generators.isa import BY_NAME, INSTRUCTION_BITS, ISA, OPCODE_BITS, assemble, decode, disassemble, encode
from generators.machine import MachineParams, render
from generators.params import ParamError
from generators.vector import VectorOpcode
from hw.dma import bursts
from verif.golden.machine import Golden
from verif.runner import run


def test_every_instruction_fits_its_word_and_round_trips():
    rng = np.random.default_rng(0)
    assert len({i.opcode for i in ISA}) == len(ISA)
    for inst in ISA:
        assert OPCODE_BITS + sum(f.bits for f in inst.fields) <= INSTRUCTION_BITS, inst.name
        assert inst.opcode < 1 << OPCODE_BITS
        for _ in range(20):
            fields = {f.name: int(rng.integers(0, 1 << f.bits, dtype=np.uint64)) for f in inst.fields}
            word = encode(inst.name, **fields)
            assert 0 <= word < 1 << INSTRUCTION_BITS
            assert decode(word) == (inst.name, fields)
    program = [("LOAD", {"buffer": 3, "dram": 9, "beats": 2}), ("HALT", {})]
    assert disassemble(assemble(program)) == program


@pytest.mark.parametrize("name, fields, message", [
    ("JUMP", {}, "instruction must be one of"),
    ("LOAD", {"buffer": 0, "dram": 0}, "LOAD.beats must be given"),
    ("LOAD", {"buffer": 1 << 16, "dram": 0, "beats": 1}, "LOAD.buffer must be an integer in 0..65535"),
    ("LOAD", {"buffer": -1, "dram": 0, "beats": 1}, "LOAD.buffer must be an integer"),
    ("HALT", {"beats": 1}, "HALT has no field 'beats'"),
])
def test_the_assembler_names_the_field_and_its_range(name, fields, message):
    with pytest.raises(ValueError, match=message):
        encode(name, **fields)


def test_a_word_with_an_unknown_opcode_is_refused():
    with pytest.raises(ValueError, match="opcode must be one of"):
        decode(15)


@pytest.mark.parametrize("beat, count, max_burst, page", [(0, 1, 16, 256), (254, 51, 16, 256), (3, 40, 1, 256),
                                                          (30, 70, 256, 32), (0, 512, 16, 8)])
def test_bursts_cover_the_transfer_and_never_cross_a_page(beat, count, max_burst, page):
    out = bursts(beat, count, max_burst, page)
    assert sum(n for _, n in out) == count
    assert out[0][0] == beat and all(a + n == b for (a, n), (b, _) in zip(out, out[1:]))
    assert all(1 <= n <= max_burst and a // page == (a + n - 1) // page for a, n in out)


@pytest.mark.parametrize("values, message", [
    ({"vector.lanes": 3}, "lanes x vector.bits must be a power of two in 32..1024"),
    ({"vector.lanes": 1, "vector.bits": 16}, "power of two in 32..1024"),
    ({"max_burst": 12}, "machine.max_burst must be a power of two"),
    ({"buffer_beats": 100}, "machine.buffer_beats must be a power of two"),
    ({"buffer_beats": 8}, "machine.buffer_beats must be an integer in 16..65536"),
    ({"vector.lanse": 8}, "machine.vector .vector. has no parameter 'lanse'"),
    ({"gemm.n_tile": 16}, r"machine.gemm.n_tile must be 8 \(one buffer beat a run's outputs\), not 16"),
    ({"gemm.m_tile": 2}, "machine.gemm.m_tile must be 1"),
    ({"gemm.weight_format": "uint"}, "machine.gemm.weight_format must be 'int' or 'ternary'"),
    ({"gemm.a_bits": 12, "vector.bits": 8, "vector.lanes": 16}, r"machine.gemm.a_bits must be at most vector.bits \(8\)"),
    ({"gemm.k_max": 0}, "machine.gemm.k_max must be an integer in 1..65536"),
    ({"dsp.lanes": 1}, "machine has no nested part 'dsp'"),
])
def test_bad_params_name_the_field_and_the_allowed_values(values, message):
    with pytest.raises(ParamError, match=message):
        MachineParams.from_dict(values)


def test_params_round_trip_with_the_engines_fields():
    p = MachineParams.from_dict({"buffer_beats": 64, "vector.lanes": 4, "vector.bits": 8, "gemm.w_bits": 4,
                                 "gemm.weight_format": "int"})
    assert MachineParams.from_dict(p.to_dict()) == p
    assert p.port_bits == 32 and p.instruction_beats == 4
    assert (p.gemm.n_tile, p.gemm.k_lanes, p.gemm.m_tile) == (4, 4, 1)      # fitted to the lanes when unset
    assert p.weight_bits == 64 and p.weight_beats == 2
    assert p.digest() != MachineParams().digest()


def test_the_golden_refuses_what_the_rtl_stops_on():
    p = MachineParams()
    image = bytearray(1 << 16)
    for word in (encode("LOAD", buffer=0, dram=0, beats=0),
                 encode("LOAD", buffer=p.buffer_beats - 1, dram=0, beats=2),
                 encode("VECTOR", op=len(VectorOpcode), shift=0, x=0, y=0, z=0, beats=1),
                 encode("VECTOR", op=int(VectorOpcode.ADD), shift=p.vector.shift_limit, x=0, y=0, z=0, beats=1),
                 encode("GEMM", x=0, w=0, z=0, k=0, tiles=1, shift=0),
                 encode("GEMM", x=0, w=0, z=p.buffer_beats - 1, k=1, tiles=2, shift=0),
                 encode("GEMM", x=0, w=0, z=0, k=1, tiles=1, shift=p.gemm_shift_limit)):
        with pytest.raises(ValueError, match="instruction 0"):
            Golden(p).run([word, encode("HALT")], image)
    with pytest.raises(ValueError, match="no HALT"):
        Golden(p).run([encode("LOAD", buffer=0, dram=0, beats=1)], image)


def test_the_golden_moves_and_computes_beats():
    """LOAD, an ADD and a STORE by hand: the stored beats are the lane-wise saturated sums."""
    p = MachineParams.from_dict({"vector.lanes": 2, "vector.bits": 16})
    image = bytearray(64)
    image[0:8] = bytes.fromhex("0100ff7f" "02000080")       # beats (1, 32767) and (2, -32768)
    program = [encode("LOAD", buffer=0, dram=0, beats=2),
               encode("VECTOR", op=int(VectorOpcode.ADD), shift=0, x=0, y=0, z=4, beats=2),
               encode("STORE", buffer=4, dram=4, beats=2), encode("HALT")]
    assert Golden(p).run(program, image) == 4
    assert image[16:24] == bytes.fromhex("0200ff7f" "04000080")   # 2, 32767 (saturated), 4, -32768


def test_the_golden_gemm_is_the_integer_product_rounded_and_saturated():
    """One tile by hand: K = 3 (a part group), ternary weights, shift 1."""
    from generators.mac_mpgemm import pack_weights

    p = MachineParams.from_dict({"vector.lanes": 2, "vector.bits": 16, "buffer_beats": 16, "gemm.k_max": 8})
    beat = p.port_bits // 8
    image = bytearray(16 * beat)
    x = [[3, -5], [7, 1000]]                         # lane 1 of beat 1 is past K; 1000 wraps to -24 in 8 bits
    for i, row in enumerate(x):
        image[i * beat:(i + 1) * beat] = b"".join(int(v & 0xFFFF).to_bytes(2, "little") for v in row)
    w = np.array([[1, -1], [0, 1], [-1, -1]])         # K x n_tile
    for i, word in enumerate(pack_weights(p.gemm, w)):
        image[(4 + i) * beat:(5 + i) * beat] = word.to_bytes(beat, "little")
    program = [encode("LOAD", buffer=0, dram=0, beats=2), encode("GEMM", x=0, w=4, z=4, k=3, tiles=1, shift=1),
               encode("STORE", buffer=4, dram=8, beats=1), encode("HALT")]
    Golden(p).run(program, image)
    y = [3 * 1 - 5 * 0 + 7 * -1, 3 * -1 - 5 * 1 + 7 * -1]                  # -4, -15
    z = [(v + 1) >> 1 for v in y]                                             # -2, -7 (ties up)
    assert [int.from_bytes(image[8 * beat + 2 * j:8 * beat + 2 * j + 2], "little", signed=True) for j in range(2)] == z


def test_cycles_add_up_per_instruction():
    p = MachineParams()
    one = program_cycles(p, [encode("HALT")])
    load = program_cycles(p, [encode("LOAD", buffer=0, dram=0, beats=10), encode("HALT")])
    assert load - one == program_cycles(p, [encode("HALT")]) + 2 + AXI_RAM.read_latency + 9
    longer = program_cycles(p, [encode("LOAD", buffer=0, dram=0, beats=11), encode("HALT")])
    assert longer == load + 1


MACHINES = [[], ["vector.lanes=4", "vector.bits=8", "max_burst=1", "buffer_beats=128", "gemm.w_bits=4",
                 "gemm.weight_format=int", "gemm.a_bits=6"],
            ["vector.lanes=2", "vector.bits=32", "max_burst=2", "buffer_beats=64", "vector.max_beats=7"],
            ["buffer_beats=16", "max_burst=1", "vector.lanes=2", "vector.bits=16", "vector.max_beats=1",
             "vector.table_bits=0"]]
"""The default (ternary GEMM weights, one DRAM beat a weight beat), a 32-bit port with 1-beat
bursts and 4-bit weights (two DRAM beats a weight beat), a 64-bit port with 7-beat runs, and
the smallest machine: a 16-beat buffer, 1-beat bursts and runs, a 32-bit port."""


def _machine(settings: list[str]) -> MachineParams:
    return MachineParams.from_dict(MachineParams.parse_strings(dict(s.split("=") for s in settings)))


@pytest.mark.parametrize("settings", [MACHINES[0], MACHINES[3]], ids=["default", "smallest"])
def test_the_machine_lints_clean(settings, tmp_path):
    from generators.artifact import write
    from verif.verilator import lint

    artifact = render(_machine(settings))
    result = lint(write(artifact, tmp_path)["verilog"], artifact.top)
    assert result.ok, "\n".join(result.messages[:20])


@pytest.mark.sim
@pytest.mark.parametrize("simulator, settings", [("verilator", MACHINES[0]), ("icarus", MACHINES[1]),
                                                 ("icarus", MACHINES[2]), ("icarus", MACHINES[3])],
                         ids=["default", "icarus-32-bit-port", "icarus-64-bit-port", "icarus-smallest"])
def test_programs_run_from_dram_bit_exact_and_cycle_exact(simulator, settings):
    p = _machine(settings)
    result = run(render(p), "verif.tb.machine", simulator=simulator)
    assert result.passed, result.summary()
    assert {r["test"] for r in result.records} == {"programs_match_the_golden", "long_transfers_in_bursts",
                                                   "bad_instructions_stop_with_error", "gemm_rows_match_the_golden",
                                                   "a_stalling_memory_changes_no_result"}
    for record in result.records:
        program = [int(w, 16) for w in record["program"]]
        if record.get("stalled"):                # the model is the full-rate bound
            assert record["CYCLES"] > program_cycles(p, program)
            continue
        assert record["CYCLES"] == program_cycles(p, program), record["test"]
        assert record["read_latency"] == [AXI_RAM.read_latency], record["test"]
        assert record["write_latency"] == [AXI_RAM.write_latency], record["test"]
    ops = {decode(int(w, 16))[1].get("op") for r in result.records for w in r["program"]
           if decode(int(w, 16))[0] == "VECTOR"}
    assert len(ops) >= len(VectorOpcode) // 2, f"the random programs reached only ops {sorted(ops)}"
    assert any(r.get("stalled") for r in result.records)


def test_the_manifest_declares_the_isa_and_the_registers():
    artifact = render(MachineParams.from_dict({"buffer_beats": 16, "vector.max_beats": 16}))
    names = [i["name"] for i in artifact.extra["isa"]]
    assert names == list(BY_NAME)
    assert {r["name"] for r in artifact.extra["registers"]} >= {"CTRL", "STATUS", "PROGRAM", "IMAGE", "CYCLES"}
    assert "m_axi_arlen" in {port.name for port in artifact.ports}
