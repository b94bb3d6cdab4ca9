"""``adcoffea fit``: background fit (order selection) of a saved histogram."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea fit``."""
    from adcoffea.cli.options import HISTFILE_HELP

    parser.add_argument("histfile", help=HISTFILE_HELP)
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
    parser.add_argument(
        "--plots",
        default="best",
        choices=["best", "all", "none"],
        help="fit plots to draw: the chosen order (with the others overlaid), every order, none",
    )
    parser.add_argument("--out", default="fit_results", help="output directory")


def main(args: argparse.Namespace) -> int:
    """Fit orders, select one, write ``fit.json`` and plots."""
    from pathlib import Path

    from adcoffea.fits.background import load_histogram
    from adcoffea.fits.order import select_order
    from adcoffea.outputs import write_json
    from adcoffea.plots import save
    from adcoffea.plots.fit import plot_fit

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
    if args.plots == "all":
        for n, r in sel.fits.items():
            save(plot_fit(r, xlabel=xlabel), out / f"fit_{n}par.png", dpi=80)
    if args.plots != "none":
        others = {f"{n} par": r for n, r in sel.fits.items() if n != sel.chosen}
        save(plot_fit(sel.best, xlabel=xlabel, others=others), out / "fit_best.png", dpi=80)
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
        if args.plots != "none":
            save(plot_fit(sw, xlabel=xlabel), out / "fit_sliding_window.png", dpi=80)
    write_json(out / "fit.json", doc)
    best = sel.best
    print(
        f"chosen {sel.chosen}-parameter {args.function} ({args.method}, alpha={args.alpha}): "
        f"chi2/ndf = {best.chi2:.1f}/{best.ndf} (p = {best.pvalue:.3f}); wrote {out}/fit.json"
    )
    return 0
