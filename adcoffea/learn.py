"""The train stage of a search: a config's anomaly-detection models, trained and evaluated.

Glue between a config and :mod:`adcoffea.models` (which holds the methods themselves).

Features for training are extracted by the search processor itself (its column tables), so
the model sees exactly the features it will be scored on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.config import AnalysisConfig, RegionConfig
from adcoffea.models.methods import CONSTITUENT_METHODS, SIGNAL_PRIOR_METHODS
from adcoffea.results import EvaluationResult, ModelEvaluation, TrainedModel

log = logging.getLogger(__name__)


def train_models(
    cfg: AnalysisConfig,
    fileset: dict[str, Any],
    data_names: list[str],
    *,
    out_dir: Path,
    process_opts: dict[str, Any],
) -> dict[str, TrainedModel]:
    """Extract features once with the processor, train every model without a bundle.

    The outlier and weakly supervised methods train on the data datasets only (as on real
    data). ANTELOPE's PFN embedding and the supervised classifier also read the signal
    templates (``datasets.signal``), labelled by sample, never by the truth of data events;
    without templates the supervised classifier learns the synthetic truth (a ceiling).

    Returns:
        label -> the model trained (its bundle is written under ``out_dir/models/label``).
    """
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model
    from adcoffea.outputs import write_json
    from adcoffea.plots import save
    from adcoffea.plots.scores import plot_loss
    from adcoffea.processing import (
        columns_to_inputs,
        make_processor,
        observable_axes,
        run_configured,
    )

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
        variations=False,
    )
    run_out = run_configured(cfg, {d: fileset[d] for d in names}, proc, **process_opts)
    inputs, truth, observables, dsets = columns_to_inputs(run_out.output["columns"])
    is_data = np.isin(dsets, data_names)
    is_template = np.isin(dsets, cfg.datasets.signal)
    observable = observables.get(observable_axes(cfg)[0].name)

    out: dict[str, TrainedModel] = {}
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
        log.info("  training %s (%s) on %d events", label, model.method, int(rows.sum()))
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
        save(plot_loss(result.history), out_dir / "plots" / f"loss_{label}.png", dpi=110)
        out[label] = TrainedModel(
            label=label,
            method=model.method,
            bundle=bundle_dir,
            n_train_events=int(rows.sum()),
            datasets=tuple(sorted(set(dsets[rows].tolist()))),
        )
    return out


def evaluate_run(
    cfg: AnalysisConfig, columns: dict[str, Any], data_names: list[str], *, out_dir: Path
) -> EvaluationResult | None:
    """ROC/SIC on synthetic truth and the sculpting check, per model.

    Both use the data datasets only: the ROC compares the injected signal with the
    background in the same sample the search sees, and sculpting compares the background
    observable shape before and after cuts at fixed background efficiencies.

    Returns:
        the evaluation, or None when no data dataset was processed.
    """
    from adcoffea.models.evaluate import roc_sic, sculpting
    from adcoffea.plots import save
    from adcoffea.plots.scores import plot_roc, plot_sculpting
    from adcoffea.processing import observable_axes

    cols = {d: {k: v.value for k, v in c.items()} for d, c in columns.items() if d in data_names}
    if not cols:
        return None
    truth = np.concatenate(
        [c.get("truth_label", np.zeros(len(c["mjj"]), np.int32)) for c in cols.values()]
    )
    axis = observable_axes(cfg)[0]
    obs_name = axis.name
    obs = np.concatenate([c[f"obs_{obs_name}"] for c in cols.values()])
    edges = np.asarray(axis.edges)
    effs = sorted({r.efficiency for r in cfg.regions if r.efficiency} | {0.1, 0.01})
    models: dict[str, ModelEvaluation] = {}
    rocs = {}
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for model in cfg.all_models:
        label = cfg.model_label(model)
        key = f"score_{label}"
        if not all(key in c for c in cols.values()):
            continue
        score = np.concatenate([c[key] for c in cols.values()])
        roc = sc = None
        if 0 < truth.sum() < len(truth):
            roc = rocs[label] = roc_sic(score, truth)
        if (truth == 0).sum() > 0:
            sc = sculpting(obs, score, is_background=truth == 0, edges=edges, efficiencies=effs)
            fig = plot_sculpting(sc, xlabel=obs_name)
            save(fig, plots / f"sculpting_{label}.png", bbox_inches="tight")
        models[label] = ModelEvaluation(method=model.method, roc=roc, sculpting=sc)
    if rocs:
        save(plot_roc(rocs), plots / "roc_sic.png", bbox_inches="tight")
    return EvaluationResult(n_events=len(truth), n_signal=int(truth.sum()), models=models)
