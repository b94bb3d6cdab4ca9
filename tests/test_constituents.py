"""Constituents from the index branches agree with a direct uproot computation."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from adcoffea.constituents import jet_constituents, pad_constituents, selected_constituents
from adcoffea.errors import InputFileError

NanoAODSchema.warn_missing_crossrefs = False

CASES = [
    ("nano_tt_v15.root", "FatJetPFCand_jetIdx", "FatJetPFCand_pfCandIdx", "PFCand"),
    ("pfnano.root", "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx", "PFCands"),
]


def _events(path):
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual"
    ).events()


@pytest.mark.parametrize(("fname", "jet_branch", "cand_branch", "parts"), CASES)
def test_matches_direct_uproot(nanoaod_dir, fname, jet_branch, cand_branch, parts):
    path = nanoaod_dir / fname
    got = jet_constituents(_events(path))
    raw = uproot.open(path)["Events"].arrays(
        ["nFatJet", jet_branch, cand_branch, f"{parts}_pt", f"{parts}_eta"], library="np"
    )
    n_checked = 0
    for i in range(len(raw["nFatJet"])):  # reference: a plain per-event loop
        assert len(got[i]) == raw["nFatJet"][i]
        for j in range(raw["nFatJet"][i]):
            idx = raw[cand_branch][i][raw[jet_branch][i] == j]
            np.testing.assert_array_equal(ak.to_numpy(got[i][j].pt), raw[f"{parts}_pt"][i][idx])
            np.testing.assert_array_equal(ak.to_numpy(got[i][j].eta), raw[f"{parts}_eta"][i][idx])
            n_checked += len(idx)
    assert n_checked > 100


def test_counts_match_nconstituents_in_v15(nanoaod_dir):
    ev = _events(nanoaod_dir / "nano_tt_v15.root")
    c = jet_constituents(ev)
    linked = ak.num(c, axis=2)
    # v15 stores links only for some jets; where it does, the count equals nConstituents.
    has = ak.flatten(linked) > 0
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(linked)[has]), ak.to_numpy(ak.flatten(ev.FatJet.nConstituents)[has])
    )


def test_padding_keeps_the_hardest(nanoaod_dir):
    ev = _events(nanoaod_dir / "pfnano.root")
    c = jet_constituents(ev)[:, :2]
    values, mask = pad_constituents(c, max_particles=10)
    assert values.shape == (10, 2, 10, 4) and mask.shape == (10, 2, 10)
    lead = ak.to_numpy(ak.max(c.pt, axis=2))
    np.testing.assert_allclose(values[:, :, 0, 0], lead)
    assert np.all(np.diff(values[..., 0], axis=-1) <= 0)
    # Pad with more slots than particles: the mask counts exactly the real ones.
    values, mask = pad_constituents(c, max_particles=200)
    np.testing.assert_array_equal(mask.sum(-1), ak.to_numpy(ak.num(c, axis=2)))
    assert np.all(values[~mask] == 0)


def test_file_without_links_is_named(nanoaod_dir):
    with pytest.raises(InputFileError, match="no constituent link"):
        jet_constituents(_events(nanoaod_dir / "nano_tt_v12.root"))


def test_corrupt_link_index_is_refused():
    ev = ak.Array(
        [
            {
                "FatJet": [{"pt": 1.0}],
                "PFCand": [{"pt": 2.0}],
                "FatJetPFCand": [{"jetIdx": 0, "pfCandIdx": 3}],
            }
        ]
    )
    with pytest.raises(InputFileError, match="pfCandIdx has out-of-range"):
        jet_constituents(ev)


def _reference_padded(events, jet_index, max_particles):
    """The awkward path: every jet's constituents, the chosen jets, padded."""
    cons = jet_constituents(events)
    flat = ak.flatten(cons, axis=1)[jet_index.ravel()]
    values, mask = pad_constituents(
        ak.unflatten(flat, jet_index.shape[1]), max_particles=max_particles
    )
    return values, mask


@pytest.mark.parametrize(("fname", "jet_branch", "cand_branch", "parts"), CASES)
@pytest.mark.parametrize("max_particles", [3, 200])
def test_selected_constituents_match_the_awkward_path(
    nanoaod_dir, fname, jet_branch, cand_branch, parts, max_particles
):
    ev = _events(nanoaod_dir / fname)
    n_jets = ak.to_numpy(ak.num(ev.FatJet, axis=1))
    start = np.cumsum(n_jets) - n_jets
    rows = np.flatnonzero(n_jets >= 2)
    jet_index = np.stack([start[rows], start[rows] + 1], axis=1)
    values, mask = selected_constituents(ev, jet_index, max_particles=max_particles)
    ref_values, ref_mask = _reference_padded(ev, jet_index, max_particles)
    assert mask.sum() > 20
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_array_equal(values, ref_values)


def _toy_linked_events(seed: int, n: int = 300) -> ak.Array:
    """Jets with shuffled, interleaved links, repeated pt values (ties) and jets without links."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):  # building the toy input only; the code under test is columnar
        nj, npart = int(rng.integers(0, 5)), int(rng.integers(0, 40))
        pts = rng.choice([1.0, 2.0, 2.5, 7.0, 11.0], npart)  # many ties
        links = [(int(rng.integers(0, nj)), p) for p in range(npart)] if nj else []
        rng.shuffle(links)
        out.append(
            {
                "FatJet": [{"pt": 100.0 - j} for j in range(nj)],
                "PFCand": [
                    {"pt": float(pt), "eta": float(i), "phi": -float(i), "mass": 0.1 * i}
                    for i, pt in enumerate(pts)
                ],
                "FatJetPFCand": [{"jetIdx": j, "pfCandIdx": p} for j, p in links],
            }
        )
    return ak.Array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selected_constituents_with_ties_and_shuffled_links(seed):
    ev = _toy_linked_events(seed)
    n_jets = ak.to_numpy(ak.num(ev.FatJet, axis=1))
    start = np.cumsum(n_jets) - n_jets
    rows = np.flatnonzero(n_jets >= 3)
    # chosen jets in any order, not only the two leading
    jet_index = np.stack([start[rows] + 2, start[rows]], axis=1)
    for max_particles in (1, 4, 50):
        values, mask = selected_constituents(ev, jet_index, max_particles=max_particles)
        ref_values, ref_mask = _reference_padded(ev, jet_index, max_particles)
        np.testing.assert_array_equal(mask, ref_mask)
        np.testing.assert_array_equal(values, ref_values)  # eta/phi tell tied particles apart


@pytest.mark.parametrize(
    ("jet_idx", "part_idx", "message"),
    [
        (1, 0, "FatJetPFCand_jetIdx has out-of-range jet indices"),  # one jet only
        (-1, 0, "FatJetPFCand_jetIdx has out-of-range jet indices"),
        (0, 1, "FatJetPFCand_pfCandIdx has out-of-range particle indices"),
        (0, -3, "FatJetPFCand_pfCandIdx has out-of-range particle indices"),
        (0, 0.0, "FatJetPFCand_pfCandIdx holds float64 values, not indices"),
    ],
)
def test_selected_constituents_refuse_corrupt_links(jet_idx, part_idx, message):
    ev = ak.Array(
        [
            {
                "FatJet": [{"pt": 1.0}],
                "PFCand": [{"pt": 2.0, "eta": 0.0, "phi": 0.0, "mass": 0.0}],
                "FatJetPFCand": [{"jetIdx": jet_idx, "pfCandIdx": part_idx}],
            }
        ]
    )
    with pytest.raises(InputFileError, match=message):
        selected_constituents(ev, np.array([[0]]), max_particles=2)
