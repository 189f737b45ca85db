"""Named implementation targets: FPGA devices with budgets, or an ASIC technology.

Budgets are the vendors' published device totals; ``clock_mhz`` is the default
clock constraint a design is priced at (capped by its estimated Fmax).

On Xilinx targets a product narrower than 9 bits stays in LUTs: ``synth_xilinx`` passes
``mul2dsp`` a minimum result width of 9 (measured with the project's Yosys: a 4x4 or 3x5
signed product maps to LUTs, a 4x5, 3x6 or 2x7 one to a DSP48E1/E2); ECP5's flow maps every
product with both operands of 2 bits or more to a MULT18X18D.

Distributed-RAM budgets (``lutrams``, in LUTs) are each device's published distributed RAM
over the bits one LUT holds: ECP5 data sheet FPGA-DS-02012 (194 and 669 kbit, 16 bits per
LUT4: half the LUT4s, those of the two RAM-capable slices of a PFU); Xilinx 7-series
DS180 (XC7A100T: 1,188 Kb, 64 bits per SLICEM LUT6, which Vivado reports as 19,000 "LUT as
Memory"); Kintex UltraScale DS890 (XCKU040: 7.0 Mb, 114,688 LUT6); Zynq UltraScale+ DS891
(XCK26 = ZU5EV fabric: 3.5 Mb, reported as 57,600); Virtex UltraScale+ DS923 (XCU280: 36.7
Mb, 600,960).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from generators.params import ParamError

import numpy as np


class TargetKind(enum.Enum):
    FPGA = "fpga"
    ASIC = "asic"


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    kind: TargetKind
    tech: str                 # coefficient set in cost_models/data/<family>.json
    clock_mhz: float
    lut_inputs: int = 0
    luts: int = 0
    ffs: int = 0
    dsps: int = 0
    brams: int = 0            # block RAM primitives (DP16KD on ECP5, RAMB36 on Xilinx)
    urams: int = 0            # UltraRAM blocks (UltraScale+); no engine model uses them yet
    lutrams: int = 0          # LUTs that can be distributed RAM (SLICEM on Xilinx, half of ECP5's)
    dsp_a_bits: int = 0       # widest operands one DSP multiplier takes
    dsp_b_bits: int = 0
    dsp_slice_bits: int = 0   # width of the slices a wider operand is cut into (0: dsp_a_bits)
    dsp_signed_only: bool = False     # the DSP multiplies signed operands only (a bit per slice lost)
    dsp_min_product_bits: int = 0     # narrower products stay in fabric (the flow's DSP_Y_MINWIDTH)
    offchip_gbytes_s: float = 0.0     # sustained off-chip bandwidth (a board assumption, see description)
    dram_pj_per_bit: float = 0.0      # off-chip access energy
    description: str = ""

    def dsps_per_product(self, a_bits, w_bits):
        """Hard multipliers one ``a_bits x w_bits`` product takes (FPGA targets): Yosys's
        ``mul2dsp`` split, which cuts the wider operand into slices until each piece fits; none
        for a product narrower than ``dsp_min_product_bits``."""
        a, w = np.broadcast_arrays(np.asarray(a_bits, dtype=np.int64), np.asarray(w_bits, dtype=np.int64))
        keys, where = np.unique((a << 32) | w, return_inverse=True)      # a few distinct width pairs
        counts = np.array([_mul2dsp_split(int(k >> 32), int(k & 0xFFFFFFFF), self.dsp_a_bits, self.dsp_b_bits,
                                          self.dsp_slice_bits or self.dsp_a_bits, int(self.dsp_signed_only))
                           for k in keys], dtype=np.int64)
        return np.where(a + w >= self.dsp_min_product_bits, counts[where].reshape(a.shape), 0)

    def hard_multiplier(self, a_bits, w_bits, rule: tuple[int, int]):
        """:func:`on_hard_multiplier` with the fitted ``rule``, and never for a product narrower
        than the flow maps to a DSP (a fact of the flow, not a fit: a sample without such
        products cannot teach it)."""
        return on_hard_multiplier(a_bits, w_bits, (rule[0], max(rule[1], self.dsp_min_product_bits)))

    def fits(self, lut, ff, dsp, bram=0, lutram=0) -> np.ndarray:
        """Per design, whether LUT, FF, DSP, block-RAM and distributed-RAM use are all within
        the device budget (distributed RAM only fits the LUTs that can hold it)."""
        if self.kind is not TargetKind.FPGA:
            return np.ones(np.shape(lut), dtype=bool)
        return ((np.asarray(lut) <= self.luts) & (np.asarray(ff) <= self.ffs) & (np.asarray(dsp) <= self.dsps)
                & (np.asarray(bram) <= self.brams) & (np.asarray(lutram) <= self.lutrams))

    def utilisation(self, lut, ff, dsp, bram=0) -> np.ndarray:
        """Per design, the LUT, FF, DSP and block-RAM use as fractions of the device (FPGA)."""
        bram = np.broadcast_to(bram, np.shape(lut))
        return np.stack([np.asarray(lut) / self.luts, np.asarray(ff) / self.ffs,
                         np.asarray(dsp) / max(self.dsps, 1), np.asarray(bram) / max(self.brams, 1)], axis=-1)

    def over_budget(self, lut, ff, dsp, bram=0, lutram=0) -> np.ndarray:
        """Per design, LUT, FF, DSP, block-RAM and distributed-RAM use over the device budget
        as fractions (<= 0 fits)."""
        if self.kind is not TargetKind.FPGA:
            return np.zeros(np.shape(lut) + (5,))
        lutram = np.broadcast_to(np.asarray(lutram, dtype=np.float64), np.shape(lut))
        return np.concatenate([self.utilisation(lut, ff, dsp, bram),
                               (lutram / max(self.lutrams, 1))[..., None]], axis=-1) - 1

    def area(self, lut, ff, dsp, bram, transistors) -> np.ndarray:
        """The ``area`` objective. On an FPGA the device utilisation: the largest of the LUT, FF,
        DSP and block-RAM fractions, since a design is as big as the resource it exhausts first
        (LUTs alone would call a design that takes every DSP small). On an ASIC, transistors."""
        if self.kind is not TargetKind.FPGA:
            return np.asarray(transistors)
        return self.utilisation(lut, ff, dsp, bram).max(axis=-1)

    @property
    def area_label(self) -> str:
        return ("device utilisation (largest of LUT, FF, DSP, BRAM fractions)" if self.kind is TargetKind.FPGA
                else "transistors")


@lru_cache(maxsize=None)
def _mul2dsp_split(a: int, b: int, a_max: int, b_max: int, slice_bits: int, headroom: int,
                   top: bool = True) -> int:
    """DSP blocks for an ``a x b`` product as ``mul2dsp`` splits it: the wider operand goes on A
    once, at the top; its slices keep ``b`` on B, so a ``b`` wider than B splits each of them
    again (a 44 x 20-bit product takes 3 x 2 DSP48s, not 3). A piece with a 1-bit operand stays
    in fabric."""
    if top:
        a, b = max(int(a), int(b)), min(int(a), int(b))
    if min(a, b) < 2:
        return 0
    step = slice_bits - headroom
    if a > a_max:
        n = (a - a_max + step - 1) // step
        return n * _mul2dsp_split(slice_bits, b, a_max, b_max, slice_bits, headroom, False) + \
            _mul2dsp_split(a - n * step, b, a_max, b_max, slice_bits, headroom, False)
    if b > b_max:
        n = (b - b_max + step - 1) // step
        return n * _mul2dsp_split(a, slice_bits, a_max, b_max, slice_bits, headroom, False) + \
            _mul2dsp_split(a, b - n * step, a_max, b_max, slice_bits, headroom, False)
    return 1


def on_hard_multiplier(a_bits, w_bits, rule: tuple[int, int]):
    """Whether synthesis maps an ``a_bits x w_bits`` product to a DSP block.

    ``rule`` = (min operand bits, min product bits), fitted per technology by calibration.
    """
    a, w = np.asarray(a_bits), np.asarray(w_bits)
    return (np.minimum(a, w) >= rule[0]) & (a + w >= rule[1])


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target(name="ecp5-25k", kind=TargetKind.FPGA, tech="ecp5", clock_mhz=100.0, lut_inputs=4,
           luts=24288, ffs=24288, dsps=28, brams=56, lutrams=12144, dsp_a_bits=18, dsp_b_bits=18,
           offchip_gbytes_s=0.8, dram_pj_per_bit=20.0,
           description="Lattice LFE5U-25F: LUT4, MULT18X18D, DP16KD; 16-bit DDR3-400 (0.8 GB/s)"),
    Target(name="ecp5-85k", kind=TargetKind.FPGA, tech="ecp5", clock_mhz=100.0, lut_inputs=4,
           luts=83640, ffs=83640, dsps=156, brams=208, lutrams=41820, dsp_a_bits=18, dsp_b_bits=18,
           offchip_gbytes_s=1.6, dram_pj_per_bit=20.0,
           description="Lattice LFE5U-85F: LUT4, MULT18X18D, DP16KD; 16-bit DDR3-800 (1.6 GB/s)"),
    Target(name="xilinx-7", kind=TargetKind.FPGA, tech="xilinx", clock_mhz=200.0, lut_inputs=6,
           luts=63400, ffs=126800, dsps=240, brams=135, lutrams=19000, dsp_a_bits=25, dsp_b_bits=18,
           dsp_slice_bits=18, dsp_signed_only=True, dsp_min_product_bits=9,
           offchip_gbytes_s=2.6, dram_pj_per_bit=20.0,
           description="AMD Artix-7 XC7A100T: LUT6, DSP48E1, RAMB36E1; 16-bit DDR3-1333 (2.6 GB/s)"),
    Target(name="xilinx-us", kind=TargetKind.FPGA, tech="xilinx", clock_mhz=300.0, lut_inputs=6,
           luts=242400, ffs=484800, dsps=1920, brams=600, lutrams=114688, dsp_a_bits=27, dsp_b_bits=18,
           dsp_slice_bits=18, dsp_signed_only=True, dsp_min_product_bits=9,
           offchip_gbytes_s=19.2, dram_pj_per_bit=15.0,
           description="AMD Kintex UltraScale XCKU040: LUT6, DSP48E2, RAMB36E2; 64-bit DDR4-2400 (19.2 GB/s)"),
    Target(name="kv260", kind=TargetKind.FPGA, tech="xilinx", clock_mhz=300.0, lut_inputs=6,
           luts=117120, ffs=234240, dsps=1248, brams=144, urams=64, lutrams=57600, dsp_a_bits=27, dsp_b_bits=18,
           dsp_slice_bits=18, dsp_signed_only=True, dsp_min_product_bits=9,
           offchip_gbytes_s=19.2, dram_pj_per_bit=15.0,
           description="AMD Kria KV260 (Zynq UltraScale+ K26 SOM, XCK26): 117,120 LUT6, 234,240 FF, "
                       "1,248 DSP48E2, 144 RAMB36, 64 URAM (K26 data sheet DS987); 64-bit DDR4-2400, "
                       "19.2 GB/s peak"),
    Target(name="u280", kind=TargetKind.FPGA, tech="xilinx", clock_mhz=300.0, lut_inputs=6,
           luts=1303680, ffs=2607360, dsps=9024, brams=2016, urams=960, lutrams=600960, dsp_a_bits=27, dsp_b_bits=18,
           dsp_slice_bits=18, dsp_signed_only=True, dsp_min_product_bits=9,
           offchip_gbytes_s=460.0, dram_pj_per_bit=4.0,
           description="AMD Alveo U280 (XCU280): 1,303,680 LUT6, 2,607,360 FF, 9,024 DSP48E2, "
                       "2,016 RAMB36, 960 URAM (Alveo U280 data sheet DS963); 8 GB HBM2, 460 GB/s"),
    Target(name="asic-45nm", kind=TargetKind.ASIC, tech="asic45", clock_mhz=1000.0,
           offchip_gbytes_s=25.6, dram_pj_per_bit=10.0,
           description="generic 45 nm standard cells; area as a transistor count; LPDDR4 x32 (25.6 GB/s)"),
)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ParamError(f"target must be one of {', '.join(TARGETS)}, not {name!r}") from None
