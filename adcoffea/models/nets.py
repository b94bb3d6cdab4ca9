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

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from adcoffea.models.quickscorer import MAX_THREADS as QS_MAX_THREADS
from adcoffea.models.quickscorer import TreeArrays, TreeScorer, groups, supported
from adcoffea.models.threads import current_threads


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
            # in place: one activation tensor less per layer (scoring a chunk's 58k events
            # spent a quarter of its time in allocating ReLU outputs); autograd allows it
            # after a Linear, whose backward needs its input, not its output
            layers += [nn.Linear(last, int(h)), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            last = int(h)
        layers.append(nn.Linear(last, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class ConditionalFlow(nn.Module):
    """A conditional normalising flow from zuko: ``"maf"`` (affine) or ``"nsf"`` (splines).

    ``log_prob(x, c)`` is exact; ``sample(c)`` draws one x per row of the context, with the
    global torch generator (seed it with ``torch.manual_seed`` inside ``fork_rng``). Layers
    alternate the feature order (no random permutations), so the JSON hyperparameters alone
    rebuild the same architecture.
    """

    def __init__(
        self,
        n_features: int,
        n_context: int = 1,
        kind: str = "nsf",
        transforms: int = 6,
        hidden: Sequence[int] = (64, 64),
        bins: int = 8,
    ) -> None:
        super().__init__()
        import zuko

        common = {"transforms": int(transforms), "hidden_features": [int(h) for h in hidden]}
        if kind == "maf":
            self.flow = zuko.flows.MAF(n_features, n_context, **common)
        elif kind == "nsf":
            self.flow = zuko.flows.NSF(n_features, n_context, bins=int(bins), **common)
        else:
            raise ValueError(f"flow kind {kind!r} is not 'maf' or 'nsf'")

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.flow(c).log_prob(x)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw per context row; ``generator`` seeds it (zuko draws from the global RNG)."""
        if generator is None:
            return self.flow(c).sample()
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.flow(c).sample()


class ConditionalMAF(ConditionalFlow):
    """The zuko affine MAF under the arguments of the former own MAF (``layers``, ``hidden``).

    Kept so that code and JSON hyperparameters written for ``nets.build("maf", ...)`` build
    the maintained implementation.
    """

    def __init__(
        self, n_features: int, n_context: int = 1, layers: int = 6, hidden: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__(n_features, n_context, kind="maf", transforms=layers, hidden=hidden)


class ConditionalVAE(nn.Module):
    """Conditional VAE: q(z | x, c), p(x | z, c) Gaussian with a learnt variance per feature.

    ``losses`` returns the per-event Gaussian negative log-likelihood (one reparametrised
    draw) and the KL to the N(0, 1) prior; ``sample(c)`` decodes prior draws at ``c`` and adds
    the decoder noise, so samples follow the model's p(x | c) rather than its mean.
    """

    def __init__(
        self,
        n_inputs: int,
        n_context: int = 1,
        hidden: Sequence[int] = (64, 64),
        latent: int = 4,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = mlp(n_inputs + n_context, hidden, 2 * latent)
        self.decoder = mlp(latent + n_context, list(hidden)[::-1], 2 * n_inputs)
        self.latent = latent
        self.beta = beta

    def _decode(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.decoder(torch.cat([z, c], -1)).chunk(2, -1)
        return mu, logvar.clamp(-10.0, 6.0)

    def losses(
        self, x: torch.Tensor, c: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([x, c], -1)).chunk(2, -1)
        logvar = logvar.clamp(-12.0, 8.0)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()
        x_mu, x_lv = self._decode(z, c)
        nll = 0.5 * ((x - x_mu).pow(2) / x_lv.exp() + x_lv + math.log(2 * math.pi)).sum(-1)
        return nll, _kl_normal(mu, logvar)

    @torch.no_grad()
    def sample(self, c: torch.Tensor) -> torch.Tensor:
        z = torch.randn(len(c), self.latent, device=c.device)
        x_mu, x_lv = self._decode(z, c)
        return x_mu + torch.randn_like(x_mu) * (0.5 * x_lv).exp()


#: Node fields a raw-feature prediction reads (sklearn's PREDICTOR_RECORD_DTYPE has more).
_NODE_FIELDS: dict[str, torch.dtype] = {
    "value": torch.float64,
    "feature_idx": torch.int64,
    "num_threshold": torch.float64,
    "missing_go_to_left": torch.uint8,
    "left": torch.int64,
    "right": torch.int64,
    "is_leaf": torch.uint8,
}


class TreeEnsemble(nn.Module):
    """A fitted binary HistGradientBoostingClassifier as tensors: ``forward(x)`` = its logit.

    Node arrays of all trees are concatenated into buffers (``offsets`` marks each tree's
    first node), so ``state_dict`` holds plain tensors that ``torch.load(weights_only=True)``
    reads and the constructor needs only JSON sizes. Prediction rebuilds scikit-learn's
    compiled tree predictors from the arrays, so scores equal ``decision_function`` of the
    original estimator exactly (tested).
    """

    def __init__(self, n_features: int, n_trees: int, n_nodes: int) -> None:
        super().__init__()
        self.n_features = int(n_features)
        for name, dtype in _NODE_FIELDS.items():
            self.register_buffer(name, torch.zeros(int(n_nodes), dtype=dtype))
        self.register_buffer("offsets", torch.zeros(int(n_trees) + 1, dtype=torch.int64))
        self.register_buffer("baseline", torch.zeros((), dtype=torch.float64))
        self._predictors: list[Any] | None = None
        #: QuickScorer groups of member lists led by this module (:func:`_tree_scorers`)
        self._scorers: dict[tuple, list | None] = {}
        self._version = 0  # counts the state dicts loaded (part of the scorers' key)

    @staticmethod
    def from_sklearn(clf: Any, n_iter: int | None = None) -> TreeEnsemble:
        """The trees of a fitted binary ``HistGradientBoostingClassifier`` (numeric features).

        ``n_iter`` keeps only the first boosting iterations (e.g. the best validation one).
        """
        if getattr(clf, "n_trees_per_iteration_", 1) != 1:
            raise ValueError("TreeEnsemble holds binary classifiers only")
        if getattr(clf, "is_categorical_", None) is not None and np.any(clf.is_categorical_):
            raise ValueError("TreeEnsemble holds numeric features only")
        nodes = [it[0].nodes for it in clf._predictors[:n_iter]]
        sizes = [len(n) for n in nodes]
        module = TreeEnsemble(clf.n_features_in_, len(nodes), sum(sizes))
        flat = np.concatenate(nodes) if nodes else np.zeros(0, nodes_dtype())
        with torch.no_grad():
            for name in _NODE_FIELDS:
                buf = getattr(module, name)
                # numpy dtype of the same kind (torch has no uint32 / intp tensors)
                col = flat[name].astype(np.float64 if buf.is_floating_point() else np.int64)
                buf.copy_(torch.as_tensor(col).to(buf.dtype))
            module.offsets.copy_(torch.as_tensor(np.concatenate([[0], np.cumsum(sizes)])))
            module.baseline.fill_(float(np.ravel(clf._baseline_prediction)[0]))
        return module

    @staticmethod
    def average(members: Sequence[TreeEnsemble]) -> TreeEnsemble:
        """One module whose logit is the mean of the members' logits (all trees, values / M)."""
        if not members or len({m.n_features for m in members}) != 1:
            raise ValueError("average needs at least one member, all with the same features")
        n = len(members)
        sizes = torch.cat([m.offsets.diff() for m in members])
        out = TreeEnsemble(members[0].n_features, len(sizes), int(sizes.sum()))
        with torch.no_grad():
            for name in _NODE_FIELDS:
                getattr(out, name).copy_(torch.cat([getattr(m, name) for m in members]))
            out.value.div_(n)  # only leaf values enter a prediction
            out.offsets.copy_(torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)]))
            out.baseline.fill_(float(torch.stack([m.baseline for m in members]).mean()))
        return out

    @property
    def hyperparameters(self) -> dict[str, int]:
        """The JSON constructor arguments (what a bundle stores beside the state dict)."""
        return {"n_features": self.n_features, "n_trees": len(self.offsets) - 1,
                "n_nodes": len(self.value)}  # fmt: skip

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        # rebuilt from the new arrays on the next call
        self._predictors = None
        self._version = getattr(self, "_version", 0) + 1

    def arrays(self) -> TreeArrays:
        """The node arrays as :class:`~adcoffea.models.quickscorer.TreeArrays` (numpy)."""
        return TreeArrays(
            baseline=float(self.baseline),
            offsets=self.offsets.numpy(),
            **{name: getattr(self, name).numpy() for name in _NODE_FIELDS},
        )

    def _build(self) -> list[Any]:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        dtype = nodes_dtype()
        flat = np.zeros(len(self.value), dtype=dtype)
        for name in _NODE_FIELDS:
            flat[name] = getattr(self, name).numpy().astype(dtype[name])
        no_bitsets = np.zeros((0, 8), dtype=np.uint32)
        off = self.offsets.numpy()
        return [TreePredictor(np.ascontiguousarray(flat[a:b]), no_bitsets, no_bitsets)
                for a, b in itertools.pairwise(off)]  # fmt: skip

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Raw score (log-odds) of each row of ``x`` (n, n_features), float64.

        Scored by :class:`~adcoffea.models.quickscorer.TreeScorer` (the same values to the
        bit, 3x faster on one thread); trees of more than 64 leaves, and more threads than
        :data:`~adcoffea.models.quickscorer.MAX_THREADS`, by scikit-learn's predictors.
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {x.shape}")
        threads = current_threads()
        scorer = self.scorer() if threads <= QS_MAX_THREADS else None
        if scorer is not None:
            return scorer.logits(x, threads=threads)[0]
        return self.walk(x)

    def scorer(self) -> TreeScorer | None:
        """This ensemble's QuickScorer (built once), or None if a tree is too large for it."""
        groups_ = _tree_scorers([self])
        return None if groups_ is None else groups_[0][2]

    def walk(self, x: np.ndarray) -> np.ndarray:
        """:meth:`logit` by scikit-learn's compiled tree predictors, tree after tree."""
        if self._predictors is None:
            self._predictors = self._build()
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.full(len(x), float(self.baseline))
        cats = np.zeros((0, 8), dtype=np.uint32)
        f_idx = np.zeros(self.n_features, dtype=np.uint32)
        n_threads = current_threads()
        for p in self._predictors:
            out += p.predict(x, cats, f_idx, n_threads)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.logit(x.detach().cpu().numpy()))


def member_logits(models: Sequence[nn.Module], x: torch.Tensor) -> np.ndarray:
    """(members, rows) float64 logits of ``models`` (one k-fold fold's members) on ``x``.

    Boosted-tree members are scored together by
    :class:`~adcoffea.models.quickscorer.TreeScorer` (one binary search per feature for all
    of them; several scorers if their tables would exceed
    :data:`~adcoffea.models.quickscorer.MAX_TABLE_BYTES`; kept on the first member while the
    members' arrays are unchanged), with the same values as each member's own
    :meth:`TreeEnsemble.logit`; other modules one by one.
    """
    models = list(models)
    if not models:
        return np.zeros((0, len(x)))
    trees = all(isinstance(m, TreeEnsemble) for m in models)
    threads = current_threads()
    same = len({getattr(m, "n_features", None) for m in models}) == 1
    scorers = _tree_scorers(models) if trees and same and threads <= QS_MAX_THREADS else None
    if scorers is not None:
        rows = x.detach().cpu().numpy()
        out = np.empty((len(models), len(rows)))
        for a, b, scorer in scorers:
            out[a:b] = scorer.logits(rows, threads=threads)
        return out
    with torch.no_grad():
        return np.stack([m(x).double().numpy() for m in models])


def nodes_dtype() -> np.dtype:
    """scikit-learn's tree-node record type (read from the installed version)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    return PREDICTOR_RECORD_DTYPE


#: Architecture name -> module class (constructors take JSON hyperparameters only).
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "autoencoder": AutoEncoder,
    "vae": VAE,
    "pfn": PFN,
    "vrnn": VRNN,
    "classifier": Classifier,
    "bdt": TreeEnsemble,
    "flow": ConditionalFlow,
    "maf": ConditionalMAF,
    "cvae": ConditionalVAE,
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


#: member lists whose scorers one module keeps (a fold's members, the module alone)
_SCORER_SLOTS = 4


def _tree_scorers(models: Sequence[Any]) -> list | None:
    """``[(start, stop, TreeScorer)]`` over the tree ensembles ``models`` (groups within
    :data:`~adcoffea.models.quickscorer.MAX_TABLE_BYTES`), or None when a tree has too many
    leaves; built once and kept on the first module while the members' arrays are unchanged.
    """
    key = tuple((id(m), m._version) for m in models)
    kept = models[0]._scorers
    if key not in kept:
        arrays = [m.arrays() for m in models]
        n_features = models[0].n_features
        kept[key] = (
            [(a, b, TreeScorer(arrays[a:b], n_features=n_features)) for a, b in groups(arrays)]
            if supported(arrays)
            else None
        )
        while len(kept) > _SCORER_SLOTS:  # the oldest first
            kept.pop(next(iter(kept)))
    return kept[key]
