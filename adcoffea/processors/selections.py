"""The dijet event selection shared by every search, with its cutflow.

Cuts are applied in a fixed, documented order so that the cutflow is a strict chain:
``events in = events out + sum(removed at each cut)``.

``finite_kinematics`` removes events whose two leading jets (or, for the semi-visible
search, the MET) carry NaN or infinite values: they would otherwise give a NaN or infinite
mjj/mT that lands in an overflow bin, drops out of fits and score regions, and appears in
no cutflow. The processor reports them per file (``run_report.nonfinite``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from adcoffea.columns import counts_and_starts, flat_column
from adcoffea.config import SelectionConfig

#: The cuts of :func:`select_dijets` in cutflow order, after ``all`` (``delta_eta`` only
#: when configured; ``mjj_min``, when configured, comes last).
CUTS = ("two_jets", "finite_kinematics", "jet_pt", "jet_eta", "delta_eta")


@dataclass(frozen=True)
class DijetSelection:
    """Result of :func:`select_dijets` on one chunk.

    Attributes:
        mask: boolean per input event, True if it passes every cut.
        cutflow: cut name -> (events, sum of weights) passing that cut and all before it,
            starting with ``"all"``.
        jets: the two selected jets (leading pt first) of the passing events, an awkward
            array built on first use (the processors read the flat columns instead:
            :meth:`two`, :meth:`by_mass`).
    """

    mask: np.ndarray
    _jets: ak.Array | None = field(default=None, repr=False, compare=False)
    cutflow: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: index, in the flat jet columns, of the leading jet of each selected event
    _first: np.ndarray | None = field(default=None, repr=False, compare=False)
    _all_jets: ak.Array | None = field(default=None, repr=False, compare=False)
    _flat: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def jets(self) -> ak.Array:
        if self._jets is not None:
            return self._jets
        if "jets" not in self._cache:
            assert self._all_jets is not None
            self._cache["jets"] = self._all_jets[self.mask][:, :2]
        return self._cache["jets"]

    def memo(self, key: str, compute: Any) -> Any:
        """``compute()``, once per selection: a value several hooks read (e.g. the MET of
        the selected events)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def index(self) -> np.ndarray:
        """Indices of the selected events in the chunk (``np.flatnonzero(mask)``)."""
        index = self._cache.get("index")
        if index is None:
            index = self._cache["index"] = np.flatnonzero(self.mask)
        return index

    @property
    def jet_index(self) -> np.ndarray:
        """(n selected, 2) indices of the two selected jets in the chunk's flat jet columns."""
        if self._first is None:
            raise ValueError("this selection was not made from a chunk's flat jet columns")
        return np.stack([self._first, self._first + 1], axis=1)

    def _column(self, name: str) -> np.ndarray:
        flat = self._flat.get(name)
        if flat is None:
            assert self._all_jets is not None
            flat = self._flat[name] = flat_column(self._all_jets, name)
        return flat

    def two(self, name: str) -> np.ndarray:
        """(n selected, 2) float64 array of jet field ``name`` of the two selected jets.

        Equal to ``two_columns(self.jets[name])``, but read from the flat column of the
        chunk's jets with numpy indexing (no awkward slicing of the jagged array).
        """
        if self._first is None or self._all_jets is None:
            from adcoffea.features import two_columns

            return two_columns(self.jets[name])
        flat = self._column(name)
        out = np.empty((len(self._first), 2), dtype=np.float64)
        out[:, 0] = flat.take(self._first)
        out[:, 1] = flat.take(self._first + 1)
        return out

    def by_mass(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Field ``name`` of the lighter and of the heavier selected jet (float64), or None
        when the collection has no such field.

        The order of :func:`adcoffea.features.mass_ordered_pairs` (ties: the leading jet is
        the lighter), gathered from the flat columns in that order, so the features need no
        ``np.where`` per field.
        """
        if self._first is None or self._all_jets is None:
            from adcoffea.features import mass_ordered_pairs

            return mass_ordered_pairs(self.jets)(name)
        if name not in self._all_jets.fields:
            return None
        order = self._cache.get("by_mass")
        if order is None:
            # (2, n) flat indices of the (lighter, heavier) jet: one take per field gathers
            # both jets and one astype casts both (two of each per field before)
            mass = self._column("mass")
            m0, m1 = mass.take(self._first), mass.take(self._first + 1)
            second = (m1 < m0) | (np.isnan(m1) & ~np.isnan(m0))
            order = self._cache["by_mass"] = np.empty((2, len(self._first)), dtype=np.int64)
            np.add(self._first, second, out=order[0])
            np.subtract(2 * self._first + 1, order[0], out=order[1])
        pair = self._column(name).take(order).astype(np.float64, copy=False)
        return pair[0], pair[1]


def event_weights(events: ak.Array) -> np.ndarray:
    """Per-event weight: ``genWeight`` for simulation, 1 for data or when absent."""
    if "genWeight" in events.fields:
        return ak.to_numpy(events.genWeight).astype(np.float64)
    return np.ones(len(events), dtype=np.float64)


def select_dijets(
    events: ak.Array,
    config: SelectionConfig,
    *,
    weights: np.ndarray | None = None,
    finite: np.ndarray | None = None,
) -> DijetSelection:
    """Two leading large-R jets with pt above threshold and |eta| below threshold.

    The jets considered are the two leading-pt jets of the collection (NanoAOD stores them
    sorted by pt); an event with fewer than two jets fails the first cut, one whose two
    leading jets have a non-finite pt, eta, phi or mass (or ``finite`` is False: other
    inputs of the observable, e.g. MET) fails ``finite_kinematics``.
    """
    if weights is None:
        weights = event_weights(events)
    jets = events[config.jet_collection]
    n = len(events)

    # numpy on the flat jet columns: the two leading jets of event i are flat[start[i]] and
    # flat[start[i] + 1]. Every cut after "two_jets" is evaluated on the events that have two
    # jets only (the cutflow is cumulative, so the others never pass), as 1D columns: numpy
    # reductions along a length-2 axis cost ~1 us per row, more than the arithmetic. Each
    # event's stage is the number of cuts it passes in order; the cutflow of a cut counts
    # the events whose stage reaches it.
    counts, start = counts_and_starts(jets)
    rows = np.flatnonzero(counts >= 2)
    lead = start.take(rows)
    flat = {name: flat_column(jets, name) for name in ("pt", "eta", "phi", "mass")}
    second = lead + 1
    pt0, pt1, eta0, eta1 = (flat[f].take(i) for f in ("pt", "eta") for i in (lead, second))
    # finite_kinematics: the float64 sum of the eight values is finite iff every one is
    # (inf - inf and NaN give NaN; eight float32 values cannot overflow a float64)
    total = pt0.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf is meant to give NaN here, silently
        for values in (pt1, eta0, eta1):
            total += values
        for f in ("phi", "mass"):
            total += flat[f].take(lead)
            total += flat[f].take(second)
    passed = np.isfinite(total)
    if finite is not None:
        passed &= np.asarray(finite, dtype=bool).take(rows)
    # float64 thresholds: float32 values are compared in float64, as before (a Python float
    # against a float32 array would be rounded to float32 under NumPy 2's promotion rules)
    pt_min, eta_max = np.float64(config.jet_pt_min), np.float64(config.jet_eta_max)
    stage = np.ones(len(rows), dtype=np.int8)  # passed two_jets
    stage += passed
    passed &= (pt0 >= pt_min) & (pt1 >= pt_min)
    stage += passed
    passed &= (np.abs(eta0) < eta_max) & (np.abs(eta1) < eta_max)
    stage += passed
    names = list(CUTS[:4])
    if config.delta_eta_max is not None:
        passed &= np.abs(eta0.astype(np.float64) - eta1) < np.float64(config.delta_eta_max)
        stage += passed
        names.append("delta_eta")
    n_at = np.bincount(stage, minlength=len(names) + 1)
    w_at = np.bincount(stage, weights=weights.take(rows), minlength=len(names) + 1)
    cutflow: dict[str, tuple[int, float]] = {"all": (n, float(weights.sum()))}
    for k, name in enumerate(names, start=1):  # passed cut k and those before: stage >= k
        cutflow[name] = (int(n_at[k:].sum()), float(w_at[k:].sum()))
    # integer indices, not boolean masks: numpy's boolean indexing of a random pattern is
    # about 3x slower than flatnonzero + take, and gives the same elements in the same order
    keep = np.flatnonzero(passed)
    first = lead.take(keep)
    mask = np.zeros(n, dtype=bool)
    mask[rows.take(keep)] = True

    if config.mjj_min is not None:
        from adcoffea.features import invariant_mass

        mjj = invariant_mass(
            *(flat[f].take(first).astype(np.float64) for f in ("pt", "eta", "phi", "mass")),
            *(flat[f].take(first + 1).astype(np.float64) for f in ("pt", "eta", "phi", "mass")),
        )
        above = mjj >= config.mjj_min
        mask[np.flatnonzero(mask)[~above]] = False
        first = first[above]
        cutflow["mjj_min"] = (int(np.count_nonzero(mask)), float(weights[mask].sum()))
    return DijetSelection(
        mask=mask,
        cutflow=cutflow,
        _first=first,
        _all_jets=jets,
        _flat=flat,
    )
