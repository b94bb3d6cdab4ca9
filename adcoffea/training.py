"""Glue between a config and ``adcoffea.models``: train on processor features, evaluate.

Features for training are extracted by the search processor itself (its column tables), so
the model sees exactly the features it will be scored on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.config import AnalysisConfig, RegionConfig

CONSTITUENT_METHODS = ("antelope", "vrnn")
#: methods that learn from a labelled signal sample (a signal prior) besides the data
SIGNAL_PRIOR_METHODS = ("antelope", "supervised")


def _observable_name(cfg: AnalysisConfig) -> str:
    return {"dijet": "mjj", "semivisible": "mt", "yxh": "mjj"}[cfg.analysis]


def train_from_config(
    cfg: AnalysisConfig,
    fileset: dict[str, Any],
    data_names: list[str],
    *,
    out_dir: Path,
    process_opts: dict[str, Any],
) -> dict[str, Any]:
    """Extract features with the processor, train ``cfg.model``, save the bundle.

    The outlier and weakly supervised methods train on the data datasets only (as on real
    data). ANTELOPE's PFN embedding and the supervised ceiling also read the signal
    templates (``datasets.signal``), labelled by sample, never by the truth of data events.
    """
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model
    from adcoffea.outputs import write_json
    from adcoffea.pipeline import columns_to_inputs, make_processor, process

    model = cfg.model
    assert model is not None
    proc = make_processor(
        cfg,
        collect_columns=True,
        collect_constituents=model.method in CONSTITUENT_METHODS,
        regions=[RegionConfig(name="inclusive")],
    )
    names = list(data_names)
    if model.method in SIGNAL_PRIOR_METHODS:
        names += [d for d in cfg.datasets.signal if d not in names]
    run_out = process(cfg, {d: fileset[d] for d in names}, proc, **process_opts)
    inputs, truth, observables, dsets = columns_to_inputs(run_out.output["columns"])

    if model.method == "antelope":
        labels = np.isin(dsets, cfg.datasets.signal).astype(np.int32)
    elif model.method == "supervised":
        labels = truth
    else:
        labels = None
    result = train_model(
        model.method,
        inputs,
        config=model.train,
        features=model.features,
        hyperparameters=dict(model.hyperparameters),
        labels=labels,
        observable=observables.get(_observable_name(cfg)),
        signal_region=model.signal_region,
        sidebands=model.sidebands,
    )
    bundle_dir = out_dir / "model"
    save_bundle(result.bundle, bundle_dir)
    write_json(out_dir / "training_history.json", result.history)
    _plot_history(result.history, out_dir / "plots" / "loss_curves.png")
    summary = {
        "method": model.method,
        "bundle": str(bundle_dir),
        "n_train_events": len(inputs),
        "datasets": names,
        "training_run": run_out.report.to_dict(),
    }
    return {"bundle": bundle_dir, "summary": summary}


def _plot_history(history: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    curves = history if isinstance(history, dict) else {}
    for name, values in curves.items():
        if isinstance(values, (list, tuple)) and values and np.isscalar(values[0]):
            ax.plot(np.arange(1, len(values) + 1), values, label=str(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_run(
    cfg: AnalysisConfig, columns: dict[str, Any], data_names: list[str], *, out_dir: Path
) -> dict[str, Any]:
    """ROC/SIC on synthetic truth and the sculpting check of each score region.

    Both use the data datasets only: the ROC compares the injected signal with the
    background in the same sample the search sees, and sculpting compares the background
    observable shape before and after each anomaly cut.
    """
    from adcoffea.models.evaluate import roc_sic, sculpting

    cols = {d: {k: v.value for k, v in c.items()} for d, c in columns.items() if d in data_names}
    if not cols or not all("score" in c for c in cols.values()):
        return {}
    score = np.concatenate([c["score"] for c in cols.values()])
    truth = np.concatenate(
        [c.get("truth_label", np.zeros(len(c["score"]), np.int32)) for c in cols.values()]
    )
    obs_name = _observable_name(cfg)
    obs = np.concatenate([c[f"obs_{obs_name}"] for c in cols.values()])
    out: dict[str, Any] = {"n_events": len(score), "n_signal": int(truth.sum())}
    if 0 < truth.sum() < len(truth):
        roc = roc_sic(score, truth)
        out["roc"] = {k: v for k, v in roc.to_dict().items() if k not in ("fpr", "tpr", "sic")}
        _plot_roc(roc, out_dir / "plots" / "roc_sic.png")
    axis = getattr(cfg.histograms, "mt" if obs_name == "mt" else "mjj")
    edges = (
        np.asarray(axis.edges)
        if axis.edges is not None
        else np.linspace(axis.start, axis.stop, axis.bins + 1)
    )
    effs = sorted({r.efficiency for r in cfg.regions if r.efficiency} | {0.1, 0.01})
    bkg = truth == 0
    if bkg.sum() > 0:
        sc = sculpting(obs, score, is_background=bkg, edges=edges, efficiencies=effs)
        out["sculpting"] = sc.to_dict()
    return out


def _plot_roc(roc, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    fpr, tpr = np.asarray(roc.fpr), np.asarray(roc.tpr)
    a1.plot(fpr, tpr, label=f"AUC = {roc.auc:.3f}")
    a1.plot([0, 1], [0, 1], "k:", lw=1)
    a1.set_xlabel("background efficiency (FPR)")
    a1.set_ylabel("signal efficiency (TPR)")
    a1.legend()
    ok = fpr > 0
    a2.plot(tpr[ok], tpr[ok] / np.sqrt(fpr[ok]), label=f"max SIC = {roc.max_sic:.2f}")
    a2.axhline(1.0, color="k", ls=":", lw=1)
    a2.set_xlabel("signal efficiency (TPR)")
    a2.set_ylabel(r"SIC = TPR/$\sqrt{FPR}$")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cli_arguments(parser) -> None:
    parser.add_argument("config", type=Path, help="analysis YAML with a 'model' section")
    parser.add_argument("--output", type=Path, help="override the output directory")
    parser.add_argument("--executor", choices=["iterative", "futures", "dask"])


def cli_main(args) -> int:
    from adcoffea.config import load_config
    from adcoffea.errors import ConfigError
    from adcoffea.pipeline import data_datasets, resolve_fileset

    cfg = load_config(args.config)
    if cfg.model is None:
        raise ConfigError(f"{args.config}: no 'model' section to train")
    out_dir = Path(args.output or cfg.output)
    fileset = resolve_fileset(cfg)
    res = train_from_config(
        cfg,
        fileset,
        data_datasets(cfg, fileset),
        out_dir=out_dir,
        process_opts={"executor": args.executor},
    )
    print(f"model bundle written to {res['bundle']}")
    return 0
