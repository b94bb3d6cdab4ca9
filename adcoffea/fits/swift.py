"""Sliding-window fits (SWiFt-like) for spectra a single global function cannot describe.

For every bin, the background function is fitted to a window of ``2 * half_width + 1`` bins
around it (shifted inwards at the edges of the range so every window has the same number of
bins) and the window fit's expectation in that bin is the background estimate. A low-order
function is then only asked to describe a narrow stretch of the spectrum.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 6000.0, 34)
    >>> b = expected_counts(edges, [2e4, 7.80, 5.26, 1.13])
    >>> res = sliding_window_fit(b, edges=edges, half_width=6, n_params=3)
    >>> bool(np.max(np.abs(res.background / b - 1)) < 1e-3)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_arrays, histogram_arrays, range_slice
from adcoffea.fits.poisson import deviance, poisson_pulls
from adcoffea.outputs import to_jsonable


@dataclass(frozen=True)
class SlidingWindowResult:
    """Background estimate per bin from window fits."""

    function: str
    n_params: int
    half_width: int
    edges: np.ndarray
    counts: np.ndarray
    background: np.ndarray
    windows: tuple[tuple[int, int], ...]
    converged: np.ndarray

    @property
    def pulls(self) -> np.ndarray:
        return poisson_pulls(self.counts, self.background)

    @property
    def deviance(self) -> float:
        return deviance(self.counts, self.background)

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "method": "sliding_window",
                "function": self.function,
                "n_params": self.n_params,
                "half_width": self.half_width,
                "edges": self.edges,
                "counts": self.counts,
                "background": self.background,
                "pulls": self.pulls,
                "deviance": self.deviance,
                "windows": [list(w) for w in self.windows],
                "converged": self.converged,
            }
        )


def sliding_window_fit(
    hist_or_counts: Any,
    *,
    edges: np.ndarray | None = None,
    half_width: int = 8,
    function: str = "dijet",
    n_params: int = 3,
    sqrt_s: float = 13000.0,
    fit_range: Sequence[float] | None = None,
    signal: np.ndarray | None = None,
) -> SlidingWindowResult:
    """Background estimate from a fit in a sliding window around each bin.

    Args:
        hist_or_counts: 1D ``hist.Hist`` or counts (with ``edges``).
        half_width: bins on each side of the central bin in a window.
        function, n_params, sqrt_s: window background model (low order is the point).
        fit_range: ``(low, high)`` GeV.
        signal: optional signal shape per histogram bin; fitted with free yield in every window
            (S+B windows) and excluded from the returned background.
    """
    all_edges, counts = histogram_arrays(hist_or_counts, edges=edges)
    sl = range_slice(all_edges, fit_range)
    e = all_edges[sl.start : sl.stop + 1]
    n = counts[sl].astype(float)
    sig = None if signal is None else np.asarray(signal, dtype=float)[sl]
    nbins = len(n)
    size = 2 * half_width + 1
    if size > nbins:
        raise ConfigError(f"window of {size} bins is wider than the {nbins} fitted bins")
    if size <= n_params + (sig is not None):
        raise ConfigError(f"window of {size} bins too small for {n_params} parameters")
    bkg = np.empty(nbins)
    ok = np.empty(nbins, dtype=bool)
    windows = []
    start_shape = None
    for i in range(nbins):
        lo = min(max(i - half_width, 0), nbins - size)
        hi = lo + size
        windows.append((lo, hi))
        start = None
        if start_shape is not None:
            start = [max(n[lo:hi].sum(), 1.0), *start_shape]
            if sig is not None:
                start.append(0.0)
        res = fit_arrays(
            e[lo : hi + 1],
            n[lo:hi],
            function=function,
            n_params=n_params,
            sqrt_s=sqrt_s,
            signal=None if sig is None else sig[lo:hi],
            start=start,
        )
        start_shape = res.values[1:n_params]
        bkg[i] = res.background[i - lo]
        ok[i] = res.converged
    return SlidingWindowResult(function, n_params, half_width, e, n, bkg, tuple(windows), ok)
