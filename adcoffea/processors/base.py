"""The processor shared by the three searches.

A search differs only in its observable (mjj, mT, or (mjj, mX)); selection, features,
anomaly scoring, regions, cutflow and the optional feature tables for training are common.

Besides histograms and cutflows, the output holds ``normalisation[dataset]``: the sum of
generator weights (``genWeight``; 1 per event where the branch is absent), the event count and
how many events carried ``genWeight``, all before any cut and over every chunk, so that
simulated samples can be scaled to cross section x luminosity (:mod:`adcoffea.normalisation`).

Non-finite values:

* an event whose two leading jets (or MET, for the semi-visible search) carry NaN or inf
  fails the ``finite_kinematics`` cut of the cutflow and is reported per file under
  ``_nonfinite[(dataset, file, "kinematics")]`` (``run_report.nonfinite``, with a warning);
* a non-finite anomaly score (a model that returns NaN) never passes a score cut: the event
  stays in the inclusive region and is in no scored region, is left out of the ``score``
  histogram (a NaN would land in its overflow bin), and is reported per file and model under
  ``_nonfinite[(dataset, file, "score:<model>")]``. Its training column keeps the NaN.

With ``systematics`` set, the datasets in ``varied_datasets`` (the signal templates) are also
processed with their large-R jets varied (JES, JER: :mod:`adcoffea.systematics`) before the
selection, with observables, features and scores recomputed on the varied jets; the
observable is histogrammed per variation in ``<observable>_variations`` (axes dataset,
region, ``variation``, the observable's). The variations are a histogram of their own rather
than an axis of the nominal one, which every consumer (fits, scans, limits, plots, the ROOT
output) slices by dataset and region only; other datasets (data) cost no variation work.

Before any chunk runs, :meth:`SearchProcessor.check_models` loads every bundle (checksums
verified) and checks it against the processor's inputs, and
:meth:`SearchProcessor.required_branches` lists every branch the pre-flight must find.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import hist
import numpy as np
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from adcoffea.config import (
    AxisConfig,
    HistogramsConfig,
    RegionConfig,
    SelectionConfig,
    SystematicsConfig,
)
from adcoffea.errors import InputFileError, ModelBundleError
from adcoffea.execution.nanoevents import collection_of
from adcoffea.execution.preflight import BASE_BRANCHES, JET_FIELDS, BranchChoice, Requirement
from adcoffea.features import HIGH_LEVEL_FEATURES, ModelInputs, high_level_features
from adcoffea.processors.selections import DijetSelection, event_weights, select_dijets
from adcoffea.systematics import jet_factors, variation_names, variations_key, vary_events

# Synthetic and skimmed files lack most cross-referenced collections; that is expected.
# Set here too, because loky/dask workers import this module afresh.
NanoAODSchema.warn_missing_crossrefs = False

#: Branches and collections a processor reads when a file has them: the generator weight
#: (simulation) and the synthetic samples' truth label.
OPTIONAL_COLLECTIONS = ("genWeight", "Truth")

#: Loaded model bundles, one per (path, content hash) and worker process: a processor is
#: pickled to every task, the bundle is not, so each worker reads it once.
_BUNDLES: dict[tuple[str, str], Any] = {}


def load_bundle_cached(path: str | Path) -> Any:
    """Load a model bundle once per process (keyed by path and metadata hash)."""
    from adcoffea.models.bundle import load_bundle

    path = Path(path)
    meta = path / "metadata.json"
    try:
        digest = hashlib.sha256(meta.read_bytes()).hexdigest()
    except OSError as err:
        raise ModelBundleError(f"cannot read model bundle {path}: {err.strerror}") from None
    key = (str(path.resolve()), digest)
    if key not in _BUNDLES:
        _BUNDLES[key] = load_bundle(path)
    return _BUNDLES[key]


#: Jet branches (beyond pt, eta, phi, mass) each high-level feature is computed from.
FEATURE_JET_FIELDS: dict[str, tuple[str, ...]] = {
    "tau21_min": ("tau1", "tau2"),
    "tau21_max": ("tau1", "tau2"),
    "tau32_min": ("tau2", "tau3"),
    "tau32_max": ("tau2", "tau3"),
}


def constituent_branches(jet_collection: str = "FatJet") -> BranchChoice:
    """The branches of either constituent link format (NanoAOD v15 or PFNano)."""
    from adcoffea.constituents import FORMATS

    options = []
    for fmt in FORMATS:
        links = fmt.links.replace("FatJet", jet_collection, 1)
        options.append(
            (
                f"{links}_{fmt.jet_field}",
                f"{links}_{fmt.particle_field}",
                *(f"{fmt.particles}_{f}" for f in JET_FIELDS),
            )
        )
    return BranchChoice(f"{jet_collection} constituents", tuple(options))


def make_axis(name: str, cfg: AxisConfig, label: str) -> hist.axis.AxesMixin:
    if cfg.edges is not None:
        return hist.axis.Variable(cfg.edges, name=name, label=label)
    return hist.axis.Regular(cfg.bins, cfg.start, cfg.stop, name=name, label=label)


@dataclass
class SearchProcessor(processor.ProcessorABC):
    """Base processor: dijet selection, features, optional anomaly score, histograms.

    Args:
        selection: the dijet selection.
        histograms: axis definitions.
        regions: anomaly-score regions to fill (``inclusive`` needs no model).
        bundles: ``(label, path)`` of model bundle directories, each loaded once per worker;
            a scored region uses its ``model`` label, or the first bundle.
        collect_columns: also return per-event feature tables (for training/evaluation).
        collect_constituents: include padded constituent arrays in those tables.
        max_particles: constituents kept per jet when they are needed.
        score_threads: torch threads while a chunk is scored (0: leave torch's setting).
            The parallelism of processing is one worker per core; torch's default of one
            thread per core in every worker oversubscribes the machine and, with the small
            batches of one chunk, made the CWoLa ensemble's scoring 8-13x slower than one
            thread on 2 busy cores (``benchmarks/throughput.py --cwola``).
        systematics: JES/JER variations (None: none, and no variation histogram).
        varied_datasets: the datasets processed with varied jets (the signal templates);
            every other dataset, data included, is processed nominally only.
    """

    selection: SelectionConfig = field(default_factory=SelectionConfig)
    histograms: HistogramsConfig = field(default_factory=HistogramsConfig)
    regions: tuple[RegionConfig, ...] = (RegionConfig(name="inclusive"),)
    bundles: tuple[tuple[str, str], ...] = ()
    collect_columns: bool = False
    collect_constituents: bool = False
    max_particles: int = 20
    score_threads: int = 1
    systematics: SystematicsConfig | None = None
    varied_datasets: tuple[str, ...] = ()

    #: name of the search's observable histogram(s); set by subclasses
    observable: ClassVar[str] = "mjj"
    #: model inputs a subclass adds to ``HIGH_LEVEL_FEATURES`` (see ``extra_features``)
    extra_feature_names: ClassVar[tuple[str, ...]] = ()

    # --- hooks for subclasses -------------------------------------------------------------
    def observable_axes(self) -> list[hist.axis.AxesMixin]:
        return [make_axis("mjj", self.histograms.mjj, r"$m_{jj}$ [GeV]")]

    def observable_values(
        self, events: ak.Array, sel: DijetSelection, feats: dict
    ) -> dict[str, np.ndarray]:
        """The search's observables of the events ``sel`` selects from the chunk's ``events``.

        ``events`` is the whole chunk: an event-level column is read there and taken at
        ``sel.index``. ``sel.two(name)`` gives a field of the two selected jets as (n, 2)
        float64 from the chunk's flat columns; ``sel.jets`` the awkward jets (built on first
        use, slower).
        """
        return {"mjj": feats["mjj"]}

    def extra_features(
        self, events: ak.Array, sel: DijetSelection, feats: dict, obs: dict
    ) -> dict[str, np.ndarray]:
        """Search-specific model inputs beyond ``HIGH_LEVEL_FEATURES`` (none by default);
        ``events`` and ``sel`` as in :meth:`observable_values`."""
        return {}

    def extra_branches(self) -> list[Requirement]:
        """Branches the search reads beyond the jets (e.g. MET); none by default."""
        return []

    def varied_events(self, events: ak.Array, factor: np.ndarray) -> ak.Array:
        """The chunk with its jets' pt and mass scaled by ``factor`` (flat, per jet), the
        input of a JES/JER variation (:func:`adcoffea.systematics.vary_events`)."""
        return vary_events(events, collection=self.selection.jet_collection, factor=factor)

    def finite_inputs(self, events: ak.Array) -> np.ndarray | None:
        """Per event: are the search's non-jet inputs (e.g. MET) finite? None: no such inputs."""
        return None

    # --- checks before processing ---------------------------------------------------------
    @property
    def feature_names(self) -> tuple[str, ...]:
        """The high-level model inputs this processor computes, in its order."""
        return (*HIGH_LEVEL_FEATURES, *self.extra_feature_names)

    def check_models(self) -> None:
        """Load every model bundle (checksums verified) and check it fits this processor.

        Called by ``run_processor`` in the main process before any chunk runs, so a
        tampered bundle or one trained on other inputs is one clear message on every
        executor, instead of an error (or wrong scores) inside the workers.

        Raises:
            ModelBundleError: naming the bundle and what does not match.
        """
        for label, model in self._models().items():
            check = getattr(model, "check_inputs", None)
            if check is None:
                continue
            try:
                check(self.feature_names, self.max_particles)
            except ModelBundleError as err:
                raise ModelBundleError(f"model {label!r}: {err}") from None

    def required_branches(self) -> list[Requirement]:
        """Every branch this processor and its models read (checked by the pre-flight)."""
        jets = self.selection.jet_collection
        fields = list(JET_FIELDS)
        constituents = self.collect_columns and self.collect_constituents
        for model in self._models().values():
            meta = getattr(model, "metadata", None)
            for feature in getattr(meta, "features", ()) or ():
                fields += [f for f in FEATURE_JET_FIELDS.get(feature, ()) if f not in fields]
            constituents |= "constituents" in getattr(model, "required_inputs", ())
        req: list[Requirement] = [*BASE_BRANCHES, f"n{jets}", *(f"{jets}_{f}" for f in fields)]
        if constituents:
            req.append(constituent_branches(jets))
        return req + self.extra_branches()

    def collections(self) -> frozenset[str] | None:
        """The NanoAOD collections and top-level branches this processor reads.

        Those of :meth:`required_branches` (every option of a choice) and the ones read
        when a file has them (:data:`OPTIONAL_COLLECTIONS`). ``run_processor`` builds each
        chunk's events from these only: building NanoEvents costs in proportion to the
        tree's branches, 112 ms per chunk for the 2656 of a NanoAOD v15 tree against 15 ms
        for a dijet search's. A subclass that reads another collection adds it here; None
        gives the events the whole tree.
        """
        names = set(OPTIONAL_COLLECTIONS)
        for req in self.required_branches():
            branches = (
                [b for opt in req.options for b in opt] if isinstance(req, BranchChoice) else [req]
            )
            names.update(collection_of(b) for b in branches)
        # a counter (nFatJet) comes with its collection (BranchFilter)
        return frozenset(n for n in names if not (n[:1] == "n" and n[1:] in names))

    # --- the common part ------------------------------------------------------------------
    def _new_hists(self) -> dict[str, hist.Hist]:
        ds = hist.axis.StrCategory([], growth=True, name="dataset", label="Dataset")
        reg = hist.axis.StrCategory([r.name for r in self.regions], name="region", label="Region")
        h = self.histograms
        out = {
            self.observable: hist.Hist(
                ds, reg, *self.observable_axes(), storage=hist.storage.Weight()
            ),
            "mj": hist.Hist(
                ds,
                reg,
                hist.axis.StrCategory(["lighter", "heavier"], name="jet"),
                make_axis("mj", h.mj, r"$m_{j}$ [GeV]"),
                storage=hist.storage.Weight(),
            ),
            "tau21": hist.Hist(
                ds,
                reg,
                hist.axis.StrCategory(["lighter", "heavier"], name="jet"),
                make_axis("tau21", h.tau21, r"$\tau_{21}$"),
                storage=hist.storage.Weight(),
            ),
            "score": hist.Hist(
                ds,
                hist.axis.StrCategory([b[0] for b in self.bundles], name="model", growth=True),
                make_axis("score", h.score, "anomaly score"),
                storage=hist.storage.Weight(),
            ),
        }
        if self.systematics is not None:
            out[variations_key(self.observable)] = hist.Hist(
                hist.axis.StrCategory([], growth=True, name="dataset", label="Dataset"),
                hist.axis.StrCategory([r.name for r in self.regions], name="region"),
                hist.axis.StrCategory(
                    list(variation_names(self.systematics)), name="variation", label="Variation"
                ),
                *self.observable_axes(),
                storage=hist.storage.Weight(),
            )
        return out

    def _models(self) -> dict[str, Any]:
        return {label: load_bundle_cached(path) for label, path in self.bundles}

    def _model_inputs(self, events, sel, feats, models: dict[str, Any]) -> ModelInputs:
        need = set().union(*(m.required_inputs for m in models.values())) if models else set()
        want_constituents = "constituents" in need or (
            self.collect_columns and self.collect_constituents
        )
        constituents = mask = jets4 = None
        if want_constituents:
            from adcoffea.constituents import selected_constituents

            constituents, mask = selected_constituents(
                events,
                sel.jet_index,
                max_particles=self.max_particles,
                jet_collection=self.selection.jet_collection,
            )
            jets4 = np.stack(
                [sel.two(f).astype(np.float32) for f in ("pt", "eta", "phi", "mass")],
                axis=-1,
            )
        # event numbers pick a k-fold model, and are a training column; nothing else reads them
        want_event = "event" in need or self.collect_columns
        event = (
            ak.to_numpy(events.event).take(sel.index).astype(np.uint64)
            if want_event and "event" in events.fields
            else None
        )
        return ModelInputs(
            high_level=feats, event=event, constituents=constituents, mask=mask, jets=jets4
        )

    def _scores(self, models: dict[str, Any], inputs: ModelInputs) -> dict[str, np.ndarray]:
        """Each model's scores of ``inputs``, with torch limited to ``score_threads``."""
        if not models or not len(inputs):
            return {label: np.zeros(0) for label in models}
        import torch

        before = torch.get_num_threads()
        limit = self.score_threads > 0 and before != self.score_threads
        if limit:
            torch.set_num_threads(self.score_threads)
        try:
            return {label: m.score(inputs) for label, m in models.items()}
        finally:
            if limit:
                torch.set_num_threads(before)

    def _region_masks(
        self, scores: dict[str, np.ndarray], models: dict[str, Any]
    ) -> dict[str, np.ndarray | None]:
        out: dict[str, np.ndarray | None] = {}
        default = self.bundles[0][0] if self.bundles else None
        for r in self.regions:
            if not r.is_scored:
                out[r.name] = None
                continue
            label = r.model or default
            if label not in scores:
                raise ModelBundleError(
                    f"region {r.name!r} needs the anomaly score of model {label!r} "
                    "but no such model bundle is set"
                )
            sc = scores[label]
            # a NaN score is not anomalous: explicitly in no scored region (comparisons with
            # NaN are False anyway; this keeps it so for any future cut)
            m = np.isfinite(sc)
            lo = (
                r.score_min
                if r.efficiency is None
                else models[label].threshold_for_efficiency(r.efficiency)
            )
            if lo is not None:
                m &= sc > lo
            if r.score_max is not None:
                m &= sc <= r.score_max
            out[r.name] = m
        return out

    def _analyse(
        self, events: ak.Array, weights_all: np.ndarray, models: dict[str, Any]
    ) -> tuple[DijetSelection, dict, dict, ModelInputs, dict[str, np.ndarray]]:
        """Selection, features, observables, model inputs and scores of one chunk."""
        filename = events.metadata.get("filename", "<events>")
        try:
            sel = select_dijets(
                events, self.selection, weights=weights_all, finite=self.finite_inputs(events)
            )
        except (KeyError, AttributeError) as err:
            raise InputFileError(filename, f"missing branch or collection: {err}") from err
        feats = high_level_features(None, pairs=sel.by_mass)
        # the hooks get the whole chunk and take what they read at sel.index: slicing every
        # collection of the events to the selected ones is work no search needs
        obs = self.observable_values(events, sel, feats)
        feats = {**feats, **self.extra_features(events, sel, feats, obs)}
        inputs = self._model_inputs(events, sel, feats, models)
        return sel, feats, obs, inputs, self._scores(models, inputs)

    def _fill_variations(
        self,
        hists: dict[str, hist.Hist],
        events: ak.Array,
        weights_all: np.ndarray,
        models: dict[str, Any],
        nominal: tuple[dict, np.ndarray, dict[str, np.ndarray]],
    ) -> None:
        """Fill the variation histogram: the nominal and every variation of the jets."""
        assert self.systematics is not None
        dataset = events.metadata.get("dataset", "unknown")
        collection = self.selection.jet_collection
        try:
            factors = jet_factors(events, collection=collection, config=self.systematics)
        except (KeyError, AttributeError) as err:
            filename = events.metadata.get("filename", "<events>")
            raise InputFileError(filename, f"missing branch or collection: {err}") from err
        h = hists[variations_key(self.observable)]

        def fill(variation: str, obs: dict, weights: np.ndarray, scores: dict) -> None:
            for region, rmask in self._region_masks(scores, models).items():
                idx = slice(None) if rmask is None else rmask
                h.fill(
                    dataset=dataset,
                    region=region,
                    variation=variation,
                    **{k: v[idx] for k, v in obs.items()},
                    weight=weights[idx],
                )

        fill("nominal", *nominal)
        for variation, factor in factors.items():
            if factor is None:  # the nominal jets (one-sided jer_down)
                fill(variation, *nominal)
                continue
            varied = self.varied_events(events, factor)
            sel, _, obs, _, scores = self._analyse(varied, weights_all, models)
            fill(variation, obs, weights_all.take(sel.index), scores)

    def process(self, events: ak.Array) -> dict[str, Any]:
        dataset = events.metadata.get("dataset", "unknown")
        filename = events.metadata.get("filename", "<events>")
        try:
            weights_all = event_weights(events)
        except (KeyError, AttributeError) as err:
            raise InputFileError(filename, f"missing branch or collection: {err}") from err
        models = self._models()
        sel, feats, obs, inputs, scores = self._analyse(events, weights_all, models)
        nonfinite = {}
        n_bad = sel.cutflow["two_jets"][0] - sel.cutflow["finite_kinematics"][0]
        if n_bad:
            nonfinite[(dataset, str(filename), "kinematics")] = n_bad
        weights = weights_all.take(sel.index)
        finite_scores = {label: np.isfinite(sc) for label, sc in scores.items()}
        for label, ok in finite_scores.items():
            if not ok.all():
                nonfinite[(dataset, str(filename), f"score:{label}")] = int((~ok).sum())

        hists = self._new_hists()
        for region, rmask in self._region_masks(scores, models).items():
            idx = slice(None) if rmask is None else rmask
            w = weights[idx]
            hists[self.observable].fill(
                dataset=dataset, region=region, **{k: v[idx] for k, v in obs.items()}, weight=w
            )
            for which, suffix in (("lighter", "min"), ("heavier", "max")):
                hists["mj"].fill(
                    dataset=dataset,
                    region=region,
                    jet=which,
                    mj=feats[f"mj_{suffix}"][idx],
                    weight=w,
                )
                hists["tau21"].fill(
                    dataset=dataset,
                    region=region,
                    jet=which,
                    tau21=feats[f"tau21_{suffix}"][idx],
                    weight=w,
                )
        for label, sc in scores.items():
            ok = finite_scores[label]
            hists["score"].fill(dataset=dataset, model=label, score=sc[ok], weight=weights[ok])
        if self.systematics is not None and dataset in self.varied_datasets:
            self._fill_variations(hists, events, weights_all, models, (obs, weights, scores))

        out: dict[str, Any] = {
            "hists": hists,
            "cutflow": {dataset: {name: n for name, (n, _) in sel.cutflow.items()}},
            "cutflow_weighted": {dataset: {name: w for name, (_, w) in sel.cutflow.items()}},
            # before any cut, every chunk (one with no selected event too): the denominator
            # of the cross-section normalisation (adcoffea.normalisation)
            "normalisation": {
                dataset: {
                    "sum_weights": float(weights_all.sum()),
                    "events": len(events),
                    "events_with_genweight": len(events) if "genWeight" in events.fields else 0,
                }
            },
        }
        if nonfinite:
            out["_nonfinite"] = nonfinite
        if self.collect_columns:
            cols = {k: v for k, v in inputs.high_level.items()}
            cols.update({f"obs_{k}": v for k, v in obs.items()})
            cols["weight"] = weights
            if inputs.event is not None:
                cols["event"] = inputs.event
            if "Truth" in events.fields:
                cols["truth_label"] = (
                    ak.to_numpy(events.Truth.label).take(sel.index).astype(np.int32)
                )
            for label, sc in scores.items():
                cols[f"score_{label}"] = sc
            if inputs.constituents is not None and self.collect_constituents:
                cols["constituents"] = inputs.constituents
                cols["constituents_mask"] = inputs.mask
                cols["jets"] = inputs.jets
            out["columns"] = {
                dataset: {k: processor.column_accumulator(np.asarray(v)) for k, v in cols.items()}
            }
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator
