"""Synthetic LHC-Olympics-like NanoAOD generator.

Writes ROOT files (tree ``Events``) in the NanoAOD v15 schema with large-R jets built from
generated particle-flow candidates, for four processes modelled on the LHC Olympics 2020 R&D
data set (13 TeV, anti-kT R = 1.0, leading jet pT > 1.2 TeV, |eta| < 2.5):

- ``qcd``: dijets with mjj from the fitted LHCO dijet function, one-prong-like jets (broad tau21);
- ``wprime``: W' -> X Y, both two-prong (LHCO R&D signal, masses configurable);
- ``svj``: Z' -> two semi-visible jets with invisible fraction ``r_inv`` (genuine, jet-aligned MET);
- ``yxh``: Y -> X H with a two- or three-prong X and a two-prong H (2D resonance search).

How a jet is made (all vectorised over flat constituent arrays, see :mod:`adcoffea._jets`):

1. Event kinematics: the dijet mass is drawn first (QCD: the reference dijet function by inverse
   CDF; signal: the reference W' detector response scaled to the parent mass), then y*, the boost
   and a pT imbalance; the leading jet pT is solved so that the two massive jets give that mjj.
2. Per jet a target mass and a target tau21 (tau32 for three-prong X) are drawn from the fitted
   LHCO distributions (``shared/LHCO_REFERENCE.md``).
3. Constituents are scattered around 2 or 3 prong axes (momentum sharing z) with log-normal pT
   shares; the within-prong spread is tuned per jet (multiplicative Newton-like steps) until the
   tau21 (tau32) computed from the constituents hits the target. An angular dilation about the jet
   axis (tau ratios are exactly invariant under it) and a common pT scale then set the jet mass
   and pT; a small shift keeps the jet direction.
4. Everything stored is recomputed from the float32-rounded constituents: ``FatJet_{pt,eta,phi,
   mass}`` is their four-vector sum, ``tau1..4`` their N-subjettiness (beta = 1, R0 = 1, greedy
   seeds + Lloyd steps), ``msoftdrop`` a grooming proxy (see :func:`_softdrop_proxy`).

Units: GeV, NanoAOD conventions (PFCand ``d0``/``dz`` in cm).

Example:
    >>> from adcoffea.synthetic import generate
    >>> s = generate("qcd", n_events=1000, seed=1, out_dir="/tmp/adc_doc")  # doctest: +SKIP
    >>> s.files  # doctest: +SKIP
    ('/tmp/adc_doc/qcd_0.root',)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erf

from adcoffea._jets import four_vector_sum, nsubjettiness, segment_sum, wrap_phi
from adcoffea.errors import ConfigError

log = logging.getLogger(__name__)

SQRT_S = 13000.0
PT_LEAD_MIN = 1200.0
ETA_MAX = 2.5
MET_NOISE = 25.0  # GeV per transverse component (resolution only)
CHUNK_EVENTS = 50_000
M_HIGGS = 125.0

#: default parameters (GeV) per process; names not listed are rejected
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "qcd": {},
    "wprime": {"m_wprime": 3500.0, "m_x": 500.0, "m_y": 100.0},
    "svj": {"m_zprime": 3000.0, "r_inv": 0.3},
    "yxh": {"m_y": 3000.0, "m_x": 300.0, "x_prongs": 2.0},
}
#: the parameter that ``--mass`` sets
PARENT_PARAM = {"wprime": "m_wprime", "svj": "m_zprime", "yxh": "m_y"}
PROCESS_CODE = {"qcd": 0, "wprime": 1, "svj": 2, "yxh": 3}

# QCD tau21 Beta parameters vs jet mass (TeV), from the LHCO R&D fit.
_QCD_TAU_M = np.array(
    [0.015, 0.045, 0.075, 0.105, 0.14, 0.18, 0.225, 0.275, 0.325, 0.385, 0.46, 0.55, 0.75]
)
_QCD_TAU_MU = np.array(
    [0.617, 0.598, 0.599, 0.614, 0.604, 0.575, 0.534, 0.489, 0.453, 0.410, 0.368, 0.330, 0.307]
)
_QCD_TAU_KAPPA = np.array([7.0, 5.7, 6.5, 8.8, 9.8, 9.1, 8.3, 7.9, 8.1, 7.8, 7.8, 7.9, 8.0])


@dataclass(frozen=True)
class GeneratedSample:
    """A generated sample: its files and how it was made."""

    name: str
    process: str
    files: tuple[str, ...]
    n_events: int
    seed: int
    params: dict[str, float] = field(default_factory=dict)

    @property
    def is_signal(self) -> bool:
        return self.process != "qcd"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "process": self.process,
            "files": list(self.files),
            "n_events": int(self.n_events),
            "seed": int(self.seed),
            "params": {k: float(v) for k, v in self.params.items()},
            "is_signal": self.is_signal,
        }


# --------------------------------------------------------------------------------------------
# parameters


def resolve_params(process: str, params: dict[str, float] | None) -> dict[str, float]:
    """Defaults merged with ``params``; raises ConfigError naming a bad key or value."""
    if process not in DEFAULT_PARAMS:
        raise ConfigError(
            f"process: unknown process {process!r}; choose from {sorted(DEFAULT_PARAMS)}"
        )
    out = dict(DEFAULT_PARAMS[process])
    for key, value in (params or {}).items():
        if key not in out:
            raise ConfigError(
                f"params.{key}: unknown parameter for process {process!r}"
                f" (known: {sorted(out) or 'none'})"
            )
        try:
            out[key] = float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"params.{key}: not a number: {value!r}") from err
        if not np.isfinite(out[key]):
            raise ConfigError(f"params.{key}: must be finite, got {value!r}")
    for key, value in out.items():
        if key.startswith("m_") and value <= 0:
            raise ConfigError(f"params.{key}: mass must be positive, got {value}")
    if process == "wprime" and out["m_x"] + out["m_y"] >= out["m_wprime"]:
        raise ConfigError("params.m_wprime: must exceed m_x + m_y")
    if process == "yxh":
        if out["x_prongs"] not in (2.0, 3.0):
            raise ConfigError(f"params.x_prongs: must be 2 or 3, got {out['x_prongs']}")
        if out["m_x"] + M_HIGGS >= out["m_y"]:
            raise ConfigError("params.m_y: must exceed m_x + 125")
    if process == "svj" and not 0.0 <= out["r_inv"] < 1.0:
        raise ConfigError(f"params.r_inv: must be in [0, 1), got {out['r_inv']}")
    return out


# --------------------------------------------------------------------------------------------
# distributions


def qcd_mjj_pdf(m: np.ndarray) -> np.ndarray:
    """LHCO R&D fitted QCD dijet mass density (unnormalised), m in GeV."""
    x = np.asarray(m, dtype=np.float64) / SQRT_S
    lx = np.log(x)
    return (
        (1 - x) ** 7.80 * np.exp(-(5.26 + 1.13 * lx) * lx) * 0.5 * (1 + erf((m - 2456.0) / 419.0))
    )


_MJJ_GRID = np.linspace(1500.0, 8000.0, 13001)
_MJJ_CDF = np.concatenate(
    [[0.0], np.cumsum(0.5 * (qcd_mjj_pdf(_MJJ_GRID[1:]) + qcd_mjj_pdf(_MJJ_GRID[:-1])))]
)
_MJJ_CDF /= _MJJ_CDF[-1]


def _sample_qcd_mjj(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.interp(rng.random(n), _MJJ_CDF, _MJJ_GRID)


def _sample_signal_mjj(rng: np.random.Generator, n: int, m_parent: float) -> np.ndarray:
    """LHCO W' detector-level mjj shape, scaled to the parent mass."""
    s = m_parent / 3500.0
    core = rng.random(n) < 0.69
    return np.where(
        core, rng.normal(3504.0 * s, 112.0 * s, n), rng.normal(3424.0 * s, 371.0 * s, n)
    )


def _qcd_masses(rng: np.random.Generator, mjj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlated tanh-lognormal QCD jet masses (GeV) of the two leading jets."""
    n = mjj.shape[0]
    z1 = rng.standard_normal(n)
    z2 = 0.04 * z1 + np.sqrt(1 - 0.04**2) * rng.standard_normal(n)
    mu = -1.717 + 0.05 * (mjj / 1000.0 - 3.5)
    m1 = 0.906 * np.tanh(np.exp(mu + 0.798 * z1) / 0.906)
    m2 = 0.906 * np.tanh(np.exp(mu + 0.798 * z2) / 0.906)
    return 1000.0 * m1, 1000.0 * m2


def _beta(rng: np.random.Generator, mean: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    mean = np.clip(mean, 0.02, 0.98)
    return rng.beta(mean * kappa, (1 - mean) * kappa)


def _qcd_tau21(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    mt = m / 1000.0
    return _beta(
        rng, np.interp(mt, _QCD_TAU_M, _QCD_TAU_MU), np.interp(mt, _QCD_TAU_M, _QCD_TAU_KAPPA)
    )


def _two_prong_light(rng: np.random.Generator, n: int, m0: float) -> tuple[np.ndarray, np.ndarray]:
    """LHCO 'Y' jet model (mass peak + FSR tail; tau21 Beta rising with mass), scaled to m0."""
    s = m0 / 108.3
    m = (108.3 + 12.8 * rng.standard_normal(n)) * s
    m = m + np.where(rng.random(n) < 0.24, 82.5 * rng.exponential(1.0, n), 0.0)
    mean = np.interp(m / s, [100.0, 350.0], [0.35, 0.50])
    return np.maximum(m, 10.0), _beta(rng, mean, np.full(n, 10.6))


def _two_prong_heavy(rng: np.random.Generator, n: int, m0: float) -> tuple[np.ndarray, np.ndarray]:
    """LHCO 'X' jet model (peak + tail, 7.6 % 'lost' QCD-like jets), scaled to m0."""
    s = m0 / 494.4
    m = (494.4 + 33.8 * rng.standard_normal(n)) * s
    m = m + np.where(rng.random(n) < 0.21, 55.9 * rng.exponential(1.0, n), 0.0)
    tau = np.minimum(0.173 * np.exp(0.64 * rng.standard_normal(n)), 0.95)
    lost = rng.random(n) < 0.076
    m_lost = 188.0 * np.exp(0.67 * rng.standard_normal(n)) * s
    m = np.where(lost, m_lost, m)
    tau = np.where(lost, _qcd_tau21(rng, m_lost), tau)
    return np.maximum(m, 10.0), tau


# --------------------------------------------------------------------------------------------
# event kinematics


def _solve_lead_pt(mjj, ma, mb, dy, r):
    """Leading pT p with pT2 = r p, Δφ = π, masses ma, mb and rapidity gap dy giving mjj.

    mjj² = ma² + mb² + 2 (mT1 mT2 cosh dy + r p²); monotone in p, solved by Newton steps.
    Returns NaN where no solution exists.
    """
    ch = np.cosh(dy)
    target = mjj**2 - ma**2 - mb**2
    p = mjj / np.sqrt(2 * r * (ch + 1))
    for _ in range(8):
        mt1 = np.sqrt(p**2 + ma**2)
        mt2 = np.sqrt((r * p) ** 2 + mb**2)
        f = 2 * (mt1 * mt2 * ch + r * p**2) - target
        df = 2 * (ch * (p / mt1 * mt2 + mt1 * r * r * p / mt2) + 2 * r * p)
        p = np.maximum(p - f / df, 1.0)
    ok = (target > 2 * ma * mb * ch) & np.isfinite(p)
    return np.where(ok, p, np.nan)


def _eta_from_y(y, pt, m):
    return np.arcsinh(np.sqrt(pt**2 + m**2) / pt * np.sinh(y))


def _sample_events(process: str, rng: np.random.Generator, n: int, p: dict[str, float]) -> dict:
    """Per-event targets for exactly ``n`` events passing the preselection (at target level)."""
    parts: list[dict] = []
    have = 0
    acc = 0.5
    # The dijet mass is drawn first and kept (its kinematics redrawn) while an event fails the
    # selection, so the accepted mjj follows the reference shape, which is measured after the
    # selection. svj draws the parton-level Z' mass instead and is simply thinned by it.
    pending = np.empty(0)
    tries = np.empty(0, np.int64)
    for _ in range(2000):
        if have >= n:
            break
        if process == "svj":
            mjj = None
            batch = int((n - have) / max(acc, 0.01) * 1.15) + 64
        else:
            fresh = _sample_mjj(process, rng, n - have - pending.shape[0], p)
            mjj = np.concatenate([pending, fresh])
            tries = np.concatenate([tries, np.zeros(fresh.shape[0], np.int64)])
            batch = mjj.shape[0]
        ev = _sample_batch(process, rng, batch, p, mjj)
        keep = ev.pop("keep")
        acc = max(keep.mean(), 1e-3)
        if mjj is not None:
            # an mjj that fails 100 times is given up (replaced by a fresh draw)
            retry = ~keep & (tries < 100)
            pending, tries = mjj[retry], tries[retry] + 1
        parts.append({k: v[keep] for k, v in ev.items()})
        have += int(keep.sum())
    else:
        raise RuntimeError(f"{process}: preselection efficiency too low to generate {n} events")
    return {k: np.concatenate([q[k] for q in parts])[:n] for k in parts[0]}


def _sample_mjj(process: str, rng: np.random.Generator, n: int, p: dict[str, float]) -> np.ndarray:
    if process == "qcd":
        return _sample_qcd_mjj(rng, n)
    return _sample_signal_mjj(rng, n, p[PARENT_PARAM[process]])


def _sample_batch(
    process: str, rng: np.random.Generator, n: int, p: dict[str, float], mjj: np.ndarray | None
) -> dict:
    """Targets for ``n`` candidate events; ``keep`` marks those passing the preselection."""
    # Per hard jet (a, b): mass, tau target, number of prongs, invisible fraction.
    nprong_a = np.full(n, 2)
    nprong_b = np.full(n, 2)
    r_a = np.zeros(n)
    r_b = np.zeros(n)
    m_parent = 0.0
    if process == "qcd":
        ma, mb = _qcd_masses(rng, mjj)
        ta, tb = _qcd_tau21(rng, ma), _qcd_tau21(rng, mb)
        # t-channel: chi = exp(2|y*|) roughly flat
        ystar = 0.5 * np.log(rng.uniform(1.0, np.exp(2 * 1.3), n)) * rng.choice([-1.0, 1.0], n)
    else:
        m_parent = p[PARENT_PARAM[process]]
        # s-channel decay: |cos θ*| uniform
        ystar = np.arctanh(rng.uniform(-0.97, 0.97, n))
        if process == "wprime":
            ma, ta = _two_prong_heavy(rng, n, p["m_x"])
            mb, tb = _two_prong_light(rng, n, p["m_y"])
        elif process == "yxh":
            if p["x_prongs"] == 3:
                ma, _ = _two_prong_heavy(rng, n, p["m_x"])
                ta = np.clip(0.45 * np.exp(0.35 * rng.standard_normal(n)), 0.1, 0.9)  # tau32
                nprong_a[:] = 3
            else:
                ma, ta = _two_prong_heavy(rng, n, p["m_x"])
            mb, tb = _two_prong_light(rng, n, M_HIGGS)
        else:  # svj: dark showers, wide QCD-like jets, invisible fraction per jet
            mjj = rng.normal(m_parent, 0.04 * m_parent, n)
            ma = 0.06 * m_parent * np.exp(0.5 * rng.standard_normal(n))
            mb = 0.06 * m_parent * np.exp(0.5 * rng.standard_normal(n))
            ta = _beta(rng, np.full(n, 0.5), np.full(n, 8.0))
            tb = _beta(rng, np.full(n, 0.5), np.full(n, 8.0))
            rinv = p["r_inv"]
            if rinv > 0:
                r_a = rng.beta(rinv * 12, (1 - rinv) * 12, n)
                r_b = rng.beta(rinv * 12, (1 - rinv) * 12, n)
    # pT imbalance from extra radiation: subleading = imb * leading
    imb = np.clip(
        1
        - np.abs(rng.normal(0, 0.05, n))
        - np.where(rng.random(n) < 0.2, rng.exponential(0.1, n), 0.0),
        0.3,
        1.0,
    )
    swap = rng.random(n) < 0.5  # which hard jet is the leading one
    # full (visible + invisible) four-momenta of the hard jets
    fa, fb = 1 / (1 - r_a), 1 / (1 - r_b)
    m1, m2 = np.where(swap, mb * fb, ma * fa), np.where(swap, ma * fa, mb * fb)
    pt1 = _solve_lead_pt(mjj, m1, m2, 2 * ystar, imb)
    if process == "qcd":
        # Low-mjj QCD passes the 1.2 TeV cut only through a pT imbalance: solve for it.
        low = ~(pt1 > PT_LEAD_MIN)
        pt_need = PT_LEAD_MIN * (1.001 + 0.04 * rng.exponential(1.0, n))
        lo, hi = np.full(n, 0.05), np.ones(n)
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            pmid = _solve_lead_pt(mjj, m1, m2, 2 * ystar, mid)
            big = pmid > pt_need
            lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
        imb = np.where(low, lo, imb)
        pt1 = np.where(low, _solve_lead_pt(mjj, m1, m2, 2 * ystar, imb), pt1)
        imb = np.where(imb < 0.3, np.nan, imb)
    pt2 = imb * pt1
    yb = rng.normal(0.0, 0.5, n)
    phi1 = rng.uniform(-np.pi, np.pi, n)
    phi2 = wrap_phi(phi1 + np.pi)
    # visible parts
    ra1, ra2 = np.where(swap, r_b, r_a), np.where(swap, r_a, r_b)
    vpt1, vpt2 = (1 - ra1) * pt1, (1 - ra2) * pt2
    vm1, vm2 = np.where(swap, mb, ma), np.where(swap, ma, mb)
    # a jet of R = 1.0 cannot be much heavier than ~0.5-0.7 pT (caps only the far QCD tail)
    vm1, vm2 = np.minimum(vm1, 0.7 * vpt1), np.minimum(vm2, 0.7 * vpt2)
    eta1 = _eta_from_y(yb + ystar, pt1, m1)
    eta2 = _eta_from_y(yb - ystar, pt2, m2)
    lead = np.maximum(vpt1, vpt2)
    keep = (
        (lead > PT_LEAD_MIN * 1.003)
        & (np.abs(eta1) < ETA_MAX - 0.01)
        & (np.abs(eta2) < ETA_MAX - 0.01)
    )
    keep &= np.isfinite(pt1) & (vpt2 > 100.0) & (vm1 > 5.0) & (vm2 > 5.0)
    # invisible momentum (svj): collinear with the dark jets
    inv_x = ra1 * pt1 * np.cos(phi1) + ra2 * pt2 * np.cos(phi2)
    inv_y = ra1 * pt1 * np.sin(phi1) + ra2 * pt2 * np.sin(phi2)
    # soft ISR jet recoiling against the imbalance
    has3 = ((pt1 - pt2) > 60.0) & (rng.random(n) < 0.6)
    pt3 = np.minimum((pt1 - pt2) * rng.uniform(0.4, 0.9, n), 0.8 * np.minimum(vpt1, vpt2))
    has3 &= pt3 > 30.0
    pt3 = np.where(has3, pt3, 0.0)
    m3 = np.minimum(pt3 * 0.08 * np.exp(0.5 * rng.standard_normal(n)), 0.3 * pt3)
    m3 = np.maximum(m3, 3.0)
    tau_a1, tau_a2 = np.where(swap, tb, ta), np.where(swap, ta, tb)
    np1, np2 = np.where(swap, nprong_b, nprong_a), np.where(swap, nprong_a, nprong_b)
    sig_a1 = np.where(swap, 0, 1) if process != "qcd" else np.zeros(n, dtype=int)
    return {
        "keep": keep,
        "mjj_target": mjj,
        "pt": np.stack([vpt1, vpt2, pt3], axis=1),
        "eta": np.stack([eta1, eta2, rng.uniform(-2.4, 2.4, n)], axis=1),
        "phi": np.stack([phi1, phi2, wrap_phi(phi2 + rng.normal(0, 0.3, n))], axis=1),
        "mass": np.stack([vm1, vm2, m3], axis=1),
        "tau": np.stack([tau_a1, tau_a2, _beta(rng, np.full(n, 0.6), np.full(n, 7.0))], axis=1),
        "nprong": np.stack([np1, np2, np.full(n, 2)], axis=1),
        "has3": has3,
        "is_x": sig_a1,
        "met_x": inv_x + rng.normal(0, MET_NOISE, n),
        "met_y": inv_y + rng.normal(0, MET_NOISE, n),
        "m_parent": np.full(n, m_parent),
        "qcd_like": np.full(n, process == "qcd"),
    }


# --------------------------------------------------------------------------------------------
# constituents


def _build_constituents(rng: np.random.Generator, jets: dict[str, np.ndarray]) -> dict:
    """Generate constituents for every jet so that their sums hit the jet targets.

    ``jets`` holds flat per-jet arrays: pt, eta, phi, mass, tau (target tau21 or tau32),
    nprong (2 or 3), qcd (bool, QCD-like soft splitting).
    """
    nj = jets["pt"].shape[0]
    pt_t, eta_t, phi_t, m_t = jets["pt"], jets["eta"], jets["phi"], jets["mass"]
    nprong = jets["nprong"]
    # multiplicity: heavier and more prongs -> more constituents
    lam = 8.0 + 25.0 * m_t / (m_t + 150.0) + 6.0 * (nprong - 2) + 4.0 * (pt_t > 800)
    n_c = np.clip(10 + rng.poisson(lam), 8, 200).astype(np.int64)
    jet_id = np.repeat(np.arange(nj), n_c)

    def rep(v: np.ndarray) -> np.ndarray:  # per-jet -> per-constituent (faster than v[jet_id])
        return np.repeat(v, n_c)

    nc_tot = jet_id.shape[0]
    start = np.concatenate([[0], np.cumsum(n_c)[:-1]])
    local = np.arange(nc_tot) - start[jet_id]

    # prong momentum fractions
    frac = np.zeros((nj, 3))
    z_sig = rng.uniform(0.1, 0.9, nj)
    z_qcd = 0.04 + 0.46 * rng.random(nj) ** 2
    z = np.where(jets["qcd"], z_qcd, z_sig)
    # keep the prong separation m / (pT sqrt(z(1-z))) inside the jet (< 0.9)
    need = np.minimum((m_t / (0.9 * pt_t)) ** 2, 0.25)
    zmin = 0.5 - np.sqrt(0.25 - need)
    z = np.clip(z, zmin, 1 - zmin)
    frac[:, 0], frac[:, 1] = z, 1 - z
    three = nprong == 3
    d3 = rng.dirichlet([4.0, 4.0, 4.0], nj)
    frac[three] = d3[three]
    # prong positions (unit separation scale), pT-weighted centroid at 0
    ang = rng.uniform(0, 2 * np.pi, nj)
    px = np.zeros((nj, 3))
    py = np.zeros((nj, 3))
    px[:, 1], py[:, 1] = np.cos(ang), np.sin(ang)
    a3 = ang + rng.uniform(0.6, 1.4, nj) * np.pi / 1.5 * np.where(rng.random(nj) < 0.5, 1, -1)
    px[:, 2], py[:, 2] = (
        np.cos(a3) * rng.uniform(0.7, 1.3, nj),
        np.sin(a3) * rng.uniform(0.7, 1.3, nj),
    )
    cx = (frac * px).sum(1)
    cy = (frac * py).sum(1)
    px -= cx[:, None]
    py -= cy[:, None]

    # assign constituents to prongs: the first nprong ones one each, the rest ∝ sqrt(fraction)
    pw = np.sqrt(frac)
    cum = np.cumsum(pw / pw.sum(1, keepdims=True), axis=1)
    u = rng.random(nc_tot)
    prong = (u[:, None] > cum[jet_id]).sum(1)
    prong = np.minimum(prong, rep(nprong) - 1)
    prong = np.where(local < rep(nprong), local, prong)
    # log-normal pT shares within each prong
    w = np.exp(0.9 * rng.standard_normal(nc_tot))
    key = jet_id * 3 + prong
    wsum = np.bincount(key, weights=w, minlength=3 * nj)
    f = frac[jet_id, prong] * w / wsum[key]
    # softer constituents sit wider
    cnt = np.bincount(key, minlength=3 * nj)
    h = np.clip((w * cnt[key] / wsum[key]) ** -0.3, 0.3, 4.0)
    gx, gy = rng.standard_normal(nc_tot) * h, rng.standard_normal(nc_tot) * h
    bx, by = px[jet_id, prong], py[jet_id, prong]

    # tune the within-prong spread s so that the constituent tau ratio hits its target
    target = np.clip(jets["tau"], 0.03, 0.97)
    s = np.full(nj, 0.3)
    for _ in range(5):
        x, y = _positions(bx, by, gx, gy, rep(s), f, jet_id, nj)
        ratio = _tau_ratio(f, x, y, jet_id, nj, three)
        step = np.clip(target / np.maximum(ratio, 1e-4), 0.4, 2.5)
        s = np.clip(s * step, 1e-3, 6.0)
    x, y = _positions(bx, by, gx, gy, rep(s), f, jet_id, nj)

    # species: charged pions, photons, neutral hadrons
    u = rng.random(nc_tot)
    charge = np.where(u < 0.62, np.where(rng.random(nc_tot) < 0.5, 1, -1), 0).astype(np.int32)
    pdg = np.where(charge != 0, 211 * charge, np.where(u < 0.87, 22, 130)).astype(np.int32)
    mass = np.where(charge != 0, 0.13957, np.where(pdg == 22, 0.0, 0.4976))

    # dilation (mass), common pT scale (pT) and shift (direction) to meet the targets
    r2 = segment_sum(f * (x * x + y * y), jet_id, nj)
    lam_ang = m_t / pt_t / np.sqrt(np.maximum(r2, 1e-12))
    cpt = np.ones(nj)
    deta = np.zeros(nj)
    dphi = np.zeros(nj)
    for _ in range(6):
        cpt_i = rep(cpt)
        c_pt = f * rep(pt_t) * cpt_i
        c_eta = rep(eta_t) + rep(deta) + rep(lam_ang) * x
        c_phi = rep(phi_t) + rep(dphi) + rep(lam_ang) * y
        jpt, jeta, jphi, jm = four_vector_sum(c_pt, c_eta, c_phi, mass, jet_id, nj)
        cpt *= pt_t / jpt
        lam_ang *= np.clip(m_t / np.maximum(jm, 1e-6), 0.5, 2.0)
        deta += eta_t - jeta
        dphi += wrap_phi(phi_t - jphi)
    c_pt = f * rep(pt_t) * rep(cpt)
    c_eta = rep(eta_t) + rep(deta) + rep(lam_ang) * x
    c_phi = wrap_phi(rep(phi_t) + rep(dphi) + rep(lam_ang) * y)

    # order within each jet by pT (descending): single float key jet + (1 - share)
    order = np.argsort(jet_id + (1.0 - c_pt / (rep(pt_t) * rep(cpt) * 1.0000001)), kind="stable")
    charged = charge[order] != 0
    d0 = np.where(charged, rng.normal(0.0, 0.003, nc_tot), 0.0)  # cm
    dz = np.where(charged, rng.normal(0.0, 0.006, nc_tot), 0.0)  # cm
    return {
        "n_const": n_c,
        "jet_id": jet_id,
        "pt": c_pt[order].astype(np.float32),
        "eta": c_eta[order].astype(np.float32),
        "phi": c_phi[order].astype(np.float32),
        "mass": mass[order].astype(np.float32),
        "pdgId": pdg[order],
        "charge": charge[order],
        "d0": d0.astype(np.float32),
        "dz": dz.astype(np.float32),
    }


def _positions(bx, by, gx, gy, s_c, f, jet_id, nj):
    x = bx + s_c * gx
    y = by + s_c * gy
    x -= segment_sum(f * x, jet_id, nj)[jet_id]
    y -= segment_sum(f * y, jet_id, nj)[jet_id]
    return x, y


def _tau_ratio(f, x, y, jet_id, nj, three):
    """tau21 for two-prong jets, tau32 for jets flagged ``three``."""
    tau1 = segment_sum(f * np.hypot(x, y), jet_id, nj)  # axis = pT centroid = origin
    tau2, _ = nsubjettiness(f, x, y, jet_id, nj, 2, n_iter=1)
    ratio = tau2 / np.maximum(tau1, 1e-12)
    if three.any():
        sel = three[jet_id]
        sub_ids = np.cumsum(three) - 1
        jid3 = sub_ids[jet_id[sel]]
        n3 = int(three.sum())
        t3, _ = nsubjettiness(f[sel], x[sel], y[sel], jid3, n3, 3, n_iter=1)
        ratio[three] = t3 / np.maximum(tau2[three], 1e-12)
    return ratio


def _jet_observables(c: dict, n_jets: int) -> dict[str, np.ndarray]:
    """FatJet branches recomputed from the float32 constituents."""
    jet_id = c["jet_id"]
    pt, eta, phi, mass = (c[k].astype(np.float64) for k in ("pt", "eta", "phi", "mass"))
    jpt, jeta, jphi, jm = four_vector_sum(pt, eta, phi, mass, jet_id, n_jets)
    x = eta - jeta[jet_id]
    y = wrap_phi(phi - jphi[jet_id])
    taus = []
    assign2 = None
    for n_ax in (1, 2, 3, 4):
        t, a = nsubjettiness(pt, x, y, jet_id, n_jets, n_ax, n_iter=3)
        taus.append(t)
        if n_ax == 2:
            assign2 = a
    msd = _softdrop_proxy(pt, eta, phi, mass, jet_id, n_jets, assign2)
    return {
        "pt": jpt,
        "eta": jeta,
        "phi": jphi,
        "mass": jm,
        "msoftdrop": msd,
        "tau1": taus[0],
        "tau2": taus[1],
        "tau3": taus[2],
        "tau4": taus[3],
        "nConstituents": c["n_const"],
    }


def _softdrop_proxy(pt, eta, phi, mass, jet_id, n_jets, assign2, *, z_cut=0.1, soft=0.005):
    """mMDT-like groomed mass at prong level (a documented proxy, not a reclustering).

    The jet is split into the two tau2 subjets. If the softer one carries a pT share above
    ``z_cut`` both are kept and only very soft constituents (share < ``soft``) are groomed away;
    otherwise the softer subjet is dropped entirely. Returns the mass of what is kept.
    """
    jsum = segment_sum(pt, jet_id, n_jets)
    s1 = segment_sum(pt * (assign2 == 1), jet_id, n_jets)
    z = np.minimum(s1, jsum - s1) / jsum
    passed = z > z_cut
    hard_is_1 = s1 > jsum - s1
    keep_sub = np.where(hard_is_1[jet_id], assign2 == 1, assign2 == 0)
    keep = np.where(passed[jet_id], pt / jsum[jet_id] >= soft, keep_sub)
    _, _, _, m = four_vector_sum(pt * keep, eta, phi, mass * keep, jet_id, n_jets)
    return m


# --------------------------------------------------------------------------------------------
# one chunk of events -> awkward record arrays


def _generate_chunk(
    process: str, rng: np.random.Generator, n: int, p: dict[str, float], first_event: int
) -> dict:
    import awkward as ak

    ev = _sample_events(process, rng, n, p)
    njet_ev = 2 + ev["has3"].astype(np.int64)
    jev = np.repeat(np.arange(n), njet_ev)
    slot = np.arange(jev.shape[0]) - np.repeat(np.cumsum(njet_ev) - njet_ev, njet_ev)
    qcd_like = ev["qcd_like"][jev] | (slot == 2)
    jets = {
        "pt": ev["pt"][jev, slot],
        "eta": ev["eta"][jev, slot],
        "phi": ev["phi"][jev, slot],
        "mass": ev["mass"][jev, slot],
        "tau": ev["tau"][jev, slot],
        "nprong": ev["nprong"][jev, slot],
        "qcd": qcd_like,
    }
    nj = jev.shape[0]
    c = _build_constituents(rng, jets)
    obs = _jet_observables(c, nj)
    # order jets in each event by pT (descending), carrying their constituents along
    perm = np.lexsort((-obs["pt"], jev))
    n_c = c["n_const"]
    starts = np.concatenate([[0], np.cumsum(n_c)[:-1]])
    n_c_new = n_c[perm]
    new_starts = np.concatenate([[0], np.cumsum(n_c_new)[:-1]])
    cidx = np.arange(n_c.sum()) - np.repeat(new_starts, n_c_new) + np.repeat(starts[perm], n_c_new)
    obs = {k: v[perm] for k, v in obs.items()}
    cons = {k: c[k][cidx] for k in ("pt", "eta", "phi", "mass", "pdgId", "charge", "d0", "dz")}
    jet_slot_new = np.arange(nj) - np.repeat(np.cumsum(njet_ev) - njet_ev, njet_ev)
    c_jetidx = np.repeat(jet_slot_new, n_c_new).astype(np.int32)
    ncand_ev = np.bincount(jev, weights=n_c, minlength=n).astype(np.int64)
    c_ev = np.repeat(np.arange(n), ncand_ev)
    c_local = (
        np.arange(c_ev.shape[0]) - np.repeat(np.cumsum(ncand_ev) - ncand_ev, ncand_ev)
    ).astype(np.int32)

    met_pt = np.hypot(ev["met_x"], ev["met_y"])
    met_phi = np.arctan2(ev["met_y"], ev["met_x"])
    evno = np.arange(first_event, first_event + n, dtype=np.uint64) + np.uint64(1)

    def jag(a, counts):
        return ak.unflatten(a, counts)

    fatjet = ak.zip(
        {
            k: jag(obs[k].astype(np.uint8 if k == "nConstituents" else np.float32), njet_ev)
            for k in (
                "pt",
                "eta",
                "phi",
                "mass",
                "msoftdrop",
                "tau1",
                "tau2",
                "tau3",
                "tau4",
                "nConstituents",
            )
        }
    )
    pfcand = ak.zip({k: jag(v, ncand_ev) for k, v in cons.items()})
    fjpf = ak.zip({"jetIdx": jag(c_jetidx, ncand_ev), "pfCandIdx": jag(c_local, ncand_ev)})
    label = np.full(n, 0 if process == "qcd" else 1, dtype=np.int32)
    return {
        "run": np.ones(n, dtype=np.uint32),
        "luminosityBlock": (1 + (evno - np.uint64(1)) // np.uint64(1000)).astype(np.uint32),
        "event": evno,
        "genWeight": np.ones(n, dtype=np.float32),
        "FatJet": fatjet,
        "PFCand": pfcand,
        "FatJetPFCand": fjpf,
        "PFMET_pt": met_pt.astype(np.float32),
        "PFMET_phi": met_phi.astype(np.float32),
        "MET_pt": met_pt.astype(np.float32),
        "MET_phi": met_phi.astype(np.float32),
        "Truth_label": label,
        "Truth_mParent": ev["m_parent"].astype(np.float32),
    }


# --------------------------------------------------------------------------------------------
# public API


def generate(
    process: str,
    *,
    n_events: int,
    seed: int,
    out_dir: str | Path,
    n_files: int = 1,
    name: str | None = None,
    params: dict[str, float] | None = None,
) -> GeneratedSample:
    """Generate ``n_events`` events of ``process`` into ``n_files`` NanoAOD-like ROOT files.

    Files are ``<out_dir>/<name>_<i>.root`` (tree ``Events``), written atomically. The same
    ``seed`` (and arguments) gives identical arrays.

    Args:
        process: ``qcd``, ``wprime``, ``svj`` or ``yxh``.
        n_events: total number of events (split evenly over the files).
        seed: random seed.
        out_dir: output directory (created if needed).
        n_files: number of files.
        name: sample name (default: the process name).
        params: physics parameters in GeV (see ``DEFAULT_PARAMS``); unknown keys raise ConfigError.
    """
    import uproot

    p = resolve_params(process, params)
    if int(n_events) < 1:
        raise ConfigError(f"events: must be >= 1, got {n_events}")
    if int(n_files) < 1 or int(n_files) > int(n_events):
        raise ConfigError(f"files: must be between 1 and the number of events, got {n_files}")
    name = name or process
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, int(n_events), int(n_files) + 1).astype(np.int64)
    files = []
    for i in range(int(n_files)):
        path = out / f"{name}_{i}.root"
        tmp = out / f".{name}_{i}.root.tmp{os.getpid()}"
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        try:
            with uproot.recreate(tmp, compression=_compression()) as f:
                for j, c0 in enumerate(range(lo, hi, CHUNK_EVENTS)):
                    c1 = min(c0 + CHUNK_EVENTS, hi)
                    rng = np.random.default_rng([int(seed), PROCESS_CODE[process], i, j])
                    arrays = _generate_chunk(process, rng, c1 - c0, p, c0)
                    if j == 0:
                        # mktree (not item assignment, which writes an RNTuple in uproot 5.7)
                        tree = f.mktree("Events", {k: _branch_type(v) for k, v in arrays.items()})
                    tree.extend(arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        files.append(str(path.resolve()))
    return GeneratedSample(
        name=name,
        process=process,
        files=tuple(files),
        n_events=int(n_events),
        seed=int(seed),
        params=p,
    )


def _compression() -> Any:
    """LZ4 (fast) when its codecs are installed, else ZLIB level 1."""
    import uproot

    try:
        import lz4.frame  # noqa: F401
        import xxhash  # noqa: F401
    except ImportError:
        return uproot.ZLIB(1)
    return uproot.LZ4(1)


def _branch_type(array: Any) -> Any:
    import awkward as ak

    return array.type if isinstance(array, ak.Array) else array.dtype


def _fileset_entries(samples: Iterable[GeneratedSample]) -> dict:
    return {
        s.name: {
            "files": {str(Path(fp).resolve()): "Events" for fp in s.files},
            "metadata": {
                "process": s.process,
                "is_signal": s.is_signal,
                "n_events": int(s.n_events),
                "seed": int(s.seed),
                "params": {k: float(v) for k, v in s.params.items()},
            },
        }
        for s in samples
    }


def _write_json(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def write_fileset(samples: Iterable[GeneratedSample], path: str | Path) -> dict:
    """Write a coffea fileset JSON for ``samples`` (atomically) and return it.

    Format: ``{name: {"files": {abs_path: "Events"}, "metadata": {"process", "is_signal",
    "n_events", "seed", "params"}}}``.
    """
    fileset = _fileset_entries(samples)
    _write_json(fileset, Path(path))
    return fileset


# --------------------------------------------------------------------------------------------
# CLI


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea generate``."""
    parser.add_argument("--process", required=True, choices=sorted(DEFAULT_PARAMS))
    parser.add_argument("--events", type=int, required=True, help="number of events")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--files", type=int, default=1, help="number of output files")
    parser.add_argument("--name", default=None, help="sample name (default: process)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="physics parameter (GeV), repeatable",
    )
    parser.add_argument(
        "--mass", type=float, default=None, help="parent mass (GeV): m_wprime, m_zprime or m_y"
    )


def cli_main(args: argparse.Namespace) -> int:
    """Run ``adcoffea generate``: write the files and ``fileset.json`` in ``--out``."""
    params: dict[str, float] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key.strip()] = float(value)
        except ValueError as err:
            raise ConfigError(f"--param {key.strip()}: not a number: {value!r}") from err
    if args.mass is not None:
        if args.process not in PARENT_PARAM:
            raise ConfigError(f"--mass: process {args.process!r} has no parent mass")
        params[PARENT_PARAM[args.process]] = args.mass
    t0 = time.perf_counter()
    sample = generate(
        args.process,
        n_events=args.events,
        seed=args.seed,
        out_dir=args.out,
        n_files=args.files,
        name=args.name,
        params=params,
    )
    dt = time.perf_counter() - t0
    # add to (or replace this sample in) an existing fileset.json in the same directory
    fs_path = Path(args.out) / "fileset.json"
    fileset: dict = {}
    if fs_path.exists():
        try:
            fileset = json.loads(fs_path.read_text())
        except json.JSONDecodeError:
            log.warning("%s is not valid JSON; overwriting it", fs_path)
    fileset.update(_fileset_entries([sample]))
    _write_json(fileset, fs_path)
    print(
        f"generated {sample.n_events} {sample.process} events (seed {sample.seed}) in {dt:.1f} s "
        f"-> {len(sample.files)} file(s) in {args.out}; fileset: {fs_path}"
    )
    if sample.params:
        print("params: " + ", ".join(f"{k}={v:g}" for k, v in sample.params.items()))
    return 0
