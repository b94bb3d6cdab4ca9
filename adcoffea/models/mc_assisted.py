"""MC-assisted background extrapolation for signals without a usable sideband (non-resonant).

A resonance search interpolates its background from sidebands on both sides of the signal
region (CWoLa, CATHODE). A semi-visible-jet signal in mT with MET, or a signal in a tail, has
no sideband above it: the background of the signal region (SR) must be *extrapolated* from
control regions (CR) below it. Simulation ("MC") knows how the features x change with the
observable m, but mismodels them; data knows them only in the CR. Here MC supplies the m
dependence and data in the CR corrects MC, in three ways:

1. **mass weight** (every variant): ``w(m) = p_data(m | CR) / p_MC(m | CR)``, a polynomial in m
   (``degree``) fitted to the log ratio of the CR histograms and extrapolated into the SR, so
   the MC background has the data's m spectrum wherever x depends on m;
2. the x correction:

   * ``"reweight"`` (SALAD, Andreassen et al. 2020): a classifier of data against w-weighted MC
     in the CR, with m as an input, gives ``r(x, m) = p_data / p_MC``; the prediction is MC in
     the SR weighted by ``w(m) r(x, m)`` (boosted trees continue r flat beyond the CR);
   * ``"generate"`` (CATHODE with an MC prior): a conditional flow p(x | m) trained on MC at
     every m, then fine-tuned on data in the CR; the prediction is ``oversample`` times the
     SR data size of samples at m drawn from the w-weighted MC SR spectrum;
   * ``"morph"`` (conditional quantile morphing, as for simulation corrections): per feature
     and quantile level u the shift ``q_data(u | m) - q_MC(u | m)`` is measured in m bins of the
     CR, fitted linearly in m, and applied to each MC event at its own MC quantile level u and
     m (marginals only: correlations come from MC);

3. **closure**: the same prediction for a CR slice next to the SR that no step saw
   (``validation``) is compared with the data there: the out-of-fold AUC of a classifier of
   data against the prediction (0.5 = closure) and the standardised mean shift per feature;
4. **anomaly score**: a k-fold classifier of data in the SR against the prediction; every SR
   data event is scored out of fold (:func:`classify_against`). With the true background in
   place of the prediction this is the idealized anomaly detector (the ceiling).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m_mc, m_d = rng.exponential(1.0, 6000) + 1, rng.exponential(1.0, 6000) + 1
    >>> x_mc = rng.normal(m_mc[:, None], 1.0, (6000, 2))
    >>> x_d = rng.normal(1.1 * m_d[:, None], 1.0, (6000, 2))  # MC mismodels the slope
    >>> res = mc_assisted(x_d, m_d, x_mc, m_mc, sr=(2.5, 9.0), cr=(1.0, 2.5),
    ...                   validation=(2.0, 2.5), method="morph", seed=1, members=1)
    >>> 0.4 < res.closure.auc < 0.6
    True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from adcoffea.errors import ConfigError

Method = Literal["reweight", "generate", "morph"]
METHODS: tuple[str, ...] = ("reweight", "generate", "morph")

#: The per-event density ratio of "reweight" is clipped to this range (tails of few events).
RATIO_CLIP = (0.05, 20.0)


@dataclass(frozen=True)
class MassWeight:
    """``w(m) = exp(poly((m - center) / scale))``, the data/MC ratio of the m spectra."""

    coef: tuple[float, ...]
    center: float
    scale: float

    def __call__(self, m: np.ndarray) -> np.ndarray:
        t = (np.asarray(m, dtype=np.float64) - self.center) / self.scale
        return np.exp(np.polyval(np.asarray(self.coef), t))

    def to_dict(self) -> dict[str, Any]:
        return {"coef": list(self.coef), "center": self.center, "scale": self.scale}


def fit_mass_weight(
    m_data: np.ndarray,
    m_mc: np.ndarray,
    *,
    cr: tuple[float, float],
    degree: int = 1,
    bins: int = 10,
    mc_weight: np.ndarray | None = None,
) -> MassWeight:
    """Fit log[p_data(m | CR) / p_MC(m | CR)] by a polynomial of ``degree`` in m.

    Weighted least squares on the CR histograms (``bins`` equal-population bins of the data),
    each bin weighted by the inverse Poisson variance of the log ratio.
    """
    lo, hi = cr
    d = m_data[(m_data >= lo) & (m_data < hi)]
    in_mc = (m_mc >= lo) & (m_mc < hi)
    wm = np.ones(len(m_mc)) if mc_weight is None else np.asarray(mc_weight, np.float64)
    if len(d) < 2 * bins or in_mc.sum() < 2 * bins:
        raise ConfigError(f"mc_assisted: too few events in the control region {cr} to fit w(m)")
    edges = np.unique(np.quantile(d, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = lo, hi
    nd, _ = np.histogram(d, edges)
    nm, _ = np.histogram(m_mc[in_mc], edges, weights=wm[in_mc])
    nm2, _ = np.histogram(m_mc[in_mc], edges, weights=wm[in_mc] ** 2)
    ok = (nd > 0) & (nm > 0)
    ratio = (nd[ok] / nd.sum()) / (nm[ok] / nm.sum())
    var = 1.0 / nd[ok] + nm2[ok] / nm[ok] ** 2
    centers = 0.5 * (edges[1:] + edges[:-1])[ok]
    center, scale = float(0.5 * (lo + hi)), float(max(hi - lo, 1e-12))
    deg = min(int(degree), int(ok.sum()) - 1)
    coef = np.polyfit((centers - center) / scale, np.log(ratio), deg, w=1.0 / np.sqrt(var))
    return MassWeight(tuple(map(float, coef)), center, scale)


@dataclass(frozen=True)
class Closure:
    """Agreement of the prediction with data in the validation slice of the CR."""

    auc: float
    n_data: int
    n_prediction: int
    mean_shift: tuple[float, ...]  # (mean_pred - mean_data) / std_data per feature

    def to_dict(self) -> dict[str, Any]:
        return {"auc": self.auc, "n_data": self.n_data, "n_prediction": self.n_prediction,
                "mean_shift": list(self.mean_shift)}  # fmt: skip


@dataclass(frozen=True)
class MCAssistedResult:
    """Scores of the SR data events and how the background prediction was made.

    Attributes:
        method: "reweight", "generate" or "morph".
        scores: out-of-fold anomaly score (in [0, 1]) of each data event in the SR, in order.
        sr_mask: which data events are in the SR (``scores`` are theirs).
        mass_weight: the fitted ``w(m)``.
        closure: the validation-slice closure (None without ``validation``).
        n_template: events (or samples) in the SR background prediction.
    """

    method: str
    scores: np.ndarray
    sr_mask: np.ndarray
    mass_weight: MassWeight
    closure: Closure | None
    n_template: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "n_data_sr": int(self.sr_mask.sum()),
                "n_template": self.n_template, "mass_weight": self.mass_weight.to_dict(),
                "closure": None if self.closure is None else self.closure.to_dict(),
                **self.extra}  # fmt: skip


# -------------------------------------------------------------------------------- helpers


def _in(m: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    return (m >= window[0]) & (m < window[1])


def _oof(x_data, x_template, template_weight, *, seed, k, members) -> np.ndarray:
    """Out-of-fold P(data) of every row of [data, template] from k-fold BDT ensembles."""
    from adcoffea.models.classifiers import train_kfold_classifier

    rng = np.random.default_rng(seed)
    x = np.concatenate([x_data, x_template])
    y = np.r_[np.ones(len(x_data), np.int8), np.zeros(len(x_template), np.int8)]
    folds = rng.integers(0, k, len(x))
    w = None
    if template_weight is not None:
        tw = np.asarray(template_weight, np.float64)
        w = np.r_[np.ones(len(x_data)), tw * len(tw) / tw.sum()]
    clf = train_kfold_classifier(x, y, folds=folds, k=k, kind="bdt", members=members,
                                 sample_weight=w, seed=seed)  # fmt: skip
    return clf.predict_oof(x, folds)


def classify_against(
    x_data: np.ndarray,
    x_template: np.ndarray,
    *,
    template_weight: np.ndarray | None = None,
    seed: int = 0,
    k: int = 5,
    members: int = 3,
) -> np.ndarray:
    """Out-of-fold scores of ``x_data`` from k-fold BDTs of data (1) against a template (0).

    Every row (template rows too) is scored only by the models of folds that never saw it.
    """
    return _oof(x_data, x_template, template_weight, seed=seed, k=k, members=members)[: len(x_data)]


def _closure(x_data, x_pred, w_pred, *, seed, members) -> Closure:
    from adcoffea.models.evaluate import roc_sic

    s = _oof(x_data, x_pred, w_pred, seed=seed, k=2, members=members)
    y = np.r_[np.ones(len(x_data)), np.zeros(len(x_pred))]
    w = np.r_[np.ones(len(x_data)), w_pred * len(x_data) / w_pred.sum()]
    auc = roc_sic(s, y, weights=w, min_background=1).auc
    mu_d, sd_d = x_data.mean(0), x_data.std(0) + 1e-12
    mu_p = np.average(x_pred, axis=0, weights=w_pred)
    return Closure(float(auc), len(x_data), len(x_pred), tuple(map(float, (mu_p - mu_d) / sd_d)))


def _ratio_model(x_d, m_d, x_mc, m_mc, w_mc, *, seed):
    """r(x, m) = p_data / p_MC from a balanced HistGradientBoosting classifier (logit)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.column_stack([np.concatenate([x_d, x_mc]), np.concatenate([m_d, m_mc])])
    y = np.r_[np.ones(len(x_d)), np.zeros(len(x_mc))]
    w = np.r_[np.full(len(x_d), 1.0 / len(x_d)), w_mc / w_mc.sum()] * len(x) / 2
    clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                         min_samples_leaf=50, early_stopping=True,
                                         validation_fraction=0.3, n_iter_no_change=10,
                                         random_state=seed)  # fmt: skip
    clf.fit(x, y, sample_weight=w)

    def ratio(xq, mq):
        logit = clf.decision_function(np.column_stack([xq, mq]))
        return np.clip(np.exp(logit), *RATIO_CLIP)

    return ratio


class _Morph:
    """Per-feature conditional quantile morphing MC -> data, shifts linear in m."""

    def __init__(self, x_d, m_d, x_mc, m_mc, w_mc, *, bins: int = 5, levels: int = 21):
        self.u = np.linspace(0.02, 0.98, levels)
        edges = np.unique(np.quantile(m_d, np.linspace(0, 1, bins + 1)))
        centers, shifts = [], []
        for a, b in itertools.pairwise(edges):
            sd, sm = (m_d >= a) & (m_d <= b), (m_mc >= a) & (m_mc <= b)
            if sd.sum() < 20 or sm.sum() < 20:
                continue
            qd = np.quantile(x_d[sd], self.u, axis=0)
            qm = _weighted_quantiles(x_mc[sm], w_mc[sm], self.u)
            centers.append(np.average(m_d[sd]))
            shifts.append(qd - qm)  # (levels, features)
        if len(centers) < 2:
            raise ConfigError("mc_assisted morph: needs at least two populated CR m bins")
        c = np.asarray(centers)
        s = np.stack(shifts)  # (bins, levels, features)
        a_mat = np.column_stack([np.ones_like(c), c])
        coef, *_ = np.linalg.lstsq(a_mat, s.reshape(len(c), -1), rcond=None)
        self.coef = coef.reshape(2, *s.shape[1:])  # intercept, slope

    def __call__(self, x_mc, m_mc, w_mc, m_bins: np.ndarray) -> np.ndarray:
        out = np.array(x_mc, dtype=np.float64, copy=True)
        idx = np.clip(np.searchsorted(m_bins, m_mc, side="right") - 1, 0, len(m_bins) - 2)
        u = np.empty_like(out)
        for b in np.unique(idx):  # MC quantile level of each event within its own m bin
            sel = idx == b
            u[sel] = _weighted_ranks(x_mc[sel], w_mc[sel])
        shift_at = self.coef[0][None] + self.coef[1][None] * m_mc[:, None, None]  # (n, L, F)
        for f in range(out.shape[1]):
            # interpolate each event's shift at its level u (levels are sorted)
            pos = np.clip(np.searchsorted(self.u, u[:, f]) - 1, 0, len(self.u) - 2)
            t = np.clip((u[:, f] - self.u[pos]) / (self.u[pos + 1] - self.u[pos]), 0.0, 1.0)
            rows = np.arange(len(out))
            s = (1 - t) * shift_at[rows, pos, f] + t * shift_at[rows, pos + 1, f]
            out[:, f] += s
        return out


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, u: np.ndarray) -> np.ndarray:
    out = np.empty((len(u), x.shape[1]))
    for f in range(x.shape[1]):
        order = np.argsort(x[:, f])
        cw = np.cumsum(w[order])
        cw = (cw - 0.5 * w[order]) / cw[-1]
        out[:, f] = np.interp(u, cw, x[order, f])
    return out


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float64)
    for f in range(x.shape[1]):
        order = np.argsort(x[:, f], kind="stable")
        cw = np.cumsum(w[order])
        out[order, f] = (cw - 0.5 * w[order]) / cw[-1]
    return out


def _flow_samples(x_d, m_d, x_mc, m_mc, m_sample, *, seed, epochs, fine_tune_epochs):
    """Conditional MAF (zuko) on MC (all m), fine-tuned on CR data; samples at ``m_sample``."""
    import torch

    from adcoffea.config import TrainConfig
    from adcoffea.models import nets
    from adcoffea.models.loop import fit
    from adcoffea.models.preprocessing import LogitScaler

    scaler = LogitScaler.fit(np.concatenate([x_d, x_mc]))
    m_mu, m_sd = float(m_mc.mean()), float(m_mc.std() + 1e-12)

    def ctx(m):
        return ((np.asarray(m) - m_mu) / m_sd).astype(np.float32)[:, None]

    flow = nets.build("flow", {"n_features": x_mc.shape[1], "n_context": 1, "kind": "maf",
                               "transforms": 6, "hidden": [64, 64], "bins": 8},
                      seed=seed)  # fmt: skip

    def loss(model, batch, _gen):
        return -model.log_prob(batch[0], batch[1]).mean()

    cfg = TrainConfig(epochs=epochs, batch_size=256, learning_rate=1e-3, patience=5, seed=seed)
    fit(flow, loss, [scaler.transform(x_mc), ctx(m_mc)], config=cfg, seed=seed)
    cfg2 = TrainConfig(epochs=fine_tune_epochs, batch_size=256, learning_rate=2e-4, patience=5,
                       seed=seed)  # fmt: skip
    fit(flow, loss, [scaler.transform(x_d), ctx(m_d)], config=cfg2, seed=seed + 1)
    flow.to("cpu").eval()
    # zuko samples from torch's global generator: seed it inside a forked RNG state
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        z = flow.sample(torch.as_tensor(ctx(m_sample))).double().numpy()
    z = np.nan_to_num(z, nan=0.0, posinf=6.0, neginf=-6.0)
    return scaler.inverse(np.clip(z, -8.0, 8.0))


# -------------------------------------------------------------------------------- entry point


def predict_background(
    x_data: np.ndarray,
    m_data: np.ndarray,
    x_mc: np.ndarray,
    m_mc: np.ndarray,
    *,
    cr: tuple[float, float],
    target: tuple[float, float],
    method: str = "reweight",
    seed: int = 0,
    degree: int = 1,
    n_target_data: int | None = None,
    oversample: int = 4,
    flow_epochs: int = 30,
    fine_tune_epochs: int = 15,
) -> tuple[np.ndarray, np.ndarray, MassWeight]:
    """The background prediction ``(x, weights)`` in ``target`` (an m window) from data in
    ``cr`` and MC everywhere (see the module docstring for the methods)."""
    if method not in METHODS:
        raise ConfigError(f"mc_assisted method: {method!r} is not one of {METHODS}")
    in_cr_d, in_cr_mc = _in(m_data, cr), _in(m_mc, cr)
    mw = fit_mass_weight(m_data, m_mc, cr=cr, degree=degree)
    w_mc = mw(m_mc)
    in_t = _in(m_mc, target)
    if in_t.sum() < 10:
        raise ConfigError(f"mc_assisted: fewer than 10 MC events in the window {target}")
    if method == "reweight":
        ratio = _ratio_model(x_data[in_cr_d], m_data[in_cr_d], x_mc[in_cr_mc], m_mc[in_cr_mc],
                             w_mc[in_cr_mc], seed=seed)  # fmt: skip
        return x_mc[in_t], w_mc[in_t] * ratio(x_mc[in_t], m_mc[in_t]), mw
    if method == "morph":
        morph = _Morph(x_data[in_cr_d], m_data[in_cr_d], x_mc[in_cr_mc], m_mc[in_cr_mc],
                       w_mc[in_cr_mc])  # fmt: skip
        m_bins = np.quantile(m_mc, np.linspace(0, 1, 21))
        m_bins[-1] += 1e-9
        x_all = morph(x_mc, m_mc, w_mc, m_bins)
        return x_all[in_t], w_mc[in_t], mw
    rng = np.random.default_rng(seed)
    n_s = oversample * int(n_target_data or in_t.sum())
    p = w_mc[in_t] / w_mc[in_t].sum()
    m_s = rng.choice(m_mc[in_t], size=n_s, p=p)
    x_s = _flow_samples(x_data[in_cr_d], m_data[in_cr_d], x_mc, m_mc, m_s, seed=seed,
                        epochs=flow_epochs, fine_tune_epochs=fine_tune_epochs)  # fmt: skip
    return x_s, np.ones(n_s), mw


def mc_assisted(
    x_data: np.ndarray,
    m_data: np.ndarray,
    x_mc: np.ndarray,
    m_mc: np.ndarray,
    *,
    sr: tuple[float, float],
    cr: tuple[float, float],
    validation: tuple[float, float] | None = None,
    method: str = "reweight",
    seed: int = 0,
    k: int = 5,
    members: int = 3,
    **options: Any,
) -> MCAssistedResult:
    """Background prediction in ``sr`` from data in ``cr`` and MC, closure, anomaly scores.

    Args:
        x_data, m_data: data features (n, d) and observable (n,); data may contain signal.
        x_mc, m_mc: background simulation, at every m.
        sr: the signal region in m; cr: the control region (must not overlap ``sr``).
        validation: a slice of ``cr`` held out of every fit, for the closure test.
        method: "reweight", "generate" or "morph".
        seed: all randomness derives from it.
        k, members: folds and BDTs per fold of the SR classifier.
        options: passed to :func:`predict_background` (``degree``, ``oversample``, ...).
    """
    x_data, x_mc = np.asarray(x_data, np.float64), np.asarray(x_mc, np.float64)
    m_data, m_mc = np.asarray(m_data, np.float64), np.asarray(m_mc, np.float64)
    if sr[0] < cr[1] and cr[0] < sr[1]:
        raise ConfigError(f"mc_assisted: control region {cr} overlaps the signal region {sr}")
    closure = None
    fit_cr = cr
    if validation is not None:
        if not (cr[0] <= validation[0] < validation[1] <= cr[1]):
            raise ConfigError(f"mc_assisted: validation {validation} must lie inside cr {cr}")
        # fit below the validation slice when it is at the top of the CR (next to the SR)
        fit_cr = (cr[0], validation[0]) if validation[1] >= cr[1] else (validation[1], cr[1])
        in_v = _in(m_data, validation)
        xv, wv, _ = predict_background(x_data, m_data, x_mc, m_mc, cr=fit_cr, target=validation,
                                       method=method, seed=seed, n_target_data=int(in_v.sum()),
                                       **options)  # fmt: skip
        closure = _closure(x_data[in_v], xv, wv, seed=seed + 11, members=members)
    in_sr = _in(m_data, sr)
    xt, wt, mw = predict_background(x_data, m_data, x_mc, m_mc, cr=cr, target=sr, method=method,
                                    seed=seed, n_target_data=int(in_sr.sum()), **options)  # fmt: skip
    scores = classify_against(x_data[in_sr], xt, template_weight=wt, seed=seed + 3, k=k,
                              members=members)  # fmt: skip
    return MCAssistedResult(method=method, scores=scores, sr_mask=in_sr, mass_weight=mw,
                            closure=closure, n_template=len(xt))  # fmt: skip
