"""The hunt's result: per window and efficiency, the best window and the global significance.

:class:`HuntResult` is frozen; ``to_dict()`` is its part of ``results.json`` (plain JSON
types) and :meth:`HuntResult.from_dict` reads it back (the plots are drawn from either).

Example:
    >>> r = HuntResult.from_dict(example_dict())
    >>> HuntResult.from_dict(r.to_dict()) == r
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcoffea.hunt.estimate import BackgroundEstimate, from_json_float, json_float
from adcoffea.hunt.lee import GlobalSignificance
from adcoffea.hunt.windows import Window


@dataclass(frozen=True)
class EfficiencyResult:
    """One background efficiency of one window.

    Attributes:
        efficiency: target background efficiency (outside the SR, in the fit range).
        threshold: the score threshold (an event passes when its score is above it; events
            tied with it are split by a seeded random order, ``selection.untie``).
        n_selected: selected events in the fit range.
        estimate: background in the SR from the sideband fit (B, sigma_B, fit quality).
        local_z: one-sided local significance of the SR count over B +- sigma_B.
        counts: selected events per fit-range bin.
    """

    efficiency: float
    threshold: float
    n_selected: int
    estimate: BackgroundEstimate
    local_z: float
    counts: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "efficiency": self.efficiency,
            "threshold": self.threshold,
            "n_selected": self.n_selected,
            "local_z": self.local_z,
            **self.estimate.to_dict(),
            "counts": list(self.counts),
            "expected": [float(v) for v in self.estimate.expected],
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> EfficiencyResult:
        est = BackgroundEstimate(
            n_obs=float(d["n_obs"]),
            background=from_json_float(d["background"]),
            sigma_stat=from_json_float(d["sigma_stat"]),
            sigma_function=from_json_float(d["sigma_function"]),
            n_params=int(d["n_params"]),
            alternative=d["alternative_n_params"],
            chi2=from_json_float(d["chi2"]),
            ndf=int(d["ndf"]),
            pvalue=from_json_float(d["fit_pvalue"]),
            converged=bool(d["converged"]),
            parameters=tuple(float(v) for v in d["parameters"]),
            expected=np.asarray(d["expected"], dtype=float),
            note=str(d["note"]),
        )
        return EfficiencyResult(
            efficiency=float(d["efficiency"]),
            threshold=float(d["threshold"]),
            n_selected=int(d["n_selected"]),
            estimate=est,
            local_z=float(d["local_z"]),
            counts=tuple(float(v) for v in d["counts"]),
        )


@dataclass(frozen=True)
class WindowResult:
    """One window: its classifier's held-out AUC (SR vs sidebands) and its efficiencies."""

    window: Window
    auc: float
    n_sr: int
    n_sb: int
    efficiencies: tuple[EfficiencyResult, ...]
    #: CATHODE: the sampled-vs-real sideband AUC of the window's background model
    closure_auc: float | None = None

    @property
    def max_z(self) -> float:
        return max((e.local_z for e in self.efficiencies), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.window.to_dict(),
            "auc": json_float(self.auc),
            "n_sr": self.n_sr,
            "n_sb": self.n_sb,
            "max_local_z": self.max_z,
            "efficiencies": [e.to_dict() for e in self.efficiencies],
            **({} if self.closure_auc is None else {"closure_auc": json_float(self.closure_auc)}),
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> WindowResult:
        w = Window(
            int(d["index"]),
            *(float(v) for v in d["signal_region"]),
            *(float(v) for v in d["sidebands"]),
            *(float(v) for v in d["fit_range"]),
        )
        return WindowResult(
            window=w,
            auc=from_json_float(d["auc"]),
            n_sr=int(d["n_sr"]),
            n_sb=int(d["n_sb"]),
            efficiencies=tuple(EfficiencyResult.from_dict(e) for e in d["efficiencies"]),
            closure_auc=None if d.get("closure_auc") is None else from_json_float(d["closure_auc"]),
        )


def _eq_float(a: float, b: float) -> bool:
    return (a == b) or (np.isnan(a) and np.isnan(b))


@dataclass(frozen=True, eq=False)
class HuntResult:
    """Outcome of the sliding-window hunt (:func:`adcoffea.hunt.search.run_hunt`).

    Attributes:
        method: ``cwola`` (or ``cathode``).
        observable: name of the mass observable (``mjj``).
        edges: bin edges of the fit range (GeV); the per-efficiency ``counts``/``expected``
            are per bin of these.
        windows: per window: SR, sidebands, AUC, per efficiency: threshold, N_obs, B,
            sigma_B, the fit-function part of it, the fit quality and the local Z.
        best_window, best_efficiency: indices of the largest local Z.
        global_significance: the look-elsewhere-corrected p and Z (None without toys).
        settings: the configuration used (windows rule, classifier, efficiencies, fit).
        n_events: events in the fit range.
        timings_s: wall time per step.
    """

    method: str
    observable: str
    edges: tuple[float, ...]
    windows: tuple[WindowResult, ...]
    best_window: int
    best_efficiency: int
    global_significance: GlobalSignificance | None
    settings: dict[str, Any] = field(default_factory=dict)
    n_events: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def best(self) -> WindowResult:
        return self.windows[self.best_window]

    @property
    def best_local_z(self) -> float:
        return self.best.efficiencies[self.best_efficiency].local_z

    @property
    def global_z(self) -> float | None:
        g = self.global_significance
        return None if g is None else g.z

    def local_z_table(self) -> np.ndarray:
        """Local Z, shape (n_windows, n_efficiencies)."""
        return np.array([[e.local_z for e in w.efficiencies] for w in self.windows])

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        eff = best.efficiencies[self.best_efficiency]
        g = self.global_significance
        return {
            "method": self.method,
            "observable": self.observable,
            "edges": list(self.edges),
            "n_events": self.n_events,
            "n_windows": len(self.windows),
            "best": {
                "window": self.best_window,
                "efficiency_index": self.best_efficiency,
                "signal_region": [best.window.sr_lo, best.window.sr_hi],
                "efficiency": eff.efficiency,
                "local_z": eff.local_z,
                "n_obs": eff.estimate.n_obs,
                "background": json_float(eff.estimate.background),
                "sigma_background": json_float(eff.estimate.sigma),
                "fit_pvalue": json_float(eff.estimate.pvalue),
                "background_model_adequate": eff.estimate.adequate,
            },
            "global": None if g is None else g.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "settings": self.settings,
            "timings_s": self.timings_s,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HuntResult:
        g = d.get("global")
        glob = None
        if g is not None:
            glob = GlobalSignificance(
                t_obs=float(g["t_obs"]),
                n_toys=int(g["n_toys"]),
                n_above=int(g["n_above"]),
                p=float(g["p"]),
                p_error=float(g["p_error"]),
                p_is_bound=bool(g["p_is_bound"]),
                z=float(g["z"]),
                seed=int(g["seed"]),
                method=str(g["method"]),
                t_quantiles={str(k): float(v) for k, v in g.get("t_quantiles", {}).items()},
            )
        return HuntResult(
            method=str(d["method"]),
            observable=str(d["observable"]),
            edges=tuple(float(v) for v in d["edges"]),
            windows=tuple(WindowResult.from_dict(w) for w in d["windows"]),
            best_window=int(d["best"]["window"]),
            best_efficiency=int(d["best"]["efficiency_index"]),
            global_significance=glob,
            settings=dict(d.get("settings", {})),
            n_events=int(d.get("n_events", 0)),
            timings_s=dict(d.get("timings_s", {})),
        )

    def __eq__(self, other: object) -> bool:
        # field-wise, with NaN == NaN and arrays compared by value (the dict form is the truth)
        if not isinstance(other, HuntResult):
            return NotImplemented
        import json

        def canon(r: HuntResult) -> str:
            return json.dumps(r.to_dict(), sort_keys=True, default=str)

        return canon(self) == canon(other)

    __hash__ = None  # type: ignore[assignment]


def example_dict() -> dict[str, Any]:
    """A small, valid ``HuntResult.to_dict()`` (for documentation and tests)."""
    edges = [3000.0, 3100.0, 3200.0, 3300.0, 3400.0, 3500.0, 3600.0]
    eff = {
        "efficiency": 0.1, "threshold": 0.55, "n_selected": 60, "local_z": 1.5, "n_obs": 18.0,
        "background": 12.0, "sigma_background": 2.0, "sigma_stat": 1.8, "sigma_function": 0.87,
        "n_params": 3, "alternative_n_params": 4, "chi2": 1.0, "ndf": 1, "fit_pvalue": 0.3,
        "converged": True, "parameters": [60.0, 10.0, 5.0], "note": "",
        "background_model_adequate": True,
        "counts": [12.0, 10.0, 9.0, 9.0, 7.0, 6.0],
        "expected": [12.0, 10.5, 7.0, 5.0, 7.4, 6.1],
    }  # fmt: skip
    window = {
        "index": 0, "centre": 3249.6, "signal_region": [3200.0, 3400.0],
        "sidebands": [3000.0, 3600.0], "fit_range": [3000.0, 3600.0], "auc": 0.51,
        "n_sr": 100, "n_sb": 200, "max_local_z": 1.5, "efficiencies": [eff],
    }  # fmt: skip
    return {
        "method": "cwola", "observable": "mjj", "edges": edges, "n_events": 400,
        "n_windows": 1,
        "best": {"window": 0, "efficiency_index": 0, "signal_region": [3200.0, 3400.0],
                 "efficiency": 0.1, "local_z": 1.5, "n_obs": 18.0, "background": 12.0,
                 "sigma_background": 2.0, "fit_pvalue": 0.3, "background_model_adequate": True},
        "global": {"t_obs": 1.5, "n_toys": 10, "n_above": 4, "p": 0.4, "p_error": 0.15,
                   "p_is_bound": False, "z": 0.25, "seed": 0, "method": "toys"},
        "windows": [window], "settings": {}, "timings_s": {},
    }  # fmt: skip
