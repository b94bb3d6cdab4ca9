"""``adcoffea bumphunt``: a BumpHunter scan of saved histograms, with look-elsewhere."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adcoffea bumphunt``."""
    from adcoffea.cli.options import HISTFILE_HELP

    parser.add_argument("file", help=HISTFILE_HELP)
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


def main(args: argparse.Namespace) -> int:
    """Run the scan, write bumphunter.json and plots into --out."""
    from pathlib import Path

    from adcoffea.execution.manifest import check_output
    from adcoffea.fits.bumphunter import bumphunt
    from adcoffea.outputs import load_hists, write_json
    from adcoffea.plots import save
    from adcoffea.plots.bumphunter import plot_bump_1d, plot_bump_2d, plot_t_distribution

    check_output(args.file)  # from a complete run, unchanged (when written by a run)
    hists = load_hists(args.file, names=[args.data, args.background])

    def one_or_pair(v: list[int]) -> int | tuple[int, ...]:
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
    write_json(out / "bumphunter.json", res)
    if res.ndim == 1:
        save(plot_bump_1d(res, data, bkg), out / "bump.png")
    else:
        save(plot_bump_2d(res, data, bkg), out / "bump2d.png")
    save(plot_t_distribution(res), out / "t_distribution.png")
    z = f"> {res.global_z:.2f}" if res.global_p_is_bound else f"= {res.global_z:.2f}"
    print(
        f"bump {res.bump_lo}..{res.bump_hi}, local p = {res.local_p:.3g}, "
        f"global p = {res.global_p:.3g} (Z {z}); wrote {out}/bumphunter.json"
    )
    return 0
