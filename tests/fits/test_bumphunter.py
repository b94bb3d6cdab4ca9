"""Validation of adcoffea.fits.bumphunter against ATLAS-validated figures and pyBumpHunter."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri_exp

from adcoffea.fits._windows import log_pvalues, z_upper_sq
from adcoffea.fits.bumphunter import (
    BumpHunterError,
    bumphunt,
    local_pvalues,
    pybumphunter_toys,
)


@pytest.fixture(scope="module")
def ref1d(shared_data):
    uproot = pytest.importorskip("uproot")
    data_root = shared_data / "bumphunter" / "data.root"
    with uproot.open(data_root) as f:
        data = f["data"].arrays(library="np")["data"]
        bkg = f["bkg"].arrays(library="np")["bkg"]
    bh, edges = np.histogram(bkg, bins=60, range=(0, 20))
    dh, _ = np.histogram(data, bins=edges)
    return dh, bh, edges


def test_reference_1d_atlas_figures(ref1d):
    dh, bh, edges = ref1d
    res = bumphunt(dh, bh, edges=edges, width_min=2, width_max=6, n_toys=10000, seed=0)
    assert res.bump_bins == (16,) and res.bump_widths == (4,)
    assert f"{res.local_p:.7f}" == "0.0001734"
    assert res.n_windows == 285
    assert res.signal == 208
    assert res.bump_lo[0] == pytest.approx(edges[16]) and res.bump_hi[0] == pytest.approx(edges[20])
    # global p depends on the toy stream: agree within the combined binomial error
    ref, n = 0.0177, 10000
    sigma = math.sqrt(ref * (1 - ref) / n + res.global_p * (1 - res.global_p) / n)
    assert abs(res.global_p - ref) < 3 * sigma
    # pyBumpHunter's own toy stream (seed 666) reproduces the reference exactly
    exact = bumphunt(dh, bh, edges=edges, toys=pybumphunter_toys(bh, 10000, 666))
    assert exact.global_p == pytest.approx(0.0177, abs=1e-12)


def _ref2d_hists():
    rs = np.random.RandomState(42)  # the reference sample's legacy stream
    bkg = rs.exponential(scale=[4, 4], size=(1_000_000, 2))
    data = np.empty((100_700, 2))
    data[:100_000] = rs.exponential(scale=[4, 4], size=(100_000, 2))
    data[100_000:] = rs.multivariate_normal([6.0, 7.0], [[3, 0.5], [0.5, 3]], size=700)
    bh, ex, ey = np.histogram2d(bkg[:, 0], bkg[:, 1], bins=[20, 20], range=[[0, 25], [0, 25]])
    dh = np.histogram2d(data[:, 0], data[:, 1], bins=[ex, ey])[0]
    return dh, bh, ex, ey


def test_reference_2d_figures():
    dh, bh, ex, ey = _ref2d_hists()
    res = bumphunt(
        dh, bh, edges=(ex, ey), width_min=2, width_max=3, sideband=True, n_toys=200, seed=1
    )
    assert res.bump_bins == (3, 5) and res.bump_widths == (3, 3)
    assert f"{res.local_p:.5g}" == "3.6572e-07"
    assert res.n_windows == 1369
    assert int(res.signal) == 277


def _pbh1d(data, bkg, **kw):
    pbh = pytest.importorskip("pyBumpHunter")
    b = pbh.BumpHunter1D(nworker=1, **kw)
    with contextlib.redirect_stdout(io.StringIO()):
        b.bump_scan(data, bkg, is_hist=True)
    return b


@pytest.mark.parametrize("mode", ["excess", "deficit"])
def test_local_p_matches_pybumphunter_random(mode):
    rng = np.random.default_rng(7)
    for _ in range(5):
        bkg = rng.uniform(5, 400, 40)
        data = rng.poisson(bkg * rng.uniform(0.85, 1.15, 40))
        b = _pbh1d(data, bkg, mode=mode, width_min=1, width_max=7, npe=1, seed=1)
        ours = local_pvalues(data, bkg, width_min=1, width_max=7, mode=mode)
        ref = np.concatenate(list(b.res_ar))
        np.testing.assert_allclose(ours["p"], ref, rtol=1e-9, atol=0)
        res = bumphunt(data, bkg, width_min=1, width_max=7, mode=mode, n_toys=0)
        assert res.local_p == pytest.approx(b.min_Pval_ar[0], rel=1e-12)
        if res.local_p < 1:
            assert res.bump_bins[0] == b.min_loc_ar[0] and res.bump_widths[0] == b.min_width_ar[0]


def test_identical_toys_give_identical_t_1d():
    rng = np.random.default_rng(3)
    bkg = np.round(rng.uniform(20, 300, 30))  # integer-valued: window sums exact in both codes
    data = rng.poisson(bkg)
    data[10:13] += 15
    n, seed = 300, 11
    b = _pbh1d(data, bkg, width_min=1, width_max=5, npe=n, seed=seed)
    res = bumphunt(
        data, bkg, width_min=1, width_max=5, toys=pybumphunter_toys(bkg, n, seed), keep_toy_t=True
    )
    np.testing.assert_array_equal(res.t_toys, b.t_ar[1:])
    assert res.t_obs == b.t_ar[0]
    # the critical-count path gives the same global p as counting exact t values
    fast = bumphunt(data, bkg, width_min=1, width_max=5, toys=pybumphunter_toys(bkg, n, seed))
    assert fast.n_toys_above == int(np.count_nonzero(b.t_ar[1:] >= b.t_ar[0])) > 0
    assert fast.global_p == pytest.approx(b.global_Pval, abs=1e-12)


def test_identical_toys_2d_and_sideband():
    pbh = pytest.importorskip("pyBumpHunter")
    rng = np.random.default_rng(5)
    bkg = rng.uniform(30, 200, (8, 7))
    data = rng.poisson(bkg).astype(float)
    data[2:4, 3:5] += 8
    for sideband in (False, True):
        b = pbh.BumpHunter2D(
            width_min=[1, 2], width_max=[3, 3], npe=60, nworker=1, seed=4, use_sideband=sideband
        )
        with contextlib.redirect_stdout(io.StringIO()):
            b.bump_scan(data, bkg, is_hist=True)
        res = bumphunt(
            data,
            bkg,
            width_min=(1, 2),
            width_max=(3, 3),
            sideband=sideband,
            toys=pybumphunter_toys(bkg, 60, 4),
            keep_toy_t=True,
        )
        assert res.bump_bins == tuple(b.min_loc_ar[0])
        assert res.bump_widths == tuple(b.min_width_ar[0])
        np.testing.assert_allclose(res.t_toys, b.t_ar[1:], rtol=1e-12)
        assert res.t_obs == pytest.approx(b.t_ar[0], rel=1e-12)
        assert res.n_toys_above == int(np.count_nonzero(b.t_ar[1:] >= b.t_ar[0])) > 0
        assert res.global_p == pytest.approx(b.global_Pval, abs=1e-12)


def test_short_bound_holds():
    # the toy scan skips windows using this bound; it must never be violated
    rng = np.random.default_rng(0)
    b = np.exp(rng.uniform(np.log(1e-3), np.log(1e6), 100_000))
    d = np.floor(
        np.maximum(0, b + rng.normal(0, 6, b.size) * np.sqrt(b) + rng.normal(0, 3, b.size))
    )
    for mode in ("excess", "deficit"):
        _, lp = log_pvalues(d, b, mode)
        sel = (d > b) & (b > 0) if mode == "excess" else d < b
        z_true = -ndtri_exp(lp[sel])
        assert np.all(z_true <= np.sqrt(z_upper_sq(d[sel], b[sel])) + 1e-9)


def test_log_space_tails_match_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    cases = [
        (2000.0, 100.0, "excess"),
        (1_040_000.0, 1_000_000.0, "excess"),
        (5.0, 900.0, "deficit"),
        (960_000.0, 1_000_000.0, "deficit"),
        (30.0, 100.0, "deficit"),
    ]
    for d, b, mode in cases:
        _, lp = log_pvalues(np.array([d]), np.array([b]), mode)
        if mode == "excess":
            ref = mp.log(mp.gammainc(d, 0, b, regularized=True))
        else:
            ref = mp.log(mp.gammainc(d + 1, b, mp.inf, regularized=True))
        assert lp[0] == pytest.approx(float(ref), rel=1e-10)


def test_calibration_global_p_uniform():
    rng = np.random.default_rng(123)
    bkg = np.linspace(80, 20, 16)
    toys = rng.poisson(bkg, size=(300, 16))
    pv = [
        bumphunt(t, bkg, width_min=1, width_max=4, n_toys=400, seed=i).global_p
        for i, t in enumerate(toys)
    ]
    # discrete p on a 1/400 grid: compare to uniform, allowing the grid resolution
    assert stats.kstest(pv, "uniform").pvalue > 0.01
    assert 0.4 < np.mean(pv) < 0.6


def test_edge_cases():
    bkg = np.array([0.0, 0.0, 5.0, 10.0, 0.0, 8.0, 9.0, 0.0])
    data = np.array([3.0, 0.0, 5.0, 40.0, 7.0, 8.0, 9.0, 2.0])
    lp = local_pvalues(data, bkg, width_min=1, width_max=1)
    # zero-background edge bins are trimmed (1D, as C++ BumpHunter); inner B=0 window has p=1
    assert lp["x0"].tolist() == [2, 3, 4, 5, 6]
    assert lp["p"][2] == 1.0
    # huge excess: finite t, correct log p
    res = bumphunt(
        np.array([10, 5000, 10.0]), np.array([10, 10, 10.0]), width_min=1, width_max=1, n_toys=50
    )
    assert math.isfinite(res.t_obs) and res.t_obs > 20000
    assert res.global_p_is_bound and res.global_p == pytest.approx(-math.log(0.05) / 50)
    # deep deficit: p far below 1e-16 is resolved (1 - gammainc would give 0)
    res = bumphunt(
        np.array([100, 0, 100.0]),
        np.array([100, 100, 100.0]),
        width_min=1,
        width_max=1,
        mode="deficit",
        n_toys=20,
    )
    assert res.local_log_p == pytest.approx(-100.0, rel=1e-12)
    # empty data: nothing found, global p = 1
    res = bumphunt(np.zeros(10), np.full(10, 3.0), width_min=1, width_max=3, n_toys=50)
    assert res.bump_bins is None and res.global_p == 1.0 and res.global_z == 0.0
    with pytest.raises(BumpHunterError, match="shape"):
        bumphunt(np.zeros(10), np.ones(11))
    with pytest.raises(BumpHunterError, match="no positive bin"):
        bumphunt(np.ones(10), np.zeros(10))


def test_hist_input_variable_edges_and_json():
    hist = pytest.importorskip("hist")
    edges = np.array([0, 1, 2, 4, 7, 11, 16, 22, 29, 37, 46.0])
    hb = hist.Hist(hist.axis.Variable(edges, name="mjj"))
    hd = hist.Hist(hist.axis.Variable(edges, name="mjj"))
    bkg = np.full(10, 50.0)
    hb[...] = bkg
    d = bkg.copy()
    d[5] += 60
    hd[...] = d
    res = bumphunt(hd, hb, width_min=1, width_max=3, n_toys=100)
    assert res.bump_lo == (11.0,) and res.bump_hi == (16.0,)
    import json

    json.dumps(res.to_dict())


def test_bkg_uncertainty_gamma_prior():
    from scipy import integrate

    res0 = local_pvalues(np.array([130.0]), np.array([100.0]), width_min=1, width_max=1)
    res = local_pvalues(
        np.array([130.0]), np.array([100.0]), width_min=1, width_max=1, bkg_uncertainty=0.1
    )
    # P(N >= 130) with lambda ~ Gamma(mean 100, sd 10), by direct integration
    k, rate = 100.0, 1.0
    f = lambda lam: stats.gamma.pdf(lam, a=k, scale=1 / rate) * stats.poisson.sf(129, lam)  # noqa: E731
    ref = integrate.quad(f, 0, 400, limit=200)[0]
    assert res["p"][0] == pytest.approx(ref, rel=1e-6)
    assert res["p"][0] > res0["p"][0]


def test_table_sampler_is_exact_inverse_cdf():
    from scipy.special import pdtr

    from adcoffea.fits._windows import PoissonTable

    lam = np.array([0.0, 1e-3, 0.7, 3.0, 25.5, 400.0, 15394.0, 3e5, 5e6])
    tab = PoissonTable(lam)
    n = 20000
    toys = tab.draw(np.random.default_rng(5), n)
    # the same uniforms Generator.random gives, inverted by brute force on the exact CDF
    u = np.random.default_rng(5).random((tab.tabled.size, n))
    for row, i in enumerate(tab.tabled):
        ks = np.arange(
            max(0, int(lam[i] - 12 * np.sqrt(lam[i]) - 30)), int(lam[i] + 12 * np.sqrt(lam[i]) + 40)
        )
        f = pdtr(ks, lam[i])
        ref = ks[np.minimum(np.searchsorted(f, u[row], side="right"), ks.size - 1)]
        assert np.array_equal(toys[i], ref)
    # the tables cover all but < 1e-18 of the mass
    sd = np.sqrt(lam[lam > 0])
    lo = np.maximum(0, np.floor(lam[lam > 0] - 9 * sd - 10))
    hi = np.ceil(lam[lam > 0] + 10 * sd + 20)
    assert np.all(np.where(lo > 0, pdtr(lo - 1, lam[lam > 0]), 0.0) < 1e-18)
    assert np.all(stats.poisson.sf(hi, lam[lam > 0]) < 1e-18)


@pytest.mark.parametrize("mode", ["excess", "deficit"])
def test_critical_counts_brute_force(mode):
    from adcoffea.fits._windows import critical_counts

    rng = np.random.default_rng(11)
    b = np.concatenate([rng.exponential(30.0, 40), [0.0, 0.2]])
    for t_obs in (0.3, 3.0, 9.0, 40.0):
        crit = critical_counts(b, t_obs, mode)
        d = np.arange(0, 400)[:, None]
        reach = -log_pvalues(d, b[None, :], mode)[1] >= t_obs
        for i in range(b.size):
            hits = np.nonzero(reach[:, i])[0]
            if mode == "excess":
                assert crit[i] == (hits[0] if hits.size else 2**62)
            else:
                assert crit[i] == (hits[-1] if hits.size else -(2**62))
