"""The hunt as a stage of ``adcoffea run``: processor columns in, HuntResult and figures out.

The stage reads the per-event columns the search processor collected (the data datasets only:
the signal templates never enter the hunt, and no truth label is read), runs
:func:`adcoffea.hunt.search.run_hunt` with the torch/OpenMP thread count set so that
``workers x threads <= cores`` (:mod:`adcoffea.models.threads`), and writes the figures:

* ``plots/hunt_local_z.png``: local Z versus window centre per efficiency;
* ``plots/hunt_best_window.png``: the best window's selected spectrum and background;
* ``plots/hunt_t.png``: the toys' largest local Z with the observed one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adcoffea.config import AnalysisConfig, FitConfig
from adcoffea.errors import ConfigError
from adcoffea.hunt.result import HuntResult
from adcoffea.hunt.windows import axis_edges

#: the hunt's observable per analysis, and its histogram axis in ``histograms``
OBSERVABLES = {"dijet": "mjj", "semivisible": "mt"}


def hunt_inputs(
    cfg: AnalysisConfig, columns: dict[str, Any], data_names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(observable, features, event numbers)`` of the data events from processor columns."""
    assert cfg.hunt is not None
    observable = OBSERVABLES.get(cfg.analysis)
    if observable is None:
        raise ConfigError(f"hunt: a 1D search ({sorted(OBSERVABLES)}), not {cfg.analysis!r}")
    cols = [
        {k: np.asarray(getattr(v, "value", v)) for k, v in columns[d].items()}
        for d in data_names
        if d in columns
    ]
    if not cols:
        raise ConfigError(f"hunt: no processed events in the data datasets {data_names}")
    missing = sorted({f for f in cfg.hunt.features for c in cols if f not in c})
    if missing:
        known = sorted(k for k in cols[0] if not k.startswith(("obs_", "score_")))
        raise ConfigError(f"hunt.features: {missing} not computed by the processor; known: {known}")
    if any("event" not in c for c in cols):
        raise ConfigError("hunt: the input files have no 'event' branch (needed for the k folds)")
    mass = np.concatenate([c[f"obs_{observable}"] for c in cols]).astype(np.float64)
    x = np.concatenate([np.column_stack([c[f] for f in cfg.hunt.features]) for c in cols]).astype(
        np.float64
    )
    event = np.concatenate([c["event"] for c in cols]).astype(np.uint64)
    return mass, x, event


def run_hunt_stage(
    cfg: AnalysisConfig,
    columns: dict[str, Any],
    data_names: list[str],
    *,
    out_dir: Path,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> HuntResult:
    """Run the configured hunt on the data columns; figures under ``out_dir/plots``."""
    from adcoffea.hunt.plots import plot_best_window, plot_local_z, plot_t_distribution
    from adcoffea.hunt.search import run_hunt
    from adcoffea.models.threads import available_cores, default_threads, limited_threads

    assert cfg.hunt is not None
    mass, x, event = hunt_inputs(cfg, columns, data_names)
    observable = OBSERVABLES[cfg.analysis]
    # one OpenMP/torch thread per window trained at once, as many windows as cores: threads
    # of one process never wait on each other (an OpenMP team of 2 on a machine with a busy
    # core took 70 s instead of 2 s for one window: spin-waiting barriers)
    n_jobs = max(1, available_cores() // max(workers, 1))
    with limited_threads(default_threads(n_jobs * max(workers, 1))):
        result = run_hunt(
            mass,
            x,
            event,
            edges=axis_edges(cfg, observable),
            config=cfg.hunt,
            fit=cfg.fit or FitConfig(),
            fit_range=cfg.hunt_fit_range,
            observable=observable,
            progress=progress,
            n_jobs=n_jobs,
        )
    plots = Path(out_dir) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    figures = {
        "hunt_local_z.png": plot_local_z(result, title=f"{cfg.name}: {cfg.hunt.method} hunt"),
        "hunt_best_window.png": plot_best_window(result),
    }
    if result.global_significance is not None:
        figures["hunt_t.png"] = plot_t_distribution(result)
    for name, fig in figures.items():
        fig.savefig(plots / name, dpi=110)
    return result


def _num(v: Any, spec: str) -> str:
    """``v`` formatted with ``spec``, or "–" where results.json holds null (NaN, inf, no fit)."""
    return "–" if v is None else format(v, spec)


def report_blocks(hunt: dict[str, Any]) -> list[tuple[str, Any]]:
    """Report blocks (``adcoffea.report`` format) summarising a ``HuntResult.to_dict()``.

    Every number may be null in results.json (an invalid fit, an infinite σ_B): it is then
    written as "–".
    """
    best = hunt["best"]
    g = hunt.get("global")
    b = best.get("background")
    text = (
        f"Best window: SR [{best['signal_region'][0]:g}, {best['signal_region'][1]:g}] GeV at "
        f"background efficiency {best['efficiency']:g}: N = {_num(best.get('n_obs'), '.0f')}, "
        + (f"B = {b:.1f} ± {_num(best.get('sigma_background'), '.1f')}, " if b is not None
           else "no fit, ")
        + f"local Z = {_num(best.get('local_z'), '.2f')}."
    )  # fmt: skip
    if b is not None and not best.get("background_model_adequate", True):
        text += (
            f" Background model inadequate there (sideband fit chi2 p = "
            f"{_num(best.get('fit_pvalue'), '.2g')} < 0.01): the local Z of this window is not "
            "evidence of a signal."
        )
    if g is not None:
        text += (
            f" Global significance over all windows and efficiencies ({g['n_toys']} "
            f"pseudo-experiments, {g['method']}): p {'<' if g['p_is_bound'] else '='} "
            f"{_num(g.get('p'), '.3g')}, Z {'>' if g['p_is_bound'] else '='} "
            f"{_num(g.get('z'), '.2f')}."
        )
    effs = [e["efficiency"] for e in hunt["windows"][0]["efficiencies"]] if hunt["windows"] else []
    cathode = any(w.get("closure_auc") is not None for w in hunt["windows"])
    header = ["SR [GeV]", "AUC (SR vs SB)"] + (["closure AUC"] if cathode else [])
    header += [f"local Z @ {e:g}" for e in effs]
    header += [f"N vs B ± σ_B @ {effs[-1]:g}", "fits adequate"] if effs else []
    rows = []
    for w in hunt["windows"]:
        sr = w["signal_region"]
        last = w["efficiencies"][-1]
        bl = last["background"]
        rows.append(
            [f"{sr[0]:g}-{sr[1]:g}", _num(w.get("auc"), ".3f")]
            + ([_num(w.get("closure_auc"), ".3f")] if cathode else [])
            + [_num(e.get("local_z"), ".2f") for e in w["efficiencies"]]
            + ([f"{_num(last.get('n_obs'), '.0f')} vs {bl:.1f} ± "
                f"{_num(last.get('sigma_background'), '.1f')}"] if bl is not None else ["–"])
            + ["/".join("yes" if e.get("background_model_adequate") else "NO"
                        for e in w["efficiencies"])]
        )  # fmt: skip
    return [
        ("h", (2, f"Hunt: {hunt['method']}, {hunt['n_windows']} sliding windows")),
        ("p", text),
        ("table", (header, rows)),
        ("p", "Each window trains its own k-fold classifier ("
              + ("SR vs background sampled from a density trained on the sidebands; closure "
                 "AUC: real vs sampled sideband events, 0.5 when the density is right"
                 if hunt["method"] == "cathode" else "SR vs sidebands")
              + "), selects events "
              "above score thresholds set outside the SR, fits the selected spectrum without "
              "the SR and compares the SR count with the interpolation (σ_B: fit statistics "
              "and the alternative-order envelope). The global significance comes from "
              "permutations of mjj within folds, refitted like the data."),
    ]  # fmt: skip
