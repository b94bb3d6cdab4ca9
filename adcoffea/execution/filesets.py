"""Filesets: the forms a user may give, brought to coffea's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adcoffea.errors import ConfigError


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


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL of a remote file (``root://``, ``https://``; not ``file://``)."""
    return "://" in path and not path.startswith("file://")
