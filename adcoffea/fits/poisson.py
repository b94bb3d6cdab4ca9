"""Binned Poisson statistics: likelihood, deviance, chi2 with merged bins, pulls.

Conventions (shared by every fit in :mod:`adcoffea.fits`):

- ``-ln L = sum_i [nu_i - n_i ln nu_i + ln Gamma(n_i + 1)]`` (valid for non-integer counts,
  e.g. weighted templates);
- the deviance ``2 sum_i [nu_i - n_i + n_i ln(n_i / nu_i)]`` is twice the NLL above the
  saturated model, the likelihood-ratio chi2;
- the Pearson chi2 merges adjacent bins until each group holds ``min_count`` observed events,
  on the observed counts only, so different models of one spectrum share one grouping
  (F-test); its p-value uses ``n_groups - n_free`` degrees of freedom;
- pulls are signed square roots of the per-bin deviance (~N(0, 1) for a good model).

Example:
    >>> import numpy as np
    >>> n, nu = np.array([12.0, 7.0, 3.0]), np.array([10.0, 8.0, 3.5])
    >>> round(deviance(n, nu), 6) == round(2 * (poisson_nll(n, nu) - poisson_nll(n, n)), 6)
    True
    >>> chi2, groups = pearson_chi2(n, nu, min_count=10.0)
    >>> groups
    2
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

__all__ = [
    "chi2_pvalue",
    "deviance",
    "merge_groups",
    "pearson_chi2",
    "poisson_nll",
    "poisson_pulls",
]


def poisson_nll(counts: np.ndarray, expected: np.ndarray) -> float:
    """Full Poisson ``-ln L`` (with ``ln Gamma(n+1)``; valid for non-integer counts too)."""
    nu = np.maximum(expected, 1e-300)
    return float(np.sum(nu - special.xlogy(counts, nu) + special.gammaln(counts + 1.0)))


def deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """Poisson deviance ``2 sum [nu - n + n ln(n/nu)]`` (likelihood-ratio chi2)."""
    nu = np.maximum(expected, 1e-300)
    return float(
        2.0 * np.sum(nu - counts + special.xlogy(counts, counts) - special.xlogy(counts, nu))
    )


def poisson_pulls(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed square roots of the per-bin deviance."""
    nu = np.maximum(expected, 1e-300)
    d = 2.0 * (nu - counts + special.xlogy(counts, counts) - special.xlogy(counts, nu))
    return np.sign(counts - nu) * np.sqrt(np.maximum(d, 0.0))


def merge_groups(counts: np.ndarray, *, min_count: float = 10.0) -> list[np.ndarray]:
    """Group adjacent bins so every group has at least ``min_count`` observed events.

    Merging on the observed counts makes the grouping independent of the model, so chi2 values
    of different function orders are comparable (F-test).
    """
    groups: list[list[int]] = []
    cur: list[int] = []
    acc = 0.0
    for i, c in enumerate(counts):
        cur.append(i)
        acc += c
        if acc >= min_count:
            groups.append(cur)
            cur, acc = [], 0.0
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    return [np.asarray(g) for g in groups]


def pearson_chi2(
    counts: np.ndarray, expected: np.ndarray, *, min_count: float = 10.0
) -> tuple[float, int]:
    """Pearson chi2 with low-count bins merged; returns ``(chi2, number of merged bins)``."""
    groups = merge_groups(counts, min_count=min_count)
    n = np.array([counts[g].sum() for g in groups])
    nu = np.array([expected[g].sum() for g in groups])
    return float(np.sum((n - nu) ** 2 / np.maximum(nu, 1e-300))), len(groups)


def chi2_pvalue(chi2: float, ndf: int) -> float:
    """Upper-tail chi2 p-value; NaN when there are no degrees of freedom (nothing tested)."""
    return float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
