"""Outputs: atomic writes, the one JSON converter and the one histogram reader."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import hist
import numpy as np
import pytest

from adcoffea.errors import InputFileError
from adcoffea.outputs import load_hists, save_hists, to_jsonable, write_json


@pytest.fixture
def hists():
    h = hist.Hist(
        hist.axis.StrCategory(["qcd", "sig"], name="dataset"),
        hist.axis.Variable([0.0, 1.0, 3.0], name="mjj"),
        storage=hist.storage.Weight(),
    )
    h.fill(dataset="qcd", mjj=[0.5, 0.5, 2.0])
    h.fill(dataset="sig", mjj=[2.5])
    return {"mjj": h}


def test_pickle_and_root_read_back_the_same_values(hists, tmp_path):
    paths = save_hists(hists, tmp_path)
    pk = load_hists(paths["pickle"])
    root = load_hists(paths["root"])
    np.testing.assert_array_equal(pk["mjj"].values(), hists["mjj"].values())
    np.testing.assert_array_equal(root["mjj/qcd"].values(), [2.0, 1.0])
    np.testing.assert_array_equal(root["mjj/sig"].values(), [0.0, 1.0])
    only = load_hists(paths["root"], names=["mjj/sig"])
    assert list(only) == ["mjj/sig"]
    assert not list(tmp_path.glob(".*tmp"))  # nothing left under a temporary name


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_missing_file_or_histogram_is_named(hists, tmp_path):
    with pytest.raises(InputFileError, match=r"gone\.pkl: histogram file not found"):
        load_hists(tmp_path / "gone.pkl")
    paths = save_hists(hists, tmp_path)
    with pytest.raises(InputFileError, match=r"no histogram 'mt'; has \['mjj'\]"):
        load_hists(paths["pickle"], names=["mt"])
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputFileError, match=r"junk\.pkl: not loaded"):
        load_hists(tmp_path / "junk.pkl")
    # a pickle that would run code is refused by the one reader before it can
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"mjj": Evil()}))
    with pytest.raises(InputFileError, match=r"evil\.pkl: not loaded"):
        load_hists(tmp_path / "evil.pkl")


def test_a_pickled_single_histogram_takes_the_requested_name(hists, tmp_path):
    path = tmp_path / "one.pkl"
    path.write_bytes(pickle.dumps(hists["mjj"]))
    assert list(load_hists(path, names=["spectrum"])) == ["spectrum"]


def test_to_jsonable_gives_plain_json(tmp_path):
    class Part:
        def to_dict(self):
            return {"edges": np.array([1.0, 2.0]), "n": np.int64(3), "where": Path("a/b")}

    obj = {1: Part(), "bad": [float("nan"), float("-inf")], "t": (np.float32(0.5),)}
    plain = to_jsonable(obj)
    assert plain == {
        "1": {"edges": [1.0, 2.0], "n": 3, "where": "a/b"},
        "bad": [None, "-inf"],
        "t": [0.5],
    }
    assert json.loads(write_json(tmp_path / "x" / "r.json", obj).read_text()) == plain


def test_writing_json_does_not_import_coffea():
    code = (
        "import sys, tempfile, pathlib; from adcoffea.outputs import write_json;"
        "write_json(pathlib.Path(tempfile.mkdtemp()) / 'r.json', {'a': 1});"
        "print([m for m in ('coffea', 'uproot', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
