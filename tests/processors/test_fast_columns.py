"""The numpy selection on flat jet columns gives what the awkward selection gave (issue 15).

``select_dijets`` reads the two leading jets from the flat columns with numpy indexing and
``DijetSelection.two`` serves the selected jets' columns to the features; the reference here
is the awkward implementation they replaced (``pad_none``/``fill_none``, ``two_columns`` of
the sliced jets). Masks, cutflows, features and the processors' histograms must be identical.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from adcoffea.columns import counts_and_starts, flat_column
from adcoffea.config import RegionConfig, SelectionConfig
from adcoffea.execution import run_processor
from adcoffea.features import high_level_features, mass_ordered_pairs, two_columns
from adcoffea.processors import DijetProcessor, SemivisibleProcessor, YXHProcessor
from adcoffea.processors import selections as sel_mod
from adcoffea.processors.selections import DijetSelection, select_dijets

LOOSE = SelectionConfig(jet_pt_min=200.0)
FIELDS = ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")


def _reference_mask(events, config: SelectionConfig) -> tuple[np.ndarray, list]:
    """The awkward implementation before issue 15 (cuts only)."""
    jets = events[config.jet_collection]
    has_two = ak.to_numpy(ak.num(jets, axis=1) >= 2)
    lead = ak.pad_none(jets, 2, axis=1, clip=True)
    pt = ak.to_numpy(ak.fill_none(lead.pt, 0.0)).astype(np.float64)
    eta = ak.to_numpy(ak.fill_none(lead.eta, 99.0)).astype(np.float64)
    ok = np.isfinite(pt).all(axis=1) & np.isfinite(eta).all(axis=1)
    for name in ("phi", "mass"):
        ok &= np.isfinite(ak.to_numpy(ak.fill_none(lead[name], 0.0)).astype(np.float64)).all(1)
    cuts = [
        has_two,
        ok,
        (pt >= config.jet_pt_min).all(1),
        (np.abs(eta) < config.jet_eta_max).all(1),
    ]
    if config.delta_eta_max is not None:
        cuts.append(np.abs(eta[:, 0] - eta[:, 1]) < config.delta_eta_max)
    mask = np.ones(len(events), dtype=bool)
    counts = []
    for c in cuts:
        mask &= c
        counts.append(int(mask.sum()))
    return mask, counts


def _toy_events(seed: int = 3, n: int = 400) -> ak.Array:
    """Events with 0..4 jets, some NaN/inf values, pt around the thresholds."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, n)
    total = int(counts.sum())
    cols = {
        "pt": rng.uniform(100, 2000, total).astype(np.float32),
        "eta": rng.uniform(-3, 3, total).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, total).astype(np.float32),
        "mass": rng.uniform(10, 500, total).astype(np.float32),
        **{f"tau{i}": rng.uniform(0.01, 1, total).astype(np.float32) for i in (1, 2, 3)},
    }
    for name in ("pt", "eta", "phi", "mass"):
        bad = rng.random(total) < 0.02
        cols[name][bad] = rng.choice([np.nan, np.inf, -np.inf], bad.sum())
    jets = ak.unflatten(ak.zip(cols), counts)
    return ak.zip({"FatJet": jets, "genWeight": rng.normal(1, 0.1, n)}, depth_limit=1)


@pytest.mark.parametrize(
    "config",
    [LOOSE, SelectionConfig(jet_pt_min=800.0, jet_eta_max=2.0, delta_eta_max=1.3)],
)
def test_select_dijets_matches_awkward_reference(config):
    events = _toy_events()
    sel = select_dijets(events, config)
    mask, counts = _reference_mask(events, config)
    np.testing.assert_array_equal(sel.mask, mask)
    assert list(sel.cutflow.values())[1:][: len(counts)] == [
        (c, pytest.approx(float(events.genWeight[mask_c].to_numpy().sum())))
        for c, mask_c in zip(counts, _chain_masks(events, config), strict=True)
    ]
    for name in FIELDS:
        ref = two_columns(sel.jets[name])
        np.testing.assert_array_equal(sel.two(name), ref)  # NaN positions included
    ref_feats = high_level_features(sel.jets)
    fast_feats = high_level_features(None, pairs=sel.by_mass)
    assert ref_feats.keys() == fast_feats.keys()
    for k in ref_feats:
        np.testing.assert_array_equal(fast_feats[k], ref_feats[k])


@pytest.mark.parametrize(
    "layout",
    [
        "fresh",  # offsets from 0: the record fields' own buffers are read
        "sliced",  # offsets from > 0: ak.flatten
        "indexed",  # a permutation (indexed layout): ak.num and ak.flatten
    ],
)
def test_flat_columns_of_every_layout(layout):
    events = _toy_events(seed=8)
    if layout == "sliced":
        events = events[37:]
    elif layout == "indexed":
        events = events[np.random.default_rng(2).permutation(len(events))]
    jets = events.FatJet
    counts, starts = counts_and_starts(jets)
    np.testing.assert_array_equal(counts, ak.to_numpy(ak.num(jets, axis=1)))
    np.testing.assert_array_equal(starts, np.cumsum(counts) - counts)
    for name in FIELDS:
        got = flat_column(jets, name)
        np.testing.assert_array_equal(got, ak.to_numpy(ak.flatten(jets[name])))
    sel = select_dijets(events, LOOSE)
    mask, _ = _reference_mask(events, LOOSE)
    np.testing.assert_array_equal(sel.mask, mask)
    for name in FIELDS:
        np.testing.assert_array_equal(sel.two(name), two_columns(sel.jets[name]))


def _chain_masks(events, config):
    """The reference's cumulative masks, one per cut."""
    jets = events[config.jet_collection]
    lead = ak.pad_none(jets, 2, axis=1, clip=True)
    pt = ak.to_numpy(ak.fill_none(lead.pt, 0.0)).astype(np.float64)
    eta = ak.to_numpy(ak.fill_none(lead.eta, 99.0)).astype(np.float64)
    ok = np.isfinite(pt).all(1) & np.isfinite(eta).all(1)
    for name in ("phi", "mass"):
        ok &= np.isfinite(ak.to_numpy(ak.fill_none(lead[name], 0.0)).astype(np.float64)).all(1)
    cuts = [ak.to_numpy(ak.num(jets, axis=1) >= 2), ok, (pt >= config.jet_pt_min).all(1)]
    cuts.append((np.abs(eta) < config.jet_eta_max).all(1))
    if config.delta_eta_max is not None:
        cuts.append(np.abs(eta[:, 0] - eta[:, 1]) < config.delta_eta_max)
    mask = np.ones(len(events), dtype=bool)
    out = []
    for c in cuts:
        mask = mask & c
        out.append(mask)
    return out


def _awkward_two(self: DijetSelection, name: str) -> np.ndarray:
    return two_columns(self.jets[name])


def _awkward_by_mass(self: DijetSelection, name: str):
    return mass_ordered_pairs(self.jets)(name)


@pytest.mark.parametrize("proc_cls", [DijetProcessor, SemivisibleProcessor, YXHProcessor])
def test_processor_histograms_identical_to_awkward_path(nanoaod_dir, monkeypatch, proc_cls):
    fileset = {
        "v15": [str(nanoaod_dir / "nano_tt_v15.root")],
        "pfnano": [str(nanoaod_dir / "pfnano.root")],
    }

    def run():
        proc = proc_cls(
            selection=LOOSE,
            regions=(RegionConfig(name="inclusive"),),
            collect_columns=True,
            collect_constituents=True,
        )
        return run_processor(fileset, proc, executor="iterative", chunksize=50, status=False)

    fast = run().output
    with monkeypatch.context() as m:
        m.setattr(sel_mod.DijetSelection, "two", _awkward_two)
        m.setattr(sel_mod.DijetSelection, "by_mass", _awkward_by_mass)
        ref = run().output
    assert fast["cutflow"] == ref["cutflow"]
    for k, h in ref["hists"].items():
        np.testing.assert_array_equal(fast["hists"][k].values(flow=True), h.values(flow=True))
        np.testing.assert_array_equal(fast["hists"][k].variances(flow=True), h.variances(flow=True))
    for ds, cols in ref["columns"].items():
        for name, col in cols.items():
            np.testing.assert_array_equal(fast["columns"][ds][name].value, col.value)


@pytest.mark.parametrize("mjj_min", [800.0, 2500.0])
def test_mjj_min_cut_matches_vector(mjj_min):
    """The optional mjj threshold: the events of the other cuts whose two leading jets'
    four-vector sum (vector, float64) reaches it, and one more cutflow step."""
    import vector

    events = _toy_events(seed=7, n=2000)
    base = select_dijets(events, LOOSE)
    sel = select_dijets(events, LOOSE.model_copy(update={"mjj_min": mjj_min}))
    idx = np.flatnonzero(base.mask)
    two = {f: base.two(f) for f in ("pt", "eta", "phi", "mass")}
    a = vector.array({f: v[:, 0] for f, v in two.items()})
    b = vector.array({f: v[:, 1] for f, v in two.items()})
    keep = (a + b).mass >= mjj_min
    assert 0 < keep.sum() < len(keep)
    expected = np.zeros(len(events), dtype=bool)
    expected[idx[keep]] = True
    np.testing.assert_array_equal(sel.mask, expected)
    assert sel.cutflow["mjj_min"][0] == int(keep.sum())
    w = events.genWeight.to_numpy()
    assert sel.cutflow["mjj_min"][1] == pytest.approx(float(w[expected].sum()))
    assert list(sel.cutflow)[-1] == "mjj_min"
