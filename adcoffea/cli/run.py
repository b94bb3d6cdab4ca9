"""``adcoffea run CONFIG``: a whole analysis from its YAML config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adcoffea.cli.options import add_executor_arguments, executor_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea run``."""
    parser.add_argument("config", type=Path, help="analysis YAML (see configs/)")
    add_executor_arguments(parser, from_config=True)
    parser.add_argument("--output", type=Path, help="override the output directory")
    parser.add_argument(
        "--events-scale",
        type=float,
        default=None,
        help="scale every synthetic sample's event count (quick looks: 0.1)",
    )
    parser.add_argument("--no-statistics", action="store_true", help="stop after the histograms")


def main(args: argparse.Namespace) -> int:
    """Run the analysis of ``args.config``."""
    from adcoffea.config import load_config
    from adcoffea.datasets import scale_events
    from adcoffea.execution.allocator import tune_allocator
    from adcoffea.pipeline import run

    tune_allocator()  # this process is the command's: chunk memory is reused, not refaulted
    cfg = load_config(args.config)
    if args.events_scale is not None:
        cfg = scale_events(cfg, args.events_scale)
    res = run(
        cfg,
        **executor_options(args),
        output=args.output,
        statistics=not args.no_statistics,
    )
    allow = cfg.executor.allow_failures if args.allow_failures is None else args.allow_failures
    code, message = res.report.outcome("run", allow_failures=allow)
    if message:  # events lost to failed inputs: say how many, and exit non-zero
        print(message, file=sys.stderr)
    return code
