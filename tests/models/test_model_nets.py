from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adcoffea.models import nets
from adcoffea.models.preprocessing import particle_features


def test_pfn_output_invariant_to_permuting_constituents(clouds):
    inputs, _ = clouds
    torch.manual_seed(0)
    pfn = nets.build("pfn", {"n_features": 3, "n_jets": 2, "latent": 8}).eval()
    x = torch.as_tensor(particle_features(inputs.constituents, inputs.mask, inputs.jets))
    m = torch.as_tensor(inputs.mask)
    perm = torch.as_tensor(np.random.default_rng(0).permutation(x.shape[2]))
    with torch.no_grad():
        a, b = pfn(x, m), pfn(x[:, :, perm], m[:, :, perm])
        # padding never contributes: garbage in padded slots changes nothing
        c = pfn(torch.where(m.unsqueeze(-1), x, torch.full_like(x, 7.0)), m)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
    assert a.std() > 0  # not a constant function


def test_vae_kl_is_non_negative_and_zero_at_the_prior():
    torch.manual_seed(1)
    vae = nets.build("vae", {"n_inputs": 4, "hidden": [8], "latent": 2})
    kl = vae.kl(torch.randn(500, 4) * 3)
    assert torch.all(kl >= 0)
    assert kl.max() > 0
    zero = nets._kl_normal(torch.zeros(3, 2), torch.zeros(3, 2))
    torch.testing.assert_close(zero, torch.zeros(3))


def test_vrnn_ignores_padding():
    torch.manual_seed(2)
    net = nets.build("vrnn", {"hidden": 8, "latent": 2, "embed": 8}).eval()
    x = torch.randn(5, 6, 3)
    m = torch.ones(5, 6, dtype=torch.bool)
    m[:, 4:] = False
    x_pad = x.clone()
    x_pad[:, 4:] = 99.0
    with torch.no_grad():
        a, b = net.score(x, m), net.score(x_pad, m)
        c = net.score(x[:, :4], m[:, :4])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert torch.all(a >= 0)  # a KL divergence


@pytest.mark.parametrize("kind", ["maf", "nsf"])
def test_conditional_flow_is_normalised_and_invertible(kind):
    torch.manual_seed(3)
    flow = nets.build("flow", {"n_features": 2, "n_context": 1, "kind": kind, "transforms": 3,
                               "hidden": [16]})  # fmt: skip
    for p in flow.parameters():  # a non-trivial transform
        torch.nn.init.normal_(p, std=0.3)
    c = torch.full((1, 1), 0.7)
    g = torch.linspace(-12, 12, 401)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        dens = flow.log_prob(pts, c.expand(len(pts), 1)).exp()
    integral = float(dens.sum()) * float(g[1] - g[0]) ** 2
    assert math.isclose(integral, 1.0, abs_tol=0.02)
    # sampling inverts the density transform: samples have the density's mean
    torch.manual_seed(0)
    s = flow.sample(c.expand(20000, 1))
    mean_grid = (pts * dens[:, None]).sum(0) / dens.sum()
    torch.testing.assert_close(s.mean(0), mean_grid, atol=0.05, rtol=0.05)


def test_build_rejects_unknown_architecture():
    try:
        nets.build("transformer", {})
    except KeyError as err:
        assert "transformer" in str(err)
    else:
        raise AssertionError("no error")
