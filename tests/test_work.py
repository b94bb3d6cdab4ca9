"""The per-chunk work function keeps each input file open across its chunks (issue 15).

Against coffea's own work function (a fresh ``uproot.open`` for every chunk): identical
outputs, one open per file instead of one per chunk, a rewritten file (new ROOT UUID) is
never served from a stale handle, and at most ``MAX_OPEN_FILES`` stay open per thread.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
import pytest
from coffea import processor

from adcoffea.execution import nanoevents, run_processor, work
from adcoffea.processors import DijetProcessor

CHUNK = 300


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("work")
    qcd = generate("qcd", n_events=2000, seed=21, out_dir=out, n_files=2, name="qcd")
    return [str(f) for f in qcd.files]


def _count_opens(monkeypatch) -> list[str]:
    import uproot

    opened: list[str] = []
    real = uproot.open

    def counting(path, **kwargs):
        opened.append(next(iter(path)) if isinstance(path, dict) else str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(uproot, "open", counting)
    return opened


def test_chunks_of_a_file_share_one_open_and_match_coffea(files, monkeypatch):
    proc = DijetProcessor(collect_columns=True)
    with monkeypatch.context() as m:
        # coffea's own work function: a fresh uproot.open per chunk
        m.setattr("adcoffea.execution.accounting.chunk_work", processor.Runner._work_function)
        ref = run_processor({"qcd": files}, proc, executor="iterative", chunksize=CHUNK)
    opened = _count_opens(monkeypatch)
    res = run_processor({"qcd": files}, proc, executor="iterative", chunksize=CHUNK)
    n_chunks = res.report.chunks_processed
    assert n_chunks >= 6
    # the pre-flight opens each file once, and the chunks (in this process, the iterative
    # executor) take those handles over
    assert sorted(opened) == sorted(files), opened
    assert work._offered == {}
    assert res.output["cutflow"] == ref.output["cutflow"]
    for name, h in ref.output["hists"].items():
        np.testing.assert_array_equal(
            res.output["hists"][name].values(flow=True), h.values(flow=True)
        )
    for col, acc in ref.output["columns"]["qcd"].items():
        np.testing.assert_array_equal(res.output["columns"]["qcd"][col].value, acc.value)
    assert work._open_files() == {}  # closed at the end of the run


def _uuid(path) -> bytes:
    import uproot

    with uproot.open(path) as f:
        return bytes(f.file.fUUID)


def test_a_rewritten_file_is_opened_afresh(files, tmp_path):
    path = tmp_path / "moving.root"
    shutil.copy(files[0], path)
    first = work.open_tree(str(path), "Events", fileuuid=_uuid(path), options={})
    assert work.open_tree(str(path), "Events", fileuuid=_uuid(path), options={}) is first
    # another file (another UUID) at the same path, replaced atomically as our writers do
    shutil.copy(files[1], tmp_path / "new.root")
    os.replace(tmp_path / "new.root", path)
    assert _uuid(path) != bytes(first.file.fUUID)
    second = work.open_tree(str(path), "Events", fileuuid=_uuid(path), options={})
    assert second is not first
    assert bytes(second.file.fUUID) == _uuid(path)
    # a file without a known UUID is never kept
    third = work.open_tree(str(path), "Events", fileuuid=b"", options={})
    assert third is not second and len(work._open_files()) == 2
    third.close()
    work.close_files()
    assert work._open_files() == {}
    assert first.file.source.closed and second.file.source.closed


def test_at_most_max_open_files_stay_open(files, tmp_path, monkeypatch):
    monkeypatch.setattr(work, "MAX_OPEN_FILES", 2)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}.root"
        shutil.copy(files[i % 2], p)
        paths.append(str(p))
    handles = [work.open_tree(p, "Events", fileuuid=_uuid(p), options={}) for p in paths]
    assert [k[0] for k in work._open_files()] == paths[1:]  # the least recently used first
    assert handles[0].file.source.closed
    assert not handles[2].file.source.closed
    work.discard(paths[1])
    assert [k[0] for k in work._open_files()] == paths[2:]
    work.close_files()
    assert handles[2].file.source.closed


def test_close_files_of_every_thread_and_reopen(files):
    """A dask worker's task threads outlive a run: the end of the run closes their files,
    and a thread whose file was closed under it opens the file again."""
    import threading

    handles = []
    opened, finish = threading.Event(), threading.Event()

    def task():  # a task thread that stays alive, as a dask worker's do
        handles.append(work.open_tree(files[0], "Events", fileuuid=_uuid(files[0]), options={}))
        opened.set()
        finish.wait(30)

    t = threading.Thread(target=task)
    t.start()
    opened.wait(30)
    assert not handles[0].closed
    work.close_files()  # this thread's only: the other thread's file stays open
    assert not handles[0].closed
    work.close_files(every_thread=True)
    assert handles[0].closed
    finish.set()
    t.join()
    # a cached handle found closed is replaced, not returned
    mine = work.open_tree(files[1], "Events", fileuuid=_uuid(files[1]), options={})
    mine.close()
    again = work.open_tree(files[1], "Events", fileuuid=_uuid(files[1]), options={})
    assert again is not mine and not again.closed
    assert again["Events"].num_entries > 0
    work.close_files()


def test_a_finished_thread_closes_its_files_and_leaves_the_registry(files):
    import gc
    import threading

    before = len(work._every_thread)

    handles = []

    def task():
        handles.append(work.open_tree(files[0], "Events", fileuuid=_uuid(files[0]), options={}))
        assert len(work._every_thread) == before + 1

    t = threading.Thread(target=task)
    t.start()
    t.join()
    gc.collect()
    assert len(work._every_thread) == before
    assert handles[0].closed  # the ended thread closed its file


def test_local_files_are_read_in_the_calling_thread(files):
    """A local file is read with plain reads in the worker's thread, not through fsspec's
    event-loop thread (each NanoEvents branch read waited on a thread hand-off); URLs and a
    run's own ``uproot_options`` keep what they ask for."""
    import uproot

    opts = work.open_options(files[0], {"timeout": 5})
    assert opts["handler"] is uproot.source.file.MultithreadedFileSource
    assert opts["use_threads"] is False and opts["timeout"] == 5
    for url in ("root://eos.example//store/a.root", "file:///tmp/a.root"):
        assert "handler" not in work.open_options(url, {})
    assert work.open_options(files[0], {"use_threads": True})["use_threads"] is True

    handle = work.open_tree(files[0], "Events", fileuuid=b"", options={})
    try:
        source = handle.file.source
        assert isinstance(source, uproot.source.file.MultithreadedFileSource)
        assert isinstance(source._executor, uproot.source.futures.ResourceTrivialExecutor)
        n = handle["Events"].num_entries
        assert len(handle["Events"]["FatJet_pt"].array(entry_stop=n)) == n
    finally:
        handle.close()


class _FieldsSeen(DijetProcessor):
    """The dijet processor, also recording the fields its events hold."""

    def process(self, events):
        out = super().process(events)
        out["fields"] = set(events.fields)
        return out


def test_events_hold_only_the_processors_collections_and_match_the_whole_tree(files, monkeypatch):
    import uproot

    calls: list[int] = []
    real = uproot.behaviors.TBranch.HasBranches.typenames

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(uproot.behaviors.TBranch.HasBranches, "typenames", counting)
    light = run_processor({"qcd": files}, _FieldsSeen(), executor="iterative", chunksize=CHUNK)
    assert light.report.chunks_processed >= 6
    # coffea asks for every branch's type name on every chunk: answered once per file
    assert len(calls) == len(files)
    with uproot.open(files[0]) as f:
        in_file = {k.split("_")[0].removeprefix("n") for k in f["Events"].iterkeys()}
    assert {"PFCand", "FatJetPFCand"} <= in_file
    assert light.output["fields"] == {"FatJet", "event", "run", "luminosityBlock", "genWeight"} | (
        {"Truth"} & in_file
    )
    with_cons = _FieldsSeen(collect_columns=True, collect_constituents=True)
    assert {"PFCand", "FatJetPFCand"} <= with_cons.collections()
    cons = run_processor({"qcd": files}, with_cons, executor="iterative", chunksize=CHUNK)
    assert {"PFCand", "FatJetPFCand"} <= cons.output["fields"]

    # the whole tree (a processor naming no collections) gives the same results
    monkeypatch.setattr(_FieldsSeen, "collections", lambda self: None)
    whole = run_processor({"qcd": files}, with_cons, executor="iterative", chunksize=CHUNK)
    assert whole.output["fields"] >= in_file
    assert whole.output["cutflow"] == cons.output["cutflow"]
    for col, acc in whole.output["columns"]["qcd"].items():
        np.testing.assert_array_equal(cons.output["columns"]["qcd"][col].value, acc.value)


def test_a_narrowed_real_nanoaod_v15_tree_gives_the_same_jets(nanoaod_dir):
    """2656 branches in the file; the events of a dijet search hold a handful of them."""
    import awkward as ak
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    path = str(nanoaod_dir / "nano_tt_v15.root")
    keep = nanoevents.BranchFilter.of(DijetProcessor(collect_columns=True).collections())
    handle = work.open_tree(path, "Events", fileuuid=_uuid(path), options={})
    try:

        def events(options):
            return NanoEventsFactory.from_root(
                file=handle, treepath="Events", schemaclass=NanoAODSchema, mode="virtual",
                iteritems_options=options,
            ).events()  # fmt: skip

        narrow, whole = events({"filter_branch": keep}), events({})
        assert len(whole.fields) > 50 and set(narrow.fields) < set(whole.fields)
        assert "FatJet" in narrow.fields and "Jet" not in narrow.fields
        for f in ("pt", "eta", "phi", "mass", "tau2"):
            assert ak.all(narrow.FatJet[f] == whole.FatJet[f])
        assert ak.all(narrow.event == whole.event)
    finally:
        work.close_files()


def test_the_tree_metadata_memo_is_bounded_and_answers_as_the_tree(files):
    handle = work.open_tree(files[0], "Events", fileuuid=_uuid(files[0]), options={})
    try:
        tree = handle["Events"]
        assert tree._adcoffea_memo
        cls = type(tree)
        assert tree.typenames() == cls.typenames(tree)
        keep = nanoevents.BranchFilter.of(["FatJet"])
        names = [k for k, _ in tree.iteritems(filter_branch=keep)]
        assert names == [k for k, _ in cls.iteritems(tree, filter_branch=keep)]
        assert names and all(nanoevents.BranchFilter.of(["FatJet"]).keeps(n) for n in names)
        # a fresh filter object per call (hashable, never equal): stored up to the bound
        for i in range(3 * nanoevents.MEMO_ENTRIES):
            got = [k for k, _ in tree.iteritems(filter_branch=lambda b, i=i: b.name == "nFatJet")]
            assert got == ["nFatJet"]
        cache = tree.iteritems.memo
        assert len(cache) == nanoevents.MEMO_ENTRIES
        # unhashable arguments go straight to the tree
        assert [k for k, _ in tree.iteritems(filter_name=["nFatJet"])] == ["nFatJet"]
    finally:
        work.close_files()


def test_at_most_max_offered_files_are_left_open_by_the_preflight(files, monkeypatch):
    monkeypatch.setattr(work, "MAX_OFFERED", 1)
    opened = _count_opens(monkeypatch)
    res = run_processor({"qcd": files}, DijetProcessor(), executor="iterative", chunksize=CHUNK)
    assert res.report.events_processed == res.report.events_total
    # two pre-flight opens; one handle taken over, the other file opened again by its chunk
    assert len(opened) == len(files) + 1
    assert work._offered == {}


def test_only_the_iterative_executor_takes_the_preflights_files(files, monkeypatch):
    offers: list[str] = []
    real = work.offer

    def spy(path, *args, **kwargs):
        offers.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(work, "offer", spy)
    run_processor({"qcd": files}, DijetProcessor(), executor="futures", workers=1, chunksize=CHUNK)
    assert offers == []
    run_processor({"qcd": files}, DijetProcessor(), executor="iterative", chunksize=CHUNK)
    assert sorted(offers) == sorted(files)
    assert work._offered == {}


class _ReadsMuons(DijetProcessor):
    """Reads a collection it does not name (a user's subclass)."""

    attempts = 0  # chunks begun in this process

    def process(self, events):
        type(self).attempts += 1
        out = super().process(events)
        out["n_muons"] = int(ak_num_sum(events.Muon.pt))
        return out


def ak_num_sum(x) -> int:
    import awkward as ak

    return int(ak.sum(ak.num(x, axis=1)))


@pytest.mark.parametrize("executor", ["iterative", "futures"])
def test_reading_an_undeclared_collection_is_one_message_naming_the_fix(nanoaod_dir, executor):
    """The v15 file has Muon branches; the events hold only the processor's collections."""
    import cloudpickle

    from adcoffea.errors import InputFileError

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path = str(nanoaod_dir / "nano_tt_v15.root")
    _ReadsMuons.attempts = 0
    with warnings.catch_warnings(record=True) as caught, pytest.raises(InputFileError) as info:
        warnings.simplefilter("always")
        run_processor(
            {"tt": [path]}, _ReadsMuons(), executor=executor, workers=1, status=False, retries=3
        )
    # the same error on every attempt: not retried (coffea tried it four times, warning)
    assert not [w for w in caught if "Performed attempt" in str(w.message)]
    assert _ReadsMuons.attempts == (1 if executor == "iterative" else 0)
    assert info.value.path == path
    assert "'Muon'" in info.value.reason and "collections()" in info.value.reason
    assert "FatJet" in info.value.reason  # what the events do hold

    class Declares(_ReadsMuons):
        def collections(self):
            return super().collections() | {"Muon"}

    res = run_processor({"tt": [path]}, Declares(), executor="iterative", status=False)
    assert res.output["n_muons"] > 0
