"""Plots for fits and limits (matplotlib Agg backend, mplhep style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt


def plot_fit(
    result: Any,
    path: str | Path,
    *,
    xlabel: str = "m [GeV]",
    title: str | None = None,
    others: dict[str, Any] | None = None,
) -> Path:
    """Data, fitted expectation and per-bin Poisson pulls (lower panel), log-y.

    Args:
        result: a :class:`~adcoffea.fits.background.FitResult` or sliding-window result
            (anything with ``edges``, ``counts`` and ``expected`` or ``background``).
        path: output file (png/pdf).
        others: extra curves ``{label: result}`` drawn as lines (e.g. other orders).
    """
    plt = _plt()
    edges = np.asarray(result.edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    counts = np.asarray(result.counts)
    expected = np.asarray(getattr(result, "expected", result.background))
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(8, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=3, label="data")
    ax.stairs(expected, edges, color="tab:red", lw=2, label=_label(result))
    for name, other in (others or {}).items():
        ax.stairs(
            np.asarray(getattr(other, "expected", other.background)), edges, lw=1.2, label=name
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
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _label(result: Any) -> str:
    chi2 = getattr(result, "chi2", None)
    if chi2 is None:
        return f"sliding window ({result.function}, {result.n_params} par)"
    return f"{result.function} {result.n_params} par, chi2/ndf = {chi2:.1f}/{result.ndf}"


def brazil_plot(scan: Any, path: str | Path, *, ylabel: str = "95% CL upper limit on mu") -> Path:
    """Observed limit with expected median and +-1, 2 sigma bands versus signal mass."""
    plt = _plt()
    m = np.asarray(scan.masses)
    e = np.asarray(scan.expected)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.fill_between(m, e[:, 0], e[:, 4], color="#ffdf00", label="expected ±2σ")
    ax.fill_between(m, e[:, 1], e[:, 3], color="#00c000", label="expected ±1σ")
    ax.plot(m, e[:, 2], "k--", label="expected")
    ax.plot(m, scan.observed, "ko-", label="observed")
    ax.set_yscale("log")
    ax.set_xlabel("signal mass [GeV]")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=12)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
