"""Global significance: permutation toys, their exactness under H0, the p-value summary."""

import numpy as np
import pytest
from scipy import stats

from adcoffea.config import FitConfig, HuntConfig
from adcoffea.hunt.classify import WindowScores
from adcoffea.hunt.lee import Permuter, summarise_global
from adcoffea.hunt.search import analyse_scores
from adcoffea.hunt.toydata import qcd
from adcoffea.hunt.windows import make_windows

FIT = FitConfig(n_params=[3, 4], range=(2800.0, 6000.0))
CFG = HuntConfig(range=(3100.0, 4300.0), efficiencies=[0.1, 0.02], n_toys=100)


def test_summary_p_values():
    g = summarise_global(t_obs=2.0, t_toys=np.array([0.5, 1.0, 2.5, 3.0]), seed=0)
    assert (g.n_above, g.p, g.p_is_bound) == (2, 0.5, False)
    g = summarise_global(t_obs=4.0, t_toys=np.zeros(1000), seed=0)
    assert g.p_is_bound and g.p == pytest.approx(-np.log(0.05) / 1000)
    assert g.z == pytest.approx(stats.norm.isf(g.p))
    assert summarise_global(t_obs=0.0, t_toys=np.ones(10), seed=0).p == 1.0


def test_permutation_keeps_folds_and_selections():
    rng = np.random.default_rng(1)
    n = 3000
    bins = rng.integers(0, 20, n)
    folds = rng.integers(0, 5, n)
    lv = rng.integers(0, 3, (2, n)).astype(np.int8)
    p = Permuter(bins, folds, lv, 2)
    obs = p.observed(20)
    for w in range(2):
        for j in range(2):
            assert np.array_equal(obs[w, j], np.bincount(bins[lv[w] > j], minlength=20))
    toys = p.spectra(np.random.default_rng(2), 3, 20)
    assert toys.shape == (3, 2, 2, 20)
    for toy in toys:
        # a permutation moves mjj, not the selection: the selected totals stay
        assert np.array_equal(toy.sum(axis=2), obs.sum(axis=2))
        assert not np.array_equal(toy, obs)
    assert not np.array_equal(toys[0], toys[1])
    # within each fold the inclusive spectrum is unchanged
    perm_bins = p.bins.copy()
    rng2 = np.random.default_rng(3)
    for a, b in p.blocks:
        rng2.shuffle(perm_bins[a:b])
        assert np.array_equal(np.sort(perm_bins[a:b]), np.sort(p.bins[a:b]))


def _null_run(seed: int, *, n: int = 20_000, n_toys: int = 100, rho: float = 0.6):
    """A known selection independent of mjj: scores correlated across windows (rho)."""
    rng = np.random.default_rng(seed)
    mjj, _ = qcd(rng, n, m_min=2700.0)
    folds = rng.integers(0, 5, n)
    edges = np.arange(1500.0, 8001.0, 100.0)
    cfg = CFG.model_copy(update={"n_toys": n_toys, "seed": seed})
    windows = make_windows(edges, cfg, FIT.range)
    common = rng.standard_normal(n)
    scored = [
        WindowScores(stats.norm.cdf(rho * common + np.sqrt(1 - rho**2) * rng.standard_normal(n)),
                     0.5, 0, 0)
        for _ in windows
    ]  # fmt: skip
    return analyse_scores(mjj, folds, windows, scored, edges=edges, config=cfg, fit=FIT)


def test_global_p_is_uniform_for_a_known_selection_under_h0():
    p = np.array([_null_run(seed).global_significance.p for seed in range(24)])
    # discrete (1/100 steps); uniform within the power of 24 runs
    assert stats.kstest(p, "uniform").pvalue > 0.01, np.sort(p)
    assert np.mean(p < 0.1) < 0.3


@pytest.mark.slow
def test_global_p_is_uniform_for_a_known_selection_under_h0_many_seeds():
    p = np.array([_null_run(100 + s, n_toys=200).global_significance.p for s in range(200)])
    assert stats.kstest(p, "uniform").pvalue > 0.01, np.sort(p)
    for alpha in (0.05, 0.1, 0.2):
        assert abs(np.mean(p <= alpha) - alpha) < 3 * np.sqrt(alpha * (1 - alpha) / 200)
