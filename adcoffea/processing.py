"""The processing stage: a config's search processor, run over a fileset, and its outputs.

:func:`make_processor` builds the analysis' processor from the config (selection,
histograms, regions, model bundles); :func:`run_configured` runs it with the config's
executor settings (each overridable) through :func:`adcoffea.execution.run_processor`;
:func:`columns_to_inputs` turns the processor's column tables into model inputs, and
:func:`write_processed` writes histograms and the cutflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcoffea.config import AnalysisConfig, RegionConfig

if TYPE_CHECKING:
    from adcoffea.execution import RunOutput
    from adcoffea.features import ModelInputs
    from adcoffea.processors.base import SearchProcessor

__all__ = [
    "columns_to_inputs",
    "make_processor",
    "observable_axes",
    "observable_name",
    "run_configured",
    "write_processed",
]


def observable_name(cfg: AnalysisConfig) -> str:
    """The name of the analysis' observable histogram (``mjj``, ``mt`` or ``mjj_mx``).

    The one map from analysis to observable: each processor class declares it.
    """
    from adcoffea.processors import PROCESSORS

    return PROCESSORS[cfg.analysis].observable


def observable_axes(cfg: AnalysisConfig) -> list[Any]:
    """The axes of the observable histogram, binned as in ``cfg.histograms``.

    The first axis is the resonance mass the weakly supervised methods and the sculpting
    check use (``mjj`` or ``mt``); its name is also the processor's column ``obs_<name>``.
    """
    from adcoffea.processors import PROCESSORS

    return PROCESSORS[cfg.analysis](histograms=cfg.histograms).observable_axes()


def write_processed(run_out: Any, out_dir: Path) -> None:
    """Histograms (pickle + ROOT) and ``cutflow.json`` (cutflows and input accounting)."""
    from adcoffea.outputs import save_hists, write_json

    save_hists(run_out.output.get("hists", {}), out_dir)
    write_json(
        out_dir / "cutflow.json",
        {
            "cutflow": run_out.output.get("cutflow", {}),
            "weighted": run_out.output.get("cutflow_weighted", {}),
            "normalisation": run_out.output.get("normalisation", {}),
            "report": run_out.report.to_dict(),
        },
    )


def make_processor(
    cfg: AnalysisConfig,
    *,
    bundles: dict[str, str] | None = None,
    collect_columns: bool = False,
    collect_constituents: bool = False,
    regions: Sequence[RegionConfig] | None = None,
    variations: bool = True,
) -> SearchProcessor:
    """The config's search processor, scoring events with ``bundles`` (label -> directory).

    With ``variations`` (and ``cfg.systematics``) the signal templates are also processed
    with their jets varied (JES/JER); the training runs, which need no histogram, pass False.
    """
    from adcoffea.processors import PROCESSORS

    cls = PROCESSORS[cfg.analysis]
    max_particles = max(
        [int(m.hyperparameters.get("max_particles", 20)) for m in cfg.all_models] or [20]
    )
    return cls(
        selection=cfg.selection,
        histograms=cfg.histograms,
        regions=tuple(cfg.regions if regions is None else regions),
        bundles=tuple((bundles or {}).items()),
        collect_columns=collect_columns,
        collect_constituents=collect_constituents,
        max_particles=max_particles,
        systematics=cfg.systematics if variations else None,
        varied_datasets=tuple(cfg.datasets.signal),
    )


def score_threads(executor: str, *, workers: int, scheduler: str | None) -> int | None:
    """torch threads for scoring a chunk so that processes x threads <= this machine's cores.

    The iterative executor scores in this one process (all cores: 1.2x the events/s of the
    CWoLa-scored dijet processor with 2 threads on 2 cores); futures workers and those of
    a ``LocalCluster`` share the cores. None for workers on other machines (a scheduler
    address), whose cores are unknown here: the processor keeps its setting.

    Example:
        >>> score_threads("dask", workers=4, scheduler="tcp://host:8786") is None
        True
    """
    if executor == "dask" and scheduler is not None:
        return None
    from adcoffea.models.threads import default_threads

    return default_threads(1 if executor == "iterative" else workers)


def run_configured(
    cfg: AnalysisConfig,
    fileset: dict[str, Any],
    processor_instance: Any,
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int | None = None,
    strict: bool | None = None,
    resume: bool | None = None,
    retries: int | None = None,
    checkpoint_dir: Path | None = None,
    pool: Any = None,
) -> RunOutput:
    """Run ``processor_instance`` with ``cfg.executor``'s settings; arguments override them.

    ``pool``: a running pool of futures workers shared by several runs (see
    :func:`adcoffea.execution.futures_pool`); used when the executor is ``futures``.
    """
    from adcoffea.execution import run_processor

    ex = cfg.executor
    executor = executor or ex.name
    workers = workers or ex.workers
    scheduler = scheduler if scheduler is not None else ex.scheduler
    threads = score_threads(executor, workers=workers, scheduler=scheduler)
    if threads is not None and getattr(processor_instance, "score_threads", None) is not None:
        processor_instance = dataclasses.replace(processor_instance, score_threads=threads)
    return run_processor(
        fileset,
        processor_instance,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        chunksize=chunksize or ex.chunksize,
        retries=ex.retries if retries is None else retries,
        strict=ex.strict if strict is None else strict,
        # chunks are always checkpointed, so that any interrupted run can be resumed
        checkpoint_dir=checkpoint_dir,
        resume=ex.resume if resume is None else resume,
        pool=pool,
    )


def columns_to_inputs(
    columns: dict[str, Any],
) -> tuple[ModelInputs, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Turn the processor's column accumulators of one or more datasets into model inputs.

    Returns ``(inputs, truth labels, observables, dataset of each row)``.
    """
    from adcoffea.features import HIGH_LEVEL_FEATURES, MET_FEATURES, ModelInputs

    parts, labels, obs, dsets = [], [], [], []
    for ds, cols in columns.items():
        c = {k: v.value for k, v in cols.items()}
        n = len(c["mjj"])
        parts.append(
            ModelInputs(
                high_level={k: c[k] for k in (*HIGH_LEVEL_FEATURES, *MET_FEATURES) if k in c},
                event=c.get("event"),
                constituents=c.get("constituents"),
                mask=c.get("constituents_mask"),
                jets=c.get("jets"),
            )
        )
        labels.append(c.get("truth_label", np.zeros(n, dtype=np.int32)))
        obs.append({k[4:]: v for k, v in c.items() if k.startswith("obs_")})
        dsets.append(np.full(n, ds))
    inputs = ModelInputs.concatenate(parts)
    observables = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]} if obs else {}
    return inputs, np.concatenate(labels), observables, np.concatenate(dsets)
