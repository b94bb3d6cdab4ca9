"""Writing and reading results: atomic writes, JSON, histograms (pickle and ROOT).

An interrupted run never leaves a truncated file under a final name: everything is written
to a temporary name and renamed. This module imports neither coffea nor uproot at import
time (uproot loads only to read or write ROOT files), so writing JSON stays cheap.

Example:
    >>> import json, tempfile
    >>> import numpy as np
    >>> to_jsonable({"x": np.arange(2), 3: np.float32(0.5), "nan": float("nan")})
    {'x': [0, 1], '3': 0.5, 'nan': None}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_json(Path(d) / "r.json", {"inf": float("inf")})
    ...     json.loads(path.read_text())
    {'inf': 'inf'}
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.errors import InputFileError


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
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode())


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: the one converter of every result written as JSON.

    Objects with ``to_dict()`` are converted through it, numpy arrays and scalars become
    lists and Python numbers, paths strings, dictionary keys strings; a Python float NaN
    becomes ``None`` and an infinity the string ``"inf"``/``"-inf"`` (JSON has neither;
    numpy arrays are passed through ``tolist()`` unchanged, as the readers expect).
    """
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` (dataclasses with ``to_dict``, numpy values allowed) as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    return path


def save_hists(
    hists: dict[str, Any], directory: str | Path, *, stem: str = "hists"
) -> dict[str, Path]:
    """Save ``{name: hist.Hist}`` as ``<stem>.pkl`` and ``<stem>.root``.

    In the ROOT file each (dataset, region[, jet]) slice of a histogram is a TH1/TH2 under
    ``name/dataset/region[/jet]``, since ROOT histograms have no string-category axes.
    """
    import uproot

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pkl = directory / f"{stem}.pkl"
    atomic_write_bytes(pkl, pickle.dumps(hists, protocol=pickle.HIGHEST_PROTOCOL))

    root = directory / f"{stem}.root"
    tmp = root.with_name(f".{root.name}.tmp")
    with uproot.recreate(tmp) as f:
        for name, h in hists.items():
            cats = [ax for ax in h.axes if ax.traits.discrete and not ax.traits.ordered]
            for key, sub in _category_slices(h, [ax.name for ax in cats]):
                if sub.ndim in (1, 2, 3):
                    f["/".join([name, *key])] = sub
    tmp.replace(root)
    return {"pickle": pkl, "root": root}


def _category_slices(h: Any, names: list[str]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if not names:
        yield (), h
        return
    first, rest = names[0], names[1:]
    for value in h.axes[first]:
        yield from (((str(value), *k), s) for k, s in _category_slices(h[{first: value}], rest))


def load_hists(path: str | Path, *, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Load histograms from a pickle written by :func:`save_hists` or from any ROOT file.

    The one histogram reader of adcoffea (the statistics commands read through it). It
    reads the format only; whether a file given by a user comes from a complete run is the
    reader's check (:func:`adcoffea.execution.manifest.check_output`), as the commands do.

    Args:
        path: a ``.root`` file (TH1/TH2/TH3 objects, converted with ``.to_hist()`` and keyed
            by their path in the file) or a pickle of ``{name: hist.Hist}`` (a pickle of a
            single ``hist.Hist`` is returned under the one requested name, or ``"hist"``),
            unpickled resolving histogram and numpy classes only
            (:func:`adcoffea.execution.safeio.load_hist_pickle`).
        names: read only these histograms; each must be in the file.

    Raises:
        InputFileError: the file is missing or unreadable, or lacks a requested histogram
            (the message lists the ones it has).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(str(path), "histogram file not found")
    if path.suffix.lower() == ".root":
        import uproot

        try:
            with uproot.open(path) as f:
                if names is not None:
                    _require(path, names, f.keys(cycle=False, recursive=True))
                    return {n: f[n].to_hist() for n in names}
                return {
                    key.split(";")[0]: f[key].to_hist()
                    for key, cls in f.classnames(recursive=True).items()
                    if cls.startswith(("TH1", "TH2", "TH3"))
                }
        except (OSError, ValueError) as err:
            raise InputFileError(str(path), f"cannot read as ROOT: {err}") from None
    from adcoffea.execution.safeio import load_hist_pickle

    obj = load_hist_pickle(path)  # histogram/numpy classes only
    if hasattr(obj, "axes") and hasattr(obj, "values"):
        obj = {names[0] if names and len(names) == 1 else "hist": obj}
    if not isinstance(obj, dict):
        raise InputFileError(str(path), "expected a pickled dict {name: hist.Hist} or a hist.Hist")
    if names is None:
        return obj
    _require(path, names, obj)
    return {n: obj[n] for n in names}


def _require(path: Path, names: Sequence[str], available: Iterable[str]) -> None:
    have = sorted(available)
    for name in names:
        if name not in have:
            raise InputFileError(str(path), f"no histogram {name!r}; has {have}")
