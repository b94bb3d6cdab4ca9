"""Constituent and high-level anomaly detectors on real (Pythia 8 + FastJet) jets, and the
MC-assisted background extrapolation for semi-visible jets.

Samples (generated once into ``--cache``, default ``data/pythia``, shared with
``configs/*_pythia.yaml`` by name and spec; :data:`CATALOGUE`): Monash QCD dijets, W' -> X Y
with a two-prong (``wprime``) or three-prong (``wprime3``) X of 500 GeV, Y -> X H
(``yxh``, m_X = 300 GeV), semi-visible jets (``svj``, Z' 4 TeV, r_inv = 0.3), and the same QCD
and SVJ with the ATLAS A14 tune (``qcd_a14``, ``svj_a14``: the "data" of the MC-assisted
study, whose "MC" is Monash). Every sample goes through the search processor
(:class:`~adcoffea.processors.SemivisibleProcessor`: the common dijet selection, constituents,
MET features) exactly as in a search.

Per seed (``--seeds``), the QCD and signal events are split in half (train / test) and

* ``vrnn``: VRNN on the heavier jet, trained on QCD; scored with the two-sided typicality
  tail (``vrnn``, the default) and with the ATLAS mean-KL tail (``vrnn_high``);
* ``antelope``: PFN on signal vs QCD, VAE on the classifier's last hidden layer (the default),
  and for SVJ also on the Phi sums (``antelope_phi``); ``pfn`` is the PFN's own logit, the
  supervised constituent classifier;
* ``autoencoder`` / ``vae`` / ``nae``: on the four LHCO features, trained on QCD;
* ``supervised``: dense classifier on the high-level features (+ MET features).

Printed: AUC and max SIC (>= 10 background events kept) as mean +- std over the seeds.

MC-assisted (``--mc-assisted``): data = half of the A14 QCD + injected A14 SVJ, MC = Monash
QCD, observable mT; CR 2.4-3.3 TeV (closure slice 3.0-3.3), SR > 3.3 TeV. Closure AUC and
standardised mean shifts in the held-out slice, and the SIC of each variant against the
idealized detector (data vs the other half of the A14 QCD) in the same run.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/pythia_models.py --seeds 0 1 2 \\
        --out results/pythia_models.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adcoffea.config import AnalysisConfig, TrainConfig
from adcoffea.features import LHCO_FEATURES, ModelInputs
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.train import train_model

#: The shared sample catalogue (data/pythia/<name>); configs/*_pythia.yaml reuse these specs.
CATALOGUE: list[dict] = [
    {"name": "qcd", "process": "qcd", "events": 12000, "files": 4, "seed": 1},
    {"name": "yxh", "process": "yxh", "events": 2500, "files": 2, "seed": 5},
    {"name": "svj", "process": "svj", "events": 2500, "files": 2, "seed": 6,
     "params": {"m_zprime": 4000.0}},
    {"name": "wprime", "process": "wprime", "events": 2500, "files": 2, "seed": 3},
    {"name": "wprime3", "process": "wprime", "events": 2500, "files": 2, "seed": 4,
     "params": {"x_prongs": 3.0}},
    {"name": "qcd_a14", "process": "qcd", "events": 8000, "files": 4, "seed": 2,
     "params": {"tune": 21.0}},
    {"name": "svj_a14", "process": "svj", "events": 2500, "files": 2, "seed": 7,
     "params": {"m_zprime": 4000.0, "tune": 21.0}},
]  # fmt: skip
SIGNALS = ("wprime", "wprime3", "yxh", "svj")
MAX_PARTICLES = 30
HL_SUPERVISED = ("mj_min", "mj_max", "tau21_min", "tau21_max", "tau32_min", "tau32_max",
                 "met", "dphi_min")  # fmt: skip
MC_FEATURES = ("tau21_min", "tau21_max", "tau32_min", "tau32_max", "met", "dphi_min", "mj_max")
MT_CR, MT_VAL, MT_SR = (2400.0, 3300.0), (3000.0, 3300.0), (3300.0, 8000.0)


def _config(cache: Path, samples: list[dict], workers: int) -> AnalysisConfig:
    return AnalysisConfig.model_validate({
        "name": "pythia_models", "analysis": "semivisible",
        "datasets": {"synthetic": {"directory": str(cache), "engine": "pythia",
                                   "samples": samples}},
        "models": [{"method": "antelope", "hyperparameters": {"max_particles": MAX_PARTICLES}}],
        "executor": {"name": "futures", "workers": workers, "chunksize": 20000},
    })  # fmt: skip


def load_inputs(
    cache: Path, *, names: set[str] | None = None, workers: int = 2
) -> dict[str, tuple[ModelInputs, dict]]:
    """Generate (once) and process the catalogue samples: {name: (inputs, observables)}.

    Processed columns are cached as ``<cache>/inputs/<name>.npz`` (keyed by the sample spec).
    """
    from adcoffea.datasets import ensure_synthetic
    from adcoffea.processing import columns_to_inputs, make_processor, run_configured

    out = {}
    for spec in CATALOGUE:
        if names is not None and spec["name"] not in names:
            continue
        path = cache / "inputs" / f"{spec['name']}.npz"
        key = json.dumps(spec, sort_keys=True)
        if path.exists():
            z = np.load(path, allow_pickle=False)
            if str(z["spec"]) == key:
                hl = {k[3:]: z[k] for k in z.files if k.startswith("hl_")}
                inp = ModelInputs(high_level=hl, event=z["event"], constituents=z["constituents"],
                                  mask=z["mask"], jets=z["jets"])  # fmt: skip
                out[spec["name"]] = (inp, {"mt": z["obs_mt"]})
                continue
        cfg = _config(cache, [spec], workers)
        fileset = ensure_synthetic(cfg)
        proc = make_processor(cfg, collect_columns=True, collect_constituents=True)
        res = run_configured(cfg, fileset, proc)
        inp, _, obs, _ = columns_to_inputs(res.output["columns"])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, spec=key, event=inp.event, constituents=inp.constituents.astype(np.float32),
            mask=inp.mask, jets=inp.jets, obs_mt=obs["mt"],
            **{f"hl_{k}": v for k, v in inp.high_level.items()},
        )  # fmt: skip
        out[spec["name"]] = (inp, obs)
        print(f"  {spec['name']}: {len(inp)} selected events", flush=True)
    return out


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: n // 2], perm[n // 2 :]


def _metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    r = roc_sic(scores, labels, min_background=10)
    return {"auc": r.auc, "max_sic": r.max_sic}


def _with_tail(bundle, tail: str):
    b = copy.copy(bundle)
    b.metadata = dataclasses.replace(bundle.metadata, score_kind=tail)
    return b


def _pfn_logit(bundle, inputs: ModelInputs) -> np.ndarray:
    """The ANTELOPE PFN's logit: the supervised constituent classifier."""
    from adcoffea.models.preprocessing import Standardizer, antelope_particle_features

    m = inputs.mask.astype(bool)
    raw = antelope_particle_features(inputs.constituents, m, inputs.jets)
    pstd = Standardizer.from_dict(bundle.metadata.preprocessing["particles"])
    feats = np.where(m[..., None], pstd.transform(raw), 0.0).astype(np.float32)
    with torch.no_grad():
        return bundle.networks["phi"](torch.as_tensor(feats), torch.as_tensor(m)).double().numpy()


def run_models(data: dict, *, seeds: list[int], epochs: int) -> dict:
    """{model: {signal: [{auc, max_sic} per seed]}}."""
    qcd, _ = data["qcd"]
    rows: dict[str, dict[str, list]] = {}

    def add(model, signal, metrics):
        rows.setdefault(model, {}).setdefault(signal, []).append(metrics)

    for seed in seeds:
        cfg = TrainConfig(epochs=epochs, batch_size=256, learning_rate=1e-3, patience=4, seed=seed)
        tr_b, te_b = _split(len(qcd), seed)
        qtrain, qtest = qcd.select(tr_b), qcd.select(te_b)
        sig_split = {s: _split(len(data[s][0]), seed + 100) for s in SIGNALS}
        tests = {s: ModelInputs.concatenate([qtest, data[s][0].select(sig_split[s][1])])
                 for s in SIGNALS}  # fmt: skip
        labels = {s: np.r_[np.zeros(len(qtest)), np.ones(len(sig_split[s][1]))] for s in SIGNALS}
        t0 = time.perf_counter()
        vrnn = train_model("vrnn", qtrain, config=cfg, progress=False,
                           hyperparameters={"jet": "heavier", "n_max": 20}).bundle  # fmt: skip
        for s in SIGNALS:
            add("vrnn", s, _metrics(vrnn.raw_score(tests[s]), labels[s]))
            add("vrnn_high", s, _metrics(_with_tail(vrnn, "high").raw_score(tests[s]), labels[s]))
        print(f"seed {seed}: vrnn {time.perf_counter() - t0:.0f} s", flush=True)
        for method in ("autoencoder", "vae", "nae"):
            hp = {"nae_epochs": 3} if method == "nae" else {}
            b = train_model(method, qtrain, config=cfg, features=list(LHCO_FEATURES),
                            hyperparameters=hp, progress=False).bundle  # fmt: skip
            for s in SIGNALS:
                add(method, s, _metrics(b.raw_score(tests[s]), labels[s]))
        for s in SIGNALS:
            strain = data[s][0].select(sig_split[s][0])
            train_in = ModelInputs.concatenate([qtrain, strain])
            y = np.r_[np.zeros(len(qtrain)), np.ones(len(strain))]
            layers = ("last_hidden", "phi") if s == "svj" else ("last_hidden",)
            for layer in layers:
                b = train_model("antelope", train_in, config=cfg, labels=y, progress=False,
                                hyperparameters={"embedding_layer": layer}).bundle  # fmt: skip
                name = "antelope" if layer == "last_hidden" else "antelope_phi"
                add(name, s, _metrics(b.raw_score(tests[s]), labels[s]))
                if layer == "last_hidden":
                    add("pfn", s, _metrics(_pfn_logit(b, tests[s]), labels[s]))
            b = train_model("supervised", train_in, config=cfg, labels=y, progress=False,
                            features=list(HL_SUPERVISED)).bundle  # fmt: skip
            add("supervised", s, _metrics(b.raw_score(tests[s]), labels[s]))
        print(f"seed {seed}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def run_mc_assisted(data: dict, *, seeds: list[int], n_inject: int) -> dict:
    """Closure and SIC of the three MC-assisted variants against the idealized detector."""
    from adcoffea.models.mc_assisted import classify_against, mc_assisted

    qa, oa = data["qcd_a14"]
    sa, osa = data["svj_a14"]
    qm, om = data["qcd"]
    x_mc, m_mc = qm.matrix(MC_FEATURES).astype(np.float64), om["mt"].astype(np.float64)
    out: dict = {"n_inject": n_inject, "rows": {}}
    for seed in seeds:
        half_d, half_b = _split(len(qa), seed + 200)
        inj = np.random.default_rng(seed + 300).permutation(len(sa))[:n_inject]
        x_d = np.r_[qa.matrix(MC_FEATURES)[half_d], sa.matrix(MC_FEATURES)[inj]].astype(np.float64)
        m_d = np.r_[oa["mt"][half_d], osa["mt"][inj]].astype(np.float64)
        y_d = np.r_[np.zeros(len(half_d)), np.ones(len(inj))]
        x_b, m_b = qa.matrix(MC_FEATURES)[half_b].astype(np.float64), oa["mt"][half_b]
        in_sr = (m_d >= MT_SR[0]) & (m_d < MT_SR[1])
        in_b = (m_b >= MT_SR[0]) & (m_b < MT_SR[1])
        ideal = classify_against(x_d[in_sr], x_b[in_b], seed=seed, members=3)
        rec = {"idealized": _metrics(ideal, y_d[in_sr]),
               "s_over_b_sr": float(y_d[in_sr].sum() / max((1 - y_d[in_sr]).sum(), 1))}  # fmt: skip
        # raw MC as the prediction: what the corrections must improve on
        raw = classify_against(x_d[in_sr], x_mc[(m_mc >= MT_SR[0]) & (m_mc < MT_SR[1])],
                               seed=seed, members=3)  # fmt: skip
        rec["raw_mc"] = _metrics(raw, y_d[in_sr])
        for method in ("reweight", "morph", "generate"):
            t0 = time.perf_counter()
            res = mc_assisted(x_d, m_d, x_mc, m_mc, sr=MT_SR, cr=MT_CR, validation=MT_VAL,
                              method=method, seed=seed, members=3)  # fmt: skip
            rec[method] = {**_metrics(res.scores, y_d[in_sr]), **res.to_dict(),
                           "seconds": time.perf_counter() - t0}  # fmt: skip
        out["rows"][seed] = rec
        print(f"mc-assisted seed {seed}: " + ", ".join(
            f"{k} AUC {v['auc']:.3f} SIC {v['max_sic']:.2f}" for k, v in rec.items()
            if isinstance(v, dict)), flush=True)  # fmt: skip
    return out


def _ms(vals: list[float]) -> str:
    a = np.asarray(vals, dtype=np.float64)
    return f"{a.mean():.3f} ± {a.std():.3f}" if len(a) > 1 else f"{a.mean():.3f}"


def print_tables(rows: dict, mc: dict | None) -> None:
    print(f"\n{'model':13s} " + " ".join(f"{s:>27s}" for s in SIGNALS))
    print(f"{'':13s} " + " ".join(f"{'AUC | max SIC':>27s}" for _ in SIGNALS))
    for model, per in rows.items():
        cells = []
        for s in SIGNALS:
            if s not in per:
                cells.append(f"{'-':>27s}")
                continue
            auc = _ms([r["auc"] for r in per[s]])
            sic = _ms([r["max_sic"] for r in per[s]])
            cells.append(f"{auc + ' | ' + sic:>27s}")
        print(f"{model:13s} " + " ".join(cells))
    if mc:
        print(f"\nMC-assisted SVJ (mT SR {MT_SR[0]:.0f}+ GeV, {mc['n_inject']} injected):")
        recs = list(mc["rows"].values())
        for key in ("idealized", "raw_mc", "reweight", "morph", "generate"):
            auc = _ms([r[key]["auc"] for r in recs])
            sic = _ms([r[key]["max_sic"] for r in recs])
            clo = ""
            if key in ("reweight", "morph", "generate"):
                clo = "  closure AUC " + _ms([r[key]["closure"]["auc"] for r in recs])
                shifts = np.asarray([r[key]["closure"]["mean_shift"] for r in recs])
                clo += "  max |mean shift| " + _ms(list(np.abs(shifts).max(axis=1)))
            print(f"  {key:10s} AUC {auc}  max SIC {sic}{clo}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=Path("data/pythia"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--workers", type=int, default=2, help="generation/processing processes")
    p.add_argument("--no-models", action="store_true")
    p.add_argument("--mc-assisted", action="store_true")
    p.add_argument("--inject", type=int, default=150, help="SVJ events injected in the data")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = set() if args.no_models else {"qcd", *SIGNALS}
    if args.mc_assisted:
        names |= {"qcd", "qcd_a14", "svj_a14"}
    data = load_inputs(args.cache, names=names, workers=args.workers)
    for name, (inp, _) in data.items():
        print(f"{name:9s} {len(inp):6d} selected", flush=True)
    rows = {} if args.no_models else run_models(data, seeds=args.seeds, epochs=args.epochs)
    mc = run_mc_assisted(data, seeds=args.seeds, n_inject=args.inject) if args.mc_assisted else None
    print_tables(rows, mc)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"models": rows, "mc_assisted": mc}, indent=2,
                                       default=float) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
