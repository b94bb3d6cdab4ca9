from __future__ import annotations

import numpy as np
import pytest
import torch

from adcoffea.config import TrainConfig
from adcoffea.models import toy
from adcoffea.models.bundle import fold_of, load_bundle, save_bundle
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.train import train_model
from adcoffea.models.weak import region_masks

SR, SB = (3300.0, 3700.0), (3100.0, 3900.0)


@pytest.fixture(scope="module")
def weak_data():
    """QCD in 3.0-4.0 TeV plus a strong W' injection (fast learnable version of the study)."""
    return toy.lhco_features(8000, 500, seed=41)


def test_region_masks():
    m = np.array([3000.0, 3100.0, 3299.0, 3300.0, 3699.0, 3700.0, 3899.0, 3900.0])
    sr, sb = region_masks(m, SR, SB)
    np.testing.assert_array_equal(sr, [0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(sb, [0, 1, 1, 0, 0, 1, 1, 0])


@pytest.mark.parametrize(("method", "kind"), [("cwola", "mlp"), ("cathode", "mlp"),
                                             ("cwola", "bdt"), ("cathode", "bdt")])  # fmt: skip
def test_weak_supervision_finds_injected_signal(method, kind, weak_data, tmp_path):
    inputs, labels = weak_data
    mjj = inputs.high_level["mjj"]
    cfg = TrainConfig(epochs=4, batch_size=256, learning_rate=3e-3, k_folds=3, patience=2, seed=1)
    hp = {"classifier": kind, "members": 1 if kind == "mlp" else 3, "hidden": [32, 32],
          "max_iter": 50, "flow_layers": 3, "flow_hidden": [32], "flow_epochs": 4,
          "oversample": 2}  # fmt: skip
    res = train_model(method, inputs, config=cfg, hyperparameters=hp, observable=mjj,
                      signal_region=SR, sidebands=SB, progress=False)  # fmt: skip
    b = res.bundle
    assert b.metadata.kfold == {"k": 3, "ensemble": hp["members"], "salt": 0}
    assert b.metadata.notes["classifier"] == kind
    assert b.required_inputs == {"high_level", "event"}
    sr, _ = region_masks(mjj, SR, SB)
    assert roc_sic(res.out_of_fold_scores[sr], labels[sr]).auc > 0.75
    # out-of-fold scores are the bundle's scores: processing the same events later is
    # again out-of-fold, and each event is scored by its own fold's model
    np.testing.assert_allclose(res.out_of_fold_scores, b.score(inputs))
    x = torch.as_tensor(
        np.asarray(
            (inputs.matrix(list(b.metadata.features)) - b.metadata.preprocessing["standardizer"]["mean"])
            / b.metadata.preprocessing["standardizer"]["scale"], np.float32)
    )  # fmt: skip
    folds = fold_of(inputs.event, 3)
    with torch.no_grad():
        for i in range(3):
            own = np.mean([b.networks[f"fold{i}_member{j}"](x[folds == i]).double().numpy()
                           for j in range(hp["members"])], axis=0)  # fmt: skip
            np.testing.assert_allclose(b.raw_score(inputs)[folds == i], own, rtol=1e-5, atol=1e-6)
    save_bundle(b, tmp_path / "w")
    np.testing.assert_array_equal(load_bundle(tmp_path / "w").score(inputs), b.score(inputs))


@pytest.mark.slow
def test_weak_supervision_reaches_half_the_supervised_ceiling():
    """The issue's benchmark criterion (minutes of CPU): see benchmarks/ad_methods.py."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ad_methods.py"
    spec = importlib.util.spec_from_file_location("ad_methods", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.run(seeds=1, signals=(2000,), methods=("supervised", "cathode", "cwola"),
                  classifiers=("bdt",), scale=0.5, noise=0)  # fmt: skip
    sic = {k.split("|")[0]: v["max_sic_median"] for k, v in out["summary"].items()}
    assert max(sic["cathode"], sic["cwola"]) >= 0.5 * sic["supervised"]
