"""Vectorised jet kinematics on flat constituent arrays (private helpers of the generator).

Constituents are stored flat and grouped contiguously by jet: ``jet_id`` is a sorted integer
array (one entry per constituent) and ``n_jets`` the number of jets. All functions work on
whole samples at once with ``numpy.bincount`` segment sums; there is no per-jet Python loop.
"""

from __future__ import annotations

import numpy as np


def segment_sum(values: np.ndarray, jet_id: np.ndarray, n_jets: int) -> np.ndarray:
    """Sum ``values`` per jet (``jet_id`` need not be sorted)."""
    return np.bincount(jet_id, weights=values, minlength=n_jets)


def first_of_segment(jet_id: np.ndarray) -> np.ndarray:
    """Boolean mask of the first constituent of every jet (``jet_id`` sorted)."""
    mask = np.ones(jet_id.shape, dtype=bool)
    mask[1:] = jet_id[1:] != jet_id[:-1]
    return mask


def segment_argmax(score: np.ndarray, jet_id: np.ndarray, n_jets: int) -> np.ndarray:
    """Index (into the flat array) of the maximum of ``score`` per jet; ``jet_id`` sorted.

    Every jet must have at least one constituent. Ties resolve to the first occurrence.
    """
    starts = np.flatnonzero(first_of_segment(jet_id))
    best = np.maximum.reduceat(score, starts)
    hit = np.flatnonzero(score >= best[jet_id])
    first = np.ones(hit.shape, dtype=bool)
    first[1:] = jet_id[hit[1:]] != jet_id[hit[:-1]]
    out = hit[first]
    assert out.shape[0] == n_jets
    return out


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


def nsubjettiness(
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    jet_id: np.ndarray,
    n_jets: int,
    n_axes: int,
    *,
    n_iter: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """N-subjettiness tau_N (beta = 1, R0 = 1) of every jet, normalised by the summed weight.

    ``x``, ``y`` are the constituents' (Δη, Δφ) relative to the jet axis (Δφ already wrapped),
    ``weight`` their pT, ``jet_id`` sorted. Axes: seeded greedily (the hardest constituent, then
    repeatedly the constituent with the largest pT × distance to the nearest axis so far, i.e. the
    one that lowers tau most), then refined by ``n_iter`` Lloyd steps (assign each constituent to
    its nearest axis, move each axis to the pT-weighted centroid of its constituents). This is the
    "one-pass" minimisation used for N-subjettiness axes, with centroids in place of the exact
    beta = 1 medians; it gives an upper bound on the true minimum that is close to it.

    Returns:
        ``(tau, assign)``: tau_N per jet and the index of the nearest axis per constituent.
    """
    counts = np.bincount(jet_id, minlength=n_jets)
    total = np.bincount(jet_id, weights=weight, minlength=n_jets)
    ax = np.empty((n_axes, n_jets))
    ay = np.empty((n_axes, n_jets))

    def dist2(k: int) -> np.ndarray:
        dx = x - np.repeat(ax[k], counts)
        dy = y - np.repeat(ay[k], counts)
        return dx * dx + dy * dy

    seed = segment_argmax(weight, jet_id, n_jets)
    ax[0], ay[0] = x[seed], y[seed]
    d2min = dist2(0)
    for k in range(1, n_axes):
        seed = segment_argmax(weight * np.sqrt(d2min), jet_id, n_jets)
        ax[k], ay[k] = x[seed], y[seed]
        d2min = np.minimum(d2min, dist2(k))
    assign = np.zeros(x.shape, dtype=np.int8)
    for it in range(n_iter + 1):
        if it > 0 or n_axes > 1:
            d2min = dist2(0)
            assign[:] = 0
            for k in range(1, n_axes):
                d2 = dist2(k)
                closer = d2 < d2min
                assign[closer] = k
                np.minimum(d2min, d2, out=d2min)
        if it == n_iter:
            break
        key = jet_id * n_axes + assign
        size = n_jets * n_axes
        wk = np.bincount(key, weights=weight, minlength=size).reshape(n_jets, n_axes).T
        sx = np.bincount(key, weights=weight * x, minlength=size).reshape(n_jets, n_axes).T
        sy = np.bincount(key, weights=weight * y, minlength=size).reshape(n_jets, n_axes).T
        ok = wk > 0
        # An axis that lost all its constituents keeps its position.
        safe = np.where(ok, wk, 1.0)
        ax = np.where(ok, sx / safe, ax)
        ay = np.where(ok, sy / safe, ay)
    tau = np.bincount(jet_id, weights=weight * np.sqrt(d2min), minlength=n_jets) / total
    return tau, assign


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles to [-π, π)."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi
