"""Local significance of an observed count over a background estimate with an uncertainty.

The count ``n`` in a signal region is Poisson; the background ``b`` is known only as
``b +- sigma_b`` (sideband-fit statistics plus the fit-function uncertainty). Following
Cousins, Linnemann and Tucker (NIM A 595 (2008) 480), the uncertainty is represented by an
equivalent auxiliary ("off") measurement ``m ~ Poisson(tau b)`` with ``tau = b / sigma_b^2``
and ``m = tau b`` (a Gamma posterior for b of mean b and standard deviation sigma_b):

* :func:`z_bi` (default): the frequentist test of the ratio of Poisson means conditioned on
  ``n + m``, ``p = I_{1/(1+tau)}(n, m + 1)`` (regularised incomplete beta), which they found to
  be the best-calibrated of the common recipes even for a few events;
* :func:`z_pl`: the profile-likelihood ratio of the same on/off model (Li-Ma, eq. 17), its
  asymptotic approximation;
* ``sigma_b = 0`` reduces both to the Poisson tail ``P(N >= n | b)``.

The significance is one-sided: a deficit (``n <= b``) has ``Z = 0``.

Example:
    >>> round(z_bi(20, 10.0, 0.0), 2)    # Poisson P(N >= 20 | 10) = 3.45e-3
    2.7
    >>> round(z_bi(20, 10.0, 2.0), 2) < 2.7 and z_bi(5, 10.0, 1.0) == 0.0
    True
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats


def _broadcast(n, b, sigma_b):
    n = np.asarray(n, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = np.asarray(sigma_b, dtype=np.float64)
    if np.any(b <= 0) or np.any(s < 0) or np.any(n < 0):
        raise ValueError("significance needs n >= 0, b > 0 and sigma_b >= 0")
    return np.broadcast_arrays(n, b, s)


def _z_from_p(p: np.ndarray) -> np.ndarray:
    return np.where(p >= 0.5, 0.0, stats.norm.isf(np.clip(p, 1e-300, 0.5)))


def poisson_p(n, b) -> np.ndarray:
    """``P(N >= n | b)`` (1 for n = 0)."""
    n = np.asarray(n, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.where(n > 0, special.gammainc(np.maximum(n, 1e-300), b), 1.0)


def p_bi(n, b, sigma_b) -> np.ndarray:
    """One-sided p-value of the ratio-of-Poisson-means test (see the module docstring)."""
    n, b, s = _broadcast(n, b, sigma_b)
    exact = s <= 1e-12 * b
    tau = np.where(exact, 1.0, b / np.where(exact, 1.0, s) ** 2)
    m = tau * b
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.where(n > 0, special.betainc(np.maximum(n, 1e-300), m + 1.0, 1.0 / (1.0 + tau)), 1.0)
    return np.where(exact, poisson_p(n, b), p)


def z_pl(n, b, sigma_b) -> np.ndarray | float:
    """Profile-likelihood significance of the on/off model (Li-Ma eq. 17), 0 for deficits."""
    n, b, s = _broadcast(n, b, sigma_b)
    exact = s <= 1e-12 * b
    # sigma_b -> 0: the Poisson likelihood ratio 2 [n ln(n/b) - (n - b)]
    q0 = 2.0 * (special.xlogy(n, n / b) - (n - b))
    tau = b / np.where(exact, 1.0, s) ** 2
    m = tau * b
    tot = n + m
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 2.0 * (
            special.xlogy(n, (1.0 + tau) * n / tot)
            + special.xlogy(m, (1.0 + tau) * m / (tau * tot))
        )
    q = np.where(exact, q0, q)
    z = np.where(n > b, np.sqrt(np.maximum(q, 0.0)), 0.0)
    return float(z) if z.ndim == 0 else z


def z_bi(n, b, sigma_b) -> np.ndarray | float:
    """Significance ``Phi^-1(1 - p_bi)``, 0 for deficits; Z_PL where p underflows."""
    p = p_bi(n, b, sigma_b)
    n_, b_, _ = _broadcast(n, b, sigma_b)
    z = np.where(n_ > b_, _z_from_p(p), 0.0)
    # beyond ~37 sigma p underflows to 0; the asymptotic Z_PL is exact enough there
    z = np.where((p <= 1e-300) & (n_ > b_), z_pl(n, b, sigma_b), z)
    return float(z) if np.ndim(z) == 0 else z


METHODS = {"z_bi": z_bi, "z_pl": z_pl}


def local_z(n, b, sigma_b, *, method: str = "z_bi") -> np.ndarray | float:
    """Local significance by ``method`` (``z_bi`` or ``z_pl``)."""
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown significance method {method!r}; choose {sorted(METHODS)}"
        ) from None
    return fn(n, b, sigma_b)
