"""Calibration of the hunt's global significance on background only (and its power).

    python benchmarks/null_calibration.py hunt --level stats    --seeds 200
    python benchmarks/null_calibration.py hunt --level features --seeds 40 --events 100000
    python benchmarks/null_calibration.py hunt --level pipeline --seeds 30 --qcd-events 200000
    python benchmarks/null_calibration.py hunt --level pipeline --seeds 5 --qcd-events 1000000
    python benchmarks/null_calibration.py hunt --level pipeline --seeds 5 --qcd-events 1000000 \\
        --signal 380

Levels (each a background-only run per seed unless ``--signal``):

* ``stats``: the statistics alone. A known selection independent of mjj (scores correlated
  across windows, no classifier) on feature-level QCD (:mod:`adcoffea.hunt.toydata`): the
  permutation pseudo-experiments are exact here, so the global p must be uniform.
* ``features``: the whole hunt (k-fold boosted trees per window) on feature-level QCD, whose
  jet masses drift with mjj as in the LHC Olympics data: checks that the classifiers do not
  sculpt bumps the toys do not know about.
* ``pipeline``: ``adcoffea run`` of ``configs/lhco_dijet.yaml`` with its hunt on generated
  NanoAOD (QCD seed = run seed, ``--qcd-events`` per run), everything else as configured
  except the other regions, limits and BumpHunter (not part of the hunt).

With ``--signal N`` a W' of random mass (between two window centres, from the seed) and random
X and Y masses is injected, N events per 1M QCD scaled to ``--qcd-events``: the power.

Prints the global p of every run, the KS test against uniform, the fraction of runs with
p < 0.05 / global Z > 2 / > 3, and writes ``<output>/hunt_<level>.json`` and a histogram of p.

    python benchmarks/null_calibration.py regions --seeds 30 --events 100000

    python benchmarks/null_calibration.py search --config configs/svj_mt.yaml --seeds 5
    python benchmarks/null_calibration.py search --config configs/yxh_2d.yaml --seeds 30 \
        --qcd-events 60000 --epochs 8 --toys 2000

``search``: ``adcoffea run`` of a shipped config at its configured size with the injected
signal removed and the QCD generated with another seed per run (models trained, hunt and
BumpHunter scans as configured, limits off): the global Z of every scan and of the hunt.
``--qcd-events``, ``--epochs`` and ``--toys`` make the reduced-size runs (as the tests do:
fewer QCD events, at most that many epochs except for the VRNN, fewer pseudo-experiments).
``--append`` adds the runs to those already in the output JSON (seeds run in several
sittings). The summary has, per region, the KS test of the global p against uniform, the
fraction with p < 0.05 and the largest global Z, and a histogram of p per region.

``regions``: the statistics stage of a fitted region (:func:`adcoffea.statistics.run_statistics`:
order-selected dijet fit, fit-function uncertainty, BumpHunter with toys, guarded refit) on
Poisson spectra of a dijet function (``--events`` in 1.5-8 TeV, the lhco_dijet binning and
fit range), per seed in three variants: the default (fit-function uncertainty, every BumpHunter toy
refitted as the data), without the fit-function uncertainty, and with the toys scanned
against the data's fit without refit (the conservative pre-2026-12 default). The global p
of the default must be uniform, the fraction of runs whose background model is flagged
inadequate about 1 %. Writes ``<output>/regions.json`` and a histogram of p per variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _stats_run(seed: int, args) -> dict[str, Any]:
    from scipy import stats

    from adcoffea.config import FitConfig, HuntConfig
    from adcoffea.hunt.classify import WindowScores
    from adcoffea.hunt.search import analyse_scores
    from adcoffea.hunt.toydata import qcd
    from adcoffea.hunt.windows import make_windows

    rng = np.random.default_rng(seed)
    fit = FitConfig(range=(2800.0, 7000.0))
    cfg = HuntConfig(range=(3000.0, 6000.0), n_toys=args.toys, seed=seed)
    mjj, _ = qcd(rng, args.events, m_min=2700.0)
    folds = rng.integers(0, 5, len(mjj))
    edges = np.arange(1500.0, 8001.0, 100.0)
    windows = make_windows(edges, cfg, fit.range)
    common = rng.standard_normal(len(mjj))
    rho = 0.6
    scored = [
        WindowScores(stats.norm.cdf(rho * common + np.sqrt(1 - rho**2) *
                                    rng.standard_normal(len(mjj))), 0.5, 0, 0)
        for _ in windows
    ]  # fmt: skip
    res = analyse_scores(mjj, folds, windows, scored, edges=edges, config=cfg, fit=fit)
    return _summary(res.to_dict())


def _features_run(seed: int, args) -> dict[str, Any]:
    from adcoffea.config import FitConfig, HuntConfig
    from adcoffea.hunt.search import run_hunt
    from adcoffea.hunt.toydata import sample

    rng = np.random.default_rng(seed)
    mjj, x, event, _ = sample(rng, args.events)
    cfg = HuntConfig(range=(3000.0, 6000.0), n_toys=args.toys, seed=seed,
                     classifier={"members": 1, "seed": seed})  # fmt: skip
    res = run_hunt(mjj, x, event, edges=np.arange(1500.0, 8001.0, 100.0), config=cfg,
                   fit=FitConfig(range=(2800.0, 7000.0)), n_jobs=args.jobs)  # fmt: skip
    return _summary(res.to_dict())


def _signal_point(seed: int, cfg) -> tuple[dict[str, float], float]:
    from adcoffea.hunt.windows import axis_edges, make_windows

    rng = np.random.default_rng(10_000 + seed)
    centres = [w.centre for w in make_windows(axis_edges(cfg, "mjj"), cfg.hunt,
                                              cfg.hunt_fit_range)]  # fmt: skip
    i = int(rng.integers(0, len(centres) - 1))
    m = float(centres[i] + rng.uniform(0.25, 0.75) * (centres[i + 1] - centres[i]))
    params = {"m_wprime": m, "m_x": float(rng.uniform(250.0, 650.0)),
              "m_y": float(rng.uniform(60.0, 200.0))}  # fmt: skip
    return params, m


def _pipeline_run(seed: int, args) -> dict[str, Any]:
    from adcoffea.config import load_config, replace_model
    from adcoffea.pipeline import run

    cfg = load_config(args.config)
    samples = [{"name": f"qcd_{args.qcd_events}_s{seed}", "process": "qcd",
                "events": args.qcd_events, "files": max(1, args.qcd_events // 125_000),
                "seed": 1000 + seed}]  # fmt: skip
    extra: dict[str, Any] = {}
    if args.signal:
        params, _ = _signal_point(seed, cfg)
        n = max(1, round(args.signal * args.qcd_events / 1_000_000))
        samples.append({"name": f"wprime_s{seed}", "process": "wprime", "events": n,
                        "seed": 2000 + seed, "params": params})  # fmt: skip
        extra = {"signal": {**params, "events": n}}
    datasets = {"synthetic": {"directory": str(args.data), "samples": samples},
                "data": [s["name"] for s in samples]}  # fmt: skip
    hunt = replace_model(cfg.hunt, seed=seed, classifier=replace_model(cfg.hunt.classifier,
                                                                       seed=seed))  # fmt: skip
    cfg = replace_model(
        cfg, datasets=datasets, output=args.output / f"run_s{seed}", models=[], model=None,
        regions=[{"name": "inclusive"}], bumphunt=None, limits=None, hunt=hunt,
    )  # fmt: skip
    res = run(cfg)
    out = _summary(res.results["hunt"])
    out["timings_s"] = res.results.get("timings_s")
    out.update(extra)
    if args.signal:
        b = res.results["hunt"]["best"]["signal_region"]
        out["best_contains_signal"] = bool(b[0] <= extra["signal"]["m_wprime"] <= b[1])
    return out


def search_main(args) -> None:
    """Background-only runs of a whole search at its configured (full) size, per seed."""
    from adcoffea.config import load_config, replace_model
    from adcoffea.models.threads import limited_threads
    from adcoffea.pipeline import run

    base = load_config(args.config)
    syn = base.datasets.synthetic
    if syn is None:
        raise SystemExit(f"{args.config}: the search level needs a synthetic dataset block")
    args.output.mkdir(parents=True, exist_ok=True)
    reduced = args.qcd_events is not None
    tag = f"search_{base.name}" + (f"_{args.qcd_events}" if reduced else "")
    suffix = "_statistics_only" if args.statistics_only else ""
    path = args.output / f"{tag}{suffix}.json"
    runs: list[dict[str, Any]] = []
    if args.append and path.exists():
        runs = json.loads(path.read_text())["runs"]
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        # the QCD sample of the config at its size with another seed, nothing injected;
        # signal templates stay (the models that train on them: supervised regions)
        qcd = [replace_model(s, seed=1000 + seed, name=f"qcd_{s.events}_s{seed}")
               if not reduced else
               replace_model(s, seed=1000 + seed, events=args.qcd_events, files=1,
                             name=f"qcd_{args.qcd_events}_s{seed}")
               for s in syn.samples if s.process == "qcd"]  # fmt: skip
        templates = [s for s in syn.samples
                     if s.process != "qcd" and s.name not in base.datasets.data]  # fmt: skip
        if reduced:
            templates = [replace_model(s, events=min(s.events, 3000)) for s in templates]
        datasets = replace_model(
            base.datasets,
            synthetic=replace_model(syn, directory=args.data, samples=qcd + templates),
            data=[s.name for s in qcd],
        )
        changes: dict[str, Any] = {"datasets": datasets, "limits": None,
                                   "output": args.output / f"{tag}_s{seed}"}  # fmt: skip
        toys = {} if args.toys is None else {"n_toys": args.toys}
        if base.bumphunt is not None:
            changes["bumphunt"] = replace_model(base.bumphunt, seed=seed, **toys)
        if base.hunt is not None:
            changes["hunt"] = replace_model(base.hunt, seed=seed, **toys)
        if args.epochs is not None:
            # as the tests: fewer epochs, except for the VRNN (a sequence model needs its
            # epochs on a small sample)
            models = [m if m.method == "vrnn" else
                      replace_model(m, train=replace_model(m.train,
                                                           epochs=min(m.train.epochs, args.epochs)))
                      for m in base.all_models]  # fmt: skip
            if base.model is not None:
                changes["model"] = models[0]
            else:
                changes["models"] = models
        cfg = replace_model(base, **changes)
        if args.statistics_only:
            # the statistics stage again on a finished run's histograms (e.g. after a change
            # of the statistics code): no generation, training or processing
            res = _restatistics(cfg, changes["output"], [s.name for s in qcd])
        else:
            with limited_threads(args.threads):
                res = run(cfg).results
        row: dict[str, Any] = {"seed": seed, "qcd_events": sum(s.events for s in qcd),
                               "regions": {}}  # fmt: skip
        for name, r in res.get("regions", {}).items():
            bh = r.get("bumphunter")
            if bh is not None:
                row["regions"][name] = {
                    "local_z": bh["local_z"], "global_z": bh["global_z"],
                    "global_p": bh["global_p"], "quoted": r.get("bumphunter_quoted", True),
                    "fit_pvalue": (r.get("fit") or {}).get("chi2_pvalue"),
                }  # fmt: skip
        if res.get("hunt") is not None:
            g = res["hunt"]["global"]
            row["regions"]["hunt"] = {"local_z": res["hunt"]["best"]["local_z"],
                                      "global_z": g["z"], "global_p": g["p"]}  # fmt: skip
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        runs = [r for r in runs if r["seed"] != seed] + [row]
        print(json.dumps(row), flush=True)
        path.write_text(json.dumps({"runs": runs}, indent=1))
    summary = _search_summary(runs, args.config, args.output / f"{tag}{suffix}")
    print(json.dumps(summary, indent=1))
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


def _search_summary(runs: list[dict[str, Any]], config: Path, stem: Path) -> dict[str, Any]:
    """Per region: KS test of the global p against uniform, tail fractions, a p histogram."""
    from scipy import stats

    zs = [v["global_z"] for r in runs for v in r["regions"].values() if v["global_z"] is not None]
    summary: dict[str, Any] = {
        "config": str(config),
        "runs": len(runs),
        "region_runs": len(zs),
        "max_global_z": float(max(zs)) if zs else None,
        "global_z_above_2": int(sum(z > 2 for z in zs)),
        "global_z_above_3": int(sum(z > 3 for z in zs)),
        "regions": {},
    }
    names = sorted({k for r in runs for k in r["regions"]})
    for name in names:
        p = np.array([r["regions"][name]["global_p"] for r in runs if name in r["regions"]
                      and r["regions"][name]["global_p"] is not None], dtype=float)  # fmt: skip
        if not len(p):
            continue
        ks = float(stats.kstest(p, "uniform").pvalue) if len(p) > 2 else None
        summary["regions"][name] = {
            "runs": len(p),
            "ks_pvalue_uniform": ks,
            "fraction_p_below_0.05": float(np.mean(p < 0.05)),
            "max_global_z": float(stats.norm.isf(p.min())),
        }
        if len(p) > 2:
            _plot(p, Path(f"{stem}_{name}.png"),
                  f"{config.stem} {name}: {len(p)} runs, KS p = {ks:.2g}")  # fmt: skip
    return summary


def _restatistics(cfg, out_dir: Path, data_names: list[str]) -> dict[str, Any]:
    """``results.json``'s regions (and hunt) with the statistics stage rerun on the histograms."""
    from adcoffea.outputs import load_hists
    from adcoffea.statistics import run_statistics

    hists = load_hists(out_dir / "hists.pkl")
    stats = run_statistics(cfg, hists, data_names, out_dir=out_dir / "restatistics")
    old = json.loads((out_dir / "results.json").read_text())
    return {"regions": stats.to_dict()["regions"], "hunt": old.get("hunt")}


def _summary(hunt: dict[str, Any]) -> dict[str, Any]:
    g = hunt["global"]
    return {
        "best_sr": hunt["best"]["signal_region"],
        "best_efficiency": hunt["best"]["efficiency"],
        "local_z": hunt["best"]["local_z"],
        "global_p": g["p"],
        "global_z": g["z"],
        "p_is_bound": g["p_is_bound"],
        "n_toys": g["n_toys"],
    }


def _plot(p: np.ndarray, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.hist(p, bins=np.linspace(0, 1, 11), histtype="stepfilled", alpha=0.6)
    ax.axhline(len(p) / 10, color="k", ls="--", label="uniform")
    ax.set_xlabel("global p-value")
    ax.set_ylabel("runs")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.savefig(path, dpi=110)


def hunt_main(args) -> None:
    from scipy import stats

    from adcoffea.models.threads import limited_threads

    runner = {"stats": _stats_run, "features": _features_run, "pipeline": _pipeline_run}
    args.output.mkdir(parents=True, exist_ok=True)
    tag = f"hunt_{args.level}" + (f"_signal{args.signal}" if args.signal else "")
    path = args.output / f"{tag}.json"
    runs: list[dict[str, Any]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        with limited_threads(1):
            r = runner[args.level](seed, args)
        r.update(seed=seed, wall_s=round(time.perf_counter() - t0, 1))
        runs.append(r)
        print(json.dumps(r), flush=True)
        path.write_text(json.dumps({"level": args.level, "runs": runs}, indent=1))
    p = np.array([r["global_p"] for r in runs])
    z = np.array([r["global_z"] for r in runs])
    ks = stats.kstest(p, "uniform").pvalue if len(p) > 1 else float("nan")
    summary = {
        "level": args.level,
        "signal_per_1M": args.signal,
        "runs": len(p),
        "ks_pvalue_uniform": float(ks),
        "fraction_p_below_0.05": float(np.mean(p < 0.05)),
        "fraction_global_z_above_2": float(np.mean(z > 2)),
        "fraction_global_z_above_3": float(np.mean(z > 3)),
        "max_global_z": float(z.max()),
        "median_local_z": float(np.median([r["local_z"] for r in runs])),
    }
    if args.signal:
        summary["fraction_best_contains_signal"] = float(
            np.mean([r.get("best_contains_signal", False) for r in runs])
        )
    print(json.dumps(summary, indent=1))
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    _plot(p, args.output / f"{tag}.png",
          f"hunt {args.level}: {len(p)} runs, KS p = {ks:.2f}")  # fmt: skip


#: the variants of the regions level: (fit-function uncertainty, BumpHunter toys)
REGION_VARIANTS = {
    "default": (True, "refit"),
    "no_fit_function_uncertainty": (False, "refit"),
    "toys_not_refitted": (True, "fixed"),
}


def _regions_run(seed: int, args, *, ffu: bool, toys: str) -> dict[str, Any]:
    import hist

    from adcoffea.config import parse_config
    from adcoffea.fits.functions import expected_counts
    from adcoffea.statistics import run_statistics

    edges = np.arange(1500.0, 8001.0, 100.0)
    cfg = parse_config(
        {
            "name": "null",
            "datasets": {"fileset": "f.json"},
            "regions": [{"name": "inclusive"}],
            "histograms": {"mjj": {"edges": edges.tolist()}},
            "fit": {"n_params": [3, 4, 5], "range": [2800.0, 7500.0], "function_uncertainty": ffu},
            "bumphunt": {"n_toys": args.toys, "seed": seed, "toys": toys},
        }
    )
    truth = expected_counts(edges, [args.events, 7.8, 5.26, 1.13])
    counts = np.random.default_rng(seed).poisson(truth).astype(float)
    h = hist.Hist(
        hist.axis.StrCategory(["data"], name="dataset"),
        hist.axis.StrCategory(["inclusive"], name="region"),
        hist.axis.Variable(edges, name="mjj"),
        storage=hist.storage.Weight(),
    )
    h.view().value[0, 0] = counts
    h.view().variance[0, 0] = counts
    out = args.output / "regions_runs" / f"{seed}_{int(ffu)}_{toys}"
    r = run_statistics(cfg, {"mjj": h}, ["data"], out_dir=out).regions["inclusive"]
    bh = r.bumphunter
    st = r.bumphunter_uncertainty
    return {
        "global_p": bh.global_p,
        "global_z": bh.global_z,
        "local_z": bh.local_z,
        "fit_pvalue": r.fit.best.pvalue,
        "adequate": r.background_model_adequate,
        "refit": None if r.refit is None else r.refit.decision.accepted,
        "ffu_over_stat": None if st is None else st.ratio_to_stat,
    }


def regions_main(args) -> None:
    from scipy import stats

    from adcoffea.models.threads import limited_threads

    args.output.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        with limited_threads(1):
            r: dict[str, Any] = {
                key: _regions_run(seed, args, ffu=ffu, toys=toys)
                for key, (ffu, toys) in REGION_VARIANTS.items()
            }
        r.update(seed=seed, wall_s=round(time.perf_counter() - t0, 1))
        runs.append(r)
        print(json.dumps(r), flush=True)
    summary: dict[str, Any] = {"runs": len(runs), "events": args.events}
    for key in REGION_VARIANTS:
        p = np.array([r[key]["global_p"] for r in runs])
        z = np.array([r[key]["global_z"] for r in runs])
        summary[key] = {
            "ks_pvalue_uniform": float(stats.kstest(p, "uniform").pvalue) if len(p) > 1 else None,
            "fraction_p_below_0.05": float(np.mean(p < 0.05)),
            "fraction_global_z_above_2": float(np.mean(z > 2)),
            "fraction_global_z_above_3": float(np.mean(z > 3)),
            "max_global_z": float(z.max()),
            "fraction_inadequate": float(np.mean([not r[key]["adequate"] for r in runs])),
        }
        ks = summary[key]["ks_pvalue_uniform"]
        _plot(p, args.output / f"regions_{key}.png",
              f"regions ({key}): {len(p)} runs, KS p = {ks:.2g}")  # fmt: skip
    print(json.dumps(summary, indent=1))
    path = args.output / "regions.json"
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="search", required=True)
    h = sub.add_parser("hunt", help="the sliding-window hunt of configs/lhco_dijet.yaml")
    h.add_argument("--level", choices=["stats", "features", "pipeline"], default="stats")
    h.add_argument("--seeds", type=int, default=30)
    h.add_argument("--first-seed", type=int, default=1)
    h.add_argument("--events", type=int, default=100_000, help="stats/features: QCD events")
    h.add_argument("--toys", type=int, default=500, help="stats/features: pseudo-experiments")
    h.add_argument("--jobs", type=int, default=1, help="features: windows trained at once")
    h.add_argument("--config", type=Path, default=Path("configs/lhco_dijet.yaml"))
    h.add_argument("--qcd-events", type=int, default=200_000, help="pipeline: generated QCD")
    h.add_argument("--signal", type=int, default=0, help="pipeline: W' injected per 1M QCD")
    h.add_argument("--data", type=Path, default=Path("data/synthetic/null_calibration"))
    h.add_argument("--output", type=Path, default=Path("results/null_calibration"))
    g = sub.add_parser("regions", help="the statistics stage of a fitted region (BumpHunter)")
    g.add_argument("--seeds", type=int, default=30)
    g.add_argument("--first-seed", type=int, default=1)
    g.add_argument("--events", type=int, default=100_000, help="events of the dijet spectrum")
    g.add_argument("--toys", type=int, default=1000, help="BumpHunter pseudo-experiments")
    g.add_argument("--output", type=Path, default=Path("results/null_calibration"))
    c = sub.add_parser("search", help="a whole search at full size on background only")
    c.add_argument("--config", type=Path, default=Path("configs/lhco_dijet.yaml"))
    c.add_argument("--seeds", type=int, default=5)
    c.add_argument("--first-seed", type=int, default=1)
    c.add_argument("--threads", type=int, default=2, help="threads for training and scoring")
    c.add_argument("--statistics-only", action="store_true",
                   help="rerun only the statistics stage on each seed's saved histograms")  # fmt: skip
    c.add_argument("--qcd-events", type=int, default=None,
                   help="reduced size: QCD events per run (default: the config's)")  # fmt: skip
    c.add_argument("--epochs", type=int, default=None, help="reduced size: at most this many")
    c.add_argument("--toys", type=int, default=None, help="pseudo-experiments of every scan")
    c.add_argument("--append", action="store_true", help="add to the runs in the output JSON")
    c.add_argument("--data", type=Path, default=Path("data/synthetic/null_calibration"))
    c.add_argument("--output", type=Path, default=Path("results/null_calibration"))
    args = ap.parse_args()
    if args.search == "regions":
        regions_main(args)
    elif args.search == "search":
        search_main(args)
    else:
        hunt_main(args)


if __name__ == "__main__":
    main()
