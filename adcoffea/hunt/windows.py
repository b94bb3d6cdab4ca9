"""The window rule of the hunt: sliding signal regions (SR) with their own sidebands (SB).

A resonance of unknown mass is searched for in a set of overlapping mass windows:

* **Width.** Every SR has the same *relative* width ``w = (hi - lo) / centre`` (default 0.11,
  385 GeV at 3.5 TeV), the relative width of the LHC Olympics R&D SR (3.3-3.7 TeV, w = 0.114),
  which holds 77 % of its W'. The W' mjj response is a 3.2 % core (69 %) with a 10.6 % wide
  component: the SR spans +-1.7 core widths, 1.5 times the core full width at half maximum
  (7.5 %) and 1.7 times the RMS (6.6 %). Snapped to 100 GeV bins the realised widths vary
  around it (9-13 %, reported per window).
* **Overlap.** Consecutive SRs overlap by ``overlap`` of their width (default one half), so the
  SR centres are log-spaced by ``(1 - overlap) ln((1 + w/2) / (1 - w/2))``. Whatever its mass,
  a signal peak then lies in the inner half of at least one SR.
* **Sidebands.** ``sideband_width`` SR widths (log scale) on each side of the SR, where the
  weakly supervised classifier takes its background-like class.
* **Binning.** Every edge is snapped to the nearest histogram bin edge, so a window's selected
  spectrum is histogrammed with the same bins as the rest of the analysis and a bin is either
  in or out of the SR. Snapping can make two neighbouring windows identical at coarse binning;
  duplicates are dropped.
* **Fit range.** All windows share one fit range (the background fit of a window's selected
  spectrum excludes its SR and interpolates into it); every SR must leave at least
  ``MIN_FIT_BINS`` bins of the fit range on each side.

A fixed window (``fixed_window``) keeps targeted analyses (a known SR) available.

Example:
    >>> import numpy as np
    >>> edges = np.arange(1500.0, 8001.0, 100.0)
    >>> ws = sliding_windows(edges, scan_range=(3000.0, 4500.0), fit_range=(2800.0, 7000.0))
    >>> [(w.sr_lo, w.sr_hi) for w in ws][:3]
    [(3000.0, 3300.0), (3200.0, 3500.0), (3300.0, 3700.0)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError

#: bins of the fit range that must remain on each side of a signal region
MIN_FIT_BINS = 2


@dataclass(frozen=True)
class Window:
    """One signal region with its sidebands and fit range (GeV, edges on histogram edges).

    The SR is ``[sr_lo, sr_hi)``; the sidebands are ``[sb_lo, sr_lo)`` and ``[sr_hi, sb_hi)``;
    the background fit uses ``[fit_lo, fit_hi)`` without the SR.
    """

    index: int
    sr_lo: float
    sr_hi: float
    sb_lo: float
    sb_hi: float
    fit_lo: float
    fit_hi: float

    @property
    def centre(self) -> float:
        """Geometric centre of the SR (the windows are log-spaced)."""
        return math.sqrt(self.sr_lo * self.sr_hi)

    @property
    def signal_region(self) -> tuple[float, float]:
        return (self.sr_lo, self.sr_hi)

    @property
    def sidebands(self) -> tuple[float, float]:
        return (self.sb_lo, self.sb_hi)

    @property
    def fit_range(self) -> tuple[float, float]:
        return (self.fit_lo, self.fit_hi)

    def in_sr(self, m: np.ndarray) -> np.ndarray:
        m = np.asarray(m)
        return (m >= self.sr_lo) & (m < self.sr_hi)

    def in_sidebands(self, m: np.ndarray) -> np.ndarray:
        m = np.asarray(m)
        return ((m >= self.sb_lo) & (m < self.sr_lo)) | ((m >= self.sr_hi) & (m < self.sb_hi))

    def in_fit(self, m: np.ndarray) -> np.ndarray:
        m = np.asarray(m)
        return (m >= self.fit_lo) & (m < self.fit_hi)

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "index": self.index,
            "centre": self.centre,
            "signal_region": [self.sr_lo, self.sr_hi],
            "sidebands": [self.sb_lo, self.sb_hi],
            "fit_range": [self.fit_lo, self.fit_hi],
        }


def _snap(edges: np.ndarray, value: float) -> float:
    return float(edges[int(np.argmin(np.abs(edges - value)))])


def _check_edges(edges: Sequence[float]) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ConfigError("histograms.mjj: the bin edges must be strictly increasing")
    return e


def _fit_bounds(e: np.ndarray, fit_range: Sequence[float]) -> tuple[float, float]:
    lo, hi = _snap(e, float(fit_range[0])), _snap(e, float(fit_range[1]))
    if not hi > lo:
        raise ConfigError(f"hunt.fit_range {tuple(fit_range)}: needs high > low")
    return lo, hi


def _check_inside(e: np.ndarray, w: Window, key: str) -> None:
    below = int(np.sum((e >= w.fit_lo) & (e < w.sr_lo)))
    above = int(np.sum((e > w.sr_hi) & (e <= w.fit_hi)))
    if below < MIN_FIT_BINS or above < MIN_FIT_BINS:
        raise ConfigError(
            f"{key}: signal region [{w.sr_lo:g}, {w.sr_hi:g}] leaves {below} bin(s) below and "
            f"{above} above it in the fit range [{w.fit_lo:g}, {w.fit_hi:g}]; the sideband fit "
            f"needs at least {MIN_FIT_BINS} on each side (widen hunt.fit_range or narrow the scan)"
        )


def sliding_windows(
    edges: Sequence[float],
    *,
    scan_range: Sequence[float],
    fit_range: Sequence[float],
    relative_width: float = 0.11,
    overlap: float = 0.5,
    sideband_width: float = 1.0,
) -> tuple[Window, ...]:
    """Overlapping, log-spaced signal regions covering ``scan_range`` (see the module docstring).

    Args:
        edges: histogram bin edges of the observable (GeV).
        scan_range: ``(low, high)``: the first SR starts at ``low``; SRs are added while their
            upper edge stays at or below ``high`` (before snapping).
        fit_range: ``(low, high)`` of the sideband fit, shared by all windows.
        relative_width: SR width / SR centre.
        overlap: fraction of an SR's width shared with the next one, in [0, 1).
        sideband_width: sideband width on each side, in SR widths (log scale).

    Returns:
        The windows in increasing mass, indexed from 0.
    """
    e = _check_edges(edges)
    lo, hi = float(scan_range[0]), float(scan_range[1])
    if not hi > lo:
        raise ConfigError(f"hunt.range {tuple(scan_range)}: needs high > low")
    if not 0.0 < relative_width < 1.0:
        raise ConfigError(f"hunt.relative_width must be in (0, 1), got {relative_width}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"hunt.overlap must be in [0, 1), got {overlap}")
    if not sideband_width > 0.0:
        raise ConfigError(f"hunt.sideband_width must be > 0, got {sideband_width}")
    f_lo, f_hi = _fit_bounds(e, fit_range)
    # SR [a, a r] with r = (1 + w/2) / (1 - w/2), i.e. width / geometric-ish centre = w
    log_r = math.log((1.0 + relative_width / 2.0) / (1.0 - relative_width / 2.0))
    step = (1.0 - overlap) * log_r
    out: list[Window] = []
    seen: set[tuple[float, float]] = set()
    k = 0
    while True:
        a = lo * math.exp(k * step)
        b = a * math.exp(log_r)
        if b > hi * (1.0 + 1e-9):
            break
        k += 1
        sr = (_snap(e, a), _snap(e, b))
        if sr[1] <= sr[0] or sr in seen:
            continue
        seen.add(sr)
        sb_lo = _snap(e, sr[0] * math.exp(-sideband_width * log_r))
        sb_hi = _snap(e, sr[1] * math.exp(sideband_width * log_r))
        # a sideband must hold at least one bin even where snapping collapses it
        i_lo, i_hi = int(np.searchsorted(e, sr[0])), int(np.searchsorted(e, sr[1]))
        sb_lo = min(sb_lo, float(e[max(i_lo - 1, 0)]))
        sb_hi = max(sb_hi, float(e[min(i_hi + 1, len(e) - 1)]))
        w = Window(len(out), sr[0], sr[1], sb_lo, sb_hi, f_lo, f_hi)
        _check_inside(e, w, "hunt.range")
        out.append(w)
    if not out:
        raise ConfigError(
            f"hunt.range {tuple(scan_range)} is narrower than one signal region "
            f"(relative width {relative_width})"
        )
    return tuple(out)


def fixed_window(
    edges: Sequence[float],
    *,
    signal_region: Sequence[float],
    sidebands: Sequence[float],
    fit_range: Sequence[float],
) -> Window:
    """One window at a given SR (a targeted analysis); edges snapped to the binning."""
    e = _check_edges(edges)
    sr = (_snap(e, float(signal_region[0])), _snap(e, float(signal_region[1])))
    sb = (_snap(e, float(sidebands[0])), _snap(e, float(sidebands[1])))
    if not sb[0] < sr[0] < sr[1] < sb[1]:
        raise ConfigError(
            f"hunt.sidebands {tuple(sidebands)} must enclose hunt.signal_region "
            f"{tuple(signal_region)} with at least one bin on each side"
        )
    w = Window(0, sr[0], sr[1], sb[0], sb[1], *_fit_bounds(e, fit_range))
    _check_inside(e, w, "hunt.signal_region")
    return w


def relative_widths(windows: Sequence[Window]) -> np.ndarray:
    """Realised SR width / centre of each window (after snapping)."""
    return np.array([(w.sr_hi - w.sr_lo) / w.centre for w in windows])


def make_windows(
    edges: Sequence[float], config: Any, fit_range: Sequence[float]
) -> tuple[Window, ...]:
    """The windows of a ``hunt`` config block (sliding, or its fixed window) on ``edges``."""
    if config.signal_region is not None and config.sidebands is not None:
        return (
            fixed_window(
                edges,
                signal_region=config.signal_region,
                sidebands=config.sidebands,
                fit_range=fit_range,
            ),
        )
    return sliding_windows(
        edges,
        scan_range=config.range,
        fit_range=fit_range,
        relative_width=config.relative_width,
        overlap=config.overlap,
        sideband_width=config.sideband_width,
    )


def axis_edges(cfg: Any, observable: str) -> np.ndarray:
    """Bin edges of the configured histogram axis ``cfg.histograms.<observable>``."""
    axis = getattr(cfg.histograms, observable)
    if axis.edges is not None:
        return np.asarray(axis.edges, dtype=float)
    return np.linspace(axis.start, axis.stop, axis.bins + 1)
