"""Analysis configuration: YAML files validated by pydantic.

One config describes one analysis end to end. Unknown keys are errors (a typo must not be
silently ignored), and every error names the offending key path and the file.

Values are checked for meaning at load time, not only for type, so that a config fails
before generation and processing rather than at training or never: NaN and infinite
numbers, reversed intervals (fit and scan ranges, sidebands, signal regions, score
windows), sidebands that do not enclose the signal region, fit orders the function does not
have, non-positive limit masses, BumpHunter widths with ``width_min > width_max``, and keys
given twice in the YAML file (where the last one would silently win).

Units follow NanoAOD: GeV for masses and momenta.

Example:
    >>> from adcoffea.config import AnalysisConfig
    >>> cfg = AnalysisConfig.model_validate({"name": "demo", "datasets": {"fileset": "f.json"}})
    >>> cfg.selection.jet_pt_min
    1200.0
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adcoffea.errors import ConfigError
from adcoffea.models.methods import Method

Process = Literal["qcd", "wprime", "svj", "yxh"]

#: Entries per chunk unless a config or option says otherwise, from the chunk-size scan of
#: ``benchmarks/executor_overheads.py`` (one core, 1M events): the constituent workload
#: (ANTELOPE/VRNN inputs), 14x slower per event than the rest and so most of a search's
#: processing time, is fastest at 100k (50k/100k/200k/300k: 454k/481k/382k/253k events/s);
#: the dijet processor alone runs at 0.84x its best there (6.9M against 8.3M events/s at 300k).
#: A 100k chunk with constituents peaks at 0.53 GB over the process, well within the 2 GB a
#: worker may use (200k: 0.97 GB; 300k: 1.6 GB).
DEFAULT_CHUNKSIZE = 100_000


class _Strict(BaseModel):
    # allow_inf_nan: an infinite cut (jet_eta_max: .inf) or a NaN is never meant
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _interval(value: tuple[float, float] | None, key: str) -> None:
    """Refuse a reversed or empty ``(low, high)`` interval, naming ``key``."""
    if value is not None and not value[0] < value[1]:
        raise ValueError(f"{key} {list(value)} must be [low, high] with low < high")


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
    cross_section: float | None = Field(
        default=None,
        gt=0,
        description="pb; default: the process's nominal cross section "
        "(adcoffea.normalisation.NOMINAL_CROSS_SECTION_PB)",
    )


class SyntheticConfig(_Strict):
    directory: Path = Path("data/synthetic")
    engine: Literal["fast", "pythia"] = Field(
        default="fast",
        description="'fast': adcoffea.synthetic (LHCO-fitted jets); 'pythia': Pythia 8 + "
        "FastJet (adcoffea.synthetic.pythia; pip install 'adcoffea[pythia]')",
    )
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
    cross_sections: dict[str, float] = Field(
        default_factory=dict,
        description="fileset datasets: cross section in pb per dataset (else the fileset "
        "metadata's 'cross_section'); synthetic samples give theirs in samples[].cross_section",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetsConfig:
        if (self.synthetic is None) == (self.fileset is None):
            raise ValueError("give exactly one of 'synthetic' or 'fileset'")
        if self.synthetic is not None and self.cross_sections:
            raise ValueError(
                "cross_sections is for fileset datasets; a synthetic sample takes its own "
                "(samples[].cross_section)"
            )
        bad = {k: v for k, v in self.cross_sections.items() if not v > 0}
        if bad:
            raise ValueError(f"cross_sections must be positive (pb), got {bad}")
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
        if (
            self.score_min is not None
            and self.score_max is not None
            and not self.score_min < self.score_max
        ):
            raise ValueError(
                f"score_min {self.score_min} must be below score_max {self.score_max} "
                "(the region would be empty)"
            )
        return self


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

    @model_validator(mode="after")
    def _windows(self) -> ModelConfig:
        _interval(self.signal_region, "signal_region")
        _interval(self.sidebands, "sidebands")
        sr, sb = self.signal_region, self.sidebands
        if sr is not None and sb is not None and not (sb[0] < sr[0] and sr[1] < sb[1]):
            raise ValueError(
                f"sidebands {list(sb)} must enclose signal_region {list(sr)} with room on "
                "both sides (sidebands[0] < signal_region[0] and signal_region[1] < "
                "sidebands[1])"
            )
        return self


class ExecutorConfig(_Strict):
    name: Literal["iterative", "futures", "dask"] = "futures"
    workers: int = Field(default=2, gt=0)
    chunksize: int = Field(default=DEFAULT_CHUNKSIZE, gt=0)
    scheduler: str | None = Field(default=None, description="dask scheduler address")
    retries: int = Field(default=3, ge=0)
    strict: bool = Field(default=False, description="stop at the first failed file")
    resume: bool = False
    allow_failures: bool = Field(
        default=False,
        description="a run that lost input events (failed files or chunks) still exits 0",
    )


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
    min_pvalue: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description="chi2 p-value below which a region's background model is flagged "
        "inadequate (its BumpHunter result is not quoted as a discovery); also the bar of "
        "the alternative functions and of the guarded refit",
    )
    function_uncertainty: bool = Field(
        default=True,
        description="carry the fit-function uncertainty (envelope of alternative functions "
        "fitted to the same data) into BumpHunter and the pyhf workspaces",
    )
    uncertainty_template: str | None = Field(
        default=None,
        description="dataset (not part of the data) whose histogram in each region is a "
        "high-statistics background template: adds the spurious-signal estimate to the "
        "fit-function uncertainty",
    )

    @model_validator(mode="after")
    def _ranges(self) -> FitConfig:
        from adcoffea.fits.functions import FAMILIES

        _interval(self.range, "range")
        _interval(self.exclude, "exclude")
        if not self.n_params:
            raise ValueError("n_params must list at least one order, e.g. [3, 4, 5]")
        fam = FAMILIES.get(self.function)
        if fam is not None:
            bad = [n for n in self.n_params if not fam.min_params <= n <= fam.max_params]
            if bad:
                raise ValueError(
                    f"n_params {self.n_params}: {bad} not available for function "
                    f"{self.function!r} (it takes {fam.min_params} to {fam.max_params} "
                    "parameters, p0 included)"
                )
        if self.sqrt_s <= 0:
            raise ValueError(f"sqrt_s must be positive, got {self.sqrt_s}")
        return self


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
    scan_range: tuple[float, float] | tuple[tuple[float, float], tuple[float, float]] | None = (
        Field(
            default=None,
            description="GeV: (low, high) on the first axis, or ((xlo, xhi), (ylo, yhi)) in "
            "2D; only bins inside are scanned, and a data-driven efficiency is measured there",
        )
    )
    efficiency_model: Literal["trend", "constant"] = Field(
        default="trend",
        description="background 'efficiency': the cut efficiency per bin of the second axis "
        "(one in 1D) along the first axis, 'trend' (logistic in log of the first axis, fitted "
        "to the scanned range: a jet-level score's efficiency varies with the jets' pT) or "
        "'constant'",
    )
    sideband: bool = False
    seed: int = 0
    toys: Literal["refit", "fixed"] = Field(
        default="refit",
        description="scans against a fit: 'refit' refits every pseudo-experiment as the data "
        "(family, order by the same Wilks test, excluded window) and scans it against its own "
        "fit, a calibrated global p; 'fixed' scans the toys against the data's fit, which "
        "ignores the fit's absorption of fluctuations (conservative p)",
    )
    refit_global_p: float | None = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="1D with a fit: if the global p-value is below this, refit with the bump "
        "window excluded and scan again (the ATLAS dijet procedure); null: never",
    )

    @model_validator(mode="after")
    def _widths(self) -> BumpHunterConfig:
        lo = [self.width_min] if isinstance(self.width_min, int) else list(self.width_min)
        hi = [self.width_max] if isinstance(self.width_max, int) else list(self.width_max)
        if not lo or not hi:
            raise ValueError("width_min and width_max need a value per axis")
        if len(lo) != len(hi) and 1 not in (len(lo), len(hi)):
            raise ValueError(
                f"width_min {self.width_min} and width_max {self.width_max} give a different "
                "number of axes"
            )
        n = max(len(lo), len(hi))
        lo, hi = lo * (n // len(lo)), hi * (n // len(hi))
        if min(lo) < 1:
            raise ValueError(f"width_min {self.width_min} must be at least 1 bin")
        bad = [i for i in range(n) if lo[i] > hi[i]]
        if bad:
            raise ValueError(
                f"width_min {self.width_min} is larger than width_max {self.width_max}"
                + (f" on axis {bad[0]}" if n > 1 else "")
            )
        if isinstance(self.step, int) and self.step < 1:
            raise ValueError(f"step must be at least 1 bin, got {self.step}")
        if self.scan_range is not None and isinstance(self.scan_range[0], tuple):
            for axis, rng in zip("xy", self.scan_range, strict=True):
                _interval(rng, f"scan_range ({axis})")  # type: ignore[arg-type]
        else:
            _interval(self.scan_range, "scan_range")  # type: ignore[arg-type]
        return self


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
    unit: Literal["mu", "fb"] = Field(
        default="mu",
        description="'fb': signal templates normalised to cross section x luminosity / sum of "
        "generator weights, limits quoted as sigma x B in fb (and mu); 'mu': mu = 1 is "
        "reference_events",
    )
    luminosity: float | None = Field(
        default=None, gt=0, description="integrated luminosity in fb^-1 (unit 'fb')"
    )
    luminosity_uncertainty: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="relative; a normsys 'lumi' on the signal (unit 'fb')",
    )
    signal_stat_uncertainty: bool = Field(
        default=True,
        description="signal templates: their MC statistical uncertainty as a staterror",
    )
    diagnostics: bool = Field(
        default=True,
        description="signal templates: nuisance-parameter pulls, impacts on mu and pre-/post-fit "
        "yields",
    )
    cl: float = Field(default=0.95, gt=0, lt=1)
    calculator: Literal["asymptotics", "toybased"] = "asymptotics"

    @model_validator(mode="after")
    def _positive_masses(self) -> LimitsConfig:
        for key in ("masses", "masses_x"):
            bad = [m for m in getattr(self, key) if m <= 0]
            if bad:
                raise ValueError(f"{key} must be positive masses in GeV, got {bad}")
        return self

    @model_validator(mode="after")
    def _units(self) -> LimitsConfig:
        if self.unit == "fb":
            if self.luminosity is None:
                raise ValueError(
                    "limits.luminosity: required when limits.unit is 'fb' (the integrated "
                    "luminosity in fb^-1)"
                )
            if "reference_events" in self.model_fields_set:
                raise ValueError(
                    "limits.reference_events: not used when limits.unit is 'fb' (the signal "
                    "is normalised to cross section x luminosity); remove it"
                )
        else:
            extra = [
                k for k in ("luminosity", "luminosity_uncertainty") if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(f"limits.{extra[0]}: only used with limits.unit: fb")
        return self


class SystematicsConfig(_Strict):
    """Jet-energy-scale and resolution variations of the signal templates' large-R jets.

    Each source is a fixed relative size (``jes``, ``jer``) or a correctionlib correction
    (``jes_key``, ``jer_key`` in the ``correctionlib`` JSON) evaluated per jet; see
    :mod:`adcoffea.systematics`. The file and its keys are checked when the config loads.

    Example:
        >>> SystematicsConfig(jes=0.02, jer=0.05).has("jer")
        True
    """

    jes: float | None = Field(
        default=None, gt=0, lt=1, description="relative JES uncertainty: pt, mass x (1 +- jes)"
    )
    jer: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="relative extra resolution: jer_up smears pt, mass by N(1, jer) per jet",
    )
    correctionlib: Path | None = Field(
        default=None, description="correctionlib JSON (.json or .json.gz) holding jes_key/jer_key"
    )
    jes_key: str | None = Field(
        default=None, description="correction giving the relative JES uncertainty per jet"
    )
    jer_key: str | None = Field(
        default=None, description="correction giving the extra relative resolution per jet"
    )
    seed: int = Field(default=0, description="seed of the per-event JER smearing")

    def has(self, source: str) -> bool:
        """Whether the source (``jes`` or ``jer``) is configured."""
        return getattr(self, source) is not None or getattr(self, f"{source}_key") is not None

    @model_validator(mode="after")
    def _sources(self) -> SystematicsConfig:
        for source in ("jes", "jer"):
            if getattr(self, source) is not None and getattr(self, f"{source}_key") is not None:
                raise ValueError(
                    f"systematics.{source}: give a fixed size or {source}_key, not both"
                )
        keys = [k for k in ("jes_key", "jer_key") if getattr(self, k) is not None]
        if keys and self.correctionlib is None:
            raise ValueError(f"systematics.{keys[0]}: needs systematics.correctionlib (the file)")
        if self.correctionlib is not None and not keys:
            raise ValueError("systematics.correctionlib: give jes_key and/or jer_key")
        if not (self.has("jes") or self.has("jer")):
            raise ValueError("systematics: give jes and/or jer (or jes_key/jer_key)")
        if self.correctionlib is not None:
            self._check_corrections(keys)
        return self

    def _check_corrections(self, keys: list[str]) -> None:
        """The file reads, each key names a correction, each input is a jet quantity."""
        from adcoffea.corrections import correction_inputs, load_correction_set

        path = self.correctionlib
        if not path.is_file():
            raise ValueError(f"systematics.correctionlib: file {str(path)!r} does not exist")
        try:
            cset = load_correction_set(path)
        except Exception as err:  # correctionlib raises several types on a bad file
            raise ValueError(
                f"systematics.correctionlib: {str(path)!r} is not a correctionlib JSON: {err}"
            ) from None
        for key in keys:
            name = getattr(self, key)
            if name not in list(cset):
                raise ValueError(
                    f"systematics.{key}: no correction {name!r} in {str(path)!r} "
                    f"(it has {sorted(cset)})"
                )
            try:
                correction_inputs(cset[name])
            except ValueError as err:
                raise ValueError(f"systematics.{key}: {err}") from None


class HuntClassifierConfig(_Strict):
    """The k-fold classifier trained in every window of the hunt."""

    kind: Literal["bdt", "mlp"] = Field(
        default="bdt", description="boosted-tree ensembles (fast, robust) or a dense network"
    )
    members: int = Field(default=3, ge=1, description="classifiers per fold, averaged")
    k_folds: int = Field(default=5, ge=2, description="an event is scored by its fold's models")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


class HuntCathodeConfig(_Strict):
    """CATHODE in the hunt (``hunt.method: cathode``): every window's background model.

    The density p(features | mjj) is trained on the window's sidebands, sampled in its SR
    (``oversample`` samples per SR event), and the window's classifier learns SR data against
    those samples. ``closure`` checks the samples first: a classifier of real sideband events
    against samples at their mjj (ROC AUC about 0.5 when the model is right), reported per
    window as ``closure_auc`` in ``results.json``.
    """

    background_model: Literal["maf", "nsf", "cvae"] = "maf"
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="density options (epochs, n_models, transforms, hidden, ...): "
        "adcoffea.models.density.DENSITY_DEFAULTS",
    )
    oversample: int = Field(default=4, ge=1, description="background samples per SR event")
    closure: bool = Field(default=True, description="sampled-vs-real sideband AUC per window")


class HuntConfig(_Strict):
    """The sliding-window weakly supervised hunt (``adcoffea.hunt``).

    Signal regions of relative width ``relative_width`` slide over ``range``, overlapping by
    ``overlap``, each with sidebands ``sideband_width`` SR widths wide on each side; or, with
    ``signal_region`` and ``sidebands``, one fixed window (a targeted analysis). Every window
    trains its own classifier, selects at each background efficiency, fits its selected
    spectrum without the SR and quotes a local significance; the global significance over all
    windows and efficiencies comes from ``n_toys`` pseudo-experiments.
    """

    method: Literal["cwola", "cathode"] = "cwola"
    range: tuple[float, float] = Field(
        default=(2900.0, 6500.0), description="GeV: the signal regions lie inside"
    )
    relative_width: float = Field(default=0.11, gt=0, lt=1, description="SR width / centre")
    overlap: float = Field(default=0.5, ge=0, lt=1, description="shared fraction of an SR")
    sideband_width: float = Field(default=1.0, gt=0, description="per side, in SR widths")
    signal_region: tuple[float, float] | None = Field(
        default=None, description="fixed-window mode: the one SR (GeV)"
    )
    sidebands: tuple[float, float] | None = Field(
        default=None, description="fixed-window mode: outer sideband edges (GeV)"
    )
    fit_range: tuple[float, float] | None = Field(
        default=None, description="GeV; default fit.range (the fit family/orders are fit's)"
    )
    efficiencies: list[float] = Field(
        default_factory=lambda: [0.1, 0.01, 0.002],
        description="background efficiencies, decreasing; thresholds set outside the SR",
    )
    features: list[str] = Field(
        default_factory=lambda: ["mj_min", "delta_mj", "tau21_min", "tau21_max"],
        description="classifier inputs (must not depend on mjj)",
    )
    classifier: HuntClassifierConfig = HuntClassifierConfig()
    cathode: HuntCathodeConfig = HuntCathodeConfig()
    significance: Literal["z_bi", "z_pl"] = "z_bi"
    n_toys: int = Field(default=3000, ge=0, description="pseudo-experiments for the global Z")
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> HuntConfig:
        if (self.signal_region is None) != (self.sidebands is None):
            raise ValueError("fixed-window mode needs both 'signal_region' and 'sidebands'")
        if self.range[1] <= self.range[0]:
            raise ValueError(f"'range' {self.range} needs high > low")
        if self.fit_range is not None and self.fit_range[1] <= self.fit_range[0]:
            raise ValueError(f"'fit_range' {self.fit_range} needs high > low")
        effs = self.efficiencies
        if not effs or any(not 0 < e < 1 for e in effs):
            raise ValueError(f"'efficiencies' must be in (0, 1), got {effs}")
        if any(b >= a for a, b in itertools.pairwise(effs)):
            raise ValueError(f"'efficiencies' must be strictly decreasing, got {effs}")
        if "mjj" in self.features:
            raise ValueError("'features' must not contain mjj (the classifier would sculpt it)")
        return self

    @property
    def fixed(self) -> bool:
        return self.signal_region is not None


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
    hunt: HuntConfig | None = None
    systematics: SystematicsConfig | None = Field(
        default=None, description="JES/JER variations of the signal templates"
    )

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

    @model_validator(mode="after")
    def _cross_sections(self) -> AnalysisConfig:
        if self.limits is None or self.limits.unit != "fb":
            return self
        from adcoffea.normalisation import missing_cross_sections

        missing = missing_cross_sections(self)
        if missing:
            raise ValueError(
                f"datasets.cross_sections.{missing[0]}: signal dataset {missing[0]!r} has no "
                "cross section (pb), needed for limits.unit 'fb'; give it there or as "
                "'cross_section' in the fileset metadata"
            )
        return self

    @model_validator(mode="after")
    def _hunt_fit_range(self) -> AnalysisConfig:
        no_fit_range = self.fit is None or self.fit.range is None
        if self.hunt is not None and self.hunt.fit_range is None and no_fit_range:
            raise ValueError("hunt.fit_range: give it, or fit.range (the hunt fits there)")
        if self.hunt is not None and self.analysis in ("dijet", "semivisible"):
            # the windows on the histogram binning: a bad range fails here, not after training
            from adcoffea.hunt.windows import axis_edges, make_windows

            observable = "mjj" if self.analysis == "dijet" else "mt"
            try:
                make_windows(axis_edges(self, observable), self.hunt, self.hunt_fit_range)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return self

    @property
    def hunt_fit_range(self) -> tuple[float, float] | None:
        """The hunt's fit range: ``hunt.fit_range``, else ``fit.range``."""
        if self.hunt is None:
            return None
        if self.hunt.fit_range is not None:
            return self.hunt.fit_range
        return None if self.fit is None else self.fit.range

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


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key given twice (the last would win).

    Example:
        >>> try:
        ...     yaml.load("a: 1\\na: 2\\n", Loader=UniqueKeyLoader)
        ... except yaml.constructor.ConstructorError as err:
        ...     print(err.problem)
        found duplicated key 'a' (first given on line 1)
    """

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first != key_node.start_mark.line:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicated key {key!r} (first given on line {first + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> AnalysisConfig:
    """Read a YAML config with a safe loader (never executes code) and validate it.

    The loader is ``yaml.SafeLoader`` refusing duplicated keys (:class:`UniqueKeyLoader`).

    Relative paths inside the config stay relative to the current directory, as for
    every other command-line tool.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no code runs
    except yaml.constructor.ConstructorError as err:
        if err.problem and "duplicated key" in err.problem:
            mark = err.problem_mark
            raise ConfigError(
                f"config {path}, line {mark.line + 1 if mark else '?'}: {err.problem}; "
                "the last one would silently win: remove one of them"
            ) from None
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    return parse_config(data, source=str(path))


def replace_model(obj: Any, /, **changes: Any) -> Any:
    """A validated copy of a frozen pydantic model (a config or a block of it) with changes.

    Example:
        >>> ex = ExecutorConfig()
        >>> replace_model(ex, name="iterative").name
        'iterative'
    """
    # only the fields the user set travel: a default stays a default (validators that tell
    # "given" from "defaulted", e.g. limits.reference_events with unit fb, keep working)
    return type(obj).model_validate({**obj.model_dump(exclude_unset=True), **changes})
