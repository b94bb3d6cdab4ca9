"""The training loop and bundle assembly shared by every trainer (no method logic here).

:mod:`adcoffea.models.train` (unsupervised and supervised methods), :mod:`adcoffea.models.weak`
(CWoLa, CATHODE) and :mod:`adcoffea.models.classifiers` (k-fold classifier ensembles) all
import from this module and never from each other's privates, so the imports run one way:
``train -> weak -> classifiers -> loop``.

Example:
    >>> import numpy as np, torch
    >>> from adcoffea.config import TrainConfig
    >>> net = torch.nn.Linear(2, 1)
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    >>> hist = fit(net, lambda m, b, g: m(b[0]).pow(2).mean(), [x],
    ...            config=TrainConfig(epochs=2, batch_size=32), seed=0)
    >>> len(hist["val_loss"])
    2
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from adcoffea.config import TrainConfig
from adcoffea.features import ModelInputs
from adcoffea.models.bundle import BundleMetadata, ModelBundle, data_hash

#: A cut at calibrated score 0.5 keeps this fraction of the training background for the
#: exponential calibration 1 - exp(-raw / scale) (scale = raw quantile / ln 2).
CALIBRATION_EFFICIENCY = 0.1


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`adcoffea.models.train.train_model`.

    Attributes:
        bundle: the trained model.
        history: loss curves per epoch (e.g. {"train_loss": [...], "val_loss": [...]}; weak
            supervision prefixes each fold/member, e.g. "seed1017/val_loss").
        out_of_fold_scores: weak supervision: calibrated score of every input event from the
            fold model that did not train on it; None for other methods.
        diagnostics: method facts worth reporting (e.g. CATHODE's sampled-vs-real sideband
            AUC); plain JSON values.
    """

    bundle: ModelBundle
    history: dict[str, list[float]]
    out_of_fold_scores: np.ndarray | None = None
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": self.bundle.metadata.to_dict(),
            "history": {k: [float(v) for v in vals] for k, vals in self.history.items()},
            "diagnostics": dict(self.diagnostics),
        }


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, list[torch.Tensor], torch.Generator], torch.Tensor],
    arrays: Sequence[np.ndarray],
    *,
    config: TrainConfig,
    seed: int,
    progress: bool = False,
    description: str = "training",
    epochs: int | None = None,
) -> dict[str, list[float]]:
    """Minibatch Adam with a seeded validation split and early stopping on the validation loss.

    ``loss_fn(model, batch, generator)`` returns the mean loss of a batch (a list of tensors
    sliced from ``arrays`` in the same order). The best-validation weights are restored.
    """
    dev = device()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev_gen = torch.Generator(device=dev).manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    perm = rng.permutation(n)
    n_val = max(1, round(config.validation_fraction * n)) if n > 1 else 0
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    tensors = [torch.as_tensor(np.ascontiguousarray(a)).to(dev) for a in arrays]
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    n_epochs = epochs or config.epochs
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(description, total=n_epochs)
    try:
        for _ in range(n_epochs):
            model.train()
            order = torch.as_tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)]
            total, count = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                idx = order[start : start + config.batch_size].to(dev)
                loss = loss_fn(model, [t[idx] for t in tensors], dev_gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            history["train_loss"].append(total / max(count, 1))
            model.eval()
            vloss = _eval_loss(model, loss_fn, tensors, val_idx, config.batch_size, dev, dev_gen)
            history["val_loss"].append(vloss)
            if vloss < best - 1e-7:
                best, best_state, stale = vloss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
            if bar is not None:
                bar.update(task, advance=1, description=f"{description} val={vloss:.4g}")
            if stale > config.patience:
                break
    finally:
        if bar is not None:
            bar.stop()
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    return history


def _eval_loss(model, loss_fn, tensors, idx, batch_size, dev, gen) -> float:
    if len(idx) == 0:
        return float("nan")
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            sel = torch.as_tensor(idx[start : start + batch_size]).to(dev)
            total += float(loss_fn(model, [t[sel] for t in tensors], gen)) * len(sel)
    return total / len(idx)


def spec(arch: str, hp: dict[str, Any]) -> dict[str, Any]:
    """The bundle entry of one network: its architecture name and JSON hyperparameters."""
    return {"architecture": arch, "hyperparameters": hp}


def quantile_table(background_scores: np.ndarray) -> dict[str, list[float]]:
    """Calibrated-score thresholds at background efficiencies down to ~10/N (log spaced)."""
    s = np.asarray(background_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    lo = min(1.0, max(1e-5, 10.0 / max(len(s), 1)))
    effs = np.unique(np.concatenate([np.geomspace(lo, 1.0, 61), [0.5]]))
    thr = np.quantile(s, 1.0 - effs) if len(s) else np.zeros_like(effs)
    return {"efficiency": effs.tolist(), "threshold": thr.tolist()}


def exp_calibration(raw_background: np.ndarray, scale: float | None = None) -> dict[str, Any]:
    """Calibration 1 - exp(-raw/scale); default scale puts 0.5 at the 90 % background quantile."""
    if scale is None:
        q = float(np.quantile(raw_background, 1.0 - CALIBRATION_EFFICIENCY))
        scale = q / math.log(2.0) if q > 0 else 1.0
    return {"kind": "exp", "scale": float(scale)}


def finish_bundle(
    method: str,
    networks: dict[str, nn.Module],
    specs: dict[str, dict[str, Any]],
    inputs: ModelInputs,
    background: np.ndarray,
    *,
    calibration: dict[str, Any] | None,
    config: TrainConfig,
    hash_arrays: Sequence[np.ndarray | None],
    calibration_scale: float | None = None,
    **meta: Any,
) -> ModelBundle:
    """Build the bundle, set the calibration on the background and store the quantile table.

    ``background`` indexes the rows of ``inputs`` whose scores define the calibration (None:
    exp scale at their 90 % quantile) and the efficiency -> threshold table.
    """
    md = BundleMetadata(
        method=method,
        networks=specs,
        calibration=calibration or {"kind": "sigmoid"},
        seed=config.seed,
        training_data_hash=data_hash(*hash_arrays),
        n_training_events=len(inputs),
        **meta,
    )
    bundle = ModelBundle(md, networks)  # our own object: updating its metadata is safe
    raw = bundle.raw_score(inputs.select(background))
    if calibration is None:
        bundle.metadata = dataclasses.replace(
            md, calibration=exp_calibration(raw, calibration_scale)
        )
    bundle.metadata = dataclasses.replace(
        bundle.metadata, score_quantiles=quantile_table(bundle.calibrate(raw))
    )
    return bundle
