"""Boosted-tree ensembles scored with a few numpy gathers per row (QuickScorer).

scikit-learn's predictor walks every tree row by row, one call per tree: about 30 ns per
tree and row, most of it in branches the CPU cannot predict. A CWoLa bundle of the default
classifier (5 folds x 10 members) puts ~130 trees on every event, so scoring took 13x as
long as the rest of the dijet processor (``benchmarks/throughput.py --cwola``: 0.46M against
6.4M events/s without a model).

QuickScorer (Lucchese et al., SIGIR 2015) turns the walk into bit operations. The leaves of
a tree are numbered left to right and each gets a bit. A split ``x[f] <= t`` that a row
fails sends it right, away from every leaf of its left subtree: its *mask* clears those
bits. The leaf a row reaches is the lowest bit left after clearing the masks of every split
it fails. Whether a row fails a split depends only on where ``x[f]`` falls among the
thresholds on ``f``, so with each feature's thresholds sorted once, a table holds, per tree
and position, the AND of the masks of every split failed there. A row costs one binary
search per feature, one gather per feature and tree, and the lowest set bit.

NaN goes where scikit-learn sends it: a split with ``missing_go_to_left`` keeps it left,
any other sends it right (its own table column). Leaf values are added tree by tree after
the baseline, in scikit-learn's order, so the logits are the same to the bit
(``tests/models/test_quickscorer.py``). Trees of more than 64 leaves do not fit a 64-bit
mask; :func:`supported` says so and the caller walks them with scikit-learn, as it does
with more than :data:`MAX_THREADS` threads, where the walk's OpenMP loop scales better.
All of a block's temporaries live in buffers reused from block to block.

Example:
    >>> import numpy as np
    >>> stump = TreeArrays(baseline=0.5, offsets=np.array([0, 3]),
    ...     feature_idx=np.array([0, 0, 0]), num_threshold=np.array([1.0, 0.0, 0.0]),
    ...     missing_go_to_left=np.array([1, 0, 0]), left=np.array([1, 0, 0]),
    ...     right=np.array([2, 0, 0]), is_leaf=np.array([0, 1, 1]),
    ...     value=np.array([0.0, -1.0, 2.0]))  # fmt: skip
    >>> TreeScorer([stump], n_features=1).logits(np.array([[0.5], [1.5], [np.nan]]))
    array([[-0.5,  2.5, -0.5]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: leaves a tree may have (one bit each in a uint64 mask)
MAX_LEAVES = 64
#: rows per block: a block's (trees x rows) masks stay in the CPU cache (1024: 3.9x faster
#: than scikit-learn on 131 trees and 11.6k rows, against 2.2x for all rows at once)
BLOCK = 1024
#: most threads the scorer is used with: beyond, scikit-learn's walk (OpenMP, no GIL) is
#: taken. On 2 cores (58k rows, 131 trees) the walk went 200 -> 105 ms from 1 to 2 threads
#: and the scorer 67 -> 52 ms (its numpy steps hold the GIL between gathers): the lines
#: cross near 4 threads, an extrapolation (no machine with more cores measured).
MAX_THREADS = 3
#: largest mask tables of one scorer (trees x thresholds per feature x 8 bytes); members
#: beyond it are scored in further groups (10 members of 200 trees on 4 features, each with
#: its own 255 bins, would need ~0.8 GB in one table)
MAX_TABLE_BYTES = 32 * 2**20
_ALL = (1 << 64) - 1


@dataclass(frozen=True)
class TreeArrays:
    """One ensemble's nodes, every tree's concatenated (``offsets``: each tree's first node).

    ``left``/``right`` index the tree's own nodes; the fields are scikit-learn's predictor
    records (``sklearn.ensemble._hist_gradient_boosting.common.PREDICTOR_RECORD_DTYPE``).
    """

    baseline: float
    offsets: np.ndarray
    feature_idx: np.ndarray
    num_threshold: np.ndarray
    missing_go_to_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray


def _leaf_ranges(left: np.ndarray, right: np.ndarray, leaf: np.ndarray) -> tuple:
    """Per node of one tree: its first leaf (left-to-right numbering) and its leaf count."""
    order: list[int] = []  # pre-order: every parent before its children
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if not leaf[i]:
            stack += [int(right[i]), int(left[i])]
    count = np.zeros(len(left), dtype=np.int64)
    for i in reversed(order):
        count[i] = 1 if leaf[i] else count[left[i]] + count[right[i]]
    first = np.zeros(len(left), dtype=np.int64)
    for i in order:
        if not leaf[i]:
            first[left[i]] = first[i]
            first[right[i]] = first[i] + count[left[i]]
    return order, first, count


def supported(ensembles: Sequence[TreeArrays]) -> bool:
    """Whether every tree of ``ensembles`` has at most :data:`MAX_LEAVES` leaves."""
    for e in ensembles:
        for a, b in zip(e.offsets[:-1], e.offsets[1:], strict=True):
            if int(np.count_nonzero(e.is_leaf[a:b])) > MAX_LEAVES:
                return False
    return True


def table_bytes(ensembles: Sequence[TreeArrays]) -> int:
    """Bytes of the mask tables of a :class:`TreeScorer` of ``ensembles``."""
    trees = sum(len(e.offsets) for e in ensembles)  # with each ensemble's baseline row
    thresholds: dict[int, set[float]] = {}
    for e in ensembles:
        split = np.asarray(e.is_leaf) == 0
        for f, t in zip(e.feature_idx[split], e.num_threshold[split], strict=True):
            thresholds.setdefault(int(f), set()).add(float(t))
    return 8 * trees * sum(len(t) + 2 for t in thresholds.values())


def groups(ensembles: Sequence[TreeArrays], *, max_bytes: int = MAX_TABLE_BYTES) -> list:
    """Consecutive ``(start, stop)`` ranges of ``ensembles`` whose tables fit ``max_bytes``
    (an ensemble alone always makes a group)."""
    out: list[tuple[int, int]] = []
    start = 0
    for stop in range(1, len(ensembles) + 1):
        if stop - start > 1 and table_bytes(ensembles[start:stop]) > max_bytes:
            out.append((start, stop - 1))
            start = stop - 1
    if start < len(ensembles):
        out.append((start, len(ensembles)))
    return out


class TreeScorer:
    """The logits of several tree ensembles over the same features, in one pass.

    Args:
        ensembles: the ensembles (e.g. the members of one k-fold fold).
        n_features: columns of the rows to score.

    Raises:
        ValueError: a tree with more than :data:`MAX_LEAVES` leaves.
    """

    def __init__(self, ensembles: Sequence[TreeArrays], *, n_features: int) -> None:
        self.n_features = int(n_features)
        self.n_ensembles = len(ensembles)
        # Rows of the (trees x rows) leaf values: per ensemble, a one-leaf pseudo-tree that
        # holds its baseline, then its trees; summing an ensemble's rows in order gives
        # baseline + tree 0 + tree 1 + ..., scikit-learn's order.
        leaf_values: list[np.ndarray] = []
        self.bounds: list[tuple[int, int]] = []
        node_tree: list[np.ndarray] = []
        node_feature: list[np.ndarray] = []
        node_threshold: list[np.ndarray] = []
        node_mask: list[np.ndarray] = []
        node_nan_right: list[np.ndarray] = []
        for e in ensembles:
            start = len(leaf_values)
            leaf_values.append(np.array([float(e.baseline)]))
            for a, b in zip(e.offsets[:-1], e.offsets[1:], strict=True):
                t = len(leaf_values)
                leaf = np.asarray(e.is_leaf[a:b], dtype=bool)
                left, right = np.asarray(e.left[a:b]), np.asarray(e.right[a:b])
                _, first, count = _leaf_ranges(left, right, leaf)
                if count[0] > MAX_LEAVES:
                    raise ValueError(f"a tree has {count[0]} leaves, more than {MAX_LEAVES}")
                values = np.zeros(int(count[0]))
                values[first[leaf]] = np.asarray(e.value[a:b], dtype=np.float64)[leaf]
                leaf_values.append(values)
                split = np.flatnonzero(~leaf)
                lo, n_left = first[left[split]], count[left[split]]
                # clear the bits lo .. lo + n_left - 1: the leaves of the left subtree
                masks = [
                    _ALL ^ (((1 << int(n)) - 1) << int(s)) for s, n in zip(lo, n_left, strict=True)
                ]
                node_tree.append(np.full(len(split), t))
                node_feature.append(np.asarray(e.feature_idx[a:b])[split].astype(np.int64))
                node_threshold.append(np.asarray(e.num_threshold[a:b], np.float64)[split])
                node_mask.append(np.array(masks, dtype=np.uint64))
                node_nan_right.append(np.asarray(e.missing_go_to_left[a:b])[split] == 0)
            self.bounds.append((start, len(leaf_values)))
        self.n_trees = len(leaf_values)
        widest = max((len(v) for v in leaf_values), default=1)
        self.width = widest
        table = np.zeros((self.n_trees, widest))
        for t, v in enumerate(leaf_values):
            table[t, : len(v)] = v
        self.leaf_values = table.ravel()
        self.row_offset = (np.arange(self.n_trees, dtype=np.int64) * widest)[:, None]

        tree = np.concatenate(node_tree) if node_tree else np.zeros(0, np.int64)
        feature = np.concatenate(node_feature) if node_feature else np.zeros(0, np.int64)
        threshold = np.concatenate(node_threshold) if node_threshold else np.zeros(0)
        mask = np.concatenate(node_mask) if node_mask else np.zeros(0, np.uint64)
        nan_right = np.concatenate(node_nan_right) if node_nan_right else np.zeros(0, bool)
        if len(feature) and (feature.min() < 0 or feature.max() >= self.n_features):
            raise ValueError(f"a split reads a feature outside 0..{self.n_features - 1}")
        #: per feature with splits: (feature, sorted thresholds, (trees, positions + 2) masks)
        self.features: list[tuple[int, np.ndarray, np.ndarray]] = []
        for f in np.unique(feature):
            on = feature == f
            thresholds = np.unique(threshold[on])
            fails = np.full((self.n_trees, len(thresholds) + 2), _ALL, dtype=np.uint64)
            # a row at position p (thresholds[:p] < x) fails the splits at thresholds[:p]
            column = np.searchsorted(thresholds, threshold[on]) + 1
            np.bitwise_and.at(fails, (tree[on], column), mask[on])
            np.bitwise_and.accumulate(fails[:, :-1], axis=1, out=fails[:, :-1])
            nan = on & nan_right
            fails[:, -1] = _ALL
            np.bitwise_and.at(fails[:, -1], tree[nan], mask[nan])
            self.features.append((int(f), thresholds, fails))

    def logits(self, x: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """(ensembles, rows) float64: each ensemble's baseline plus its trees' leaf values.

        ``threads``: blocks of rows scored on this many threads (numpy releases the GIL in
        the gathers); the values do not depend on it.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {x.shape}")
        n = len(x)
        columns = np.ascontiguousarray(x.T)  # one binary search per feature, contiguous
        positions = []
        for f, thresholds, _ in self.features:
            pos = np.searchsorted(thresholds, columns[f], side="left")
            pos[np.isnan(columns[f])] = len(thresholds) + 1
            positions.append(pos)
        out = np.empty((self.n_ensembles, n))
        starts = list(range(0, n, BLOCK))
        k = max(1, min(int(threads), len(starts)))

        def work(mine: list[int]) -> None:
            # every temporary of a block in buffers reused from block to block: fresh
            # megabyte arrays per block were paged in anew (2x slower without adcoffea's
            # allocator settings)
            scratch: dict[int, _Scratch] = {}
            for start in mine:
                m = min(BLOCK, n - start)
                if m not in scratch:
                    scratch[m] = _Scratch(self.n_trees, m)
                self._block(start, positions, out, scratch[m])

        if k > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(k) as pool:
                for done in pool.map(work, [starts[i::k] for i in range(k)]):
                    del done
        else:
            work(starts)
        return out

    def _block(
        self, start: int, positions: list[np.ndarray], out: np.ndarray, buf: _Scratch
    ) -> None:
        """Score the rows ``start .. start + m`` (``m``: the scratch's width) into ``out``."""
        rows = slice(start, start + buf.width)
        reached, tmp = buf.reached, buf.tmp
        if not self.features:
            reached.fill(np.uint64(_ALL))
        for i, ((_, _, masks), pos) in enumerate(zip(self.features, positions, strict=True)):
            masks.take(pos[rows], axis=1, out=reached if i == 0 else tmp)
            if i:
                np.bitwise_and(reached, tmp, out=reached)
        # the lowest set bit, and its index from the exponent of its float64 value
        np.invert(reached, out=tmp)
        tmp += np.uint64(1)
        np.bitwise_and(reached, tmp, out=tmp)
        buf.exponent[...] = tmp  # uint64 -> float64: a power of two, exactly
        leaf = buf.exponent.view(np.int64)
        np.right_shift(leaf, 52, out=leaf)
        leaf -= 1023
        leaf += self.row_offset
        block = buf.values
        self.leaf_values.take(leaf, out=block)
        for e, (a, b) in enumerate(self.bounds):
            if buf.width > 1:
                # numpy reduces a leading axis row after row when the rows hold more than
                # one element (the tests check the bits against scikit-learn)
                np.add.reduce(block[a:b], axis=0, out=out[e, rows])
            else:  # a single column would be summed pairwise: 1 ulp off, seen
                total = out[e, rows]
                total[...] = block[a]
                for r in range(a + 1, b):
                    total += block[r]


class _Scratch:
    """The (trees x rows) buffers of one block."""

    def __init__(self, n_trees: int, width: int) -> None:
        self.width = width
        self.reached = np.empty((n_trees, width), dtype=np.uint64)
        self.tmp = np.empty((n_trees, width), dtype=np.uint64)
        self.exponent = np.empty((n_trees, width), dtype=np.float64)
        self.values = np.empty((n_trees, width), dtype=np.float64)
