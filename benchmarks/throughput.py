"""Processor throughput against plain uproot reading of the same branches, in one run.

    python benchmarks/throughput.py [--events 200000] [--bundle results/lhco_dijet/model]

Prints events/s of: uproot reading the branches the processor needs (the I/O floor),
the dijet processor (iterative executor, one core), and, with ``--bundle``, the processor
with the anomaly score; and the ratios between them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--cache", type=Path, default=Path("data/synthetic/bench_throughput"))
    ap.add_argument("--bundle", type=Path, default=None, help="model bundle for the scored run")
    ap.add_argument("--repeat", type=int, default=2, help="best of N timings")
    args = ap.parse_args()

    import uproot

    from adcoffea.execution import run_processor
    from adcoffea.processors import DijetProcessor
    from adcoffea.synthetic import generate

    path = args.cache / f"qcd_{args.events}_0.root"
    if not path.exists():
        t0 = time.perf_counter()
        generate(
            "qcd", n_events=args.events, seed=11, out_dir=args.cache, name=f"qcd_{args.events}"
        )
        print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s")
    fileset = {"qcd": [str(path)]}
    branches = [
        "event",
        "genWeight",
        "nFatJet",
        *(f"FatJet_{f}" for f in ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")),
    ]

    def best(fn):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def read_uproot():
        with uproot.open(path) as f:
            for _ in f["Events"].iterate(branches, step_size=args.chunksize):
                pass

    def run(bundle=None):
        proc = DijetProcessor(bundles=(("model", str(bundle)),) if bundle else ())
        run_processor(fileset, proc, executor="iterative", chunksize=args.chunksize, status=False)

    n = args.events
    t_io = best(read_uproot)
    t_proc = best(run)
    print(f"uproot read of {len(branches)} branches : {n / t_io:12,.0f} events/s")
    print(
        f"dijet processor (iterative)     : {n / t_proc:12,.0f} events/s "
        f"(ratio to uproot read: {t_io / t_proc:.2f})"
    )
    if args.bundle:
        t_model = best(lambda: run(args.bundle))
        print(
            f"dijet processor + anomaly score : {n / t_model:12,.0f} events/s "
            f"(ratio to processor without model: {t_proc / t_model:.2f})"
        )


if __name__ == "__main__":
    main()
