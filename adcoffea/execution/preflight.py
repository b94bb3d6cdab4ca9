"""Pre-flight: open every file (metadata only) before any chunk runs.

Each file is checked for its tree and for every branch the processor and its models read
(:func:`required_branches`), its entry count and ROOT UUID are recorded (the chunks are cut
from them, so a file is opened for metadata exactly once), and it is compared with the
others:

* the same file reached by two path strings (``a/./f.root``, a symlink) is processed once,
  with a warning naming both strings; a different path with the same ROOT UUID and entry
  count (a copy or replica) is kept but warned about;
* a file shorter than the end offset its ROOT header declares (``fEND``) was truncated:
  the branches needed may still be readable (then the run goes on and the chunks whose
  baskets are gone are accounted as failed), but it is warned about;
* a file whose needed branches have baskets of more entries than a chunk (and at least
  :data:`LARGE_BASKET`) is warned about:
  every chunk decompresses the whole baskets it reads from, so a 1M-entry basket (a file
  written by uproot in one go) read in 100k chunks is decompressed ten times. On 1M events
  written with LZMA level 9, baskets of 682k entries made the dijet processor 5.6x slower
  than baskets of 50k (49k against 272k events/s, 100k chunks).

Remote files (``root://``) need the XRootD client (``pip install 'adcoffea[xrootd]'``), and
every open has a deadline (``timeout``): an unreachable host fails its files with
:class:`~adcoffea.errors.InputTimeoutError` reasons instead of hanging the run.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from adcoffea.errors import InputFileError, InputTimeoutError
from adcoffea.execution.accounting import Failure, _reason
from adcoffea.execution.filesets import is_remote

log = logging.getLogger("adcoffea.execution")

#: Branches every run needs beyond the jet collection's: coffea's NanoAODSchema refuses a
#: file without the event ID branches (when building the events, outside the processor).
BASE_BRANCHES = ("run", "luminosityBlock", "event")
JET_FIELDS = ("pt", "eta", "phi", "mass")

#: Baskets of fewer entries are not warned about when larger than a chunk: decompressing
#: them again costs milliseconds (the warning is for files written in one go, 100k+).
LARGE_BASKET = 10_000

#: Seconds a file may take to open (metadata only) before it counts as unreachable.
DEFAULT_TIMEOUT = 60.0
#: URL schemes read through the XRootD client.
XROOTD_SCHEMES = ("root", "roots")
XROOTD_HINT = (
    "reading root:// files needs the XRootD client: pip install 'adcoffea[xrootd]' "
    "(fsspec-xrootd), or copy the files locally"
)


@dataclass(frozen=True)
class BranchChoice:
    """A requirement met by any one of several branch sets (e.g. ``PFMET_*`` or ``MET_*``).

    Example:
        >>> met = BranchChoice("MET", (("PFMET_pt", "PFMET_phi"), ("MET_pt", "MET_phi")))
        >>> met.missing({"MET_pt", "MET_phi"}) is None
        True
        >>> met.missing({"MET_pt"})
        'MET: PFMET_pt, PFMET_phi or MET_phi'
    """

    what: str
    options: tuple[tuple[str, ...], ...]

    def missing(self, keys: set[str]) -> str | None:
        """None if one option is complete, else what the closest option lacks."""
        lacking = [[b for b in opt if b not in keys] for opt in self.options]
        if any(not m for m in lacking):
            return None
        return f"{self.what}: " + " or ".join(", ".join(m) for m in lacking)


Requirement = str | BranchChoice


def required_branches(processor_instance: Any) -> list[Requirement]:
    """The branches ``processor_instance`` reads: its own ``required_branches()`` when it
    has one (the search processors, including what their models need), else the event IDs
    and the jet four-vectors."""
    inner = getattr(processor_instance, "inner", processor_instance)
    own = getattr(inner, "required_branches", None)
    if callable(own):
        return list(own())
    sel = getattr(inner, "selection", None)
    jets = getattr(sel, "jet_collection", "FatJet")
    return [*BASE_BRANCHES, f"n{jets}", *(f"{jets}_{f}" for f in JET_FIELDS)]


_required_branches = required_branches  # the name before the split


def missing_branches(required: Iterable[Requirement], keys: set[str]) -> str | None:
    """``"missing branch(es) ..."`` naming what ``keys`` lacks, or None."""
    plain = [r for r in required if isinstance(r, str) and r not in keys]
    choices = [m for r in required if isinstance(r, BranchChoice) and (m := r.missing(keys))]
    if not plain and not choices:
        return None
    return "missing branch(es) " + "; ".join([", ".join(plain)] * bool(plain) + choices)


# --------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------
def resolved_path(path: str) -> str:
    """One spelling per file: the real path of a local file, a normalised URL otherwise."""
    if not is_remote(path):
        local = path[len("file://") :] if path.startswith("file://") else path
        return os.path.realpath(os.path.abspath(local))
    parts = urlsplit(path)
    norm = posixpath.normpath(parts.path) if parts.path else ""
    if parts.path.startswith("//"):  # XRootD: '//' starts an absolute path on the server
        norm = "//" + norm.lstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{norm}{query}"


def xrootd_available() -> bool:
    """Whether uproot can read ``root://`` URLs (fsspec-xrootd or the XRootD bindings)."""
    return any(importlib.util.find_spec(m) is not None for m in ("fsspec_xrootd", "XRootD"))


def check_remote_support(paths: Iterable[str]) -> None:
    """Refuse ``root://`` inputs up front when no XRootD client is installed.

    With remote inputs, the XRootD client is imported here, in the calling thread: the
    pre-flight opens files on worker threads, and importing the XRootD C extension for the
    first time on one of those (while another thread imports too) crashed the interpreter
    with a segmentation fault in a long test session.
    """
    remote = [p for p in paths if urlsplit(p).scheme.lower() in XROOTD_SCHEMES]
    if not remote:
        return
    if not xrootd_available():
        raise InputFileError(remote[0], XROOTD_HINT)
    for module in ("fsspec_xrootd", "XRootD.client"):
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            importlib.import_module(module)


# --------------------------------------------------------------------------------------
# opening files, with a deadline
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileInfo:
    """What the pre-flight learnt about one file."""

    entries: int | None = None
    reason: str | None = None  #: why the file cannot be processed; None if it can
    uuid: bytes = b""
    size: int | None = None  #: bytes on disk (or on the server)
    end: int | None = None  #: the ROOT header's fEND: where the file should end
    timed_out: bool = False
    #: the most entries in one basket of a needed branch, and that branch
    basket: tuple[int, str] | None = None

    @property
    def truncated(self) -> bool:
        return self.size is not None and self.end is not None and self.size < self.end


def _largest_basket(tree: Any, required: Sequence[Requirement]) -> tuple[int, str] | None:
    """The most entries in one basket of the ``required`` branches ``tree`` has, and where."""
    names = {r for r in required if isinstance(r, str)}
    names.update(b for r in required if isinstance(r, BranchChoice) for o in r.options for b in o)
    best: tuple[int, str] | None = None
    for name in sorted(names):
        if name not in tree:
            continue
        offsets = tree[name].entry_offsets  # from the branch's metadata: no basket is read
        if len(offsets) > 1:
            size = max(b - a for a, b in itertools.pairwise(offsets))
            if best is None or size > best[0]:
                best = (int(size), name)
    return best


def _open_metadata(
    path: str,
    tree: str,
    timeout: float,
    *,
    offer: bool = False,
    required: Sequence[Requirement] = (),
) -> tuple[int, set[str], bytes, int, int, tuple[int, str] | None]:
    """(entries, branch names, UUID, size, fEND, largest basket of the ``required``
    branches) of ``path``; raises on any failure.

    ``offer``: leave a local file open for the run's first chunk of it (:func:`work.offer
    <adcoffea.execution.work.offer>`; the iterative executor, in this process), opened as
    the chunk would open it, so that its metadata is read once.
    """
    import uproot

    from adcoffea.execution import work

    # the XRootD client takes whole seconds only (a float is a TypeError)
    seconds = max(1, math.ceil(timeout))
    offer = offer and not is_remote(path)
    if offer:  # the options of the chunk's open (chunk_work): the key of the hand-over
        options = work.open_options(path, {"timeout": seconds})
    else:
        options = {"timeout": seconds} if is_remote(path) else {}
    f = uproot.open({path: None} if offer else path, **options)
    kept = False
    try:
        if tree not in f:
            raise KeyError(f"no tree {tree!r} in file")
        t = f[tree]
        n = int(t.num_entries)
        keys = set(t.keys())
        source = f.file.source
        size = int(source.num_bytes) if getattr(source, "num_bytes", None) is not None else -1
        uuid = bytes(f.file.fUUID)
        basket = _largest_basket(t, required)
        if offer:
            kept = work.offer(path, tree, fileuuid=uuid, options={"timeout": seconds}, handle=f)
        return n, keys, uuid, size, int(f.file.fEND), basket
    finally:
        if not kept:
            f.close()


def check_file(
    path: str,
    tree: str,
    required: Sequence[Requirement],
    timeout: float,
    *,
    offer: bool = False,
) -> FileInfo:
    """Open ``path`` (metadata only) and check it; never raises for a bad file.

    ``offer``: leave the file open for this process's first chunk of it (see
    :func:`_open_metadata`).
    """
    if not is_remote(path) and not os.path.exists(resolved_path(path)):
        return FileInfo(reason="file does not exist")
    try:
        n, keys, uuid, size, end, basket = _open_metadata(
            path, tree, timeout, offer=offer, required=required
        )
    except KeyError as err:
        if str(err).strip("'\"").startswith("no tree"):
            return FileInfo(reason=str(err).strip("'\""))
        return FileInfo(reason="cannot open as ROOT: " + _reason(err))
    except TimeoutError as err:
        return FileInfo(reason=f"timed out opening the file: {_reason(err)}", timed_out=True)
    except Exception as err:  # any unreadable file is reported, never a traceback
        return FileInfo(reason="cannot open as ROOT: " + _reason(err))
    info = FileInfo(entries=n, uuid=uuid, size=size if size >= 0 else None, end=end, basket=basket)
    missing = missing_branches(required, keys)
    if missing:
        return FileInfo(entries=n, reason=missing, uuid=uuid, size=info.size, end=end)
    return info


_PENDING = object()


def map_with_deadline(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    timeout: float,
    on_timeout: Callable[[Any], Any],
    workers: int = 16,
) -> list[Any]:
    """``[fn(x) for x in items]`` on daemon threads; an item running longer than ``timeout``
    gets ``on_timeout(x)`` instead.

    A stuck call (an unreachable XRootD host keeps retrying for minutes, ignoring uproot's
    ``timeout``) is abandoned: its thread is a daemon, so it never blocks the run or the
    interpreter's exit the way a ``ThreadPoolExecutor`` thread would, and a fresh thread
    takes its place.
    """
    results: list[Any] = [_PENDING] * len(items)
    started: dict[int, float] = {}
    lock = threading.Condition()
    queue = list(range(len(items)))[::-1]

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
                started[i] = time.monotonic()
            try:
                value = fn(items[i])
            except BaseException as err:  # handed to the caller below
                value = err
            with lock:
                if results[i] is _PENDING:
                    results[i] = value
                started.pop(i, None)
                lock.notify_all()

    def spawn() -> None:
        threading.Thread(target=worker, daemon=True, name="adcoffea-preflight").start()

    for _ in range(max(1, min(workers, len(items)))):
        spawn()
    with lock:
        while any(r is _PENDING for r in results):
            now = time.monotonic()
            for i, t0 in list(started.items()):
                if now - t0 > timeout and results[i] is _PENDING:
                    results[i] = on_timeout(items[i])
                    del started[i]
                    spawn()  # the stuck thread is lost to the pool
            lock.wait(timeout=min(0.2, timeout))
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


# --------------------------------------------------------------------------------------
# the pre-flight of a fileset
# --------------------------------------------------------------------------------------
@dataclass
class PreflightResult:
    """The files that can be processed and everything known about the others."""

    good: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[tuple[str, str], int] = field(default_factory=dict)
    uuids: dict[tuple[str, str], bytes] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: (dataset, path, the path it duplicates): listed twice, processed once
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __iter__(self):  # the (good, entries, failures) tuple of ``preflight`` before
        return iter((self.good, self.entries, self.failures))


def check_fileset(
    fileset: dict[str, dict[str, Any]],
    *,
    required: Iterable[Requirement],
    strict: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    offer: bool = False,
    chunksize: int | None = None,
) -> PreflightResult:
    """Open every file (metadata only) and check its tree and required branches.

    ``offer``: leave a few files open for this process's chunks to take over (the
    iterative executor; ``run_processor`` closes what is left at the end of the run).
    ``chunksize``: the run's; a file with baskets of more entries is warned about.

    Raises:
        InputFileError: ``root://`` files without an XRootD client; in strict mode, the
            first failed file (an :class:`InputTimeoutError` for one that timed out).
    """
    required = list(required)
    res = PreflightResult()
    todo: list[tuple[str, str, str]] = []
    seen: dict[tuple[str, str], str] = {}  # (dataset, resolved path) -> first spelling
    for ds, spec in fileset.items():
        for path, tree in spec["files"].items():
            key = (ds, resolved_path(path))
            if key in seen:
                res.duplicates.append((ds, path, seen[key]))
                _warn(res, f"{path} ({ds}) is the same file as {seen[key]}: processed once")
                continue
            seen[key] = path
            todo.append((ds, path, tree))
    check_remote_support(p for _, p, _ in todo)

    def check(item: tuple[str, str, str]) -> FileInfo:
        return check_file(item[1], item[2], required, timeout, offer=offer)

    def too_slow(item: tuple[str, str, str]) -> FileInfo:
        host = urlsplit(item[1]).netloc
        where = f" (is the host {host} reachable?)" if host else ""
        return FileInfo(
            reason=f"timed out after {timeout:g} s opening the file{where}", timed_out=True
        )

    # I/O bound (remote files especially): open them concurrently, report in fileset order
    checked = map_with_deadline(check, todo, timeout=timeout, on_timeout=too_slow)
    by_uuid: dict[tuple[str, bytes, int], str] = {}
    for (ds, path, tree), info in zip(todo, checked, strict=True):
        if info.reason is not None:
            if strict:
                cls = InputTimeoutError if info.timed_out else InputFileError
                raise cls(path, info.reason)
            failure = Failure(dataset=ds, path=path, reason=info.reason, n_events=info.entries)
            log.warning("skipping %s", failure)
            res.failures.append(failure)
            continue
        assert info.entries is not None
        if info.truncated:
            _warn(
                res,
                f"{path} ({ds}) is truncated: {info.size} bytes, its ROOT header says "
                f"{info.end}; chunks whose baskets are lost will fail",
            )
        if (
            chunksize
            and info.basket is not None
            and info.basket[0] > max(chunksize, LARGE_BASKET - 1)
        ):
            size, branch = info.basket
            _warn(
                res,
                f"{path} ({ds}): baskets of up to {size:,} entries ({branch}), more than the "
                f"chunk size {chunksize:,}: every chunk decompresses the whole baskets it "
                f"reads from, up to {math.ceil(size / chunksize)}x the reading this file "
                f"needs; use a chunk size of at least {size:,}, or write the file with "
                "smaller baskets",
            )
        if info.uuid and info.entries:
            twin = by_uuid.setdefault((ds, info.uuid, info.entries), path)
            if twin != path:
                _warn(
                    res,
                    f"{path} ({ds}) has the ROOT UUID and entry count of {twin}: a copy? "
                    "both are processed; list one of them if they are replicas",
                )
        res.good.setdefault(ds, {"files": {}, "metadata": fileset[ds].get("metadata", {})})
        res.good[ds]["files"][path] = tree
        res.entries[(ds, path)] = info.entries
        res.uuids[(ds, path)] = info.uuid
    return res


def _warn(res: PreflightResult, message: str) -> None:
    log.warning("%s", message)
    res.warnings.append(message)
