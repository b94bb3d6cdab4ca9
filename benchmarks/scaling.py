"""Throughput of the executors on >= 1M synthetic QCD events, against the iterative executor.

Runs the dijet processor (no model) over the same cached files with coffea's iterative
executor (the reference), the futures executor (loky processes) and the dask executor on a
``LocalCluster`` of 1 and 2 single-threaded worker processes, and prints events/s and the
ratio to the iterative executor measured in the same run. Every executor must give the same
histograms (checked) and account for every event.

The LocalCluster's start-up is timed separately (an analysis facility's cluster is already
up); the futures executor's process-pool start is inside its time, as in a real run.

Usage::

    PYTHONPATH=. python benchmarks/scaling.py [--events 1000000] [--files 10] [--chunksize 100000]
                                 [--data data/synthetic/bench_1M] [--scan 50000,200000]

The events are generated once into ``--data`` (seeded, with a manifest) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from adcoffea.execution import DaskSettings, dask_client, run_processor
from adcoffea.processors import DijetProcessor


def cached_sample(directory: Path, *, events: int, files: int, seed: int = 2024) -> list[str]:
    """The benchmark's QCD files, generated on the first call only."""
    from adcoffea.synthetic import generate

    manifest = directory / "manifest.json"
    spec = {"process": "qcd", "events": events, "files": files, "seed": seed}
    if manifest.exists():
        cached = json.loads(manifest.read_text())
        if cached.get("spec") == spec and all(Path(f).exists() for f in cached["files"]):
            return cached["files"]
    t0 = time.perf_counter()
    gen = generate("qcd", n_events=events, seed=seed, out_dir=directory, n_files=files)
    paths = [str(Path(f).resolve()) for f in gen.files]
    from adcoffea.outputs import write_json

    write_json(manifest, {"spec": spec, "files": paths})
    print(f"generated {events} events in {time.perf_counter() - t0:.0f} s into {directory}")
    return paths


@dataclass
class ConstituentDijet(DijetProcessor):
    """The dijet processor plus the per-jet constituent arrays a model would be fed.

    The light dijet selection reads only the FatJet columns (a few % of the file); a real
    search also reads every jet's particles and pads them for the model (the bulk of the
    I/O and of the CPU). This reproduces that load and histograms the padded constituents'
    momentum fraction so that the work cannot be skipped.
    """

    def process(self, events):
        import hist

        from adcoffea.constituents import jet_constituents, pad_constituents

        out = super().process(events)
        parts = jet_constituents(events)
        two = parts[ak.num(parts, axis=1) >= 2][:, :2]
        padded, mask = pad_constituents(two, max_particles=self.max_particles)
        jet_pt = ak.to_numpy(ak.sum(two.pt, axis=2))
        frac = padded[..., 0].sum(axis=-1) / np.where(jet_pt > 0, jet_pt, 1.0)
        h = hist.Hist(
            hist.axis.StrCategory([], growth=True, name="dataset"),
            hist.axis.Regular(60, 0.0, 1.2, name="frac"),
            hist.axis.Integer(0, self.max_particles + 1, name="n"),
            storage=hist.storage.Weight(),
        )
        h.fill(dataset=events.metadata["dataset"], frac=frac.ravel(), n=mask.sum(axis=-1).ravel())
        out["hists"]["constituents"] = h
        return out


WORKLOADS = {"light": DijetProcessor, "constituents": ConstituentDijet}


def same_hists(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.allclose(a[k].values(flow=True), b[k].values(flow=True), rtol=1e-12, atol=0) for k in a
    )


def timed(fileset, *, workload: str, executor: str, chunksize: int, **kw):
    t0 = time.perf_counter()
    res = run_processor(
        fileset,
        WORKLOADS[workload](),
        executor=executor,
        chunksize=chunksize,
        status=False,
        **kw,
    )
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--chunksize", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=Path("data/synthetic/bench_1M"))
    ap.add_argument("--scan", default="", help="extra chunk sizes for dask with 2 workers")
    ap.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="constituents",
        help="light: FatJet columns only; constituents: + per-jet particles (default)",
    )
    args = ap.parse_args()

    files = cached_sample(args.data, events=args.events, files=args.files)
    fileset = {"qcd": files}
    cs = args.chunksize
    rows: list[tuple[str, int, float, float]] = []  # name, chunksize, wall, extra

    ref, t_ref = timed(fileset, workload=args.workload, executor="iterative", chunksize=cs)
    n = ref.report.events_processed
    assert n == ref.report.events_total == args.events, ref.report.to_dict()
    rows.append(("iterative", cs, t_ref, 0.0))

    fut, t_fut = timed(fileset, workload=args.workload, executor="futures", chunksize=cs, workers=2)
    assert fut.report.events_processed == n and same_hists(fut.output["hists"], ref.output["hists"])
    rows.append(("futures, 2 processes", cs, t_fut, 0.0))

    for n_workers in (1, 2):
        t0 = time.perf_counter()
        # the same LocalCluster as ``adcoffea run --executor dask --workers N``
        settings = DaskSettings(workers=n_workers, dashboard=False)
        with dask_client(settings) as client, settings._cluster:
            # workers import the analysis code once, as on a long-lived facility cluster
            client.run(__import__, "adcoffea.processors")
            startup = time.perf_counter() - t0
            sizes = [cs] + ([int(s) for s in args.scan.split(",") if s] if n_workers == 2 else [])
            for size in sizes:
                res, t = timed(
                    fileset, workload=args.workload, executor="dask", chunksize=size, client=client
                )
                assert res.report.events_processed == n
                assert same_hists(res.output["hists"], ref.output["hists"])
                rows.append((f"dask, {n_workers} worker(s)", size, t, startup))

    print(
        f"\n{n} events in {len(files)} files, workload {args.workload!r}; "
        f"chunk size {cs} unless stated; {os.cpu_count()} CPU cores"
    )
    print(f"{'executor':<24}{'chunksize':>10}{'wall [s]':>10}{'events/s':>12}{'vs iterative':>14}")
    for name, size, wall, extra in rows:
        note = f"  (+{extra:.1f} s cluster start)" if extra else ""
        print(f"{name:<24}{size:>10}{wall:>10.1f}{n / wall:>12.0f}{t_ref / wall:>13.2f}x{note}")
    print("histograms identical to the iterative executor's (rtol 1e-12): yes")


if __name__ == "__main__":
    main()
