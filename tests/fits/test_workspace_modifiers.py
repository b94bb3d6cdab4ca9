"""Each workspace modifier against a pyhf model written by hand from the HistFactory spec."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest

from adcoffea.errors import ConfigError
from adcoffea.fits.diagnostics import fit_diagnostics
from adcoffea.fits.workspace import build_workspace, combine_workspaces, upper_limit

DATA = [58.0, 71.0, 40.0]
BKG = [50.0, 60.0, 45.0]
SIG = [4.0, 12.0, 3.0]
SIG_ERR = [0.8, 1.5, 0.0]  # the last bin: no staterror parameter (pyhf fixes its gamma)
FF = [5.0, 4.0, 3.0]  # fit-function uncertainty per bin
#: scipy's fits slow down with every staterror gamma (see fits.workspace.optimizer)
OPT = "minuit"


def _hand(signal_mods: list[dict], bkg_mods: list[dict], channel: str = "SR") -> dict:
    """A HistFactory workspace written out by hand (not by build_workspace)."""
    return {
        "channels": [
            {
                "name": channel,
                "samples": [
                    {
                        "name": "signal",
                        "data": SIG,
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            *signal_mods,
                        ],
                    },
                    {"name": "background", "data": BKG, "modifiers": bkg_mods},
                ],
            }
        ],
        "observations": [{"name": channel, "data": DATA}],
        "measurements": [
            {
                "name": "measurement",
                "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[0.0, 100.0]]}]},
            }
        ],
        "version": "1.0.0",
    }


LUMI = {"name": "lumi", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}
STAT = {"name": "staterror_SR", "type": "staterror", "data": SIG_ERR}
FIT_FUNCTION = {
    "name": "fit_function_SR",
    "type": "histosys",
    "data": {
        "hi_data": [b + u for b, u in zip(BKG, FF, strict=True)],
        "lo_data": [b - u for b, u in zip(BKG, FF, strict=True)],
    },
}
SIG_UP = [3.0, 12.5, 4.5]  # a shape variation of the signal (e.g. the jet energy scale)
SIG_DOWN = [5.0, 11.5, 1.5]
JES = {"name": "jes", "type": "histosys", "data": {"hi_data": SIG_UP, "lo_data": SIG_DOWN}}
CASES = {
    "lumi": ({"lumi_uncertainty": 0.1}, [LUMI], []),
    "staterror": ({"signal_stat_errors": SIG_ERR}, [STAT], []),
    "fit_function": ({"fit_function_uncertainty": FF}, [], [FIT_FUNCTION]),
    "signal_histosys": ({"signal_variations": {"jes": (SIG_UP, SIG_DOWN)}}, [JES], []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_modifier_matches_the_hand_written_spec(case):
    kwargs, sig_mods, bkg_mods = CASES[case]
    ws = build_workspace(DATA, BKG, SIG, **kwargs)
    hand = _hand(sig_mods, bkg_mods)
    pyhf.schema.validate(hand, "workspace.json")
    ours = pyhf.Workspace(ws).model()
    theirs = pyhf.Workspace(hand).model()
    assert sorted(ours.config.parameters) == sorted(theirs.config.parameters)
    mine, ref = upper_limit(ws, fit_optimizer=OPT), upper_limit(hand, fit_optimizer=OPT)
    assert mine.observed == pytest.approx(ref.observed, rel=1e-3)
    np.testing.assert_allclose(mine.expected, ref.expected, rtol=1e-3)
    # every modifier is an uncertainty: the limit is weaker than without it
    bare = upper_limit(build_workspace(DATA, BKG, SIG))
    assert mine.expected_median > bare.expected_median * 1.001


def test_minuit_and_scipy_limits_agree():
    ws = build_workspace(DATA, BKG, SIG, lumi_uncertainty=0.1, fit_function_uncertainty=FF)
    a, b = upper_limit(ws), upper_limit(ws, fit_optimizer="minuit")
    assert a.observed == pytest.approx(b.observed, rel=1e-3)
    assert pyhf.optimizer.name == "scipy"  # the block restores the optimizer
    with pytest.raises(ConfigError, match="optimizer"):
        upper_limit(ws, fit_optimizer="bfgs")
    with pytest.raises(ConfigError, match="lumi_uncertainty"):
        build_workspace(DATA, BKG, SIG, lumi_uncertainty=1.5)


def test_regions_combine_with_shared_mu_and_lumi():
    # (no staterror: scipy's fits are slow with it, and its per-channel name is checked above)
    opts = {"lumi_uncertainty": 0.1, "fit_function_uncertainty": FF}
    a = build_workspace(DATA, BKG, SIG, channel="A", **opts)
    b = build_workspace(DATA, BKG, SIG, channel="B", **opts)
    combined = combine_workspaces(a, b)
    pars = pyhf.Workspace(combined).model().config.parameters
    assert {"mu", "lumi", "fit_function_A", "fit_function_B"} == set(pars)
    # by hand: the same two channels in one spec
    hand = {"channels": [], "observations": [], "measurements": _hand([], [])["measurements"]}
    hand["version"] = "1.0.0"
    for ch in ("A", "B"):
        ff = {**FIT_FUNCTION, "name": f"fit_function_{ch}"}
        one = _hand([LUMI], [ff], channel=ch)
        hand["channels"] += one["channels"]
        hand["observations"] += one["observations"]
    mine, ref = upper_limit(combined), upper_limit(hand)
    assert mine.observed == pytest.approx(ref.observed, rel=1e-3)
    np.testing.assert_allclose(mine.expected, ref.expected, rtol=1e-3)
    # two identical regions constrain mu more than one
    assert mine.expected_median < upper_limit(a).expected_median
    with pytest.raises(ConfigError, match="appear twice"):
        combine_workspaces(a, a)


def test_diagnostics_pulls_impacts_and_yields():
    # data 10 % above the background in every bin: the fit-function NP is pulled up
    data = [55.0, 66.0, 49.5]
    opts = {"lumi_uncertainty": 0.02, "signal_stat_errors": SIG_ERR, "fit_function_uncertainty": FF}
    ws = build_workspace(data, BKG, SIG, **opts)
    d = fit_diagnostics(ws)
    pulls = {p.name: p for p in d.pulls}
    assert set(pulls) == {"lumi", "fit_function_SR", "staterror_SR[0]", "staterror_SR[1]"}
    assert pulls["fit_function_SR"].pull > 0.1
    assert pulls["staterror_SR[0]"].prefit_value == 1.0
    assert pulls["staterror_SR[0]"].prefit_width == pytest.approx(0.8 / 4.0)
    # the background shape NP is the leading one; raising the background lowers mu
    assert d.ranking(1) == ["fit_function_SR"]
    top = d.impacts[0]
    assert top.postfit_up < 0 < top.postfit_down
    assert d.impacts[-1].size <= top.size
    rows = {(y.channel, y.sample): y for y in d.yields}
    assert rows[("SR", "background")].prefit == pytest.approx(sum(BKG))
    assert rows[("SR", "signal")].prefit == pytest.approx(sum(SIG))
    # pre-fit signal error: staterror (quadrature of bins) and 2 % luminosity
    stat = np.hypot(0.8, 1.5)
    assert rows[("SR", "signal")].prefit_error == pytest.approx(
        np.hypot(stat, 0.02 * sum(SIG)), rel=1e-3
    )
    assert rows[("SR", "total")].postfit == pytest.approx(sum(data), rel=0.02)
    assert d.data == {"SR": sum(data)}
