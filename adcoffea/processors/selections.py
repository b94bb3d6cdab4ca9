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

from adcoffea.config import SelectionConfig


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
            flat = self._flat[name] = _flat_column(self._all_jets, name)
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
            mass = self._column("mass")
            m0, m1 = mass.take(self._first), mass.take(self._first + 1)
            second = ((m1 < m0) | (np.isnan(m1) & ~np.isnan(m0))).astype(np.int64)
            order = self._cache["by_mass"] = (self._first + second, self._first + 1 - second)
        flat = self._column(name)
        return flat.take(order[0]).astype(np.float64), flat.take(order[1]).astype(np.float64)


def _flat_column(jets: ak.Array, name: str) -> np.ndarray:
    """All jets' ``name`` values of the chunk, concatenated (numpy)."""
    return ak.to_numpy(ak.flatten(jets[name], axis=1))


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
    # reductions along a length-2 axis cost ~1 us per row, more than the arithmetic.
    counts = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    start = np.cumsum(counts) - counts
    rows = np.flatnonzero(counts >= 2)
    first = start[rows]
    flat: dict[str, np.ndarray] = {}

    def lead(name: str) -> tuple[np.ndarray, np.ndarray]:
        flat[name] = values = _flat_column(jets, name)
        return values.take(first), values.take(first + 1)

    # cuts compare float64 values (as the thresholds are); finiteness needs no cast
    pt0, pt1 = (a.astype(np.float64) for a in lead("pt"))
    eta0, eta1 = (a.astype(np.float64) for a in lead("eta"))
    ok = np.isfinite(pt0) & np.isfinite(pt1) & np.isfinite(eta0) & np.isfinite(eta1)
    for name in ("phi", "mass"):
        a, b = lead(name)
        ok &= np.isfinite(a) & np.isfinite(b)
    if finite is not None:
        ok &= np.asarray(finite, dtype=bool)[rows]
    cuts: list[tuple[str, np.ndarray]] = [
        ("finite_kinematics", ok),
        ("jet_pt", (pt0 >= config.jet_pt_min) & (pt1 >= config.jet_pt_min)),
        ("jet_eta", (np.abs(eta0) < config.jet_eta_max) & (np.abs(eta1) < config.jet_eta_max)),
    ]
    if config.delta_eta_max is not None:
        cuts.append(("delta_eta", np.abs(eta0 - eta1) < config.delta_eta_max))

    w_rows = weights.take(rows)
    cutflow: dict[str, tuple[int, float]] = {
        "all": (n, float(weights.sum())),
        "two_jets": (len(rows), float(w_rows.sum())),
    }
    # integer indices, not boolean masks: numpy's boolean indexing of a random pattern is
    # about 3x slower than flatnonzero + take, and gives the same elements in the same order
    passed = np.ones(len(rows), dtype=bool)
    for name, cut in cuts:
        passed &= cut
        keep = np.flatnonzero(passed)
        cutflow[name] = (len(keep), float(w_rows.take(keep).sum()))
    mask = np.zeros(n, dtype=bool)
    mask[rows[np.flatnonzero(passed)]] = True

    if config.mjj_min is not None:
        from adcoffea.features import invariant_mass

        first = start[mask]
        mjj = invariant_mass(
            *(flat[f].take(first).astype(np.float64) for f in ("pt", "eta", "phi", "mass")),
            *(flat[f].take(first + 1).astype(np.float64) for f in ("pt", "eta", "phi", "mass")),
        )
        idx = np.flatnonzero(mask)
        mask[idx[~(mjj >= config.mjj_min)]] = False
        cutflow["mjj_min"] = (int(np.count_nonzero(mask)), float(weights[mask].sum()))
    return DijetSelection(
        mask=mask,
        cutflow=cutflow,
        _first=start[mask],
        _all_jets=jets,
        _flat=flat,
    )
