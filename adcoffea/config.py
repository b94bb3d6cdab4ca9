"""Analysis configuration: YAML files validated by pydantic.

One config describes one analysis end to end. Unknown keys are errors (a typo must not be
silently ignored), and every error names the offending key path and the file.

Units follow NanoAOD: GeV for masses and momenta.

Example:
    >>> from adcoffea.config import AnalysisConfig
    >>> cfg = AnalysisConfig.model_validate({"name": "demo", "datasets": {"fileset": "f.json"}})
    >>> cfg.selection.jet_pt_min
    1200.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adcoffea.errors import ConfigError

Process = Literal["qcd", "wprime", "svj", "yxh"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleConfig(_Strict):
    """One synthetic sample to generate (see ``adcoffea.synthetic``)."""

    name: str
    process: Process
    events: int = Field(gt=0)
    files: int = Field(default=1, gt=0, description="split the sample into this many files")
    seed: int | None = Field(default=None, description="default: derived from the config seed")
    params: dict[str, float] = Field(
        default_factory=dict, description="process parameters, e.g. m_wprime, m_x, r_inv (GeV)"
    )


class SyntheticConfig(_Strict):
    directory: Path = Path("data/synthetic")
    samples: list[SampleConfig] = Field(min_length=1)


class DatasetsConfig(_Strict):
    """Where events come from: generated synthetic samples or a user fileset."""

    synthetic: SyntheticConfig | None = None
    fileset: Path | None = Field(
        default=None, description="coffea fileset JSON: {dataset: {files: {path: tree}}}"
    )
    data: list[str] = Field(
        default_factory=list,
        description="datasets summed into the 'data' spectrum (default: all non-signal)",
    )
    signal: list[str] = Field(
        default_factory=list, description="datasets used as signal templates (truth-labelled)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetsConfig:
        if (self.synthetic is None) == (self.fileset is None):
            raise ValueError("give exactly one of 'synthetic' or 'fileset'")
        return self


class SelectionConfig(_Strict):
    jet_collection: str = "FatJet"
    jet_pt_min: float = Field(default=1200.0, ge=0, description="GeV, both leading jets")
    jet_eta_max: float = Field(default=2.5, gt=0)
    delta_eta_max: float | None = Field(default=None, gt=0, description="|eta1 - eta2| cut")
    mjj_min: float | None = Field(default=None, ge=0, description="GeV")


class AxisConfig(_Strict):
    """A regular axis (bins, start, stop) or explicit variable edges."""

    bins: int | None = Field(default=None, gt=0)
    start: float | None = None
    stop: float | None = None
    edges: list[float] | None = None

    @model_validator(mode="after")
    def _regular_or_variable(self) -> AxisConfig:
        regular = (self.bins, self.start, self.stop)
        if self.edges is not None:
            if any(v is not None for v in regular):
                raise ValueError("give either 'edges' or 'bins'/'start'/'stop', not both")
            if len(self.edges) < 2 or any(
                b <= a for a, b in zip(self.edges[:-1], self.edges[1:], strict=True)
            ):
                raise ValueError("'edges' must be at least two strictly increasing values")
        elif any(v is None for v in regular):
            raise ValueError("give 'bins', 'start' and 'stop' (or 'edges')")
        elif self.stop <= self.start:  # type: ignore[operator]
            raise ValueError("'stop' must be larger than 'start'")
        return self


class HistogramsConfig(_Strict):
    mjj: AxisConfig = AxisConfig(bins=65, start=1500.0, stop=8000.0)
    mt: AxisConfig = AxisConfig(bins=60, start=1500.0, stop=7500.0)
    mj: AxisConfig = AxisConfig(bins=50, start=0.0, stop=1000.0)
    tau21: AxisConfig = AxisConfig(bins=50, start=0.0, stop=1.2)
    score: AxisConfig = AxisConfig(bins=100, start=0.0, stop=1.0)


class RegionConfig(_Strict):
    """An anomaly-score region: fixed cuts on the score or a background efficiency.

    ``efficiency`` (e.g. 0.01 for the top 1 %) is turned into a score threshold on the
    background-dominated training sample when the model is trained.
    """

    name: str
    model: str | None = Field(default=None, description="which model's score (default: first)")
    score_min: float | None = None
    score_max: float | None = None
    efficiency: float | None = Field(default=None, gt=0, le=1)
    background: Literal["fit", "efficiency"] | None = Field(
        default=None, description="BumpHunter background of this region (default: bumphunt's)"
    )

    @property
    def is_scored(self) -> bool:
        return any(v is not None for v in (self.score_min, self.score_max, self.efficiency))

    @model_validator(mode="after")
    def _one_kind(self) -> RegionConfig:
        if self.efficiency is not None and (
            self.score_min is not None or self.score_max is not None
        ):
            raise ValueError("give 'efficiency' or 'score_min'/'score_max', not both")
        return self


Method = Literal["autoencoder", "vae", "nae", "antelope", "vrnn", "cwola", "cathode", "supervised"]


class TrainConfig(_Strict):
    epochs: int = Field(default=30, gt=0)
    batch_size: int = Field(default=512, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    patience: int = Field(
        default=5, ge=0, description="early stopping: epochs without gain (cwola/cathode: 10)"
    )
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    k_folds: int = Field(default=5, ge=2, description="weak supervision: k-fold scoring")
    ensemble: int = Field(default=1, ge=1)
    seed: int = 0


class ModelConfig(_Strict):
    name: str | None = Field(default=None, description="label of this score (default: method)")
    method: Method
    bundle: Path | None = Field(default=None, description="existing bundle; else trained")
    features: list[str] | None = Field(default=None, description="default: the method's own")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    signal_region: tuple[float, float] | None = Field(
        default=None, description="weak supervision: SR in the observable (GeV)"
    )
    sidebands: tuple[float, float] | None = Field(
        default=None, description="weak supervision: outer edges of the sidebands (GeV)"
    )


class ExecutorConfig(_Strict):
    name: Literal["iterative", "futures", "dask"] = "futures"
    workers: int = Field(default=2, gt=0)
    chunksize: int = Field(default=100_000, gt=0)
    scheduler: str | None = Field(default=None, description="dask scheduler address")
    retries: int = Field(default=3, ge=0)
    strict: bool = Field(default=False, description="stop at the first failed file")
    resume: bool = False


class FitConfig(_Strict):
    function: Literal["dijet", "expo", "power"] = "dijet"
    n_params: list[int] = Field(default_factory=lambda: [3, 4, 5])
    sqrt_s: float = 13000.0
    range: tuple[float, float] | None = None
    backend: Literal["iminuit", "zfit"] = "iminuit"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    exclude: tuple[float, float] | None = Field(
        default=None,
        description="(low, high) GeV window left out of every fit (regions of a weakly "
        "supervised model always exclude that model's signal_region)",
    )


class BumpHunterConfig(_Strict):
    width_min: int | list[int] = 2
    width_max: int | list[int] = 6
    step: Literal["1", "half", "full"] | int = 1
    mode: Literal["excess", "deficit"] = "excess"
    n_toys: int = Field(default=10_000, gt=0)
    background: Literal["fit", "efficiency"] = Field(
        default="fit",
        description="'fit': the background fit (1D); 'efficiency': the inclusive data times "
        "the anomaly-cut efficiency per bin of the second axis (2D) or overall (1D), for the "
        "score regions (the inclusive region is scanned against its fit)",
    )
    scan_range: tuple[float, float] | None = Field(default=None, description="1D, GeV")
    sideband: bool = False
    seed: int = 0
    refit_global_p: float | None = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="1D with a fit: if the global p-value is below this, refit with the bump "
        "window excluded and scan again (the ATLAS dijet procedure); null: never",
    )


class LimitsConfig(_Strict):
    region: str | None = Field(default=None, description="region for limits (default: last)")
    masses: list[float] = Field(default_factory=list, description="signal masses (GeV)")
    masses_x: list[float] = Field(
        default_factory=list, description="2D searches: m_X points (GeV) of the limit grid"
    )
    signal_width: float = Field(default=0.05, gt=0, description="Gaussian width / mass")
    signal_width_x: float = Field(default=0.08, gt=0, description="2D: Gaussian width / m_X")
    reference_events: float = Field(
        default=100.0,
        gt=0,
        description="mu = 1 for a signal template: this many selected signal events before "
        "the anomaly cut (the template's region efficiency is applied)",
    )
    cl: float = Field(default=0.95, gt=0, lt=1)
    calculator: Literal["asymptotics", "toybased"] = "asymptotics"


class AnalysisConfig(_Strict):
    name: str
    analysis: Literal["dijet", "semivisible", "yxh"] = "dijet"
    output: Path = Path("results")
    seed: int = 0
    datasets: DatasetsConfig
    selection: SelectionConfig = SelectionConfig()
    histograms: HistogramsConfig = HistogramsConfig()
    regions: list[RegionConfig] = Field(default_factory=lambda: [RegionConfig(name="inclusive")])
    models: list[ModelConfig] = Field(
        default_factory=list, description="anomaly-detection models, side by side"
    )
    model: ModelConfig | None = Field(default=None, description="shorthand for one model")
    executor: ExecutorConfig = ExecutorConfig()
    fit: FitConfig | None = None
    bumphunt: BumpHunterConfig | None = None
    limits: LimitsConfig | None = None

    @model_validator(mode="after")
    def _regions_need_model(self) -> AnalysisConfig:
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError(f"region names must be unique, got {names}")
        if self.model is not None and self.models:
            raise ValueError("give 'model' or 'models', not both")
        models = self.all_models
        labels = [m.name or m.method for m in models]
        if len(set(labels)) != len(labels):
            raise ValueError(f"model names must be unique, got {labels} (set 'name')")
        scored = [r for r in self.regions if r.is_scored]
        if scored and not models:
            raise ValueError(
                f"regions {[r.name for r in scored]} cut on an anomaly score but no model is given"
            )
        for r in self.regions:
            if r.model is not None and r.model not in labels:
                raise ValueError(f"region {r.name!r}: unknown model {r.model!r} (models: {labels})")
        if self.regions and self.regions[0].is_scored:
            raise ValueError("the first region must be the inclusive one (no score cut)")
        if (
            self.limits is not None
            and self.limits.region is not None
            and self.limits.region not in names
        ):
            raise ValueError(f"limits.region {self.limits.region!r} is not a region {names}")
        return self

    @property
    def all_models(self) -> list[ModelConfig]:
        """The configured models (``model`` or ``models``), in order."""
        return [self.model] if self.model is not None else list(self.models)

    def model_label(self, model: ModelConfig) -> str:
        return model.name or model.method

    def region_model(self, region: RegionConfig) -> str | None:
        """The label of the model whose score ``region`` cuts on (None: no cut)."""
        if not region.is_scored:
            return None
        return region.model or self.model_label(self.all_models[0])


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], *, source: str = "<dict>") -> AnalysisConfig:
    """Validate a config mapping, raising :class:`ConfigError` that names the bad keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: top level must be a mapping")
    try:
        return AnalysisConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(path: str | Path) -> AnalysisConfig:
    """Read a YAML config with ``yaml.safe_load`` (never executes code) and validate it.

    Relative paths inside the config stay relative to the current directory, as for
    every other command-line tool.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    return parse_config(data, source=str(path))
