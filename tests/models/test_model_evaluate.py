from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, norm

from adcoffea.features import ModelInputs
from adcoffea.models.evaluate import js_divergence, roc_sic, sculpting
from adcoffea.models.io import load_inputs, save_inputs


def test_auc_agrees_with_mann_whitney_including_ties():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.3
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding creates many ties
    res = roc_sic(s, y)
    u = mannwhitneyu(s[y], s[~y]).statistic / (y.sum() * (~y).sum())
    assert res.auc == pytest.approx(u, abs=1e-9)
    assert res.n_signal == y.sum()


def test_max_sic_matches_gaussian_analytic_value():
    # signal N(2, 1) vs background N(0, 1): SIC(c) = Q(c - 2) / sqrt(Q(c)) rises up to c = 4,
    # so with the guard FPR >= 1 % the maximum sits at the guard, c = Q^-1(0.01).
    rng = np.random.default_rng(1)
    n = 400_000
    s = np.r_[rng.normal(0, 1, n), rng.normal(2, 1, n)]
    y = np.r_[np.zeros(n), np.ones(n)]
    c = np.linspace(0, norm.isf(0.01), 3001)
    analytic = np.max(norm.sf(c - 2) / np.sqrt(norm.sf(c)))
    res = roc_sic(s, y, min_background=n // 100)
    assert res.fpr_at_max_sic == pytest.approx(0.01, rel=0.01)
    assert res.max_sic == pytest.approx(analytic, rel=0.02)
    assert res.auc == pytest.approx(norm.cdf(2 / np.sqrt(2)), abs=0.003)


def test_max_sic_guard_ignores_cuts_with_too_few_background_events():
    s = np.r_[np.zeros(1000), [10.0], np.full(100, 5.0)]  # one bkg outlier above all signal
    y = np.r_[np.zeros(1001), np.ones(100)]
    y[1000] = 0
    res = roc_sic(s, y, min_background=10)
    assert res.fpr_at_max_sic >= 10 / 1001
    unguarded = roc_sic(s, y, min_background=1)
    assert unguarded.max_sic > res.max_sic


def test_sculpting_detects_a_mass_correlated_score():
    rng = np.random.default_rng(2)
    mjj = rng.exponential(500.0, 100_000) + 2000.0
    edges = np.linspace(2000, 4000, 21)
    bkg = np.ones(len(mjj), bool)
    flat = sculpting(mjj, rng.random(len(mjj)), is_background=bkg, edges=edges,
                     efficiencies=(0.1,))  # fmt: skip
    sculpted = sculpting(mjj, mjj + rng.normal(0, 300, len(mjj)), is_background=bkg,
                         edges=edges, efficiencies=(0.1,))  # fmt: skip
    assert flat.js[0] < 3 * flat.js_random[0] + 1e-3
    assert flat.chi2_flat[0] / flat.ndf[0] < 2.5
    assert sculpted.js[0] > 20 * sculpted.js_random[0]
    assert sculpted.chi2_flat[0] / sculpted.ndf[0] > 10
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)


def test_inputs_npz_round_trip(tmp_path, clouds):
    inputs, labels = clouds
    inputs = ModelInputs(high_level={"mjj": np.arange(len(labels), dtype=float)},
                         event=inputs.event, constituents=inputs.constituents,
                         mask=inputs.mask, jets=inputs.jets)  # fmt: skip
    save_inputs(tmp_path / "x.npz", inputs, labels=labels)
    back, extra = load_inputs(tmp_path / "x.npz")
    np.testing.assert_array_equal(back.constituents, inputs.constituents)
    np.testing.assert_array_equal(back.mask, inputs.mask)
    np.testing.assert_array_equal(back.high_level["mjj"], inputs.high_level["mjj"])
    np.testing.assert_array_equal(extra["labels"], labels)


def test_evaluate_cli_writes_roc_and_sculpting(tmp_path, lhco_small):
    import json

    from adcoffea.cli import main
    from adcoffea.config import TrainConfig
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model

    inputs, labels = lhco_small
    cfg = TrainConfig(epochs=2, batch_size=256, seed=0)
    res = train_model("supervised", inputs, config=cfg, labels=labels, progress=False)
    save_bundle(res.bundle, tmp_path / "bundle")
    save_inputs(tmp_path / "in.npz", inputs, labels=labels)
    rc = main(["evaluate", "--bundle", str(tmp_path / "bundle"), "--inputs",
               str(tmp_path / "in.npz"), "--out", str(tmp_path / "ev")])  # fmt: skip
    assert rc == 0
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert report["roc"]["auc"] > 0.9
    assert len(report["sculpting"]["js"]) == 2
    assert (tmp_path / "ev" / "roc.png").stat().st_size > 0
    # a user error (missing bundle) is reported without traceback, exit code 2
    assert main(["evaluate", "--bundle", str(tmp_path / "nope"), "--inputs",
                 str(tmp_path / "in.npz")]) == 2  # fmt: skip
