"""Local significance against hand calculations."""

import itertools

import numpy as np
import pytest
from scipy import stats

from adcoffea.hunt.significance import p_bi, z_bi, z_pl


def test_poisson_limit_is_the_poisson_tail():
    # sigma_B = 0: P(N >= 20 | 10) = 1 - CDF(19)
    p = stats.poisson.sf(19, 10.0)
    assert z_bi(20, 10.0, 0.0) == pytest.approx(stats.norm.isf(p), rel=1e-10)
    assert z_bi(20, 10.0, 1e-9) == pytest.approx(stats.norm.isf(p), rel=1e-6)


def test_z_bi_is_the_binomial_test_of_cousins_et_al():
    # B = 25 +- 5: tau = B / sigma^2 = 1, off count m = 25; p = P(X >= n) for
    # X ~ Binomial(n + m, 1 / (1 + tau)) (Cousins, Linnemann, Tucker 2008, eq. 12)
    n, b, s = 45, 25.0, 5.0
    p_hand = stats.binom.sf(n - 1, n + 25, 0.5)
    assert p_bi(n, b, s) == pytest.approx(p_hand, rel=1e-10)
    assert z_bi(n, b, s) == pytest.approx(stats.norm.isf(p_hand), rel=1e-10)


def test_z_pl_matches_li_ma():
    n, m, tau = 45.0, 25.0, 1.0
    q = 2 * (n * np.log((1 + tau) / tau * n / (n + m)) + m * np.log((1 + tau) * m / (n + m)))
    # Li-Ma with alpha = 1/tau: on = n, off = m
    assert z_pl(n, 25.0, 5.0) == pytest.approx(np.sqrt(q), rel=1e-10)
    assert z_pl(n, 25.0, 5.0) == pytest.approx(z_bi(n, 25.0, 5.0), abs=0.25)


def test_deficits_are_zero_and_uncertainty_lowers_z():
    assert z_bi(5, 10.0, 1.0) == 0.0 and z_pl(10, 10.0, 1.0) == 0.0
    zs = [z_bi(150, 100.0, s) for s in (0.0, 5.0, 10.0, 20.0)]
    assert all(a > b for a, b in itertools.pairwise(zs))
    assert np.all(np.isfinite(z_bi(np.array([10_000]), 100.0, 1.0)))


def test_z_bi_is_calibrated_for_a_gamma_background():
    # n ~ Poisson(b_true), m ~ Poisson(tau b_true): P(Z_bi >= z) <= Phi(-z) (conservative test)
    rng = np.random.default_rng(3)
    b_true, tau = 30.0, 2.0
    n = rng.poisson(b_true, 200_000)
    m = rng.poisson(tau * b_true, 200_000)
    b_hat = np.maximum(m, 1) / tau
    z = z_bi(n, b_hat, np.sqrt(b_hat / tau))
    for z0 in (1.0, 2.0, 2.5):
        assert np.mean(z >= z0) <= stats.norm.sf(z0) * 1.05
        assert np.mean(z >= z0) >= stats.norm.sf(z0) * 0.5
