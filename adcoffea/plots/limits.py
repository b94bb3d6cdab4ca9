"""Upper limits: the Brazil plot (limit versus mass) and the 2D limit map.

Example:
    >>> fig = plot_limit_map([3000.0, 3000.0], [100.0, 300.0], [12.0, 20.0])
    >>> fig.axes[0].get_ylabel()
    '$m_X$ [GeV]'
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["plot_brazil", "plot_limit_map"]


def plot_brazil(
    masses: ArrayLike,
    observed: ArrayLike,
    expected: ArrayLike,
    *,
    xlabel: str = "signal mass [GeV]",
    ylabel: str = "95% CL upper limit on signal events",
) -> Figure:
    """Observed limit with the expected median and its +-1, 2 sigma bands versus mass.

    Args:
        masses: signal masses.
        observed: observed limit per mass.
        expected: expected limits per mass at -2, -1, 0, +1, +2 sigma.
    """
    m = np.asarray(masses, dtype=float)
    e = np.asarray(expected, dtype=float)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.fill_between(m, e[:, 0], e[:, 4], color="#ffdf00", label=r"expected $\pm 2\sigma$")
    ax.fill_between(m, e[:, 1], e[:, 3], color="#00c000", label=r"expected $\pm 1\sigma$")
    ax.plot(m, e[:, 2], "k--", label="expected")
    ax.plot(m, np.asarray(observed, dtype=float), "k-o", ms=4, label="observed")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig


def plot_limit_map(
    mass_y: ArrayLike,
    mass_x: ArrayLike,
    observed: ArrayLike,
    *,
    label: str = "95% CL observed limit on signal events",
) -> Figure:
    """Observed limits on a grid of (m_Y, m_X) signal masses, one annotated cell each."""
    ys, xs = np.asarray(mass_y, dtype=float), np.asarray(mass_x, dtype=float)
    my, mx = sorted(set(ys.tolist())), sorted(set(xs.tolist()))
    grid = np.full((len(mx), len(my)), np.nan)
    for y, x, v in zip(ys, xs, np.asarray(observed, dtype=float), strict=True):
        grid[mx.index(float(x)), my.index(float(y))] = v
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(
        grid,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(-0.5, len(my) - 0.5, -0.5, len(mx) - 0.5),
    )
    ax.set_xticks(range(len(my)), [f"{v:g}" for v in my])
    ax.set_yticks(range(len(mx)), [f"{v:g}" for v in mx])
    for i in range(len(mx)):
        for j in range(len(my)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color="w", fontsize=8)
    ax.set_xlabel(r"$m_Y$ [GeV]")
    ax.set_ylabel(r"$m_X$ [GeV]")
    fig.colorbar(im, ax=ax, label=label)
    return fig
