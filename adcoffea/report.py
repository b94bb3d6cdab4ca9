"""``report.md`` and ``report.html``: a search's results, readable without Python.

Both are rendered from the typed :class:`~adcoffea.results.SearchResult` whose ``to_dict()``
is ``results.json`` (the same numbers every plot and table is drawn from); the HTML embeds
the same plots by relative path.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcoffea.outputs import atomic_write_text

if TYPE_CHECKING:
    from adcoffea.fits.bumphunter import BumpHunterResult
    from adcoffea.results import RegionResult, SearchResult


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        if abs(x) >= 1e4 or abs(x) < 1e-3:
            return f"{x:.{digits}g}"
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:,.{max(digits - 2, 1)}f}"
    return str(x)


class _Doc:
    """Accumulates blocks and renders them as Markdown and as HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", (header, [[_fmt(c) for c in r] for r in rows])))

    def img(self, path: str, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def markdown(self) -> str:
        out = []
        for kind, v in self.blocks:
            if kind == "h":
                out.append("#" * v[0] + " " + v[1])
            elif kind == "p":
                out.append(v)
            elif kind == "table":
                header, rows = v
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out.extend("| " + " | ".join(r) + " |" for r in rows)
            elif kind == "img":
                out.append(f"![{v[1]}]({v[0]})")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        body = []
        for kind, v in self.blocks:
            if kind == "h":
                body.append(f"<h{v[0]}>{html.escape(v[1])}</h{v[0]}>")
            elif kind == "p":
                body.append(f"<p>{html.escape(v)}</p>")
            elif kind == "table":
                header, rows = v
                th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                trs = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in rows
                )
                body.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")
            elif kind == "img":
                body.append(
                    f'<figure><img src="{html.escape(v[0])}" alt="{html.escape(v[1])}">'
                    f"<figcaption>{html.escape(v[1])}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
            "padding:3px 8px;text-align:right}th{background:#eee}img{max-width:100%}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )


def _z(p: Any) -> str:
    return _fmt(p, 3)


def _bump_cells(bh: BumpHunterResult | None) -> list[Any]:
    """The BumpHunter columns of the summary: bump window, local Z, global Z, global p."""
    if bh is None:
        return ["–", None, "–", None]
    bump = "–"
    if bh.bump_lo is not None and bh.bump_hi is not None:
        bump = " × ".join(
            f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(bh.bump_lo, bh.bump_hi, strict=True)
        )
    gzs = ("≥ " if bh.global_p_is_bound else "") + _z(bh.global_z)
    return [bump, bh.local_z, gzs, bh.global_p]


def _fit_cell(r: RegionResult) -> str:
    if r.fit is None:
        return r.background_method or r.note or "–"
    best = r.fit.best
    cell = f"{best.n_params} par, χ²/ndf = {best.chi2:.1f}/{best.ndf}"
    if r.fit.excluded_window:
        lo, hi = r.fit.excluded_window
        why = "bump refit" if r.refit is not None and r.refit.decision.accepted else "signal region"
        cell += f", excl. [{lo:.0f}, {hi:.0f}] ({why})"
    return cell


def _fit_diagnostics(d: _Doc, regions: Mapping[str, RegionResult]) -> None:
    """Chi2 p-values, pulls, fit-function uncertainty, order tests and refits per region."""
    fitted = {name: r for name, r in regions.items() if r.fit is not None}
    if not fitted:
        return
    d.h(2, "Fit diagnostics")
    rows: list[list[Any]] = []
    for name, r in fitted.items():
        assert r.fit is not None
        best = r.fit.best
        pulls = best.pulls
        st = r.bumphunter_uncertainty
        unc = r.fit_function_uncertainty
        rows.append(
            [
                name,
                f"{best.function}, {best.n_params} par",
                f"{best.chi2:.1f}/{best.ndf}",
                best.pvalue,
                "yes" if r.background_model_adequate else "NO: inadequate",
                float(abs(pulls).max()) if len(pulls) else None,
                "–" if unc is None else unc.method,
                "–"
                if st is None or st.window is None
                else f"[{st.window[0]:.0f}, {st.window[1]:.0f}]",
                None if st is None else st.window_events,
                None if st is None else st.stat_events,
                None if st is None else st.ratio_to_stat,
                "–"
                if r.bumphunter is None
                else ("yes" if st is not None and st.included else "no"),
            ]
        )
    d.table(
        [
            "region",
            "fit",
            "χ²/ndf",
            "χ² p",
            "background model adequate",
            "max abs(pull)",
            "fit-function unc.",
            "bump window [GeV]",
            "fit-function unc. in window (events)",
            "stat. √B",
            "ratio",
            "in BumpHunter",
        ],
        rows,
    )
    d.p(
        "χ² p: Pearson χ² of the chosen fit on its fitted bins (low-count bins merged); a "
        "region with p < 0.01 is flagged 'background model inadequate'. Pulls are the signed "
        "square roots of the per-bin Poisson deviance (lower panel of the fit plots). The "
        "fit-function uncertainty is the envelope of alternative function families (and the "
        "nominal family one order up) fitted to the same data, summed coherently over the "
        "most significant BumpHunter window and compared with its statistical uncertainty √B."
    )
    for name, r in fitted.items():
        if r.not_quoted_reason is not None:
            d.p(f"Region {name}: {r.not_quoted_reason}.")
        elif r.background_model_adequate is False and r.fit is not None:
            why = (
                "no BumpHunter scan"
                if r.bumphunter is None
                else f"the BumpHunter scan used the data-driven background "
                f"({r.background_method}), not this fit; limits set on this fit are suspect"
            )
            d.p(
                f"Region {name}: background fit inadequate (χ² p = {r.fit.best.pvalue:.3g}; {why})."
            )
        st = r.bumphunter_uncertainty
        if r.bumphunter is not None and st is not None:
            d.p(f"Region {name}, fit-function uncertainty in BumpHunter: {st.description}.")
        if r.refit is not None:
            ref = r.refit
            verdict = "accepted" if ref.decision.accepted else "refused"
            d.p(
                f"Region {name}: the refit excluding [{ref.window[0]:.0f}, {ref.window[1]:.0f}] "
                f"GeV was {verdict}: {ref.decision.reason}. Global Z: {_z(ref.original.global_z)} "
                f"with the original fit, {_z(ref.refit.global_z)} with the refit; quoted: the "
                f"{ref.quoted} scan."
            )
    for name, r in fitted.items():
        assert r.fit is not None
        sel = r.fit.selection
        d.h(3, f"Order test ({sel.method}), region {name}")
        d.table(
            ["n_params", "χ²/ndf", "χ² p", "statistic", "p (vs previous order)", "chosen"],
            [
                [
                    row["n_params"],
                    f"{row['chi2']:.1f}/{row['ndf']}",
                    row["chi2_pvalue"],
                    row["statistic"],
                    row["pvalue"],
                    "✓" if row["n_params"] == sel.chosen else "",
                ]
                for row in sel.table
            ],
        )


def build_report(out_dir: Path, result: SearchResult) -> _Doc:
    """The report of a search, from its typed result and the plots in ``out_dir/plots``."""
    d = _Doc()
    d.h(1, f"adcoffea report: {result.name}")
    d.p(f"Analysis type: {result.analysis}. Every number below is in results.json.")

    # headline: the most significant bump over the regions
    stats = result.statistics
    regions = stats.regions if stats is not None else {}
    rows = []
    for region, r in regions.items():
        bh = r.bumphunter
        bump, local_z, global_z, global_p = _bump_cells(bh)
        if bh is not None and not r.bumphunter_quoted:
            global_z = f"{global_z} (not quoted: background model inadequate)"
        rows.append(
            [
                region,
                r.events,
                _fit_cell(r),
                (r.background_method or "–") if bh is not None else "–",
                bump,
                local_z,
                global_z,
                global_p,
            ]
        )
    if rows:
        d.h(2, "Summary")
        d.table(
            [
                "region",
                "events",
                "background fit",
                "BumpHunter background",
                "BumpHunter bump [GeV]",
                "local Z",
                "global Z (LEE)",
                "global p",
            ],
            rows,
        )
        d.p(
            "Global significances include the look-elsewhere effect from background-only "
            "pseudo-experiments; '≥' marks a bound when no pseudo-experiment reached the "
            "observed test statistic. A fit that excludes a window interpolates the "
            "background into it: the signal region of a weakly supervised score, or a bump "
            "with global p < 0.01 (refit and rescan, kept only if the guarded-refit checks "
            "pass; both scans are in results.json). Fit-background scans include the "
            "fit-function uncertainty (see Fit diagnostics)."
        )
        for name, r in regions.items():
            bh = r.bumphunter
            toys = None if bh is None else bh.settings.get("toys")
            if bh is not None and toys is not None and bh.n_toys:
                d.p(f"Region {name}, pseudo-experiments: {bh.n_toys:,}, {toys}.")
        for name, r in regions.items():
            st = r.bumphunter_uncertainty
            if r.fit is None and r.bumphunter is not None and st is not None:
                d.p(f"Region {name}, fit-function uncertainty in BumpHunter: {st.description}.")
        _fit_diagnostics(d, regions)

    if result.hunt is not None:
        from adcoffea.hunt.stage import report_blocks

        d.blocks.extend(report_blocks(result.hunt.to_dict()))  # the hunt's own summary

    ev = result.evaluation
    if ev is not None and ev.models:
        d.h(2, "Anomaly scores on synthetic truth")
        d.p(
            f"{ev.n_events:,} selected data events, {ev.n_signal:,} of them "
            "injected signal. SIC = TPR/sqrt(FPR); sculpting: Jensen-Shannon divergence of "
            "the background observable shape after a cut at the given background "
            "efficiency against before it (js_random: the same for a random selection of "
            "the same size, the statistical floor)."
        )
        rows = []
        for label, m in ev.models.items():
            sc = m.sculpting
            js = ""
            if sc is not None:
                js = ", ".join(
                    f"{e:g}: {j:.2g} ({r:.2g})"
                    for e, j, r in zip(sc.efficiencies, sc.js, sc.js_random, strict=False)
                )
            roc = m.roc
            rows.append(
                [
                    label,
                    m.method,
                    None if roc is None else float(roc.auc),
                    None if roc is None else float(roc.max_sic),
                    js or "–",
                ]
            )
        d.table(["model", "method", "AUC", "max SIC", "JS divergence at eff. (random)"], rows)

    lim = stats.limits if stats is not None else None
    if lim is not None:
        d.h(2, f"Limits ({int(100 * lim.cl)}% CL, CLs, region {lim.region})")
        d.p(f"Background: {lim.background}.")
        if lim.fit_function_uncertainty is not None:
            d.p(f"Fit-function uncertainty: {lim.fit_function_uncertainty.description}.")
        trows: list[list[Any]] = []
        fb = lim.unit == "fb"
        for s, t in lim.templates.items():
            if t.limit is None:
                trows.append([s, "failed (see results.json)", None, None, None, None])
                continue
            unit = t.cross_section_fb if fb else float(t.reference_events or 0.0)
            stat = t.limit_stat_only
            trows.append(
                [
                    s,
                    t.limit.observed,
                    t.limit.expected_median,
                    t.limit.observed * (unit or 0.0),
                    t.limit.expected_median * (unit or 0.0),
                    None if stat is None else stat.expected_median * (unit or 0.0),
                ]
            )
        if trows:
            what = "σ × B [fb]" if fb else "events before cut"
            d.table(
                [
                    "signal template",
                    "observed μ",
                    "expected μ",
                    f"observed {what}",
                    f"expected {what}",
                    f"expected {what}, statistics only",
                ],
                trows,
            )
        for s, t in lim.templates.items():
            if t.modifiers:
                d.p(
                    f"Modifiers of {s}: "
                    + ", ".join(f"{n} ({kind})" for n, kind in t.modifiers)
                    + "."
                )
            diag = t.diagnostics
            if diag is None:
                continue
            d.p(
                f"Fit of {s} to the data: μ̂ = {diag.mu_hat:.3g} ± {diag.mu_error:.2g}; "
                "impacts on μ (post-fit ±1σ refits), largest first:"
            )
            pulls = {p.name: p for p in diag.pulls}
            d.table(
                ["nuisance parameter", "pull", "constraint", "Δμ (+1σ)", "Δμ (−1σ)"],
                [
                    [
                        i.name,
                        pulls[i.name].pull,
                        pulls[i.name].constraint,
                        i.postfit_up,
                        i.postfit_down,
                    ]
                    for i in diag.impacts[:10]
                ],
            )
            d.table(
                ["channel", "sample", "pre-fit", "±", "post-fit", "±"],
                [
                    [y.channel, y.sample, y.prefit, y.prefit_error, y.postfit, y.postfit_error]
                    for y in diag.yields
                ]
                + [[ch, "data", n, None, n, None] for ch, n in diag.data.items()],
            )
        scan = lim.mass_scan or ()
        if scan:
            carried = list(dict.fromkeys(s for p in scan if p.ok for s in p.signal_systematics))
            d.p(
                "Gaussian resonances versus mass"
                + (f", with histosys {', '.join(carried)} on the signal" if carried else "")
                + ":"
            )
            has_x = scan[0].mass_x is not None
            head = (
                ["m [GeV]"]
                + (["m_X [GeV]"] if has_x else [])
                + ["observed (events)", "expected (events)"]
                + (["observed σ × B [fb]", "expected σ × B [fb]"] if fb else [])
            )
            d.table(
                head,
                [
                    [
                        p.mass,
                        *([p.mass_x] if has_x else []),
                        p.observed_events if p.ok else "failed (see results.json)",
                        p.expected_events[2] if p.ok and p.expected_events else "–",
                        *(
                            [p.observed_fb, p.expected_fb[2] if p.expected_fb else None]
                            if fb
                            else []
                        ),
                    ]
                    for p in scan
                ],
            )

    proc = result.processing
    if proc.cutflow:
        d.h(2, "Cutflow")
        names = list(next(iter(proc.cutflow.values())).keys())
        d.table(
            ["dataset", *names],
            [[ds, *[c.get(n) for n in names]] for ds, c in proc.cutflow.items()],
        )
    rep = proc.run_report
    if rep is not None:
        d.p(
            f"Processed {rep.events_processed:,} of {rep.events_total:,} events "
            f"({rep.events_failed:,} failed) with the {rep.executor} executor, "
            f"chunks of {rep.chunksize:,}."
        )
        if rep.failures:
            d.table(
                ["failed file", "entries", "reason"],
                [[f.path, f"{f.entry_start}–{f.entry_stop}", f.reason] for f in rep.failures],
            )
    tim = {k: round(v, 2) for k, v in result.timings.items()}
    if tim:
        d.table(["stage", *tim.keys()], [["time [s]", *tim.values()]])

    plots = sorted((out_dir / "plots").glob("*.png")) if (out_dir / "plots").is_dir() else []
    if plots:
        d.h(2, "Figures")
        for p in plots:
            d.img(f"plots/{p.name}", p.stem.replace("_", " "))
    return d


def write_report(out_dir: str | Path, result: SearchResult) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir``."""
    out_dir = Path(out_dir)
    doc = build_report(out_dir, result)
    md, page = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md, doc.markdown())
    atomic_write_text(page, doc.html(f"adcoffea report: {result.name}"))
    return md, page
