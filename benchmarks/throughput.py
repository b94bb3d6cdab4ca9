"""Processor throughput against plain uproot reading of the same branches, in one run.

    python benchmarks/throughput.py [--events 1000000] [--chunksize 100000]
                                    [--bundle DIR | --cwola [--cwola-kind bdt|mlp]]
                                    [--no-constituents] [--memory | --memory-only]
                                    [--nanoaod FILE]

Prints events/s of (iterative executor, one core, the same file, best of ``--repeat``
rounds over all workloads, after one warm-up run of each):

* uproot reading the branches the dijet processor needs (the I/O floor: the faster of
  uproot's default source and the local file source adcoffea reads with) and the dijet
  processor without a model: ratio processor / read (issue 15 target >= 0.5);
* the processor with an anomaly score: ``--bundle`` an existing bundle, or ``--cwola`` a
  CWoLa k-fold ensemble (5 folds, trained here on toy LHCO features, cached) of the
  default classifier (``--cwola-kind bdt``: boosted trees, 10 members per fold, as
  ``adcoffea train`` makes it) or of networks (``mlp``: 3 x 64 hidden units, 1 member):
  ratio to the read (target >= 0.4) and to the processor without a model;
* the constituent workload (``benchmarks/scaling.py``'s ``ConstituentDijet``: the dijet
  processor plus every selected jet's padded particles, the ANTELOPE/VRNN inputs) against
  uproot reading those branches too (skip with ``--no-constituents``);
* the dijet processor and the read on the same events written as CMS writes NanoAOD
  (``NANOAODSIMEventContent``: LZMA level 9; the dijet branches only, copied once from the
  LZ4 file into ``--cache``, in baskets of 50k events as the generator writes): there decompression is most of reading, and the ratio is the
  one an analyst sees on production files (skip with ``--no-lzma``);
* the dijet processor's own work on one chunk whose branches are read already (what the
  processor adds beyond reading and building the events);
* building a chunk's NanoEvents from a real CMS NanoAOD v15 tree (2656 branches; the
  sample in ``shared/data/nanoaod`` or ``--nanoaod``): coffea's whole-tree events against
  adcoffea's (the dijet processor's collections only, the tree's metadata memoised per
  open file), per chunk; the synthetic files have a few dozen branches and hide this cost;
* ``--memory``: the peak memory (VmHWM, reset after the imports) of a fresh process running
  chunks of ``--chunksize`` events and of 100k, with and without constituents, and its
  increase over the same process just before the chunk (imports done). ``--memory-only``:
  only that.

Absolute numbers depend on the machine and its load; compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

BRANCHES = [
    "event",
    "genWeight",
    "nFatJet",
    *(f"FatJet_{f}" for f in ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")),
]
CONSTITUENT_BRANCHES = [
    "nFatJetPFCand",
    "FatJetPFCand_jetIdx",
    "FatJetPFCand_pfCandIdx",
    "nPFCand",
    *(f"PFCand_{f}" for f in ("pt", "eta", "phi", "mass")),
]


def _processor(workload: str, bundle: str | None = None):
    from adcoffea.processors import DijetProcessor

    if workload == "constituents":
        sys.path.insert(0, str(HERE))
        from scaling import ConstituentDijet

        return ConstituentDijet()
    return DijetProcessor(bundles=(("model", bundle),) if bundle else ())


def _vm(key: str) -> float:
    """A ``/proc/self/status`` memory figure in MB (VmRSS: now; VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _memory_child(path: str, workload: str, chunksize: int) -> None:
    """In a fresh process: RSS before and peak RSS during the chunks (printed as JSON).

    The peak (VmHWM) is reset after the imports (``/proc/self/clear_refs``), so it is the
    peak while processing, not that of importing the libraries.
    """
    from adcoffea.execution import run_processor

    proc = _processor(workload)
    import awkward  # noqa: F401  (everything a worker imports, before the baseline)
    import coffea.processor  # noqa: F401
    import hist  # noqa: F401

    import_peak = _vm("VmHWM")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS
    before = _vm("VmRSS")
    t0 = time.perf_counter()
    res = run_processor(
        {"qcd": [path]}, proc, executor="iterative", chunksize=chunksize, status=False
    )
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "workload": workload,
                "events": res.report.events_processed,
                "chunks": res.report.chunks_processed,
                "import_peak_mb": import_peak,
                "before_mb": before,
                "peak_mb": _vm("VmHWM"),
                "wall_s": wall,
            }
        )
    )


def memory(path: Path, chunksize: int) -> None:
    for size in sorted({100_000, chunksize}):
        _memory(path, size)


def _memory(path: Path, chunksize: int) -> None:
    print(f"peak memory of one process running {path.name} in chunks of {chunksize}:")
    for workload in ("light", "constituents"):
        out = subprocess.run(
            [sys.executable, __file__, "--_memory-child", str(path), workload, str(chunksize)],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((s for s in out.stdout.splitlines() if s.startswith("{")), None)
        if out.returncode or line is None:
            print(f"  {workload}: failed (exit {out.returncode})\n{out.stderr[-2000:]}")
            continue
        r = json.loads(line)
        label = "with constituents" if workload == "constituents" else "without constituents"
        print(
            f"  {label:<21}: peak RSS {r['peak_mb']:6.0f} MB, {r['peak_mb'] - r['before_mb']:5.0f}"
            f" MB over the process before the chunk ({r['before_mb']:.0f} MB after imports, "
            f"peak while importing {r['import_peak_mb']:.0f} MB); "
            f"{r['events']} events in {r['chunks']} chunk(s), {r['wall_s']:.1f} s"
        )


def _default_nanoaod() -> Path | None:
    env = os.environ.get("ADCOFFEA_SHARED_DATA")
    roots = [Path(env)] if env else [p / "shared" / "data" for p in HERE.parents]
    for root in roots:
        cand = root / "nanoaod" / "nano_tt_v15.root"
        if cand.is_file():
            return cand
    return None


def own_work(path: Path, chunksize: int, repeat: int = 30) -> None:
    """The dijet processor's own work on one chunk whose branches are already read: its
    first chunk's events built and ``process`` run once (reading every column), then
    ``process`` timed again, best of ``repeat``."""
    import warnings

    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from adcoffea.processors import DijetProcessor

    proc = DijetProcessor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the schema's notes on absent cross-references
        events = NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual",
            entry_stop=chunksize, metadata={"dataset": "qcd", "filename": str(path)},
        ).events()  # fmt: skip
        proc.process(events)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            proc.process(events)
            times.append(time.perf_counter() - t0)
    print(
        f"dijet processor's own work on a read chunk of {len(events):,} events: "
        f"{min(times) * 1e3:.2f} ms (selection, features, histograms; best of {repeat})"
    )


def events_construction(path: Path, repeat: int = 10) -> None:
    """Per-chunk time to build NanoEvents on a wide real tree: whole tree against adcoffea's."""
    import warnings

    import uproot
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from adcoffea.execution.nanoevents import BranchFilter
    from adcoffea.execution.work import close_files, open_tree
    from adcoffea.processors import DijetProcessor

    with uproot.open(path) as f:
        uuid, n_branches = bytes(f.file.fUUID), len(f["Events"].keys())
    keep = BranchFilter.of(DijetProcessor().collections())

    def build(handle, options) -> float:
        t0 = time.perf_counter()
        NanoEventsFactory.from_root(
            file=handle, treepath="Events", schemaclass=NanoAODSchema, mode="virtual",
            iteritems_options=options,
        ).events()  # fmt: skip
        return time.perf_counter() - t0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the schema's notes on absent cross-references
        whole_handle = uproot.open(path)  # coffea's own: no memo
        ours = open_tree(str(path), "Events", fileuuid=uuid, options={})
        try:
            t_whole, t_ours = [], []
            for _ in range(repeat + 1):  # the first of each is a warm-up
                t_whole.append(build(whole_handle, {}))
                t_ours.append(build(ours, {"filter_branch": keep}))
        finally:
            whole_handle.close()
            close_files()
    a, b = min(t_whole[1:]), min(t_ours[1:])
    print(
        f"NanoEvents per chunk, NanoAOD v15 ({n_branches} branches): whole tree "
        f"{a * 1e3:.1f} ms, adcoffea (dijet collections, memoised tree) {b * 1e3:.1f} ms "
        f"({a / b:.1f}x faster)"
    )


def _lzma_copy(path: Path) -> Path:
    """The run, event, weight and FatJet branches of ``path``, written with LZMA level 9."""
    out = path.with_name(f"{path.stem}_dijet_lzma9_b50k.root")
    if out.exists():
        return out
    import awkward as ak
    import uproot

    from adcoffea.synthetic.nanoaod import write_events

    t0 = time.perf_counter()
    with uproot.open(path) as f:
        tree = f["Events"]
        fields = [k.split("_", 1)[1] for k in tree.keys(filter_name="FatJet_*")]
        top = ["run", "luminosityBlock", "event", "genWeight"]

        def chunks():
            # one basket per 50k events, as the generator writes (a basket larger than a chunk
            # is decompressed again by every chunk that reads from it)
            branches = [*top, *(f"FatJet_{x}" for x in fields)]
            for a in tree.iterate(branches, step_size=50_000, how=dict):
                out = {k: a[k] for k in top}
                out["FatJet"] = ak.zip({x: a[f"FatJet_{x}"] for x in fields})
                yield out

        write_events(out, chunks(), compression=uproot.LZMA(9))
    print(f"wrote {out.name} (LZMA 9) in {time.perf_counter() - t0:.0f} s")
    return out


def _cwola_bundle(cache: Path, kind: str) -> Path:
    """A CWoLa ensemble (5 folds) of ``kind`` on toy LHCO features, trained once.

    ``bdt``: the default classifier with its default members per fold (10); ``mlp``: one
    network per fold.
    """
    path = cache / f"cwola_{kind}_bundle"
    from adcoffea.models.bundle import METADATA_FILE

    if (path / METADATA_FILE).exists():
        return path
    from adcoffea.config import TrainConfig
    from adcoffea.models import toy
    from adcoffea.models.bundle import save_bundle
    from adcoffea.models.train import train_model

    t0 = time.perf_counter()
    # boosted trees stop early without a signal to learn (300 signal events: 32 trees for
    # 50 members), which would flatter the scoring time: 1500 (630 trees)
    inputs, _ = toy.lhco_features(50_000, 1500 if kind == "bdt" else 300, seed=3)
    res = train_model(
        "cwola",
        inputs,
        config=TrainConfig(epochs=3, seed=3),
        hyperparameters={"classifier": kind, **({"members": 1} if kind == "mlp" else {})},
        observable=inputs.high_level["mjj"],
        signal_region=(3300.0, 3700.0),
        sidebands=(3100.0, 3900.0),
        progress=False,
    )
    save_bundle(res.bundle, path)
    print(f"trained the CWoLa {kind} ensemble (toy features) in {time.perf_counter() - t0:.0f} s")
    return path


def _describe(bundle: Path) -> str:
    """Folds, members and, for boosted trees, trees of a CWoLa bundle."""
    from adcoffea.models.bundle import load_bundle

    b = load_bundle(bundle)
    kfold = b.metadata.kfold or {}
    nets = list(b.networks.values())
    trees = sum(len(n.offsets) - 1 for n in nets if hasattr(n, "offsets"))
    what = f"{kfold.get('k', '?')} folds x {kfold.get('ensemble', '?')} members"
    return what + (f", {trees} trees in all" if trees else "")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_memory-child":
        _memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from adcoffea.config import DEFAULT_CHUNKSIZE

    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--chunksize", type=int, default=DEFAULT_CHUNKSIZE)
    ap.add_argument("--cache", type=Path, default=Path("data/synthetic/bench_throughput"))
    ap.add_argument("--bundle", type=Path, default=None, help="model bundle for the scored run")
    ap.add_argument("--cwola", action="store_true", help="score with a toy CWoLa ensemble")
    ap.add_argument("--cwola-kind", choices=("bdt", "mlp"), default="bdt")
    ap.add_argument("--no-constituents", action="store_true")
    ap.add_argument("--no-lzma", action="store_true", help="skip the LZMA 9 (CMS) comparison")
    ap.add_argument("--memory", action="store_true", help="also the peak memory per chunk")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="best of N timings")
    ap.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc malloc's thresholds as they are (the adcoffea command and the "
        "futures workers tune them: adcoffea.execution.allocator)",
    )
    ap.add_argument(
        "--nanoaod", type=Path, default=None, help="a wide real NanoAOD file (default: v15 sample)"
    )
    args = ap.parse_args()

    import resource

    import numpy as np
    import uproot

    from adcoffea.execution import run_processor
    from adcoffea.execution.allocator import tune_allocator
    from adcoffea.synthetic import generate

    tuned = not args.default_allocator and tune_allocator()

    path = args.cache / f"qcd_{args.events}_0.root"
    if not path.exists():
        t0 = time.perf_counter()
        generate(
            "qcd", n_events=args.events, seed=11, out_dir=args.cache, name=f"qcd_{args.events}"
        )
        print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s")
    if args.memory_only:
        memory(path, args.chunksize)
        return
    fileset = {"qcd": [str(path)]}
    bundle = args.bundle or (_cwola_bundle(args.cache, args.cwola_kind) if args.cwola else None)

    # The I/O floor is the faster of uproot's default source (fsspec) and the plain local
    # file source adcoffea's workers use, so the ratio is never flattered by a slow reference.
    local = {"handler": uproot.source.file.MultithreadedFileSource, "use_threads": False}

    def read_uproot(branches, source=path, **options):
        with uproot.open(source, **options) as f:
            for _ in f["Events"].iterate(branches, step_size=args.chunksize):
                pass

    def run(workload="light", bundle=None, files=fileset):
        proc = _processor(workload, str(bundle) if bundle else None)
        run_processor(files, proc, executor="iterative", chunksize=args.chunksize, status=False)

    both = BRANCHES + CONSTITUENT_BRANCHES
    timed = {
        "read": lambda: read_uproot(BRANCHES),
        "read_local": lambda: read_uproot(BRANCHES, **local),
        "proc": run,
    }
    if bundle:
        timed["model"] = lambda: run(bundle=bundle)
    if not args.no_constituents:
        timed["read_cons"] = lambda: read_uproot(both)
        timed["read_cons_local"] = lambda: read_uproot(both, **local)
        timed["cons"] = lambda: run("constituents")
    if not args.no_lzma:
        lzma = _lzma_copy(path)
        timed["read_lzma"] = lambda: read_uproot(BRANCHES, lzma, **local)
        timed["proc_lzma"] = lambda: run(files={"qcd": [str(lzma)]})
    # Rounds over every workload, best of --repeat each: on a shared machine whose speed
    # drifts, a read and a processor run measured next to each other see the same state.
    times: dict[str, list[float]] = {k: [] for k in timed}
    # CPU time of the process (every thread): the time another tenant of a shared machine
    # takes from a run does not count in it, so its ratio drifts less than the wall time's
    cpu: dict[str, list[float]] = {k: [] for k in timed}
    faults: dict[str, int] = {}
    for fn in timed.values():
        fn()  # warm-up (imports, the page cache, the CWoLa bundle's first load)
    for _ in range(args.repeat):
        for key, fn in timed.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
            faults[key] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    t = {k: min(v) for k, v in times.items()}

    def spread(read_keys: tuple[str, ...], key: str) -> str:
        """The ratio of each round (read and run measured next to each other): a shared
        machine's speed drifts between rounds, and this shows by how much."""
        per_round = [
            min(times[r][i] for r in read_keys) / times[key][i] for i in range(args.repeat)
        ]
        by_cpu = min(min(cpu[r]) for r in read_keys) / min(cpu[key])
        return (
            f"per round: median {np.median(per_round):.2f}, "
            f"{min(per_round):.2f}-{max(per_round):.2f}; in CPU time: {by_cpu:.2f}"
        )

    n = args.events
    print(
        f"allocator: {'glibc thresholds tuned, as the adcoffea command' if tuned else 'default'}"
        f"; page faults of the last dijet processor run: {faults['proc']:,} "
        f"({faults['proc'] / n * 1e6:,.0f} per million events)"
    )
    t_io, t_proc = min(t["read"], t["read_local"]), t["proc"]
    print(
        f"uproot read of {len(BRANCHES)} branches    : {n / t_io:12,.0f} events/s "
        f"(default source {n / t['read']:,.0f}, local file source {n / t['read_local']:,.0f})"
    )
    print(
        f"dijet processor (iterative)       : {n / t_proc:12,.0f} events/s "
        f"(ratio to uproot read: {t_io / t_proc:.2f}; target >= 0.5; "
        f"{spread(('read', 'read_local'), 'proc')})"
    )
    if bundle:
        t_model = t["model"]
        which = f"CWoLa {args.cwola_kind}" if args.cwola and not args.bundle else "anomaly score"
        print(
            f"dijet processor + {which:<16}: {n / t_model:12,.0f} events/s "
            f"(ratio to uproot read: {t_io / t_model:.2f}, target >= 0.4; "
            f"to processor without model: {t_proc / t_model:.2f}; "
            f"{spread(('read', 'read_local'), 'model')})"
        )
        print(f"  the ensemble: {_describe(bundle)}")
    if not args.no_constituents:
        t_cio, t_cons = min(t["read_cons"], t["read_cons_local"]), t["cons"]
        print(
            f"uproot read of {len(both)} branches (+ PFCand): {n / t_cio:12,.0f} events/s "
            f"(default source {n / t['read_cons']:,.0f}, "
            f"local file source {n / t['read_cons_local']:,.0f})"
        )
        print(
            f"processor + constituents          : {n / t_cons:12,.0f} events/s "
            f"(ratio to uproot read of those branches: {t_cio / t_cons:.2f}; "
            f"{spread(('read_cons', 'read_cons_local'), 'cons')})"
        )
    if not args.no_lzma:
        t_lz, t_plz = t["read_lzma"], t["proc_lzma"]
        print(
            f"LZMA 9 (CMS NanoAOD): uproot read : {n / t_lz:12,.0f} events/s; dijet processor "
            f"{n / t_plz:,.0f} events/s (ratio to the read: {t_lz / t_plz:.2f}; "
            f"{spread(('read_lzma',), 'proc_lzma')})"
        )
    own_work(path, args.chunksize)
    wide = args.nanoaod or _default_nanoaod()
    if wide is not None and not wide.is_file():
        print(f"NanoEvents on a wide NanoAOD tree: {wide} does not exist")
    elif wide is not None:
        events_construction(wide)
    else:
        print("NanoEvents on a wide NanoAOD tree: no sample found (pass --nanoaod)")
    if args.memory:
        memory(path, args.chunksize)


if __name__ == "__main__":
    main()
