"""Published FPGA LLM accelerators beside the best accelerator our models find on the same board.

Usage: python bench/published.py [--designs N] [--seed S] [--smoke]
For each published system: its device and model are pinned, N random whole-accelerator
designs are drawn from the explorer's own space and priced on every op of a token, and
the best one that fits the device is printed with the published figure and the roofline
(the rate the board's bandwidth allows for the weights and KV cache). Our figures are
model predictions (the engines' coefficients fitted to Yosys/nextpnr, the vector unit modelled
without RTL); the published ones are the papers' own.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cost_models.targets import get_target  # noqa: E402
from dse.families import get_family  # noqa: E402
from dse.workloads import MODELS, Phase, expand  # noqa: E402


@dataclass(frozen=True)
class Published:
    system: str
    model: str
    phase: Phase
    seq_len: int
    target: str
    figure: str              # "tokens_per_s" or "ttft_s"
    value: str               # as published
    source: str


SYSTEMS = (
    Published("Llama-2-7B W4 on KV260", "llama2-7b-w4g128", Phase.DECODE, 1024, "kv260", "tokens_per_s",
              "~5 (85% of the 19.2 GB/s bound)", "KV260 Llama-2-7B W4 decoder designs"),
    Published("TeLLMe v2 decode", "bitnet-b1.58-2b4t", Phase.DECODE, 1024, "kv260", "tokens_per_s",
              "up to 25", "TeLLMe v2 abstract (arXiv 2510.15926), 5 W"),
    Published("TeLLMe v2 prefill, 64 tokens", "bitnet-b1.58-2b4t", Phase.PREFILL, 64, "kv260", "ttft_s",
              "0.45", "TeLLMe v2 abstract: TTFT 0.45-0.96 s for 64-128-token prompts"),
    Published("TeLLMe v2 prefill, 128 tokens", "bitnet-b1.58-2b4t", Phase.PREFILL, 128, "kv260", "ttft_s",
              "0.96", "TeLLMe v2 abstract"),
    Published("TeLLMe v1 decode", "bitnet-b1.58-2b4t", Phase.DECODE, 1024, "kv260", "tokens_per_s",
              "up to 9", "TeLLMe v1 abstract (arXiv 2504.16266), 7 W"),
)


class RandomTrial:
    """Duck-typed Optuna trial drawing uniformly (log-uniformly where declared) with NumPy."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def suggest_categorical(self, name, choices):
        return choices[self.rng.integers(len(choices))]

    def suggest_int(self, name, lo, hi, log=False):
        if log:
            return int(min(hi, np.floor(np.exp(self.rng.uniform(np.log(lo), np.log(hi + 1))))))
        return int(self.rng.integers(lo, hi + 1))


def best_design(case: Published, designs: int, seed: int):
    family = get_family("accelerator")
    workload = expand(MODELS[case.model], case.phase, batch=1, seq_len=case.seq_len)
    space = family.space(workload, {}, {})
    rng = np.random.default_rng(seed)
    rows = [space.suggest(RandomTrial(rng)) for _ in range(designs)]
    target = get_target(case.target)
    m = family.price(space.columns(rows), workload, target)
    fits = np.flatnonzero(m["fits"])
    best = fits[np.argmax(m["tokens_per_s"][fits])]
    return workload, space.point(rows[best]), {k: np.asarray(v)[best] for k, v in m.items() if k != "ops"}, len(fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="200 designs per row (seconds): that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.designs = 200
    if not 1 <= args.designs <= 10_000_000:
        parser.error(f"--designs must be an integer in 1..10000000, not {args.designs}")
    print(f"best of {args.designs:,} random accelerators per row (seed {args.seed}), fitting the device\n")
    print("| system | model, phase | published | ours (predicted) | roofline | our design |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case in SYSTEMS:
        workload, design, m, fitting = best_design(case, args.designs, args.seed)
        unit = "tokens/s" if case.figure == "tokens_per_s" else "s TTFT"
        ours = m["tokens_per_s"] if case.figure == "tokens_per_s" else m["latency_s"]
        roof = m["roofline_tokens_per_s"] if case.figure == "tokens_per_s" else workload.tokens / m["roofline_tokens_per_s"]
        g = design.gemm_params
        shape = (f"{g.rows}x{g.cols} {g.dataflow.value}" if design.gemm.value == "systolic"
                 else f"{g.m_tile}x{g.n_tile}" + (f" g{g.g}" if hasattr(g, "g") else f" k{g.k_lanes}"))
        text = (f"{design.gemm.value} {shape} x{design.gemm_instances}, attention lanes {design.attention.lanes} "
                f"x{design.attention_instances}, {design.vector.lanes} vector lanes; {m['clock_mhz']:.0f} MHz, "
                f"{m['lut']:,.0f} LUT, {m['dsp']:.0f} DSP, {m['bram']:.0f} BRAM")
        print(f"| {case.system} | {workload.name}, {case.seq_len} | {case.value} {unit} | {ours:.3g} {unit} | "
              f"{roof:.3g} {unit} | {text} |")


if __name__ == "__main__":
    main()
