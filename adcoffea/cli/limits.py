"""``adcoffea limits``: CLs upper limits with pyhf from saved histograms."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea limits``."""
    from adcoffea.cli.options import HISTFILE_HELP

    parser.add_argument("histfile", help=HISTFILE_HELP)
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
    parser.add_argument(
        "--luminosity",
        type=float,
        default=None,
        help="fb^-1 of the data: also the limits on the visible cross section "
        "sigma x B x acceptance x efficiency = signal events / luminosity, in fb",
    )
    parser.add_argument(
        "--cross-section",
        type=float,
        default=None,
        help="pb: the sigma x B the signal for mu = 1 stands for (a template filled with "
        "weights sigma x L / N_generated: that sigma; with unit weights of N generated "
        "events: N / luminosity): also the limits on sigma x B, in fb",
    )
    parser.add_argument("--out", default="limit_results", help="output directory")


def main(args: argparse.Namespace) -> int:
    """Fit the background, build a workspace per mass, write ``limits.json`` and a Brazil plot."""
    from pathlib import Path

    import numpy as np

    from adcoffea.errors import ConfigError
    from adcoffea.fits.background import fit_background, load_histogram, range_slice
    from adcoffea.fits.signal import gaussian_signal, template_signal
    from adcoffea.fits.workspace import build_workspace, discovery_p0, fit_variations, limit_scan
    from adcoffea.outputs import write_json
    from adcoffea.plots import save
    from adcoffea.plots.limits import plot_brazil

    for key, value in (("--luminosity", args.luminosity), ("--cross-section", args.cross_section)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{key} must be a positive number, got {value}")

    def get(dataset: str) -> Any:
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
        write_json(out / f"workspace_{m:g}.json", ws)
        discovery.append({"mass": m, **discovery_p0(ws).to_dict()})
    fig = plot_brazil(
        scan.masses, scan.observed, scan.expected, ylabel=f"{args.cl:.0%} CL upper limit on mu"
    )
    save(fig, out / "brazil.png", dpi=80)
    limits = scan.to_dict()
    # in fb: what mu = 1 stands for, times the limit on mu
    converted = {}
    if args.luminosity is not None:
        converted["visible_cross_section"] = (
            "sigma x B x acceptance x efficiency",
            scan.signal_yield / args.luminosity,
        )
    if args.cross_section is not None:
        converted["cross_section"] = (
            "sigma x B",
            np.full(len(scan.masses), 1000.0 * args.cross_section),
        )
    for key, (what, per_mu) in converted.items():
        limits[f"observed_{key}_fb"] = (scan.observed * per_mu).tolist()
        limits[f"expected_{key}_fb"] = (scan.expected * per_mu[:, None]).tolist()
        fig = plot_brazil(
            scan.masses,
            scan.observed * per_mu,
            scan.expected * per_mu[:, None],
            ylabel=f"{args.cl:.0%} CL upper limit on {what} [fb]",
        )
        save(fig, out / f"brazil_{key}.png", dpi=80)
    if args.luminosity is not None:
        limits["luminosity_fb"] = args.luminosity
    if args.cross_section is not None:
        limits["cross_section_mu1_pb"] = args.cross_section
    doc = {
        "histfile": str(args.histfile),
        "hist": args.hist,
        "background_fit": fit.to_dict(),
        "limits": limits,
        "discovery": discovery,
    }
    write_json(out / "limits.json", doc)
    for i, (m, o, e) in enumerate(zip(scan.masses, scan.observed, scan.expected, strict=True)):
        line = f"m = {m:g} GeV: mu_up obs {o:.3g}, exp {e[2]:.3g} [{e[1]:.3g}, {e[3]:.3g}]"
        for what, per_mu in converted.values():
            line += f"; {what} < {o * per_mu[i]:.3g} fb (exp {e[2] * per_mu[i]:.3g})"
        print(line)
    print(f"wrote {out}/limits.json")
    return 0
