"""The ``adcoffea`` command line.

One module per sub-command in this package (``adcoffea.cli.<command>``), each providing
``add_arguments(parser)`` and ``main(args) -> int``. A command's module is imported only
when that command runs, so ``adcoffea --help`` stays fast and TensorFlow (zfit) loads only
for fits that need it. The command line is the only place that imports
:mod:`adcoffea.pipeline`; the library never imports the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TextIO

from adcoffea.errors import AdcoffeaError

#: name -> one-line help; the command's code is in ``adcoffea.cli.<name>``
COMMANDS: dict[str, str] = {
    "generate": "generate synthetic LHCO-like NanoAOD files",
    "process": "run a processor over a fileset, write histograms",
    "train": "train the anomaly-detection model of a config",
    "evaluate": "ROC/SIC and sculpting checks of a bundle",
    "fit": "background fit of a saved histogram",
    "limits": "CLs limits with pyhf from saved histograms",
    "bumphunt": "BumpHunter scan with look-elsewhere",
    "run": "run a whole analysis from its YAML config",
}


class _StreamHandler(logging.StreamHandler):
    """A handler writing to the *current* ``sys.stdout``/``sys.stderr`` (which tests and
    notebooks replace), never to a stream captured when it was installed."""

    def __init__(self, name: str) -> None:
        self._stream_name = name
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _is_progress(record: logging.LogRecord) -> bool:
    return record.name.startswith("adcoffea") and record.levelno == logging.INFO


@contextlib.contextmanager
def terminal_logging(verbose: int = 0) -> Iterator[None]:
    """Route the library's log records to the terminal while the block runs.

    The only printing path of the library: progress lines (INFO records of ``adcoffea.*``,
    e.g. the stage timer) go to stdout as plain lines; warnings, errors and debug records go
    to stderr with their origin. ``-v`` adds adcoffea's debug records and other libraries'
    INFO records, ``-vv`` everything. On exit the handlers and levels are as before, so a
    program (or a test) that calls :func:`main` keeps its own logging.
    """
    root, package = logging.getLogger(), logging.getLogger("adcoffea")
    levels = root.level, package.level
    out, err = _StreamHandler("stdout"), _StreamHandler("stderr")
    out.addFilter(_is_progress)
    out.setFormatter(logging.Formatter("%(message)s"))
    err.addFilter(lambda record: not _is_progress(record))
    err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for h in (out, err):
        root.addHandler(h)
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    package.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        for h in (out, err):
            root.removeHandler(h)
        root.setLevel(levels[0])
        package.setLevel(levels[1])


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"adcoffea.cli.{name}")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser, with the options of the command named in ``argv`` only."""
    from adcoffea import __version__

    parser = argparse.ArgumentParser(prog="adcoffea", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"adcoffea {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks for user errors too"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen command's module is imported (its parser may need its imports).
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = _module(name)
            module.add_arguments(p)
            p.set_defaults(_main=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adcoffea`` console script."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with terminal_logging(args.verbose):
            return int(args._main(args) or 0)
    except AdcoffeaError as err:
        if args.debug:
            raise
        print(f"adcoffea {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adcoffea: interrupted", file=sys.stderr)
        return 130
