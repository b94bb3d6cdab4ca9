"""Throughput of the executors on >= 1M synthetic QCD events, against the iterative executor.

Runs the dijet processor (no model) over the same cached files with coffea's iterative
executor (the reference), the futures executor (loky processes) and the dask executor on a
``LocalCluster`` of 1 and 2 single-threaded worker processes, and prints events/s and the
ratio to the iterative executor measured in the same run. Every executor must give the same
histograms (checked) and account for every event.

The LocalCluster's start-up, with one untimed dask run over the same files (the workers'
imports, first chunks and file openings, the client's first dask run), is timed
separately: an analysis facility's cluster is already up and warm. The futures executor's process-pool start is inside its time, as in a real run.

Usage::

    PYTHONPATH=. python benchmarks/scaling.py [--events 1000000] [--files 10] [--chunksize 100000]
                                 [--data data/synthetic/bench_1M] [--scan 50000,200000]
                                 [--executors iterative,futures,dask] [--workers 1,2]
                                 [--time-limit SECONDS] [--json PATH]

The events are generated once into ``--data`` (seeded, with a manifest; ``--gen-workers``
processes) and reused. On a many-core machine (issue 15)::

    PYTHONPATH=. python benchmarks/scaling.py --events 4000000 --files 32 --executors dask \
        --workers 1,2,4,8,16 --data data/synthetic/bench_4M --time-limit 300

prints events/s, the speed-up against 1 worker and each configuration's largest worker peak
RSS (``ru_maxrss``, over the cluster's life). With ``--time-limit`` a configuration whose
estimated time (the previous one's, scaled by the worker counts) would overrun is skipped and
listed as such. Files are split into chunks of equal size (at most ``--chunksize``): 32 files
of 125k events give 64 chunks, 4 per worker at 16 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adcoffea.execution import DaskSettings, dask_client, run_processor
from adcoffea.processors import DijetProcessor


def cached_sample(
    directory: Path, *, events: int, files: int, seed: int = 2024, workers: int = 1
) -> list[str]:
    """The benchmark's QCD files, generated on the first call only."""
    from adcoffea.synthetic import generate

    manifest = directory / "manifest.json"
    spec = {"process": "qcd", "events": events, "files": files, "seed": seed}
    if manifest.exists():
        cached = json.loads(manifest.read_text())
        if cached.get("spec") == spec and all(Path(f).exists() for f in cached["files"]):
            return cached["files"]
    t0 = time.perf_counter()
    gen = generate(
        "qcd", n_events=events, seed=seed, out_dir=directory, n_files=files, workers=workers
    )
    paths = [str(Path(f).resolve()) for f in gen.files]
    from adcoffea.outputs import write_json

    write_json(manifest, {"spec": spec, "files": paths})
    print(
        f"generated {events} events in {files} files with {workers} process(es) in "
        f"{time.perf_counter() - t0:.0f} s into {directory}",
        flush=True,
    )
    return paths


@dataclass
class ConstituentDijet(DijetProcessor):
    """The dijet processor plus the per-jet constituent arrays a model would be fed.

    The light dijet selection reads only the FatJet columns (a few % of the file); a real
    search also reads every jet's particles and pads them for the model (the bulk of the
    I/O and of the CPU). This reproduces that load and histograms the padded constituents'
    momentum fraction so that the work cannot be skipped.
    """

    def required_branches(self):
        # the constituent tables too: the pre-flight checks them, and the chunks' events
        # hold only the collections of these (``collections()``)
        from adcoffea.processors.base import constituent_branches

        jets = self.selection.jet_collection
        return [*super().required_branches(), constituent_branches(jets)]

    def process(self, events):
        import hist

        from adcoffea.constituents import selected_constituents
        from adcoffea.processors.selections import select_dijets

        out = super().process(events)
        # the processor's selection again (its columns are already read) and the padded
        # constituents of the two selected jets, as the processor builds them for a model
        sel = select_dijets(events, self.selection)
        padded, mask = selected_constituents(
            events, sel.jet_index, max_particles=self.max_particles
        )
        jet_pt = sel.two("pt")
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


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; ``ru_maxrss`` would include the
    peak of the parent before ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Row:
    executor: str
    workers: int
    chunksize: int
    wall: float | None  # None: skipped
    startup: float = 0.0
    peak_mb: float = 0.0  # largest worker peak RSS (dask) / 0 when not measured
    note: str = ""


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


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
    ap.add_argument(
        "--executors",
        default="iterative,futures,dask",
        help="comma list of iterative, futures, dask (futures runs at worker counts >= 2)",
    )
    ap.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2,4,8,16")
    ap.add_argument(
        "--gen-workers",
        type=int,
        default=min(os.cpu_count() or 1, 16),
        help="processes generating the sample when it is not cached",
    )
    ap.add_argument(
        "--time-limit",
        type=float,
        default=0.0,
        help="seconds (from start, generation included) after which no further "
        "configuration is started; one is also skipped when its estimated time (from the "
        "previous one, assuming linear scaling) would overrun. 0: no limit",
    )
    ap.add_argument(
        "--use-files",
        type=int,
        default=0,
        help="process only the first N files of the (cached) sample (0: all)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    args = ap.parse_args()
    t_start = time.perf_counter()
    from adcoffea.execution.allocator import tune_allocator

    # the iterative runs are in this process: its allocator as the adcoffea command's (the
    # futures workers and those of the LocalCluster get theirs from adcoffea)
    tune_allocator()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    unknown = set(executors) - {"iterative", "futures", "dask"}
    if unknown:
        ap.error(f"--executors: unknown {sorted(unknown)}")
    worker_counts = _ints(args.workers)

    files = cached_sample(args.data, events=args.events, files=args.files, workers=args.gen_workers)
    n = args.events
    if 0 < args.use_files < len(files):
        # the generator's split of the events over the files
        n = int(np.linspace(0, args.events, args.files + 1).astype(np.int64)[args.use_files])
        files = files[: args.use_files]
    fileset = {"qcd": files}
    cs = args.chunksize
    # Warm-up, untimed: every file's bytes once (so that no configuration, the first one
    # above all, pays for reading from disk rather than the page cache), and one iterative
    # pass over the first file (this process's lazy imports).
    t0 = time.perf_counter()
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    timed({"qcd": files[:1]}, workload=args.workload, executor="iterative", chunksize=cs)
    print(f"warm-up (files read once, one iterative pass): {time.perf_counter() - t0:.1f} s")
    rows: list[Row] = []
    ref_hists: dict | None = None
    ref_name = ""
    last: tuple[float, int] | None = None  # (wall, workers) of the previous run

    def left() -> float:
        return args.time_limit - (time.perf_counter() - t_start) if args.time_limit else 1e30

    def fits(workers: int, extra: float = 0.0, runs: int = 1) -> bool:
        if left() <= 0:
            return False
        if last is None:
            return True
        estimate = runs * last[0] * last[1] / max(workers, 1) + extra
        return estimate < left()

    def check(res, name: str) -> None:
        nonlocal ref_hists, ref_name
        assert res.report.events_processed == res.report.events_total == n, res.report.to_dict()
        hists = res.output["hists"]
        if ref_hists is None:
            ref_hists, ref_name = hists, name
        else:
            assert same_hists(hists, ref_hists), f"{name}: histograms differ from {ref_name}"

    def show(row: Row) -> None:
        what = "skipped (time limit)" if row.wall is None else f"{row.wall:.1f} s"
        print(
            f"  {row.executor} {row.workers} worker(s), chunk {row.chunksize}: {what}", flush=True
        )

    if "iterative" in executors:
        if fits(1):
            res, t = timed(fileset, workload=args.workload, executor="iterative", chunksize=cs)
            check(res, "iterative")
            rows.append(Row("iterative", 1, cs, t, peak_mb=_peak_rss_mb()))
            last = (t, 1)
        else:
            rows.append(Row("iterative", 1, cs, None))
        show(rows[-1])

    if "futures" in executors:
        for w in [w for w in worker_counts if w >= 2]:
            if not fits(w):
                rows.append(Row("futures", w, cs, None))
                show(rows[-1])
                continue
            res, t = timed(
                fileset, workload=args.workload, executor="futures", chunksize=cs, workers=w
            )
            check(res, f"futures {w}")
            rows.append(Row("futures", w, cs, t))
            last = (t, w)
            show(rows[-1])

    if "dask" in executors:
        for w in worker_counts:
            sizes = [cs] + ([int(s) for s in args.scan.split(",") if s] if w == 2 else [])
            if not fits(w, extra=5.0, runs=2):  # the warm-up run and the timed one
                rows.extend(Row("dask", w, size, None) for size in sizes)
                show(rows[-1])
                continue
            t0 = time.perf_counter()
            # the same LocalCluster as ``adcoffea run --executor dask --workers N``
            settings = DaskSettings(workers=w, dashboard=False)
            with dask_client(settings) as client, settings._cluster:
                # one untimed dask run over the same files first, as a long-lived facility
                # cluster has had: a fresh cluster's first run took 1.5 s longer (1 worker,
                # 1M events: 3.9 s against 2.4 s), in the workers' imports (coffea, uproot's
                # codecs, adcoffea; a run over one file warmed those but left 0.6 s), their
                # heaps' first growth, the first opening of every file and the client's
                # first dask run: a fixed cost that would hide the scaling at a few million
                # events. The files stay open in the workers, as they do between the chunks
                # of one run on large files.
                timed(fileset, workload=args.workload, executor="dask", chunksize=cs,
                      client=client)  # fmt: skip
                startup = time.perf_counter() - t0
                for size in sizes:
                    if not fits(w):
                        rows.append(Row("dask", w, size, None))
                        show(rows[-1])
                        continue
                    res, t = timed(
                        fileset,
                        workload=args.workload,
                        executor="dask",
                        chunksize=size,
                        client=client,
                    )
                    check(res, f"dask {w}")
                    peak = max(client.run(_peak_rss_mb).values())
                    rows.append(Row("dask", w, size, t, startup, peak))
                    last = (t, w)
                    show(rows[-1])

    print(
        f"\n{n} events in {len(files)} files, workload {args.workload!r}; "
        f"chunk size {cs} unless stated; {os.cpu_count()} CPU cores"
    )
    done = [r for r in rows if r.wall is not None]
    t_ref = next((r.wall for r in done if r.executor == "iterative"), None)
    ref_label = "vs iterative" if t_ref else "vs 1st run"
    t_ref = t_ref or (done[0].wall if done else None)
    one = {
        ex: next((r.wall for r in done if r.executor == ex and r.workers == 1), None)
        for ex in ("futures", "dask")
    }
    print(
        f"{'executor':<10}{'workers':>8}{'chunksize':>10}{'wall [s]':>10}{'events/s':>12}"
        f"{ref_label:>14}{'vs 1 worker':>13}{'peak RSS/worker':>17}"
    )
    for r in rows:
        head = f"{r.executor:<10}{r.workers:>8}{r.chunksize:>10}"
        if r.wall is None:
            print(f"{head}  skipped (time limit)")
            continue
        base = one.get(r.executor)
        speed = f"{base / r.wall:>12.2f}x" if base and r.chunksize == cs else f"{'-':>13}"
        peak = f"{r.peak_mb:>13.0f} MB" if r.peak_mb else f"{'-':>16}"
        note = f"  (+{r.startup:.1f} s cluster start and warm-up)" if r.startup else ""
        print(
            f"{head}{r.wall:>10.1f}{n / r.wall:>12.0f}{t_ref / r.wall:>13.2f}x{speed}{peak}{note}"
        )
    if len(done) > 1:
        print(f"histograms identical to the {ref_name} run's (rtol 1e-12): yes")
    print(f"total time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        from dataclasses import asdict

        from adcoffea.outputs import write_json

        write_json(
            args.json,
            {
                "events": n,
                "files": len(files),
                "workload": args.workload,
                "cpu_count": os.cpu_count(),
                "rows": [asdict(r) for r in rows],
            },
        )


if __name__ == "__main__":
    main()
