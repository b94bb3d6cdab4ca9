"""Vectorised preprocessing of model inputs: standardisation, constituent coordinates, and the
VRNN jet alignment with kT ordering.

All functions work on whole arrays (no per-event Python loops); constants that a bundle needs
at scoring time are plain lists so they go into ``metadata.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Reference mass and energy of the VRNN jet alignment (GeV).
ALIGN_MASS = 250.0
ALIGN_ENERGY = 1000.0


@dataclass(frozen=True)
class Standardizer:
    """Affine map ``(x - mean) / scale`` per column, with constants stored as JSON lists."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @staticmethod
    def fit(x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        std = x.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays finite
        return Standardizer(tuple(map(float, x.mean(axis=0))), tuple(map(float, std)))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "scale": list(self.scale)}

    @staticmethod
    def from_dict(d: dict) -> Standardizer:
        return Standardizer(tuple(d["mean"]), tuple(d["scale"]))


@dataclass(frozen=True)
class LogitScaler:
    """CATHODE preprocessing for density estimation: min-max to (0, 1), logit, standardise.

    Maps bounded features (masses, tau ratios) to an unbounded space that a flow models well;
    ``inverse`` maps samples back into the physical range.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    standardizer: Standardizer

    @staticmethod
    def fit(x: np.ndarray, *, margin: float = 0.02) -> LogitScaler:
        lo, hi = x.min(axis=0), x.max(axis=0)
        pad = margin * np.maximum(hi - lo, 1e-6)
        lo, hi = lo - pad, hi + pad
        u = _logit((x - lo) / (hi - lo))
        return LogitScaler(tuple(map(float, lo)), tuple(map(float, hi)), Standardizer.fit(u))

    def transform(self, x: np.ndarray) -> np.ndarray:
        u = np.clip((x - np.asarray(self.low)) / (np.asarray(self.high) - self.low), 1e-6, 1 - 1e-6)
        return self.standardizer.transform(_logit(u))

    def inverse(self, y: np.ndarray) -> np.ndarray:
        u = np.asarray(y, np.float64) * self.standardizer.scale + self.standardizer.mean
        return (1.0 / (1.0 + np.exp(-u))) * (np.asarray(self.high) - self.low) + self.low

    @property
    def n_features(self) -> int:
        return len(self.low)


@dataclass(frozen=True)
class GaussianQuantileScaler:
    """Per-feature map to a standard normal through the empirical quantiles (and back).

    Each feature goes through its empirical CDF (piecewise linear between quantile knots) and
    the normal quantile function, so every marginal is close to N(0, 1): a density model then
    learns only the dependence between the features and on the condition, not shapes such as
    a jet mass spread over decades, which an affine flow smooths out. Knots sit at evenly
    spaced probabilities plus evenly spaced normal quantiles (the tails); the data minimum
    and maximum are the outermost knots, so ``inverse`` stays inside the data range.
    """

    knots: tuple[tuple[float, ...], ...]  # per feature: data quantiles at ``gauss``
    gauss: tuple[float, ...]  # the normal quantiles of the knot levels

    @staticmethod
    def fit(x: np.ndarray, *, n_quantiles: int = 1000) -> GaussianQuantileScaler:
        from scipy.special import ndtr, ndtri

        x = np.asarray(x, dtype=np.float64)
        g_max = float(ndtri(1.0 - 0.5 / len(x)))
        levels = np.unique(np.r_[np.linspace(0.5, len(x) - 0.5, n_quantiles) / len(x),
                                 ndtr(np.linspace(-g_max, g_max, 60))])  # fmt: skip
        gauss = np.r_[-g_max - 0.5, ndtri(levels), g_max + 0.5]
        q = np.quantile(x, np.r_[0.0, levels, 1.0], axis=0)
        q = np.maximum.accumulate(q, axis=0)  # monotone even with ties
        return GaussianQuantileScaler(tuple(map(tuple, q.T)), tuple(map(float, gauss)))

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(self.gauss)
        cols = [np.interp(x[:, j], np.asarray(k), g) for j, k in enumerate(self.knots)]
        return np.stack(cols, axis=1).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        g = np.asarray(self.gauss)
        return np.stack([np.interp(y[:, j], g, np.asarray(k)) for j, k in enumerate(self.knots)],
                        axis=1)  # fmt: skip

    @property
    def n_features(self) -> int:
        return len(self.knots)


def _logit(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 1e-6, 1 - 1e-6)
    return np.log(u) - np.log1p(-u)


def _wrap(dphi: np.ndarray) -> np.ndarray:
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def four_vectors(constituents: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(pt, eta, phi, m) -> (px, py, pz, E) with padded entries set to zero (last axis 4)."""
    pt, eta, phi, m = np.moveaxis(np.asarray(constituents, np.float64), -1, 0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    p4 = np.stack([px, py, pz, e], axis=-1)
    return np.where(mask[..., None], p4, 0.0)


def jet_kinematics(constituents: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(pt, eta, phi, mass) of the constituent sums, shape ``constituents.shape[:-2] + (4,)``."""
    px, py, pz, e = np.moveaxis(four_vectors(constituents, mask).sum(axis=-2), -1, 0)
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    return np.stack([pt, eta, np.arctan2(py, px), mass], axis=-1)


def particle_features(
    constituents: np.ndarray, mask: np.ndarray, jets: np.ndarray | None = None
) -> np.ndarray:
    """Per-particle PFN inputs relative to the jet: (pt/pt_jet, eta - eta_jet, wrapped dphi).

    Shapes: constituents (..., P, 4), mask (..., P), jets (..., 4) (default: the constituent
    sums). Padded entries are zero. Relative coordinates make the embedding independent of
    where the jet points and of its overall momentum scale.
    """
    if jets is None:
        jets = jet_kinematics(constituents, mask)
    c = np.asarray(constituents, np.float64)
    j = np.asarray(jets, np.float64)[..., None, :]
    rel_pt = np.divide(c[..., 0], j[..., 0], out=np.zeros_like(c[..., 0]), where=j[..., 0] > 0)
    feats = np.stack([rel_pt, c[..., 1] - j[..., 1], _wrap(c[..., 2] - j[..., 2])], axis=-1)
    return np.where(mask[..., None], feats, 0.0).astype(np.float32)


def antelope_particle_features(
    constituents: np.ndarray, mask: np.ndarray, jets: np.ndarray | None = None
) -> np.ndarray:
    """ANTELOPE per-particle inputs: (pt/pt_jet, eta - eta_jet, wrapped dphi, log(pt / GeV)).

    The relative coordinates of :func:`particle_features` only carry the jet's shape (its
    mass in units of its pt); the absolute log pt lets the PFN rebuild the jet pt and mass,
    the quantities in which a heavy resonance's jets differ most from QCD. Padded entries are
    zero (standardise over the real entries before feeding a network).
    """
    rel = particle_features(constituents, mask, jets)
    pt = np.asarray(constituents, np.float64)[..., 0]
    log_pt = np.log(np.where(mask & (pt > 0), pt, 1.0))
    out = np.concatenate([rel, log_pt[..., None].astype(np.float32)], axis=-1)
    return np.where(mask[..., None], out, 0.0).astype(np.float32)


def select_jet(
    constituents: np.ndarray,
    mask: np.ndarray,
    jets: np.ndarray | None,
    which: str | int = "heavier",
) -> tuple[np.ndarray, np.ndarray]:
    """Constituents (n, P, 4) and mask (n, P) of one jet per event.

    ``which`` is ``"leading"`` (highest pt, index 0), ``"heavier"``, ``"lighter"`` or an index.
    """
    n = len(constituents)
    if isinstance(which, int) or (isinstance(which, str) and which.isdigit()):
        idx = np.full(n, int(which))
    elif which == "leading":
        idx = np.zeros(n, dtype=int)
    elif which in ("heavier", "lighter"):
        masses = (jets if jets is not None else jet_kinematics(constituents, mask))[..., 3]
        idx = np.argmax(masses, axis=1) if which == "heavier" else np.argmin(masses, axis=1)
    else:
        raise ValueError(f"jet choice must be leading/heavier/lighter or an index, got {which!r}")
    rows = np.arange(n)
    return constituents[rows, idx], mask[rows, idx]


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0), norm[..., 0]


def align_jet(
    constituents: np.ndarray,
    mask: np.ndarray,
    *,
    mass: float = ALIGN_MASS,
    energy: float = ALIGN_ENERGY,
) -> np.ndarray:
    """ATLAS VRNN jet alignment; returns aligned (pt, eta, phi) per constituent, (n, P, 3).

    1. rescale every four-vector so the jet mass becomes ``mass``;
    2. boost along the jet axis so the jet energy becomes ``energy``;
    3. rotate so the jet axis points to (eta, phi) = (0, 0), the hardest constituent lies at
       phi = 0 with eta > 0, and the second-hardest has phi >= 0 (a reflection).

    Concretely the frame is x = jet axis, y = direction of the hardest constituent's momentum
    transverse to the axis, z = x cross y, flipped so the second-hardest constituent has
    p_z >= 0; pt, eta and phi are then measured around the frame's z axis. pt is returned in
    units of ``energy``. Padded entries are zero.
    """
    p4 = four_vectors(constituents, mask)
    jet = p4.sum(axis=1)
    m_jet = np.sqrt(np.maximum(jet[:, 3] ** 2 - (jet[:, :3] ** 2).sum(-1), 1e-12))
    p4 = p4 * (mass / m_jet)[:, None, None]
    jet = p4.sum(axis=1)
    axis, p_jet = _unit(jet[:, :3])
    # Rapidity along the axis: current and target; a boost by their difference sets E_jet.
    y_now = np.arctanh(np.clip(p_jet / jet[:, 3], -1 + 1e-12, 1 - 1e-12))
    y_to = np.arctanh(np.sqrt(energy**2 - mass**2) / energy)
    beta = np.tanh(y_to - y_now)[:, None]
    gamma = 1.0 / np.sqrt(1.0 - beta**2)
    p_par = (p4[..., :3] * axis[:, None]).sum(-1)
    e = p4[..., 3]
    p_par_new = gamma * (p_par + beta * e)
    p3 = p4[..., :3] + ((p_par_new - p_par)[..., None]) * axis[:, None]
    # Orthonormal frame from the axis and the hardest (highest-pt input) constituent.
    lead = p3[np.arange(len(p3)), np.argmax(np.where(mask, constituents[..., 0], -1), axis=1)]
    perp = lead - (lead * axis).sum(-1, keepdims=True) * axis
    e2, norm = _unit(perp)
    # Fallback when the hardest constituent is collinear with the jet (one-particle jets).
    fallback = _unit(np.cross(axis, np.where(np.abs(axis[:, :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0])))[
        0
    ]
    e2 = np.where((norm > 1e-9)[:, None], e2, fallback)
    e3 = np.cross(axis, e2)
    c1, c2, c3 = ((p3 * v[:, None]).sum(-1) for v in (axis, e2, e3))
    order = np.argsort(np.where(mask, -constituents[..., 0], np.inf), axis=1)
    second = c3[np.arange(len(c3)), order[:, 1]] if c3.shape[1] > 1 else np.zeros(len(c3))
    c3 = c3 * np.where(second < 0, -1.0, 1.0)[:, None]
    pt = np.hypot(c1, c3)
    out = np.stack(
        [
            pt / energy,
            np.arcsinh(np.divide(c2, pt, out=np.zeros_like(pt), where=pt > 0)),
            np.arctan2(c3, c1),
        ],
        axis=-1,
    )
    return np.where(mask[..., None], out, 0.0)


def kt_order(
    features: np.ndarray, mask: np.ndarray, *, n_max: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Order constituents by kT distance: start from the hardest, then repeatedly take the
    remaining constituent with the largest ``kT = pt_j * dR(j, previous)`` (ATLAS VRNN).

    ``features`` is (n, P, 3) of (pt, eta, phi) (e.g. from :func:`align_jet`). Returns the
    ordered (n, n_max, 3) sequence and its mask; the loop runs over sequence positions only.
    """
    n, p, _ = features.shape
    rows = np.arange(n)
    remaining = mask.copy()
    out = np.zeros((n, n_max, 3), dtype=np.float32)
    out_mask = np.zeros((n, n_max), dtype=bool)
    pt, eta, phi = features[..., 0], features[..., 1], features[..., 2]
    current = np.argmax(np.where(remaining, pt, -np.inf), axis=1)
    for t in range(min(n_max, p)):
        valid = remaining[rows, current]
        out[:, t] = np.where(valid[:, None], features[rows, current], 0.0)
        out_mask[:, t] = valid
        remaining[rows, current] = False
        dr = np.hypot(eta - eta[rows, current][:, None], _wrap(phi - phi[rows, current][:, None]))
        current = np.argmax(np.where(remaining, pt * dr, -np.inf), axis=1)
    return out, out_mask


def vrnn_sequences(
    constituents: np.ndarray,
    mask: np.ndarray,
    jets: np.ndarray | None = None,
    *,
    jet: str | int = "heavier",
    n_max: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """VRNN inputs of one jet per event: aligned, kT-ordered (pt, eta, phi) sequences."""
    c, m = select_jet(constituents, mask, jets, jet)
    return kt_order(align_jet(c, m), m, n_max=n_max)
