"""Binned Poisson fits of smooth background functions (plus optional signal) to a spectrum.

Two backends give the same answer on the same histogram:

- ``"iminuit"`` (default, fast): numpy Poisson likelihood with an analytic gradient, minimised
  by iminuit's MIGRAD and polished by Newton steps with the analytic Hessian; the covariance
  is the inverse analytic Hessian (HESSE's finite differences made sigma(nsig) depend on the
  start point by ~2 %; the analytic one equals a profile-likelihood scan to < 0.5 %).
- ``"zfit"``: a custom zfit PDF binned with ``BinnedFromUnbinnedPDF`` and an
  ``ExtendedBinnedNLL`` (see :mod:`adcoffea.fits.zfit_backend`; TensorFlow is imported only then).

The likelihood is ``-ln L = sum_i [nu_i - n_i ln nu_i + ln Gamma(n_i + 1)]`` with
``nu_i = N q_i(theta) + S s_i`` where ``q`` are normalised bin fractions of the background
function over the fit range, ``N`` the background yield in the range, ``s`` a signal shape
(unit yield) and ``S`` the signal yield (statistics helpers in :mod:`adcoffea.fits.poisson`,
order selection in :mod:`adcoffea.fits.order`).

A fit that cannot be done is refused with a :class:`~adcoffea.errors.ConfigError` naming the
argument (:func:`check_fittable`): fewer bins than parameters + 1, an excluded window that
would make the function extrapolate, no events, a signal shape outside the fitted bins.
Every :class:`FitResult` carries its chi2 p-value and ``adequate`` (p >= ``min_pvalue``).

Example:
    >>> import numpy as np
    >>> from adcoffea.fits.functions import expected_counts
    >>> edges = np.linspace(2700.0, 6000.0, 34)
    >>> nu = expected_counts(edges, [2e4, 7.80, 5.26, 1.13])
    >>> res = fit_background(nu, edges=edges, n_params=4)
    >>> bool(abs(res.values[1] - 7.80) < 1e-3)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from scipy import special

from adcoffea.errors import ConfigError
from adcoffea.fits.functions import BinIntegrator, get_family, initial_shape, p0_from_yield
from adcoffea.fits.poisson import (
    chi2_pvalue,
    deviance,
    pearson_chi2,
    poisson_nll,
    poisson_pulls,
)
from adcoffea.outputs import to_jsonable

Backend = Literal["iminuit", "zfit"]


# --------------------------------------------------------------------------- inputs
def histogram_arrays(
    hist_or_counts: Any, *, edges: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(edges, counts)`` from a 1D ``hist.Hist`` or from counts plus ``edges``."""
    if hasattr(hist_or_counts, "axes") and hasattr(hist_or_counts, "values"):
        h = hist_or_counts
        if len(h.axes) != 1:
            names = [ax.name for ax in h.axes]
            raise ConfigError(
                f"expected a 1D histogram, got axes {names}; select categories first "
                "(e.g. h[{'dataset': 'data', 'region': 'inclusive'}])"
            )
        edges = np.asarray(h.axes[0].edges, dtype=float)
        counts = np.asarray(h.values(), dtype=float)
    else:
        if edges is None:
            raise ConfigError("counts given without bin edges: pass edges=...")
        counts = np.asarray(hist_or_counts, dtype=float)
        edges = np.asarray(edges, dtype=float)
        if counts.ndim != 1 or len(edges) != len(counts) + 1:
            raise ConfigError(
                f"{len(counts)} counts need {len(counts) + 1} edges, got {len(edges)}"
            )
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"histogram has {int(bad.sum())} NaN, infinite or negative bin(s), first "
            f"[{edges[i]:g}, {edges[i + 1]:g}] = {counts[i]}; a Poisson fit needs counts >= 0"
        )
    return edges, counts


def load_histogram(
    path: str,
    *,
    name: str,
    selections: dict[str, str | None] | None = None,
) -> Any:
    """Load histogram ``name`` from a pickle (``{name: hist.Hist}``) or ROOT file, 1D-selected.

    Category axes (``dataset``, ``region``, ...) are indexed with ``selections[axis]``; an axis
    with a single category needs no selection. The file must come from a complete run when it
    is in a run's output directory (:func:`adcoffea.execution.manifest.check_output`) and is
    read by :func:`adcoffea.outputs.load_hists` (pickles resolving histogram and numpy classes
    only).
    """
    from adcoffea.errors import InputFileError
    from adcoffea.execution.manifest import check_output
    from adcoffea.outputs import load_hists

    check_output(path)  # from a complete run, unchanged (when written by a run)
    h = load_hists(path, names=[name])[name]
    selections = dict(selections or {})
    for ax in list(h.axes):
        if not ax.traits.ordered:  # category axes (StrCategory/IntCategory)
            cats = [str(c) for c in ax]
            want = selections.get(ax.name)
            if want is None:
                if len(cats) != 1:
                    raise InputFileError(str(path), f"{name}: choose --{ax.name} among {cats}")
                want = cats[0]
            if want not in cats:
                raise InputFileError(str(path), f"{name}: {ax.name} {want!r} not in {cats}")
            h = h[{ax.name: want}]
    if len(h.axes) != 1:
        raise InputFileError(str(path), f"{name}: {len(h.axes)} axes remain after selection")
    return h


def range_slice(edges: np.ndarray, fit_range: Sequence[float] | None) -> slice:
    """Bins fully inside ``fit_range`` (GeV), as a slice of the bin index."""
    if fit_range is None:
        return slice(0, len(edges) - 1)
    lo, hi = float(fit_range[0]), float(fit_range[1])
    tol = 1e-9 * max(abs(edges[-1]), 1.0)
    first = int(np.searchsorted(edges, lo - tol, side="left"))
    last = int(np.searchsorted(edges, hi + tol, side="right")) - 1
    if not hi > lo:
        raise ConfigError(f"fit_range must have high > low, got {tuple(fit_range)}")
    if last - first < 2:
        raise ConfigError(
            f"fit_range={tuple(fit_range)} contains {max(last - first, 0)} complete bin(s) of "
            f"the histogram [{edges[0]:g}, {edges[-1]:g}]; a fit needs more"
        )
    return slice(first, last)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class FitResult:
    """Result of one binned fit.

    ``values``/``errors`` are ordered as ``names``: ``yield`` (background events in the fit
    range), ``p1``..``p{n-1}``, then ``nsig`` if a signal shape was fitted. ``expected`` and
    ``background`` are per fitted bin (``edges`` are the fitted bins' edges).
    """

    function: str
    n_params: int
    backend: str
    sqrt_s: float
    edges: np.ndarray
    counts: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    nll: float
    deviance: float
    chi2: float
    ndf: int
    pvalue: float
    converged: bool
    expected: np.ndarray
    background: np.ndarray
    extra: dict = field(default_factory=dict)
    min_pvalue: float = 0.01

    @property
    def adequate(self) -> bool:
        """Does the model describe the data: chi2 p-value >= ``min_pvalue`` (0.01 default)?

        False also when the chi2 has no degrees of freedom (p-value NaN): an untestable fit
        is not evidence of an adequate background model.
        """
        return bool(np.isfinite(self.pvalue) and self.pvalue >= self.min_pvalue)

    @property
    def signal_yield(self) -> float | None:
        return float(self.values[-1]) if "nsig" in self.names else None

    @property
    def signal_error(self) -> float | None:
        return float(self.errors[-1]) if "nsig" in self.names else None

    @property
    def pulls(self) -> np.ndarray:
        """Signed deviance residuals per bin (Poisson significance-like, ~N(0,1))."""
        return poisson_pulls(self.counts, self.expected)

    @property
    def p0(self) -> float:
        """The conventional normalisation p0 of ``f(x)`` matching the fitted yield."""
        return p0_from_yield(
            self.edges,
            self.values[: self.n_params],
            function=self.function,
            sqrt_s=self.sqrt_s,
        )

    def to_dict(self) -> dict:
        out = {
            "function": self.function,
            "formula": get_family(self.function).formula,
            "n_params": self.n_params,
            "backend": self.backend,
            "sqrt_s": self.sqrt_s,
            "edges": self.edges,
            "counts": self.counts,
            "parameters": {n: float(v) for n, v in zip(self.names, self.values, strict=True)},
            "errors": {n: float(v) for n, v in zip(self.names, self.errors, strict=True)},
            "p0": self.p0,
            "covariance": self.covariance,
            "nll": self.nll,
            "deviance": self.deviance,
            "chi2": self.chi2,
            "ndf": self.ndf,
            "pvalue": self.pvalue,
            "min_pvalue": self.min_pvalue,
            "adequate": self.adequate,
            "converged": self.converged,
            "expected": self.expected,
            "background": self.background,
            "pulls": self.pulls,
            **self.extra,
        }
        return to_jsonable(out)


# --------------------------------------------------------------------------- model
class PoissonModel:
    """Binned Poisson likelihood of ``N q(theta) + S s`` with analytic gradient."""

    def __init__(
        self,
        edges: np.ndarray,
        counts: np.ndarray,
        *,
        function: str = "dijet",
        n_params: int = 4,
        sqrt_s: float = 13000.0,
        signal: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        self.edges = np.asarray(edges, dtype=float)
        self.counts = np.asarray(counts, dtype=float)
        # bins in the likelihood (False: an excluded window, e.g. a signal region)
        self.mask = (
            np.ones(len(self.counts), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        )
        if self.mask.shape != self.counts.shape:
            raise ConfigError(f"fit mask has {self.mask.shape} bins, histogram {self.counts.shape}")
        if self.mask.sum() < 2:
            raise ConfigError("fit: fewer than two bins left after excluding a window")
        self._w = self.mask.astype(float)
        self.function = function
        self.n_params = n_params
        self.sqrt_s = sqrt_s
        self.integ = BinIntegrator.build(
            self.edges, function=function, n_params=n_params, sqrt_s=sqrt_s
        )
        self.signal = None if signal is None else np.asarray(signal, dtype=float)
        # -ln L = half-deviance + saturated -ln L: minimising the O(n_bins) half-deviance keeps
        # full float64 precision near the minimum (the raw sum is O(total events))
        self._xlogx = special.xlogy(self.counts, self.counts)
        self._const = poisson_nll(self.counts[self.mask], self.counts[self.mask])
        names = ["yield"] + [f"p{k}" for k in range(1, n_params)]
        if self.signal is not None:
            names.append("nsig")
        self.names = tuple(names)
        self._whitening: np.ndarray | None = None

    @property
    def whitening(self) -> np.ndarray:
        """Matrix ``A`` with ``theta = A phi`` such that the Fisher information in ``phi`` is ~ N 1.

        The dijet basis functions (ln(1-x), ln x, ln^2 x, ...) are nearly collinear over a fit
        range (condition numbers ~1e9), which makes MIGRAD stop early and HESSE wrong by tens
        of percent. Minimising in the orthonormalised coordinates ``phi`` fixes both; results
        are transformed back to the conventional ``p_k``.
        """
        if self._whitening is None:
            g = self.integ.basis.mean(axis=1)  # basis at (about) the bin centres
            w = (self.counts + 1.0) * self._w
            w = w / w.sum()
            gc = g - (w @ g)[None, :]
            _, sv, vt = np.linalg.svd(gc * np.sqrt(w)[:, None], full_matrices=False)
            self._whitening = vt.T / np.maximum(sv, 1e-12 * sv.max())[None, :]
        return self._whitening

    def split(self, p: np.ndarray) -> tuple[float, np.ndarray, float]:
        s = float(p[-1]) if self.signal is not None else 0.0
        return float(p[0]), np.asarray(p[1 : self.n_params]), s

    def background(self, p: np.ndarray) -> np.ndarray:
        n, theta, _ = self.split(p)
        return n * self.integ.shape(theta)[0]

    def expected(self, p: np.ndarray) -> np.ndarray:
        n, theta, s = self.split(p)
        nu = n * self.integ.shape(theta)[0]
        if self.signal is not None:
            nu = nu + s * self.signal
        return nu

    def nll(self, p: np.ndarray) -> float:
        return self.half_deviance(p) + self._const

    def half_deviance(self, p: np.ndarray) -> float:
        nu = self.expected(np.asarray(p))
        if np.any(nu <= 0):
            return 1e30
        terms = nu - self.counts + self._xlogx - self.counts * np.log(nu)
        return float(np.dot(self._w, terms))

    def grad(self, p: np.ndarray) -> np.ndarray:
        n, theta, s = self.split(np.asarray(p))
        q, dq = self.integ.shape(theta)
        nu = n * q
        if self.signal is not None:
            nu = nu + s * self.signal
        r = (1.0 - self.counts / np.maximum(nu, 1e-300)) * self._w
        g = [np.dot(r, q), *(n * (r @ dq))]
        if self.signal is not None:
            g.append(np.dot(r, self.signal))
        return np.asarray(g, dtype=float)

    def hessian(self, p: np.ndarray) -> np.ndarray:
        """Exact Hessian of ``-ln L`` in the conventional parameters (``names`` order).

        ``H = sum_i w_i [(1 - n_i/nu_i) d2nu_i + n_i/nu_i^2 dnu_i dnu_i^T]``; ``nu`` is linear
        in the yield and ``nsig``, so only the yield-shape and shape-shape blocks have second
        derivatives of ``nu`` (from :meth:`BinIntegrator.shape_hessian`). Numerical second
        derivatives (HESSE) along ``nsig`` vary by ~2 % with the start point; this does not.
        """
        n, theta, s = self.split(np.asarray(p, dtype=float))
        q, dq, d2q = self.integ.shape_hessian(theta)
        m = self.n_params - 1
        k = len(self.names)
        jac = np.empty((len(q), k))
        jac[:, 0] = q
        jac[:, 1 : 1 + m] = n * dq
        nu = n * q
        if self.signal is not None:
            jac[:, -1] = self.signal
            nu = nu + s * self.signal
        nu = np.maximum(nu, 1e-300)
        r = (1.0 - self.counts / nu) * self._w
        c = self.counts / nu**2 * self._w
        hess = jac.T @ (jac * c[:, None])
        cross = r @ dq
        hess[0, 1 : 1 + m] += cross
        hess[1 : 1 + m, 0] += cross
        hess[1 : 1 + m, 1 : 1 + m] += n * np.einsum("i,ikl->kl", r, d2q)
        return hess


def _summarise(
    model: PoissonModel,
    values: np.ndarray,
    errors: np.ndarray,
    cov: np.ndarray,
    *,
    converged: bool,
    backend: str,
    min_count: float,
    n_free: int,
    min_pvalue: float = 0.01,
    extra: dict | None = None,
) -> FitResult:
    nu = model.expected(values)
    m = model.mask
    chi2, n_groups = pearson_chi2(model.counts[m], nu[m], min_count=min_count)
    # low counts merge into few groups: with no degrees of freedom left the chi2 tests nothing
    ndf = max(n_groups - n_free, 0)
    pvalue = chi2_pvalue(chi2, ndf)
    return FitResult(
        function=model.function,
        n_params=model.n_params,
        backend=backend,
        sqrt_s=model.sqrt_s,
        edges=model.edges,
        counts=model.counts,
        names=model.names,
        values=np.asarray(values, dtype=float),
        errors=np.asarray(errors, dtype=float),
        covariance=np.asarray(cov, dtype=float),
        nll=model.nll(values),
        deviance=deviance(model.counts[m], nu[m]),
        chi2=chi2,
        ndf=ndf,
        pvalue=pvalue,
        converged=bool(converged),
        expected=nu,
        background=model.background(values),
        extra={**(extra or {}), **({"excluded_bins": int((~m).sum())} if not m.all() else {})},
        min_pvalue=float(min_pvalue),
    )


def _start(model: PoissonModel, start: Sequence[float] | None) -> np.ndarray:
    if start is not None:
        x0 = np.asarray(start, dtype=float)
        if x0.shape != (len(model.names),) or not np.all(np.isfinite(x0)):
            raise ConfigError(f"start needs {len(model.names)} finite values {model.names}")
        return x0
    theta = initial_shape(
        model.edges,
        model.counts,
        function=model.function,
        n_params=model.n_params,
        sqrt_s=model.sqrt_s,
    )
    x0 = [max(model.counts.sum(), 1.0), *theta]
    if model.signal is not None:
        x0.append(0.0)
    return np.asarray(x0, dtype=float)


def _jacobian(model: PoissonModel) -> np.ndarray:
    """d(conventional parameters)/d(internal parameters) (block-diagonal, constant)."""
    k = len(model.names)
    t = np.eye(k)
    t[1 : model.n_params, 1 : model.n_params] = model.whitening
    return t


def _newton_polish(
    model: PoissonModel, t: np.ndarray, z: np.ndarray, free: np.ndarray, *, max_iter: int = 30
) -> tuple[np.ndarray, bool]:
    """Newton steps with the analytic Hessian from MIGRAD's minimum (internal coordinates).

    MIGRAD stops at edm ~ 1e-7; a few exact Newton steps (with step halving, so the NLL never
    rises) bring the minimum to float64 precision, so the result no longer depends on the start
    point. Returns the point and whether it ended at a positive-definite minimum with a Newton
    decrement below 1e-12 (the NLL is then within ~1e-12 of the minimum).
    """

    def fcn(zz: np.ndarray) -> float:
        x = t @ zz
        if x[0] < 0.0:
            return np.inf
        return model.half_deviance(x)

    f = fcn(z)
    ok = False
    for _ in range(max_iter):
        x = t @ z
        g = (t.T @ model.grad(x))[free]
        h = (t.T @ model.hessian(x) @ t)[np.ix_(free, free)]
        d = np.sqrt(np.abs(np.diag(h)))
        if not np.all(np.isfinite(h)) or np.any(d == 0):
            return z, False
        hs = h / d[:, None] / d[None, :]  # Jacobi scaling: yield and shape differ by ~N^2
        try:
            chol = np.linalg.cholesky(hs)
        except np.linalg.LinAlgError:
            return z, False
        step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g / d)) / d
        dec = float(-g @ step)
        if dec < 1e-12:
            ok = True
            break
        lam = 1.0
        while lam > 1e-6:
            zn = z.copy()
            zn[free] += lam * step
            fn = fcn(zn)
            if fn <= f:
                break
            lam *= 0.5
        else:
            # no decrease along the Newton direction: at the minimum to rounding
            ok = dec < 1e-8
            break
        z, f = zn, fn
    return z, ok


def _covariance(model: PoissonModel, t: np.ndarray, z: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Inverse analytic Hessian in the conventional parameters (zeros for fixed ones).

    Inverted in the whitened coordinates (condition ~1 for the shape block) with Jacobi
    scaling, then transformed back; raises ``LinAlgError`` if not positive definite.
    """
    x = t @ z
    h = (t.T @ model.hessian(x) @ t)[np.ix_(free, free)]
    d = np.sqrt(np.abs(np.diag(h)))
    hs = h / d[:, None] / d[None, :]
    chol = np.linalg.cholesky(hs)
    inv = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(len(d))))
    cov_z = np.zeros((len(z), len(z)))
    cov_z[np.ix_(free, free)] = inv / d[:, None] / d[None, :]
    cov = t @ cov_z @ t.T
    return 0.5 * (cov + cov.T)


def _minimise_iminuit(
    model: PoissonModel, x0: np.ndarray, *, fixed: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, dict]:
    from iminuit import Minuit

    t = _jacobian(model)
    z0 = np.linalg.solve(t, x0)

    def fcn(z: np.ndarray) -> float:
        return model.half_deviance(t @ z)

    def grad(z: np.ndarray) -> np.ndarray:
        return t.T @ model.grad(t @ z)

    names = _internal_names(model)
    m = Minuit(fcn, z0, grad=grad, name=names)
    m.errordef = Minuit.LIKELIHOOD
    m.limits["yield"] = (0.0, None)
    m.print_level = 0
    total = max(float(model.counts.sum()), 1.0)
    for i in range(1, model.n_params):
        m.errors[i] = 1.0 / np.sqrt(total)
    if model.signal is not None:
        # nsig's scale: the Poisson error of the background under the signal shape
        under = float(np.dot(model.signal * model._w, model.counts + 1.0))
        m.errors["nsig"] = max(np.sqrt(under), 1.0)
    for name, val in (fixed or {}).items():
        m.values[name] = val
        m.fixed[name] = True
    m.strategy = 1
    m.tol = 1e-4  # edm < 2e-7; the Newton polish below does the rest
    m.migrad(ncall=20000)
    if not m.valid:
        m.strategy = 2
        m.migrad(ncall=40000)
    free = np.array([not m.fixed[n] for n in names])
    z, polished = _newton_polish(model, t, np.array(m.values), free)
    values = t @ z
    extra: dict[str, Any] = {}
    try:
        cov = _covariance(model, t, z, free)
        extra["covariance_method"] = "analytic Hessian"
    except np.linalg.LinAlgError:
        # not positive definite (a flat direction): keep HESSE's numerical estimate
        m.hesse()
        cov = np.zeros((len(z), len(z)))
        if m.covariance is not None:
            cov = t @ np.array(m.covariance) @ t.T
        extra["covariance_method"] = "HESSE (analytic Hessian not positive definite)"
        polished = False
    errors = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return values, errors, cov, bool(m.valid or polished), extra


def _internal_names(model: PoissonModel) -> tuple[str, ...]:
    return tuple(
        n if i == 0 or i >= model.n_params else f"phi{i}" for i, n in enumerate(model.names)
    )


def _check_probability(value: float, name: str) -> float:
    v = float(value)
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{name} must lie in (0, 1), got {value!r}")
    return v


def check_fittable(
    edges: np.ndarray,
    counts: np.ndarray,
    *,
    n_free: int,
    mask: np.ndarray | None = None,
    signal: np.ndarray | None = None,
    bins_arg: str = "edges",
    window_arg: str = "mask",
    n_params: int | None = None,
) -> None:
    """Refuse a fit that cannot be done, with a :class:`ConfigError` naming the argument.

    - fewer bins in the likelihood than free parameters + 1 (a saturated or underdetermined
      fit "converges" to meaningless values);
    - an excluded window touching an end of the fitted range (the function would be
      extrapolated from one side; with ``exclude=(3400, 1e5)`` a 4-parameter fit of 7 bins
      predicted 6.7e5 events for a truth of 5e4);
    - no events, or fewer non-empty bins than free parameters (degenerate likelihood);
    - a signal shape that is zero (or negative / non-finite) in the fitted bins.

    Args:
        edges, counts: the fitted bins.
        n_free: free parameters of the fit (yield, shape parameters, nsig; minus fixed ones).
        mask: bins in the likelihood (False: excluded window).
        signal: signal shape per bin, if fitted.
        bins_arg, window_arg: how the caller's arguments are named in the messages.
        n_params: the function's parameter count, for the message.
    """
    counts = np.asarray(counts, dtype=float)
    used = np.ones(len(counts), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    span = f"[{edges[0]:g}, {edges[-1]:g}] GeV"
    if used.any() and (not used[0] or not used[-1]):
        side = "lower" if not used[0] else "upper"
        raise ConfigError(
            f"{window_arg} reaches the {side} end of the fitted range {span}: the "
            "background there would be extrapolated from one side, not interpolated; "
            "narrow the window or widen fit_range"
        )
    n_used = int(used.sum())
    what = f"{n_free} free parameters" + (f" (n_params={n_params}" if n_params else "")
    if n_params:
        what += " + nsig)" if signal is not None else ")"
    if n_used < n_free + 1:
        raise ConfigError(
            f"{bins_arg} leaves {n_used} bin(s) of {span} in the likelihood for {what}; "
            f"a fit needs at least {n_free + 1} (lower n_params or widen the range)"
        )
    c = counts[used]
    if not c.sum() > 0:
        raise ConfigError(
            f"counts: no events in the {n_used} fitted bins of {span}; nothing to fit"
        )
    nonempty = int(np.count_nonzero(c > 0))
    if nonempty < n_free:
        raise ConfigError(
            f"counts: only {nonempty} non-empty bin(s) in {span} for {what}; the likelihood "
            "is degenerate (lower n_params, rebin, or widen the range)"
        )
    if signal is not None:
        sig = np.asarray(signal, dtype=float)
        if sig.shape != counts.shape:
            raise ConfigError(f"signal shape has {sig.shape[0]} bins, the fit {len(counts)}")
        if not np.all(np.isfinite(sig)) or np.any(sig < 0):
            raise ConfigError("signal: the shape must be finite and >= 0 in every bin")
        if not sig[used].sum() > 0:
            raise ConfigError(
                f"signal: the shape is zero in every fitted bin of {span}; its yield cannot be "
                "fitted (is the signal mass inside the fit range?)"
            )


def fit_arrays(
    edges: np.ndarray,
    counts: np.ndarray,
    *,
    function: str = "dijet",
    n_params: int = 4,
    sqrt_s: float = 13000.0,
    signal: np.ndarray | None = None,
    backend: Backend = "iminuit",
    start: Sequence[float] | None = None,
    fixed: dict[str, float] | None = None,
    min_count: float = 10.0,
    mask: np.ndarray | None = None,
    min_pvalue: float = 0.01,
) -> FitResult:
    """Fit already-sliced arrays (``edges`` of the fitted bins); see :func:`fit_background`.

    ``fixed`` holds ``yield`` and/or ``nsig`` values to keep fixed (e.g. a profile scan).
    A fit that cannot be done raises :class:`ConfigError` (see :func:`check_fittable`).
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 1 or len(edges) != len(counts) + 1:
        raise ConfigError(f"counts has {counts.shape} bins but edges {len(edges)} entries")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ConfigError("counts must be finite and >= 0 in every bin for a Poisson fit")
    fixed = dict(fixed or {})
    allowed = {"yield", "nsig"} if signal is not None else {"yield"}
    if set(fixed) - allowed:
        raise ConfigError(f"fixed: only {sorted(allowed)} can be fixed, got {sorted(fixed)}")
    if min_pvalue is not None and not 0.0 <= float(min_pvalue) < 1.0:
        raise ConfigError(f"min_pvalue must lie in [0, 1), got {min_pvalue!r}")
    get_family(function).check(n_params)
    n_free = n_params + (signal is not None) - len(fixed)
    check_fittable(edges, counts, n_free=n_free, mask=mask, signal=signal, n_params=n_params)
    model = PoissonModel(
        edges,
        counts,
        function=function,
        n_params=n_params,
        sqrt_s=sqrt_s,
        signal=signal,
        mask=mask,
    )
    x0 = _start(model, start)
    common = {"min_count": min_count, "n_free": n_free, "min_pvalue": min_pvalue}
    if backend == "iminuit":
        values, errors, cov, ok, extra = _minimise_iminuit(model, x0, fixed=fixed)
        return _summarise(
            model, values, errors, cov, converged=ok, backend=backend, extra=extra, **common
        )
    if backend == "zfit":
        if signal is not None or fixed or not model.mask.all():
            raise ConfigError(
                "the zfit backend fits background-only models over the whole range; "
                "use iminuit for signal, fixed parameters or excluded windows"
            )
        from adcoffea.fits.zfit_backend import fit_zfit

        values, errors, cov, ok, extra = fit_zfit(model, x0)
        return _summarise(
            model, values, errors, cov, converged=ok, backend=backend, extra=extra, **common
        )
    raise ConfigError(f"unknown fit backend {backend!r}; choose 'iminuit' or 'zfit'")


def _fit_window(
    all_edges: np.ndarray,
    fit_range: Sequence[float] | None,
    exclude: Sequence[float] | None,
) -> tuple[slice, np.ndarray, np.ndarray | None]:
    """Slice of the fitted bins, their edges and the likelihood mask of ``exclude``."""
    sl = range_slice(all_edges, fit_range)
    fit_edges = all_edges[sl.start : sl.stop + 1]
    mask = None
    if exclude is not None:
        if len(exclude) != 2 or not np.all(np.isfinite(np.asarray(exclude, dtype=float))):
            raise ConfigError(f"exclude must be a finite (low, high) pair in GeV, got {exclude}")
        lo, hi = float(exclude[0]), float(exclude[1])
        if not hi > lo:
            raise ConfigError(f"fit exclude window must have high > low, got {exclude}")
        mask = ~((fit_edges[1:] > lo) & (fit_edges[:-1] < hi))
        if mask.all():
            raise ConfigError(
                f"exclude={tuple(exclude)} overlaps no bin of the fitted range "
                f"[{fit_edges[0]:g}, {fit_edges[-1]:g}] GeV"
            )
    return sl, fit_edges, mask


def _range_text(fit_range: Sequence[float] | None) -> str:
    return "the histogram" if fit_range is None else f"fit_range={tuple(fit_range)}"


def fit_background(
    hist_or_counts: Any,
    *,
    edges: np.ndarray | None = None,
    function: str = "dijet",
    n_params: int = 4,
    sqrt_s: float = 13000.0,
    backend: Backend = "iminuit",
    fit_range: Sequence[float] | None = None,
    signal: np.ndarray | None = None,
    start: Sequence[float] | None = None,
    min_count: float = 10.0,
    exclude: Sequence[float] | None = None,
    min_pvalue: float = 0.01,
) -> FitResult:
    """Binned Poisson fit of a background function (and optionally a signal shape).

    Args:
        hist_or_counts: a 1D ``hist.Hist`` or an array of counts (then ``edges`` is needed).
        edges: bin edges in GeV for array input.
        function: ``dijet``, ``expo`` or ``power`` (see :mod:`adcoffea.fits.functions`).
        n_params: number of function parameters including the normalisation.
        sqrt_s: centre-of-mass energy in GeV (``x = m / sqrt_s``).
        backend: ``iminuit`` (numpy likelihood, analytic gradient) or ``zfit``.
        fit_range: ``(low, high)`` in GeV; bins fully inside are fitted.
        signal: signal shape per histogram bin for unit yield (full histogram binning); adds a
            free signal yield ``nsig`` (may go negative).
        start: starting values ordered as ``FitResult.names``.
        min_count: minimum observed events per merged group for the chi2.
        exclude: ``(low, high)`` in GeV: bins overlapping this window are left out of the
            likelihood and the chi2 (a signal region, or a bump found by BumpHunter); the
            function is still evaluated there, interpolating from the rest. The window must
            leave fitted bins on both sides (no extrapolation).
        min_pvalue: chi2 p-value below which ``FitResult.adequate`` is False.

    Returns:
        A :class:`FitResult` over the fitted bins.

    Raises:
        ConfigError: bad input, or a fit that cannot be done (too few bins for the
            parameters, an extrapolating ``exclude``, no events), naming the argument.
    """
    all_edges, counts = histogram_arrays(hist_or_counts, edges=edges)
    sl, fit_edges, mask = _fit_window(all_edges, fit_range, exclude)
    sig = None
    if signal is not None:
        signal = np.asarray(signal, dtype=float)
        if len(signal) != len(counts):
            raise ConfigError(f"signal shape has {len(signal)} bins, histogram {len(counts)}")
        sig = signal[sl]
    get_family(function).check(n_params)
    check_fittable(
        fit_edges,
        counts[sl],
        n_free=n_params + (sig is not None),
        mask=mask,
        signal=sig,
        bins_arg=_range_text(fit_range)
        + ("" if exclude is None else f" with exclude={tuple(exclude)}"),
        window_arg=f"exclude={tuple(exclude)}" if exclude is not None else "mask",
        n_params=n_params,
    )
    res = fit_arrays(
        fit_edges,
        counts[sl],
        mask=mask,
        function=function,
        n_params=n_params,
        sqrt_s=sqrt_s,
        signal=sig,
        backend=backend,
        start=start,
        min_count=min_count,
        min_pvalue=min_pvalue,
    )
    if exclude is not None:
        res = replace(res, extra={**res.extra, "exclude": [float(exclude[0]), float(exclude[1])]})
    return res
