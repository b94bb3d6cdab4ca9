"""Signal shapes per bin: Gaussians at a fractional width and mass-interpolated templates.

Shapes are returned as the expected fraction of the signal in each bin (exact bin integrals),
so ``S * shape`` are the expected signal counts for a total yield ``S``; events outside the
binning are lost (the fractions sum to less than one).

Example:
    >>> import numpy as np
    >>> edges = np.linspace(2000.0, 5000.0, 31)
    >>> s = gaussian_signal(edges, 3500.0, rel_width=0.05)
    >>> round(float(s.sum()), 6)
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from adcoffea.errors import ConfigError


def gaussian_signal(edges: np.ndarray, mass: float, *, rel_width: float = 0.05) -> np.ndarray:
    """Bin fractions of a Gaussian of mean ``mass`` and sigma ``rel_width * mass`` (GeV)."""
    if rel_width <= 0 or mass <= 0:
        raise ConfigError(
            f"Gaussian signal needs mass > 0 and rel_width > 0 (got {mass}, {rel_width})"
        )
    edges = np.asarray(edges, dtype=float)
    z = (edges - mass) / (rel_width * mass * np.sqrt(2.0))
    return 0.5 * np.diff(special.erf(z))


def gaussian_variations(
    edges: np.ndarray,
    mass: float,
    *,
    rel_width: float = 0.05,
    jes: float | None = None,
    jer: float | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"jes"|"jer": (up, down)}`` shapes of :func:`gaussian_signal` under jet variations.

    The observable is built from two jets whose pt and mass the variations scale (mjj, mT):
    a JES of ``jes`` scales it, mean and width, by ``1 +- jes``; a JER of ``jer`` per jet
    adds ``jer / sqrt(2)`` to its relative resolution, in quadrature (two jets smeared
    independently; measured on the W' template: an extra 120 GeV for the 123 expected,
    ``tests/processors/test_jet_variations.py``). The resolution variation is one-sided,
    as for the templates: ``down`` mirrors ``up`` about the nominal, floored at 0.

    Example:
        >>> edges = np.linspace(2000.0, 5000.0, 31)
        >>> v = gaussian_variations(edges, 3500.0, jes=0.02, jer=0.05)
        >>> c = 0.5 * (edges[1:] + edges[:-1])
        >>> round(float((v["jes"][0] * c).sum() / v["jes"][0].sum()), 0)
        3570.0
    """
    nominal = gaussian_signal(edges, mass, rel_width=rel_width)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if jes is not None:
        out["jes"] = (
            gaussian_signal(edges, mass * (1.0 + jes), rel_width=rel_width),
            gaussian_signal(edges, mass * (1.0 - jes), rel_width=rel_width),
        )
    if jer is not None:
        wider = gaussian_signal(edges, mass, rel_width=float(np.hypot(rel_width, jer / np.sqrt(2))))
        out["jer"] = (wider, np.maximum(2.0 * nominal - wider, 0.0))
    return out


def _template_cdf(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.clip(np.asarray(counts, dtype=float), 0.0, None)
    total = counts.sum()
    if total <= 0:
        raise ConfigError("signal template is empty")
    return np.asarray(edges, dtype=float), np.concatenate([[0.0], np.cumsum(counts) / total])


def template_signal(
    edges: np.ndarray,
    mass: float,
    templates: Sequence[tuple[float, np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Bin fractions of a signal at ``mass`` interpolated from templates at other masses.

    Each template ``(m_j, template_edges, counts)`` is expressed in the scaled variable
    ``u = m_obs / m_j`` (signal shapes scale with the resonance mass to a good approximation);
    the cumulative distributions in ``u`` of the two templates bracketing ``mass`` are
    interpolated linearly in mass, and the result is evaluated at ``edges / mass``. Outside
    the template masses the nearest template is scaled. Resolution effects that do not scale
    with mass are interpolated, not extrapolated.

    Args:
        edges: output bin edges (GeV).
        mass: target signal mass (GeV).
        templates: ``(mass, edges, counts)`` per simulated mass point (e.g. a W' sample).
    """
    if not templates:
        raise ConfigError("template_signal needs at least one template")
    temps = sorted(templates, key=lambda t: float(t[0]))
    masses = np.array([float(t[0]) for t in temps])
    u = np.asarray(edges, dtype=float) / mass

    def cdf_u(j: int) -> np.ndarray:
        e, c = _template_cdf(temps[j][1], temps[j][2])
        return np.interp(u, e / masses[j], c, left=0.0, right=1.0)

    if mass <= masses[0]:
        cdf = cdf_u(0)
    elif mass >= masses[-1]:
        cdf = cdf_u(len(masses) - 1)
    else:
        j = int(np.searchsorted(masses, mass)) - 1
        w = (mass - masses[j]) / (masses[j + 1] - masses[j])
        cdf = (1.0 - w) * cdf_u(j) + w * cdf_u(j + 1)
    return np.diff(cdf)


def signal_shape(
    edges: np.ndarray,
    mass: float,
    *,
    rel_width: float = 0.05,
    templates: Sequence[tuple[float, np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Template-interpolated shape if ``templates`` are given, else a Gaussian."""
    if templates:
        return template_signal(edges, mass, templates)
    return gaussian_signal(edges, mass, rel_width=rel_width)
