"""Time per stage of the three searches, at their default size or scaled.

    python benchmarks/end_to_end.py [--configs configs/lhco_dijet.yaml ...] [--events-scale 1]
                                    [--executor futures] [--fresh]

Runs ``adcoffea run`` (the same code path) for each config and prints a table of wall time
per stage (inputs = synthetic generation or cache lookup, train, process, write, evaluate,
hunt, statistics), the total, and the processing rate in events/s, then the same table in
CPU seconds (the process and its workers: what the stage costs on an idle machine, whatever
the load of a shared one). ``--fresh`` regenerates the synthetic samples so that the
generation time is included (generation runs in the ``inputs`` stage). Add
``--signal-check`` to print the BumpHunter outcome of every region (bump, local and global
significance) and the hunt's best window with its local and global significance.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT = ["configs/lhco_dijet.yaml", "configs/svj_mt.yaml", "configs/yxh_2d.yaml"]
STAGES = ("inputs", "train", "process", "write", "evaluate", "hunt", "statistics")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT)
    ap.add_argument("--events-scale", type=float, default=1.0)
    ap.add_argument("--executor", default=None, help="override the config's executor")
    ap.add_argument("--output", type=Path, default=Path("results/bench_end_to_end"))
    ap.add_argument("--fresh", action="store_true", help="regenerate the synthetic samples")
    ap.add_argument("--signal-check", action="store_true")
    args = ap.parse_args()

    import os

    from adcoffea.config import load_config
    from adcoffea.datasets import ensure_synthetic, scale_events
    from adcoffea.pipeline import run

    rows = []
    for path in args.configs:
        cfg = load_config(path)
        if args.events_scale != 1.0:
            cfg = scale_events(cfg, args.events_scale)
        gen_t = gen_cpu = 0.0
        if args.fresh and cfg.datasets.synthetic is not None:
            from adcoffea.pipeline import _cpu_seconds

            t0, c0 = time.perf_counter(), _cpu_seconds()
            ensure_synthetic(cfg, force=True)
            gen_t, gen_cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            print(f"{cfg.name}: regenerated in {gen_t:.1f} s (CPU {gen_cpu:.1f} s)", flush=True)
        t0 = time.perf_counter()
        res = run(cfg, executor=args.executor, output=args.output / cfg.name)
        total = time.perf_counter() - t0
        events = res.report.events_processed
        wall = {**res.timings, "inputs": res.timings.get("inputs", 0.0) + gen_t}
        cpu = dict(res.results.get("cpu_s", {}))
        cpu["inputs"] = cpu.get("inputs", 0.0) + gen_cpu
        rows.append((cfg.name, wall, total + gen_t, events, res.results, cpu))

    print()
    load = os.getloadavg()[0]
    head = f"{'search':<12}" + "".join(f"{s:>11}" for s in STAGES) + f"{'total':>10}{'events':>10}"
    print(f"wall time (load average now {load:.1f} on {os.cpu_count()} cores)")
    print(head + f"{'process ev/s':>14}")
    for name, t, total, events, _, _ in rows:
        cells = "".join(f"{t.get(s, 0.0):>10.1f}s" for s in STAGES)
        rate = events / t["process"] if t.get("process") else float("nan")
        print(f"{name:<12}{cells}{total:>9.1f}s{events:>10d}{rate:>14,.0f}")
    print("CPU time (process + workers)")
    print(head)
    for name, _, _, events, _, cpu in rows:
        cells = "".join(f"{cpu.get(s, 0.0):>10.1f}s" for s in STAGES)
        print(f"{name:<12}{cells}{sum(cpu.values()):>9.1f}s{events:>10d}")
    if args.signal_check:
        print()
        for name, *_, results, _ in rows:
            hunt = results.get("hunt")
            if hunt:
                b, g = hunt["best"], hunt["global"]
                rel = ">" if g["p_is_bound"] else "="
                print(
                    f"{name:<12}{'hunt':<18} best SR {b['signal_region']} GeV at efficiency "
                    f"{b['efficiency']:g}: N {b['n_obs']:.0f} vs B {b['background']:.1f} +- "
                    f"{b['sigma_background']:.1f}, local Z {b['local_z']:.2f}, global Z {rel} "
                    f"{g['z']:.2f} ({g['n_toys']} toys)"
                )
            for region, r in results.get("regions", {}).items():
                bh = r.get("bumphunter")
                if not bh or bh.get("bump_lo") is None:
                    continue
                bound = " (bound)" if bh.get("global_p_is_bound") else ""
                print(
                    f"{name:<12}{region:<18} bump {bh['bump_lo']}-{bh['bump_hi']} GeV  "
                    f"local Z {bh['local_z']:.2f}  global Z {bh['global_z']:.2f}{bound}"
                )


if __name__ == "__main__":
    main()
