"""PPA model of the MAC mpGEMM baseline, vectorised over design points.

Cycles, tiling and traffic are the shared exact forms of
:mod:`cost_models.mpgemm` with ``group = k_lanes`` and one weight beat per
group. Every output element has ``k_lanes`` multipliers of
``a_bits x wq`` (``wq``: :func:`weight_operand_bits`, one bit more for ``uint``),
placed on hard multipliers by the technology's fitted rule, or none for
weights in {-1, 0, +1} (add, subtract or skip); resources,
area and energy are structural counts times coefficients kept in
``cost_models/data/mac_mpgemm.json``.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

from cost_models.coefficients import CmosCoefficients, FabricCoefficients, coefficients, provenance, weighted
from cost_models.mpgemm import tiling
from cost_models.pricing import price
from cost_models.ops import Gemm
from cost_models.targets import Target, TargetKind
from generators.mac_mpgemm import MacMpGemmParams, multiply_free, weight_operand_bits
from generators.mpgemm import UINT_CODE, out_bits
from generators.widths import bits_for

Points = Union[MacMpGemmParams, Sequence[MacMpGemmParams], Mapping[str, np.ndarray]]


def prepare(points: Points) -> dict[str, np.ndarray]:
    if isinstance(points, MacMpGemmParams):
        points = [points]
    col = dict(points) if isinstance(points, Mapping) else MacMpGemmParams.columns(points)
    col = {k: np.asarray(v) for k, v in col.items()}
    fmt = col["weight_format"].astype(np.int64)
    a, b, k_max = col["a_bits"].astype(np.int64), col["w_bits"].astype(np.int64), col["k_max"].astype(np.int64)
    return {"m_tile": col["m_tile"].astype(np.int64), "n_tile": col["n_tile"].astype(np.int64),
            "lanes": col["k_lanes"].astype(np.int64), "a_bits": a, "w_bits": b, "fmt": fmt,
            "k_max": k_max, "out": out_bits(a, b, fmt, k_max), "uint": fmt == UINT_CODE,
            "free": multiply_free(fmt, b), "wq": weight_operand_bits(fmt, b),
            "valid": MacMpGemmParams.valid_columns(col)}


def features(c: Mapping[str, np.ndarray], on_dsp) -> dict[str, dict[str, np.ndarray]]:
    """Structural features of the generated RTL, grouped by the figure they price.

    Read off mapped netlists (``accelforge synth mac_mpgemm --breakdown``): in fabric, each
    output element's products and its accumulator merge into one multi-operand adder that
    Yosys lowers to full-adder trees in LUTs (cost follows the partial-product bits); on
    DSPs the products and the accumulation sit in the DSP blocks and the fabric keeps the
    adds the DSPs' post-adders cannot take. Multiply-free designs (weights in {-1, 0, +1})
    have ``k_lanes`` carry-chain adders per element, no multiplier. The drain bank shifts
    ``m_tile - 1`` rows.
    """
    mt, nt, lanes, a, wq, out = c["m_tile"], c["n_tile"], c["lanes"], c["a_bits"], c["wq"], c["out"]
    units = mt * nt
    free = c["free"]
    hard = np.asarray(on_dsp, dtype=bool) & ~free
    soft = ~hard & ~free
    dequant = np.where(c["uint"] & ~free, nt * lanes * wq, 0)
    operand = mt * lanes * a
    zp_reg = np.where(c["uint"], nt * c["w_bits"], 0)
    control = bits_for(c["k_max"] + 1) + bits_for(mt + 1) + 6     # + pass index bit, flags, state
    registers = operand + 2 * units * out + zp_reg + control     # every flip-flop of the RTL, exactly
    one = np.ones_like(mt)
    return {
        "lut": {"const": one, "soft_partial_products": soft * units * lanes * a * wq,
                "soft_extended_products": soft * units * lanes * wq * out, "soft_acc": soft * units * out,
                "hard_adds": hard * units * (lanes - 1) * (a + wq), "hard_products": hard * units * lanes,
                "hard_acc": hard * units * out, "hard_signed_codes": hard * ~c["uint"] * units * out,
                "free_adds": free * units * lanes * out, "dequant": dequant, "drain": (mt - 1) * nt * out,
                "control": control},
        # a DSP48 absorbs the operand registers and, with its enable and reset, the accumulator
        # (its P register); a MULT18X18D absorbs neither
        "ff": {"const": one, "registers": registers - hard * (operand + units * out),
               "dsp_operands": hard * operand, "dsp_acc": hard * units * out},
        "period_ns": {"const": one, "dsp": hard.astype(np.float64),
                      "soft_mult_level": np.log2(np.minimum(a, wq)) * soft,
                      "acc_bit": out, "tree_levels": np.log2(lanes)},
        "cmos": {"const": one, "reg": registers,
                 "mult": ~free * units * lanes * a * wq,
                 "adder": (~free * units * (lanes - 1) * (a + wq + bits_for(lanes)) + units * out + dequant
                           + free * units * lanes * out),
                 "mux": units * out},
    }


def estimate(points: Points, gemm: Gemm, target: Target) -> dict[str, np.ndarray]:
    """PPA of every design point running ``gemm`` on ``target`` (dict of equal-length arrays)."""
    c = prepare(points)
    fab = coefficients("mac_mpgemm", target.tech, FabricCoefficients)
    cmos = coefficients("mac_mpgemm", "cmos", CmosCoefficients)
    wq = c["wq"]
    fpga = target.kind is TargetKind.FPGA
    on_dsp = (target.hard_multiplier(c["a_bits"], wq, (fab.dsp_min_bits, fab.dsp_min_product_bits)) if fpga
              else np.zeros(c["a_bits"].shape, dtype=bool)) & ~c["free"]
    feats = features(c, on_dsp)
    counts = tiling(c["lanes"], 1, c["m_tile"], c["n_tile"], c["k_max"], gemm)
    units = c["m_tile"] * c["n_tile"]
    macs = counts["beats"] * units * c["lanes"]
    e = fab.energy
    e_compute = macs * (e["j_per_mult_bit2"] * c["a_bits"] * wq * ~c["free"] + e["j_per_adder_bit"] * c["out"])
    dsp = np.where(on_dsp, units * c["lanes"] * target.dsps_per_product(c["a_bits"], wq) if fpga else 0, 0)
    traffic = gemm.offchip_bits(c["m_tile"], c["n_tile"], counts["chunks"], c["a_bits"], c["w_bits"], c["out"])
    return price(ops=gemm.ops, target=target, fab=fab, counts=counts,
                 lut=weighted(fab.lut, feats["lut"]), ff=weighted(fab.ff, feats["ff"]), dsp=dsp,
                 area=weighted(cmos.transistors, feats["cmos"]),
                 period_ns=weighted(fab.period_ns, feats["period_ns"]), reg_bits=feats["cmos"]["reg"],
                 e_compute=e_compute, offchip=traffic, valid=c["valid"],
                 extra={"out_bits": c["out"], "macs": macs, "macs_per_cycle": units * c["lanes"]})


def model_info() -> dict[str, object]:
    return {"family": "mac_mpgemm", "coefficients": provenance("mac_mpgemm")}


# ---------------------------------------------------------------------- calibration hooks
CALIBRATION_BOX = {"m_tile": (1, 4), "n_tile": (1, 16), "k_lanes": (1, 8), "k_max": (4, 1024)}
FLOW_BOXES = {"ecp5": {"m_tile": (1, 2), "n_tile": (1, 8), "k_lanes": (1, 4), "k_max": (4, 256)}}
"""ECP5: one design of the full box ran past nextpnr's 30-minute limit on a 2-core machine."""


def calibration_features(points: Points, dsp_rule: tuple[int, int], target: Target,
                         tables: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    c = prepare(points)
    return features(c, target.hard_multiplier(c["a_bits"], c["wq"], dsp_rule))


def multipliers(points: Points, target: Target) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One role: ``m_tile x n_tile x k_lanes`` products of ``a_bits x wq`` (none where
    the weights are in {-1, 0, +1})."""
    c = prepare(points)
    return [(c["m_tile"] * c["n_tile"] * c["lanes"] * ~c["free"], c["a_bits"], c["wq"])]
