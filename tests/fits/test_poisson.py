"""Binned Poisson statistics (adcoffea.fits.poisson)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from adcoffea.fits.poisson import (
    chi2_pvalue,
    deviance,
    merge_groups,
    pearson_chi2,
    poisson_nll,
    poisson_pulls,
)


def test_deviance_pulls_and_nll_are_consistent():
    rng = np.random.default_rng(1)
    nu = rng.uniform(0.5, 200.0, 40)
    n = rng.poisson(nu).astype(float)
    assert np.sum(poisson_pulls(n, nu) ** 2) == pytest.approx(deviance(n, nu), rel=1e-12)
    assert deviance(n, nu) == pytest.approx(2 * (poisson_nll(n, nu) - poisson_nll(n, n)))
    # an excess gives a positive pull, a deficit a negative one
    assert poisson_pulls(np.array([20.0, 0.0]), np.array([10.0, 3.0])).tolist()[0] > 0
    assert poisson_pulls(np.array([20.0, 0.0]), np.array([10.0, 3.0])).tolist()[1] < 0


def test_chi2_merges_on_observed_counts_and_pvalue_needs_dof():
    n = np.array([30.0, 4.0, 3.0, 5.0, 1.0, 0.0, 12.0])
    groups = merge_groups(n, min_count=10.0)
    assert [g.tolist() for g in groups] == [[0], [1, 2, 3], [4, 5, 6]]
    chi2, k = pearson_chi2(n, n + 1.0, min_count=10.0)
    assert k == 3 and chi2 == pytest.approx(1 / 31 + 9 / 15 + 9 / 16)
    assert chi2_pvalue(5.0, 3) == pytest.approx(stats.chi2.sf(5.0, 3))
    assert np.isnan(chi2_pvalue(5.0, 0))
