"""The dijet features against the vector library (four-vector sums in float64)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import vector

from adcoffea.features import high_level_features, invariant_mass


def _jets(seed: int, n: int = 20_000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {
        "pt": rng.uniform(200.0, 4000.0, (n, 2)),
        "eta": rng.uniform(-2.5, 2.5, (n, 2)),
        "phi": rng.uniform(-np.pi, np.pi, (n, 2)),
        "mass": rng.uniform(0.0, 600.0, (n, 2)),
    }
    # nearly collinear pairs, where E_a E_b - p_a.p_b cancels most
    near = rng.random(n) < 0.2
    for k in ("eta", "phi"):
        out[k][near, 1] = out[k][near, 0] + rng.normal(0.0, 1e-3, near.sum())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariant_mass_matches_vector(seed):
    j = _jets(seed)
    a = vector.array({k: v[:, 0] for k, v in j.items()})
    b = vector.array({k: v[:, 1] for k, v in j.items()})
    ref = (a + b).mass
    got = invariant_mass(*(j[k][:, 0] for k in j), *(j[k][:, 1] for k in j))
    # both round m^2 = (E_a + E_b)^2 - |p_a + p_b|^2 in float64: an error of a few ulp of
    # E^2, that is of E^2 / (2 m) in m (large for collinear, light pairs)
    energy = (a + b).E
    bound = 1e-14 * energy**2 / np.maximum(ref, 1.0) + 1e-12 * ref
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) / bound)
    assert np.median(np.abs(got - ref) / ref) < 1e-14


def test_invariant_mass_in_place_is_the_formula_and_leaves_its_inputs():
    j = _jets(11)
    cols = [np.ascontiguousarray(j[k][:, i]) for i in (0, 1) for k in j]
    cols[3] = cols[3].astype(np.float32)  # a float32 mass column is read as float64
    before = [c.copy() for c in cols]
    got = invariant_mass(*cols)
    for c, b in zip(cols, before, strict=True):
        np.testing.assert_array_equal(c, b)
    pt_a, eta_a, phi_a, m_a, pt_b, eta_b, phi_b, m_b = (c.astype(np.float64) for c in cols)
    sh_a, sh_b = np.sinh(eta_a), np.sinh(eta_b)
    e_a = np.sqrt(m_a * m_a + pt_a * pt_a * (1.0 + sh_a * sh_a))
    e_b = np.sqrt(m_b * m_b + pt_b * pt_b * (1.0 + sh_b * sh_b))
    dot = pt_a * pt_b * (np.cos(phi_a - phi_b) + sh_a * sh_b)
    ref = np.sqrt(np.maximum(m_a * m_a + m_b * m_b + 2.0 * (e_a * e_b - dot), 0.0))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)


def test_high_level_features_order_the_jets_by_mass():
    j = _jets(5, n=2000)
    tau = np.random.default_rng(6).uniform(0.05, 1.0, (2000, 2, 3))
    jets = ak.zip(
        {**{k: v for k, v in j.items()}, **{f"tau{i + 1}": tau[..., i] for i in range(3)}}
    )
    f = high_level_features(jets)
    light = np.argmin(j["mass"], axis=1)
    rows = np.arange(2000)
    np.testing.assert_array_equal(f["mj_min"], j["mass"][rows, light])
    np.testing.assert_array_equal(f["mj_max"], j["mass"][rows, 1 - light])
    t21 = tau[..., 1] / (tau[..., 0] + 1e-5)
    np.testing.assert_array_equal(f["tau21_min"], t21[rows, light])
    np.testing.assert_array_equal(f["tau21_max"], t21[rows, 1 - light])
    # mjj does not depend on which jet is called first
    swapped = invariant_mass(*(j[k][:, 1] for k in j), *(j[k][:, 0] for k in j))
    np.testing.assert_allclose(f["mjj"], swapped, rtol=1e-12)
