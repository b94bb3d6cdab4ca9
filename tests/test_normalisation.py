"""Cross-section normalisation: config keys, the hand calculation, fb limits."""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from adcoffea.config import parse_config
from adcoffea.errors import ConfigError
from adcoffea.fits.functions import expected_counts
from adcoffea.normalisation import (
    NOMINAL_CROSS_SECTION_PB,
    SampleNormalisation,
    cross_section_pb,
    normalisations,
)
from adcoffea.statistics import run_statistics

EDGES = np.linspace(2700.0, 6000.0, 23)
FB_LIMITS = {"region": "inclusive", "unit": "fb", "luminosity": 100.0, "diagnostics": False}


def _cfg(limits, datasets=None):
    return parse_config(
        {
            "name": "t",
            "datasets": datasets or {"fileset": "f.json", "signal": ["sig"]},
            "histograms": {"mjj": {"edges": EDGES.tolist()}},
            "fit": {"n_params": [3], "function_uncertainty": False},
            "limits": limits,
        }
    )


def test_missing_luminosity_or_cross_section_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"limits\.luminosity: required"):
        _cfg({"unit": "fb"}, {"fileset": "f.json", "cross_sections": {"sig": 1.0}})
    with pytest.raises(ConfigError, match=r"datasets\.cross_sections\.sig: signal dataset"):
        _cfg({"unit": "fb", "luminosity": 10.0})
    with pytest.raises(ConfigError, match=r"limits\.reference_events: not used"):
        _cfg({"unit": "fb", "luminosity": 10.0, "reference_events": 5.0})
    # the fileset's metadata may hold it
    fs = tmp_path / "fs.json"
    fs.write_text(json.dumps({"sig": {"files": ["a.root"], "metadata": {"cross_section": 0.5}}}))
    cfg = _cfg({"unit": "fb", "luminosity": 10.0}, {"fileset": str(fs), "signal": ["sig"]})
    assert cross_section_pb(cfg, "sig") == 0.5
    # synthetic samples have the nominal cross section of their process
    syn = _cfg(
        {"unit": "fb", "luminosity": 10.0},
        {
            "synthetic": {"samples": [{"name": "w", "process": "wprime", "events": 10}]},
            "signal": ["w"],
        },
    )
    assert cross_section_pb(syn, "w") == NOMINAL_CROSS_SECTION_PB["wprime"]


def test_scale_is_cross_section_times_luminosity_over_sum_of_weights():
    cfg = _cfg(
        {**FB_LIMITS}, {"fileset": "f.json", "signal": ["sig"], "cross_sections": {"sig": 0.02}}
    )
    acc = {"sig": {"sum_weights": 2500.0, "events": 2000, "events_with_genweight": 2000}}
    n = normalisations(cfg, acc)["sig"]
    # 0.02 pb = 20 fb; 20 fb x 100 fb^-1 = 2000 events for a sum of weights of 2500
    assert n.scale == pytest.approx(20.0 * 100.0 / 2500.0)
    assert n.weight_source == "genWeight"
    no_gw = SampleNormalisation("s", 1.0, 1.0, 10.0, 10, 0)
    assert no_gw.weight_source == "event count (no genWeight)"
    with pytest.raises(ConfigError, match="sum of generator weights is 0"):
        normalisations(cfg, {"sig": {"sum_weights": 0.0, "events": 0}})


def test_fb_limit_uses_the_normalised_template(tmp_path):
    cfg = _cfg(
        # (the signal staterror slows every fit: tested on small workspaces instead)
        {**FB_LIMITS, "luminosity_uncertainty": 0.02, "signal_stat_uncertainty": False},
        {"fileset": "f.json", "signal": ["sig"], "cross_sections": {"sig": 0.05}},
    )
    rng = np.random.default_rng(4)
    counts = rng.poisson(expected_counts(EDGES, [2e4, 7.8, 5.3, 1.1])).astype(float)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    # a signal template of 400 raw events with weights 2 (sum of weights 800 after the cuts)
    raw = np.round(400 * np.exp(-0.5 * ((centres - 4000.0) / 150.0) ** 2) / 2.5)
    h = hist.Hist(
        hist.axis.StrCategory(["data", "sig"], name="dataset"),
        hist.axis.StrCategory(["inclusive"], name="region"),
        hist.axis.Variable(EDGES, name="mjj"),
        storage=hist.storage.Weight(),
    )
    h.view().value[0, 0], h.view().variance[0, 0] = counts, counts
    h.view().value[1, 0], h.view().variance[1, 0] = 2 * raw, 4 * raw
    acc = {"sig": {"sum_weights": 1000.0, "events": 500, "events_with_genweight": 500}}
    norm = normalisations(cfg, acc)
    res = run_statistics(cfg, {"mjj": h}, ["data"], out_dir=tmp_path, normalisation=norm)
    t = res.limits.templates["sig"]
    ws = json.loads(t.workspace.read_text())
    sig = ws["channels"][0]["samples"][0]
    # by hand: 50 fb x 100 fb^-1 / 1000 per unit of weight, each event weighs 2
    np.testing.assert_allclose(np.sum(sig["data"]), 2 * raw.sum() * 50.0 * 100.0 / 1000.0)
    names = dict(t.modifiers)
    assert names["lumi"] == "normsys" and "staterror_inclusive" not in names
    assert any(n.startswith("bkg_fit_eig") and n.endswith("_inclusive") for n in names)
    d = res.to_dict()["limits"]
    tl = d["templates"]["sig"]
    assert d["unit"] == "fb" and d["luminosity_fb"] == 100.0
    assert tl["observed_fb"] == pytest.approx(tl["observed"] * 50.0)
    assert tl["stat_only"]["expected_median"] <= tl["expected_median"]
