"""Jets from constituents: generation, four-vector sums and N-subjettiness.

Step 3 and 4 of :mod:`adcoffea.synthetic`. Constituents are stored flat and grouped contiguously
by jet: ``jet_id`` is a sorted integer array (one entry per constituent) and ``n_jets`` the
number of jets. Random numbers are drawn for the whole sample at once with numpy; the per-jet
arithmetic (tuning the substructure, setting the kinematics, N-subjettiness) runs in compiled
numba kernels that loop over the jets (numba is a dependency of coffea), so there is no
per-jet Python loop and every jet costs a few microseconds.

Example:
    >>> import numpy as np
    >>> from adcoffea.synthetic.jets import four_vector_sum
    >>> pt, eta, phi, m = four_vector_sum(
    ...     np.array([100.0, 100.0]), np.zeros(2), np.array([0.1, -0.1]), np.zeros(2),
    ...     np.array([0, 0]), 1)
    >>> round(float(m[0]), 2)  # two massless 100 GeV particles 0.2 apart in phi
    19.97
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: substructure-tuning steps and mass (angular dilation) steps per jet
TUNE_STEPS = 5
MASS_STEPS = 3
#: Lloyd steps of the stored N-subjettiness axes
NSUB_ITER = 3
#: most constituents of one jet
MAX_CONSTITUENTS = 200


def segment_sum(values: np.ndarray, jet_id: np.ndarray, n_jets: int) -> np.ndarray:
    """Sum ``values`` per jet (``jet_id`` need not be sorted)."""
    return np.bincount(jet_id, weights=values, minlength=n_jets)


def four_vector_sum(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    mass: np.ndarray,
    jet_id: np.ndarray,
    n_jets: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pt, eta, phi, mass) of the four-vector sum of the constituents of each jet (float64)."""
    pt, eta, phi, mass = (np.asarray(v, dtype=np.float64) for v in (pt, eta, phi, mass))
    px = segment_sum(pt * np.cos(phi), jet_id, n_jets)
    py = segment_sum(pt * np.sin(phi), jet_id, n_jets)
    pz_i = pt * np.sinh(eta)
    pz = segment_sum(pz_i, jet_id, n_jets)
    e = segment_sum(np.sqrt(pt * pt + pz_i * pz_i + mass * mass), jet_id, n_jets)
    jpt = np.hypot(px, py)
    jeta = np.arcsinh(pz / np.maximum(jpt, 1e-12))
    jphi = np.arctan2(py, px)
    m2 = e * e - px * px - py * py - pz * pz
    return jpt, jeta, jphi, np.sqrt(np.maximum(m2, 0.0))


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles to [-π, π)."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi


def _starts(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


# --------------------------------------------------------------------------------------------
# N-subjettiness


@njit(cache=True)
def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True)
def _nsub(w, x, y, n_axes, n_iter, assign, d2min, ax, ay, wk, sx, sy):  # pragma: no cover
    """Unnormalised tau_N = sum w * distance to the nearest axis, of one jet (numba).

    Axes: greedy seeds (the hardest constituent, then repeatedly the one with the largest
    w x distance to the nearest axis so far; ties go to the first), then ``n_iter`` Lloyd
    steps. ``assign`` receives the index of the nearest axis of every constituent.
    """
    n = w.shape[0]
    best = 0
    for i in range(1, n):
        if w[i] > w[best]:
            best = i
    ax[0] = x[best]
    ay[0] = y[best]
    if n_axes > 1:
        for i in range(n):
            dx = x[i] - ax[0]
            dy = y[i] - ay[0]
            d2min[i] = dx * dx + dy * dy
    for k in range(1, n_axes):
        # the largest w * distance, compared squared (w > 0)
        best = 0
        score = w[0] * w[0] * d2min[0]
        for i in range(1, n):
            s = w[i] * w[i] * d2min[i]
            if s > score:
                score = s
                best = i
        ax[k] = x[best]
        ay[k] = y[best]
        if k < n_axes - 1:
            for i in range(n):
                dx = x[i] - ax[k]
                dy = y[i] - ay[k]
                d2 = dx * dx + dy * dy
                if d2 < d2min[i]:
                    d2min[i] = d2
    if n_axes == 1:
        n_iter = min(n_iter, 1)  # one axis: the first step puts it on the centroid for good
    tau = 0.0
    for it in range(n_iter + 1):
        last = it == n_iter
        for k in range(n_axes):
            wk[k] = 0.0
            sx[k] = 0.0
            sy[k] = 0.0
        # assign each constituent to its nearest axis (ties: the first), and accumulate
        for i in range(n):
            dx = x[i] - ax[0]
            dy = y[i] - ay[0]
            dmin = dx * dx + dy * dy
            kmin = 0
            for k in range(1, n_axes):
                dx = x[i] - ax[k]
                dy = y[i] - ay[k]
                d2 = dx * dx + dy * dy
                if d2 < dmin:
                    dmin = d2
                    kmin = k
            assign[i] = kmin
            if last:
                tau += w[i] * math.sqrt(dmin)
            else:
                wk[kmin] += w[i]
                sx[kmin] += w[i] * x[i]
                sy[kmin] += w[i] * y[i]
        if last:
            break
        for k in range(n_axes):
            if wk[k] > 0:  # an axis that lost all its constituents keeps its position
                ax[k] = sx[k] / wk[k]
                ay[k] = sy[k] / wk[k]
    return tau


@njit(cache=True)
def _nsub_all(w, x, y, starts, n_axes, n_iter, tau, assign):  # pragma: no cover
    ax = np.empty(n_axes)
    ay = np.empty(n_axes)
    wk = np.empty(n_axes)
    sx = np.empty(n_axes)
    sy = np.empty(n_axes)
    d2min = np.empty(w.shape[0])
    for j in range(starts.shape[0] - 1):
        lo, hi = starts[j], starts[j + 1]
        total = 0.0
        for i in range(lo, hi):
            total += w[i]
        raw = _nsub(
            w[lo:hi],
            x[lo:hi],
            y[lo:hi],
            n_axes,
            n_iter,
            assign[lo:hi],
            d2min[lo:hi],
            ax,
            ay,
            wk,
            sx,
            sy,
        )
        tau[j] = raw / total


def nsubjettiness(
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    jet_id: np.ndarray,
    n_jets: int,
    n_axes: int,
    *,
    n_iter: int = NSUB_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """N-subjettiness tau_N (beta = 1, R0 = 1) of every jet, normalised by the summed weight.

    ``x``, ``y`` are the constituents' (Δη, Δφ) relative to the jet axis (Δφ already wrapped),
    ``weight`` their pT, ``jet_id`` sorted, every jet with at least one constituent. Axes:
    seeded greedily (the hardest constituent, then repeatedly the constituent with the largest
    pT × distance to the nearest axis so far, i.e. the one that lowers tau most), then refined
    by ``n_iter`` Lloyd steps (assign each constituent to its nearest axis, move each axis to
    the pT-weighted centroid of its constituents). This is the "one-pass" minimisation used for
    N-subjettiness axes, with centroids in place of the exact beta = 1 medians; it gives an
    upper bound on the true minimum that is close to it.

    Returns:
        ``(tau, assign)``: tau_N per jet and the index of the nearest axis per constituent.

    Example:
        >>> import numpy as np
        >>> w, x = np.array([1.0, 1.0]), np.array([-0.5, 0.5])
        >>> tau, _ = nsubjettiness(w, x, np.zeros(2), np.array([0, 0]), 1, 1)
        >>> float(tau[0])  # both 0.5 from the centroid axis
        0.5
    """
    starts = _starts(np.bincount(jet_id, minlength=n_jets))
    tau = np.empty(n_jets)
    assign = np.zeros(np.shape(x), dtype=np.int8)
    _nsub_all(
        np.ascontiguousarray(weight, dtype=np.float64),
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        starts,
        int(n_axes),
        int(n_iter),
        tau,
        assign,
    )
    return tau, assign


# --------------------------------------------------------------------------------------------
# constituents


@njit(cache=True)
def _build_kernel(  # pragma: no cover
    starts, frac, prong_x, prong_y, nprong, pt_t, eta_t, phi_t, m_t, target,
    u_prong, z_share, g_x, g_y, mass,
    out_pt, out_eta, out_phi, out_order,
):  # fmt: skip
    """Constituents of every jet (see :func:`build_constituents`); writes the ``out_`` arrays."""
    nmax = 0
    for j in range(starts.shape[0] - 1):
        nmax = max(nmax, starts[j + 1] - starts[j])
    f = np.empty(nmax)
    bx = np.empty(nmax)
    by = np.empty(nmax)
    gx = np.empty(nmax)
    gy = np.empty(nmax)
    x = np.empty(nmax)
    y = np.empty(nmax)
    w = np.empty(nmax)
    prong = np.empty(nmax, dtype=np.int64)
    assign = np.empty(nmax, dtype=np.int8)
    d2min = np.empty(nmax)
    ax = np.empty(3)
    ay = np.empty(3)
    wk = np.empty(3)
    sx = np.empty(3)
    sy = np.empty(3)
    cum = np.empty(3)
    wsum = np.empty(3)
    cnt = np.empty(3)
    for j in range(starts.shape[0] - 1):
        lo = starts[j]
        n = starts[j + 1] - lo
        npr = nprong[j]
        # prongs: the first npr constituents one each, the rest with probability ∝ sqrt(share)
        tot = 0.0
        for k in range(3):
            cum[k] = math.sqrt(frac[j, k])
            tot += cum[k]
        acc = 0.0
        for k in range(3):
            acc += cum[k] / tot
            cum[k] = acc
            wsum[k] = 0.0
            cnt[k] = 0.0
        for i in range(n):
            if i < npr:
                p = i
            else:
                p = 0
                for k in range(3):
                    if u_prong[lo + i] > cum[k]:
                        p += 1
                p = min(p, npr - 1)
            prong[i] = p
            w[i] = math.exp(0.9 * z_share[lo + i])  # log-normal pT shares within a prong
            wsum[p] += w[i]
            cnt[p] += 1.0
        for i in range(n):
            p = prong[i]
            f[i] = frac[j, p] * w[i] / wsum[p]
            # softer constituents sit wider
            # (w cnt / wsum)^-0.3 with log w = 0.9 z
            h = math.exp(-0.3 * (0.9 * z_share[lo + i] + math.log(cnt[p] / wsum[p])))
            h = min(max(h, 0.3), 4.0)
            gx[i] = g_x[lo + i] * h
            gy[i] = g_y[lo + i] * h
            bx[i] = prong_x[j, p]
            by[i] = prong_y[j, p]

        # the within-prong spread s for which the constituents' tau21 (tau32) hits its target
        s = 0.3
        for step in range(TUNE_STEPS + 1):
            cx = 0.0
            cy = 0.0
            for i in range(n):
                x[i] = bx[i] + s * gx[i]
                y[i] = by[i] + s * gy[i]
                cx += f[i] * x[i]
                cy += f[i] * y[i]
            for i in range(n):
                x[i] -= cx
                y[i] -= cy
            if step == TUNE_STEPS:
                break
            tau1 = 0.0  # axis = the pT centroid = the origin
            for i in range(n):
                tau1 += f[i] * math.sqrt(x[i] * x[i] + y[i] * y[i])
            fs = f[:n]
            tau2 = _nsub(fs, x[:n], y[:n], 2, 1, assign, d2min, ax, ay, wk, sx, sy)
            if npr == 3:
                tau3 = _nsub(fs, x[:n], y[:n], 3, 1, assign, d2min, ax, ay, wk, sx, sy)
                ratio = tau3 / max(tau2, 1e-12)
            else:
                ratio = tau2 / max(tau1, 1e-12)
            s = min(max(s * min(max(target[j] / max(ratio, 1e-4), 0.4), 2.5), 1e-3), 6.0)

        # Kinematics. In a frame at rapidity 0, constituent i sits at rapidity lam x_i and
        # azimuth lam y_i; the dilation lam sets the jet's m/pT (tau ratios are invariant
        # under it). Then a common pT scale sets pT, and a longitudinal boost and a rotation
        # put the jet at the target (eta, phi): both keep pT and mass exactly.
        r2 = 0.0
        for i in range(n):
            r2 += f[i] * (x[i] * x[i] + y[i] * y[i])
        ratio_t = m_t[j] / pt_t[j]
        lam = ratio_t / math.sqrt(max(r2, 1e-12))
        jpx = jpy = jpz = je = 0.0
        for step in range(MASS_STEPS + 1):
            jpx = jpy = jpz = je = 0.0
            for i in range(n):
                pt = f[i] * pt_t[j]
                mt = math.sqrt(pt * pt + mass[lo + i] * mass[lo + i])
                ey = math.exp(lam * x[i])
                jpx += pt * math.cos(lam * y[i])
                jpy += pt * math.sin(lam * y[i])
                jpz += mt * 0.5 * (ey - 1.0 / ey)
                je += mt * 0.5 * (ey + 1.0 / ey)
            jpt = math.sqrt(jpx * jpx + jpy * jpy)
            jm = math.sqrt(max(je * je - jpt * jpt - jpz * jpz, 0.0))
            if step == MASS_STEPS:
                break
            lam *= min(max(ratio_t / max(jm / jpt, 1e-9), 0.5), 2.0)
        jpt = math.sqrt(jpx * jpx + jpy * jpy)
        cpt = pt_t[j] / jpt
        jmt = math.sqrt(max(je * je - jpz * jpz, 1e-12))
        y_jet = math.asinh(jpz / jmt)
        # the jet rapidity that gives the target pseudorapidity at this m/pT
        y_t = math.asinh(jpt / jmt * math.sinh(eta_t[j]))
        dy = y_t - y_jet
        dphi = phi_t[j] - math.atan2(jpy, jpx)  # rotation from the frame to the target
        # pT-ordered output (stable: ties keep their order)
        order = np.argsort(-f[:n], kind="mergesort")
        for r in range(n):
            i = order[r]
            pt = f[i] * pt_t[j] * cpt
            m = mass[lo + i]
            yi = lam * x[i] + dy
            out_pt[lo + r] = pt
            if m > 0:
                # pseudorapidity of a particle of rapidity yi: sinh(eta) = mT / pT sinh(yi)
                ey = math.exp(yi)
                v = math.sqrt(1.0 + (m / pt) ** 2) * 0.5 * (ey - 1.0 / ey)
                out_eta[lo + r] = math.log(v + math.sqrt(v * v + 1.0))
            else:
                out_eta[lo + r] = yi
            out_phi[lo + r] = _wrap(dphi + lam * y[i])
            out_order[lo + r] = lo + i


# constituent species: pi+, pi-, photon, K0L (cumulative probabilities of the first three)
_SPECIES_CUM = np.array([0.31, 0.62, 0.87], dtype=np.float32)
_SPECIES_PDG = np.array([211, -211, 22, 130], dtype=np.int32)
_SPECIES_CHARGE = np.array([1, -1, 0, 0], dtype=np.int32)
_SPECIES_MASS = np.array([0.13957, 0.13957, 0.0, 0.4976])
_SPECIES_MASS32 = _SPECIES_MASS.astype(np.float32)


def build_constituents(rng: np.random.Generator, jets: dict[str, np.ndarray]) -> dict:
    """Generate constituents for every jet so that their sums hit the jet targets.

    ``jets`` holds flat per-jet arrays: pt, eta, phi, mass, tau (target tau21 or tau32),
    nprong (2 or 3), qcd (bool, QCD-like soft splitting). Constituents are scattered around 2 or
    3 prong axes; their spread is tuned per jet until the tau ratio computed from them hits the
    target, then a dilation, a pT scale, a boost and a rotation set the jet's four-vector.
    """
    nj = jets["pt"].shape[0]
    pt_t, eta_t, phi_t, m_t = (
        np.asarray(jets[k], dtype=np.float64) for k in ("pt", "eta", "phi", "mass")
    )
    nprong = np.asarray(jets["nprong"], dtype=np.int64)
    # multiplicity: heavier and more prongs -> more constituents
    lam = 8.0 + 25.0 * m_t / (m_t + 150.0) + 6.0 * (nprong - 2) + 4.0 * (pt_t > 800)
    n_c = np.clip(10 + rng.poisson(lam), 8, MAX_CONSTITUENTS).astype(np.int64)
    nc_tot = int(n_c.sum())

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
    px -= (frac * px).sum(1)[:, None]
    py -= (frac * py).sum(1)[:, None]

    # per constituent: prong choice, pT share, offsets from the prong axis (float32 draws are
    # faster and precise enough: everything stored is recomputed from the float32 output)
    u_prong = rng.random(nc_tot, dtype=np.float32)
    z_share = rng.standard_normal(nc_tot, dtype=np.float32)
    g_x = rng.standard_normal(nc_tot, dtype=np.float32)
    g_y = rng.standard_normal(nc_tot, dtype=np.float32)
    # species: 62 % charged pions (half each sign), 25 % photons, 13 % neutral hadrons (K0L)
    species = np.searchsorted(_SPECIES_CUM, rng.random(nc_tot, dtype=np.float32), side="right")
    mass = _SPECIES_MASS[species]

    c_pt = np.empty(nc_tot)
    c_eta = np.empty(nc_tot)
    c_phi = np.empty(nc_tot)
    order = np.empty(nc_tot, dtype=np.int64)
    _build_kernel(
        _starts(n_c),
        frac,
        px,
        py,
        nprong,
        pt_t,
        eta_t,
        phi_t,
        m_t,
        np.clip(np.asarray(jets["tau"], dtype=np.float64), 0.03, 0.97),
        u_prong,
        z_share,
        g_x,
        g_y,
        mass,
        c_pt,
        c_eta,
        c_phi,
        order,
    )
    species = species[order]
    charge = _SPECIES_CHARGE[species]
    # impact parameters (cm) of the charged ones
    charged = np.flatnonzero(charge)
    d0 = np.zeros(nc_tot, dtype=np.float32)
    dz = np.zeros(nc_tot, dtype=np.float32)
    d0[charged] = 0.003 * rng.standard_normal(charged.shape[0], dtype=np.float32)
    dz[charged] = 0.006 * rng.standard_normal(charged.shape[0], dtype=np.float32)
    return {
        "n_const": n_c,
        "pt": c_pt.astype(np.float32),
        "eta": c_eta.astype(np.float32),
        "phi": c_phi.astype(np.float32),
        "mass": _SPECIES_MASS32[species],
        "pdgId": _SPECIES_PDG[species],
        "charge": charge,
        "d0": d0,
        "dz": dz,
    }


# --------------------------------------------------------------------------------------------
# stored jet observables


@njit(cache=True)
def _observables_kernel(pt, eta, phi, mass, starts, out, z_cut, soft):  # pragma: no cover
    """Per jet: pt, eta, phi, mass, msoftdrop, tau1..tau4 (``out`` columns 0..8)."""
    nmax = 0
    for j in range(starts.shape[0] - 1):
        nmax = max(nmax, starts[j + 1] - starts[j])
    w = np.empty(nmax)
    x = np.empty(nmax)
    y = np.empty(nmax)
    cpx = np.empty(nmax)
    cpy = np.empty(nmax)
    cpz = np.empty(nmax)
    ce = np.empty(nmax)
    assign = np.empty(nmax, dtype=np.int8)
    assign2 = np.empty(nmax, dtype=np.int8)
    d2min = np.empty(nmax)
    ax = np.empty(4)
    ay = np.empty(4)
    wk = np.empty(4)
    sx = np.empty(4)
    sy = np.empty(4)
    for j in range(starts.shape[0] - 1):
        lo = starts[j]
        n = starts[j + 1] - lo
        jpx = jpy = jpz = je = total = 0.0
        for i in range(n):
            p = np.float64(pt[lo + i])
            m = np.float64(mass[lo + i])
            w[i] = p
            ph = np.float64(phi[lo + i])  # float64 arithmetic on the float32 constituents
            cpx[i] = p * math.cos(ph)
            cpy[i] = p * math.sin(ph)
            cpz[i] = p * math.sinh(np.float64(eta[lo + i]))
            ce[i] = math.sqrt(p * p + cpz[i] * cpz[i] + m * m)
            jpx += cpx[i]
            jpy += cpy[i]
            jpz += cpz[i]
            je += ce[i]
            total += p
        jpt = math.sqrt(jpx * jpx + jpy * jpy)
        jeta = math.asinh(jpz / max(jpt, 1e-12))
        jphi = math.atan2(jpy, jpx)
        out[j, 0] = jpt
        out[j, 1] = jeta
        out[j, 2] = jphi
        out[j, 3] = math.sqrt(max(je * je - jpt * jpt - jpz * jpz, 0.0))
        for i in range(n):
            x[i] = np.float64(eta[lo + i]) - jeta
            y[i] = _wrap(np.float64(phi[lo + i]) - jphi)
        for n_axes in range(1, 5):
            raw = _nsub(w[:n], x[:n], y[:n], n_axes, NSUB_ITER, assign, d2min, ax, ay, wk, sx, sy)
            out[j, 4 + n_axes] = raw / total
            if n_axes == 2:
                assign2[:n] = assign[:n]
        # mMDT-like groomed mass at prong level (a proxy, not a reclustering): split into the
        # two tau2 subjets; if the softer carries a pT share above z_cut keep both and groom
        # only constituents with share < soft, else keep the harder subjet alone.
        s1 = 0.0
        for i in range(n):
            if assign2[i] == 1:
                s1 += w[i]
        zsub = min(s1, total - s1) / total
        hard = 1 if s1 > total - s1 else 0
        gpx = gpy = gpz = ge = 0.0
        for i in range(n):
            keep = w[i] / total >= soft if zsub > z_cut else assign2[i] == hard
            if keep:
                gpx += cpx[i]
                gpy += cpy[i]
                gpz += cpz[i]
                ge += ce[i]
        out[j, 4] = math.sqrt(max(ge * ge - gpx * gpx - gpy * gpy - gpz * gpz, 0.0))


def jet_observables(c: dict, n_jets: int) -> dict[str, np.ndarray]:
    """FatJet branches recomputed from the float32 constituents.

    ``msoftdrop`` is an mMDT-like groomed mass at prong level (z_cut = 0.1; a documented proxy,
    not a reclustering); ``tau1..4`` are :func:`nsubjettiness` with ``NSUB_ITER`` Lloyd steps.
    """
    out = np.empty((n_jets, 9))
    _observables_kernel(
        c["pt"], c["eta"], c["phi"], c["mass"], _starts(c["n_const"]), out, 0.1, 0.005
    )
    names = ("pt", "eta", "phi", "mass", "msoftdrop", "tau1", "tau2", "tau3", "tau4")
    obs = {k: out[:, i] for i, k in enumerate(names)}
    obs["nConstituents"] = c["n_const"]
    return obs
