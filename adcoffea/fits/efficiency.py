"""Data-driven background of a score region: the inclusive data times a smooth cut efficiency.

A score region's background is estimated from the inclusive histogram of the same data,
``b = N_incl * eff``, with the cut efficiency measured on the data themselves. In 2D the
efficiency is measured per bin of the second axis (m_X, on which a jet-level score depends);
in 1D there is one column.

The efficiency is not assumed flat along the first axis (mjj). A jet-level score depends on
the jet's m/pT, and at fixed m_X the jets at low mjj have lower pT: on the synthetic Y->XH
sample the VRNN efficiency of the 540-600 GeV m_X columns falls from 0.30 at mjj 2.6 TeV to
0.18 at 5.5 TeV. A flat efficiency per column then predicts too little background at low
mjj, which a 2D BumpHunter reports as a bump (global Z 2.97 on one background-only seed).
So each column gets a logistic trend, ``logit eff = a + b x`` with ``x`` the standardised
log of the bin centre, fitted by binomial maximum likelihood to the rows of the scanned
range (``trend=False``: a constant per column, the old model).

The estimate's uncertainty per bin is ``N_incl * sigma(eff)`` from the fit's covariance.
:func:`efficiency_toys` gives pseudo-experiments for the global p-value that are made as the
data were: the region counts drawn binomially from the inclusive counts with the fitted
efficiency (the test is conditional on the inclusive histogram, which the signal enters
too), and every toy's efficiency refitted, so that the look-elsewhere correction includes the
estimate's own fluctuations.

Example:
    >>> import numpy as np
    >>> incl = np.array([1000.0, 800.0, 600.0, 400.0])
    >>> region = np.array([100.0, 80.0, 60.0, 40.0])
    >>> est = fit_efficiency(incl, region, centres=np.array([1.0, 2.0, 3.0, 4.0]))
    >>> np.round(est.background, 3).tolist()
    [100.0, 80.0, 60.0, 40.0]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from adcoffea.errors import ConfigError

__all__ = ["EfficiencyEstimate", "efficiency_toys", "fit_efficiency"]

log = logging.getLogger(__name__)

#: a column with fewer passing (or failing) events than this in the fitted rows gets a
#: constant efficiency: a slope is not measurable there and the fit could separate
MIN_EVENTS_FOR_TREND = 10
_NEWTON_STEPS = 12


@dataclass(frozen=True)
class EfficiencyEstimate:
    """The efficiency background of one region.

    Attributes:
        background: ``N_incl * eff`` per bin (the inclusive histogram's shape).
        uncertainty: its per-bin uncertainty from the efficiency fit, ``N_incl * sigma(eff)``.
        efficiency: the fitted efficiency per bin.
        rows: the bins of the first axis the efficiency was fitted in.
        trend: whether the efficiency had a slope along the first axis.
        trend_columns: columns that got a slope (the others too few events).
    """

    background: np.ndarray
    uncertainty: np.ndarray
    efficiency: np.ndarray
    rows: np.ndarray
    trend: bool
    trend_columns: int

    @property
    def description(self) -> str:
        """One line for reports."""
        shape = "constant"
        if self.trend:
            columns = 1 if self.efficiency.ndim == 1 else self.efficiency.shape[1]
            shape = (f"a logistic trend in log of the first axis in {self.trend_columns} of "
                     f"{columns} column(s), the others too few events")  # fmt: skip
        where = "per bin of the second axis" if self.efficiency.ndim == 2 else "overall"
        return (
            f"inclusive x cut efficiency ({where}, {shape}, fitted in {int(self.rows.sum())} "
            "bins of the scanned range), with the efficiency fit's uncertainty"
        )


def _columns(a: np.ndarray) -> np.ndarray:
    return a[:, None] if a.ndim == 1 else a


def _x(centres: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Standardised log of the bin centres (the trend's variable)."""
    c = np.asarray(centres, dtype=float)
    lc = np.log(c) if np.all(c > 0) else c
    mu, sd = lc[rows].mean(), lc[rows].std()
    return (lc - mu) / (sd if sd > 0 else 1.0)


def _logistic(
    n: np.ndarray, k: np.ndarray, x: np.ndarray, rows: np.ndarray, trend: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column binomial fit of ``logit eff = a + b x`` on ``rows``, vectorised.

    ``n``, ``k``: (..., R, C) trials and successes. Returns the efficiency (..., R, C), its
    standard deviation, and which columns have a slope (..., C).
    """
    nr, kr, xr = n[..., rows, :], k[..., rows, :], x[rows][:, None]
    N, K = nr.sum(axis=-2), kr.sum(axis=-2)
    p0 = np.divide(K, N, out=np.zeros_like(K), where=N > 0)
    # a slope needs events in at least three rows of the column (else it is not measurable)
    sloped = (
        np.full(K.shape, False) if not trend
        else (K >= MIN_EVENTS_FOR_TREND) & (N - K >= MIN_EVENTS_FOR_TREND)
        & ((nr > 0).sum(axis=-2) >= 3)
    )  # fmt: skip
    a = np.log(np.clip(p0, 1e-12, None)) - np.log(np.clip(1.0 - p0, 1e-12, None))
    b = np.zeros_like(a)
    if sloped.any():
        for _ in range(_NEWTON_STEPS):
            eta = np.clip(a[..., None, :] + b[..., None, :] * xr, -30.0, 30.0)
            p = 1.0 / (1.0 + np.exp(-eta))
            r, w = kr - nr * p, nr * p * (1.0 - p)
            g0, g1 = r.sum(axis=-2), (r * xr).sum(axis=-2)
            h00, h01, h11 = w.sum(axis=-2), (w * xr).sum(axis=-2), (w * xr * xr).sum(axis=-2)
            det = h00 * h11 - h01 * h01
            ok = sloped & (det > 0)
            safe = np.where(ok, det, 1.0)
            da = np.where(ok, (h11 * g0 - h01 * g1) / safe, 0.0)
            db = np.where(ok, (h00 * g1 - h01 * g0) / safe, 0.0)
            a, b = a + da, b + db
    eta = np.clip(a[..., None, :] + b[..., None, :] * x[:, None], -30.0, 30.0)
    eff = 1.0 / (1.0 + np.exp(-eta))
    # covariance of (a, b): the inverse of the Fisher information at the fit
    w = nr * (eff[..., rows, :] * (1.0 - eff[..., rows, :]))
    h00, h01, h11 = w.sum(axis=-2), (w * xr).sum(axis=-2), (w * xr * xr).sum(axis=-2)
    det = h00 * h11 - h01 * h01
    sloped = sloped & (det > 0)
    xx = x[:, None]
    var_eta = np.where(
        sloped[..., None, :],
        (h11[..., None, :] - 2 * xx * h01[..., None, :] + xx * xx * h00[..., None, :])
        / np.where(det > 0, det, np.inf)[..., None, :],
        1.0 / np.where(h00 > 0, h00, np.inf)[..., None, :],
    )
    # a constant column keeps its measured ratio exactly (0 passing gives 0, not 1e-12)
    eff = np.where(sloped[..., None, :], eff, p0[..., None, :])
    sd = eff * (1.0 - eff) * np.sqrt(var_eta)
    return eff, sd, sloped


def _check(incl: np.ndarray, region: np.ndarray) -> None:
    if incl.shape != region.shape or incl.ndim not in (1, 2):
        raise ConfigError(
            f"efficiency background: inclusive {incl.shape} and region {region.shape} "
            "histograms need the same 1D or 2D shape"
        )
    for name, a in (("inclusive", incl), ("region", region)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ConfigError(f"efficiency background: the {name} histogram has NaN or < 0 bins")


def fit_efficiency(
    incl: np.ndarray,
    region: np.ndarray,
    *,
    centres: np.ndarray,
    rows: np.ndarray | None = None,
    trend: bool = True,
) -> EfficiencyEstimate:
    """Fit the cut efficiency of ``region`` in ``incl`` and return the background estimate.

    Args:
        incl: inclusive counts, (R,) or (R, C).
        region: the score region's counts (a subset of the inclusive events), same shape.
        centres: bin centres of the first axis (R,).
        rows: bins of the first axis to fit in (default all): the scanned range, so that
            the selection's turn-on below it does not set the efficiency.
        trend: a logistic slope along the first axis per column (else a constant).

    Returns:
        EfficiencyEstimate.

    Example:
        >>> import numpy as np
        >>> est = fit_efficiency(np.array([100.0, 50.0, 20.0]), np.array([20.0, 5.0, 2.0]),
        ...                      centres=np.array([1.0, 2.0, 3.0]),
        ...                      rows=np.array([False, True, True]), trend=False)
        >>> est.background.tolist()
        [10.0, 5.0, 2.0]
    """
    incl, region = np.asarray(incl, dtype=float), np.asarray(region, dtype=float)
    _check(incl, region)
    sel = np.ones(incl.shape[0], bool) if rows is None else np.asarray(rows, dtype=bool)
    if not sel.any():
        raise ConfigError("efficiency background: no bin of the first axis to fit in")
    x = _x(centres, sel)
    eff, sd, sloped = _logistic(_columns(incl), _columns(region), x, sel, trend)
    shape = incl.shape
    return EfficiencyEstimate(
        background=(_columns(incl) * eff).reshape(shape),
        uncertainty=(_columns(incl) * sd).reshape(shape),
        efficiency=eff.reshape(shape),
        rows=sel,
        trend=trend,
        trend_columns=int(sloped.sum()),
    )


def efficiency_toys(
    incl: np.ndarray,
    estimate: EfficiencyEstimate,
    *,
    centres: np.ndarray,
    n_toys: int,
    seed: int,
    batch: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-experiments of a region made as the data were, each with its own estimate.

    The region counts are drawn binomially from the inclusive counts (rounded to integers)
    with the fitted efficiency; each toy's efficiency is refitted with the same rows and
    model. Returns ``(toys, toy_backgrounds)``, each (T, *incl.shape).

    Example:
        >>> import numpy as np
        >>> incl, region = np.full(5, 400.0), np.full(5, 40.0)
        >>> c = np.arange(1.0, 6.0)
        >>> est = fit_efficiency(incl, region, centres=c)
        >>> toys, bkgs = efficiency_toys(incl, est, centres=c, n_toys=3, seed=1)
        >>> toys.shape, bool(abs(bkgs.mean() - 40.0) < 5)
        ((3, 5), True)
    """
    incl = np.asarray(incl, dtype=float)
    trials = np.rint(_columns(incl)).astype(np.int64)
    if np.any(np.abs(_columns(incl) - trials) > 1e-6):
        # binomial toys need event counts; weighted pseudo-data are drawn as rounded counts
        log.warning("efficiency toys: the inclusive histogram is weighted (non-integer "
                    "bins); the toys are drawn from its rounded counts")  # fmt: skip
    eff = np.clip(_columns(estimate.efficiency), 0.0, 1.0)
    x = _x(centres, estimate.rows)
    rng = np.random.default_rng(seed)
    toys, bkgs = [], []
    for start in range(0, int(n_toys), batch):
        m = min(batch, int(n_toys) - start)
        k = rng.binomial(trials, eff, size=(m, *trials.shape)).astype(float)
        e, _, _ = _logistic(np.broadcast_to(trials, k.shape).astype(float), k, x,
                            estimate.rows, estimate.trend)  # fmt: skip
        toys.append(k.reshape(m, *incl.shape))
        bkgs.append((trials * e).reshape(m, *incl.shape))
    return np.concatenate(toys), np.concatenate(bkgs)
