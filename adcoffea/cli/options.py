"""Options shared by several commands, declared once."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from adcoffea.config import ExecutorConfig

#: --help of the histogram file argument (a pickle can carry code: issue 12, item 13)
HISTFILE_HELP = (
    "histograms: a ROOT file (preferred) or a pickle {name: hist.Hist} written by adcoffea "
    "(hists.pkl). Unpickling can run code: pickles are read with a loader that accepts only "
    "histogram and numpy classes, but pass only pickles you produced yourself"
)

#: the keyword arguments of :func:`adcoffea.processing.run_configured` these options set
EXECUTOR_OPTIONS = ("executor", "workers", "scheduler", "chunksize", "retries", "strict", "resume")


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor options of parsed ``args`` (see :func:`add_executor_arguments`)."""
    return {key: getattr(args, key) for key in EXECUTOR_OPTIONS}


def add_executor_arguments(parser: argparse.ArgumentParser, *, from_config: bool = False) -> None:
    """The executor options of ``adcoffea process`` and ``adcoffea run``.

    Args:
        parser: the command's parser.
        from_config: the defaults are the config's ``executor`` block (``run``): an option
            left out is ``None`` and the config decides. Otherwise the defaults are
            :class:`~adcoffea.config.ExecutorConfig`'s (``process``, which has no config).
    """
    defaults = ExecutorConfig()

    def default(key: str) -> Any:
        return None if from_config else getattr(defaults, key)

    def note(key: str) -> str:
        return f" (default: the config's executor.{key})" if from_config else ""

    executors = get_args(ExecutorConfig.model_fields["name"].annotation)
    parser.add_argument(
        "--executor", choices=executors, default=default("name"), help="executor" + note("name")
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default("workers"),
        help="processes (futures) or LocalCluster workers (dask)" + note("workers"),
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="join an existing dask scheduler, e.g. tcp://host:8786 (dask)" + note("scheduler"),
    )
    parser.add_argument(
        "--chunksize",
        type=int,
        default=default("chunksize"),
        help="entries per chunk" + note("chunksize"),
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=default("retries"),
        help="retries per chunk" + note("retries"),
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=default("strict"),
        help="stop at the first failed file" + note("strict"),
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=default("resume"),
        help="reuse the chunk checkpoints of an interrupted run" + note("resume"),
    )
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        default=default("allow_failures"),
        help="exit 0 even if input files or chunks failed (default: exit 3, naming the events "
        "lost)" + note("allow_failures"),
    )
