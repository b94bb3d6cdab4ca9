"""Event kinematics of the generator (targets, before constituents): QCD smoothness."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.fits.order import select_order
from adcoffea.synthetic.processes import PT_LEAD_MIN, resolve_params, sample_events


def _dijet(ev: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mjj, passes the two-jet selection of configs/lhco_dijet.yaml) of the hard-jet targets."""
    pt, eta, phi, m = (ev[k][:, :2] for k in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)
    m2 = e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2
    both = (pt > PT_LEAD_MIN).all(1) & (np.abs(eta) < 2.5).all(1)
    return np.sqrt(np.maximum(m2, 0.0)), both


@pytest.fixture(scope="module")
def qcd() -> tuple[np.ndarray, np.ndarray]:
    p = resolve_params("qcd", None)
    parts = [
        _dijet(sample_events("qcd", np.random.default_rng([1, j]), 50_000, p)) for j in range(4)
    ]
    return np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts])


def test_subleading_jet_cut_keeps_a_smooth_efficiency(qcd):
    """The LHCO preselection cuts only the leading jet; the searches cut both jets.

    The second cut must remove a smooth, slowly varying fraction: an edge in the generated
    y* made its efficiency climb from ~0.3 at 3 TeV to 1 at 5 TeV and then stay flat, a kink
    in the selected mjj that no dijet function fits (issue 11).
    """
    mjj, both = qcd

    def eff(lo, hi):
        sel = (mjj > lo) & (mjj < hi)
        return both[sel].mean()

    low, mid, high = eff(3100, 3500), eff(4300, 4900), eff(5500, 7000)
    print(f"two-jet efficiency: {low:.3f} (3.1-3.5 TeV), {mid:.3f}, {high:.3f} (5.5-7 TeV)")
    assert low / high > 0.8
    # saturating, not a ramp ending in a plateau: the rise slows down with mass
    assert (mid - low) / 1.3 > (high - mid) / 1.65 > -0.02


def test_selected_qcd_mjj_is_a_dijet_function(qcd):
    mjj, both = qcd
    edges = np.arange(1500.0, 8001.0, 100.0)
    counts, _ = np.histogram(mjj[both], edges)
    order = select_order(counts, edges=edges, n_params=(3, 4, 5), fit_range=(3100.0, 7000.0))
    assert order.best.pvalue > 0.01, order.to_dict()
