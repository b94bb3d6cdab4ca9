"""Evaluation of anomaly scores: ROC, AUC, SIC and the mjj sculpting check.

* :func:`roc_sic` — ROC curve, AUC and the significance improvement characteristic
  SIC = TPR / sqrt(FPR), whose maximum is taken only where at least ``min_background``
  background events pass (otherwise a lucky handful of events gives an infinite SIC).
* :func:`sculpting` — the observable's background shape before and after score cuts at given
  background efficiencies, quantified by the Jensen–Shannon divergence (base 2, in [0, 1]),
  compared to the JS divergence of a random selection of the same size (the statistical
  floor), and the after/before ratio per bin with its chi2 against a flat ratio.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.r_[np.zeros(1000), np.ones(1000)]
    >>> res = roc_sic(rng.normal(labels, 1.0), labels)
    >>> 0.7 < res.auc < 0.8
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RocResult:
    """ROC of a score. ``fpr``/``tpr`` are background/signal efficiencies of ``score >= cut``."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    max_sic: float
    tpr_at_max_sic: float
    fpr_at_max_sic: float
    n_signal: int
    n_background: int

    @property
    def sic(self) -> np.ndarray:
        return np.divide(
            self.tpr, np.sqrt(self.fpr), out=np.zeros_like(self.tpr), where=self.fpr > 0
        )

    def to_dict(self, *, points: int = 200) -> dict[str, Any]:
        idx = np.unique(np.linspace(0, len(self.fpr) - 1, min(points, len(self.fpr))).astype(int))
        return {
            "auc": float(self.auc),
            "max_sic": float(self.max_sic),
            "tpr_at_max_sic": float(self.tpr_at_max_sic),
            "fpr_at_max_sic": float(self.fpr_at_max_sic),
            "n_signal": int(self.n_signal),
            "n_background": int(self.n_background),
            "fpr": self.fpr[idx].tolist(),
            "tpr": self.tpr[idx].tolist(),
        }


def roc_sic(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    min_background: int = 10,
    weights: np.ndarray | None = None,
) -> RocResult:
    """ROC, AUC and max SIC of ``scores`` (higher = more signal-like) for truth ``labels``.

    Ties are handled by evaluating the ROC only at distinct score values. The maximum SIC is
    restricted to cuts keeping at least ``min_background`` background events (unweighted
    count), i.e. FPR >= min_background / N_bkg.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(s)
    s, y, w = s[ok], y[ok], w[ok]
    if y.all() or not y.any():
        raise ValueError("roc_sic needs both signal (label 1) and background (label 0) events")
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tps = np.cumsum(w * y)[last]
    fps = np.cumsum(w * ~y)[last]
    nb_count = np.cumsum(~y)[last]
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    thr = np.r_[np.inf, s[last]]
    nb_pass = np.r_[0, nb_count]
    auc = float(np.trapezoid(tpr, fpr))
    valid = nb_pass >= min(min_background, int((~y).sum()))
    sic = np.divide(tpr, np.sqrt(fpr), out=np.zeros_like(tpr), where=fpr > 0)
    sic = np.where(valid, sic, 0.0)
    best = int(np.argmax(sic))
    return RocResult(fpr, tpr, thr, auc, float(sic[best]), float(tpr[best]), float(fpr[best]),
                     int(y.sum()), int((~y).sum()))  # fmt: skip


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) of two histograms (normalised here)."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@dataclass(frozen=True)
class SculptingResult:
    """Background shape of the observable before/after score cuts (one entry per efficiency)."""

    edges: np.ndarray
    efficiencies: tuple[float, ...]
    thresholds: tuple[float, ...]
    before: np.ndarray  # background counts, all events
    after: np.ndarray  # (n_eff, n_bins) background counts passing each cut
    js: tuple[float, ...]
    js_random: tuple[float, ...]  # same-size random selections: the statistical floor
    ratio: np.ndarray  # (n_eff, n_bins) normalised after/before
    chi2_flat: tuple[float, ...]  # chi2 of the ratio against its weighted mean
    ndf: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "efficiencies": list(self.efficiencies),
            "thresholds": list(self.thresholds),
            "before": self.before.tolist(),
            "after": self.after.tolist(),
            "js": list(self.js),
            "js_random": list(self.js_random),
            "ratio": np.nan_to_num(self.ratio).tolist(),
            "chi2_flat": list(self.chi2_flat),
            "ndf": list(self.ndf),
        }


def sculpting(
    observable: np.ndarray,
    scores: np.ndarray,
    *,
    is_background: np.ndarray,
    edges: Sequence[float] | np.ndarray,
    efficiencies: Sequence[float] = (0.1, 0.01),
    seed: int = 0,
) -> SculptingResult:
    """Does cutting on ``scores`` sculpt the background ``observable`` (e.g. mjj) shape?

    For each background efficiency the cut is the background score quantile; the shape after
    the cut is compared with the shape before by the JS divergence and a ratio. A JS well
    above ``js_random`` (same-size random subsets) or a chi2/ndf well above 1 flags sculpting.
    """
    bkg = np.asarray(is_background, bool)
    x = np.asarray(observable, np.float64)[bkg]
    s = np.asarray(scores, np.float64)[bkg]
    edges = np.asarray(edges, np.float64)
    before = np.histogram(x, bins=edges)[0].astype(np.float64)
    rng = np.random.default_rng(seed)
    thresholds, afters, js, js_rand, ratios, chi2s, ndfs = [], [], [], [], [], [], []
    for eff in efficiencies:
        cut = float(np.quantile(s, 1.0 - eff))
        sel = s > cut if (s > cut).sum() > 0 else s >= cut
        after = np.histogram(x[sel], bins=edges)[0].astype(np.float64)
        rand = np.histogram(rng.choice(x, size=int(sel.sum()), replace=False), bins=edges)[0]
        pb, pa = before / before.sum(), after / max(after.sum(), 1.0)
        ratio = np.divide(pa, pb, out=np.full_like(pa, np.nan), where=pb > 0)
        err = np.divide(np.sqrt(after), after.sum() * pb, out=np.full_like(pa, np.nan),
                        where=(pb > 0) & (after > 0))  # fmt: skip
        good = np.isfinite(err) & (err > 0)
        if good.sum() > 1:
            wts = 1.0 / err[good] ** 2
            mean = np.sum(wts * ratio[good]) / wts.sum()
            chi2 = float(np.sum(wts * (ratio[good] - mean) ** 2))
        else:
            chi2 = float("nan")
        thresholds.append(cut)
        afters.append(after)
        js.append(js_divergence(before, after) if after.sum() > 0 else float("nan"))
        js_rand.append(js_divergence(before, rand) if rand.sum() > 0 else float("nan"))
        ratios.append(ratio)
        chi2s.append(chi2)
        ndfs.append(int(max(good.sum() - 1, 0)))
    return SculptingResult(edges, tuple(map(float, efficiencies)), tuple(thresholds), before,
                           np.array(afters), tuple(js), tuple(js_rand), np.array(ratios),
                           tuple(chi2s), tuple(ndfs))  # fmt: skip


@dataclass(frozen=True)
class ThroughputResult:
    """Scoring speed of a bundle (best of ``repeats`` timings, bundle already loaded)."""

    n_events: int
    seconds: float
    events_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return {"n_events": self.n_events, "seconds": self.seconds,
                "events_per_second": self.events_per_second}  # fmt: skip


def scoring_throughput(
    bundle: Any, inputs: Any, *, repeats: int = 3, batch_size: int = 8192
) -> ThroughputResult:
    """Time ``bundle.score(inputs)`` (for ``benchmarks/throughput.py``); best of ``repeats``."""
    import time

    bundle.score(inputs.select(slice(0, min(len(inputs), 256))))  # warm-up (lazy init)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        bundle.score(inputs, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    return ThroughputResult(len(inputs), best, len(inputs) / best if best > 0 else float("inf"))
