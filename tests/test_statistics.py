"""The statistics stage on hand-made histograms: typed per-region results, empty regions."""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from adcoffea.config import parse_config
from adcoffea.fits.functions import expected_counts
from adcoffea.statistics import EMPTY_REGION, run_statistics

EDGES = np.linspace(2700.0, 6000.0, 34)


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    cfg = parse_config(
        {
            "name": "t",
            "datasets": {"fileset": "f.json"},
            "models": [{"method": "autoencoder", "name": "ae"}],
            "regions": [
                {"name": "inclusive"},
                {"name": "ae_top1", "model": "ae", "efficiency": 0.01},
            ],
            "histograms": {"mjj": {"edges": EDGES.tolist()}},
            "fit": {"n_params": [3, 4]},
            "bumphunt": {"n_toys": 200, "seed": 3},
            "limits": {"region": "ae_top1", "masses": [3500.0]},
        }
    )
    h = hist.Hist(
        hist.axis.StrCategory(["data"], name="dataset"),
        hist.axis.StrCategory(["inclusive", "ae_top1"], name="region"),
        hist.axis.Variable(EDGES, name="mjj"),
        storage=hist.storage.Weight(),
    )
    counts = np.random.default_rng(4).poisson(expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1]))
    h.view().value[0, 0] = counts  # the score region stays empty (a constant score)
    h.view().variance[0, 0] = counts
    out = tmp_path_factory.mktemp("stats")
    return run_statistics(cfg, {"mjj": h}, ["data"], out_dir=out), out


def test_inclusive_region_is_fitted_and_scanned(stats):
    res, out = stats
    incl = res.regions["inclusive"]
    assert incl.fit is not None and incl.fit.best.n_params in (3, 4)
    assert incl.fit.best.pvalue > 0.001  # the spectrum is the fit function itself
    assert incl.bumphunter is not None and incl.bumphunter.global_z < 2.0  # no signal
    assert (out / "plots" / "fit_inclusive.png").exists()


def test_empty_region_is_noted_not_fitted(stats):
    res, _ = stats
    empty = res.regions["ae_top1"]
    assert empty.events == 0 and empty.note == EMPTY_REGION
    assert empty.fit is None and empty.bumphunter is None
    assert res.limits is not None and res.limits.background == EMPTY_REGION
    assert not res.limits.templates and res.limits.mass_scan is None
    d = json.loads(json.dumps(res.to_dict()))
    assert d["regions"]["ae_top1"] == {"events": 0.0, "note": EMPTY_REGION}


# --------------------------------------------------------------------------------------
# fit-function uncertainty, guarded refit, adequacy flag (issue 11)
# --------------------------------------------------------------------------------------
X = 0.5 * (EDGES[1:] + EDGES[:-1])


def _mis_modelled(n: float, amp: float, seed: int) -> np.ndarray:
    """A dijet spectrum times a smooth step at 4.2 TeV: no dijet-like function describes it."""
    truth = expected_counts(EDGES, [n, 7.8, 5.3, 1.1]) * (1 + amp * np.tanh((X - 4200) / 300))
    return np.random.default_rng(seed).poisson(truth).astype(float)


def _run(tmp_path, counts, *, fit=None, bumphunt=None, limits=None, signal=None, template=None):
    datasets = ["data"] + (["sig"] if signal is not None else [])
    datasets += ["mc"] if template is not None else []
    cfg = parse_config(
        {
            "name": "t",
            "datasets": {
                "fileset": "f.json",
                **({"signal": ["sig"]} if signal is not None else {}),
            },
            "regions": [{"name": "inclusive"}],
            "histograms": {"mjj": {"edges": EDGES.tolist()}},
            "fit": {"n_params": [3, 4], **(fit or {})},
            "bumphunt": {"n_toys": 300, "seed": 3, **(bumphunt or {})},
            **({"limits": limits} if limits is not None else {}),
        }
    )
    h = hist.Hist(
        hist.axis.StrCategory(datasets, name="dataset"),
        hist.axis.StrCategory(["inclusive"], name="region"),
        hist.axis.Variable(EDGES, name="mjj"),
        storage=hist.storage.Weight(),
    )
    extra = [x for x in (signal, template) if x is not None]
    for i, c in enumerate([counts, *extra]):
        h.view().value[i, 0] = c
        h.view().variance[i, 0] = c
    res = run_statistics(cfg, {"mjj": h}, ["data"], out_dir=tmp_path)
    return res, res.regions["inclusive"]


@pytest.fixture(scope="module")
def mis_modelled(tmp_path_factory):
    out = tmp_path_factory.mktemp("mis")
    res, region = _run(out, _mis_modelled(1e5, 0.3, 5))
    return res, region, out


def test_well_modelled_region_is_adequate_and_quoted(stats):
    incl = stats[0].regions["inclusive"]
    assert incl.background_model_adequate is True and incl.bumphunter_quoted
    d = incl.to_dict()
    assert d["background_model_adequate"] is True and d["bumphunter_quoted"] is True
    assert "not_quoted_reason" not in d
    # diagnostics: chi2 p-value, order-test table, pulls, fit-function uncertainty
    assert d["fit"]["chi2_pvalue"] == incl.fit.best.pvalue
    assert [r["n_params"] for r in d["fit"]["order_selection"]["table"]] == [3, 4]
    assert len(d["fit"]["pulls"]) == len(EDGES) - 1
    unc = d["fit_function_uncertainty"]
    assert unc["method"] == "envelope" and any(a["used"] for a in unc["alternatives"])
    st = d["bumphunter"]["fit_function_uncertainty"]
    assert st["included"] and 0 < st["window_events"] < st["stat_events"]


def test_mis_modelled_region_is_flagged_and_not_quoted(mis_modelled):
    res, region, out = mis_modelled
    assert region.fit.best.pvalue < 0.01
    assert region.background_model_adequate is False
    # the scan sees a 'bump' (the shape mismatch), but it is not quoted as a discovery
    assert region.bumphunter.global_p < 0.05
    assert not region.bumphunter_quoted
    d = json.loads(json.dumps(res.to_dict()))["regions"]["inclusive"]
    assert d["background_model_adequate"] is False and d["bumphunter_quoted"] is False
    assert "not quoted as a discovery" in d["not_quoted_reason"]

    from adcoffea.report import build_report
    from adcoffea.results import ProcessingResult, SearchResult

    doc = build_report(
        out, SearchResult(name="t", analysis="dijet", processing=ProcessingResult(), statistics=res)
    )
    md = doc.markdown()
    assert "not quoted as a discovery" in doc.html("t")
    assert "NO: inadequate" in md
    assert "Region inclusive: background model inadequate" in md
    assert "not quoted as a discovery" in md
    assert "Order test (wilks), region inclusive" in md
    # every Markdown table row has as many cells as its header
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            assert len({ln.count("|") for ln in lines if not ln.startswith("|---")}) == 1, block


def test_inadequate_fit_does_not_veto_a_data_driven_scan(mis_modelled):
    import dataclasses

    _, region, _ = mis_modelled
    driven = dataclasses.replace(region, background_method="inclusive x efficiency")
    assert driven.background_model_adequate is False  # still flagged
    assert driven.bumphunter_quoted and driven.not_quoted_reason is None
    assert driven.to_dict()["bumphunter_quoted"] is True


def test_guarded_refit_refuses_a_refit_that_breaks_the_sidebands(mis_modelled):
    res, region, _ = mis_modelled
    ref = region.refit
    assert ref is not None  # the first scan had global p < refit_global_p
    assert not ref.decision.accepted and ref.decision.kept == "original"
    assert ref.decision.refit_pvalue < 0.01
    assert "does not describe the data outside the window" in ref.decision.reason
    # the conservative scan is quoted and the fit stays the one over all bins
    assert ref.original.global_p >= ref.refit.global_p and ref.quoted == "original"
    assert region.bumphunter is ref.original and region.fit.excluded_window is None
    d = res.to_dict()["regions"]["inclusive"]["refit"]
    assert {"decision", "original_bumphunter", "refit_bumphunter", "quoted"} <= set(d)


def test_guarded_refit_accepts_a_refit_around_a_real_bump(tmp_path):
    from adcoffea.fits.signal import gaussian_signal

    truth = expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1])
    truth += 700 * gaussian_signal(EDGES, 4000.0, rel_width=0.04)
    counts = np.random.default_rng(0).poisson(truth).astype(float)
    _, region = _run(tmp_path, counts)
    ref = region.refit
    assert ref is not None and ref.decision.accepted, ref and ref.decision.reason
    assert ref.quoted == "refit" and region.bumphunter is ref.refit
    assert region.fit.excluded_window == ref.window
    assert region.background_model_adequate and region.bumphunter_quoted


def test_fit_function_uncertainty_weakens_a_shape_mismatch(tmp_path):
    counts = _mis_modelled(5e4, 0.08, 1)
    opts = {"refit_global_p": None, "n_toys": 500}
    _, with_unc = _run(tmp_path / "with", counts, bumphunt=opts)
    _, without = _run(
        tmp_path / "without", counts, fit={"function_uncertainty": False}, bumphunt=opts
    )
    assert with_unc.bumphunter_uncertainty.included
    assert not without.bumphunter_uncertainty.included
    assert with_unc.bumphunter.settings["bkg_correlated"] is True
    assert with_unc.bumphunter.local_z < without.bumphunter.local_z
    # same data and toys: at a shape mismatch, where the alternative functions disagree,
    # the global p grows by more than its toy error. (Not a theorem: on well-modelled
    # spectra the uncertainty reweights the windows and the global p may also fall a little.)
    err = with_unc.bumphunter.global_p_error + without.bumphunter.global_p_error
    assert with_unc.bumphunter.global_p > without.bumphunter.global_p + err


@pytest.mark.parametrize("ffu", [True, False])
def test_workspace_has_a_valid_fit_function_nuisance(tmp_path, ffu):
    import pyhf

    from adcoffea.fits.signal import gaussian_signal

    counts = np.random.default_rng(4).poisson(expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1]))
    signal = 400 * gaussian_signal(EDGES, 4000.0, rel_width=0.05)
    # the template's MC statistics and the diagnostics have their own tests (fits/
    # test_workspace_modifiers.py, test_normalisation.py); each staterror gamma slows every fit
    limits = {"region": "inclusive", "reference_events": 100.0,
              "signal_stat_uncertainty": False, "diagnostics": False}  # fmt: skip
    res, _ = _run(
        tmp_path,
        counts.astype(float),
        fit={"function_uncertainty": ffu},
        limits=limits,
        signal=signal,
    )
    lim = res.limits
    t = lim.templates["sig"]
    assert t.limit is not None and t.fit_function_nuisance is ffu
    assert lim.fit_function_uncertainty.included is ffu
    ws = json.loads(t.workspace.read_text())
    mods = {m["name"]: m for m in ws["channels"][0]["samples"][1]["modifiers"]}
    # one fit per region: its nuisance parameters carry the region's name
    assert ("fit_function_inclusive" in mods) is ffu
    model = pyhf.Workspace(ws).model()  # validates against pyhf's schema
    if ffu:
        assert mods["fit_function_inclusive"]["type"] == "histosys"
        assert "fit_function_inclusive" in model.config.parameters
        hi = np.array(mods["fit_function_inclusive"]["data"]["hi_data"])
        nominal = np.array(ws["channels"][0]["samples"][1]["data"])
        assert np.all(hi >= nominal) and np.any(hi > nominal)
    d = res.to_dict()["limits"]
    assert d["templates"]["sig"]["fit_function_nuisance"] is ffu


def test_background_template_adds_the_spurious_signal(tmp_path):
    truth = expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1])
    counts = np.random.default_rng(4).poisson(truth).astype(float)
    template = np.random.default_rng(5).poisson(10 * truth).astype(float)
    _, region = _run(
        tmp_path,
        counts,
        fit={"uncertainty_template": "mc", "n_params": [3], "range": [2700.0, 4200.0]},
        bumphunt={"refit_global_p": None, "n_toys": 100},
        template=template,
    )
    unc = region.fit_function_uncertainty
    assert unc.method == "envelope+spurious" and len(unc.spurious) > 0
    assert np.all(unc.per_bin >= unc.envelope) and np.all(unc.per_bin >= unc.spurious_per_bin)
    assert region.bumphunter_uncertainty.method == "envelope+spurious"


def test_scan_toys_are_refitted_by_default(stats, tmp_path):
    """The global p of a fitted region comes from toys refitted as the data (issue 11)."""
    incl = stats[0].regions["inclusive"]
    settings = incl.to_dict()["bumphunter"]["settings"]
    assert settings["toy_backgrounds"] == "per toy" and "refitted" in settings["toys"]
    assert sum(settings["toy_orders"].values()) == incl.bumphunter.n_toys == 200
    counts = np.random.default_rng(4).poisson(expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1]))
    _, fixed = _run(tmp_path, counts.astype(float), bumphunt={"toys": "fixed", "seed": 3})
    fs = fixed.bumphunter.settings
    assert fs["toy_backgrounds"] == "nominal" and "conservative" in fs["toys"]
    # the same data and fit: the refitted toys' t is smaller, so p is not larger
    assert incl.bumphunter.t_obs == pytest.approx(fixed.bumphunter.t_obs)
    assert np.median(incl.bumphunter.t_toys) < np.median(fixed.bumphunter.t_toys)


# --------------------------------------------------------------------------------------
# data-driven efficiency regions (fits/efficiency.py through the statistics stage)
# --------------------------------------------------------------------------------------
def _efficiency_run(tmp_path, scan_range):
    cfg = parse_config(
        {
            "name": "t",
            "datasets": {"fileset": "f.json"},
            "models": [{"method": "autoencoder", "name": "ae"}],
            "regions": [{"name": "inclusive"}, {"name": "ae_top10", "model": "ae"}],
            "histograms": {"mjj": {"edges": EDGES.tolist()}},
            "bumphunt": {"n_toys": 200, "seed": 3, "background": "efficiency",
                         "scan_range": scan_range},
        }
    )  # fmt: skip
    rng = np.random.default_rng(9)
    incl = rng.poisson(expected_counts(EDGES, [2e5, 7.8, 5.3, 1.1]))
    h = hist.Hist(
        hist.axis.StrCategory(["data"], name="dataset"),
        hist.axis.StrCategory(["inclusive", "ae_top10"], name="region"),
        hist.axis.Variable(EDGES, name="mjj"),
        storage=hist.storage.Weight(),
    )
    h.view().value[0, 0] = h.view().variance[0, 0] = incl
    h.view().value[0, 1] = h.view().variance[0, 1] = rng.binomial(incl, 0.1)
    return run_statistics(cfg, {"mjj": h}, ["data"], out_dir=tmp_path)


def test_efficiency_region_states_its_model_and_re_estimates_its_toys(tmp_path):
    r = _efficiency_run(tmp_path, [3000.0, 6000.0]).regions["ae_top10"]
    bh = r.bumphunter
    assert "re-estimates its efficiency" in bh.settings["toys"]
    assert "logistic trend" in r.bumphunter_uncertainty.description
    assert "30 bins of the scanned range" in r.bumphunter_uncertainty.description
    assert bh.global_z < 3 and bh.bump_lo[0] >= 3000.0


@pytest.mark.parametrize(
    ("scan_range", "match"),
    [([[3000.0, 6000.0], [0.0, 1.0]], "has two axes"), ([6100.0, 6500.0], "no complete bin")],
)
def test_bad_efficiency_scan_range_is_one_named_error(tmp_path, scan_range, match):
    from adcoffea.errors import ConfigError

    with pytest.raises(ConfigError, match=match) as err:
        _efficiency_run(tmp_path, scan_range)
    assert "scan_range" in str(err.value)
