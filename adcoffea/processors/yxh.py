"""Y -> X H search: the 2D (m_Y = mjj, m_X) plane.

The H candidate is the jet whose mass is closer to 125 GeV; the other jet is the X candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adcoffea.processors.base import SearchProcessor, make_axis

HIGGS_MASS = 125.0


def x_candidate_index(mass: np.ndarray) -> np.ndarray:
    """Index (0/1) of the X-candidate jet: the one farther from the Higgs mass.

    Args:
        mass: (n, 2) masses of the two selected jets.
    """
    return np.argmax(np.abs(mass - HIGGS_MASS), axis=1)


@dataclass
class YXHProcessor(SearchProcessor):
    """Histograms ``mjj_mx`` (2D) per dataset and region."""

    observable = "mjj_mx"

    def observable_axes(self):
        return [
            make_axis("mjj", self.histograms.mjj, r"$m_{Y} = m_{jj}$ [GeV]"),
            make_axis("mx", self.histograms.mj, r"$m_{X}$ [GeV]"),
        ]

    def observable_values(self, events, sel, feats):
        mass = sel.two("mass")
        ix = x_candidate_index(mass)
        return {"mjj": feats["mjj"], "mx": np.take_along_axis(mass, ix[:, None], axis=1)[:, 0]}
