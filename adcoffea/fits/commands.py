"""CLI sub-commands of adcoffea.fits."""

from __future__ import annotations

import argparse


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
