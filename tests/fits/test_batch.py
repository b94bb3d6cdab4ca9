"""Vectorised batch fits (adcoffea.fits.batch) against fit_arrays, spectrum by spectrum."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_arrays
from adcoffea.fits.batch import fit_batch
from adcoffea.fits.functions import expected_counts

#: the binning of configs/lhco_dijet.yaml's mjj histogram
EDGES = np.linspace(1500.0, 8000.0, 66)
TRUTH = [2.0e5, 7.80, 5.26, 1.13]


@pytest.fixture(scope="module")
def toys() -> np.ndarray:
    nu = expected_counts(EDGES, TRUTH)
    return np.random.default_rng(12).poisson(nu, size=(12, 65)).astype(float)


@pytest.mark.parametrize("n_params", [3, 4, 5])
def test_batch_fit_agrees_with_fit_arrays(toys, n_params):
    mask = np.ones(65, dtype=bool)
    mask[25:31] = False  # a signal region left out, as in the hunt's sideband fits
    res = fit_batch(EDGES, toys, n_params=n_params, mask=mask)
    assert res.converged.all()
    errors = res.errors()
    for i, toy in enumerate(toys):
        ref = fit_arrays(EDGES, toy, n_params=n_params, mask=mask)
        assert res.nll[i] == pytest.approx(ref.nll, rel=1e-6)
        assert res.nll[i] <= ref.nll + 1e-7  # never a worse minimum
        assert np.all(np.abs(res.values[i] - ref.values) <= 1e-3 * ref.errors)
        np.testing.assert_allclose(errors[i], ref.errors, rtol=1e-4)
        np.testing.assert_allclose(res.expected[i], ref.expected, rtol=1e-6)
        np.testing.assert_allclose(res.covariance()[i], ref.covariance, rtol=1e-3, atol=1e-12)
        assert res.deviance[i] == pytest.approx(ref.deviance, rel=1e-6, abs=1e-8)


def test_per_spectrum_masks_and_warm_start(toys):
    masks = np.ones((len(toys), 65), dtype=bool)
    for i in range(len(toys)):
        masks[i, 10 + 3 * i : 16 + 3 * i] = False  # a different window in every spectrum
    res = fit_batch(EDGES, toys, n_params=4, mask=masks, start=TRUTH)
    assert res.converged.all() and res.n_iter.max() <= 6
    for i in (0, 5, 11):
        ref = fit_arrays(EDGES, toys[i], n_params=4, mask=masks[i])
        assert res.nll[i] == pytest.approx(ref.nll, rel=1e-6)
        assert np.all(np.abs(res.values[i] - ref.values) <= 1e-3 * ref.errors)


def test_prediction_in_an_excluded_window_covers_the_truth():
    nu = expected_counts(EDGES, TRUTH)
    toys = np.random.default_rng(3).poisson(nu, size=(400, 65))
    mask = np.ones(65, dtype=bool)
    mask[25:31] = False
    res = fit_batch(EDGES, toys, n_params=4, mask=mask, start=TRUTH)
    pred, err = res.prediction(25, 31), res.prediction_error(25, 31)
    pulls = (pred - nu[25:31].sum()) / err
    # 400 toys: mean known to +-0.05, width to +-0.035
    assert abs(pulls.mean()) < 0.2 and abs(pulls.std(ddof=1) - 1.0) < 0.12
    # the prediction error is the covariance propagated to the window sum
    ref = fit_arrays(EDGES, toys[0].astype(float), n_params=4, mask=mask)
    from adcoffea.fits.background import PoissonModel

    model = PoissonModel(EDGES, toys[0].astype(float), n_params=4)
    jac = np.empty(4)
    for k in range(4):
        h = np.zeros(4)
        h[k] = 1e-6 * max(abs(ref.values[k]), 1.0)
        jac[k] = (
            model.background(ref.values + h)[25:31].sum()
            - model.background(ref.values - h)[25:31].sum()
        ) / (2 * h[k])
    assert err[0] == pytest.approx(np.sqrt(jac @ ref.covariance @ jac), rel=1e-4)
    json.dumps(res.to_dict())


def test_unfittable_rows_are_flagged_and_bad_input_refused(toys):
    batch = toys[:3].copy()
    batch[1] = 0.0
    res = fit_batch(EDGES, batch, n_params=4)
    assert res.converged.tolist() == [True, False, True]
    assert np.all(np.isnan(res.values[1])) and np.isfinite(res.values[[0, 2]]).all()
    with pytest.raises(ConfigError, match="counts must have shape"):
        fit_batch(EDGES, toys[:, :10], n_params=4)
    with pytest.raises(ConfigError, match="finite and >= 0"):
        fit_batch(EDGES, -toys, n_params=4)
    edge_mask = np.ones(65, dtype=bool)
    edge_mask[60:] = False
    with pytest.raises(ConfigError, match="mask reaches the upper end"):
        fit_batch(EDGES, toys, n_params=4, mask=edge_mask)
    with pytest.raises(ConfigError, match="start must hold"):
        fit_batch(EDGES, toys, n_params=4, start=[1.0, 2.0])
