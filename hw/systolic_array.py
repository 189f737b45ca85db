"""Two-dimensional PE grids, wired neighbour to neighbour.

Both grids take operands already skewed (lane ``i`` delayed ``i`` cycles) and
share one clock enable, so a stall freezes the whole wavefront in place.
"""
from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import index_shape
from hw.pe import OutputStationaryPE, WeightStationaryPE


class OutputStationaryArray(wiring.Component):
    """``rows x cols`` output-stationary grid: A enters on the left, B on the top.

    ``acc[i][j]`` accumulates ``sum_k a[i,k] * b[k,j]`` for the skewed operand streams;
    it is complete ``rows + cols - 2`` cycles after the last operand pair enters.
    Runs every cycle. ``clear`` has a bit per anti-diagonal (bit ``d`` reaches the PEs
    with ``i + j == d``; :class:`~hw.tile_buffer.DiagonalDrain` makes them), so a
    one-cycle bubble between tiles clears each PE just as it passes and the next
    tile follows one cycle behind the last.
    """

    def __init__(self, rows: int, cols: int, a_shape: Shape, b_shape: Shape, acc_shape: Shape):
        self._dims = (rows, cols)
        self._shapes = (a_shape, b_shape, acc_shape)
        super().__init__({
            "a_in": In(data.ArrayLayout(a_shape, rows)),
            "b_in": In(data.ArrayLayout(b_shape, cols)),
            "clear": In(rows + cols - 1),
            "acc": Out(data.ArrayLayout(acc_shape, cols)).array(rows),     # a signal per row (tile_buffer)
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._dims
        grid = [[None] * cols for _ in range(rows)]
        for i in range(rows):
            for j in range(cols):
                pe = grid[i][j] = m.submodules[f"pe_{i}_{j}"] = OutputStationaryPE(*self._shapes)
                m.d.comb += [
                    pe.clear.eq(self.clear[i + j]),
                    pe.a_in.eq(self.a_in[i] if j == 0 else grid[i][j - 1].a_out),
                    pe.b_in.eq(self.b_in[j] if i == 0 else grid[i - 1][j].b_out),
                    self.acc[i][j].eq(pe.acc),
                ]
        return m


class WeightStationaryArray(wiring.Component):
    """``rows x cols`` weight-stationary grid: row ``r`` holds reduction index ``r``.

    Activations enter on the left (lane ``r`` = reduction index ``r``), partial
    sums flow down and leave at the bottom as ``psum[j]``. ``w_load`` with
    ``w_row`` writes one row of the next weights (all columns) per cycle into the
    PEs' shadows; ``swap`` has a bit per anti-diagonal (bit ``d`` reaches the PEs with
    ``r + j == d``), so a swap launched with a slice's first activations follows
    their wavefront.
    """

    def __init__(self, rows: int, cols: int, a_shape: Shape, w_shape: Shape, acc_shape: Shape):
        self._dims = (rows, cols)
        self._shapes = (a_shape, w_shape, acc_shape)
        super().__init__({
            "a_in": In(data.ArrayLayout(a_shape, rows)),
            "en": In(1),
            "w_load": In(1), "w_row": In(index_shape(rows)),
            "w_data": In(data.ArrayLayout(w_shape, cols)),
            "swap": In(rows + cols - 1),
            "psum": Out(data.ArrayLayout(acc_shape, cols)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._dims
        grid = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for j in range(cols):
                pe = grid[r][j] = m.submodules[f"pe_{r}_{j}"] = WeightStationaryPE(*self._shapes)
                m.d.comb += [
                    pe.en.eq(self.en),
                    pe.w_load.eq(self.w_load & (self.w_row == r)),
                    pe.w_data.eq(self.w_data[j]),
                    pe.swap.eq(self.swap[r + j]),
                    pe.a_in.eq(self.a_in[r] if j == 0 else grid[r][j - 1].a_out),
                    pe.psum_in.eq(0 if r == 0 else grid[r - 1][j].psum_out),
                ]
        for j in range(cols):
            m.d.comb += self.psum[j].eq(grid[rows - 1][j].psum_out)
        return m
