"""Per-jet constituent lists built from NanoAOD index branches.

coffea's ``FatJet.constituents`` cross-reference does not work for NanoAOD v15 and PFNano
files in virtual mode, so the jet -> particle map is rebuilt here from the link table that
both formats store:

=========  ==================  ======================================  ==========
format     link collection     fields (jet, particle)                  particles
=========  ==================  ======================================  ==========
NanoAOD    ``FatJetPFCand``    ``jetIdx``, ``pfCandIdx``               ``PFCand``
PFNano     ``FatJetPFCands``   ``jetIdx``, ``pFCandsIdx``              ``PFCands``
=========  ==================  ======================================  ==========

Everything is columnar: one ``argsort`` and two ``unflatten`` calls per chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import awkward as ak
import numpy as np

from adcoffea.errors import InputFileError


class LinkFormat(NamedTuple):
    links: str
    jet_field: str
    particle_field: str
    particles: str


FORMATS: tuple[LinkFormat, ...] = (
    LinkFormat("FatJetPFCand", "jetIdx", "pfCandIdx", "PFCand"),
    LinkFormat("FatJetPFCands", "jetIdx", "pFCandsIdx", "PFCands"),
)


def link_format(events: ak.Array, *, jet_collection: str = "FatJet") -> LinkFormat | None:
    """The constituent link format present in ``events`` (None if the file has none)."""
    fields = set(events.fields)
    for fmt in FORMATS:
        links = fmt.links.replace("FatJet", jet_collection, 1)
        if links in fields and fmt.particles in fields:
            return fmt._replace(links=links)
    return None


def _source(events: ak.Array) -> str:
    try:
        return str(events.metadata.get("filename", "<events>"))
    except AttributeError:
        return "<events>"


def jet_constituents(events: ak.Array, *, jet_collection: str = "FatJet") -> ak.Array:
    """Constituents of every jet: an array of shape (events, jets, particles).

    Each innermost record is the particle record (``PFCand`` or ``PFCands``), in the order the
    link table lists them. Links whose jet or particle index is out of range raise an
    :class:`~adcoffea.errors.InputFileError` naming the branch (a corrupted link table must
    not silently move particles between jets).

    Args:
        events: NanoEvents (or any awkward record array with the collections).
        jet_collection: the jet collection the links refer to.

    Raises:
        InputFileError: the file has no constituent links, or the links are inconsistent.
    """
    fmt = link_format(events, jet_collection=jet_collection)
    source = _source(events)
    if fmt is None:
        raise InputFileError(
            source,
            f"no constituent link branches for {jet_collection} "
            f"(looked for {', '.join(f.links + '_' + f.jet_field for f in FORMATS)})",
        )
    links = events[fmt.links]
    particles = events[fmt.particles]
    jets = events[jet_collection]

    jet_idx = links[fmt.jet_field]
    part_idx = links[fmt.particle_field]
    n_jets = ak.num(jets, axis=1)
    n_parts = ak.num(particles, axis=1)

    if ak.any((jet_idx < 0) | (jet_idx >= n_jets)):
        raise InputFileError(
            source, f"branch {fmt.links}_{fmt.jet_field} has out-of-range jet indices"
        )
    if ak.any((part_idx < 0) | (part_idx >= n_parts)):
        raise InputFileError(
            source, f"branch {fmt.links}_{fmt.particle_field} has out-of-range particle indices"
        )

    # Group links by jet: a stable sort keeps the file's particle order within a jet.
    order = ak.argsort(jet_idx, axis=1, stable=True)
    linked = particles[part_idx[order]]
    n_jets_np = ak.to_numpy(n_jets).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_jets_np)])[:-1]
    global_jet = ak.flatten(jet_idx) + np.repeat(offsets, ak.to_numpy(ak.num(jet_idx, axis=1)))
    per_jet = np.bincount(ak.to_numpy(global_jet), minlength=int(n_jets_np.sum()))
    flat = ak.flatten(linked, axis=1)
    return ak.unflatten(ak.unflatten(flat, per_jet, axis=0), n_jets_np, axis=0)


def pad_constituents(
    constituents: ak.Array,
    *,
    max_particles: int,
    fields: tuple[str, ...] = ("pt", "eta", "phi", "mass"),
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded numpy arrays of the leading-pt constituents of each jet.

    Args:
        constituents: (events, jets, particles) records, with a fixed number of jets per
            event (e.g. the two selected jets).
        max_particles: keep at most this many particles per jet, the hardest first.
        fields: particle fields to stack (last axis of the result).

    Returns:
        ``(values, mask)`` of shapes (events, jets, max_particles, len(fields)) float32 and
        (events, jets, max_particles) bool.
    """
    order = ak.argsort(constituents.pt, axis=-1, ascending=False)
    srt = constituents[order]
    cols = []
    mask = None
    for name in fields:
        padded = ak.pad_none(srt[name], max_particles, axis=-1, clip=True)
        padded = ak.to_regular(padded, axis=None)
        if mask is None:
            mask = ~ak.to_numpy(ak.is_none(padded, axis=-1))
        cols.append(ak.to_numpy(ak.fill_none(padded, 0.0)).astype(np.float32))
    values = np.stack(cols, axis=-1)
    return values, np.asarray(mask, dtype=bool)
