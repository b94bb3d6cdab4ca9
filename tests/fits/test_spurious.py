from __future__ import annotations

import numpy as np

from adcoffea.fits.background import fit_background
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.signal import gaussian_signal
from adcoffea.fits.spurious import injection_bias, spurious_signal_scan

EDGES = np.linspace(2700.0, 7000.0, 44)
SHAPE = [7.80, 5.26, 1.13]
MASSES = [3200.0, 4000.0, 5000.0]


def test_spurious_signal_zero_for_matching_function_and_large_for_wrong_one():
    template = expected_counts(EDGES, [1e5, *SHAPE])
    good = spurious_signal_scan(template, edges=EDGES, masses=MASSES, n_params=4)
    assert good.max_ratio < 0.02, good.rows
    # a strongly curved alternative truth the 2-parameter dijet function cannot follow
    bad_truth = expected_counts(EDGES, [1e5, 2.0, 8.0, 2.5, 0.35], function="expo")
    bad = spurious_signal_scan(bad_truth, edges=EDGES, masses=MASSES, n_params=2)
    assert bad.max_ratio > 1.0, bad.rows
    # scaling the template to a smaller data sample enlarges sigma_stat by sqrt(scale)
    small = spurious_signal_scan(
        template, edges=EDGES, masses=[4000.0], n_params=4, data_yield=1e5 / 4
    )
    assert abs(small.rows[0]["sigma_stat"] / good.rows[1]["sigma_stat"] - 0.5) < 0.01
    assert set(good.to_dict()) >= {"rows", "max_abs_s_spur_over_sigma"}


def test_injected_gaussian_signal_is_recovered_at_several_masses():
    rng = np.random.default_rng(42)
    bkg = expected_counts(EDGES, [1e5, *SHAPE])
    for mass in (3200.0, 4000.0, 5000.0):
        shape = gaussian_signal(EDGES, mass, rel_width=0.05)
        # about 5 sigma local: S = 5 sqrt(B within +-2 sigma of the peak)
        n_inj = 5.0 * np.sqrt(bkg[np.abs(0.5 * (EDGES[1:] + EDGES[:-1]) - mass) < 0.1 * mass].sum())
        toy = rng.poisson(bkg + n_inj * shape).astype(float)
        res = fit_background(toy, edges=EDGES, n_params=4, signal=shape)
        assert res.converged
        assert abs(res.signal_yield - n_inj) < 2 * res.signal_error, (mass, res.signal_yield)
        assert res.signal_yield > 2 * res.signal_error  # injected at > ~3 sigma: seen


def test_injection_bias_pulls_are_standard():
    bkg = expected_counts(EDGES, [1e5, *SHAPE])
    ib = injection_bias(bkg, edges=EDGES, mass=4000.0, injected=300.0, n_toys=60, seed=3)
    assert abs(ib.pull_mean) < 0.4
    assert 0.7 < ib.pull_std < 1.3
    assert abs(np.mean(ib.fitted) - 300.0) < 3 * np.std(ib.fitted) / np.sqrt(60)
