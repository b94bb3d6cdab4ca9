"""Benchmark: adcoffea BumpHunter vs pyBumpHunter 0.5.1 on the same inputs, same run.

    python benchmarks/bumphunter.py            # 2D pyBumpHunter with 100 toys, time scaled x10
    python benchmarks/bumphunter.py --full-2d  # 2D pyBumpHunter with all 1000 toys (~2+ min)

1D: pyBumpHunter best of 3, adcoffea best of 5, both cold (sampler tables rebuilt) and warm.
Prints both times, the ratio and the agreement (bump, local p, global p; with pyBumpHunter's
own toy stream the global p-values must be identical).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

import numpy as np
import pyBumpHunter as BH
import uproot

from adcoffea.fits._windows import _TABLES
from adcoffea.fits.bumphunter import bumphunt, pybumphunter_toys

REPEAT_REF = 3
REPEAT_OURS = 5


def best_of(f, n: int) -> float:
    """Smallest wall time of n calls (the machine is shared: the minimum is the least noisy)."""
    return min(timed(f)[1] for _ in range(n))


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def bench_1d() -> None:
    with uproot.open("/work/shared/data/bumphunter/data.root") as f:
        data = f["data"].arrays(library="np")["data"]
        bkg = f["bkg"].arrays(library="np")["bkg"]
    bh, edges = np.histogram(bkg, bins=60, range=(0, 20))
    dh, _ = np.histogram(data, bins=edges)
    pbh = BH.BumpHunter1D(width_min=2, width_max=6, npe=10000, nworker=1, seed=666)
    with contextlib.redirect_stdout(io.StringIO()):
        t_ref = best_of(lambda: pbh.bump_scan(dh, bh, is_hist=True), REPEAT_REF)

    def cold():
        _TABLES.clear()  # include building the sampler tables, as a first scan would
        return bumphunt(dh, bh, edges=edges, n_toys=10000, seed=666)

    t_cold = best_of(cold, REPEAT_OURS)
    t_warm = best_of(lambda: bumphunt(dh, bh, edges=edges, n_toys=10000, seed=666), REPEAT_OURS)
    ours = cold()
    same, _ = timed(lambda: bumphunt(dh, bh, edges=edges, toys=pybumphunter_toys(bh, 10000, 666)))
    print(f"1D: 60 bins, widths 2..6, 10000 toys (best of {REPEAT_REF} / {REPEAT_OURS})")
    print(
        f"  pyBumpHunter {t_ref:.3f} s   adcoffea {t_cold * 1e3:.1f} ms (first scan) "
        f"{t_warm * 1e3:.1f} ms (tables cached)   ratio {t_ref / t_cold:.0f}x / "
        f"{t_ref / t_warm:.0f}x"
    )
    print(
        f"  bump pBH ({pbh.min_loc_ar[0]}, w {pbh.min_width_ar[0]}) ours ({ours.bump_bins[0]}, "
        f"w {ours.bump_widths[0]}); local p {pbh.min_Pval_ar[0]:.10g} vs {ours.local_p:.10g}"
    )
    print(
        f"  global p pBH {pbh.global_Pval:.4f}; ours (own toys) {ours.global_p:.4f} "
        f"+- {ours.global_p_error:.4f}; ours (pBH toys) {same.global_p:.4f}"
    )


def bench_2d(full: bool) -> None:
    rng = np.random.default_rng(42)
    bkg = rng.exponential(4, size=(1_000_000, 2))
    data = np.concatenate(
        [
            rng.exponential(4, size=(100_000, 2)),
            rng.multivariate_normal([6, 7], [[3, 0.5], [0.5, 3]], size=700),
        ]
    )
    bh, ex, ey = np.histogram2d(bkg[:, 0], bkg[:, 1], bins=20, range=[[0, 25], [0, 25]])
    dh = np.histogram2d(data[:, 0], data[:, 1], bins=[ex, ey])[0]
    bh = bh * (dh.sum() / bh.sum())
    n_ref = 1000 if full else 100
    pbh = BH.BumpHunter2D(width_min=[1, 1], width_max=[10, 10], npe=n_ref, nworker=1, seed=666)
    with contextlib.redirect_stdout(io.StringIO()):
        _, t_ref = timed(lambda: pbh.bump_scan(dh, bh, is_hist=True))
    t_ref_1000 = t_ref * 1000 / n_ref
    ours, t_ours = timed(
        lambda: bumphunt(dh, bh, edges=(ex, ey), width_min=1, width_max=10, n_toys=1000, seed=666)
    )
    same = bumphunt(
        dh, bh, edges=(ex, ey), width_min=1, width_max=10, toys=pybumphunter_toys(bh, n_ref, 666)
    )
    print(f"2D: 20x20 bins, widths 1..10 per axis ({ours.n_windows} windows), 1000 toys")
    scaled = "" if full else f" (measured with {n_ref} toys, scaled x{1000 // n_ref})"
    print(
        f"  pyBumpHunter {t_ref_1000:.1f} s{scaled}   adcoffea {t_ours:.3f} s   "
        f"ratio {t_ref_1000 / t_ours:.0f}x"
    )
    print(
        f"  bump pBH {list(pbh.min_loc_ar[0])} w {list(pbh.min_width_ar[0])}, ours "
        f"{list(ours.bump_bins)} w {list(ours.bump_widths)}; local p {pbh.min_Pval_ar[0]:.10g} "
        f"vs {ours.local_p:.10g}"
    )
    bound = (
        f" (ours reports the 95% bound p < {same.global_p:.4f})" if same.global_p_is_bound else ""
    )
    print(
        f"  toys with t >= t_obs among pBH's {n_ref} toys: pBH "
        f"{round(pbh.global_Pval * n_ref)} ours {same.n_toys_above}{bound}"
    )


if __name__ == "__main__":
    print(f"load average at start: {os.getloadavg()}")
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-2d", action="store_true")
    a = ap.parse_args()
    bench_1d()
    bench_2d(a.full_2d)
