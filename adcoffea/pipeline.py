"""``adcoffea run``: one analysis end to end from its YAML config.

Stages (each timed, each skipped when its output already exists and is up to date):

1. ``generate`` – synthetic samples, if the config asks for them (cached by a manifest);
2. ``train`` – the anomaly-detection model, on features extracted by the processor itself;
3. ``process`` – the search processor with the model, on the executor of choice;
4. ``write`` – histograms (pickle + ROOT), cutflow and run report;
5. ``statistics`` – background fit, BumpHunter, limits and the report (when configured).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.config import AnalysisConfig, SampleConfig, load_config
from adcoffea.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class StageTimer:
    """Wall time per stage, in the order the stages ran."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        print(f"[adcoffea] {name} ...", flush=True)
        t0 = time.perf_counter()
        yield
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
        print(f"[adcoffea] {name} done in {self.times[name]:.1f} s", flush=True)


# --------------------------------------------------------------------------------------
# stage 1: inputs
# --------------------------------------------------------------------------------------
def _sample_seed(cfg: AnalysisConfig, index: int, sample: SampleConfig) -> int:
    return sample.seed if sample.seed is not None else cfg.seed * 1000 + index


def ensure_synthetic(cfg: AnalysisConfig, *, force: bool = False) -> dict[str, Any]:
    """Generate the config's synthetic samples unless an identical generation is cached.

    Returns the coffea fileset. The cache key is the sample spec (process, events, files,
    seed, parameters); a changed spec regenerates that sample only.
    """
    from adcoffea.synthetic import generate

    syn = cfg.datasets.synthetic
    assert syn is not None
    fileset: dict[str, Any] = {}
    for i, sample in enumerate(syn.samples):
        seed = _sample_seed(cfg, i, sample)
        out_dir = Path(syn.directory) / sample.name
        manifest = out_dir / "manifest.json"
        spec = {
            "process": sample.process,
            "events": sample.events,
            "files": sample.files,
            "seed": seed,
            "params": dict(sample.params),
        }
        cached = None
        if manifest.exists() and not force:
            try:
                cached = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                cached = None
        files = cached.get("files") if cached and cached.get("spec") == spec else None
        if files and all(Path(f).exists() for f in files):
            print(f"  {sample.name}: cached ({sample.events} events)", flush=True)
        else:
            t0 = time.perf_counter()
            gen = generate(
                sample.process,
                n_events=sample.events,
                seed=seed,
                out_dir=out_dir,
                n_files=sample.files,
                name=sample.name,
                params=dict(sample.params),
            )
            files = [str(Path(f).resolve()) for f in gen.files]
            from adcoffea.outputs import write_json

            write_json(manifest, {"spec": spec, "files": files})
            print(
                f"  {sample.name}: generated {sample.events} {sample.process} events "
                f"in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        fileset[sample.name] = {
            "files": {f: "Events" for f in files},
            "metadata": {"process": sample.process, "is_signal": sample.process != "qcd"},
        }
    return fileset


def resolve_fileset(cfg: AnalysisConfig) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------
# stages 2-3: processing
# --------------------------------------------------------------------------------------
def write_processed(run_out: Any, out_dir: Path) -> None:
    """Histograms (pickle + ROOT) and ``cutflow.json`` (cutflows and input accounting)."""
    from adcoffea.outputs import save_hists, write_json

    save_hists(run_out.output.get("hists", {}), out_dir)
    write_json(
        out_dir / "cutflow.json",
        {
            "cutflow": run_out.output.get("cutflow", {}),
            "weighted": run_out.output.get("cutflow_weighted", {}),
            "report": run_out.report.to_dict(),
        },
    )


def make_processor(
    cfg: AnalysisConfig,
    *,
    bundles: dict[str, str] | None = None,
    collect_columns: bool = False,
    collect_constituents: bool = False,
    regions=None,
):
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
    )


def process(
    cfg: AnalysisConfig,
    fileset: dict[str, Any],
    processor_instance,
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int | None = None,
    strict: bool | None = None,
    resume: bool | None = None,
    checkpoint_dir: Path | None = None,
):
    from adcoffea.execution import run_processor

    ex = cfg.executor
    return run_processor(
        fileset,
        processor_instance,
        executor=executor or ex.name,
        workers=workers or ex.workers,
        scheduler=scheduler if scheduler is not None else ex.scheduler,
        chunksize=chunksize or ex.chunksize,
        retries=ex.retries,
        strict=ex.strict if strict is None else strict,
        # chunks are always checkpointed, so that any interrupted run can be resumed
        checkpoint_dir=checkpoint_dir,
        resume=ex.resume if resume is None else resume,
    )


def columns_to_inputs(columns: dict[str, Any]):
    """Turn the processor's column accumulators of one or more datasets into model inputs."""
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
    from adcoffea.features import ModelInputs as MI

    inputs = MI.concatenate(parts)
    observables = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]} if obs else {}
    return inputs, np.concatenate(labels), observables, np.concatenate(dsets)


# --------------------------------------------------------------------------------------
# the whole run
# --------------------------------------------------------------------------------------
@dataclass
class RunResult:
    output_dir: Path
    hists: dict[str, Any]
    report: Any
    timings: dict[str, float]
    results: dict[str, Any]


def run(
    cfg: AnalysisConfig,
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int | None = None,
    strict: bool | None = None,
    resume: bool | None = None,
    output: Path | None = None,
    statistics: bool = True,
) -> RunResult:
    """Run the analysis described by ``cfg``; see the module docstring for the stages."""
    from adcoffea.outputs import write_json

    out_dir = Path(output or cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    # plots and workspaces are regenerated in full: stale files of an earlier configuration
    # of the same output directory must not appear in this run's report
    for stale in ("plots", "workspaces"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    timer = StageTimer()
    results: dict[str, Any] = {"name": cfg.name, "analysis": cfg.analysis}
    opts = dict(
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        chunksize=chunksize,
        strict=strict,
        resume=resume,
        checkpoint_dir=out_dir / "checkpoints",
    )

    with timer.stage("inputs"):
        fileset = resolve_fileset(cfg)
        data_names = data_datasets(cfg, fileset)

    models = cfg.all_models
    bundles = {cfg.model_label(m): str(m.bundle) for m in models if m.bundle is not None}
    if any(m.bundle is None for m in models):
        with timer.stage("train"):
            from adcoffea.training import train_models

            trained = train_models(cfg, fileset, data_names, out_dir=out_dir, process_opts=opts)
            bundles.update({label: str(t["bundle"]) for label, t in trained.items()})
            results["training"] = {label: t["summary"] for label, t in trained.items()}
    bundles = {cfg.model_label(m): bundles[cfg.model_label(m)] for m in models}

    with timer.stage("process"):
        proc = make_processor(cfg, bundles=bundles, collect_columns=bool(models))
        run_out = process(cfg, fileset, proc, **opts)
    hists = run_out.output.get("hists", {})
    results["cutflow"] = run_out.output.get("cutflow", {})
    results["cutflow_weighted"] = run_out.output.get("cutflow_weighted", {})
    results["run_report"] = run_out.report.to_dict()

    with timer.stage("write"):
        write_processed(run_out, out_dir)

    if models and "columns" in run_out.output:
        with timer.stage("evaluate"):
            from adcoffea.training import evaluate_run

            results["evaluation"] = evaluate_run(
                cfg, run_out.output["columns"], data_names, out_dir=out_dir
            )

    if statistics and any(x is not None for x in (cfg.fit, cfg.bumphunt, cfg.limits)):
        with timer.stage("statistics"):
            from adcoffea.statistics import run_statistics

            results.update(run_statistics(cfg, hists, data_names, out_dir=out_dir))

    results["timings_s"] = {k: round(v, 2) for k, v in timer.times.items()}
    write_json(out_dir / "results.json", results)
    if any(x is not None for x in (cfg.fit, cfg.bumphunt, cfg.limits)) and statistics:
        from adcoffea.report import write_report

        write_report(out_dir, results)
    print(f"[adcoffea] results in {out_dir}/ (results.json, hists.pkl, hists.root)", flush=True)
    return RunResult(
        output_dir=out_dir, hists=hists, report=run_out.report, timings=timer.times, results=results
    )


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def cli_arguments(parser) -> None:
    parser.add_argument("config", type=Path, help="analysis YAML (see configs/)")
    parser.add_argument(
        "--executor", choices=["iterative", "futures", "dask"], help="override executor.name"
    )
    parser.add_argument("--workers", type=int, help="processes (futures) or dask workers")
    parser.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--chunksize", type=int, help="entries per chunk")
    parser.add_argument(
        "--strict", action="store_true", default=None, help="stop at the first failed file"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="reuse the per-chunk checkpoints of an interrupted run",
    )
    parser.add_argument("--output", type=Path, help="override the output directory")
    parser.add_argument(
        "--events-scale",
        type=float,
        default=None,
        help="scale every synthetic sample's event count (quick looks: 0.1)",
    )
    parser.add_argument("--no-statistics", action="store_true", help="stop after the histograms")


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


def replace_model(obj, /, **changes):
    """A validated copy of a frozen pydantic model with some fields changed."""
    return type(obj).model_validate({**obj.model_dump(), **changes})


def cli_main(args) -> int:
    cfg = load_config(args.config)
    if args.events_scale is not None:
        cfg = scale_events(cfg, args.events_scale)
    run(
        cfg,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        chunksize=args.chunksize,
        strict=args.strict,
        resume=args.resume,
        output=args.output,
        statistics=not args.no_statistics,
    )
    return 0


__all__ = ["RunResult", "data_datasets", "ensure_synthetic", "make_processor", "run"]


# --------------------------------------------------------------------------------------
# `adcoffea process`: a processor over a user fileset, no config file needed
# --------------------------------------------------------------------------------------
def process_arguments(parser) -> None:
    from adcoffea.execution import add_executor_arguments

    parser.add_argument(
        "fileset",
        type=Path,
        help="fileset JSON: {dataset: [files]} or coffea's {dataset: {files: ...}}",
    )
    parser.add_argument("--analysis", choices=["dijet", "semivisible", "yxh"], default="dijet")
    parser.add_argument(
        "--config", type=Path, help="analysis YAML whose selection, histograms and regions to use"
    )
    parser.add_argument(
        "--bundle",
        action="append",
        default=[],
        metavar="[LABEL=]DIR",
        help="model bundle directory for an anomaly score (repeatable; label defaults to 'model')",
    )
    parser.add_argument(
        "--score-cut",
        type=float,
        action="append",
        default=[],
        help="without --config: add a region 'as_gt_X' with score > X (repeatable)",
    )
    parser.add_argument("--jet-pt-min", type=float, default=1200.0, help="GeV, both jets")
    parser.add_argument("--jet-eta-max", type=float, default=2.5)
    parser.add_argument("--output", "--out", type=Path, default=Path("process_out"))
    add_executor_arguments(parser)


def _bundle_args(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        label, sep, path = v.partition("=")
        if not sep:
            label, path = ("model" if not out else f"model{len(out)}"), v
        if label in out:
            raise ConfigError(f"--bundle: label {label!r} given twice")
        out[label] = path
    return out


def process_main(args) -> int:
    from adcoffea.config import RegionConfig, SelectionConfig, load_config
    from adcoffea.execution import run_processor
    from adcoffea.processors import PROCESSORS

    bundles = _bundle_args(args.bundle)
    if args.config is not None:
        cfg = load_config(args.config)
        missing = [lab for r in cfg.regions if (lab := cfg.region_model(r)) and lab not in bundles]
        if missing:
            raise ConfigError(
                f"{args.config}: regions need the score of model(s) {sorted(set(missing))}; "
                "pass them as --bundle LABEL=DIR (e.g. the models/ of an earlier `adcoffea run`)"
            )
        proc = make_processor(cfg, bundles=bundles)
    else:
        if args.score_cut and not bundles:
            raise ConfigError("--score-cut needs --bundle")
        if len(bundles) > 1 and args.score_cut:
            raise ConfigError("--score-cut is ambiguous with several bundles; use --config")
        label = next(iter(bundles), None)
        regions = [RegionConfig(name="inclusive")]
        regions += [
            RegionConfig(name=f"as_gt_{c:g}", model=label, score_min=c) for c in args.score_cut
        ]
        proc = PROCESSORS[args.analysis](
            selection=SelectionConfig(jet_pt_min=args.jet_pt_min, jet_eta_max=args.jet_eta_max),
            regions=tuple(regions),
            bundles=tuple(bundles.items()),
        )
    args.output.mkdir(parents=True, exist_ok=True)
    res = run_processor(
        args.fileset,
        proc,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        chunksize=args.chunksize,
        retries=args.retries,
        strict=args.strict,
        checkpoint_dir=args.output / "checkpoints",
        resume=args.resume,
    )
    write_processed(res, args.output)
    rep = res.report
    print(
        f"adcoffea process: {rep.events_processed} of {rep.events_total} events processed, "
        f"{rep.events_failed} failed ({len(rep.failures)} failures) in {rep.wall_time:.1f} s; "
        f"results in {args.output}/ (hists.pkl, hists.root, cutflow.json)"
    )
    return 0 if not rep.failures else 1
