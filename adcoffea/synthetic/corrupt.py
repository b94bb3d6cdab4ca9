"""Bad-input files for tests and benchmarks: NanoAOD-style rewrites and damaged baskets.

The bad-input tests (``tests/test_bad_input.py``) and the bad-input table
(``benchmarks/bad_inputs.py``) damage files the same way; both build them here, so that the
table shows what the tests check.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import awkward as ak
    >>> from adcoffea.synthetic.corrupt import basket_seeks, write_nano
    >>> arrays = {"event": np.arange(4, dtype=np.uint64),
    ...           "FatJet_pt": ak.Array([[1.0], [], [2.0, 3.0], [4.0]])}
    >>> p = write_nano(Path(tempfile.mkdtemp()) / "a.root", arrays, n_baskets=2)
    >>> len(basket_seeks(p, "FatJet_pt"))
    2
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: the event-level branches :func:`read_nano` copies (with every ``FatJet_*`` one)
EVENT_BRANCHES = ("event", "run", "luminosityBlock", "genWeight")


def read_nano(path: str | Path) -> dict[str, Any]:
    """The :data:`EVENT_BRANCHES` and every ``FatJet_*`` branch of ``path``'s ``Events``."""
    import uproot

    with uproot.open(path) as f:
        t = f["Events"]
        names = [*EVENT_BRANCHES, *t.keys(filter_name="FatJet_*")]
        return t.arrays(names, how=dict)


def write_nano(
    path: Path,
    arrays: Mapping[str, Any],
    *,
    drop: tuple[str, ...] = (),
    rename: Mapping[str, str] | None = None,
    n_baskets: int = 1,
) -> Path:
    """Write NanoAOD-style branches (``nFatJet`` counter, ``FatJet_x``) in ``n_baskets`` baskets.

    Args:
        path: the file to write (ZLIB level 1).
        arrays: flat branches and jagged ``FatJet_*`` ones, as :func:`read_nano` returns.
        drop: branches left out.
        rename: new names of ``FatJet_*`` branches (e.g. a ``FatJet_pt`` a processor lacks).
        n_baskets: baskets per branch (events split evenly): one basket can then be damaged
            alone.

    Returns:
        ``path``.
    """
    import awkward as ak
    import uproot

    rename = rename or {}
    flat = {k: v for k, v in arrays.items() if not k.startswith("FatJet_") and k not in drop}
    jets = {
        rename.get(k, k)[7:]: v
        for k, v in arrays.items()
        if k.startswith("FatJet_") and k not in drop
    }
    edges = np.linspace(0, len(arrays["event"]), n_baskets + 1).astype(int)
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
        for lo, hi in itertools.pairwise(edges):
            chunk: dict[str, Any] = {k: np.asarray(v[lo:hi]) for k, v in flat.items()}
            chunk["FatJet"] = ak.zip({k: v[lo:hi] for k, v in jets.items()})
            if "Events" not in f:
                f.mktree(
                    "Events",
                    {k: v.dtype if k != "FatJet" else v.type for k, v in chunk.items()},
                    counter_name=lambda counted: "n" + counted,
                    field_name=lambda outer, inner: f"{outer}_{inner}",
                )
            f["Events"].extend(chunk)
    return path


def basket_seeks(path: str | Path, branch: str) -> list[int]:
    """The file offsets of the baskets of ``branch`` in ``path``'s ``Events``."""
    import uproot

    with uproot.open(path) as f:
        b = f["Events"][branch]
        return [int(x) for x in b.member("fBasketSeek")[: b.num_baskets]]


def truncate_in_basket(
    src: Path, dst: Path, *, branch: str = "FatJet_pt", basket: int = 0, offset: int = 100
) -> Path:
    """A copy of ``src`` cut ``offset`` bytes into a basket of ``branch``.

    The header and the tree metadata still open; reading that basket fails.
    """
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.truncate(basket_seeks(src, branch)[basket] + offset)
    return dst


def overwrite_basket(
    src: Path, dst: Path, *, branch: str = "FatJet_pt", basket: int = 0, offset: int = 200
) -> Path:
    """A copy of ``src`` with 512 bytes overwritten ``offset`` bytes into a basket of ``branch``.

    The bytes land in the compressed payload: decompressing that basket fails.
    """
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.seek(basket_seeks(src, branch)[basket] + offset)
        f.write(bytes(range(256)) * 2)
    return dst
