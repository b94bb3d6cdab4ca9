"""Pythia 8 + FastJet engine: real parton showers written in the fast generator's NanoAOD schema.

The fast generator (:mod:`adcoffea.synthetic`) draws jets whose high-level features follow the
LHC Olympics fits; its constituents are blobs tuned to those features. This engine showers and
hadronises with Pythia 8 (``pythia8mc``), clusters with FastJet (Scikit-HEP's ``fastjet``) and
writes the same branches (``FatJet_*``, ``PFCand_*``, ``FatJetPFCand_*``, ``PFMET``/``MET``,
``run``/``luminosityBlock``/``event``, ``genWeight``, ``Truth_*``), so the processors and the
models run on it unchanged.

Processes (parameters in GeV; :data:`PYTHIA_PARAMS`):

- ``qcd``: ``HardQCD:all`` with ``PhaseSpace:pTHatMin = pthat_min`` (1200);
- ``wprime``: W' (34) -> X Y with X the neutral H0 (35) at ``m_x`` and Y the charged H+ (37) at
  ``m_y``, both redefined; X -> q qbar (``x_prongs`` 2) or X -> u d d through a colour junction
  (``x_prongs`` 3, a three-prong jet); Y -> u dbar / c sbar;
- ``yxh``: g g -> Y (the H0, 35) -> X (the A0, 36) H (25), X as above, H -> b bbar;
- ``svj``: f fbar -> Z' (the Hidden Valley Zv) -> dark quarks, showered (``HiddenValley:FSR``)
  and hadronised (``HiddenValley:fragment``) in an SU(2) dark sector with two flavours (CMS/ATLAS
  SVJ choices: ``Ngauge`` 2, ``nFlav`` 2, ``spinFv`` 0, ``probVector`` 0.75, dark quark at
  ``m_dark``/2, dark mesons at ``m_dark``). Every dark meson decays invisibly (to the stable 51
  or 53) with branching ratio ``r_inv`` and to a SM q qbar pair (``meMode`` 91, hadronised)
  otherwise, so ``r_inv`` is exactly the invisible fraction of dark hadrons.

Resonances get a width of 1 % of their mass, forced (``doForceWidth``), and a Breit-Wigner
window of +-10 %. Every process also takes ``tune`` (``Tune:pp``: 14 = Monash, 21 = ATLAS A14),
``fsr_scale`` (``TimeShower:renormMultFac``), ``mpi`` (1 = multiparton interactions on) and
``jet_r`` (anti-kT radius, 1.0 or 0.8): two tunes or shower settings are the "MC" and "data"
of :mod:`adcoffea.models.mc_assisted`.

From Pythia's event record to the branches, all columnar (no per-particle Python):

1. ``Pythia.nextBatch`` returns a whole chunk of events as an awkward array;
2. visible final-state particles (no neutrinos, no dark-sector or DM particles) with
   ``|eta| < ETA_MAX`` are kept; photons and neutral hadrons get a calorimeter-like energy
   smearing (:data:`ECAL`, :data:`HCAL`), charged particles are kept as measured tracks;
3. MET is minus the vector sum of the visible particles plus a soft-term resolution of
   ``MET_NOISE`` per component (as in the fast generator);
4. FastJet anti-kT (R = ``jet_r``) over each event; jets above ``JET_PT_MIN`` are kept with their
   constituents (pT-ordered), ``FatJet_{pt,eta,phi,mass}`` is the sum of the float32 stored
   constituents;
5. tau1..tau4 (beta = 1, R0 = ``jet_r``) from winner-take-all exclusive-kT axes (FastJet's
   exclusive jets of a kT reclustering, ``WTA_pt_scheme``); ``msoftdrop`` from FastJet's
   soft-drop (beta = 0, z_cut = 0.1, R0 = ``jet_r``) on a Cambridge/Aachen reclustering.

Reproducible: a file's Pythia seed (``Random:seed``) and its smearing stream are derived from
``(seed, process, file index)``, so a file's content depends on these only, and the same
sample comes out whatever the number of worker processes (one Pythia per process).

Example:
    >>> from adcoffea.synthetic.pythia import pythia_settings, resolve_pythia_params
    >>> p = resolve_pythia_params("wprime", {"m_x": 400.0})
    >>> [s for s in pythia_settings("wprime", p) if s.startswith("35:m0")]
    ['35:m0 = 400']
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.synthetic.processes import merge_params

log = logging.getLogger(__name__)

SQRT_S = 13000.0
ETA_MAX = 4.7  # calorimeter acceptance of the particles that enter jets and MET
JET_PT_MIN = 170.0  # NanoAOD FatJet threshold (GeV)
MET_NOISE = 25.0  # GeV per transverse component (soft term, as the fast generator)
#: photon energy resolution: stochastic, constant term (sigma_E / E = a / sqrt(E) (+) b)
ECAL = (0.10, 0.01)
#: neutral-hadron energy resolution
HCAL = (1.00, 0.05)
#: events Pythia generates per call (one awkward batch); files are written chunk by chunk
CHUNK_EVENTS = 500
WIDTH_FRACTION = 0.01
WINDOW_FRACTION = 0.10

_COMMON = {"tune": 14.0, "fsr_scale": 1.0, "mpi": 1.0, "jet_r": 1.0}
#: default parameters per process (GeV); every process also takes tune, fsr_scale, mpi, jet_r
PYTHIA_PARAMS: dict[str, dict[str, float]] = {
    "qcd": {"pthat_min": 1200.0, **_COMMON},
    "wprime": {"m_wprime": 3500.0, "m_x": 500.0, "m_y": 100.0, "x_prongs": 2.0, **_COMMON},
    "svj": {"m_zprime": 3000.0, "r_inv": 0.3, "m_dark": 20.0, **_COMMON},
    "yxh": {"m_y": 3000.0, "m_x": 300.0, "x_prongs": 2.0, **_COMMON},
}
#: PDG id of the produced resonance whose mass is ``Truth_mParent``
PARENT_ID = {"wprime": 34, "svj": 4900023, "yxh": 35}
PROCESS_CODE = {"qcd": 0, "wprime": 1, "svj": 2, "yxh": 3}
_ENGINE_CODE = 8  # keeps the Pythia streams apart from the fast generator's

_LIGHT = (1, 2, 3, 4)


def resolve_pythia_params(process: str, params: dict[str, float] | None) -> dict[str, float]:
    """Defaults merged with ``params``; raises ConfigError naming a bad key or value."""
    out = merge_params(process, PYTHIA_PARAMS, params, engine="pythia")
    for key, value in out.items():
        if (key.startswith("m_") or key == "pthat_min") and value <= 0:
            raise ConfigError(f"params.{key}: must be positive, got {value}")
    if out["jet_r"] not in (0.8, 1.0):
        raise ConfigError(f"params.jet_r: anti-kT radius must be 0.8 or 1.0, got {out['jet_r']}")
    if out["mpi"] not in (0.0, 1.0):
        raise ConfigError(f"params.mpi: must be 0 (off) or 1 (on), got {out['mpi']}")
    if not 0.25 <= out["fsr_scale"] <= 4.0:
        raise ConfigError(f"params.fsr_scale: must be in [0.25, 4], got {out['fsr_scale']}")
    if out["tune"] != int(out["tune"]) or not 1 <= out["tune"] <= 32:
        raise ConfigError(f"params.tune: a Pythia Tune:pp number (1-32), got {out['tune']}")
    if "x_prongs" in out and out["x_prongs"] not in (2.0, 3.0):
        raise ConfigError(f"params.x_prongs: must be 2 or 3, got {out['x_prongs']}")
    if process == "wprime" and out["m_x"] + out["m_y"] >= out["m_wprime"] * (1 - WINDOW_FRACTION):
        raise ConfigError("params.m_wprime: must exceed m_x + m_y (by the 10 % mass window)")
    if process == "yxh" and out["m_x"] + 125.0 >= out["m_y"] * (1 - WINDOW_FRACTION):
        raise ConfigError("params.m_y: must exceed m_x + 125 (by the 10 % mass window)")
    if process == "svj":
        if not 0.0 <= out["r_inv"] <= 1.0:
            raise ConfigError(f"params.r_inv: must be in [0, 1], got {out['r_inv']}")
        if not 1.0 <= out["m_dark"] <= 0.05 * out["m_zprime"]:
            raise ConfigError(
                f"params.m_dark: must be in [1, m_zprime / 20] GeV, got {out['m_dark']}"
            )
    return out


def _resonance(pid: int, mass: float) -> list[str]:
    return [
        f"{pid}:m0 = {mass:g}",
        f"{pid}:mWidth = {WIDTH_FRACTION * mass:g}",
        f"{pid}:doForceWidth = on",
        f"{pid}:mMin = {(1 - WINDOW_FRACTION) * mass:g}",
        f"{pid}:mMax = {(1 + WINDOW_FRACTION) * mass:g}",
    ]


def _x_decay(pid: int, prongs: float) -> list[str]:
    if prongs == 3.0:
        # baryon-number violating X -> u d d: three colour triplets joined by a junction
        return [f"{pid}:oneChannel = 1 1.0 100 2 1 1"]
    br = 1.0 / len(_LIGHT)
    return [f"{pid}:oneChannel = 1 {br:g} 100 {_LIGHT[0]} -{_LIGHT[0]}"] + [
        f"{pid}:addChannel = 1 {br:g} 100 {q} -{q}" for q in _LIGHT[1:]
    ]


def pythia_settings(process: str, params: dict[str, float]) -> list[str]:
    """The Pythia settings strings (``readString``) of ``process`` without the seed.

    ``params`` must be resolved (:func:`resolve_pythia_params`).
    """
    p = params
    s = [
        f"Beams:eCM = {SQRT_S:g}",
        "Print:quiet = on",
        f"Tune:pp = {int(p['tune'])}",
        f"TimeShower:renormMultFac = {p['fsr_scale']:g}",
        f"PartonLevel:MPI = {'on' if p['mpi'] else 'off'}",
        # particles with c tau > 10 mm are stable, as in the experiments' generator records
        "ParticleDecays:limitTau0 = on",
        "ParticleDecays:tau0Max = 10",
    ]
    if process == "qcd":
        s += ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {p['pthat_min']:g}"]
    elif process == "wprime":
        s += ["NewGaugeBoson:ffbar2Wprime = on", "Higgs:useBSM = on"]
        s += [*_resonance(34, p["m_wprime"]), "34:oneChannel = 1 1.0 100 35 37"]
        s += _resonance(35, p["m_x"]) + _x_decay(35, p["x_prongs"])
        s += _resonance(37, p["m_y"])
        s += ["37:oneChannel = 1 0.5 100 2 -1", "37:addChannel = 1 0.5 100 4 -3"]
    elif process == "yxh":
        s += ["Higgs:useBSM = on", "HiggsBSM:gg2H2 = on"]
        # the g g channel stays in the table (switched off): it sets the production rate
        s += _resonance(35, p["m_y"])
        s += ["35:oneChannel = 1 1.0 100 36 25", "35:addChannel = 0 0.0 0 21 21"]
        s += _resonance(36, p["m_x"]) + _x_decay(36, p["x_prongs"])
        s += ["25:onMode = off", "25:onIfMatch = 5 -5"]
    elif process == "svj":
        m_dark, r_inv = p["m_dark"], p["r_inv"]
        s += ["HiddenValley:ffbar2Zv = on"]
        # production needs the f fbar channels in the table; decays only to dark quarks
        s += [*_resonance(4900023, p["m_zprime"]), "4900023:onMode = off"]
        s += ["4900023:onIfAny = 4900101"]
        s += [
            "HiddenValley:Ngauge = 2",
            "HiddenValley:nFlav = 2",
            "HiddenValley:spinFv = 0",
            "HiddenValley:FSR = on",
            "HiddenValley:fragment = on",
            "HiddenValley:alphaOrder = 1",
            f"HiddenValley:Lambda = {0.5 * m_dark:g}",
            f"HiddenValley:pTminFSR = {0.55 * m_dark:g}",
            "HiddenValley:probVector = 0.75",
            f"4900101:m0 = {0.5 * m_dark:g}",
            "51:m0 = 0.0",
            "51:isResonance = false",
            "53:m0 = 0.0",
            "53:isResonance = false",
        ]
        for pid, dm in ((4900111, 51), (4900211, 51), (4900113, 53), (4900213, 53)):
            s.append(f"{pid}:m0 = {m_dark:g}")
            s.append(f"{pid}:oneChannel = 1 {r_inv:g} 0 {dm} -{dm}")
            s += [f"{pid}:addChannel = 1 {(1 - r_inv) / 5:g} 91 {q} -{q}" for q in range(1, 6)]
    return s


def file_seed(seed: int, process: str, index: int) -> int:
    """Pythia's ``Random:seed`` (1 .. 900 000 000) of file ``index`` of a sample."""
    ss = np.random.SeedSequence([int(seed), PROCESS_CODE[process], int(index), _ENGINE_CODE])
    return int(ss.generate_state(1, dtype=np.uint64)[0] % 900_000_000) + 1


# --------------------------------------------------------------------------------------------
# event record -> particles


def _invisible(pid: np.ndarray) -> np.ndarray:
    a = np.abs(pid)
    return (
        (a == 12)
        | (a == 14)
        | (a == 16)
        | (a == 51)
        | (a == 52)
        | (a == 53)
        | ((a >= 4_900_000) & (a < 5_000_000))
    )


def _charges(pid: np.ndarray, pdata: Any) -> np.ndarray:
    """Electric charge per particle from Pythia's particle table (one look-up per species)."""
    ids, inverse = np.unique(pid, return_inverse=True)
    table = np.array([pdata.charge(int(i)) for i in ids], dtype=np.float64)  # ~50 species
    return np.rint(table[inverse]).astype(np.int32)


def _smear(e: np.ndarray, res: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    sigma = np.hypot(res[0] / np.sqrt(np.maximum(e, 1e-3)), res[1])
    return np.maximum(e * (1.0 + sigma * rng.standard_normal(e.shape)), 0.0)


def visible_particles(batch: Any, pdata: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Flat arrays of the visible final-state particles of a ``nextBatch`` chunk.

    Returns px, py, pz, e (smeared), mass, pdgId, charge, d0, dz (cm) and ``counts`` per event,
    plus the invisible-free MET inputs.
    """
    import awkward as ak

    prt = batch.prt
    n_ev = len(prt)
    counts_all = ak.to_numpy(ak.num(prt, axis=1))
    flat = ak.flatten(prt, axis=1)
    status = ak.to_numpy(flat.status)
    pid = ak.to_numpy(flat.id)
    px, py, pz, e = (ak.to_numpy(flat.p[k]).astype(np.float64) for k in ("px", "py", "pz", "e"))
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    keep = (status > 0) & ~_invisible(pid) & (pt > 0) & (np.abs(eta) < ETA_MAX)
    ev = np.repeat(np.arange(n_ev), counts_all)[keep]
    pid, px, py, pz, e = pid[keep], px[keep], py[keep], pz[keep], e[keep]
    mass = ak.to_numpy(flat.m)[keep].astype(np.float64)
    vprod = flat.vProd
    vx, vy, vz = (
        ak.to_numpy(ak.fill_none(vprod[k], 0.0))[keep].astype(np.float64)
        for k in ("px", "py", "pz")
    )
    charge = _charges(pid, pdata)
    # calorimeter response of photons and neutral hadrons (direction kept, |p| rescaled)
    photon = pid == 22
    neutral_had = (charge == 0) & ~photon
    e_new = e.copy()
    e_new[photon] = _smear(e[photon], ECAL, rng)
    e_new[neutral_had] = _smear(e[neutral_had], HCAL, rng)
    p_old = np.sqrt(px * px + py * py + pz * pz)
    p_new = np.sqrt(np.maximum(e_new * e_new - mass * mass, 0.0))
    scale = np.divide(p_new, p_old, out=np.zeros_like(p_old), where=p_old > 0)
    px, py, pz = px * scale, py * scale, pz * scale
    e = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    # straight-line impact parameters of charged tracks from the production vertex (mm -> cm)
    ptn = np.maximum(np.hypot(px, py), 1e-9)
    d0 = np.where(charge != 0, (vx * py - vy * px) / ptn, 0.0) * 0.1
    dz = np.where(charge != 0, vz - (vx * px + vy * py) / ptn * pz / ptn, 0.0) * 0.1
    counts = np.bincount(ev, minlength=n_ev)
    return {
        "px": px, "py": py, "pz": pz, "e": e, "mass": mass, "pdgId": pid.astype(np.int32),
        "charge": charge, "d0": d0, "dz": dz, "counts": counts, "event": ev,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# jets


def _ptetaphi(px, py, pz):
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    return pt, eta, np.arctan2(py, px)


def _jagged_p4(px, py, pz, e, counts):
    import awkward as ak

    rec = ak.zip({"px": px, "py": py, "pz": pz, "E": e})
    return ak.unflatten(rec, counts)


def cluster_jets(parts: dict[str, np.ndarray], *, radius: float) -> dict[str, np.ndarray]:
    """Anti-kT jets (pT > ``JET_PT_MIN``) of every event; constituents as flat indices.

    Returns ``n_jets`` per event, ``n_const`` per jet (events, then jets in FastJet's pT
    order) and ``index`` (into the flat particle arrays) per constituent, ordered by jet.
    """
    import awkward as ak
    import fastjet

    counts = parts["counts"]
    p4 = _jagged_p4(parts["px"], parts["py"], parts["pz"], parts["e"], counts)
    cs = fastjet.ClusterSequence(p4, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    idx = cs.constituent_index(min_pt=JET_PT_MIN)
    n_jets = ak.to_numpy(ak.num(idx, axis=1)).astype(np.int64)
    n_const = ak.to_numpy(ak.flatten(ak.num(idx, axis=2))).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    local = ak.to_numpy(ak.flatten(idx, axis=None)).astype(np.int64)
    per_jet_offset = np.repeat(offsets, n_jets)
    index = local + np.repeat(per_jet_offset, n_const)
    return {"n_jets": n_jets, "n_const": n_const, "index": index}


def _axes_eta_phi(axes) -> tuple[np.ndarray, np.ndarray]:
    import awkward as ak

    px, py, pz = (ak.to_numpy(ak.flatten(axes[k])).astype(np.float64) for k in ("px", "py", "pz"))
    _, eta, phi = _ptetaphi(px, py, pz)
    return eta, phi


def substructure(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    p4: dict[str, np.ndarray],
    n_const: np.ndarray,
    *,
    radius: float,
) -> dict[str, np.ndarray]:
    """tau1..tau4 (WTA exclusive-kT axes, beta = 1, R0 = ``radius``) and the soft-drop mass.

    ``pt, eta, phi`` and ``p4`` (px, py, pz, e) are flat per constituent, grouped by jet with
    ``n_const`` constituents per jet. One kT and one C/A reclustering per jet (FastJet, run over
    all jets at once); tau_N = sum_i pT_i min_k dR(i, axis_k) / (R0 sum_i pT_i).
    """
    import awkward as ak
    import fastjet

    n_jets = len(n_const)
    jet_id = np.repeat(np.arange(n_jets), n_const)
    total = np.bincount(jet_id, weights=pt, minlength=n_jets)
    out: dict[str, np.ndarray] = {}
    jets = _jagged_p4(p4["px"], p4["py"], p4["pz"], p4["e"], n_const)
    with warnings.catch_warnings():
        # fastjet warns for any recombination scheme but E's; WTA kT axes are intended
        warnings.simplefilter("ignore", UserWarning)
        kt = fastjet.ClusterSequence(
            jets, fastjet.JetDefinition(fastjet.kt_algorithm, 10.0, fastjet.WTA_pt_scheme)
        )
        for n_ax in (1, 2, 3, 4):
            ok = n_const >= n_ax
            tau = np.zeros(n_jets)
            if ok.all():
                axes = kt.exclusive_jets(n_jets=n_ax)
            else:  # a jet with fewer constituents than axes has tau_N = 0
                sub_def = fastjet.JetDefinition(fastjet.kt_algorithm, 10.0, fastjet.WTA_pt_scheme)
                axes = fastjet.ClusterSequence(jets[ok], sub_def).exclusive_jets(n_jets=n_ax)
            a_eta, a_phi = _axes_eta_phi(axes)
            a_eta = a_eta.reshape(-1, n_ax)
            a_phi = a_phi.reshape(-1, n_ax)
            full_eta = np.zeros((n_jets, n_ax))
            full_phi = np.zeros((n_jets, n_ax))
            full_eta[ok], full_phi[ok] = a_eta, a_phi
            deta = eta[:, None] - full_eta[jet_id]
            dphi = (phi[:, None] - full_phi[jet_id] + np.pi) % (2 * np.pi) - np.pi
            dr = np.sqrt(deta * deta + dphi * dphi).min(axis=1)
            tau = np.bincount(jet_id, weights=pt * dr, minlength=n_jets) / (
                radius * np.maximum(total, 1e-12)
            )
            out[f"tau{n_ax}"] = np.where(ok, tau, 0.0)
        ca = fastjet.ClusterSequence(jets, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
        sd = ca.exclusive_jets_softdrop_grooming(njets=1, beta=0, symmetry_cut=0.1, R0=radius)
    out["msoftdrop"] = np.nan_to_num(ak.to_numpy(sd.msoftdrop).astype(np.float64))
    return out


# --------------------------------------------------------------------------------------------
# one chunk -> NanoAOD branches


def chunk_arrays(
    batch: Any,
    *,
    process: str,
    params: dict[str, float],
    pdata: Any,
    rng: np.random.Generator,
    first_event: int,
) -> dict[str, Any]:
    """The NanoAOD branches of one ``nextBatch`` chunk (same keys and types as the fast engine)."""
    from adcoffea.synthetic.jets import four_vector_sum
    from adcoffea.synthetic.nanoaod import schema_arrays

    radius = float(params["jet_r"])
    n = len(batch)
    parts = visible_particles(batch, pdata, rng)
    cl = cluster_jets(parts, radius=radius)
    idx, n_const, n_jets = cl["index"], cl["n_const"], cl["n_jets"]
    nj = len(n_const)
    jet_id = np.repeat(np.arange(nj), n_const)
    px, py, pz = parts["px"][idx], parts["py"][idx], parts["pz"][idx]
    pt, eta, phi = _ptetaphi(px, py, pz)
    # constituents ordered by pT within each jet (descending), as the fast engine stores them
    order = np.lexsort((-pt, jet_id))
    idx, pt, eta, phi = idx[order], pt[order], eta[order], phi[order]
    p4 = {"px": px[order], "py": py[order], "pz": pz[order], "e": parts["e"][idx]}
    c = {
        "pt": pt.astype(np.float32),
        "eta": eta.astype(np.float32),
        "phi": phi.astype(np.float32),
        "mass": parts["mass"][idx].astype(np.float32),
        "pdgId": parts["pdgId"][idx],
        "charge": parts["charge"][idx],
        "d0": parts["d0"][idx].astype(np.float32),
        "dz": parts["dz"][idx].astype(np.float32),
    }
    jpt, jeta, jphi, jm = four_vector_sum(
        *(c[k].astype(np.float64) for k in ("pt", "eta", "phi", "mass")), jet_id, nj
    )
    sub = substructure(pt, eta, phi, p4, n_const, radius=radius) if nj else {
        k: np.zeros(0) for k in ("tau1", "tau2", "tau3", "tau4", "msoftdrop")}  # fmt: skip
    # FastJet orders by pT of the E-scheme sum; re-sort on the stored (float32) sums
    jev = np.repeat(np.arange(n), n_jets)
    perm = np.lexsort((-jpt, jev))
    starts = np.concatenate([[0], np.cumsum(n_const)[:-1]])
    n_c_new = n_const[perm]
    new_starts = np.concatenate([[0], np.cumsum(n_c_new)[:-1]])
    cidx = (
        np.arange(n_const.sum()) - np.repeat(new_starts, n_c_new) + np.repeat(starts[perm], n_c_new)
    )
    c = {k: v[cidx] for k, v in c.items()}
    jets = {"pt": jpt[perm], "eta": jeta[perm], "phi": jphi[perm], "mass": jm[perm],
            **{k: v[perm] for k, v in sub.items()},
            "nConstituents": np.minimum(n_c_new, 255)}  # fmt: skip
    slot = np.arange(nj) - np.repeat(np.cumsum(n_jets) - n_jets, n_jets)
    c_jetidx = np.repeat(slot, n_c_new).astype(np.int32)
    ncand_ev = np.bincount(jev, weights=n_const, minlength=n).astype(np.int64)
    c_local = (np.arange(c_jetidx.shape[0])
               - np.repeat(np.cumsum(ncand_ev) - ncand_ev, ncand_ev)).astype(np.int32)  # fmt: skip

    # MET: minus the visible vector sum, plus the soft-term resolution
    mex = -np.bincount(parts["event"], weights=parts["px"], minlength=n) + rng.normal(
        0.0, MET_NOISE, n)  # fmt: skip
    mey = -np.bincount(parts["event"], weights=parts["py"], minlength=n) + rng.normal(
        0.0, MET_NOISE, n)  # fmt: skip
    met_pt, met_phi = np.hypot(mex, mey), np.arctan2(mey, mex)
    return schema_arrays(
        process=process,
        first_event=first_event,
        jets=jets,
        n_jets=n_jets,
        cands=c,
        cand_jet_idx=c_jetidx,
        cand_local_idx=c_local,
        n_cands=ncand_ev,
        met_pt=met_pt,
        met_phi=met_phi,
        m_parent=_parent_mass(batch, process),
    )


def _parent_mass(batch: Any, process: str) -> np.ndarray:
    import awkward as ak

    if process == "qcd":  # the hard-scattering mass
        return ak.to_numpy(batch.info.mHat).astype(np.float64)
    prt = batch.prt
    first = ak.firsts(prt[abs(prt.id) == PARENT_ID[process]])
    return ak.to_numpy(ak.fill_none(first.m, 0.0)).astype(np.float64)


# --------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class FileTask:
    """One output file: events ``lo`` to ``hi`` of a sample."""

    path: str
    process: str
    params: tuple[tuple[str, float], ...]
    seed: int
    index: int
    lo: int
    hi: int


def _new_pythia(process: str, params: dict[str, float], seed: int) -> Any:
    import pythia8mc

    py = pythia8mc.Pythia("", False)
    for s in [*pythia_settings(process, params), "Random:setSeed = on", f"Random:seed = {seed}"]:
        if not py.readString(s):
            raise ConfigError(f"pythia rejected the setting {s!r} (process {process!r})")
    if not py.init():
        raise ConfigError(f"pythia failed to initialise process {process!r} with {params}")
    return py


def _next_batch(py: Any, n: int) -> Any:
    """Exactly ``n`` events ('skip' drops failed events: top up until there are ``n``)."""
    import awkward as ak

    batch = py.nextBatch(n, "skip")
    for _ in range(10):
        if len(batch) >= n:
            break
        batch = ak.concatenate([batch, py.nextBatch(n - len(batch), "skip")])
    if len(batch) < n:
        raise RuntimeError(f"pythia produced only {len(batch)} of {n} events")
    return batch[:n]


def write_pythia_file(task: FileTask) -> dict[str, float]:
    """Generate and write one file (atomically).

    Returns the CPU seconds of each step (``init``, ``pythia``, ``jets``, ``write``): one
    process is one core, so events per CPU-second is the per-core throughput whatever else
    runs on the machine.
    """
    from adcoffea.synthetic.nanoaod import write_events

    params = dict(task.params)
    c_init = time.process_time()
    py = _new_pythia(task.process, params, file_seed(task.seed, task.process, task.index))
    pdata = py.particleData
    timing = {"init": time.process_time() - c_init, "pythia": 0.0, "jets": 0.0, "write": 0.0}

    def chunks() -> Iterator[dict[str, Any]]:
        for j, c0 in enumerate(range(task.lo, task.hi, CHUNK_EVENTS)):
            c1 = min(c0 + CHUNK_EVENTS, task.hi)
            t0 = time.process_time()
            batch = _next_batch(py, c1 - c0)
            t1 = time.process_time()
            rng = np.random.default_rng(
                [task.seed, PROCESS_CODE[task.process], task.index, j, _ENGINE_CODE]
            )
            arrays = chunk_arrays(batch, process=task.process, params=params, pdata=pdata,
                                  rng=rng, first_event=c0)  # fmt: skip
            t2 = time.process_time()
            yield arrays  # written before the generator resumes
            timing["pythia"] += t1 - t0
            timing["jets"] += t2 - t1
            timing["write"] += time.process_time() - t2

    write_events(Path(task.path), chunks())
    return timing


def _run_task(task: FileTask) -> dict[str, float]:
    # one thread per worker: the workers are the parallelism
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return write_pythia_file(task)


def generate_pythia(
    process: str,
    *,
    n_events: int,
    seed: int,
    out_dir: str | Path,
    n_files: int = 1,
    name: str | None = None,
    params: dict[str, float] | None = None,
    workers: int = 1,
):
    """Generate ``n_events`` Pythia events of ``process`` into ``n_files`` NanoAOD files.

    Files are ``<out_dir>/<name>_<i>.root``; the same ``seed`` gives identical files for any
    ``workers`` (each file is one Pythia run with its own seed; ``workers`` processes run
    files in parallel, one Pythia each). Needs ``pip install "adcoffea[pythia]"``.

    Returns:
        :class:`adcoffea.synthetic.GeneratedSample` (``params`` resolved, engine defaults
        included); its ``timing`` is logged.

    Example:
        >>> s = generate_pythia("qcd", n_events=200, seed=1, out_dir="/tmp/adc_py")  # doctest: +SKIP
    """
    from adcoffea.synthetic import GeneratedSample, plan_files

    p = resolve_pythia_params(process, params)
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"engine 'pythia' needs pythia8mc and fastjet ({err.name} is missing): "
            'pip install "adcoffea[pythia]"'
        ) from None
    name = name or process
    plan = plan_files(out_dir, name, n_events=n_events, n_files=n_files, workers=workers)
    tasks = [
        FileTask(str(path.resolve()), process, tuple(sorted(p.items())), int(seed), i, lo, hi)
        for i, (path, lo, hi) in enumerate(plan)
    ]
    t0 = time.perf_counter()
    n_proc = min(int(workers), len(tasks))
    if n_proc == 1:
        timings = [write_pythia_file(t) for t in tasks]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked torch/OpenMP parent can deadlock its children
        with ProcessPoolExecutor(n_proc, mp_context=mp.get_context("spawn")) as pool:
            timings = list(pool.map(_run_task, tasks))
    wall = time.perf_counter() - t0
    tot = {k: sum(t[k] for t in timings) for k in timings[0]}
    log.info(
        "pythia %s: %d events in %.1f s wall with %d process(es); CPU per event: pythia %.1f ms, "
        "jets %.1f ms, write %.1f ms (+ %.1f s init per file)", process, n_events, wall, n_proc,
        *(1e3 * tot[k] / n_events for k in ("pythia", "jets", "write")), tot["init"] / len(tasks),
    )  # fmt: skip
    return GeneratedSample(
        name=name,
        process=process,
        files=tuple(t.path for t in tasks),
        n_events=int(n_events),
        seed=int(seed),
        params=p,
    )
