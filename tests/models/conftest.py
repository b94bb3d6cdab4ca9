"""Small seeded fixtures for the model tests (reference-distribution samplers, no generator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adcoffea.config import TrainConfig
from adcoffea.features import ModelInputs
from adcoffea.models import toy

# Tiny networks: one thread avoids oversubscribing the shared CI cores (several times faster).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lhco_small():
    """1500 QCD + 1500 W' events of high-level features (GeV) and truth labels."""
    return toy.lhco_features(1500, 1500, seed=11)


@pytest.fixture(scope="session")
def clouds():
    """200 one-prong (label 0) + 200 two-prong (label 1) two-jet events."""
    bkg = toy.point_clouds(200, prongs=1, seed=21, max_particles=16)
    sig = toy.point_clouds(200, prongs=2, seed=22, max_particles=16, event_offset=200)
    labels = np.r_[np.zeros(200, np.int8), np.ones(200, np.int8)]
    return ModelInputs.concatenate([bkg, sig]), labels


@pytest.fixture
def fast_config():
    return TrainConfig(epochs=3, batch_size=128, learning_rate=3e-3, patience=2, seed=0)
