"""The background fit: data, fitted expectation and per-bin Poisson pulls.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.background import fit_background
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 6000.0, 34)
    >>> res = fit_background(expected_counts(edges, [2e4, 7.8, 5.3, 1.1]), edges=edges, n_params=4)
    >>> fig = plot_fit(res, xlabel="m [GeV]")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['events / bin', 'pull']
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from adcoffea.plots._style import hep_style

__all__ = ["plot_fit"]


def plot_fit(
    result: Any,
    *,
    xlabel: str = "m [GeV]",
    title: str | None = None,
    others: dict[str, Any] | None = None,
) -> Figure:
    """Data, fitted expectation and per-bin Poisson pulls (lower panel), log-y.

    Args:
        result: a :class:`~adcoffea.fits.background.FitResult` or sliding-window result
            (anything with ``edges``, ``counts``, ``pulls`` and ``expected`` or
            ``background``).
        xlabel: label of the observable axis.
        title: figure title.
        others: extra curves ``{label: result}`` drawn as lines (e.g. other orders).
    """
    edges = np.asarray(result.edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    counts = np.asarray(result.counts)
    expected = np.asarray(getattr(result, "expected", result.background))
    with hep_style():
        fig = Figure(figsize=(8, 8), layout="constrained")
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=3, label="data")
        ax.stairs(expected, edges, color="tab:red", lw=2, baseline=None, label=_label(result))
        for name, other in (others or {}).items():
            ax.stairs(
                np.asarray(getattr(other, "expected", other.background)),
                edges,
                lw=1.2,
                baseline=None,
                label=name,
            )
        ax.set_yscale("log")
        ax.set_ylabel("events / bin")
        ax.legend(fontsize=12)
        if title:
            ax.set_title(title, fontsize=14)
        rax.bar(centres, result.pulls, width=np.diff(edges), color="tab:red", alpha=0.6)
        rax.axhline(0, color="k", lw=0.8)
        rax.set_ylim(-4, 4)
        rax.set_ylabel("pull")
        rax.set_xlabel(xlabel)
    return fig


def _label(result: Any) -> str:
    chi2 = getattr(result, "chi2", None)
    if chi2 is None:
        return f"sliding window ({result.function}, {result.n_params} par)"
    return f"{result.function} {result.n_params} par, chi2/ndf = {chi2:.1f}/{result.ndf}"
