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
