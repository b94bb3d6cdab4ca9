"""Bad input: every failed file is named with its reason and every event is accounted for.

Cases: a missing file, a file truncated inside a basket the processor reads, a file whose
compressed basket is overwritten (checksum failure), a file lacking ``FatJet_pt``, an empty
file (0 entries) and a file whose corruption hits only its second basket (per-chunk
accounting). Default runs finish with ``processed + failed = total``; ``strict=True`` stops
with an :class:`InputFileError` naming the file.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from adcoffea.errors import AdcoffeaError, InputFileError
from adcoffea.execution import run_processor
from adcoffea.processors import PROCESSORS

N_PER_FILE = 1500
COPY_BRANCHES = ("event", "run", "luminosityBlock", "genWeight")


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> list[str]:
    from adcoffea.synthetic import generate

    out = tmp_path_factory.mktemp("bad_input_good")
    gen = generate("qcd", n_events=2 * N_PER_FILE, seed=11, out_dir=out, n_files=2, name="qcd")
    return [str(f) for f in gen.files]


def _read_nano(path: str) -> dict[str, np.ndarray | ak.Array]:
    with uproot.open(path) as f:
        t = f["Events"]
        names = [*COPY_BRANCHES, *(k for k in t.keys(filter_name="FatJet_*"))]
        return t.arrays(names, how=dict)


def write_nano(path: Path, arrays: dict, *, drop: tuple[str, ...] = (), n_baskets: int = 1) -> Path:
    """Write NanoAOD-style branches (``nFatJet`` counter, ``FatJet_x``), ``n_baskets`` baskets."""
    flat = {k: v for k, v in arrays.items() if not k.startswith("FatJet_") and k not in drop}
    jets = {k[7:]: v for k, v in arrays.items() if k.startswith("FatJet_") and k not in drop}
    n = len(arrays["event"])
    edges = np.linspace(0, n, n_baskets + 1).astype(int)
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
        for lo, hi in itertools.pairwise(edges):
            chunk = {k: np.asarray(v[lo:hi]) for k, v in flat.items()}
            chunk["FatJet"] = ak.zip({k: v[lo:hi] for k, v in jets.items()})
            if "Events" not in f:
                f.mktree(
                    "Events",
                    {k: v.dtype if k != "FatJet" else v.type for k, v in chunk.items()},
                    counter_name=lambda counted: "n" + counted,
                    field_name=lambda outer, inner: f"{outer}_{inner}",
                )
            f["Events"].extend(chunk)
    return path


def _basket_seeks(path: Path, branch: str) -> list[int]:
    with uproot.open(path) as f:
        b = f["Events"][branch]
        return [int(x) for x in b.member("fBasketSeek")[: b.num_baskets]]


def _processor():
    return PROCESSORS["dijet"]()


def _run(files, **kw):
    kw.setdefault("executor", "iterative")
    kw.setdefault("chunksize", 500)
    kw.setdefault("status", False)
    return run_processor({"qcd": [str(f) for f in files]}, _processor(), **kw)


def _selected(out) -> float:
    return float(out.output["hists"]["mjj"][{"region": "inclusive"}].values().sum())


# --------------------------------------------------------------------------------------
# one bad-input case at a time
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cases(good_files, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_input_cases")
    arrays = _read_nano(good_files[1])
    ok = write_nano(d / "ok.root", arrays, n_baskets=2)
    out = {"ok": ok, "missing": d / "does_not_exist.root"}

    # truncated inside the FatJet_pt basket: the header and tree metadata still open
    out["truncated"] = d / "truncated.root"
    shutil.copy(ok, out["truncated"])
    with open(out["truncated"], "r+b") as f:
        f.truncate(_basket_seeks(ok, "FatJet_pt")[0] + 100)

    # bytes overwritten inside the (compressed) payload of FatJet_pt's first basket
    out["corrupt"] = d / "corrupt.root"
    shutil.copy(ok, out["corrupt"])
    with open(out["corrupt"], "r+b") as f:
        f.seek(_basket_seeks(ok, "FatJet_pt")[0] + 200)
        f.write(bytes(range(256)) * 2)

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
def test_bad_file_is_named_and_accounted(cases, case, reason, n_failed, n_extra, capsys):
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
    assert f"FAILED {cases[case]}" in capsys.readouterr().out


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
    path = tmp_path / "second_basket.root"
    shutil.copy(cases["ok"], path)
    seeks = _basket_seeks(path, "FatJet_pt")
    with uproot.open(path) as f:
        offsets = list(f["Events"]["FatJet_pt"].member("fBasketEntry")[:3])
    assert len(seeks) == 2 and offsets[1] == N_PER_FILE // 2
    with open(path, "r+b") as f:
        f.seek(seeks[1] + 200)
        f.write(bytes(range(256)) * 2)
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
