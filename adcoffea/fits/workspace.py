"""pyhf HistFactory workspaces from histograms, CLs upper limits and discovery p-values.

Two background treatments:

- ``fit``: the background template is a function fit (or any nominal), with its shape
  uncertainty as ``histosys`` modifiers (one per eigenvector of the fit covariance, see
  :func:`fit_variations`) and optionally a ``staterror`` (for simulated templates).
- ``shapefactor``: data-driven; a control region (e.g. a low anomaly-score region) shares a
  free ``shapefactor`` per bin with the signal region, scaled by a transfer factor (e.g. the
  score-cut efficiency), optionally with a ``normsys`` on the transfer factor.

Signal modifiers: a luminosity ``normsys`` ``lumi``, the template's MC statistics as a
``staterror`` (``staterror_<channel>``) and its shape variations as ``histosys`` (the jet
energy scale and resolution: ``jes``, ``jer``).

Modifier names say what they are correlated with, so that the workspaces of several regions
combine (:func:`combine_workspaces`, pyhf's ``Workspace.combine``): ``mu``, ``lumi``,
``jes`` and ``jer`` are shared by every channel (one jet calibration for all regions); what belongs to one channel's background fit or template carries the
channel's name (``bkg_fit_eig<k>_<channel>``, ``fit_function_<channel>``,
``staterror_<channel>``), since every region has its own fit.

Limits are asymptotic CLs with the q~mu statistic (pyhf numpy backend, toms748 root finding);
toys are available through ``calctype="toybased"``.

Example:
    >>> ws = build_workspace([52.0], [50.0], [10.0])
    >>> lim = upper_limit(ws)
    >>> bool(0.5 < lim.observed < 5.0)
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError, LimitError
from adcoffea.fits.background import FitResult, PoissonModel
from adcoffea.outputs import to_jsonable


def _pyhf():
    import pyhf

    # upper limits are only reliable with the numpy backend in pyhf 0.7.6 (set_backend
    # also resets the optimizer: only when needed, so that an :func:`optimizer` block holds)
    if pyhf.tensorlib.name != "numpy":
        pyhf.set_backend("numpy")
    return pyhf


@contextmanager
def optimizer(name: str) -> Iterator[Any]:
    """pyhf (numpy backend) with the ``scipy`` or ``minuit`` optimizer inside the block.

    scipy's SLSQP takes numerical gradients and holds fixed parameters with equality
    constraints, so its fits slow down with every parameter: a 40-bin workspace with a
    signal ``staterror`` (9 free, 31 fixed gammas) took 76 s per limit, 13 s with minuit
    (which also gives the post-fit uncertainties the diagnostics need).
    """
    import pyhf

    if name not in ("scipy", "minuit"):
        raise ConfigError(f"optimizer must be 'scipy' or 'minuit', got {name!r}")
    before = pyhf.optimizer
    chosen = (
        pyhf.optimize.minuit_optimizer(verbose=0)
        if name == "minuit"
        else pyhf.optimize.scipy_optimizer()
    )
    pyhf.set_backend("numpy", chosen)
    try:
        yield pyhf
    finally:
        pyhf.set_backend("numpy", before)


def _arr(x: Any, name: str, n: int | None = None, *, nonneg: bool = False) -> list[float]:
    a = np.asarray(x, dtype=float).ravel()
    if n is not None and len(a) != n:
        raise ConfigError(f"{name} has {len(a)} bins, expected {n}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} contains non-finite values")
    if nonneg and np.any(a < 0):
        i = int(np.flatnonzero(a < 0)[0])
        raise ConfigError(f"{name} must be >= 0 in every bin; bin {i} has {a[i]:g}")
    return [float(v) for v in a]


def fit_variations(
    result: FitResult, *, n_sigma: float = 1.0, min_eigenvalue: float = 1e-12
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Background up/down shapes along the eigenvectors of a fit's correlation matrix.

    With ``C = D R D`` (``D`` the errors, ``R = V L V^T`` the correlation), the directions
    ``d_k = n_sigma D v_k sqrt(l_k)`` satisfy ``sum_k d_k d_k^T = n_sigma^2 C``, so the
    independent variations ``p_hat +- d_k`` reproduce the fit uncertainty band to first order.
    Working with the (dimensionless) correlation matrix keeps the yield, whose variance is
    ~1e6 times larger than the shape parameters', from swamping the decomposition.
    """
    model = PoissonModel(
        result.edges,
        result.counts,
        function=result.function,
        n_params=result.n_params,
        sqrt_s=result.sqrt_s,
    )
    k = result.n_params
    p = np.asarray(result.values[:k], dtype=float)
    cov = np.asarray(result.covariance[:k, :k], dtype=float)
    cov = 0.5 * (cov + cov.T)
    d = np.sqrt(np.maximum(np.diag(cov), 0.0))
    live = d > 0
    dinv = np.where(live, 1.0 / np.where(live, d, 1.0), 0.0)
    corr = cov * dinv[:, None] * dinv[None, :]
    lam, vec = np.linalg.eigh(corr)
    out = {}
    for j in np.argsort(lam)[::-1]:
        if lam[j] <= min_eigenvalue * lam.max():
            continue
        step = n_sigma * d * vec[:, j] * np.sqrt(lam[j])
        out[f"bkg_fit_eig{len(out)}"] = (model.background(p + step), model.background(p - step))
    return out


def build_workspace(
    data: Any,
    background: Any,
    signal: Any,
    *,
    bkg_variations: Mapping[str, tuple[Any, Any]] | None = None,
    bkg_stat_errors: Any | None = None,
    signal_stat_errors: Any | None = None,
    fit_function_uncertainty: Any | None = None,
    lumi_uncertainty: float | None = None,
    signal_variations: Mapping[str, tuple[Any, Any]] | None = None,
    control: Mapping[str, Any] | None = None,
    channel: str = "SR",
    poi: str = "mu",
    poi_bounds: tuple[float, float] = (0.0, 100.0),
    validate: bool = True,
) -> dict:
    """Build a valid pyhf JSON workspace (signal strength ``mu`` on ``signal``).

    Args:
        data: observed counts in the signal-region bins.
        background: nominal background counts, or a :class:`FitResult` (its fitted background;
            its covariance gives ``histosys`` variations unless ``bkg_variations`` is given).
            Ignored (may be ``None``) when ``control`` is given.
        signal: expected signal counts for ``mu = 1``.
        bkg_variations: ``{name: (up, down)}`` background shapes -> ``histosys`` modifiers
            (named as given; those derived from a :class:`FitResult` are
            ``bkg_fit_eig<k>_<channel>``).
        bkg_stat_errors: absolute per-bin background template uncertainties -> ``staterror``.
        signal_stat_errors: same for the signal template (shares the channel's staterror; a
            bin where it is 0 gets no free parameter: pyhf fixes its gamma).
        fit_function_uncertainty: the background's fit-function uncertainty, a
            :class:`~adcoffea.fits.uncertainty.FitFunctionUncertainty` or per-bin absolute
            values: one ``histosys`` nuisance parameter ``fit_function_<channel>`` moving all
            bins together to ``background +- uncertainty`` (down floored at 1e-3 x background).
        lumi_uncertainty: relative luminosity uncertainty -> ``normsys`` ``lumi`` on the signal
            (the background is fitted to data and carries none).
        signal_variations: ``{name: (up, down)}`` signal shapes for ``mu = 1`` -> ``histosys``
            modifiers on the signal, named as given (``jes``, ``jer``: the same name in
            every channel, so that combined regions share one parameter).
        control: data-driven background: ``{"data": CR counts, "transfer": scalar or per-bin
            SR/CR factor, "transfer_rel_unc": optional relative normsys, "signal": optional
            signal counts in the CR for mu = 1}``. SR and CR share a ``shapefactor``.
        channel: signal-region channel name.
        poi: name of the signal-strength parameter.
        poi_bounds: its allowed range.
        validate: check against pyhf's ``workspace.json`` schema (raises on failure).

    Returns:
        The workspace as a plain dict (JSON-serialisable).
    """
    obs = _arr(data, "data", nonneg=True)
    n = len(obs)
    if n == 0:
        raise ConfigError("data has no bins")
    sig = _arr(signal, "signal", n, nonneg=True)
    if not float(poi_bounds[0]) < float(poi_bounds[1]):
        raise ConfigError(f"poi_bounds must be (low, high) with low < high, got {poi_bounds}")
    samples: list[dict] = []
    channels: list[dict] = []
    observations = [{"name": channel, "data": obs}]
    sig_mods: list[dict] = [{"name": poi, "type": "normfactor", "data": None}]
    if lumi_uncertainty is not None:
        u = float(lumi_uncertainty)
        if not 0.0 < u < 1.0:
            raise ConfigError(f"lumi_uncertainty must lie in (0, 1), got {lumi_uncertainty!r}")
        sig_mods.append({"name": "lumi", "type": "normsys", "data": {"hi": 1.0 + u, "lo": 1.0 - u}})
    for name, (up, down) in (signal_variations or {}).items():
        sig_mods.append(
            {
                "name": str(name),
                "type": "histosys",
                "data": {
                    "hi_data": _arr(up, f"signal {name} up", n, nonneg=True),
                    "lo_data": _arr(down, f"signal {name} down", n, nonneg=True),
                },
            }
        )
    if control is None:
        if isinstance(background, FitResult):
            if bkg_variations is None:
                # one fit per channel: its eigen-variations are the channel's own
                bkg_variations = {
                    f"{k}_{channel}": v for k, v in fit_variations(background).items()
                }
            background = background.background
        bkg = _arr(background, "background", n)
        if min(bkg) <= 0:
            raise ConfigError("background must be positive in every bin of the workspace")
        bkg_mods: list[dict] = []
        for name, (up, down) in (bkg_variations or {}).items():
            bkg_mods.append(
                {
                    "name": str(name),
                    "type": "histosys",
                    "data": {
                        "hi_data": _arr(up, f"{name} up", n),
                        "lo_data": _arr(down, f"{name} down", n),
                    },
                }
            )
        if fit_function_uncertainty is not None:
            bkg_mods.append(
                _fit_function_modifier(fit_function_uncertainty, np.asarray(bkg), n, channel)
            )
        if bkg_stat_errors is not None:
            bkg_mods.append(
                {
                    "name": f"staterror_{channel}",
                    "type": "staterror",
                    "data": _arr(bkg_stat_errors, "bkg_stat_errors", n, nonneg=True),
                }
            )
        samples.append({"name": "background", "data": bkg, "modifiers": bkg_mods})
    else:
        cr_obs = _arr(control["data"], "control data", n, nonneg=True)
        tf = np.broadcast_to(np.asarray(control.get("transfer", 1.0), dtype=float), (n,))
        if not np.all(np.isfinite(tf)) or np.any(tf <= 0):
            raise ConfigError("control transfer factor must be finite and > 0")
        # nominal CR prediction = CR data (floored so empty bins keep a free, positive gamma)
        cr_nom = np.maximum(np.asarray(cr_obs), 1e-3)
        sf = {"name": "bkg_shape", "type": "shapefactor", "data": None}
        sr_mods = [sf]
        if control.get("transfer_rel_unc"):
            u = float(control["transfer_rel_unc"])
            if not 0.0 < u < 1.0:
                raise ConfigError(f"control transfer_rel_unc must lie in (0, 1), got {u!r}")
            sr_mods.append(
                {"name": "transfer", "type": "normsys", "data": {"hi": 1.0 + u, "lo": 1.0 - u}}
            )
        samples.append(
            {"name": "background", "data": _arr(tf * cr_nom, "SR background"), "modifiers": sr_mods}
        )
        cr_samples = [
            {"name": "background", "data": _arr(cr_nom, "CR background"), "modifiers": [sf]}
        ]
        if control.get("signal") is not None:
            cr_samples.append(
                {
                    "name": "signal",
                    "data": _arr(control["signal"], "CR signal", n, nonneg=True),
                    "modifiers": [{"name": poi, "type": "normfactor", "data": None}],
                }
            )
        channels.append({"name": f"{channel}_CR", "samples": cr_samples})
        observations.append({"name": f"{channel}_CR", "data": cr_obs})
    if signal_stat_errors is not None:
        sig_mods.append(
            {
                "name": f"staterror_{channel}",
                "type": "staterror",
                "data": _arr(signal_stat_errors, "signal_stat_errors", n, nonneg=True),
            }
        )
    samples.insert(0, {"name": "signal", "data": sig, "modifiers": sig_mods})
    channels.insert(0, {"name": channel, "samples": samples})
    ws = {
        "channels": channels,
        "observations": observations,
        "measurements": [
            {
                "name": "measurement",
                "config": {
                    "poi": poi,
                    "parameters": [{"name": poi, "bounds": [list(map(float, poi_bounds))]}],
                },
            }
        ],
        "version": "1.0.0",
    }
    if validate:
        validate_workspace(ws)
    return ws


def _fit_function_modifier(unc: Any, bkg: np.ndarray, n: int, channel: str) -> dict:
    """``histosys`` 'fit_function_<channel>' from a FitFunctionUncertainty or per-bin sigma."""
    if hasattr(unc, "per_bin") and hasattr(unc, "nominal"):
        if len(unc.per_bin) != n:
            raise ConfigError(
                f"fit_function_uncertainty has {len(unc.per_bin)} bins, the workspace {n} "
                "(compute it on the same fitted bins as the background)"
            )
        sigma = np.asarray(unc.per_bin, dtype=float)
    else:
        sigma = np.asarray(_arr(unc, "fit_function_uncertainty", n, nonneg=True))
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ConfigError("fit_function_uncertainty must be finite and >= 0 in every bin")
    up = bkg + sigma
    down = np.maximum(bkg - sigma, 1e-3 * bkg)
    return {
        "name": f"fit_function_{channel}",
        "type": "histosys",
        "data": {
            "hi_data": _arr(up, "fit_function up", n),
            "lo_data": _arr(down, "fit_function down", n),
        },
    }


def validate_workspace(ws: dict) -> None:
    """Validate against pyhf's ``workspace.json`` schema and build the model (raises ConfigError)."""
    pyhf = _pyhf()
    try:
        pyhf.schema.validate(ws, "workspace.json")
        pyhf.Workspace(ws).model()
    except Exception as err:  # pyhf raises several exception types
        raise ConfigError(f"invalid pyhf workspace: {err}") from err


def combine_workspaces(*workspaces: dict, validate: bool = True) -> dict:
    """One workspace of several channels (e.g. score regions of one search), fitted together.

    Channels must have distinct names (build each region's workspace with its own
    ``channel``); parameters of the same name (``mu``, ``lumi``) are one parameter, the
    channel-named ones stay separate. The measurements of the same name are merged (pyhf's
    ``outer`` join; their parameter settings must agree).
    """
    pyhf = _pyhf()
    if len(workspaces) < 2:
        raise ConfigError("combine_workspaces needs at least two workspaces")
    names = [ch["name"] for ws in workspaces for ch in ws["channels"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"combine_workspaces: channel names {dup} appear twice (rename them)")
    try:
        out = pyhf.Workspace(workspaces[0])
        for ws in workspaces[1:]:
            out = pyhf.Workspace.combine(out, pyhf.Workspace(ws), join="outer")
    except Exception as err:  # pyhf raises several exception types
        raise ConfigError(f"cannot combine the workspaces: {err}") from err
    combined = json.loads(json.dumps(dict(out)))  # a plain dict, like build_workspace's
    if validate:
        validate_workspace(combined)
    return combined


def _model_data(workspace: Any) -> tuple[Any, Any]:
    pyhf = _pyhf()
    if isinstance(workspace, tuple):
        return workspace
    ws = workspace if isinstance(workspace, pyhf.Workspace) else pyhf.Workspace(workspace)
    model = ws.model()
    return model, ws.data(model)


def _limit_bracket(model: Any) -> tuple[float, float]:
    """A bracket around the expected limit from the Gaussian scale ``1/sqrt(sum s^2/b)``.

    CLs is 0/0 at (and numerically near) mu = 0, so the lower end must stay at a signal
    strength the data can feel; ``toms748_scan`` halves/doubles the ends if they do not bracket.
    """
    init = np.asarray(model.config.suggested_init(), dtype=float)
    i = model.config.poi_index
    p1, p0 = init.copy(), init.copy()
    p1[i], p0[i] = 1.0, 0.0
    b = np.asarray(model.expected_actualdata(p0), dtype=float)
    s = np.asarray(model.expected_actualdata(p1), dtype=float) - b
    z2 = float(np.sum(s**2 / np.maximum(b, 1.0)))
    scale = 1.0 / np.sqrt(z2) if z2 > 0 else 1.0
    hi = float(model.config.suggested_bounds()[i][1])
    return 0.2 * scale, min(10.0 * scale, hi)


def _bracket(
    model: Any, data: Any, bounds: tuple[float, float], *, level: float, max_steps: int = 12
) -> tuple[float, float]:
    """Ends with all CLs values (observed, expected band) above / below ``level``.

    pyhf's ``toms748_scan`` halves/doubles the ends without limit; where CLs does not cross
    the level (a fit at a parameter bound, or the 0/0 of CLs as mu -> 0) it never returns.
    Here the search is bounded and ends in a clear error instead.
    """
    import pyhf

    def cls_values(mu: float) -> np.ndarray:
        obs, exp = pyhf.infer.hypotest(
            mu, data, model, test_stat="qtilde", return_expected_set=True
        )
        return np.asarray([float(obs), *(float(e) for e in exp)])

    mu_max = float(model.config.suggested_bounds()[model.config.poi_index][1])
    # the ends must lie inside pyhf's bounds on mu, or every fit there fails
    hi = min(float(bounds[1]), mu_max)
    lo = min(float(bounds[0]), 0.1 * hi)
    for _ in range(max_steps):
        if np.all(cls_values(lo) >= level):
            break
        lo /= 2.0
    else:
        raise LimitError(
            f"limit: CLs stays below {level:g} down to mu = {lo:.3g}; the workspace cannot "
            "set a limit (check the signal and background inputs)",
            result={"bracket": (lo, hi)},
        )
    for _ in range(max_steps):
        if np.all(cls_values(hi) <= level):
            break
        if hi >= mu_max:
            raise LimitError(
                f"limit: CLs stays above {level:g} up to the mu bound {mu_max:g}; the signal "
                "template is too small for this region (raise limits.reference_events)",
                result={"bracket": (lo, hi)},
            )
        hi = min(2.0 * hi, mu_max)
    else:
        raise LimitError(
            f"limit: CLs stays above {level:g} up to mu = {hi:.3g}", result={"bracket": (lo, hi)}
        )
    return lo, hi


@dataclass(frozen=True)
class LimitResult:
    """CLs upper limit on the signal strength."""

    cl: float
    observed: float
    expected: tuple[float, float, float, float, float]  # -2, -1, median, +1, +2 sigma
    calctype: str

    @property
    def expected_median(self) -> float:
        return self.expected[2]

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "cl": self.cl,
                "observed": self.observed,
                "expected": list(self.expected),
                "expected_median": self.expected_median,
                "calctype": self.calctype,
            }
        )


def upper_limit(
    workspace: Any,
    *,
    cl: float = 0.95,
    calctype: str = "asymptotics",
    ntoys: int = 2000,
    bounds: tuple[float, float] | None = None,
    rtol: float = 1e-4,
    seed: int = 0,
    fit_optimizer: str = "scipy",
) -> LimitResult:
    """CLs upper limit on ``mu`` (observed and expected +-1, 2 sigma), q~mu test statistic.

    Args:
        workspace: a workspace dict, ``pyhf.Workspace`` or ``(model, data)``.
        cl: confidence level (0.95 -> CLs = 0.05).
        calctype: ``asymptotics`` (default) or ``toybased`` (slow; ``ntoys`` per point).
        bounds: initial bracket for mu (extended automatically if it does not bracket).
        rtol: relative tolerance on the limit (asymptotics).
        seed: toy seed; the same toys are thrown at every mu, so CLs(mu) is smooth.
        fit_optimizer: ``scipy`` or ``minuit`` (faster with many parameters, see
            :func:`optimizer`).
    """
    with optimizer(fit_optimizer):
        return _upper_limit(workspace, cl, calctype, ntoys, bounds, rtol, seed)


def _upper_limit(workspace, cl, calctype, ntoys, bounds, rtol, seed) -> LimitResult:
    if not 0.0 < float(cl) < 1.0:
        raise ConfigError(f"cl must lie in (0, 1), got {cl!r}")
    if calctype == "toybased" and not int(ntoys) >= 1:
        raise ConfigError(f"ntoys must be >= 1, got {ntoys!r}")
    from pyhf.infer.intervals.upper_limits import toms748_scan

    model, data = _model_data(workspace)
    if bounds is None:
        bounds = _limit_bracket(model)
    if calctype == "toybased":
        obs, exp = _toy_limits(model, data, bounds, level=1.0 - cl, ntoys=ntoys, seed=seed)
        return LimitResult(float(cl), obs, exp, calctype)
    if calctype != "asymptotics":
        raise ConfigError(f"calctype must be 'asymptotics' or 'toybased', got {calctype!r}")
    lo, hi = _bracket(model, data, bounds, level=1.0 - cl)
    try:
        obs, exp = toms748_scan(data, model, lo, hi, level=1.0 - cl, rtol=rtol, test_stat="qtilde")
    except (ValueError, RuntimeError, FloatingPointError) as err:
        # e.g. a NaN CLs where a fit fails inside the bracket
        raise LimitError(
            f"limit: the CLs scan in mu [{lo:.3g}, {hi:.3g}] failed: {err}",
            result={"bracket": (lo, hi)},
        ) from None
    return LimitResult(
        float(cl),
        float(obs),
        tuple(float(e) for e in exp),
        calctype,  # type: ignore[arg-type]
    )


def _toy_limits(
    model: Any,
    data: Any,
    bounds: tuple[float, float],
    *,
    level: float,
    ntoys: int,
    seed: int,
    n_grid: int = 15,
) -> tuple[float, tuple[float, ...]]:
    """Toy-based CLs limits (observed, expected -2..+2 sigma).

    pyhf 0.7.6's toy expected band calls ``numpy.percentile(interpolation=...)``, removed in
    numpy 2, so the band is computed here from the same toy distributions.
    """
    from scipy import stats

    pyhf = _pyhf()
    quantiles = 100.0 * stats.norm.cdf([-2.0, -1.0, 0.0, 1.0, 2.0])
    cache: dict[float, np.ndarray] = {}

    def cls_all(mu: float) -> np.ndarray:
        if mu not in cache:
            state = np.random.get_state()  # noqa: NPY002
            np.random.seed(seed)  # noqa: NPY002 (pyhf draws toys from the global generator)
            try:
                calc = pyhf.infer.utils.create_calculator(
                    "toybased", data, model, ntoys=ntoys, test_stat="qtilde", track_progress=False
                )
                sb, b = calc.distributions(mu)
                t_obs = calc.teststatistic(mu)
            finally:
                np.random.set_state(state)  # noqa: NPY002
            obs = float(sb.pvalue(t_obs) / b.pvalue(t_obs))
            per_toy = np.array([sb.pvalue(t) / b.pvalue(t) for t in b.samples], dtype=float)
            cache[mu] = np.concatenate([[obs], np.percentile(per_toy, quantiles)])
        return cache[mu]

    lo, hi = float(bounds[0]), float(bounds[1])
    while np.any(cls_all(lo) < level) and lo > 1e-6:
        lo /= 2.0
    while np.any(cls_all(hi) > level) and hi < 1e6:
        hi *= 2.0
    # toys are expensive: one grid of mu values serves all six curves, each crossing is
    # interpolated linearly in log CLs
    grid = np.geomspace(lo, hi, n_grid)
    table = np.array([cls_all(float(m)) for m in grid])
    roots = []
    for k in range(6):
        y = np.log(np.maximum(table[:, k], 1e-300)) - np.log(level)
        i = int(np.argmax(y < 0))  # first grid point below the level
        if i == 0:
            roots.append(float(grid[0]))
            continue
        f = y[i - 1] / (y[i - 1] - y[i])
        roots.append(float(grid[i - 1] + f * (grid[i] - grid[i - 1])))
    return roots[0], tuple(sorted(roots[1:]))


@dataclass(frozen=True)
class DiscoveryResult:
    """Background-only p-value (q0) of the data and the median expected one for mu = 1."""

    p0: float
    significance: float
    expected_p0: float
    expected_significance: float

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


def discovery_p0(workspace: Any) -> DiscoveryResult:
    """Asymptotic discovery p-value with the q0 statistic (observed and mu=1 Asimov expected)."""
    pyhf = _pyhf()
    from scipy import stats

    model, data = _model_data(workspace)
    p0 = float(pyhf.infer.hypotest(0.0, data, model, test_stat="q0"))
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = 1.0
    asimov = model.expected_data(pars)
    p0_exp = float(pyhf.infer.hypotest(0.0, asimov, model, test_stat="q0"))
    return DiscoveryResult(p0, float(stats.norm.isf(p0)), p0_exp, float(stats.norm.isf(p0_exp)))


@dataclass(frozen=True)
class LimitScan:
    """Limits on mu (and on signal events) versus signal mass."""

    masses: np.ndarray
    observed: np.ndarray
    expected: np.ndarray  # (n_masses, 5)
    signal_yield: np.ndarray  # events in the workspace for mu = 1, per mass
    cl: float

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "cl": self.cl,
                "masses": self.masses,
                "observed_mu": self.observed,
                "expected_mu": self.expected,
                "signal_yield_mu1": self.signal_yield,
                "observed_events": self.observed * self.signal_yield,
                "expected_events": self.expected * self.signal_yield[:, None],
            }
        )

    def brazil_plot(self, path: str, *, ylabel: str = "95% CL upper limit on mu") -> None:
        """Write the observed limit with expected +-1, 2 sigma bands versus mass."""
        from adcoffea.plots import save
        from adcoffea.plots.limits import plot_brazil

        save(plot_brazil(self.masses, self.observed, self.expected, ylabel=ylabel), path, dpi=80)


def limit_scan(
    masses: Sequence[float],
    *,
    data: Any,
    background: Any,
    signal_for_mass: Any,
    cl: float = 0.95,
    bkg_variations: Mapping[str, tuple[Any, Any]] | None = None,
    control: Mapping[str, Any] | None = None,
    calctype: str = "asymptotics",
) -> LimitScan:
    """CLs limits for a series of signal hypotheses.

    Args:
        masses: signal masses (GeV).
        data, background, bkg_variations, control: as in :func:`build_workspace`.
        signal_for_mass: callable ``mass -> expected signal counts for mu = 1``.
        cl: confidence level.
    """
    if not 0.0 < float(cl) < 1.0:
        raise ConfigError(f"cl must lie in (0, 1), got {cl!r}")
    if len(masses) == 0:
        raise ConfigError("masses must list at least one signal mass")
    obs, exp, yields = [], [], []
    for mass in masses:
        sig = np.asarray(signal_for_mass(float(mass)), dtype=float)
        ws = build_workspace(data, background, sig, bkg_variations=bkg_variations, control=control)
        lim = upper_limit(ws, cl=cl, calctype=calctype)
        obs.append(lim.observed)
        exp.append(lim.expected)
        yields.append(sig.sum())
    return LimitScan(
        np.asarray(masses, dtype=float),
        np.asarray(obs),
        np.asarray(exp),
        np.asarray(yields),
        float(cl),
    )
