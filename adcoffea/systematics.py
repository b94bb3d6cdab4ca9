"""Jet-energy-scale (JES) and resolution (JER) variations of the large-R jets.

The signal templates (``datasets.signal``) are processed once per variation: the jets' pt
and mass are scaled per jet *before* the selection, the jets re-ordered by the varied pt,
and the selection, observables, features and anomaly scores recomputed on them
(:class:`adcoffea.processors.base.SearchProcessor`). Data is never varied.

Per jet, with ``delta`` the relative JES uncertainty and ``sigma`` the extra relative
resolution:

===========  ===================================================================
``jes_up``   pt, mass x (1 + delta)
``jes_down`` pt, mass x (1 - delta)
``jer_up``   pt, mass x (1 + sigma z), z ~ N(0, 1) seeded by (seed, run, event, jet)
``jer_down`` the nominal jets: extra smearing cannot be undone, so the resolution
             variation is one-sided; the limits mirror ``jer_up`` about the nominal
===========  ===================================================================

For the semi-visible search, whose mT is built from the jets and the missing momentum, the
change of the jets' momentum is propagated to MET (:func:`propagate_to_met`: MET minus the
vector sum of the jets' pt changes, as a type-1 correction propagates a JES change), so a
varied event stays balanced: scaling the jets without it moved mT by the jets' share only.

``delta`` and ``sigma`` are either fixed relative sizes (``systematics.jes``/``jer``) or
evaluated per jet by correctionlib from the JSON the user points to
(``systematics.correctionlib`` with ``jes_key``/``jer_key``); a correction's inputs are
taken from the jet by name (:data:`adcoffea.corrections.CORRECTION_INPUTS`).

The smearing's random numbers come from a counter-based hash of (seed, run, event, jet
index), not from a generator state, so a jet is smeared the same way whatever the chunking
and the executor.

Example:
    >>> z = jet_normals(np.array([1, 1]), np.array([7, 7]), np.array([0, 1]), seed=0)
    >>> bool(np.all(z == jet_normals(np.array([1, 1]), np.array([7, 7]), np.array([0, 1]))))
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np

from adcoffea.columns import counts_and_starts, flat_column
from adcoffea.corrections import correction_inputs, load_correction_set

if TYPE_CHECKING:
    from adcoffea.config import SystematicsConfig

#: The categories of a variation histogram, in order (those of configured sources only).
VARIATIONS: tuple[str, ...] = ("nominal", "jes_up", "jes_down", "jer_up", "jer_down")


def variations_key(observable: str) -> str:
    """The name of the histogram holding the variations of ``observable`` (``mjj``...)."""
    return f"{observable}_variations"


def variation_names(config: SystematicsConfig) -> tuple[str, ...]:
    """``nominal`` and the up/down variations of the sources ``config`` sets."""
    out = ["nominal"]
    for source in ("jes", "jer"):
        if config.has(source):
            out += [f"{source}_up", f"{source}_down"]
    return tuple(out)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def jet_normals(
    run: np.ndarray, event: np.ndarray, jet_index: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Standard normal numbers, one per jet, a pure function of (seed, run, event, jet index).

    Box-Muller on two 53-bit uniforms hashed (SplitMix64) from the keys.
    """

    def u64(a: Any) -> np.ndarray:
        return np.asarray(a).astype(np.int64).view(np.uint64)

    key = _splitmix64(np.full(len(event), np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) ^ u64(run))
    key = _splitmix64(key ^ u64(event))
    key = _splitmix64(key ^ u64(jet_index))
    other = _splitmix64(key)
    scale = 2.0**-53
    u1 = ((key >> np.uint64(11)).astype(np.float64) + 0.5) * scale  # in (0, 1): log is finite
    u2 = (other >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _relative_size(
    config: SystematicsConfig, source: str, columns: dict[str, np.ndarray]
) -> np.ndarray:
    """Per jet: ``delta`` (JES) or ``sigma`` (JER), fixed or from correctionlib."""
    fixed = getattr(config, source)
    n = len(columns["pt"])
    if fixed is not None:
        return np.full(n, float(fixed))
    # the config's validator guarantees the file with a key for every unfixed source
    assert config.correctionlib is not None
    correction = load_correction_set(config.correctionlib)[getattr(config, f"{source}_key")]
    if n == 0:
        return np.zeros(0)
    args = [columns[q] for q in correction_inputs(correction)]
    return np.asarray(correction.evaluate(*args), dtype=np.float64)


def jet_factors(
    events: ak.Array, *, collection: str, config: SystematicsConfig
) -> dict[str, np.ndarray | None]:
    """Per variation, the factor on every jet's pt and mass (flat, in storage order).

    ``None`` stands for the nominal jets (``jer_down``, see the module docstring). The
    names are those of :func:`variation_names` less ``nominal``.
    """
    jets = events[collection]
    counts = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    columns = {
        q: ak.to_numpy(ak.flatten(jets[q], axis=1)).astype(np.float64)
        for q in ("pt", "eta", "phi", "mass")
    }
    columns["abseta"] = np.abs(columns["eta"])
    out: dict[str, np.ndarray | None] = {}
    if config.has("jes"):
        delta = _relative_size(config, "jes", columns)
        out["jes_up"], out["jes_down"] = 1.0 + delta, 1.0 - delta
    if config.has("jer"):
        sigma = _relative_size(config, "jer", columns)
        if "event" not in events.fields:
            raise KeyError("event (the JER smearing is seeded by the event number)")
        event = np.repeat(ak.to_numpy(events.event), counts)
        run = np.repeat(ak.to_numpy(events.run), counts) if "run" in events.fields else event * 0
        index = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        z = jet_normals(run, event, index, seed=config.seed)
        # a factor <= 0 (a > 10 sigma fluctuation for sigma = 0.05) would flip the jet
        out["jer_up"] = np.maximum(1.0 + sigma * z, 1e-3)
        out["jer_down"] = None
    return out


def vary_events(events: ak.Array, *, collection: str, factor: np.ndarray) -> ak.Array:
    """``events`` with the jets' pt and mass multiplied by ``factor`` and re-sorted by pt.

    Columnar: the factors are unflattened onto the jets and the collection replaced with
    ``ak.with_field`` (behaviours and metadata kept), so the selection reads the varied
    jets exactly as it reads the nominal ones.
    """
    jets = events[collection]
    f = ak.unflatten(factor, ak.num(jets, axis=1))
    varied = ak.with_field(jets, jets.pt * f, "pt")
    varied = ak.with_field(varied, jets.mass * f, "mass")
    # the selection takes the two leading jets: a smeared jet may change places
    varied = varied[ak.argsort(varied.pt, axis=1, ascending=False, stable=True)]
    return ak.with_field(events, varied, collection)


def propagate_to_met(
    events: ak.Array, *, collection: str, factor: np.ndarray, met_collections: tuple[str, ...]
) -> ak.Array:
    """``events`` with each MET collection present corrected for jets scaled by ``factor``.

    MET_new = MET - sum over the event's jets of (factor - 1) pt (cos phi, sin phi): the
    momentum the varied jets gain is taken from the missing momentum. ``factor`` is flat,
    per jet in storage order (as :func:`jet_factors` returns it); ``events`` holds the
    nominal jets. A jet whose pt or phi is not finite changes nothing (its event is judged
    by the selection's finiteness cut on the nominal values, as without a variation).

    Example:
        >>> ev = ak.Array([{"FatJet": [{"pt": 1000.0, "phi": 0.0}, {"pt": 800.0, "phi": np.pi}],
        ...                 "MET": {"pt": 200.0, "phi": 0.0}}])
        >>> out = propagate_to_met(ev, collection="FatJet", factor=np.array([1.1, 1.1]),
        ...                        met_collections=("MET",))
        >>> round(float(out.MET.pt[0]), 6), abs(round(float(out.MET.phi[0]), 6))
        (180.0, 0.0)
    """
    jets = events[collection]
    counts, _ = counts_and_starts(jets)
    pt = flat_column(jets, "pt").astype(np.float64)
    phi = flat_column(jets, "phi").astype(np.float64)
    gain = pt * (np.asarray(factor, dtype=np.float64) - 1.0)
    with np.errstate(invalid="ignore"):
        dx, dy = gain * np.cos(phi), gain * np.sin(phi)
    ok = np.isfinite(dx) & np.isfinite(dy)
    owner = np.repeat(np.arange(len(counts)), counts)
    dpx = np.bincount(owner[ok], weights=dx[ok], minlength=len(counts))
    dpy = np.bincount(owner[ok], weights=dy[ok], minlength=len(counts))
    for name in met_collections:
        if name not in events.fields:
            continue
        met = events[name]
        met_pt = ak.to_numpy(met.pt).astype(np.float64)
        met_phi = ak.to_numpy(met.phi).astype(np.float64)
        px = met_pt * np.cos(met_phi) - dpx
        py = met_pt * np.sin(met_phi) - dpy
        met = ak.with_field(met, np.hypot(px, py), "pt")
        met = ak.with_field(met, np.arctan2(py, px), "phi")
        events = ak.with_field(events, met, name)
    return events
