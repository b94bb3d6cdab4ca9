"""Max SIC of the weakly supervised methods at LHC-Olympics signal fractions, over seeds.

Data (default, fast path): high-level features sampled from the fitted LHCO R&D distributions
(:func:`adcoffea.models.toy.lhco_features`, see shared/LHCO_REFERENCE.md). QCD is drawn in
3.0 < mjj < 4.0 TeV (``--scale 1``: 330k events, ~121k in the signal region 3.3-3.7 TeV and
~131k in the sidebands 3.1-3.3 and 3.7-3.9 TeV, as in the 1M-event R&D sample). ``N`` W'
events are injected into the full sample (about 77 % land in the SR: N = 1000 gives S/B
0.64 %, the R&D default). ``--generator DIR`` instead generates NanoAOD-like files with
``adcoffea.synthetic`` and extracts the features with the search processor itself.

Evaluation: an independent test sample of 200k SR QCD and 20k SR W'. Max SIC = max over cuts
of eff_S / sqrt(eff_B) with at least ``--min-background`` (50) test background events
passing and eff_B >= 1e-4; the number passing at the maximum is reported. Every
configuration runs ``--seeds`` seeds (new data, new training) and the table shows the median
and the 16-84 % range.

Methods (each with the library's defaults, nothing tuned here):

* ``supervised``: labelled SR signal vs SR QCD (the ceiling; independent of N);
* ``idealized``: SR data vs a perfect, independent SR QCD sample of 4x the SR data
  (:func:`adcoffea.models.classifiers.train_kfold_classifier`, out-of-fold by event number);
* ``cathode``, ``cwola``: :func:`adcoffea.models.train.train_model` on the injected data;
* each with ``--classifiers`` bdt and/or mlp;
* noise robustness: idealized with 10 extra N(0, 1) features (and, separately, the two
  tau32 features of the toy), at the largest N; the loss is 1 - SIC(noise) / SIC(plain);
* sculpting at N = 0: KS p-value of the SR mjj of the data's top 1 % (out-of-fold scores)
  against all SR data;
* ``autoencoder``/``vae``/``nae`` (``--methods``): outlier scores trained on the SR data (the
  negative control: these four features do not make this signal an outlier of QCD);
* ``--constituents``: ANTELOPE and VRNN on toy point clouds.

Usage::

    nice -n 10 python benchmarks/ad_methods.py --seeds 5 --jobs 2 --out results/ad_methods.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adcoffea.config import TrainConfig
from adcoffea.features import LHCO_FEATURES, ModelInputs
from adcoffea.models import threads, toy
from adcoffea.models.bundle import fold_of
from adcoffea.models.classifiers import train_kfold_classifier
from adcoffea.models.evaluate import roc_sic
from adcoffea.models.train import train_model
from adcoffea.models.weak import region_masks

SR = (3300.0, 3700.0)
SB = (3100.0, 3900.0)
#: QCD events in 3.0-4.0 TeV at scale 1 (~121k of them in the SR, as in the R&D sample).
N_QCD = 330_000
N_TEST_BACKGROUND = 200_000
N_TEST_SIGNAL = 20_000
#: idealized: perfect background events per SR data event (CATHODE samples as many)
IDEAL_OVERSAMPLE = 4
WEAK = ("idealized", "cathode", "cwola")
DEFAULT_METHODS = ("supervised", *WEAK)
FEATURES = list(LHCO_FEATURES)


# ---------------------------------------------------------------------- samples
def _sr_only(n: int, *, signal: bool, seed: int, offset: int) -> ModelInputs:
    """``n`` events with SR mjj: QCD drawn in the SR directly, W' drawn and cut to the SR."""
    if not signal:
        return toy.lhco_features(n, 0, seed=seed, mjj_range=SR, event_offset=offset)[0]
    pool, _ = toy.lhco_features(0, int(n / 0.7) + 1000, seed=seed, event_offset=offset)
    return pool.select(np.flatnonzero(_in_sr(pool))[:n])


def make_reference(*, seed: int, scale: float) -> dict[str, Any]:
    """Test, supervised-training and idealized-background samples (independent of N)."""
    n_sr_data = int(0.367 * N_QCD * scale)
    test_b = _sr_only(N_TEST_BACKGROUND, signal=False, seed=seed + 1, offset=10**7)
    test_s = _sr_only(N_TEST_SIGNAL, signal=True, seed=seed + 2, offset=2 * 10**7)
    return {
        "test": ModelInputs.concatenate([test_b, test_s]),
        "test_labels": np.r_[np.zeros(len(test_b)), np.ones(len(test_s))],
        "sup_b": _sr_only(n_sr_data, signal=False, seed=seed + 3, offset=3 * 10**7),
        "sup_s": _sr_only(30_000, signal=True, seed=seed + 4, offset=4 * 10**7),
        "ideal_b": _sr_only(
            IDEAL_OVERSAMPLE * n_sr_data, signal=False, seed=seed + 5, offset=5 * 10**7
        ),
    }


def make_data(*, seed: int, scale: float, n_signal: int) -> tuple[ModelInputs, np.ndarray]:
    """QCD in 3.0-4.0 TeV plus the first ``n_signal`` events of a seeded W' pool.

    The QCD and the signal pool depend on the seed only, so N = 500 injects a subset of the
    N = 1000 events into the same background.
    """
    qcd, _ = toy.lhco_features(int(N_QCD * scale), 0, seed=seed)
    parts, labels = [qcd], [np.zeros(len(qcd), np.int8)]
    if n_signal:
        sig, _ = toy.lhco_features(0, 5000, seed=seed + 1000, event_offset=9 * 10**6)
        parts.append(sig.select(np.arange(n_signal)))
        labels.append(np.ones(n_signal, np.int8))
    return ModelInputs.concatenate(parts), np.concatenate(labels)


def _generated_inputs(process: str, n_events: int, *, seed: int, out_dir: Path):
    """Generate NanoAOD-like files and extract ModelInputs with the search processor itself."""
    from adcoffea.config import AnalysisConfig
    from adcoffea.processing import columns_to_inputs, make_processor
    from adcoffea.processing import run_configured as run_processor
    from adcoffea.synthetic import generate

    name = f"{process}_{seed}_{n_events}"
    existing = Path(out_dir) / f"{name}_0.root"
    if existing.is_file():  # generation is deterministic in (process, seed, n_events)
        files = [str(existing)]
    else:
        files = generate(process, n_events=n_events, seed=seed, out_dir=out_dir, name=name).files
    cfg = AnalysisConfig.model_validate(
        {"name": "bench", "datasets": {"fileset": "unused.json"}, "executor": {"name": "iterative"}}
    )
    proc = make_processor(cfg, collect_columns=True)
    out = run_processor(cfg, {name: {"files": {f: "Events" for f in files}}}, proc)
    inputs, truth, _, _ = columns_to_inputs(out.output["columns"])
    return inputs, truth


def make_generator_data(*, seed: int, scale: float, n_signal: int, out_dir: Path):
    """Data and reference samples from ``adcoffea.synthetic`` files + the processor."""
    gen_per_sr = 1.0 / 0.045  # generated QCD events per selected SR event (measured)
    data_b, _ = _generated_inputs("qcd", int(121_000 * scale * gen_per_sr), seed=seed + 100,
                                  out_dir=out_dir)  # fmt: skip
    pool_b, _ = _generated_inputs("qcd", int((N_TEST_BACKGROUND + 60_000) * gen_per_sr),
                                  seed=seed + 101, out_dir=out_dir)  # fmt: skip
    pool_s, _ = _generated_inputs("wprime", 60_000, seed=seed + 102, out_dir=out_dir)
    inj = np.arange(n_signal)  # the signal pool is unordered: the first n_signal events
    data = ModelInputs.concatenate([data_b, pool_s.select(inj)])
    labels = np.r_[np.zeros(len(data_b), np.int8), np.ones(n_signal, np.int8)]
    b_sr = pool_b.select(_in_sr(pool_b))
    s_rest = pool_s.select(np.arange(n_signal, len(pool_s)))
    s_sr = s_rest.select(_in_sr(s_rest))
    half = len(s_sr) // 2
    n_test = min(N_TEST_BACKGROUND, len(b_sr) // 2)
    ref = {
        "test": ModelInputs.concatenate(
            [b_sr.select(np.arange(n_test)), s_sr.select(np.arange(half))]
        ),
        "test_labels": np.r_[np.zeros(n_test), np.ones(half)],
        "sup_b": b_sr.select(np.arange(n_test, len(b_sr))),
        "sup_s": s_sr.select(np.arange(half, len(s_sr))),
        "ideal_b": b_sr.select(np.arange(n_test, len(b_sr))),
    }
    return data, labels, ref


def _in_sr(inputs: ModelInputs) -> np.ndarray:
    m = inputs.high_level["mjj"]
    return (m >= SR[0]) & (m < SR[1])


def _with_noise(inputs: ModelInputs, n_noise: int, seed: int) -> ModelInputs:
    rng = np.random.default_rng(seed)
    hl = dict(inputs.high_level)
    hl.update({f"noise{i}": rng.standard_normal(len(inputs)) for i in range(n_noise)})
    return ModelInputs(high_level=hl, event=inputs.event)


# ---------------------------------------------------------------------- metrics
def max_sic(scores: np.ndarray, labels: np.ndarray, *, min_background: int) -> dict[str, float]:
    """Max SIC with >= ``min_background`` test background passing and eff_B >= 1e-4."""
    n_b = int((labels == 0).sum())
    floor = max(min_background, int(np.ceil(1e-4 * n_b)))
    roc = roc_sic(scores, labels, min_background=floor)
    return {"auc": roc.auc, "max_sic": roc.max_sic, "tpr_at_max_sic": roc.tpr_at_max_sic,
            "fpr_at_max_sic": roc.fpr_at_max_sic,
            "n_background_passing": round(roc.fpr_at_max_sic * n_b)}  # fmt: skip


def sculpting_ks(mjj: np.ndarray, scores: np.ndarray, *, efficiency: float = 0.01) -> float:
    """KS p-value of the mjj of the top ``efficiency`` by score against all events."""
    from scipy.stats import ks_2samp

    cut = np.quantile(scores, 1.0 - efficiency)
    return float(ks_2samp(mjj[scores > cut], mjj).pvalue)


# ---------------------------------------------------------------------- one task
def _weak_row(method, kind, data, labels, ref, *, seed, features, options) -> dict[str, Any]:
    mjj = data.high_level["mjj"]
    sr, _ = region_masks(mjj, SR, SB)
    t0, c0 = time.perf_counter(), time.process_time()
    diagnostics: dict[str, Any] = {}
    cfg = TrainConfig(seed=seed)
    if method == "idealized":
        ideal = ref["ideal_b"]
        x = np.r_[data.matrix(features)[sr], ideal.matrix(features)]
        y = np.r_[np.ones(sr.sum()), np.zeros(len(ideal))]
        folds = np.r_[fold_of(data.event[sr], cfg.k_folds),
                      np.random.default_rng(seed).integers(0, cfg.k_folds, len(ideal))]  # fmt: skip
        clf = train_kfold_classifier(x, y, folds=folds, k=cfg.k_folds, kind=kind, seed=seed,
                                     config=TrainConfig(seed=seed, patience=10))  # fmt: skip
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        test = ref["test"]
        s_test = clf.predict_oof(test.matrix(features), fold_of(test.event, cfg.k_folds))
        oof_sr = clf.predict_oof(x[: sr.sum()], folds[: sr.sum()])
    else:
        hp = {"classifier": kind, **options.get(method, {})}
        res = train_model(method, data, config=cfg, features=features, hyperparameters=hp,
                          observable=mjj, signal_region=SR, sidebands=SB, progress=False)  # fmt: skip
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        diagnostics = {k: v for k, v in res.diagnostics.items() if np.isscalar(v)}
        s_test = res.bundle.score(ref["test"])
        oof_sr = res.out_of_fold_scores[sr]
    row = {"seconds": seconds, "cpu_seconds": cpu, **diagnostics, **max_sic(s_test, ref["test_labels"],
                                                       min_background=options["min_background"])}  # fmt: skip
    if labels[sr].any():
        row["oof_auc"] = roc_sic(oof_sr, labels[sr]).auc
    else:
        row["ks_p_top1"] = sculpting_ks(mjj[sr], oof_sr)
    return row


def run_task(task: dict[str, Any]) -> list[dict[str, Any]]:
    """All rows of one (seed, N): weak methods x classifiers, plus per-seed extras."""
    threads.set_threads(task["threads"])
    seed, n_signal, scale = task["seed"], task["n_signal"], task["scale"]
    if task.get("generator"):
        data, labels, ref = make_generator_data(seed=seed, scale=scale, n_signal=n_signal,
                                                out_dir=Path(task["generator"]))  # fmt: skip
    else:
        data, labels = make_data(seed=seed, scale=scale, n_signal=n_signal)
        ref = make_reference(seed=seed, scale=scale)
    mjj = data.high_level["mjj"]
    sr, sb = region_masks(mjj, SR, SB)
    info = {"seed": seed, "n_signal": n_signal,
            "n_sr_background": int((sr & (labels == 0)).sum()),
            "n_sr_signal": int((sr & (labels == 1)).sum()), "n_sidebands": int(sb.sum()),
            "n_test_background": int((ref["test_labels"] == 0).sum())}  # fmt: skip
    info["s_over_b"] = info["n_sr_signal"] / info["n_sr_background"]
    rows = []

    def emit(method, kind, row):
        rows.append({**info, "method": method, "classifier": kind, **row})
        print(f"seed {seed} N {n_signal:5d} {method:18s} {kind:4s} max SIC {row['max_sic']:6.2f} "
              f"AUC {row['auc']:.3f} ({row['seconds']:.0f} s)", flush=True)  # fmt: skip

    opts = task["options"]
    for method in task["methods"]:
        if method == "supervised":
            if not task["extras"]:
                continue
            train = ModelInputs.concatenate([ref["sup_b"], ref["sup_s"]])
            y = np.r_[np.zeros(len(ref["sup_b"])), np.ones(len(ref["sup_s"]))]
            for kind in task["classifiers"]:
                t0 = time.perf_counter()
                res = train_model("supervised", train, config=TrainConfig(seed=seed),
                                  features=FEATURES, labels=y, progress=False,
                                  hyperparameters={"classifier": kind})  # fmt: skip
                row = {"seconds": time.perf_counter() - t0,
                       **max_sic(res.bundle.score(ref["test"]), ref["test_labels"],
                                 min_background=opts["min_background"])}  # fmt: skip
                emit(method, kind, row)
        elif method in WEAK:
            for kind in task["classifiers"]:
                emit(method, kind, _weak_row(method, kind, data, labels, ref, seed=seed,
                                             features=FEATURES, options=opts))  # fmt: skip
        else:  # outlier methods on the SR data, scored on the test set
            t0 = time.perf_counter()
            hp = {"nae_epochs": 3} if method == "nae" else None
            res = train_model(method, data.select(sr), config=TrainConfig(seed=seed),
                              features=FEATURES, hyperparameters=hp, progress=False)  # fmt: skip
            emit(method, "-", {"seconds": time.perf_counter() - t0,
                               **max_sic(res.bundle.score(ref["test"]), ref["test_labels"],
                                         min_background=opts["min_background"])})  # fmt: skip
    if task["extras"] and "idealized" in task["methods"] and n_signal:
        variants = [f"idealized+{task['noise']}noise"] if task["noise"] else []
        variants += ["idealized+tau32"] if task["tau32"] else []
        for name in variants:
            if "tau32" in name:
                d2, r2 = data, ref
                feats = [*FEATURES, "tau32_min", "tau32_max"]
            else:
                n = task["noise"]
                d2 = _with_noise(data, n, seed + 77)
                r2 = {**ref, "ideal_b": _with_noise(ref["ideal_b"], n, seed + 78),
                      "test": _with_noise(ref["test"], n, seed + 79)}  # fmt: skip
                feats = [*FEATURES, *(f"noise{i}" for i in range(n))]
            for kind in task["classifiers"]:
                emit(name, kind, _weak_row("idealized", kind, d2, labels, r2, seed=seed,
                                           features=feats, options=opts))  # fmt: skip
    return rows


# ---------------------------------------------------------------------- the table
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and 16/84 % quantiles of max SIC (and the other numbers) per configuration."""
    out: dict[str, Any] = {}
    for r in rows:
        key = f"{r['method']}|{r['classifier']}|{r['n_signal']}"
        out.setdefault(key, []).append(r)
    summary = {}
    for key, rs in out.items():
        sic = np.array([r["max_sic"] for r in rs])
        entry = {"n_seeds": len(rs), "max_sic_median": float(np.median(sic)),
                 "max_sic_p16": float(np.percentile(sic, 16)),
                 "max_sic_p84": float(np.percentile(sic, 84)),
                 "auc_median": float(np.median([r["auc"] for r in rs])),
                 "seconds_median": float(np.median([r["seconds"] for r in rs])),
                 "n_background_passing_min": int(min(r["n_background_passing"] for r in rs)),
                 "s_over_b": float(np.median([r["s_over_b"] for r in rs]))}  # fmt: skip
        for extra in ("ks_p_top1", "closure_auc", "oof_auc", "background_seconds",
                      "classifier_seconds", "cpu_seconds"):  # fmt: skip
            vals = [r[extra] for r in rs if extra in r]
            if vals:
                entry[f"{extra}_median"] = float(np.median(vals))
                entry[f"{extra}_min"] = float(np.min(vals))
        summary[key] = entry
    return summary


def _cell(summary, method, kind, n) -> str:
    e = summary.get(f"{method}|{kind}|{n}")
    if e is None:
        return f"{'':>19s}"
    return f"{e['max_sic_median']:5.2f} [{e['max_sic_p16']:5.2f},{e['max_sic_p84']:5.2f}]"[
        :19
    ].rjust(19)


def print_table(summary: dict[str, Any], signals: list[int]) -> list[str]:
    """The table (median [16 %, 84 %] of max SIC) and the issue's bars; returns the lines."""
    lines = []
    signals = sorted(signals, reverse=True)
    configs = sorted({tuple(k.split("|")[:2]) for k in summary},
                     key=lambda mk: (_order(mk[0]), "+" in mk[0], mk[0], mk[1]))  # fmt: skip
    sb = {n: next((e["s_over_b"] for k, e in summary.items() if k.endswith(f"|{n}")), 0.0)
          for n in signals}  # fmt: skip
    head = "".join(f"  N={n:<5d}(S/B {100 * sb[n]:.2f}%)".rjust(21) for n in signals)
    lines.append(f"{'method':20s} {'clf':4s}{head}   KS p@1% (N=0)  closure AUC  train s   cpu s")
    for method, kind in configs:
        cells = "".join("  " + _cell(summary, method, kind, n) for n in signals)
        e0 = summary.get(f"{method}|{kind}|0", {})
        ks = f"{e0['ks_p_top1_min']:.3f} (min)" if "ks_p_top1_min" in e0 else ""
        ent = [summary[k] for k in summary if k.startswith(f"{method}|{kind}|")]
        clo = [e["closure_auc_median"] for e in ent if "closure_auc_median" in e]
        clo_s = f"{np.median(clo):.3f}" if clo else ""
        secs = np.median([e["seconds_median"] for e in ent])
        cpu = [e["cpu_seconds_median"] for e in ent if "cpu_seconds_median" in e]
        cpu_s = f"{np.median(cpu):6.0f}" if cpu else ""
        lines.append(
            f"{method:20s} {kind:4s}{cells}   {ks:>13s}  {clo_s:>11s}  {secs:7.0f}  {cpu_s:>6s}"
        )
    lines.append("")
    lines += bars(summary, signals)
    for line in lines:
        print(line)
    return lines


def _order(method: str) -> int:
    order = ["supervised", "idealized", "cathode", "cwola"]
    return next((i for i, m in enumerate(order) if method.startswith(m)), len(order))


def bars(summary: dict[str, Any], signals: list[int]) -> list[str]:
    """The issue's bars, relative to idealized with the same classifier in the same run."""
    out = []
    top = max(signals)

    def med(m, k, n):
        e = summary.get(f"{m}|{k}|{n}")
        return None if e is None else e["max_sic_median"]

    for kind in ("bdt", "mlp"):
        ideal = med("idealized", kind, top)
        if not ideal:
            continue
        for method, bar in (("cathode", 0.85), ("cwola", 0.7)):
            e = summary.get(f"{method}|{kind}|{top}")
            if e is None:
                continue
            ratio = e["max_sic_median"] / ideal
            spread = (e["max_sic_p16"] / e["max_sic_median"] - 1, e["max_sic_p84"] / e["max_sic_median"] - 1) \
                if e["max_sic_median"] else (float("nan"),) * 2  # fmt: skip
            extra = f", spread {100 * spread[0]:+.0f}/{100 * spread[1]:+.0f} % (bar ±25 %)" \
                if method == "cathode" else ""  # fmt: skip
            out.append(f"{method} {kind} N={top}: {ratio:.2f} x idealized (bar >= {bar}){extra} "
                       f"-> {'PASS' if ratio >= bar else 'FAIL'}")  # fmt: skip
        noisy = [k for k in summary if k.startswith("idealized+") and k.endswith(f"|{kind}|{top}")]
        for k in sorted(noisy):
            loss = 1 - summary[k]["max_sic_median"] / ideal
            verdict = ("PASS" if loss <= 0.2 else "FAIL") if kind == "bdt" else "(printed)"
            out.append(f"{k.split('|')[0]} {kind}: loses {100 * loss:.0f} % of idealized max "
                       f"SIC (bar <= 20 % for bdt) -> {verdict}")  # fmt: skip
    mid = [n for n in signals if 0 < n < top]
    for n in mid:
        best = max(((e["max_sic_median"], k) for k, e in summary.items()
                    if k.endswith(f"|{n}") and not k.startswith(("supervised", "idealized"))),
                   default=(0.0, ""))  # fmt: skip
        out.append(f"best data-driven method at N={n}: {best[1].split('|')[:2]} max SIC "
                   f"{best[0]:.2f} (bar >= 3) -> {'PASS' if best[0] >= 3 else 'FAIL'}")  # fmt: skip
    if 0 in signals:
        for k, e in sorted(summary.items()):
            if k.endswith("|0") and k.split("|")[0] in ("cathode", "cwola"):
                ok = e["max_sic_median"] <= 1.5 and e.get("ks_p_top1_min", 1.0) > 0.01
                out.append(f"{k}: max SIC {e['max_sic_median']:.2f} (bar <= 1.5), KS p min "
                           f"{e.get('ks_p_top1_min', float('nan')):.3f} (bar > 0.01) -> "
                           f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return out


# ---------------------------------------------------------------------- background models
def compare_background_models(
    *,
    seeds: int = 2,
    kinds: tuple[str, ...] = ("maf", "nsf", "cvae"),
    scale: float = 1.0,
    n_signal: int = 1000,
    cathode: bool = True,
) -> list[dict[str, Any]]:
    """Flow vs cVAE as the CATHODE background model, with 4 and 6 features.

    Per seed, feature set and model: the closure AUCs (a k-fold boosted-tree classifier of
    real events against samples drawn at their mjj) in the sidebands (events the model did
    not train on: the odd events of a split) and in the SR against the true SR background
    (known only in simulation), and, with ``cathode``, CATHODE's test max SIC with that model.
    """
    from adcoffea.models.density import fit_background_model, sideband_closure

    feature_sets = {"4": FEATURES, "6": [*FEATURES, "tau32_min", "tau32_max"]}
    out = []
    for seed in range(seeds):
        data, labels = make_data(seed=seed, scale=scale, n_signal=n_signal)
        ref = make_reference(seed=seed, scale=scale) if cathode else None
        mjj = data.high_level["mjj"]
        sr, sb = region_masks(mjj, SR, SB)
        half = (data.event % 2).astype(bool)  # train on even events, close on odd ones
        srb = sr & (labels == 0)
        for fname, feats in feature_sets.items():
            x = data.matrix(feats)
            for kind in kinds:
                t0 = time.perf_counter()
                bm = fit_background_model(x[sb & ~half], mjj[sb & ~half], kind=kind, seed=seed,
                                          scaler_data=x[sb | sr])  # fmt: skip
                row = {"seed": seed, "features": fname, "model": kind,
                       "fit_seconds": time.perf_counter() - t0,
                       "sideband_closure_auc": sideband_closure(bm, x[sb & half], mjj[sb & half],
                                                                seed=seed + 1),
                       "sr_truth_closure_auc": sideband_closure(bm, x[srb], mjj[srb],
                                                                seed=seed + 2)}  # fmt: skip
                if cathode:
                    res = train_model("cathode", data, config=TrainConfig(seed=seed),
                                      features=feats, observable=mjj, signal_region=SR,
                                      sidebands=SB, progress=False,
                                      hyperparameters={"background_model": kind})  # fmt: skip
                    row.update(max_sic(res.bundle.score(ref["test"]), ref["test_labels"],
                                       min_background=50))  # fmt: skip
                out.append(row)
                print(f"seed {seed} {fname} features {kind:4s}: SB closure AUC "
                      f"{row['sideband_closure_auc']:.3f}, SR closure (truth) "
                      f"{row['sr_truth_closure_auc']:.3f}"
                      + (f", CATHODE max SIC {row['max_sic']:.2f}" if cathode else ""),
                      flush=True)  # fmt: skip
    return out


# ---------------------------------------------------------------------- constituents
def run_constituents(*, seed: int = 0, n: int = 4000, epochs: int = 10) -> dict[str, dict]:
    """ANTELOPE and VRNN on toy point clouds (one-prong background, two-prong signal)."""
    rows = {}
    bkg = toy.point_clouds(n, prongs=1, seed=seed + 10)
    sig = toy.point_clouds(n // 4, prongs=2, seed=seed + 11, event_offset=n)
    test = ModelInputs.concatenate([toy.point_clouds(4000, prongs=1, seed=seed + 12),
                                    toy.point_clouds(4000, prongs=2, seed=seed + 13)])  # fmt: skip
    tlab = np.r_[np.zeros(4000), np.ones(4000)]
    cfg = TrainConfig(epochs=epochs, batch_size=256, learning_rate=1e-3, patience=3, seed=seed)
    for method in ("antelope", "vrnn"):
        t0 = time.perf_counter()
        if method == "antelope":
            train_in = ModelInputs.concatenate([bkg, sig])
            res = train_model(method, train_in, config=cfg, progress=False,
                              labels=np.r_[np.zeros(n), np.ones(n // 4)])  # fmt: skip
        else:
            res = train_model(method, bkg, config=cfg, progress=False)
        roc = roc_sic(res.bundle.score(test), tlab, min_background=10)
        rows[method] = {"auc": roc.auc, "max_sic": roc.max_sic,
                        "train_seconds": time.perf_counter() - t0}  # fmt: skip
        print(f"{method:12s} AUC {roc.auc:.3f}  max SIC {roc.max_sic:6.2f}", flush=True)
    return rows


def run(
    *,
    seeds: int = 5,
    signals: tuple[int, ...] = (1000, 500, 0),
    methods: tuple[str, ...] = DEFAULT_METHODS,
    classifiers: tuple[str, ...] = ("bdt", "mlp"),
    scale: float = 1.0,
    noise: int = 10,
    tau32: bool = False,
    jobs: int = 1,
    min_background: int = 50,
    options: dict[str, Any] | None = None,
    generator: Path | None = None,
    rows_file: Path | None = None,
) -> dict[str, Any]:
    """All tasks (signals x seeds), in ``jobs`` processes; returns {"rows", "summary"}.

    With ``rows_file`` (JSON lines) every finished task's rows are appended at once, and
    tasks whose rows are already there are not run again (a long run can be resumed).
    """
    opts = {"min_background": min_background, **(options or {})}
    tasks = [{"seed": s, "n_signal": n, "scale": scale, "methods": list(methods),
              "classifiers": list(classifiers), "noise": noise, "tau32": tau32, "options": opts,
              "extras": n == max(signals), "threads": threads.default_threads(jobs),
              "generator": str(generator) if generator else None}
             for n in signals for s in range(seeds)]  # fmt: skip
    rows: list[dict[str, Any]] = []
    if rows_file is not None and rows_file.is_file():
        rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line]
        done = {(r["seed"], r["n_signal"]) for r in rows}
        tasks = [t for t in tasks if (t["seed"], t["n_signal"]) not in done]

    def keep(part: list[dict[str, Any]]) -> None:
        rows.extend(part)
        if rows_file is not None:
            with rows_file.open("a") as f:
                f.writelines(json.dumps(r, default=float) + "\n" for r in part)

    t0 = time.perf_counter()
    if jobs == 1:
        for t in tasks:
            keep(run_task(t))
    else:
        with ProcessPoolExecutor(jobs) as pool:
            for part in pool.map(run_task, tasks):
                keep(part)
    return {"rows": rows, "summary": summarise(rows), "wall_seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--signals", type=int, nargs="+", default=[1000, 500, 0],
                   help="W' events injected in the full sample (1000 -> S/B 0.64 %%)")  # fmt: skip
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--classifiers", nargs="+", default=["bdt", "mlp"], choices=["bdt", "mlp"])
    p.add_argument("--scale", type=float, default=1.0, help="1 = LHCO R&D size (121k SR QCD)")
    p.add_argument("--noise", type=int, default=10, help="noise features (0: no robustness run)")
    p.add_argument("--tau32", action="store_true",
                   help="robustness: idealized with the two tau32 features added")  # fmt: skip
    p.add_argument("--min-background", type=int, default=50)
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (threads = cores/jobs)")
    p.add_argument("--cathode", type=json.loads, default={},
                   help='CATHODE hyperparameters as JSON, e.g. \'{"background_model": "cvae"}\'')  # fmt: skip
    p.add_argument("--constituents", action="store_true", help="also ANTELOPE and VRNN")
    p.add_argument("--background-models", action="store_true",
                   help="only compare the CATHODE background models (flows vs cVAE, 4 and 6 "
                   "features) over --seeds")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help="write rows + summary as JSON (rows also to OUT.rows.jsonl as they "
                   "finish; an interrupted run resumes from there)")  # fmt: skip
    p.add_argument("--generator", type=Path, default=None, metavar="DIR",
                   help="use adcoffea.synthetic samples (generated into DIR) + the processor")  # fmt: skip
    args = p.parse_args(argv)
    if args.background_models:
        threads.set_threads(threads.default_threads(1))
        rows = compare_background_models(seeds=args.seeds, scale=args.scale)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=2, default=float))
        return 0
    print(f"ad_methods: {' '.join(sys.argv[1:])} | cores {threads.available_cores()}, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    result = run(seeds=args.seeds, signals=tuple(args.signals), methods=tuple(args.methods),
                 classifiers=tuple(args.classifiers), scale=args.scale, noise=args.noise,
                 tau32=args.tau32,
                 jobs=args.jobs, min_background=args.min_background,
                 options={"cathode": args.cathode}, generator=args.generator,
                 rows_file=args.out.with_suffix(".rows.jsonl") if args.out else None)  # fmt: skip
    print()
    result["table"] = print_table(result["summary"], list(args.signals))
    print(f"wall time {result['wall_seconds']:.0f} s")
    if args.constituents:
        result["constituents"] = run_constituents(seed=0)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
