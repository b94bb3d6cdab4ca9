"""Guarded refit: accept a background fit that leaves a bump window out only when it is safe.

A significant bump may have pulled the background fit towards it; the ATLAS dijet procedure
refits with the bump window excluded and scans again. Excluding the window also frees the
function to do anything there, so a shape mismatch can turn into a larger "excess". The
refit is therefore accepted only if

1. it converged and still describes the data outside the window (its chi2 p-value, computed
   on the bins it fitted, is at least ``min_pvalue``), and
2. an alternative function fitted with the same window excluded predicts the same background
   in the window, within ``n_sigma`` times the fit-function uncertainty of the window (from
   :func:`adcoffea.fits.uncertainty.fit_function_uncertainty` on the fit *without* the
   exclusion: how well the function is known where the data constrain it).

Otherwise the original fit is kept: it absorbs part of any signal, so its excess (and
significance) is the conservative one. :func:`guarded_refit` only decides; it fits nothing.

The bar is strict on purpose: with the window constrained by data the function choice is
known to within the envelope, and a refit whose interpolation depends on the function by
more than that is not trusted. On background-only spectra of the nominal family (1e5
events, a 600 GeV window) two refits in six were refused this way, i.e. kept conservative;
with a real bump in the window the envelope of the full fit widens and the refit passes.

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.background import fit_background
    >>> from adcoffea.fits.functions import expected_counts
    >>> from adcoffea.fits.signal import gaussian_signal
    >>> from adcoffea.fits.uncertainty import fit_function_uncertainty
    >>> edges = np.linspace(2700.0, 7000.0, 44)
    >>> truth = expected_counts(edges, [1e5, 7.8, 5.26, 1.13])
    >>> truth += 800.0 * gaussian_signal(edges, 4000.0, rel_width=0.05)  # a bump at 4 TeV
    >>> data = np.random.default_rng(1).poisson(truth).astype(float)
    >>> window = (3700.0, 4300.0)
    >>> original = fit_background(data, edges=edges, n_params=4)
    >>> refit = fit_background(data, edges=edges, n_params=4, exclude=window)
    >>> alt = fit_background(data, edges=edges, n_params=4, function="power", exclude=window)
    >>> unc = fit_function_uncertainty(data, edges=edges, n_params=4, nominal=original)
    >>> d = guarded_refit(original, refit, window=window, alternative=alt, uncertainty=unc)
    >>> d.accepted, d.kept
    (True, 'refit')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.fits.background import FitResult
from adcoffea.outputs import to_jsonable

__all__ = ["RefitDecision", "guarded_refit"]


@dataclass(frozen=True)
class RefitDecision:
    """Whether the window-excluded refit replaces the original fit, and why.

    Attributes:
        accepted: the refit passed every check.
        kept: ``"refit"`` or ``"original"`` (the conservative result).
        reason: one sentence naming the check that decided.
        window: the excluded window (GeV).
        refit_pvalue, min_pvalue: the refit's chi2 p-value outside the window and the bar.
        original_window_background, refit_window_background, alternative_window_background:
            background predicted in the window by each fit (events).
        difference: ``|refit - alternative|`` in the window (None if not compared).
        tolerance: ``n_sigma`` x the fit-function uncertainty of the window.
        alternative: the alternative model, e.g. ``"power (4 par)"``.
    """

    accepted: bool
    kept: str
    reason: str
    window: tuple[float, float]
    refit_pvalue: float
    min_pvalue: float
    original_window_background: float
    refit_window_background: float
    alternative_window_background: float | None
    difference: float | None
    tolerance: float | None
    n_sigma: float
    alternative: str | None

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return to_jsonable({name: getattr(self, name) for name in self.__dataclass_fields__})


def _inside(fit: FitResult, window: tuple[float, float]) -> np.ndarray:
    e = fit.edges
    return (e[1:] > window[0]) & (e[:-1] < window[1])


def _window_uncertainty(unc: Any, fit: FitResult, window: tuple[float, float]) -> float:
    if hasattr(unc, "window") and hasattr(unc, "edges"):
        if len(unc.edges) != len(fit.edges) or not np.allclose(unc.edges, fit.edges, rtol=1e-9):
            raise ConfigError("uncertainty was computed on other bins than the refit")
        return float(unc.window(*window))
    arr = np.asarray(unc, dtype=float)
    if arr.ndim == 0:
        value = float(arr)
    elif arr.shape == (len(fit.edges) - 1,):
        # per-bin values of one coherent shift: they add linearly over the window
        value = float(arr[_inside(fit, window)].sum())
    else:
        raise ConfigError(
            f"uncertainty must be a FitFunctionUncertainty, a number or {len(fit.edges) - 1} "
            f"per-bin values, got shape {arr.shape}"
        )
    if not (np.isfinite(value) and value >= 0):
        raise ConfigError(f"uncertainty of the window must be finite and >= 0, got {value}")
    return value


def guarded_refit(
    original: FitResult,
    refit: FitResult,
    *,
    window: Sequence[float],
    alternative: FitResult | None,
    uncertainty: Any,
    min_pvalue: float = 0.01,
    n_sigma: float = 1.0,
) -> RefitDecision:
    """Decide whether ``refit`` (``window`` excluded) may replace ``original``.

    Args:
        original: the fit over all bins.
        refit: the same model fitted with ``window`` excluded (same fitted bins otherwise).
        window: ``(low, high)`` in GeV, the excluded bump.
        alternative: another function fitted with the same window excluded (None: no
            cross-check is possible, the refit is refused).
        uncertainty: fit-function uncertainty of the background in the window: a
            :class:`~adcoffea.fits.uncertainty.FitFunctionUncertainty` (its
            :meth:`~adcoffea.fits.uncertainty.FitFunctionUncertainty.window`), per-bin values
            (summed over the window) or one number of events.
        min_pvalue: chi2 p-value the refit needs outside the window.
        n_sigma: how many fit-function uncertainties the refit and the alternative may differ.

    Returns:
        A :class:`RefitDecision`; ``kept`` is ``"original"`` unless every check passes.

    Raises:
        ConfigError: inconsistent inputs (different bins, a refit that excluded nothing).
    """
    w = (float(window[0]), float(window[1]))
    if not w[1] > w[0]:
        raise ConfigError(f"window must be (low, high) with high > low, got {tuple(window)}")
    if not 0.0 <= float(min_pvalue) < 1.0:
        raise ConfigError(f"min_pvalue must lie in [0, 1), got {min_pvalue!r}")
    if not (np.isfinite(n_sigma) and n_sigma >= 0):
        raise ConfigError(f"n_sigma must be finite and >= 0, got {n_sigma!r}")
    for name, fit in (("refit", refit), ("alternative", alternative)):
        if fit is None:
            continue
        if len(fit.edges) != len(original.edges) or not np.allclose(
            fit.edges, original.edges, rtol=1e-9
        ):
            raise ConfigError(f"{name} was fitted on other bins than the original fit")
        if not fit.extra.get("excluded_bins"):
            raise ConfigError(f"{name} did not exclude any bin: fit it with exclude={w}")
    inside = _inside(original, w)
    if not inside.any():
        raise ConfigError(f"window {w} overlaps no fitted bin")
    b_orig = float(original.background[inside].sum())
    b_refit = float(refit.background[inside].sum())
    base: dict[str, Any] = {
        "window": w,
        "refit_pvalue": float(refit.pvalue),
        "min_pvalue": float(min_pvalue),
        "original_window_background": b_orig,
        "refit_window_background": b_refit,
        "alternative_window_background": None,
        "difference": None,
        "tolerance": None,
        "n_sigma": float(n_sigma),
        "alternative": None,
    }

    def keep_original(reason: str, **more: Any) -> RefitDecision:
        return RefitDecision(accepted=False, kept="original", reason=reason, **{**base, **more})

    if not refit.converged:
        return keep_original("the refit did not converge")
    if not (np.isfinite(refit.pvalue) and refit.pvalue >= min_pvalue):
        return keep_original(
            f"the refit does not describe the data outside the window "
            f"(chi2 p = {refit.pvalue:.3g} < {min_pvalue:g})"
        )
    if alternative is None:
        return keep_original("no alternative function to cross-check the refit in the window")
    label = f"{alternative.function} ({alternative.n_params} par)"
    if not alternative.converged:
        return keep_original(f"the alternative {label} did not converge", alternative=label)
    b_alt = float(alternative.background[inside].sum())
    diff = abs(b_refit - b_alt)
    tol = n_sigma * _window_uncertainty(uncertainty, original, w)
    more = {
        "alternative_window_background": b_alt,
        "difference": diff,
        "tolerance": tol,
        "alternative": label,
    }
    if diff > tol:
        return keep_original(
            f"the refit and the alternative {label} differ by {diff:.3g} events in the window, "
            f"more than {n_sigma:g} x the fit-function uncertainty ({tol:.3g})",
            **more,
        )
    return RefitDecision(
        accepted=True,
        kept="refit",
        reason=(
            f"the refit describes the data outside the window (chi2 p = {refit.pvalue:.3g}) "
            f"and agrees with {label} within {diff:.3g} <= {tol:.3g} events"
        ),
        **{**base, **more},
    )
