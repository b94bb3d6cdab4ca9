"""The hunt, start to end, on per-event arrays: windows, classifiers, selections, estimates, Z.

:func:`run_hunt` takes the mass observable, the classifier features and the event numbers of
the data events (never a truth label: the tool must not know where a signal is) and returns a
:class:`~adcoffea.hunt.result.HuntResult`:

1. windows (:mod:`~adcoffea.hunt.windows`): sliding SRs over ``hunt.range``, or one fixed SR;
2. per window, the k-fold classifier (CWoLa: SR against sidebands; CATHODE: SR against
   background sampled from a sideband density) and out-of-fold scores of the whole fit range
   (:mod:`~adcoffea.hunt.classify`);
3. per efficiency, the threshold set outside the SR (:mod:`~adcoffea.hunt.selection`) and the
   selected mjj spectrum;
4. its background in the SR from the sideband fit (:mod:`~adcoffea.hunt.estimate`) and the
   local significance (:mod:`~adcoffea.hunt.significance`);
5. the global significance of the largest local Z over all windows and efficiencies from
   permutation pseudo-experiments refitted like the data (:mod:`~adcoffea.hunt.lee`).

Example:
    >>> from adcoffea.config import FitConfig, HuntConfig
    >>> res = run_hunt(mjj, x, event, edges=edges, config=HuntConfig(),
    ...                fit=FitConfig(range=(2800.0, 7000.0)))          # doctest: +SKIP
    >>> res.best.window.signal_region, res.best_local_z, res.global_z  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from adcoffea.config import FitConfig, HuntConfig
from adcoffea.errors import ConfigError
from adcoffea.hunt.classify import WindowScores, score_window
from adcoffea.hunt.estimate import MIN_EVENTS, estimate_background
from adcoffea.hunt.lee import Permuter, ToySpec, run_toys, summarise_global
from adcoffea.hunt.result import EfficiencyResult, HuntResult, WindowResult
from adcoffea.hunt.selection import levels as score_levels
from adcoffea.hunt.selection import selected_histograms, thresholds, untie
from adcoffea.hunt.significance import local_z
from adcoffea.hunt.windows import Window, make_windows

log = logging.getLogger(__name__)


def _fit_edges(edges: np.ndarray, fit_range: Sequence[float]) -> np.ndarray:
    lo, hi = (float(edges[int(np.argmin(np.abs(edges - v)))]) for v in fit_range)
    return edges[(edges >= lo) & (edges <= hi)]


def run_hunt(
    mjj: np.ndarray,
    x: np.ndarray,
    event: np.ndarray,
    *,
    edges: Sequence[float],
    config: HuntConfig,
    fit: FitConfig | None = None,
    fit_range: Sequence[float] | None = None,
    observable: str = "mjj",
    progress: Callable[[str], None] | None = None,
    n_jobs: int = 1,
) -> HuntResult:
    """Run the hunt on the data events (see the module docstring).

    Args:
        mjj: mass observable per event (GeV).
        x: classifier features per event, (n, d), in the order of ``config.features``.
        event: event numbers (the k-fold assignment is a hash of them).
        edges: histogram bin edges of the observable (GeV).
        config: the ``hunt`` block.
        fit: the background model (family, orders, sqrt_s, Wilks alpha); default FitConfig().
        fit_range: default ``config.fit_range``, else ``fit.range``.
        observable: name of the observable (for the result).
        progress: called with a short line after each step (e.g. ``print``).
        n_jobs: windows trained at once, in threads (the boosted trees release the GIL); the
            caller keeps ``n_jobs x (OpenMP/torch threads) <= cores``, see
            :func:`adcoffea.hunt.stage.run_hunt_stage`.
    """
    from adcoffea.models.bundle import fold_of

    say = progress or (lambda _msg: None)
    fit = fit or FitConfig()
    fr = _fit_range(config, fit, fit_range)
    edges = np.asarray(edges, dtype=float)
    mjj = np.asarray(mjj, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) != len(mjj) or len(event) != len(mjj):
        raise ConfigError(f"hunt: mjj {mjj.shape}, features {x.shape} and event numbers "
                          f"{np.shape(event)} must describe the same events")  # fmt: skip
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=0)).tolist()
        raise ConfigError(f"hunt.features: non-finite values in feature column(s) {bad}")
    t0 = time.perf_counter()
    windows = make_windows(edges, config, fr)
    folds = fold_of(np.asarray(event), config.classifier.k_folds)

    def train(w: Window) -> WindowScores:
        sc = score_window(
            w, mjj, x, folds, k=config.classifier.k_folds, kind=config.classifier.kind,
            members=config.classifier.members, seed=config.classifier.seed + 7919 * w.index,
            hyperparameters=config.classifier.hyperparameters, method=config.method,
            cathode=config.cathode.model_dump(),
        )  # fmt: skip
        closure = "" if sc.closure_auc is None else f", closure AUC {sc.closure_auc:.3f}"
        say(f"window {w.index + 1}/{len(windows)} [{w.sr_lo:g}, {w.sr_hi:g}]: classifier "
            f"AUC(SR vs SB) {sc.auc:.3f}{closure}")  # fmt: skip
        return sc

    if n_jobs > 1:
        from concurrent.futures import ThreadPoolExecutor

        # seeds depend on the window only: the result does not depend on n_jobs
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            scored = list(pool.map(train, windows))
    else:
        scored = [train(w) for w in windows]
    t_train = time.perf_counter() - t0
    res = analyse_scores(
        mjj, folds, windows, scored, edges=edges, config=config, fit=fit, fit_range=fr,
        observable=observable, progress=progress,
    )  # fmt: skip
    timings = {"train_and_score": round(t_train, 2), **res.timings_s}
    timings["total"] = round(time.perf_counter() - t0, 2)
    return replace(res, timings_s=timings)


def _fit_range(
    config: HuntConfig, fit: FitConfig, fit_range: Sequence[float] | None
) -> Sequence[float]:
    fr = fit_range or config.fit_range or fit.range
    if fr is None:
        raise ConfigError("hunt.fit_range: give it, or fit.range (the hunt fits there)")
    return fr


def analyse_scores(
    mjj: np.ndarray,
    folds: np.ndarray,
    windows: Sequence[Window],
    scored: Sequence[WindowScores],
    *,
    edges: Sequence[float],
    config: HuntConfig,
    fit: FitConfig | None = None,
    fit_range: Sequence[float] | None = None,
    observable: str = "mjj",
    progress: Callable[[str], None] | None = None,
) -> HuntResult:
    """Selections, estimates, local and global significance from per-window scores.

    The second half of :func:`run_hunt`, usable with any scores (e.g. a known selection under
    H0 in a calibration test): ``scored[i].scores`` holds window ``i``'s score of every event
    (NaN where not scored; every event of the fit range must be scored).
    """
    say = progress or (lambda _msg: None)
    fit = fit or FitConfig()
    fr = _fit_range(config, fit, fit_range)
    edges = np.asarray(edges, dtype=float)
    mjj = np.asarray(mjj, dtype=float)
    t0 = time.perf_counter()
    fe = _fit_edges(edges, fr)
    n_bins = len(fe) - 1
    effs = tuple(config.efficiencies)
    in_fit = (mjj >= fe[0]) & (mjj < fe[-1])
    m_fit = mjj[in_fit]
    bin_index = np.searchsorted(fe, m_fit, side="right") - 1
    lv = np.zeros((len(windows), len(m_fit)), dtype=np.int8)
    fit_kw = dict(function=fit.function, n_params=tuple(fit.n_params), sqrt_s=fit.sqrt_s,
                  alpha=fit.alpha)  # fmt: skip
    results: list[WindowResult] = []
    specs: list[list[ToySpec]] = []
    for i, (w, sc) in enumerate(zip(windows, scored, strict=True)):
        s_fit = sc.scores[in_fit]
        if not np.isfinite(s_fit).all():
            raise ValueError(f"window {i}: every event of the fit range needs a score")
        in_sr = w.in_sr(m_fit)
        # ranks with seeded tie-breaking: tied scores cannot empty a selection
        r_fit = untie(s_fit, seed=config.seed + 7919 * w.index)
        thr_rank = thresholds(r_fit, ~in_sr, effs)
        lv[i] = score_levels(r_fit, thr_rank)
        thr = np.sort(s_fit)[thr_rank.astype(np.int64)]  # the scores at the thresholds
        hists = selected_histograms(bin_index, lv[i], n_bins, len(effs))
        sr_bins = (fe[:-1] >= w.sr_lo) & (fe[1:] <= w.sr_hi)
        cells, toy_cells = [], []
        for j, eff in enumerate(effs):
            est = estimate_background(fe, hists[j], sr_bins, **fit_kw)
            z = 0.0
            if est.valid and np.isfinite(est.sigma):
                z = float(local_z(est.n_obs, est.background, est.sigma, method=config.significance))
            cells.append(EfficiencyResult(
                efficiency=eff, threshold=float(thr[j]), n_selected=int(hists[j].sum()),
                estimate=est, local_z=z, counts=tuple(float(c) for c in hists[j]),
            ))  # fmt: skip
            toy_cells.append(ToySpec(sr=sr_bins, starts=dict(est.starts) if est.valid else {}))
        results.append(WindowResult(w, sc.auc, sc.n_sr, sc.n_sb, tuple(cells), sc.closure_auc))
        specs.append(toy_cells)
        say(f"window {i + 1}/{len(windows)} [{w.sr_lo:g}, {w.sr_hi:g}]: local Z "
            + ", ".join(f"{c.local_z:.2f}" for c in cells))  # fmt: skip
    timings = {"fits": time.perf_counter() - t0}
    table = np.array([[c.local_z for c in r.efficiencies] for r in results])
    best_w, best_j = (int(v) for v in np.unravel_index(int(np.argmax(table)), table.shape))
    t_obs = float(table.max())
    glob = None
    if config.n_toys > 0:
        tc = time.perf_counter()
        permuter = Permuter(bin_index, np.asarray(folds)[in_fit], lv, len(effs))
        t_toys = run_toys(
            permuter, specs, edges=fe, n_toys=config.n_toys, seed=config.seed,
            function=fit.function, sqrt_s=fit.sqrt_s, alpha=fit.alpha,
            significance=config.significance, min_events=MIN_EVENTS,
        )  # fmt: skip
        glob = summarise_global(t_obs=t_obs, t_toys=t_toys, seed=config.seed)
        timings["toys"] = time.perf_counter() - tc
        say(f"global: t_obs = {t_obs:.2f}, p = {glob.p:.3g}, Z = {glob.z:.2f} "
            f"({config.n_toys} toys)")  # fmt: skip
    settings = {
        **config.model_dump(mode="json"),
        "fit": {"function": fit.function, "n_params": list(fit.n_params), "sqrt_s": fit.sqrt_s,
                "alpha": fit.alpha, "range": [float(fe[0]), float(fe[-1])]},
        "realised_relative_widths": [round((w.sr_hi - w.sr_lo) / w.centre, 4) for w in windows],
    }  # fmt: skip
    return HuntResult(
        method=config.method,
        observable=observable,
        edges=tuple(float(v) for v in fe),
        windows=tuple(results),
        best_window=best_w,
        best_efficiency=best_j,
        global_significance=glob,
        settings=settings,
        n_events=int(in_fit.sum()),
        timings_s={k_: round(v, 2) for k_, v in timings.items()},
    )


__all__ = ["analyse_scores", "run_hunt"]
