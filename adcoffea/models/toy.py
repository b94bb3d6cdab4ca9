"""Small seeded samplers of model inputs for tests and benchmarks (no event generator needed).

* :func:`lhco_features` draws the CATHODE high-level features of QCD dijets and of the
  W'(3.5 TeV) -> X(500 GeV) Y(100 GeV) signal from the fitted distributions in
  ``LHCO_REFERENCE.md`` (GeV units, as the processors produce them).
* :func:`point_clouds` draws two-jet constituent sets: one-prong (QCD-like) or two-prong
  (resonance-like) jets, for the constituent-level methods.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from adcoffea.features import ModelInputs

_TAU_M = np.array(
    [0.015, 0.045, 0.075, 0.105, 0.14, 0.18, 0.225, 0.275, 0.325, 0.385, 0.46, 0.55, 0.75]
)
_TAU_MU = np.array(
    [0.617, 0.598, 0.599, 0.614, 0.604, 0.575, 0.534, 0.489, 0.453, 0.410, 0.368, 0.330, 0.307]
)
_TAU_K = np.array([7.0, 5.7, 6.5, 8.8, 9.8, 9.1, 8.3, 7.9, 8.1, 7.8, 7.8, 7.9, 8.0])  # fmt: skip


def _beta(rng, mean, conc):
    return rng.beta(mean * conc, (1.0 - mean) * conc)


def _qcd_mjj(rng, n, lo, hi):
    """Inverse-CDF sampling of the fitted QCD dijet spectrum (TeV) on [lo, hi]."""
    grid = np.linspace(lo, hi, 4001)
    x = grid / 13.0
    pdf = (
        (1 - x) ** 7.80 * x ** -(5.26 + 1.13 * np.log(x)) * 0.5 * (1 + erf((grid - 2.456) / 0.419))
    )
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return np.interp(rng.random(n), cdf / cdf[-1], grid)


def _qcd_tau21(rng, m):
    mu = np.interp(m, _TAU_M, _TAU_MU)
    return _beta(rng, mu, np.interp(m, _TAU_M, _TAU_K))


def lhco_features(
    n_background: int,
    n_signal: int,
    *,
    seed: int,
    mjj_range: tuple[float, float] = (3000.0, 4000.0),
    event_offset: int = 0,
) -> tuple[ModelInputs, np.ndarray]:
    """High-level features of QCD and W' events (shuffled) and their truth labels (1 = W').

    QCD mjj is drawn in ``mjj_range`` (GeV) only; the signal keeps its full mjj shape (events
    outside the range are kept, as in the real sample). Event numbers are
    ``event_offset + arange(n)``.
    """
    rng = np.random.default_rng(seed)
    lo, hi = mjj_range[0] / 1000.0, mjj_range[1] / 1000.0
    mjj_b = _qcd_mjj(rng, n_background, lo, hi)
    z = rng.multivariate_normal([0, 0], [[1, 0.04], [0.04, 1]], size=n_background)
    mu = -1.717 + 0.05 * (mjj_b - 3.5)
    mb = 0.906 * np.tanh(np.exp(mu[:, None] + 0.798 * z) / 0.906)
    tb = _qcd_tau21(rng, mb)
    # Signal
    comp = rng.random(n_signal) < 0.69
    mjj_s = np.where(comp, rng.normal(3.504, 0.112, n_signal), rng.normal(3.424, 0.371, n_signal))
    my = 0.1083 + 0.0128 * rng.standard_normal(n_signal)
    my += np.where(rng.random(n_signal) < 0.24, 0.0825 * rng.exponential(size=n_signal), 0.0)
    ty = _beta(rng, np.clip(0.35 + 0.6 * (my - 0.10), 0.35, 0.5), 10.6)
    mx = 0.4944 + 0.0338 * rng.standard_normal(n_signal)
    mx += np.where(rng.random(n_signal) < 0.21, 0.0559 * rng.exponential(size=n_signal), 0.0)
    tx = np.minimum(0.173 * np.exp(0.64 * rng.standard_normal(n_signal)), 0.99)
    lost = rng.random(n_signal) < 0.076
    mx = np.where(lost, 0.188 * np.exp(0.67 * rng.standard_normal(n_signal)), mx)
    tx = np.where(lost, _qcd_tau21(rng, np.clip(mx, 0, 0.9)), tx)
    ms = np.stack([my, mx], axis=1).clip(0.001, None)
    ts = np.stack([ty, tx], axis=1)
    # Combine, order the two jets by mass
    m = np.concatenate([mb, ms])
    t = np.concatenate([tb, ts])
    mjj = np.concatenate([mjj_b, mjj_s])
    labels = np.concatenate([np.zeros(n_background, np.int8), np.ones(n_signal, np.int8)])
    order = np.argsort(m, axis=1)
    m = np.take_along_axis(m, order, 1)
    t = np.take_along_axis(t, order, 1)
    tau32 = _beta(rng, np.full(m.shape, 0.7), 12.0)  # uninformative in this toy
    perm = rng.permutation(len(mjj))
    hl = {
        "mjj": mjj * 1000.0,
        "mj_min": m[:, 0] * 1000.0,
        "mj_max": m[:, 1] * 1000.0,
        "delta_mj": (m[:, 1] - m[:, 0]) * 1000.0,
        "tau21_min": t[:, 0],
        "tau21_max": t[:, 1],
        "tau32_min": tau32[:, 0],
        "tau32_max": tau32[:, 1],
    }
    hl = {k: np.asarray(v, np.float64)[perm] for k, v in hl.items()}
    event = (event_offset + np.arange(len(perm))).astype(np.uint64)
    return ModelInputs(high_level=hl, event=event), labels[perm]


def point_clouds(
    n: int, *, prongs: int, seed: int, max_particles: int = 24, event_offset: int = 0
) -> ModelInputs:
    """Events with two jets whose constituents form ``prongs`` (1 or 2) collimated clusters.

    Jets have pt ~ 1.5 TeV; two-prong jets split their momentum between subjets separated by
    dR ~ 0.3, one-prong jets are a single core. Constituents are sorted by decreasing pt and
    zero padded; between 12 and ``max_particles`` particles per jet.
    """
    rng = np.random.default_rng(seed)
    shape = (n, 2, max_particles)
    n_real = rng.integers(12, max_particles + 1, size=(n, 2))
    mask = np.arange(max_particles)[None, None, :] < n_real[..., None]
    jet_pt = rng.normal(1500.0, 150.0, size=(n, 2))
    jet_eta = rng.uniform(-1.5, 1.5, size=(n, 2))
    jet_phi = rng.uniform(-np.pi, np.pi, size=(n, 2))
    frac = rng.gamma(0.7, size=shape) * mask
    frac /= frac.sum(-1, keepdims=True)
    spread = 0.04
    deta = rng.normal(0.0, spread, shape)
    dphi = rng.normal(0.0, spread, shape)
    if prongs == 2:
        angle = rng.uniform(0, 2 * np.pi, size=(n, 2, 1))
        half = 0.15 * np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        deta += half * np.cos(angle)
        dphi += half * np.sin(angle)
    elif prongs != 1:
        raise ValueError("prongs must be 1 or 2")
    pt = frac * jet_pt[..., None]
    cons = np.stack(
        [pt, jet_eta[..., None] + deta, (jet_phi[..., None] + dphi + np.pi) % (2 * np.pi) - np.pi,
         np.zeros(shape)], axis=-1,
    )  # fmt: skip
    order = np.argsort(np.where(mask, -pt, np.inf), axis=-1)
    cons = np.take_along_axis(cons, order[..., None], axis=2)
    cons = np.where(mask[..., None], cons, 0.0).astype(np.float32)
    from adcoffea.models.preprocessing import jet_kinematics

    jets = jet_kinematics(cons, mask)
    # Jets ordered by decreasing pt (the processor convention).
    jorder = np.argsort(-jets[..., 0], axis=1)
    cons = np.take_along_axis(cons, jorder[:, :, None, None], axis=1)
    mask = np.take_along_axis(mask, jorder[:, :, None], axis=1)
    jets = np.take_along_axis(jets, jorder[:, :, None], axis=1).astype(np.float32)
    return ModelInputs(
        event=(event_offset + np.arange(n)).astype(np.uint64),
        constituents=cons,
        mask=mask,
        jets=jets,
    )
