from __future__ import annotations

import json

import numpy as np
import pyhf
import pytest
from scipy import optimize, stats

from adcoffea.errors import ConfigError
from adcoffea.fits.background import fit_background
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.signal import gaussian_signal
from adcoffea.fits.workspace import (
    build_workspace,
    discovery_p0,
    fit_variations,
    limit_scan,
    upper_limit,
)

EDGES = np.linspace(2700.0, 6000.0, 34)


def _q(mu, n, s, b):
    """q~mu of a single Poisson bin with known background."""
    nu, muhat = mu * s + b, (n - b) / s
    if muhat > mu:
        return 0.0
    if muhat < 0:
        return 2 * (nu - b - n * np.log(nu / b))
    return 2 * (nu - n + n * np.log(n / nu))


def _cls(mu, n, s, b):
    """Asymptotic CLs (Cowan et al. 2011, q~mu) in closed form."""
    qa, qt = _q(mu, b, s, b), _q(mu, n, s, b)
    if qt <= qa:
        clsb, clb = stats.norm.sf(np.sqrt(qt)), stats.norm.cdf(np.sqrt(qa) - np.sqrt(qt))
    else:
        sa = 2 * np.sqrt(qa)
        clsb, clb = stats.norm.sf((qt + qa) / sa), stats.norm.sf((qt - qa) / sa)
    return clsb / clb


@pytest.mark.parametrize(
    ("n", "b", "s"), [(52.0, 50.0, 10.0), (3.0, 4.2, 1.5), (130.0, 100.0, 7.0)]
)
def test_single_bin_counting_limit_matches_closed_form(n, b, s):
    lim = upper_limit(build_workspace([n], [b], [s]))
    obs = optimize.brentq(lambda m: _cls(m, n, s, b) - 0.05, 1e-4, 1e3, xtol=1e-12)
    assert lim.observed == pytest.approx(obs, rel=1e-3)
    # median expected: sqrt(q_mu,A) = Phi^-1(1 - 0.05/2) with q_mu,A = 2[mu s - b ln(1 + mu s/b)]
    z = stats.norm.isf(0.025)
    med = optimize.brentq(lambda m: 2 * (m * s - b * np.log1p(m * s / b)) - z**2, 1e-4, 1e3)
    assert lim.expected_median == pytest.approx(med, rel=1e-3)
    assert lim.expected[0] < lim.expected[1] < lim.expected[2] < lim.expected[3] < lim.expected[4]


def test_single_bin_discovery_p0_matches_closed_form():
    n, b, s = 70.0, 50.0, 10.0
    d = discovery_p0(build_workspace([n], [b], [s]))
    assert d.significance == pytest.approx(np.sqrt(2 * (n * np.log(n / b) - (n - b))), rel=1e-3)
    z_exp = np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))  # Asimov median expected
    assert d.expected_significance == pytest.approx(z_exp, rel=1e-3)


def test_workspace_from_fit_matches_hand_built_pyhf_model():
    rng = np.random.default_rng(4)
    nu = expected_counts(EDGES, [2e4, 7.80, 5.26, 1.13])
    data = rng.poisson(nu).astype(float)
    fit = fit_background(data, edges=EDGES, n_params=3)
    sig = 60.0 * gaussian_signal(EDGES, 3500.0, rel_width=0.05)
    assert fit.converged
    ws = build_workspace(data, fit, sig)
    json.dumps(ws)  # plain JSON
    pyhf.schema.validate(ws, "workspace.json")
    var = fit_variations(fit)
    assert len(var) == 3
    # the eigen-variations reproduce the fit's propagated background variance
    # half-differences cancel the curvature of the function in the parameters
    q = np.array([0.5 * (up - dn) for up, dn in var.values()])
    from adcoffea.fits.background import PoissonModel

    model = PoissonModel(EDGES, data, n_params=3)
    jac = np.empty((len(data), 3))
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1e-6 * max(abs(fit.values[k]), 1)
        jac[:, k] = (model.background(fit.values + e) - model.background(fit.values - e)) / (
            2 * e[k]
        )
    var_lin = np.einsum("ik,kl,il->i", jac, fit.covariance, jac)
    np.testing.assert_allclose((q**2).sum(axis=0), var_lin, rtol=0.03)
    hand = {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "signal",
                        "data": sig.tolist(),
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "background",
                        "data": fit.background.tolist(),
                        "modifiers": [
                            {
                                "name": f"eig{i}",
                                "type": "histosys",
                                "data": {"hi_data": up.tolist(), "lo_data": dn.tolist()},
                            }
                            for i, (up, dn) in enumerate(var.values())
                        ],
                    },
                ],
            }
        ]
    }
    pyhf.set_backend("numpy")
    hm = pyhf.Model(hand, poi_name="mu")
    hdata = data.tolist() + hm.config.auxdata
    from pyhf.infer.intervals.upper_limits import toms748_scan

    # (CLs is 0/0 near mu = 0, so the bracket starts at a mu the data can feel)
    hobs, hexp = toms748_scan(hdata, hm, 0.05, 10.0, level=0.05, rtol=1e-5)
    ours = upper_limit(ws)
    assert ours.observed == pytest.approx(float(hobs), rel=1e-4)
    np.testing.assert_allclose(ours.expected, np.asarray(hexp, dtype=float), rtol=1e-4)
    # injecting a signal at the limit-setting mass raises the observed limit
    inj = build_workspace(data + 3 * sig, fit.background, sig, bkg_variations=var)
    assert upper_limit(inj).observed > ours.observed + 1.5


def test_shapefactor_control_region_approaches_known_background():
    # few bins: every bin adds a free shapefactor parameter to pyhf's (slow) profile fits
    edges = np.linspace(3000.0, 4200.0, 5)
    b = expected_counts(edges, [2e3, 7.80, 5.26, 1.13])
    sig = 20.0 * gaussian_signal(edges, 3500.0, rel_width=0.05)
    data = np.round(b)
    known = upper_limit(build_workspace(data, b, sig))
    tf = 0.002  # e.g. the efficiency of a tight anomaly-score cut
    cr = np.round(b / tf)
    ws = build_workspace(data, None, sig, control={"data": cr, "transfer": tf})
    assert [c["name"] for c in ws["channels"]] == ["SR", "SR_CR"]
    dd = upper_limit(ws)
    # the CR is 500x larger: the data-driven limit is barely weaker than the known-b one
    assert known.observed <= dd.observed * 1.001
    assert dd.observed == pytest.approx(known.observed, rel=0.05)
    # with a small CR the data-driven limit degrades noticeably
    small = build_workspace(data, None, sig, control={"data": np.round(b * 2), "transfer": 0.5})
    assert upper_limit(small).observed > dd.observed * 1.05


def test_limit_scan_and_brazil_plot(tmp_path):
    b = expected_counts(EDGES, [2e4, 7.80, 5.26, 1.13])
    data = np.random.default_rng(8).poisson(b).astype(float)
    scan = limit_scan(
        [3000.0, 4000.0, 5000.0],
        data=data,
        background=b,
        signal_for_mass=lambda m: 100 * gaussian_signal(EDGES, m, rel_width=0.1),
    )
    # background falls with mass: limits on mu improve
    assert scan.expected[0, 2] > scan.expected[1, 2] > scan.expected[2, 2]
    d = scan.to_dict()
    assert len(d["expected_events"]) == 3 and len(d["expected_events"][0]) == 5
    scan.brazil_plot(str(tmp_path / "brazil.png"))
    assert (tmp_path / "brazil.png").stat().st_size > 1000


def test_invalid_workspace_inputs():
    with pytest.raises(ConfigError, match="bins"):
        build_workspace([1.0, 2.0], [1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="positive"):
        build_workspace([1.0, 2.0], [1.0, 0.0], [1.0, 1.0])


@pytest.mark.slow
def test_toy_limits_close_to_asymptotic_at_moderate_counts():
    ws = build_workspace([52.0], [50.0], [10.0])
    toys = upper_limit(ws, calctype="toybased", ntoys=300, seed=1)
    asym = upper_limit(ws)
    assert toys.observed == pytest.approx(asym.observed, rel=0.15)
    assert toys.expected_median == pytest.approx(asym.expected_median, rel=0.15)
    assert upper_limit(ws, calctype="toybased", ntoys=300, seed=1) == toys  # seeded


def test_limit_that_cannot_be_bracketed_is_an_error_not_a_hang():
    """CLs above 0.05 up to pyhf's mu bound: a clear error (pyhf's own scan never returns)."""
    from adcoffea.errors import AdcoffeaError

    # 1e-4 signal events per unit mu on 1000 background events: mu = 100 is still allowed
    ws = build_workspace(np.array([1000.0]), np.array([1000.0]), np.array([1e-4]))
    with pytest.raises(AdcoffeaError, match="mu bound"):
        upper_limit(ws)
