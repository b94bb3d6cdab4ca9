"""The window rule: overlapping, log-spaced SRs on the histogram binning."""

import itertools

import numpy as np
import pytest

from adcoffea.errors import ConfigError
from adcoffea.hunt.windows import fixed_window, relative_widths, sliding_windows

FIT = (2600.0, 7500.0)


def test_windows_tile_the_range_with_half_overlap(edges):
    ws = sliding_windows(edges, scan_range=(2800.0, 6500.0), fit_range=FIT,
                         relative_width=0.11, overlap=0.5)  # fmt: skip
    assert ws[0].sr_lo == 2800.0
    assert ws[-1].sr_hi <= 6500.0 + 100.0
    # every mass between the first and the last SR centre lies well inside some SR: at least
    # 1/4 of its width from both edges before snapping, at worst 1/6 after snapping 3-bin SRs
    masses = np.linspace(ws[0].centre, ws[-1].centre, 400)
    margin = np.zeros(len(masses))
    for w in ws:
        assert w.sb_lo < w.sr_lo < w.sr_hi < w.sb_hi
        assert w.sr_lo in edges and w.sr_hi in edges and w.sb_lo in edges and w.sb_hi in edges
        inside = np.minimum(masses - w.sr_lo, w.sr_hi - masses) / (w.sr_hi - w.sr_lo)
        margin = np.maximum(margin, inside)
    assert margin.min() >= 1 / 6 - 1e-9, margin.min()
    # consecutive SRs overlap by about half a width (1 to 3 bins of 3-7 at 100 GeV binning)
    for a, b in itertools.pairwise(ws):
        shared = (a.sr_hi - b.sr_lo) / (a.sr_hi - a.sr_lo)
        assert 0.2 <= shared <= 0.7, (a, b)
        assert b.sr_lo > a.sr_lo
    # realised widths close to the nominal 11 % (snapping to 100 GeV bins)
    rel = relative_widths(ws)
    assert np.all(np.abs(rel - 0.11) < 0.03), rel
    assert abs(np.mean(rel) - 0.11) < 0.01


def test_sidebands_one_sr_width_each_side(edges):
    ws = sliding_windows(edges, scan_range=(3300.0, 3700.0), fit_range=FIT,
                         sideband_width=1.0)  # fmt: skip
    w = ws[0]
    assert (w.sr_lo, w.sr_hi) == (3300.0, 3700.0)
    # one SR width on each side in log(mjj): 3300 / 1.116 = 2956 -> 3000, 3700 * 1.116 = 4130
    assert (w.sb_lo, w.sb_hi) == (3000.0, 4100.0)


def test_membership_masks(edges):
    w = fixed_window(edges, signal_region=(3300.0, 3700.0), sidebands=(3100.0, 3900.0),
                     fit_range=FIT)  # fmt: skip
    m = np.array([3099.0, 3100.0, 3299.9, 3300.0, 3699.9, 3700.0, 3899.0, 3900.0])
    assert w.in_sr(m).tolist() == [False, False, False, True, True, False, False, False]
    assert w.in_sidebands(m).tolist() == [False, True, True, False, False, True, True, False]


def test_errors_name_the_key(edges):
    with pytest.raises(ConfigError, match=r"hunt\.range"):
        sliding_windows(edges, scan_range=(2700.0, 4000.0), fit_range=(2700.0, 7000.0))
    with pytest.raises(ConfigError, match=r"hunt\.sidebands"):
        fixed_window(edges, signal_region=(3300.0, 3700.0), sidebands=(3400.0, 3900.0),
                     fit_range=FIT)  # fmt: skip
    with pytest.raises(ConfigError, match=r"hunt\.relative_width"):
        sliding_windows(edges, scan_range=(3000.0, 4000.0), fit_range=FIT, relative_width=1.5)
