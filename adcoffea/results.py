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
    from adcoffea.fits.order import OrderSelection
    from adcoffea.fits.workspace import LimitResult
    from adcoffea.hunt.result import HuntResult  # type: ignore[import-not-found,unused-ignore]
    from adcoffea.models.evaluate import RocResult, SculptingResult

__all__ = [
    "EvaluationResult",
    "LimitsResult",
    "MassPoint",
    "ModelEvaluation",
    "ProcessingResult",
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

    def to_dict(self) -> dict[str, Any]:
        best = self.best.to_dict()
        out: dict[str, Any] = {
            "order_selection": self.selection.to_dict(),
            "best": {k: best[k] for k in FIT_SUMMARY_KEYS if k in best},
        }
        if self.excluded_window is not None:
            out["excluded_window"] = list(self.excluded_window)
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class RegionResult:
    """Fit and BumpHunter scan of one score region.

    Attributes:
        events: data events in the region.
        fit: the background fit (1D regions of a config with ``fit``).
        background_method: the background the scan compared with (``"fit"``, ...).
        bumphunter: the scan (with ``bumphunt``).
        bumphunter_before_refit: the first scan, when a significant bump led to a refit
            that excludes it.
        refit_excluding: the window that refit excluded.
        note: why the region has no fit or scan (e.g. it is empty), if so.
    """

    events: float
    fit: RegionFit | None = None
    background_method: str | None = None
    bumphunter: BumpHunterResult | None = None
    bumphunter_before_refit: BumpHunterResult | None = None
    refit_excluding: tuple[float, float] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": self.events}
        if self.note is not None:
            out["note"] = self.note
        if self.fit is not None:
            out["fit"] = self.fit.to_dict()
        if self.background_method is not None:
            out["background_method"] = self.background_method
        if self.bumphunter_before_refit is not None:
            out["bumphunter_before_refit"] = self.bumphunter_before_refit.to_dict()
        if self.refit_excluding is not None:
            out["refit_excluding"] = list(self.refit_excluding)
        if self.bumphunter is not None:
            out["bumphunter"] = self.bumphunter.to_dict()
        return out


@dataclass(frozen=True)
class TemplateLimit:
    """The CLs limit on one signal template, or why it failed.

    Attributes:
        workspace: the pyhf workspace written for it.
        limit: the limit on mu (None if it failed).
        error: the failure's message (None if it succeeded).
        signal_efficiency: fraction of the template's inclusive events in the limit region.
        reference_events: selected signal events (before the cut) that mu = 1 stands for.
    """

    workspace: Path
    limit: LimitResult | None = None
    error: str | None = None
    signal_efficiency: float | None = None
    reference_events: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.limit is None:
            return {"error": self.error, "workspace": str(self.workspace)}
        ref = float(self.reference_events or 0.0)
        return {
            **self.limit.to_dict(),
            "signal_efficiency": self.signal_efficiency,
            "reference_events": self.reference_events,
            "observed_events_before_cut": self.limit.observed * ref,
            "expected_events_before_cut": self.limit.expected_median * ref,
            "workspace": str(self.workspace),
        }


@dataclass(frozen=True)
class MassPoint:
    """The limit on a Gaussian signal of one mass (and m_X in 2D), in signal events.

    Attributes:
        mass: signal mass (GeV), first axis.
        mass_x: second-axis mass (2D), else None.
        observed_events: observed limit (None if it failed).
        expected_events: expected limit at -2, -1, 0, +1, +2 sigma.
        error: the failure's message, if it failed.
    """

    mass: float
    mass_x: float | None = None
    observed_events: float | None = None
    expected_events: tuple[float, ...] | None = None
    error: str | None = None

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
    """

    region: str
    cl: float
    background: str
    templates: Mapping[str, TemplateLimit] = field(default_factory=dict)
    mass_scan: tuple[MassPoint, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "region": self.region,
            "cl": self.cl,
            "templates": {s: t.to_dict() for s, t in self.templates.items()},
            "background": self.background,
        }
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
