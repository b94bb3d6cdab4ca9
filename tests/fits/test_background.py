from __future__ import annotations

import pickle
import subprocess
import sys

import hist
import numpy as np
import pytest

from adcoffea.errors import ConfigError, InputFileError
from adcoffea.fits.background import PoissonModel, fit_background, load_histogram
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.poisson import deviance, poisson_nll

EDGES = np.linspace(2700.0, 7000.0, 44)
TRUTH = np.array([5.0e4, 7.80, 5.26, 1.13])  # LHCO QCD mjj shape


def test_asimov_fit_returns_truth_and_correct_errors():
    nu = expected_counts(EDGES, TRUTH)
    res = fit_background(nu, edges=EDGES, n_params=4)
    assert res.converged
    assert np.all(np.abs(res.values - TRUTH) < 2e-3 * res.errors)
    assert res.deviance == pytest.approx(0.0, abs=1e-6)
    # errors = inverse Fisher information J^T diag(1/nu) J at the truth
    model = PoissonModel(EDGES, nu, n_params=4)
    q, dq = model.integ.shape(TRUTH[1:])
    jac = np.column_stack([q, TRUTH[0] * dq])
    fisher = jac.T @ (jac / nu[:, None])
    np.testing.assert_allclose(res.errors, np.sqrt(np.diag(np.linalg.inv(fisher))), rtol=2e-3)


def test_nll_gradient_and_deviance_consistency():
    rng = np.random.default_rng(5)
    n = rng.poisson(expected_counts(EDGES, TRUTH)).astype(float)
    model = PoissonModel(EDGES, n, n_params=4, signal=np.linspace(0, 0.05, len(n)))
    p = np.array([4.9e4, 7.5, 5.4, 1.1, 30.0])
    g = model.grad(p)
    for k, h in enumerate([1.0, 1e-5, 1e-5, 1e-6, 1e-3]):
        e = np.zeros_like(p)
        e[k] = h
        assert g[k] == pytest.approx((model.nll(p + e) - model.nll(p - e)) / (2 * h), rel=1e-4)
    nu = model.expected(p)
    assert model.nll(p) == pytest.approx(poisson_nll(n, nu), rel=1e-12)
    assert deviance(n, nu) == pytest.approx(2 * (poisson_nll(n, nu) - poisson_nll(n, n)), rel=1e-9)


def test_closure_pulls_over_toys():
    nu = expected_counts(EDGES, TRUTH)
    rng = np.random.default_rng(2024)
    pulls, chi2p = [], []
    for toy in rng.poisson(nu, size=(150, len(nu))):
        res = fit_background(toy.astype(float), edges=EDGES, n_params=4)
        assert res.converged
        pulls.append((res.values - TRUTH) / res.errors)
        chi2p.append(res.pvalue)
    pulls = np.array(pulls)
    # 150 toys: the mean is known to +-0.08, the width to +-0.06 (1 sigma)
    assert np.all(np.abs(pulls.mean(axis=0)) < 0.3), pulls.mean(axis=0)
    assert np.all(np.abs(pulls.std(axis=0, ddof=1) - 1) < 0.2), pulls.std(axis=0)
    # goodness-of-fit p-values are roughly uniform
    assert 0.35 < np.mean(chi2p) < 0.65


def test_hist_input_range_and_loading(tmp_path):
    rng = np.random.default_rng(3)
    nu = expected_counts(EDGES, TRUTH)
    h = hist.Hist(
        hist.axis.StrCategory(["data", "qcd"], name="dataset"),
        hist.axis.StrCategory(["inclusive"], name="region"),
        hist.axis.Variable(EDGES, name="mjj"),
    )
    h.view()[0, 0, :] = rng.poisson(nu)
    path = tmp_path / "h.pkl"
    path.write_bytes(pickle.dumps({"mjj": h}))
    h1 = load_histogram(str(path), name="mjj", selections={"dataset": "data"})
    assert h1.values().sum() == h.values()[0, 0].sum()
    res = fit_background(h1, n_params=4, fit_range=(3000.0, 6000.0))
    assert res.edges[0] == pytest.approx(3000.0) and res.edges[-1] == pytest.approx(6000.0)
    assert res.values[0] == pytest.approx(res.counts.sum(), rel=1e-4)  # extended-ML yield
    with pytest.raises(InputFileError, match="choose --dataset"):
        load_histogram(str(path), name="mjj")
    with pytest.raises(InputFileError, match="no histogram 'mt'"):
        load_histogram(str(path), name="mt", selections={"dataset": "data"})


def test_root_file_input(tmp_path):
    import uproot

    h = hist.Hist(hist.axis.Variable(EDGES, name="mjj"))
    h.view()[:] = np.random.default_rng(6).poisson(expected_counts(EDGES, TRUTH))
    path = tmp_path / "h.root"
    with uproot.recreate(path) as f:
        f["mjj"] = h
    h1 = load_histogram(str(path), name="mjj")
    np.testing.assert_array_equal(h1.values(), h.values())
    np.testing.assert_allclose(h1.axes[0].edges, EDGES)
    res = fit_background(h1, n_params=4)
    assert res.converged and res.pvalue > 0.001


def test_background_module_does_not_import_tensorflow():
    code = (
        "import sys, adcoffea.fits.background, adcoffea.fits.order, adcoffea.fits.poisson, "
        "adcoffea.fits.injection, adcoffea.fits.workspace, adcoffea.cli.fit, "
        "adcoffea.cli.limits, adcoffea.cli.bumphunt;"
        "bad = [m for m in ('tensorflow', 'zfit') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.zfit
@pytest.mark.parametrize(
    ("edges", "total", "n_params"),
    [
        (EDGES, 5.0e4, 4),
        # a 65-bin spectrum where zfit's old tolerance (1e-6) stopped 5e-7 above the minimum
        (np.linspace(1500.0, 8000.0, 66), 2.0e5, 3),
    ],
)
def test_zfit_and_iminuit_agree(edges, total, n_params):
    rng = np.random.default_rng(101)
    n = rng.poisson(expected_counts(edges, [total, *TRUTH[1:]])).astype(float)
    ref = fit_background(n, edges=edges, n_params=n_params)
    zf = fit_background(n, edges=edges, n_params=n_params, backend="zfit")
    assert zf.converged and zf.backend == "zfit"
    # the agreement stated in adcoffea.fits.zfit_backend
    assert np.all(np.abs(zf.values - ref.values) < 1e-4 * ref.errors), (zf.values, ref.values)
    assert zf.nll == pytest.approx(ref.nll, abs=1e-8)
    np.testing.assert_allclose(zf.errors, ref.errors, rtol=0.01)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "truth"),
    [
        ("dijet", [5.0e4, 7.80, 5.26, 1.13]),
        ("expo", [5.0e4, 20.0, 5.0, 0.3]),
        ("power", [5.0e4, 5.0, 10.0, 5.0]),
    ],
)
def test_closure_pulls_over_many_toys_all_families(function, truth):
    truth = np.asarray(truth)
    nu = expected_counts(EDGES, truth, function=function)
    rng = np.random.default_rng(99)
    pulls = []
    for toy in rng.poisson(nu, size=(1000, len(nu))):
        res = fit_background(toy.astype(float), edges=EDGES, n_params=4, function=function)
        assert res.converged
        pulls.append((res.values - truth) / res.errors)
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls.mean(axis=0)) < 0.12), pulls.mean(axis=0)
    assert np.all(np.abs(pulls.std(axis=0, ddof=1) - 1) < 0.08), pulls.std(axis=0)


@pytest.mark.slow
@pytest.mark.zfit
@pytest.mark.parametrize(
    ("function", "n_params"), [("dijet", 3), ("dijet", 5), ("expo", 4), ("power", 3)]
)
def test_zfit_and_iminuit_agree_other_models(function, n_params):
    n = np.random.default_rng(8).poisson(expected_counts(EDGES, TRUTH)).astype(float)
    ref = fit_background(n, edges=EDGES, n_params=n_params, function=function)
    zf = fit_background(n, edges=EDGES, n_params=n_params, function=function, backend="zfit")
    close = np.abs(zf.values - ref.values) <= np.maximum(
        1e-3 * np.abs(ref.values), 0.05 * ref.errors
    )
    assert np.all(close), (zf.values, ref.values)
    assert zf.nll == pytest.approx(ref.nll, abs=1e-4)


def test_excluded_window_interpolates_background_under_a_signal():
    """A fit with the signal window excluded predicts the background there (ATLAS/CWoLa)."""
    nu = expected_counts(EDGES, TRUTH)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    sig = 800.0 * np.exp(-0.5 * ((centres - 3500.0) / 150.0) ** 2)
    rng = np.random.default_rng(31)
    window = (3200.0, 3800.0)
    inside = (EDGES[1:] > window[0]) & (EDGES[:-1] < window[1])
    excess_full, excess_excl = [], []
    for toy in rng.poisson(nu + sig, size=(40, len(nu))).astype(float):
        full = fit_background(toy, edges=EDGES, n_params=4)
        excl = fit_background(toy, edges=EDGES, n_params=4, exclude=window)
        assert excl.extra["exclude"] == list(window)
        assert excl.extra["excluded_bins"] == int(inside.sum())
        excess_full.append((toy - full.background)[inside].sum())
        excess_excl.append((toy - excl.background)[inside].sum())
    true_excess = sig[inside].sum()
    # the full-range fit absorbs a large part of the signal; the excluded-window fit does not
    assert np.mean(excess_full) < 0.75 * true_excess
    assert np.mean(excess_excl) == pytest.approx(true_excess, rel=0.15)
    # excluding bins of a signal-free toy changes nothing beyond statistics
    toy = rng.poisson(nu).astype(float)
    a = fit_background(toy, edges=EDGES, n_params=4)
    b = fit_background(toy, edges=EDGES, n_params=4, exclude=window)
    assert np.all(np.abs(a.values[1:] - b.values[1:]) < 1.5 * b.errors[1:])
    assert b.ndf < a.ndf


@pytest.mark.parametrize("value", [np.nan, np.inf, -3.0])
def test_invalid_counts_are_refused_with_the_bin(value):
    counts = expected_counts(EDGES, TRUTH)
    counts[5] = value
    with pytest.raises(ConfigError, match=rf"\[{EDGES[5]:g}, {EDGES[6]:g}\]"):
        fit_background(counts, edges=EDGES, n_params=4)
