"""BumpHunter: no-excess global p, large counts, accurate tails and bad options (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits._windows import log_pvalues, z_upper_sq
from adcoffea.fits.bumphunter import BumpHunterError, bumphunt

#: the window of issue 12 where scipy's Z (4.72081) exceeded the bound sqrt(2H) = 4.71647
D_BIG, B_BIG = 7569628.0, 7556659.02


def _mp_log_sf(d: float, b: float) -> float:
    """log P(N >= d | b) in 30-digit arithmetic: P(d, b) = b^d e^-b / d! 1F1(1; d + 1; b)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    a, x = mp.mpf(int(d)), mp.mpf(b)
    s = mp.hyp1f1(1, a + 1, x, maxterms=10**7)
    return float(a * mp.log(x) - x - mp.loggamma(a + 1) + mp.log(s))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"keep_toy_t": True},
        {"sideband": True},
        {"bkg_uncertainty": 0.1},
    ],
)
def test_no_excess_gives_global_p_one_on_every_path(kwargs):
    # issue 12: 20 bins of 0.002, no data, widths 1..4, seed 11 gave p = 0.037 (Z = 1.78)
    bkg = np.full(20, 0.002)
    res = bumphunt(np.zeros(20), bkg, width_min=1, width_max=4, n_toys=10000, seed=11, **kwargs)
    assert res.t_obs == 0.0 and res.bump_bins is None
    assert res.global_p == 1.0 and res.global_z == 0.0 and res.n_toys_above == 10000
    assert not res.global_p_is_bound


def test_no_excess_gives_global_p_one_in_2d_and_with_explicit_toys():
    bkg = np.full((6, 5), 0.01)
    res = bumphunt(np.zeros((6, 5)), bkg, width_min=1, width_max=2, n_toys=3000, seed=1)
    assert res.global_p == 1.0
    toys = np.random.default_rng(2).poisson(np.full(12, 0.05), size=(500, 12))
    res = bumphunt(np.zeros(12), np.full(12, 0.05), width_min=1, width_max=3, toys=toys)
    assert res.global_p == 1.0 and res.n_toys == 500


def test_excess_pvalues_are_accurate_at_large_counts():
    d = [D_BIG]
    b = [B_BIG]
    for bb in (1e6, 1e7, 1e8):
        for z in (4.5, 5.0, 7.0):
            d.append(np.ceil(bb + z * np.sqrt(bb)))
            b.append(bb)
    _, logp = log_pvalues(np.array(d), np.array(b), "excess")
    ref = np.array([_mp_log_sf(x, y) for x, y in zip(d, b, strict=True)])
    # scipy's gammainc alone is off by up to 0.4 here (1e8, Z = 5)
    np.testing.assert_allclose(logp, ref, rtol=0, atol=1e-9)
    # with exact tails the Zubkov-Serov bound holds where scipy appeared to violate it
    from scipy.special import ndtri_exp

    assert -ndtri_exp(logp[0]) < np.sqrt(z_upper_sq(D_BIG, B_BIG))


def _brute_t(data: np.ndarray, bkg: np.ndarray, widths: range) -> np.ndarray:
    """t of each toy (rows of ``data``) from every window, no pruning."""
    best = np.zeros(len(data))
    csum = np.concatenate([np.zeros((len(data), 1)), np.cumsum(data, axis=1)], axis=1)
    for w in widths:
        dw = csum[:, w:] - csum[:, :-w]
        bw = np.convolve(bkg, np.ones(w), "valid")
        _, lp = log_pvalues(dw.astype(float), np.broadcast_to(bw, dw.shape), "excess")
        best = np.minimum(best, lp.min(axis=1))
    return -best


def test_large_count_toys_are_never_pruned_to_zero():
    # issue 12: at ~7.5e6 per window the pruning bound removed every window (t = 0)
    bkg = np.array([2.5e6, B_BIG, 3.1e6, 2.2e6])
    rng = np.random.default_rng(8)
    toys = rng.poisson(bkg, size=(400, 4))
    # toys with the window count, and excesses of 4-6 sigma in random bins
    toys[:50, 1] = int(D_BIG)
    k = rng.integers(0, 4, size=150)
    toys[50:200, :][np.arange(150), k] += (rng.uniform(4, 6, 150) * np.sqrt(bkg[k])).astype(int)
    data = toys[0].astype(float)
    exact = bumphunt(data, bkg, width_min=1, width_max=2, toys=toys, keep_toy_t=True)
    fast = bumphunt(data, bkg, width_min=1, width_max=2, toys=toys)
    ref = _brute_t(toys, bkg, range(1, 3))
    np.testing.assert_allclose(exact.t_toys, ref, rtol=1e-12, atol=0)
    assert exact.t_obs == pytest.approx(-_mp_log_sf(D_BIG, B_BIG), rel=1e-10)
    assert exact.n_toys_above == fast.n_toys_above == int(np.count_nonzero(ref >= exact.t_obs))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"width_max": 30}, ConfigError, "width_max=30 exceeds the 20 bin"),
        ({"width_min": 1.5}, ConfigError, "width_min must be an integer"),
        ({"width_max": 4.2}, ConfigError, "width_max must be an integer"),
        ({"n_toys": -5}, ConfigError, "n_toys must be an integer >= 0"),
        ({"n_toys": 2.5}, ConfigError, "n_toys must be an integer"),
        ({"bkg_uncertainty": float("nan")}, ConfigError, "bkg_uncertainty must be a finite"),
        ({"bkg_uncertainty": np.r_[np.full(19, 1.0), np.nan]}, BumpHunterError, "bin 19"),
        ({"bkg_uncertainty": np.r_[np.full(19, 1.0), -1.0]}, BumpHunterError, "negative"),
        ({"sideband_width": 2}, ConfigError, "sideband_width is only used with sideband"),
        (
            {"sideband": True, "sideband_width": 8, "width_max": 6},
            ConfigError,
            "width_max=6 exceeds the 4 bin",
        ),
    ],
)
def test_bad_options_are_refused(kwargs, exc, match):
    bkg = np.full(20, 50.0)
    data = bkg.copy()
    with pytest.raises(exc, match=match):
        bumphunt(data, bkg, **{"width_min": 1, "width_max": 4, "n_toys": 10, **kwargs})


def test_bad_toys_are_refused():
    bkg = np.full(10, 5.0)
    toys = np.random.default_rng(0).poisson(bkg, size=(20, 10)).astype(float)
    toys[3, 4] = np.nan
    with pytest.raises(BumpHunterError, match="toys contain 1 NaN"):
        bumphunt(bkg, bkg, width_min=1, width_max=2, toys=toys)
    toys[3, 4] = 2.5
    with pytest.raises(BumpHunterError, match="integer counts"):
        bumphunt(bkg, bkg, width_min=1, width_max=2, toys=toys)
    toys[3, 4] = -1
    with pytest.raises(BumpHunterError, match=">= 0"):
        bumphunt(bkg, bkg, width_min=1, width_max=2, toys=toys)
