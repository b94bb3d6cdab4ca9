"""Bad input: every failed file is named with its reason and every event is accounted for.

Cases: a missing file, a file truncated inside a basket the processor reads, a file whose
compressed basket is overwritten (checksum failure), a file lacking ``FatJet_pt``, an empty
file (0 entries) and a file whose corruption hits only its second basket (per-chunk
accounting). Default runs finish with ``processed + failed = total``; ``strict=True`` stops
with an :class:`InputFileError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from adcoffea.errors import AdcoffeaError, InputFileError
from adcoffea.execution import run_processor
from adcoffea.processors import PROCESSORS, DijetProcessor
from adcoffea.synthetic.corrupt import (
    basket_seeks,
    overwrite_basket,
    read_nano,
    truncate_in_basket,
    write_nano,
)

N_PER_FILE = 1500


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> list[str]:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("bad_input_good")
    gen = generate("qcd", n_events=2 * N_PER_FILE, seed=11, out_dir=out, n_files=2, name="qcd")
    return [str(f) for f in gen.files]


def _processor():
    return PROCESSORS["dijet"]()


def _run(files, *, processor=None, **kw):
    kw.setdefault("executor", "iterative")
    kw.setdefault("chunksize", 500)
    kw.setdefault("status", False)
    proc = _processor() if processor is None else processor
    return run_processor({"qcd": [str(f) for f in files]}, proc, **kw)


def _selected(out) -> float:
    return float(out.output["hists"]["mjj"][{"region": "inclusive"}].values().sum())


# --------------------------------------------------------------------------------------
# one bad-input case at a time
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cases(good_files, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_input_cases")
    arrays = read_nano(good_files[1])
    ok = write_nano(d / "ok.root", arrays, n_baskets=2)
    out = {"ok": ok, "missing": d / "does_not_exist.root"}

    # truncated inside the FatJet_pt basket: the header and tree metadata still open
    out["truncated"] = truncate_in_basket(ok, d / "truncated.root")
    # bytes overwritten inside the (compressed) payload of FatJet_pt's first basket
    out["corrupt"] = overwrite_basket(ok, d / "corrupt.root")

    out["no_pt"] = write_nano(d / "no_pt.root", arrays, drop=("FatJet_pt",))
    out["empty"] = write_nano(d / "empty.root", {k: v[:0] for k, v in arrays.items()})
    out["zero_bytes"] = d / "zero_bytes.root"
    out["zero_bytes"].write_bytes(b"")
    return out


def test_clean_file_reference(cases):
    res = _run([cases["ok"]])
    r = res.report
    assert (r.events_total, r.events_processed, r.events_failed) == (N_PER_FILE, N_PER_FILE, 0)
    assert res.output["cutflow"]["qcd"]["all"] == N_PER_FILE
    assert _selected(res) > 0


@pytest.mark.parametrize(
    "case, reason, n_failed, n_extra",
    [
        ("missing", "file does not exist", 0, 0),  # unknown event count: not in the total
        ("truncated", "OSError", N_PER_FILE, 0),
        # basket 0 of FatJet_pt holds entries [0, 750): chunks [0:500] and [500:1000] fail
        ("corrupt", "while decompressing", 1000, 500),
        ("no_pt", "missing branch(es) FatJet_pt", N_PER_FILE, 0),
        ("zero_bytes", "cannot open as ROOT", 0, 0),  # not a ROOT file: count unknown
    ],
)
def test_bad_file_is_named_and_accounted(cases, case, reason, n_failed, n_extra, caplog):
    clean = _run([cases["ok"]])
    res = _run([cases["ok"], cases[case]])
    r = res.report
    assert [f.path for f in r.failures] == [str(cases[case])] * len(r.failures)
    assert r.failures and all(reason in f.reason for f in r.failures)
    assert r.events_total == N_PER_FILE + n_failed + n_extra
    assert r.events_processed == N_PER_FILE + n_extra
    assert r.events_failed == n_failed
    assert r.events_processed + r.events_failed == r.events_total
    assert sum(f.n_events or 0 for f in r.failures) == n_failed
    assert res.output["cutflow"]["qcd"]["all"] == N_PER_FILE + n_extra
    if not n_extra:  # the good file's histograms are untouched by the bad one
        assert res.output["hists"]["mjj"] == clean.output["hists"]["mjj"]
    assert f"FAILED {cases[case]}" in caplog.text  # logged as a warning (the CLI shows it)


def test_empty_file_counts_zero_events(cases):
    res = _run([cases["ok"], cases["empty"]])
    r = res.report
    assert r.failures == ()
    assert r.datasets["qcd"]["files"] == 2
    assert (r.events_total, r.events_processed, r.events_failed) == (N_PER_FILE, N_PER_FILE, 0)


def test_real_empty_nanoaod(nanoaod_dir, cases):
    res = _run([cases["ok"], nanoaod_dir / "nano_dy_empty.root"])
    assert res.report.failures == ()
    assert res.report.events_total == res.report.events_processed == N_PER_FILE


def test_only_the_corrupt_basket_fails(cases, tmp_path):
    """Corruption in the second basket loses exactly the chunks that read it."""
    seeks = basket_seeks(cases["ok"], "FatJet_pt")
    with uproot.open(cases["ok"]) as f:
        offsets = list(f["Events"]["FatJet_pt"].member("fBasketEntry")[:3])
    assert len(seeks) == 2 and offsets[1] == N_PER_FILE // 2
    path = overwrite_basket(cases["ok"], tmp_path / "second_basket.root", basket=1)
    res = _run([path], chunksize=250)
    r = res.report
    bad = sorted((f.entry_start, f.entry_stop) for f in r.failures)
    assert bad[0][0] == offsets[1] and bad[-1][1] == N_PER_FILE
    assert r.events_failed == N_PER_FILE - offsets[1]
    assert r.events_processed == offsets[1]
    assert res.output["cutflow"]["qcd"]["all"] == offsets[1]
    assert all(str(path) == f.path and "decompressing" in f.reason for f in r.failures)


def test_real_file_missing_event_id_branch(nanoaod_dir, cases):
    bad = nanoaod_dir / "missing_luminosityBlock.root"
    r = _run([cases["ok"], bad]).report
    assert [(f.path, f.reason) for f in r.failures] == [
        (str(bad), "missing branch(es) luminosityBlock")
    ]
    assert r.events_failed == 2 and r.events_processed == N_PER_FILE


def test_all_cases_together_exact_accounting(cases):
    files = [cases[k] for k in ("ok", "missing", "truncated", "corrupt", "no_pt", "empty")]
    r = _run(files).report
    assert sorted({f.path for f in r.failures}) == sorted(
        str(cases[k]) for k in ("missing", "truncated", "corrupt", "no_pt")
    )
    d = r.datasets["qcd"]
    assert d["files"] == 6 and d["files_failed"] == 2  # missing + no_pt fail whole
    assert d["events_total"] == 4 * N_PER_FILE  # ok, truncated, corrupt, no_pt (+0 empty)
    assert d["events_processed"] == N_PER_FILE + 500  # + the corrupt file's last chunk
    assert d["events_failed"] == 3 * N_PER_FILE - 500


@pytest.mark.parametrize("case", ["missing", "truncated", "corrupt", "no_pt", "zero_bytes"])
def test_strict_stops_with_named_file(cases, case):
    with pytest.raises(InputFileError) as info:
        _run([cases["ok"], cases[case]], strict=True, retries=0)
    assert info.value.path == str(cases[case])
    assert "Traceback" not in str(info.value)


def test_strict_futures_names_file_across_processes(cases):
    with pytest.raises(InputFileError) as info:
        _run([cases["truncated"]], strict=True, executor="futures", workers=1, retries=0)
    assert info.value.path == str(cases["truncated"])
    assert "OSError" in info.value.reason


def test_no_readable_file_is_an_error(cases):
    with pytest.raises(InputFileError, match="no readable input file"):
        _run([cases["missing"], cases["no_pt"]])


def test_bug_in_processor_is_not_swallowed(cases):
    class Buggy(type(_processor())):
        def process(self, events):
            raise ZeroDivisionError("a bug, not bad input")

    with pytest.raises(Exception, match="a bug, not bad input") as info:
        run_processor(
            {"qcd": [str(cases["ok"])]},
            Buggy(),
            executor="iterative",
            chunksize=500,
            status=False,
            retries=0,
        )
    assert not isinstance(info.value, AdcoffeaError)


# --------------------------------------------------------------------------------------
# a file that passes the pre-flight and then vanishes (issue 12, item 4)
# --------------------------------------------------------------------------------------
@dataclass
class DeletingDijet(DijetProcessor):
    """Deletes ``victim`` when it processes the first chunk of another file (a dropped
    server, a file removed by a clean-up job while the run is going on)."""

    victim: str = ""

    def process(self, events):
        meta = events.metadata
        if meta["entrystart"] == 0 and meta["filename"] != self.victim:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.victim)
        return super().process(events)


@pytest.fixture
def vanishing(cases, tmp_path) -> Path:
    path = tmp_path / "vanishing.root"
    shutil.copy(cases["ok"], path)
    return path


def _assert_vanished_accounted(res, clean, gone: Path) -> None:
    r = res.report
    assert (r.events_total, r.events_processed, r.events_failed) == (
        2 * N_PER_FILE,
        N_PER_FILE,
        N_PER_FILE,
    )
    assert {f.path for f in r.failures} == {str(gone)}
    assert sorted((f.entry_start, f.entry_stop) for f in r.failures) == [
        (0, 500),
        (500, 1000),
        (1000, 1500),
    ]
    assert all("cannot open the file" in f.reason for f in r.failures)
    assert all("FileNotFoundError" in f.reason for f in r.failures)
    assert res.output["cutflow"] == clean.output["cutflow"]
    assert res.output["hists"]["mjj"] == clean.output["hists"]["mjj"]


@pytest.fixture
def no_hand_over(monkeypatch):
    """The iterative executor's chunks open their files afresh, as every other executor's:
    a file the pre-flight left open stays readable after it is deleted (the next test)."""
    from adcoffea.execution import work

    monkeypatch.setattr(work, "MAX_OFFERED", 0)


@pytest.mark.parametrize("executor", ["iterative", "futures"])
def test_file_deleted_while_the_run_goes_on_is_accounted(cases, vanishing, executor, no_hand_over):
    """Before: an 80-110 line traceback, exit 1 and no outputs."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    clean = _run([cases["ok"]])
    # one worker takes the chunks in order: the victim's come after the first file's
    res = run_processor(
        {"qcd": [str(cases["ok"]), str(vanishing)]},
        DeletingDijet(victim=str(vanishing)),
        executor=executor,
        workers=1,
        chunksize=500,
        status=False,
    )
    assert not vanishing.exists()
    _assert_vanished_accounted(res, clean, vanishing)


@pytest.fixture
def delete_after_preflight(monkeypatch):
    """Files appended to the returned list are deleted right after the pre-flight."""
    import adcoffea.execution.preflight as pf

    victims: list[Path] = []
    real = pf.check_fileset

    def check_then_delete(*args, **kwargs):
        out = real(*args, **kwargs)
        for v in victims:
            v.unlink()
        return out

    monkeypatch.setattr(pf, "check_fileset", check_then_delete)
    return victims


def test_file_vanishing_after_preflight_is_accounted(
    cases, vanishing, delete_after_preflight, no_hand_over
):
    """(futures: the test above and the strict one below; dask: tests/test_dask.py)"""
    clean = _run([cases["ok"]])
    delete_after_preflight.append(vanishing)
    res = _run([cases["ok"], vanishing])
    _assert_vanished_accounted(res, clean, vanishing)


def test_a_file_the_preflight_left_open_is_read_whole_after_deletion(
    cases, vanishing, delete_after_preflight
):
    """The iterative executor takes over the pre-flight's open files: a file deleted after
    the check is still read from that handle (its inode lives while open), every event."""
    from adcoffea.execution import work

    clean = _run([cases["ok"], vanishing])
    delete_after_preflight.append(vanishing)
    res = _run([cases["ok"], vanishing])
    assert not vanishing.exists()
    r = res.report
    assert (r.events_total, r.events_processed, r.events_failed) == (2 * N_PER_FILE,) * 2 + (0,)
    assert res.output["cutflow"] == clean.output["cutflow"]
    assert work._offered == {}


def test_file_vanishing_strict_names_it(cases, vanishing, delete_after_preflight):
    delete_after_preflight.append(vanishing)
    with pytest.raises(InputFileError) as info:
        _run([cases["ok"], vanishing], strict=True, executor="futures", workers=1, retries=0)
    assert info.value.path == str(vanishing)
    assert "FileNotFoundError" in info.value.reason


# --------------------------------------------------------------------------------------
# exit status of a run that lost events (issue 12, item 6)
# --------------------------------------------------------------------------------------
def test_process_cli_exit_status_names_the_events_lost(cases, tmp_path, capsys):
    import json

    from adcoffea.cli import main

    fs = tmp_path / "fileset.json"
    fs.write_text(json.dumps({"qcd": [str(cases["ok"]), str(cases["truncated"])]}))
    argv = ["process", str(fs), "--executor", "iterative", "--chunksize", "500"]
    assert main([*argv, "--output", str(tmp_path / "a")]) == 3
    err = capsys.readouterr().err
    assert "1500 of 3000 events (50.0 %) lost in 1 failed file(s)" in err
    assert main([*argv, "--output", str(tmp_path / "b"), "--allow-failures"]) == 0
    assert "warning: 1500 of 3000 events" in capsys.readouterr().err
    fs.write_text(json.dumps({"qcd": [str(cases["ok"])]}))
    assert main([*argv, "--output", str(tmp_path / "c")]) == 0


# --------------------------------------------------------------------------------------
# non-finite values (issue 12, item 7)
# --------------------------------------------------------------------------------------
def _set_leading_jet(arrays: dict, field: str, events: np.ndarray, value: float) -> None:
    """``FatJet_<field>`` of the leading jet of ``events`` set to ``value``."""
    jagged = arrays[f"FatJet_{field}"]
    flat = ak.to_numpy(ak.flatten(jagged)).astype(np.float64).copy()
    starts = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jagged)))[:-1]])
    flat[starts[events]] = value
    arrays[f"FatJet_{field}"] = ak.unflatten(flat.astype(np.float32), ak.num(jagged))


@pytest.fixture(scope="module")
def nonfinite_file(good_files, cases, tmp_path_factory):
    """The 'ok' file with NaN masses in 7 and infinite pt in 5 selected events."""
    clean = _run([cases["ok"]], chunksize=N_PER_FILE)
    arrays = read_nano(good_files[1])
    with uproot.open(cases["ok"]) as f:
        events = f["Events"].arrays(["FatJet_pt", "FatJet_eta"], how=dict)
    pt, eta = events["FatJet_pt"], events["FatJet_eta"]
    two = ak.to_numpy(ak.num(pt) >= 2)
    lead = ak.pad_none(pt, 2, clip=True)
    sel = two & ak.to_numpy(ak.fill_none(ak.min(lead, axis=1), 0) >= 1200)
    sel &= ak.to_numpy(ak.fill_none(ak.max(abs(ak.pad_none(eta, 2, clip=True)), axis=1), 9) < 2.5)
    idx = np.flatnonzero(sel)
    assert len(idx) >= 12 and clean.output["cutflow"]["qcd"]["jet_eta"] == len(idx)
    _set_leading_jet(arrays, "mass", idx[:7], np.nan)
    _set_leading_jet(arrays, "pt", idx[7:12], np.inf)
    path = tmp_path_factory.mktemp("nonfinite") / "nonfinite.root"
    return write_nano(path, arrays, n_baskets=2), clean, len(idx)


def test_nonfinite_kinematics_are_cut_counted_and_reported(nonfinite_file, caplog):
    path, clean, n_selected = nonfinite_file
    with caplog.at_level("WARNING", logger="adcoffea.execution"):
        res = _run([path])
    flow = res.output["cutflow"]["qcd"]
    assert list(flow)[:3] == ["all", "two_jets", "finite_kinematics"]
    assert flow["two_jets"] - flow["finite_kinematics"] == 12
    assert flow["jet_eta"] == n_selected - 12
    # before: 7 NaN mjj in the overflow bin, 5 infinite ones too; now none of them
    h = res.output["hists"]["mjj"][{"dataset": "qcd", "region": "inclusive"}]
    h_clean = clean.output["hists"]["mjj"][{"dataset": "qcd", "region": "inclusive"}]
    assert h.values(flow=True).sum() == h_clean.values(flow=True).sum() - 12
    assert h.values(flow=True)[-1] <= h_clean.values(flow=True)[-1]
    r = res.report
    assert [(n.path, n.what, n.events) for n in r.nonfinite] == [(str(path), "kinematics", 12)]
    assert r.datasets["qcd"]["events_nonfinite_kinematics"] == 12
    assert r.to_dict()["nonfinite"][0]["events"] == 12
    assert r.events_processed == r.events_total == N_PER_FILE  # cut, not lost
    assert any(str(path) in m and "12 event(s)" in m for m in caplog.messages)


class _NaNModel:
    """A stand-in model whose score is NaN for every third event."""

    required_inputs: frozenset = frozenset()

    def score(self, inputs):
        s = np.clip(inputs.high_level["mjj"] / 5000.0, 0, 0.999)
        s[::3] = np.nan
        return s


def test_nan_scores_are_in_no_score_region_and_reported(cases, tmp_path, monkeypatch):
    """Decision: a NaN score passes no score cut, is not in the score histogram (it would
    land in the overflow bin) and is counted per file and model."""
    import hashlib

    import adcoffea.processors.base as base
    from adcoffea.config import RegionConfig

    bundle = tmp_path / "nan_bundle"
    bundle.mkdir()
    (bundle / "metadata.json").write_text("{}")
    key = (str(bundle.resolve()), hashlib.sha256(b"{}").hexdigest())
    monkeypatch.setitem(base._BUNDLES, key, _NaNModel())
    regions = (
        RegionConfig(name="inclusive"),
        RegionConfig(name="high", score_min=0.3),
        RegionConfig(name="low", score_max=0.5),
    )
    proc = DijetProcessor(regions=regions, bundles=(("nan", str(bundle)),))
    res = run_processor(
        {"qcd": [str(cases["ok"])]}, proc, executor="iterative", chunksize=N_PER_FILE, status=False
    )
    h = res.output["hists"]["mjj"]
    n_sel = h[{"dataset": "qcd", "region": "inclusive"}].values(flow=True).sum()
    n_nan = len(range(0, int(n_sel), 3))
    score = res.output["hists"]["score"][{"dataset": "qcd", "model": "nan"}]
    assert score.values(flow=True).sum() == n_sel - n_nan
    assert score.values(flow=True)[-1] == 0  # nothing in the overflow bin
    high = h[{"dataset": "qcd", "region": "high"}].values(flow=True).sum()
    low = h[{"dataset": "qcd", "region": "low"}].values(flow=True).sum()
    # the two regions overlap on 0.3 < s <= 0.5; a NaN is in neither
    mid = score[hist_loc(0.3) : hist_loc(0.5)].values().sum()
    assert high + low - mid == n_sel - n_nan
    assert [(n.what, n.events) for n in res.report.nonfinite] == [("score:nan", n_nan)]


def hist_loc(x: float):
    import hist

    return hist.loc(x)


# --------------------------------------------------------------------------------------
# the pre-flight checks every branch the processor and its models read (issue 12, item 9)
# --------------------------------------------------------------------------------------
def test_semivisible_without_met_fails_in_preflight(cases, nanoaod_dir):
    """Before: every chunk failed on its own ('no MET collection') after opening the file."""
    with_met = nanoaod_dir / "nano_dy.root"
    r = run_processor(
        {"qcd": [str(cases["ok"]), str(with_met)]},
        PROCESSORS["semivisible"](),
        executor="iterative",
        chunksize=500,
        status=False,
    ).report
    assert [(f.path, f.entry_start, f.reason) for f in r.failures] == [
        (str(cases["ok"]), None, "missing branch(es) MET: PFMET_pt, PFMET_phi or MET_pt, MET_phi")
    ]
    assert r.events_failed == N_PER_FILE and r.events_processed == 40


class _FakeBundle:
    """A loaded bundle stand-in: declares inputs, scores nothing in particular."""

    def __init__(self, features=(), required=("high_level",)):
        self.metadata = type("M", (), {"features": tuple(features)})()
        self.required_inputs = set(required)

    def check_inputs(self, available, max_particles):
        pass

    def score(self, inputs):
        return np.full(len(inputs), 0.5)


def _with_fake_bundle(monkeypatch, tmp_path, model) -> tuple[tuple[str, str], ...]:
    import hashlib

    import adcoffea.processors.base as base

    bundle = tmp_path / "fake_bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "metadata.json").write_text("{}")
    monkeypatch.setitem(
        base._BUNDLES, (str(bundle.resolve()), hashlib.sha256(b"{}").hexdigest()), model
    )
    return (("fake", str(bundle)),)


@pytest.mark.parametrize(
    "model, drop, reason",
    [
        # a model reading tau21 needs FatJet_tau1/tau2 (else NaN features, NaN scores)
        (_FakeBundle(features=("mj_min", "tau21_min")), ("FatJet_tau1",), "FatJet_tau1"),
        # a constituent model needs the link table and the particles
        (
            _FakeBundle(required=("constituents",)),
            (),
            "FatJet constituents: FatJetPFCand_jetIdx, FatJetPFCand_pfCandIdx",
        ),
    ],
)
def test_branches_models_need_are_checked_in_preflight(
    cases, good_files, tmp_path, monkeypatch, model, drop, reason
):
    bad = write_nano(tmp_path / "lacking.root", read_nano(good_files[1]), drop=drop)
    proc = DijetProcessor(bundles=_with_fake_bundle(monkeypatch, tmp_path, model))
    if drop:  # the good file has the branch: only the bad one fails, as a whole file
        r = run_processor(
            {"qcd": [str(cases["ok"]), str(bad)]}, proc, executor="iterative", status=False
        ).report
        assert [(f.path, f.entry_start) for f in r.failures] == [(str(bad), None)]
        assert reason in r.failures[0].reason and r.events_failed == N_PER_FILE
    else:  # neither file has constituents
        with pytest.raises(InputFileError, match=reason):
            run_processor({"qcd": [str(bad)]}, proc, executor="iterative", status=False)


# --------------------------------------------------------------------------------------
# tampered or mismatched model bundles: one message before processing (issue 12, item 10)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ae_bundle_dir(tmp_path_factory) -> Path:
    from adcoffea.config import TrainConfig
    from adcoffea.models import toy
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model

    inputs, _ = toy.lhco_features(800, 0, seed=4)
    cfg = TrainConfig(epochs=1, batch_size=256, seed=1)
    res = train_model("autoencoder", inputs, config=cfg, progress=False)
    return save_bundle(res.bundle, tmp_path_factory.mktemp("bundle") / "ae")


def _tampered(src: Path, dst: Path, how: str) -> Path:
    import hashlib
    import json

    shutil.copytree(src, dst)
    md = json.loads((dst / "metadata.json").read_text())
    if how == "weights":
        w = dst / "net_model.pt"
        data = bytearray(w.read_bytes())
        data[-10] ^= 0xFF
        w.write_bytes(bytes(data))
        return dst
    if how == "reordered":  # same names, another order: scores silently wrong before
        md["features"] = md["features"][::-1]
    elif how == "renamed":
        md["features"][0] = "mj_lightest"
    elif how == "dropped":
        md["features"] = md["features"][:-1]
    text = json.dumps(md, indent=2, sort_keys=True)
    (dst / "metadata.json").write_text(text)
    if how != "reordered":  # a consistent digest: a bundle written by a buggy tool
        (dst / "metadata.sha256").write_text(hashlib.sha256(text.encode()).hexdigest())
    return dst


@pytest.mark.parametrize(
    "how, message",
    [
        ("weights", r"net_model\.pt does not match its sha256"),
        ("reordered", r"metadata\.json does not match its sha256 in metadata\.sha256"),
        ("renamed", r"needs high-level features \['mj_lightest'\]"),
        ("dropped", r"3 features .* standardizer's 'mean' has 4 columns"),
    ],
)
@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_bad_bundle_is_one_message_before_processing(
    cases, ae_bundle_dir, tmp_path, monkeypatch, how, message, executor
):
    """Before: a 105-line traceback (futures), a numpy broadcast error (count), or wrong
    scores without any error (reordered names)."""
    import adcoffea.execution as ex
    from adcoffea.errors import ModelBundleError

    bundle = _tampered(ae_bundle_dir, tmp_path / how, how)
    started = []
    monkeypatch.setattr(ex, "make_executor", lambda *a, **k: started.append(a))
    monkeypatch.setattr(ex, "dask_client", lambda *a, **k: started.append(a))
    proc = DijetProcessor(bundles=(("ae", str(bundle)),))
    with pytest.raises(ModelBundleError, match=message) as info:
        _run([cases["ok"]], executor=executor, workers=2, processor=proc)
    assert "model 'ae'" in str(info.value) or "bundle" in str(info.value)
    assert "\n" not in str(info.value) and not started


def test_intact_bundle_scores_and_legacy_bundle_warns(cases, ae_bundle_dir, tmp_path):
    proc = DijetProcessor(bundles=(("ae", str(ae_bundle_dir)),))
    res = _run([cases["ok"]], processor=proc)
    assert res.output["hists"]["score"].values().sum() > 0
    legacy = tmp_path / "legacy"
    shutil.copytree(ae_bundle_dir, legacy)
    (legacy / "metadata.sha256").unlink()
    from adcoffea.models.bundle import load_bundle

    with pytest.warns(UserWarning, match="cannot be verified"):
        load_bundle(legacy)


# --------------------------------------------------------------------------------------
# remote files: a deadline on every open, a named error without a client (item 5)
# --------------------------------------------------------------------------------------
def test_unreachable_host_times_out_with_a_named_error(cases, tmp_path, monkeypatch):
    """A host that never answers: before, the pre-flight hung ~8 minutes without output."""
    import time

    import adcoffea.execution.preflight as pf
    from adcoffea.errors import InputTimeoutError

    hanging = tmp_path / "hanging.root"
    shutil.copy(cases["ok"], hanging)
    real = pf._open_metadata

    def open_metadata(path, tree, timeout, **kwargs):
        if path == str(hanging):
            time.sleep(30)  # an XRootD client retrying a silent host
        return real(path, tree, timeout, **kwargs)

    monkeypatch.setattr(pf, "_open_metadata", open_metadata)
    t0 = time.monotonic()
    r = _run([cases["ok"], hanging], timeout=1.0).report
    assert time.monotonic() - t0 < 15
    assert [(f.path, f.n_events) for f in r.failures] == [(str(hanging), None)]
    assert r.failures[0].reason == "timed out after 1 s opening the file"
    assert r.events_processed == N_PER_FILE
    with pytest.raises(InputTimeoutError, match=r"hanging\.root: timed out after 1 s"):
        _run([cases["ok"], hanging], timeout=1.0, strict=True)


def test_refused_xrootd_port_fails_within_the_timeout(cases):
    """A real XRootD open of a loopback port nobody listens on (never a remote host)."""
    import time

    from adcoffea.execution.preflight import xrootd_available

    if not xrootd_available():
        pytest.skip("no XRootD client installed")
    url = "root://127.0.0.1:1//store/never.root"
    t0 = time.monotonic()
    r = _run([cases["ok"], url], timeout=2.0).report
    assert time.monotonic() - t0 < 12
    assert [f.path for f in r.failures] == [url]
    assert "127.0.0.1:1" in r.failures[0].reason or "expired" in r.failures[0].reason


def test_xrootd_url_without_client_is_one_clear_message(cases, monkeypatch):
    import adcoffea.execution.preflight as pf

    monkeypatch.setattr(pf, "xrootd_available", lambda: False)
    url = "root://eospublic.cern.ch//eos/opendata/x.root"  # never contacted
    with pytest.raises(InputFileError, match=r"pip install 'adcoffea\[xrootd\]'") as info:
        _run([cases["ok"], url])
    assert info.value.path == url


def test_same_file_under_two_spellings_is_processed_once(cases, tmp_path, caplog):
    """Before: processed twice (double the events in every histogram)."""
    link = tmp_path / "link.root"
    link.symlink_to(cases["ok"])
    other = f"{cases['ok'].parent}/./{cases['ok'].name}"
    clean = _run([cases["ok"]])
    with caplog.at_level("WARNING", logger="adcoffea.execution"):
        res = _run([cases["ok"], other, link])
    r = res.report
    assert r.events_total == r.events_processed == N_PER_FILE
    assert [d[1] for d in r.duplicates] == [other, str(link)]
    assert r.datasets["qcd"]["files"] == 3 and r.datasets["qcd"]["files_duplicate"] == 2
    assert res.output["hists"]["mjj"] == clean.output["hists"]["mjj"]
    assert sum("same file as" in m for m in caplog.messages) == 2


def test_copy_with_the_same_uuid_is_warned_about(cases, tmp_path):
    copy = tmp_path / "copy.root"
    shutil.copy(cases["ok"], copy)
    r = _run([cases["ok"], copy]).report
    assert r.events_processed == 2 * N_PER_FILE  # a copy may be intended: kept
    assert any("ROOT UUID" in w and str(copy) in w for w in r.warnings)


def test_truncated_file_whose_baskets_survive_is_flagged(cases, tmp_path):
    """Cut off after the last basket the processor reads: before, no sign of it."""
    path = tmp_path / "cut_tail.root"
    shutil.copy(cases["ok"], path)
    with uproot.open(path) as f:
        end = f.file.fEND
        t = f["Events"]
        needed = [*basket_seeks(path, "FatJet_pt"), *basket_seeks(path, "event")]
        last = max(
            int(b.member("fBasketSeek")[i]) + int(b.basket_compressed_bytes(i))
            for b in t.values()
            for i in range(b.num_baskets)
        )
    assert max(needed) < last < end
    with open(path, "r+b") as f:
        f.truncate(last + (end - last) // 2)
    r = _run([path]).report
    assert any("truncated" in w and str(path) in w for w in r.warnings)
    assert r.events_processed + r.events_failed == r.events_total == N_PER_FILE


def test_baskets_larger_than_a_chunk_are_warned_about(cases, monkeypatch):
    """Each chunk decompresses the whole baskets it reads from: the pre-flight says so
    (for baskets of at least LARGE_BASKET entries; these test files have small ones)."""
    from adcoffea.execution import preflight

    with uproot.open(cases["ok"]) as f:
        basket = max(int(n) for n in np.diff(f["Events"]["FatJet_pt"].entry_offsets))
    assert 1 < basket <= N_PER_FILE < preflight.LARGE_BASKET
    quiet = _run([cases["ok"]], chunksize=basket - 1).report
    assert not [w for w in quiet.warnings if "baskets" in w]
    monkeypatch.setattr(preflight, "LARGE_BASKET", basket)
    small = _run([cases["ok"]], chunksize=basket - 1).report
    [warning] = [w for w in small.warnings if "baskets of up to" in w]
    assert str(cases["ok"]) in warning and f"{basket:,} entries" in warning
    assert f"chunk size {basket - 1:,}" in warning
    fitting = _run([cases["ok"]], chunksize=basket).report
    assert not [w for w in fitting.warnings if "baskets" in w]
    assert small.events_processed == fitting.events_processed == N_PER_FILE


def test_fit_refuses_a_pickle_that_would_run_code(tmp_path, capsys):
    """Before: ``adcoffea fit FILE.pkl`` unpickled whatever it was given."""
    import pickle

    from adcoffea.cli import main

    marker = tmp_path / "executed"

    class Planted:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "hists.pkl"
    evil.write_bytes(pickle.dumps({"mjj": Planted()}))
    for argv in (
        ["fit", str(evil), "--out", str(tmp_path / "fit")],
        ["bumphunt", str(evil), "--data", "mjj", "--background", "mjj"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "refused global pathlib" in err and str(evil) in err
    assert not marker.exists()
    from adcoffea.outputs import load_hists

    with pytest.raises(InputFileError, match="refused global"):
        load_hists(evil)
    assert not marker.exists()


def test_nonfinite_met_fails_finite_kinematics():
    """The semi-visible search's MET: NaN/inf -> the same cut (mT would be NaN otherwise)."""
    from adcoffea.config import SelectionConfig
    from adcoffea.processors.selections import select_dijets

    jet = {"pt": 1500.0, "eta": 0.1, "phi": 0.0, "mass": 100.0}
    events = ak.Array([{"FatJet": [jet, {**jet, "phi": 3.0}]}] * 4)
    met_pt = np.array([100.0, np.nan, np.inf, 50.0])
    sel = select_dijets(events, SelectionConfig(), finite=np.isfinite(met_pt))
    assert sel.cutflow["two_jets"][0] == 4 and sel.cutflow["finite_kinematics"][0] == 2
    assert sel.mask.tolist() == [True, False, False, True]
