"""Guarded refit decision (adcoffea.fits.refit)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_background
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.refit import guarded_refit
from adcoffea.fits.signal import gaussian_signal
from adcoffea.fits.uncertainty import fit_function_uncertainty

EDGES = np.linspace(2700.0, 7000.0, 44)
WINDOW = (3700.0, 4300.0)


def _fits(data: np.ndarray, *, n_params: int = 4, alt: str = "power"):
    original = fit_background(data, edges=EDGES, n_params=n_params)
    refit = fit_background(data, edges=EDGES, n_params=n_params, exclude=WINDOW)
    alternative = fit_background(data, edges=EDGES, n_params=n_params, function=alt, exclude=WINDOW)
    unc = fit_function_uncertainty(data, edges=EDGES, n_params=n_params, nominal=original)
    return original, refit, alternative, unc


def test_refit_under_a_real_bump_is_accepted():
    truth = expected_counts(EDGES, [1e5, 7.80, 5.26, 1.13])
    truth += 800.0 * gaussian_signal(EDGES, 4000.0, rel_width=0.05)
    data = np.random.default_rng(3).poisson(truth).astype(float)
    original, refit, alternative, unc = _fits(data)
    d = guarded_refit(original, refit, window=WINDOW, alternative=alternative, uncertainty=unc)
    assert d.accepted and d.kept == "refit", d.reason
    assert d.refit_pvalue >= 0.01 and d.difference <= d.tolerance
    # the full fit absorbed part of the bump; the refit predicts less background under it
    assert d.refit_window_background < d.original_window_background
    json.dumps(d.to_dict())


def test_refit_that_does_not_describe_the_data_is_refused():
    # a curved spectrum no 3-parameter dijet function describes, even without the window
    truth = expected_counts(EDGES, [1e6, 2.0, 8.0, 2.5, 0.35], function="expo")
    data = np.random.default_rng(5).poisson(truth).astype(float)
    original, refit, alternative, unc = _fits(data, n_params=3)
    d = guarded_refit(original, refit, window=WINDOW, alternative=alternative, uncertainty=unc)
    assert not d.accepted and d.kept == "original"
    assert "does not describe the data outside the window" in d.reason
    assert d.refit_pvalue < 0.01


def test_refit_that_disagrees_with_the_alternative_is_refused():
    data = np.random.default_rng(3).poisson(expected_counts(EDGES, [1e5, 7.80, 5.26, 1.13]))
    original, refit, alternative, unc = _fits(data.astype(float))
    # the same fits against a tenfold smaller fit-function uncertainty
    d = guarded_refit(
        original, refit, window=WINDOW, alternative=alternative, uncertainty=0.1 * unc.per_bin
    )
    assert not d.accepted and "differ by" in d.reason
    assert d.difference > d.tolerance == pytest.approx(0.1 * unc.per_bin[10:16].sum())
    # ... and with no alternative there is nothing to cross-check
    d = guarded_refit(original, refit, window=WINDOW, alternative=None, uncertainty=unc)
    assert not d.accepted and "no alternative" in d.reason


def test_inconsistent_inputs_are_refused():
    data = np.random.default_rng(3).poisson(expected_counts(EDGES, [1e5, 7.80, 5.26, 1.13]))
    original, refit, alternative, unc = _fits(data.astype(float))
    with pytest.raises(ConfigError, match="refit did not exclude any bin"):
        guarded_refit(original, original, window=WINDOW, alternative=alternative, uncertainty=unc)
    with pytest.raises(ConfigError, match="window must be"):
        guarded_refit(original, refit, window=(4300.0, 3700.0), alternative=None, uncertainty=unc)
    with pytest.raises(ConfigError, match="per-bin values"):
        guarded_refit(
            original, refit, window=WINDOW, alternative=alternative, uncertainty=np.ones(5)
        )
