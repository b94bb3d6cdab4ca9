"""Refitted pseudo-experiments (adcoffea.fits.toys) and BumpHunter's per-toy backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from adcoffea.errors import ConfigError
from adcoffea.fits.bumphunter import bumphunt
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.order import select_order, select_order_batch
from adcoffea.fits.toys import refitted_toys

EDGES = np.arange(3000.0, 7501.0, 100.0)
TRUTH = expected_counts(EDGES, [3.0e5, 7.8, 5.26, 1.13])
SCAN = {"edges": EDGES, "width_min": 2, "width_max": 6}


def _selection(seed: int, *, exclude=None):
    data = np.random.default_rng(seed).poisson(TRUTH)
    return data, select_order(data, edges=EDGES, n_params=[3, 4, 5], exclude=exclude)


def test_batch_order_selection_agrees_with_select_order():
    spectra = np.random.default_rng(5).poisson(TRUTH, size=(6, TRUTH.size))
    starts = {n: f.values for n, f in _selection(1)[1].fits.items()}
    batch = select_order_batch(EDGES, spectra, starts=starts)
    for i, row in enumerate(spectra):
        ref = select_order(row, edges=EDGES, n_params=[3, 4, 5])
        assert batch.chosen[i] == ref.chosen
        np.testing.assert_allclose(batch.expected()[i], ref.best.expected, rtol=1e-5)


def test_refitted_toys_are_fitted_like_the_data():
    _, sel = _selection(2, exclude=(4500.0, 4800.0))
    toys = refitted_toys(sel, n_toys=50, seed=3, exclude=(4500.0, 4800.0))
    again = refitted_toys(sel, n_toys=50, seed=3, exclude=(4500.0, 4800.0))
    np.testing.assert_array_equal(toys.counts, again.counts)
    assert toys.n_failed == 0 and toys.counts.shape == toys.background.shape == (50, 45)
    # each toy has its own fit, which follows that toy (not the nominal background)
    assert not np.allclose(toys.background[0], toys.background[1])
    assert set(np.unique(toys.orders)) <= {3, 4, 5}
    # the excluded window is interpolated, not fitted: a toy's excess there leaves its fit
    toy = toys.counts[0].astype(float)
    inside = (EDGES[:-1] >= 4500.0) & (EDGES[1:] <= 4800.0)
    bumped = toy.copy()
    bumped[inside] += 400.0
    starts = {n: f.values for n, f in sel.fits.items()}
    mask = ~inside
    plain = select_order_batch(EDGES, toy, starts=starts, mask=mask).expected()[0]
    with_bump = select_order_batch(EDGES, bumped, starts=starts, mask=mask).expected()[0]
    np.testing.assert_allclose(plain, with_bump, rtol=1e-6)
    counts, bkg = toys.embed(np.arange(1500.0, 8001.0, 100.0))
    assert counts.shape == (50, 65) and np.all(counts[:, :15] == 0) and np.all(bkg[:, -5:] == 0)


def test_toy_backgrounds_are_checked():
    data, sel = _selection(4)
    toys = refitted_toys(sel, n_toys=20, seed=1)
    with pytest.raises(ConfigError, match="explicit toys"):
        bumphunt(data, sel.best.background, **SCAN, toy_backgrounds=toys.background)
    with pytest.raises(ConfigError, match="sideband"):
        bumphunt(data, sel.best.background, **SCAN, toys=toys.counts,
                 toy_backgrounds=toys.background, sideband=True)  # fmt: skip
    bad = toys.background.copy()
    bad[3, 7] = np.nan
    with pytest.raises(Exception, match=r"toy_backgrounds contain 1 NaN.*toy 3"):
        bumphunt(data, sel.best.background, **SCAN, toys=toys.counts, toy_backgrounds=bad)


def test_refitted_toys_calibrate_the_global_p():
    """Background only: the global p with refitted toys is uniform; without refit it is
    conservative (the fit absorbed part of the data's fluctuation, not of the toys')."""
    refit, fixed = [], []
    for seed in range(24):
        data, sel = _selection(100 + seed)
        toys = refitted_toys(sel, n_toys=400, seed=seed)
        r = bumphunt(data, sel.best.background, **SCAN, toys=toys.counts,
                     toy_backgrounds=toys.background)  # fmt: skip
        f = bumphunt(data, sel.best.background, **SCAN, n_toys=400, seed=seed)
        assert r.settings["toy_backgrounds"] == "per toy"
        refit.append(r.global_p)
        fixed.append(f.global_p)
    refit_p, fixed_p = np.array(refit), np.array(fixed)
    assert stats.kstest(refit_p, "uniform").pvalue > 0.05
    assert 0.35 < refit_p.mean() < 0.65
    # same data and windows: refitting the toys lowers p in most runs (smaller toy t; the
    # two toy sets differ, so a run with p near 1 can go either way)
    assert np.mean(refit_p < fixed_p) > 0.75
    assert fixed_p.mean() > refit_p.mean() + 0.05
