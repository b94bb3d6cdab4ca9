"""Order selection for nested background function families (Wilks test or F-test).

Fits of increasing ``n_params`` are compared pairwise: Wilks' test uses
``2 (NLL_n - NLL_{n+1}) ~ chi2(dk)``, the F-test
``F = [(chi2_n - chi2_{n+1}) / dk] / [chi2_{n+1} / ndf_{n+1}]`` on one merged binning. The
chosen order is the first whose successor is not significantly better at ``alpha``. The
result carries every fit, the test table and the chosen fit's adequacy (its chi2 p-value
against ``min_pvalue``), for a stage that must flag "background model inadequate".

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 7000.0, 44)
    >>> nu = expected_counts(edges, [2e6, 7.80, 5.26, 1.13])
    >>> sel = select_order(nu, edges=edges, n_params=[3, 4, 5])
    >>> sel.chosen, sel.adequate
    (4, True)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from adcoffea.errors import ConfigError
from adcoffea.fits.background import (
    Backend,
    FitResult,
    _check_probability,
    _fit_window,
    _range_text,
    fit_background,
    histogram_arrays,
)
from adcoffea.fits.batch import BatchFitResult, fit_batch
from adcoffea.fits.functions import get_family
from adcoffea.outputs import to_jsonable

__all__ = ["BatchOrderSelection", "OrderSelection", "select_order", "select_order_batch"]


@dataclass(frozen=True)
class OrderSelection:
    """Fits of increasing order and the test of each order against the previous one."""

    method: str
    alpha: float
    chosen: int
    table: tuple[dict, ...]
    fits: dict[int, FitResult]

    @property
    def best(self) -> FitResult:
        return self.fits[self.chosen]

    @property
    def adequate(self) -> bool:
        """Whether the chosen order describes the data (its chi2 p-value >= min_pvalue)."""
        return self.best.adequate

    def to_dict(self) -> dict:
        """Method, alpha, the chosen order, its chi2 p-value and adequacy, the test table."""
        best = self.best
        return to_jsonable(
            {
                "method": self.method,
                "alpha": self.alpha,
                "chosen": self.chosen,
                "chi2_pvalue": best.pvalue,
                "min_pvalue": best.min_pvalue,
                "adequate": best.adequate,
                "table": list(self.table),
            }
        )


def select_order(
    hist_or_counts: Any,
    *,
    edges: np.ndarray | None = None,
    function: str = "dijet",
    n_params: Sequence[int] = (3, 4, 5),
    sqrt_s: float = 13000.0,
    backend: Backend = "iminuit",
    fit_range: Sequence[float] | None = None,
    alpha: float = 0.05,
    method: Literal["wilks", "ftest"] = "wilks",
    min_count: float = 10.0,
    exclude: Sequence[float] | None = None,
    min_pvalue: float = 0.01,
) -> OrderSelection:
    """Fit increasing orders and keep the lowest one that the next order does not beat.

    Each order n+1 is tested against n: Wilks' test uses ``2 (NLL_n - NLL_{n+1})`` ~ chi2(dk);
    the F-test uses ``F = [(chi2_n - chi2_{n+1})/dk] / [chi2_{n+1}/ndf_{n+1}]`` with the same
    merged binning for both orders. Order n+1 is preferred when the p-value is below ``alpha``;
    the chosen order is the first one whose successor is not significantly better.
    """
    if method not in ("wilks", "ftest"):
        raise ConfigError(f"order-selection method must be 'wilks' or 'ftest', got {method!r}")
    alpha = _check_probability(alpha, "alpha")
    try:
        orders = sorted({int(n) for n in n_params})
    except (TypeError, ValueError):
        raise ConfigError(f"n_params must be a list of integers, got {n_params!r}") from None
    if not orders or any(float(n) != int(n) for n in n_params):
        raise ConfigError(f"n_params must be a non-empty list of integers, got {n_params!r}")
    for n in orders:
        get_family(function).check(n)
    # the highest order must be fittable: name n_params rather than fail inside the loop
    all_edges, _ = histogram_arrays(hist_or_counts, edges=edges)
    _, fit_edges, mask = _fit_window(all_edges, fit_range, exclude)
    n_used = len(fit_edges) - 1 if mask is None else int(mask.sum())
    if orders[-1] + 1 > n_used:
        raise ConfigError(
            f"n_params={list(orders)}: order {orders[-1]} needs at least {orders[-1] + 1} bins, "
            f"{_range_text(fit_range)}"
            + ("" if exclude is None else f" with exclude={tuple(exclude)}")
            + f" leaves {n_used}"
        )
    fits: dict[int, FitResult] = {}
    prev: FitResult | None = None
    for n in orders:
        start = None
        if prev is not None and prev.n_params == n - 1:
            # nested families: start from the lower order with the new parameter at 0
            start = [*prev.values, 0.0]
        res = fit_background(
            hist_or_counts,
            edges=edges,
            function=function,
            n_params=n,
            sqrt_s=sqrt_s,
            backend=backend,
            fit_range=fit_range,
            start=start,
            min_count=min_count,
            exclude=exclude,
            min_pvalue=min_pvalue,
        )
        if prev is not None and res.nll > prev.nll + 1e-6:
            # never accept a worse minimum for a nested model: refit from the default start
            alt = fit_background(
                hist_or_counts,
                edges=edges,
                function=function,
                n_params=n,
                sqrt_s=sqrt_s,
                backend=backend,
                fit_range=fit_range,
                min_count=min_count,
                exclude=exclude,
                min_pvalue=min_pvalue,
            )
            res = alt if alt.nll < res.nll else res
        fits[n] = res
        prev = res
    table = []
    chosen = orders[-1]
    decided = False
    for i, n in enumerate(orders):
        r = fits[n]
        row = {
            "n_params": n,
            "nll": r.nll,
            "deviance": r.deviance,
            "chi2": r.chi2,
            "ndf": r.ndf,
            "chi2_pvalue": r.pvalue,
            "adequate": r.adequate,
            "converged": r.converged,
            "statistic": None,
            "pvalue": None,
            "prefers_this_order": None,
        }
        if i > 0:
            lo = fits[orders[i - 1]]
            dk = n - orders[i - 1]
            if method == "wilks":
                stat = max(2.0 * (lo.nll - r.nll), 0.0)
                p = float(stats.chi2.sf(stat, dk))
            elif r.ndf > 0:
                stat = max((lo.chi2 - r.chi2) / dk, 0.0) / max(r.chi2 / r.ndf, 1e-300)
                p = float(stats.f.sf(stat, dk, r.ndf))
            else:  # no chi2 degrees of freedom left: the higher order cannot be tested
                stat, p = float("nan"), float("nan")
            row.update(statistic=float(stat), pvalue=p, prefers_this_order=bool(p < alpha))
            if not decided and not p < alpha:
                chosen = orders[i - 1]
                decided = True
        table.append(row)
    return OrderSelection(method, float(alpha), chosen, tuple(table), fits)


@dataclass(frozen=True)
class BatchOrderSelection:
    """:func:`select_order` (Wilks) applied to every row of a batch of spectra.

    Attributes:
        chosen: ``(n_spectra,)`` the chosen order of each row.
        fits: the batched fit of every order (:class:`~adcoffea.fits.batch.BatchFitResult`).
    """

    chosen: np.ndarray
    fits: dict[int, BatchFitResult]

    def expected(self) -> np.ndarray:
        """``(n_spectra, n_bins)`` fitted counts of each row's chosen order (NaN: no fit)."""
        first = next(iter(self.fits.values()))
        out = np.full(first.expected.shape, np.nan)
        for n, res in self.fits.items():
            rows = self.chosen == n
            out[rows] = res.expected[rows]
        return out

    @property
    def converged(self) -> np.ndarray:
        """Rows whose chosen fit converged."""
        ok = np.zeros(self.chosen.shape, dtype=bool)
        for n, res in self.fits.items():
            rows = self.chosen == n
            ok[rows] = res.converged[rows]
        return ok


def select_order_batch(
    edges: np.ndarray,
    counts: np.ndarray,
    *,
    starts: Mapping[int, Sequence[float] | np.ndarray],
    function: str = "dijet",
    sqrt_s: float = 13000.0,
    mask: np.ndarray | None = None,
    alpha: float = 0.05,
) -> BatchOrderSelection:
    """The Wilks order selection of :func:`select_order`, for a batch of spectra at once.

    Every order of ``starts`` (order -> starting parameters, e.g. the data's fit of that
    order) is fitted to all rows by :func:`~adcoffea.fits.batch.fit_batch` (the same
    likelihood and minimum as :func:`select_order`'s iminuit fits); each row keeps the first
    order whose successor does not improve ``2 (NLL_n - NLL_{n+1})`` at ``alpha``.

    Example:
        >>> import numpy as np
        >>> from adcoffea.fits.functions import expected_counts
        >>> edges = np.linspace(2700.0, 7000.0, 44)
        >>> nu = expected_counts(edges, [2e5, 7.80, 5.26, 1.13])
        >>> toys = np.random.default_rng(1).poisson(nu, size=(200, 43))
        >>> sel = select_order_batch(edges, toys, starts={3: [7.8, 5.3], 4: [7.8, 5.26, 1.13]})
        >>> bool(sel.converged.all()), sel.expected().shape
        (True, (200, 43))
    """
    alpha = _check_probability(alpha, "alpha")
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    orders = sorted(starts)
    if not orders:
        raise ConfigError("select_order_batch needs at least one order in starts")
    fits = {
        n: fit_batch(edges, counts, function=function, n_params=n, sqrt_s=sqrt_s, mask=mask,
                     start=starts[n])
        for n in orders
    }  # fmt: skip
    chosen = np.full(counts.shape[0], orders[-1])
    decided = np.zeros(counts.shape[0], dtype=bool)
    for lo, hi in itertools.pairwise(orders):
        stat = np.maximum(2.0 * (fits[lo].nll - fits[hi].nll), 0.0)
        with np.errstate(invalid="ignore"):
            p = stats.chi2.sf(stat, hi - lo)
        # as select_order: NaN (an unfittable higher order) does not prefer that order
        halt = ~decided & ~(p < alpha)
        chosen[halt] = lo
        decided |= halt
    return BatchOrderSelection(chosen=chosen, fits=fits)
