"""Batched refits of the toys (the pseudo-experiments of the look-elsewhere step).

Every toy of :mod:`adcoffea.hunt.lee` is fitted as the data was: the same function family and
orders on the same bins with the SR left out, the order chosen by the same Wilks test, B, its
fit uncertainty and the fit-function envelope computed the same way as in
:func:`adcoffea.hunt.estimate.estimate_background`. ``select_order`` (iminuit) takes ~15 ms per
fit and the hunt needs ~10^5 toy fits, so the fits of a whole batch of toy spectra are done at
once by :func:`adcoffea.fits.batch.fit_batch` (Newton's method on the same likelihood and bin
quadrature, warm-started at the data's fit of each order; it reaches the same minimum).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def select_batch(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: np.ndarray,
    *,
    starts: dict[int, Sequence[float]],
    function: str = "dijet",
    sqrt_s: float = 13000.0,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order selection as :func:`adcoffea.fits.order.select_order` (Wilks), batched.

    ``starts`` maps each order to its starting shape parameters. Returns, per row, B of the
    chosen order, its fit-statistics uncertainty and the fit-function envelope (|B| difference
    to the next order, or to the previous one when the highest order is chosen), like
    :func:`adcoffea.hunt.estimate.estimate_background`.
    """
    from adcoffea.fits.order import select_order_batch

    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    sr = np.asarray(sr, dtype=bool)
    inside = np.flatnonzero(sr)
    first, stop = int(inside[0]), int(inside[-1]) + 1
    if stop - first != len(inside):
        raise ValueError("the signal region must be contiguous bins")
    sel = select_order_batch(edges, counts, starts=starts, function=function, sqrt_s=sqrt_s,
                             mask=~sr, alpha=alpha)  # fmt: skip
    orders = sorted(starts)
    fits = {}
    for n, res in sel.fits.items():
        with np.errstate(invalid="ignore"):
            fits[n] = (res.prediction(first, stop), res.prediction_error(first, stop))
    chosen = sel.chosen
    t_n = counts.shape[0]
    b = np.full(t_n, np.nan)
    s_stat = np.full(t_n, np.nan)
    s_func = np.zeros(t_n)
    for i, n in enumerate(orders):
        rows = chosen == n
        if not rows.any():
            continue
        # unfittable rows are NaN; a row short of fit_batch's strict tolerance (1e-12 in -ln L)
        # is at its minimum for any purpose here
        b[rows] = fits[n][0][rows]
        s_stat[rows] = fits[n][1][rows]
        alt = orders[i + 1] if i + 1 < len(orders) else (orders[i - 1] if i > 0 else None)
        if alt is not None:
            s_func[rows] = np.abs(fits[alt][0][rows] - b[rows])
    s_func = np.where(np.isfinite(s_func), s_func, 0.0)
    return b, s_stat, s_func
