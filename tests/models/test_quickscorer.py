"""QuickScorer: the logits of scikit-learn's boosted trees, to the bit, without walking them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from adcoffea.models import quickscorer
from adcoffea.models.nets import TreeEnsemble, member_logits


def _data(n: int, seed: int, *, nan: bool = True):
    """4 features, one unused by the label, with NaN in training (both missing sides)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4))
    x[:, 0] += 0.8 * y
    x[:, 1] *= 1 + y
    x[:, 2] = np.round(x[:, 2], 1)  # ties: rows exactly on a threshold
    if nan:
        x[rng.random(n) < 0.05, 1] = np.nan
        x[(rng.random(n) < 0.1) & (y == 1), 2] = np.nan
    return x, y


def _hard_rows(x: np.ndarray, trees: TreeEnsemble, seed: int) -> np.ndarray:
    """Rows on every threshold, at +-inf and NaN in every feature, and random ones."""
    rng = np.random.default_rng(seed)
    split = trees.is_leaf.numpy() == 0
    feats, thr = trees.feature_idx.numpy()[split], trees.num_threshold.numpy()[split]
    on = rng.normal(size=(len(thr), x.shape[1]))
    on[np.arange(len(thr)), feats] = thr  # exactly on the split: x <= t goes left
    odd = rng.normal(size=(3 * x.shape[1], x.shape[1]))
    for f in range(x.shape[1]):
        odd[3 * f : 3 * f + 3, f] = (np.nan, np.inf, -np.inf)
    return np.concatenate([x, on, odd, np.nextafter(on, np.inf)])


@pytest.mark.parametrize(("leaves", "seed"), [(2, 0), (31, 1), (64, 2), (17, 3)])
def test_logits_equal_sklearn_to_the_bit(leaves, seed):
    x, y = _data(4000, seed)
    clf = HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=leaves, random_state=seed)
    clf.fit(x, y)
    trees = TreeEnsemble.from_sklearn(clf)
    assert trees.scorer() is not None
    rows = _hard_rows(x, trees, seed)
    assert np.isnan(rows).any() and np.isinf(rows).any()
    np.testing.assert_array_equal(trees.logit(rows), clf.decision_function(rows))
    np.testing.assert_array_equal(trees.logit(rows), trees.walk(rows))
    # blocks: a row count that is no multiple of the block, and a single row
    n = quickscorer.BLOCK + 3
    np.testing.assert_array_equal(trees.logit(rows[:n]), clf.decision_function(rows[:n]))
    np.testing.assert_array_equal(trees.logit(rows[:1]), clf.decision_function(rows[:1]))
    # blocks on threads: the same values
    scorer = trees.scorer()
    np.testing.assert_array_equal(scorer.logits(rows, threads=3), scorer.logits(rows))


def test_trees_too_large_for_a_mask_are_walked():
    x, y = _data(6000, 4, nan=False)
    clf = HistGradientBoostingClassifier(
        max_iter=3, max_leaf_nodes=120, min_samples_leaf=2, random_state=0
    ).fit(x, y)
    trees = TreeEnsemble.from_sklearn(clf)
    assert max(p.get_n_leaf_nodes() for [p] in clf._predictors) > quickscorer.MAX_LEAVES
    assert trees.scorer() is None
    with pytest.raises(ValueError, match="more than 64"):
        quickscorer.TreeScorer([trees.arrays()], n_features=4)
    np.testing.assert_array_equal(trees.logit(x), clf.decision_function(x))
    np.testing.assert_array_equal(member_logits([trees], torch.as_tensor(x))[0], trees.walk(x))


def test_members_scored_together_equal_each_alone_and_follow_new_weights():
    x, y = _data(3000, 5)
    members = [
        TreeEnsemble.from_sklearn(
            HistGradientBoostingClassifier(max_iter=10 + 5 * j, random_state=j).fit(x, y)
        )
        for j in range(3)
    ]
    xt = torch.as_tensor(x)
    fused = member_logits(members, xt)
    assert fused.shape == (3, len(x))
    for j, m in enumerate(members):
        np.testing.assert_array_equal(fused[j], m.walk(x))
    # new arrays in a member (a bundle loaded into it): the fused tables are rebuilt
    state = members[1].state_dict()
    state["value"] = 2 * state["value"]
    members[1].load_state_dict(state)
    again = member_logits(members, xt)
    np.testing.assert_array_equal(again[1], members[1].walk(x))
    assert not np.array_equal(again[1], fused[1])


def test_a_tree_without_a_split_gives_its_leaf():
    stump = quickscorer.TreeArrays(
        baseline=0.25, offsets=np.array([0, 1]), feature_idx=np.zeros(1, np.int64),
        num_threshold=np.zeros(1), missing_go_to_left=np.zeros(1, np.uint8),
        left=np.zeros(1, np.int64), right=np.zeros(1, np.int64), is_leaf=np.ones(1, np.uint8),
        value=np.array([1.5]),
    )  # fmt: skip
    out = quickscorer.TreeScorer([stump], n_features=2).logits(np.array([[0.0, np.nan]]))
    np.testing.assert_array_equal(out, [[1.75]])


def test_wrong_feature_count_is_refused():
    x, y = _data(500, 6)
    trees = TreeEnsemble.from_sklearn(HistGradientBoostingClassifier(max_iter=3).fit(x, y))
    with pytest.raises(ValueError, match=r"expected \(n, 4\) features"):
        trees.logit(x[:, :3])


def test_members_beyond_the_table_budget_are_scored_in_groups(monkeypatch):
    x, y = _data(2000, 7)
    members = [
        TreeEnsemble.from_sklearn(
            HistGradientBoostingClassifier(max_iter=8, random_state=j).fit(x, y)
        )
        for j in range(5)
    ]
    arrays = [m.arrays() for m in members]
    one = quickscorer.table_bytes(arrays[:1])
    assert quickscorer.groups(arrays, max_bytes=10**12) == [(0, 5)]
    split = quickscorer.groups(arrays, max_bytes=one)
    assert split == [(j, j + 1) for j in range(5)]  # each alone, even if over the budget
    assert quickscorer.groups(arrays, max_bytes=quickscorer.table_bytes(arrays[:2]))[0] == (0, 2)
    monkeypatch.setattr(
        "adcoffea.models.nets.groups", lambda a: quickscorer.groups(a, max_bytes=one)
    )
    out = member_logits(members, torch.as_tensor(x))
    assert [len(v) for v in members[0]._scorers.values()] == [5]
    for j, m in enumerate(members):
        np.testing.assert_array_equal(out[j], m.walk(x))


def test_many_threads_walk_the_trees_and_no_rows_give_no_logits(monkeypatch):
    x, y = _data(1500, 8)
    trees = TreeEnsemble.from_sklearn(HistGradientBoostingClassifier(max_iter=5).fit(x, y))
    assert trees.scorer().logits(x[:0]).shape == (1, 0)
    used = []
    monkeypatch.setattr(TreeEnsemble, "walk", lambda self, v: used.append(len(v)) or 0)
    monkeypatch.setattr("adcoffea.models.nets.current_threads", lambda: 1)
    trees.logit(x)
    assert used == []
    monkeypatch.setattr("adcoffea.models.nets.current_threads", lambda: quickscorer.MAX_THREADS + 1)
    trees.logit(x)
    assert used == [len(x)]
