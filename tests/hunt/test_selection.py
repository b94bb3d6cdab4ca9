"""Thresholds at fixed background efficiency, blind to the signal region."""

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.hunt.selection import levels, selected_histograms, thresholds


def test_thresholds_ignore_signal_region_events():
    rng = np.random.default_rng(1)
    scores = rng.random(100_000)
    in_sr = rng.random(100_000) < 0.15
    thr = thresholds(scores, ~in_sr, (0.1, 0.01, 0.002))
    # an excess of high scores in the SR (a signal) does not move the thresholds
    spiked = scores.copy()
    spiked[np.flatnonzero(in_sr)[:3000]] = 0.9999
    assert np.array_equal(thresholds(spiked, ~in_sr, (0.1, 0.01, 0.002)), thr)
    # outside the SR each threshold keeps its efficiency
    for t, eff in zip(thr, (0.1, 0.01, 0.002), strict=True):
        assert abs(np.mean(scores[~in_sr] > t) - eff) < 1e-4
    # inside the SR the spiked scores pass every threshold
    assert np.all(levels(spiked[in_sr][:3000], thr) == 3)


def test_levels_and_histograms_are_nested():
    rng = np.random.default_rng(2)
    scores = rng.random(5000)
    bins = rng.integers(-1, 11, 5000)  # -1: outside the histogram
    thr = thresholds(scores, np.ones(5000, bool), (0.5, 0.1))
    lv = levels(scores, thr)
    h = selected_histograms(bins, lv, 10, 2)
    for j, t in enumerate(thr):
        ok = (bins >= 0) & (bins < 10) & (scores > t)
        assert np.array_equal(h[j], np.bincount(bins[ok], minlength=10))
    assert np.all(h[1] <= h[0])


def test_efficiencies_must_decrease():
    with pytest.raises(ConfigError, match=r"hunt\.efficiencies"):
        thresholds(np.zeros(10), np.ones(10, bool), (0.01, 0.1))


def test_untie_keeps_order_and_breaks_ties_by_seed():
    from adcoffea.hunt.selection import untie

    s = np.array([0.3, 0.1, 0.3, 0.3, 0.9, 0.1])
    r = untie(s, seed=5)
    assert sorted(r.tolist()) == list(range(6))
    # distinct scores keep their order; tied ones get consecutive ranks
    assert r[1] < r[0] and r[5] < r[0] and max(r[[0, 2, 3]]) < r[4]
    assert np.array_equal(untie(s, seed=5), r)  # deterministic
    assert any(not np.array_equal(untie(s, seed=k), r) for k in range(6, 20))


def test_constant_scores_select_their_share_deterministically():
    """A constant classifier (e.g. trees on background only) must not empty the selection."""
    from adcoffea.config import FitConfig, HuntConfig
    from adcoffea.hunt.classify import WindowScores
    from adcoffea.hunt.search import analyse_scores
    from adcoffea.hunt.toydata import qcd
    from adcoffea.hunt.windows import make_windows

    rng = np.random.default_rng(3)
    mjj, _ = qcd(rng, 20_000, m_min=2700.0)
    folds = rng.integers(0, 5, len(mjj))
    edges = np.arange(1500.0, 8001.0, 100.0)
    fit = FitConfig(n_params=[3, 4], range=(2800.0, 6000.0))
    cfg = HuntConfig(range=(3100.0, 4000.0), efficiencies=[0.1, 0.02], n_toys=20, seed=1)
    windows = make_windows(edges, cfg, fit.range)
    scored = [WindowScores(np.full(len(mjj), 0.5), 0.5, 0, 0) for _ in windows]

    def run():
        return analyse_scores(mjj, folds, windows, scored, edges=edges, config=cfg, fit=fit)

    res = run()
    n_fit = res.n_events
    for w in res.windows:
        for c in w.efficiencies:
            # about eps of the fit range (eps outside the SR, the same share inside it)
            assert abs(c.n_selected / n_fit - c.efficiency) < 0.25 * c.efficiency, c
            assert c.threshold == 0.5
    again = run()
    assert [c.counts for w in again.windows for c in w.efficiencies] == [
        c.counts for w in res.windows for c in w.efficiencies
    ]
