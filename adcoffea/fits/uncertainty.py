"""Fit-function uncertainty: how much the background prediction depends on the function choice.

What is computed, and why:

- **Envelope of alternative functions fitted to the same data (always).** The nominal function
  (family and order from the order selection) is compared with (a) the same family at one
  more parameter and (b) alternative families (default ``expo`` and ``power``, the UA2 form
  ``x^-p1 exp(-p2 x - p3 x^2 ...)``), each at the order its own Wilks test chooses among
  ``n_params`` and ``n_params + 1``, all fitted to the same bins (same range and excluded
  window). Only alternatives that describe the data (chi2 p >= ``min_pvalue``, or at least as
  well as the nominal) enter. The per-bin uncertainty is the largest ``|alternative -
  nominal|`` in each bin; the uncertainty of a window of bins is the largest ``|sum over the
  window of (alternative - nominal)|`` (one alternative moves all bins together). This is the
  ATLAS dijet "function choice" uncertainty. It is data-driven, so it exists for every region,
  including the anomaly-selected ones for which no trustworthy simulation exists (the issue
  that motivated it: a generator whose QCD shape no dijet fit describes).
- **Spurious signal from a high-statistics background template (optional).** With
  ``template`` given, signal + background fits to the signal-free template (scaled to the
  data yield) at each mass give ``S_spur(m)``; its per-bin footprint ``|S_spur(m)| s_m(i)`` and
  per-window sum enter as a second estimate, and the larger of the two is quoted. This catches
  mis-modelling the data cannot reveal at its own statistics, when a template is available.

Use:

- BumpHunter: ``bumphunt(data, bkg, bkg_uncertainty=u.embed(all_edges),
  bkg_correlated=True)``: the per-bin values summed linearly within a window (a conservative
  bound on :meth:`FitFunctionUncertainty.window`), folded in with the Gamma prior.
- pyhf: ``build_workspace(data, fit, signal, fit_function_uncertainty=u)`` adds one
  ``histosys`` nuisance parameter ``fit_function`` with ``nominal +- per_bin``.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 7000.0, 44)
    >>> data = np.random.default_rng(1).poisson(expected_counts(edges, [5e4, 7.8, 5.26, 1.13]))
    >>> u = fit_function_uncertainty(data.astype(float), edges=edges, n_params=4)
    >>> u.method, len(u.per_bin) == 43, bool(np.all(u.per_bin >= 0))
    ('envelope', True, True)
    >>> bool(u.window(4400.0, 5000.0) <= u.per_bin[17:23].sum())
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcoffea.errors import AdcoffeaError, ConfigError
from adcoffea.fits.background import FitResult, fit_background, histogram_arrays, range_slice
from adcoffea.fits.functions import get_family
from adcoffea.fits.order import select_order
from adcoffea.fits.signal import signal_shape
from adcoffea.fits.spurious import spurious_signal_scan
from adcoffea.outputs import to_jsonable

__all__ = ["FitFunctionUncertainty", "fit_function_uncertainty"]


@dataclass(frozen=True)
class FitFunctionUncertainty:
    """Per-bin and per-window uncertainty of a background fit from the choice of function.

    Attributes:
        method: ``"envelope"`` or ``"envelope+spurious"``.
        function, n_params: the nominal model.
        edges: edges of the fitted bins (GeV); all arrays below are per fitted bin.
        nominal: the nominal fit's background.
        per_bin: the uncertainty per bin (max of envelope and spurious footprint).
        envelope: max over used alternatives of ``|alternative - nominal|``.
        deviations: signed ``alternative - nominal`` of each used alternative (rows).
        spurious_per_bin: ``max_m |S_spur(m)| s_m(i)`` (zeros without a template).
        alternatives: one dict per alternative tried: function, n_params, chi2 p-value,
            whether it was used and why (not).
        spurious: spurious-signal rows per mass (empty without a template).
        min_pvalue: adequacy threshold for the alternatives.
        exclude: the window left out of every fit, if any.
    """

    method: str
    function: str
    n_params: int
    edges: np.ndarray
    nominal: np.ndarray
    per_bin: np.ndarray
    envelope: np.ndarray
    deviations: np.ndarray
    spurious_per_bin: np.ndarray
    alternatives: tuple[dict, ...]
    spurious: tuple[dict, ...] = ()
    min_pvalue: float = 0.01
    exclude: tuple[float, float] | None = None
    _shapes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    @property
    def relative(self) -> np.ndarray:
        """``per_bin / nominal`` (0 where the nominal is 0)."""
        nom = np.asarray(self.nominal, dtype=float)
        return np.divide(self.per_bin, nom, out=np.zeros_like(nom), where=nom > 0)

    def window_bins(self, first: int, stop: int) -> float:
        """Uncertainty of the background summed over fitted bins ``first:stop``.

        The envelope part is the largest ``|sum (alternative - nominal)|`` over the window (each
        alternative shifts the bins of a window coherently); the spurious part the largest
        ``|S_spur(m)|`` times the fraction of that signal inside the window. The larger is
        returned, as for :attr:`per_bin`.
        """
        if not 0 <= first < stop <= len(self.per_bin):
            raise ConfigError(f"window bins [{first}, {stop}) outside 0..{len(self.per_bin)}")
        env = 0.0
        if self.deviations.size:
            env = float(np.max(np.abs(self.deviations[:, first:stop].sum(axis=1))))
        spur = 0.0
        if self._shapes.size:
            s = np.array([abs(r["s_spur"]) for r in self.spurious])
            spur = float(np.max(s * self._shapes[:, first:stop].sum(axis=1)))
        return max(env, spur)

    def window(self, low: float, high: float) -> float:
        """Uncertainty of the background summed over the fitted bins overlapping [low, high)."""
        e = self.edges
        inside = np.nonzero((e[1:] > low) & (e[:-1] < high))[0]
        if inside.size == 0:
            raise ConfigError(f"window ({low}, {high}) overlaps no fitted bin [{e[0]}, {e[-1]}]")
        return self.window_bins(int(inside[0]), int(inside[-1]) + 1)

    def embed(self, all_edges: np.ndarray) -> np.ndarray:
        """:attr:`per_bin` on a wider binning that contains the fitted bins (0 elsewhere).

        The form :func:`adcoffea.fits.bumphunter.bumphunt` takes as ``bkg_uncertainty``.
        """
        all_edges = np.asarray(all_edges, dtype=float)
        lo = int(np.argmin(np.abs(all_edges - self.edges[0])))
        n = len(self.per_bin)
        if lo + n >= len(all_edges) or not np.allclose(
            all_edges[lo : lo + n + 1], self.edges, rtol=1e-9, atol=0
        ):
            raise ConfigError("all_edges does not contain the fitted bins of the uncertainty")
        out = np.zeros(len(all_edges) - 1)
        out[lo : lo + n] = self.per_bin
        return out

    def histosys(self) -> tuple[np.ndarray, np.ndarray]:
        """``(up, down)`` background shapes ``nominal +- per_bin`` (down floored above 0).

        One pyhf ``histosys`` nuisance parameter: the function-choice shift moves all bins
        together. The floor keeps pyhf's Poisson terms defined where the uncertainty exceeds
        the nominal (far tails).
        """
        up = self.nominal + self.per_bin
        down = np.maximum(self.nominal - self.per_bin, 1e-3 * self.nominal)
        return up, down

    def to_dict(self) -> dict:
        """JSON-ready summary, per bin and per alternative."""
        return to_jsonable(
            {
                "method": self.method,
                "function": self.function,
                "n_params": self.n_params,
                "edges": self.edges,
                "nominal": self.nominal,
                "per_bin": self.per_bin,
                "relative": self.relative,
                "envelope": self.envelope,
                "spurious_per_bin": self.spurious_per_bin,
                "alternatives": list(self.alternatives),
                "spurious": list(self.spurious),
                "min_pvalue": self.min_pvalue,
                "exclude": None if self.exclude is None else list(self.exclude),
            }
        )


def _alternative(
    data: Any,
    nominal: FitResult,
    *,
    function: str,
    orders: Sequence[int],
    common: dict,
    alpha: float,
) -> tuple[FitResult | None, dict]:
    """The alternative ``function`` at its Wilks-chosen order among ``orders``."""
    row: dict[str, Any] = {"function": function, "n_params": None, "pvalue": None}
    fam = get_family(function)
    orders = [n for n in orders if fam.min_params <= n <= fam.max_params]
    if not orders:
        return None, {**row, "used": False, "reason": "no order in range"}
    try:
        if len(orders) == 1:
            fit = fit_background(data, function=function, n_params=orders[0], **common)
        else:
            fit = select_order(data, function=function, n_params=orders, alpha=alpha, **common).best
    except AdcoffeaError as err:
        return None, {**row, "used": False, "reason": f"cannot be fitted: {err}"}
    row.update(n_params=fit.n_params, pvalue=fit.pvalue, converged=fit.converged)
    if not fit.converged:
        return None, {**row, "used": False, "reason": "fit did not converge"}
    good = fit.adequate or (np.isfinite(fit.pvalue) and fit.pvalue >= nominal.pvalue)
    if not good:
        reason = f"does not describe the data (chi2 p = {fit.pvalue:.3g} < {fit.min_pvalue})"
        return None, {**row, "used": False, "reason": reason}
    dev = fit.background - nominal.background
    row.update(used=True, reason="adequate", max_abs_deviation=float(np.max(np.abs(dev))))
    return fit, row


def fit_function_uncertainty(
    data: Any,
    *,
    edges: np.ndarray | None = None,
    function: str = "dijet",
    n_params: int = 4,
    sqrt_s: float = 13000.0,
    fit_range: Sequence[float] | None = None,
    exclude: Sequence[float] | None = None,
    alternatives: Sequence[str] = ("expo", "power"),
    next_order: bool = True,
    alpha: float = 0.05,
    min_pvalue: float = 0.01,
    nominal: FitResult | None = None,
    template: Any = None,
    masses: Sequence[float] | None = None,
    rel_width: float = 0.05,
) -> FitFunctionUncertainty:
    """Per-bin and per-window fit-function uncertainty of a background fit to ``data``.

    Args:
        data: the spectrum (``hist.Hist`` or counts with ``edges``).
        edges: bin edges (GeV) for array input.
        function, n_params, sqrt_s: the nominal model (e.g. the order selection's choice).
        fit_range, exclude: as in :func:`adcoffea.fits.background.fit_background`; every fit
            uses the same bins.
        alternatives: other families, each at its Wilks-chosen order in
            ``(n_params, n_params + 1)``.
        next_order: also compare with the nominal family at ``n_params + 1``.
        alpha: size of the Wilks test choosing each alternative's order.
        min_pvalue: chi2 p-value an alternative needs to enter (or the nominal's p-value).
        nominal: the nominal fit if already done (must match the options above).
        template: optional high-statistics background template (same binning as ``data``)
            for the spurious-signal estimate.
        masses: signal masses of the spurious-signal scan (default: every bin centre but the
            two outermost bins at each end).
        rel_width: Gaussian signal width / mass for the spurious-signal scan.

    Returns:
        A :class:`FitFunctionUncertainty` over the nominal fit's bins.

    Raises:
        ConfigError: bad options, or a nominal fit that cannot be done.
    """
    common = {
        "edges": edges,
        "sqrt_s": sqrt_s,
        "fit_range": fit_range,
        "exclude": exclude,
        "min_pvalue": min_pvalue,
    }
    if nominal is None:
        nominal = fit_background(data, function=function, n_params=n_params, **common)
    elif nominal.function != function or nominal.n_params != n_params:
        raise ConfigError(
            f"nominal is a {nominal.n_params}-parameter {nominal.function} fit, but "
            f"function={function!r}, n_params={n_params}"
        )
    fits: list[FitResult] = []
    rows: list[dict] = []
    todo: list[tuple[str, list[int]]] = []
    if next_order:
        todo.append((function, [n_params + 1]))
    for fam in alternatives:
        get_family(fam)
        if fam == function:
            raise ConfigError(f"alternatives must differ from the nominal family {function!r}")
        todo.append((fam, [n_params, n_params + 1]))
    for fam, orders in todo:
        fit, row = _alternative(
            data, nominal, function=fam, orders=orders, common=common, alpha=alpha
        )
        rows.append(row)
        if fit is not None:
            fits.append(fit)
    nb = len(nominal.background)
    deviations = (
        np.array([f.background - nominal.background for f in fits]) if fits else np.zeros((0, nb))
    )
    envelope = np.max(np.abs(deviations), axis=0) if fits else np.zeros(nb)

    spur_rows: tuple[dict, ...] = ()
    spur_bin = np.zeros(nb)
    shapes = np.zeros((0, 0))
    if template is not None:
        spur_rows, spur_bin, shapes = _spurious(
            data,
            template,
            nominal,
            masses=masses,
            rel_width=rel_width,
            edges=edges,
            fit_range=fit_range,
        )
    per_bin = np.maximum(envelope, spur_bin)
    return FitFunctionUncertainty(
        method="envelope" if template is None else "envelope+spurious",
        function=function,
        n_params=int(n_params),
        edges=nominal.edges,
        nominal=nominal.background,
        per_bin=per_bin,
        envelope=envelope,
        deviations=deviations,
        spurious_per_bin=spur_bin,
        alternatives=tuple(rows),
        spurious=spur_rows,
        min_pvalue=float(min_pvalue),
        exclude=None if exclude is None else (float(exclude[0]), float(exclude[1])),
        _shapes=shapes,
    )


def _spurious(
    data: Any,
    template: Any,
    nominal: FitResult,
    *,
    masses: Sequence[float] | None,
    rel_width: float,
    edges: np.ndarray | None,
    fit_range: Sequence[float] | None,
) -> tuple[tuple[dict, ...], np.ndarray, np.ndarray]:
    """Spurious-signal rows, their per-bin footprint and the signal shapes (rows) per mass."""
    all_edges, counts = histogram_arrays(data, edges=edges)
    t_edges, _ = histogram_arrays(template, edges=edges if edges is not None else all_edges)
    if len(t_edges) != len(all_edges) or not np.allclose(t_edges, all_edges, rtol=1e-9):
        raise ConfigError("template must have the binning of the data")
    e = nominal.edges
    if masses is None:
        centres = 0.5 * (e[1:] + e[:-1])
        masses = centres[2:-2] if len(centres) > 4 else centres
    sl = range_slice(all_edges, fit_range)
    scan = spurious_signal_scan(
        template,
        edges=edges,
        masses=masses,
        function=nominal.function,
        n_params=nominal.n_params,
        sqrt_s=nominal.sqrt_s,
        rel_width=rel_width,
        fit_range=fit_range,
        data_yield=float(counts[sl].sum()),
    )
    shapes = np.array([signal_shape(e, float(r["mass"]), rel_width=rel_width) for r in scan.rows])
    s = np.abs(np.array([r["s_spur"] for r in scan.rows]))
    per_bin = np.max(s[:, None] * shapes, axis=0)
    return scan.rows, per_bin, shapes
