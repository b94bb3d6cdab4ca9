"""Synthetic LHC-Olympics-like NanoAOD generator.

Writes ROOT files (tree ``Events``) in the NanoAOD v15 schema with large-R jets built from
generated particle-flow candidates, for four processes modelled on the LHC Olympics 2020 R&D
data set (13 TeV, anti-kT R = 1.0, leading jet pT > 1.2 TeV, |eta| < 2.5):

- ``qcd``: dijets with mjj from the fitted LHCO dijet function, one-prong-like jets (broad tau21);
- ``wprime``: W' -> X Y, both two-prong (LHCO R&D signal, masses configurable);
- ``svj``: Z' -> two semi-visible jets with invisible fraction ``r_inv`` (genuine, jet-aligned MET);
- ``yxh``: Y -> X H with a two- or three-prong X and a two-prong H (2D resonance search).

How an event is made; the package follows these steps: :mod:`~adcoffea.synthetic.processes`
(1, 2), :mod:`~adcoffea.synthetic.jets` (3, 4) and :mod:`~adcoffea.synthetic.nanoaod` (the schema
and the uproot writing). Random numbers are drawn with numpy for whole chunks; the per-jet
arithmetic runs in compiled numba loops over flat constituent arrays.

1. Event kinematics: the dijet mass is drawn first (QCD: the reference dijet function by inverse
   CDF; signal: the reference W' detector response scaled to the parent mass), then a pT
   imbalance, y* (QCD: flat in chi = exp(2|y*|) up to where the leading jet would fall below
   1.2 TeV, so that the two-jet selection's efficiency is smooth in mjj) and the boost; the
   leading jet pT is solved so that the two massive jets give that mjj. An event failing the
   preselection keeps its mjj and redraws the rest, so the accepted mjj follows the reference.
2. Per jet a target mass and a target tau21 (tau32 for three-prong X) are drawn from the fitted
   LHCO distributions (``shared/LHCO_REFERENCE.md``).
3. Constituents are scattered around 2 or 3 prong axes (momentum sharing z) with log-normal pT
   shares; the within-prong spread is tuned per jet (multiplicative Newton-like steps) until the
   tau21 (tau32) computed from the constituents hits the target. An angular dilation (tau ratios
   are exactly invariant under it) sets the jet's m/pT, a common pT scale its pT, and a
   longitudinal boost and a rotation (which keep pT and mass) its direction.
4. Everything stored is recomputed from the float32-rounded constituents: ``FatJet_{pt,eta,phi,
   mass}`` is their four-vector sum, ``tau1..4`` their N-subjettiness (beta = 1, R0 = 1, greedy
   seeds + Lloyd steps), ``msoftdrop`` a prong-level grooming proxy (see
   :func:`~adcoffea.synthetic.jets.jet_observables`).

Units: GeV, NanoAOD conventions (PFCand ``d0``/``dz`` in cm).

Example:
    >>> import tempfile
    >>> from adcoffea.synthetic import generate
    >>> s = generate("qcd", n_events=100, seed=1, out_dir=tempfile.mkdtemp(), n_files=2)
    >>> s.n_events, [f.rsplit("/", 1)[1] for f in s.files]
    (100, ['qcd_0.root', 'qcd_1.root'])
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.errors import ConfigError
from adcoffea.outputs import write_json
from adcoffea.synthetic.processes import (
    DEFAULT_PARAMS,
    PARENT_PARAM,
    qcd_mjj_pdf,
    resolve_params,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PARAMS",
    "PARENT_PARAM",
    "GeneratedSample",
    "generate",
    "qcd_mjj_pdf",
    "resolve_params",
    "write_fileset",
]


@dataclass(frozen=True)
class GeneratedSample:
    """A generated sample: its files and how it was made."""

    name: str
    process: str
    files: tuple[str, ...]
    n_events: int
    seed: int
    params: dict[str, float] = field(default_factory=dict)

    @property
    def is_signal(self) -> bool:
        return self.process != "qcd"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "process": self.process,
            "files": list(self.files),
            "n_events": int(self.n_events),
            "seed": int(self.seed),
            "params": {k: float(v) for k, v in self.params.items()},
            "is_signal": self.is_signal,
        }


# --------------------------------------------------------------------------------------------
# public API


def generate(
    process: str,
    *,
    n_events: int,
    seed: int,
    out_dir: str | Path,
    n_files: int = 1,
    name: str | None = None,
    params: dict[str, float] | None = None,
    workers: int = 1,
) -> GeneratedSample:
    """Generate ``n_events`` events of ``process`` into ``n_files`` NanoAOD-like ROOT files.

    Files are ``<out_dir>/<name>_<i>.root`` (tree ``Events``), written atomically. Each file's
    events depend only on ``seed``, the process, its parameters and the file's index and event
    range, so the same arguments give identical arrays whatever ``workers`` is.

    Args:
        process: ``qcd``, ``wprime``, ``svj`` or ``yxh``.
        n_events: total number of events (split evenly over the files).
        seed: random seed.
        out_dir: output directory (created if needed).
        n_files: number of files.
        name: sample name (default: the process name).
        params: physics parameters in GeV (see ``DEFAULT_PARAMS``); unknown keys raise ConfigError.
        workers: processes writing files in parallel (at most ``n_files``; one core each).
    """
    from adcoffea.synthetic.nanoaod import write_file

    p = resolve_params(process, params)
    name = name or process
    plan = plan_files(out_dir, name, n_events=n_events, n_files=n_files, workers=workers)
    paths = [path for path, _, _ in plan]
    write = partial(write_file, process=process, params=p, seed=int(seed))
    ranges = [(lo, hi) for _, lo, hi in plan]
    if min(int(workers), int(n_files)) == 1:
        for i, (lo, hi) in enumerate(ranges):
            write(paths[i], index=i, lo=lo, hi=hi)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a fresh interpreter per worker (forking a process that holds threads, e.g.
        # torch's, can deadlock)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(int(workers), int(n_files)), mp_context=ctx
        ) as pool:
            futures = [
                pool.submit(write, paths[i], index=i, lo=lo, hi=hi)
                for i, (lo, hi) in enumerate(ranges)
            ]
            for future in futures:
                future.result()
    return GeneratedSample(
        name=name,
        process=process,
        files=tuple(str(path.resolve()) for path in paths),
        n_events=int(n_events),
        seed=int(seed),
        params=p,
    )


def plan_files(
    out_dir: str | Path, name: str, *, n_events: int, n_files: int, workers: int
) -> list[tuple[Path, int, int]]:
    """The files of a sample, as both engines split it; creates ``out_dir``.

    Returns:
        per file: its path ``<out_dir>/<name>_<i>.root`` and its event range ``lo, hi`` (the
        events split evenly over the files).

    Raises:
        ConfigError: fewer than one event or worker, or files not between 1 and ``n_events``.
    """
    if int(n_events) < 1:
        raise ConfigError(f"events: must be >= 1, got {n_events}")
    if int(n_files) < 1 or int(n_files) > int(n_events):
        raise ConfigError(f"files: must be between 1 and the number of events, got {n_files}")
    if int(workers) < 1:
        raise ConfigError(f"workers: must be >= 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, int(n_events), int(n_files) + 1).astype(np.int64)
    return [
        (out / f"{name}_{i}.root", int(bounds[i]), int(bounds[i + 1])) for i in range(int(n_files))
    ]


def fileset_entries(samples: Iterable[GeneratedSample]) -> dict:
    """The coffea fileset entries of ``samples`` (see :func:`write_fileset`)."""
    return {
        s.name: {
            "files": {str(Path(fp).resolve()): "Events" for fp in s.files},
            "metadata": {
                "process": s.process,
                "is_signal": s.is_signal,
                "n_events": int(s.n_events),
                "seed": int(s.seed),
                "params": {k: float(v) for k, v in s.params.items()},
            },
        }
        for s in samples
    }


def write_fileset(samples: Iterable[GeneratedSample], path: str | Path) -> dict:
    """Write a coffea fileset JSON for ``samples`` (atomically) and return it.

    Format: ``{name: {"files": {abs_path: "Events"}, "metadata": {"process", "is_signal",
    "n_events", "seed", "params"}}}``.
    """
    fileset = fileset_entries(samples)
    write_json(Path(path), fileset)
    return fileset
