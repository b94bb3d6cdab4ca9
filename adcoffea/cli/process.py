"""``adcoffea process FILESET``: a processor over a user fileset, no config file needed."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from adcoffea.cli.options import add_executor_arguments
from adcoffea.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea process``."""
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


def main(args: argparse.Namespace) -> int:
    """Process the fileset; write histograms and ``cutflow.json``; 3 if events were lost."""
    from adcoffea.config import RegionConfig, SelectionConfig, load_config
    from adcoffea.execution import run_processor
    from adcoffea.execution.allocator import tune_allocator
    from adcoffea.processing import make_processor, score_threads, write_processed
    from adcoffea.processors import PROCESSORS

    tune_allocator()  # this process is the command's: chunk memory is reused, not refaulted
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
    threads = score_threads(args.executor, workers=args.workers, scheduler=args.scheduler)
    if threads is not None:
        proc = dataclasses.replace(proc, score_threads=threads)
    from adcoffea.execution.manifest import begin_run, finish_run

    # the previous outputs stop counting now (manifest.json "running" until the last write)
    unit = begin_run(args.output, command="process")
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
    finish_run(unit, events_lost=rep.events_failed)  # the run's last write
    print(
        f"adcoffea process: {rep.events_processed} of {rep.events_total} events processed, "
        f"{rep.events_failed} failed ({len(rep.failures)} failures) in {rep.wall_time:.1f} s; "
        f"results in {args.output}/ (hists.pkl, hists.root, cutflow.json)"
    )
    code, message = rep.outcome("process", allow_failures=args.allow_failures)
    if message:  # events lost to failed inputs: say how many, and exit non-zero
        print(message, file=sys.stderr)
    return code
