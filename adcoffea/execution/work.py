"""The per-chunk work function: coffea's, with each input file opened once per worker.

coffea's ``Runner._work_function`` opens the input file for every chunk, and building
NanoEvents then deserialises the TTree's metadata (every TBranch streamer) again: about
20 ms per chunk for a NanoAOD-like tree, a quarter of the dijet processor's time for a
100k-event chunk (``benchmarks/throughput.py``). :func:`chunk_work` does the same work with
the opened files kept per worker thread (:func:`open_tree`), so every chunk of a file after
the first reuses the deserialised tree and its branches' interpretations.

The open files are keyed by path, tree, the file's ROOT UUID (a rewritten file is a new
file) and the uproot options; at most :data:`MAX_OPEN_FILES` stay open per thread, the least
recently used is closed first, and :func:`close_files` closes them all (``run_processor``
calls it at the end of a run; worker processes close theirs when they exit). The cache is
per thread because uproot file handles are not meant to be shared between threads.

A chunk's events are built from the processor's collections only, and a kept-open tree
answers coffea's per-chunk metadata questions from a memo (:mod:`adcoffea.execution.nanoevents`);
with the iterative executor the chunks also take over the files the pre-flight opened
(:func:`offer`).

Only what adcoffea runs takes this path: ROOT input, a NanoEvents schema, virtual arrays.
Anything else (parquet, dataframes) is handed to coffea's own work function.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

from adcoffea.execution.nanoevents import memoise_tree_metadata

#: Input files kept open per worker thread (a chunk loop visits files one after another,
#: so a handful covers the interleaving of a dask worker's tasks).
MAX_OPEN_FILES = 4

_local = threading.local()


class _OpenFiles(OrderedDict):
    """One thread's open files (a subclass, so that the registry can hold it weakly); a
    thread that ends closes its files with it."""

    def __del__(self) -> None:
        for handle in self.values():
            handle.close()


#: every live thread's open files, so that :func:`close_files` can close them all at the
#: end of a run (a dask worker's task threads outlive the run); held weakly, so the tables
#: of threads that ended do not pile up in a long-lived worker
_every_thread: weakref.WeakValueDictionary[int, _OpenFiles] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()
_table_ids = itertools.count()


def _open_files() -> _OpenFiles:
    files = getattr(_local, "files", None)
    if files is None:
        files = _local.files = _OpenFiles()
        with _registry_lock:
            _every_thread[next(_table_ids)] = files
    return files


#: ``uproot.open`` options of a chunk's input file. No array cache: chunks never re-read the
#: same entries, and a cache of up to 100 MB per open file would only hold memory.
OPEN_OPTIONS: dict[str, Any] = {"array_cache": None}


def open_options(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``uproot.open`` options of ``path``: ours, then the run's ``options`` on top.

    A local file is read with plain ``read`` calls in the calling thread
    (``MultithreadedFileSource`` with ``use_threads=False``). uproot's default source for
    every path is fsspec's, which hands each request to an event-loop thread and waits for
    it: NanoEvents reads each branch with its own request, and the ten dijet branches of a
    100k-event chunk took 14 ms that way against 4 ms (``benchmarks/throughput.py``). A
    memory-mapped file (``uproot.MemmapSource``) is as fast, but every page it touches counts
    in the worker's resident memory while the file stays open (the constituents of a
    1M-event file peaked at 1.96 GB RSS against 1.0 GB), and dask's memory limits act on
    RSS. No reader threads also keeps a worker to one core. URLs (remote files,
    ``file://``) keep uproot's defaults.
    """
    import uproot

    ours = dict(OPEN_OPTIONS)
    if "://" not in path:  # a plain local path (a file:// URL keeps uproot's own handling)
        ours.update(handler=uproot.source.file.MultithreadedFileSource, use_threads=False)
    return {**ours, **options}


def _key(path: str, treename: str, fileuuid: bytes, options: dict[str, Any]) -> tuple:
    return (path, treename, bytes(fileuuid), tuple(sorted(options.items(), key=lambda kv: kv[0])))


#: Files the pre-flight opened and left open for a chunk of this process to take over
#: (:func:`offer`): with the iterative executor a file's metadata is then read once per
#: run, not twice. At most this many, so that a large fileset does not hold a descriptor
#: per file.
MAX_OFFERED = 4
_offered: OrderedDict[tuple, Any] = OrderedDict()
_offered_lock = threading.Lock()


def offer(
    path: str, treename: str, *, fileuuid: bytes, options: dict[str, Any], handle: Any
) -> bool:
    """Leave ``handle`` (opened with :func:`open_options` of ``options``) for the first
    :func:`open_tree` of the same file, tree, UUID and options, in any thread.

    Returns:
        Whether it was taken (False: :data:`MAX_OFFERED` are waiting, or no UUID is known;
        the caller closes it).
    """
    if not fileuuid:
        return False
    key = _key(path, treename, fileuuid, options)
    with _offered_lock:
        if key in _offered or len(_offered) >= MAX_OFFERED:
            return False
        _offered[key] = handle
    return True


def withdraw_offers() -> None:
    """Close the offered files no chunk took (the end of a run)."""
    with _offered_lock:
        handles = list(_offered.values())
        _offered.clear()
    for handle in handles:
        handle.close()


def open_tree(path: str, treename: str, *, fileuuid: bytes, options: dict[str, Any]) -> Any:
    """The opened ``uproot.ReadOnlyDirectory`` of ``path``, reused across chunks.

    Args:
        path: the file's path or URL, as coffea's work item names it.
        treename: the tree the chunk reads (part of the key: the file stays one handle).
        fileuuid: the file's ROOT UUID from the pre-flight (b"" when unknown: then the file
            is opened afresh and not kept, since a rewritten file could not be told apart).
        options: keyword arguments of ``uproot.open`` (``timeout`` included).

    Returns:
        The opened file. Its object cache holds the TTree once read, so a second chunk of
        the same file skips the metadata.
    """
    import uproot

    key = _key(path, treename, fileuuid, options)
    files = _open_files()
    if fileuuid and key in files:
        if not files[key].closed:
            files.move_to_end(key)
            return files[key]
        del files[key]  # closed by close_files(every_thread=True) meanwhile
    with _offered_lock:
        handle = _offered.pop(key, None)
    if handle is None or handle.closed:
        handle = uproot.open({path: None}, **open_options(path, options))
    if not fileuuid:
        return handle
    files[key] = handle
    if treename in handle:
        memoise_tree_metadata(handle[treename])
    while len(files) > MAX_OPEN_FILES:
        _, old = files.popitem(last=False)
        old.close()
    return handle


def discard(path: str) -> None:
    """Close and forget this thread's open handles of ``path`` (after a failed chunk, the
    next chunk opens the file afresh rather than reusing a handle in an unknown state)."""
    files = _open_files()
    for key in [k for k in files if k[0] == path]:
        files.pop(key).close()


def close_files(*, every_thread: bool = False) -> None:
    """Close every input file this thread keeps open (``every_thread``: every thread's).

    ``every_thread`` is meant for the end of a run, when no chunk is being processed; a
    thread whose file was closed under it opens the file again on its next chunk.
    """
    if every_thread:
        with _registry_lock:
            tables = list(_every_thread.values())
    else:
        tables = [_open_files()]
    for files in tables:
        for key in list(files):
            handle = files.pop(key, None)
            if handle is not None:
                handle.close()


def chunk_work(
    format: str,
    xrootdtimeout: int,
    schema: Any,
    use_dataframes: bool,
    savemetrics: bool,
    item: Any,
    processor_instance: Any,
    uproot_options: dict,
    iteritems_options: dict,
    checkpointer: Any,
    cache_function: Callable[[], MutableMapping],
) -> dict:
    """Process one coffea work item, as ``coffea.processor.Runner._work_function`` does.

    The same arguments, output (``{"out": ..., "processed": {item}}``, with ``metrics``
    when ``savemetrics``), checkpoint handling and error wrapping; the file comes from
    :func:`open_tree` instead of a fresh ``uproot.open``.
    """
    from coffea import processor
    from coffea.nanoevents import schemas

    if format != "root" or use_dataframes or not issubclass(schema, schemas.BaseSchema):
        return processor.Runner._work_function(
            format,
            xrootdtimeout,
            schema,
            use_dataframes,
            savemetrics,
            item,
            processor_instance,
            uproot_options,
            iteritems_options,
            checkpointer,
            cache_function,
        )
    options = dict(uproot_options)
    options["timeout"] = options.pop("timeout", xrootdtimeout)
    metadata = {
        "dataset": item.dataset,
        "filename": item.filename,
        "treename": item.treename,
        "entrystart": item.entrystart,
        "entrystop": item.entrystop,
        "fileuuid": str(uuid.UUID(bytes=item.fileuuid)) if len(item.fileuuid) > 0 else "",
    }
    if item.usermeta is not None:
        metadata.update(item.usermeta)
    if checkpointer is not None:
        out = checkpointer.load(metadata, processor_instance)
        if out is not None:
            return out

    try:
        file = open_tree(item.filename, item.treename, fileuuid=item.fileuuid, options=options)
    except Exception as e:
        raise Exception(f"Failed to open file: {item!r}. The error was: {e!r}.") from e
    try:
        return _process_chunk(
            file,
            item,
            metadata,
            schema,
            processor_instance,
            iteritems_options,
            savemetrics,
            checkpointer,
            cache_function,
        )
    finally:
        if not item.fileuuid:  # not kept open by open_tree
            file.close()


def _process_chunk(
    file: Any,
    item: Any,
    metadata: dict,
    schema: Any,
    processor_instance: Any,
    iteritems_options: dict,
    savemetrics: bool,
    checkpointer: Any,
    cache_function: Callable[[], MutableMapping],
) -> dict:
    from coffea import processor
    from coffea.nanoevents import NanoEventsFactory

    bytes_before = file.file.source.num_requested_bytes
    try:
        materialized: list = []
        events = NanoEventsFactory.from_root(
            file=file,
            treepath=item.treename,
            schemaclass=schema,
            metadata=metadata,
            access_log=materialized,
            mode="virtual",
            entry_start=item.entrystart,
            entry_stop=item.entrystop,
            iteritems_options=iteritems_options,
            preload=item.preload,
            buffer_cache=cache_function(),
        ).events()
    except Exception as e:
        discard(item.filename)
        raise Exception(f"Failed creating nanoevents: {item!r}. The error was: {e!r}.") from e
    tic = time.time()
    try:
        if isinstance(processor_instance, processor.ProcessorABC):
            out = processor_instance.process(events)
        else:
            out = processor_instance(events)
    except Exception as e:
        discard(item.filename)
        raise Exception(f"Failed processing file: {item!r}. The error was: {e!r}.") from e
    if out is None:
        raise ValueError("Output of process() should not be None.")
    toc = time.time()
    if savemetrics:
        from coffea.nanoevents.util import key_to_tuple

        metrics = {
            # the handle is reused across chunks: this chunk's bytes only
            "bytesread": file.file.source.num_requested_bytes - bytes_before,
            "columns": {f"{x.branch}-{key_to_tuple(x.buffer_key)[3]}" for x in materialized},
            "entries": len(events),
            "processtime": toc - tic,
        }
        out = {"out": out, "metrics": metrics, "processed": {item}}
    else:
        out = {"out": out, "processed": {item}}
    if checkpointer is not None:
        checkpointer.save(out, metadata, processor_instance)
    return out
