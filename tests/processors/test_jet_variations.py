"""JES/JER variations of the signal templates (issue 18, item 2).

The variations are applied to the large-R jets before the selection, only for the signal
templates, and histogrammed per variation in ``mjj_variations``; the limits carry them as
``histosys`` ``jes`` and ``jer``. Sizes and sources come from the ``systematics`` block, fixed
or through a correctionlib JSON.
"""

from __future__ import annotations

import json

import awkward as ak
import hist
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


# --- the limits ---------------------------------------------------------------------------
def test_limits_carry_jes_and_jer_histosys(tmp_path, monkeypatch):
    import pyhf

    from adcoffea import statistics
    from adcoffea.errors import LimitError
    from adcoffea.fits.signal import gaussian_signal

    def no_limit(*args, **kwargs):
        # the workspace is written before the limit; the limit with a signal histosys is
        # checked against a hand-written spec in fits/test_workspace_modifiers.py
        raise LimitError("not computed in this test")

    monkeypatch.setattr(statistics, "_template_limits", no_limit)

    edges = np.linspace(2000.0, 5000.0, 31)
    regions = ["inclusive", "top"]
    cfg = parse_config(
        {
            **BASE,
            "datasets": {"fileset": "f.json", "data": ["data"], "signal": ["wprime"]},
            "models": [{"method": "autoencoder", "name": "ae"}],
            "regions": [{"name": "inclusive"}, {"name": "top", "model": "ae", "efficiency": 0.1}],
            "histograms": {"mjj": {"edges": edges.tolist()}},
            "limits": {"region": "top", "signal_stat_uncertainty": False, "diagnostics": False},
            "systematics": {"jes": JES, "jer": JER},
        }
    )
    axes = (hist.axis.StrCategory(regions, name="region"), hist.axis.Variable(edges, name="mjj"))
    h = hist.Hist(hist.axis.StrCategory(["data", "wprime"], name="dataset"), *axes)
    variations = ["nominal", "jes_up", "jes_down", "jer_up", "jer_down"]
    hv = hist.Hist(
        hist.axis.StrCategory(["wprime"], name="dataset"),
        axes[0],
        hist.axis.StrCategory(variations, name="variation"),
        axes[1],
    )
    bkg = np.random.default_rng(1).poisson(np.linspace(4000, 400, 30)).astype(float)
    h.view()[0, 0], h.view()[0, 1] = bkg, np.round(0.1 * bkg)
    shapes = {
        "nominal": gaussian_signal(edges, 3500.0, rel_width=0.05),
        "jes_up": gaussian_signal(edges, 3500.0 * (1 + JES), rel_width=0.05),
        "jes_down": gaussian_signal(edges, 3500.0 * (1 - JES), rel_width=0.05),
        "jer_up": gaussian_signal(edges, 3500.0, rel_width=0.06),
    }
    shapes["jer_down"] = shapes["nominal"]
    for i, v in enumerate(variations):
        for r in range(2):
            hv.view()[0, r, i] = 1000 * shapes[v] * (0.5 if r else 1.0)
    h.view()[1] = hv.view()[0, :, 0]

    res = statistics.run_statistics(
        cfg, {"mjj": h, "mjj_variations": hv}, ["data"], out_dir=tmp_path
    )
    t = res.limits.templates["wprime"]
    assert ("jes", "histosys") in t.modifiers and ("jer", "histosys") in t.modifiers
    ws = json.loads(t.workspace.read_text())
    pyhf.schema.validate(ws, "workspace.json")
    model = pyhf.Workspace(ws).model()
    assert {"jes", "jer"} <= set(model.config.parameters)
    sig = ws["channels"][0]["samples"][0]
    mods = {m["name"]: m["data"] for m in sig["modifiers"]}
    nominal = np.array(sig["data"])
    # the one-sided JER is mirrored about the nominal
    np.testing.assert_allclose(
        mods["jer"]["lo_data"],
        np.maximum(2 * nominal - np.array(mods["jer"]["hi_data"]), 0),
        atol=1e-9,
    )
    assert not np.allclose(mods["jes"]["hi_data"], mods["jes"]["lo_data"])
    # without the variation histogram: no jes/jer
    plain = statistics.run_statistics(cfg, {"mjj": h}, ["data"], out_dir=tmp_path / "plain")
    assert {"jes", "jer"}.isdisjoint(n for n, _ in plain.limits.templates["wprime"].modifiers)


# --------------------------------------------------------------------------------------
# the semi-visible search: a jet variation is propagated to MET
# --------------------------------------------------------------------------------------
def test_met_follows_the_jets_so_a_balanced_event_scales_as_a_whole(tmp_path):
    """MET = -(sum of the jets): scaling every jet's pt and mass by 1 + JES, with MET
    corrected for the jets' gain, scales every momentum of mT, hence mT, by 1 + JES
    exactly; MET left alone (before) gave a different mT."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from adcoffea.processors import SemivisibleProcessor
    from adcoffea.processors.base import SearchProcessor
    from adcoffea.synthetic import generate

    gen = generate("svj", n_events=400, seed=9, out_dir=tmp_path, name="svj")
    events = NanoEventsFactory.from_root(
        {gen.files[0]: "Events"}, schemaclass=NanoAODSchema, mode="virtual",
        metadata={"dataset": "svj", "filename": gen.files[0]},
    ).events()  # fmt: skip
    pt, phi = (ak.values_astype(events.FatJet[q], np.float64) for q in ("pt", "phi"))
    px, py = ak.sum(pt * np.cos(phi), axis=1), ak.sum(pt * np.sin(phi), axis=1)
    for name in ("PFMET", "MET"):  # balanced: MET opposite the jets' sum
        met = ak.with_field(events[name], np.hypot(px, py), "pt")
        events = ak.with_field(events, ak.with_field(met, np.arctan2(-py, -px), "phi"), name)
    proc = SemivisibleProcessor(selection=SelectionConfig(jet_pt_min=100.0))
    [factor] = [
        f
        for k, f in jet_factors(
            events, collection="FatJet", config=SystematicsConfig(jes=JES)
        ).items()
        if k == "jes_up"
    ]
    w = np.ones(len(events))
    sel, _, obs, _, _ = proc._analyse(events, w, {})
    vsel, _, vobs, _, _ = proc._analyse(proc.varied_events(events, factor), w, {})
    both = np.intersect1d(sel.index, vsel.index)
    assert len(both) > 300
    nominal = obs["mt"][np.searchsorted(sel.index, both)]
    varied = vobs["mt"][np.searchsorted(vsel.index, both)]
    np.testing.assert_allclose(varied, (1 + JES) * nominal, rtol=1e-7)  # float64 rounding
    # the MET of the varied events: the nominal minus the jets' gain
    corrected = proc.varied_events(events, factor)
    np.testing.assert_allclose(
        ak.to_numpy(corrected.PFMET.pt), (1 + JES) * ak.to_numpy(events.PFMET.pt), rtol=1e-9
    )
    # jets alone (the base class's variation): mT does not scale with them
    osel, _, old, _, _ = proc._analyse(SearchProcessor.varied_events(proc, events, factor), w, {})
    common = np.intersect1d(osel.index, sel.index)
    ratio = (
        old["mt"][np.searchsorted(osel.index, common)]
        / obs["mt"][np.searchsorted(sel.index, common)]
    )
    assert np.median(np.abs(ratio - (1 + JES))) > 1e-3


def test_met_propagation_skips_non_finite_jets_and_absent_collections():
    from adcoffea.systematics import propagate_to_met

    events = ak.Array(
        [
            {"FatJet": [{"pt": 100.0, "phi": 0.0}, {"pt": np.nan, "phi": 1.0}],
             "MET": {"pt": 50.0, "phi": np.pi / 2}},
            {"FatJet": [], "MET": {"pt": 30.0, "phi": 0.0}},
        ]
    )  # fmt: skip
    out = propagate_to_met(
        events, collection="FatJet", factor=np.array([1.5, 1.5]), met_collections=("PFMET", "MET")
    )
    assert out.fields == events.fields  # no PFMET made up
    # event 0: MET (0, 50) minus the first jet's gain (50, 0); the NaN jet adds nothing
    np.testing.assert_allclose(ak.to_numpy(out.MET.pt), [np.hypot(50.0, 50.0), 30.0])
    np.testing.assert_allclose(ak.to_numpy(out.MET.phi), [3 * np.pi / 4, 0.0])


def test_gaussian_shapes_move_as_the_jets_do():
    from adcoffea.fits.signal import gaussian_signal, gaussian_variations

    edges = np.linspace(1000.0, 6000.0, 2001)
    c = 0.5 * (edges[1:] + edges[:-1])
    v = gaussian_variations(edges, 3500.0, rel_width=0.05, jes=JES, jer=JER)

    def moments(w):
        mean = (w * c).sum() / w.sum()
        return mean, np.sqrt((w * (c - mean) ** 2).sum() / w.sum())

    (m_up, s_up), (m_down, _) = moments(v["jes"][0]), moments(v["jes"][1])
    assert m_up == pytest.approx(3500 * (1 + JES), rel=1e-6)
    assert m_down == pytest.approx(3500 * (1 - JES), rel=1e-6)
    assert s_up == pytest.approx(0.05 * 3500 * (1 + JES), rel=1e-3)  # the width scales too
    wide = moments(v["jer"][0])[1]
    assert wide == pytest.approx(3500 * np.hypot(0.05, JER / np.sqrt(2)), rel=1e-3)
    nominal = gaussian_signal(edges, 3500.0, rel_width=0.05)
    np.testing.assert_allclose(v["jer"][1], np.maximum(2 * nominal - v["jer"][0], 0))
    assert gaussian_variations(edges, 3500.0, jes=JES).keys() == {"jes"}


def test_the_gaussian_mass_scan_carries_jes_and_jer(tmp_path):
    """The scan's Gaussian signals get histosys jes/jer of the configured sizes: the limits
    loosen (a signal whose position is uncertain is harder to pin), and say so."""
    from adcoffea import statistics

    edges = np.linspace(2000.0, 5000.0, 31)

    def run(systematics, out):
        block = {"systematics": systematics} if systematics else {}
        cfg = parse_config(
            {
                **BASE,
                "datasets": {"fileset": "f.json", "data": ["data"], "signal": []},
                "histograms": {"mjj": {"edges": edges.tolist()}},
                "limits": {"masses": [3500.0], "diagnostics": False},
                "fit": {"n_params": [3]},
                **block,
            }
        )
        h = hist.Hist(
            hist.axis.StrCategory(["data"], name="dataset"),
            hist.axis.StrCategory(["inclusive"], name="region"),
            hist.axis.Variable(edges, name="mjj"),
        )
        h.view()[0, 0] = np.random.default_rng(1).poisson(np.linspace(4000, 400, 30))
        return statistics.run_statistics(cfg, {"mjj": h}, ["data"], out_dir=out)

    plain = run(None, tmp_path / "plain").limits.mass_scan[0]
    varied = run({"jes": 0.05, "jer": 0.10}, tmp_path / "varied").limits.mass_scan[0]
    assert plain.ok and varied.ok
    assert plain.signal_systematics == () and varied.signal_systematics == ("jes", "jer")
    assert varied.to_dict()["signal_systematics"] == ["jes", "jer"]
    assert "signal_systematics" not in plain.to_dict()
    assert varied.expected_events[2] > plain.expected_events[2]
