"""Training time of one hunt window while another process keeps one core busy.

    python benchmarks/threads.py [--events 200000] [--kinds bdt [mlp]]

For each classifier kind, the k-fold training of one hunt window (CWoLa: SR vs sidebands,
5 folds) is timed three times, each while a second process spins on one core:

* ``library defaults``: OpenMP and torch use one thread per core (what scikit-learn and torch
  do unless told otherwise);
* ``adcoffea``: the thread counts :mod:`adcoffea.models.threads` sets in the hunt stage
  (``workers x threads <= cores``; the hunt trains one window per core with one thread each);
* ``idle machine`` (no busy process), with the adcoffea setting, for reference.

One line per setting: kind, setting, threads, wall time. On a 2-core machine the library
defaults make the OpenMP team of the boosted trees wait at every barrier for the thread that
shares its core with the busy process.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np


def _spin() -> None:  # pragma: no cover - runs in the busy process
    x = 0
    while True:
        x += 1


def _train(kind: str, n_events: int) -> float:
    from adcoffea.hunt.classify import score_window
    from adcoffea.hunt.toydata import sample
    from adcoffea.hunt.windows import Window
    from adcoffea.models.bundle import fold_of

    mjj, x, event, _ = sample(np.random.default_rng(1), n_events, n_sig=n_events // 300)
    w = Window(0, 3300.0, 3700.0, 3000.0, 4100.0, 2800.0, 7000.0)
    t0 = time.perf_counter()
    hp = {"max_iter": 200} if kind == "bdt" else {}
    score_window(w, mjj, x, fold_of(event, 5), k=5, kind=kind, members=1, seed=1,
                 hyperparameters=hp)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kinds", nargs="+", default=["bdt"], help="bdt and/or mlp (slow)")
    args = ap.parse_args()

    import torch

    from adcoffea.models.threads import available_cores, limited_threads

    cores = available_cores()
    print(f"{cores} cores available; training one window on {args.events} events")
    _train("bdt", 5000)  # imports and OpenMP start-up outside the timings
    for kind in args.kinds:
        for setting in ("library defaults", "adcoffea", "idle machine"):
            busy = None
            if setting != "idle machine":
                busy = mp.get_context("fork").Process(target=_spin, daemon=True)
                busy.start()
            try:
                # the hunt trains `cores` windows at once with one thread each
                n = cores if setting == "library defaults" else 1
                with limited_threads(n):
                    dt = _train(kind, args.events)
                    threads = torch.get_num_threads()
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.join()
            print(f"{kind:>4}  {setting:<17} {threads} thread(s): {dt:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
