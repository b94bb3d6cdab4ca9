"""Shared pieces of the figures: the style context and hist-or-array inputs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def hep_style() -> Iterator[None]:
    """mplhep's ROOT style for the figures created inside the block (not globally)."""
    import matplotlib.style
    import mplhep

    with matplotlib.style.context(mplhep.style.ROOT):
        yield


def values_and_edges(obj: Any, edges: Any = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Bin values and per-axis edges of a ``hist.Hist`` or of counts plus ``edges``.

    Without edges the bins are numbered (0, 1, ...); 2D counts take a pair of edge arrays.
    """
    if hasattr(obj, "axes") and hasattr(obj, "values"):
        values = np.asarray(obj.values(flow=False), dtype=float)
        return values, [np.asarray(ax.edges, dtype=float) for ax in obj.axes]
    values = np.asarray(obj, dtype=float)
    if edges is None:
        return values, [np.arange(n + 1, dtype=float) for n in values.shape]
    if values.ndim == 1:
        return values, [np.asarray(edges, dtype=float)]
    return values, [np.asarray(e, dtype=float) for e in edges]
