"""CLI sub-commands of adcoffea.fits: ``fit``, ``limits`` and ``bumphunt`` on saved histograms."""

from __future__ import annotations

import argparse


def fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea fit``."""
    parser.add_argument("histfile", help="pickle {name: hist.Hist} or ROOT file")
    parser.add_argument("--hist", default="mjj", help="histogram name (default mjj)")
    parser.add_argument("--dataset", default=None, help="dataset category to fit")
    parser.add_argument("--region", default=None, help="region category to fit")
    parser.add_argument("--function", default="dijet", choices=["dijet", "expo", "power"])
    parser.add_argument("--n-params", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--backend", default="iminuit", choices=["iminuit", "zfit"])
    parser.add_argument("--sqrt-s", type=float, default=13000.0, help="GeV")
    parser.add_argument("--range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    parser.add_argument("--alpha", type=float, default=0.05, help="order-selection test size")
    parser.add_argument("--method", default="wilks", choices=["wilks", "ftest"])
    parser.add_argument(
        "--swift-half-width",
        type=int,
        default=0,
        help="also run a sliding-window fit with this half width in bins (0: off)",
    )
    parser.add_argument("--out", default="fit_results", help="output directory")


def fit_main(args: argparse.Namespace) -> int:
    """Fit orders, select one, write ``fit.json`` and plots."""
    import json
    from pathlib import Path

    from adcoffea.fits.background import load_histogram, select_order
    from adcoffea.fits.fit_plots import plot_fit

    h = load_histogram(
        args.histfile, name=args.hist, selections={"dataset": args.dataset, "region": args.region}
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sel = select_order(
        h,
        function=args.function,
        n_params=args.n_params,
        sqrt_s=args.sqrt_s,
        backend=args.backend,
        fit_range=args.range,
        alpha=args.alpha,
        method=args.method,
    )
    xlabel = f"{h.axes[0].label or h.axes[0].name} [GeV]"
    doc = {
        "histfile": str(args.histfile),
        "hist": args.hist,
        "dataset": args.dataset,
        "region": args.region,
        "order_selection": sel.to_dict(),
        "fits": {str(n): r.to_dict() for n, r in sel.fits.items()},
    }
    for n, r in sel.fits.items():
        plot_fit(r, out / f"fit_{n}par.png", xlabel=xlabel)
    plot_fit(
        sel.best,
        out / "fit_best.png",
        xlabel=xlabel,
        others={f"{n} par": r for n, r in sel.fits.items() if n != sel.chosen},
    )
    if args.swift_half_width > 0:
        from adcoffea.fits.swift import sliding_window_fit

        sw = sliding_window_fit(
            h,
            half_width=args.swift_half_width,
            function=args.function,
            n_params=min(args.n_params),
            sqrt_s=args.sqrt_s,
            fit_range=args.range,
        )
        doc["sliding_window"] = sw.to_dict()
        plot_fit(sw, out / "fit_sliding_window.png", xlabel=xlabel)
    (out / "fit.json").write_text(json.dumps(doc, indent=1))
    best = sel.best
    print(
        f"chosen {sel.chosen}-parameter {args.function} ({args.method}, alpha={args.alpha}): "
        f"chi2/ndf = {best.chi2:.1f}/{best.ndf} (p = {best.pvalue:.3f}); wrote {out}/fit.json"
    )
    return 0


def limits_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea limits``."""
    parser.add_argument("histfile", help="pickle {name: hist.Hist} or ROOT file")
    parser.add_argument("--hist", default="mjj", help="histogram name (default mjj)")
    parser.add_argument("--data-dataset", default="data", help="dataset used as observed data")
    parser.add_argument("--region", default=None, help="region category")
    parser.add_argument(
        "--signal-dataset",
        nargs="+",
        default=None,
        help="signal template dataset(s); their sum of weights is the mu=1 yield",
    )
    parser.add_argument(
        "--signal-mass", type=float, nargs="+", default=None, help="GeV, one per signal dataset"
    )
    parser.add_argument("--masses", type=float, nargs="+", required=True, help="GeV")
    parser.add_argument("--signal-width", type=float, default=0.05, help="Gaussian sigma/mass")
    parser.add_argument(
        "--signal-events", type=float, default=100.0, help="Gaussian signal events for mu=1"
    )
    parser.add_argument("--function", default="dijet", choices=["dijet", "expo", "power"])
    parser.add_argument("--n-params", type=int, default=4)
    parser.add_argument("--sqrt-s", type=float, default=13000.0, help="GeV")
    parser.add_argument("--range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    parser.add_argument("--cl", type=float, default=0.95)
    parser.add_argument("--out", default="limit_results", help="output directory")


def limits_main(args: argparse.Namespace) -> int:
    """Fit the background, build a workspace per mass, write ``limits.json`` and a Brazil plot."""
    import json
    from pathlib import Path

    import numpy as np

    from adcoffea.errors import ConfigError
    from adcoffea.fits.background import fit_background, load_histogram, range_slice
    from adcoffea.fits.signal import gaussian_signal, template_signal
    from adcoffea.fits.workspace import build_workspace, discovery_p0, fit_variations, limit_scan

    def get(dataset: str):
        return load_histogram(
            args.histfile, name=args.hist, selections={"dataset": dataset, "region": args.region}
        )

    data_h = get(args.data_dataset)
    edges_all = np.asarray(data_h.axes[0].edges, dtype=float)
    sl = range_slice(edges_all, args.range)
    edges = edges_all[sl.start : sl.stop + 1]
    fit = fit_background(
        data_h,
        function=args.function,
        n_params=args.n_params,
        sqrt_s=args.sqrt_s,
        fit_range=args.range,
    )
    variations = fit_variations(fit)
    if args.signal_dataset:
        if not args.signal_mass or len(args.signal_mass) != len(args.signal_dataset):
            raise ConfigError("--signal-mass needs one mass per --signal-dataset")
        temps, yields = [], []
        for ds, m in zip(args.signal_dataset, args.signal_mass, strict=True):
            sh = get(ds)
            temps.append((m, np.asarray(sh.axes[0].edges), np.asarray(sh.values())))
            yields.append(float(np.sum(sh.values())))
        order = np.argsort(args.signal_mass)
        tm, ty = np.asarray(args.signal_mass)[order], np.asarray(yields)[order]

        def signal_for_mass(m: float) -> np.ndarray:
            return float(np.interp(m, tm, ty)) * template_signal(edges, m, temps)
    else:

        def signal_for_mass(m: float) -> np.ndarray:
            return args.signal_events * gaussian_signal(edges, m, rel_width=args.signal_width)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scan = limit_scan(
        args.masses,
        data=fit.counts,
        background=fit.background,
        signal_for_mass=signal_for_mass,
        bkg_variations=variations,
        cl=args.cl,
    )
    discovery = []
    for m in args.masses:
        ws = build_workspace(
            fit.counts, fit.background, signal_for_mass(m), bkg_variations=variations
        )
        (out / f"workspace_{m:g}.json").write_text(json.dumps(ws))
        discovery.append({"mass": m, **discovery_p0(ws).to_dict()})
    scan.brazil_plot(str(out / "brazil.png"), ylabel=f"{args.cl:.0%} CL upper limit on mu")
    doc = {
        "histfile": str(args.histfile),
        "hist": args.hist,
        "background_fit": fit.to_dict(),
        "limits": scan.to_dict(),
        "discovery": discovery,
    }
    (out / "limits.json").write_text(json.dumps(doc, indent=1))
    for m, o, e in zip(scan.masses, scan.observed, scan.expected, strict=True):
        print(f"m = {m:g} GeV: mu_up obs {o:.3g}, exp {e[2]:.3g} [{e[1]:.3g}, {e[3]:.3g}]")
    print(f"wrote {out}/limits.json")
    return 0


def bumphunt_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea bumphunt``."""
    parser.add_argument("file", help="saved histograms: .pkl (dict of hist.Hist) or .root")
    parser.add_argument("--data", required=True, help="name of the data histogram")
    parser.add_argument("--background", required=True, help="name of the background histogram")
    parser.add_argument("--width-min", type=int, nargs="+", default=[2])
    parser.add_argument("--width-max", type=int, nargs="+", default=[6])
    parser.add_argument("--step", default="1", help="position step: N, 'half' or 'full'")
    parser.add_argument("--mode", choices=["excess", "deficit"], default="excess")
    parser.add_argument("--sideband", action="store_true", help="pyBumpHunter sideband norm.")
    parser.add_argument("--toys", type=int, default=10000, help="number of toys")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bumphunter_out", help="output directory")


def bumphunt_main(args: argparse.Namespace) -> int:
    """Run the scan, write bumphunter.json and plots into --out."""
    import json
    import pickle
    from pathlib import Path

    from adcoffea.errors import InputFileError
    from adcoffea.fits.bumphunter import bumphunt
    from adcoffea.fits.bumphunter_plots import plot_bump_1d, plot_bump_2d, plot_t_distribution

    path = Path(args.file)
    if not path.exists():
        raise InputFileError(str(path), "file not found")
    hists = {}
    try:
        if path.suffix == ".root":
            import uproot

            with uproot.open(path) as f:
                for name in (args.data, args.background):
                    if name not in f:
                        raise InputFileError(str(path), f"no histogram named {name!r}")
                    hists[name] = f[name].to_hist()
        else:
            with open(path, "rb") as f:
                content = pickle.load(f)  # user-produced file (processor output)
            if not isinstance(content, dict):
                raise InputFileError(str(path), "expected a pickled dict of hist.Hist")
            for name in (args.data, args.background):
                if name not in content:
                    raise InputFileError(str(path), f"no histogram named {name!r}")
                hists[name] = content[name]
    except (OSError, pickle.UnpicklingError, ValueError) as err:
        raise InputFileError(str(path), f"cannot read: {err}") from err

    def one_or_pair(v: list[int]):
        return v[0] if len(v) == 1 else tuple(v)

    step = args.step if args.step in ("half", "full") else int(args.step)
    data, bkg = hists[args.data], hists[args.background]
    res = bumphunt(
        data,
        bkg,
        width_min=one_or_pair(args.width_min),
        width_max=one_or_pair(args.width_max),
        step=step,
        mode=args.mode,
        sideband=args.sideband,
        n_toys=args.toys,
        seed=args.seed,
        keep_toy_t=True,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bumphunter.json").write_text(json.dumps(res.to_dict(), indent=2))
    if res.ndim == 1:
        plot_bump_1d(res, data, bkg, path=str(out / "bump.png"))
    else:
        plot_bump_2d(res, data, bkg, path=str(out / "bump2d.png"))
    plot_t_distribution(res, path=str(out / "t_distribution.png"))
    z = f"> {res.global_z:.2f}" if res.global_p_is_bound else f"= {res.global_z:.2f}"
    print(
        f"bump {res.bump_lo}..{res.bump_hi}, local p = {res.local_p:.3g}, "
        f"global p = {res.global_p:.3g} (Z {z}); wrote {out}/bumphunter.json"
    )
    return 0
