"""MC-assisted extrapolation: the mass weight, closure of the three variants where MC mismodels
the data, and an SR signal found against the prediction."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.mc_assisted import fit_mass_weight, mc_assisted, predict_background

CR, VAL, SR = (1.0, 2.6), (2.2, 2.6), (2.6, 8.0)


def _toy(n: int, *, slope: float, lam: float, seed: int, n_signal: int = 0):
    """m ~ 1 + Exp(lam); x = (slope * m + noise, m-independent noise); signal: a cluster."""
    rng = np.random.default_rng(seed)
    m = 1.0 + rng.exponential(1.0 / lam, n)
    x = np.column_stack([slope * m + rng.normal(0, 1, n), rng.normal(0, 1, n)])
    y = np.zeros(n, np.int8)
    if n_signal:
        ms = rng.uniform(3.0, 4.0, n_signal)
        xs = np.column_stack([slope * ms + rng.normal(0, 0.3, n_signal),
                              rng.normal(2.5, 0.3, n_signal)])  # fmt: skip
        m, x, y = np.r_[m, ms], np.r_[x, xs], np.r_[y, np.ones(n_signal, np.int8)]
    return x, m, y


@pytest.fixture(scope="module")
def samples():
    # "data": steeper spectrum and a larger slope of x1 with m than the "MC" has
    x_d, m_d, y_d = _toy(8000, slope=1.3, lam=1.2, seed=1, n_signal=150)
    x_mc, m_mc, _ = _toy(16000, slope=1.0, lam=1.0, seed=2)
    x_b, m_b, _ = _toy(16000, slope=1.3, lam=1.2, seed=3)  # the true background (idealized)
    return x_d, m_d, y_d, x_mc, m_mc, x_b, m_b


def test_mass_weight_recovers_the_spectrum_ratio():
    rng = np.random.default_rng(0)
    m_d, m_mc = 1 + rng.exponential(1 / 1.5, 40000), 1 + rng.exponential(1.0, 40000)
    mw = fit_mass_weight(m_d, m_mc, cr=(1.0, 3.0), degree=1, bins=12)
    grid = np.array([1.2, 2.0, 2.8, 4.0])  # 4.0: extrapolated beyond the CR
    ratio = mw(grid) / mw(grid[0])
    np.testing.assert_allclose(ratio, np.exp(-0.5 * (grid - grid[0])), rtol=0.12)


@pytest.mark.parametrize("method", ["reweight", "morph", "generate"])
def test_prediction_closes_where_raw_mc_does_not(samples, method):
    x_d, m_d, y_d, x_mc, m_mc, *_ = samples
    bkg = y_d == 0
    opts = {"flow_epochs": 8, "fine_tune_epochs": 6} if method == "generate" else {}
    res = mc_assisted(x_d[bkg], m_d[bkg], x_mc, m_mc, sr=SR, cr=CR, validation=VAL,
                      method=method, seed=4, members=1, **opts)  # fmt: skip
    # raw MC in the validation slice is visibly off (x1 ~ slope * m): the shift is corrected
    in_v = (m_d[bkg] >= VAL[0]) & (m_d[bkg] < VAL[1])
    in_v_mc = (m_mc >= VAL[0]) & (m_mc < VAL[1])
    raw_shift = (x_mc[in_v_mc, 0].mean() - x_d[bkg][in_v, 0].mean()) / x_d[bkg][in_v, 0].std()
    assert raw_shift < -0.35
    assert abs(res.closure.mean_shift[0]) < 0.5 * abs(raw_shift), res.closure
    assert res.closure.auc < 0.58, res.closure
    assert res.to_dict()["closure"]["n_data"] == int(in_v.sum())


def test_signal_is_found_against_the_prediction_and_the_idealized_one(samples):
    x_d, m_d, y_d, x_mc, m_mc, x_b, m_b = samples
    res = mc_assisted(x_d, m_d, x_mc, m_mc, sr=SR, cr=CR, method="reweight", seed=5, members=2)
    auc = roc_sic(res.scores, y_d[res.sr_mask], min_background=10).auc
    from adcoffea.models.mc_assisted import classify_against

    in_b = (m_b >= SR[0]) & (m_b < SR[1])
    ideal = classify_against(x_d[res.sr_mask], x_b[in_b], seed=5, members=2)
    auc_ideal = roc_sic(ideal, y_d[res.sr_mask], min_background=10).auc
    assert auc > 0.75 and auc_ideal > 0.75
    assert auc <= auc_ideal + 0.05  # the prediction can't beat the true background


def test_bad_regions_are_refused(samples):
    x_d, m_d, _, x_mc, m_mc, *_ = samples
    with pytest.raises(ConfigError, match="overlaps"):
        mc_assisted(x_d, m_d, x_mc, m_mc, sr=(2.0, 8.0), cr=CR)
    with pytest.raises(ConfigError, match="validation"):
        mc_assisted(x_d, m_d, x_mc, m_mc, sr=SR, cr=CR, validation=(0.5, 1.5))
    with pytest.raises(ConfigError, match="method"):
        predict_background(x_d, m_d, x_mc, m_mc, cr=CR, target=SR, method="magic")
