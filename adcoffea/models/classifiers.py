"""k-fold classifier ensembles: boosted decision trees or neural networks, scored out of fold.

Weakly supervised methods (CWoLa hunting, CATHODE, the sliding-window hunt) train a
classifier on the very events they later select, so an event must only ever be scored by
models that never saw it. :func:`train_kfold_classifier` trains, for every fold ``i``, an
ensemble of ``members`` classifiers on the rows with ``folds != i``; each member draws its own
random train/validation split from those rows for early stopping (nested, so the scored fold
is never used, not even for validation). :meth:`KFoldClassifier.predict_oof` scores each row
with its own fold's ensemble; :meth:`KFoldClassifier.predict` averages all folds (for rows
that were never in training). Ensembles average logits; scores are the logistic of that mean,
in [0, 1], the probability of label 1 under balanced classes.

Two kinds:

* ``"bdt"`` (default): scikit-learn :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
  with early stopping, an ensemble per fold on random splits (Finke et al.,
  arXiv:2309.13111). Robust to uninformative features, where networks lose the signal, and
  fast on a few cores. The fitted trees are kept as arrays (:class:`TreeEnsemble`, a torch
  module with buffers), so a bundle stores them like network weights: no pickle.
* ``"mlp"``: the dense :class:`~adcoffea.models.nets.Classifier` trained with
  :func:`adcoffea.models.loop.fit` (Adam, early stopping on a validation split).

Classes weigh the same in every fold's training set (times any ``sample_weight``), so the
ensemble approximates the likelihood ratio whatever the class sizes (the BDT without sample
weights gets the same by a prior shift of its logit, see :func:`_fit_bdt`).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> x = rng.normal(size=(2000, 2)) + y[:, None]
    >>> folds = rng.integers(0, 3, 2000)
    >>> clf = train_kfold_classifier(x, y, folds=folds, k=3, kind="bdt", members=2, seed=0)
    >>> s = clf.predict_oof(x, folds)
    >>> bool(s[y == 1].mean() > s[y == 0].mean()), bool(((s >= 0) & (s <= 1)).all())
    (True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from adcoffea.config import TrainConfig
from adcoffea.models import nets
from adcoffea.models.loop import fit, spec
from adcoffea.models.nets import TreeEnsemble
from adcoffea.models.preprocessing import Standardizer

Kind = Literal["bdt", "mlp"]
KINDS: tuple[str, ...] = ("bdt", "mlp")

#: The classifier of the weakly supervised methods unless configured.
DEFAULT_KIND = "bdt"

#: Members per fold when ``members`` is not given.
DEFAULT_MEMBERS: dict[str, int] = {"bdt": 10, "mlp": 1}

#: HistGradientBoostingClassifier options (hyperparameter keys of the "bdt" kind). Half of each
#: member's training rows validate its early stopping: weakly supervised labels are nearly
#: random, and a small validation set stops on noise.
BDT_DEFAULTS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "max_bins": 255,
    "validation_fraction": 0.5,
    "n_iter_no_change": 10,
}

#: Hidden layers of the "mlp" kind.
MLP_HIDDEN = (64, 64, 64)


# ---------------------------------------------------------------------- the k-fold ensemble
def _logistic(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # overflow-free


@dataclass(frozen=True)
class KFoldClassifier:
    """k-fold ensembles of classifiers (see the module docstring).

    Attributes:
        kind: "bdt" or "mlp".
        k: number of folds; members: classifiers per fold.
        models: ``fold{i}_member{j}`` -> module returning a logit from standardised features
            (the names a weak-supervision bundle scores with).
        specs: the bundle entry (architecture, JSON hyperparameters) of each model.
        standardizer: the feature scaling the models read (fitted on all rows, no labels).
        history: per-member curves (MLP: train/val loss; BDT: validation loss per iteration).
    """

    kind: str
    k: int
    members: int
    models: Mapping[str, nn.Module]
    specs: Mapping[str, dict[str, Any]]
    standardizer: Standardizer
    history: Mapping[str, list[float]] = field(default_factory=dict)

    def _logits(self, xs: torch.Tensor, fold: int) -> np.ndarray:
        members = [self.models[f"fold{fold}_member{j}"] for j in range(self.members)]
        return np.mean(nets.member_logits(members, xs), axis=0)

    def _x(self, x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.standardizer.mean):
            raise ValueError(f"expected (n, {len(self.standardizer.mean)}) features, got {x.shape}")
        return torch.as_tensor(self.standardizer.transform(x))

    def logit_oof(self, x: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Mean logit of each row from its own fold's members only."""
        folds = _check_folds(folds, len(x), self.k)
        xs = self._x(x)
        out = np.zeros(len(xs))
        for i in range(self.k):
            sel = np.flatnonzero(folds == i)
            if len(sel):
                out[sel] = self._logits(xs[sel], i)
        return out

    def predict_oof(self, x: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Score in [0, 1] of each row from the models of its own fold (that never saw it)."""
        return _logistic(self.logit_oof(x, folds))

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Mean logit over all folds' models."""
        xs = self._x(x)
        return np.mean([self._logits(xs, i) for i in range(self.k)], axis=0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Score in [0, 1] averaged over every fold (for rows never used in training)."""
        return _logistic(self.logit(x))


def _check_folds(folds: np.ndarray, n: int, k: int) -> np.ndarray:
    folds = np.asarray(folds)
    if folds.shape != (n,):
        raise ValueError(f"folds must have shape ({n},), got {folds.shape}")
    if n and (folds.min() < 0 or folds.max() >= k or not np.issubdtype(folds.dtype, np.integer)):
        raise ValueError(f"folds must be integers in [0, {k})")
    return folds


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-row weights giving both classes the same total weight; mean weight 1."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    out = np.zeros(len(y))
    for c in (0, 1):
        sel = y == c
        total = w[sel].sum()
        if total > 0:
            out[sel] = w[sel] * (0.5 * w.sum() / total)
    return out * (len(y) / max(out.sum(), 1e-300))


def train_kfold_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: np.ndarray,
    k: int,
    kind: Kind = "bdt",
    members: int | None = None,
    sample_weight: np.ndarray | None = None,
    seed: int,
    hyperparameters: Mapping[str, Any] | None = None,
    config: TrainConfig | None = None,
    progress: bool = False,
) -> KFoldClassifier:
    """Train ``members`` classifiers per fold; fold ``i``'s models see only ``folds != i``.

    Args:
        x: features (n, d), any scale (standardised internally, without labels).
        y: labels in {0, 1}; 1 = the class whose probability is scored.
        folds: fold index in [0, k) per row, e.g. ``adcoffea.models.bundle.fold_of(event, k)``.
        k: number of folds.
        kind: "bdt" (HistGradientBoosting ensembles) or "mlp" (dense network).
        members: classifiers per fold (default 10 for "bdt", 1 for "mlp").
        sample_weight: optional per-row weights (multiplied by the class balancing).
        seed: every member's seed derives from it, the fold and the member index only.
        hyperparameters: "bdt": keys of :data:`BDT_DEFAULTS`; "mlp": ``hidden``, ``dropout``.
        config: "mlp" training options (epochs, batch size, learning rate, patience,
            validation fraction); default ``TrainConfig(patience=10)``.
        progress: show a progress bar per network training.

    Returns:
        The trained :class:`KFoldClassifier`.

    Raises:
        ValueError: inconsistent shapes, labels other than 0/1, folds outside [0, k), a fold
            whose training rows lack one of the classes, or an unknown kind/hyperparameter.
    """
    x, y, sample_weight, n_members = _check_inputs(x, y, kind, members, sample_weight)
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    folds = _check_folds(folds, len(x), k)
    hp = dict(hyperparameters or {})
    std = Standardizer.fit(x)  # label-free, so no event's label reaches its own score
    xs = std.transform(x)
    models: dict[str, nn.Module] = {}
    specs: dict[str, dict[str, Any]] = {}
    history: dict[str, list[float]] = {}
    for i in range(k):
        rows = np.flatnonzero(folds != i)
        if y[rows].min() == y[rows].max():
            raise ValueError(f"fold {i}: its training rows hold only label {int(y[rows][0])}")
        for j in range(n_members):
            name = f"fold{i}_member{j}"
            model, entry, h = _fit_member(
                kind,
                xs[rows],
                y[rows],
                None if sample_weight is None else sample_weight[rows],
                seed=int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0]),
                hp=hp,
                config=config,
                progress=progress,
            )
            models[name], specs[name] = model, entry
            history.update({f"{name}/{key}": v for key, v in h.items()})
    return KFoldClassifier(kind, k, n_members, models, specs, std, history)


def train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: Kind = "bdt",
    members: int | None = None,
    sample_weight: np.ndarray | None = None,
    seed: int,
    hyperparameters: Mapping[str, Any] | None = None,
    config: TrainConfig | None = None,
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any], Standardizer, dict[str, list[float]]]:
    """One classifier on all rows (the supervised ceiling): (module, spec, scaling, history).

    "bdt": ``members`` boosted-tree classifiers on random train/validation splits merged into
    one :class:`TreeEnsemble` whose logit is their mean; "mlp": one network (members = 1).
    Arguments as in :func:`train_kfold_classifier`.
    """
    x, y, sample_weight, n_members = _check_inputs(x, y, kind, members, sample_weight)
    if kind == "mlp" and n_members != 1:
        raise ValueError("a single 'mlp' classifier has one member; use the bdt kind to ensemble")
    std = Standardizer.fit(x)
    xs = std.transform(x)
    fitted, history = [], {}
    for j in range(n_members):
        model, entry, h = _fit_member(
            kind, xs, y, sample_weight,
            seed=int(np.random.SeedSequence([seed, j]).generate_state(1)[0]),
            hp=dict(hyperparameters or {}), config=config, progress=progress,
        )  # fmt: skip
        fitted.append(model)
        history.update({f"member{j}/{key}": v for key, v in h.items()})
    if kind == "mlp":
        return fitted[0], entry, std, history
    merged = TreeEnsemble.average(fitted)
    return merged, spec("bdt", merged.hyperparameters), std, history


def _check_inputs(x, y, kind, members, sample_weight):
    if kind not in KINDS:
        raise ValueError(f"classifier kind {kind!r} is not one of {KINDS}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n, d) with n = len(y) = {len(y)}, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold labels 0 and 1 only")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (len(x),) or (sample_weight < 0).any():
            raise ValueError("sample_weight must be (n,) and non-negative")
    n_members = int(members if members is not None else DEFAULT_MEMBERS[kind])
    if n_members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    return x, y.astype(np.float32), sample_weight, n_members


def _fit_member(kind, x, y, sample_weight, *, seed, hp, config, progress):
    """One classifier on standardised ``x``: (module, bundle spec, history)."""
    w = balanced_weights(y, sample_weight)
    if kind == "bdt":
        # Log prior odds of the training rows: a fit without weights has its logit shifted
        # by exactly this against the balanced one (see _fit_bdt).
        shift = float(np.log((y == 0).sum() / (y == 1).sum()))
        model, curve = _fit_bdt(x, y, None if sample_weight is None else w, prior_shift=shift,
                                seed=seed, hp=hp)  # fmt: skip
        return model, spec("bdt", model.hyperparameters), {"val_loss": curve}
    model, h, arch = _fit_mlp(x, y, w, seed=seed, hp=hp, config=config, progress=progress)
    return model, spec("classifier", arch), h


def _fit_bdt(
    x, y, w, *, prior_shift: float, seed: int, hp: Mapping[str, Any]
) -> tuple[TreeEnsemble, list[float]]:
    """One boosted-tree member; ``w`` None = unweighted fit, logit shifted by ``prior_shift``.

    scikit-learn bins weighted samples with a weighted percentile per bin edge, which made a
    member 10x slower (2.6 s against 0.26 s on 200k rows). Class balance alone needs no
    weights: the unweighted classifier's logit differs from the balanced one by the log
    prior odds, a constant, so the ranking is the same and adding ``prior_shift`` restores
    balanced probabilities. Only user sample weights take the weighted path.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    unknown = set(hp) - set(BDT_DEFAULTS) - {"hidden", "dropout"}
    if unknown:
        raise ValueError(f"unknown bdt hyperparameters {sorted(unknown)}; known: "
                         f"{sorted(BDT_DEFAULTS)}")  # fmt: skip
    opts = {key: hp.get(key, default) for key, default in BDT_DEFAULTS.items()}
    clf = HistGradientBoostingClassifier(
        **opts, early_stopping=True, scoring="loss", random_state=seed % (2**31)
    )
    clf.fit(x, y.astype(np.int64), sample_weight=w)
    # sklearn keeps the n_iter_no_change rounds after the best one, which only fit noise;
    # keep the trees up to the best validation loss (validation_score_[0] = no tree).
    best = int(np.argmax(clf.validation_score_))
    trees = TreeEnsemble.from_sklearn(clf, n_iter=best)
    if w is None:
        with torch.no_grad():
            trees.baseline.add_(prior_shift)
    # sklearn's validation loss is a *score* (higher = better): store the loss itself.
    return trees, [-float(v) for v in clf.validation_score_]


def _fit_mlp(x, y, w, *, seed: int, hp, config: TrainConfig | None, progress: bool):
    arch = {"n_inputs": x.shape[1], "hidden": list(hp.get("hidden", MLP_HIDDEN))}
    if hp.get("dropout"):
        arch["dropout"] = float(hp["dropout"])
    cfg = config or TrainConfig(patience=10)
    net = nets.build("classifier", arch, seed=seed)

    def loss(model, batch, _gen):
        bce = nn.functional.binary_cross_entropy_with_logits(
            model(batch[0]), batch[1], reduction="none"
        )
        return (bce * batch[2]).sum() / batch[2].sum().clamp(min=1e-12)

    h = fit(net, loss, [x, y, w.astype(np.float32)], config=cfg, seed=seed % (2**31),
            progress=progress, description=f"classifier seed {seed}")  # fmt: skip
    return net, h, arch
