"""Score thresholds at fixed background efficiencies, set without looking at the signal region.

For one window, the threshold of efficiency ``eps`` is the ``1 - eps`` quantile of the scores
of the events *outside* the SR within the fit range. Those events are background dominated
whatever the signal, and an excess inside the SR can neither move the threshold nor be
calibrated away by it. With a classifier independent of mjj (the H0 of the hunt) the
efficiency is then the same inside the SR, where it is never measured.

The efficiencies are nested (10 % > 1 % > 0.2 %), so one integer per event, its *level* (the
number of thresholds it passes), holds all the selections: an event is selected at the j-th
efficiency (descending order) when ``level > j``.

**Ties.** A classifier with a few distinct outputs (boosted trees on background-only data, or
a constant score) puts many events on the same value; a threshold on such a value keeps far
fewer events than its efficiency, or none. :func:`untie` replaces the scores by their ranks
with ties broken by a seeded random key, so that every efficiency selects its share of
events, deterministically for a given seed.

Example:
    >>> import numpy as np
    >>> scores = np.linspace(0.0, 1.0, 1001)
    >>> outside_sr = scores < 2.0          # every event
    >>> thr = thresholds(scores, outside_sr, (0.1, 0.01))
    >>> [round(float(t), 3) for t in thr]
    [0.9, 0.99]
    >>> int((levels(scores, thr) >= 1).sum()), int((levels(scores, thr) >= 2).sum())
    (100, 10)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from adcoffea.errors import ConfigError


def check_efficiencies(efficiencies: Sequence[float]) -> tuple[float, ...]:
    """Efficiencies as a strictly decreasing tuple in (0, 1); ConfigError otherwise."""
    effs = tuple(float(e) for e in efficiencies)
    if not effs:
        raise ConfigError("hunt.efficiencies: give at least one background efficiency")
    if any(not 0.0 < e < 1.0 for e in effs):
        raise ConfigError(f"hunt.efficiencies must lie in (0, 1), got {list(effs)}")
    if any(b >= a for a, b in itertools.pairwise(effs)):
        raise ConfigError(f"hunt.efficiencies must be strictly decreasing, got {list(effs)}")
    return effs


def thresholds(
    scores: np.ndarray, reference: np.ndarray, efficiencies: Sequence[float]
) -> np.ndarray:
    """Score thresholds keeping ``efficiencies`` of the ``reference`` events (a boolean mask).

    ``reference`` marks the events outside the SR within the fit range. An event passes a
    threshold when its score is strictly above it.
    """
    effs = check_efficiencies(efficiencies)
    ref = np.asarray(scores, dtype=np.float64)[np.asarray(reference, dtype=bool)]
    if len(ref) == 0:
        raise ConfigError("hunt: no events outside the signal region in the fit range")
    # an observed score as threshold ('lower'): about eps (n - 1) reference events lie above it
    return np.quantile(ref, [1.0 - e for e in effs], method="lower")


def untie(scores: np.ndarray, seed: int) -> np.ndarray:
    """Ranks (0 .. n-1, float64) of ``scores``, ties broken by a random key drawn from ``seed``.

    The order of distinct scores is kept; among equal scores the order is a seeded random
    permutation drawn from ``seed`` (NaN scores rank last).

    Example:
        >>> float(untie(np.array([0.5, 0.5, 0.5, 0.1]), seed=0)[3])
        0.0
        >>> sorted(untie(np.zeros(4), seed=1).tolist())
        [0.0, 1.0, 2.0, 3.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    # a stable sort of the shuffled scores: equal scores keep their random shuffled order
    # (a lexsort on a random second key does the same, ten times slower)
    shuffle = np.random.default_rng(seed).permutation(len(s))
    order = shuffle[np.argsort(s[shuffle], kind="stable")]
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.arange(len(s), dtype=np.float64)
    return ranks


def levels(scores: np.ndarray, thresholds_: np.ndarray) -> np.ndarray:
    """Number of (increasing) thresholds each score passes, as int8."""
    thr = np.asarray(thresholds_, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    return np.sum(s[:, None] > thr[None, :], axis=1).astype(np.int8)


def selected_histograms(
    bin_index: np.ndarray, level: np.ndarray, n_bins: int, n_levels: int
) -> np.ndarray:
    """Histograms (n_levels, n_bins) of the events selected at each efficiency.

    ``bin_index`` is each event's histogram bin (events outside ``[0, n_bins)`` are ignored);
    row ``j`` counts the events with ``level > j``.
    """
    b = np.asarray(bin_index, dtype=np.int64)
    lv = np.asarray(level, dtype=np.int64)
    ok = (b >= 0) & (b < n_bins) & (lv > 0)
    per_level = np.bincount(
        b[ok] * (n_levels + 1) + lv[ok], minlength=n_bins * (n_levels + 1)
    ).reshape(n_bins, n_levels + 1)
    # selected at efficiency j <=> level >= j + 1: reverse cumulative sum over the levels
    cum = np.cumsum(per_level[:, ::-1], axis=1)[:, ::-1]
    return cum[:, 1:].T.astype(np.float64)
