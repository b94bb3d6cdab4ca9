"""Binned Poisson fits of smooth background functions (plus optional signal) to a spectrum.

Two backends give the same answer on the same histogram:

- ``"iminuit"`` (default, fast): numpy Poisson likelihood with an analytic gradient, minimised
  by iminuit's MIGRAD, errors from HESSE.
- ``"zfit"``: a custom zfit PDF binned with ``BinnedFromUnbinnedPDF`` and an
  ``ExtendedBinnedNLL`` (see :mod:`adcoffea.fits.zfit_backend`; TensorFlow is imported only then).

The likelihood is ``-ln L = sum_i [nu_i - n_i ln nu_i + ln Gamma(n_i + 1)]`` with
``nu_i = N q_i(theta) + S s_i`` where ``q`` are normalised bin fractions of the background
function over the fit range, ``N`` the background yield in the range, ``s`` a signal shape
(unit yield) and ``S`` the signal yield.

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
from scipy import special, stats

from adcoffea.errors import ConfigError
from adcoffea.fits.functions import BinIntegrator, get_family, initial_shape, p0_from_yield

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
    with a single category needs no selection. Pickles are only for files you produced
    yourself (unpickling runs code).
    """
    import pickle
    from pathlib import Path

    from adcoffea.errors import InputFileError

    p = Path(path)
    if not p.is_file():
        raise InputFileError(str(p), "histogram file not found")
    if p.suffix.lower() == ".root":
        import uproot

        with uproot.open(p) as f:
            if name not in f:
                raise InputFileError(str(p), f"no histogram {name!r}; has {sorted(f.keys())}")
            h = f[name].to_hist()
    else:
        try:
            with p.open("rb") as f:
                obj = pickle.load(f)
        except Exception as err:
            raise InputFileError(str(p), f"not a readable pickle ({err})") from err
        if hasattr(obj, "axes"):
            h = obj
        elif isinstance(obj, dict):
            if name not in obj:
                raise InputFileError(str(p), f"no histogram {name!r}; has {sorted(obj)}")
            h = obj[name]
        else:
            raise InputFileError(str(p), "expected a dict {name: hist.Hist} or a hist.Hist")
    selections = dict(selections or {})
    for ax in list(h.axes):
        if not ax.traits.ordered:  # category axes (StrCategory/IntCategory)
            cats = [str(c) for c in ax]
            want = selections.get(ax.name)
            if want is None:
                if len(cats) != 1:
                    raise InputFileError(str(p), f"{name}: choose --{ax.name} among {cats}")
                want = cats[0]
            if want not in cats:
                raise InputFileError(str(p), f"{name}: {ax.name} {want!r} not in {cats}")
            h = h[{ax.name: want}]
    if len(h.axes) != 1:
        raise InputFileError(str(p), f"{name}: {len(h.axes)} axes remain after selection")
    return h


def range_slice(edges: np.ndarray, fit_range: Sequence[float] | None) -> slice:
    """Bins fully inside ``fit_range`` (GeV), as a slice of the bin index."""
    if fit_range is None:
        return slice(0, len(edges) - 1)
    lo, hi = float(fit_range[0]), float(fit_range[1])
    tol = 1e-9 * max(abs(edges[-1]), 1.0)
    first = int(np.searchsorted(edges, lo - tol, side="left"))
    last = int(np.searchsorted(edges, hi + tol, side="right")) - 1
    if last - first < 2:
        raise ConfigError(f"fit range {fit_range} contains fewer than 2 bins of the histogram")
    return slice(first, last)


# --------------------------------------------------------------------------- results
def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


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
            "converged": self.converged,
            "expected": self.expected,
            "background": self.background,
            "pulls": self.pulls,
            **self.extra,
        }
        return _plain(out)


# --------------------------------------------------------------------------- statistics
def poisson_nll(counts: np.ndarray, expected: np.ndarray) -> float:
    """Full Poisson ``-ln L`` (with ``ln Gamma(n+1)``; valid for non-integer counts too)."""
    nu = np.maximum(expected, 1e-300)
    return float(np.sum(nu - special.xlogy(counts, nu) + special.gammaln(counts + 1.0)))


def deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """Poisson deviance ``2 sum [nu - n + n ln(n/nu)]`` (likelihood-ratio chi2)."""
    nu = np.maximum(expected, 1e-300)
    return float(
        2.0 * np.sum(nu - counts + special.xlogy(counts, counts) - special.xlogy(counts, nu))
    )


def poisson_pulls(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed square roots of the per-bin deviance."""
    nu = np.maximum(expected, 1e-300)
    d = 2.0 * (nu - counts + special.xlogy(counts, counts) - special.xlogy(counts, nu))
    return np.sign(counts - nu) * np.sqrt(np.maximum(d, 0.0))


def merge_groups(counts: np.ndarray, *, min_count: float = 10.0) -> list[np.ndarray]:
    """Group adjacent bins so every group has at least ``min_count`` observed events.

    Merging on the observed counts makes the grouping independent of the model, so chi2 values
    of different function orders are comparable (F-test).
    """
    groups: list[list[int]] = []
    cur: list[int] = []
    acc = 0.0
    for i, c in enumerate(counts):
        cur.append(i)
        acc += c
        if acc >= min_count:
            groups.append(cur)
            cur, acc = [], 0.0
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    return [np.asarray(g) for g in groups]


def pearson_chi2(
    counts: np.ndarray, expected: np.ndarray, *, min_count: float = 10.0
) -> tuple[float, int]:
    """Pearson chi2 with low-count bins merged; returns ``(chi2, number of merged bins)``."""
    groups = merge_groups(counts, min_count=min_count)
    n = np.array([counts[g].sum() for g in groups])
    nu = np.array([expected[g].sum() for g in groups])
    return float(np.sum((n - nu) ** 2 / np.maximum(nu, 1e-300))), len(groups)


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


def _summarise(
    model: PoissonModel,
    values: np.ndarray,
    errors: np.ndarray,
    cov: np.ndarray,
    *,
    converged: bool,
    backend: str,
    min_count: float,
    extra: dict | None = None,
) -> FitResult:
    nu = model.expected(values)
    m = model.mask
    chi2, n_groups = pearson_chi2(model.counts[m], nu[m], min_count=min_count)
    ndf = max(n_groups - len(values), 1)
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
        pvalue=float(stats.chi2.sf(chi2, ndf)),
        converged=bool(converged),
        expected=nu,
        background=model.background(values),
        extra={**(extra or {}), **({"excluded_bins": int((~m).sum())} if not m.all() else {})},
    )


def _start(model: PoissonModel, start: Sequence[float] | None) -> np.ndarray:
    if start is not None:
        x0 = np.asarray(start, dtype=float)
        if len(x0) != len(model.names):
            raise ConfigError(f"start needs {len(model.names)} values {model.names}")
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


def _minimise_iminuit(
    model: PoissonModel, x0: np.ndarray, *, fixed: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    from iminuit import Minuit

    t = _jacobian(model)
    z0 = np.linalg.solve(t, x0)

    def fcn(z: np.ndarray) -> float:
        return model.half_deviance(t @ z)

    def grad(z: np.ndarray) -> np.ndarray:
        return t.T @ model.grad(t @ z)

    names = tuple(
        n if i == 0 or i >= model.n_params else f"phi{i}" for i, n in enumerate(model.names)
    )
    m = Minuit(fcn, z0, grad=grad, name=names)
    m.errordef = Minuit.LIKELIHOOD
    m.limits["yield"] = (0.0, None)
    m.print_level = 0
    total = max(float(model.counts.sum()), 1.0)
    for i in range(1, model.n_params):
        m.errors[i] = 1.0 / np.sqrt(total)
    for name, val in (fixed or {}).items():
        m.values[name] = val
        m.fixed[name] = True
    m.strategy = 1
    m.tol = 1e-4  # edm < 2e-7: Asimov fits return the truth to ~1e-6
    m.migrad(ncall=20000)
    if not m.valid:
        m.strategy = 2
        m.migrad(ncall=40000)
    m.hesse()
    values = t @ np.array(m.values)
    npar = len(values)
    cov = np.zeros((npar, npar))
    if m.covariance is not None:
        cov = t @ np.array(m.covariance) @ t.T
    errors = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return values, errors, cov, bool(m.valid)


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
) -> FitResult:
    """Fit already-sliced arrays (``edges`` of the fitted bins); see :func:`fit_background`."""
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
    if backend == "iminuit":
        values, errors, cov, ok = _minimise_iminuit(model, x0, fixed=fixed)
        return _summarise(
            model, values, errors, cov, converged=ok, backend=backend, min_count=min_count
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
            model,
            values,
            errors,
            cov,
            converged=ok,
            backend=backend,
            min_count=min_count,
            extra=extra,
        )
    raise ConfigError(f"unknown fit backend {backend!r}; choose 'iminuit' or 'zfit'")


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
            function is still evaluated there, interpolating from the rest.

    Returns:
        A :class:`FitResult` over the fitted bins.
    """
    all_edges, counts = histogram_arrays(hist_or_counts, edges=edges)
    sl = range_slice(all_edges, fit_range)
    fit_edges = all_edges[sl.start : sl.stop + 1]
    sig = None
    if signal is not None:
        signal = np.asarray(signal, dtype=float)
        if len(signal) != len(counts):
            raise ConfigError(f"signal shape has {len(signal)} bins, histogram {len(counts)}")
        sig = signal[sl]
    mask = None
    if exclude is not None:
        lo, hi = float(exclude[0]), float(exclude[1])
        if not hi > lo:
            raise ConfigError(f"fit exclude window must have high > low, got {exclude}")
        mask = ~((fit_edges[1:] > lo) & (fit_edges[:-1] < hi))
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
    )
    if exclude is not None:
        res = replace(res, extra={**res.extra, "exclude": [lo, hi]})
    return res


# --------------------------------------------------------------------------- order selection
@dataclass(frozen=True)
class OrderSelection:
    """Fits of increasing order and the test of each order against the previous one."""

    method: str
    alpha: float
    chosen: int
    table: tuple[dict, ...]
    fits: dict[int, FitResult]

    @property
    def best(self) -> FitResult:
        return self.fits[self.chosen]

    def to_dict(self) -> dict:
        return _plain(
            {
                "method": self.method,
                "alpha": self.alpha,
                "chosen": self.chosen,
                "table": list(self.table),
            }
        )


def select_order(
    hist_or_counts: Any,
    *,
    edges: np.ndarray | None = None,
    function: str = "dijet",
    n_params: Sequence[int] = (3, 4, 5),
    sqrt_s: float = 13000.0,
    backend: Backend = "iminuit",
    fit_range: Sequence[float] | None = None,
    alpha: float = 0.05,
    method: Literal["wilks", "ftest"] = "wilks",
    min_count: float = 10.0,
    exclude: Sequence[float] | None = None,
) -> OrderSelection:
    """Fit increasing orders and keep the lowest one that the next order does not beat.

    Each order n+1 is tested against n: Wilks' test uses ``2 (NLL_n - NLL_{n+1})`` ~ chi2(dk);
    the F-test uses ``F = [(chi2_n - chi2_{n+1})/dk] / [chi2_{n+1}/ndf_{n+1}]`` with the same
    merged binning for both orders. Order n+1 is preferred when the p-value is below ``alpha``;
    the chosen order is the first one whose successor is not significantly better.
    """
    if method not in ("wilks", "ftest"):
        raise ConfigError(f"order-selection method must be 'wilks' or 'ftest', got {method!r}")
    orders = sorted(set(int(n) for n in n_params))
    fits: dict[int, FitResult] = {}
    prev: FitResult | None = None
    for n in orders:
        start = None
        if prev is not None and prev.n_params == n - 1:
            # nested families: start from the lower order with the new parameter at 0
            start = [*prev.values, 0.0]
        res = fit_background(
            hist_or_counts,
            edges=edges,
            function=function,
            n_params=n,
            sqrt_s=sqrt_s,
            backend=backend,
            fit_range=fit_range,
            start=start,
            min_count=min_count,
            exclude=exclude,
        )
        if prev is not None and res.nll > prev.nll + 1e-6:
            # never accept a worse minimum for a nested model: refit from the default start
            alt = fit_background(
                hist_or_counts,
                edges=edges,
                function=function,
                n_params=n,
                sqrt_s=sqrt_s,
                backend=backend,
                fit_range=fit_range,
                min_count=min_count,
                exclude=exclude,
            )
            res = alt if alt.nll < res.nll else res
        fits[n] = res
        prev = res
    table = []
    chosen = orders[-1]
    decided = False
    for i, n in enumerate(orders):
        r = fits[n]
        row = {
            "n_params": n,
            "nll": r.nll,
            "deviance": r.deviance,
            "chi2": r.chi2,
            "ndf": r.ndf,
            "chi2_pvalue": r.pvalue,
            "converged": r.converged,
            "statistic": None,
            "pvalue": None,
            "prefers_this_order": None,
        }
        if i > 0:
            lo = fits[orders[i - 1]]
            dk = n - orders[i - 1]
            if method == "wilks":
                stat = max(2.0 * (lo.nll - r.nll), 0.0)
                p = float(stats.chi2.sf(stat, dk))
            else:
                stat = max((lo.chi2 - r.chi2) / dk, 0.0) / max(r.chi2 / r.ndf, 1e-300)
                p = float(stats.f.sf(stat, dk, r.ndf))
            row.update(statistic=float(stat), pvalue=p, prefers_this_order=bool(p < alpha))
            if not decided and p >= alpha:
                chosen = orders[i - 1]
                decided = True
        table.append(row)
    return OrderSelection(method, float(alpha), chosen, tuple(table), fits)
