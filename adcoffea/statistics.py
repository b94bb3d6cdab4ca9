"""The statistics stage of ``adcoffea run``: fits, BumpHunter and limits per region.

For each score region the 'data' spectrum (the sum of the data datasets) is

* fitted with the configured function family, the order chosen by a Wilks test (1D);
* scanned by BumpHunter against the fitted background (1D) or against the data-driven
  estimate "inclusive data x anomaly-cut efficiency" (2D, and 1D on request), with the
  global significance from background-only pseudo-experiments (look-elsewhere effect);

and CLs upper limits are set in the limit region (by default the last, most selective one)
on the signal templates (``datasets.signal``) and on Gaussian signals versus mass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.config import AnalysisConfig
from adcoffea.errors import AdcoffeaError, ConfigError

OBSERVABLES = {"dijet": ("mjj", "mjj"), "semivisible": ("mt", "mt"), "yxh": ("mjj_mx", None)}
log = logging.getLogger(__name__)
LABELS = {"mjj": r"$m_{jj}$ [GeV]", "mt": r"$m_{T}$ [GeV]"}


def summed(h, datasets: list[str], region: str):
    """The histogram of ``region`` summed over ``datasets`` (missing datasets count as 0)."""
    present = [d for d in datasets if d in h.axes["dataset"]]
    proj = h[{"region": region}]
    out = None
    for d in present:
        part = proj[{"dataset": d}]
        out = part if out is None else out + part
    if out is None:
        out = proj[{"dataset": 0}] * 0 if len(h.axes["dataset"]) else None
    if out is None:
        raise ConfigError(f"no data histogram: none of {datasets} was processed")
    return out


def _values(h) -> np.ndarray:
    return np.asarray(h.values(), dtype=float)


def efficiency_background(incl: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data-driven background of a score region: inclusive data x cut efficiency.

    In 2D the efficiency is taken per bin of the second axis (e.g. m_X, on which a jet-level
    score may depend) and assumed independent of the first (mjj); in 1D it is one number.
    Returns the estimate and its per-bin statistical uncertainty (from the inclusive counts).
    """
    if incl.ndim == 1:
        eff = region.sum() / max(incl.sum(), 1.0)
        return incl * eff, np.sqrt(incl) * eff
    col_in, col_reg = incl.sum(axis=0), region.sum(axis=0)
    eff = np.divide(col_reg, col_in, out=np.zeros_like(col_reg), where=col_in > 0)
    return incl * eff[None, :], np.sqrt(incl) * eff[None, :]


def run_statistics(
    cfg: AnalysisConfig, hists: dict[str, Any], data_names: list[str], *, out_dir: Path
) -> dict[str, Any]:
    """Fit, scan and set limits; write plots and workspaces under ``out_dir``."""
    name, _ = OBSERVABLES[cfg.analysis]
    if name not in hists:
        raise ConfigError(f"no histogram {name!r} in the processor output")
    h = hists[name]
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    regions = [r.name for r in cfg.regions]
    out: dict[str, Any] = {"regions": {}}
    fits: dict[str, Any] = {}
    for region in regions:
        data = summed(h, data_names, region)
        res: dict[str, Any] = {"events": float(_values(data).sum())}
        if data.ndim == 1:
            res.update(_one_dimensional(cfg, h, data, data_names, region, plots, fits))
        else:
            res.update(_two_dimensional(cfg, h, data, data_names, region, plots))
        out["regions"][region] = res
    if cfg.limits is not None:
        region = cfg.limits.region or regions[-1]
        out["limits"] = _limits(cfg, h, data_names, region, out_dir, fits.get(region))
    return out


# --------------------------------------------------------------------------------------
# 1D: fit + BumpHunter
# --------------------------------------------------------------------------------------
def _one_dimensional(cfg, h, data, data_names, region, plots: Path, fits: dict) -> dict[str, Any]:
    edges = data.axes[0].edges
    counts = _values(data)
    obs = data.axes[0].name
    out: dict[str, Any] = {}
    background = None
    scan_range = None
    exclude = _a_priori_exclusion(cfg, region)
    if cfg.fit is not None:
        best = _fit_region(cfg, data, region, plots, fits, out, exclude=exclude)
        background, scan_range = _fit_background_array(best, edges, counts)
    bh = cfg.bumphunt
    if bh is not None:
        unc = None
        inclusive = region == cfg.regions[0].name
        reg_cfg = next(r for r in cfg.regions if r.name == region)
        method = reg_cfg.background or bh.background
        if (method == "efficiency" and not inclusive) or background is None:
            incl = _values(summed(h, data_names, cfg.regions[0].name))
            background, unc = efficiency_background(incl, counts)
            out["background_method"] = "inclusive x efficiency"
        else:
            out["background_method"] = "fit"
        if bh.scan_range is not None:
            scan_range = bh.scan_range
        result = _scan(bh, counts, background, edges, scan_range, unc)
        refit = (
            cfg.fit is not None
            and out["background_method"] == "fit"
            and bh.refit_global_p is not None
            and exclude is None
            and result.bump_lo is not None
            and result.global_p < bh.refit_global_p
        )
        if refit:
            # ATLAS dijet procedure: a significant bump may have pulled the fit; refit with
            # its window excluded and scan again (the first scan is kept in the results)
            window = (float(result.bump_lo[0]), float(result.bump_hi[0]))
            out["bumphunter_before_refit"] = result.to_dict()
            best = _fit_region(cfg, data, region, plots, fits, out, exclude=window)
            background, scan_range = _fit_background_array(best, edges, counts)
            if bh.scan_range is not None:
                scan_range = bh.scan_range
            result = _scan(bh, counts, background, edges, scan_range, unc)
            out["refit_excluding"] = list(window)
        out["bumphunter"] = result.to_dict()
        _bh_plots(result, counts, background, edges, plots, region, LABELS.get(obs, obs))
    return out


def _a_priori_exclusion(cfg, region: str) -> tuple[float, float] | None:
    """The window every fit of ``region`` leaves out, fixed before looking at the data."""
    if cfg.fit is not None and cfg.fit.exclude is not None:
        return tuple(cfg.fit.exclude)
    reg = next(r for r in cfg.regions if r.name == region)
    label = cfg.region_model(reg)
    model = next((m for m in cfg.all_models if cfg.model_label(m) == label), None)
    if model is not None and model.method in ("cwola", "cathode") and model.signal_region:
        # CWoLa hunting: the selected events are fitted in the sidebands and the fit is
        # interpolated into the signal region the classifier was trained for
        return (float(model.signal_region[0]), float(model.signal_region[1]))
    return None


def _fit_region(cfg, data, region, plots: Path, fits: dict, out: dict, *, exclude):
    from adcoffea.fits.background import select_order
    from adcoffea.fits.fit_plots import plot_fit

    edges = data.axes[0].edges
    obs = data.axes[0].name
    fr = cfg.fit.range or (float(edges[0]), float(edges[-1]))
    backend = cfg.fit.backend if exclude is None else "iminuit"
    sel = select_order(
        data,
        function=cfg.fit.function,
        n_params=cfg.fit.n_params,
        sqrt_s=cfg.fit.sqrt_s,
        backend=backend,
        fit_range=fr,
        alpha=cfg.fit.alpha,
        exclude=exclude,
    )
    best = sel.best
    fits[region] = best
    out["fit"] = {"order_selection": sel.to_dict(), "best": _fit_summary(best)}
    if exclude is not None:
        out["fit"]["excluded_window"] = list(exclude)
        if backend != cfg.fit.backend:
            out["fit"]["note"] = "window-excluded fits use the iminuit path"
    title = f"{cfg.name}: {region}"
    if exclude is not None:
        title += f" (fit excludes {exclude[0]:.0f}-{exclude[1]:.0f})"
    plot_fit(best, plots / f"fit_{region}.png", xlabel=LABELS.get(obs, obs), title=title)
    return best


def _fit_background_array(best, edges, counts):
    lo = int(np.searchsorted(edges, best.edges[0]))
    background = np.zeros_like(counts)
    background[lo : lo + len(best.background)] = best.background
    return background, (float(best.edges[0]), float(best.edges[-1]))


def _scan(bh, counts, background, edges, scan_range, unc):
    from adcoffea.fits.bumphunter import bumphunt

    return bumphunt(
        counts,
        background,
        edges=edges,
        width_min=bh.width_min,
        width_max=bh.width_max,
        step=bh.step,
        mode=bh.mode,
        scan_range=scan_range,
        sideband=bh.sideband,
        n_toys=bh.n_toys,
        seed=bh.seed,
        bkg_uncertainty=unc,
        keep_toy_t=True,
    )


def _fit_summary(fit) -> dict[str, Any]:
    d = fit.to_dict()
    keep = (
        "function",
        "n_params",
        "backend",
        "names",
        "values",
        "errors",
        "nll",
        "chi2",
        "ndf",
        "pvalue",
        "deviance",
        "converged",
    )
    return {k: d[k] for k in keep if k in d}


def _bh_plots(result, data, background, edges, plots: Path, region: str, xlabel: str) -> None:
    from adcoffea.fits.bumphunter_plots import plot_bump_1d, plot_bump_2d, plot_t_distribution

    if np.ndim(data) == 1:
        plot_bump_1d(
            result,
            data,
            background,
            edges=edges,
            path=str(plots / f"bumphunter_{region}.png"),
            xlabel=xlabel,
        )
    else:
        plot_bump_2d(
            result,
            data,
            background,
            edges=edges,
            path=str(plots / f"bumphunter2d_{region}.png"),
            xlabel=r"$m_{Y} = m_{jj}$ [GeV]",
            ylabel=r"$m_{X}$ [GeV]",
        )
    if len(result.t_toys):
        plot_t_distribution(result, path=str(plots / f"bumphunter_t_{region}.png"))


# --------------------------------------------------------------------------------------
# 2D: data-driven background + 2D BumpHunter
# --------------------------------------------------------------------------------------
def _two_dimensional(cfg, h, data, data_names, region, plots: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bh = cfg.bumphunt
    if bh is None or region == cfg.regions[0].name:
        return out  # the inclusive region is the background estimate itself
    counts = _values(data)
    incl = _values(summed(h, data_names, cfg.regions[0].name))
    background, unc = efficiency_background(incl, counts)
    edges = [data.axes[0].edges, data.axes[1].edges]
    result = _scan(bh, counts, background, edges, None, unc)
    out["bumphunter"] = result.to_dict()
    out["background_method"] = "inclusive x efficiency(m_X)"
    _bh_plots(result, counts, background, edges, plots, region, "")
    return out


# --------------------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------------------
def _limits(cfg, h, data_names, region, out_dir: Path, fit) -> dict[str, Any]:
    from adcoffea.fits.workspace import build_workspace, upper_limit
    from adcoffea.outputs import write_json

    lim = cfg.limits
    ws_dir = out_dir / "workspaces"
    ws_dir.mkdir(parents=True, exist_ok=True)
    data = summed(h, data_names, region)
    counts = _values(data)
    inclusive = cfg.regions[0].name
    out: dict[str, Any] = {"region": region, "cl": lim.cl, "templates": {}}
    two_d = counts.ndim == 2

    if two_d or fit is None:
        incl = _values(summed(h, data_names, inclusive))
        bkg, unc = efficiency_background(incl, counts)
        if region == inclusive:
            raise ConfigError("limits without a fit need an anomaly region (limits.region)")
        mask = bkg.ravel() > 0
        d_vec, b_vec, u_vec = counts.ravel()[mask], bkg.ravel()[mask], unc.ravel()[mask]
        background_arg: Any = b_vec
        ws_kwargs: dict[str, Any] = {"bkg_stat_errors": np.maximum(u_vec, 1e-6)}
        out["background"] = "inclusive x efficiency, with its statistical uncertainty"

        def project(arr2d: np.ndarray) -> np.ndarray:
            return arr2d.ravel()[mask]
    else:
        lo = int(np.searchsorted(data.axes[0].edges, fit.edges[0]))
        sl = slice(lo, lo + len(fit.counts))
        d_vec = counts[sl]
        background_arg = fit
        ws_kwargs = {}
        out["background"] = (
            f"{fit.function} fit, {fit.n_params} parameters, eigen-variations as histosys"
        )

        def project(arr: np.ndarray) -> np.ndarray:
            return arr[sl]

    # signal templates: mu = 1 <-> reference_events selected signal events before the cut
    for sig in cfg.datasets.signal:
        if sig not in h.axes["dataset"]:
            continue
        s_incl = _values(h[{"dataset": sig, "region": inclusive}]).sum()
        s_reg = _values(h[{"dataset": sig, "region": region}])
        if s_incl <= 0:
            continue
        shape = project(s_reg) / s_incl * lim.reference_events
        args, kw = _signal_window(shape, d_vec, background_arg, ws_kwargs)
        ws = build_workspace(*args, **kw)
        write_json(ws_dir / f"{region}_{sig}.json", ws)
        try:
            res = upper_limit(ws, cl=lim.cl, calctype=lim.calculator)
        except AdcoffeaError as err:
            log.warning("limit on %s in %s failed: %s", sig, region, err)
            out["templates"][sig] = {
                "error": str(err),
                "workspace": str(ws_dir / f"{region}_{sig}.json"),
            }
            continue
        out["templates"][sig] = {
            **res.to_dict(),
            "signal_efficiency": float(s_reg.sum() / s_incl),
            "reference_events": lim.reference_events,
            "observed_events_before_cut": res.observed * lim.reference_events,
            "expected_events_before_cut": res.expected_median * lim.reference_events,
            "workspace": str(ws_dir / f"{region}_{sig}.json"),
        }

    if lim.masses:
        out["mass_scan"] = _mass_scan(
            cfg, data, d_vec, background_arg, ws_kwargs, project, out_dir, region
        )
    return out


def _signal_window(shape, d_vec, background_arg, ws_kwargs):
    """Arguments of ``build_workspace`` restricted to the bins the signal populates.

    For a data-driven (per-bin) background the workspace keeps the bins holding at least
    5 % of the signal's largest bin (about +-2.4 sigma of a Gaussian per axis, ~90 % of the
    signal); a 2D limit over the whole plane would fit hundreds of nuisance parameters for
    no sensitivity. A fit background is kept whole (its histosys variations are defined on
    the fitted range).
    """
    if hasattr(background_arg, "background"):
        return (d_vec, background_arg, shape), dict(ws_kwargs)
    keep = shape >= 0.05 * shape.max()
    b = np.asarray(background_arg, dtype=float)[keep]
    kw: dict[str, Any] = {}
    err = ws_kwargs.get("bkg_stat_errors")
    if err is not None:
        # one nuisance parameter for the statistical uncertainty of the background estimate
        # in the window (its normalisation, which is what a narrow signal is sensitive to):
        # pyhf's numpy backend needs ~1 s per fit per staterror parameter
        rel = float(np.sqrt(np.sum(np.asarray(err)[keep] ** 2)) / max(b.sum(), 1e-12))
        kw["bkg_variations"] = {"bkg_estimate_stat": (b * (1.0 - rel), b * (1.0 + rel))}
    return (d_vec[keep], b, shape[keep]), kw


def _mass_scan(cfg, data, d_vec, background_arg, ws_kwargs, project, out_dir: Path, region):
    from adcoffea.fits.signal import gaussian_signal
    from adcoffea.fits.workspace import build_workspace, upper_limit

    lim = cfg.limits
    e0 = data.axes[0].edges
    bkg_total = float(
        np.sum(
            background_arg.background if hasattr(background_arg, "background") else background_arg
        )
    )
    points = []
    if data.ndim == 1:
        grid = [(m, None) for m in lim.masses]
    else:
        grid = [(m, mx) for m in lim.masses for mx in (lim.masses_x or [None])]
    for m, mx in grid:
        shape = gaussian_signal(e0, m, rel_width=lim.signal_width)
        if mx is not None:
            sx = gaussian_signal(data.axes[1].edges, mx, rel_width=lim.signal_width_x)
            shape = np.outer(shape, sx)
        shape = project(shape)
        if shape.sum() <= 1e-6:
            continue
        # Scale the unit-yield shape so that mu ~ O(1): pyhf's mu bounds then fit comfortably.
        norm = max(10.0, 3.0 * np.sqrt(bkg_total * min(1.0, 4 * lim.signal_width)))
        args, kw = _signal_window(shape * norm, d_vec, background_arg, ws_kwargs)
        ws = build_workspace(*args, **kw)
        try:
            res = upper_limit(ws, cl=lim.cl, calctype=lim.calculator)
        except AdcoffeaError as err:
            log.warning("limit at m = %s (m_X = %s) failed: %s", m, mx, err)
            points.append({"mass": m, **({"mass_x": mx} if mx else {}), "error": str(err)})
            continue
        point = {
            "mass": m,
            **({"mass_x": mx} if mx is not None else {}),
            "observed_events": res.observed * norm * shape.sum(),
            "expected_events": [e * norm * shape.sum() for e in res.expected],
        }
        points.append(point)
    good = [p for p in points if "error" not in p]
    if good and data.ndim == 1:
        _brazil(good, out_dir / "plots" / f"limits_{region}.png")
    elif good:
        _limit_map(good, out_dir / "plots" / f"limits2d_{region}.png")
    return points


def _brazil(points, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.array([p["mass"] for p in points])
    obs = np.array([p["observed_events"] for p in points])
    exp = np.array([p["expected_events"] for p in points])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.fill_between(m, exp[:, 0], exp[:, 4], color="#ffdf00", label=r"expected $\pm 2\sigma$")
    ax.fill_between(m, exp[:, 1], exp[:, 3], color="#00c000", label=r"expected $\pm 1\sigma$")
    ax.plot(m, exp[:, 2], "k--", label="expected")
    ax.plot(m, obs, "k-o", ms=4, label="observed")
    ax.set_yscale("log")
    ax.set_xlabel("signal mass [GeV]")
    ax.set_ylabel("95% CL upper limit on signal events")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _limit_map(points, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    my = sorted({p["mass"] for p in points})
    mx = sorted({p["mass_x"] for p in points})
    grid = np.full((len(mx), len(my)), np.nan)
    for p in points:
        grid[mx.index(p["mass_x"]), my.index(p["mass"])] = p["observed_events"]
    fig, ax = plt.subplots(figsize=(6.5, 5))
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
    fig.colorbar(im, label="95% CL observed limit on signal events")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
