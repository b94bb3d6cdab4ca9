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

import awkward as ak
import numpy as np

from adcoffea.config import SelectionConfig


@dataclass(frozen=True)
class DijetSelection:
    """Result of :func:`select_dijets` on one chunk.

    Attributes:
        mask: boolean per input event, True if it passes every cut.
        jets: the two selected jets (leading pt first) of the passing events.
        cutflow: cut name -> (events, sum of weights) passing that cut and all before it,
            starting with ``"all"``.
    """

    mask: np.ndarray
    jets: ak.Array
    cutflow: dict[str, tuple[int, float]]
    #: index, in the flat jet columns, of the leading jet of each selected event
    _first: np.ndarray | None = field(default=None, repr=False, compare=False)
    _all_jets: ak.Array | None = field(default=None, repr=False, compare=False)
    _flat: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def two(self, name: str) -> np.ndarray:
        """(n selected, 2) float64 array of jet field ``name`` of the two selected jets.

        Equal to ``two_columns(self.jets[name])``, but read from the flat column of the
        chunk's jets with numpy indexing (no awkward slicing of the jagged array).
        """
        if self._first is None or self._all_jets is None:
            from adcoffea.features import two_columns

            return two_columns(self.jets[name])
        flat = self._flat.get(name)
        if flat is None:
            flat = _flat_column(self._all_jets, name)
            self._flat[name] = flat
        out = np.empty((len(self._first), 2), dtype=np.float64)
        out[:, 0] = flat[self._first]
        out[:, 1] = flat[self._first + 1]
        return out


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
        return values[first].astype(np.float64), values[first + 1].astype(np.float64)

    pt0, pt1 = lead("pt")
    eta0, eta1 = lead("eta")
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

    w_rows = weights[rows]
    cutflow: dict[str, tuple[int, float]] = {
        "all": (n, float(weights.sum())),
        "two_jets": (len(rows), float(w_rows.sum())),
    }
    passed = np.ones(len(rows), dtype=bool)
    for name, cut in cuts:
        passed &= cut
        cutflow[name] = (int(np.count_nonzero(passed)), float(w_rows[passed].sum()))
    mask = np.zeros(n, dtype=bool)
    mask[rows[passed]] = True

    selected = jets[mask][:, :2]
    if config.mjj_min is not None:
        mjj = ak.to_numpy((selected[:, 0] + selected[:, 1]).mass) if len(selected) else np.zeros(0)
        keep = mjj >= config.mjj_min
        idx = np.flatnonzero(mask)
        mask[idx[~keep]] = False
        selected = selected[keep]
        cutflow["mjj_min"] = (int(mask.sum()), float(weights[mask].sum()))
    return DijetSelection(
        mask=mask,
        jets=selected,
        cutflow=cutflow,
        _first=start[mask],
        _all_jets=jets,
        _flat=flat,
    )
