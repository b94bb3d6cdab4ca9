"""Training of every anomaly-detection method into a :class:`~adcoffea.models.bundle.ModelBundle`.

:func:`train_model` is the one entry point: it takes :class:`adcoffea.features.ModelInputs`
computed by the processors (so training and scoring share one feature implementation), a
:class:`adcoffea.config.TrainConfig` (epochs, batch size, learning rate, early-stopping
patience, validation fraction, k folds, ensemble size, seed) and returns a frozen
:class:`TrainResult`. Training is seeded (``torch.Generator`` and ``numpy`` generators derived
from ``config.seed``), uses a GPU when torch sees one, restores the best validation epoch, and
records per-epoch loss curves.

Example:
    >>> from adcoffea.config import TrainConfig
    >>> from adcoffea.models.toy import lhco_features
    >>> inputs, _ = lhco_features(400, 0, seed=1)
    >>> result = train_model("autoencoder", inputs, config=TrainConfig(epochs=2), progress=False)
    >>> scores = result.bundle.score(inputs)
    >>> scores.shape, bool(((scores >= 0) & (scores <= 1)).all())
    ((400,), True)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adcoffea.config import TrainConfig
from adcoffea.errors import ConfigError
from adcoffea.features import LHCO_FEATURES, ModelInputs
from adcoffea.models import nets
from adcoffea.models.bundle import ANTELOPE_LAYERS, KL_FLOOR, VRNN_TAILS, antelope_embedding
from adcoffea.models.classifiers import (
    BDT_DEFAULTS,
    DEFAULT_KIND,
    DEFAULT_MEMBERS,
    KINDS,
    train_classifier,
)
from adcoffea.models.loop import (
    CALIBRATION_EFFICIENCY,
    TrainResult,
    device,
    exp_calibration,
    finish_bundle,
    fit,
    quantile_table,
    spec,
)
from adcoffea.models.methods import METHODS
from adcoffea.models.preprocessing import (
    Standardizer,
    antelope_particle_features,
    vrnn_sequences,
)
from adcoffea.models.weak import train_weak

__all__ = [  # the loop's names stay importable from here (older callers)
    "CALIBRATION_EFFICIENCY",
    "METHODS",
    "TrainResult",
    "exp_calibration",
    "fit",
    "quantile_table",
    "train_model",
]


# ---------------------------------------------------------------------- helpers
def _features(inputs: ModelInputs, features: list[str] | None) -> list[str]:
    names = list(features) if features else list(LHCO_FEATURES)
    missing = [f for f in names if f not in inputs.high_level]
    if missing:
        raise ConfigError(
            f"model.features: {missing} are not computed by the processor "
            f"(available: {sorted(inputs.high_level)})"
        )
    return names


def _need(value, what: str, method: str):
    if value is None:
        raise ConfigError(f"method {method!r} needs {what}")
    return value


# ---------------------------------------------------------------------- entry point
def train_model(
    method: str,
    inputs: ModelInputs,
    *,
    config: TrainConfig,
    features: list[str] | None = None,
    hyperparameters: dict | None = None,
    labels: np.ndarray | None = None,
    observable: np.ndarray | None = None,
    signal_region: tuple[float, float] | None = None,
    sidebands: tuple[float, float] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``method`` on ``inputs`` and return the bundle, loss curves and k-fold scores.

    Args:
        method: one of ``autoencoder, vae, nae, antelope, vrnn, cwola, cathode, supervised``.
        inputs: per-event model inputs from the processor.
        config: training options (seed, epochs, early stopping, k folds, ensemble).
        features: high-level features (default ``LHCO_FEATURES``); ignored by constituent methods.
        hyperparameters: architecture/method options (see each ``_train_*`` function).
        labels: truth labels (1 = signal), only for ``supervised`` (the ceiling) and
            ``antelope`` (the PFN signal prior: in practice a separate signal simulation
            sample labelled 1 concatenated with background-dominated data labelled 0; the
            VAE is trained on the label-0 events only).
        observable: weak supervision: mjj (GeV) per event.
        signal_region: weak supervision: (low, high) of the SR in the observable (GeV).
        sidebands: weak supervision: outer edges (low, high) of the sidebands (GeV).
        progress: show a progress bar per training loop.
    """
    hp = dict(hyperparameters or {})
    if method not in METHODS:
        raise ConfigError(f"model.method: unknown method {method!r}; choose from {METHODS}")
    if len(inputs) < 10:
        raise ConfigError(f"method {method!r}: only {len(inputs)} training events")
    if method in ("cwola", "cathode"):
        return train_weak(
            method,
            inputs,
            config=config,
            features=_features(inputs, features),
            hyperparameters=hp,
            observable=_need(observable, "the observable (mjj)", method),
            signal_region=_need(signal_region, "model.signal_region", method),
            sidebands=_need(sidebands, "model.sidebands", method),
            progress=progress,
        )
    trainer = {
        "autoencoder": _train_dense,
        "vae": _train_dense,
        "nae": _train_dense,
        "supervised": _train_supervised,
        "antelope": _train_antelope,
        "vrnn": _train_vrnn,
    }[method]
    return trainer(method, inputs, config=config, features=features, hp=hp, labels=labels,
                   progress=progress)  # fmt: skip


def _train_dense(method, inputs, *, config, features, hp, labels, progress) -> TrainResult:
    """AE / VAE / NAE on standardised high-level features.

    Hyperparameters: ``hidden`` [32, 16], ``latent`` 2; VAE: ``beta`` 0.1 (a KL weight of 1 collapses the posterior on these few features and the KL score loses the signal), ``score`` "kl" or
    "elbo"; NAE: ``nae_epochs`` (default ``config.epochs``), ``langevin_steps`` 20,
    ``langevin_step_size`` 0.05, ``langevin_noise`` 0.01, ``gamma`` 1 (energy regulariser),
    ``temperature`` 1; all: ``calibration_scale`` (default from the background 90 % quantile).
    """
    names = _features(inputs, features)
    x_raw = inputs.matrix(names)
    std = Standardizer.fit(x_raw)
    x = std.transform(x_raw)
    arch_hp = {"n_inputs": len(names), "hidden": list(hp.get("hidden", [32, 16])),
               "latent": int(hp.get("latent", 2))}  # fmt: skip
    if method == "vae":
        arch_hp["beta"] = float(hp.get("beta", 0.1))
        net = nets.build("vae", arch_hp, seed=config.seed)

        def loss(model, batch, gen):
            rec, kl = model.losses(batch[0], gen)
            return (rec + model.beta * kl).mean()
    else:
        net = nets.build("autoencoder", arch_hp, seed=config.seed)

        def loss(model, batch, _gen):
            return model.score(batch[0]).mean()

    history = fit(net, loss, [x], config=config, seed=config.seed, progress=progress,
                  description=method)  # fmt: skip
    if method == "nae":
        nae_hist = _train_nae(net, x, config=config, hp=hp, progress=progress)
        history.update({f"nae_{k}": v for k, v in nae_hist.items()})
    bundle = finish_bundle(
        method,
        {"model": net},
        {"model": spec("vae" if method == "vae" else "autoencoder", arch_hp)},
        inputs,
        np.arange(len(inputs)),
        calibration=None,
        calibration_scale=hp.get("calibration_scale"),
        config=config,
        hash_arrays=[x_raw, inputs.event],
        features=tuple(names),
        preprocessing={"standardizer": std.to_dict()},
        score_kind=str(hp.get("score", "kl")) if method == "vae" else None,
    )
    return TrainResult(bundle, history)


def _langevin(model, x0: torch.Tensor, *, steps: int, step_size: float, noise: float,
              temperature: float, gen: torch.Generator) -> torch.Tensor:  # fmt: skip
    """Langevin MCMC on the energy E(x)/T starting from x0 (gradients w.r.t. x only)."""
    x = x0.detach().clone()
    for _ in range(steps):
        x.requires_grad_(True)
        energy = model.score(x).sum() / temperature
        (grad,) = torch.autograd.grad(energy, x)
        eps = torch.randn(x.shape, generator=gen, device=x.device)
        x = (x - step_size * grad + noise * eps).clamp(-6.0, 6.0).detach()
    return x


def _train_nae(net, x: np.ndarray, *, config, hp, progress) -> dict[str, list[float]]:
    """Normalised-autoencoder phase (Yoon et al. 2021; Dillon et al. for jets).

    The AE energy E(x) = reconstruction error defines p(x) ~ exp(-E/T); maximum likelihood
    lowers E on data and raises it on negative samples drawn from the model by Langevin MCMC
    (started on the decoder manifold: random latent points decoded). Raising E where the
    model puts probability but there is no data removes the AE's bias towards reconstructing
    simple (low-complexity) inputs well.
    """
    dev = device()
    steps = int(hp.get("langevin_steps", 20))
    step_size = float(hp.get("langevin_step_size", 0.05))
    noise = float(hp.get("langevin_noise", 0.01))
    gamma = float(hp.get("gamma", 1.0))
    temperature = float(hp.get("temperature", 1.0))
    epochs = int(hp.get("nae_epochs", config.epochs))
    lr = float(hp.get("nae_learning_rate", config.learning_rate * 0.1))
    gen = torch.Generator(device=dev).manual_seed(config.seed + 7)
    cpu_gen = torch.Generator().manual_seed(config.seed + 7)
    net.to(dev)
    xt = torch.as_tensor(x).to(dev)
    with torch.no_grad():
        z_data = net.encoder(xt)
    z_mu, z_sd = z_data.mean(0), z_data.std(0)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history: dict[str, list[float]] = {"loss": [], "pos_energy": [], "neg_energy": []}
    batch = config.batch_size
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=cpu_gen).to(dev)
        tot = [0.0, 0.0, 0.0]
        nb = 0
        for start in range(0, len(order), batch):
            pos = xt[order[start : start + batch]]
            z0 = z_mu + z_sd * torch.randn(len(pos), len(z_mu), generator=gen, device=dev)
            with torch.no_grad():
                x0 = net.decoder(z0)
            net.eval()
            neg = _langevin(net, x0, steps=steps, step_size=step_size, noise=noise,
                            temperature=temperature, gen=gen)  # fmt: skip
            net.train()
            e_pos, e_neg = net.score(pos) / temperature, net.score(neg) / temperature
            loss = e_pos.mean() - e_neg.mean() + gamma * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot = [
                tot[0] + float(loss.detach()),
                tot[1] + float(e_pos.mean().detach()),
                tot[2] + float(e_neg.mean().detach()),
            ]
            nb += 1
        for key, v in zip(history, tot, strict=True):
            history[key].append(v / max(nb, 1))
    net.to("cpu").eval()
    return history


def _train_supervised(method, inputs, *, config, features, hp, labels, progress) -> TrainResult:
    """Fully supervised classifier (the ceiling).

    Hyperparameters: ``classifier`` "bdt" (default; ``members`` 10 boosted-tree classifiers
    on random splits, averaged) or "mlp" (``hidden`` [64, 64, 64]), boosted-tree options of
    :data:`~adcoffea.models.classifiers.BDT_DEFAULTS`.
    """
    y = _need(labels, "truth labels", method).astype(np.float32)
    names = _features(inputs, features)
    x_raw = inputs.matrix(names)
    kind = str(hp.get("classifier", DEFAULT_KIND))
    if kind not in KINDS:
        raise ConfigError(f"model.hyperparameters.classifier: {kind!r} is not one of {KINDS}")
    keys = set(BDT_DEFAULTS) if kind == "bdt" else {"hidden", "dropout"}
    members = int(hp.get("members", DEFAULT_MEMBERS[kind])) if kind == "bdt" else 1
    net, entry, std, history = train_classifier(
        x_raw, y, kind=kind, members=members, seed=config.seed, config=config,
        hyperparameters={key: v for key, v in hp.items() if key in keys}, progress=progress,
    )  # fmt: skip
    bundle = finish_bundle(
        method, {"model": net}, {"model": entry}, inputs,
        np.flatnonzero(y == 0), calibration={"kind": "sigmoid"}, config=config,
        hash_arrays=[x_raw, y, inputs.event], features=tuple(names),
        preprocessing={"standardizer": std.to_dict()}, notes={"classifier": kind},
    )  # fmt: skip
    return TrainResult(bundle, history)


def _need_constituents(inputs: ModelInputs, method: str) -> None:
    if inputs.constituents is None or inputs.mask is None:
        raise ConfigError(f"method {method!r} needs jet constituents in the inputs")


def _train_antelope(method, inputs, *, config, features, hp, labels, progress) -> TrainResult:
    """ANTELOPE: PFN classifier on a signal prior, then a VAE on its fixed embedding.

    The PFN reads per-particle (pt/pt_jet, deta, dphi, log pt), standardised over the real
    constituents: with relative coordinates alone it cannot rebuild the jet mass and pt
    (where semi-visible jets differ from QCD) and the classifier learnt little.

    The VAE models the background in the classifier's last hidden layer (``embedding_layer``
    "last_hidden", ``f_hidden[-1]`` wide), not in the Phi sum: the Phi sum spends most of its
    background variance on directions the classifier ignores, the signal then lies inside
    the background bulk and any density score on it has ROC AUC <= 0.5 (measured on the
    synthetic SVJ vs QCD). The last hidden layer keeps only what the logit uses, so
    signal-like jets are in its background tails. ``embedding_layer`` "phi" restores the Phi
    sum (log1p then standardised).

    Hyperparameters: ``phi_hidden`` [64, 64], ``embedding`` 8 (Phi size per jet),
    ``f_hidden`` [64, 4], ``embedding_layer`` "last_hidden", ``vae_hidden`` [32, 16],
    ``vae_latent`` 2, ``beta`` 0.1, ``score`` "kl", ``calibration_scale``.
    """
    _need_constituents(inputs, method)
    y = _need(labels, "labels (the PFN signal prior)", method).astype(np.float32)
    layer = str(hp.get("embedding_layer", "last_hidden"))
    if layer not in ANTELOPE_LAYERS:
        raise ConfigError(f"model.hyperparameters.embedding_layer: {layer!r} is not one of "
                          f"{ANTELOPE_LAYERS}")  # fmt: skip
    m = inputs.mask.astype(bool)
    raw = antelope_particle_features(inputs.constituents, m, inputs.jets)
    pstd = Standardizer.fit(raw[m])
    feats = np.where(m[..., None], pstd.transform(raw), 0.0).astype(np.float32)
    mask = m.astype(np.float32)
    pfn_hp = {"n_features": feats.shape[-1], "n_jets": feats.shape[1],
              "phi_hidden": list(hp.get("phi_hidden", [64, 64])),
              "latent": int(hp.get("embedding", 8)), "f_hidden": list(hp.get("f_hidden", [64, 4]))}  # fmt: skip
    if layer == "last_hidden" and not pfn_hp["f_hidden"]:
        raise ConfigError("model.hyperparameters.f_hidden: embedding_layer 'last_hidden' needs "
                          "at least one hidden layer")  # fmt: skip
    pfn = nets.build("pfn", pfn_hp, seed=config.seed)
    n_pos = max(float(y.sum()), 1.0)
    pw = (len(y) - n_pos) / n_pos  # template and data weigh the same in the loss

    def pfn_loss(model, batch, _gen):
        return nn.functional.binary_cross_entropy_with_logits(
            model(batch[0], batch[1]), batch[2], pos_weight=torch.tensor(pw, device=batch[0].device)
        )

    history = fit(pfn, pfn_loss, [feats, mask, y], config=config, seed=config.seed,
                  progress=progress, description="antelope PFN")  # fmt: skip
    bkg = np.flatnonzero(y == 0)
    with torch.no_grad():
        emb = antelope_embedding(pfn, torch.as_tensor(feats[bkg]), torch.as_tensor(mask[bkg]),
                                 layer=layer).numpy()  # fmt: skip
    std = Standardizer.fit(emb)
    vae_hp = {"n_inputs": emb.shape[1], "hidden": list(hp.get("vae_hidden", [32, 16])),
              "latent": int(hp.get("vae_latent", 2)), "beta": float(hp.get("beta", 0.1))}  # fmt: skip
    vae = nets.build("vae", vae_hp, seed=config.seed + 1)

    def vae_loss(model, batch, gen):
        rec, kl = model.losses(batch[0], gen)
        return (rec + model.beta * kl).mean()

    vh = fit(vae, vae_loss, [std.transform(emb)], config=config, seed=config.seed + 1,
             progress=progress, description="antelope VAE")  # fmt: skip
    history.update({f"vae_{k}": v for k, v in vh.items()})
    bundle = finish_bundle(
        method, {"phi": pfn, "vae": vae},
        {"phi": spec("pfn", pfn_hp), "vae": spec("vae", vae_hp)}, inputs, bkg,
        calibration=None, calibration_scale=hp.get("calibration_scale"), config=config,
        hash_arrays=[inputs.constituents, inputs.mask, y, inputs.event],
        preprocessing={"particles": pstd.to_dict(), "embedding": std.to_dict(),
                       "embedding_layer": layer},
        max_particles=int(inputs.constituents.shape[2]), score_kind=str(hp.get("score", "kl")),
    )  # fmt: skip
    return TrainResult(bundle, history)


def _train_vrnn(method, inputs, *, config, features, hp, labels, progress) -> TrainResult:
    """VRNN on aligned, kT-ordered constituents of one jet (ATLAS recipe).

    The (pt, eta, phi) sequence is standardised over the real (unpadded) constituents of the
    training jets: raw aligned coordinates are O(0.05), so an unscaled MSE is negligible
    against the KL term and the latent collapses (KL ~ 1e-4, a score of noise).

    Hyperparameters: ``hidden`` 16, ``latent`` 2, ``embed`` 16, ``kl_weight`` 0.1,
    ``n_max`` 20, ``jet`` "heavier", ``tail`` (see :func:`vrnn_raw_score`) "both",
    ``calibration_scale`` (default: 0.5 at the 90 % background quantile).
    """
    _need_constituents(inputs, method)
    jet = hp.get("jet", "heavier")
    n_max = int(hp.get("n_max", 20))
    tail = str(hp.get("tail", "both"))
    if tail not in VRNN_TAILS:
        raise ConfigError(f"model.hyperparameters.tail: {tail!r} is not one of {VRNN_TAILS}")
    seq, m = vrnn_sequences(inputs.constituents, inputs.mask, inputs.jets, jet=jet, n_max=n_max)
    seq_std = Standardizer.fit(seq[m])
    seq = np.where(m[..., None], seq_std.transform(seq), 0.0).astype(np.float32)
    arch_hp = {"n_features": 3, "hidden": int(hp.get("hidden", 16)),
               "latent": int(hp.get("latent", 2)), "embed": int(hp.get("embed", 16))}  # fmt: skip
    net = nets.build("vrnn", arch_hp, seed=config.seed)
    kl_w = float(hp.get("kl_weight", 0.1))

    def loss(model, batch, gen):
        rec, kl = model(batch[0], batch[1], gen)
        return (rec + kl_w * kl).mean()

    history = fit(net, loss, [seq, m.astype(np.float32)], config=config, seed=config.seed,
                  progress=progress, description="vrnn")  # fmt: skip
    # Reference of the background mean-KL distribution (log space) for the typicality tails.
    with torch.no_grad():
        kl = np.concatenate([net.score(torch.as_tensor(seq[i : i + 8192]),
                                       torch.as_tensor(m[i : i + 8192])).double().numpy()
                             for i in range(0, len(seq), 8192)])  # fmt: skip
    log_kl = np.log(np.maximum(kl, KL_FLOOR))
    q25, q50, q75 = np.quantile(log_kl, [0.25, 0.5, 0.75])
    reference = {"median": float(q50), "scale": float(max((q75 - q25) / 1.349, 1e-6))}
    bundle = finish_bundle(
        method, {"model": net}, {"model": spec("vrnn", arch_hp)}, inputs,
        np.arange(len(inputs)), calibration=None, calibration_scale=hp.get("calibration_scale"),
        config=config, hash_arrays=[inputs.constituents, inputs.mask, inputs.event],
        preprocessing={"n_max": n_max, "sequence": seq_std.to_dict(), "kl_reference": reference},
        max_particles=int(inputs.constituents.shape[2]), jet=jet, score_kind=tail,
    )  # fmt: skip
    return TrainResult(bundle, history)
