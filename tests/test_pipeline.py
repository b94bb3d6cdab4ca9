"""The ``adcoffea run`` chain on small synthetic samples (no model, no statistics)."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
import yaml

from adcoffea.cli import main
from adcoffea.config import parse_config
from adcoffea.outputs import load_hists
from adcoffea.pipeline import run


def _config(tmp, **extra):
    return parse_config(
        {
            "name": "t",
            "output": str(tmp / "out"),
            "seed": 7,
            "datasets": {
                "synthetic": {
                    "directory": str(tmp / "data"),
                    "samples": [
                        {"name": "qcd", "process": "qcd", "events": 6000},
                        {"name": "wprime", "process": "wprime", "events": 1500},
                    ],
                }
            },
            "executor": {"name": "iterative", "chunksize": 4000},
            **extra,
        }
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    return tmp, run(_config(tmp))


def test_signal_peaks_in_the_signal_region(small_run):
    _, res = small_run
    h = res.hists["mjj"]
    edges = h.axes["mjj"].edges
    sr = (edges[:-1] >= 3300) & (edges[1:] <= 3700)
    qcd = h[{"dataset": "qcd", "region": "inclusive"}].values()
    sig = h[{"dataset": "wprime", "region": "inclusive"}].values()
    # Most selected W' events fall in 3.3-3.7 TeV, a small fraction of QCD does (LHCO: 77 %
    # of the signal, 12 % of the background).
    assert sig[sr].sum() / sig.sum() > 0.6
    assert qcd[sr].sum() / qcd.sum() < 0.25
    # The QCD spectrum falls: every 200 GeV step above 3 TeV loses events on average.
    centres = h.axes["mjj"].centers
    hi = qcd[centres > 3000]
    assert np.polyfit(centres[centres > 3000][hi > 0], np.log(hi[hi > 0]), 1)[0] < 0
    # The excess of a signal-rich sample over QCD alone sits in the SR.
    mixed = qcd + sig
    ratio_sr = mixed[sr].sum() / qcd[sr].sum()
    ratio_out = mixed[~sr].sum() / qcd[~sr].sum()
    assert ratio_sr > 2 * ratio_out


def test_outputs_written_and_consistent(small_run):
    tmp, _ = small_run
    out = tmp / "out"
    cutflow = json.loads((out / "cutflow.json").read_text())
    assert cutflow["cutflow"]["qcd"]["all"] == 6000
    assert cutflow["report"]["events_processed"] == 7500
    with (out / "hists.pkl").open("rb") as f:
        pk = pickle.load(f)
    root = load_hists(out / "hists.root")
    a = pk["mjj"][{"dataset": "qcd", "region": "inclusive"}].values()
    np.testing.assert_array_equal(root["mjj/qcd/inclusive"].values(), a)
    # Events in the histogram (with flow) = events passing the last cut.
    last = list(cutflow["cutflow"]["qcd"].values())[-1]
    assert pk["mjj"][{"dataset": "qcd", "region": "inclusive"}].sum(flow=True).value == last
    results = json.loads((out / "results.json").read_text())
    assert results["timings_s"]["process"] > 0
    # results.json is the typed result's to_dict()
    assert results == small_run[1].result.to_dict()
    assert small_run[1].result.processing.run_report.events_processed == 7500


def test_generation_is_cached_and_the_library_does_not_print(small_run, capsys, caplog):
    tmp, _ = small_run
    from adcoffea.datasets import ensure_synthetic

    caplog.set_level(logging.INFO, logger="adcoffea")
    ensure_synthetic(_config(tmp))
    assert "qcd: cached (6000 events)" in caplog.text
    assert capsys.readouterr().out == ""


def test_cli_prints_the_stage_progress(small_run, capsys):
    tmp, _ = small_run
    cfg = tmp / "cli.yaml"
    doc = _config(tmp).model_dump(mode="json", exclude_defaults=True)
    doc["output"] = str(tmp / "cli_out")
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["run", str(cfg), "--retries", "0", "--no-statistics"]) == 0
    out = capsys.readouterr().out.splitlines()
    # the cached samples, then each stage's start and end, in order, on stdout
    assert "  qcd: cached (6000 events)" in out
    stages = [line.split()[1] for line in out if line.endswith(" ...")]
    assert stages == ["inputs", "process", "write"]
    assert any(line.startswith("[adcoffea] process done in") for line in out)


def test_cli_reports_config_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndatasets: {fileset: f.json}\nselection: {jet_pt_mn: 1}\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "selection.jet_pt_mn" in err and "Traceback" not in err


def test_models_train_score_and_fill_regions(tmp_path):
    cfg = _config(
        tmp_path,
        models=[{"method": "autoencoder", "name": "ae", "train": {"epochs": 3}}],
        regions=[{"name": "inclusive"}, {"name": "ae_top10", "efficiency": 0.1}],
    )
    # train on QCD only ('data'); the W' sample is a signal template scored afterwards
    cfg = cfg.model_validate(
        {
            **cfg.model_dump(),
            "datasets": {**cfg.datasets.model_dump(), "data": ["qcd"], "signal": ["wprime"]},
        }
    )
    res = run(cfg)
    h = res.hists["mjj"]
    incl = h[{"dataset": "qcd", "region": "inclusive"}].sum(flow=True).value
    cut = h[{"dataset": "qcd", "region": "ae_top10"}].sum(flow=True).value
    # The working point is the 90 % quantile of the training (QCD) scores, the same events.
    assert cut / incl == pytest.approx(0.1, abs=0.01)
    sig_incl = h[{"dataset": "wprime", "region": "inclusive"}].sum(flow=True).value
    sig_cut = h[{"dataset": "wprime", "region": "ae_top10"}].sum(flow=True).value
    assert sig_cut / sig_incl > 2 * cut / incl  # the 500 GeV X jet is anomalous for QCD
    assert (tmp_path / "out" / "models" / "ae" / "metadata.json").exists()
    # every selected event has a score in the score histogram
    score = res.hists["score"][{"dataset": "qcd", "model": "ae"}]
    assert score.sum(flow=True).value == incl
    sculpt = res.results["evaluation"]["models"]["ae"]["sculpting"]
    assert sculpt["efficiencies"] == [0.01, 0.1]


def test_training_and_processing_runs_share_one_futures_pool(tmp_path, monkeypatch):
    """The futures workers start once per pipeline (1.3-1.6 s per start here), not once for
    the training columns and again for the histograms; the pool is shut down at the end."""
    import adcoffea.execution as execution

    pools: list = []
    real = execution.run_processor

    def spy(*args, **kwargs):
        pools.append(kwargs.get("pool"))
        return real(*args, **kwargs)

    monkeypatch.setattr(execution, "run_processor", spy)
    cfg = _config(
        tmp_path,
        models=[{"method": "autoencoder", "name": "ae", "train": {"epochs": 1}}],
        regions=[{"name": "inclusive"}, {"name": "ae_top10", "efficiency": 0.1}],
    )
    cfg = cfg.model_validate(
        {**cfg.model_dump(), "executor": {"name": "futures", "workers": 1, "chunksize": 4000}}
    )
    res = run(cfg)
    assert len(pools) == 2 and pools[0] is not None and pools[0] is pools[1]
    with pytest.raises(RuntimeError):  # shut down with the pipeline's processing
        pools[0].submit(sum, [1])
    assert res.hists["mjj"][{"dataset": "qcd", "region": "inclusive"}].sum().value > 0
