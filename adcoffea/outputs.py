"""Writing and reading results: histograms (pickle and ROOT), JSON, all atomically.

An interrupted run never leaves a truncated file under a final name: everything is written
to a temporary name and renamed.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.errors import InputFileError
from adcoffea.execution import atomic_write_bytes, atomic_write_text


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
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
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")
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


def _category_slices(h, names: list[str]):
    if not names:
        yield (), h
        return
    first, rest = names[0], names[1:]
    for value in h.axes[first]:
        yield from (((str(value), *k), s) for k, s in _category_slices(h[{first: value}], rest))


def load_hists(path: str | Path) -> dict[str, Any]:
    """Load histograms written by :func:`save_hists` (``.pkl``) or any ROOT file (``.root``).

    ROOT objects are converted with ``.to_hist()``; keys are their paths in the file.
    Pickles are only for files this tool wrote: never load one from an untrusted source.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(str(path), "histogram file does not exist")
    if path.suffix == ".root":
        import uproot

        out = {}
        with uproot.open(path) as f:
            for key, cls in f.classnames(recursive=True).items():
                if cls.startswith(("TH1", "TH2", "TH3")):
                    out[key.split(";")[0]] = f[key].to_hist()
        return out
    try:
        with path.open("rb") as f:
            obj = pickle.load(f)
    except Exception as err:
        raise InputFileError(
            str(path), f"not a histogram pickle: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(obj, dict):
        raise InputFileError(str(path), "expected a pickled dict of hist.Hist")
    return obj
