"""``adcoffea run``: one analysis end to end from its YAML config; the stage sequence only.

Stages (each timed; each lives in its own module):

1. ``inputs`` – the fileset, synthetic samples generated if needed (:mod:`adcoffea.datasets`);
2. ``train`` – the anomaly-detection models, on features extracted by the processor itself
   (:mod:`adcoffea.learn`);
3. ``process`` – the search processor with the models, on the executor of choice
   (:mod:`adcoffea.processing`);
4. ``write`` – histograms (pickle + ROOT), cutflow and run report;
5. ``evaluate`` – ROC/SIC and sculpting of each score (:mod:`adcoffea.learn`);
6. ``hunt`` – the sliding-window weakly supervised hunt, when configured
   (:mod:`adcoffea.hunt.stage`);
7. ``statistics`` – background fit, BumpHunter, limits (:mod:`adcoffea.statistics`) and the
   report (:mod:`adcoffea.report`), when configured.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcoffea.config import AnalysisConfig
from adcoffea.datasets import data_datasets, resolve_fileset
from adcoffea.processing import make_processor, run_configured, write_processed
from adcoffea.results import ProcessingResult, SearchResult

if TYPE_CHECKING:
    from adcoffea.execution import RunReport

log = logging.getLogger(__name__)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes)."""
    import resource

    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class StageTimer:
    """Wall time per stage, in the order the stages ran, and the CPU time it used.

    On a shared machine the wall time grows with the load; the CPU time (this process and
    its worker processes) is what the stage costs on an idle one.
    """

    times: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``; its start and end are logged (INFO)."""
        log.info("[adcoffea] %s ...", name)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        yield
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
        self.cpu[name] = self.cpu.get(name, 0.0) + _cpu_seconds() - c0
        log.info(
            "[adcoffea] %s done in %.1f s (CPU %.1f s)", name, self.times[name], self.cpu[name]
        )


# --------------------------------------------------------------------------------------
# the whole run
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """What :func:`run` returns: the typed result and the histograms it was drawn from.

    Attributes:
        output_dir: where everything was written.
        hists: the processor's histograms (also in ``hists.pkl``/``hists.root``).
        result: the typed result; ``result.to_dict()`` is ``results.json``.
    """

    output_dir: Path
    hists: dict[str, Any]
    result: SearchResult

    @property
    def report(self) -> RunReport:
        """The event accounting of the processing stage."""
        report = self.result.processing.run_report
        assert report is not None  # run() always processes
        return report

    @property
    def timings(self) -> Mapping[str, float]:
        """Wall seconds per stage."""
        return self.result.timings

    @property
    def results(self) -> dict[str, Any]:
        """``results.json`` as a dictionary."""
        return self.result.to_dict()


def run(
    cfg: AnalysisConfig,
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int | None = None,
    strict: bool | None = None,
    resume: bool | None = None,
    retries: int | None = None,
    output: Path | None = None,
    statistics: bool = True,
) -> RunResult:
    """Run the analysis described by ``cfg``; see the module docstring for the stages.

    The executor options override the config's ``executor`` block; ``statistics=False``
    stops after the histograms (and the evaluation of the scores).
    """
    from adcoffea.execution.manifest import begin_run, finish_run
    from adcoffea.outputs import write_json

    out_dir = Path(output or cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the previous outputs stop counting now: a run killed from here on leaves them marked
    # as not complete (manifest.json), and readers refuse them
    unit = begin_run(out_dir, command="run", config=cfg.name)
    # plots and workspaces are regenerated in full: stale files of an earlier configuration
    # of the same output directory must not appear in this run's report
    for stale in ("plots", "workspaces"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    timer = StageTimer()
    opts: dict[str, Any] = dict(
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        chunksize=chunksize,
        strict=strict,
        resume=resume,
        retries=retries,
        checkpoint_dir=out_dir / "checkpoints",
    )

    with timer.stage("inputs"):
        fileset = resolve_fileset(cfg)
        data_names = data_datasets(cfg, fileset)

    # the training and the processing runs share one pool of futures workers: they start
    # once per pipeline, not once per run
    with ExitStack() as stack:
        if (executor or cfg.executor.name) == "futures":
            from adcoffea.execution import futures_pool

            opts["pool"] = stack.enter_context(futures_pool(workers or cfg.executor.workers))
        models = cfg.all_models
        bundles = {cfg.model_label(m): str(m.bundle) for m in models if m.bundle is not None}
        training = None
        if any(m.bundle is None for m in models):
            with timer.stage("train"):
                from adcoffea.learn import train_models

                training = train_models(
                    cfg, fileset, data_names, out_dir=out_dir, process_opts=opts
                )
                bundles.update({label: str(t.bundle) for label, t in training.items()})
        bundles = {cfg.model_label(m): bundles[cfg.model_label(m)] for m in models}

        with timer.stage("process"):
            proc = make_processor(
                cfg, bundles=bundles, collect_columns=bool(models) or cfg.hunt is not None
            )
            run_out = run_configured(cfg, fileset, proc, **opts)
    opts.pop("pool", None)
    hists = run_out.output.get("hists", {})
    processing = ProcessingResult(
        cutflow=run_out.output.get("cutflow", {}),
        cutflow_weighted=run_out.output.get("cutflow_weighted", {}),
        run_report=run_out.report,
    )

    with timer.stage("write"):
        write_processed(run_out, out_dir)

    evaluation = None
    if models and "columns" in run_out.output:
        with timer.stage("evaluate"):
            from adcoffea.learn import evaluate_run

            evaluation = evaluate_run(cfg, run_out.output["columns"], data_names, out_dir=out_dir)

    hunt = None
    if cfg.hunt is not None and statistics:
        with timer.stage("hunt"):
            from adcoffea.hunt.stage import run_hunt_stage

            hunt = run_hunt_stage(
                cfg,
                run_out.output["columns"],
                data_names,
                out_dir=out_dir,
                progress=lambda line: log.info("  %s", line),
            )

    stats = None
    with_statistics = statistics and any(x is not None for x in (cfg.fit, cfg.bumphunt, cfg.limits))
    if with_statistics:
        with timer.stage("statistics"):
            from adcoffea.statistics import run_statistics

            norm = None
            if cfg.limits is not None and cfg.limits.unit == "fb":
                from adcoffea.normalisation import normalisations

                # sigma x L / sum of generator weights, per signal template
                norm = normalisations(cfg, run_out.output.get("normalisation", {}), fileset)
            stats = run_statistics(cfg, hists, data_names, out_dir=out_dir, normalisation=norm)

    result = SearchResult(
        name=cfg.name,
        analysis=cfg.analysis,
        processing=processing,
        training=training,
        evaluation=evaluation,
        hunt=hunt,
        statistics=stats,
        timings=dict(timer.times),
        cpu=dict(timer.cpu),
    )
    write_json(out_dir / "results.json", result)
    if with_statistics or hunt is not None:
        from adcoffea.report import write_report

        write_report(out_dir, result)
    finish_run(unit, events_lost=run_out.report.events_failed)  # the run's last write
    log.info("[adcoffea] results in %s/ (results.json, hists.pkl, hists.root)", out_dir)
    return RunResult(output_dir=out_dir, hists=hists, result=result)


__all__ = ["RunResult", "StageTimer", "run"]
