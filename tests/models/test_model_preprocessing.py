from __future__ import annotations

import numpy as np

from adcoffea.models import toy
from adcoffea.models.preprocessing import (
    ALIGN_ENERGY,
    ALIGN_MASS,
    LogitScaler,
    Standardizer,
    align_jet,
    four_vectors,
    kt_order,
    particle_features,
    select_jet,
    vrnn_sequences,
)


def test_standardizer_and_logit_scaler_round_trip():
    rng = np.random.default_rng(0)
    x = np.c_[rng.beta(2, 5, 500), rng.gamma(2.0, 50.0, 500)]
    z = Standardizer.fit(x).transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    sc = LogitScaler.fit(x)
    np.testing.assert_allclose(sc.inverse(sc.transform(x)), x, rtol=1e-4, atol=1e-5)


def test_particle_features_are_relative_to_the_jet():
    inp = toy.point_clouds(50, prongs=2, seed=1, max_particles=12)
    f = particle_features(inp.constituents, inp.mask, inp.jets)
    # pt fractions of a jet's constituents sum to ~1 (massless, collimated constituents)
    np.testing.assert_allclose(f[..., 0].sum(-1), 1.0, rtol=0.05)
    assert np.all(np.abs(f[..., 1:]) < 0.6)  # within the jet cone
    assert np.all(f[~inp.mask] == 0)


def test_alignment_sets_mass_energy_and_orientation():
    inp = toy.point_clouds(40, prongs=2, seed=2, max_particles=12)
    c, m = select_jet(inp.constituents, inp.mask, inp.jets, "heavier")
    al = align_jet(c, m)
    # Rebuild massless four-vectors from the aligned (pt/E0, eta, phi): jet mass and energy
    p4 = four_vectors(
        np.concatenate([al * [ALIGN_ENERGY, 1, 1], np.zeros_like(al[..., :1])], -1), m
    )
    jet = p4.sum(1)
    mass = np.sqrt(jet[:, 3] ** 2 - (jet[:, :3] ** 2).sum(-1))
    np.testing.assert_allclose(jet[:, 3], ALIGN_ENERGY, rtol=1e-6)
    np.testing.assert_allclose(mass, ALIGN_MASS, rtol=1e-5)
    # Jet axis along (eta, phi) = (0, 0): no net momentum along the frame's y and z axes
    np.testing.assert_allclose(jet[:, 1:3] / jet[:, 3:4], 0, atol=1e-9)
    lead = np.argmax(np.where(m, c[..., 0], -1), axis=1)
    rows = np.arange(len(c))
    np.testing.assert_allclose(al[rows, lead, 2], 0, atol=1e-9)  # hardest at phi = 0
    assert np.all(al[rows, lead, 1] > 0)
    second = np.argsort(np.where(m, -c[..., 0], np.inf), axis=1)[:, 1]
    assert np.all(al[rows, second, 2] >= -1e-12)  # second-hardest at phi >= 0


def test_heavier_jet_selection():
    inp = toy.point_clouds(30, prongs=2, seed=3, max_particles=12)
    c, _ = select_jet(inp.constituents, inp.mask, inp.jets, "heavier")
    heavier = np.argmax(inp.jets[..., 3], axis=1)
    np.testing.assert_array_equal(c, inp.constituents[np.arange(30), heavier])


def _kt_order_reference(feat, mask, n_max):
    """Per-event loop reference of the ordering (tests only)."""
    out = []
    for f, m in zip(feat, mask, strict=True):
        idx = list(np.flatnonzero(m))
        cur = max(idx, key=lambda i: f[i, 0])
        seq = []
        while idx and len(seq) < n_max:
            seq.append(cur)
            idx.remove(cur)
            if not idx:
                break

            def kt(j, c=cur, f=f):
                dphi = (f[j, 2] - f[c, 2] + np.pi) % (2 * np.pi) - np.pi
                return f[j, 0] * np.hypot(f[j, 1] - f[c, 1], dphi)

            cur = max(idx, key=kt)
        out.append(seq)
    return out


def test_kt_ordering_matches_the_specification():
    rng = np.random.default_rng(5)
    n, p = 25, 9
    feat = np.stack([rng.exponential(1.0, (n, p)), rng.normal(0, 0.3, (n, p)),
                     rng.normal(0, 0.3, (n, p))], -1)  # fmt: skip
    mask = np.arange(p)[None] < rng.integers(1, p + 1, n)[:, None]
    seq, smask = kt_order(feat, mask, n_max=6)
    ref = _kt_order_reference(feat, mask, 6)
    for i, r in enumerate(ref):
        assert smask[i].sum() == len(r)
        np.testing.assert_allclose(seq[i, : len(r)], feat[i, r], rtol=1e-6)
        assert np.all(seq[i, len(r) :] == 0)
    # starts from the hardest constituent
    np.testing.assert_allclose(seq[:, 0, 0], np.where(mask, feat[..., 0], 0).max(1), rtol=1e-6)


def test_vrnn_sequences_shape_and_padding():
    inp = toy.point_clouds(20, prongs=1, seed=4, max_particles=30)
    seq, m = vrnn_sequences(inp.constituents, inp.mask, inp.jets, n_max=20)
    assert seq.shape == (20, 20, 3)
    assert np.all(
        m.sum(1) == np.minimum(inp.mask[np.arange(20), np.argmax(inp.jets[..., 3], 1)].sum(1), 20)
    )
