"""Generator speed against the uproot floor, file size, and LHCO-reference closure.

Prints (1) events/s of ``adcoffea.synthetic.generate`` for QCD (what ``adcoffea generate --process
qcd`` runs, ROOT writing included), wall and CPU, against the floor measured in the same run:
the time uproot alone takes to write the same arrays (read back from the generated files,
regrouped into the same collections, written with the same compression and chunking); the
generated file size and PFCands per event; (2) the signal-region (3.3 < mjj < 3.7 TeV) feature
table of the QCD and W' samples next to the LHCO R&D reference (shared/LHCO_REFERENCE.md), the
QCD mjj band fractions, plus W' / svj / yxh resonance checks.

Usage: python benchmarks/generate.py [--events 1000000] [--files 1] [--workers 1]
       [--signal-events 20000] [--out DIR] [--no-floor]
Issue 10 target: >= 10k QCD events/s on one core (--files 1 --workers 1), files no larger per event
than before (1.9 kB/event with LZ4, 79 PFCands/event).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from adcoffea.synthetic import generate
from adcoffea.synthetic.nanoaod import CHUNK_EVENTS, _branch_type, _compression

#: before the issue-10 speed-up (PR state of the package split): bytes and PFCands per event
BASELINE = {"bytes_per_event": 1911, "pfcands_per_event": 78.8, "events_per_s": 2400}
FEATURE_BRANCHES = ["FatJet_pt", "FatJet_eta", "FatJet_phi", "FatJet_mass", "FatJet_tau*"]

# mean, std, q05, q16, q50, q84, q95 (TeV); None = not in the reference
REFERENCE = {
    "qcd": {
        "mj_min": (0.136, 0.095, 0.040, 0.058, 0.108, 0.215, 0.329),
        "dm": (0.172, 0.154, 0.010, 0.032, 0.126, 0.326, 0.489),
        "mj_max": (0.308, 0.177),
        "tau21_light": (0.579, 0.176),
        "tau21_heavy": (0.480, 0.191),
    },
    "wprime": {
        "mj_min": (0.127, 0.053, 0.090, 0.098, 0.111, 0.147, 0.230),
        "dm": (0.360, 0.103, 0.103, 0.300, 0.383, 0.426, 0.471),
        "mj_max": (0.487, 0.093),
        "tau21_light": (0.391, 0.151),
        "tau21_heavy": (0.230, 0.147),
    },
}


def dijet_features(arrays: ak.Array) -> dict[str, np.ndarray]:
    """CATHODE features (TeV) from the two leading FatJets of NanoAOD-like arrays."""
    j = arrays
    pt, eta, phi, m = (
        ak.to_numpy(j[f"FatJet_{k}"][:, :2]).astype(np.float64)
        for k in ("pt", "eta", "phi", "mass")
    )
    t1 = ak.to_numpy(j["FatJet_tau1"][:, :2])
    t2 = ak.to_numpy(j["FatJet_tau2"][:, :2])
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    mjj = np.sqrt(np.maximum(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0))
    tau21 = t2 / (t1 + 1e-5)
    light = np.argmin(m, axis=1)
    rows = np.arange(len(m))
    return {
        "mjj": mjj / 1000,
        "mj_min": m[rows, light] / 1000,
        "mj_max": m[rows, 1 - light] / 1000,
        "dm": (m[rows, 1 - light] - m[rows, light]) / 1000,
        "tau21_light": tau21[rows, light],
        "tau21_heavy": tau21[rows, 1 - light],
    }


def _stats(x: np.ndarray) -> tuple[float, ...]:
    return (x.mean(), x.std(), *np.quantile(x, [0.05, 0.16, 0.5, 0.84, 0.95]))


def _print_table(process: str, feats: dict[str, np.ndarray]) -> None:
    sr = (feats["mjj"] > 3.3) & (feats["mjj"] < 3.7)
    print(f"\n{process}: {sr.sum()} events in the SR ({sr.mean():.1%})")
    print(
        f"{'feature':<12} {'mean':>14} {'std':>14}   quantiles 5/16/50/84/95 %  (generated | reference)"
    )
    for key, ref in REFERENCE[process].items():
        st = _stats(feats[key][sr])
        q = " ".join(f"{v:.3f}" for v in st[2:])
        qr = " ".join(f"{v:.3f}" for v in ref[2:]) if len(ref) > 2 else "-"
        print(
            f"{key:<12} {st[0]:.3f} | {ref[0]:.3f}  {st[1]:.3f} | {ref[1]:.3f}"
            f"   {q} | {qr}   (mean {st[0] / ref[0] - 1:+.0%}, std {st[1] / ref[1] - 1:+.0%})"
        )
    if process == "qcd":
        f = feats["mjj"]
        bands = [
            (1.5, 2.9, 52.3),
            (2.9, 3.3, 21.2),
            (3.3, 3.7, 12.1),
            (3.7, 4.1, 6.67),
            (4.1, 5.5, 6.94),
        ]
        print(
            "mjj band fractions (generated | reference): "
            + ", ".join(f"[{a},{b}] {((f > a) & (f < b)).mean():.1%} | {r}%" for a, b, r in bands)
        )
        x = feats["mj_min"][sr]
        print(
            "SR correlations: mj_min-tau21(light) "
            f"{np.corrcoef(x, feats['tau21_light'][sr])[0, 1]:+.2f} (ref -0.28), mj_min-tau21(heavy) "
            f"{np.corrcoef(x, feats['tau21_heavy'][sr])[0, 1]:+.2f} (ref -0.27), dm-tau21(heavy) "
            f"{np.corrcoef(feats['dm'][sr], feats['tau21_heavy'][sr])[0, 1]:+.2f} (ref -0.44), mj_min-mjj "
            f"{np.corrcoef(x, feats['mjj'][sr])[0, 1]:+.3f} (ref |.|<=0.01)"
        )


def _read(sample, filter_name=None) -> ak.Array:
    return uproot.concatenate(
        [f"{p}:Events" for p in sample.files], filter_name=filter_name, library="ak"
    )


def _cpu() -> float:
    """CPU seconds of this process and its finished children (parallel writers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _regroup(chunk: ak.Array) -> dict:
    """Branches read back -> the dict the generator hands to ``tree.extend`` (collections)."""
    out: dict = {}
    groups: dict[str, dict] = {}
    for name in chunk.fields:
        prefix, _, field = name.partition("_")
        if prefix in ("FatJet", "PFCand", "FatJetPFCand"):
            groups.setdefault(prefix, {})[field] = chunk[name]
        elif not (name.startswith("n") and name[1:] in ("FatJet", "PFCand", "FatJetPFCand")):
            out[name] = ak.to_numpy(chunk[name])
    for prefix, fields in groups.items():
        out[prefix] = ak.zip(fields)
    return out


def uproot_floor(files: list[str], out_dir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds uproot alone takes to write the arrays of ``files``.

    Only the writing is timed (not the reading back, nor regrouping the branches).
    """
    total = 0.0
    cpu = 0.0
    for i, path in enumerate(files):
        target = out_dir / f"floor_{i}.root"
        with uproot.open(path) as src:
            chunks = src["Events"].iterate(step_size=CHUNK_EVENTS, library="ak")
            first = _regroup(next(chunks))
            t0, c0 = time.perf_counter(), time.process_time()
            f = uproot.recreate(target, compression=_compression())
            tree = f.mktree("Events", {k: _branch_type(v) for k, v in first.items()})
            tree.extend(first)
            total, cpu = total + time.perf_counter() - t0, cpu + time.process_time() - c0
            for chunk in chunks:
                arrays = _regroup(chunk)
                t0, c0 = time.perf_counter(), time.process_time()
                tree.extend(arrays)
                total, cpu = total + time.perf_counter() - t0, cpu + time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            f.close()
            total, cpu = total + time.perf_counter() - t0, cpu + time.process_time() - c0
        target.unlink()
    return total, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="processes writing files in parallel")
    ap.add_argument("--signal-events", type=int, default=20_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-floor", action="store_true", help="skip the uproot-alone timing")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="adc_gen_bench_"))

    t0, c0 = time.perf_counter(), _cpu()
    qcd = generate(
        "qcd", n_events=args.events, seed=1, out_dir=out, n_files=args.files, workers=args.workers
    )
    t_gen, c_gen = time.perf_counter() - t0, _cpu() - c0
    n = args.events
    n_cand = sum(uproot.open(p)["Events"]["nPFCand"].array(library="np").sum() for p in qcd.files)
    size = sum(os.path.getsize(p) for p in qcd.files)
    print(
        f"qcd: {n} events, {args.files} file(s), {args.workers} worker(s): {t_gen:.1f} s wall, "
        f"{c_gen:.1f} s CPU -> {n / t_gen:,.0f} events/s wall, {n / c_gen:,.0f} events/s per "
        f"CPU-second (before: ~{BASELINE['events_per_s']:,} events/s)"
    )
    print(
        f"qcd files: {size / n:,.0f} bytes/event (before {BASELINE['bytes_per_event']:,}), "
        f"{n_cand / n:.1f} PFCands/event (before {BASELINE['pfcands_per_event']})"
    )
    if not args.no_floor:
        t_floor, c_floor = uproot_floor(list(qcd.files), out)
        print(
            f"uproot floor (writing the same arrays alone, same compression and chunks): "
            f"{t_floor:.1f} s wall, {c_floor:.1f} s CPU = {n / c_floor:,.0f} events/s per "
            f"CPU-second; generation / floor: {t_gen / t_floor:.1f} (wall), "
            f"{c_gen / c_floor:.1f} (CPU)"
        )
    feats = {"qcd": dijet_features(_read(qcd, FEATURE_BRANCHES))}
    t0 = time.perf_counter()
    wp = generate("wprime", n_events=args.signal_events, seed=2, out_dir=out)
    t_wp = time.perf_counter() - t0
    print(
        f"wprime: {args.signal_events} events in {t_wp:.2f} s = {args.signal_events / t_wp:,.0f} events/s"
    )
    feats["wprime"] = dijet_features(_read(wp))
    for proc in ("qcd", "wprime"):
        _print_table(proc, feats[proc])
    mjj = feats["wprime"]["mjj"]
    print(
        f"\nwprime mjj: median {np.median(mjj):.3f} TeV, fraction in SR {((mjj > 3.3) & (mjj < 3.7)).mean():.1%} (ref 77%)"
    )

    svj = _read(generate("svj", n_events=args.signal_events // 2, seed=3, out_dir=out))
    qcd_met = _read(qcd, ["PFMET_pt"])["PFMET_pt"][:20000]
    f = dijet_features(svj)
    met, mphi = ak.to_numpy(svj.PFMET_pt), ak.to_numpy(svj.PFMET_phi)
    pt, phi = (ak.to_numpy(svj[f"FatJet_{k}"][:, :2]).astype(float) for k in ("pt", "phi"))
    pxj, pyj = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    etj = np.sqrt((f["mjj"] * 1000) ** 2 + pxj**2 + pyj**2)
    mt = np.sqrt(
        np.maximum(
            (etj + met) ** 2 - (pxj + met * np.cos(mphi)) ** 2 - (pyj + met * np.sin(mphi)) ** 2, 0
        )
    )
    dphi = np.abs((phi - mphi[:, None] + np.pi) % (2 * np.pi) - np.pi).min(1)
    h, edges = np.histogram(mt, bins=np.arange(1000, 4000, 50))
    print(
        f"svj (M_Z'=3000, r_inv=0.3): MET mean {met.mean():.0f} GeV (QCD {ak.mean(qcd_met):.0f}); "
        f"min dphi(jet, MET) < 0.4 in {(dphi < 0.4).mean():.0%}; mT mode {edges[h.argmax()] + 25:.0f} GeV, "
        f"mT median {np.median(mt):.0f}, mjj median {np.median(f['mjj']) * 1000:.0f}"
    )
    for xp in (2, 3):
        y = _read(
            generate(
                "yxh",
                n_events=args.signal_events // 4,
                seed=4 + xp,
                out_dir=out,
                name=f"yxh{xp}",
                params={"x_prongs": xp},
            )
        )
        f = dijet_features(y)
        t1, t2, t3 = (ak.to_numpy(y[f"FatJet_tau{k}"][:, :2]) for k in (1, 2, 3))
        heavy = np.argmax(ak.to_numpy(y.FatJet_mass[:, :2]), axis=1)
        r = np.arange(len(heavy))
        print(
            f"yxh x_prongs={xp}: mjj median {np.median(f['mjj']):.3f} TeV, m_X median {np.median(f['mj_max']):.3f}, "
            f"m_H median {np.median(f['mj_min']):.3f}; X tau21 mean {np.mean(t2[r, heavy] / t1[r, heavy]):.2f}, "
            f"X tau32 mean {np.mean(t3[r, heavy] / t2[r, heavy]):.2f}"
        )


if __name__ == "__main__":
    main()
