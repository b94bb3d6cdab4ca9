"""The synthetic LHCO-like NanoAOD generator end to end: schema, constituent closure, physics."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from adcoffea.errors import ConfigError
from adcoffea.synthetic import GeneratedSample, generate, write_fileset

EXPECTED_TYPES = {
    "run": "uint32",
    "luminosityBlock": "uint32",
    "event": "uint64",
    "genWeight": "float32",
    "nFatJet": "int32",
    "nPFCand": "int32",
    "nFatJetPFCand": "int32",
    "PFMET_pt": "float32",
    "PFMET_phi": "float32",
    "MET_pt": "float32",
    "MET_phi": "float32",
    "Truth_label": "int32",
    **{
        f"FatJet_{k}": "float32"
        for k in ("pt", "eta", "phi", "mass", "msoftdrop", "tau1", "tau2", "tau3", "tau4")
    },
    "FatJet_nConstituents": "uint8",
    **{f"PFCand_{k}": "float32" for k in ("pt", "eta", "phi", "mass", "d0", "dz")},
    "PFCand_pdgId": "int32",
    "PFCand_charge": "int32",
    "FatJetPFCand_jetIdx": "int32",
    "FatJetPFCand_pfCandIdx": "int32",
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, tuple[GeneratedSample, ak.Array]]:
    out = tmp_path_factory.mktemp("synthetic")
    made = {
        "qcd": generate("qcd", n_events=5000, seed=11, out_dir=out, n_files=2),
        "wprime": generate("wprime", n_events=1500, seed=12, out_dir=out),
        "svj": generate("svj", n_events=1000, seed=13, out_dir=out),
        "yxh": generate("yxh", n_events=600, seed=14, out_dir=out),
        "yxh3": generate(
            "yxh", n_events=600, seed=15, out_dir=out, name="yxh3", params={"x_prongs": 3}
        ),
    }
    return {k: (s, uproot.concatenate([f"{f}:Events" for f in s.files])) for k, s in made.items()}


def _leading_two(a: ak.Array, key: str) -> np.ndarray:
    return ak.to_numpy(a[f"FatJet_{key}"][:, :2]).astype(np.float64)


def _mjj(a: ak.Array) -> np.ndarray:
    pt, eta, phi, m = (_leading_two(a, k) for k in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.sqrt(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2)


def _tau21(a: ak.Array) -> np.ndarray:
    return _leading_two(a, "tau2") / (_leading_two(a, "tau1") + 1e-5)


def test_schema_types_and_counters(samples):
    sample, a = samples["qcd"]
    assert len(sample.files) == 2 and sample.n_events == 5000 and len(a) == 5000
    tree = uproot.open(sample.files[0])["Events"]
    for name, dtype in EXPECTED_TYPES.items():
        assert name in tree, name
        interp = tree[name].interpretation
        got = interp.content.from_dtype if hasattr(interp, "content") else interp.from_dtype
        assert np.dtype(got).newbyteorder("=") == np.dtype(dtype), name
    njet = ak.to_numpy(a.nFatJet)
    ncand = ak.to_numpy(a.nPFCand)
    assert np.array_equal(ak.to_numpy(ak.num(a.FatJet_pt)), njet)
    assert np.array_equal(ak.to_numpy(ak.num(a.PFCand_pt)), ncand)
    assert np.array_equal(ak.to_numpy(a.nFatJetPFCand), ncand)
    assert np.array_equal(ak.to_numpy(ak.sum(a.FatJet_nConstituents, axis=1)), ncand)
    assert (njet >= 2).all() and (njet <= 3).all()
    # indices in range; every PFCand belongs to exactly one jet; per-jet counts match
    jet_idx, cand_idx = a.FatJetPFCand_jetIdx, a.FatJetPFCand_pfCandIdx
    assert ak.all(jet_idx >= 0) and ak.all(jet_idx < a.nFatJet)
    assert ak.all(ak.sort(cand_idx, axis=1) == ak.local_index(cand_idx))
    flat_jet = ak.to_numpy(ak.flatten(jet_idx + 3 * ak.local_index(a.nFatJet, axis=0)))
    per_jet = np.bincount(flat_jet, minlength=3 * len(a)).reshape(-1, 3)
    padded = ak.to_numpy(ak.fill_none(ak.pad_none(a.FatJet_nConstituents, 3, axis=1), 0))
    assert np.array_equal(per_jet, padded)
    # event numbers unique across the two files
    assert len(np.unique(ak.to_numpy(a.event))) == len(a)


def test_preselection_and_ordering(samples):
    for key, (_, a) in samples.items():
        pt = a.FatJet_pt
        assert ak.all(pt[:, 1:] <= pt[:, :-1]), key
        assert ak.min(pt[:, 0]) > 1200.0, key
        assert ak.max(abs(a.FatJet_eta[:, 0])) < 2.5, key
        assert ak.all(a.Truth_label == (0 if key == "qcd" else 1)), key


def test_jets_are_sums_of_their_constituents(samples):
    for key, (_, a) in samples.items():
        pt = ak.to_numpy(ak.flatten(a.PFCand_pt)).astype(np.float64)
        eta = ak.to_numpy(ak.flatten(a.PFCand_eta)).astype(np.float64)
        phi = ak.to_numpy(ak.flatten(a.PFCand_phi)).astype(np.float64)
        m = ak.to_numpy(ak.flatten(a.PFCand_mass)).astype(np.float64)
        # global jet index of each candidate
        first_jet = np.concatenate([[0], np.cumsum(ak.to_numpy(a.nFatJet))[:-1]])
        jid = ak.to_numpy(ak.flatten(a.FatJetPFCand_jetIdx + first_jet))
        order = ak.to_numpy(
            ak.flatten(
                a.FatJetPFCand_pfCandIdx
                + np.concatenate([[0], np.cumsum(ak.to_numpy(a.nPFCand))[:-1]])
            )
        )
        pt, eta, phi, m = pt[order], eta[order], phi[order], m[order]
        nj = int(ak.sum(a.nFatJet))
        px = np.bincount(jid, pt * np.cos(phi), nj)
        py = np.bincount(jid, pt * np.sin(phi), nj)
        pz = np.bincount(jid, pt * np.sinh(eta), nj)
        e = np.bincount(jid, np.sqrt((pt * np.cosh(eta)) ** 2 + m**2), nj)
        mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))
        jm = ak.to_numpy(ak.flatten(a.FatJet_mass)).astype(np.float64)
        jpt = ak.to_numpy(ak.flatten(a.FatJet_pt)).astype(np.float64)
        np.testing.assert_allclose(mass, jm, rtol=1e-3, err_msg=key)
        np.testing.assert_allclose(np.hypot(px, py), jpt, rtol=1e-5, err_msg=key)
        assert (
            np.bincount(jid, minlength=nj) == ak.to_numpy(ak.flatten(a.FatJet_nConstituents))
        ).all()
        # groomed mass never exceeds the ungroomed one; the tau hierarchy holds for almost all jets
        assert ak.all(a.FatJet_msoftdrop <= a.FatJet_mass * (1 + 1e-4))
        assert ak.mean(a.FatJet_tau2 <= a.FatJet_tau1 * 1.0001) > 0.99
        assert ak.mean(a.FatJet_tau3 <= a.FatJet_tau2 * 1.0001) > 0.97


def test_constituent_species_are_consistent(samples):
    _, a = samples["qcd"]
    pdg = ak.to_numpy(ak.flatten(a.PFCand_pdgId))
    charge = ak.to_numpy(ak.flatten(a.PFCand_charge))
    mass = ak.to_numpy(ak.flatten(a.PFCand_mass))
    d0 = ak.to_numpy(ak.flatten(a.PFCand_d0))
    assert set(np.unique(np.abs(pdg))) == {22, 130, 211}
    assert np.array_equal(charge, np.sign(pdg) * (np.abs(pdg) == 211))
    np.testing.assert_allclose(mass[np.abs(pdg) == 211], 0.13957, rtol=1e-5)
    assert (
        (mass[pdg == 22] == 0).all()
        and (d0[charge == 0] == 0).all()
        and (d0[charge != 0] != 0).all()
    )
    ncons = ak.to_numpy(ak.flatten(a.FatJet_nConstituents[:, :2]))
    assert 20 <= ncons.mean() <= 60


def test_qcd_signal_region_features_match_reference(samples):
    _, a = samples["qcd"]
    mjj = _mjj(a) / 1000
    sr = (mjj > 3.3) & (mjj < 3.7)
    assert 0.09 < sr.mean() < 0.15  # reference 12.1 %
    m = _leading_two(a, "mass")[sr] / 1000
    t = _tau21(a)[sr]
    light = np.argmin(m, axis=1)
    r = np.arange(len(m))
    feats = {
        "mj_min": (m[r, light], 0.136, 0.095),
        "dm": (m[r, 1 - light] - m[r, light], 0.172, 0.154),
        "tau21_light": (t[r, light], 0.579, 0.176),
        "tau21_heavy": (t[r, 1 - light], 0.480, 0.191),
    }
    for key, (x, mean, std) in feats.items():
        assert abs(x.mean() / mean - 1) < 0.15, (key, x.mean())
        assert abs(x.std() / std - 1) < 0.2, (key, x.std())
    # the reference anti-correlation of mass and tau21
    assert np.corrcoef(m[r, light], t[r, light])[0, 1] < -0.1


def test_qcd_is_broader_in_tau21_than_two_prong_signals(samples):
    qcd = _tau21(samples["qcd"][1]).mean()
    for key in ("wprime", "yxh"):
        assert qcd > _tau21(samples[key][1]).mean() + 0.15, key


def test_wprime_resonance_and_masses(samples, tmp_path):
    _, a = samples["wprime"]
    mjj = _mjj(a)
    assert abs(np.median(mjj) / 3500 - 1) < 0.02
    assert 0.70 < ((mjj > 3300) & (mjj < 3700)).mean() < 0.85  # reference 77 %
    m = np.sort(_leading_two(a, "mass"), axis=1)
    assert abs(np.median(m[:, 1]) / 500 - 1) < 0.05 and abs(np.median(m[:, 0]) / 100 - 1) < 0.1
    # masses are configurable
    s = generate(
        "wprime",
        n_events=300,
        seed=3,
        out_dir=tmp_path,
        params={"m_wprime": 2500, "m_x": 300, "m_y": 200},
    )
    b = uproot.concatenate([f"{f}:Events" for f in s.files])
    assert abs(np.median(_mjj(b)) / 2500 - 1) < 0.03
    mb = np.sort(_leading_two(b, "mass"), axis=1)
    assert abs(np.median(mb[:, 1]) / 300 - 1) < 0.08 and abs(np.median(mb[:, 0]) / 200 - 1) < 0.1
    assert ak.all(b.Truth_mParent == 2500)


def test_svj_met_is_real_and_aligned(samples):
    _, a = samples["svj"]
    _, q = samples["qcd"]
    met = ak.to_numpy(a.PFMET_pt).astype(np.float64)
    mphi = ak.to_numpy(a.PFMET_phi).astype(np.float64)
    assert np.array_equal(met, ak.to_numpy(a.MET_pt))
    assert met.mean() > 4 * ak.mean(q.PFMET_pt)
    assert 20 < ak.mean(q.PFMET_pt) < 45  # QCD: resolution only
    pt, phi = _leading_two(a, "pt"), _leading_two(a, "phi")
    dphi = np.abs((phi - mphi[:, None] + np.pi) % (2 * np.pi) - np.pi).min(axis=1)
    assert (dphi < 0.4).mean() > 0.7
    # transverse mass of dijet + MET: below M_Z' but well above the visible mjj
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    mjj = _mjj(a)
    et = np.sqrt(mjj**2 + px**2 + py**2)
    mt = np.sqrt((et + met) ** 2 - (px + met * np.cos(mphi)) ** 2 - (py + met * np.sin(mphi)) ** 2)
    hist, edges = np.histogram(mt, bins=np.arange(1500, 3600, 100))
    peak = edges[hist.argmax()] + 50
    assert 2000 < peak < 3000 and np.median(mt) > np.median(mjj)


def test_yxh_masses_and_prongs(samples):
    for key in ("yxh", "yxh3"):
        _, a = samples[key]
        assert abs(np.median(_mjj(a)) / 3000 - 1) < 0.02
        m = np.sort(_leading_two(a, "mass"), axis=1)
        assert abs(np.median(m[:, 1]) / 300 - 1) < 0.08, key
        assert abs(np.median(m[:, 0]) / 125 - 1) < 0.1, key

    def x_tau32(a):
        heavy = np.argmax(_leading_two(a, "mass"), axis=1)
        r = np.arange(len(heavy))
        return (_leading_two(a, "tau3") / _leading_two(a, "tau2"))[r, heavy]

    assert np.median(x_tau32(samples["yxh3"][1])) < np.median(x_tau32(samples["yxh"][1])) - 0.2


@pytest.mark.parametrize("process", ["svj", "qcd"])
def test_same_seed_same_arrays(tmp_path, process):
    a = generate(process, n_events=200, seed=5, out_dir=tmp_path / "a", n_files=2)
    # files written by two processes hold the same events
    workers = 2 if process == "qcd" else 1
    b = generate(process, n_events=200, seed=5, out_dir=tmp_path / "b", n_files=2, workers=workers)
    c = generate(process, n_events=200, seed=6, out_dir=tmp_path / "c", n_files=2)
    for fa, fb, fc in zip(a.files, b.files, c.files, strict=True):
        ta, tb, tc = (uproot.open(f)["Events"] for f in (fa, fb, fc))
        for key in ta.keys():  # noqa: SIM118 (uproot TTree, not a dict)
            assert np.array_equal(
                ak.to_numpy(ak.flatten(ta[key].array(), axis=None)),
                ak.to_numpy(ak.flatten(tb[key].array(), axis=None)),
            ), key
        assert not np.array_equal(
            ak.to_numpy(ta["PFMET_pt"].array()), ak.to_numpy(tc["PFMET_pt"].array())
        )
    assert not list(tmp_path.glob("*/.*tmp*"))  # atomic writing leaves no temporaries


def test_coffea_nanoevents_reads_the_files(samples):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    NanoAODSchema.warn_missing_crossrefs = False
    sample, a = samples["wprime"]
    events = NanoEventsFactory.from_root(
        {sample.files[0]: "Events"}, schemaclass=NanoAODSchema, mode="virtual"
    ).events()
    assert ak.all(events.FatJet.pt == a.FatJet_pt)
    assert ak.all(events.PFCand.pt == a.PFCand_pt)
    assert ak.all(events.FatJetPFCand.jetIdx == a.FatJetPFCand_jetIdx)
    assert ak.all(events.PFMET.pt == a.PFMET_pt)
    assert ak.all(events.Truth.label == 1)


def test_bad_parameters_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="m_zprime"):
        generate("wprime", n_events=10, seed=1, out_dir=tmp_path, params={"m_zprime": 3000})
    with pytest.raises(ConfigError, match="x_prongs"):
        generate("yxh", n_events=10, seed=1, out_dir=tmp_path, params={"x_prongs": 4})
    with pytest.raises(ConfigError, match="r_inv"):
        generate("svj", n_events=10, seed=1, out_dir=tmp_path, params={"r_inv": 1.2})
    with pytest.raises(ConfigError, match="process"):
        generate("ttbar", n_events=10, seed=1, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_fileset_and_cli(tmp_path, capsys):
    from adcoffea.cli import main

    rc = main(
        [
            "generate",
            "--process",
            "wprime",
            "--events",
            "50",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
            "--mass",
            "3000",
            "--param",
            "m_x=400",
        ]
    )
    assert rc == 0
    rc = main(
        [
            "generate",
            "--process",
            "qcd",
            "--events",
            "50",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
            "--files",
            "2",
        ]
    )
    assert rc == 0
    fileset = json.loads((tmp_path / "fileset.json").read_text())
    assert set(fileset) == {"wprime", "qcd"}
    assert fileset["wprime"]["metadata"]["is_signal"] is True
    assert fileset["wprime"]["metadata"]["params"] == {
        "m_wprime": 3000.0,
        "m_x": 400.0,
        "m_y": 100.0,
    }
    assert fileset["qcd"]["metadata"] == {
        "process": "qcd",
        "is_signal": False,
        "n_events": 50,
        "seed": 2,
        "params": {},
    }
    assert (
        all(v == "Events" for v in fileset["qcd"]["files"].values())
        and len(fileset["qcd"]["files"]) == 2
    )
    for path in fileset["qcd"]["files"]:
        assert uproot.open(path)["Events"].num_entries == 25
    # bad --param is a clean error (exit 2), naming the key
    rc = main(
        [
            "generate",
            "--process",
            "svj",
            "--events",
            "5",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
            "--param",
            "m_x=3",
        ]
    )
    assert rc == 2 and "m_x" in capsys.readouterr().err
    s = GeneratedSample("x", "qcd", ("/a.root",), 5, 1, {})
    assert write_fileset([s], tmp_path / "fs.json")["x"]["metadata"]["is_signal"] is False
    json.dumps(s.to_dict())
