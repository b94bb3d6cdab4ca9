"""The ``adcoffea`` command line.

Each sub-command lives with the code it drives: the module named in ``COMMANDS`` provides
``add_arguments(parser)`` and ``main(args) -> int`` under the given prefix. Modules are
imported only when their command runs, so ``adcoffea --help`` stays fast and TensorFlow
(zfit) loads only for fits that need it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from adcoffea.errors import AdcoffeaError

#: name -> (module, function prefix, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("adcoffea.synthetic", "cli", "generate synthetic LHCO-like NanoAOD files"),
    "process": ("adcoffea.pipeline", "process", "run a processor over a fileset, write histograms"),
    "train": ("adcoffea.training", "cli", "train the anomaly-detection model of a config"),
    "evaluate": ("adcoffea.models.evaluate", "cli", "ROC/SIC and sculpting checks of a bundle"),
    "fit": ("adcoffea.fits.commands", "fit", "background fit of a saved histogram"),
    "limits": ("adcoffea.fits.commands", "limits", "CLs limits with pyhf from saved histograms"),
    "bumphunt": ("adcoffea.fits.commands", "bumphunt", "BumpHunter scan with look-elsewhere"),
    "run": ("adcoffea.pipeline", "cli", "run a whole analysis from its YAML config"),
}


def _module(name: str):
    module_name, prefix, _ = COMMANDS[name]
    return importlib.import_module(module_name), prefix


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
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
    for name, (_, _, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module, prefix = _module(name)
            getattr(module, f"{prefix}_arguments")(p)
            p.set_defaults(_main=getattr(module, f"{prefix}_main"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adcoffea`` console script."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._main(args) or 0)
    except AdcoffeaError as err:
        if args.debug:
            raise
        print(f"adcoffea {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adcoffea: interrupted", file=sys.stderr)
        return 130
