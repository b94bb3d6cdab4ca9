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
