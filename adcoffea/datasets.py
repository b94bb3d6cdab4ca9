"""The inputs of a search: a config's datasets as a coffea fileset.

A config names either an existing fileset (JSON or mapping, see
:func:`adcoffea.execution.normalise_fileset`) or synthetic samples, which are generated on
first use and cached by a manifest (:func:`ensure_synthetic`). :func:`data_datasets` says
which datasets are summed into the 'data' spectrum; the rest are signal templates.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from adcoffea.config import AnalysisConfig, SampleConfig, replace_model
from adcoffea.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["data_datasets", "ensure_synthetic", "resolve_fileset", "scale_events"]


def _sample_seed(cfg: AnalysisConfig, index: int, sample: SampleConfig) -> int:
    return sample.seed if sample.seed is not None else cfg.seed * 1000 + index


def ensure_synthetic(cfg: AnalysisConfig, *, force: bool = False) -> dict[str, Any]:
    """Generate the config's synthetic samples unless an identical generation is cached.

    Returns the coffea fileset. The cache key is the sample spec (process, events, files,
    seed, parameters); a changed spec regenerates that sample only.
    """
    from adcoffea.outputs import write_json
    from adcoffea.synthetic import generate

    syn = cfg.datasets.synthetic
    pythia = syn is not None and syn.engine == "pythia"
    if pythia:
        from adcoffea.synthetic.pythia import generate_pythia
    assert syn is not None
    fileset: dict[str, Any] = {}
    for i, sample in enumerate(syn.samples):
        seed = _sample_seed(cfg, i, sample)
        out_dir = Path(syn.directory) / sample.name
        manifest = out_dir / "manifest.json"
        spec: dict[str, Any] = {
            "process": sample.process,
            "events": sample.events,
            "files": sample.files,
            "seed": seed,
            "params": dict(sample.params),
        }
        if pythia:  # fast-engine caches keep their key
            spec["engine"] = "pythia"
        cached = None
        if manifest.exists() and not force:
            try:
                cached = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                cached = None
        files = cached.get("files") if cached and cached.get("spec") == spec else None
        if files and all(Path(f).exists() for f in files):
            log.info("  %s: cached (%d events)", sample.name, sample.events)
        else:
            t0 = time.perf_counter()
            kwargs = {"workers": cfg.executor.workers} if pythia else {}
            gen = (generate_pythia if pythia else generate)(
                sample.process,
                n_events=sample.events,
                seed=seed,
                out_dir=out_dir,
                n_files=sample.files,
                name=sample.name,
                params=dict(sample.params),
                **kwargs,
            )
            files = [str(Path(f).resolve()) for f in gen.files]
            write_json(manifest, {"spec": spec, "files": files})
            log.info(
                "  %s: generated %d %s events in %.1f s",
                sample.name,
                sample.events,
                sample.process,
                time.perf_counter() - t0,
            )
        fileset[sample.name] = {
            "files": {f: "Events" for f in files},
            "metadata": {"process": sample.process, "is_signal": sample.process != "qcd"},
        }
    return fileset


def resolve_fileset(cfg: AnalysisConfig) -> dict[str, Any]:
    """The config's fileset: its synthetic samples (generated if needed) or its fileset."""
    from adcoffea.execution import normalise_fileset

    if cfg.datasets.synthetic is not None:
        return ensure_synthetic(cfg)
    return normalise_fileset(cfg.datasets.fileset)  # type: ignore[arg-type]


def data_datasets(cfg: AnalysisConfig, fileset: dict[str, Any]) -> list[str]:
    """Datasets summed into the 'data' spectrum (default: all but the signal templates)."""
    names = cfg.datasets.data or [d for d in fileset if d not in cfg.datasets.signal]
    unknown = [d for d in [*names, *cfg.datasets.signal] if d not in fileset]
    if unknown:
        raise ConfigError(
            f"datasets.data/signal: unknown dataset(s) {unknown}; known: {sorted(fileset)}"
        )
    return names


def scale_events(cfg: AnalysisConfig, factor: float) -> AnalysisConfig:
    """The same config with every synthetic sample's event count scaled by ``factor``."""
    if cfg.datasets.synthetic is None:
        raise ConfigError("--events-scale needs a config with datasets.synthetic")
    samples = [
        replace_model(s, events=max(1, round(s.events * factor)))
        for s in cfg.datasets.synthetic.samples
    ]
    syn = replace_model(cfg.datasets.synthetic, samples=samples)
    return replace_model(cfg, datasets=replace_model(cfg.datasets, synthetic=syn))
