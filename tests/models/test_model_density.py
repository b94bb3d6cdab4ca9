"""CATHODE background models: zuko flows and the conditional VAE, and their closure test."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.models.density import fit_background_model, sideband_closure


def _conditional_sample(n: int, seed: int):
    """x | m: a Gaussian whose mean moves with m and a skewed (gamma) feature."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(3000.0, 4000.0, n)
    x0 = rng.normal(0.002 * (m - 3500.0), 1.0)
    x1 = rng.gamma(2.0, 1.0, n)
    return np.c_[x0, x1], m


@pytest.mark.parametrize("kind", ["maf", "nsf", "cvae"])
def test_background_model_follows_the_condition(kind):
    x, m = _conditional_sample(6000, seed=0)
    bm = fit_background_model(x, m, kind=kind, seed=1, epochs=15, n_models=1, transforms=3,
                              hidden=[32, 32], batch_size=256)  # fmt: skip
    lo = bm.sample(np.full(4000, 3100.0), seed=2)
    hi = bm.sample(np.full(4000, 3900.0), seed=2)
    # the mean of x0 moves by 0.002 * 800 = 1.6 between the two conditions
    assert 1.0 < hi[:, 0].mean() - lo[:, 0].mean() < 2.2
    assert (lo[:, 1] > 0).mean() > 0.97  # the gamma feature stays in its range
    np.testing.assert_array_equal(bm.sample(np.full(10, 3500.0), seed=3),
                                  bm.sample(np.full(10, 3500.0), seed=3))  # fmt: skip


def test_sideband_closure_passes_a_good_model_and_fails_a_bad_one():
    x, m = _conditional_sample(6000, seed=4)
    bm = fit_background_model(x, m, kind="maf", seed=5, epochs=20, n_models=1, transforms=3,
                              hidden=[32, 32], batch_size=256)  # fmt: skip
    xt, mt = _conditional_sample(4000, seed=6)
    assert sideband_closure(bm, xt, mt, seed=7, k=3, members=2) < 0.56
    # the same model asked to imitate a sample shifted by 1 sigma is told apart (optimum 0.76)
    assert sideband_closure(bm, xt + np.array([1.0, 0.0]), mt, seed=7, k=3, members=2) > 0.65
