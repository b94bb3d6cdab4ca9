"""Where the parallel executors lose time on a few cores, and which chunk size to use.

    python benchmarks/executor_overheads.py [--events 1000000] [--files 10]
                                            [--chunksizes 50000,100000,200000,500000]

Measured in one run, on the cached QCD files of ``benchmarks/scaling.py``:

1. **Chunk size** (iterative executor, one core, one file of ``--scan-events``): events/s
   of the dijet processor at each chunk size, its ratio to uproot reading the same branches
   with the same step size (the per-chunk costs shrink with bigger chunks), the events/s of
   the constituent workload (``scaling.py``'s ``ConstituentDijet``), and the peak
   memory of a chunk of that size with and without constituents (the default chunk size
   must fit in 2 GB per worker with constituents).
2. **The parts of a parallel run** (the default: futures, 2 workers):

   * start of the worker pool: until every worker has imported coffea and adcoffea;
   * pickling the processor (cloudpickle + lz4, as coffea ships it with every task);
   * pickling one chunk's output back, histograms only and with the training columns;
   * merging the outputs of every chunk (``coffea.processor.accumulate``), both ways;
   * the wall time of the iterative and futures executors over the same files, and what the
     parts above add up to.

Absolute numbers depend on the machine and its load; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BRANCHES = [
    "event",
    "genWeight",
    "nFatJet",
    *(f"FatJet_{f}" for f in ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")),
]


def _import_worker(_: int) -> float:
    """What a worker imports before its first chunk; returns when done (seconds spent)."""
    t0 = time.perf_counter()
    import coffea.nanoevents
    import coffea.processor  # noqa: F401

    import adcoffea.processors  # noqa: F401

    time.sleep(0.2)  # keep this worker busy so the other task goes to the other worker
    return time.perf_counter() - t0


def pool_start(workers: int) -> float:
    """Seconds from creating adcoffea's loky pool until every worker has imported."""
    from adcoffea.execution import worker_pool_factory

    t0 = time.perf_counter()
    pool = worker_pool_factory()(max_workers=workers)
    try:
        list(pool.map(_import_worker, range(workers)))
        return time.perf_counter() - t0 - 0.2
    finally:
        pool.shutdown(wait=True)


def _pickle(obj) -> tuple[int, float, float]:
    """(bytes, seconds to pickle + compress, seconds to decompress + unpickle), as coffea."""
    import cloudpickle
    import lz4.frame

    t0 = time.perf_counter()
    blob = lz4.frame.compress(cloudpickle.dumps(obj), compression_level=1)
    t1 = time.perf_counter()
    cloudpickle.loads(lz4.frame.decompress(blob))
    return len(blob), t1 - t0, time.perf_counter() - t1


def one_chunk_output(path: str, chunksize: int, *, columns: bool) -> dict:
    """The dijet processor's output of the file's first chunk."""
    import uproot
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from adcoffea.processors import DijetProcessor

    NanoAODSchema.warn_missing_crossrefs = False
    with uproot.open({path: None}) as f:
        events = NanoEventsFactory.from_root(
            f,
            treepath="Events",
            mode="virtual",
            entry_start=0,
            entry_stop=chunksize,
            metadata={"dataset": "qcd", "filename": path},
        ).events()
        return DijetProcessor(collect_columns=columns).process(events)


def _peak_memory(path: str, workload: str, chunksize: int) -> float | None:
    """Peak RSS (MB) over the process before the chunk, of a fresh process running the
    file in chunks of ``chunksize`` (``throughput.py``'s memory child); None if it failed."""
    out = subprocess.run(
        [sys.executable, str(HERE / "throughput.py"), "--_memory-child", path, workload,
         str(chunksize)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next((s for s in out.stdout.splitlines() if s.startswith("{")), None)
    if out.returncode or line is None:
        return None
    r = json.loads(line)
    return r["peak_mb"] - r["before_mb"]


def chunk_scan(path: str, chunksizes: list[int], repeat: int) -> list[dict]:
    """Iterative processor vs uproot read of the same branches, per chunk size, on one file
    of several chunks at every size; and the peak memory of one chunk of each size.

    Rounds over every chunk size (read and processor next to each other): a shared
    machine's speed drifts, and a size measured in one quiet minute would look better.
    """
    import uproot

    from adcoffea.execution import run_processor
    from adcoffea.processors import DijetProcessor

    # the faster of uproot's default source and the local file source adcoffea reads with
    local = {"handler": uproot.source.file.MultithreadedFileSource, "use_threads": False}

    def read(step: int, **options) -> None:
        with uproot.open(path, **options) as f:
            for _ in f["Events"].iterate(BRANCHES, step_size=step):
                pass

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    from scaling import ConstituentDijet

    def process(c: int, proc) -> None:
        run_processor({"qcd": [path]}, proc, executor="iterative", chunksize=c, status=False)

    with uproot.open(path) as f:
        n = f["Events"].num_entries
    t_read: dict[int, list[float]] = {c: [] for c in chunksizes}
    t_proc: dict[int, list[float]] = {c: [] for c in chunksizes}
    t_cons: dict[int, list[float]] = {c: [] for c in chunksizes}
    for c in chunksizes:  # warm-up
        process(c, DijetProcessor())
    for _ in range(repeat):
        for c in chunksizes:
            t_read[c].append(min(timed(lambda c=c: read(c)), timed(lambda c=c: read(c, **local))))
            t_proc[c].append(timed(lambda c=c: process(c, DijetProcessor())))
            t_cons[c].append(timed(lambda c=c: process(c, ConstituentDijet())))
    rows = []
    for c in chunksizes:
        read_s, proc_s, cons_s = min(t_read[c]), min(t_proc[c]), min(t_cons[c])
        light = _peak_memory(path, "light", c)
        heavy = _peak_memory(path, "constituents", c)
        rows.append({"chunksize": c, "events": n, "read_s": read_s, "processor_s": proc_s,
                     "constituents_s": cons_s, "memory_mb": light,
                     "memory_constituents_mb": heavy})  # fmt: skip
        mem = "failed" if light is None or heavy is None else f"{light:.0f} / {heavy:.0f} MB"
        print(
            f"  chunk {c:>8,d} ({-(-n // c):3d} chunks): processor {n / proc_s:10,.0f} ev/s "
            f"(read {n / read_s:11,.0f} ev/s, ratio {read_s / proc_s:.2f}), with "
            f"constituents {n / cons_s:9,.0f} ev/s; peak memory per chunk without / with "
            f"constituents: {mem}",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--data", type=Path, default=Path("data/synthetic/bench_1M"))
    ap.add_argument("--chunksizes", default="50000,100000,200000,300000,500000")
    ap.add_argument(
        "--scan-events",
        type=int,
        default=1_000_000,
        help="events of the one file the chunk-size scan reads (cached next to --data)",
    )
    ap.add_argument("--chunksize", type=int, default=100_000, help="for the parallel parts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scan-only", action="store_true", help="only the chunk-size scan")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from coffea.processor import accumulate
    from scaling import cached_sample

    from adcoffea.execution import run_processor
    from adcoffea.execution.allocator import tune_allocator
    from adcoffea.processors import DijetProcessor

    tune_allocator()  # as the adcoffea command and the futures workers
    files = cached_sample(args.data, events=args.events, files=args.files)
    print(f"{len(files)} files, {args.events:,d} events; cores {os.cpu_count()}, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    # one file of several chunks at every size (the files above hold 100k events each:
    # every larger chunk would be the whole file)
    scan_file = cached_sample(
        args.data.with_name(args.data.name + "_one_file"), events=args.scan_events, files=1
    )[0]
    print(f"1. chunk size (iterative, one file of {args.scan_events:,d} events, best of "
          f"{args.repeat} rounds; memory: one process, over its state before the chunk):")  # fmt: skip
    chunk_scan(scan_file, [int(c) for c in args.chunksizes.split(",")], args.repeat)
    if args.scan_only:
        return

    print(f"2. parts of a futures run with {args.workers} workers, chunks of {args.chunksize:,d}:")
    n_chunks = sum(-(-(args.events // args.files) // args.chunksize) for _ in files)
    t_pool = pool_start(args.workers)
    print(f"  worker pool start (imports included)    : {t_pool:6.2f} s (once per run)")
    size, dump, load = _pickle(DijetProcessor())
    print(f"  processor pickle                         : {size / 1024:6.1f} kB, "
          f"{1e3 * (dump + load):.1f} ms per task")  # fmt: skip
    merged = {}
    for columns in (False, True):
        out = one_chunk_output(files[0], args.chunksize, columns=columns)
        size, dump, load = _pickle(out)
        t0 = time.perf_counter()
        accumulate([out for _ in range(n_chunks)])
        merge = time.perf_counter() - t0
        merged[columns] = (n_chunks * (dump + load), merge)
        label = "with training columns" if columns else "histograms only"
        print(f"  chunk output, {label:<22s}: {size / 1024:8.1f} kB, pickle {1e3 * dump:.1f} + "
              f"unpickle {1e3 * load:.1f} ms; merging {n_chunks} outputs {merge:.2f} s")  # fmt: skip
    walls = {}
    for ex in ("iterative", "futures"):
        t0 = time.perf_counter()
        res = run_processor({"qcd": files}, DijetProcessor(), executor=ex,
                            workers=args.workers, chunksize=args.chunksize, status=False)  # fmt: skip
        walls[ex] = time.perf_counter() - t0
        assert res.report.events_processed == args.events
        print(f"  {ex:<9s} wall {walls[ex]:6.2f} s ({args.events / walls[ex]:,.0f} ev/s)")
    shipping, merge = merged[False]
    ideal = walls["iterative"] / args.workers
    print(f"  futures / iterative speed-up {walls['iterative'] / walls['futures']:.2f}; ideal "
          f"{args.workers}: {ideal:.2f} s. Overheads: pool start {t_pool:.2f} s, shipping "
          f"outputs {shipping:.2f} s, merging {merge:.2f} s (histograms only)")  # fmt: skip


if __name__ == "__main__":
    main()
