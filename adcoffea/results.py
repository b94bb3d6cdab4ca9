"""Typed results of a search, one part per stage; ``SearchResult.to_dict()`` *is* results.json.

Each stage of :func:`adcoffea.pipeline.run` returns its part as a frozen dataclass holding
the library's own result objects (:class:`~adcoffea.fits.background.FitResult`,
:class:`~adcoffea.fits.bumphunter.BumpHunterResult`, ...), so readers such as
:mod:`adcoffea.report` use attributes, not ``dict.get`` chains:

==============  ==========================  ==============================
stage           part                        in results.json
==============  ==========================  ==============================
process         :class:`ProcessingResult`   cutflow, cutflow_weighted, run_report
train           :class:`TrainedModel`       training
evaluate        :class:`EvaluationResult`   evaluation
hunt            ``adcoffea.hunt.HuntResult``  hunt
statistics      :class:`StatisticsResult`   regions, limits
(all)           timings, cpu                timings_s, cpu_s
==============  ==========================  ==============================

Every ``to_dict()`` returns plain JSON types (through :func:`adcoffea.outputs.to_jsonable`).
This module imports no heavy library; the stage result types are imported for typing only.

Example:
    >>> part = ProcessingResult(cutflow={"qcd": {"all": 10, "jets": 4}})
    >>> res = SearchResult(name="demo", analysis="dijet", processing=part, timings={"process": 1.234})
    >>> res.to_dict()
    {'name': 'demo', 'analysis': 'dijet', 'cutflow': {'qcd': {'all': 10, 'jets': 4}}, 'cutflow_weighted': {}, 'run_report': None, 'timings_s': {'process': 1.23}}
    >>> res.timings["process"]
    1.234
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcoffea.outputs import to_jsonable

if TYPE_CHECKING:
    from adcoffea.execution import RunReport
    from adcoffea.fits.background import FitResult
    from adcoffea.fits.bumphunter import BumpHunterResult
    from adcoffea.fits.diagnostics import FitDiagnostics
    from adcoffea.fits.order import OrderSelection
    from adcoffea.fits.refit import RefitDecision
    from adcoffea.fits.uncertainty import FitFunctionUncertainty
    from adcoffea.fits.workspace import LimitResult
    from adcoffea.hunt.result import HuntResult  # type: ignore[import-not-found,unused-ignore]
    from adcoffea.models.evaluate import RocResult, SculptingResult
    from adcoffea.normalisation import SampleNormalisation

__all__ = [
    "EvaluationResult",
    "FitUncertaintyStatement",
    "LimitsResult",
    "MassPoint",
    "ModelEvaluation",
    "ProcessingResult",
    "RefitOutcome",
    "RegionFit",
    "RegionResult",
    "SearchResult",
    "StatisticsResult",
    "TemplateLimit",
    "TrainedModel",
]

#: the fit quantities a region's summary keeps of :meth:`FitResult.to_dict`
FIT_SUMMARY_KEYS = (
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
#: the sculpting quantities results.json keeps (not the per-bin spectra)
SCULPTING_KEYS = ("efficiencies", "thresholds", "js", "js_random", "chi2_flat", "ndf")


# --------------------------------------------------------------------------------------
# process
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessingResult:
    """The processing stage: cutflows per dataset and the run's event accounting.

    Attributes:
        cutflow: dataset -> cut -> events passing.
        cutflow_weighted: the same with event weights.
        run_report: the executor's :class:`~adcoffea.execution.RunReport`.
    """

    cutflow: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    cutflow_weighted: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    run_report: RunReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutflow": to_jsonable(self.cutflow),
            "cutflow_weighted": to_jsonable(self.cutflow_weighted),
            "run_report": None if self.run_report is None else self.run_report.to_dict(),
        }


# --------------------------------------------------------------------------------------
# train / evaluate
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainedModel:
    """One model trained by the train stage.

    Attributes:
        label: the model's label in the config (its score's name).
        method: the training method.
        bundle: the bundle directory written.
        n_train_events: events it was trained on.
        datasets: the datasets those events came from.
    """

    label: str
    method: str
    bundle: Path
    n_train_events: int
    datasets: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "bundle": str(self.bundle),
            "n_train_events": self.n_train_events,
            "datasets": list(self.datasets),
        }


@dataclass(frozen=True)
class ModelEvaluation:
    """ROC/SIC on synthetic truth and the sculpting check of one score.

    Attributes:
        method: the model's training method.
        roc: ROC and SIC (None without both signal and background events).
        sculpting: the background observable before and after cuts (None without background).
    """

    method: str
    roc: RocResult | None = None
    sculpting: SculptingResult | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.roc is not None:
            out["roc"] = {k: v for k, v in self.roc.to_dict().items() if k not in ("fpr", "tpr")}
        if self.sculpting is not None:
            d = self.sculpting.to_dict()
            out["sculpting"] = {k: d[k] for k in SCULPTING_KEYS}
        return out


@dataclass(frozen=True)
class EvaluationResult:
    """The evaluate stage: every score against the synthetic truth of the data datasets.

    Attributes:
        n_events: selected data events.
        n_signal: of them injected signal.
        models: label -> its evaluation.
    """

    n_events: int
    n_signal: int
    models: Mapping[str, ModelEvaluation] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_events": self.n_events,
            "n_signal": self.n_signal,
            "models": {label: m.to_dict() for label, m in self.models.items()},
        }


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegionFit:
    """The background fit of one region: the order selection and its chosen fit.

    Attributes:
        selection: the fits of every order and the test between them.
        excluded_window: the window (GeV) left out of the fit, if any.
        note: why the fit differs from the configured one, if it does.
    """

    selection: OrderSelection
    excluded_window: tuple[float, float] | None = None
    note: str | None = None

    @property
    def best(self) -> FitResult:
        """The fit of the chosen order."""
        return self.selection.best

    @property
    def adequate(self) -> bool:
        """Whether the chosen fit describes the data it fitted (chi2 p >= its min_pvalue)."""
        return self.best.adequate

    def to_dict(self) -> dict[str, Any]:
        best = self.best.to_dict()
        pulls = [float(x) for x in self.best.pulls]
        out: dict[str, Any] = {
            "order_selection": self.selection.to_dict(),
            "best": {k: best[k] for k in FIT_SUMMARY_KEYS if k in best},
            "chi2_pvalue": self.best.pvalue,
            "adequate": self.adequate,
            "pulls": pulls,
            "max_abs_pull": max((abs(x) for x in pulls), default=None),
        }
        if self.excluded_window is not None:
            out["excluded_window"] = list(self.excluded_window)
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class FitUncertaintyStatement:
    """The fit-function uncertainty a BumpHunter scan or a limit includes, in words and numbers.

    Attributes:
        included: whether a fit-function uncertainty entered the result.
        description: what entered (or why nothing did), in one sentence.
        method: ``"envelope"`` or ``"envelope+spurious"`` when included.
        window: the window the numbers below refer to (GeV): the scan's most significant
            window, or None.
        window_events: the fit-function uncertainty of the background summed over it.
        stat_events: the statistical uncertainty of that background, sqrt(B).
    """

    included: bool
    description: str
    method: str | None = None
    window: tuple[float, float] | None = None
    window_events: float | None = None
    stat_events: float | None = None

    @property
    def ratio_to_stat(self) -> float | None:
        """``window_events / stat_events`` (None without both)."""
        if self.window_events is None or not self.stat_events:
            return None
        return float(self.window_events / self.stat_events)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"included": self.included, "description": self.description}
        if self.method is not None:
            out["method"] = self.method
        if self.window is not None:
            out.update(
                window=list(self.window),
                window_events=self.window_events,
                stat_events=self.stat_events,
                ratio_to_stat=self.ratio_to_stat,
            )
        return to_jsonable(out)


@dataclass(frozen=True)
class RefitOutcome:
    """The guarded refit of a region: both scans, the decision and which one is quoted.

    Attributes:
        decision: the :func:`~adcoffea.fits.refit.guarded_refit` decision (checks, reason).
        fit: the fit with the bump window excluded.
        original: the scan against the fit over all bins (the first scan).
        refit: the scan against the window-excluded fit.
        quoted: ``"refit"`` (accepted) or the more conservative of the two scans (the one
            with the larger global p) when the refit is refused.
        uncertainty: the fit-function uncertainty of the window-excluded fit.
    """

    decision: RefitDecision
    fit: RegionFit
    original: BumpHunterResult
    refit: BumpHunterResult
    quoted: str
    uncertainty: FitFunctionUncertainty | None = None

    @property
    def window(self) -> tuple[float, float]:
        """The excluded bump window (GeV)."""
        return self.decision.window

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": list(self.window),
            "decision": self.decision.to_dict(),
            "quoted": self.quoted,
            "fit": self.fit.to_dict(),
            "original_bumphunter": self.original.to_dict(),
            "refit_bumphunter": self.refit.to_dict(),
        }


@dataclass(frozen=True)
class RegionResult:
    """Fit and BumpHunter scan of one score region, with the fit diagnostics.

    Attributes:
        events: data events in the region.
        fit: the region's background fit (1D regions of a config with ``fit``): the one over
            all bins, or the window-excluded refit when the guarded refit accepted it.
        background_method: the background the scan compared with (``"fit"``, ...).
        bumphunter: the quoted scan (with ``bumphunt``).
        refit: the guarded refit, when a significant bump led to a refit that excludes it
            (both scans, the decision and its reason).
        fit_function_uncertainty: the fit-function uncertainty of :attr:`fit`.
        bumphunter_uncertainty: the fit-function uncertainty the quoted scan includes.
        note: why the region has no fit or scan (e.g. it is empty), if so.
    """

    events: float
    fit: RegionFit | None = None
    background_method: str | None = None
    bumphunter: BumpHunterResult | None = None
    refit: RefitOutcome | None = None
    fit_function_uncertainty: FitFunctionUncertainty | None = None
    bumphunter_uncertainty: FitUncertaintyStatement | None = None
    note: str | None = None

    @property
    def background_model_adequate(self) -> bool | None:
        """Whether the region's background fit describes its data (None: no fit).

        False when the chosen fit's chi2 p-value is below its ``min_pvalue`` (0.01): a
        BumpHunter result against that fit is then not quoted as a discovery.
        """
        return None if self.fit is None else self.fit.adequate

    @property
    def bumphunter_quoted(self) -> bool:
        """Whether the scan may be quoted as evidence.

        Not when it compared the data with a background fit that does not describe them. A
        scan against a data-driven background (inclusive x efficiency) does not use the fit,
        so an inadequate fit does not invalidate it (in a region rich in signal, the fit is
        inadequate because of the signal); the flag is still reported.
        """
        if self.bumphunter is None:
            return False
        return self.background_method != "fit" or self.background_model_adequate is not False

    @property
    def not_quoted_reason(self) -> str | None:
        """Why the scan is not quoted as a discovery, if it is not."""
        if self.bumphunter is None or self.fit is None or self.bumphunter_quoted:
            return None
        best = self.fit.best
        return (
            f"background model inadequate: the {best.n_params}-parameter {best.function} fit "
            f"has chi2 p = {best.pvalue:.3g} < {best.min_pvalue:g}; the BumpHunter result of "
            "this region is not quoted as a discovery"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": self.events}
        if self.note is not None:
            out["note"] = self.note
        if self.fit is not None:
            out["fit"] = self.fit.to_dict()
            out["background_model_adequate"] = self.background_model_adequate
        if self.fit_function_uncertainty is not None:
            out["fit_function_uncertainty"] = self.fit_function_uncertainty.to_dict()
        if self.background_method is not None:
            out["background_method"] = self.background_method
        if self.refit is not None:
            out["refit"] = self.refit.to_dict()
        if self.bumphunter is not None:
            out["bumphunter"] = self.bumphunter.to_dict()
            if self.bumphunter_uncertainty is not None:
                out["bumphunter"]["fit_function_uncertainty"] = (
                    self.bumphunter_uncertainty.to_dict()
                )
            out["bumphunter_quoted"] = self.bumphunter_quoted
            if not self.bumphunter_quoted:
                out["not_quoted_reason"] = self.not_quoted_reason
        return out


@dataclass(frozen=True)
class TemplateLimit:
    """The CLs limit on one signal template, or why it failed.

    Attributes:
        workspace: the pyhf workspace written for it.
        limit: the limit on mu (None if it failed).
        error: the failure's message (None if it succeeded).
        signal_efficiency: fraction of the template's inclusive events in the limit region.
        reference_events: selected signal events (before the cut) that mu = 1 stands for
            (``limits.unit: mu``).
        fit_function_nuisance: whether its workspace has the ``fit_function_<region>``
            nuisance parameter (None: not recorded).
        normalisation: cross section, luminosity and sum of generator weights that mu = 1
            stands for (``limits.unit: fb``).
        limit_stat_only: the limit with every nuisance parameter removed (statistics only).
        modifiers: ``(name, type)`` of every modifier of its workspace.
        diagnostics: pulls, impacts on mu and pre-/post-fit yields (``limits.diagnostics``).
    """

    workspace: Path
    limit: LimitResult | None = None
    error: str | None = None
    signal_efficiency: float | None = None
    reference_events: float | None = None
    fit_function_nuisance: bool | None = None
    normalisation: SampleNormalisation | None = None
    limit_stat_only: LimitResult | None = None
    modifiers: tuple[tuple[str, str], ...] = ()
    diagnostics: FitDiagnostics | None = None

    @property
    def cross_section_fb(self) -> float | None:
        """sigma x B (fb) that mu = 1 stands for (None unless normalised to a cross section)."""
        return None if self.normalisation is None else self.normalisation.cross_section_fb

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = (
            {}
            if self.fit_function_nuisance is None
            else {"fit_function_nuisance": self.fit_function_nuisance}
        )
        if self.modifiers:
            extra["modifiers"] = [{"name": n, "type": t} for n, t in self.modifiers]
        if self.limit is None:
            return {"error": self.error, "workspace": str(self.workspace), **extra}
        out: dict[str, Any] = {**extra, **self.limit.to_dict()}
        out["signal_efficiency"] = self.signal_efficiency
        if self.reference_events is not None:
            ref = float(self.reference_events)
            out["reference_events"] = ref
            out["observed_events_before_cut"] = self.limit.observed * ref
            out["expected_events_before_cut"] = self.limit.expected_median * ref
        xs = self.cross_section_fb
        if xs is not None and self.normalisation is not None:
            out["normalisation"] = self.normalisation.to_dict()
            out["observed_fb"] = self.limit.observed * xs
            out["expected_fb"] = [e * xs for e in self.limit.expected]
        if self.limit_stat_only is not None:
            stat = self.limit_stat_only.to_dict()
            if xs is not None:
                stat["observed_fb"] = self.limit_stat_only.observed * xs
                stat["expected_fb"] = [e * xs for e in self.limit_stat_only.expected]
            out["stat_only"] = stat
        if self.diagnostics is not None:
            out["diagnostics"] = self.diagnostics.to_dict()
        out["workspace"] = str(self.workspace)
        return to_jsonable(out)


@dataclass(frozen=True)
class MassPoint:
    """The limit on a Gaussian signal of one mass (and m_X in 2D), in signal events.

    Attributes:
        mass: signal mass (GeV), first axis.
        mass_x: second-axis mass (2D), else None.
        observed_events: observed limit (None if it failed).
        expected_events: expected limit at -2, -1, 0, +1, +2 sigma.
        error: the failure's message, if it failed.
        signal_efficiency: (``limits.unit: fb``) selection x region efficiency of a signal of
            this mass, interpolated linearly in mass between the signal templates (constant
            beyond them).
        observed_fb: observed limit on sigma x B (fb): the Gaussian's selected events over
            luminosity x efficiency.
        expected_fb: expected limits on sigma x B (fb) at -2 .. +2 sigma.
        signal_systematics: the jet variations the Gaussian carries (``jes``, ``jer``:
            histosys of the same names as the templates').
    """

    mass: float
    mass_x: float | None = None
    observed_events: float | None = None
    expected_events: tuple[float, ...] | None = None
    error: str | None = None
    signal_efficiency: float | None = None
    observed_fb: float | None = None
    expected_fb: tuple[float, ...] | None = None
    signal_systematics: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the limit was set."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mass": self.mass}
        if self.mass_x is not None:
            out["mass_x"] = self.mass_x
        if self.error is not None:
            out["error"] = self.error
            return out
        out["observed_events"] = self.observed_events
        out["expected_events"] = list(self.expected_events or ())
        if self.observed_fb is not None:
            out["signal_efficiency"] = self.signal_efficiency
            out["observed_fb"] = self.observed_fb
            out["expected_fb"] = list(self.expected_fb or ())
        if self.signal_systematics:
            out["signal_systematics"] = list(self.signal_systematics)
        return out


@dataclass(frozen=True)
class LimitsResult:
    """CLs upper limits in the limit region.

    Attributes:
        region: the score region the limits are set in.
        cl: confidence level.
        background: how the background was estimated, in words.
        templates: signal template dataset -> its limit.
        mass_scan: the Gaussian-signal scan (None unless ``limits.masses``).
        fit_function_uncertainty: the fit-function uncertainty every workspace includes.
        unit: ``fb`` (sigma x B, with mu) or ``mu`` (mu = 1 is ``reference_events``).
        luminosity_fb: the integrated luminosity (``fb``).
    """

    region: str
    cl: float
    background: str
    templates: Mapping[str, TemplateLimit] = field(default_factory=dict)
    mass_scan: tuple[MassPoint, ...] | None = None
    fit_function_uncertainty: FitUncertaintyStatement | None = None
    unit: str = "mu"
    luminosity_fb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "region": self.region,
            "cl": self.cl,
            "unit": self.unit,
            "templates": {s: t.to_dict() for s, t in self.templates.items()},
            "background": self.background,
        }
        if self.luminosity_fb is not None:
            out["luminosity_fb"] = self.luminosity_fb
        if self.fit_function_uncertainty is not None:
            out["fit_function_uncertainty"] = self.fit_function_uncertainty.to_dict()
        if self.mass_scan is not None:
            out["mass_scan"] = [p.to_dict() for p in self.mass_scan]
        return out


@dataclass(frozen=True)
class StatisticsResult:
    """The statistics stage: per-region fits and scans, and the limits."""

    regions: Mapping[str, RegionResult] = field(default_factory=dict)
    limits: LimitsResult | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"regions": {r: v.to_dict() for r, v in self.regions.items()}}
        if self.limits is not None:
            out["limits"] = self.limits.to_dict()
        return out


# --------------------------------------------------------------------------------------
# the whole search
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchResult:
    """Everything a search found; ``to_dict()`` is results.json.

    Attributes:
        name: the config's name.
        analysis: ``dijet``, ``semivisible`` or ``yxh``.
        processing: cutflows and event accounting.
        training: label -> model trained in this run (None: no model trained).
        evaluation: the scores against the synthetic truth (None: no model).
        hunt: the weakly supervised sliding-window hunt (``adcoffea.hunt.HuntResult``;
            None: no hunt configured).
        statistics: fits, scans and limits (None: no statistics configured).
        timings: wall seconds per stage, in the order the stages ran.
        cpu: CPU seconds per stage (this process and its worker processes): what a stage
            costs on an idle machine.
    """

    name: str
    analysis: str
    processing: ProcessingResult
    training: Mapping[str, TrainedModel] | None = None
    evaluation: EvaluationResult | None = None
    hunt: HuntResult | None = None
    statistics: StatisticsResult | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    cpu: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "analysis": self.analysis}
        if self.training is not None:
            out["training"] = {label: t.to_dict() for label, t in self.training.items()}
        out.update(self.processing.to_dict())
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_dict()
        if self.hunt is not None:
            out["hunt"] = self.hunt.to_dict()
        if self.statistics is not None:
            out.update(self.statistics.to_dict())
        out["timings_s"] = {k: round(v, 2) for k, v in self.timings.items()}
        if self.cpu:
            out["cpu_s"] = {k: round(v, 2) for k, v in self.cpu.items()}
        return to_jsonable(out)
