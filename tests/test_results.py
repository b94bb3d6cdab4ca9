"""Typed results: ``SearchResult.to_dict()`` is results.json, and the report reads the types."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from adcoffea.fits.bumphunter import bumphunt
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.order import select_order
from adcoffea.fits.workspace import LimitResult
from adcoffea.models.evaluate import roc_sic
from adcoffea.outputs import write_json
from adcoffea.report import build_report
from adcoffea.results import (
    EvaluationResult,
    LimitsResult,
    MassPoint,
    ModelEvaluation,
    ProcessingResult,
    RegionFit,
    RegionResult,
    SearchResult,
    StatisticsResult,
    TemplateLimit,
    TrainedModel,
)

EDGES = np.linspace(2700.0, 6000.0, 34)


@pytest.fixture(scope="module")
def search() -> SearchResult:
    rng = np.random.default_rng(3)
    truth = expected_counts(EDGES, [2e4, 7.80, 5.26, 1.13])
    counts = rng.poisson(truth).astype(float)
    counts[12:14] += 60  # a bump the scan must find
    sel = select_order(counts, edges=EDGES, n_params=(3, 4))
    scan = bumphunt(counts, truth, edges=EDGES, n_toys=200, seed=1)
    labels = np.r_[np.zeros(500), np.ones(500)]
    roc = roc_sic(rng.normal(labels, 1.0), labels)
    region = RegionResult(
        events=float(counts.sum()),
        fit=RegionFit(selection=sel),
        background_method="fit",
        bumphunter=scan,
    )
    limits = LimitsResult(
        region="inclusive",
        cl=0.95,
        background="dijet fit",
        templates={
            "wprime": TemplateLimit(
                workspace=Path("ws/inclusive_wprime.json"),
                limit=LimitResult(0.95, 0.5, (0.2, 0.3, 0.4, 0.6, 0.8), "asymptotics"),
                signal_efficiency=0.25,
                reference_events=1000.0,
            ),
            "svj": TemplateLimit(workspace=Path("ws/inclusive_svj.json"), error="no bracket"),
        },
        mass_scan=(
            MassPoint(
                mass=3000.0,
                observed_events=40.0,
                expected_events=(20, 25, 30, 40, 50),
                signal_systematics=("jes", "jer"),
            ),
            MassPoint(mass=3500.0, error="CLs stays above 0.05"),
        ),
    )
    return SearchResult(
        name="demo",
        analysis="dijet",
        processing=ProcessingResult(cutflow={"qcd": {"all": 100, "dijet": 40}}),
        training={
            "ae": TrainedModel(
                label="ae",
                method="autoencoder",
                bundle=Path("out/models/ae"),
                n_train_events=40,
                datasets=("qcd",),
            )
        },
        evaluation=EvaluationResult(
            n_events=1000, n_signal=500, models={"ae": ModelEvaluation("autoencoder", roc=roc)}
        ),
        statistics=StatisticsResult(regions={"inclusive": region}, limits=limits),
        timings={"process": 1.234, "statistics": 0.5},
    )


def test_to_dict_is_results_json(search, tmp_path):
    d = search.to_dict()
    path = write_json(tmp_path / "results.json", search)
    assert json.loads(path.read_text()) == d
    assert list(d) == [
        "name",
        "analysis",
        "training",
        "cutflow",
        "cutflow_weighted",
        "run_report",
        "evaluation",
        "regions",
        "limits",
        "timings_s",
    ]
    assert d["timings_s"] == {"process": 1.23, "statistics": 0.5}
    region = d["regions"]["inclusive"]
    assert (
        region["fit"]["best"]["n_params"]
        == search.statistics.regions["inclusive"].fit.best.n_params
    )
    assert "pulls" not in region["fit"]["best"]  # the summary, not the whole fit
    # the injected bump, found by the scan, as the scan's own to_dict()
    lo, hi = region["bumphunter"]["bump_lo"][0], region["bumphunter"]["bump_hi"][0]
    assert lo <= EDGES[13] and hi >= EDGES[13]
    wprime = d["limits"]["templates"]["wprime"]
    assert wprime["observed_events_before_cut"] == pytest.approx(500.0)
    assert wprime["expected_median"] == 0.4
    assert d["limits"]["templates"]["svj"] == {
        "error": "no bracket",
        "workspace": "ws/inclusive_svj.json",
    }
    assert d["limits"]["mass_scan"][1] == {"mass": 3500.0, "error": "CLs stays above 0.05"}
    assert d["limits"]["mass_scan"][0]["signal_systematics"] == ["jes", "jer"]
    roc = d["evaluation"]["models"]["ae"]["roc"]
    assert 0.7 < roc["auc"] < 0.8 and "fpr" not in roc
    assert d["training"]["ae"] == {
        "method": "autoencoder",
        "bundle": "out/models/ae",
        "n_train_events": 40,
        "datasets": ["qcd"],
    }


def test_results_are_frozen(search):
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.statistics.regions["inclusive"].events = 0.0  # type: ignore[misc]


def test_hunt_part_is_any_object_with_to_dict(search):
    class Hunt:
        def to_dict(self):
            return {"windows": [{"lo": 3000.0, "p": np.float64(0.5)}]}

    d = dataclasses.replace(search, hunt=Hunt()).to_dict()
    assert d["hunt"] == {"windows": [{"lo": 3000.0, "p": 0.5}]}
    assert list(d).index("hunt") == list(d).index("regions") - 1
    assert "hunt" not in search.to_dict()


def test_report_reads_the_typed_result(search, tmp_path):
    md = build_report(tmp_path, search).markdown()
    scan = search.statistics.regions["inclusive"].bumphunter
    best = search.statistics.regions["inclusive"].fit.best
    assert f"{best.n_params} par, χ²/ndf = {best.chi2:.1f}/{best.ndf}" in md
    assert f"[{scan.bump_lo[0]:.0f}, {scan.bump_hi[0]:.0f}]" in md
    assert "| svj | failed (see results.json) | – | – | – |" in md
    # limits in mu and in events before the cut (mu x reference_events, 1000 here)
    assert "| wprime | 0.5 | 0.4 | 500 | 400 | – |" in md
    assert "| 3,500 | failed (see results.json) | – |" in md
    assert "Gaussian resonances versus mass, with histosys jes, jer on the signal:" in md
    assert "| qcd | 100 | 40 |" in md
    assert "| ae | autoencoder |" in md
