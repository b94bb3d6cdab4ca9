"""The statistics stage of ``adcoffea run``: fits, BumpHunter and limits per region.

For each score region the 'data' spectrum (the sum of the data datasets) is

* fitted with the configured function family, the order chosen by a Wilks test (1D); the
  chosen fit's chi2 p-value, the order-test table and the per-bin pulls are kept, and a fit
  with p < ``fit.min_pvalue`` (0.01) flags the region ``background_model_adequate=False``:
  a BumpHunter result against that fit is then not quoted as a discovery (a scan against
  the data-driven background below does not use the fit and stays quoted);
* given a **fit-function uncertainty** (:func:`adcoffea.fits.uncertainty.fit_function_uncertainty`):
  the envelope, per bin, of the other function families (``dijet``, ``expo``, ``power``
  less the nominal one, each at its Wilks-chosen order) and of the nominal family one order
  up, all fitted to the same data and bins, alternatives that do not describe the data
  left out. It is data-driven, so every fitted region has one. With
  ``fit.uncertainty_template`` (a high-statistics background dataset) the spurious signal
  fitted on that template is added, the larger of the two per bin;
* scanned by BumpHunter against the fitted background, with the fit-function uncertainty as
  background uncertainty (summed linearly within a window, a Gamma prior on the background),
  or against the data-driven estimate "inclusive data x anomaly-cut efficiency" (2D, and 1D
  on request; statistical uncertainty only, no fit function enters), with the global
  significance from background-only pseudo-experiments (look-elsewhere effect);
* when the scan finds a bump with global p < ``bumphunt.refit_global_p``, refitted with the
  bump window excluded and scanned again; :func:`adcoffea.fits.refit.guarded_refit` accepts
  the refit only if it still describes the data outside the window and agrees in the window
  with an alternative function within the fit-function uncertainty. Otherwise the more
  conservative scan (larger global p) is quoted; both scans and the reason are kept;

and CLs upper limits are set in the limit region (by default the last, most selective one)
on the signal templates (``datasets.signal``) and on Gaussian signals versus mass, with the
fit-function uncertainty as a ``histosys`` nuisance parameter ``fit_function_<region>`` in
every workspace of a fitted background. Each scan and limit states the fit-function
uncertainty it includes (:class:`adcoffea.results.FitUncertaintyStatement`).

With ``limits.unit: fb`` a template is normalised to cross section x luminosity / sum of
generator weights (:mod:`adcoffea.normalisation`): mu = 1 is its cross section, and the limit
is also quoted as sigma x B in fb. The Gaussian mass scan is converted to fb with the
selection x region efficiency of the templates, interpolated in mass. Templates carry a
luminosity ``normsys`` (``limits.luminosity_uncertainty``), their MC statistics as a
``staterror`` (``limits.signal_stat_uncertainty``) and, with ``systematics``, their jet
energy scale and resolution variations as ``histosys`` ``jes`` and ``jer`` (from the
processor's ``<observable>_variations`` histogram; the one-sided JER variation is mirrored
about the nominal, see :func:`signal_variations`), are also limited without any nuisance
parameter (the statistics-only limit), and get fit diagnostics (pulls, impacts on mu, pre-
and post-fit yields; ``limits.diagnostics``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcoffea.config import AnalysisConfig
from adcoffea.errors import ConfigError, LimitError
from adcoffea.models.methods import WEAKLY_SUPERVISED_METHODS
from adcoffea.results import (
    FitUncertaintyStatement,
    LimitsResult,
    MassPoint,
    RefitOutcome,
    RegionFit,
    RegionResult,
    StatisticsResult,
    TemplateLimit,
)

if TYPE_CHECKING:
    from adcoffea.normalisation import SampleNormalisation

log = logging.getLogger(__name__)
#: the note of a region that no data event enters
EMPTY_REGION = "empty region: no data event passes its cut"
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


def _inside(edges: np.ndarray, interval) -> np.ndarray:
    """Bins entirely inside ``interval`` (lo, hi)."""
    edges = np.asarray(edges, dtype=float)
    tol = 1e-9 * (edges[-1] - edges[0])
    return (edges[:-1] >= float(interval[0]) - tol) & (edges[1:] <= float(interval[1]) + tol)


def _efficiency(cfg, h, data_names, region, counts, edges0, scan_range) -> Any:
    """The score region's data-driven background (:mod:`adcoffea.fits.efficiency`).

    The efficiency is fitted in the rows of the first axis inside the scanned range: below
    it (the selection's turn-on) a score's efficiency differs, and the bulk of the events
    there would set the estimate.
    """
    from adcoffea.fits.efficiency import fit_efficiency

    incl = _values(summed(h, data_names, cfg.regions[0].name))
    rows = None
    if scan_range is not None:
        first = scan_range[0] if np.ndim(scan_range) == 2 else scan_range
        rows = _inside(edges0, first)
        if not rows.any():
            raise ConfigError(f"bumphunt.scan_range {scan_range} contains no complete bin")
    bh = cfg.bumphunt
    trend = bh is None or bh.efficiency_model == "trend"
    centres = 0.5 * (np.asarray(edges0)[1:] + np.asarray(edges0)[:-1])
    try:
        return incl, fit_efficiency(incl, counts, centres=centres, rows=rows, trend=trend)
    except ConfigError as err:
        raise ConfigError(f"region {region!r}: {err}") from None


def run_statistics(
    cfg: AnalysisConfig,
    hists: dict[str, Any],
    data_names: list[str],
    *,
    out_dir: Path,
    normalisation: Mapping[str, SampleNormalisation] | None = None,
) -> StatisticsResult:
    """Fit, scan and set limits; write plots and workspaces under ``out_dir``.

    ``normalisation`` (per signal dataset, :func:`adcoffea.normalisation.normalisations`) is
    needed with ``limits.unit: fb``.
    """
    from adcoffea.processing import observable_name
    from adcoffea.systematics import variations_key

    name = observable_name(cfg)
    if name not in hists:
        raise ConfigError(f"no histogram {name!r} in the processor output")
    h = hists[name]
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    regions = [r.name for r in cfg.regions]
    results: dict[str, RegionResult] = {}
    for region in regions:
        data = summed(h, data_names, region)
        if not _values(data).sum() > 0:
            # e.g. a score that is constant on these data (a weakly supervised classifier
            # that found nothing to learn): its efficiency cut keeps no event
            log.warning("region %s is empty: no fit, scan or limit there", region)
            results[region] = RegionResult(events=0.0, note=EMPTY_REGION)
        elif data.ndim == 1:
            results[region] = _one_dimensional(cfg, h, data, data_names, region, plots)
        else:
            results[region] = _two_dimensional(cfg, h, data, data_names, region, plots)
    limits = None
    if cfg.limits is not None:
        region = cfg.limits.region or regions[-1]
        if results[region].note == EMPTY_REGION:
            limits = LimitsResult(
                region=region,
                cl=cfg.limits.cl,
                background=EMPTY_REGION,
                unit=cfg.limits.unit,
                luminosity_fb=cfg.limits.luminosity,
            )
        else:
            fit = results[region].fit
            unc = results[region].fit_function_uncertainty
            limits = _limits(
                cfg,
                h,
                data_names,
                region,
                out_dir,
                None if fit is None else fit.best,
                unc if cfg.fit is not None and cfg.fit.function_uncertainty else None,
                normalisation=normalisation,
                variations=hists.get(variations_key(name)),
            )
    return StatisticsResult(regions=results, limits=limits)


# --------------------------------------------------------------------------------------
# 1D: fit + BumpHunter
# --------------------------------------------------------------------------------------
def _one_dimensional(cfg, h, data, data_names, region, plots: Path) -> RegionResult:
    edges = data.axes[0].edges
    counts = _values(data)
    obs = data.axes[0].name
    events = float(counts.sum())
    fit = None
    unc = None
    background = None
    scan_range = None
    exclude = _a_priori_exclusion(cfg, region)
    if cfg.fit is not None:
        fit = _fit_region(cfg, data, region, plots, exclude=exclude)
        unc = _fit_uncertainty(cfg, h, data, region, fit.best, exclude=exclude)
        background, scan_range = _fit_background_array(fit.best, edges, counts)
    bh = cfg.bumphunt
    if bh is None:
        return RegionResult(events=events, fit=fit, fit_function_uncertainty=unc)
    stat_unc = None
    inclusive = region == cfg.regions[0].name
    reg_cfg = next(r for r in cfg.regions if r.name == region)
    method = reg_cfg.background or bh.background
    if bh.scan_range is not None:
        scan_range = bh.scan_range
    if scan_range is not None and np.ndim(scan_range) == 2:
        raise ConfigError(
            f"bumphunt.scan_range {scan_range} has two axes, but the observable {obs!r} is 1D"
        )
    estimate = None
    if (method == "efficiency" and not inclusive) or background is None:
        incl, estimate = _efficiency(cfg, h, data_names, region, counts, edges, scan_range)
        background, stat_unc = estimate.background, estimate.uncertainty
        background_method = "inclusive x efficiency"
    else:
        background_method = "fit"
    scan_unc = unc if background_method == "fit" and cfg.fit.function_uncertainty else None
    result = _scan(bh, counts, background, edges, scan_range, stat_unc, scan_unc,
                   fit=fit if background_method == "fit" else None,
                   efficiency=None if estimate is None else (incl, estimate))  # fmt: skip
    refit = None
    tried = (
        cfg.fit is not None
        and background_method == "fit"
        and bh.refit_global_p is not None
        and exclude is None
        and result.bump_lo is not None
        and result.global_p < bh.refit_global_p
    )
    if tried:
        refit = _guarded_refit(cfg, h, data, region, plots, fit, unc, result, scan_range)
        if refit.quoted == "refit":
            result = refit.refit
            scan_unc = refit.uncertainty if cfg.fit.function_uncertainty else None
            background, _ = _fit_background_array(refit.fit.best, edges, counts)
        if refit.decision.accepted:
            # the refit replaces the fit: its diagnostics and its uncertainty
            fit, unc = refit.fit, refit.uncertainty
    _bh_plots(result, counts, background, edges, plots, region, LABELS.get(obs, obs))
    if estimate is None:
        statement = _scan_statement(cfg, scan_unc, result, unc)
    else:
        statement = FitUncertaintyStatement(
            included=False,
            description=f"none: the scan's background is data-driven ({estimate.description})"
            ", no fit function enters",
        )
    return RegionResult(
        events=events,
        fit=fit,
        background_method=background_method,
        bumphunter=result,
        refit=refit,
        fit_function_uncertainty=unc,
        bumphunter_uncertainty=statement,
    )


def _fit_uncertainty(cfg, h, data, region, best, *, exclude):
    """The fit-function uncertainty of ``best`` (None if it cannot be computed).

    The envelope over the other function families (and the nominal one order up) fitted to
    the same bins; with ``fit.uncertainty_template``, also the spurious signal on that
    dataset's histogram of the region, the larger of the two per bin.
    """
    from adcoffea.errors import AdcoffeaError
    from adcoffea.fits.functions import FAMILIES
    from adcoffea.fits.uncertainty import fit_function_uncertainty

    template = None
    name = cfg.fit.uncertainty_template
    if name is not None:
        if name not in h.axes["dataset"]:
            raise ConfigError(f"fit.uncertainty_template {name!r} is not a processed dataset")
        template = h[{"dataset": name, "region": region}]
    edges = data.axes[0].edges
    try:
        return fit_function_uncertainty(
            data,
            function=best.function,
            n_params=best.n_params,
            sqrt_s=cfg.fit.sqrt_s,
            fit_range=cfg.fit.range or (float(edges[0]), float(edges[-1])),
            exclude=exclude,
            alternatives=tuple(f for f in FAMILIES if f != best.function),
            alpha=cfg.fit.alpha,
            min_pvalue=cfg.fit.min_pvalue,
            nominal=best,
            template=template,
        )
    except AdcoffeaError as err:
        log.warning("no fit-function uncertainty in region %s: %s", region, err)
        return None


def _alternative_refit(cfg, data, unc, window):
    """The first adequate alternative family of ``unc``, refitted with ``window`` excluded."""
    from adcoffea.errors import AdcoffeaError
    from adcoffea.fits.background import fit_background

    if unc is None:
        return None
    edges = data.axes[0].edges
    for row in unc.alternatives:
        if not row.get("used") or row["function"] == unc.function:
            continue
        try:
            return fit_background(
                data,
                function=row["function"],
                n_params=int(row["n_params"]),
                sqrt_s=cfg.fit.sqrt_s,
                fit_range=cfg.fit.range or (float(edges[0]), float(edges[-1])),
                exclude=window,
                min_pvalue=cfg.fit.min_pvalue,
            )
        except AdcoffeaError as err:
            log.warning("alternative %s refit failed: %s", row["function"], err)
    return None


def _guarded_refit(cfg, h, data, region, plots, fit, unc, first, scan_range) -> RefitOutcome:
    """Refit without the bump, scan again, and let :func:`guarded_refit` decide.

    A significant bump may have pulled the fit (the ATLAS dijet procedure refits with its
    window excluded); the refit is accepted only if it still describes the data outside the
    window and agrees there with an alternative function within the fit-function
    uncertainty. Otherwise the more conservative scan (larger global p) is quoted.
    """
    from adcoffea.fits.refit import guarded_refit

    bh = cfg.bumphunt
    edges = data.axes[0].edges
    counts = _values(data)
    window = (float(first.bump_lo[0]), float(first.bump_hi[0]))
    refit_fit = _fit_region(cfg, data, region, plots, exclude=window, suffix="_refit")
    alternative = _alternative_refit(cfg, data, unc, window)
    decision = guarded_refit(
        fit.best,
        refit_fit.best,
        window=window,
        alternative=alternative,
        uncertainty=0.0 if unc is None else unc,
        min_pvalue=cfg.fit.min_pvalue,
    )
    refit_unc = _fit_uncertainty(cfg, h, data, region, refit_fit.best, exclude=window)
    background, _ = _fit_background_array(refit_fit.best, edges, counts)
    scan_unc = refit_unc if cfg.fit.function_uncertainty else None
    second = _scan(bh, counts, background, edges, scan_range, None, scan_unc, fit=refit_fit)
    if decision.accepted:
        quoted = "refit"
    else:
        quoted = "original" if first.global_p >= second.global_p else "refit"
    log.info("region %s: refit excluding %s %s (%s)", region, window, quoted, decision.reason)
    return RefitOutcome(
        decision=decision,
        fit=refit_fit,
        original=first,
        refit=second,
        quoted=quoted,
        uncertainty=refit_unc,
    )


def _scan_statement(cfg, scan_unc, result, unc) -> FitUncertaintyStatement:
    """The fit-function uncertainty a fit-background scan includes, at its bump."""
    if scan_unc is None:
        why = (
            "switched off (fit.function_uncertainty: false)"
            if unc is not None
            else "could not be computed (see the log)"
        )
        return FitUncertaintyStatement(
            included=False, description=f"none: the fit-function uncertainty was {why}"
        )
    used = [f"{r['function']} ({r['n_params']} par)" for r in scan_unc.alternatives if r["used"]]
    desc = (
        f"{scan_unc.method}: largest deviation of "
        + (", ".join(used) if used else "no adequate alternative (zero envelope)")
        + f" from the {scan_unc.n_params}-parameter {scan_unc.function} fit, per bin, summed "
        "linearly within a window (Gamma prior on the background)"
    )
    window = events = stat = None
    if result.bump_lo is not None and result.bkg_in_bump is not None:
        window = (float(result.bump_lo[0]), float(result.bump_hi[0]))
        try:
            events = float(scan_unc.window(*window))
        except ConfigError:  # the bump lies outside the fitted bins
            events = 0.0
        stat = float(np.sqrt(max(result.bkg_in_bump, 0.0)))
    return FitUncertaintyStatement(
        included=True,
        description=desc,
        method=scan_unc.method,
        window=window,
        window_events=events,
        stat_events=stat,
    )


def _a_priori_exclusion(cfg, region: str) -> tuple[float, float] | None:
    """The window every fit of ``region`` leaves out, fixed before looking at the data."""
    if cfg.fit is not None and cfg.fit.exclude is not None:
        return tuple(cfg.fit.exclude)
    reg = next(r for r in cfg.regions if r.name == region)
    label = cfg.region_model(reg)
    model = next((m for m in cfg.all_models if cfg.model_label(m) == label), None)
    if model is not None and model.method in WEAKLY_SUPERVISED_METHODS and model.signal_region:
        # CWoLa hunting: the selected events are fitted in the sidebands and the fit is
        # interpolated into the signal region the classifier was trained for
        return (float(model.signal_region[0]), float(model.signal_region[1]))
    return None


def _fit_region(cfg, data, region, plots: Path, *, exclude, suffix: str = "") -> RegionFit:
    from adcoffea.fits.background import Backend
    from adcoffea.fits.order import select_order
    from adcoffea.plots import save
    from adcoffea.plots.fit import plot_fit

    edges = data.axes[0].edges
    obs = data.axes[0].name
    fr = cfg.fit.range or (float(edges[0]), float(edges[-1]))
    backend: Backend = cfg.fit.backend if exclude is None else "iminuit"
    sel = select_order(
        data,
        function=cfg.fit.function,
        n_params=cfg.fit.n_params,
        sqrt_s=cfg.fit.sqrt_s,
        backend=backend,
        fit_range=fr,
        alpha=cfg.fit.alpha,
        exclude=exclude,
        min_pvalue=cfg.fit.min_pvalue,
    )
    best = sel.best
    note = None
    if exclude is not None and backend != cfg.fit.backend:
        note = "window-excluded fits use the iminuit path"
    title = f"{cfg.name}: {region}"
    if exclude is not None:
        title += f" (fit excludes {exclude[0]:.0f}-{exclude[1]:.0f})"
    fig = plot_fit(best, xlabel=LABELS.get(obs, obs), title=title)
    save(fig, plots / f"fit_{region}{suffix}.png", dpi=80)
    return RegionFit(
        selection=sel,
        excluded_window=None if exclude is None else (float(exclude[0]), float(exclude[1])),
        note=note,
    )


def _fit_background_array(best, edges, counts):
    lo = int(np.searchsorted(edges, best.edges[0]))
    background = np.zeros_like(counts)
    background[lo : lo + len(best.background)] = best.background
    return background, (float(best.edges[0]), float(best.edges[-1]))


def _scan(bh, counts, background, edges, scan_range, unc, fit_unc=None, fit=None,
          efficiency=None):  # fmt: skip
    """BumpHunter with the statistical (``unc``) or fit-function (``fit_unc``) uncertainty.

    ``fit``: the :class:`RegionFit` the background comes from; with ``bumphunt.toys:
    refit`` every pseudo-experiment is refitted as the data was and scanned against its own
    fit (:func:`adcoffea.fits.toys.refitted_toys`), so that the global p is calibrated.
    ``efficiency``: ``(inclusive counts, EfficiencyEstimate)`` of a data-driven background;
    with ``refit`` the toys are drawn from the inclusive counts and each re-estimates its
    efficiency (:func:`adcoffea.fits.efficiency.efficiency_toys`). The estimate's
    uncertainty (``unc``) enters every window's local p in quadrature; bins of one column
    are correlated through the fitted slope, which the re-estimated toys carry into the
    global p.
    """
    from dataclasses import replace

    from adcoffea.fits.bumphunter import bumphunt

    correlated = False
    if fit_unc is not None:
        # a fit-function shift moves the bins of a window together: summed linearly
        unc, correlated = fit_unc.embed(np.asarray(edges, dtype=float)), True
    toys = None
    toy_counts = toy_bkgs = None
    if fit is not None and bh.toys == "refit" and not bh.sideband:
        from adcoffea.fits.toys import refitted_toys

        toys = refitted_toys(fit.selection, n_toys=bh.n_toys, seed=bh.seed,
                             exclude=fit.excluded_window)  # fmt: skip
        if toys.n_failed:
            log.warning("%d of %d BumpHunter toys could not be refitted; left out",
                        toys.n_failed, bh.n_toys)  # fmt: skip
        toy_counts, toy_bkgs = toys.embed(np.asarray(edges, dtype=float))
    elif efficiency is not None and bh.toys == "refit" and not bh.sideband:
        from adcoffea.fits.efficiency import efficiency_toys

        incl, estimate = efficiency
        centres = np.asarray(edges[0] if np.ndim(counts) == 2 else edges, dtype=float)
        centres = 0.5 * (centres[1:] + centres[:-1])
        toy_counts, toy_bkgs = efficiency_toys(incl, estimate, centres=centres,
                                               n_toys=bh.n_toys, seed=bh.seed)  # fmt: skip
    result = bumphunt(
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
        bkg_correlated=correlated,
        keep_toy_t=True,
        toys=toy_counts,
        toy_backgrounds=toy_bkgs,
    )
    if toy_bkgs is not None and toys is None:
        how = ("region counts drawn binomially from the inclusive counts with the fitted "
               "efficiency; each toy re-estimates its efficiency as the data did and is "
               "scanned against its own estimate")  # fmt: skip
        return replace(result, settings={**result.settings, "toys": how}, seed=bh.seed)
    if toys is None:
        how = "toys around the background, scanned against it (no refit)"
        if fit is not None:
            how += ": conservative for a fitted background"
        return replace(result, settings={**result.settings, "toys": how})
    how = (
        f"each toy refitted as the data ({fit.best.function}, order by the same Wilks test"
        + ("" if fit.excluded_window is None else ", the same excluded window")
        + ") and scanned against its own fit"
    )
    settings = {**result.settings, "toys": how, "toys_not_refittable": toys.n_failed,
                "toy_orders": {int(n): int(c) for n, c in
                               zip(*np.unique(toys.orders, return_counts=True), strict=True)}}  # fmt: skip
    return replace(result, settings=settings, seed=bh.seed)


def _bh_plots(result, data, background, edges, plots: Path, region: str, xlabel: str) -> None:
    from adcoffea.plots import save
    from adcoffea.plots.bumphunter import plot_bump_1d, plot_bump_2d, plot_t_distribution

    if np.ndim(data) == 1:
        fig = plot_bump_1d(result, data, background, edges=edges, xlabel=xlabel)
        save(fig, plots / f"bumphunter_{region}.png")
    else:
        fig = plot_bump_2d(
            result,
            data,
            background,
            edges=edges,
            xlabel=r"$m_{Y} = m_{jj}$ [GeV]",
            ylabel=r"$m_{X}$ [GeV]",
        )
        save(fig, plots / f"bumphunter2d_{region}.png")
    if len(result.t_toys):
        save(plot_t_distribution(result), plots / f"bumphunter_t_{region}.png")


# --------------------------------------------------------------------------------------
# 2D: data-driven background + 2D BumpHunter
# --------------------------------------------------------------------------------------
def _two_dimensional(cfg, h, data, data_names, region, plots: Path) -> RegionResult:
    counts = _values(data)
    bh = cfg.bumphunt
    if bh is None or region == cfg.regions[0].name:
        # the inclusive region is the background estimate itself
        return RegionResult(events=float(counts.sum()))
    edges = [data.axes[0].edges, data.axes[1].edges]
    scan_range = bh.scan_range
    if scan_range is not None and np.ndim(scan_range) == 1:
        # a 1D range restricts the first axis (m_Y); the second is scanned whole
        scan_range = (tuple(scan_range), (float(edges[1][0]), float(edges[1][-1])))
    incl, estimate = _efficiency(cfg, h, data_names, region, counts, edges[0], scan_range)
    result = _scan(bh, counts, estimate.background, edges, scan_range, estimate.uncertainty,
                   efficiency=(incl, estimate))  # fmt: skip
    _bh_plots(result, counts, estimate.background, edges, plots, region, "")
    return RegionResult(
        events=float(counts.sum()),
        background_method="inclusive x efficiency(m_X)",
        bumphunter=result,
        bumphunter_uncertainty=FitUncertaintyStatement(
            included=False,
            description=f"none: the scan's background is data-driven ({estimate.description})"
            ", no fit function enters",
        ),
    )


# --------------------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------------------
#: a signal template bin below this fraction of its largest bin gets no staterror parameter
#: (pyhf fixes a gamma without uncertainty): each free parameter slows every fit
SIGNAL_STAT_MIN_FRACTION = 0.05


def signal_variations(
    variations: Any, dataset: str, region: str, project: Any, scale: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{source: (up, down)}`` of a signal template, projected and scaled as its nominal.

    ``variations`` is the processor's ``<observable>_variations`` histogram. The JER
    variation is one-sided (``jer_down`` is the nominal: smearing cannot be undone), so its
    down shape is ``jer_up`` mirrored about the nominal, ``max(2 nominal - up, 0)``, the
    usual symmetrisation of a one-sided systematic. A source with no up/down histograms, or
    a dataset the processor did not vary, gives nothing.

    Example:
        >>> import hist
        >>> h = hist.Hist(hist.axis.StrCategory(["s"], name="dataset"),
        ...     hist.axis.StrCategory(["r"], name="region"),
        ...     hist.axis.StrCategory(["nominal", "jer_up", "jer_down"], name="variation"),
        ...     hist.axis.Regular(3, 0, 3, name="mjj"))
        >>> for v, x in (("nominal", [0, 1, 1, 2]), ("jer_up", [1, 1, 1, 2]),
        ...              ("jer_down", [0, 1, 1, 2])):
        ...     _ = h.fill(dataset="s", region="r", variation=v, mjj=np.array(x) + 0.5)
        >>> up, down = signal_variations(h, "s", "r", lambda a: a, 1.0)["jer"]
        >>> up.tolist(), down.tolist()
        ([0.0, 3.0, 1.0], [2.0, 1.0, 1.0])
    """
    if variations is None or dataset not in variations.axes["dataset"]:
        return {}
    names = list(variations.axes["variation"])
    sub = variations[{"dataset": dataset, "region": region}]

    def shape(variation: str) -> np.ndarray:
        return project(_values(sub[{"variation": variation}])) * scale

    nominal = shape("nominal")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for source in ("jes", "jer"):
        if f"{source}_up" not in names or f"{source}_down" not in names:
            continue
        up = shape(f"{source}_up")
        down = np.maximum(2.0 * nominal - up, 0.0) if source == "jer" else shape(f"{source}_down")
        out[source] = (up, down)
    return out


def _limits(
    cfg,
    h,
    data_names,
    region,
    out_dir: Path,
    fit,
    unc=None,
    *,
    normalisation=None,
    variations=None,
) -> LimitsResult:
    from adcoffea.fits.workspace import build_workspace
    from adcoffea.outputs import write_json

    lim = cfg.limits
    ws_dir = out_dir / "workspaces"
    ws_dir.mkdir(parents=True, exist_ok=True)
    data = summed(h, data_names, region)
    counts = _values(data)
    inclusive = cfg.regions[0].name
    templates: dict[str, TemplateLimit] = {}
    two_d = counts.ndim == 2
    fb = lim.unit == "fb"
    if fb and normalisation is None:
        raise ConfigError(
            "limits.unit 'fb' needs the signal normalisation (cross section, luminosity, sum "
            "of generator weights: adcoffea.normalisation.normalisations)"
        )

    if two_d or fit is None:
        if region == inclusive:
            raise ConfigError("limits without a fit need an anomaly region (limits.region)")
        scan_range = None if cfg.bumphunt is None else cfg.bumphunt.scan_range
        if scan_range is not None and np.ndim(scan_range) == 2 and not two_d:
            scan_range = None
        _, estimate = _efficiency(
            cfg, h, data_names, region, counts, data.axes[0].edges, scan_range
        )
        bkg, unc = estimate.background, estimate.uncertainty
        mask = bkg.ravel() > 0
        d_vec, b_vec, u_vec = counts.ravel()[mask], bkg.ravel()[mask], unc.ravel()[mask]
        background_arg: Any = b_vec
        ws_kwargs: dict[str, Any] = {"bkg_stat_errors": np.maximum(u_vec, 1e-6)}
        background = estimate.description
        statement = FitUncertaintyStatement(
            included=False,
            description=f"none: the background is data-driven ({estimate.description}), "
            "no fit function enters",
        )

        def project(arr: np.ndarray) -> np.ndarray:
            return arr.ravel()[mask]
    else:
        lo = int(np.searchsorted(data.axes[0].edges, fit.edges[0]))
        sl = slice(lo, lo + len(fit.counts))
        d_vec = counts[sl]
        background_arg = fit
        ws_kwargs = {}
        background = f"{fit.function} fit, {fit.n_params} parameters, eigen-variations as histosys"
        if unc is not None:
            ws_kwargs["fit_function_uncertainty"] = unc
            background += f", fit-function uncertainty as histosys 'fit_function_{region}'"
            statement = _limit_statement(unc, region)
        else:
            statement = FitUncertaintyStatement(
                included=False,
                description="none: the fit-function uncertainty was switched off or could "
                "not be computed",
            )

        def project(arr: np.ndarray) -> np.ndarray:
            return arr[sl]

    # every channel is named after its region, so that regions combine (see fits.workspace)
    ws_kwargs["channel"] = region
    sig_kwargs: dict[str, Any] = {}
    if fb and lim.luminosity_uncertainty is not None:
        sig_kwargs["lumi_uncertainty"] = lim.luminosity_uncertainty
    # the templates' efficiencies, for the fb conversion of the Gaussian mass scan
    efficiencies: dict[float, float] = {}
    for sig in cfg.datasets.signal:
        if sig not in h.axes["dataset"]:
            continue
        s_incl = _values(h[{"dataset": sig, "region": inclusive}]).sum()
        s_hist = h[{"dataset": sig, "region": region}]
        s_reg = _values(s_hist)
        if s_incl <= 0:
            continue
        norm = None
        if fb:
            norm = normalisation.get(sig)
            if norm is None:
                raise ConfigError(f"signal dataset {sig!r} has no sum of generator weights")
            scale = norm.scale  # mu = 1: its cross section
            mass = _template_mass(cfg, sig)
            if mass is not None:
                efficiencies[mass] = float(s_reg.sum() / norm.sum_weights)
        else:
            scale = lim.reference_events / s_incl  # mu = 1: reference_events before the cut
        shape = project(s_reg) * scale
        kw_sig = dict(sig_kwargs)
        shifted = signal_variations(variations, sig, region, project, scale)
        if shifted:
            kw_sig["signal_variations"] = shifted
        if lim.signal_stat_uncertainty:
            err = np.sqrt(np.maximum(project(np.asarray(s_hist.variances(), dtype=float)), 0.0))
            err = err * scale
            kw_sig["signal_stat_errors"] = np.where(
                shape >= SIGNAL_STAT_MIN_FRACTION * shape.max(), err, 0.0
            )
        args, kw = _signal_window(shape, d_vec, background_arg, ws_kwargs, kw_sig)
        ws = build_workspace(*args, **kw)
        ws_path = write_json(ws_dir / f"{region}_{sig}.json", ws)
        common: dict[str, Any] = {
            "workspace": ws_path,
            "fit_function_nuisance": _has_fit_function(ws),
            "normalisation": norm,
            "modifiers": _modifiers(ws),
        }
        try:
            res, stat_only, diag = _template_limits(lim, ws, args, region)
        except LimitError as err:
            log.warning("limit on %s in %s failed: %s", sig, region, err)
            templates[sig] = TemplateLimit(error=str(err), **common)
            continue
        templates[sig] = TemplateLimit(
            limit=res,
            signal_efficiency=float(s_reg.sum() / s_incl),
            reference_events=None if fb else lim.reference_events,
            limit_stat_only=stat_only,
            diagnostics=diag,
            **common,
        )

    mass_scan = None
    if lim.masses:
        mass_scan = _mass_scan(
            cfg,
            data,
            d_vec,
            background_arg,
            ws_kwargs,
            sig_kwargs,
            project,
            out_dir,
            region,
            efficiencies if fb else None,
        )
    return LimitsResult(
        region=region,
        cl=lim.cl,
        background=background,
        templates=templates,
        mass_scan=mass_scan,
        fit_function_uncertainty=statement,
        unit=lim.unit,
        luminosity_fb=lim.luminosity,
    )


def _template_limits(lim, ws: dict, args: tuple, region: str):
    """The limit, the statistics-only limit and the diagnostics of one template workspace."""
    from adcoffea.errors import AdcoffeaError
    from adcoffea.fits.diagnostics import fit_diagnostics
    from adcoffea.fits.workspace import build_workspace, upper_limit

    # minuit: a staterror adds a parameter per signal bin (see fits.workspace.optimizer)
    res = upper_limit(ws, cl=lim.cl, calctype=lim.calculator, fit_optimizer="minuit")
    d, b, s = args
    bkg = b.background if hasattr(b, "background") else b
    stat_only = upper_limit(build_workspace(d, bkg, s, channel=region), cl=lim.cl)
    diag = None
    if lim.diagnostics:
        try:
            diag = fit_diagnostics(ws)
        except AdcoffeaError as err:
            log.warning("no fit diagnostics in %s: %s", region, err)
    return res, stat_only, diag


def _template_mass(cfg, dataset: str) -> float | None:
    """The resonance mass of a signal template: its synthetic parent mass or fileset 'mass'."""
    syn = cfg.datasets.synthetic
    if syn is not None:
        from adcoffea.synthetic.processes import PARENT_PARAM, resolve_params

        sample = next((x for x in syn.samples if x.name == dataset), None)
        if sample is None or sample.process not in PARENT_PARAM:
            return None
        return float(resolve_params(sample.process, sample.params)[PARENT_PARAM[sample.process]])
    from adcoffea.normalisation import _fileset_metadata

    mass = _fileset_metadata(cfg.datasets.fileset).get(dataset, {}).get("mass")
    return None if mass is None else float(mass)


def _has_fit_function(ws: dict) -> bool:
    """Whether a workspace carries a ``fit_function_<channel>`` nuisance parameter."""
    return any(
        m["name"].startswith("fit_function")
        for ch in ws["channels"]
        for smp in ch["samples"]
        for m in smp["modifiers"]
    )


def _modifiers(ws: dict) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` of every distinct modifier of a workspace, in order of appearance."""
    seen: dict[str, str] = {}
    for ch in ws["channels"]:
        for smp in ch["samples"]:
            for m in smp["modifiers"]:
                seen.setdefault(m["name"], m["type"])
    return tuple(seen.items())


def _limit_statement(unc, region: str) -> FitUncertaintyStatement:
    used = [f"{r['function']} ({r['n_params']} par)" for r in unc.alternatives if r["used"]]
    rel = unc.per_bin.sum() / max(float(unc.nominal.sum()), 1e-12)
    return FitUncertaintyStatement(
        included=True,
        description=(
            f"{unc.method}: one histosys nuisance parameter 'fit_function_{region}' "
            "(background +- the "
            "largest deviation of "
            + (", ".join(used) if used else "no adequate alternative (zero envelope)")
            + f" from the {unc.n_params}-parameter {unc.function} fit) in every workspace; "
            f"summed over the fitted bins it is {100 * rel:.2g} % of the background"
        ),
        method=unc.method,
    )


def _signal_window(shape, d_vec, background_arg, ws_kwargs, sig_kwargs=None):
    """Arguments of ``build_workspace`` restricted to the bins the signal populates.

    For a data-driven (per-bin) background the workspace keeps the bins holding at least
    5 % of the signal's largest bin (about +-2.4 sigma of a Gaussian per axis, ~90 % of the
    signal); a 2D limit over the whole plane would fit hundreds of nuisance parameters for
    no sensitivity. A fit background is kept whole (its histosys variations are defined on
    the fitted range). ``sig_kwargs`` are the signal's modifiers (per-bin ones are cut too).
    """
    sig_kwargs = dict(sig_kwargs or {})
    if hasattr(background_arg, "background"):
        return (d_vec, background_arg, shape), {**ws_kwargs, **sig_kwargs}
    keep = shape >= 0.05 * shape.max()
    b = np.asarray(background_arg, dtype=float)[keep]
    kw: dict[str, Any] = {"channel": ws_kwargs.get("channel", "SR")}
    err = ws_kwargs.get("bkg_stat_errors")
    if err is not None:
        # one nuisance parameter for the statistical uncertainty of the background estimate
        # in the window (its normalisation, which is what a narrow signal is sensitive to):
        # pyhf's numpy backend needs ~1 s per fit per staterror parameter
        rel = float(np.sqrt(np.sum(np.asarray(err)[keep] ** 2)) / max(b.sum(), 1e-12))
        kw["bkg_variations"] = {
            f"bkg_estimate_stat_{kw['channel']}": (b * (1.0 - rel), b * (1.0 + rel))
        }
    if sig_kwargs.get("signal_stat_errors") is not None:
        sig_kwargs["signal_stat_errors"] = np.asarray(sig_kwargs["signal_stat_errors"])[keep]
    if sig_kwargs.get("signal_variations"):
        sig_kwargs["signal_variations"] = {
            k: (np.asarray(up)[keep], np.asarray(down)[keep])
            for k, (up, down) in sig_kwargs["signal_variations"].items()
        }
    return (d_vec[keep], b, shape[keep]), {**kw, **sig_kwargs}


def _mass_scan(
    cfg,
    data,
    d_vec,
    background_arg,
    ws_kwargs,
    sig_kwargs,
    project,
    out_dir: Path,
    region,
    efficiencies: dict[float, float] | None = None,
) -> tuple[MassPoint, ...]:
    """Limits on Gaussian signals versus mass, in events and (``efficiencies``) in fb.

    ``efficiencies`` maps the templates' masses to their selection x region efficiencies:
    a Gaussian of ``N`` selected events at mass ``m`` stands for ``sigma x B = N / (L x
    eff(m))``, ``eff`` interpolated linearly between the templates (constant beyond them).
    """
    from adcoffea.fits.signal import gaussian_signal, gaussian_variations
    from adcoffea.fits.workspace import build_workspace, upper_limit
    from adcoffea.plots import save
    from adcoffea.plots.limits import plot_brazil, plot_limit_map

    lim = cfg.limits
    e0 = data.axes[0].edges
    bkg_total = float(
        np.sum(
            background_arg.background if hasattr(background_arg, "background") else background_arg
        )
    )
    points: list[MassPoint] = []
    if data.ndim == 1:
        grid = [(m, None) for m in lim.masses]
    else:
        grid = [(m, mx) for m in lim.masses for mx in (lim.masses_x or [None])]
    # JES/JER of fixed sizes act on a 1D Gaussian as on the jets (fits.signal); sizes
    # evaluated per jet by correctionlib have no single value to shift a Gaussian by
    sys_cfg = getattr(cfg, "systematics", None)
    sizes: dict[str, float] = {}
    if sys_cfg is not None and data.ndim == 1:
        for source in ("jes", "jer"):
            if getattr(sys_cfg, source) is not None:
                sizes[source] = float(getattr(sys_cfg, source))
            elif sys_cfg.has(source):
                log.warning(
                    "%s from correctionlib: the Gaussian mass scan carries no %s (it needs a "
                    "single relative size, systematics.%s)", source, source, source,
                )  # fmt: skip
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
        kw_sig = dict(sig_kwargs)
        if sizes:
            varied = gaussian_variations(e0, m, rel_width=lim.signal_width, **sizes)
            kw_sig["signal_variations"] = {
                k: (project(up) * norm, project(down) * norm) for k, (up, down) in varied.items()
            }
        args, kw = _signal_window(shape * norm, d_vec, background_arg, ws_kwargs, kw_sig)
        ws = build_workspace(*args, **kw)
        try:
            res = upper_limit(ws, cl=lim.cl, calctype=lim.calculator)
        except LimitError as err:
            log.warning("limit at m = %s (m_X = %s) failed: %s", m, mx, err)
            points.append(MassPoint(mass=m, mass_x=mx or None, error=str(err)))
            continue
        scale = float(norm * shape.sum())
        fb: dict[str, Any] = {}
        if efficiencies:
            ms = sorted(efficiencies)
            eff = float(np.interp(m, ms, [efficiencies[k] for k in ms]))
            if eff > 0:
                # mu = 1 is `norm` selected events in the region: sigma x B = norm / (L eff)
                per_mu = norm / (float(lim.luminosity) * eff)
                fb = {
                    "signal_efficiency": eff,
                    "observed_fb": res.observed * per_mu,
                    "expected_fb": tuple(e * per_mu for e in res.expected),
                }
        points.append(
            MassPoint(
                mass=m,
                mass_x=mx,
                observed_events=res.observed * scale,
                expected_events=tuple(e * scale for e in res.expected),
                signal_systematics=tuple(sizes),
                **fb,
            )
        )
    if efficiencies is not None and not efficiencies:
        log.warning("no signal template with a known mass: the mass scan stays in events")
    good = [p for p in points if p.ok]
    in_fb = bool(good) and all(p.observed_fb is not None for p in good)
    if good and data.ndim == 1:
        fig = plot_brazil(
            np.array([p.mass for p in good]),
            np.array([p.observed_fb if in_fb else p.observed_events for p in good], dtype=float),
            np.array([p.expected_fb if in_fb else p.expected_events for p in good], dtype=float),
            ylabel=f"{lim.cl:.0%} CL upper limit on "
            + (r"$\sigma \times B$ [fb]" if in_fb else "signal events"),
        )
        save(fig, out_dir / "plots" / f"limits_{region}.png", dpi=110)
    elif good:
        fig = plot_limit_map(
            np.array([p.mass for p in good]),
            np.array([p.mass_x for p in good], dtype=float),
            np.array([p.observed_events for p in good], dtype=float),
        )
        save(fig, out_dir / "plots" / f"limits2d_{region}.png", dpi=110)
    return tuple(points)
