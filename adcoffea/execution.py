"""Run a processor over a fileset with coffea's executors, accounting for every event.

Executors: coffea's ``IterativeExecutor``, ``FuturesExecutor`` (loky process pool) and
``DaskExecutor`` on dask-distributed (a ``LocalCluster`` by default, or an existing scheduler
address as on an analysis facility), all driven by ``coffea.processor.Runner`` with virtual
arrays.

Event accounting: before processing, every file is opened (metadata only) and checked for the
tree and the branches the processor needs; a file that fails is named with its reason. While
processing, a chunk whose reading fails is recorded with its entry range rather than lost. The
:class:`RunReport` then satisfies ``processed + failed = total known`` for every dataset (and
every entry of every file lies in exactly one processed or failed chunk, checked), and
``strict=True`` turns the first failure into an error instead.

Why coffea's ``DaskExecutor`` rather than dask-awkward (``apply_to_fileset``): it runs with
the installed dask-distributed alone (a dask-awkward install resolves to versions that fail
at compute time), it retries per chunk and reschedules the chunks of dead workers, and its
per-chunk tasks are what the accounting and the checkpoints are built on.

Faults: dask reschedules the tasks of a dead worker (``distributed.scheduler.allowed-failures``
times); a run that still fails has its completed chunks checkpointed (``checkpoint_dir``,
atomic per-chunk pickles keyed by the processor's fingerprint), and ``resume=True`` skips
them on the rerun.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coffea import processor
from coffea.processor import CheckpointerABC

from adcoffea.errors import AdcoffeaError, ConfigError, InputFileError

log = logging.getLogger(__name__)

EXECUTORS = ("iterative", "futures", "dask")

#: Branches every run needs beyond the jet collection's: coffea's NanoAODSchema refuses a
#: file without the event ID branches (when building the events, outside the processor).
BASE_BRANCHES = ("run", "luminosityBlock", "event")
JET_FIELDS = ("pt", "eta", "phi", "mass")


# --------------------------------------------------------------------------------------
# filesets
# --------------------------------------------------------------------------------------
def normalise_fileset(fileset: Mapping[str, Any] | str | Path) -> dict[str, dict[str, Any]]:
    """Bring a fileset to coffea's ``{dataset: {"files": {path: tree}, "metadata": {...}}}``.

    Accepts that form, ``{dataset: [paths]}``, ``{dataset: {"files": [paths], "treename": t}}``
    or the path of a JSON file holding any of them.
    """
    source = "fileset"
    if isinstance(fileset, (str, Path)):
        source = str(fileset)
        try:
            fileset = json.loads(Path(fileset).read_text())
        except OSError as err:
            raise ConfigError(f"cannot read fileset {source}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"fileset {source} is not valid JSON: {err}") from None
    if not isinstance(fileset, Mapping) or not fileset:
        raise ConfigError(f"{source}: a fileset must be a non-empty mapping of dataset -> files")
    out: dict[str, dict[str, Any]] = {}
    for ds, spec in fileset.items():
        tree = "Events"
        meta: dict[str, Any] = {}
        if isinstance(spec, (list, tuple)):
            files = {str(f): tree for f in spec}
        elif isinstance(spec, Mapping) and "files" in spec:
            tree = spec.get("treename", tree)
            meta = dict(spec.get("metadata", {}) or {})
            raw = spec["files"]
            if isinstance(raw, Mapping):
                files = {str(f): (t if isinstance(t, str) else tree) for f, t in raw.items()}
            elif isinstance(raw, (list, tuple)):
                files = {str(f): tree for f in raw}
            else:
                raise ConfigError(f"{source}: dataset {ds!r}: 'files' must be a list or mapping")
        else:
            raise ConfigError(f"{source}: dataset {ds!r} must be a list of files or have 'files'")
        if not files:
            raise ConfigError(f"{source}: dataset {ds!r} has no files")
        out[str(ds)] = {"files": files, "metadata": meta}
    return out


# --------------------------------------------------------------------------------------
# accounting
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """A file, or an entry range of a file, that could not be processed."""

    dataset: str
    path: str
    reason: str
    entry_start: int | None = None
    entry_stop: int | None = None
    n_events: int | None = None  #: None when the file could not even be opened

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"[{self.entry_start}:{self.entry_stop}]" if self.entry_start is not None else ""
        return f"{self.path}{where} ({self.dataset}): {self.reason}"


@dataclass(frozen=True)
class RunReport:
    """What a run did with every input event.

    ``events_total`` counts the events of every readable file; a file that cannot be opened
    adds to ``files_failed`` with an unknown event count (listed in ``failures``).
    """

    executor: str
    chunksize: int
    workers: int
    wall_time: float
    datasets: dict[str, dict[str, int]]  #: dataset -> total/processed/failed events, files
    failures: tuple[Failure, ...] = ()
    chunks_processed: int = 0  #: including those taken from checkpoints
    resumed_chunks: int = 0

    @property
    def events_total(self) -> int:
        return sum(d["events_total"] for d in self.datasets.values())

    @property
    def events_processed(self) -> int:
        return sum(d["events_processed"] for d in self.datasets.values())

    @property
    def events_failed(self) -> int:
        return sum(d["events_failed"] for d in self.datasets.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "chunksize": self.chunksize,
            "workers": self.workers,
            "wall_time_s": round(self.wall_time, 3),
            "events_total": self.events_total,
            "events_processed": self.events_processed,
            "events_failed": self.events_failed,
            "chunks_processed": self.chunks_processed,
            "resumed_chunks": self.resumed_chunks,
            "datasets": self.datasets,
            "failures": [f.to_dict() for f in self.failures],
        }


@dataclass
class RunOutput:
    """The merged processor output and the run's accounting."""

    output: dict[str, Any]
    report: RunReport


# --------------------------------------------------------------------------------------
# pre-flight
# --------------------------------------------------------------------------------------
def _required_branches(processor_instance: Any) -> list[str]:
    sel = getattr(processor_instance, "selection", None)
    jets = getattr(sel, "jet_collection", "FatJet")
    return [*BASE_BRANCHES, f"n{jets}", *(f"{jets}_{f}" for f in JET_FIELDS)]


def preflight(
    fileset: dict[str, dict[str, Any]], *, required: Iterable[str], strict: bool = False
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], int], list[Failure]]:
    """Open every file (metadata only) and check its tree and required branches.

    Returns:
        The fileset of good files, the entry count per (dataset, path), and the failures.
    """
    from concurrent.futures import ThreadPoolExecutor

    required = list(required)
    todo = [
        (ds, path, tree) for ds, spec in fileset.items() for path, tree in spec["files"].items()
    ]
    # I/O bound (remote files especially): open them concurrently, report in fileset order
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(todo)))) as pool:
        checked = list(pool.map(lambda item: _check_file(item[1], item[2], required), todo))
    good: dict[str, dict[str, Any]] = {}
    entries: dict[tuple[str, str], int] = {}
    failures: list[Failure] = []
    for (ds, path, tree), (n, reason) in zip(todo, checked, strict=True):
        if reason is not None:
            failure = Failure(dataset=ds, path=path, reason=reason, n_events=n)
            if strict:
                raise InputFileError(path, reason)
            log.warning("skipping %s", failure)
            failures.append(failure)
        else:
            good.setdefault(ds, {"files": {}, "metadata": fileset[ds].get("metadata", {})})
            good[ds]["files"][path] = tree
            entries[(ds, path)] = n  # type: ignore[assignment]
    return good, entries, failures


def _check_file(path: str, tree: str, required: list[str]) -> tuple[int | None, str | None]:
    """(entries or None, failure reason or None) for one file."""
    import uproot

    if "://" not in path and not os.path.exists(path):
        return None, "file does not exist"
    try:
        with uproot.open(path) as f:
            if tree not in f:
                return None, f"no tree {tree!r} in file"
            t = f[tree]
            n = int(t.num_entries)
            keys = set(t.keys())
    except Exception as err:  # any unreadable file is reported, never a traceback
        return None, "cannot open as ROOT: " + _reason(err)
    missing = [b for b in required if b not in keys]
    if missing:
        return n, f"missing branch(es) {', '.join(missing)}"
    return n, None


# --------------------------------------------------------------------------------------
# the processor wrapper that records chunk failures instead of losing them
# --------------------------------------------------------------------------------------
class ChunkReadError(InputFileError):
    """An entry range of a file could not be read (picklable, so it crosses process pools)."""


#: Packages whose exceptions mean "the input could not be read", not a bug in our code.
_IO_PACKAGES = ("uproot", "fsspec", "cramjam", "lz4", "zstandard", "awkward/_connect")


def _read_errors() -> tuple[type[BaseException], ...]:
    import uproot

    errs: list[type[BaseException]] = [
        OSError,
        EOFError,
        zlib.error,
        InputFileError,
        uproot.exceptions.KeyInFileError,
    ]
    deser = getattr(uproot, "DeserializationError", None)
    if deser is not None:
        errs.append(deser)
    return tuple(errs)


def is_read_error(err: BaseException) -> bool:
    """Whether ``err`` comes from reading the input (I/O, decompression, deserialisation).

    Besides the usual I/O exception types, any exception raised inside uproot or its
    decompression libraries counts (a failed checksum is a ``ValueError`` there); anything
    else is a bug and must propagate.
    """
    if isinstance(err, _read_errors()):
        return True
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and any(f"/{pkg}/" in last for pkg in _IO_PACKAGES)


def _reason(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return " ".join(text.split())[:300]


class AccountingProcessor(processor.ProcessorABC):
    """Wraps a processor: records processed and failed chunks in the output.

    Every chunk adds ``_chunks[(dataset, path, start, stop)] = stop - start`` (processed) or
    ``_failed_chunks[(dataset, path, start, stop)] = reason`` (read error). In strict mode a
    read error raises :class:`ChunkReadError` instead, which stops the run.
    """

    def __init__(self, inner: Any, *, strict: bool = False) -> None:
        self.inner = inner
        self.strict = strict

    @property
    def selection(self):
        return getattr(self.inner, "selection", None)

    def process(self, events):
        meta = events.metadata
        chunk = (
            meta["dataset"],
            str(meta["filename"]),
            int(meta["entrystart"]),
            int(meta["entrystop"]),
        )
        try:
            out = self.inner.process(events)
        except Exception as err:
            if not is_read_error(err):
                raise
            where = f"entries [{chunk[2]}:{chunk[3]}]: "
            if self.strict:
                raise ChunkReadError(chunk[1], where + _reason(err)) from None
            return {"_failed_chunks": {chunk: _reason(err)}}
        out["_chunks"] = {chunk: chunk[3] - chunk[2]}
        return out

    def postprocess(self, accumulator):
        return self.inner.postprocess(accumulator)


# --------------------------------------------------------------------------------------
# resumability
# --------------------------------------------------------------------------------------
def processor_fingerprint(processor_instance: Any) -> str:
    """A short hash of a processor's configuration (and its model bundle's metadata).

    Checkpoints are stored under it, so a resumed run never mixes chunk outputs made with
    another selection, binning or model.
    """
    inner = getattr(processor_instance, "inner", processor_instance)
    config = repr(inner)
    if " at 0x" in config:  # default object repr: not stable across runs
        config = repr(sorted((k, repr(v)) for k, v in vars(inner).items()))
    desc = {"class": f"{type(inner).__module__}.{type(inner).__qualname__}", "config": config}
    # ``bundle`` (one path) or ``bundles`` ((label, path), ...): hash each one's metadata,
    # so a retrained model in the same directory invalidates the checkpoints
    paths = [getattr(inner, "bundle", None)] + [
        b[1] if isinstance(b, (tuple, list)) else b for b in getattr(inner, "bundles", ()) or ()
    ]
    digests = []
    for bundle in filter(None, paths):
        try:
            digests.append(hashlib.sha256(Path(bundle, "metadata.json").read_bytes()).hexdigest())
        except OSError:
            digests.append(str(bundle))
    if digests:
        desc["bundle"] = ",".join(digests)
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


class AtomicCheckpointer(CheckpointerABC):
    """Saves each chunk's output atomically; ``load`` returns it on a rerun (resume).

    Coffea calls ``load(metadata, processor)`` before and ``save(wrapped, metadata,
    processor)`` after processing a chunk, on the worker; ``wrapped`` is coffea's
    ``{"out": ..., "processed": {item}}``. Chunks are keyed by dataset, file UUID and entry
    range under the processor fingerprint. Failed chunks are never saved, so a resumed run
    retries exactly them. A loaded chunk is marked in ``out["_resumed"]`` so the caller can
    count resumed chunks (the checkpointer itself lives in the worker processes).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, metadata: Mapping[str, Any]) -> Path:
        # Both the UUID (the file's content identity) and the path: copies of one file share
        # a UUID, and a copy listed next to its original must not reuse its chunks.
        name = hashlib.sha256(str(metadata["filename"]).encode()).hexdigest()[:16]
        uid = f"{metadata.get('fileuuid') or 'nouuid'}-{name}"
        return (
            self.root
            / _safe_name(str(metadata["dataset"]))
            / uid
            / f"{metadata['entrystart']}-{metadata['entrystop']}.pkl"
        )

    def load(self, metadata, processor_instance):
        import cloudpickle

        path = self._path(metadata)
        if not path.exists():
            return None
        try:
            with path.open("rb") as f:
                wrapped = cloudpickle.load(f)
            out = wrapped["out"]
        except Exception:  # an unreadable checkpoint is recomputed
            return None
        out["_resumed"] = {
            (
                metadata["dataset"],
                str(metadata["filename"]),
                int(metadata["entrystart"]),
                int(metadata["entrystop"]),
            ): 1
        }
        return wrapped

    def save(self, output, metadata, processor_instance):
        import cloudpickle

        if "_failed_chunks" in output.get("out", {}):
            return  # failures are retried on the next run, never cached
        path = self._path(metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, cloudpickle.dumps(output))


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def make_checkpointer(directory: str | Path, processor_instance: Any) -> AtomicCheckpointer:
    """A checkpointer writing under ``directory/<processor fingerprint>/``."""
    return AtomicCheckpointer(Path(directory) / processor_fingerprint(processor_instance))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


# --------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------
@dataclass
class DaskSettings:
    """How to reach dask: an existing scheduler, or a ``LocalCluster`` of ``workers``."""

    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    dashboard: bool = True
    _cluster: Any = field(default=None, repr=False)


#: glibc: serve allocations below 1 GiB from the heap. The dask nanny sets
#: ``MALLOC_TRIM_THRESHOLD_``, which switches off glibc's adaptive mmap threshold, so every
#: large numpy/awkward temporary is mmap-ed and page-faulted anew: measured here, that
#: doubles a worker's time per chunk (system time 0.2 -> 0.9 s per 100k events).
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30)}


def local_worker_config() -> dict[str, Any]:
    """dask config for the worker processes of a ``LocalCluster`` (see ``WORKER_ENVIRON``)."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    return {"distributed.nanny.pre-spawn-environ": {**env, **WORKER_ENVIRON}}


def dask_client(settings: DaskSettings):
    """A ``distributed.Client``: joins ``settings.scheduler`` or starts a ``LocalCluster``.

    Prints the dashboard address. The caller closes the client (and ``settings._cluster``).
    """
    import dask
    from distributed import Client, LocalCluster

    # dask's config logs at INFO and records propagate to the CLI's root handler whatever
    # the root level: follow the root level instead (``adcoffea -v`` shows them)
    dlog = logging.getLogger("distributed")
    dlog.setLevel(max(dlog.getEffectiveLevel(), logging.getLogger().getEffectiveLevel()))
    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"--scheduler: cannot connect to dask scheduler {settings.scheduler}: {err}"
            ) from None
    else:
        with dask.config.set(local_worker_config()):
            cluster = LocalCluster(
                silence_logs=logging.WARNING,
                n_workers=settings.workers,
                threads_per_worker=settings.threads_per_worker,
                processes=True,
                dashboard_address=":0" if settings.dashboard else None,
            )
        settings._cluster = cluster
        client = Client(cluster)
        # A failed task is re-raised here with its traceback; the workers' own
        # "Compute Failed" log of it would only repeat it as a wall of text.
        client.run(_quiet_worker_logs)
    link = getattr(client, "dashboard_link", None)
    if link:
        print(f"dask dashboard: {link}", flush=True)
    return client


def _quiet_worker_logs() -> None:
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _no_dask_progress_tracebacks():
    """Stop coffea's dask progress bar from printing a rich traceback of a failed task.

    The error is raised to the caller anyway; in strict mode it is a user error whose
    one-line message is enough. Without that private hook (another coffea), nothing changes.
    """
    try:
        from coffea.processor._dask import RichProgressBar
    except ImportError:
        yield
        return
    original = getattr(RichProgressBar, "_draw_stop", None)
    if original is None:
        yield
        return

    def quiet(self, remaining, all, status, exception=None, **kwargs):
        return original(self, remaining, all, "finished" if status == "error" else status)

    RichProgressBar._draw_stop = quiet
    try:
        yield
    finally:
        RichProgressBar._draw_stop = original


def make_executor(
    name: str, *, workers: int = 2, retries: int = 3, status: bool = True, client: Any = None
):
    """The coffea executor called ``name`` (``iterative``, ``futures`` or ``dask``)."""
    if name == "iterative":
        return processor.IterativeExecutor(status=status, retries=retries)
    if name == "futures":
        return processor.FuturesExecutor(status=status, workers=workers, retries=retries)
    if name == "dask":
        return processor.DaskExecutor(client=client, status=status, retries=retries)
    raise ConfigError(f"executor: unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")


def _exception_chain(err: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        chain.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return chain


def _user_error(err: BaseException) -> AdcoffeaError | None:
    """The user-facing error inside a (possibly wrapped, possibly remote) exception."""
    for e in _exception_chain(err):
        if isinstance(e, AdcoffeaError):
            return e
    text = str(err)
    # Process pools and dask pickle the wrapping exception without its cause; the
    # original error survives only in the message, as ``ChunkReadError('path: reason')``.
    m = re.search(r"ChunkReadError\((['\"])(.*?)\1\)", text, flags=re.S)
    if m:
        path, _, reason = m.group(2).partition(": ")
        return ChunkReadError(path, reason)
    names = {type(e).__name__ for e in _exception_chain(err)}
    if names & {"TerminatedWorkerError", "BrokenProcessPool"}:
        return AdcoffeaError(
            "a worker process of the futures executor died (out of memory or a crash); the "
            "pool cannot recover: rerun with --resume to skip the checkpointed chunks, or use "
            "--executor dask, which reschedules the tasks of dead workers"
        )
    if "KilledWorker" in text or type(err).__name__ == "KilledWorker":
        return AdcoffeaError(
            "a dask worker died repeatedly while processing a chunk (out of memory or a "
            f"crash): {' '.join(text.split())[:400]}; completed chunks are checkpointed, "
            "rerun with --resume"
        )
    return None


def _check_coverage(
    entries: Mapping[tuple[str, str], int],
    done: Mapping[tuple[str, str, int, int], int],
    bad: Mapping[tuple[str, str, int, int], str],
) -> None:
    """Every entry of every processed file is in exactly one processed or failed chunk."""
    ranges: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for (ds, path, lo, hi), n in done.items():
        if n != hi - lo:  # a chunk merged twice counts twice
            raise AdcoffeaError(
                f"event accounting: chunk {path}[{lo}:{hi}] ({ds}) was counted {n // max(hi - lo, 1)} times"
            )
        ranges.setdefault((ds, path), []).append((lo, hi, 0))
    for ds, path, lo, hi in bad:
        ranges.setdefault((ds, path), []).append((lo, hi, 1))
    for key, n in entries.items():
        pos = 0
        for lo, hi, _ in sorted(ranges.get(key, [])) if n > 0 else []:
            if lo != pos:
                raise AdcoffeaError(
                    f"event accounting: {key[1]} ({key[0]}): entries [{pos}:{lo}] "
                    + ("missing" if lo > pos else "processed twice")
                )
            pos = hi
        if pos != n:
            raise AdcoffeaError(
                f"event accounting: {key[1]} ({key[0]}): covered {pos} of {n} entries"
            )


def run_processor(
    fileset: Mapping[str, Any] | str | Path,
    processor_instance: Any,
    *,
    executor: str = "futures",
    workers: int = 2,
    chunksize: int = 100_000,
    scheduler: str | None = None,
    retries: int = 3,
    strict: bool = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    keep_checkpoints: bool = False,
    status: bool = True,
    client: Any = None,
) -> RunOutput:
    """Run ``processor_instance`` over ``fileset`` and account for every event.

    Args:
        fileset: coffea fileset (any form :func:`normalise_fileset` accepts).
        processor_instance: a coffea ``ProcessorABC``.
        executor: ``iterative``, ``futures`` or ``dask``.
        workers: processes for ``futures``; workers of the ``LocalCluster`` for ``dask``.
        chunksize: entries per chunk.
        scheduler: dask scheduler address (``tcp://host:port``) to join instead of starting
            a ``LocalCluster``.
        retries: coffea's per-chunk retries for errors that are not read errors (dask also
            reschedules the tasks of dead workers, up to ``distributed.scheduler.allowed-failures``).
        strict: stop at the first failed file or chunk instead of reporting it.
        checkpoint_dir: save each chunk's output there (atomically, under the processor's
            fingerprint), so that an interrupted run can be resumed.
        resume: reuse the checkpoints of an earlier run; if false they are cleared first.
        keep_checkpoints: keep them after a run without failures (by default they are
            removed then; a run with failed chunks keeps them so a rerun redoes only those).
        status: show progress bars.
        client: an existing ``distributed.Client`` (overrides ``scheduler``).

    Raises:
        InputFileError: in strict mode, the first failure; otherwise if no file is readable.
        AdcoffeaError: a worker died repeatedly, or the event accounting does not close.
    """
    from coffea.nanoevents import NanoAODSchema

    NanoAODSchema.warn_missing_crossrefs = False
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor: unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})"
        )
    if chunksize < 1:
        raise ConfigError(f"chunksize must be positive, got {chunksize}")
    fs = normalise_fileset(fileset)
    good, entries, failures = preflight(
        fs, required=_required_branches(processor_instance), strict=strict
    )
    if not good and failures:
        raise InputFileError(
            failures[0].path, "no readable input file: " + "; ".join(str(f) for f in failures)
        )

    wrapped = AccountingProcessor(processor_instance, strict=strict)
    checkpointer = make_checkpointer(checkpoint_dir, processor_instance) if checkpoint_dir else None
    if checkpointer is not None and not resume and checkpointer.root.exists():
        shutil.rmtree(checkpointer.root)
    # Files with zero entries give coffea no chunk; they still count (as 0 events).
    nonempty = {
        ds: {
            "files": {p: t for p, t in spec["files"].items() if entries[(ds, p)] > 0},
            "metadata": spec["metadata"],
        }
        for ds, spec in good.items()
    }
    nonempty = {ds: spec for ds, spec in nonempty.items() if spec["files"]}
    start = time.perf_counter()
    own_client = None
    settings = DaskSettings(scheduler=scheduler, workers=workers)
    output: dict[str, Any] = {}
    try:
        if nonempty:
            if executor == "dask" and client is None:
                client = own_client = dask_client(settings)
            runner = processor.Runner(
                executor=make_executor(
                    executor, workers=workers, retries=retries, status=status, client=client
                ),
                chunksize=chunksize,
                schema=NanoAODSchema,
                checkpointer=checkpointer,
                skipbadfiles=False,
            )
            # In strict mode a failure is expected to end the run; coffea's futures executor
            # prints the traceback of any task error itself, so hold stderr back until it
            # is known whether the error is the user's (then the message is enough).
            held = io.StringIO() if strict else None
            try:
                with contextlib.ExitStack() as stack:
                    if held is not None:
                        stack.enter_context(contextlib.redirect_stderr(held))
                        stack.enter_context(_no_dask_progress_tracebacks())
                    output = runner(nonempty, wrapped, treename="Events")
            except Exception as err:
                user = _user_error(err)
                if user is not None:
                    raise user from None
                if held:
                    sys.stderr.write(held.getvalue())
                raise
            if held:
                sys.stderr.write(held.getvalue())
    finally:
        if own_client is not None:
            own_client.close()
            if settings._cluster is not None:
                settings._cluster.close()
    wall = time.perf_counter() - start

    done = output.pop("_chunks", {})
    bad_chunks = output.pop("_failed_chunks", {})
    resumed = output.pop("_resumed", {})
    _check_coverage(entries, done, bad_chunks)
    for (ds, path, lo, hi), reason in sorted(bad_chunks.items()):
        failures.append(
            Failure(
                dataset=ds,
                path=path,
                reason=reason,
                entry_start=lo,
                entry_stop=hi,
                n_events=hi - lo,
            )
        )
    datasets: dict[str, dict[str, int]] = {}
    for ds, spec in fs.items():
        d = datasets.setdefault(
            ds,
            {
                "files": len(spec["files"]),
                "files_failed": 0,
                "events_total": 0,
                "events_processed": 0,
                "events_failed": 0,
            },
        )
        for path in spec["files"]:
            if (ds, path) in entries:
                d["events_total"] += entries[(ds, path)]
    for (ds, _path, _lo, _hi), n in done.items():
        datasets[ds]["events_processed"] += n
    for f in failures:
        if f.entry_start is None:
            datasets[f.dataset]["files_failed"] += 1
            if f.n_events:
                datasets[f.dataset]["events_total"] += f.n_events
        datasets[f.dataset]["events_failed"] += f.n_events or 0
    for ds, d in datasets.items():
        known = d["events_processed"] + d["events_failed"]
        if known != d["events_total"]:
            raise AdcoffeaError(  # an accounting bug must never pass silently
                f"event accounting mismatch for dataset {ds!r}: processed {d['events_processed']} + "
                f"failed {d['events_failed']} != total {d['events_total']}"
            )
    report = RunReport(
        executor=executor,
        chunksize=chunksize,
        workers=workers,
        wall_time=wall,
        datasets=datasets,
        failures=tuple(failures),
        chunks_processed=len(done),
        resumed_chunks=len(resumed),
    )
    if checkpointer is not None and not failures and not keep_checkpoints:
        shutil.rmtree(checkpointer.root, ignore_errors=True)
    for f in failures:
        print(f"adcoffea: FAILED {f}", flush=True)
    return RunOutput(output=output, report=report)


# --------------------------------------------------------------------------------------
# CLI: adcoffea process
# --------------------------------------------------------------------------------------
def add_executor_arguments(parser) -> None:
    """The executor options shared by ``adcoffea process`` (and mirrored by ``run``)."""
    parser.add_argument("--executor", choices=EXECUTORS, default="futures")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes (futures) or LocalCluster workers (dask)"
    )
    parser.add_argument(
        "--scheduler", help="join an existing dask scheduler, e.g. tcp://host:8786 (dask)"
    )
    parser.add_argument("--chunksize", type=int, default=100_000, help="entries per chunk")
    parser.add_argument("--retries", type=int, default=3, help="retries per chunk")
    parser.add_argument("--strict", action="store_true", help="stop at the first failed file")
    parser.add_argument(
        "--resume", action="store_true", help="reuse the chunk checkpoints of an interrupted run"
    )
