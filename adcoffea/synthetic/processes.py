"""Event kinematics: per-process targets for the two hard jets (and a soft ISR jet).

Step 1 and 2 of :mod:`adcoffea.synthetic`: the dijet mass is drawn first (QCD: the reference
dijet function by inverse CDF; signal: the reference W' detector response scaled to the parent
mass), then a pT imbalance, y* (QCD: flat in chi up to the leading-jet pT edge, see
:func:`_qcd_ystar`) and the boost; the leading jet pT is solved so that the two massive jets give
that mjj. Per jet a target mass and a target tau21 (tau32 for a three-prong X) are drawn from the
fitted LHCO distributions (``shared/LHCO_REFERENCE.md``). Units: GeV.

Example:
    >>> import numpy as np
    >>> from adcoffea.synthetic.processes import resolve_params, sample_events
    >>> ev = sample_events("qcd", np.random.default_rng(1), 100, resolve_params("qcd", None))
    >>> ev["pt"].shape
    (100, 3)
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from adcoffea.errors import ConfigError
from adcoffea.synthetic.jets import wrap_phi

SQRT_S = 13000.0
PT_LEAD_MIN = 1200.0
ETA_MAX = 2.5
MET_NOISE = 25.0  # GeV per transverse component (resolution only)
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


# --------------------------------------------------------------------------------------------
# parameters


def merge_params(
    process: str,
    defaults: dict[str, dict[str, float]],
    params: dict[str, float] | None,
    *,
    engine: str | None = None,
) -> dict[str, float]:
    """``defaults[process]`` updated with ``params``, every value a finite float.

    The checks every engine shares (each engine then checks its own ranges).

    Args:
        process: the process name, a key of ``defaults``.
        defaults: default parameters per process; a key not in them is refused.
        params: the values to set (any float-convertible), or None.
        engine: the engine named in the messages (None: the fast one, named nowhere).

    Raises:
        ConfigError: an unknown process or key, or a value that is not a finite number.
    """
    if process not in defaults:
        where = f" for the {engine} engine" if engine else ""
        raise ConfigError(
            f"process: unknown process {process!r}{where}; choose from {sorted(defaults)}"
        )
    out = dict(defaults[process])
    for key, value in (params or {}).items():
        if key not in out:
            where = f"{engine} engine; " if engine else ""
            raise ConfigError(
                f"params.{key}: unknown parameter for process {process!r}"
                f" ({where}known: {sorted(out) or 'none'})"
            )
        try:
            out[key] = float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"params.{key}: not a number: {value!r}") from err
        if not np.isfinite(out[key]):
            raise ConfigError(f"params.{key}: must be finite, got {value!r}")
    return out


def resolve_params(process: str, params: dict[str, float] | None) -> dict[str, float]:
    """Defaults merged with ``params``; raises ConfigError naming a bad key or value."""
    out = merge_params(process, DEFAULT_PARAMS, params)
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


IMB_MIN = 0.3  # smallest subleading/leading pT ratio of the two hard jets


def _qcd_ystar(
    rng: np.random.Generator, mjj: np.ndarray, imb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """QCD y*: flat in chi = exp(2|y*|) (t-channel) up to the leading-jet pT edge.

    With pT2 = imb pT1 and massless jets, pT1 = mjj / (2 sqrt(imb) cosh y*), so the leading-jet
    cut allows cosh y* < c = mjj / (2 PT_LEAD_MIN sqrt(imb)); chi is drawn up to that edge
    (massive jets that still miss it are redrawn by the caller). The edge moves smoothly with
    mjj. A fixed edge (|y*| < 1.3) made the two-jet selection's efficiency rise until the pT
    edge crossed it (mjj ~ 2.4 TeV cosh 1.3 = 4.7 TeV) and stay flat above: a kink in the
    selected mjj no dijet function describes.

    Returns:
        ``(ystar, low)``: ``low`` marks events too light for any y* at this imbalance
        (c <= 1); their chi goes up to the edge at ``IMB_MIN`` and their imbalance is solved.
    """
    n = mjj.shape[0]
    c = mjj / (2 * PT_LEAD_MIN * np.sqrt(imb))
    low = c <= 1.0
    c = np.maximum(np.where(low, mjj / (2 * PT_LEAD_MIN * np.sqrt(IMB_MIN)), c), 1.0)
    chi_max = (c + np.sqrt(c * c - 1.0)) ** 2
    chi = 1.0 + (chi_max - 1.0) * rng.random(n)
    return 0.5 * np.log(chi) * rng.choice([-1.0, 1.0], n), low


def _solve_imbalance(mjj, ma, mb, dy, p):
    """Imbalance r = pT2 / pT1 giving ``mjj`` with leading pT ``p`` (Δφ = π, gap ``dy``).

    mjj² - ma² - mb² = 2 (mT1 mT2(r) cosh dy + r p²) is increasing and convex in r, so Newton
    steps from r = 1 approach the root from above without overshooting. Below ``IMB_MIN``
    (including no solution) the caller rejects the event.
    """
    ch = np.cosh(dy)
    target = mjj**2 - ma**2 - mb**2
    mt1 = np.sqrt(p**2 + ma**2)
    r = np.ones_like(p)
    for _ in range(12):
        mt2 = np.sqrt((r * p) ** 2 + mb**2)
        f = 2 * (mt1 * mt2 * ch + r * p**2) - target
        df = 2 * (mt1 * ch * r * p**2 / mt2 + p**2)
        r = np.maximum(r - f / df, 0.0)
    return np.minimum(r, 1.0)


def _eta_from_y(y, pt, m):
    return np.arcsinh(np.sqrt(pt**2 + m**2) / pt * np.sinh(y))


def sample_events(process: str, rng: np.random.Generator, n: int, p: dict[str, float]) -> dict:
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
        assert mjj is not None  # drawn first (only svj draws it here)
        ma, mb = _qcd_masses(rng, mjj)
        ta, tb = _qcd_tau21(rng, ma), _qcd_tau21(rng, mb)
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
    assert mjj is not None
    # pT imbalance from extra radiation: subleading = imb * leading
    imb = np.clip(
        1
        - np.abs(rng.normal(0, 0.05, n))
        - np.where(rng.random(n) < 0.2, rng.exponential(0.1, n), 0.0),
        IMB_MIN,
        1.0,
    )
    if process == "qcd":
        ystar, low = _qcd_ystar(rng, mjj, imb)
    swap = rng.random(n) < 0.5  # which hard jet is the leading one
    # full (visible + invisible) four-momenta of the hard jets
    fa, fb = 1 / (1 - r_a), 1 / (1 - r_b)
    m1, m2 = np.where(swap, mb * fb, ma * fa), np.where(swap, ma * fa, mb * fb)
    pt1 = _solve_lead_pt(mjj, m1, m2, 2 * ystar, imb)
    if process == "qcd":
        # QCD lighter than 2 PT_LEAD_MIN sqrt(imb) passes the leading-jet cut only through a
        # larger pT imbalance: solve for it.
        pt_need = PT_LEAD_MIN * (1.001 + 0.04 * rng.exponential(1.0, n))
        idx = np.flatnonzero(low)
        dy = 2 * ystar[idx]
        r = _solve_imbalance(mjj[idx], m1[idx], m2[idx], dy, pt_need[idx])
        imb[idx] = np.where(r < IMB_MIN, np.nan, r)  # too light: rejected
        pt1[idx] = _solve_lead_pt(mjj[idx], m1[idx], m2[idx], dy, imb[idx])
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
