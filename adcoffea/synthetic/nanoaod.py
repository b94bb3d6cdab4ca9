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
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.synthetic.jets import build_constituents, jet_observables
from adcoffea.synthetic.processes import PROCESS_CODE, sample_events

CHUNK_EVENTS = 50_000


def event_arrays(
    process: str, rng: np.random.Generator, n: int, p: dict[str, float], first_event: int
) -> dict:
    """The NanoAOD branches (awkward/numpy arrays) of ``n`` events of ``process``.

    Event numbers start at ``first_event + 1``. FatJets are pT-ordered and carry their
    constituents (``PFCand`` + the ``FatJetPFCand`` cross-reference) along.
    """
    import awkward as ak

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
    evno = np.arange(first_event, first_event + n, dtype=np.uint64) + np.uint64(1)

    def jag(a, counts):
        return ak.unflatten(a, counts)

    fatjet = ak.zip(
        {
            k: jag(obs[k].astype(np.uint8 if k == "nConstituents" else np.float32), njet_ev)
            for k in (
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
        }
    )
    pfcand = ak.zip({k: jag(v, ncand_ev) for k, v in cons.items()})
    fjpf = ak.zip({"jetIdx": jag(c_jetidx, ncand_ev), "pfCandIdx": jag(c_local, ncand_ev)})
    label = np.full(n, 0 if process == "qcd" else 1, dtype=np.int32)
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
        "Truth_label": label,
        "Truth_mParent": ev["m_parent"].astype(np.float32),
    }


def write_file(
    path: Path, *, process: str, params: dict[str, float], seed: int, index: int, lo: int, hi: int
) -> None:
    """Write events ``lo`` to ``hi`` (of the sample) as file number ``index`` to ``path``.

    Written to a temporary name in the same directory, then renamed (atomic).
    """
    import uproot

    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    try:
        with uproot.recreate(tmp, compression=_compression()) as f:
            for j, c0 in enumerate(range(lo, hi, CHUNK_EVENTS)):
                c1 = min(c0 + CHUNK_EVENTS, hi)
                rng = np.random.default_rng([int(seed), PROCESS_CODE[process], index, j])
                arrays = event_arrays(process, rng, c1 - c0, params, c0)
                if j == 0:
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
