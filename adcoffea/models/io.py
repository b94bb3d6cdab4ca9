"""Save and load :class:`adcoffea.features.ModelInputs` as ``.npz`` (no pickles).

Keys: ``hl/<feature>`` for high-level columns, ``event``, ``constituents``, ``mask``, ``jets``,
and ``extra/<name>`` for side arrays such as truth labels. Loading uses
``allow_pickle=False``, so a file can never execute code.

Example:
    >>> import tempfile
    >>> from adcoffea.models.toy import lhco_features
    >>> inputs, labels = lhco_features(100, 10, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save_inputs(Path(d) / "inputs.npz", inputs, labels=labels)
    ...     back, extra = load_inputs(path)
    >>> bool((extra["labels"] == labels).all()), sorted(back.high_level) == sorted(inputs.high_level)
    (True, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adcoffea.errors import InputFileError
from adcoffea.features import ModelInputs

_FIELDS = ("event", "constituents", "mask", "jets")


def save_inputs(path: str | Path, inputs: ModelInputs, **extra: np.ndarray) -> Path:
    """Write ``inputs`` (and named side arrays) to a compressed ``.npz``."""
    arrays = {f"hl/{k}": np.asarray(v) for k, v in inputs.high_level.items()}
    for name in _FIELDS:
        value = getattr(inputs, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in extra.items()})
    path = Path(path)
    np.savez_compressed(path, **arrays)
    return path


def load_inputs(path: str | Path) -> tuple[ModelInputs, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_inputs`; returns the inputs and the side arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise InputFileError(str(path), f"not a readable inputs .npz ({err})") from None
    hl = {k[3:]: v for k, v in arrays.items() if k.startswith("hl/")}
    extra = {k[6:]: v for k, v in arrays.items() if k.startswith("extra/")}
    inputs = ModelInputs(high_level=hl, **{f: arrays.get(f) for f in _FIELDS})
    return inputs, extra
