"""Per-chunk checkpoints keyed by the processor's fingerprint (written atomically).

Checkpoints are ``.npz`` archives of the safe format of :mod:`adcoffea.execution.safeio`
(a JSON tree and numpy arrays, loaded with ``allow_pickle=False``): a checkpoint planted in
the directory cannot run code on ``--resume``, it can at most be refused or replace the
counts of its own chunk. Pickled checkpoints of older versions (``*.pkl``) are never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coffea.processor import CheckpointerABC

from adcoffea.execution import safeio
from adcoffea.outputs import atomic_write_bytes

log = logging.getLogger("adcoffea.execution")

#: Suffix of a checkpoint file (the safe ``.npz`` format, never a pickle).
CHECKPOINT_SUFFIX = ".npz"


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
    # the jet corrections' file likewise: edited in place, it changes the signal's variations
    corrections = getattr(getattr(inner, "systematics", None), "correctionlib", None)
    if corrections is not None:
        try:
            desc["corrections"] = hashlib.sha256(Path(corrections).read_bytes()).hexdigest()
        except OSError:
            desc["corrections"] = str(corrections)
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
            / f"{metadata['entrystart']}-{metadata['entrystop']}{CHECKPOINT_SUFFIX}"
        )

    def load(self, metadata, processor_instance):
        path = self._path(metadata)
        if not path.exists():
            return None
        try:
            wrapped = safeio.loads(path.read_bytes())
            out = wrapped["out"]
            if not isinstance(out, dict) or "_chunks" not in out:
                raise ValueError("not a chunk output")
        except Exception as err:  # an unreadable or foreign checkpoint is recomputed
            log.warning("checkpoint %s not used (%s): the chunk is processed again", path, err)
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
        if "_failed_chunks" in output.get("out", {}):
            return  # failures are retried on the next run, never cached
        try:
            data = safeio.dumps(output)
        except safeio.NotSerialisable as err:
            log.warning("chunk output not checkpointed: %s", err)
            return
        path = self._path(metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def make_checkpointer(directory: str | Path, processor_instance: Any) -> AtomicCheckpointer:
    """A checkpointer writing under ``directory/<processor fingerprint>/``."""
    return AtomicCheckpointer(Path(directory) / processor_fingerprint(processor_instance))
