from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate

from adcoffea.errors import ConfigError
from adcoffea.fits.functions import (
    BinIntegrator,
    evaluate,
    expected_counts,
    p0_from_yield,
    yield_from_p0,
)

LHCO = [7.80, 5.26, 1.13]
EDGES = np.linspace(2700.0, 7000.0, 44)


@pytest.mark.parametrize(
    ("function", "shape"),
    [("dijet", LHCO), ("expo", [30.0, 4.0, 0.5]), ("power", [4.0, 10.0, 2.0])],
)
def test_bin_integrals_match_quad(function, shape):
    integ = BinIntegrator.build(EDGES, function=function, n_params=4)
    got = integ.integral([1.0, *shape])
    ref = [
        integrate.quad(
            lambda m: evaluate(np.array([m]), [1.0, *shape], function=function)[0] / 13000.0,
            lo,
            hi,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        for lo, hi in itertools.pairwise(EDGES)
    ]
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # bin-centre evaluation is visibly biased on these bins: the reason to integrate
    centre = evaluate(0.5 * (EDGES[1:] + EDGES[:-1]), [1.0, *shape], function=function)
    assert np.max(np.abs(centre * np.diff(EDGES) / 13000.0 / np.asarray(ref) - 1)) > 1e-4


@pytest.mark.parametrize("function", ["dijet", "expo", "power"])
def test_shape_gradient_matches_finite_differences(function):
    integ = BinIntegrator.build(EDGES, function=function, n_params=5)
    theta = np.array([7.8, 5.26, 1.13, 0.05]) if function == "dijet" else np.array([5, 4, 1, 0.1])
    q, dq = integ.shape(theta)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    h = 1e-6
    for k in range(len(theta)):
        e = np.zeros_like(theta)
        e[k] = h
        num = (integ.shape(theta + e)[0] - integ.shape(theta - e)[0]) / (2 * h)
        np.testing.assert_allclose(dq[:, k], num, rtol=1e-5, atol=1e-12)


def test_yield_p0_roundtrip_and_expected_counts():
    params = [5.0e4, *LHCO]
    nu = expected_counts(EDGES, params)
    assert nu.sum() == pytest.approx(5.0e4, rel=1e-12)
    p0 = p0_from_yield(EDGES, params)
    assert yield_from_p0(EDGES, [p0, *LHCO]) == pytest.approx(5.0e4, rel=1e-12)
    # the spectrum falls by ~0.75 per 200 GeV near 3.5 TeV (LHCO reference)
    e = np.array([3300.0, 3500.0, 3700.0])
    r = expected_counts(e, params)
    assert 0.7 < r[1] / r[0] < 0.8


def test_invalid_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown fit function"):
        expected_counts(EDGES, [1.0, 2.0], function="nope")
    with pytest.raises(ConfigError, match="n_params"):
        BinIntegrator.build(EDGES, function="dijet", n_params=6)
    with pytest.raises(ConfigError, match="sqrt_s"):
        BinIntegrator.build(np.array([1000.0, 14000.0]), function="dijet", n_params=3)
