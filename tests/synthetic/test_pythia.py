"""The Pythia 8 + FastJet engine: settings, schema parity with the fast engine, reproducibility
across worker counts, jet physics, and a small sample through the dijet processor."""

from __future__ import annotations

import argparse
import importlib.util
import json

import awkward as ak
import numpy as np
import pytest
import uproot

from adcoffea.errors import ConfigError
from adcoffea.synthetic.pythia import (
    PYTHIA_PARAMS,
    FileTask,
    file_seed,
    pythia_settings,
    resolve_pythia_params,
    write_pythia_file,
)

# -------------------------------------------------------------------- no generator needed


def test_params_are_validated_naming_the_key():
    with pytest.raises(ConfigError, match=r"params\.m_zprime"):
        resolve_pythia_params("wprime", {"m_zprime": 3000.0})
    with pytest.raises(ConfigError, match=r"params\.x_prongs"):
        resolve_pythia_params("yxh", {"x_prongs": 4})
    with pytest.raises(ConfigError, match=r"params\.jet_r"):
        resolve_pythia_params("qcd", {"jet_r": 0.4})
    with pytest.raises(ConfigError, match=r"params\.m_wprime"):
        resolve_pythia_params("wprime", {"m_x": 3000.0, "m_y": 600.0})
    with pytest.raises(ConfigError, match=r"params\.r_inv"):
        resolve_pythia_params("svj", {"r_inv": 1.5})
    with pytest.raises(ConfigError, match="unknown process"):
        resolve_pythia_params("ttbar", None)
    assert set(PYTHIA_PARAMS) == {"qcd", "wprime", "svj", "yxh"}


def test_settings_redefine_the_resonances():
    s = pythia_settings("wprime", resolve_pythia_params("wprime", {"m_x": 400.0, "m_y": 80.0}))
    assert "35:m0 = 400" in s and "37:m0 = 80" in s and "34:oneChannel = 1 1.0 100 35 37" in s
    assert "35:oneChannel = 1 0.25 100 1 -1" in s  # two-prong X -> q qbar
    s3 = pythia_settings("yxh", resolve_pythia_params("yxh", {"x_prongs": 3}))
    assert "36:oneChannel = 1 1.0 100 2 1 1" in s3  # three-prong X -> u d d
    sv = pythia_settings("svj", resolve_pythia_params("svj", {"r_inv": 0.4, "m_dark": 10.0}))
    assert "4900111:oneChannel = 1 0.4 0 51 -51" in sv
    assert "4900113:addChannel = 1 0.12 91 5 -5" in sv  # (1 - r_inv) / 5 per flavour
    assert "HiddenValley:Ngauge = 2" in sv and "4900101:m0 = 5" in sv
    assert "Tune:pp = 21" in pythia_settings("qcd", resolve_pythia_params("qcd", {"tune": 21}))


def test_file_seeds_are_distinct_and_in_pythias_range():
    seeds = {file_seed(s, p, i) for s in (1, 2) for p in PYTHIA_PARAMS for i in range(20)}
    assert len(seeds) == 2 * 4 * 20
    assert all(1 <= s <= 900_000_000 for s in seeds)


# -------------------------------------------------------------------- with the generator

_MISSING = [m for m in ("pythia8mc", "fastjet") if importlib.util.find_spec(m) is None]
needs_pythia = pytest.mark.skipif(
    bool(_MISSING),
    reason=f'{" and ".join(_MISSING)} not installed: pip install "adcoffea[pythia]"',
)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from adcoffea.synthetic.pythia import generate_pythia

    out = tmp_path_factory.mktemp("pythia")
    qcd = generate_pythia("qcd", n_events=240, seed=21, out_dir=out, n_files=2, workers=2)
    from adcoffea.cli.generate import add_arguments, main

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--engine", "pythia", "--process", "wprime", "--events", "160",
                              "--seed", "22", "--out", str(out), "--param", "m_x=400"])  # fmt: skip
    assert main(args) == 0
    fileset = json.loads((out / "fileset.json").read_text())
    return {"out": out, "qcd": qcd, "fileset": fileset}


def _read(files) -> ak.Array:
    return uproot.concatenate([f"{f}:Events" for f in files])


@needs_pythia
def test_same_schema_as_the_fast_engine(made, tmp_path):
    from adcoffea.synthetic import generate

    fast = generate("qcd", n_events=20, seed=1, out_dir=tmp_path).files[0]
    t_fast = uproot.open(fast)["Events"]
    t_py = uproot.open(made["qcd"].files[0])["Events"]
    names = t_fast.keys()
    assert set(t_py.keys()) == set(names)
    for k in names:
        assert t_py[k].typename == t_fast[k].typename, k


@needs_pythia
def test_a_file_is_the_same_whatever_the_worker_count(made, tmp_path):
    qcd = made["qcd"]
    task = FileTask(str(tmp_path / "again.root"), "qcd",
                    tuple(sorted(qcd.params.items())), 21, 1, 120, 240)  # fmt: skip
    write_pythia_file(task)  # in this process (the sample used two worker processes)
    a, b = _read([qcd.files[1]]), _read([task.path])
    for k in ("event", "FatJet_pt", "FatJet_tau2", "FatJet_msoftdrop", "PFCand_pt", "MET_pt"):
        assert ak.all(ak.flatten(a[k], axis=None) == ak.flatten(b[k], axis=None)), k
    assert ak.to_numpy(a["event"])[0] == 121  # event numbers continue across files


@needs_pythia
def test_jets_are_their_constituents_and_substructure_is_physical(made):
    from adcoffea.constituents import jet_constituents

    a = _read(made["qcd"].files)
    events = ak.zip(
        {"FatJet": ak.zip({k[7:]: a[k] for k in a.fields if k.startswith("FatJet_")}),
         "PFCand": ak.zip({k[7:]: a[k] for k in a.fields if k.startswith("PFCand_")}),
         "FatJetPFCand": ak.zip({"jetIdx": a.FatJetPFCand_jetIdx,
                                 "pfCandIdx": a.FatJetPFCand_pfCandIdx})},
        depth_limit=1,
    )  # fmt: skip
    cons = jet_constituents(events)
    pt, eta, phi, m = (ak.flatten(cons[k], axis=None) for k in ("pt", "eta", "phi", "mass"))
    n = ak.to_numpy(ak.flatten(ak.num(cons, axis=2)))
    jid = np.repeat(np.arange(len(n)), n)
    from adcoffea.synthetic.jets import four_vector_sum

    jpt, _, _, jm = four_vector_sum(*(ak.to_numpy(v) for v in (pt, eta, phi, m)), jid, len(n))
    np.testing.assert_allclose(jpt, ak.to_numpy(ak.flatten(a.FatJet_pt)), rtol=1e-5)
    np.testing.assert_allclose(jm, ak.to_numpy(ak.flatten(a.FatJet_mass)), rtol=1e-3, atol=0.05)
    assert ak.all(a.FatJet_pt >= 170.0) and ak.all(a.nFatJet >= 1)
    t = [ak.to_numpy(ak.flatten(a[f"FatJet_tau{i}"])) for i in (1, 2, 3, 4)]
    assert (t[0] > 0).all() and (t[0] < 1.2).all()
    assert np.mean((t[1] <= t[0]) & (t[2] <= t[1]) & (t[3] <= t[2])) > 0.98
    msd, mass = (ak.to_numpy(ak.flatten(a[f"FatJet_{k}"])) for k in ("msoftdrop", "mass"))
    assert (msd <= mass * 1.0001 + 1e-3).all() and np.median(msd) < np.median(mass)
    # particle-level QCD: small MET (resolution only), median TeV-jet mass ~ 0.1-0.3 TeV
    assert np.median(ak.to_numpy(a.MET_pt)) < 60.0
    assert 80.0 < np.median(ak.to_numpy(a.FatJet_mass[:, 0])) < 300.0


@needs_pythia
def test_the_dijet_processor_runs_unchanged(made):
    from adcoffea.execution import run_processor
    from adcoffea.processors import DijetProcessor

    fileset = {name: list(entry["files"]) for name, entry in made["fileset"].items()}
    fileset["qcd"] = list(made["qcd"].files)
    out = run_processor(fileset, DijetProcessor(collect_columns=True, collect_constituents=True),
                        executor="iterative", chunksize=1000, status=False)  # fmt: skip
    assert out.report.failures == ()
    cols = out.output["columns"]
    assert out.output["cutflow"]["qcd"]["all"] == 240
    qcd, sig = ({k: v.value for k, v in cols[d].items()} for d in ("qcd", "wprime"))
    assert len(qcd["mjj"]) > 40 and len(sig["mjj"]) > 40
    assert (qcd["truth_label"] == 0).all() and (sig["truth_label"] == 1).all()
    assert qcd["constituents"].shape[1:] == (2, 20, 4) and qcd["constituents_mask"][:, :, 0].all()
    for c in (qcd, sig):
        assert all(np.isfinite(c[k]).all() for k in ("mjj", "mj_max", "tau21_min", "tau21_max"))
    # the W' -> X(400) Y(100) jets: the heavier jet sits at m_X, two-prong (low tau21)
    assert 330.0 < np.median(sig["mj_max"]) < 430.0
    assert np.median(sig["tau21_max"]) < np.median(qcd["tau21_max"]) - 0.1
    # the W' mass peaks near 3.5 TeV (final-state radiation outside R = 1 pulls it down)
    assert 3000.0 < np.median(sig["mjj"]) < 3600.0
