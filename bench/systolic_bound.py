"""The systolic engine against the compute bound, and against SCALE-Sim's own accounting.

For 16x16 and 32x32 arrays in both dataflows, prints the exact cycles of a tiled GEMM on our
RTL (``cost_models.systolic.gemm_cycles``, which the cocotb regression proves equal to the
RTL's) over the compute bound ``M N K / (R C)``, beside SCALE-Sim v3's closed form over the
same bound (``folds x (T + 2R + C - 2) - 1`` for weight-stationary with ``T = M`` rows of A
streaming through each ``R x C`` weight fold, ``folds x (T + R + C - 2) - 1`` for
output-stationary with ``T = K``). The GEMMs are 512^3 and, where the dataflow streams along
it, K or M of 4096. ``--k-max`` is the engine's deepest run (default 4096, so that K is one
run) and ``--m-tile`` the weight-stationary engine's rows of A per run (default 512).

    python bench/systolic_bound.py [--k-max 4096] [--m-tile 512]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cost_models.systolic import gemm_cycles  # noqa: E402

GEMMS = [(512, 512, 512), (512, 512, 4096), (4096, 512, 512)]


def scale_sim(rows: int, cols: int, ws: bool, m: int, n: int, k: int) -> int:
    """SCALE-Sim's closed-form cycles for one GEMM (its published formula, not a run of it)."""
    if ws:
        folds = -(-k // rows) * -(-n // cols)
        return folds * (m + 2 * rows + cols - 2) - 1
    folds = -(-m // rows) * -(-n // cols)
    return folds * (k + rows + cols - 2) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k-max", type=int, default=4096)
    ap.add_argument("--m-tile", type=int, default=512)
    args = ap.parse_args()
    print(f"cycles / compute bound (M N K / R C); engine k_max {args.k_max}, ws m_tile {args.m_tile}")
    print(f"{'array':>6} {'dataflow':>8} {'GEMM M,N,K':>16} {'ours':>8} {'SCALE-Sim':>10}")
    for size in (16, 32):
        for ws in (False, True):
            for m, n, k in GEMMS:
                bound = m * n * k / (size * size)
                ours = int(gemm_cycles(size, size, ws, args.m_tile, args.k_max, m, n, k))
                print(f"{size}x{size:<3} {'ws' if ws else 'os':>8} {f'{m},{n},{k}':>16} "
                      f"{ours / bound:>8.3f} {scale_sim(size, size, ws, m, n, k) / bound:>10.3f}")


if __name__ == "__main__":
    main()
