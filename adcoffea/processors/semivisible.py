"""Semi-visible jet search: transverse mass of the dijet + MET system."""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from adcoffea.errors import InputFileError
from adcoffea.execution.preflight import BranchChoice
from adcoffea.features import MET_FEATURES, met_features, transverse_mass
from adcoffea.processors.base import SearchProcessor, make_axis
from adcoffea.systematics import propagate_to_met

MET_COLLECTIONS = ("PFMET", "MET")


@dataclass
class SemivisibleProcessor(SearchProcessor):
    """Histograms ``mt`` (dijet + MET transverse mass) per dataset and region.

    Models may also use the MET features ``met``, ``rt`` (MET / mT) and ``dphi_min``.
    """

    observable = "mt"
    extra_feature_names = MET_FEATURES

    def extra_branches(self):
        return [BranchChoice("MET", tuple((f"{c}_pt", f"{c}_phi") for c in MET_COLLECTIONS))]

    def varied_events(self, events, factor):
        """The varied jets, and MET corrected for their change (mT is built from both)."""
        # MET first, from the nominal jets in storage order (the factor's order); the jets
        # are varied (and re-sorted) after
        corrected = propagate_to_met(
            events,
            collection=self.selection.jet_collection,
            factor=factor,
            met_collections=MET_COLLECTIONS,
        )
        return super().varied_events(corrected, factor)

    def finite_inputs(self, events):
        pt, phi = self._met(events)
        return np.isfinite(pt) & np.isfinite(phi)

    def observable_axes(self):
        return [make_axis("mt", self.histograms.mt, r"$m_{T}$ [GeV]")]

    def _met(self, events) -> tuple[np.ndarray, np.ndarray]:
        met = next((c for c in MET_COLLECTIONS if c in events.fields), None)
        if met is None:
            raise InputFileError(
                events.metadata.get("filename", "<events>"),
                f"no MET collection (looked for {', '.join(MET_COLLECTIONS)})",
            )
        pt = ak.to_numpy(events[met].pt).astype(np.float64)
        phi = ak.to_numpy(events[met].phi).astype(np.float64)
        return pt, phi

    def _selected_met(self, events, sel) -> tuple[np.ndarray, np.ndarray]:
        """MET (pt, phi) of the selected events, read once per selection."""

        def read() -> tuple[np.ndarray, np.ndarray]:
            pt, phi = self._met(events)
            return pt.take(sel.index), phi.take(sel.index)

        return sel.memo("met", read)

    def observable_values(self, events, sel, feats):
        pt, phi = self._selected_met(events, sel)
        return {"mt": transverse_mass(None, pt, phi, column=sel.two)}

    def extra_features(self, events, sel, feats, obs):
        pt, phi = self._selected_met(events, sel)
        return met_features(None, pt, phi, obs["mt"], column=sel.two)
