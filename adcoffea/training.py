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


def train_models(
    cfg: AnalysisConfig,
    fileset: dict[str, Any],
    data_names: list[str],
    *,
    out_dir: Path,
    process_opts: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Extract features once with the processor, train every model without a bundle.

    The outlier and weakly supervised methods train on the data datasets only (as on real
    data). ANTELOPE's PFN embedding and the supervised classifier also read the signal
    templates (``datasets.signal``), labelled by sample, never by the truth of data events;
    without templates the supervised classifier learns the synthetic truth (a ceiling).

    Returns:
        label -> {"bundle": directory, "summary": dict}.
    """
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model
    from adcoffea.outputs import write_json
    from adcoffea.pipeline import columns_to_inputs, make_processor, process

    todo = [m for m in cfg.all_models if m.bundle is None]
    if not todo:
        return {}
    names = list(data_names)
    if any(m.method in SIGNAL_PRIOR_METHODS for m in todo):
        names += [d for d in cfg.datasets.signal if d not in names]
    proc = make_processor(
        cfg,
        collect_columns=True,
        collect_constituents=any(m.method in CONSTITUENT_METHODS for m in todo),
        regions=[RegionConfig(name="inclusive")],
    )
    run_out = process(cfg, {d: fileset[d] for d in names}, proc, **process_opts)
    inputs, truth, observables, dsets = columns_to_inputs(run_out.output["columns"])
    is_data = np.isin(dsets, data_names)
    is_template = np.isin(dsets, cfg.datasets.signal)
    observable = observables.get(_observable_name(cfg))

    out: dict[str, dict[str, Any]] = {}
    for model in todo:
        label = cfg.model_label(model)
        if model.method == "antelope":
            rows = is_data | is_template
            labels = is_template[rows].astype(np.int32)
        elif model.method == "supervised" and is_template.any():
            # as an analysis would: signal simulation against (background-dominated) data
            rows = is_data | is_template
            labels = is_template[rows].astype(np.int32)
        elif model.method == "supervised":
            # no signal template: the truth of the synthetic data (a ceiling, not a search)
            rows = is_data
            labels = truth[rows]
        else:
            rows, labels = is_data, None
        print(f"  training {label} ({model.method}) on {int(rows.sum())} events", flush=True)
        result = train_model(
            model.method,
            inputs.select(rows),
            config=model.train,
            features=model.features,
            hyperparameters=dict(model.hyperparameters),
            labels=labels,
            observable=None if observable is None else observable[rows],
            signal_region=model.signal_region,
            sidebands=model.sidebands,
        )
        bundle_dir = out_dir / "models" / label
        save_bundle(result.bundle, bundle_dir)
        write_json(bundle_dir.parent / f"{label}_history.json", result.history)
        _plot_history(result.history, out_dir / "plots" / f"loss_{label}.png")
        out[label] = {
            "bundle": bundle_dir,
            "summary": {
                "method": model.method,
                "bundle": str(bundle_dir),
                "n_train_events": int(rows.sum()),
                "datasets": sorted(set(dsets[rows].tolist())),
            },
        }
    return out


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
    """ROC/SIC on synthetic truth and the sculpting check, per model.

    Both use the data datasets only: the ROC compares the injected signal with the
    background in the same sample the search sees, and sculpting compares the background
    observable shape before and after cuts at fixed background efficiencies.
    """
    from adcoffea.models.evaluate import plot_roc, plot_sculpting, roc_sic, sculpting

    cols = {d: {k: v.value for k, v in c.items()} for d, c in columns.items() if d in data_names}
    if not cols:
        return {}
    truth = np.concatenate(
        [c.get("truth_label", np.zeros(len(c["mjj"]), np.int32)) for c in cols.values()]
    )
    obs_name = _observable_name(cfg)
    obs = np.concatenate([c[f"obs_{obs_name}"] for c in cols.values()])
    axis = getattr(cfg.histograms, "mt" if obs_name == "mt" else "mjj")
    edges = (
        np.asarray(axis.edges)
        if axis.edges is not None
        else np.linspace(axis.start, axis.stop, axis.bins + 1)
    )
    effs = sorted({r.efficiency for r in cfg.regions if r.efficiency} | {0.1, 0.01})
    out: dict[str, Any] = {"n_events": len(truth), "n_signal": int(truth.sum()), "models": {}}
    rocs = {}
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for model in cfg.all_models:
        label = cfg.model_label(model)
        key = f"score_{label}"
        if not all(key in c for c in cols.values()):
            continue
        score = np.concatenate([c[key] for c in cols.values()])
        res: dict[str, Any] = {"method": model.method}
        if 0 < truth.sum() < len(truth):
            roc = roc_sic(score, truth)
            rocs[label] = roc
            res["roc"] = {k: v for k, v in roc.to_dict().items() if k not in ("fpr", "tpr")}
        if (truth == 0).sum() > 0:
            sc = sculpting(obs, score, is_background=truth == 0, edges=edges, efficiencies=effs)
            d = sc.to_dict()
            res["sculpting"] = {
                k: d[k]
                for k in ("efficiencies", "thresholds", "js", "js_random", "chi2_flat", "ndf")
            }
            plot_sculpting(sc, plots / f"sculpting_{label}.png", xlabel=obs_name)
        out["models"][label] = res
    if rocs:
        plot_roc(rocs, plots / "roc_sic.png")
    return out


def cli_arguments(parser) -> None:
    parser.add_argument("config", type=Path, help="analysis YAML with a 'model' section")
    parser.add_argument("--output", type=Path, help="override the output directory")
    parser.add_argument("--executor", choices=["iterative", "futures", "dask"])


def cli_main(args) -> int:
    from adcoffea.config import load_config
    from adcoffea.errors import ConfigError
    from adcoffea.pipeline import data_datasets, resolve_fileset

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
        process_opts={"executor": args.executor},
    )
    for label, r in res.items():
        print(f"model bundle {label!r} written to {r['bundle']}")
    return 0
