"""The NanoAOD v15 schema: event arrays from the generated jets, written with uproot.

Branches: ``FatJet_*`` (recomputed from the constituents), ``PFCand_*``, the ``FatJetPFCand``
cross-reference, ``PFMET``/``MET``, ``run``/``luminosityBlock``/``event``, ``genWeight`` and the
truth (``Truth_label``, ``Truth_mParent``). Files are written chunk by chunk (``CHUNK_EVENTS``),
each chunk with its own random stream, so a file's content depends only on the seed, the process
and its event range.

Example:
    >>> import numpy as np
    >>> from adcoffea.synthetic.nanoaod import event_arrays
    >>> a = event_arrays("qcd", np.random.default_rng(1), 10, {}, 0)
    >>> int(a["event"][0]), len(a["FatJet"])
    (1, 10)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.synthetic.jets import build_constituents, jet_observables
from adcoffea.synthetic.processes import PROCESS_CODE, sample_events

CHUNK_EVENTS = 50_000
#: the ``FatJet`` fields, in branch order
FATJET_FIELDS = (
    "pt",
    "eta",
    "phi",
    "mass",
    "msoftdrop",
    "tau1",
    "tau2",
    "tau3",
    "tau4",
    "nConstituents",
)


def event_arrays(
    process: str, rng: np.random.Generator, n: int, p: dict[str, float], first_event: int
) -> dict:
    """The NanoAOD branches (awkward/numpy arrays) of ``n`` events of ``process``.

    Event numbers start at ``first_event + 1``. FatJets are pT-ordered and carry their
    constituents (``PFCand`` + the ``FatJetPFCand`` cross-reference) along.
    """

    ev = sample_events(process, rng, n, p)
    njet_ev = 2 + ev["has3"].astype(np.int64)
    jev = np.repeat(np.arange(n), njet_ev)
    slot = np.arange(jev.shape[0]) - np.repeat(np.cumsum(njet_ev) - njet_ev, njet_ev)
    qcd_like = ev["qcd_like"][jev] | (slot == 2)
    jets = {
        "pt": ev["pt"][jev, slot],
        "eta": ev["eta"][jev, slot],
        "phi": ev["phi"][jev, slot],
        "mass": ev["mass"][jev, slot],
        "tau": ev["tau"][jev, slot],
        "nprong": ev["nprong"][jev, slot],
        "qcd": qcd_like,
    }
    nj = jev.shape[0]
    c = build_constituents(rng, jets)
    obs = jet_observables(c, nj)
    # order jets in each event by pT (descending), carrying their constituents along
    perm = np.lexsort((-obs["pt"], jev))
    n_c = c["n_const"]
    starts = np.concatenate([[0], np.cumsum(n_c)[:-1]])
    n_c_new = n_c[perm]
    new_starts = np.concatenate([[0], np.cumsum(n_c_new)[:-1]])
    cidx = np.arange(n_c.sum()) - np.repeat(new_starts, n_c_new) + np.repeat(starts[perm], n_c_new)
    obs = {k: v[perm] for k, v in obs.items()}
    cons = {k: c[k][cidx] for k in ("pt", "eta", "phi", "mass", "pdgId", "charge", "d0", "dz")}
    jet_slot_new = np.arange(nj) - np.repeat(np.cumsum(njet_ev) - njet_ev, njet_ev)
    c_jetidx = np.repeat(jet_slot_new, n_c_new).astype(np.int32)
    ncand_ev = np.bincount(jev, weights=n_c, minlength=n).astype(np.int64)
    c_ev = np.repeat(np.arange(n), ncand_ev)
    c_local = (
        np.arange(c_ev.shape[0]) - np.repeat(np.cumsum(ncand_ev) - ncand_ev, ncand_ev)
    ).astype(np.int32)

    met_pt = np.hypot(ev["met_x"], ev["met_y"])
    met_phi = np.arctan2(ev["met_y"], ev["met_x"])
    return schema_arrays(
        process=process,
        first_event=first_event,
        jets=obs,
        n_jets=njet_ev,
        cands=cons,
        cand_jet_idx=c_jetidx,
        cand_local_idx=c_local,
        n_cands=ncand_ev,
        met_pt=met_pt,
        met_phi=met_phi,
        m_parent=ev["m_parent"],
    )


def schema_arrays(
    *,
    process: str,
    first_event: int,
    jets: dict[str, np.ndarray],
    n_jets: np.ndarray,
    cands: dict[str, np.ndarray],
    cand_jet_idx: np.ndarray,
    cand_local_idx: np.ndarray,
    n_cands: np.ndarray,
    met_pt: np.ndarray,
    met_phi: np.ndarray,
    m_parent: np.ndarray,
) -> dict[str, Any]:
    """The NanoAOD branches of ``len(n_jets)`` events from flat per-jet and per-candidate arrays.

    Shared by the fast and the Pythia engine, so that both write the same branches and types.

    Args:
        process: the process name (``Truth_label`` is 0 for ``qcd``, 1 otherwise).
        first_event: events are numbered from ``first_event + 1``.
        jets: per jet (events, then jets in pT order): the ``FATJET_FIELDS``.
        n_jets: jets per event.
        cands: per constituent (grouped by jet): the ``PFCand`` fields, stored as given.
        cand_jet_idx: per constituent, the index of its jet within the event.
        cand_local_idx: per constituent, its index within the event's ``PFCand``.
        n_cands: constituents per event.
        met_pt: MET per event.
        met_phi: MET azimuth per event.
        m_parent: the parent mass per event (``Truth_mParent``).
    """
    import awkward as ak

    n = len(n_jets)
    evno = np.arange(first_event, first_event + n, dtype=np.uint64) + np.uint64(1)
    fatjet = ak.zip(
        {
            k: ak.unflatten(
                jets[k].astype(np.uint8 if k == "nConstituents" else np.float32), n_jets
            )
            for k in FATJET_FIELDS
        }
    )
    pfcand = ak.zip({k: ak.unflatten(v, n_cands) for k, v in cands.items()})
    fjpf = ak.zip(
        {
            "jetIdx": ak.unflatten(cand_jet_idx, n_cands),
            "pfCandIdx": ak.unflatten(cand_local_idx, n_cands),
        }
    )
    return {
        "run": np.ones(n, dtype=np.uint32),
        "luminosityBlock": (1 + (evno - np.uint64(1)) // np.uint64(1000)).astype(np.uint32),
        "event": evno,
        "genWeight": np.ones(n, dtype=np.float32),
        "FatJet": fatjet,
        "PFCand": pfcand,
        "FatJetPFCand": fjpf,
        "PFMET_pt": met_pt.astype(np.float32),
        "PFMET_phi": met_phi.astype(np.float32),
        "MET_pt": met_pt.astype(np.float32),
        "MET_phi": met_phi.astype(np.float32),
        "Truth_label": np.full(n, 0 if process == "qcd" else 1, dtype=np.int32),
        "Truth_mParent": m_parent.astype(np.float32),
    }


def write_file(
    path: Path, *, process: str, params: dict[str, float], seed: int, index: int, lo: int, hi: int
) -> None:
    """Write events ``lo`` to ``hi`` (of the sample) as file number ``index`` to ``path``.

    Written to a temporary name in the same directory, then renamed (atomic).
    """

    def chunks() -> Iterator[dict[str, Any]]:
        for j, c0 in enumerate(range(lo, hi, CHUNK_EVENTS)):
            c1 = min(c0 + CHUNK_EVENTS, hi)
            rng = np.random.default_rng([int(seed), PROCESS_CODE[process], index, j])
            yield event_arrays(process, rng, c1 - c0, params, c0)

    write_events(path, chunks())


def write_events(path: Path, chunks: Iterable[dict[str, Any]], *, compression: Any = None) -> None:
    """Write the branches of ``chunks`` (one dict per chunk) as the tree ``Events`` to ``path``.

    Written to a temporary name in the same directory, then renamed (atomic); the chunks are
    consumed one at a time, so only one is in memory. ``compression``: an uproot
    compression (e.g. ``uproot.LZMA(9)``, as CMS writes NanoAOD); default LZ4, or ZLIB
    level 1 without the LZ4 codecs.
    """
    import uproot

    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    try:
        with uproot.recreate(tmp, compression=compression or _compression()) as f:
            tree = None
            for arrays in chunks:
                if tree is None:
                    # mktree (not item assignment, which writes an RNTuple in uproot 5.7)
                    tree = f.mktree("Events", {k: _branch_type(v) for k, v in arrays.items()})
                tree.extend(arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _compression() -> Any:
    """LZ4 (fast) when its codecs are installed, else ZLIB level 1."""
    import uproot

    try:
        import lz4.frame  # noqa: F401
        import xxhash  # noqa: F401
    except ImportError:
        return uproot.ZLIB(1)
    return uproot.LZ4(1)


def _branch_type(array: Any) -> Any:
    import awkward as ak

    return array.type if isinstance(array, ak.Array) else array.dtype
