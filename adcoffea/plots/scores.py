"""Anomaly scores: ROC and SIC curves, the sculpting check, training loss curves.

Example:
    >>> import numpy as np
    >>> from adcoffea.models.evaluate import roc_sic
    >>> rng = np.random.default_rng(0)
    >>> labels = np.r_[np.zeros(500), np.ones(500)]
    >>> fig = plot_roc({"toy": roc_sic(rng.normal(labels, 1.0), labels)})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['1 / background efficiency', 'SIC']
    >>> plot_loss({"train": [1.0, 0.5], "val": [1.1, 0.7]}).axes[0].get_xlabel()
    'epoch'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from adcoffea.plots._style import hep_style

if TYPE_CHECKING:
    from adcoffea.models.evaluate import RocResult, SculptingResult

__all__ = ["plot_loss", "plot_roc", "plot_sculpting"]


def plot_roc(results: Mapping[str, RocResult]) -> Figure:
    """SIC versus signal efficiency and ROC (1/FPR vs TPR) for several methods."""
    with hep_style():
        fig = Figure(figsize=(16, 7))
        ax1, ax2 = fig.subplots(1, 2)
        for name, r in results.items():
            ok = r.fpr > 0
            ax1.plot(r.tpr[ok], 1.0 / r.fpr[ok], label=f"{name} (AUC {r.auc:.3f})")
            ax2.plot(r.tpr[ok], r.sic[ok], label=f"{name} (max {r.max_sic:.1f})")
        ax1.set(xlabel="signal efficiency", ylabel="1 / background efficiency", yscale="log")
        ax2.set(xlabel="signal efficiency", ylabel="SIC")
        ax1.legend(fontsize=12)
        ax2.legend(fontsize=12)
    return fig


def plot_sculpting(result: SculptingResult, *, xlabel: str = "mjj [GeV]") -> Figure:
    """Normalised background shapes of the observable before and after each cut."""
    import mplhep

    with hep_style():
        fig = Figure(figsize=(9, 7))
        ax = fig.subplots()
        mplhep.histplot(result.before / result.before.sum(), result.edges, ax=ax, label="all")
        for eff, after, js in zip(result.efficiencies, result.after, result.js, strict=True):
            if after.sum() > 0:
                mplhep.histplot(
                    after / after.sum(), result.edges, ax=ax, label=f"eff {eff:g} (JS {js:.2g})"
                )
        ax.set(xlabel=xlabel, ylabel="fraction of background", yscale="log")
        ax.legend(fontsize=12)
    return fig


def plot_loss(history: Any) -> Figure:
    """Loss curves versus epoch: every list of numbers in the training ``history`` dict."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    curves = history if isinstance(history, dict) else {}
    for name, values in curves.items():
        if isinstance(values, (list, tuple)) and values and np.isscalar(values[0]):
            ax.plot(np.arange(1, len(values) + 1), values, label=str(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if ax.lines:
        ax.legend()
    return fig
