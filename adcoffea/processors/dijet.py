"""Dijet resonance search: mjj in anomaly-score regions (LHC Olympics style)."""

from __future__ import annotations

from dataclasses import dataclass

from adcoffea.processors.base import SearchProcessor


@dataclass
class DijetProcessor(SearchProcessor):
    """Histograms ``mjj`` per dataset and region (see :class:`SearchProcessor`)."""

    observable = "mjj"
