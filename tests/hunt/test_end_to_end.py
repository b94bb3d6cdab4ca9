"""The hunt through ``adcoffea run`` on generated NanoAOD, at reduced size.

The W' mass is drawn from the test seed between two window centres of the scanned range
(never on a centre), with random X and Y masses; the config is the default one
(``configs/lhco_dijet.yaml``) with fewer events, fewer windows and fewer pseudo-experiments.
The tool sees the data datasets only.

* with the signal, the best window contains the peak and has local Z > 3;
* on background only, at several QCD seeds, no global Z > 3.

The QCD samples are generated once per session (``hunt_samples`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcoffea.config import load_config, replace_model
from adcoffea.hunt.windows import axis_edges, make_windows
from adcoffea.pipeline import run

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lhco_dijet.yaml"
QCD_EVENTS = 100_000
#: reduced scan (fewer windows to train) and pseudo-experiments
SCAN = (3200.0, 5000.0)
N_TOYS = 300
#: injected W' per selected QCD event in its SR at this size (the default run: ~0.6 %)
S_OVER_B = 0.06


@pytest.fixture(scope="session")
def hunt_samples(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hunt_samples")


def reduced(out: Path, data_dir: Path, *, qcd_seed: int, signal: dict | None, n_signal: int = 0):
    cfg = load_config(CONFIG)
    samples = [
        {"name": f"qcd_s{qcd_seed}", "process": "qcd", "events": QCD_EVENTS, "files": 1,
         "seed": qcd_seed},
    ]  # fmt: skip
    data = [f"qcd_s{qcd_seed}"]
    if signal is not None:
        samples.append({"name": "wprime_injected", "process": "wprime", "events": n_signal,
                        "seed": 7, "params": signal})  # fmt: skip
        data.append("wprime_injected")
    datasets = {"synthetic": {"directory": str(data_dir), "samples": samples}, "data": data}
    hunt = replace_model(cfg.hunt, range=SCAN, n_toys=N_TOYS)
    return replace_model(
        cfg, datasets=datasets, output=out, models=[], model=None, regions=[{"name": "inclusive"}],
        executor=replace_model(cfg.executor, name="iterative"), hunt=hunt, bumphunt=None,
        limits=None,
    )  # fmt: skip


def _signal_point(seed: int, cfg) -> tuple[dict, float]:
    rng = np.random.default_rng(seed)
    hunt = replace_model(cfg.hunt, range=SCAN)
    centres = [w.centre for w in make_windows(axis_edges(cfg, "mjj"), hunt, cfg.hunt_fit_range)]
    i = int(rng.integers(0, len(centres) - 1))
    m = float(centres[i] + rng.uniform(0.25, 0.75) * (centres[i + 1] - centres[i]))
    return {"m_wprime": m, "m_x": float(rng.uniform(250.0, 650.0)),
            "m_y": float(rng.uniform(60.0, 200.0))}, m  # fmt: skip


@pytest.mark.parametrize("seed", [3])
def test_hunt_finds_a_resonance_of_unknown_mass(seed, tmp_path, hunt_samples):
    base = reduced(tmp_path / "bkg", hunt_samples, qcd_seed=1, signal=None)
    params, m_sig = _signal_point(seed, base)
    # the number injected: S/B in an SR around the mass, from the QCD spectrum (test set-up only)
    bkg = run(replace_model(base, hunt=None, fit=None), statistics=False)
    h = bkg.hists["mjj"][{"dataset": "qcd_s1", "region": "inclusive"}]
    centres = h.axes[0].centers
    b_sr = float(h.values()[np.abs(centres / m_sig - 1.0) < 0.055].sum())
    n_signal = round(S_OVER_B * b_sr / 0.7)
    cfg = reduced(tmp_path / "out", hunt_samples, qcd_seed=1, signal=params, n_signal=n_signal)
    hunt = run(cfg).results["hunt"]
    best = hunt["best"]
    msg = (params, n_signal, best)
    assert best["signal_region"][0] <= m_sig <= best["signal_region"][1], msg
    assert best["local_z"] > 3.0, msg
    assert (tmp_path / "out" / "plots" / "hunt_local_z.png").exists()
    assert "Hunt" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("qcd_seed", [1, 2])
def test_hunt_background_only_no_discovery(qcd_seed, tmp_path, hunt_samples):
    cfg = reduced(tmp_path / "out", hunt_samples, qcd_seed=qcd_seed, signal=None)
    hunt = run(cfg).results["hunt"]
    assert hunt["global"]["z"] < 3.0, hunt["best"]
