"""``adcoffea evaluate``: ROC/SIC and the sculpting check of a model bundle."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea evaluate``."""
    parser.add_argument("--bundle", required=True, help="model bundle directory")
    parser.add_argument("--inputs", required=True, help="inputs .npz (adcoffea.models.io)")
    parser.add_argument("--labels", default="labels", help="extra array with truth labels")
    parser.add_argument("--observable", default="mjj", help="high-level column for sculpting")
    parser.add_argument("--edges", type=float, nargs="+", default=None, help="observable bins")
    parser.add_argument("--efficiencies", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--out", default="evaluation", help="output directory")


def main(args: argparse.Namespace) -> int:
    """Score the inputs with the bundle; write ``evaluation.json`` and plots."""
    import numpy as np

    from adcoffea.errors import InputFileError
    from adcoffea.models.bundle import load_bundle
    from adcoffea.models.evaluate import roc_sic, sculpting
    from adcoffea.models.io import load_inputs
    from adcoffea.outputs import write_json
    from adcoffea.plots import save
    from adcoffea.plots.scores import plot_roc, plot_sculpting

    bundle = load_bundle(args.bundle)
    inputs, extra = load_inputs(args.inputs)
    if args.labels not in extra:
        raise InputFileError(args.inputs, f"no truth labels 'extra/{args.labels}'")
    labels = extra[args.labels].astype(bool)
    scores = bundle.score(inputs)
    roc = roc_sic(scores, labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"bundle": str(args.bundle), "roc": roc.to_dict()}
    if args.observable in inputs.high_level:
        obs = inputs.high_level[args.observable]
        edges = args.edges or np.quantile(obs[~labels], np.linspace(0, 1, 31)).tolist()
        sc = sculpting(
            obs, scores, is_background=~labels, edges=edges, efficiencies=args.efficiencies
        )
        report["sculpting"] = sc.to_dict()
        save(plot_sculpting(sc), out / "sculpting.png", bbox_inches="tight")
    save(plot_roc({bundle.metadata.method: roc}), out / "roc.png", bbox_inches="tight")
    write_json(out / "evaluation.json", report)
    print(f"{bundle.metadata.method}: AUC {roc.auc:.3f}  max SIC {roc.max_sic:.2f}  -> {out}")
    return 0
