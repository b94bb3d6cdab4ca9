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

Everything is columnar. :func:`jet_constituents` gives the awkward (events, jets, particles)
structure; :func:`selected_constituents` gives the padded arrays a model reads for chosen
jets directly from the flat columns (numpy only, one sort per chunk), which is what the
processors use.
"""

from __future__ import annotations

from typing import NamedTuple

import awkward as ak
import numpy as np

from adcoffea.columns import counts_and_starts, flat_column
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


def _required_format(events: ak.Array, jet_collection: str) -> tuple[LinkFormat, str]:
    """The link format of ``events`` and the file name, or the error naming what is missing."""
    fmt = link_format(events, jet_collection=jet_collection)
    source = _source(events)
    if fmt is None:
        raise InputFileError(
            source,
            f"no constituent link branches for {jet_collection} "
            f"(looked for {', '.join(f.links + '_' + f.jet_field for f in FORMATS)})",
        )
    return fmt, source


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
    fmt, source = _required_format(events, jet_collection)
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


def _unsigned(index: np.ndarray) -> np.ndarray | None:
    """Integer indices viewed as unsigned: a negative index becomes one above any count, so
    a single comparison with the counts finds both kinds of out-of-range index. None for
    indices that are not integers."""
    index = np.asarray(index)
    if index.dtype.kind == "i":
        return index.view(index.dtype.str.replace("i", "u"))
    if index.dtype.kind == "u":
        return index
    return None


def _check_links(
    index: np.ndarray,
    counts: np.ndarray,
    n_links: np.ndarray,
    *,
    branch: str,
    what: str,
    source: str,
) -> None:
    """Refuse a link branch whose indices are not integers within their event's range."""
    unsigned = _unsigned(index)
    if unsigned is None:
        raise InputFileError(source, f"branch {branch} holds {index.dtype} values, not indices")
    if np.any(unsigned >= np.repeat(counts, n_links)):
        raise InputFileError(source, f"branch {branch} has out-of-range {what} indices")


def _descending_key(values: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is the descending order of float32 ``values``.

    The IEEE-754 bits of a float, with the sign bit flipped for positives and all bits for
    negatives, order like the floats; inverting them orders them descending (NaN first).
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    flip = (np.uint32(0) - (bits >> np.uint32(31))) | np.uint32(0x80000000)
    return ~(bits ^ flip)


def selected_constituents(
    events: ak.Array,
    jet_index: np.ndarray,
    *,
    max_particles: int,
    jet_collection: str = "FatJet",
    fields: tuple[str, ...] = ("pt", "eta", "phi", "mass"),
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded constituents of chosen jets, hardest first, from the flat columns.

    The same arrays as ``pad_constituents(jet_constituents(events)[rows][jets])``, computed
    with numpy on the chunk's flat link and particle columns: the links of the chosen jets
    are kept, ordered by (jet, decreasing pt) with one sort of a combined integer key (ties
    keep the link table's order, as the awkward path does), and the first
    ``max_particles`` of each jet are scattered into the output.

    Args:
        events: NanoEvents (or an awkward record array with the collections).
        jet_index: (n, k) indices of the chosen jets in the chunk's flattened jet
            collection (e.g. the two selected jets of each selected event).
        max_particles: keep at most this many particles per jet.
        jet_collection: the jet collection the links refer to.
        fields: particle fields to stack (last axis of the result).

    Returns:
        ``(values, mask)`` of shapes (n, k, max_particles, len(fields)) float32 and
        (n, k, max_particles) bool.

    Raises:
        InputFileError: no link branches, or link indices out of range (naming the branch).

    Example:
        >>> ev = ak.Array([{"FatJet": [{"pt": 9.0}, {"pt": 8.0}],
        ...                 "PFCand": [{"pt": 1.0, "eta": 0.0, "phi": 0.0, "mass": 0.0},
        ...                            {"pt": 3.0, "eta": 0.0, "phi": 0.0, "mass": 0.0},
        ...                            {"pt": 2.0, "eta": 0.0, "phi": 0.0, "mass": 0.0}],
        ...                 "FatJetPFCand": [{"jetIdx": 0, "pfCandIdx": 0},
        ...                                  {"jetIdx": 1, "pfCandIdx": 2},
        ...                                  {"jetIdx": 0, "pfCandIdx": 1}]}])
        >>> values, mask = selected_constituents(ev, np.array([[0, 1]]), max_particles=2)
        >>> values[0, :, :, 0].tolist(), mask[0].tolist()
        ([[3.0, 1.0], [2.0, 0.0]], [[True, True], [True, False]])
    """
    fmt, source = _required_format(events, jet_collection)
    jet_index = np.asarray(jet_index, dtype=np.int64)
    n, k = jet_index.shape
    links = events[fmt.links]
    particles = events[fmt.particles]

    # per-link copies of per-event numbers are np.repeat (sequential), not gathers
    n_links, _ = counts_and_starts(links)
    n_jets, jet_start = counts_and_starts(events[jet_collection])
    n_parts, part_start = counts_and_starts(particles)
    jet_idx = flat_column(links, fmt.jet_field)
    part_idx = flat_column(links, fmt.particle_field)
    for index, counts, field, what in (
        (jet_idx, n_jets, fmt.jet_field, "jet"),
        (part_idx, n_parts, fmt.particle_field, "particle"),
    ):
        _check_links(
            index, counts, n_links, branch=f"{fmt.links}_{field}", what=what, source=source
        )

    # output slot (0 .. n*k - 1) of every jet of the chunk, -1 for jets not chosen
    slot_of_jet = np.full(int(n_jets.sum()), -1, dtype=np.int64)
    slot_of_jet[jet_index.ravel()] = np.arange(n * k)
    at = np.repeat(jet_start, n_links)
    at += jet_idx
    slot = slot_of_jet.take(at)
    keep = np.flatnonzero(slot >= 0)
    slot = slot.take(keep)
    at = np.repeat(part_start, n_links)
    at += part_idx
    part = at.take(keep)
    del at
    pt = flat_column(particles, "pt")
    # one stable sort of (slot, descending pt) packed in a uint64: ties keep link order;
    # link tables written jet by jet, hardest particle first, are in that order already
    key = (slot.astype(np.uint64) << np.uint64(32)) | _descending_key(pt.take(part))
    if not np.all(key[1:] >= key[:-1]):
        order = np.argsort(key, kind="stable")
        slot, part = slot.take(order), part.take(order)
    del key
    per_slot = np.bincount(slot, minlength=n * k)
    # the slots are sorted: each link's rank in its jet is its place after the jet's first
    rank = np.arange(len(slot)) - np.repeat(np.cumsum(per_slot) - per_slot, per_slot)
    top = np.flatnonzero(rank < max_particles)
    # position of each kept particle in the flattened (n*k, max_particles) output
    where = slot.take(top) * max_particles + rank.take(top)
    part = part.take(top)

    n_fields = len(fields)
    rows = np.empty((len(part), n_fields), dtype=np.float32)
    for i, name in enumerate(fields):
        column = pt if name == "pt" else flat_column(particles, name)
        rows[:, i] = column.take(part)
    values = np.zeros((n * k * max_particles, n_fields), dtype=np.float32)
    # scatter whole rows as one opaque element each: numpy's 2D fancy assignment is ~3x slower
    row = np.dtype((np.void, 4 * n_fields))
    values.view(row).reshape(-1)[where] = rows.view(row).reshape(-1)
    mask = np.zeros(n * k * max_particles, dtype=bool)
    mask[where] = True
    return values.reshape(n, k, max_particles, n_fields), mask.reshape(n, k, max_particles)
