"""Time per background fit (numpy+iminuit vs zfit vs batch) and per CLs limit (pyhf).

Run from the repository root: ``python benchmarks/fits.py [--n-fits 20] [--n-batch 1000]``.
Prints the median wall time per operation and ratios against the iminuit fit measured in the
same run, and the batch fit's (:mod:`adcoffea.fits.batch`) time per spectrum for a batch of
pseudo-experiments, its speed-up over ``fit_arrays`` and their agreement on the NLL minimum.
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
    parser.add_argument("--n-batch", type=int, default=1000)
    parser.add_argument("--skip-zfit", action="store_true")
    args = parser.parse_args()

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import adcoffea.fits.background"], check=True)
    t_light = time.perf_counter() - t
    print(f"python -c 'import adcoffea.fits.background': {t_light:.2f} s (no TensorFlow)")
    if not args.skip_zfit:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import zfit"], check=True, capture_output=True)
        print(f"python -c 'import zfit'                    : {time.perf_counter() - t:.2f} s")

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

    batch_benchmark(args.n_batch, args.n_fits)
    if args.skip_zfit:
        return

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


def batch_benchmark(n_batch: int, n_ref: int) -> None:
    """Batch fit of ``n_batch`` sideband pseudo-experiments vs ``fit_arrays`` one by one."""
    from adcoffea.fits.background import fit_arrays
    from adcoffea.fits.batch import fit_batch
    from adcoffea.fits.functions import expected_counts

    edges = np.linspace(1500.0, 8000.0, 66)  # configs/lhco_dijet.yaml's mjj binning
    nu = expected_counts(edges, [2.0e5, 7.80, 5.26, 1.13])
    toys = np.random.default_rng(2).poisson(nu, size=(n_batch, 65)).astype(float)
    mask = np.ones(65, dtype=bool)
    mask[25:31] = False  # a signal region left out of every fit
    start = fit_arrays(edges, toys.mean(axis=0), n_params=4, mask=mask).values  # the "data" fit
    fit_batch(edges, toys[:10], n_params=4, mask=mask, start=start)  # warm caches
    t = time.perf_counter()
    res = fit_batch(edges, toys, n_params=4, mask=mask, start=start)
    t_batch = (time.perf_counter() - t) / n_batch
    refs = []
    t = time.perf_counter()
    for i in range(n_ref):
        refs.append(fit_arrays(edges, toys[i], n_params=4, mask=mask, start=start))
    t_ref = (time.perf_counter() - t) / n_ref
    rel = max(abs(res.nll[i] - r.nll) / abs(r.nll) for i, r in enumerate(refs))
    dpar = max(
        float(np.max(np.abs(res.values[i] - r.values) / r.errors)) for i, r in enumerate(refs)
    )
    print(
        f"batch fit, {n_batch} spectra x 65 bins, dijet 4 par, SR excluded: "
        f"{t_batch * 1e3:.3f} ms/spectrum vs fit_arrays {t_ref * 1e3:.1f} ms "
        f"-> {t_ref / t_batch:.0f}x faster; converged {res.converged.mean():.3f}, "
        f"Newton iterations <= {res.n_iter.max()}"
    )
    print(
        f"batch vs fit_arrays on {n_ref} spectra: max |dNLL|/NLL = {rel:.1e}, "
        f"max |dparameter|/error = {dpar:.1e}"
    )


if __name__ == "__main__":
    main()
