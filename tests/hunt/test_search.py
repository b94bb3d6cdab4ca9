"""The hunt on feature-level LHCO-like events: a signal of unknown mass, and background only.

The signal mass is drawn from the test seed between two window centres (never on one), with
random X and Y masses; the tool is given mjj, the four features and event numbers only.
"""

import json

import numpy as np
import pytest

from adcoffea.config import FitConfig, HuntConfig
from adcoffea.hunt.result import HuntResult
from adcoffea.hunt.search import run_hunt
from adcoffea.hunt.toydata import qcd, sample
from adcoffea.hunt.windows import make_windows

EDGES = np.arange(1500.0, 8001.0, 100.0)
FIT = FitConfig(n_params=[3, 4, 5], range=(2800.0, 6500.0))
CFG = HuntConfig(
    range=(3000.0, 5200.0), n_toys=200, classifier={"k_folds": 3, "members": 1, "seed": 4}
)
N_QCD = 60_000


def _random_mass(rng) -> float:
    centres = [w.centre for w in make_windows(EDGES, CFG, FIT.range)]
    i = int(rng.integers(0, len(centres) - 1))
    return float(centres[i] + rng.uniform(0.25, 0.75) * (centres[i + 1] - centres[i]))


@pytest.mark.parametrize("seed", [11])
def test_signal_of_unknown_mass_is_found(seed):
    rng = np.random.default_rng(seed)
    m_sig = _random_mass(rng)
    m_x, m_y = float(rng.uniform(250.0, 700.0)), float(rng.uniform(60.0, 220.0))
    # S/B ~ 4 % in an SR around the mass (at 60k events; the full-size runs use 0.6 %)
    m_bkg, _ = qcd(np.random.default_rng(seed + 1), N_QCD, m_min=2500.0)
    in_sr = np.abs(m_bkg / m_sig - 1.0) < 0.055
    n_sig = int(0.04 * in_sr.sum() / 0.7)
    mjj, x, event, _truth = sample(rng, N_QCD, n_sig=n_sig, m_sig=m_sig, m_x=m_x, m_y=m_y)
    res = run_hunt(mjj, x, event, edges=EDGES, config=CFG, fit=FIT)
    best = res.best.window
    msg = (m_sig, m_x, m_y, n_sig, best.signal_region, res.best_local_z)
    assert best.sr_lo <= m_sig <= best.sr_hi, msg
    assert res.best_local_z > 3.0, msg
    assert res.best.auc > 0.505, msg  # 4 % signal in the SR: the AUC stays near 0.5
    assert res.global_significance is not None and res.global_z > 2.0, msg
    # results.json part: plain JSON and read back unchanged
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert HuntResult.from_dict(d) == res


@pytest.mark.parametrize("seed", [21, 22])
def test_background_only_makes_no_discovery(seed):
    rng = np.random.default_rng(seed)
    mjj, x, event, _ = sample(rng, N_QCD)
    res = run_hunt(mjj, x, event, edges=EDGES, config=CFG.model_copy(update={"seed": seed}),
                   fit=FIT)  # fmt: skip
    assert res.global_z < 3.0, (res.best.window.signal_region, res.best_local_z, res.global_z)
    aucs = np.array([w.auc for w in res.windows])
    assert np.all(np.abs(aucs - 0.5) < 0.03), aucs  # nothing to learn


CATHODE = HuntConfig.model_validate(
    {
        **CFG.model_dump(),
        "method": "cathode",
        "range": (3100.0, 4100.0),
        "cathode": {
            "background_model": "maf",
            "options": {"epochs": 8, "n_models": 1},
            "oversample": 2,
        },
    }
)


@pytest.mark.parametrize("seed", [12])
def test_cathode_hunt_finds_a_signal_of_unknown_mass(seed):
    """CATHODE in every window: the signal is found, each window's background closes."""
    rng = np.random.default_rng(seed)
    centres = [w.centre for w in make_windows(EDGES, CATHODE, FIT.range)]
    i = int(rng.integers(0, len(centres) - 1))
    m_sig = float(centres[i] + rng.uniform(0.25, 0.75) * (centres[i + 1] - centres[i]))
    m_x, m_y = float(rng.uniform(250.0, 700.0)), float(rng.uniform(60.0, 220.0))
    m_bkg, _ = qcd(np.random.default_rng(seed + 1), N_QCD, m_min=2500.0)
    n_sig = int(0.04 * (np.abs(m_bkg / m_sig - 1.0) < 0.055).sum() / 0.7)
    mjj, x, event, _truth = sample(rng, N_QCD, n_sig=n_sig, m_sig=m_sig, m_x=m_x, m_y=m_y)
    res = run_hunt(mjj, x, event, edges=EDGES, config=CATHODE, fit=FIT)
    best = res.best.window
    msg = (m_sig, m_x, m_y, n_sig, best.signal_region, res.best_local_z)
    assert res.method == "cathode"
    assert best.sr_lo <= m_sig <= best.sr_hi, msg
    assert res.best_local_z > 3.0, msg
    closure = np.array([w.closure_auc for w in res.windows], dtype=float)
    assert np.all(np.abs(closure - 0.5) < 0.05), closure  # samples pass for sideband data
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert all("closure_auc" in w for w in d["windows"])
    assert HuntResult.from_dict(d) == res


def test_cathode_bad_density_option_names_the_key():
    from adcoffea.errors import ConfigError

    mjj, x, event, _ = sample(np.random.default_rng(0), 20_000)
    bad = HuntConfig.model_validate(
        {**CATHODE.model_dump(), "cathode": {"options": {"epochz": 3}}, "n_toys": 0}
    )
    with pytest.raises(ConfigError, match=r"hunt\.cathode\.options.*epochz"):
        run_hunt(mjj, x, event, edges=EDGES, config=bad, fit=FIT)
