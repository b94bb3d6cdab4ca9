"""The dijet event selection shared by every search, with its cutflow.

Cuts are applied in a fixed, documented order so that the cutflow is a strict chain:
``events in = events out + sum(removed at each cut)``.

``finite_kinematics`` removes events whose two leading jets (or, for the semi-visible
search, the MET) carry NaN or infinite values: they would otherwise give a NaN or infinite
mjj/mT that lands in an overflow bin, drops out of fits and score regions, and appears in
no cutflow. The processor reports them per file (``run_report.nonfinite``).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    cuts: list[tuple[str, np.ndarray]] = []
    has_two = ak.to_numpy(ak.num(jets, axis=1) >= 2)
    cuts.append(("two_jets", has_two))
    lead = ak.pad_none(jets, 2, axis=1, clip=True)
    pt = ak.to_numpy(ak.fill_none(lead.pt, 0.0)).astype(np.float64)
    eta = ak.to_numpy(ak.fill_none(lead.eta, 99.0)).astype(np.float64)
    ok = np.isfinite(pt).all(axis=1) & np.isfinite(eta).all(axis=1)
    for name in ("phi", "mass"):
        ok &= np.isfinite(ak.to_numpy(ak.fill_none(lead[name], 0.0)).astype(np.float64)).all(1)
    if finite is not None:
        ok &= np.asarray(finite, dtype=bool)
    cuts.append(("finite_kinematics", ok))
    cuts.append(("jet_pt", (pt >= config.jet_pt_min).all(axis=1)))
    cuts.append(("jet_eta", (np.abs(eta) < config.jet_eta_max).all(axis=1)))
    if config.delta_eta_max is not None:
        cuts.append(("delta_eta", np.abs(eta[:, 0] - eta[:, 1]) < config.delta_eta_max))

    mask = np.ones(n, dtype=bool)
    cutflow: dict[str, tuple[int, float]] = {"all": (n, float(weights.sum()))}
    for name, passed in cuts:
        mask &= passed
        cutflow[name] = (int(mask.sum()), float(weights[mask].sum()))

    selected = jets[mask][:, :2]
    if config.mjj_min is not None:
        mjj = ak.to_numpy((selected[:, 0] + selected[:, 1]).mass) if len(selected) else np.zeros(0)
        keep = mjj >= config.mjj_min
        idx = np.flatnonzero(mask)
        mask[idx[~keep]] = False
        selected = selected[keep]
        cutflow["mjj_min"] = (int(mask.sum()), float(weights[mask].sum()))
    return DijetSelection(mask=mask, jets=selected, cutflow=cutflow)
