"""Fits that cannot be done are refused, naming the argument; sigma(nsig) is start-independent."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_arrays, fit_background
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.order import select_order
from adcoffea.fits.signal import gaussian_signal
from adcoffea.fits.spurious import spurious_signal_scan
from adcoffea.fits.workspace import build_workspace, limit_scan, upper_limit

EDGES = np.linspace(2700.0, 7000.0, 44)  # 100 GeV bins
TRUTH = np.array([5.0e4, 7.80, 5.26, 1.13])


@pytest.fixture(scope="module")
def toy() -> np.ndarray:
    return np.random.default_rng(17).poisson(expected_counts(EDGES, TRUTH)).astype(float)


def test_signal_yield_error_matches_profile_scan_from_any_start(toy):
    """Issue 17: a 4-parameter truth, a 3-parameter fit, 5e4 events, a signal at 4500 GeV."""
    shape = gaussian_signal(EDGES, 4500.0, rel_width=0.05)
    bkg = fit_arrays(EDGES, toy, n_params=3)
    starts = [
        None,
        [*bkg.values, 0.0],
        [*bkg.values, 300.0],
        [*bkg.values, -300.0],
        [toy.sum(), 9.0, 4.0, 100.0],
    ]
    fits = [fit_arrays(EDGES, toy, n_params=3, signal=shape, start=s) for s in starts]
    best = min(fits, key=lambda r: r.nll)
    s0, e0 = best.signal_yield, best.signal_error

    def profile(s: float) -> float:  # Delta NLL - 1/2 with nsig fixed, the rest refitted
        r = fit_arrays(
            EDGES, toy, n_params=3, signal=shape, start=[*best.values[:3], s], fixed={"nsig": s}
        )
        return r.nll - best.nll - 0.5

    lo = brentq(profile, s0 - 3 * e0, s0, xtol=1e-6)
    hi = brentq(profile, s0, s0 + 3 * e0, xtol=1e-6)
    sigma_profile = 0.5 * (hi - lo)
    for r in fits:
        assert r.converged
        assert r.nll == pytest.approx(best.nll, abs=1e-8)
        assert r.signal_error == pytest.approx(sigma_profile, rel=0.005), [
            f.signal_error for f in fits
        ]
        # and the same to far better than the tolerance: no dependence on the start at all
        assert r.signal_error == pytest.approx(e0, rel=1e-6)
    scan = spurious_signal_scan(toy, edges=EDGES, masses=[4500.0], n_params=3)
    assert scan.rows[0]["sigma_stat"] == pytest.approx(sigma_profile, rel=0.005)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fit_range": (4000.0, 4300.0)}, r"fit_range=\(4000.0, 4300.0\) leaves 3 bin"),
        ({"fit_range": (4000.0, 4200.0)}, r"fit_range=\(4000.0, 4200.0\) leaves 2 bin"),
        ({"exclude": (3400.0, 1e5)}, r"exclude=\(3400.0, 100000.0\) reaches the upper end"),
        ({"exclude": (0.0, 6500.0)}, r"exclude=\(0.0, 6500.0\) reaches the lower end"),
        ({"exclude": (2900.0, 6900.0), "n_params": 3}, r"exclude=\(2900.0, 6900.0\) leaves 3 bin"),
    ],
)
def test_fits_that_cannot_be_done_are_refused(toy, kwargs, match):
    kw = {"n_params": 4, **kwargs}
    with pytest.raises(ConfigError, match=match):
        fit_background(toy, edges=EDGES, **kw)


def test_too_few_bins_in_fit_arrays_names_the_edges():
    e = np.array([4000.0, 4100.0, 4200.0, 4300.0])
    with pytest.raises(ConfigError, match="edges leaves 3 bin"):
        fit_arrays(e, np.array([50.0, 40.0, 30.0]), n_params=4)
    with pytest.raises(ConfigError, match="edges leaves 2 bin"):
        fit_arrays(e[:3], np.array([50.0, 40.0]), n_params=4)


def test_all_zero_or_degenerate_data_is_refused():
    zero = np.zeros(len(EDGES) - 1)
    with pytest.raises(ConfigError, match="counts: no events"):
        fit_background(zero, edges=EDGES, n_params=4)
    with pytest.raises(ConfigError, match="counts: no events"):
        select_order(zero, edges=EDGES, n_params=[3, 4, 5])
    one = zero.copy()
    one[3] = 100.0
    with pytest.raises(ConfigError, match="only 1 non-empty bin"):
        fit_background(one, edges=EDGES, n_params=3)


def test_select_order_refuses_bad_options(toy):
    with pytest.raises(ConfigError, match="alpha"):
        select_order(toy, edges=EDGES, alpha=1.5)
    with pytest.raises(ConfigError, match="alpha"):
        select_order(toy, edges=EDGES, alpha=0.0)
    with pytest.raises(ConfigError, match="n_params"):
        select_order(toy, edges=EDGES, n_params=[])
    with pytest.raises(ConfigError, match=r"n_params=\[3, 4, 5\]: order 5 needs at least 6"):
        select_order(toy, edges=EDGES, n_params=[3, 4, 5], fit_range=(4000.0, 4500.0))


def test_spurious_signal_scan_refuses_bad_inputs(toy):
    with pytest.raises(ConfigError, match="data_yield"):
        spurious_signal_scan(toy, edges=EDGES, masses=[4500.0], data_yield=0)
    with pytest.raises(ConfigError, match="data_yield"):
        spurious_signal_scan(toy, edges=EDGES, masses=[4500.0], data_yield=-5.0)
    with pytest.raises(ConfigError, match="masses"):
        spurious_signal_scan(toy, edges=EDGES, masses=[])
    with pytest.raises(ConfigError, match="masses"):
        spurious_signal_scan(toy, edges=EDGES, masses=[9000.0])


def test_workspace_refuses_negative_inputs_and_probabilities_outside_0_1():
    with pytest.raises(ConfigError, match="data must be >= 0"):
        build_workspace([-3.0, 10.0], [5.0, 5.0], [1.0, 1.0])
    with pytest.raises(ConfigError, match="signal must be >= 0"):
        build_workspace([3.0, 10.0], [5.0, 5.0], [1.0, -1.0])
    ws = build_workspace([52.0], [50.0], [10.0])
    for cl in (1.5, 0.0, -0.1):
        with pytest.raises(ConfigError, match="cl must lie in"):
            upper_limit(ws, cl=cl)
    with pytest.raises(ConfigError, match="cl must lie in"):
        limit_scan(
            [3000.0], data=[52.0], background=[50.0], signal_for_mass=lambda m: [10.0], cl=1.5
        )


def test_fit_reports_adequacy_and_untestable_chi2(toy):
    res = fit_background(toy, edges=EDGES, n_params=4)
    assert res.adequate and res.to_dict()["adequate"] is True
    strict = fit_background(toy, edges=EDGES, n_params=4, min_pvalue=0.999)
    assert not strict.adequate and strict.min_pvalue == 0.999
    # a 3-parameter fit of a 1M-event spectrum from the 4-parameter truth is inadequate
    big = np.random.default_rng(3).poisson(expected_counts(EDGES, [1e6, *TRUTH[1:]]))
    sel = select_order(big.astype(float), edges=EDGES, n_params=[2, 3])
    assert sel.chosen == 3 and not sel.adequate
    d = sel.to_dict()
    assert d["adequate"] is False and d["chi2_pvalue"] < 0.01
    assert [row["adequate"] for row in d["table"]] == [False, False]
