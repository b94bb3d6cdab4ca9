"""adcoffea.columns: flat columns read from a chunk's layout equal the file's branches."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from adcoffea import columns
from adcoffea.columns import counts_and_starts, flat_column


@pytest.mark.parametrize(
    ("fname", "collection", "fields"),
    [
        ("nano_tt_v15.root", "FatJet", ("pt", "eta", "mass", "tau2")),
        ("pfnano.root", "FatJet", ("pt", "phi", "msoftdrop")),
        ("pfnano.root", "FatJetPFCands", ("jetIdx", "pFCandsIdx")),
        ("pfnano.root", "PFCands", ("pt", "eta")),
    ],
)
def test_nanoevents_columns_are_the_branches_without_awkward(
    nanoaod_dir, monkeypatch, fname, collection, fields
):
    """On a chunk of real NanoEvents (virtual arrays, an entry range not starting at 0) the
    columns come from the layout: ak.flatten and ak.num are not called, the values are the
    file's branches to the bit, and they cannot be written (a view of the events' buffer)."""
    path = nanoaod_dir / fname
    with uproot.open(path) as f:
        tree = f["Events"]
        if f"n{collection}" not in tree:
            pytest.skip(f"{fname} has no {collection}")
        start, stop = 3, tree.num_entries
        raw = tree.arrays(
            [f"n{collection}", *(f"{collection}_{x}" for x in fields)],
            entry_start=start,
            entry_stop=stop,
            library="np",
        )
    events = NanoEventsFactory.from_root(
        {str(path): "Events"},
        schemaclass=NanoAODSchema,
        mode="virtual",
        entry_start=start,
        entry_stop=stop,
    ).events()

    def refuse(*args, **kwargs):
        raise AssertionError("the fast path should not need awkward here")

    monkeypatch.setattr(columns.ak, "flatten", refuse)
    monkeypatch.setattr(columns.ak, "num", refuse)
    coll = events[collection]
    counts, starts = counts_and_starts(coll)
    np.testing.assert_array_equal(counts, raw[f"n{collection}"])
    np.testing.assert_array_equal(starts, np.cumsum(counts) - counts)
    for x in fields:
        got = flat_column(coll, x)
        want = np.concatenate(list(raw[f"{collection}_{x}"]))
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        with pytest.raises(ValueError, match="read-only"):
            got[:1] = 0


def test_other_layouts_go_through_awkward_read_only():
    jets = ak.Array([[{"pt": 3.0}, {"pt": 2.0}], [], [{"pt": 5.0}]])[1:]  # offsets from 2
    got = flat_column(jets, "pt")
    assert got.tolist() == [5.0] and not got.flags.writeable
    counts, starts = counts_and_starts(jets)
    assert counts.tolist() == [0, 1] and starts.tolist() == [0, 0]
