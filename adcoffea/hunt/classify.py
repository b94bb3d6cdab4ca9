"""Per-window weakly supervised classifier and out-of-fold scores (CWoLa hunting, CATHODE).

For one window, a k-fold classifier (:func:`adcoffea.models.classifiers.train_kfold_classifier`,
boosted-tree ensembles by default) learns the SR events (label 1) against the sideband events
(label 0) on features independent of mjj (the CATHODE set: mj_min, delta m, tau21 of both
jets). With a signal in the SR and not in the sidebands the optimal classifier is monotonic
in the signal-to-background likelihood ratio (Collins, Howe, Nachman, PRL 121 (2018) 241803).

**Scoring.** Every event of the fit range is scored by the ensemble of its own fold
(``predict_oof`` with ``fold_of(event, k)``), also outside the sidebands, where no model saw
any event. Averaging all folds there (``predict``) would give those events a narrower score
distribution than the SR and sideband events (an average of k models), hence a different
efficiency at the same threshold: a step in the selected mjj spectrum at the sideband edges
that no smooth fit describes. With one model per fold everywhere, the selection efficiency is
the same function of the features across the whole fit range.

**CATHODE** (``method="cathode"``, Hallin et al. 2022): instead of the sidebands, the SR
events are classified against background *sampled* in the SR from a conditional density
p(x | mjj) trained on the window's sidebands (:mod:`adcoffea.models.density`). The samples
are checked first: a classifier of real sideband events against samples drawn at their mjj
must not separate them (``closure_auc`` about 0.5), reported per window. The scores of the
data events are out of fold as for CWoLa; the samples take random folds.

The AUC of SR versus sidebands on these held-out scores is reported per window (about 0.5
without a signal; it measures what the classifier found, without any truth label).

Example:
    >>> import numpy as np
    >>> from adcoffea.hunt.windows import Window
    >>> rng = np.random.default_rng(0)
    >>> m = rng.uniform(3000.0, 4000.0, 4000)
    >>> x = rng.normal(size=(4000, 2))
    >>> w = Window(0, 3400.0, 3600.0, 3200.0, 3800.0, 3000.0, 4000.0)
    >>> s = score_window(w, m, x, np.arange(4000), k=3, members=1, seed=0)  # doctest: +SKIP
    >>> 0.4 < s.auc < 0.6                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.hunt.windows import Window

#: at least this many events per fold in the SR and in the sidebands
MIN_PER_FOLD = 10


@dataclass(frozen=True)
class WindowScores:
    """Scores of the fit-range events by one window's classifier.

    Attributes:
        scores: score in [0, 1] of every event in the fit range or the sidebands (NaN
            elsewhere).
        auc: area under the ROC curve of SR versus sidebands, on held-out scores.
        n_sr, n_sb: data events in the SR and in the sidebands.
        closure_auc: CATHODE only: the sampled-vs-real sideband AUC (None otherwise).
    """

    scores: np.ndarray
    auc: float
    n_sr: int
    n_sb: int
    closure_auc: float | None = None


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def score_window(
    window: Window,
    mjj: np.ndarray,
    x: np.ndarray,
    folds: np.ndarray,
    *,
    k: int,
    kind: str = "bdt",
    members: int = 3,
    seed: int = 0,
    hyperparameters: Mapping[str, Any] | None = None,
    method: str = "cwola",
    cathode: Mapping[str, Any] | None = None,
) -> WindowScores:
    """Train the window's k-fold classifier and score the fit range out of fold.

    Args:
        window: the SR, sidebands and fit range.
        mjj: observable per event (GeV).
        x: features per event (n, d), independent of mjj.
        folds: fold per event in [0, k) (``adcoffea.models.bundle.fold_of(event, k)``).
        k, kind, members, seed, hyperparameters: the classifier.
        method: "cwola" (SR against sidebands) or "cathode" (SR against sampled background).
        cathode: CATHODE's options (the ``hunt.cathode`` block as a dict:
            ``background_model``, ``options``, ``oversample``, ``closure``).
    """
    from adcoffea.models.classifiers import train_kfold_classifier

    in_sr = window.in_sr(mjj)
    in_sb = window.in_sidebands(mjj)
    n_sr, n_sb = int(in_sr.sum()), int(in_sb.sum())
    if n_sr < MIN_PER_FOLD * k or n_sb < MIN_PER_FOLD * k:
        raise ConfigError(
            f"hunt: window [{window.sr_lo:g}, {window.sr_hi:g}] has {n_sr} events in the signal "
            f"region and {n_sb} in the sidebands, fewer than {MIN_PER_FOLD} per fold "
            f"(k = {k}); narrow hunt.range or use more events"
        )
    rows = np.flatnonzero(in_sr | in_sb)
    closure = None
    if method == "cwola":
        x_train, y_train, f_train = x[rows], in_sr[rows].astype(np.int64), folds[rows]
    elif method == "cathode":
        x_train, y_train, f_train, closure = _cathode_set(
            mjj, x, folds, in_sr, in_sb, k=k, seed=seed, options=dict(cathode or {})
        )
    else:
        raise ConfigError(f"hunt.method: {method!r} is not one of ('cwola', 'cathode')")
    clf = train_kfold_classifier(
        x_train,
        y_train,
        folds=f_train,
        k=k,
        kind=kind,  # type: ignore[arg-type]
        members=members,
        seed=seed,
        hyperparameters=dict(hyperparameters or {}),
    )
    scored = window.in_fit(mjj) | in_sr | in_sb
    scores = np.full(len(mjj), np.nan)
    scores[scored] = clf.predict_oof(x[scored], folds[scored])
    # held-out scores of the training events
    auc = _auc(scores[rows], in_sr[rows].astype(np.int64))
    return WindowScores(scores=scores, auc=auc, n_sr=n_sr, n_sb=n_sb, closure_auc=closure)


#: Sideband events (at most) in a window's CATHODE closure test.
CLOSURE_EVENTS = 60_000


def _cathode_set(
    mjj: np.ndarray,
    x: np.ndarray,
    folds: np.ndarray,
    in_sr: np.ndarray,
    in_sb: np.ndarray,
    *,
    k: int,
    seed: int,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """CATHODE's training set of one window: SR data (1) + sampled SR background (0).

    Returns the features, labels and folds of the training rows and the closure AUC.
    """
    from adcoffea.models.density import fit_background_model, sample_conditions, sideband_closure

    density = dict(options.get("options") or {})
    try:
        model = fit_background_model(
            x[in_sb], mjj[in_sb], seed=seed + 99, kind=options.get("background_model"),
            scaler_data=x[in_sb | in_sr], **density,
        )  # fmt: skip
    except ValueError as err:
        raise ConfigError(f"hunt.cathode.options: {err}") from None
    n_sr = int(in_sr.sum())
    m_samp = sample_conditions(mjj[in_sr], int(options.get("oversample", 4)) * n_sr,
                               seed=seed + 123)  # fmt: skip
    x_samp = model.sample(m_samp, seed=seed + 321)
    x_samp = x_samp[np.isfinite(x_samp).all(axis=1)]
    closure = None
    if options.get("closure", True):
        rng = np.random.default_rng(seed + 7)
        sb_rows = np.flatnonzero(in_sb)
        sb_rows = rng.choice(sb_rows, size=min(len(sb_rows), CLOSURE_EVENTS), replace=False)
        closure = sideband_closure(model, x[sb_rows], mjj[sb_rows], seed=seed + 11)
    rng = np.random.default_rng(seed + 123)
    x_train = np.concatenate([x[in_sr], x_samp])
    y_train = np.r_[np.ones(n_sr, np.int64), np.zeros(len(x_samp), np.int64)]
    f_train = np.concatenate([folds[in_sr], rng.integers(0, k, len(x_samp))])
    return x_train, y_train, f_train, closure
