"""Serialising processor outputs without pickles, and reading histogram pickles safely.

Unpickling runs code: a planted pickle executes whatever its author wrote as soon as it is
loaded. So:

* checkpoints are written with :func:`dumps` and read with :func:`loads`: an ``.npz``
  archive holding a JSON tree plus the numpy arrays it refers to, read with
  ``numpy.load(allow_pickle=False)``; histograms go through the UHI serialisation of
  boost-histogram (the same intermediate representation as ``uhi.io``). Only plain data
  types can be written; anything else raises :class:`NotSerialisable` (that chunk is then
  simply not checkpointed).
* histogram pickles that users still pass to ``adcoffea fit``/``bumphunt`` (``hists.pkl``)
  are read with :func:`load_hist_pickle`, whose unpickler resolves only histogram and numpy
  array classes and refuses everything else (the "restricting globals" recipe of the
  :mod:`pickle` documentation). Prefer the ROOT and JSON outputs anyway.

Example:
    >>> import numpy as np
    >>> data = {"cutflow": {"qcd": {"all": 10}}, ("qcd", "f.root", 0, 10): np.arange(3)}
    >>> back = loads(dumps(data))
    >>> back["cutflow"], back[("qcd", "f.root", 0, 10)].tolist()
    ({'qcd': {'all': 10}}, [0, 1, 2])
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.errors import InputFileError

FORMAT = "adcoffea-safe-1"
_TREE = "__tree__"


class NotSerialisable(TypeError):
    """An object of a type the safe format does not know."""


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _encode(obj: Any, arrays: list[np.ndarray]) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if isinstance(obj, float):
        return {"float": repr(obj)}  # exact, and NaN/inf survive strict JSON
    if isinstance(obj, np.generic):
        return {"scalar": _array_ref(np.asarray(obj), arrays)}
    if isinstance(obj, np.ndarray):
        return {"array": _array_ref(obj, arrays)}
    if isinstance(obj, bytes):
        return {"bytes": obj.hex()}
    if isinstance(obj, list):
        return {"list": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, (set, frozenset)):
        kind = "set" if isinstance(obj, set) else "frozenset"
        return {kind: [_encode(v, arrays) for v in obj]}
    if type(obj) is dict:
        return {"dict": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name == "coffea.processor.accumulator.column_accumulator":
        return {"column": _array_ref(np.asarray(obj.value), arrays)}
    if name == "coffea.processor.executor.WorkItem":
        fields = {
            "dataset": obj.dataset,
            "filename": obj.filename,
            "treename": obj.treename,
            "entrystart": obj.entrystart,
            "entrystop": obj.entrystop,
            "fileuuid": obj.fileuuid,
            "usermeta": obj.usermeta,
            "preload": None if obj.preload is None else frozenset(obj.preload),
        }
        return {"workitem": _encode(fields, arrays)}
    import boost_histogram as bh

    if isinstance(obj, bh.Histogram):
        from boost_histogram.serialization import to_uhi

        kind = "hist" if name.startswith("hist.") else "boost_histogram"
        return {kind: _encode(to_uhi(obj), arrays)}
    raise NotSerialisable(f"cannot write a {name} safely (no pickles)")


def _array_ref(a: np.ndarray, arrays: list[np.ndarray]) -> int:
    if a.dtype.hasobject:
        raise NotSerialisable("cannot write an object array safely (no pickles)")
    arrays.append(a)
    return len(arrays) - 1


def dumps(obj: Any) -> bytes:
    """``obj`` (plain data, numpy arrays, histograms, coffea column accumulators and work
    items) as the bytes of an ``.npz`` archive that loads without unpickling.

    Raises:
        NotSerialisable: ``obj`` holds a type the format does not know.
    """
    arrays: list[np.ndarray] = []
    tree = {"format": FORMAT, "data": _encode(obj, arrays)}
    text = json.dumps(tree, allow_nan=False, separators=(",", ":"))
    named: dict[str, Any] = {_TREE: np.frombuffer(text.encode(), dtype=np.uint8)}
    named.update({f"a{i}": a for i, a in enumerate(arrays)})
    buf = io.BytesIO()
    np.savez(buf, **named)
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def _decode(node: Any, arrays: Any) -> Any:
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if not (isinstance(node, dict) and len(node) == 1):
        raise ValueError(f"not a node of the safe format: {str(node)[:80]}")
    ((kind, value),) = node.items()
    if kind == "float":
        return float(value)
    if kind == "scalar":
        return arrays[f"a{int(value)}"][()]
    if kind == "array":
        return arrays[f"a{int(value)}"]
    if kind == "bytes":
        return bytes.fromhex(value)
    if kind in ("list", "tuple", "set", "frozenset"):
        items = [_decode(v, arrays) for v in value]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind == "dict":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value}
    if kind == "column":
        from coffea.processor import column_accumulator

        return column_accumulator(np.asarray(arrays[f"a{int(value)}"]))
    if kind == "workitem":
        from coffea.processor.executor import WorkItem

        return WorkItem(**_decode(value, arrays))
    if kind in ("hist", "boost_histogram"):
        from boost_histogram.serialization import from_uhi

        ir = _decode(value, arrays)
        if kind == "hist":
            import hist

            return hist.Hist(ir)
        return from_uhi(ir)
    raise ValueError(f"unknown node type {kind!r} in the safe format")


def loads(data: bytes) -> Any:
    """Read what :func:`dumps` wrote; never unpickles (``allow_pickle=False``).

    Raises:
        ValueError: not an archive of this format.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            tree = json.loads(bytes(npz[_TREE]).decode())
            if tree.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} archive")
            arrays = {k: npz[k] for k in npz.files if k != _TREE}
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise ValueError(f"not a {FORMAT} archive: {err}") from None
    return _decode(tree["data"], arrays)


# --------------------------------------------------------------------------------------
# histogram pickles: restricted globals
# --------------------------------------------------------------------------------------
#: Functions (not classes) a numpy array or dtype pickle calls, across numpy 1 and 2.
_NUMPY_FUNCTIONS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_PLAIN = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}
_CLASS_PACKAGES = ("hist.", "boost_histogram.")


class _HistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if "." in name:  # dotted names reach any attribute of an allowed module
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if (module, name) in _NUMPY_FUNCTIONS or (module, name) in _PLAIN:
            return super().find_class(module, name)
        if (module + ".").startswith(_CLASS_PACKAGES):
            obj = super().find_class(module, name)
            # classes only (histograms, axes, storages, accumulators), and truly defined
            # there: not functions, not modules or objects those packages import
            owner = getattr(obj, "__module__", "") or ""
            if isinstance(obj, type) and (owner + ".").startswith(_CLASS_PACKAGES):
                return obj
        if module == "numpy" or module.startswith("numpy."):
            obj = super().find_class(module, name)
            # arrays, dtypes and scalar types; never e.g. numpy.memmap (it writes files)
            if obj is np.ndarray or (
                isinstance(obj, type) and issubclass(obj, (np.dtype, np.generic))
            ):
                return obj
        raise pickle.UnpicklingError(
            f"refused global {module}.{name}: a histogram pickle holds only histogram and "
            "numpy classes"
        )


def load_hist_pickle(path: str | Path) -> Any:
    """Unpickle a histogram file (``hists.pkl``) resolving only histogram/numpy classes.

    A pickle that refers to anything else (``os.system``, ``builtins.eval``, a class of
    another package) is refused before it can run.

    Raises:
        InputFileError: unreadable, or it refers to a global outside the allowed set.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _HistUnpickler(f).load()
    except pickle.UnpicklingError as err:
        raise InputFileError(
            str(path),
            f"not loaded: {err}; use the ROOT output (hists.root) for files you did not "
            "write yourself",
        ) from None
    except Exception as err:
        raise InputFileError(
            str(path), f"not a histogram pickle: {type(err).__name__}: {err}"
        ) from None
