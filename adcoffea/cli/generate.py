"""``adcoffea generate``: synthetic LHCO-like NanoAOD files and their fileset.

``--engine fast`` (default) is :mod:`adcoffea.synthetic`; ``--engine pythia`` showers with
Pythia 8 and clusters with FastJet (:mod:`adcoffea.synthetic.pythia`), same schema.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from adcoffea.errors import ConfigError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea generate``."""
    from adcoffea.synthetic import DEFAULT_PARAMS

    parser.add_argument("--process", required=True, choices=sorted(DEFAULT_PARAMS))
    parser.add_argument("--events", type=int, required=True, help="number of events")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--files", type=int, default=1, help="number of output files")
    parser.add_argument("--name", default=None, help="sample name (default: process)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="physics parameter (GeV), repeatable",
    )
    parser.add_argument(
        "--mass", type=float, default=None, help="parent mass (GeV): m_wprime, m_zprime or m_y"
    )
    parser.add_argument(
        "--engine",
        choices=("fast", "pythia"),
        default="fast",
        help="fast: LHCO-fitted jets (default); pythia: Pythia 8 + FastJet (adcoffea[pythia])",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes writing the files in parallel, one core each (at most --files; the "
        "output does not depend on it)",
    )


def main(args: argparse.Namespace) -> int:
    """Write the files and ``fileset.json`` in ``--out``."""
    from adcoffea.outputs import write_json
    from adcoffea.synthetic import PARENT_PARAM, fileset_entries, generate

    params: dict[str, float] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key.strip()] = float(value)
        except ValueError as err:
            raise ConfigError(f"--param {key.strip()}: not a number: {value!r}") from err
    if args.mass is not None:
        if args.process not in PARENT_PARAM:
            raise ConfigError(f"--mass: process {args.process!r} has no parent mass")
        params[PARENT_PARAM[args.process]] = args.mass
    t0 = time.perf_counter()
    kwargs = dict(n_events=args.events, seed=args.seed, out_dir=args.out, n_files=args.files,
                  name=args.name, params=params)  # fmt: skip
    if args.engine == "pythia":
        from adcoffea.synthetic.pythia import generate_pythia

        sample = generate_pythia(args.process, workers=args.workers, **kwargs)
    else:
        sample = generate(args.process, workers=args.workers, **kwargs)
    dt = time.perf_counter() - t0
    # add to (or replace this sample in) an existing fileset.json in the same directory
    fs_path = Path(args.out) / "fileset.json"
    fileset: dict = {}
    if fs_path.exists():
        try:
            fileset = json.loads(fs_path.read_text())
        except json.JSONDecodeError:
            log.warning("%s is not valid JSON; overwriting it", fs_path)
    fileset.update(fileset_entries([sample]))
    write_json(fs_path, fileset)
    print(
        f"generated {sample.n_events} {sample.process} events ({args.engine} engine, seed "
        f"{sample.seed}) in {dt:.1f} s ({sample.n_events / dt:.1f} events/s) "
        f"-> {len(sample.files)} file(s) in {args.out}; fileset: {fs_path}"
    )
    if sample.params:
        print("params: " + ", ".join(f"{k}={v:g}" for k, v in sample.params.items()))
    return 0
