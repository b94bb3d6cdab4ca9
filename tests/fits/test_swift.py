from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from adcoffea.fits.background import fit_background
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.swift import sliding_window_fit

EDGES = np.linspace(2000.0, 7000.0, 51)


def test_sliding_window_describes_a_turn_on_the_global_function_misses():
    # LHCO mjj with its trigger turn-on (erf at 2.456 TeV, width 0.419 TeV), fitted from 2.6 TeV
    edges = np.linspace(2600.0, 7000.0, 45)
    smooth = expected_counts(edges, [3e5, 7.80, 5.26, 1.13])
    centres = 0.5 * (edges[1:] + edges[:-1])
    truth = smooth * 0.5 * (1 + special.erf((centres - 2456.0) / 419.0))
    n = np.random.default_rng(9).poisson(truth).astype(float)
    glob = fit_background(n, edges=edges, n_params=5)
    sw = sliding_window_fit(n, edges=edges, half_width=7, n_params=4)
    assert sw.converged.all()
    assert glob.pvalue < 1e-3  # even the 5-parameter global fit cannot follow the turn-on
    # the window estimate is compatible with the data and close to the truth
    assert sw.deviance / len(n) < 1.3
    rel = np.abs(sw.background / truth - 1) * np.sqrt(truth)
    assert np.median(rel) < 0.6
    assert sw.to_dict()["half_width"] == 7


def test_sliding_window_asimov_closure():
    nu = expected_counts(EDGES, [3e5, 7.80, 5.26, 1.13])
    sw = sliding_window_fit(nu, edges=EDGES, half_width=6, n_params=3)
    np.testing.assert_allclose(sw.background, nu, rtol=2e-3)
    assert sw.windows[0] == (0, 13) and sw.windows[-1] == (37, 50)
    with pytest.raises(Exception, match="wider"):
        sliding_window_fit(nu, edges=EDGES, half_width=30)
