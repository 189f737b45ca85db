"""A BitNet projection from a safetensors checkpoint, compiled for the machine and run on its
RTL: bit-exact with the golden, cycle-exact with the model, and within a stated distance of
the recipe computed in float64."""
from __future__ import annotations

import json

import numpy as np
import pytest

from compiler.checkpoint import load
from compiler.projection import compile_projection, dequantize, output_shift, reference, ternary
from cost_models.machine import program_cycles
from generators.machine import MachineParams
from verif.golden.machine import Golden

NAME = "model.layers.0.mlp.down_proj.weight"
DISTANCE = 0.02
"""The largest relative L2 distance from the recipe these tests allow; measured at most 0.7%
on the shapes below (fixed-point input, the unit's quantization scalar, the output shift)."""


def _checkpoint(folder, out: int, k: int, seed: int = 0):
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    (folder / "config.json").write_text(json.dumps({"architectures": ["BitnetForCausalLM"], "hidden_size": k,
                                                    "intermediate_size": out}))
    save_file({NAME: rng.normal(0, 0.02, (out, k)).astype(np.float32)}, folder / "model.safetensors")
    return rng.normal(0, 1, k)


def test_ternary_is_absmean_and_the_shift_never_saturates():
    w = np.array([[0.3, -0.01, -0.2], [0.05, 0.0, 0.1]])
    codes, scale = ternary(w)
    assert scale == pytest.approx(np.mean(np.abs(w)))
    assert codes.tolist() == [[1, 0, -1], [0, 0, 1]]
    p = MachineParams()
    for k in (1, 8, 258, 259, 2560, 4096):
        s = output_shift(p, k)
        assert (127 * k + (1 << s >> 1)) >> s <= 32767
        assert s == 0 or (127 * k + (1 << (s - 1) >> 1)) >> (s - 1) > 32767       # the least such shift


@pytest.mark.parametrize("out, k", [(24, 64), (50, 100), (256, 2560)])
def test_the_golden_is_within_the_stated_distance_of_the_recipe(out, k):
    rng = np.random.default_rng(out)
    w, x = rng.normal(0, 0.02, (out, k)), rng.normal(0, 1, k)
    p = MachineParams()
    compiled = compile_projection(p, w, x)
    image = bytearray(compiled.image)
    Golden(p).run(compiled.program, image)
    y, r = dequantize(p, compiled, bytes(image)), reference(w, x)
    assert np.linalg.norm(y - r) <= DISTANCE * np.linalg.norm(r)


@pytest.mark.sim
def test_a_checkpoints_projection_runs_on_the_rtl(tmp_path):
    from verif.machine_run import run_program

    x = _checkpoint(tmp_path / "model", out=40, k=96)
    w = load(tmp_path / "model").tensor(NAME, (40, 96))
    p = MachineParams()
    compiled = compile_projection(p, w, x)
    outcome = run_program(p, compiled.program, compiled.image)
    golden = bytearray(compiled.image)
    Golden(p).run(compiled.program, golden)
    assert outcome.image == bytes(golden)
    assert outcome.cycles == program_cycles(p, compiled.program)
    y, r = dequantize(p, compiled, outcome.image), reference(w, x)
    assert np.linalg.norm(y - r) <= DISTANCE * np.linalg.norm(r)


@pytest.mark.parametrize("make, message", [
    (lambda f: None, "does not exist or is not a folder"),
    (lambda f: f.mkdir(), "has no config.json"),
    (lambda f: (f.mkdir(), (f / "config.json").write_text("{")), "has no model.safetensors"),
    (lambda f: (f.mkdir(), (f / "config.json").write_text("{"), (f / "model.safetensors").write_bytes(b"x")),
     "config.json is not readable JSON"),
    (lambda f: (f.mkdir(), (f / "config.json").write_text("{}"), (f / "model.safetensors").write_bytes(b"x" * 9)),
     "model.safetensors is not a readable safetensors file"),
])
def test_a_bad_model_folder_is_one_clear_error(tmp_path, make, message):
    folder = tmp_path / "model"
    make(folder)
    with pytest.raises(ValueError, match=message):
        load(folder)


def test_a_missing_or_misshapen_tensor_is_named(tmp_path):
    _checkpoint(tmp_path / "model", out=8, k=16)
    ck = load(tmp_path / "model")
    with pytest.raises(ValueError, match="has no tensor 'model.layers.0.mlp.down_proj.weigth'; did you mean"):
        ck.tensor("model.layers.0.mlp.down_proj.weigth")
    with pytest.raises(ValueError, match=r"must be \(16, 8\), not \(8, 16\)"):
        ck.tensor(NAME, (16, 8))


def test_a_projection_the_machine_cannot_hold_is_refused():
    p = MachineParams.from_dict({"buffer_beats": 64})
    with pytest.raises(ValueError, match="needs 66 buffer beats"):
        compile_projection(p, np.zeros((8, 256)), np.zeros(256))
    with pytest.raises(ValueError, match="weight_format must be 'ternary'"):
        compile_projection(MachineParams.from_dict({"gemm.weight_format": "int"}), np.zeros((8, 8)), np.zeros(8))


@pytest.mark.sim
@pytest.mark.regress
def test_a_bitnet_sized_projection_runs_on_the_rtl_at_the_models_cycles():
    """2560 x 2560 (BitNet b1.58 2B4T's attention projections): 1.6 MB of ternary weights
    streamed through the machine in 105,722 cycles (about 18 s on Verilator)."""
    from verif.machine_run import run_program

    rng = np.random.default_rng(1)
    w, x = rng.normal(0, 0.02, (2560, 2560)), rng.normal(0, 1, 2560)
    p = MachineParams()
    compiled = compile_projection(p, w, x)
    outcome = run_program(p, compiled.program, compiled.image)
    assert outcome.cycles == program_cycles(p, compiled.program)
    y, r = dequantize(p, compiled, outcome.image), reference(w, x)
    assert np.linalg.norm(y - r) <= DISTANCE * np.linalg.norm(r)


def test_bfloat16_tensors_are_read_beside_the_others(tmp_path):
    """Hugging Face checkpoints are mostly bfloat16, which numpy lacks: those tensors are
    widened to float32, and the file's other tensors still come through the library."""
    import struct

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    header = json.dumps({"a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
                         "__metadata__": {"format": "pt"}}).encode()
    body = bytes.fromhex("803f" "0040" "c0bf" "0000") + struct.pack("<f", 0.5)     # 1, 2, -1.5, 0 and 0.5
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + body)
    ck = load(folder)
    assert ck.tensor("a", (2, 2)).tolist() == [[1.0, 2.0], [-1.5, 0.0]]
    assert ck.tensor("b").tolist() == [0.5]
