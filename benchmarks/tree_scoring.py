"""Boosted-tree scoring: QuickScorer against scikit-learn's tree walk, per thread count.

    python benchmarks/tree_scoring.py [--rows 58000] [--threads 1,2,4,8,16]
                                      [--cache data/synthetic/bench_throughput]

The ensemble is the CWoLa bundle of ``benchmarks/throughput.py --cwola`` (5 folds x 10
boosted-tree members, trained once on toy LHCO features and cached): ``--rows`` toy events
are scored the way a processor chunk is, each fold's rows by that fold's members, with

* ``walk``: scikit-learn's compiled predictors, tree after tree (an OpenMP loop over rows);
* ``quickscorer``: :class:`adcoffea.models.quickscorer.TreeScorer` (numpy, blocks of rows on
  the threads).

One line per thread count (best of 5, after a warm-up): both times, their ratio and which is
faster, and that the logits agree to the bit. ``adcoffea.models.quickscorer.MAX_THREADS``
(the most threads the scorer is used with) should be the last count where it is faster;
on 2 cores that is all of them, beyond is for a many-core machine to say.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=58_000, help="events scored (a chunk's)")
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--cache", type=Path, default=Path("data/synthetic/bench_throughput"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import numpy as np
    from throughput import _cwola_bundle, _describe

    from adcoffea.execution.allocator import tune_allocator
    from adcoffea.models import quickscorer, toy
    from adcoffea.models.bundle import fold_of, load_bundle
    from adcoffea.models.threads import available_cores, set_threads

    tune_allocator()  # as in the processes adcoffea runs
    path = _cwola_bundle(args.cache, "bdt")
    bundle = load_bundle(path)
    k, m = bundle.metadata.kfold["k"], bundle.metadata.kfold["ensemble"]
    inputs, _ = toy.lhco_features(args.rows, 0, seed=5)
    x = bundle._hl(inputs).numpy().astype(np.float64)
    folds = fold_of(inputs.event, k, salt=bundle.metadata.kfold.get("salt", 0))
    members = [[bundle.networks[f"fold{i}_member{j}"] for j in range(m)] for i in range(k)]
    rows = [np.flatnonzero(folds == i) for i in range(k)]
    scorers = [quickscorer.TreeScorer([t.arrays() for t in ms], n_features=x.shape[1])
               for ms in members]  # fmt: skip

    def walk() -> list:
        return [np.stack([t.walk(x[r]) for t in ms]) for ms, r in zip(members, rows, strict=True)]

    def quick(threads: int) -> list:
        return [s.logits(x[r], threads=threads) for s, r in zip(scorers, rows, strict=True)]

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    print(f"ensemble: {_describe(path)}; {args.rows:,} rows; {available_cores()} cores; "
          f"QuickScorer used up to {quickscorer.MAX_THREADS} threads")  # fmt: skip
    for n in (int(v) for v in args.threads.split(",")):
        if n > available_cores():
            print(f"{n:3d} threads: skipped (more than the {available_cores()} cores)")
            continue
        set_threads(n)
        same = all(np.array_equal(a, b) for a, b in zip(walk(), quick(n), strict=True))
        t_walk, t_quick = best(walk), best(lambda n=n: quick(n))
        faster = "quickscorer" if t_quick < t_walk else "walk"
        print(f"{n:3d} threads: walk {t_walk * 1e3:7.1f} ms, quickscorer {t_quick * 1e3:7.1f} ms"
              f" (walk / quickscorer {t_walk / t_quick:4.2f}; faster: {faster}); "
              f"logits identical: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
