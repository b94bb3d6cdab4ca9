"""Background in a signal region without the signal: a sideband fit interpolated into the SR.

The selected mjj spectrum of a window is fitted over the fit range with the SR bins left out
of the likelihood (:func:`adcoffea.fits.order.select_order` with ``exclude``): the
function family of the analysis, its order chosen by the configured Wilks test. The fit is
integrated over the SR bins:

* ``B = sum_SR N q_i(theta)``;
* ``sigma_stat``: the fit covariance propagated linearly, ``J C J^T`` with ``J = dB/d(N, theta)``;
* ``sigma_function`` (fit-function uncertainty): the envelope of the alternative order, i.e.
  ``|B(n + 1) - B(n)|`` with the next order of the same family (the previous one when the
  chosen order is the highest), as in the ATLAS dijet searches.

``sigma = sqrt(sigma_stat^2 + sigma_function^2)`` enters the local significance.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.arange(2800.0, 7001.0, 100.0)
    >>> nu = expected_counts(edges, [2e4, 10.0, 5.0], function="dijet")
    >>> sr = (edges[:-1] >= 3300.0) & (edges[1:] <= 3700.0)
    >>> est = estimate_background(edges, nu, sr, n_params=(3, 4))
    >>> bool(abs(est.background - nu[sr].sum()) < 1e-3 * nu[sr].sum())
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError

#: fewer selected events than this in the fit range: no fit, no significance
MIN_EVENTS = 10
#: a fit with a smaller chi2 p-value outside the SR is flagged "background model inadequate"
MIN_PVALUE = 0.01


@dataclass(frozen=True)
class BackgroundEstimate:
    """Background in the SR of one selected spectrum, from its sideband fit.

    Attributes:
        n_obs: events observed in the SR.
        background: B, fitted background integrated over the SR.
        sigma_stat: fit-statistics uncertainty of B.
        sigma_function: fit-function uncertainty of B (alternative-order envelope).
        n_params: chosen order; alternative: the order of the envelope (None: none).
        chi2, ndf, pvalue: goodness of fit of the chosen order outside the SR.
        converged: MIGRAD converged for the chosen order.
        parameters: fitted (yield, p1, ...) of the chosen order.
        expected: fitted background per fit-range bin (SR bins interpolated).
        note: why no estimate was made ("" when one was).
    """

    n_obs: float
    background: float
    sigma_stat: float
    sigma_function: float
    n_params: int
    alternative: int | None
    chi2: float
    ndf: int
    pvalue: float
    converged: bool
    parameters: tuple[float, ...] = ()
    expected: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    note: str = ""
    #: shape parameters (p1, ...) of every fitted order: the toys start there
    starts: dict[int, tuple[float, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sigma(self) -> float:
        """Total uncertainty of B (statistics and fit function in quadrature)."""
        return float(np.hypot(self.sigma_stat, self.sigma_function))

    @property
    def valid(self) -> bool:
        return not self.note and self.background > 0

    @property
    def adequate(self) -> bool:
        """Does the chosen fit describe the sidebands (chi2 p-value >= ``MIN_PVALUE``)?"""
        return bool(self.valid and np.isfinite(self.pvalue) and self.pvalue >= MIN_PVALUE)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN (no estimate) becomes None."""
        return {
            "n_obs": float(self.n_obs),
            "background": json_float(self.background),
            "sigma_background": json_float(self.sigma),
            "sigma_stat": json_float(self.sigma_stat),
            "sigma_function": json_float(self.sigma_function),
            "n_params": int(self.n_params),
            "alternative_n_params": self.alternative,
            "chi2": json_float(self.chi2),
            "ndf": int(self.ndf),
            "fit_pvalue": json_float(self.pvalue),
            "background_model_adequate": self.adequate,
            "converged": bool(self.converged),
            "parameters": [float(v) for v in self.parameters],
            "note": self.note,
        }


def json_float(v: float) -> float | None:
    """``float(v)``, or None for NaN (JSON has no NaN)."""
    return None if v is None or np.isnan(v) else float(v)


def from_json_float(v: float | None) -> float:
    """The inverse of :func:`json_float`."""
    return float("nan") if v is None else float(v)


def _sr_integral(fit, sr: np.ndarray) -> tuple[float, float]:
    """B over the SR bins and its linearly propagated fit uncertainty."""
    from adcoffea.fits.functions import BinIntegrator

    integ = BinIntegrator.build(
        fit.edges, function=fit.function, n_params=fit.n_params, sqrt_s=fit.sqrt_s
    )
    values = np.asarray(fit.values[: fit.n_params], dtype=float)
    q, dq = integ.shape(values[1:])
    b = float(values[0] * q[sr].sum())
    jac = np.concatenate([[q[sr].sum()], values[0] * dq[sr].sum(axis=0)])
    cov = np.asarray(fit.covariance, dtype=float)[: fit.n_params, : fit.n_params]
    var = float(jac @ cov @ jac)
    return b, float(np.sqrt(max(var, 0.0)))


def empty_estimate(n_obs: float, note: str) -> BackgroundEstimate:
    """An estimate that could not be made (too few events, failed fit)."""
    nan = float("nan")
    return BackgroundEstimate(float(n_obs), nan, nan, nan, 0, None, nan, 0, nan, False, note=note)


def estimate_background(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: np.ndarray,
    *,
    function: str = "dijet",
    n_params: Sequence[int] = (3, 4, 5),
    sqrt_s: float = 13000.0,
    alpha: float = 0.05,
) -> BackgroundEstimate:
    """Fit ``counts`` (bins ``edges`` = the fit range) without the SR bins; B in the SR.

    Args:
        edges: bin edges of the fit range (GeV).
        counts: selected events per bin.
        sr: boolean mask of the SR bins.
        function, n_params, sqrt_s, alpha: the background model and its order test
            (:func:`adcoffea.fits.order.select_order`, Wilks).
    """
    from adcoffea.fits.order import select_order

    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    sr = np.asarray(sr, dtype=bool)
    if sr.shape != counts.shape or not sr.any() or sr.all():
        raise ConfigError("hunt: the signal region must be a strict subset of the fit-range bins")
    n_obs = float(counts[sr].sum())
    if counts[~sr].sum() < MIN_EVENTS:
        return empty_estimate(n_obs, f"fewer than {MIN_EVENTS} selected events outside the SR")
    lo = float(edges[:-1][sr].min())
    hi = float(edges[1:][sr].max())
    orders = sorted({int(n) for n in n_params})
    try:
        sel = select_order(
            counts,
            edges=edges,
            function=function,
            n_params=orders,
            sqrt_s=sqrt_s,
            alpha=alpha,
            exclude=(lo, hi),
        )
    except (ConfigError, np.linalg.LinAlgError, FloatingPointError) as err:
        return empty_estimate(n_obs, f"fit failed: {err}")
    best = sel.best
    b, s_stat = _sr_integral(best, sr)
    higher = [n for n in orders if n > best.n_params]
    lower = [n for n in orders if n < best.n_params]
    alt = higher[0] if higher else (lower[-1] if lower else None)
    s_func = 0.0
    if alt is not None:
        b_alt, _ = _sr_integral(sel.fits[alt], sr)
        s_func = abs(b_alt - b) if np.isfinite(b_alt) else 0.0
    return BackgroundEstimate(
        n_obs=n_obs,
        background=b,
        sigma_stat=s_stat,
        sigma_function=float(s_func),
        n_params=int(best.n_params),
        alternative=alt,
        chi2=float(best.chi2),
        ndf=int(best.ndf),
        pvalue=float(best.pvalue),
        converged=bool(best.converged),
        parameters=tuple(float(v) for v in best.values),
        expected=np.asarray(best.background, dtype=float),
        starts={
            n: tuple(float(v) for v in f.values[1:n])
            for n, f in sel.fits.items()
            if np.all(np.isfinite(f.values))
        },
    )
