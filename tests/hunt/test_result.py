"""HuntResult: JSON round trip and the figures drawn from it."""

import json

import numpy as np
import pytest

from adcoffea.hunt.plots import plot_best_window, plot_local_z, plot_t_distribution
from adcoffea.hunt.result import HuntResult, example_dict


def test_to_dict_round_trip_through_json():
    r = HuntResult.from_dict(example_dict())
    text = json.dumps(r.to_dict(), allow_nan=False)
    back = HuntResult.from_dict(json.loads(text))
    assert back == r
    assert back.best_local_z == 1.5 and back.global_z == pytest.approx(0.25)
    assert back.best.efficiencies[0].estimate.sigma == pytest.approx(np.hypot(1.8, 0.87))


def test_missing_estimate_is_json_null():
    d = example_dict()
    cell = d["windows"][0]["efficiencies"][0]
    cell.update(background=None, sigma_stat=None, sigma_function=None, sigma_background=None,
                chi2=None, fit_pvalue=None, note="fewer than 10 selected events")  # fmt: skip
    r = HuntResult.from_dict(d)
    assert np.isnan(r.best.efficiencies[0].estimate.background)
    assert (
        json.loads(json.dumps(r.to_dict(), allow_nan=False))["windows"][0]["efficiencies"][0][
            "background"
        ]
        is None
    )


def test_figures(tmp_path):
    r = HuntResult.from_dict(example_dict())
    for fig in (plot_local_z(r), plot_best_window(r), plot_t_distribution(r, np.ones(5))):
        path = tmp_path / "f.png"
        fig.savefig(path)
        assert path.stat().st_size > 1000


def test_report_blocks_write_nulls_as_dashes():
    """NaN / inf numbers are null in results.json; the report must not fail on them."""
    from adcoffea.hunt.stage import report_blocks

    d = example_dict()
    d["best"].update(sigma_background=None, fit_pvalue=None, background_model_adequate=False)
    d["global"].update(z=None)
    d["windows"][0]["auc"] = None
    d["windows"][0]["efficiencies"][0].update(sigma_background=None, local_z=None)
    blocks = report_blocks(d)
    text = blocks[1][1]
    assert "B = 12.0 ± –" in text and "chi2 p = –" in text and "Z = –" in text
    _, rows = dict(blocks)["table"]
    assert rows[0][1] == "–" and rows[0][2] == "–" and rows[0][3] == "18 vs 12.0 ± –"
    # the untouched example formats every number
    assert "–" not in report_blocks(example_dict())[1][1]
