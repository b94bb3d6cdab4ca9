"""JES/JER variations of the signal templates (issue 18, item 2).

The variations are applied to the large-R jets before the selection, only for the signal
templates, and histogrammed per variation in ``mjj_variations``. Sizes and sources come from the ``systematics`` block, fixed
or through a correctionlib JSON.
"""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest

from adcoffea.config import (
    AxisConfig,
    HistogramsConfig,
    SelectionConfig,
    SystematicsConfig,
    load_config,
    parse_config,
)
from adcoffea.errors import ConfigError
from adcoffea.execution import processor_fingerprint, run_processor
from adcoffea.processors import DijetProcessor
from adcoffea.processors import base as base_mod
from adcoffea.systematics import jet_factors, jet_normals

JES, JER = 0.02, 0.05
#: a loose selection, so that (almost) every event is selected whatever the variation and
#: the mean of mjj follows the jets' scale exactly (mjj scales with a common factor)
LOOSE = SelectionConfig(jet_pt_min=300.0)
FINE = HistogramsConfig(mjj=AxisConfig(bins=400, start=1500.0, stop=5500.0))


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> dict[str, list[str]]:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("jet_variations")
    sig = generate("wprime", n_events=3000, seed=6, out_dir=out, name="wprime")
    qcd = generate("qcd", n_events=500, seed=5, out_dir=out, name="qcd")
    return {"wprime": list(sig.files), "qcd": list(qcd.files)}


def _run(fileset, *, systematics=None, chunksize=1000):
    proc = DijetProcessor(
        selection=LOOSE,
        histograms=FINE,
        systematics=systematics,
        varied_datasets=("wprime",),
    )
    return run_processor(fileset, proc, executor="iterative", chunksize=chunksize, status=False)


@pytest.fixture(scope="module")
def varied(fileset):
    return _run(fileset, systematics=SystematicsConfig(jes=JES, jer=JER)).output


def _moments(h, variation: str) -> tuple[float, float]:
    w = h[{"dataset": "wprime", "region": "inclusive", "variation": variation}].values()
    c = h.axes["mjj"].centers
    mean = float((w * c).sum() / w.sum())
    return mean, float(np.sqrt((w * (c - mean) ** 2).sum() / w.sum()))


def test_jes_moves_the_peak_by_the_configured_amount(varied):
    h = varied["hists"]["mjj_variations"]
    assert list(h.axes["variation"]) == ["nominal", "jes_up", "jes_down", "jer_up", "jer_down"]
    nominal, _ = _moments(h, "nominal")
    up, _ = _moments(h, "jes_up")
    down, _ = _moments(h, "jes_down")
    # measured on this sample: +1.998 % and -1.999 % (10 GeV bins)
    assert up / nominal - 1 == pytest.approx(JES, abs=0.001)
    assert down / nominal - 1 == pytest.approx(-JES, abs=0.001)


def test_jer_widens_the_peak(varied):
    h = varied["hists"]["mjj_variations"]
    mean, width = _moments(h, "nominal")
    mean_up, width_up = _moments(h, "jer_up")
    assert mean_up == pytest.approx(mean, rel=0.003)  # a smearing, not a shift
    # two jets each smeared by JER: mjj by about JER / sqrt(2), added in quadrature
    # (measured: 222.5 -> 252.7 GeV, an extra 120 GeV for an expected 123 GeV)
    extra = np.sqrt(width_up**2 - width**2)
    assert extra == pytest.approx(JER / np.sqrt(2) * mean, rel=0.15)
    # one-sided: jer_down is the nominal jets
    np.testing.assert_array_equal(
        h[{"variation": "jer_down"}].values(), h[{"variation": "nominal"}].values()
    )


def test_data_is_not_varied_and_nominal_is_unchanged(fileset, varied, monkeypatch):
    assert list(varied["hists"]["mjj_variations"].axes["dataset"]) == ["wprime"]
    plain = _run(fileset).output
    assert "mjj_variations" not in plain["hists"]
    for name, h in plain["hists"].items():
        np.testing.assert_array_equal(varied["hists"][name].values(), h.values())
    np.testing.assert_array_equal(
        varied["hists"]["mjj"][{"dataset": "wprime"}].values(),
        varied["hists"]["mjj_variations"][{"dataset": "wprime", "variation": "nominal"}].values(),
    )
    # no variation work at all for a dataset that is not a signal template
    calls: list[str] = []
    real = base_mod.jet_factors

    def spy(events, **kw):
        calls.append(events.metadata["dataset"])
        return real(events, **kw)

    monkeypatch.setattr(base_mod, "jet_factors", spy)
    _run({"qcd": fileset["qcd"]}, systematics=SystematicsConfig(jes=JES, jer=JER))
    assert calls == []


def test_smearing_does_not_depend_on_the_chunking(fileset, varied):
    one_chunk = _run(fileset, systematics=SystematicsConfig(jes=JES, jer=JER), chunksize=5000)
    np.testing.assert_array_equal(
        one_chunk.output["hists"]["mjj_variations"].values(),
        varied["hists"]["mjj_variations"].values(),
    )
    z = jet_normals(np.zeros(4), np.arange(4), np.zeros(4), seed=0)
    assert not np.array_equal(z, jet_normals(np.zeros(4), np.arange(4), np.zeros(4), seed=1))
    big = jet_normals(np.ones(20000), np.arange(20000), np.zeros(20000))
    assert abs(big.mean()) < 0.03 and big.std() == pytest.approx(1.0, abs=0.02)


# --- correctionlib ------------------------------------------------------------------------
def _write_corrections(path) -> None:
    """A JES uncertainty of 1 % for eta < 0 and 3 % above; a constant JER of 5 %."""
    import correctionlib.schemav2 as cs

    jes = cs.Correction(
        name="jes_total",
        version=1,
        inputs=[cs.Variable(name="JetEta", type="real"), cs.Variable(name="JetPt", type="real")],
        output=cs.Variable(name="uncertainty", type="real"),
        data=cs.Binning(
            nodetype="binning", input="JetEta", edges=[-5.0, 0.0, 5.0], content=[0.01, 0.03],
            flow="clamp",
        ),
    )  # fmt: skip
    jer = cs.Correction(
        name="jer_extra",
        version=1,
        inputs=[cs.Variable(name="abseta", type="real")],
        output=cs.Variable(name="width", type="real"),
        data=0.05,
    )
    cset = cs.CorrectionSet(schema_version=2, corrections=[jes, jer])
    path.write_text(cset.model_dump_json(exclude_unset=True))


def test_correctionlib_shifts_are_evaluated_per_jet(tmp_path):
    path = tmp_path / "jerc.json"
    _write_corrections(path)
    cfg = SystematicsConfig(correctionlib=path, jes_key="jes_total", jer_key="jer_extra")
    jets = ak.zip(
        {
            "pt": [[1500.0, 1400.0], [2000.0]],
            "eta": [[-1.0, 0.5], [2.0]],
            "phi": [[0.0, 3.0], [1.0]],
            "mass": [[100.0, 400.0], [80.0]],
        }
    )
    events = ak.zip(
        {"FatJet": jets, "event": np.array([11, 12]), "run": np.array([1, 1])}, depth_limit=1
    )
    f = jet_factors(events, collection="FatJet", config=cfg)
    np.testing.assert_allclose(f["jes_up"], [1.01, 1.03, 1.03])
    np.testing.assert_allclose(f["jes_down"], [0.99, 0.97, 0.97])
    z = jet_normals(np.array([1, 1, 1]), np.array([11, 11, 12]), np.array([0, 1, 0]))
    np.testing.assert_allclose(f["jer_up"], 1.0 + 0.05 * z)
    assert f["jer_down"] is None
    # resumed runs: checkpoints made with another version of the file are not reused
    proc = DijetProcessor(systematics=cfg, varied_datasets=("wprime",))
    before = processor_fingerprint(proc)
    path.write_text(path.read_text().replace("0.03", "0.04"))
    assert processor_fingerprint(proc) != before


# --- config -------------------------------------------------------------------------------
BASE = {"name": "t", "datasets": {"fileset": "f.json", "signal": ["wprime"]}}


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"jes": 1.5}, "systematics.jes"),
        ({"jes": 0.02, "jsr": 0.05}, "systematics.jsr"),
        ({"jes_key": "x"}, "systematics.jes_key: needs systematics.correctionlib"),
        ({}, "give jes and/or jer"),
    ],
)
def test_bad_systematics_block_is_a_clear_error(block, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config({**BASE, "systematics": block})


def test_correctionlib_file_and_keys_are_checked_at_load_time(tmp_path):
    missing = tmp_path / "nowhere.json"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({**BASE, "systematics": {"correctionlib": str(missing),
                                                        "jes_key": "jes_total"}}))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "systematics.correctionlib" in str(err.value) and str(missing) in str(err.value)
    assert str(err.value).count("\n") == 1  # one message: the file and its key
    good = tmp_path / "jerc.json"
    _write_corrections(good)
    with pytest.raises(ConfigError, match=r"systematics\.jer_key: no correction 'jer'"):
        parse_config({**BASE, "systematics": {"correctionlib": str(good), "jer_key": "jer"}})
    ok = parse_config({**BASE, "systematics": {"correctionlib": str(good), "jes_key": "jes_total"}})
    assert ok.systematics.has("jes") and not ok.systematics.has("jer")
