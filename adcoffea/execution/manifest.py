"""A run's outputs as one unit: ``manifest.json``, written first as "running", last as "complete".

A run that is killed (during processing, or half-way through writing its files) must not
leave outputs that look current, nor a mix of old and new files that look like one run:

1. :func:`begin_run` replaces the directory's manifest by one with a new run id and
   ``status: "running"`` *before* anything else is written, and removes the temporary files
   (``.name.*.tmp``) a killed writer left behind. From then on the previous outputs no
   longer count as complete.
2. :func:`finish_run` lists every output file with its size and sha256 and writes the
   manifest with ``status: "complete"``, atomically, as the very last write.
3. Readers call :func:`check_output` on a file they are given: inside a directory with a
   manifest, the file must belong to a complete run and match its checksum; otherwise one
   clear error says which run wrote it and what is wrong. A file outside any run directory
   (no manifest) is read as it is.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> run = begin_run(d, command="process")
    >>> _ = (d / "cutflow.json").write_text("{}")
    >>> finish_run(run)["status"]
    'complete'
    >>> check_output(d / "cutflow.json")["run_id"] == run.run_id
    True
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adcoffea.errors import InputFileError

MANIFEST = "manifest.json"
#: Sub-directories that are not outputs (per-chunk state of an interrupted run).
NOT_OUTPUTS = ("checkpoints",)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write(path: Path, data: dict[str, Any]) -> None:
    from adcoffea.outputs import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


@dataclass
class Run:
    """A run in progress in ``directory`` (see :func:`begin_run`)."""

    directory: Path
    run_id: str
    command: str
    started: str
    extra: dict[str, Any] = field(default_factory=dict)


def begin_run(directory: str | Path, *, command: str, **extra: Any) -> Run:
    """Mark ``directory`` as being written by a new run; the previous outputs stop counting.

    Also removes the temporary files of a writer that was killed (``.*.tmp``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for tmp in directory.rglob(".*.tmp"):
        if not any(part in NOT_OUTPUTS for part in tmp.relative_to(directory).parts):
            tmp.unlink(missing_ok=True)
    run = Run(directory, uuid.uuid4().hex, command, _now(), dict(extra))
    previous = _read_manifest(directory)
    _write(
        directory / MANIFEST,
        {
            "run_id": run.run_id,
            "status": "running",
            "command": command,
            "started": run.started,
            "pid": os.getpid(),
            # what the files still in the directory were written by (they are stale now)
            "previous_run_id": (previous or {}).get("run_id"),
            **run.extra,
        },
    )
    return run


def output_files(directory: Path) -> list[Path]:
    """Every output file of ``directory``: not the manifest, checkpoints or temporaries."""
    out = []
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory)
        if not p.is_file() or rel.name == MANIFEST or rel.name.startswith("."):
            continue
        if any(part in NOT_OUTPUTS for part in rel.parts):
            continue
        out.append(p)
    return out


def finish_run(run: Run, **extra: Any) -> dict[str, Any]:
    """Write the manifest of a complete run (the last write of the run) and return it."""
    files = {
        p.relative_to(run.directory).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in output_files(run.directory)
    }
    manifest = {
        "run_id": run.run_id,
        "status": "complete",
        "command": run.command,
        "started": run.started,
        "finished": _now(),
        **run.extra,
        **extra,
        "files": files,
    }
    _write(run.directory / MANIFEST, manifest)
    return manifest


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"status": "unreadable"}
    return data if isinstance(data, dict) else {"status": "unreadable"}


def check_output(path: str | Path) -> dict[str, Any] | None:
    """Check that ``path`` is an output of a complete run; return that run's manifest.

    Looks for ``manifest.json`` in the file's directory and its parents (the nearest one
    counts). None when there is none (a file written by something else).

    Raises:
        InputFileError: the run that owns the directory did not complete (killed, or still
            running), the file is not one of its outputs, or it changed since.
    """
    path = Path(path).resolve()
    for directory in path.parents:
        manifest = _read_manifest(directory)
        if manifest is None:
            continue
        run = f"run {manifest.get('run_id', '?')} ({manifest.get('command', '?')}"
        run += f", started {manifest.get('started', '?')})"
        status = manifest.get("status")
        if status != "complete":
            raise InputFileError(
                str(path),
                f"the outputs in {directory} are not from a complete run: {run} is "
                f"'{status}' (killed, or still running); these files may be stale or a mix "
                "of two runs: rerun it",
            )
        rel = path.relative_to(directory).as_posix()
        entry = (manifest.get("files") or {}).get(rel)
        if entry is None:
            raise InputFileError(
                str(path), f"not an output of the last complete {run} in {directory}"
            )
        if path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
            raise InputFileError(
                str(path), f"changed since {run} wrote it (sha256 differs from {MANIFEST})"
            )
        return manifest
    return None
