"""``adcoffea train CONFIG``: train the anomaly-detection models of a config."""

from __future__ import annotations

import argparse
from pathlib import Path

from adcoffea.cli.options import add_executor_arguments, executor_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea train``."""
    parser.add_argument("config", type=Path, help="analysis YAML with a 'model' section")
    parser.add_argument("--output", type=Path, help="override the output directory")
    add_executor_arguments(parser, from_config=True)


def main(args: argparse.Namespace) -> int:
    """Train every model of the config without a bundle; write the bundles."""
    from adcoffea.config import load_config
    from adcoffea.datasets import data_datasets, resolve_fileset
    from adcoffea.errors import ConfigError
    from adcoffea.learn import train_models

    cfg = load_config(args.config)
    if not cfg.all_models:
        raise ConfigError(f"{args.config}: no 'model'/'models' section to train")
    out_dir = Path(args.output or cfg.output)
    fileset = resolve_fileset(cfg)
    res = train_models(
        cfg,
        fileset,
        data_datasets(cfg, fileset),
        out_dir=out_dir,
        process_opts=executor_options(args),
    )
    for label, r in res.items():
        print(f"model bundle {label!r} written to {r.bundle}")
    return 0
