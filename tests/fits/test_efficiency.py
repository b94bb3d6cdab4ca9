"""The data-driven efficiency background: trend fit, refitted toys, calibration, recovery."""

import numpy as np
import pytest
from scipy import stats

from adcoffea.errors import ConfigError
from adcoffea.fits.bumphunter import bumphunt
from adcoffea.fits.efficiency import efficiency_toys, fit_efficiency

EDGES_X = np.linspace(2600.0, 5800.0, 33)
EDGES_Y = np.linspace(0.0, 600.0, 21)
CX = 0.5 * (EDGES_X[1:] + EDGES_X[:-1])


def _inclusive(rng, events: float = 250_000.0) -> np.ndarray:
    """A falling m_Y spectrum times an m_X shape, Poisson fluctuated."""
    fx = (CX / 2600.0) ** -6.0
    cy = 0.5 * (EDGES_Y[1:] + EDGES_Y[:-1])
    fy = np.exp(-cy / 150.0) + 0.05
    mu = np.outer(fx, fy)
    return rng.poisson(mu / mu.sum() * events).astype(float)


def _efficiency_map() -> np.ndarray:
    """Efficiency rising with m_X and, at high m_X, falling with m_Y (as a jet score's does)."""
    cy = 0.5 * (EDGES_Y[1:] + EDGES_Y[:-1])
    base = 0.06 + 0.2 * (cy / 600.0) ** 2
    slope = -1.2 * (cy / 600.0) ** 2  # logit per unit log(m_Y)
    logit = np.log(base / (1 - base))[None, :] + slope[None, :] * np.log(CX / 3500.0)[:, None]
    return 1.0 / (1.0 + np.exp(-logit))


def test_trend_recovers_a_falling_efficiency_that_a_constant_misses():
    rng = np.random.default_rng(1)
    incl = _inclusive(rng, 2_000_000)
    eff = _efficiency_map()
    region = rng.binomial(incl.astype(int), eff).astype(float)
    trend = fit_efficiency(incl, region, centres=CX)
    flat = fit_efficiency(incl, region, centres=CX, trend=False)
    # the high-m_X columns at the lowest m_Y rows: where the flat estimate falls short
    corner = (slice(0, 3), slice(17, 20))
    truth = (incl * eff)[corner].sum()
    assert abs(trend.background[corner].sum() / truth - 1) < 0.05
    assert flat.background[corner].sum() / truth < 0.95  # ~9 % low: 8 sigma on 9k events
    assert trend.trend_columns == 20
    # the quoted uncertainty covers the estimate's scatter (pulls of the fitted efficiency)
    pulls = (trend.efficiency - eff)[incl > 200] / (trend.uncertainty / incl)[incl > 200]
    assert 0.6 < np.std(pulls) < 1.4


def test_constant_model_is_the_ratio_per_column():
    incl = np.array([[100.0, 10.0], [50.0, 10.0], [20.0, 0.0]])
    region = np.array([[10.0, 0.0], [5.0, 0.0], [2.0, 0.0]])
    est = fit_efficiency(incl, region, centres=np.array([1.0, 2.0, 3.0]), trend=False)
    np.testing.assert_allclose(est.background, [[10.0, 0.0], [5.0, 0.0], [2.0, 0.0]])
    # a column without passing events keeps efficiency 0 even with trend=True
    est = fit_efficiency(incl, region, centres=np.array([1.0, 2.0, 3.0]))
    assert est.trend_columns == 1 and np.all(est.background[:, 1] == 0)


def test_a_column_with_events_in_one_row_gets_a_constant_and_a_finite_uncertainty():
    incl = np.zeros((6, 2))
    region = np.zeros((6, 2))
    incl[:, 0], region[:, 0] = 400.0, 40.0
    incl[2, 1], region[2, 1] = 300.0, 30.0  # one populated row: no slope is measurable
    est = fit_efficiency(incl, region, centres=np.arange(1.0, 7.0))
    assert est.trend_columns == 1
    assert np.all(np.isfinite(est.uncertainty)) and est.background[2, 1] == pytest.approx(30.0)


def test_rows_outside_the_scanned_range_do_not_set_the_efficiency():
    incl = np.array([1000.0, 1000.0, 500.0, 250.0])
    region = np.array([300.0, 50.0, 25.0, 12.0])  # the first row: a turn-on with eff 0.3
    rows = np.array([False, True, True, True])
    est = fit_efficiency(incl, region, centres=np.arange(1.0, 5.0), rows=rows, trend=False)
    assert est.efficiency[0] == pytest.approx(87 / 1750)


def _scan(region, est, incl, seed, n_toys=300):
    toys, bkgs = efficiency_toys(incl, est, centres=CX, n_toys=n_toys, seed=seed)
    return bumphunt(region, est.background, edges=[EDGES_X, EDGES_Y], width_min=[1, 1],
                    width_max=[3, 3], bkg_uncertainty=est.uncertainty, toys=toys,
                    toy_backgrounds=bkgs)  # fmt: skip


def test_global_p_is_uniform_on_background_only_with_a_trending_efficiency():
    """Calibration of the whole estimate-and-scan step, 40 seeded background-only runs."""
    eff = _efficiency_map()
    ps = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        incl = _inclusive(rng)
        region = rng.binomial(incl.astype(int), eff).astype(float)
        est = fit_efficiency(incl, region, centres=CX)
        ps.append(_scan(region, est, incl, seed, n_toys=200).global_p)
    ps = np.array(ps)
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert np.mean(ps < 0.05) < 0.2


def test_a_signal_at_a_random_place_is_found():
    rng = np.random.default_rng(7)
    eff = _efficiency_map()
    incl = _inclusive(rng)
    region = rng.binomial(incl.astype(int), eff).astype(float)
    # a resonance at a seeded random (m_Y, m_X), away from bin centres, 60 % score efficiency
    my, mx = rng.uniform(2900.0, 5000.0), rng.uniform(100.0, 500.0)
    n = 250
    sy, sx = rng.normal(my, 0.04 * my, n), rng.normal(mx, 0.08 * mx, n)
    sig, _, _ = np.histogram2d(sy, sx, bins=[EDGES_X, EDGES_Y])
    passed = rng.binomial(sig.astype(int), 0.6).astype(float)
    incl, region = incl + sig, region + passed
    res = _scan(region, fit_efficiency(incl, region, centres=CX), incl, 3, n_toys=300)
    assert res.local_z > 3
    assert res.bump_lo[0] - 150 <= my <= res.bump_hi[0] + 150
    assert res.bump_lo[1] - 40 <= mx <= res.bump_hi[1] + 40


def test_bad_histograms_are_refused():
    with pytest.raises(ConfigError, match="same 1D or 2D shape"):
        fit_efficiency(np.ones(3), np.ones(4), centres=np.arange(3.0))
    with pytest.raises(ConfigError, match="NaN"):
        fit_efficiency(np.array([1.0, np.nan]), np.ones(2), centres=np.arange(2.0))
    with pytest.raises(ConfigError, match="no bin"):
        fit_efficiency(np.ones(2), np.ones(2), centres=np.arange(2.0), rows=np.zeros(2, bool))
