"""Weak supervision: CWoLa hunting and a CATHODE-style variant, with k-fold scoring.

Both train, for one signal-region (SR) window in mjj, a classifier whose optimum is the
likelihood ratio data/background in the SR:

* **CWoLa hunting** (Collins, Howe, Nachman 2018): SR events (label 1) versus the sidebands
  (label 0). Works when the features are independent of mjj.
* **CATHODE** (Hallin et al. 2022): SR events versus background *sampled* in the SR from a
  conditional density p(x | mjj) trained in the sidebands and interpolated into the SR.
  The density is a zuko flow (MAF or NSF) or a conditional VAE
  (:mod:`adcoffea.models.density`) on the CATHODE logit preprocessing, checked by a
  sampled-vs-real sideband classifier (``closure_auc`` in the notes, ~0.5 when the samples
  pass for background); it is used only in training and does not enter the bundle.

The classifier is a k-fold ensemble from :mod:`adcoffea.models.classifiers`: boosted decision
trees (default) or a dense network. Every event is assigned a fold by a hash of its event
number (:func:`fold_of`); the models of fold i are trained on the other folds (their
validation splits for early stopping are drawn from those folds too, i.e. nested), so an
event is only ever scored by models that never saw it — during training (out-of-fold scores)
and in any later processing of the same events. The members of a fold, each on its own random
train/validation split, are averaged in logit space.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adcoffea.config import TrainConfig
from adcoffea.errors import ConfigError
from adcoffea.features import ModelInputs
from adcoffea.models.bundle import fold_of
from adcoffea.models.classifiers import (
    BDT_DEFAULTS,
    DEFAULT_KIND,
    DEFAULT_MEMBERS,
    KINDS,
    train_kfold_classifier,
)
from adcoffea.models.density import fit_background_model, sample_conditions, sideband_closure
from adcoffea.models.loop import TrainResult, finish_bundle


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


#: default early-stopping patience of the weakly supervised classifiers
WEAK_PATIENCE = 10


def classifier_options(
    method: str, config: TrainConfig, hp: dict[str, Any]
) -> tuple[str, int, TrainConfig, dict[str, Any]]:
    """(kind, members per fold, network training options, classifier hyperparameters).

    ``hyperparameters.classifier`` picks "bdt" (default) or "mlp"; ``members`` (or
    ``train.ensemble`` when set) the ensemble size per fold; boosted-tree keys of
    :data:`adcoffea.models.classifiers.BDT_DEFAULTS` and the network's ``hidden`` pass through.
    """
    kind = str(hp.get("classifier", DEFAULT_KIND))
    if kind not in KINDS:
        raise ConfigError(f"model.hyperparameters.classifier: {kind!r} is not one of {KINDS}")
    if "members" in hp:
        members = int(hp["members"])
    elif "ensemble" in config.model_fields_set:
        members = config.ensemble
    else:
        members = DEFAULT_MEMBERS[kind]
    if "patience" not in config.model_fields_set:
        # SR-vs-SB labels are nearly random: the validation loss is flat and noisy for
        # several epochs before the signal is learnt, and a short patience stops before
        # it (compare `benchmarks/ad_methods.py --patience 4` and `--patience 10`).
        config = config.model_copy(update={"patience": WEAK_PATIENCE})
    keys = set(BDT_DEFAULTS) if kind == "bdt" else {"hidden", "dropout"}
    return kind, members, config, {key: v for key, v in hp.items() if key in keys}


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
) -> TrainResult:
    """CWoLa or CATHODE k-fold training; see :func:`adcoffea.models.train.train_model`.

    Hyperparameters: ``classifier`` "bdt" (default) or "mlp", ``members`` per fold (default
    10 trees ensembles / 1 network), ``hidden`` network layers [64, 64, 64], boosted-tree
    options (:data:`~adcoffea.models.classifiers.BDT_DEFAULTS`). CATHODE (defaults in
    :data:`~adcoffea.models.density.DENSITY_DEFAULTS`): ``background_model`` "maf", "nsf"
    or "cvae", ``flow_transforms`` (alias ``flow_layers``), ``flow_hidden``, ``flow_bins``,
    ``flow_models`` (ensemble), ``flow_epochs``, ``flow_batch_size``, ``flow_learning_rate``,
    ``flow_patience``, ``cvae_latent``, ``cvae_beta``, ``flow_sidebands`` (outer mjj edges of
    the density training, default the sidebands), ``oversample`` 4 (sampled background per
    SR event), ``closure`` true (the sideband closure AUC).
    """
    if inputs.event is None:
        raise ConfigError(f"method {method!r} needs event numbers for its k-fold layout")
    hp = hyperparameters
    kind, members, config, clf_hp = classifier_options(method, config, hp)
    k = config.k_folds
    in_sr, in_sb = region_masks(observable, signal_region, sidebands)
    if in_sr.sum() < 10 * k or in_sb.sum() < 10 * k:
        raise ConfigError(
            f"method {method!r}: too few events in the signal region ({in_sr.sum()}) or "
            f"sidebands ({in_sb.sum()}) for {k} folds"
        )
    x_all = inputs.matrix(features)
    folds_all = fold_of(inputs.event, k)
    history: dict[str, list[float]] = {}
    diagnostics: dict[str, Any] = {}

    if method == "cwola":
        rows = np.flatnonzero(in_sr | in_sb)
        x_train, y_train, folds = x_all[rows], in_sr[rows].astype(np.float32), folds_all[rows]
        notes: dict[str, Any] = {}
    else:
        x_train, y_train, folds, notes = _cathode_training_set(
            x_all, np.asarray(observable, np.float64), in_sr, in_sb, folds_all, k,
            config=config, hp=hp, progress=progress, history=history, diagnostics=diagnostics,
        )  # fmt: skip
    t0 = time.perf_counter()
    clf = train_kfold_classifier(
        x_train, y_train, folds=folds, k=k, kind=kind, members=members, seed=config.seed,
        hyperparameters=clf_hp, config=config, progress=progress,
    )  # fmt: skip
    diagnostics["classifier_seconds"] = time.perf_counter() - t0
    history.update(clf.history)
    bundle = finish_bundle(
        method, dict(clf.models), dict(clf.specs), inputs, np.flatnonzero(in_sr | in_sb),
        calibration={"kind": "sigmoid"}, config=config,
        hash_arrays=[x_all, np.asarray(observable), inputs.event], features=tuple(features),
        preprocessing={"standardizer": clf.standardizer.to_dict()},
        kfold={"k": int(k), "ensemble": int(members), "salt": 0},
        notes={"signal_region": list(map(float, signal_region)),
               "sidebands": list(map(float, sidebands)), "classifier": kind, **notes},
    )  # fmt: skip
    return TrainResult(bundle, history, out_of_fold_scores=bundle.score(inputs),
                       diagnostics=diagnostics)  # fmt: skip


#: CATHODE hyperparameter -> option of :func:`adcoffea.models.density.fit_background_model`.
FLOW_KEYS: dict[str, str] = {
    "background_model": "kind",
    "flow_preprocessing": "preprocessing",
    "flow_transforms": "transforms",
    "flow_layers": "transforms",  # the name of the former own MAF's option
    "flow_hidden": "hidden",
    "flow_bins": "bins",
    "flow_models": "n_models",
    "flow_epochs": "epochs",
    "flow_batch_size": "batch_size",
    "flow_learning_rate": "learning_rate",
    "flow_patience": "patience",
    "cvae_latent": "latent",
    "cvae_beta": "beta",
}

#: Sideband events (at most) in the closure test of the CATHODE background samples.
CLOSURE_EVENTS = 60_000


def _cathode_training_set(x_all, mjj, in_sr, in_sb, folds_all, k, *, config, hp, progress,
                          history, diagnostics):  # fmt: skip
    """SR data (label 1) + sampled SR background (label 0), both with folds.

    The background model is trained on the sidebands (or on ``flow_sidebands``, wider outer
    edges), then checked: a classifier of real sideband events against samples drawn at
    their mjj must not tell them apart (``closure_auc`` ~ 0.5, in the notes and diagnostics).
    """
    t0 = time.perf_counter()
    train_sb = in_sb
    if hp.get("flow_sidebands") is not None:
        lo, hi = map(float, hp["flow_sidebands"])
        sr_lo, sr_hi = float(mjj[in_sr].min()), float(mjj[in_sr].max())
        if not lo <= sr_lo <= sr_hi <= hi:
            raise ConfigError(f"model.hyperparameters.flow_sidebands {[lo, hi]} must enclose "
                              "the signal region")  # fmt: skip
        train_sb = (mjj >= lo) & (mjj < hi) & ~in_sr
    options = {FLOW_KEYS[key]: v for key, v in hp.items() if key in FLOW_KEYS}
    try:
        model = fit_background_model(
            x_all[train_sb], mjj[train_sb], seed=config.seed + 99, progress=progress,
            scaler_data=x_all[train_sb | in_sr], **options,
        )  # fmt: skip
    except ValueError as err:
        raise ConfigError(f"model.hyperparameters: {err}") from None
    history.update({f"background/{key}": v for key, v in model.history.items()})
    t1 = time.perf_counter()
    n_sr = int(in_sr.sum())
    n_samp = int(hp.get("oversample", 4)) * n_sr
    m_samp = sample_conditions(mjj[in_sr], n_samp, seed=config.seed + 123)
    x_samp = model.sample(m_samp, seed=config.seed + 321).astype(np.float32)
    x_samp = x_samp[np.isfinite(x_samp).all(axis=1)]
    t2 = time.perf_counter()
    notes: dict[str, Any] = {"n_background_samples": len(x_samp),
                             "background_model": model.kind}  # fmt: skip
    if hp.get("closure", True):
        rng = np.random.default_rng(config.seed + 7)
        rows = np.flatnonzero(in_sb)
        rows = rng.choice(rows, size=min(len(rows), CLOSURE_EVENTS), replace=False)
        notes["closure_auc"] = sideband_closure(model, x_all[rows], mjj[rows],
                                                seed=config.seed + 11)  # fmt: skip
    diagnostics.update(notes, background_seconds=t1 - t0, sampling_seconds=t2 - t1,
                       closure_seconds=time.perf_counter() - t2)  # fmt: skip
    rng = np.random.default_rng(config.seed + 123)
    x_train = np.concatenate([x_all[in_sr], x_samp])
    y_train = np.concatenate([np.ones(n_sr, np.float32), np.zeros(len(x_samp), np.float32)])
    folds = np.concatenate([folds_all[in_sr], rng.integers(0, k, size=len(x_samp))])
    return x_train, y_train, folds, notes
