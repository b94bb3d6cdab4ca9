"""Order selection (adcoffea.fits.order): Wilks and F-test, adequacy, the moved-name shim."""

from __future__ import annotations

import numpy as np
import pytest

from adcoffea.fits.functions import expected_counts
from adcoffea.fits.order import select_order

EDGES = np.linspace(2700.0, 7000.0, 44)
TRUTH = np.array([5.0e4, 7.80, 5.26, 1.13])  # LHCO QCD mjj shape


@pytest.mark.parametrize("method", ["wilks", "ftest"])
def test_order_selection_finds_needed_order(method):
    rng = np.random.default_rng(11)
    big = rng.poisson(expected_counts(EDGES, [2.0e6, *TRUTH[1:]])).astype(float)
    sel = select_order(big, edges=EDGES, n_params=[2, 3, 4, 5], method=method)
    assert sel.chosen == 4, sel.table
    assert [row["n_params"] for row in sel.table] == [2, 3, 4, 5]
    assert sel.table[1]["pvalue"] < 0.05 and sel.table[3]["pvalue"] > 0.05
    # a spectrum from the 3-parameter function (p3 = 0) does not need the 4th parameter
    small = rng.poisson(expected_counts(EDGES, [2.0e6, 9.0, 4.7]))
    assert select_order(small, edges=EDGES, n_params=[3, 4, 5], method=method).chosen == 3
