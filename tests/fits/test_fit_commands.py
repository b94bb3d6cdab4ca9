from __future__ import annotations

import json
import pickle

import hist
import numpy as np

from adcoffea.cli import main
from adcoffea.fits.functions import expected_counts
from adcoffea.fits.signal import gaussian_signal

EDGES = np.linspace(2700.0, 6000.0, 23)


def _histfile(tmp_path):
    rng = np.random.default_rng(12)
    h = hist.Hist(
        hist.axis.StrCategory(["data", "wprime"], name="dataset"),
        hist.axis.StrCategory(["inclusive", "high_score"], name="region"),
        hist.axis.Variable(EDGES, name="mjj", label="mjj"),
        storage=hist.storage.Weight(),
    )
    b = expected_counts(EDGES, [4.0e5, 7.80, 5.26, 1.13])
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    h.fill(dataset="data", region="inclusive", mjj=np.repeat(centres, rng.poisson(b)))
    s = 300.0 * gaussian_signal(EDGES, 3500.0, rel_width=0.05)
    h.view()[1, 0, :] = np.stack([s, s * 0.01], axis=-1).view(h.view().dtype).ravel()
    path = tmp_path / "hists.pkl"
    path.write_bytes(pickle.dumps({"mjj": h}))
    return path


def test_fit_and_limits_commands(tmp_path, capsys):
    path = _histfile(tmp_path)
    out = tmp_path / "fit"
    rc = main(
        [
            "fit",
            str(path),
            "--dataset",
            "data",
            "--region",
            "inclusive",
            "--n-params",
            "2",
            "3",
            "4",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    doc = json.loads((out / "fit.json").read_text())
    # 4e5 events: the 2-parameter function is rejected, the LHCO shape needs p3
    table = doc["order_selection"]["table"]
    assert table[1]["pvalue"] < 0.05
    assert doc["order_selection"]["chosen"] in (3, 4)
    assert (out / "fit_best.png").stat().st_size > 1000
    p = doc["fits"]["4"]["parameters"]
    assert abs(p["p1"] - 7.80) < 3 * doc["fits"]["4"]["errors"]["p1"]

    lim = tmp_path / "lim"
    rc = main(
        [
            "limits",
            str(path),
            "--region",
            "inclusive",
            "--signal-dataset",
            "wprime",
            "--signal-mass",
            "3500",
            "--masses",
            "3500",
            "--n-params",
            "3",
            "--luminosity",
            "20",
            "--cross-section",
            "0.05",
            "--out",
            str(lim),
        ]
    )
    assert rc == 0
    res = json.loads((lim / "limits.json").read_text())["limits"]
    assert len(res["observed_mu"]) == 1
    assert (lim / "brazil.png").exists() and (lim / "workspace_3500.json").exists()
    # in fb: signal events / luminosity, and mu x the mu = 1 cross section (0.05 pb = 50 fb)
    n_sig = res["signal_yield_mu1"][0]
    assert abs(n_sig - 300.0) < 1.0  # the template's sum of weights
    np.testing.assert_allclose(
        res["observed_visible_cross_section_fb"], [res["observed_events"][0] / 20]
    )
    np.testing.assert_allclose(
        res["expected_cross_section_fb"][0], np.array(res["expected_mu"][0]) * 50
    )
    assert (lim / "brazil_cross_section.png").exists()
    assert "sigma x B <" in capsys.readouterr().out
    bad = ["limits", str(path), "--masses", "3500", "--luminosity", "-1", "--out", str(lim)]
    assert main(bad) == 2
    assert "--luminosity must be a positive number" in capsys.readouterr().err
    # user errors are reported without a traceback
    assert main(["fit", str(tmp_path / "missing.pkl")]) == 2
    assert "not found" in capsys.readouterr().err
