"""Model bundles: a directory with ``metadata.json`` and ``*.pt`` state dicts.

A bundle is everything a processor needs to score events: the method, the architectures and
their JSON hyperparameters, the feature names and order, the preprocessing constants, the
score calibration, the k-fold layout of weakly supervised models, and provenance (seed,
training-data hash, library versions). Weights are loaded with ``torch.load(weights_only=True)``
after their sha256 is checked against the metadata, so loading never unpickles arbitrary
objects and a tampered file is refused.

Layout::

    bundle/
      metadata.json
      metadata.sha256    sha256 of metadata.json (feature names and order, preprocessing,
                         calibration: an edit after training changes the scores silently)
      net_<name>.pt      one state_dict per network (e.g. "model", "fold0_member0", "phi")

Integrity on load: every weights file and ``metadata.json`` must match their sha256, the
feature names must be unique, and their count must match the standardizer's columns and each
network's ``n_inputs``. Bundles saved before ``metadata.sha256`` existed load with a warning.

Example:
    >>> import tempfile
    >>> from adcoffea.config import TrainConfig
    >>> from adcoffea.models.toy import lhco_features
    >>> from adcoffea.models.train import train_model
    >>> inputs, _ = lhco_features(300, 0, seed=2)
    >>> trained = train_model("autoencoder", inputs, config=TrainConfig(epochs=1), progress=False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     bundle = load_bundle(save_bundle(trained.bundle, d))
    >>> bundle.check_inputs(inputs.high_level, None)  # the features it was trained on: fine
    >>> bool((bundle.score(inputs) == trained.bundle.score(inputs)).all())
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from adcoffea.errors import ModelBundleError
from adcoffea.features import ModelInputs
from adcoffea.models import nets
from adcoffea.models.methods import METHOD_INFO
from adcoffea.models.preprocessing import (
    Standardizer,
    antelope_particle_features,
    particle_features,
    vrnn_sequences,
)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
METADATA_DIGEST_FILE = "metadata.sha256"

#: Inputs each method reads (from the method registry).
METHOD_INPUTS: dict[str, frozenset[str]] = {m: i.inputs for m, i in METHOD_INFO.items()}

#: VRNN score tails: "high" = mean KL (ATLAS), "low" = below-typical KL, "both" = two-sided.
VRNN_TAILS = ("high", "low", "both")
#: Floor of the mean KL before taking its log (a fully predicted jet has KL -> 0).
KL_FLOOR = 1e-8


def vrnn_raw_score(kl: np.ndarray, tail: str | None, reference: dict | None) -> np.ndarray:
    """VRNN raw anomaly score (>= 0, higher = more anomalous) from the per-jet mean KL.

    The mean KL over the real constituents is the information each constituent carries
    beyond what the model predicted from the jet so far, i.e. the jet's *complexity* under
    the background model. A signal can be atypical on either side: more complex than QCD
    (ATLAS' high-KL tail) or simpler, e.g. two tight prongs against diffuse QCD, which a
    likelihood-type score ranks as *more* typical (Nalisnick et al. 2019). ``tail`` picks:

    * ``"high"`` (or None, "kl"): the mean KL itself (ATLAS);
    * ``"low"``: ``exp(median - ln KL)`` (the inverse KL relative to the background median);
    * ``"both"``: typicality test, ``|ln KL - median| / scale`` with the background median
      and robust (IQR) width of ln KL.
    """
    kl = np.asarray(kl, dtype=np.float64)
    if tail in (None, "kl", "high"):
        return kl
    if reference is None:
        raise ModelBundleError(f"VRNN score tail {tail!r} needs a 'kl_reference' in the bundle")
    z = (np.log(np.maximum(kl, KL_FLOOR)) - reference["median"]) / reference["scale"]
    if tail == "low":
        return np.exp(-z * reference["scale"])
    if tail == "both":
        return np.abs(z)
    raise ModelBundleError(f"unknown VRNN score tail {tail!r}; choose from {VRNN_TAILS}")


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (vectorised, uint64 wrap-around arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fold_of(event: np.ndarray, k: int, *, salt: int = 0) -> np.ndarray:
    """k-fold index of each event: a deterministic hash of the event number.

    The same event always lands in the same fold, in training and in any later processing,
    so a weakly supervised bundle scores every event with a model that did not train on it.
    """
    with np.errstate(over="ignore"):
        h = splitmix64(np.asarray(event, dtype=np.uint64) ^ np.uint64(salt))
    return (h % np.uint64(k)).astype(np.int64)


def data_hash(*arrays: np.ndarray | None) -> str:
    """sha256 of the training arrays (shape, dtype and bytes), for provenance."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    from adcoffea import __version__

    return {"adcoffea": __version__, "torch": torch.__version__, "numpy": np.__version__}


@dataclass(frozen=True)
class BundleMetadata:
    """Everything about a bundle except the weights (JSON-serialisable via ``to_dict``).

    Attributes:
        method: one of ``adcoffea.config.Method``.
        networks: name -> {"architecture", "hyperparameters"[, "file", "sha256"]}.
        features: high-level feature names in input order (empty for constituent methods).
        preprocessing: constants, e.g. {"standardizer": {...}} or {"embedding": {...}}.
        calibration: {"kind": "exp", "scale": s} (1 - exp(-raw/s)) or {"kind": "sigmoid"}.
        score_quantiles: {"efficiency": [...], "threshold": [...]} of calibrated background
            scores: a cut ``score > threshold`` keeps ``efficiency`` of the background.
        kfold: weak supervision: {"k", "ensemble", "salt"}; None otherwise.
        max_particles: constituent methods: particles per jet the model was trained with.
        jet: VRNN: which jet is scored ("leading", "heavier", "lighter" or an index).
        score_kind: VAE-like methods: "kl" or "elbo"; VRNN: the tail of :func:`vrnn_raw_score`.
        seed, training_data_hash, n_training_events, versions: provenance.
        notes: free-form training facts (e.g. signal region, sidebands).
    """

    method: str
    networks: dict[str, dict[str, Any]]
    features: tuple[str, ...] = ()
    preprocessing: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=lambda: {"kind": "sigmoid"})
    score_quantiles: dict[str, list[float]] = field(default_factory=dict)
    kfold: dict[str, int] | None = None
    max_particles: int | None = None
    jet: str | int | None = None
    score_kind: str | None = None
    seed: int = 0
    training_data_hash: str = ""
    n_training_events: int = 0
    versions: dict[str, str] = field(default_factory=library_versions)
    notes: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["features"] = list(self.features)
        return json.loads(json.dumps(d))  # plain JSON types only

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> BundleMetadata:
        known = {f.name for f in dataclasses.fields(BundleMetadata)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown metadata keys {sorted(unknown)}")
        d = dict(d)
        d["features"] = tuple(d.get("features", ()))
        return BundleMetadata(**d)


class ModelBundle:
    """A trained model ready to score events (see the module docstring)."""

    def __init__(
        self, metadata: BundleMetadata, networks: Mapping[str, nn.Module], *, source: str = ""
    ) -> None:
        if metadata.method not in METHOD_INPUTS:
            raise ModelBundleError(
                f"bundle {source or '<memory>'}: unknown method {metadata.method!r}"
            )
        missing = set(metadata.networks) - set(networks)
        if missing:
            raise ModelBundleError(f"bundle {source or '<memory>'}: networks {missing} missing")
        self.metadata = metadata
        self.networks = {k: v.eval() for k, v in networks.items()}
        self.source = source or "<memory>"

    @property
    def required_inputs(self) -> set[str]:
        return set(METHOD_INPUTS[self.metadata.method])

    def __repr__(self) -> str:
        return f"ModelBundle(method={self.metadata.method!r}, source={self.source!r})"

    # ------------------------------------------------------------------ input checks
    def check_inputs(self, available_features: Iterable[str], max_particles: int | None) -> None:
        """Refuse inputs the bundle was not trained on, naming what is wrong."""
        available = set(available_features)
        missing = [f for f in self.metadata.features if f not in available]
        if missing:
            raise ModelBundleError(
                f"bundle {self.source} ({self.metadata.method}) needs high-level features "
                f"{missing}, which the processor does not provide (it has {sorted(available)})"
            )
        if "constituents" in self.required_inputs:
            if max_particles is None:
                raise ModelBundleError(
                    f"bundle {self.source} ({self.metadata.method}) needs jet constituents but "
                    "the processor provides none"
                )
            if self.metadata.max_particles is not None and max_particles != (
                self.metadata.max_particles
            ):
                raise ModelBundleError(
                    f"bundle {self.source} ({self.metadata.method}) was trained with "
                    f"max_particles={self.metadata.max_particles} per jet but the processor "
                    f"provides {max_particles}"
                )

    def _check_batch(self, inputs: ModelInputs) -> None:
        avail = inputs.high_level.keys()
        mp = None if inputs.constituents is None else inputs.constituents.shape[2]
        self.check_inputs(avail, mp)
        if "event" in self.required_inputs and inputs.event is None:
            raise ModelBundleError(
                f"bundle {self.source} ({self.metadata.method}) picks its k-fold model from "
                "the event number, but the inputs carry no 'event' column"
            )

    # ------------------------------------------------------------------ scoring
    def raw_score(self, inputs: ModelInputs, *, batch_size: int = 8192) -> np.ndarray:
        """Uncalibrated scores (higher = more anomalous), float64 of shape (n,)."""
        self._check_batch(inputs)
        n = len(inputs)
        out = np.empty(n, dtype=np.float64)
        if self.metadata.method in ("cwola", "cathode"):
            return self._kfold_raw(inputs, out, batch_size)
        with torch.no_grad():
            for start in range(0, n, batch_size):
                sl = slice(start, min(start + batch_size, n))
                out[sl] = self._raw_batch(inputs.select(sl))
        return out

    def _kfold_raw(self, inputs: ModelInputs, out: np.ndarray, batch_size: int) -> np.ndarray:
        """Mean logit of each event's own fold's members, in batches of one fold's rows.

        Batches cut across folds gave each network a fifth of a batch: about 1600 rows per
        matrix product at the default size, 15 % slower per chunk than full batches (the
        products themselves are the floor: 3 x 64 hidden units cost ~13 ms per 58k rows on
        one core).
        """
        md, nw = self.metadata, self.networks
        k, m = md.kfold["k"], md.kfold["ensemble"]
        x = self._hl(inputs)
        folds = fold_of(inputs.event, k, salt=md.kfold.get("salt", 0))
        with torch.no_grad():
            for i in range(k):
                rows = np.flatnonzero(folds == i)
                for start in range(0, len(rows), batch_size):
                    idx = rows[start : start + batch_size]
                    xb = x[torch.as_tensor(idx)]
                    members = [nw[f"fold{i}_member{j}"] for j in range(m)]
                    out[idx] = np.mean(nets.member_logits(members, xb), axis=0)
        return out

    def score(self, inputs: ModelInputs, *, batch_size: int = 8192) -> np.ndarray:
        """Calibrated scores in [0, 1], monotone in the raw score (higher = more anomalous)."""
        return self.calibrate(self.raw_score(inputs, batch_size=batch_size))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        cal = self.metadata.calibration
        raw = np.asarray(raw, dtype=np.float64)
        if cal["kind"] == "exp":
            return -np.expm1(-np.maximum(raw, 0.0) / float(cal["scale"]))
        if cal["kind"] == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * raw))  # overflow-free logistic
        raise ModelBundleError(f"bundle {self.source}: unknown calibration {cal['kind']!r}")

    def threshold_for_efficiency(self, efficiency: float) -> float:
        """Calibrated score cut keeping ``efficiency`` of the training background."""
        q = self.metadata.score_quantiles
        if not q:
            raise ModelBundleError(f"bundle {self.source} stores no background score quantiles")
        effs, thr = np.asarray(q["efficiency"]), np.asarray(q["threshold"])
        if not effs.min() <= efficiency <= effs.max():
            raise ModelBundleError(
                f"bundle {self.source}: efficiency {efficiency} is outside the range "
                f"[{effs.min():.3g}, {effs.max():.3g}] resolved by its background sample"
            )
        order = np.argsort(effs)
        return float(np.interp(math.log(efficiency), np.log(effs[order]), thr[order]))

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32))

    def _hl(self, inputs: ModelInputs) -> torch.Tensor:
        x = inputs.matrix(list(self.metadata.features))
        std = Standardizer.from_dict(self.metadata.preprocessing["standardizer"])
        return self._tensor(std.transform(x))

    def _raw_batch(self, inputs: ModelInputs) -> np.ndarray:
        md = self.metadata
        nw = self.networks
        if md.method in ("autoencoder", "nae"):
            return nw["model"].score(self._hl(inputs)).double().numpy()
        if md.method == "vae":
            return nw["model"].score(self._hl(inputs), md.score_kind or "kl").double().numpy()
        if md.method == "supervised":
            return nw["model"](self._hl(inputs)).double().numpy()
        if md.method in ("cwola", "cathode"):
            x = self._hl(inputs)
            k, m = md.kfold["k"], md.kfold["ensemble"]
            folds = fold_of(inputs.event, k, salt=md.kfold.get("salt", 0))
            out = np.zeros(len(x))
            for i in range(k):
                sel = np.flatnonzero(folds == i)
                if len(sel):
                    logits = [nw[f"fold{i}_member{j}"](x[sel]).double().numpy() for j in range(m)]
                    out[sel] = np.mean(logits, axis=0)
            return out
        if md.method == "antelope":
            prep = md.preprocessing
            if "particles" in prep:
                m = inputs.mask.astype(bool)
                raw = antelope_particle_features(inputs.constituents, m, inputs.jets)
                pstd = Standardizer.from_dict(prep["particles"])
                feats = np.where(m[..., None], pstd.transform(raw), 0.0)
            else:  # bundles written before the log-pt feature: relative coordinates only
                feats = particle_features(inputs.constituents, inputs.mask, inputs.jets)
            layer = prep.get("embedding_layer", "phi")
            with torch.no_grad():
                emb = antelope_embedding(nw["phi"], self._tensor(feats),
                                         torch.as_tensor(inputs.mask), layer=layer).numpy()  # fmt: skip
            if layer == "phi":
                emb = np.log1p(emb)
            z = self._tensor(Standardizer.from_dict(prep["embedding"]).transform(emb))
            return nw["vae"].score(z, md.score_kind or "kl").double().numpy()
        if md.method == "vrnn":
            seq, m = vrnn_sequences(
                inputs.constituents,
                inputs.mask,
                inputs.jets,
                jet=md.jet if md.jet is not None else "heavier",
                n_max=int(md.preprocessing.get("n_max", 20)),
            )
            if "sequence" in md.preprocessing:
                std = Standardizer.from_dict(md.preprocessing["sequence"])
                seq = np.where(m[..., None], std.transform(seq), 0.0)
            kl = nw["model"].score(self._tensor(seq), torch.as_tensor(m)).double().numpy()
            return vrnn_raw_score(kl, md.score_kind, md.preprocessing.get("kl_reference"))
        raise ModelBundleError(f"bundle {self.source}: method {md.method!r} cannot score")


#: ANTELOPE: where the VAE reads the PFN (see :func:`adcoffea.models.train.train_model`).
ANTELOPE_LAYERS = ("last_hidden", "phi")


def antelope_embedding(
    pfn: nn.Module, x: torch.Tensor, mask: torch.Tensor, *, layer: str = "last_hidden"
) -> torch.Tensor:
    """The PFN representation the ANTELOPE VAE models: the classifier's last hidden layer
    (``"last_hidden"``) or the per-jet Phi sums (``"phi"``, before the log1p of old bundles).
    """
    if layer == "phi":
        return pfn.embed(x, mask)
    return pfn.representation(x, mask)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_bundle(bundle: ModelBundle, path: str | Path) -> Path:
    """Write ``bundle`` to directory ``path`` (created; existing bundle files are replaced).

    ``bundle`` itself is left unchanged; the metadata written (and read back by
    :func:`load_bundle`) adds each weights file's name and sha256.
    """
    from adcoffea.outputs import atomic_write_text

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    networks = {}
    for name, net in bundle.networks.items():
        fname = f"net_{name}.pt"
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        torch.save(state, path / fname)
        entry = dict(bundle.metadata.networks[name])
        entry.update(file=fname, sha256=_sha256(path / fname))
        networks[name] = entry
    meta = dataclasses.replace(bundle.metadata, networks=networks)
    text = json.dumps(meta.to_dict(), indent=2, sort_keys=True)
    atomic_write_text(path / METADATA_FILE, text)
    atomic_write_text(path / METADATA_DIGEST_FILE, hashlib.sha256(text.encode()).hexdigest() + "\n")
    return path


def verify_metadata_digest(path: Path) -> None:
    """Refuse a ``metadata.json`` that does not match ``metadata.sha256``.

    Reordered or renamed features, or edited preprocessing constants, leave the weights
    intact and would give wrong scores without any error.
    """
    digest_file = path / METADATA_DIGEST_FILE
    if not digest_file.is_file():
        import warnings

        warnings.warn(
            f"bundle {path}: no {METADATA_DIGEST_FILE} (saved by an older adcoffea): "
            f"{METADATA_FILE} cannot be verified; save the bundle again to add it",
            stacklevel=3,
        )
        return
    expected = digest_file.read_text().split()[:1]
    if [_sha256(path / METADATA_FILE)] != expected:
        raise ModelBundleError(
            f"bundle {path}: {METADATA_FILE} does not match its sha256 in "
            f"{METADATA_DIGEST_FILE} (edited after training: feature names or order, "
            "preprocessing or calibration changed?); retrain or restore the bundle"
        )


def check_feature_layout(meta: BundleMetadata, source: str) -> None:
    """Feature names unique, and as many as the standardizer's columns and the networks'
    ``n_inputs`` (a mismatch would otherwise be a numpy broadcast error per chunk)."""
    feats = list(meta.features)
    if not feats:
        return
    dupes = sorted({f for f in feats if feats.count(f) > 1})
    if dupes:
        raise ModelBundleError(f"bundle {source}: features listed twice: {dupes}")
    n = len(feats)
    std = meta.preprocessing.get("standardizer")
    if isinstance(std, Mapping):
        for key in ("mean", "scale"):
            if key in std and len(std[key]) != n:
                raise ModelBundleError(
                    f"bundle {source}: {n} features {feats} but the standardizer's {key!r} "
                    f"has {len(std[key])} columns"
                )
    for name, spec in meta.networks.items():
        n_in = (spec.get("hyperparameters") or {}).get("n_inputs")
        if n_in is not None and int(n_in) != n:
            raise ModelBundleError(
                f"bundle {source}: {n} features {feats} but network {name!r} takes {n_in} inputs"
            )


def load_bundle(path: str | Path) -> ModelBundle:
    """Read a bundle written by :func:`save_bundle`, verifying every weights file's sha256.

    Raises:
        ModelBundleError: missing directory/metadata, unknown format, hash mismatch (weights
            or ``metadata.json``), features inconsistent with the standardizer or networks,
            or weights that do not fit the declared architecture.
    """
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise ModelBundleError(f"bundle {path}: no {METADATA_FILE} (not a model bundle?)")
    try:
        meta = BundleMetadata.from_dict(json.loads(meta_path.read_text()))
    except (ValueError, TypeError) as err:
        raise ModelBundleError(f"bundle {path}: invalid {METADATA_FILE}: {err}") from None
    if meta.format_version != FORMAT_VERSION:
        raise ModelBundleError(
            f"bundle {path}: format version {meta.format_version}, this adcoffea reads "
            f"{FORMAT_VERSION}"
        )
    networks: dict[str, nn.Module] = {}
    for name, spec in meta.networks.items():
        fpath = path / str(spec.get("file", ""))
        if not spec.get("file") or not fpath.is_file():
            raise ModelBundleError(f"bundle {path}: weights file of network {name!r} is missing")
        if _sha256(fpath) != spec.get("sha256"):
            raise ModelBundleError(
                f"bundle {path}: weights file {fpath.name} does not match its sha256 in "
                f"{METADATA_FILE} (modified or corrupted)"
            )
        try:
            net = nets.build(spec["architecture"], spec["hyperparameters"])
            state = torch.load(fpath, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except Exception as err:  # any failure here means the bundle is unusable
            raise ModelBundleError(
                f"bundle {path}: network {name!r} cannot be rebuilt from its weights: {err}"
            ) from None
        networks[name] = net
    # after the weights: their messages name the file that was changed
    verify_metadata_digest(path)
    check_feature_layout(meta, str(path))
    return ModelBundle(meta, networks, source=str(path))
