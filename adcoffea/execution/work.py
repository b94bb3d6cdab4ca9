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

Building NanoEvents for a chunk also costs in proportion to the tree's branches, not to
what the processor reads: coffea lists every branch's type name and builds a virtual form
for every branch. A CMS NanoAOD v15 tree has 2656 branches: 112 ms per chunk, ten times the
read of a dijet processor's branches. Two things bring it to 15 ms:

* a processor that names the collections it reads (``collections()`` of the adcoffea
  processors) gets events holding only those (:class:`BranchFilter`, passed to coffea as
  ``iteritems_options``); any other processor gets the whole tree, as before;
* the tree of a file kept open answers coffea's per-chunk metadata questions (every
  branch's type name, the filtered branch list) from a per-tree memo
  (:func:`memoise_tree_metadata`): they depend on the file only.

Only what adcoffea runs takes this path: ROOT input, a NanoEvents schema, virtual arrays.
Anything else (parquet, dataframes) is handed to coffea's own work function.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class BranchFilter:
    """Keeps the branches of the named NanoAOD collections and top-level branches.

    A branch belongs to the collection before the first ``_`` of its name (``FatJet_pt``:
    ``FatJet``); a collection's counter (``nFatJet``) comes with it. Used as coffea's
    ``iteritems_options={"filter_branch": ...}``, so that NanoEvents build the form of
    these branches only. Frozen and hashable: it is a key of the per-tree memo, and it is
    pickled to the workers with the run.

    Example:
        >>> keep = BranchFilter.of(["FatJet", "event"])
        >>> [keep.keeps(n) for n in ("FatJet_pt", "nFatJet", "event", "Jet_pt", "nJet")]
        [True, True, True, False, False]
    """

    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> BranchFilter:
        return cls(frozenset(names))

    def keeps(self, branch_name: str) -> bool:
        head = branch_name.split("_", 1)[0]
        return head in self.names or (head[:1] == "n" and head[1:] in self.names)

    def __call__(self, branch: Any) -> bool:
        return self.keeps(branch.name)


def collection_of(branch_name: str) -> str:
    """The NanoAOD collection (or top-level branch) a branch belongs to.

    Example:
        >>> collection_of("FatJetPFCand_jetIdx"), collection_of("genWeight")
        ('FatJetPFCand', 'genWeight')
    """
    return branch_name.split("_", 1)[0]


#: Argument sets remembered per memoised method: coffea asks with one or two (the whole
#: tree, the processor's filter); a caller passing fresh filter objects every time is
#: answered the slow way once this many are kept, so the memo cannot grow without bound.
MEMO_ENTRIES = 8


def _memo(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with its results kept per arguments (generators kept as lists)."""
    cache: dict[Any, tuple[bool, Any]] = {}

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (args, tuple(sorted(kwargs.items())))
            hit = cache.get(key)
        except TypeError:  # unhashable arguments (a list of names)
            return method(*args, **kwargs)
        if hit is None:
            if len(cache) >= MEMO_ENTRIES:
                return method(*args, **kwargs)
            out = method(*args, **kwargs)
            generator = inspect.isgenerator(out)
            hit = cache[key] = (generator, list(out) if generator else out)
        generator, value = hit
        if generator:
            return iter(value)
        return dict(value) if isinstance(value, dict) else value

    call.memo = cache  # type: ignore[attr-defined]  # what it holds (for the tests)
    return call


def memoise_tree_metadata(tree: Any) -> None:
    """Answer ``typenames()`` and ``iteritems()`` of ``tree`` from a memo from now on.

    NanoEvents call both on every chunk (every branch's C++ type name; the branches to
    build the form from), and neither changes while the file is open. Set on the tree
    object of a file kept open (uproot's object cache hands the same object to every
    chunk); a tree object read afresh simply answers the slow way again.
    """
    if getattr(tree, "_adcoffea_memo", False):
        return
    tree.typenames = _memo(tree.typenames)
    tree.iteritems = _memo(tree.iteritems)
    tree._adcoffea_memo = True


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
