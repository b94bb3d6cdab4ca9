"""k-fold classifier ensembles (BDT and MLP) and the thread settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from adcoffea.config import TrainConfig
from adcoffea.models import threads
from adcoffea.models.classifiers import balanced_weights, train_kfold_classifier
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.nets import TreeEnsemble

FAST_MLP = TrainConfig(epochs=4, batch_size=256, learning_rate=3e-3, patience=2)
#: fewer boosting rounds keep the tests fast; the defaults are exercised by the benchmark
FAST_BDT = {"max_iter": 40, "learning_rate": 0.2}


def _gaussians(n: int, seed: int, shift: float = 1.0):
    """Two unit Gaussians in 3D separated by ``shift`` along x0 (optimal AUC 0.76 at 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift * y
    return x, y, rng.integers(0, 4, n)


def test_tree_ensemble_reproduces_sklearn_exactly_after_a_state_dict_round_trip():
    x, y, _ = _gaussians(3000, seed=0)
    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    trees = TreeEnsemble.from_sklearn(clf)
    np.testing.assert_array_equal(trees.logit(x), clf.decision_function(x))
    copy = TreeEnsemble(**trees.hyperparameters)
    copy.load_state_dict(trees.state_dict())
    xt = torch.as_tensor(x, dtype=torch.float32)
    np.testing.assert_array_equal(copy(xt).numpy(), clf.decision_function(xt.double().numpy()))


@pytest.mark.parametrize("kind", ["bdt", "mlp"])
def test_out_of_fold_scores_separate_two_gaussians(kind):
    x, y, folds = _gaussians(4000, seed=1)
    clf = train_kfold_classifier(x, y, folds=folds, k=4, kind=kind, members=2, seed=3,
                                 config=FAST_MLP, hyperparameters=FAST_BDT)  # fmt: skip
    s = clf.predict_oof(x, folds)
    assert ((s >= 0) & (s <= 1)).all()
    assert roc_sic(s, y).auc > 0.70  # optimum 0.76
    assert set(clf.models) == {f"fold{i}_member{j}" for i in range(4) for j in range(2)}
    # predict() averages all folds: on new rows it separates as well
    xn, yn, _ = _gaussians(2000, seed=2)
    assert roc_sic(clf.predict(xn), yn).auc > 0.70


@pytest.mark.parametrize("kind", ["bdt", "mlp"])
def test_an_events_out_of_fold_score_ignores_its_own_label(kind):
    x, y, folds = _gaussians(2000, seed=4)
    flip = np.flatnonzero(folds == 0)[:50]
    y2 = y.copy()
    y2[flip] = 1 - y2[flip]
    kw = dict(
        folds=folds,
        k=4,
        kind=kind,
        members=2,
        seed=7,
        config=FAST_MLP,
        hyperparameters=FAST_BDT if kind == "bdt" else None,
    )
    a = train_kfold_classifier(x, y, **kw).predict_oof(x, folds)
    b = train_kfold_classifier(x, y2, **kw).predict_oof(x, folds)
    np.testing.assert_array_equal(a[folds == 0], b[folds == 0])
    assert not np.array_equal(a[folds != 0], b[folds != 0])  # the other folds did train on them


def test_seed_reproduces_and_changes_the_bdt_ensemble():
    x, y, folds = _gaussians(2000, seed=5)
    kw = dict(folds=folds, k=4, members=2, hyperparameters=FAST_BDT)
    a = train_kfold_classifier(x, y, seed=1, **kw).predict_oof(x, folds)
    np.testing.assert_array_equal(
        a, train_kfold_classifier(x, y, seed=1, **kw).predict_oof(x, folds)
    )
    assert not np.array_equal(a, train_kfold_classifier(x, y, seed=2, **kw).predict_oof(x, folds))


def test_balanced_weights_equalise_the_classes():
    y = np.r_[np.zeros(300), np.ones(100)]
    w = balanced_weights(y, np.r_[np.full(300, 2.0), np.ones(100)])
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert w.mean() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"y": np.full(100, 2)}, "labels 0 and 1"),
        ({"folds": np.full(100, 5)}, r"\[0, 4\)"),
        ({"kind": "svm"}, "kind"),
        ({"hyperparameters": {"max_depht": 3}}, "max_depht"),
    ],
)
def test_bad_arguments_are_refused_by_name(change, match):
    x, y, folds = _gaussians(100, seed=6)
    kw = dict(x=x, y=y, folds=folds, k=4, kind="bdt", members=1, seed=0) | change
    with pytest.raises(ValueError, match=match):
        train_kfold_classifier(**kw)


def test_threads_never_oversubscribe_the_cores():
    cores = threads.available_cores()
    for workers in (1, 2, cores, 4 * cores):
        n = threads.default_threads(workers)
        assert n >= 1
        assert workers * n <= max(cores, workers)
    before = threads.current_threads()
    with threads.limited_threads(1):
        assert threads.current_threads() == 1
    assert threads.current_threads() == before
    from threadpoolctl import threadpool_info

    threads.set_threads(1)
    assert threads.current_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "openmp")


@pytest.mark.parametrize("weighted", [False, True])
def test_uninformative_features_give_balanced_probability_one_half(weighted):
    """Classes of 1:3 with nothing to learn: balanced probabilities sit at 0.5 (prior removed)."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4000, 2))
    y = (rng.random(4000) < 0.25).astype(int)
    folds = rng.integers(0, 2, 4000)
    w = rng.uniform(0.5, 1.5, 4000) if weighted else None
    clf = train_kfold_classifier(x, y, folds=folds, k=2, members=2, seed=0, sample_weight=w,
                                 hyperparameters=FAST_BDT)  # fmt: skip
    assert abs(np.median(clf.predict_oof(x, folds)) - 0.5) < 0.02


def test_models_import_one_way():
    """weak.py and classifiers.py use the shared loop, never train.py (no import cycle)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "adcoffea" / "models"
    for name in ("weak.py", "classifiers.py", "loop.py"):
        tree = ast.parse((root / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "adcoffea.models.train" not in imported, name
