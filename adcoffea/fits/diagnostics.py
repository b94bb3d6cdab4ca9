"""Fit diagnostics of a pyhf workspace: pulls, impacts on mu, pre-/post-fit yields.

Written on pyhf's own inference (cabinetry is not installed with the pinned pyhf and
numpy 2 here): one maximum-likelihood fit to the data with minuit (for the post-fit
uncertainties and correlations), then, per constrained nuisance parameter ``theta``:

* **pull** ``(theta_hat - theta_0) / sigma_pre`` and **constraint** ``sigma_hat / sigma_pre``
  (``sigma_pre`` is 1 for ``histosys``/``normsys``, the relative uncertainty for a
  ``staterror`` gamma, whose ``theta_0`` is 1);
* **impact** on mu: the fit repeated with ``theta`` fixed at ``theta_hat +- sigma_hat``
  (post-fit) and ``theta_hat +- sigma_pre`` (pre-fit), ``delta mu = mu_hat(fixed) - mu_hat``;
  the ranking orders the parameters by the larger post-fit ``|delta mu|``;
* **yields** per channel and sample, summed over bins, pre-fit (``mu = prefit_mu``, every
  nuisance parameter at its nominal value) and post-fit, with uncertainties propagated
  linearly (numerical Jacobian) through the pre-fit widths (uncorrelated) or the post-fit
  covariance.

Parameters that pyhf fixes (a ``staterror`` bin without uncertainty) have no pull or impact.

Example:
    >>> from adcoffea.fits.workspace import build_workspace
    >>> ws = build_workspace([60.0, 52.0], [50.0, 50.0], [10.0, 5.0], lumi_uncertainty=0.02)
    >>> d = fit_diagnostics(ws)
    >>> [p.name for p in d.pulls]
    ['lumi']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcoffea.errors import LimitError
from adcoffea.outputs import to_jsonable


@dataclass(frozen=True)
class Pull:
    """A nuisance parameter before and after the fit to the data."""

    name: str
    prefit_value: float
    prefit_width: float
    postfit_value: float
    postfit_error: float

    @property
    def pull(self) -> float:
        return (self.postfit_value - self.prefit_value) / self.prefit_width

    @property
    def constraint(self) -> float:
        return self.postfit_error / self.prefit_width

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({**self.__dict__, "pull": self.pull, "constraint": self.constraint})


@dataclass(frozen=True)
class Impact:
    """The shift of the fitted mu when one nuisance parameter is fixed away from its fit."""

    name: str
    postfit_up: float
    postfit_down: float
    prefit_up: float
    prefit_down: float

    @property
    def size(self) -> float:
        """The ranking key: the larger post-fit |delta mu|."""
        return max(abs(self.postfit_up), abs(self.postfit_down))

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self.__dict__)


@dataclass(frozen=True)
class YieldRow:
    """One sample's (or the data's) yield in one channel, summed over its bins."""

    channel: str
    sample: str
    prefit: float
    prefit_error: float
    postfit: float
    postfit_error: float

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self.__dict__)


@dataclass(frozen=True)
class FitDiagnostics:
    """Pulls, impacts (ranked, largest first) and yields of one workspace's fit to data."""

    mu_hat: float
    mu_error: float
    prefit_mu: float
    pulls: tuple[Pull, ...] = ()
    impacts: tuple[Impact, ...] = ()
    yields: tuple[YieldRow, ...] = ()
    data: dict[str, float] = field(default_factory=dict)

    def ranking(self, n: int = 5) -> list[str]:
        """The ``n`` nuisance parameters with the largest post-fit impact on mu."""
        return [i.name for i in self.impacts[:n]]

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "mu_hat": self.mu_hat,
                "mu_error": self.mu_error,
                "prefit_mu": self.prefit_mu,
                "pulls": [p.to_dict() for p in self.pulls],
                "impacts": [i.to_dict() for i in self.impacts],
                "ranking": self.ranking(len(self.impacts)),
                "yields": [y.to_dict() for y in self.yields],
                "data": self.data,
            }
        )


def _labels(model: Any) -> list[tuple[int, str, float, float, bool]]:
    """(index, label, nominal, pre-fit width, constrained) of every free parameter."""
    cfg = model.config
    fixed = cfg.suggested_fixed()
    init = cfg.suggested_init()
    out = []
    for name in cfg.par_order:
        ps = cfg.param_set(name)
        sl = cfg.par_slice(name)
        widths = ps.width() if ps.constrained else [0.0] * ps.n_parameters
        for j, i in enumerate(range(sl.start, sl.stop)):
            if fixed[i]:
                continue
            label = name if ps.n_parameters == 1 else f"{name}[{j}]"
            out.append((i, label, float(init[i]), float(widths[j]), bool(ps.constrained)))
    return out


def fit_diagnostics(workspace: Any, *, prefit_mu: float = 1.0) -> FitDiagnostics:
    """Pulls, impacts on the POI and pre-/post-fit yields of ``workspace`` (see the module).

    Args:
        workspace: a workspace dict, ``pyhf.Workspace`` or ``(model, data)``.
        prefit_mu: the signal strength of the pre-fit yields.

    Raises:
        LimitError: the fit to the data fails.
    """
    from adcoffea.fits.workspace import _model_data, optimizer

    with optimizer("minuit") as pyhf:
        model, data = _model_data(workspace)
        poi = model.config.poi_index
        bounds = model.config.suggested_bounds()
        fixed = model.config.suggested_fixed()
        try:
            best, corr = pyhf.infer.mle.fit(
                data, model, return_uncertainties=True, return_correlations=True
            )
        except Exception as exc:  # pyhf raises several exception types
            raise LimitError(f"diagnostics: the fit to the data failed: {exc}") from exc
        best = np.asarray(best, dtype=float)
        theta, err = best[:, 0], best[:, 1]
        cov = np.asarray(corr, dtype=float) * np.outer(err, err)
        mu_hat = float(theta[poi])

        def refit_mu(i: int, value: float) -> float:
            lo, hi = bounds[i]
            init = theta.copy()
            init[i] = float(np.clip(value, lo, hi))
            fix = list(fixed)
            fix[i] = True
            try:
                pars = pyhf.infer.mle.fit(data, model, init_pars=init.tolist(), fixed_params=fix)
            except Exception:  # a failed refit: no impact rather than no diagnostics
                return float("nan")
            return float(np.asarray(pars)[poi]) - mu_hat

        pulls, impacts = [], []
        for i, label, nominal, width, constrained in _labels(model):
            if i == poi or not constrained:
                continue
            pulls.append(Pull(label, nominal, width, float(theta[i]), float(err[i])))
            impacts.append(
                Impact(
                    label,
                    refit_mu(i, theta[i] + err[i]),
                    refit_mu(i, theta[i] - err[i]),
                    refit_mu(i, theta[i] + width),
                    refit_mu(i, theta[i] - width),
                )
            )
        impacts.sort(key=lambda x: -np.nan_to_num(x.size, nan=-1.0))

        init = np.asarray(model.config.suggested_init(), dtype=float)
        init[poi] = float(prefit_mu)
        pre_cov = np.zeros((len(init), len(init)))
        for i, _, _, width, _ in _labels(model):
            pre_cov[i, i] = width**2
        pre, pre_err = _sample_yields(model, init, pre_cov)
        post, post_err = _sample_yields(model, theta, cov)
    rows = []
    obs = np.asarray(data, dtype=float)[: model.config.nmaindata]
    data_sums: dict[str, float] = {}
    for c, ch in enumerate(model.config.channels):
        sl = model.config.channel_slices[ch]
        data_sums[ch] = float(obs[sl].sum())
        for k, sample in enumerate([*model.config.samples, "total"]):
            rows.append(
                YieldRow(
                    ch,
                    sample,
                    float(pre[c, k]),
                    float(pre_err[c, k]),
                    float(post[c, k]),
                    float(post_err[c, k]),
                )
            )
    return FitDiagnostics(
        mu_hat=mu_hat,
        mu_error=float(err[poi]),
        prefit_mu=float(prefit_mu),
        pulls=tuple(pulls),
        impacts=tuple(impacts),
        yields=tuple(rows),
        data=data_sums,
    )


def _sample_yields(model: Any, pars: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_channels, n_samples + 1) yields and linearly propagated errors; last column: total."""
    cfg = model.config

    def sums(p: np.ndarray) -> np.ndarray:
        by = np.asarray(model.main_model.expected_data(p, return_by_sample=True), dtype=float)
        out = np.empty((len(cfg.channels), len(cfg.samples) + 1))
        for c, ch in enumerate(cfg.channels):
            sl = cfg.channel_slices[ch]
            out[c, :-1] = by[:, sl].sum(axis=1)
            out[c, -1] = out[c, :-1].sum()
        return out

    nominal = sums(pars)
    bounds = cfg.suggested_bounds()
    live = [i for i in range(len(pars)) if cov[i, i] > 0]
    jac = np.zeros((*nominal.shape, len(pars)))
    for i in live:
        h = 1e-3 * np.sqrt(cov[i, i])
        up, dn = pars.copy(), pars.copy()
        up[i] = min(pars[i] + h, bounds[i][1])
        dn[i] = max(pars[i] - h, bounds[i][0])
        jac[..., i] = (sums(up) - sums(dn)) / (up[i] - dn[i])
    var = np.einsum("csi,ij,csj->cs", jac, cov, jac)
    return nominal, np.sqrt(np.maximum(var, 0.0))


__all__ = ["FitDiagnostics", "Impact", "Pull", "YieldRow", "fit_diagnostics"]
