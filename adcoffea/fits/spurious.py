"""Spurious signal and signal-injection bias of a background function choice.

- Spurious signal: fit signal+background to a signal-free, high-statistics background template
  (e.g. simulation, or a smooth alternative function) across a mass scan. The fitted signal
  yield ``S_spur`` is the bias the function's mis-modelling induces; it is compared with the
  statistical uncertainty ``sigma_stat`` of the signal yield expected in data.
- Injection bias: Poisson toys of background plus an injected signal, fitted with S+B; the
  pull ``(S_fit - S_inj) / sigma_S`` should have mean ~0 and width ~1.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 6000.0, 34)
    >>> b = expected_counts(edges, [2e4, 7.80, 5.26, 1.13])
    >>> scan = spurious_signal_scan(b, edges=edges, masses=[3500.0], n_params=4)
    >>> bool(abs(scan.rows[0]["s_spur_over_sigma"]) < 0.05)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_arrays, histogram_arrays, range_slice
from adcoffea.fits.signal import signal_shape
from adcoffea.outputs import to_jsonable


@dataclass(frozen=True)
class SpuriousScan:
    """Per mass: fitted spurious signal, its fit error and the data-like statistical error."""

    function: str
    n_params: int
    rows: tuple[dict, ...]

    @property
    def max_ratio(self) -> float:
        return float(max(abs(r["s_spur_over_sigma"]) for r in self.rows))

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "function": self.function,
                "n_params": self.n_params,
                "max_abs_s_spur_over_sigma": self.max_ratio,
                "rows": list(self.rows),
            }
        )


def spurious_signal_scan(
    template: Any,
    *,
    edges: np.ndarray | None = None,
    masses: Sequence[float],
    function: str = "dijet",
    n_params: int = 4,
    sqrt_s: float = 13000.0,
    rel_width: float = 0.05,
    templates: Sequence[tuple[float, np.ndarray, np.ndarray]] | None = None,
    fit_range: Sequence[float] | None = None,
    data_yield: float | None = None,
) -> SpuriousScan:
    """Fit S+B to a signal-free template at each mass; report ``S_spur`` and ``S_spur/sigma_stat``.

    Args:
        template: background-only histogram or counts (weights allowed: no Poisson draw).
        edges: bin edges (GeV) for array input.
        masses: signal masses (GeV).
        function, n_params, sqrt_s: background model.
        rel_width: Gaussian signal width / mass (ignored when ``templates`` are given).
        templates: signal templates ``(mass, edges, counts)`` to interpolate instead.
        fit_range: ``(low, high)`` GeV.
        data_yield: total events expected in data in the fit range; the template is scaled to
            it so that ``sigma_stat`` is the signal-yield uncertainty of a data-sized sample.
    """
    masses = [float(m) for m in np.atleast_1d(np.asarray(masses, dtype=float))]
    if not masses:
        raise ConfigError("masses must list at least one signal mass (GeV)")
    all_edges, counts = histogram_arrays(template, edges=edges)
    sl = range_slice(all_edges, fit_range)
    e = all_edges[sl.start : sl.stop + 1]
    n = counts[sl].astype(float)
    outside = [m for m in masses if not (np.isfinite(m) and e[0] < m < e[-1])]
    if outside:
        raise ConfigError(
            f"masses {outside} lie outside the fitted range [{e[0]:g}, {e[-1]:g}] GeV"
        )
    if not n.sum() > 0:
        raise ConfigError("template: no events in the fit range; nothing to fit")
    if data_yield is not None:
        if not (np.isfinite(data_yield) and float(data_yield) > 0):
            raise ConfigError(f"data_yield must be a positive number of events, got {data_yield!r}")
        n = n * (float(data_yield) / n.sum())
    bkg_only = fit_arrays(e, n, function=function, n_params=n_params, sqrt_s=sqrt_s)
    rows = []
    for mass in masses:
        shape = signal_shape(e, float(mass), rel_width=rel_width, templates=templates)
        res = fit_arrays(
            e,
            n,
            function=function,
            n_params=n_params,
            sqrt_s=sqrt_s,
            signal=shape,
            start=[*bkg_only.values, 0.0],
        )
        s, err = res.signal_yield, res.signal_error
        rows.append(
            {
                "mass": float(mass),
                "s_spur": s,
                "sigma_stat": err,
                "s_spur_over_sigma": s / err if err > 0 else float("nan"),
                "signal_fraction_in_range": float(shape.sum()),
                "converged": res.converged,
            }
        )
    return SpuriousScan(function, n_params, tuple(rows))


@dataclass(frozen=True)
class InjectionBias:
    """Pulls of the fitted signal yield over Poisson toys with a known injected signal."""

    mass: float
    injected: float
    fitted: np.ndarray
    errors: np.ndarray
    pulls: np.ndarray

    @property
    def pull_mean(self) -> float:
        return float(np.mean(self.pulls))

    @property
    def pull_std(self) -> float:
        return float(np.std(self.pulls, ddof=1))

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "mass": self.mass,
                "injected": self.injected,
                "n_toys": len(self.pulls),
                "fitted_mean": float(np.mean(self.fitted)),
                "pull_mean": self.pull_mean,
                "pull_std": self.pull_std,
                "pulls": self.pulls,
            }
        )


def injection_bias(
    background: np.ndarray,
    *,
    edges: np.ndarray,
    mass: float,
    injected: float,
    n_toys: int = 100,
    seed: int = 0,
    function: str = "dijet",
    n_params: int = 4,
    sqrt_s: float = 13000.0,
    rel_width: float = 0.05,
    templates: Sequence[tuple[float, np.ndarray, np.ndarray]] | None = None,
    fit_shape: np.ndarray | None = None,
) -> InjectionBias:
    """Poisson toys of ``background + injected * shape``, each fitted with S+B.

    Args:
        background: expected background counts per bin (the truth of the toys).
        edges: bin edges (GeV).
        mass: signal mass (GeV).
        injected: injected signal yield (events, over all bins).
        n_toys: number of toys; ``seed`` makes them reproducible.
        fit_shape: signal shape used in the fit if different from the injected one.
    """
    edges = np.asarray(edges, dtype=float)
    background = np.asarray(background, dtype=float)
    if int(n_toys) != n_toys or n_toys < 2:
        raise ConfigError(f"n_toys must be an integer >= 2, got {n_toys!r}")
    if not np.isfinite(injected):
        raise ConfigError(f"injected must be a finite signal yield, got {injected!r}")
    if background.shape != (len(edges) - 1,) or not np.all(np.isfinite(background)):
        raise ConfigError("background must be finite counts, one per bin of edges")
    if np.any(background < 0):
        raise ConfigError("background must be >= 0 in every bin")
    shape = signal_shape(edges, mass, rel_width=rel_width, templates=templates)
    fshape = shape if fit_shape is None else np.asarray(fit_shape, dtype=float)
    rng = np.random.default_rng(seed)
    toys = rng.poisson(background + injected * shape, size=(n_toys, len(background)))
    fitted, errors = np.empty(n_toys), np.empty(n_toys)
    start = None
    for i, toy in enumerate(toys):
        res = fit_arrays(
            edges,
            toy.astype(float),
            function=function,
            n_params=n_params,
            sqrt_s=sqrt_s,
            signal=fshape,
            start=None if start is None else [toy.sum(), *start, float(injected)],
        )
        if start is None:
            start = res.values[1:n_params]
        fitted[i], errors[i] = res.signal_yield, res.signal_error
    pulls = (fitted - injected) / errors
    return InjectionBias(float(mass), float(injected), fitted, errors, pulls)
