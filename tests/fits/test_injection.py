"""Signal-injection study of the BumpHunter (adcoffea.fits.injection)."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits.injection import inject_signal_study


def test_injection_study_recovers_signal():
    bkg = np.full(30, 200.0)
    sig = np.zeros(30)
    sig[14:17] = [20.0, 40.0, 20.0]
    out = inject_signal_study(
        bkg,
        sig,
        strengths=[0.5, 1.5, 3.0, 5.0],
        target_z=2.0,
        n_toys=1000,
        n_inject=60,
        width_min=1,
        width_max=4,
        seed=2,
    )
    assert out.median_z[-1] > out.median_z[0]
    assert out.strength_at_target is not None and 0.5 <= out.strength_at_target <= 5.0
    # 2D works too
    b2 = np.full((8, 8), 100.0)
    s2 = np.zeros((8, 8))
    s2[3:5, 3:5] = 25.0
    out2 = inject_signal_study(
        b2, s2, strengths=[0.0, 2.0], n_toys=300, n_inject=30, width_min=1, width_max=3, seed=3
    )
    assert out2.median_z[1] > out2.median_z[0] + 1


def test_injection_study_refuses_bad_options():
    bkg, sig = np.full(10, 50.0), np.ones(10)
    with pytest.raises(ConfigError, match="strengths must not be empty"):
        inject_signal_study(bkg, sig, strengths=[])
    with pytest.raises(ConfigError, match="n_inject must be an integer >= 1"):
        inject_signal_study(bkg, sig, strengths=[1.0], n_inject=0, width_min=1, width_max=2)
