"""Training and scoring time on the GPU against the CPU: AE, CWoLa (MLP and BDT) and VRNN.

Each device runs in its own subprocess (the CPU one with ``CUDA_VISIBLE_DEVICES=""``, so the
library's own :func:`adcoffea.models.loop.device` picks the CPU), on the same seeded toy data
with the library's training functions (:func:`adcoffea.models.train.train_model`) and a fixed
number of epochs (early stopping off: ``patience`` = epochs):

* ``autoencoder``: LHCO-like high-level features (:func:`adcoffea.models.toy.lhco_features`),
  ``--events`` events;
* ``cwola``: the same events, SR 3.3-3.7 TeV against the 3.1-3.9 TeV sidebands, k = 5 folds,
  one MLP per fold (``classifier: mlp``); the BDT (``classifier: bdt``, scikit-learn, CPU only;
  also one member per fold, not its default 10) is timed in the CPU run only, last, and only
  when at least 30 s of the run's budget are left;
* ``vrnn``: toy two-prong/one-prong jets (:func:`adcoffea.models.toy.point_clouds`),
  ``--jets`` events.

Scoring: ``bundle.score`` (the library scores on the CPU, as the processor does) and, for the
networks, the raw forward pass on the run's device (batches of 65536, after a warm-up, with
``torch.cuda.synchronize``). Times are wall seconds; the table prints CPU/GPU ratios.

Usage::

    PYTHONPATH=. python benchmarks/device_training.py [--events 300000] [--jets 50000]
        [--epochs 5] [--devices cpu,cuda] [--time-limit 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR, SB = (3300.0, 3700.0), (3100.0, 3900.0)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _forward_seconds(fn, n: int, batch: int = 65536) -> float:
    """Best of 3 timings of ``fn(slice)`` over ``n`` rows in batches, on the run's device."""
    import torch

    with torch.no_grad():
        fn(slice(0, min(n, 1024)))  # warm-up: kernels, allocator
        _sync()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for s in range(0, n, batch):
                fn(slice(s, min(s + batch, n)))
            _sync()
            best = min(best, time.perf_counter() - t0)
    return best


def one_device(args) -> list[dict]:
    """Run every method on this process's device; one dict per method (printed as JSON)."""
    import numpy as np
    import torch

    from adcoffea.config import TrainConfig
    from adcoffea.models import toy
    from adcoffea.models.evaluate import scoring_throughput
    from adcoffea.models.loop import device
    from adcoffea.models.preprocessing import Standardizer, vrnn_sequences
    from adcoffea.models.train import train_model

    t_start = time.perf_counter()
    dev = device()
    name = args.one  # the requested device labels the rows (``info`` has the one used)
    rows: list[dict] = []
    config = TrainConfig(epochs=args.epochs, patience=args.epochs, seed=1)
    inputs, _ = toy.lhco_features(args.events, 0, seed=1)
    mjj = inputs.high_level["mjj"]
    clouds = toy.point_clouds(args.jets, prongs=1, seed=2)
    info = {"device": dev.type, "torch": torch.__version__, "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps({"info": info}), flush=True)

    def left() -> float:
        return args.time_limit - (time.perf_counter() - t_start)

    jobs = ["autoencoder", "cwola_mlp", "vrnn"] + (["cwola_bdt"] if name == "cpu" else [])
    for job in jobs:
        if left() < 10:
            rows.append({"method": job, "device": name, "skipped": "time limit"})
            print(json.dumps(rows[-1]), flush=True)
            continue
        t0 = time.perf_counter()
        if job == "autoencoder":
            res = train_model("autoencoder", inputs, config=config, progress=False)
            data, n = inputs, len(inputs)
        elif job.startswith("cwola"):
            kind = job.split("_")[1]
            if kind == "bdt" and left() < 30:
                rows.append({"method": job, "device": name, "skipped": "time limit"})
                print(json.dumps(rows[-1]), flush=True)
                continue
            # one member per fold for both kinds (the BDT's default of 10 would take 10x)
            hp = {"classifier": kind, "members": 1}
            res = train_model(
                "cwola", inputs, config=config, hyperparameters=hp, observable=mjj,
                signal_region=SR, sidebands=SB, progress=False,
            )  # fmt: skip
            data, n = inputs, len(inputs)
        else:
            res = train_model("vrnn", clouds, config=config, progress=False)
            data, n = clouds, len(clouds)
        _sync()
        t_train = time.perf_counter() - t0
        bundle = res.bundle
        t_score = scoring_throughput(bundle, data, repeats=1).seconds
        row = {
            "method": job, "device": name, "events": n, "epochs": args.epochs,
            "train_s": t_train, "score_cpu_s": t_score,
        }  # fmt: skip
        # raw forward pass of the networks on this device
        nets = {k: v.to(dev) for k, v in bundle.networks.items()}
        md = bundle.metadata
        if job == "autoencoder":
            std = Standardizer.from_dict(md.preprocessing["standardizer"])
            x = torch.as_tensor(
                std.transform(inputs.matrix(list(md.features))).astype(np.float32), device=dev
            )
            net = nets["model"]
            row["forward_s"] = _forward_seconds(lambda s, x=x, net=net: net.score(x[s]), n)
        elif job == "cwola_mlp":
            std = Standardizer.from_dict(md.preprocessing["standardizer"])
            x = torch.as_tensor(
                std.transform(inputs.matrix(list(md.features))).astype(np.float32), device=dev
            )
            members = list(nets.values())
            # every event through every fold's members (the cost bound of the ensemble)
            row["forward_s"] = _forward_seconds(
                lambda s, x=x, members=members: [m(x[s]) for m in members], n
            )
        elif job == "vrnn":
            seq, m = vrnn_sequences(
                clouds.constituents, clouds.mask, clouds.jets, jet=md.jet or "heavier",
                n_max=int(md.preprocessing.get("n_max", 20)),
            )  # fmt: skip
            st = Standardizer.from_dict(md.preprocessing["sequence"])
            seq = np.where(m[..., None], st.transform(seq), 0.0).astype(np.float32)
            ts, tm = torch.as_tensor(seq, device=dev), torch.as_tensor(m, device=dev)
            net = nets["model"]
            row["forward_s"] = _forward_seconds(
                lambda s, ts=ts, tm=tm, net=net: net.score(ts[s], tm[s]), n
            )
        for v in nets.values():
            v.to("cpu")
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _f(r: dict | None, k: str) -> str:
    return f"{r[k]:.2f}" if r and k in r else "-"


def _ratio(c: dict | None, g: dict | None, k: str) -> str:
    return f"{c[k] / g[k]:.1f}x" if c and g and c.get(k) and g.get(k) else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000, help="AE and CWoLa events")
    ap.add_argument("--jets", type=int, default=50_000, help="VRNN events (toy jets)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--devices", default="cpu,cuda", help="comma list of cpu, cuda")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds for all devices")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", choices=["cpu", "cuda"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one_device(args)
        return

    t_start = time.perf_counter()
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    results: list[dict] = []
    infos: dict[str, dict] = {}
    for i, dev in enumerate(devices):
        left = args.time_limit - (time.perf_counter() - t_start)
        # share what is left among the remaining devices; the CPU (slower, and the only
        # one that also fits the BDT) gets 60 % when the GPU still follows
        share = 0.6 if dev == "cpu" and devices[i + 1 :] else 1 / (len(devices) - i)
        budget = left * share
        if budget < 15:
            print(f"{dev}: skipped (time limit)", flush=True)
            continue
        env = dict(os.environ)
        if dev == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        cmd = [sys.executable, __file__, "--one", dev, "--events", str(args.events),
               "--jets", str(args.jets), "--epochs", str(args.epochs),
               "--time-limit", str(budget)]  # fmt: skip
        print(f"--- {dev} (budget {budget:.0f} s)", flush=True)
        t_dev = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        # the child stops starting jobs when its budget is spent; a job that overruns it
        # (a slow fit) is killed 20 s after the budget, keeping what was printed
        timer = threading.Timer(budget + 20, proc.kill)
        timer.start()
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                print(line, end="", flush=True)
                if line.startswith("{"):
                    rec = json.loads(line)
                    if "info" in rec:
                        infos[dev] = rec["info"]
                    else:
                        results.append(rec)
            proc.wait(timeout=max(budget - (time.perf_counter() - t_dev), 1) + 20)
        except subprocess.TimeoutExpired:
            proc.kill()
        finally:
            timer.cancel()
        if proc.returncode and proc.returncode < 0:
            print(f"{dev}: killed after its budget", flush=True)
        if proc.returncode:
            print(f"{dev}: exit status {proc.returncode}", flush=True)
        if dev == "cuda" and infos.get("cuda", {}).get("device") != "cuda":
            print("cuda: torch sees no GPU here, that run was on the CPU", flush=True)

    by = {(r["method"], r["device"]): r for r in results if "train_s" in r}
    print(f"\n{args.events} events (AE, CWoLa), {args.jets} jets (VRNN), {args.epochs} epochs")
    for dev, info in infos.items():
        print(f"  {dev}: {info}")
    print(
        f"{'method':<13}{'train CPU':>10}{'train GPU':>10}{'CPU/GPU':>9}"
        f"{'fwd CPU':>9}{'fwd GPU':>9}{'CPU/GPU':>9}{'score (lib, CPU)':>18}"
    )
    for method in ("autoencoder", "cwola_mlp", "cwola_bdt", "vrnn"):
        c, g = by.get((method, "cpu")), by.get((method, "cuda"))
        if not c and not g:
            continue

        score = (c or g)["score_cpu_s"]
        print(
            f"{method:<13}{_f(c, 'train_s'):>10}{_f(g, 'train_s'):>10}{_ratio(c, g, 'train_s'):>9}"
            f"{_f(c, 'forward_s'):>9}{_f(g, 'forward_s'):>9}{_ratio(c, g, 'forward_s'):>9}"
            f"{score:>16.2f} s"
        )
    print("times in s; fwd: raw network forward over all events on the device (best of 3)")
    if args.json:
        args.json.write_text(json.dumps({"info": infos, "rows": results}, indent=1))


if __name__ == "__main__":
    main()
