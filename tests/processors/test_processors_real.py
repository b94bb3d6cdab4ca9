"""Processors on the real NanoAOD samples: every flavour runs, and events are accounted for."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adcoffea.config import RegionConfig, SelectionConfig
from adcoffea.execution import run_processor
from adcoffea.processors import DijetProcessor, SemivisibleProcessor, YXHProcessor

LOOSE = SelectionConfig(jet_pt_min=200.0)  # the ttbar samples have no TeV jets


@pytest.fixture(scope="module")
def fileset(nanoaod_dir):
    return {
        "v15": [str(nanoaod_dir / "nano_tt_v15.root")],
        "v12": [str(nanoaod_dir / "nano_tt_v12.root")],
        "pfnano": [str(nanoaod_dir / "pfnano.root")],
        "dy": [str(nanoaod_dir / "nano_dy.root")],
        "empty": [str(nanoaod_dir / "nano_dy_empty.root")],
    }


@pytest.mark.parametrize("proc_cls", [DijetProcessor, SemivisibleProcessor, YXHProcessor])
def test_every_real_sample_runs(fileset, proc_cls):
    out = run_processor(
        fileset, proc_cls(selection=LOOSE), executor="iterative", chunksize=1000, status=False
    )
    rep = out.report
    assert rep.failures == ()
    assert rep.events_total == 200 + 200 + 10 + 40 + 0
    assert rep.events_processed == rep.events_total
    cutflow = out.output["cutflow"]
    for ds, flow in cutflow.items():
        counts = list(flow.values())
        assert flow["all"] == rep.datasets[ds]["events_total"]
        assert all(a >= b for a, b in itertools.pairwise(counts)), flow
    h = out.output["hists"][proc_cls.observable]
    # Every selected event is in the histogram (flow bins included), weighted by genWeight.
    for ds, flow in cutflow.items():
        n_sel = list(flow.values())[-1]
        if n_sel == 0:
            continue
        filled = h[{"dataset": ds, "region": "inclusive"}]
        n_filled = (
            filled.sum(flow=True).value if filled.ndim == 1 else filled.values(flow=True).sum()
        )
        assert n_filled != 0
    assert cutflow["pfnano"]["jet_eta"] == 10 and cutflow["v15"]["jet_eta"] == 13


def test_cutflow_is_a_strict_chain(fileset):
    out = run_processor(
        {"v15": fileset["v15"]},
        DijetProcessor(selection=LOOSE),
        executor="iterative",
        chunksize=64,
        status=False,
    )
    flow = out.output["cutflow"]["v15"]
    # in = out + removed, cut by cut, and summed over the chunks of the file.
    names = list(flow)
    removed = [flow[a] - flow[b] for a, b in itertools.pairwise(names)]
    assert flow["all"] == flow[names[-1]] + sum(removed) == 200
    assert flow["two_jets"] == 20  # events with >= 2 FatJets in this sample


def test_genweight_is_applied(nanoaod_dir):
    import uproot

    path = nanoaod_dir / "pfnano.root"
    out = run_processor(
        {"p": [str(path)]}, DijetProcessor(selection=LOOSE), executor="iterative", status=False
    )
    w = uproot.open(path)["Events"]["genWeight"].array(library="np")
    total = out.output["hists"]["mjj"][{"dataset": "p", "region": "inclusive"}].sum(flow=True).value
    np.testing.assert_allclose(total, w.sum(), rtol=1e-6)
    assert out.output["cutflow_weighted"]["p"]["all"] == pytest.approx(w.sum(), rel=1e-6)


def test_score_region_without_model_is_an_error():
    from adcoffea.errors import ModelBundleError

    p = DijetProcessor(regions=(RegionConfig(name="hi", score_min=0.5),))
    with pytest.raises(ModelBundleError, match="needs the anomaly score of model"):
        p._region_masks({}, {})


def test_sum_of_generator_weights_counts_every_event_before_cuts(fileset):
    """The cross-section normalisation's denominator (issue 18): sum of genWeight over every
    event of every chunk, before any cut, also in chunks and files with no selected event."""
    import uproot

    out = run_processor(
        fileset, DijetProcessor(selection=LOOSE), executor="iterative", chunksize=60, status=False
    )
    norm = out.output["normalisation"]
    cutflow = out.output["cutflow"]
    assert any(list(flow.values())[-1] == 0 for ds, flow in cutflow.items() if ds in norm)
    for ds, files in fileset.items():
        with uproot.open(files[0]) as f:
            tree = f["Events"]
            n = tree.num_entries
            w = tree["genWeight"].array(library="np") if "genWeight" in tree else None
        if n == 0:
            assert norm.get(ds, {"events": 0})["events"] == 0
            continue
        assert norm[ds]["events"] == n
        expected = float(np.sum(w, dtype=np.float64)) if w is not None else float(n)
        assert norm[ds]["sum_weights"] == pytest.approx(expected, rel=1e-9)
        assert norm[ds]["events_with_genweight"] == (n if w is not None else 0)
