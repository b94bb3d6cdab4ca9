"""Conditional background models p(x | mjj) for CATHODE: zuko flows (MAF, NSF) and a cVAE.

CATHODE (Hallin et al. 2022) learns the background density of the classifier features ``x``
as a function of mjj in the sidebands, interpolates it into the signal region and samples it
there; a classifier of SR data against these samples then approximates data/background.
Everything hinges on the samples being *indistinguishable* from real background, so
:func:`sideband_closure` measures it: a k-fold classifier of real sideband events against
samples drawn at the same mjj must find nothing (ROC AUC ~ 0.5).

Models (:func:`fit_background_model`):

* ``"maf"`` (default) / ``"nsf"``: conditional masked affine autoregressive / neural spline
  flows from `zuko <https://github.com/probabilists/zuko>`_ (maintained; nflows is not).
* ``"cvae"``: a conditional VAE (:class:`adcoffea.models.nets.ConditionalVAE`), the
  generative-model alternative, sampled by decoding prior draws at the SR mjj.

Features are mapped to Gaussian marginals by their empirical quantiles
(:class:`~adcoffea.models.preprocessing.GaussianQuantileScaler`, default) or, as in CATHODE,
min-max to (0, 1), logit and standardised (``preprocessing="logit"``). With the logit map an
affine flow mis-modelled the lighter jet mass (a lognormal over two decades; KS distance 0.02
between samples and SR background), exactly where the signal sits; the quantile map makes
every marginal N(0, 1) and leaves only correlations and the mjj dependence to learn. The
condition is log(mjj), standardised on the sidebands. An ensemble (``n_models`` seeds, each on its own
train/validation split) is sampled in equal shares, which averages out the density errors of
any one fit (CATHODE samples from its ten best epochs for the same reason).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = rng.uniform(3000, 4000, 3000)
    >>> x = np.c_[rng.gamma(2, 50, 3000) + 0.01 * m, rng.beta(5, 3, 3000)]
    >>> bm = fit_background_model(x, m, kind="maf", epochs=2, seed=0)
    >>> bm.sample(np.full(10, 3500.0), seed=1).shape
    (10, 2)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from adcoffea.config import TrainConfig
from adcoffea.models import nets
from adcoffea.models.loop import fit
from adcoffea.models.preprocessing import GaussianQuantileScaler, LogitScaler

#: Feature maps before density estimation: "quantile" (marginals to N(0, 1)) or "logit"
#: (CATHODE's min-max + logit + standardise).
PREPROCESSING: dict[str, Any] = {"quantile": GaussianQuantileScaler, "logit": LogitScaler}

BACKGROUND_MODELS: tuple[str, ...] = ("nsf", "maf", "cvae")

#: Defaults of :func:`fit_background_model` (hyperparameter keys ``flow_*`` in CATHODE).
DENSITY_DEFAULTS: dict[str, Any] = {
    "kind": "maf",
    "preprocessing": "quantile",
    "transforms": 6,
    "hidden": [64, 64],
    "bins": 8,
    "latent": 4,
    "beta": 1.0,
    "n_models": 3,
    "epochs": 60,
    "batch_size": 1024,
    "learning_rate": 2e-3,
    "patience": 8,
}


@dataclass(frozen=True)
class BackgroundModel:
    """A trained conditional background model: ``sample(mjj)`` draws features at each mjj.

    Attributes:
        kind: "nsf", "maf" or "cvae".
        models: the ensemble members (sampled in equal shares).
        scaler: feature preprocessing (logit space); cond_mean, cond_std: log-mjj scaling.
        history: per-member loss curves.
    """

    kind: str
    models: tuple[nn.Module, ...]
    scaler: GaussianQuantileScaler | LogitScaler
    cond_mean: float
    cond_std: float
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def condition(self, mjj: np.ndarray) -> np.ndarray:
        m = np.asarray(mjj, dtype=np.float64)
        return ((np.log(m) - self.cond_mean) / self.cond_std).astype(np.float32)[:, None]

    def sample(self, mjj: np.ndarray, *, seed: int, batch_size: int = 65536) -> np.ndarray:
        """Features (n, d) sampled at each ``mjj``; member ``i`` draws rows ``i::n_models``."""
        c = torch.as_tensor(self.condition(mjj))
        out = np.empty((len(c), self.scaler.n_features), dtype=np.float64)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for i, model in enumerate(self.models):
                rows = np.arange(i, len(c), len(self.models))
                for s in range(0, len(rows), batch_size):
                    sel = rows[s : s + batch_size]
                    out[sel] = self.scaler.inverse(model.sample(c[sel]).double().numpy())  # type: ignore[operator]
        return out

    def log_prob(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Mean over members of log p(y | mjj) in the preprocessed space (flows only)."""
        if self.kind == "cvae":
            raise ValueError("the cVAE has no tractable density; use a flow")
        y = torch.as_tensor(self.scaler.transform(x))
        c = torch.as_tensor(self.condition(mjj))
        with torch.no_grad():
            return np.mean(
                [m.log_prob(y, c).double().numpy() for m in self.models],  # type: ignore[operator]
                axis=0,
            )


def fit_background_model(
    x: np.ndarray,
    mjj: np.ndarray,
    *,
    seed: int,
    kind: str | None = None,
    progress: bool = False,
    scaler_data: np.ndarray | None = None,
    **options: Any,
) -> BackgroundModel:
    """Train ``n_models`` conditional density models of ``x`` given ``mjj`` (sideband events).

    Args:
        x: features (n, d) of the training (sideband) events.
        mjj: their dijet mass (n,), GeV.
        seed: member ``i`` uses ``seed + i`` (initial weights and validation split).
        kind: "nsf", "maf" or "cvae" (default :data:`DENSITY_DEFAULTS`).
        progress: progress bars.
        scaler_data: events that fix the logit preprocessing range (default ``x``); pass the
            SR events too so SR samples can reach every value the data takes.
        options: keys of :data:`DENSITY_DEFAULTS` (preprocessing, transforms, hidden, bins,
            latent, beta, n_models, epochs, batch_size, learning_rate, patience).
    """
    unknown = set(options) - set(DENSITY_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown density options {sorted(unknown)}; known {sorted(DENSITY_DEFAULTS)}"
        )
    opt = {**DENSITY_DEFAULTS, **options}
    kind = str(kind or opt["kind"])
    if kind not in BACKGROUND_MODELS:
        raise ValueError(f"background model {kind!r} is not one of {BACKGROUND_MODELS}")
    x = np.asarray(x, dtype=np.float64)
    log_m = np.log(np.asarray(mjj, dtype=np.float64))
    if opt["preprocessing"] not in PREPROCESSING:
        raise ValueError(
            f"preprocessing {opt['preprocessing']!r} is not one of {sorted(PREPROCESSING)}"
        )
    scaler = PREPROCESSING[opt["preprocessing"]].fit(
        x if scaler_data is None else np.asarray(scaler_data, np.float64)
    )
    c_mean, c_std = float(log_m.mean()), float(log_m.std() or 1.0)
    y = scaler.transform(x)
    c = ((log_m - c_mean) / c_std).astype(np.float32)[:, None]
    cfg = TrainConfig(epochs=int(opt["epochs"]), batch_size=int(opt["batch_size"]),
                      learning_rate=float(opt["learning_rate"]), patience=int(opt["patience"]),
                      seed=seed)  # fmt: skip
    hp = _architecture(kind, x.shape[1], opt)
    models, history = [], {}
    for i in range(int(opt["n_models"])):
        model = nets.build(hp[0], hp[1], seed=seed + i)
        if kind == "cvae":

            def loss(m, b, g):
                rec, kl = m.losses(b[0], b[1], g)
                return (rec + m.beta * kl).mean()
        else:

            def loss(m, b, _g):
                return -m.log_prob(b[0], b[1]).mean()

        h = fit(model, loss, [y, c], config=cfg, seed=seed + i, progress=progress,
                description=f"{kind} {i}")  # fmt: skip
        history.update({f"{kind}{i}/{key}": v for key, v in h.items()})
        models.append(model.eval())
    return BackgroundModel(kind, tuple(models), scaler, c_mean, c_std, history)


def _architecture(kind: str, n_features: int, opt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if kind == "cvae":
        return "cvae", {"n_inputs": n_features, "n_context": 1, "hidden": list(opt["hidden"]),
                        "latent": int(opt["latent"]), "beta": float(opt["beta"])}  # fmt: skip
    return "flow", {"n_features": n_features, "n_context": 1, "kind": kind,
                    "transforms": int(opt["transforms"]), "hidden": list(opt["hidden"]),
                    "bins": int(opt["bins"])}  # fmt: skip


def sideband_closure(
    model: BackgroundModel,
    x: np.ndarray,
    mjj: np.ndarray,
    *,
    seed: int,
    k: int = 5,
    members: int = 3,
) -> float:
    """ROC AUC of a k-fold boosted-tree classifier, real events against model samples.

    The samples are drawn at the real events' mjj (one per event), the classifier scores each
    event out of fold; 0.5 means the model is indistinguishable from the data it imitates.
    Use events the model did not train on, or the sidebands themselves as a closure test
    (a flow that memorised its training set would also pass).
    """
    from adcoffea.models.classifiers import train_kfold_classifier
    from adcoffea.models.evaluate import roc_sic

    rng = np.random.default_rng(seed)
    fake = model.sample(mjj, seed=seed)
    xx = np.concatenate([np.asarray(x, np.float64), fake])
    yy = np.r_[np.ones(len(x)), np.zeros(len(fake))]
    folds = rng.integers(0, k, len(xx))
    clf = train_kfold_classifier(xx, yy, folds=folds, k=k, kind="bdt", members=members, seed=seed)
    return float(roc_sic(clf.predict_oof(xx, folds), yy).auc)


def sample_conditions(mjj_sr: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """``n`` SR mjj values for sampling: the SR data's own values, resampled with replacement.

    The SR mjj distribution of the data is background dominated (signal is < 1 % at the
    LHC-Olympics fraction); CATHODE uses a KDE of the same values.
    """
    return np.random.default_rng(seed).choice(np.asarray(mjj_sr, np.float64), size=n, replace=True)
