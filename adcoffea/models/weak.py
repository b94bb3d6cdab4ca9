"""Weak supervision: CWoLa hunting and a CATHODE-style variant, with k-fold scoring.

Both train, for one signal-region (SR) window in mjj, a classifier whose optimum is the
likelihood ratio data/background in the SR:

* **CWoLa hunting** (Collins, Howe, Nachman 2018): SR events (label 1) versus the sidebands
  (label 0). Works when the features are independent of mjj.
* **CATHODE** (Hallin et al. 2022): SR events versus background *sampled* in the SR from a
  conditional density p(x | mjj) trained in the sidebands and interpolated into the SR.
  The density is our own small conditional masked autoregressive flow
  (:class:`adcoffea.models.nets.ConditionalMAF`, affine, per-dimension conditioners) on the
  CATHODE logit preprocessing, so no extra dependency (zuko) is needed; the flow is used only
  in training and does not enter the bundle.

Every event is assigned a fold by a hash of its event number (:func:`fold_of`); the model of
fold i is trained on the other folds (its validation split for early stopping is drawn from
those folds too, i.e. nested), so an event is only ever scored by models that never saw it —
during training (out-of-fold scores) and in any later processing of the same events.
Several ensemble members per fold, with different seeds, are averaged in logit space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from adcoffea.config import TrainConfig
from adcoffea.errors import ConfigError
from adcoffea.features import ModelInputs
from adcoffea.models import nets
from adcoffea.models.bundle import fold_of
from adcoffea.models.preprocessing import LogitScaler, Standardizer


def region_masks(
    observable: np.ndarray, signal_region: tuple[float, float], sidebands: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (in SR, in sidebands) for SR [lo, hi) and sidebands [sb_lo, lo) ∪ [hi, sb_hi)."""
    lo, hi = signal_region
    sb_lo, sb_hi = sidebands
    if not sb_lo <= lo < hi <= sb_hi:
        raise ConfigError(
            f"model.sidebands {tuple(sidebands)} must enclose model.signal_region "
            f"{tuple(signal_region)}"
        )
    m = np.asarray(observable, dtype=np.float64)
    in_sr = (m >= lo) & (m < hi)
    in_sb = ((m >= sb_lo) & (m < lo)) | ((m >= hi) & (m < sb_hi))
    return in_sr, in_sb


def kfold_train(
    folds: np.ndarray,
    k: int,
    ensemble: int,
    train_fn: Callable[[np.ndarray, int], nn.Module],
    *,
    seed: int,
) -> dict[str, nn.Module]:
    """Train ``ensemble`` models per fold; fold i's models see only rows with ``folds != i``.

    ``train_fn(train_rows, seed)`` trains one model on the given row indices. Returns networks
    named ``fold{i}_member{j}`` (the names the bundle scores with).
    """
    out: dict[str, nn.Module] = {}
    for i in range(k):
        rows = np.flatnonzero(folds != i)
        for j in range(ensemble):
            out[f"fold{i}_member{j}"] = train_fn(rows, seed + 1000 * i + 17 * j)
    return out


#: default early-stopping patience of the weakly supervised classifiers
WEAK_PATIENCE = 10


def train_weak(
    method: str,
    inputs: ModelInputs,
    *,
    config: TrainConfig,
    features: list[str],
    hyperparameters: dict[str, Any],
    observable: np.ndarray,
    signal_region: tuple[float, float],
    sidebands: tuple[float, float],
    progress: bool = True,
):
    """CWoLa or CATHODE k-fold training; see :func:`adcoffea.models.train.train_model`.

    Hyperparameters: ``hidden`` classifier layers (default [64, 64, 64]); CATHODE:
    ``flow_layers`` 6, ``flow_hidden`` [64, 64], ``flow_epochs`` (default ``config.epochs``),
    ``flow_learning_rate`` 1e-3, ``oversample`` 4 (sampled background per SR event).
    """
    from adcoffea.models.train import TrainResult, _finish, _spec, fit

    if inputs.event is None:
        raise ConfigError(f"method {method!r} needs event numbers for its k-fold layout")
    hp = hyperparameters
    if "patience" not in config.model_fields_set:
        # SR-vs-SB labels are nearly random: the validation loss is flat and noisy for
        # several epochs before the signal is learnt, and a short patience stops before
        # it (compare `benchmarks/ad_methods.py --patience 4` and `--patience 10`).
        config = config.model_copy(update={"patience": WEAK_PATIENCE})
    k, ens = config.k_folds, config.ensemble
    in_sr, in_sb = region_masks(observable, signal_region, sidebands)
    if in_sr.sum() < 10 * k or in_sb.sum() < 10 * k:
        raise ConfigError(
            f"method {method!r}: too few events in the signal region ({in_sr.sum()}) or "
            f"sidebands ({in_sb.sum()}) for {k} folds"
        )
    x_all = inputs.matrix(features)
    folds_all = fold_of(inputs.event, k)
    history: dict[str, list[float]] = {}

    if method == "cwola":
        rows = np.flatnonzero(in_sr | in_sb)
        x_train = x_all[rows]
        y_train = in_sr[rows].astype(np.float32)
        folds = folds_all[rows]
        std = Standardizer.fit(x_train)
        notes: dict[str, Any] = {}
    else:
        x_train, y_train, folds, std, notes = _cathode_training_set(
            x_all, np.asarray(observable, np.float64), in_sr, in_sb, folds_all, k,
            config=config, hp=hp, progress=progress, history=history,
        )  # fmt: skip
    xs = std.transform(x_train)
    arch_hp = {"n_inputs": len(features), "hidden": list(hp.get("hidden", [64, 64, 64]))}

    def train_one(rows: np.ndarray, seed: int) -> nn.Module:
        net = nets.build("classifier", arch_hp, seed=seed)
        y = y_train[rows]
        n_pos = max(float(y.sum()), 1.0)
        pw = torch.tensor((len(y) - n_pos) / n_pos)

        def loss(model, batch, _gen):
            return nn.functional.binary_cross_entropy_with_logits(
                model(batch[0]), batch[1], pos_weight=pw.to(batch[0].device)
            )

        h = fit(net, loss, [xs[rows], y], config=config, seed=seed, progress=progress,
                description=f"{method} seed {seed}")  # fmt: skip
        history.update({f"seed{seed}/{key}": v for key, v in h.items()})
        return net

    networks = kfold_train(folds, k, ens, train_one, seed=config.seed)
    specs = {name: _spec("classifier", arch_hp) for name in networks}
    bundle = _finish(
        method, networks, specs, inputs, np.flatnonzero(in_sr | in_sb),
        calibration={"kind": "sigmoid"}, config=config,
        hash_arrays=[x_all, np.asarray(observable), inputs.event], features=tuple(features),
        preprocessing={"standardizer": std.to_dict()},
        kfold={"k": int(k), "ensemble": int(ens), "salt": 0},
        notes={"signal_region": list(map(float, signal_region)),
               "sidebands": list(map(float, sidebands)), **notes},
    )  # fmt: skip
    return TrainResult(bundle, history, out_of_fold_scores=bundle.score(inputs))


def _cathode_training_set(x_all, mjj, in_sr, in_sb, folds_all, k, *, config, hp, progress,
                          history):  # fmt: skip
    """SR data (label 1) + flow samples of SR background (label 0), both with folds."""
    from adcoffea.models.train import fit

    x_sb, m_sb = x_all[in_sb], mjj[in_sb]
    scaler = LogitScaler.fit(np.concatenate([x_sb, x_all[in_sr]]))
    # Condition on log(mjj) standardised on the sidebands (smooth interpolation across the SR).
    c_mean, c_std = float(np.log(m_sb).mean()), float(np.log(m_sb).std() or 1.0)

    def cond(m):
        return ((np.log(m) - c_mean) / c_std).astype(np.float32)[:, None]

    flow_hp = {"n_features": x_all.shape[1], "n_context": 1,
               "layers": int(hp.get("flow_layers", 6)),
               "hidden": list(hp.get("flow_hidden", [64, 64]))}  # fmt: skip
    flow = nets.build("maf", flow_hp, seed=config.seed + 99)
    flow_cfg = config.model_copy(
        update={"learning_rate": float(hp.get("flow_learning_rate", 1e-3))}
    )
    h = fit(
        flow, lambda model, b, _g: -model.log_prob(b[0], b[1]).mean(),
        [scaler.transform(x_sb), cond(m_sb)], config=flow_cfg, seed=config.seed + 99,
        progress=progress, description="cathode flow", epochs=int(hp.get("flow_epochs", config.epochs)),
    )  # fmt: skip
    history.update({f"flow/{key}": v for key, v in h.items()})
    rng = np.random.default_rng(config.seed + 123)
    n_sr = int(in_sr.sum())
    n_samp = int(hp.get("oversample", 4)) * n_sr
    # SR mjj values of the data are resampled as the condition (their density is background
    # dominated; CATHODE uses a KDE of the same values).
    m_samp = rng.choice(mjj[in_sr], size=n_samp, replace=True)
    gen = torch.Generator().manual_seed(config.seed + 321)
    with torch.no_grad():
        y_s = flow.sample(torch.as_tensor(cond(m_samp)), generator=gen).numpy()
    x_samp = scaler.inverse(y_s).astype(np.float32)
    ok = np.isfinite(x_samp).all(axis=1)
    x_samp = x_samp[ok]
    x_train = np.concatenate([x_all[in_sr], x_samp])
    y_train = np.concatenate([np.ones(n_sr, np.float32), np.zeros(len(x_samp), np.float32)])
    folds = np.concatenate([folds_all[in_sr], rng.integers(0, k, size=len(x_samp))])
    std = Standardizer.fit(x_all[in_sr])
    notes = {"n_flow_samples": len(x_samp), "flow": flow_hp}
    return x_train, y_train, folds, std, notes
