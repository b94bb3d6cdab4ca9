"""AUC and max SIC of every anomaly-detection method on an LHCO-like sample, plus sculpting.

Data: high-level features sampled from the fitted LHCO R&D distributions
(:func:`adcoffea.models.toy.lhco_features`, see shared/LHCO_REFERENCE.md). QCD is drawn in
3.0 < mjj < 4.0 TeV only (the sidebands 3.1-3.3 and 3.7-3.9 TeV and the signal region
3.3-3.7 TeV lie inside); at ``--scale 1`` the SR holds ~121k QCD events like the real 1M-event
sample. W' signal is injected so that it makes ``--injection`` (default 1 %) of the SR
background. Evaluation uses an independent labelled test sample in the SR (ROC, AUC, max SIC
with at least 10 background events passing) and its QCD over 3.0-4.0 TeV for the sculpting
check (Jensen-Shannon divergence of the mjj shape after a cut keeping 10 % / 1 % of the
background, next to the JS of a random selection of the same size, the statistical floor).

* ``supervised``: classifier on labelled SR signal vs QCD (the ceiling);
* ``cwola`` / ``cathode``: weak supervision on the injected data, k-fold out-of-fold;
* ``autoencoder`` / ``vae`` / ``nae``: outlier scores trained on the SR data (the negative
  control: these four features do not make this signal an outlier of QCD);
* ``antelope`` / ``vrnn`` (``--constituents``): toy two-jet point clouds, one-prong QCD-like
  background vs two-prong signal (no generator-level constituents are used here).

Usage::

    python benchmarks/ad_methods.py --scale 0.5 --out results/ad_methods.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adcoffea.config import TrainConfig
from adcoffea.features import ModelInputs
from adcoffea.models import toy
from adcoffea.models.evaluate import roc_sic, sculpting
from adcoffea.models.train import train_model
from adcoffea.models.weak import region_masks

SR = (3300.0, 3700.0)
SB = (3100.0, 3900.0)
#: QCD events in 3.0-4.0 TeV at scale 1 (~121k of them in the SR, as in the R&D sample).
N_QCD = 330_000
SIGNAL_SR_FRACTION = 0.76  # fraction of the toy W' mjj shape inside the SR

HIGH_LEVEL = ("supervised", "cwola", "cathode", "autoencoder", "vae", "nae")


def make_data(*, scale: float, injection: float, seed: int):
    n_qcd = int(N_QCD * scale)
    n_sig = round(injection * 0.367 * n_qcd / SIGNAL_SR_FRACTION)
    data, labels = toy.lhco_features(n_qcd, n_sig, seed=seed)
    test_b, _ = toy.lhco_features(100_000, 0, seed=seed + 1, event_offset=10_000_000)
    test_s, _ = toy.lhco_features(0, 10_000, seed=seed + 2, event_offset=20_000_000)
    train_b, _ = toy.lhco_features(int(60_000 * max(scale, 0.5)), 0, seed=seed + 3,
                                   event_offset=30_000_000)  # fmt: skip
    train_s, _ = toy.lhco_features(0, 20_000, seed=seed + 4, event_offset=40_000_000)
    return data, labels, test_b, test_s, train_b, train_s


def _generated_inputs(process: str, n_events: int, *, seed: int, out_dir: Path):
    """Generate NanoAOD-like files and extract ModelInputs with the search processor itself."""
    from adcoffea.config import AnalysisConfig
    from adcoffea.pipeline import columns_to_inputs, make_processor
    from adcoffea.pipeline import process as run_processor
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


def make_generator_data(*, scale: float, injection: float, seed: int, out_dir: Path):
    """The same samples as :func:`make_data`, from ``adcoffea.synthetic`` + the processor."""
    gen_per_sr = 1.0 / 0.045  # generated QCD events per selected SR event (measured)
    n_qcd = int(121_000 * scale * gen_per_sr)
    data_b, _ = _generated_inputs("qcd", n_qcd, seed=seed + 100, out_dir=out_dir)
    pool = min(1.0, scale / 0.5)  # test + supervised-training pools: 30k SR QCD at scale 0.5
    pool_b, _ = _generated_inputs("qcd", int(30_000 * pool * gen_per_sr), seed=seed + 101,
                                  out_dir=out_dir)  # fmt: skip
    pool_s, _ = _generated_inputs("wprime", int(60_000 * pool), seed=seed + 102, out_dir=out_dir)
    n_sr_b = int(_in_sr(data_b).sum())
    sig_sr = np.flatnonzero(_in_sr(pool_s))
    n_inj = int(np.rint(injection * n_sr_b / max(_in_sr(pool_s).mean(), 1e-9)))
    inj = np.arange(n_inj)  # the signal pool is unordered: the first n_inj events
    rest = np.arange(n_inj, len(pool_s))
    half_s = rest[len(rest) // 2 :]
    half_b = np.arange(len(pool_b)) >= len(pool_b) // 2
    data = ModelInputs.concatenate([data_b, pool_s.select(inj)])
    labels = np.r_[np.zeros(len(data_b), np.int8), np.ones(n_inj, np.int8)]
    print(f"generator: {n_qcd} QCD generated, {len(data_b)} selected, {n_sr_b} in the SR; "
          f"signal pool {len(pool_s)} selected ({len(sig_sr)} in SR)", flush=True)  # fmt: skip
    return (data, labels, pool_b.select(~half_b), pool_s.select(rest[: len(rest) // 2]),
            pool_b.select(half_b), pool_s.select(half_s))  # fmt: skip


def _in_sr(inputs: ModelInputs) -> np.ndarray:
    m = inputs.high_level["mjj"]
    return (m >= SR[0]) & (m < SR[1])


def run(
    *,
    methods: tuple[str, ...] = HIGH_LEVEL,
    scale: float = 0.5,
    injection: float = 0.01,
    seed: int = 0,
    epochs: int = 20,
    ensemble: int = 2,
    patience: int = 4,
    progress: bool = True,
    generator_dir: Path | None = None,
) -> dict[str, dict]:
    """Train and evaluate ``methods``; returns {method: {auc, max_sic, js..., seconds}}.

    With ``generator_dir`` the samples come from ``adcoffea.synthetic`` files processed by
    the search processor (written there); otherwise from the reference-distribution sampler.
    """
    if generator_dir is not None:
        data, labels, test_b, test_s, train_b, train_s = make_generator_data(
            scale=scale, injection=injection, seed=seed, out_dir=generator_dir
        )
    else:
        data, labels, test_b, test_s, train_b, train_s = make_data(
            scale=scale, injection=injection, seed=seed
        )
    mjj = data.high_level["mjj"]
    sr, sb = region_masks(mjj, SR, SB)
    info = {
        "n_sr_background": int((sr & (labels == 0)).sum()),
        "n_sr_signal": int((sr & (labels == 1)).sum()),
        "n_sidebands": int(sb.sum()),
    }
    info["s_over_b"] = info["n_sr_signal"] / info["n_sr_background"]
    info["s_over_sqrt_b"] = info["n_sr_signal"] / np.sqrt(info["n_sr_background"])
    print(
        f"data: SR {info['n_sr_background']} QCD + {info['n_sr_signal']} W' "
        f"(S/B {100 * info['s_over_b']:.2f} %, S/sqrt(B) {info['s_over_sqrt_b']:.2f}), "
        f"sidebands {info['n_sidebands']}",
        flush=True,
    )
    test_sr = ModelInputs.concatenate(
        [test_b.select(_in_sr(test_b)), test_s.select(_in_sr(test_s))]
    )
    test_lab = np.r_[np.zeros(_in_sr(test_b).sum()), np.ones(_in_sr(test_s).sum())]
    rows: dict[str, dict] = {"_data": info}
    for method in methods:
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=epochs, batch_size=512, learning_rate=1e-3, patience=patience,
                          k_folds=5, ensemble=ensemble, seed=seed)  # fmt: skip
        kwargs: dict = {}
        if method == "supervised":
            train_in = ModelInputs.concatenate(
                [train_b.select(_in_sr(train_b)), train_s.select(_in_sr(train_s))]
            )
            kwargs["labels"] = np.r_[
                np.zeros(_in_sr(train_b).sum()), np.ones(_in_sr(train_s).sum())
            ]
        elif method in ("cwola", "cathode"):
            train_in = data
            kwargs.update(observable=mjj, signal_region=SR, sidebands=SB)
            if method == "cathode":
                kwargs["hyperparameters"] = {"flow_epochs": epochs, "flow_layers": 6,
                                             "flow_hidden": [64, 64], "oversample": 4}  # fmt: skip
        else:
            train_in = data.select(sr)  # background-dominated SR data
            if method == "nae":
                kwargs["hyperparameters"] = {"nae_epochs": 3}
        res = train_model(method, train_in, config=cfg, progress=progress, **kwargs)
        seconds = time.perf_counter() - t0
        s_test = res.bundle.score(test_sr)
        roc = roc_sic(s_test, test_lab, min_background=10)
        row = {"auc": roc.auc, "max_sic": roc.max_sic, "tpr_at_max_sic": roc.tpr_at_max_sic,
               "train_seconds": seconds}  # fmt: skip
        if res.out_of_fold_scores is not None and labels[sr].any():
            oof = roc_sic(res.out_of_fold_scores[sr], labels[sr], min_background=10)
            row.update(oof_auc=oof.auc, oof_max_sic=oof.max_sic)
        # Sculpting of the QCD mjj shape by cuts on the score (independent QCD, 3.0-4.0 TeV)
        sc = sculpting(test_b.high_level["mjj"], res.bundle.score(test_b),
                       is_background=np.ones(len(test_b), bool),
                       edges=np.linspace(3000, 4000, 21), efficiencies=(0.1, 0.01))  # fmt: skip
        row.update(js_10=sc.js[0], js_random_10=sc.js_random[0], js_1=sc.js[1],
                   js_random_1=sc.js_random[1], chi2_ndf_10=sc.chi2_flat[0] / max(sc.ndf[0], 1))  # fmt: skip
        rows[method] = row
        print(f"{method:12s} AUC {roc.auc:.3f}  max SIC {roc.max_sic:6.2f}  "
              f"({seconds:.0f} s)", flush=True)  # fmt: skip
    return rows


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


def print_table(rows: dict[str, dict]) -> None:
    print()
    print(f"{'method':12s} {'AUC':>6s} {'maxSIC':>7s} {'JS@10%':>9s} {'rand':>9s} "
          f"{'JS@1%':>9s} {'rand':>9s} {'train s':>8s}")  # fmt: skip
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        js = (f"{r['js_10']:9.2e} {r['js_random_10']:9.2e} {r['js_1']:9.2e} {r['js_random_1']:9.2e}"
              if "js_10" in r else " " * 39)  # fmt: skip
        print(f"{name:12s} {r['auc']:6.3f} {r['max_sic']:7.2f} {js} {r['train_seconds']:8.0f}")
    if "supervised" in rows:
        ceiling = rows["supervised"]["max_sic"]
        for m in ("cwola", "cathode"):
            if m in rows:
                print(f"{m}: max SIC / supervised = {rows[m]['max_sic'] / ceiling:.2f} "
                      f"(target >= 0.5)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=0.5, help="1 = LHCO R&D size (121k QCD in SR)")
    p.add_argument("--injection", type=float, default=0.01, help="signal / background in SR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--ensemble", type=int, default=2)
    p.add_argument("--patience", type=int, default=4, help="early-stopping patience (epochs)")
    p.add_argument("--methods", nargs="+", default=list(HIGH_LEVEL))
    p.add_argument("--constituents", action="store_true", help="also ANTELOPE and VRNN")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON")
    p.add_argument(
        "--generator",
        type=Path,
        default=None,
        metavar="DIR",
        help="use adcoffea.synthetic samples (generated into DIR) + the processor",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(methods=tuple(args.methods), scale=args.scale, injection=args.injection,
               seed=args.seed, epochs=args.epochs, ensemble=args.ensemble, patience=args.patience, progress=False,
               generator_dir=args.generator)  # fmt: skip
    if args.constituents:
        rows.update(run_constituents(seed=args.seed))
    print_table(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
