"""Event accounting: failures, the run report, and the wrapper that records chunk failures.

Every chunk adds its entry range to the output as processed or failed (a read error); the
:class:`RunReport` then satisfies ``processed + failed = total known`` for every dataset.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from coffea import processor

from adcoffea.errors import AdcoffeaError, ChunkReadError, InputFileError, InternalError
from adcoffea.execution.work import chunk_work, discard


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


#: Exit status of a command whose run completed but lost input events (0: none lost, or
#: the user allowed it; 1: a crash; 2: a user error; 130: interrupted).
EXIT_INPUT_FAILURES = 3


@dataclass(frozen=True)
class NonFinite:
    """Events of a file with non-finite values: ``what`` is ``"kinematics"`` (jets or MET
    with NaN/inf; the event fails the ``finite_kinematics`` cut) or ``"score:<model>"`` (the
    model gave NaN/inf; the event is in no score region and not in the score histogram)."""

    dataset: str
    path: str
    what: str
    events: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        if self.what == "kinematics":
            return (
                f"{self.path} ({self.dataset}): {self.events} event(s) with non-finite jet/MET "
                "kinematics (NaN/inf) removed by the 'finite_kinematics' cut"
            )
        return (
            f"{self.path} ({self.dataset}): {self.events} event(s) with a non-finite "
            f"{self.what.partition(':')[2]} score, kept out of every score region"
        )


@dataclass(frozen=True)
class RunReport:
    """What a run did with every input event.

    ``events_total`` counts the events of every readable file; a file that cannot be opened
    adds to ``files_failed`` with an unknown event count (listed in ``failures``). A file
    listed twice under two spellings is processed once (``duplicates``).
    """

    executor: str
    chunksize: int
    workers: int
    wall_time: float
    datasets: dict[str, dict[str, int]]  #: dataset -> total/processed/failed events, files
    failures: tuple[Failure, ...] = ()
    chunks_processed: int = 0  #: including those taken from checkpoints
    resumed_chunks: int = 0
    nonfinite: tuple[NonFinite, ...] = ()
    #: (dataset, path, the path it duplicates)
    duplicates: tuple[tuple[str, str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def events_total(self) -> int:
        return sum(d["events_total"] for d in self.datasets.values())

    @property
    def events_processed(self) -> int:
        return sum(d["events_processed"] for d in self.datasets.values())

    @property
    def events_failed(self) -> int:
        return sum(d["events_failed"] for d in self.datasets.values())

    @property
    def files_unopened(self) -> int:
        """Failed files whose event count is unknown (they could not be opened)."""
        return sum(1 for f in self.failures if f.n_events is None)

    def loss_summary(self) -> str | None:
        """One line on the events lost to failed inputs, or None if nothing was lost.

        Example:
            >>> r = RunReport("iterative", 10, 1, 0.0, {"a": {"events_total": 30,
            ...     "events_processed": 20, "events_failed": 10}},
            ...     failures=(Failure("a", "f.root", "OSError", 0, 10, 10),))
            >>> r.loss_summary()
            '10 of 30 events (33.3 %) lost in 1 failed file(s)'
        """
        if not self.failures:
            return None
        files = len({(f.dataset, f.path) for f in self.failures})
        share = 100.0 * self.events_failed / self.events_total if self.events_total else 100.0
        text = (
            f"{self.events_failed} of {self.events_total} events ({share:.1f} %) lost in "
            f"{files} failed file(s)"
        )
        if self.files_unopened:
            text += f", {self.files_unopened} of them unreadable (event count unknown)"
        return text

    def exit_code(self, *, allow_failures: bool = False) -> int:
        """0 if no input was lost or ``allow_failures``, else :data:`EXIT_INPUT_FAILURES`.

        Example:
            >>> r = RunReport("iterative", 10, 1, 0.0, {}, failures=(Failure("a", "x", "gone"),))
            >>> r.exit_code(), r.exit_code(allow_failures=True)
            (3, 0)
        """
        return EXIT_INPUT_FAILURES if self.failures and not allow_failures else 0

    def outcome(self, command: str, *, allow_failures: bool = False) -> tuple[int, str | None]:
        """The exit status of ``adcoffea <command>`` and the message to print with it."""
        lost = self.loss_summary()
        if lost is None:
            return 0, None
        if allow_failures:
            return 0, f"adcoffea {command}: warning: {lost} (allowed by --allow-failures)"
        return self.exit_code(), (
            f"adcoffea {command}: error: {lost}; the outputs are incomplete. Fix or remove "
            "the failed inputs and rerun with --resume (only the failed chunks are redone), "
            "or accept the loss with --allow-failures (executor.allow_failures: true)"
        )

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
            "nonfinite": [n.to_dict() for n in self.nonfinite],
            "duplicates": [{"dataset": d, "path": p, "same_as": o} for d, p, o in self.duplicates],
            "warnings": list(self.warnings),
        }


@dataclass
class RunOutput:
    """The merged processor output and the run's accounting."""

    output: dict[str, Any]
    report: RunReport


# --------------------------------------------------------------------------------------
# the processor wrapper that records chunk failures instead of losing them
# --------------------------------------------------------------------------------------
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


#: The per-row column that puts the collected columns in a canonical order (see
#: :func:`canonical_column_order`); removed before the output is returned.
ORDER_COLUMN = "_chunk_order"
#: entries of one file below 2**40: the order key is ``file index << 40 | entry start``
_ENTRY_BITS = 40


class AccountingProcessor(processor.ProcessorABC):
    """Wraps a processor: records processed and failed chunks in the output.

    Every chunk adds ``_chunks[(dataset, path, start, stop)] = stop - start`` (processed) or
    ``_failed_chunks[(dataset, path, start, stop)] = reason`` (read error). In strict mode a
    read error raises :class:`ChunkReadError` instead, which stops the run.

    With ``file_order`` ((dataset, path) -> index in the run), every row of the processor's
    ``columns`` gets its chunk's place in the run (:data:`ORDER_COLUMN`), so that the merged
    columns can be put in the same order whatever order the chunks finished in.
    """

    def __init__(
        self,
        inner: Any,
        *,
        strict: bool = False,
        file_order: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.inner = inner
        self.strict = strict
        self.file_order = dict(file_order or {})

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
            undeclared = _undeclared_field(err, events, self.inner)
            if undeclared is not None:
                raise InputFileError(chunk[1], undeclared) from None
            if not is_read_error(err):
                raise
            discard(chunk[1])  # the next chunk of this file opens it afresh
            where = f"entries [{chunk[2]}:{chunk[3]}]: "
            if self.strict:
                raise ChunkReadError(chunk[1], where + _reason(err)) from None
            return {"_failed_chunks": {chunk: _reason(err)}}
        out["_chunks"] = {chunk: chunk[3] - chunk[2]}
        self._mark_order(out, chunk)
        return out

    def _mark_order(self, out: dict, chunk: tuple[str, str, int, int]) -> None:
        columns = out.get("columns")
        index = self.file_order.get((chunk[0], chunk[1]))
        if index is None or not isinstance(columns, dict):
            return
        key = (index << _ENTRY_BITS) | chunk[2]
        for cols in columns.values():
            if isinstance(cols, dict) and cols and ORDER_COLUMN not in cols:
                n = len(next(iter(cols.values())).value)
                cols[ORDER_COLUMN] = processor.column_accumulator(np.full(n, key, dtype=np.int64))

    def postprocess(self, accumulator):
        return self.inner.postprocess(accumulator)


_NO_FIELD = re.compile(r"no field (?:named )?'([^']+)'")


def _undeclared_field(err: BaseException, events: Any, inner: Any) -> str | None:
    """The message for a processor that read a field its events do not hold, when it names
    its collections (the events then hold only those: ``collections()``), else None.

    Without it a subclass that reads, say, ``events.Muon`` without declaring it got awkward's
    "no field named 'Muon'" inside a traceback, for a file that has the Muon branches.
    """
    own = getattr(inner, "collections", None)
    names = own() if callable(own) else None
    if names is None:
        return None
    for e in exception_chain(err):
        m = _NO_FIELD.search(str(e))
        if m and m.group(1) not in events.fields:
            return (
                f"the processor reads {m.group(1)!r}, which its events do not hold: they hold "
                f"only the collections it names ({', '.join(sorted(names))}); if the file "
                "has it, add it to the processor's required_branches() (the pre-flight then "
                "checks it) or collections()"
            )
    return None


def canonical_column_order(output: dict[str, Any]) -> None:
    """Put the merged ``columns`` of every dataset in the run's order, in place.

    The futures and dask executors merge chunk outputs in the order the chunks finish, so
    the rows of the collected columns (training inputs, the hunt's events) came in another
    order in every run, and whatever depends on row order (a seeded validation split, the
    tie-breaking shuffle of equal scores) gave other results: two runs of the LHCO config on
    the same files chose different hunt windows. Each chunk's rows stay together and in
    their order; the chunks are sorted by (file index in the run, entry start), the order
    of the iterative executor. Columns without :data:`ORDER_COLUMN` on every row
    (checkpoints of an older version) are left in merge order.
    """
    for cols in (output.get("columns") or {}).values():
        if not isinstance(cols, dict) or ORDER_COLUMN not in cols:
            continue
        key = cols.pop(ORDER_COLUMN).value
        lengths = {len(c.value) for c in cols.values()}
        if lengths != {len(key)} or len(key) < 2:
            continue
        order = np.argsort(key, kind="stable")
        if np.all(order[1:] > order[:-1]):
            continue  # already in order (the iterative executor)
        for name in list(cols):
            cols[name] = processor.column_accumulator(cols[name].value[order])


def _check_coverage(
    entries: Mapping[tuple[str, str], int],
    done: Mapping[tuple[str, str, int, int], int],
    bad: Mapping[tuple[str, str, int, int], str],
) -> None:
    """Every entry of every processed file is in exactly one processed or failed chunk."""
    ranges: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for (ds, path, lo, hi), n in done.items():
        if n != hi - lo:  # a chunk merged twice counts twice
            raise InternalError(
                f"event accounting: chunk {path}[{lo}:{hi}] ({ds}) was counted {n // max(hi - lo, 1)} times"
            )
        ranges.setdefault((ds, path), []).append((lo, hi, 0))
    for ds, path, lo, hi in bad:
        ranges.setdefault((ds, path), []).append((lo, hi, 1))
    for key, n in entries.items():
        pos = 0
        for lo, hi, _ in sorted(ranges.get(key, [])) if n > 0 else []:
            if lo != pos:
                raise InternalError(
                    f"event accounting: {key[1]} ({key[0]}): entries [{pos}:{lo}] "
                    + ("missing" if lo > pos else "processed twice")
                )
            pos = hi
        if pos != n:
            raise InternalError(
                f"event accounting: {key[1]} ({key[0]}): covered {pos} of {n} entries"
            )


def exception_chain(err: BaseException | None) -> list[BaseException]:
    """``err`` and its causes/contexts, outermost first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        chain.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return chain


def _accounted_work_function(
    format: str,
    xrootdtimeout: int,
    schema: Any,
    use_dataframes: bool,
    savemetrics: bool,
    item: Any,
    processor_instance: Any,
    **kwargs: Any,
) -> dict:
    """coffea's per-chunk work function, with a file that cannot be opened accounted.

    coffea opens the file and builds the events outside ``process``, so a file that passed
    the pre-flight and then vanished (a deleted file, a dropped server) would end the run
    with a traceback and no outputs. Here that read error becomes a failed chunk, exactly as
    one raised inside ``process`` does (:class:`AccountingProcessor`); in strict mode a
    :class:`ChunkReadError` naming the file. Other errors propagate unchanged.
    """
    import cloudpickle
    import lz4.frame

    if isinstance(processor_instance, str) and processor_instance == "heavy":  # dask
        item, processor_instance = item
    if isinstance(processor_instance, (bytes, bytearray)):
        processor_instance = cloudpickle.loads(lz4.frame.decompress(processor_instance))
    try:
        return chunk_work(
            format,
            xrootdtimeout,
            schema,
            use_dataframes,
            savemetrics,
            item,
            processor_instance=processor_instance,
            **kwargs,
        )
    except Exception as err:
        chain = exception_chain(err)
        if any(isinstance(e, AdcoffeaError) for e in chain):
            raise
        cause = next((e for e in chain if is_read_error(e)), None)
        if cause is None:
            raise
        chunk = (item.dataset, str(item.filename), int(item.entrystart), int(item.entrystop))
        reason = "cannot open the file for this chunk: " + _reason(cause)
        if getattr(processor_instance, "strict", False):
            where = f"entries [{chunk[2]}:{chunk[3]}]: "
            raise ChunkReadError(chunk[1], where + reason) from None
        return {"out": {"_failed_chunks": {chunk: reason}}, "processed": {item}}


class _Deterministic(BaseException):
    """Carries an adcoffea error through coffea's retry loop, which retries any
    ``Exception`` (a ``BaseException`` is not caught there)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _fail_fast(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as err:
        if any(isinstance(e, AdcoffeaError) for e in exception_chain(err)):
            raise _Deterministic(err) from None
        raise


def _retries_but_not_for_user_errors(
    retries: int, skipbadfiles: Any, func: Any, *args: Any, **kwargs: Any
) -> Any:
    """coffea's ``Runner.automatic_retries``, except for adcoffea's own errors.

    A branch the processor needs and the file lacks, a collection it reads undeclared, a
    bad model bundle: these fail the same way on every attempt. coffea tried such a chunk
    ``retries + 1`` times, warning after each, before the one message reached the user.
    """
    try:
        return processor.Runner.automatic_retries(
            retries, skipbadfiles, functools.partial(_fail_fast, func), *args, **kwargs
        )
    except _Deterministic as stop:
        # keep its own cause chain (it names the file and the fix), not the carrier
        raise stop.error from stop.error.__cause__


class AccountingRunner(processor.Runner):
    """coffea's ``Runner`` whose chunks account for files that fail to open (see
    :func:`_accounted_work_function`), and that does not retry a chunk that failed with
    one of adcoffea's own errors (:func:`_retries_but_not_for_user_errors`)."""

    _work_function = staticmethod(_accounted_work_function)
    automatic_retries = staticmethod(_retries_but_not_for_user_errors)
