"""Figures of the hunt (return matplotlib Figures; the caller saves them, no backend switch).

* :func:`plot_local_z`: local significance versus SR centre, one curve per background
  efficiency, as in the ATLAS weakly supervised dijet search (arXiv:2005.02983, Fig. 3).
* :func:`plot_best_window`: the selected mjj spectrum of the best window with its sideband-fit
  background (the SR shaded and excluded from the fit) and the pulls.

Example:
    >>> from adcoffea.hunt.result import HuntResult, example_dict
    >>> fig = plot_local_z(HuntResult.from_dict(example_dict()))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adcoffea.hunt.result import HuntResult


def _figure(**kw: Any):
    from matplotlib.figure import Figure

    return Figure(**kw)


def plot_local_z(result: HuntResult, *, title: str | None = None):
    """Local Z versus window centre (GeV), one curve per efficiency; global Z in the legend."""
    fig = _figure(figsize=(7.0, 4.5), layout="constrained")
    ax = fig.subplots()
    centres = np.array([w.window.centre for w in result.windows])
    table = result.local_z_table()
    effs = [e.efficiency for e in result.windows[0].efficiencies]
    for j, eff in enumerate(effs):
        ax.plot(centres, table[:, j], "o-", ms=4, label=f"efficiency {eff:g}")
    best = result.best
    ax.axvspan(best.window.sr_lo, best.window.sr_hi, color="0.85", zorder=0,
               label=f"best SR [{best.window.sr_lo:g}, {best.window.sr_hi:g}]")  # fmt: skip
    for z in (3.0, 5.0):
        ax.axhline(z, color="0.5", ls=":", lw=1)
    g = result.global_significance
    if g is not None:
        rel = ">" if g.p_is_bound else "="
        ax.plot([], [], " ", label=f"global Z {rel} {g.z:.2f} ({g.n_toys} toys)")
    ax.set_xlabel(r"signal region centre $m_{jj}$ [GeV]")
    ax.set_ylabel("local significance Z")
    ax.set_ylim(bottom=0.0, top=max(3.5, float(np.nanmax(table)) * 1.15))
    ax.legend(fontsize=8)
    ax.set_title(title or f"{result.method} hunt: {len(result.windows)} windows")
    return fig


def plot_best_window(result: HuntResult, *, window: int | None = None,
                     efficiency: int | None = None, title: str | None = None):  # fmt: skip
    """Selected spectrum, sideband-fit background and pulls of one window (default: best)."""
    w_i = result.best_window if window is None else window
    j = result.best_efficiency if efficiency is None else efficiency
    wr = result.windows[w_i]
    cell = wr.efficiencies[j]
    edges = np.asarray(result.edges)
    counts = np.asarray(cell.counts)
    expected = np.asarray(cell.estimate.expected)
    fig = _figure(figsize=(7.0, 5.5), layout="constrained")
    ax, rax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=3, label="selected data")
    if len(expected) == len(counts):
        ax.stairs(expected, edges, color="C0", lw=1.5,
                  label=f"sideband fit ({cell.estimate.n_params} par.)")  # fmt: skip
        pulls = np.where(expected > 0, (counts - expected) / np.sqrt(np.maximum(expected, 1e-9)), 0)
        rax.bar(centres, pulls, width=np.diff(edges), color="C0", alpha=0.6)
    for a in (ax, rax):
        a.axvspan(wr.window.sr_lo, wr.window.sr_hi, color="C1", alpha=0.2,
                  label="signal region (not fitted)" if a is ax else None)  # fmt: skip
    est = cell.estimate
    ax.plot([], [], " ", label=(f"SR: N = {est.n_obs:.0f}, B = {est.background:.1f} "
                                f"$\\pm$ {est.sigma:.1f}, local Z = {cell.local_z:.2f}"))  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("events / bin")
    ax.legend(fontsize=8)
    ax.set_title(title or f"window {w_i}: efficiency {cell.efficiency:g}, AUC {wr.auc:.3f}")
    rax.axhline(0.0, color="k", lw=0.8)
    rax.set_ylabel("(N - B) / $\\sqrt{B}$")
    rax.set_xlabel(r"$m_{jj}$ [GeV]")
    return fig


def plot_t_distribution(result: HuntResult, t_toys: np.ndarray | None = None):
    """Distribution of the toys' largest local Z with the observed value."""
    g = result.global_significance
    fig = _figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    t = g.t_toys if (t_toys is None and g is not None) else t_toys
    if t is not None and len(t):
        ax.hist(t, bins=40, histtype="step", color="C0", label=f"{len(t)} toys")
    if g is not None:
        ax.axvline(g.t_obs, color="C3", label=f"observed t = {g.t_obs:.2f}, p = {g.p:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("t = max local Z over windows and efficiencies")
    ax.set_ylabel("toys")
    ax.legend(fontsize=8)
    return fig
