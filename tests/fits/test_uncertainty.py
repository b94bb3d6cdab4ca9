"""Fit-function uncertainty (adcoffea.fits.uncertainty) and its use in BumpHunter and pyhf."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_background
from adcoffea.fits.bumphunter import bumphunt, local_pvalues
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.uncertainty import fit_function_uncertainty
from adcoffea.fits.workspace import build_workspace, upper_limit, validate_workspace

EDGES = np.linspace(2700.0, 7000.0, 44)
DIJET = [7.80, 5.26, 1.13]
#: a strongly curved spectrum of another family: no 3-parameter dijet function describes it
CURVED = expected_counts(EDGES, [1e6, 2.0, 8.0, 2.5, 0.35], function="expo")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(4).poisson(expected_counts(EDGES, [1e6, *DIJET])).astype(float)


def test_envelope_per_bin_and_per_window(data):
    nominal = fit_background(data, edges=EDGES, n_params=4)
    u = fit_function_uncertainty(data, edges=EDGES, n_params=4, nominal=nominal)
    assert u.method == "envelope" and u.edges is nominal.edges
    assert [a["function"] for a in u.alternatives] == ["dijet", "expo", "power"]
    assert all(a["used"] for a in u.alternatives)
    # the envelope is the largest deviation of the alternatives, bin by bin
    np.testing.assert_allclose(u.per_bin, np.max(np.abs(u.deviations), axis=0))
    assert np.all(u.per_bin >= 0) and np.all(u.relative < 0.05)
    # a matching function family: the choice matters less than the statistics
    assert np.max(u.per_bin / np.sqrt(nominal.background)) < 1.0
    # a window: one alternative shifts its bins coherently, bounded by the per-bin sum
    w = u.window(4400.0, 5000.0)
    assert 0 <= w <= u.per_bin[17:23].sum() + 1e-9
    assert w == pytest.approx(np.max(np.abs(u.deviations[:, 17:23].sum(axis=1))))
    # extended ML: every fit has the data's total, so the whole range has ~no uncertainty
    assert u.window_bins(0, 43) < 1e-3 * np.sqrt(data.sum())
    json.dumps(u.to_dict())


def test_envelope_grows_when_the_nominal_function_is_too_simple(data):
    bad = np.random.default_rng(5).poisson(CURVED).astype(float)
    ok = fit_function_uncertainty(data, edges=EDGES, n_params=4)
    poor = fit_function_uncertainty(bad, edges=EDGES, n_params=3)
    stat_ok = np.max(ok.per_bin / np.sqrt(ok.nominal))
    stat_poor = np.max(poor.per_bin / np.sqrt(poor.nominal))
    assert stat_poor > 2.0 > 3 * stat_ok


def test_spurious_signal_from_a_template(data):
    u = fit_function_uncertainty(
        data, edges=EDGES, n_params=3, template=CURVED, masses=[3350.0, 4550.0, 4950.0]
    )
    assert u.method == "envelope+spurious" and len(u.spurious) == 3
    np.testing.assert_allclose(u.per_bin, np.maximum(u.envelope, u.spurious_per_bin))
    # the template's shape differs from the 3-parameter dijet function: a spurious signal of
    # several data-sized statistical errors (4.7, -3.4, -4.8), which the per-bin values carry
    assert min(abs(r["s_spur_over_sigma"]) for r in u.spurious) > 3.0
    assert np.max(u.spurious_per_bin - u.envelope) > 0
    assert u.window(4400.0, 4600.0) >= u.spurious_per_bin[17:19].max()


def test_used_in_bumphunter_as_a_correlated_background_uncertainty(data):
    u = fit_function_uncertainty(data, edges=EDGES, n_params=4)
    all_edges = np.linspace(2500.0, 7200.0, 48)  # the histogram is wider than the fit
    sigma = u.embed(all_edges)
    assert sigma[:2].sum() == 0 and sigma[-2:].sum() == 0
    np.testing.assert_allclose(sigma[2:45], u.per_bin)
    bkg = np.zeros(47)
    bkg[2:45] = u.nominal
    counts = np.zeros(47)
    counts[2:45] = data
    kw = {"edges": all_edges, "width_min": 1, "width_max": 4}
    plain = local_pvalues(counts, bkg, **kw)
    quad = local_pvalues(counts, bkg, bkg_uncertainty=sigma, **kw)
    corr = local_pvalues(counts, bkg, bkg_uncertainty=sigma, bkg_correlated=True, **kw)
    wide = plain["wx"] > 1
    ex = plain["data"] > plain["background"]
    # an uncertainty only weakens excesses; summed linearly it weakens wide windows more
    assert np.all(quad["p"][ex] >= plain["p"][ex] * (1 - 1e-12))
    assert np.all(corr["p"][ex & wide] >= quad["p"][ex & wide] * (1 - 1e-12))
    assert np.any(corr["p"][ex & wide] > quad["p"][ex & wide] * 1.01)
    res = bumphunt(counts, bkg, bkg_uncertainty=sigma, bkg_correlated=True, n_toys=200, **kw)
    assert res.settings["bkg_correlated"] is True
    with pytest.raises(ConfigError, match="bkg_correlated needs a per-bin"):
        bumphunt(counts, bkg, bkg_uncertainty=0.1, bkg_correlated=True, **kw)
    with pytest.raises(ConfigError, match="does not contain the fitted bins"):
        u.embed(np.linspace(2000.0, 8000.0, 40))


def test_used_in_pyhf_as_one_histosys_nuisance_parameter():
    edges = np.linspace(3000.0, 4200.0, 7)
    nominal = expected_counts(edges, [3e3, *DIJET])
    data = np.round(nominal)
    sig = 40.0 * np.exp(-0.5 * ((0.5 * (edges[1:] + edges[:-1]) - 3600.0) / 150.0) ** 2)
    sigma = 0.05 * nominal
    ws = build_workspace(data, nominal, sig, fit_function_uncertainty=sigma)
    validate_workspace(ws)
    mods = ws["channels"][0]["samples"][1]["modifiers"]
    assert [m["name"] for m in mods] == ["fit_function_SR"] and mods[0]["type"] == "histosys"
    np.testing.assert_allclose(mods[0]["data"]["hi_data"], nominal + sigma)
    np.testing.assert_allclose(mods[0]["data"]["lo_data"], nominal - sigma)
    # the nuisance parameter weakens the limit
    without = upper_limit(build_workspace(data, nominal, sig))
    with_unc = upper_limit(ws)
    assert with_unc.observed > without.observed * 1.02
    with pytest.raises(ConfigError, match="fit_function_uncertainty"):
        build_workspace(data, nominal, sig, fit_function_uncertainty=-sigma)


def test_workspace_takes_the_uncertainty_object_of_a_fit(data):
    fit = fit_background(data, edges=EDGES, n_params=4)
    u = fit_function_uncertainty(data, edges=EDGES, n_params=4, nominal=fit)
    sig = 500.0 * np.exp(-0.5 * ((0.5 * (EDGES[1:] + EDGES[:-1]) - 4000.0) / 200.0) ** 2)
    ws = build_workspace(data, fit, sig, fit_function_uncertainty=u)
    names = [m["name"] for m in ws["channels"][0]["samples"][1]["modifiers"]]
    assert names[-1] == "fit_function_SR" and names[0].startswith("bkg_fit_eig")
    assert names[0].endswith("_SR")
    with pytest.raises(ConfigError, match="has 43 bins, the workspace 10"):
        build_workspace(data[:10], data[:10], sig[:10], fit_function_uncertainty=u)


def test_bad_options_are_refused(data):
    with pytest.raises(ConfigError, match="alternatives must differ"):
        fit_function_uncertainty(data, edges=EDGES, alternatives=("dijet",))
    with pytest.raises(ConfigError, match="unknown fit function"):
        fit_function_uncertainty(data, edges=EDGES, alternatives=("ua3",))
    nominal = fit_background(data, edges=EDGES, n_params=4)
    with pytest.raises(ConfigError, match="nominal is a 4-parameter"):
        fit_function_uncertainty(data, edges=EDGES, n_params=3, nominal=nominal)
