"""BumpHunter figures: the 1D bump with per-bin local Z, the 2D local-Z map, and t.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.bumphunter import bumphunt
    >>> b = np.full(20, 100.0)
    >>> d = b.copy(); d[8:10] += 60
    >>> res = bumphunt(d, b, n_toys=100, seed=1, keep_toy_t=True)
    >>> fig = plot_bump_1d(res, d, b)
    >>> fig.axes[1].get_ylabel(), plot_t_distribution(res).axes[0].get_xlabel()
    ('local Z', 't = -ln(min local p)')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from adcoffea.plots._style import values_and_edges

if TYPE_CHECKING:
    from adcoffea.fits.bumphunter import BumpHunterResult

__all__ = ["plot_bump_1d", "plot_bump_2d", "plot_t_distribution", "signed_local_z"]


def signed_local_z(d: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-bin one-sided Poisson significance: positive for excesses, negative for deficits.

    Bins without background (outside a fit range) are not tested and get 0.
    """
    from scipy.special import ndtri_exp

    from adcoffea.fits._windows import log_pvalues

    _, lpe = log_pvalues(d, b, "excess")
    _, lpd = log_pvalues(d, b, "deficit")
    # one-sided: an excess with p > 0.5 (or a deficit with p > 0.5) is not significant
    z_exc = np.maximum(-ndtri_exp(lpe), 0.0)
    z_def = np.minimum(ndtri_exp(lpd), 0.0)
    z = np.where(d > b, z_exc, np.where(d < b, z_def, 0.0))
    return np.where((b > 0) & np.isfinite(z), z, 0.0)


def plot_bump_1d(
    result: BumpHunterResult,
    data: Any,
    background: Any,
    *,
    edges: Any = None,
    xlabel: str = "observable [GeV]",
) -> Figure:
    """Data vs background with the bump window, and a per-bin significance panel.

    ``data`` and ``background`` are ``hist.Hist`` objects or counts with ``edges``.
    """
    d, (e,) = values_and_edges(data, edges)
    b, _ = values_and_edges(background, edges)
    fig = Figure()
    ax, axz = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.stairs(b, e, label="background")
    ax.errorbar(0.5 * (e[1:] + e[:-1]), d, yerr=np.sqrt(d), fmt="k.", label="data")
    if result.bump_lo is not None and result.bump_hi is not None:
        ax.axvspan(
            result.bump_lo[0],
            result.bump_hi[0],
            color="C1",
            alpha=0.3,
            label=f"bump, local Z = {result.local_z:.2f}",
        )
    ax.set_yscale("log")
    ax.set_ylabel("events / bin")
    title = f"global Z = {result.global_z:.2f}" if result.global_z is not None else ""
    if result.global_p_is_bound:
        title = f"global Z > {result.global_z:.2f}"
    ax.set_title(title)
    ax.legend()
    axz.stairs(signed_local_z(d, b), e, fill=True)
    axz.set_ylabel("local Z")
    axz.set_xlabel(xlabel)
    return fig


def plot_bump_2d(
    result: BumpHunterResult,
    data: Any,
    background: Any,
    *,
    edges: Any = None,
    xlabel: str = "",
    ylabel: str = "",
) -> Figure:
    """Map of per-bin signed local significance with the bump rectangle."""
    from matplotlib.patches import Rectangle

    d, (ex, ey) = values_and_edges(data, edges)
    b, _ = values_and_edges(background, edges)
    fig = Figure()
    ax = fig.subplots()
    z = signed_local_z(d, b)
    lim = max(1.0, float(np.abs(z).max()))
    m = ax.pcolormesh(ex, ey, z.T, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(m, ax=ax, label="local Z per bin")
    if result.bump_lo is not None and result.bump_hi is not None:
        (x0, y0), (x1, y1) = result.bump_lo, result.bump_hi
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="k", lw=2))
    bound = "> " if result.global_p_is_bound else ""
    ax.set_title(
        f"bump: local Z = {result.local_z:.2f}, global Z {bound or '= '}{result.global_z:.2f}",
        fontsize="medium",
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def plot_t_distribution(result: BumpHunterResult) -> Figure:
    """Histogram of the toys' t (kept with ``keep_toy_t=True``) with the observed t."""
    fig = Figure()
    ax = fig.subplots()
    t = result.t_toys
    if t.size:
        ax.hist(t, bins=50, histtype="step", label=f"{t.size} toys")
    ax.axvline(result.t_obs, color="r", label=f"t_obs = {result.t_obs:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("t = -ln(min local p)")
    ax.set_ylabel("toys")
    ax.legend()
    return fig
