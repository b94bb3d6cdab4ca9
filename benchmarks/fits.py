"""Time per background fit (numpy+iminuit vs zfit) and per CLs limit (pyhf, asymptotic).

Run from the repository root: ``python benchmarks/fits.py [--n-fits 20]``. Prints the median
wall time per operation and ratios against the iminuit fit measured in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))


def _median_time(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-fits", type=int, default=20)
    parser.add_argument("--n-zfit", type=int, default=3)
    parser.add_argument("--n-limits", type=int, default=3)
    args = parser.parse_args()

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import adcoffea.fits.background"], check=True)
    t_light = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import zfit"], check=True, capture_output=True)
    t_zfit_import = time.perf_counter() - t
    print(f"python -c 'import adcoffea.fits.background': {t_light:.2f} s (no TensorFlow)")
    print(f"python -c 'import zfit'                    : {t_zfit_import:.2f} s")

    from adcoffea.fits.background import fit_background
    from adcoffea.fits.functions import expected_counts
    from adcoffea.fits.signal import gaussian_signal
    from adcoffea.fits.workspace import build_workspace, upper_limit

    edges = np.linspace(2700.0, 7000.0, 44)  # 43 bins of 100 GeV
    nu = expected_counts(edges, [1.0e5, 7.80, 5.26, 1.13])
    toys = np.random.default_rng(1).poisson(nu, size=(max(args.n_fits, args.n_zfit), len(nu)))
    it = iter(range(10**9))

    def fit_iminuit(n_params: int = 4) -> None:
        fit_background(toys[next(it) % len(toys)].astype(float), edges=edges, n_params=n_params)

    t3 = _median_time(lambda: fit_iminuit(3), args.n_fits)
    t4 = _median_time(lambda: fit_iminuit(4), args.n_fits)
    t5 = _median_time(lambda: fit_iminuit(5), args.n_fits)
    print(
        f"iminuit fit, 43 bins, dijet 3/4/5 par      : {t3 * 1e3:.1f} / {t4 * 1e3:.1f} / {t5 * 1e3:.1f} ms"
    )

    t = time.perf_counter()
    fit_background(toys[0].astype(float), edges=edges, n_params=4, backend="zfit")
    t_first = time.perf_counter() - t
    tz = _median_time(
        lambda: fit_background(
            toys[next(it) % len(toys)].astype(float), edges=edges, n_params=4, backend="zfit"
        ),
        args.n_zfit,
    )
    print(
        f"zfit fit, 43 bins, dijet 4 par             : {tz * 1e3:.0f} ms "
        f"(first fit incl. tracing {t_first:.1f} s); zfit/iminuit = {tz / t4:.0f}x"
    )

    ws1 = build_workspace([52.0], [50.0], [10.0])
    tl1 = _median_time(lambda: upper_limit(ws1), args.n_limits)
    fit = fit_background(toys[0].astype(float), edges=edges, n_params=4)
    sig = 100.0 * gaussian_signal(edges, 3500.0, rel_width=0.05)
    ws = build_workspace(toys[0].astype(float), fit, sig)
    tl = _median_time(lambda: upper_limit(ws), args.n_limits)
    print(f"CLs limit (obs + 5 expected), 1-bin counting: {tl1:.2f} s")
    print(f"CLs limit, 43 bins + 4 fit histosys        : {tl:.2f} s (= {tl / t4:.0f} iminuit fits)")


if __name__ == "__main__":
    main()
