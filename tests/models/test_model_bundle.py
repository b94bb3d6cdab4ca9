from __future__ import annotations

import json

import numpy as np
import pytest

from adcoffea.errors import ModelBundleError
from adcoffea.features import HIGH_LEVEL_FEATURES, LHCO_FEATURES
from adcoffea.models.bundle import fold_of, load_bundle, save_bundle
from adcoffea.models.train import train_model


@pytest.fixture(scope="module")
def ae_bundle(lhco_small):
    from adcoffea.config import TrainConfig

    inputs, labels = lhco_small
    cfg = TrainConfig(epochs=2, batch_size=256, seed=3)
    return train_model("autoencoder", inputs.select(labels == 0), config=cfg, progress=False).bundle


def test_round_trip_gives_identical_scores(ae_bundle, lhco_small, tmp_path):
    inputs, _ = lhco_small
    before = ae_bundle.score(inputs)
    unsaved = ae_bundle.metadata.to_dict()
    save_bundle(ae_bundle, tmp_path / "b")
    assert ae_bundle.metadata.to_dict() == unsaved  # saving does not change the bundle
    loaded = load_bundle(tmp_path / "b")
    np.testing.assert_array_equal(loaded.score(inputs), before)
    saved = loaded.metadata.to_dict()
    for net in saved["networks"].values():  # what saving adds: the files and their hashes
        assert net.pop("file") == "net_model.pt" and len(net.pop("sha256")) == 64
    assert saved == unsaved
    assert before.dtype == np.float64 and before.shape == (len(inputs),)
    assert np.all((before >= 0) & (before <= 1))
    # batching does not change the scores
    np.testing.assert_allclose(loaded.score(inputs, batch_size=17), before, rtol=1e-6, atol=1e-7)
    md = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert md["features"] == list(LHCO_FEATURES)
    assert len(md["networks"]["model"]["sha256"]) == 64
    assert md["versions"]["torch"]


def test_tampered_weights_are_refused(ae_bundle, tmp_path):
    path = save_bundle(ae_bundle, tmp_path / "b")
    weights = path / "net_model.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match=r"net_model\.pt.*sha256"):
        load_bundle(path)


def test_missing_metadata_and_unknown_keys_are_refused(ae_bundle, tmp_path):
    with pytest.raises(ModelBundleError, match=r"metadata\.json"):
        load_bundle(tmp_path / "nothing")
    path = save_bundle(ae_bundle, tmp_path / "b")
    md = json.loads((path / "metadata.json").read_text())
    md["pickle"] = "evil"
    (path / "metadata.json").write_text(json.dumps(md))
    with pytest.raises(ModelBundleError, match="unknown metadata keys"):
        load_bundle(path)


def test_weights_of_another_architecture_are_refused(ae_bundle, tmp_path):
    path = save_bundle(ae_bundle, tmp_path / "b")
    md = json.loads((path / "metadata.json").read_text())
    md["networks"]["model"]["hyperparameters"]["latent"] = 3
    (path / "metadata.json").write_text(json.dumps(md))
    with pytest.raises(ModelBundleError, match="cannot be rebuilt"):
        load_bundle(path)


def test_mismatched_features_are_refused(ae_bundle, lhco_small):
    ae_bundle.check_inputs(HIGH_LEVEL_FEATURES, None)
    with pytest.raises(ModelBundleError, match=r"tau21_max"):
        ae_bundle.check_inputs(["mjj", "mj_min", "delta_mj", "tau21_min"], None)
    inputs, _ = lhco_small
    hl = dict(inputs.high_level)
    del hl["delta_mj"]
    from adcoffea.features import ModelInputs

    with pytest.raises(ModelBundleError, match="delta_mj"):
        ae_bundle.score(ModelInputs(high_level=hl))


def test_threshold_for_efficiency_matches_background(ae_bundle, lhco_small):
    inputs, labels = lhco_small
    bkg = ae_bundle.score(inputs.select(labels == 0))  # the training background
    for eff in (0.5, 0.1, 0.02):
        thr = ae_bundle.threshold_for_efficiency(eff)
        assert abs(np.mean(bkg > thr) - eff) < 0.2 * eff + 2e-3
    # the calibration puts 0.5 at the 10 % background quantile
    assert abs(np.mean(bkg > 0.5) - 0.1) < 0.02
    with pytest.raises(ModelBundleError, match="efficiency"):
        ae_bundle.threshold_for_efficiency(1e-6)


def test_fold_of_is_deterministic_and_balanced():
    ev = np.arange(100_000, dtype=np.uint64)
    f = fold_of(ev, 5)
    np.testing.assert_array_equal(f, fold_of(ev.copy(), 5))
    counts = np.bincount(f, minlength=5)
    assert np.all(np.abs(counts - 20_000) < 600)  # ~4 sigma of a multinomial
    assert not np.array_equal(f[:50], np.arange(50) % 5)  # hashed, not a plain modulo


def test_constituent_bundle_checks_max_particles(clouds, fast_config):
    inputs, labels = clouds
    b = train_model("vrnn", inputs.select(labels == 0), config=fast_config,
                    hyperparameters={"n_max": 8, "hidden": 8}, progress=False).bundle  # fmt: skip
    assert b.required_inputs == {"constituents"}
    assert b.metadata.jet == "heavier"
    b.check_inputs([], 16)
    with pytest.raises(ModelBundleError, match="max_particles=16"):
        b.check_inputs([], 20)
    with pytest.raises(ModelBundleError, match="constituents"):
        b.check_inputs(HIGH_LEVEL_FEATURES, None)
