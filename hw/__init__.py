"""Reusable Amaranth building blocks shared by the generator families."""


def index_shape(count: int) -> range:
    """Shape of an index into ``count`` items; never zero bits wide.

    Amaranth emits a zero-width signal as ``[-1:0]``, which Verilator rejects,
    so one-item structures still get a one-bit index.
    """
    return range(max(count, 2))
