"""correctionlib files: read once per process, and the jet quantities a correction reads.

A leaf module (no adcoffea imports) so that both the config check at load time
(:class:`adcoffea.config.SystematicsConfig`) and the jet variations
(:mod:`adcoffea.systematics`) use it without importing each other.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

__all__ = ["CORRECTION_INPUTS", "correction_inputs", "load_correction_set"]

#: correctionlib input name (lower case) -> the jet quantity it is evaluated at.
CORRECTION_INPUTS: dict[str, str] = {
    **{k: "pt" for k in ("pt", "jetpt", "jet_pt")},
    **{k: "eta" for k in ("eta", "jeteta", "jet_eta")},
    **{k: "abseta" for k in ("abseta", "jetabseta", "jet_abseta")},
    **{k: "phi" for k in ("phi", "jetphi", "jet_phi")},
    **{k: "mass" for k in ("mass", "jetmass", "jet_mass")},
}

#: Loaded correction sets, one per (path, content hash) and worker process.
_CORRECTION_SETS: dict[tuple[str, str], Any] = {}


def load_correction_set(path: str | Path) -> Any:
    """A correctionlib ``CorrectionSet`` read once per process (keyed by path and content)."""
    import correctionlib

    path = Path(path)
    data = path.read_bytes()
    key = (str(path.resolve()), hashlib.sha256(data).hexdigest())
    if key not in _CORRECTION_SETS:
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        _CORRECTION_SETS[key] = correctionlib.CorrectionSet.from_string(data.decode())
    return _CORRECTION_SETS[key]


def correction_inputs(correction: Any) -> tuple[str, ...]:
    """The jet quantities (see :data:`CORRECTION_INPUTS`) a correction is evaluated at.

    Raises:
        ValueError: an input is not a known jet quantity, naming it.
    """
    out = []
    for var in correction.inputs:
        quantity = CORRECTION_INPUTS.get(var.name.lower())
        if quantity is None:
            raise ValueError(
                f"correction {correction.name!r} has input {var.name!r}; adcoffea evaluates "
                f"corrections at the jet's {', '.join(sorted(set(CORRECTION_INPUTS.values())))} "
                "only"
            )
        out.append(quantity)
    return tuple(out)
