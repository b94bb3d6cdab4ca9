"""Jets from constituents: the compiled N-subjettiness and the constituent builder."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.synthetic.jets import (
    build_constituents,
    four_vector_sum,
    jet_observables,
    nsubjettiness,
    wrap_phi,
)


def _nsub_reference(w, x, y, n_axes, n_iter):
    """The documented algorithm, written plainly for one jet: greedy seeds + Lloyd steps."""
    pts = np.stack([x, y], axis=1)
    axes = [pts[np.argmax(w)]]
    while len(axes) < n_axes:
        d = np.min([np.hypot(*(pts - a).T) for a in axes], axis=0)
        axes.append(pts[np.argmax(w * d)])
    axes = np.array(axes)
    for _ in range(n_iter):
        nearest = np.argmin([np.hypot(*(pts - a).T) for a in axes], axis=0)
        for k in range(n_axes):
            if w[nearest == k].sum() > 0:
                axes[k] = np.average(pts[nearest == k], axis=0, weights=w[nearest == k])
    d = np.min([np.hypot(*(pts - a).T) for a in axes], axis=0)
    return float((w * d).sum() / w.sum())


@pytest.mark.parametrize("n_axes", [1, 2, 3, 4])
def test_nsubjettiness_matches_the_plain_algorithm(n_axes):
    rng = np.random.default_rng(n_axes)
    counts = rng.integers(1, 40, 50)
    jet_id = np.repeat(np.arange(50), counts)
    w = rng.exponential(1.0, jet_id.size)
    x, y = rng.normal(0, 0.3, jet_id.size), rng.normal(0, 0.3, jet_id.size)
    tau, assign = nsubjettiness(w, x, y, jet_id, 50, n_axes, n_iter=3)
    ref = [
        _nsub_reference(w[jet_id == j], x[jet_id == j], y[jet_id == j], n_axes, 3)
        for j in range(50)
    ]
    np.testing.assert_allclose(tau, ref, rtol=1e-9, atol=1e-12)
    assert assign.min() >= 0 and assign.max() < n_axes


def test_two_pencils_have_small_tau21():
    # two collinear pencils 0.8 apart: one axis leaves half the pT 0.4 away, two axes none
    w = np.array([1.0, 1.0, 1.0, 1.0])
    x = np.array([-0.4, -0.4, 0.4, 0.4])
    y = np.zeros(4)
    jet_id = np.zeros(4, dtype=np.int64)
    t1, _ = nsubjettiness(w, x, y, jet_id, 1, 1)
    t2, assign = nsubjettiness(w, x, y, jet_id, 1, 2)
    assert t1[0] == pytest.approx(0.4) and t2[0] == pytest.approx(0.0)
    assert len(set(assign[:2])) == 1 and assign[0] != assign[2]


def test_constituents_hit_the_jet_targets():
    rng = np.random.default_rng(4)
    n = 3000
    jets = {
        "pt": rng.uniform(1200.0, 2500.0, n),
        "eta": rng.uniform(-2.4, 2.4, n),
        "phi": rng.uniform(-np.pi, np.pi, n),
        "mass": rng.uniform(20.0, 500.0, n),
        "tau": rng.uniform(0.15, 0.8, n),
        "nprong": np.where(rng.random(n) < 0.2, 3, 2),
        "qcd": rng.random(n) < 0.5,
    }
    c = build_constituents(rng, jets)
    obs = jet_observables(c, n)
    jet_id = np.repeat(np.arange(n), c["n_const"])
    pt, eta, phi, m = four_vector_sum(c["pt"], c["eta"], c["phi"], c["mass"], jet_id, n)
    np.testing.assert_allclose(obs["pt"], pt, rtol=1e-9)
    np.testing.assert_allclose(obs["mass"], m, rtol=1e-6)
    # four-vector targets: exact up to float32 storage, the mass up to the dilation steps
    np.testing.assert_allclose(pt, jets["pt"], rtol=1e-5)
    assert np.abs(eta - jets["eta"]).max() < 1e-3
    assert np.abs(wrap_phi(phi - jets["phi"])).max() < 1e-3
    assert np.quantile(np.abs(m / jets["mass"] - 1), 0.99) < 0.01
    # substructure targets: tau21 (tau32 for three prongs) tuned on the constituents
    two = jets["nprong"] == 2
    tau21 = (obs["tau2"] / obs["tau1"])[two]
    tau32 = (obs["tau3"] / obs["tau2"])[~two]
    assert np.median(np.abs(tau21 - jets["tau"][two])) < 0.02
    assert np.median(np.abs(tau32 - jets["tau"][~two])) < 0.05
    assert np.corrcoef(tau21, jets["tau"][two])[0, 1] > 0.9
    # constituents are pT-ordered within each jet, and the groomed mass is at most the mass
    starts = np.concatenate([[0], np.cumsum(c["n_const"])[:-1]])
    assert (np.diff(c["pt"])[np.setdiff1d(np.arange(c["pt"].size - 1), starts[1:] - 1)] <= 0).all()
    assert (obs["msoftdrop"] <= obs["mass"] * (1 + 1e-9)).all()
