"""Feature-level LHCO-like events for tests and calibration studies (no NanoAOD, no processor).

QCD: mjj from the LHC Olympics R&D dijet function above ``m_min``; jet masses tanh-lognormal
and tau21 Beta-distributed with the fitted parameters of ``shared/LHCO_REFERENCE.md`` (the jet
mass drifts with mjj as there, 5 % per TeV). Signal: the W' mjj response scaled to ``m_sig``,
two-prong X and Y jets. Features are ``(mj_min, delta_mj, tau21_min, tau21_max)`` in GeV, as
the processors compute them. Thousands of events per millisecond: the statistical parts of
the hunt can be calibrated on many seeds without generating NanoAOD.

Example:
    >>> import numpy as np
    >>> mjj, x, event, truth = sample(np.random.default_rng(0), 1000, n_sig=10, m_sig=4000.0)
    >>> x.shape, int(truth.sum())
    ((1010, 4), 10)
"""

from __future__ import annotations

import numpy as np

SQRT_S = 13000.0


def _qcd_mjj(rng, n, m_min, m_max):
    grid = np.linspace(m_min, m_max, 20001)
    x = grid / SQRT_S
    pdf = (1 - x) ** 7.80 * x ** -(5.26 + 1.13 * np.log(x))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]))])
    return np.interp(rng.random(n), cdf / cdf[-1], grid)


def _beta(rng, mean, kappa):
    mean = np.clip(mean, 0.02, 0.98)
    return rng.beta(mean * kappa, (1 - mean) * kappa)


_TM = np.array([0.015, 0.045, 0.075, 0.105, 0.14, 0.18, 0.225, 0.275, 0.325, 0.385, 0.46, 0.55])
_TMU = np.array([0.617, 0.598, 0.599, 0.614, 0.604, 0.575, 0.534, 0.489, 0.453, 0.41, 0.368, 0.33])
_TK = np.array([7.0, 5.7, 6.5, 8.8, 9.8, 9.1, 8.3, 7.9, 8.1, 7.8, 7.8, 7.9])


def _features(m1, m2, t1, t2):
    light = m1 <= m2
    mj_min = np.where(light, m1, m2)
    mj_max = np.where(light, m2, m1)
    return np.column_stack([
        mj_min, mj_max - mj_min, np.where(light, t1, t2), np.where(light, t2, t1)
    ])  # fmt: skip


def qcd(rng, n, *, m_min=2500.0, m_max=8000.0):
    """``(mjj, features)`` of ``n`` QCD events."""
    mjj = _qcd_mjj(rng, n, m_min, m_max)
    mu = -1.717 + 0.05 * (mjj / 1000.0 - 3.5)
    z1 = rng.standard_normal(n)
    z2 = 0.04 * z1 + np.sqrt(1 - 0.04**2) * rng.standard_normal(n)
    m1 = 0.906 * np.tanh(np.exp(mu + 0.798 * z1) / 0.906)
    m2 = 0.906 * np.tanh(np.exp(mu + 0.798 * z2) / 0.906)
    t1 = _beta(rng, np.interp(m1, _TM, _TMU), np.interp(m1, _TM, _TK))
    t2 = _beta(rng, np.interp(m2, _TM, _TMU), np.interp(m2, _TM, _TK))
    return mjj, _features(1000 * m1, 1000 * m2, t1, t2)


def signal(rng, n, *, m_sig, m_x=500.0, m_y=100.0):
    """``(mjj, features)`` of ``n`` W' -> X Y events."""
    s = m_sig / 3500.0
    core = rng.random(n) < 0.69
    mjj = np.where(core, rng.normal(3504.0 * s, 112.0 * s, n), rng.normal(3424 * s, 371 * s, n))
    my = (108.3 + 12.8 * rng.standard_normal(n)) * m_y / 108.3
    my = my + np.where(rng.random(n) < 0.24, 82.5 * rng.exponential(1.0, n), 0.0)
    ty = _beta(rng, np.interp(my / (m_y / 108.3), [100.0, 350.0], [0.35, 0.50]), np.full(n, 10.6))
    mx = (494.4 + 33.8 * rng.standard_normal(n)) * m_x / 494.4
    tx = np.minimum(0.173 * np.exp(0.64 * rng.standard_normal(n)), 0.95)
    return mjj, _features(np.maximum(mx, 10.0), np.maximum(my, 10.0), tx, ty)


def sample(rng, n_qcd, *, n_sig=0, m_sig=3500.0, m_x=500.0, m_y=100.0):
    """QCD plus injected signal: ``(mjj, features, event numbers, is_signal)``."""
    m, x = qcd(rng, n_qcd)
    truth = np.zeros(n_qcd, dtype=bool)
    if n_sig:
        ms, xs = signal(rng, n_sig, m_sig=m_sig, m_x=m_x, m_y=m_y)
        m, x = np.concatenate([m, ms]), np.concatenate([x, xs])
        truth = np.concatenate([truth, np.ones(n_sig, dtype=bool)])
    perm = rng.permutation(len(m))
    event = rng.choice(2**40, size=len(m), replace=False).astype(np.uint64)
    return m[perm], x[perm], event, truth[perm]
