"""Run a processor over a fileset with coffea's executors, accounting for every event.

Executors: coffea's ``IterativeExecutor``, ``FuturesExecutor`` (loky process pool) and
``DaskExecutor`` on dask-distributed (a ``LocalCluster`` by default, or an existing scheduler
address as on an analysis facility), all driven by ``coffea.processor.Runner`` with virtual
arrays.

Event accounting: before processing, the processor's model bundles are loaded and checked
(one :class:`~adcoffea.errors.ModelBundleError` before any chunk runs), and every file is
opened once, with a deadline, for its metadata and checked for the tree and every branch the
processor and its models read (:mod:`adcoffea.execution.preflight`); a file that fails is
named with its reason. The chunks are cut from that metadata, so coffea does not open every
file again. While processing, a chunk whose reading fails, including a file that can no
longer be opened (deleted, server gone), is recorded with its entry range rather than lost. The
:class:`RunReport` then satisfies ``processed + failed = total known`` for every dataset (and
every entry of every file lies in exactly one processed or failed chunk, checked), and
``strict=True`` turns the first failure into an error instead.

Why coffea's ``DaskExecutor`` rather than dask-awkward (``apply_to_fileset``): it runs with
the installed dask-distributed alone (a dask-awkward install resolves to versions that fail
at compute time), it retries per chunk and reschedules the chunks of dead workers, and its
per-chunk tasks are what the accounting and the checkpoints are built on.

Faults: dask reschedules the tasks of a dead worker (``distributed.scheduler.allowed-failures``
times); a run that still fails has its completed chunks checkpointed (``checkpoint_dir``,
atomic per-chunk archives keyed by the processor's fingerprint, in a format that cannot run
code: see :mod:`adcoffea.execution.safeio`), and ``resume=True`` skips them on the rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from coffea import processor

from adcoffea.config import DEFAULT_CHUNKSIZE
from adcoffea.errors import AdcoffeaError, ConfigError, InputFileError, InternalError
from adcoffea.execution import preflight as _preflight
from adcoffea.execution.accounting import (
    EXIT_INPUT_FAILURES,
    AccountingProcessor,
    AccountingRunner,
    ChunkReadError,
    Failure,
    NonFinite,
    RunOutput,
    RunReport,
    _check_coverage,
    canonical_column_order,
    exception_chain,
    is_read_error,
)
from adcoffea.execution.allocator import tune_allocator
from adcoffea.execution.checkpoint import (
    AtomicCheckpointer,
    make_checkpointer,
    processor_fingerprint,
)
from adcoffea.execution.dask import (
    WORKER_ENVIRON,
    DaskSettings,
    _no_dask_progress_tracebacks,
    dask_client,
    local_worker_config,
)
from adcoffea.execution.filesets import normalise_fileset
from adcoffea.execution.nanoevents import BranchFilter
from adcoffea.execution.preflight import (
    BASE_BRANCHES,
    DEFAULT_TIMEOUT,
    JET_FIELDS,
    BranchChoice,
    PreflightResult,
    required_branches,
)
from adcoffea.execution.work import close_files, withdraw_offers
from adcoffea.outputs import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

EXECUTORS = ("iterative", "futures", "dask")


@dataclasses.dataclass
class QuietIterativeExecutor(processor.IterativeExecutor):
    """coffea's iterative executor without its progress display (``status=False``).

    coffea starts a rich live display for every run, its task merely hidden when the
    status is off: the display's start, refresh thread and stop cost ~3 ms a run (a tenth
    of a 200k-event run of the dijet processor), and it printed the finished bar anyway.
    """

    def __call__(self, items: Any, function: Callable, accumulator: Any) -> Any:
        if len(items) == 0:
            return accumulator
        return processor.accumulate(map(function, items), accumulator), 0


def make_executor(
    name: str,
    *,
    workers: int = 2,
    retries: int = 3,
    status: bool = True,
    client: Any = None,
    pool: Any = None,
):
    """The coffea executor called ``name`` (``iterative``, ``futures`` or ``dask``).

    ``pool``: a running pool of futures workers (:func:`futures_pool`) to use instead of
    starting one for this run.
    """
    if name == "iterative":
        cls = processor.IterativeExecutor if status else QuietIterativeExecutor
        return cls(status=status, retries=retries)
    if name == "futures":
        return processor.FuturesExecutor(
            status=status,
            workers=workers,
            retries=retries,
            pool=worker_pool_factory() if pool is None else pool,
        )
    if name == "dask":
        return processor.DaskExecutor(client=client, status=status, retries=retries)
    raise ConfigError(f"executor: unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")


def worker_pool_factory():
    """coffea's default loky pool, whose workers stop when this process dies.

    A SIGKILLed main process cannot shut its pool down; without a watchdog the loky
    workers went on processing chunks for more than 90 s, writing checkpoints.
    """
    import functools

    import loky

    from adcoffea.execution.allocator import LOKY_LEAK_BYTES

    return functools.partial(
        loky.ProcessPoolExecutor,
        initializer=init_worker,
        initargs=(os.getpid(),),
        # the workers keep freed chunk memory on purpose (init_worker): loky's leak check
        # must not take that for a leak and restart them (LOKY_LEAK_BYTES)
        env={"LOKY_MAX_MEMORY_LEAK_SIZE": str(LOKY_LEAK_BYTES)},
    )


@contextlib.contextmanager
def futures_pool(workers: int) -> Iterator[Any]:
    """One pool of futures workers for several runs (a pipeline's training and processing
    runs): its workers start once (1.3-1.6 s each time here: ``executor_overheads.py``).

    The workers start with the first task. On leaving the block normally the pool waits for
    its workers to finish; on an error it kills them, so that no task of a failed run goes
    on in the background.

    Example:
        >>> with futures_pool(1) as pool:
        ...     pool.submit(sum, [1, 2]).result()
        3
    """
    pool = worker_pool_factory()(max_workers=workers)
    ok = False
    try:
        yield pool
        ok = True
    finally:
        pool.shutdown(wait=ok, kill_workers=not ok)


def init_worker(parent_pid: int) -> None:
    """Initializer of the futures executor's workers: the allocator tuned for chunk after
    chunk (:mod:`adcoffea.execution.allocator`), and a watchdog on the parent."""
    tune_allocator()
    watch_parent(parent_pid)


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Worker initializer: exit as soon as ``parent_pid`` is no longer our parent.

    A daemon thread polls ``os.getppid()`` (a dead parent's orphans are re-parented), so
    the check runs while the worker's main thread is busy in a chunk.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(3)

    if os.getppid() != parent_pid:  # spawned by a helper process: nothing to watch
        return
    threading.Thread(target=watch, daemon=True, name="adcoffea-parent-watchdog").start()


_exception_chain = exception_chain


def _user_error(err: BaseException) -> AdcoffeaError | None:
    """The user-facing error inside a (possibly wrapped, possibly remote) exception."""
    for e in _exception_chain(err):
        if isinstance(e, AdcoffeaError):
            return e
    text = str(err)
    # Process pools and dask pickle the wrapping exception without its cause; the
    # original error survives only in the message, as ``ChunkReadError('path: reason')``
    # (or ``InputFileError(...)``: a branch or collection the processor lacks).
    m = re.search(r"(ChunkReadError|InputFileError)\((['\"])(.*?)\2\)", text, flags=re.S)
    if m:
        path, _, reason = m.group(3).partition(": ")
        cls = ChunkReadError if m.group(1) == "ChunkReadError" else InputFileError
        return cls(path, reason)
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


def events_branches(processor_instance: Any) -> dict[str, Any]:
    """coffea's ``iteritems_options`` for the chunks' events: only the collections the
    processor names (its ``collections()``), or the whole tree (``{}``) for a processor
    that names none."""
    inner = getattr(processor_instance, "inner", processor_instance)
    own = getattr(inner, "collections", None)
    names = own() if callable(own) else None
    return {} if names is None else {"filter_branch": BranchFilter.of(names)}


def run_processor(
    fileset: Mapping[str, Any] | str | Path,
    processor_instance: Any,
    *,
    executor: str = "futures",
    workers: int = 2,
    chunksize: int = DEFAULT_CHUNKSIZE,
    scheduler: str | None = None,
    retries: int = 3,
    strict: bool = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    keep_checkpoints: bool = False,
    status: bool = True,
    client: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    pool: Any = None,
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
        pool: for ``futures``, a running pool of workers (:func:`futures_pool`) instead of
            one started for this run (and shut down after it).
        timeout: seconds a file may take to open (pre-flight and each chunk) before it
            counts as failed (an unreachable XRootD host).

    Raises:
        InputFileError: in strict mode, the first failure; otherwise if no file is readable,
            or ``root://`` files without an XRootD client.
        ModelBundleError: a model bundle is tampered with or does not fit the processor.
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
    # models are loaded and checked against the processor's inputs here, in the main
    # process: a bad bundle is one message before any chunk runs, on every executor
    check_models = getattr(processor_instance, "check_models", None)
    if callable(check_models):
        check_models()
    try:
        # the iterative executor's chunks run in this process: they take over the files the
        # pre-flight opened (a file's metadata read once, not twice)
        pre = _preflight.check_fileset(
            fs,
            required=required_branches(processor_instance),
            strict=strict,
            timeout=timeout,
            offer=executor == "iterative",
            chunksize=chunksize,
        )
        entries, failures = pre.entries, list(pre.failures)
        if not pre.good and failures:
            raise InputFileError(
                failures[0].path, "no readable input file: " + "; ".join(str(f) for f in failures)
            )

        # the files in the run's order: the collected columns are put in it at the end
        file_order = {(ds, path): i for i, (ds, path) in enumerate(entries)}
        wrapped = AccountingProcessor(processor_instance, strict=strict, file_order=file_order)
        checkpointer = (
            make_checkpointer(checkpoint_dir, processor_instance) if checkpoint_dir else None
        )
        if checkpointer is not None and not resume and checkpointer.root.exists():
            shutil.rmtree(checkpointer.root)
        items = work_items(pre, chunksize)
    except BaseException:
        withdraw_offers()  # files the pre-flight left open for chunks that will not run
        raise
    start = time.perf_counter()
    own_client = None
    settings = DaskSettings(scheduler=scheduler, workers=workers)
    output: dict[str, Any] = {}
    try:
        if items:
            if executor == "dask" and client is None:
                client = own_client = dask_client(settings)
            runner = AccountingRunner(
                executor=make_executor(
                    executor,
                    workers=workers,
                    retries=retries,
                    status=status,
                    client=client,
                    pool=pool,
                ),
                chunksize=chunksize,
                schema=NanoAODSchema,
                checkpointer=checkpointer,
                skipbadfiles=False,
                xrootdtimeout=max(1, math.ceil(timeout)),
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
                    # the chunks are cut from the pre-flight's metadata: coffea does not open
                    # every file a second time before processing
                    output = runner(
                        items,
                        wrapped,
                        treename="Events",
                        iteritems_options=events_branches(processor_instance),
                    )
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
        close_files()  # the inputs the iterative executor kept open in this process
        withdraw_offers()  # and those the pre-flight left open that no chunk took
        if executor == "dask" and client is not None and settings._cluster is None:
            # the workers of a cluster we do not own outlive the run: close the inputs
            # their task threads keep open (best effort: a lost worker has none left)
            with contextlib.suppress(Exception):
                client.run(close_files, every_thread=True)
        if own_client is not None:
            own_client.close()
            if settings._cluster is not None:
                settings._cluster.close()
    wall = time.perf_counter() - start

    canonical_column_order(output)
    done = output.pop("_chunks", {})
    bad_chunks = output.pop("_failed_chunks", {})
    resumed = output.pop("_resumed", {})
    nonfinite = tuple(
        NonFinite(dataset=ds, path=path, what=what, events=int(n))
        for (ds, path, what), n in sorted(output.pop("_nonfinite", {}).items())
        if n
    )
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
                "files_duplicate": 0,
                "events_total": 0,
                "events_processed": 0,
                "events_failed": 0,
                "events_nonfinite_kinematics": 0,
            },
        )
        for path in spec["files"]:
            if (ds, path) in entries:
                d["events_total"] += entries[(ds, path)]
    for ds, _path, _same in pre.duplicates:
        datasets[ds]["files_duplicate"] += 1
    for (ds, _path, _lo, _hi), n in done.items():
        datasets[ds]["events_processed"] += n
    for nf in nonfinite:
        if nf.what == "kinematics":
            datasets[nf.dataset]["events_nonfinite_kinematics"] += nf.events
    for f in failures:
        if f.entry_start is None:
            datasets[f.dataset]["files_failed"] += 1
            if f.n_events:
                datasets[f.dataset]["events_total"] += f.n_events
        datasets[f.dataset]["events_failed"] += f.n_events or 0
    for ds, d in datasets.items():
        known = d["events_processed"] + d["events_failed"]
        if known != d["events_total"]:
            raise InternalError(  # an accounting bug must never pass silently
                f"event accounting mismatch for dataset {ds!r}: processed {d['events_processed']} + "
                f"failed {d['events_failed']} != total {d['events_total']}"
            )
    for nf in nonfinite:
        log.warning("%s", nf)
    report = RunReport(
        executor=executor,
        chunksize=chunksize,
        workers=workers,
        wall_time=wall,
        datasets=datasets,
        failures=tuple(failures),
        chunks_processed=len(done),
        resumed_chunks=len(resumed),
        nonfinite=nonfinite,
        duplicates=tuple(pre.duplicates),
        warnings=tuple(pre.warnings) + tuple(str(nf) for nf in nonfinite),
    )
    if checkpointer is not None and not failures and not keep_checkpoints:
        shutil.rmtree(checkpointer.root, ignore_errors=True)
    for f in failures:
        log.warning("FAILED %s", f)
    return RunOutput(output=output, report=report)


def work_items(pre: PreflightResult, chunksize: int) -> list[Any]:
    """coffea ``WorkItem`` chunks of every non-empty good file, cut as coffea cuts them.

    Built from the pre-flight's entry counts and UUIDs. Files with zero entries give no
    chunk; they still count (as 0 events).
    """
    from coffea.processor.executor import FileMeta

    items: list[Any] = []
    for ds, spec in pre.good.items():
        for path, tree in spec["files"].items():
            n = pre.entries[(ds, path)]
            if n == 0:
                continue
            meta = {**(spec.get("metadata") or {}), "numentries": n, "uuid": pre.uuids[(ds, path)]}
            items.extend(FileMeta(ds, path, tree, meta).chunks(chunksize, False))
    return items


__all__ = [
    "BASE_BRANCHES",
    "DEFAULT_TIMEOUT",
    "EXECUTORS",
    "EXIT_INPUT_FAILURES",
    "JET_FIELDS",
    "WORKER_ENVIRON",
    "AccountingProcessor",
    "AtomicCheckpointer",
    "BranchChoice",
    "ChunkReadError",
    "DaskSettings",
    "Failure",
    "NonFinite",
    "PreflightResult",
    "RunOutput",
    "RunReport",
    "atomic_write_bytes",
    "atomic_write_text",
    "dask_client",
    "is_read_error",
    "local_worker_config",
    "make_checkpointer",
    "make_executor",
    "normalise_fileset",
    "processor_fingerprint",
    "required_branches",
    "run_processor",
    "work_items",
]
