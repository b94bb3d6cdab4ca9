from __future__ import annotations

import numpy as np
import pytest

from adcoffea.config import TrainConfig
from adcoffea.errors import ConfigError
from adcoffea.features import ModelInputs
from adcoffea.models import toy
from adcoffea.models.bundle import load_bundle, save_bundle
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.train import train_model


@pytest.mark.parametrize("method", ["autoencoder", "vae", "nae"])
def test_outlier_scores_higher_on_wprime_than_qcd(method, lhco_small, fast_config):
    inputs, labels = lhco_small
    hp = {"nae_epochs": 1, "langevin_steps": 5} if method == "nae" else None
    res = train_model(method, inputs.select(labels == 0), config=fast_config, hyperparameters=hp,
                      progress=False)  # fmt: skip
    raw = res.bundle.raw_score(inputs)
    assert np.all(raw >= 0)  # reconstruction errors / KL divergences
    assert raw[labels == 1].mean() > 1.5 * raw[labels == 0].mean()
    assert roc_sic(raw, labels).auc > 0.65
    assert len(res.history["val_loss"]) <= fast_config.epochs
    if method == "nae":
        assert len(res.history["nae_loss"]) == 1


def test_same_seed_gives_identical_bundle_scores(lhco_small):
    inputs, labels = lhco_small
    cfg = TrainConfig(epochs=1, batch_size=256, seed=5)
    bkg = inputs.select(labels == 0)
    a = train_model("vae", bkg, config=cfg, progress=False).bundle.score(inputs)
    b = train_model("vae", bkg, config=cfg, progress=False).bundle.score(inputs)
    c = train_model("vae", bkg, config=cfg.model_copy(update={"seed": 6}), progress=False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c.bundle.score(inputs))


def test_early_stopping_restores_best_epoch():
    inputs, _labels = toy.lhco_features(150, 0, seed=3)
    cfg = TrainConfig(epochs=60, batch_size=32, learning_rate=1e-2, patience=1, seed=0)
    res = train_model("autoencoder", inputs, config=cfg, progress=False)
    val = res.history["val_loss"]
    assert len(val) < 60  # stopped early
    best = int(np.argmin(val))
    assert len(val) - 1 - best == cfg.patience + 1


@pytest.mark.parametrize("kind", ["bdt", "mlp"])
def test_supervised_ceiling_separates(kind, lhco_small, fast_config, tmp_path):
    inputs, labels = lhco_small
    hp = {"classifier": kind, "members": 3}
    res = train_model("supervised", inputs, config=fast_config, labels=labels, progress=False,
                      hyperparameters=hp)  # fmt: skip
    test, tlab = toy.lhco_features(2000, 2000, seed=99)
    scores = res.bundle.score(test)
    assert roc_sic(scores, tlab).auc > 0.9
    assert res.bundle.metadata.networks["model"]["architecture"] == (
        "bdt" if kind == "bdt" else "classifier"
    )
    # the bundle holds tensors only (the trees too; no pickle) besides its JSON metadata and
    # the metadata's digest, and scores identically after a reload
    save_bundle(res.bundle, tmp_path / "b")
    assert sorted(p.suffix for p in (tmp_path / "b").iterdir()) == [".json", ".pt", ".sha256"]
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").score(test), scores)


def test_antelope_pfn_prior_then_vae(clouds, fast_config):
    inputs, labels = clouds
    res = train_model("antelope", inputs, config=fast_config, labels=labels, progress=False)
    assert set(res.bundle.networks) == {"phi", "vae"}
    assert "vae_val_loss" in res.history
    test = ModelInputs.concatenate([toy.point_clouds(150, prongs=1, seed=31, max_particles=16),
                                    toy.point_clouds(150, prongs=2, seed=32, max_particles=16)])  # fmt: skip
    tlab = np.r_[np.zeros(150), np.ones(150)]
    assert roc_sic(res.bundle.score(test), tlab).auc > 0.7


def test_vrnn_learns_and_separates_prong_structure(clouds):
    inputs, labels = clouds
    cfg = TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3, patience=4, seed=0)
    res = train_model("vrnn", inputs.select(labels == 0), config=cfg,
                      hyperparameters={"n_max": 10}, progress=False)  # fmt: skip
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]
    raw = res.bundle.raw_score(inputs)
    assert np.all(raw >= 0)
    # the two-sided (typicality) KL score flags the two-prong jets
    assert roc_sic(raw, labels).auc > 0.6


def test_user_errors_are_clear(lhco_small, fast_config):
    inputs, _labels = lhco_small
    with pytest.raises(ConfigError, match="unknown method"):
        train_model("bdt", inputs, config=fast_config)
    with pytest.raises(ConfigError, match="observable"):
        train_model("cwola", inputs, config=fast_config, signal_region=(1, 2), sidebands=(0, 3))
    with pytest.raises(ConfigError, match="tau42"):
        train_model("autoencoder", inputs, config=fast_config, features=["mj_min", "tau42"])
    with pytest.raises(ConfigError, match="labels"):
        train_model("supervised", inputs, config=fast_config)
    with pytest.raises(ConfigError, match="constituents"):
        train_model("vrnn", inputs, config=fast_config)
