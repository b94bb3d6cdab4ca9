"""Network architectures of the anomaly-detection methods, built from JSON hyperparameters.

Every architecture is a plain :class:`torch.nn.Module` whose constructor takes only JSON
values (ints, floats, lists), so a bundle stores ``{"architecture": name, "hyperparameters":
{...}}`` plus a ``state_dict`` and rebuilds the module with :func:`build` — no pickled code.

Example:
    >>> import torch
    >>> net = build("autoencoder", {"n_inputs": 4, "hidden": [8], "latent": 2})
    >>> net.score(torch.zeros(3, 4)).shape
    torch.Size([3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def mlp(n_in: int, hidden: Sequence[int], n_out: int, *, activation=nn.ELU) -> nn.Sequential:
    """A dense network ``n_in -> hidden... -> n_out`` with a linear last layer."""
    layers: list[nn.Module] = []
    last = n_in
    for h in hidden:
        layers += [nn.Linear(last, int(h)), activation()]
        last = int(h)
    layers.append(nn.Linear(last, n_out))
    return nn.Sequential(*layers)


def _kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over the last axis (always >= 0)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


class AutoEncoder(nn.Module):
    """Dense autoencoder; the anomaly score is the per-event mean squared reconstruction error.

    The normalised autoencoder (NAE) uses the same module: only its training differs (see
    :func:`adcoffea.models.train.train_model`), the energy being the reconstruction error.
    """

    def __init__(self, n_inputs: int, hidden: Sequence[int] = (32, 16), latent: int = 2) -> None:
        super().__init__()
        self.encoder = mlp(n_inputs, hidden, latent)
        self.decoder = mlp(latent, list(hidden)[::-1], n_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return (self(x) - x).pow(2).mean(-1)


class VAE(nn.Module):
    """Gaussian VAE; ``score`` is the KL term (``kind="kl"``) or the negative ELBO."""

    def __init__(
        self, n_inputs: int, hidden: Sequence[int] = (32, 16), latent: int = 2, beta: float = 1.0
    ) -> None:
        super().__init__()
        self.encoder = mlp(n_inputs, hidden, 2 * latent)
        self.decoder = mlp(latent, list(hidden)[::-1], n_inputs)
        self.latent = latent
        self.beta = beta

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def losses(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-event (reconstruction MSE, KL) with one reparametrised sample."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()
        rec = (self.decoder(z) - x).pow(2).mean(-1)
        return rec, _kl_normal(mu, logvar)

    def kl(self, x: torch.Tensor) -> torch.Tensor:
        return _kl_normal(*self.encode(x))

    def score(self, x: torch.Tensor, kind: str = "kl") -> torch.Tensor:
        mu, logvar = self.encode(x)
        kl = _kl_normal(mu, logvar)
        if kind == "kl":
            return kl
        # Deterministic ELBO proxy (decoder at the posterior mean) so scores are reproducible.
        return (self.decoder(mu) - x).pow(2).mean(-1) + self.beta * kl


class PFN(nn.Module):
    """Particle Flow Network (Deep Sets): ``F(sum_particles Phi(p))`` per jet, jets concatenated.

    Input ``x`` has shape (n, n_jets, n_particles, n_features) and ``mask`` (n, n_jets,
    n_particles). The masked sum makes the embedding invariant under any permutation of a
    jet's constituents, and padding never contributes.
    """

    def __init__(
        self,
        n_features: int = 3,
        n_jets: int = 2,
        phi_hidden: Sequence[int] = (64, 64),
        latent: int = 16,
        f_hidden: Sequence[int] = (64, 64),
    ) -> None:
        super().__init__()
        self.phi = nn.Sequential(mlp(n_features, phi_hidden, latent), nn.ReLU())
        self.f = mlp(n_jets * latent, f_hidden, 1)
        self.n_jets = n_jets
        self.latent = latent

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_particle = self.phi(x) * mask.unsqueeze(-1).to(x.dtype)
        return per_particle.sum(dim=2).flatten(1)  # (n, n_jets * latent)

    def representation(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The classifier's last hidden layer: the jet-pair representation the logit is linear in."""
        return self.f[:-1](self.embed(x, mask))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.f(self.embed(x, mask)).squeeze(-1)


class VRNN(nn.Module):
    """Variational recurrent network over a constituent sequence (Chung et al. 2015; ATLAS).

    At step t: prior ``p(z_t|h)``, encoder ``q(z_t|x_t, h)``, decoder ``p(x_t|z_t, h)``, and
    ``h <- GRU([phi_x(x_t), phi_z(z_t)], h)``. Padded steps leave ``h`` unchanged and do not
    enter the loss. ``forward`` returns per-event mean reconstruction MSE and mean KL over the
    real steps; the anomaly score is the mean KL.
    """

    def __init__(
        self, n_features: int = 3, hidden: int = 16, latent: int = 2, embed: int = 16
    ) -> None:
        super().__init__()
        self.phi_x = nn.Sequential(nn.Linear(n_features, embed), nn.ELU())
        self.phi_z = nn.Sequential(nn.Linear(latent, embed), nn.ELU())
        self.prior = mlp(hidden, [embed], 2 * latent)
        self.encoder = mlp(embed + hidden, [embed], 2 * latent)
        self.decoder = mlp(embed + hidden, [embed], n_features)
        self.cell = nn.GRUCell(2 * embed, hidden)
        self.hidden = hidden

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, t_max, _ = x.shape
        h = x.new_zeros(n, self.hidden)
        rec_sum = x.new_zeros(n)
        kl_sum = x.new_zeros(n)
        m = mask.to(x.dtype)
        for t in range(t_max):  # loop over sequence positions, vectorised over events
            xt = self.phi_x(x[:, t])
            p_mu, p_lv = self.prior(h).chunk(2, -1)
            q_mu, q_lv = self.encoder(torch.cat([xt, h], -1)).chunk(2, -1)
            p_lv, q_lv = p_lv.clamp(-12, 8), q_lv.clamp(-12, 8)
            if self.training:
                eps = torch.randn(q_mu.shape, generator=generator, device=x.device, dtype=x.dtype)
                z = q_mu + eps * (0.5 * q_lv).exp()
            else:
                z = q_mu
            zt = self.phi_z(z)
            rec = (self.decoder(torch.cat([zt, h], -1)) - x[:, t]).pow(2).mean(-1)
            kl = 0.5 * (p_lv - q_lv + (q_lv.exp() + (q_mu - p_mu).pow(2)) / p_lv.exp() - 1.0).sum(
                -1
            )
            h_new = self.cell(torch.cat([xt, zt], -1), h)
            mt = m[:, t]
            h = mt.unsqueeze(-1) * h_new + (1 - mt.unsqueeze(-1)) * h
            rec_sum = rec_sum + mt * rec
            kl_sum = kl_sum + mt * kl
        n_real = m.sum(1).clamp(min=1.0)
        return rec_sum / n_real, kl_sum / n_real

    def score(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self(x, mask)[1]


class Classifier(nn.Module):
    """Dense binary classifier returning a logit (weak supervision and the supervised ceiling)."""

    def __init__(
        self, n_inputs: int, hidden: Sequence[int] = (64, 64, 64), dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = n_inputs
        for h in hidden:
            layers += [nn.Linear(last, int(h)), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            last = int(h)
        layers.append(nn.Linear(last, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class _Conditioner(nn.Module):
    """Autoregressive conditioner: (shift, log-scale) of x_i from x_<i and the context."""

    def __init__(self, n_features: int, n_context: int, hidden: Sequence[int]) -> None:
        super().__init__()
        # One small net per dimension keeps the autoregressive structure exact without MADE
        # masks; with the handful of high-level features this costs nothing.
        self.nets = nn.ModuleList(mlp(i + n_context, hidden, 2) for i in range(n_features))
        for net in self.nets:  # start at the identity transform
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def params(self, x: torch.Tensor, c: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.nets[i](torch.cat([x[:, :i], c], -1))
        shift, log_scale = out[:, 0], out[:, 1]
        return shift, 3.0 * torch.tanh(log_scale / 3.0)  # bounded for stability


class ConditionalMAF(nn.Module):
    """Conditional masked autoregressive flow with affine transforms (Papamakarios et al. 2017).

    ``log_prob(x, c)`` is exact; ``sample(c)`` inverts the layers dimension by dimension.
    Used by CATHODE to model the background features versus mjj in the sidebands; layers
    alternate the feature order.
    """

    def __init__(
        self, n_features: int, n_context: int = 1, layers: int = 6, hidden: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.layers = nn.ModuleList(
            _Conditioner(n_features, n_context, hidden) for _ in range(layers)
        )

    def _perm(self, k: int) -> torch.Tensor:
        idx = torch.arange(self.n_features)
        return idx.flip(0) if k % 2 else idx

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        logdet = x.new_zeros(len(x))
        for k, layer in enumerate(self.layers):
            x = x[:, self._perm(k)]
            z = torch.empty_like(x)
            for i in range(self.n_features):
                shift, log_scale = layer.params(x, c, i)
                z[:, i] = (x[:, i] - shift) * torch.exp(-log_scale)
                logdet = logdet - log_scale
            x = z
        base = -0.5 * (x.pow(2).sum(-1) + self.n_features * math.log(2 * math.pi))
        return base + logdet

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(len(c), self.n_features, generator=generator, device=c.device)
        for k in reversed(range(len(self.layers))):
            layer = self.layers[k]
            x = torch.zeros_like(z)
            for i in range(self.n_features):
                shift, log_scale = layer.params(x, c, i)
                x[:, i] = z[:, i] * torch.exp(log_scale) + shift
            z = x[:, torch.argsort(self._perm(k))]
        return z


#: Architecture name -> module class (constructors take JSON hyperparameters only).
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "autoencoder": AutoEncoder,
    "vae": VAE,
    "pfn": PFN,
    "vrnn": VRNN,
    "classifier": Classifier,
    "maf": ConditionalMAF,
}


def build(name: str, hyperparameters: dict[str, Any], *, seed: int | None = None) -> nn.Module:
    """Instantiate architecture ``name`` from JSON hyperparameters.

    With ``seed`` the initial weights depend only on it (the global torch RNG is left as it was).
    """
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}") from None
    if seed is None:
        return cls(**hyperparameters)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**hyperparameters)
