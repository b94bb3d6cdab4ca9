from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from adcoffea.errors import ConfigError
from adcoffea.fits.signal import gaussian_signal, template_signal

EDGES = np.linspace(2000.0, 5000.0, 31)


def test_gaussian_fractions_are_exact_bin_integrals():
    s = gaussian_signal(EDGES, 3500.0, rel_width=0.10)
    ref = np.diff(stats.norm.cdf(EDGES, 3500.0, 350.0))
    np.testing.assert_allclose(s, ref, atol=1e-14)
    # lost outside the binning: +-1500 GeV = 4.3 sigma
    assert s.sum() == pytest.approx(1 - 2 * stats.norm.sf(1500 / 350), rel=1e-9)
    with pytest.raises(ConfigError):
        gaussian_signal(EDGES, 3500.0, rel_width=0.0)


def test_template_interpolation_reproduces_a_scaling_shape():
    rng = np.random.default_rng(1)
    fine = np.linspace(0.0, 8000.0, 1601)
    temps = []
    for m in (3000.0, 4000.0):
        # W'-like: core + wide low tail, all widths proportional to the mass
        x = np.concatenate(
            [rng.normal(m, 0.03 * m, 400_000), rng.normal(0.97 * m, 0.1 * m, 180_000)]
        )
        temps.append((m, fine, np.histogram(x, fine)[0].astype(float)))
    got = template_signal(EDGES, 3500.0, temps)
    m = 3500.0
    ref = (
        400 * np.diff(stats.norm.cdf(EDGES, m, 0.03 * m))
        + 180 * np.diff(stats.norm.cdf(EDGES, 0.97 * m, 0.1 * m))
    ) / 580
    np.testing.assert_allclose(got, ref, atol=4e-3)
    # at a template mass the template itself comes back (up to the fine binning)
    at = template_signal(EDGES, 3000.0, temps)
    direct = np.interp(
        EDGES, fine, np.concatenate([[0], np.cumsum(temps[0][2])]) / temps[0][2].sum()
    )
    np.testing.assert_allclose(at, np.diff(direct), atol=1e-12)
