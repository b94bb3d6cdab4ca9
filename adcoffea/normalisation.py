"""Signal normalisation: cross section x integrated luminosity / sum of generator weights.

A simulated sample of cross section ``sigma`` (pb) whose events carry generator weights
``w_i`` (NanoAOD ``genWeight``) stands for ``sigma x L`` events in a luminosity ``L``: every
event weighs ``sigma x L / sum_i w_i``, the sum running over **all** generated events, before
any cut (the processor accumulates it per dataset, files with no selected event included;
see :class:`adcoffea.processors.base.SearchProcessor`). Files without ``genWeight`` (data, or
generators that write none) weigh each event 1, so the sum is the event count; the
accumulated ``events_with_genweight`` says which of the two it was.

Cross sections come from, in this order: a synthetic sample's ``cross_section``, else the
nominal cross section of its process (:data:`NOMINAL_CROSS_SECTION_PB`); for a fileset,
``datasets.cross_sections`` in the config, else ``cross_section`` (pb) in the dataset's
fileset metadata.

``cfg`` arguments are :class:`adcoffea.config.AnalysisConfig` objects; this module does not
import the config (the config calls :func:`missing_cross_sections` when it loads, so imports
run one way: config -> normalisation).

Example:
    >>> n = SampleNormalisation("wprime", 0.0085, 100.0, 5000.0, 5000, 5000)
    >>> round(n.scale, 6), round(n.cross_section_fb, 6)
    (0.17, 8.5)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adcoffea.errors import ConfigError

#: Nominal cross sections (pb) of the synthetic processes: conventions of this generator, not
#: theory predictions. QCD: 10 pb for the LHCO-like preselection (leading large-R jet
#: pT > 1.2 TeV), so that 1M events stand for 100 fb^-1. Signals: the injection rates of the
#: shipped configs in that luminosity: the LHC Olympics R&D W' (850 per 1M QCD: 8.5 fb), the
#: semi-visible Z' (800 per 250k QCD: 32 fb) and Y -> XH (400 per 250k QCD: 16 fb).
NOMINAL_CROSS_SECTION_PB: dict[str, float] = {
    "qcd": 10.0,
    "wprime": 0.0085,
    "svj": 0.032,
    "yxh": 0.016,
}
#: fileset metadata key of a dataset's cross section (pb)
METADATA_KEY = "cross_section"


def _fileset_metadata(path: Path) -> dict[str, Mapping[str, Any]]:
    """``{dataset: metadata}`` of a fileset JSON, empty if it cannot be read (yet)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(ds): dict(spec.get("metadata") or {})
        for ds, spec in raw.items()
        if isinstance(spec, Mapping)
    }


def cross_section_pb(
    cfg: Any, dataset: str, metadata: Mapping[str, Any] | None = None
) -> float | None:
    """The cross section of ``dataset`` in pb, or None where none is given.

    Args:
        cfg: the analysis config.
        dataset: a dataset (synthetic sample) name.
        metadata: the dataset's fileset metadata (fileset configs; read from
            ``datasets.fileset`` when not given).
    """
    syn = cfg.datasets.synthetic
    if syn is not None:
        sample = next((s for s in syn.samples if s.name == dataset), None)
        if sample is None:
            return None
        if sample.cross_section is not None:
            return float(sample.cross_section)
        return NOMINAL_CROSS_SECTION_PB.get(sample.process)
    if dataset in cfg.datasets.cross_sections:
        return float(cfg.datasets.cross_sections[dataset])
    if metadata is None and cfg.datasets.fileset is not None:
        metadata = _fileset_metadata(cfg.datasets.fileset).get(dataset, {})
    value = (metadata or {}).get(METADATA_KEY)
    if value is None:
        return None
    try:
        xs = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"fileset metadata of {dataset!r}: {METADATA_KEY} must be a number (pb), got {value!r}"
        ) from None
    if not xs > 0:
        raise ConfigError(f"fileset metadata of {dataset!r}: {METADATA_KEY} must be > 0 pb")
    return xs


def missing_cross_sections(cfg: Any) -> list[str]:
    """The signal datasets without a cross section (synthetic samples always have one)."""
    if cfg.datasets.synthetic is not None:
        names = {s.name for s in cfg.datasets.synthetic.samples}
        return [d for d in cfg.datasets.signal if d in names and cross_section_pb(cfg, d) is None]
    meta = _fileset_metadata(cfg.datasets.fileset) if cfg.datasets.fileset is not None else {}
    return [d for d in cfg.datasets.signal if cross_section_pb(cfg, d, meta.get(d, {})) is None]


@dataclass(frozen=True)
class SampleNormalisation:
    """How one simulated sample is scaled to ``sigma x L``.

    Attributes:
        dataset: the dataset.
        cross_section_pb: its cross section (pb).
        luminosity_fb: integrated luminosity (fb^-1).
        sum_weights: sum of generator weights over all its events before any cut.
        events: its number of events before any cut.
        events_with_genweight: how many of them carried ``genWeight`` (the others weigh 1).
    """

    dataset: str
    cross_section_pb: float
    luminosity_fb: float
    sum_weights: float
    events: int
    events_with_genweight: int

    @property
    def cross_section_fb(self) -> float:
        return 1000.0 * self.cross_section_pb

    @property
    def scale(self) -> float:
        """The weight that turns a sum of generator weights into expected events."""
        return self.cross_section_fb * self.luminosity_fb / self.sum_weights

    @property
    def weight_source(self) -> str:
        if self.events_with_genweight == self.events:
            return "genWeight"
        if self.events_with_genweight == 0:
            return "event count (no genWeight)"
        return "genWeight where present, else 1"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "cross_section_pb": self.cross_section_pb,
            "luminosity_fb": self.luminosity_fb,
            "sum_weights": self.sum_weights,
            "events": self.events,
            "weight_source": self.weight_source,
            "expected_events": self.cross_section_fb * self.luminosity_fb,
            "scale": self.scale,
        }


def normalisations(
    cfg: Any,
    accumulated: Mapping[str, Mapping[str, float]],
    fileset: Mapping[str, Any] | None = None,
) -> dict[str, SampleNormalisation]:
    """The normalisation of every signal dataset of ``cfg`` (``limits.unit: fb``).

    Args:
        cfg: the config (its ``limits.luminosity`` and cross sections).
        accumulated: the processor's ``normalisation`` output, ``{dataset: {"sum_weights",
            "events", "events_with_genweight"}}``.
        fileset: the run's fileset (its metadata may hold cross sections).

    Raises:
        ConfigError: a signal dataset without a cross section, or without any event.
    """
    lim = cfg.limits
    if lim is None or lim.luminosity is None:
        raise ConfigError("limits.luminosity: required for cross-section normalised limits")
    out: dict[str, SampleNormalisation] = {}
    for ds in cfg.datasets.signal:
        meta = None if fileset is None else (fileset.get(ds, {}) or {}).get("metadata", {})
        xs = cross_section_pb(cfg, ds, meta)
        if xs is None:
            raise ConfigError(
                f"datasets.cross_sections.{ds}: signal dataset {ds!r} has no cross section (pb)"
            )
        acc = accumulated.get(ds)
        if acc is None:
            continue  # not processed: no template, no limit
        sumw = float(acc.get("sum_weights", 0.0))
        if not sumw > 0:
            raise ConfigError(
                f"signal dataset {ds!r}: its sum of generator weights is {sumw:g}; it cannot "
                "be normalised to cross section x luminosity"
            )
        out[ds] = SampleNormalisation(
            dataset=ds,
            cross_section_pb=xs,
            luminosity_fb=float(lim.luminosity),
            sum_weights=sumw,
            events=int(acc.get("events", 0)),
            events_with_genweight=int(acc.get("events_with_genweight", 0)),
        )
    return out


__all__ = [
    "METADATA_KEY",
    "NOMINAL_CROSS_SECTION_PB",
    "SampleNormalisation",
    "cross_section_pb",
    "missing_cross_sections",
    "normalisations",
]
