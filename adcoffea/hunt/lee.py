"""Global significance of the hunt: pseudo-experiments of the whole selection-and-estimate step.

The hunt looks at many windows and efficiencies; its test statistic is the largest local
significance, ``t = max_{window, efficiency} Z_local``, and the global p-value is the fraction
of background-only pseudo-experiments with ``t_toy >= t_obs`` (Z = Phi^-1(1 - p); with no toy
above, the bound ``p < -ln(0.05) / n_toys`` at 95 % CL, as in
:mod:`adcoffea.fits.bumphunter`).

**The null hypothesis and its pseudo-experiments.** H0 of the hunt is "no signal: the
selection is independent of mjj". Every event in the fit range is scored by the fold model
that never saw it (:mod:`adcoffea.hunt.classify`), so conditional on the trained models the
events of one fold are independent and identically distributed, and under H0 their scores
are independent of their mjj. Permuting the mjj values *within each fold*, while every event
keeps all its scores, is then an exact draw from H0 conditional on the observed inclusive
spectrum and on the observed scores. One permutation gives the selected spectra of every
window and efficiency at once, so the toys keep the data's correlations between overlapping
windows (the same events score high in neighbouring windows) and between the nested
efficiencies of one window. Each toy spectrum is then refitted exactly as the data was (same
family, orders, Wilks test, SR exclusion, fit-function envelope; :mod:`adcoffea.hunt._toyfit`)
and its local significances computed with the same formula.

Why this and not the alternatives:

* Poisson toys around the fitted background assume the fit function is exact; a shape the
  function misses (issue 11: a kink in the generated QCD) then shows up in the data and not
  in the toys, and the global p is too small. Here the toys are thinned from the observed
  inclusive spectrum and inherit whatever shape it has.
* Independent binomial thinning per window (the first design) has the right marginals but
  treats overlapping windows as independent trials: by Slepian's inequality that is
  conservative, i.e. it costs sensitivity for nothing. The permutation keeps the correlation
  and is not more expensive (one shuffle per toy).
* Re-running the classifier training per toy would also cover the (small) mjj dependence a
  classifier learns from mjj-correlated features, but costs the whole training per toy. That
  effect is what the full-pipeline background-only runs check instead (``global p`` uniform
  over many seeds, ``benchmarks/null_calibration.py``).

The score thresholds are kept at the data's values in the toys: the fits float the
normalisation, so the small change of a quantile under a permutation does not matter.

Example:
    >>> import numpy as np
    >>> g = summarise_global(t_obs=2.0, t_toys=np.array([0.5, 1.0, 2.5, 3.0]), seed=1)
    >>> (g.n_above, g.p)
    (2, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from adcoffea.hunt.significance import local_z

#: confidence level of the bound quoted when no toy exceeds t_obs
BOUND_CL = 0.95
#: toys fitted per batch (memory: toys x windows x efficiencies x bins)
CHUNK = 500
#: toys permuted at once (memory: toys x events x 2 bytes)
PERMUTE_BATCH = 25


@dataclass(frozen=True)
class GlobalSignificance:
    """Global p-value of the hunt's largest local significance.

    Attributes:
        t_obs: largest local Z of the data over all windows and efficiencies.
        n_toys, n_above: pseudo-experiments, and how many had t >= t_obs.
        p, p_error: global p-value and its binomial standard error; if ``p_is_bound``, p is
            the 95 % CL upper bound ``-ln(0.05) / n_toys`` and z is a lower bound.
        z: Phi^-1(1 - p), 0 for p >= 0.5.
        method: how the toys were made.
        t_toys: t of every toy (not in ``to_dict``).
    """

    t_obs: float
    n_toys: int
    n_above: int
    p: float
    p_error: float
    p_is_bound: bool
    z: float
    seed: int
    method: str = "mjj permutation within folds, full refit"
    t_quantiles: dict[str, float] = field(default_factory=dict)
    t_toys: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_obs": float(self.t_obs),
            "n_toys": int(self.n_toys),
            "n_above": int(self.n_above),
            "p": float(self.p),
            "p_error": float(self.p_error),
            "p_is_bound": bool(self.p_is_bound),
            "z": float(self.z),
            "seed": int(self.seed),
            "method": self.method,
            "t_quantiles": dict(self.t_quantiles),
        }


def summarise_global(*, t_obs: float, t_toys: np.ndarray, seed: int) -> GlobalSignificance:
    """Global p and Z of ``t_obs`` from the toys' ``t`` values."""
    t_toys = np.asarray(t_toys, dtype=float)
    n = len(t_toys)
    if n == 0:
        raise ValueError("no pseudo-experiments")
    quant = {f"{q:g}": float(np.quantile(t_toys, q)) for q in (0.5, 0.84, 0.95, 0.99)}
    extra = {"t_quantiles": quant, "t_toys": t_toys}
    if t_obs <= 0.0:
        # no excess anywhere: every toy is at least as extreme
        return GlobalSignificance(float(t_obs), n, n, 1.0, 0.0, False, 0.0, seed, **extra)
    above = int(np.sum(t_toys >= t_obs * (1.0 - 1e-9)))
    if above == 0:
        p, err, bound = -math.log(1.0 - BOUND_CL) / n, 0.0, True
    else:
        p, err, bound = above / n, math.sqrt(above / n * (1 - above / n) / n), False
    z = 0.0 if p >= 0.5 else float(stats.norm.isf(p))
    return GlobalSignificance(float(t_obs), n, above, p, err, bound, z, seed, **extra)


@dataclass(frozen=True)
class ToySpec:
    """What the toys need of one (window, efficiency) cell: its data fit and SR."""

    sr: np.ndarray  # bool per fit-range bin
    starts: dict[int, tuple[float, ...]]  # order -> starting shape parameters (data fit)


class Permuter:
    """Shuffles the mjj bin of the fit-range events within their folds, many toys at once.

    Args:
        bin_index: fit-range bin of each event (events outside the fit range excluded).
        folds: fold of each event.
        levels: (n_windows, n_events) selection levels (number of thresholds passed).
        n_levels: number of efficiencies.
    """

    def __init__(
        self, bin_index: np.ndarray, folds: np.ndarray, levels: np.ndarray, n_levels: int
    ) -> None:
        order = np.argsort(np.asarray(folds), kind="stable")
        self.bins = np.asarray(bin_index, dtype=np.int16)[order]
        f = np.asarray(folds)[order]
        cuts = np.flatnonzero(np.diff(f)) + 1
        self.blocks = list(zip(np.r_[0, cuts], np.r_[cuts, len(f)], strict=True))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        self.n_levels = int(n_levels)
        # per window: the selected events by decreasing level, so that the events selected at
        # efficiency j are the first n_j (only events passing the loosest threshold matter)
        self.selected: list[tuple[np.ndarray, list[int]]] = []
        for row in np.asarray(levels):
            idx = np.flatnonzero(row > 0)
            idx = idx[np.argsort(-row[idx], kind="stable")]
            counts = [int(np.sum(row > j)) for j in range(self.n_levels)]
            self.selected.append((position[idx], counts))

    def _histograms(self, bins: np.ndarray, n_bins: int) -> np.ndarray:
        """(T, n_windows, n_levels, n_bins) from per-toy event bins (T, n_events)."""
        t_n = bins.shape[0]
        out = np.zeros((t_n, len(self.selected), self.n_levels, n_bins))
        offset = (np.arange(t_n, dtype=np.int64) * n_bins)[:, None]
        for w, (pos, counts) in enumerate(self.selected):
            sub = bins[:, pos].astype(np.int64) + offset
            for j, c in enumerate(counts):
                out[:, w, j] = np.bincount(sub[:, :c].ravel(), minlength=t_n * n_bins).reshape(
                    t_n, n_bins
                )
        return out

    def spectra(self, rng: np.random.Generator, n_toys: int, n_bins: int) -> np.ndarray:
        """``n_toys`` toys: selected spectra (n_toys, n_windows, n_levels, n_bins)."""
        perm = np.empty((n_toys, len(self.bins)), dtype=self.bins.dtype)
        for a, b in self.blocks:
            block = np.tile(self.bins[a:b], (n_toys, 1))
            perm[:, a:b] = rng.permuted(block, axis=1, out=block)
        return self._histograms(perm, n_bins)

    def observed(self, n_bins: int) -> np.ndarray:
        """The data's selected spectra (n_windows, n_levels, n_bins), no permutation."""
        return self._histograms(self.bins[None, :], n_bins)[0]


def toy_local_z(
    counts: np.ndarray,
    spec: ToySpec,
    *,
    edges: np.ndarray,
    function: str,
    sqrt_s: float,
    alpha: float,
    significance: str,
    min_events: float,
) -> np.ndarray:
    """Local Z of each toy spectrum (T, bins) of one (window, efficiency) cell."""
    from adcoffea.hunt._toyfit import select_batch

    n_obs = counts[:, spec.sr].sum(axis=1)
    out = np.zeros(len(counts))
    enough = counts[:, ~spec.sr].sum(axis=1) >= min_events
    if not enough.any() or not spec.starts:
        return out
    b, s_stat, s_func = select_batch(
        edges, counts[enough], spec.sr, starts=spec.starts, function=function, sqrt_s=sqrt_s,
        alpha=alpha,
    )  # fmt: skip
    sigma = np.hypot(s_stat, s_func)
    good = np.isfinite(b) & (b > 0) & np.isfinite(sigma)
    z = np.zeros(len(b))
    z[good] = local_z(n_obs[enough][good], b[good], sigma[good], method=significance)
    out[enough] = z
    return out


def run_toys(
    permuter: Permuter,
    specs: Sequence[Sequence[ToySpec]],
    *,
    edges: np.ndarray,
    n_toys: int,
    seed: int,
    function: str,
    sqrt_s: float,
    alpha: float,
    significance: str,
    min_events: float,
) -> np.ndarray:
    """``t = max`` local Z of ``n_toys`` permutation toys, refitted as the data."""
    n_bins = len(edges) - 1
    rng = np.random.default_rng(seed)
    t = np.zeros(n_toys)
    for start in range(0, n_toys, CHUNK):
        n = min(CHUNK, n_toys - start)
        counts = np.concatenate([
            permuter.spectra(rng, min(PERMUTE_BATCH, n - i), n_bins)
            for i in range(0, n, PERMUTE_BATCH)
        ])  # fmt: skip
        for w, cells in enumerate(specs):
            for j, spec in enumerate(cells):
                z = toy_local_z(
                    counts[:, w, j], spec, edges=edges, function=function, sqrt_s=sqrt_s,
                    alpha=alpha, significance=significance, min_events=min_events,
                )  # fmt: skip
                t[start : start + n] = np.maximum(t[start : start + n], z)
    return t
