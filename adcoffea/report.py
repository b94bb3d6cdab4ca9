"""``report.md`` and ``report.html``: a search's results, readable without Python.

Both are rendered from ``results.json`` (the same numbers every plot and table is drawn
from); the HTML embeds the same plots by relative path.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from adcoffea.execution import atomic_write_text


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


def build_report(out_dir: Path, results: dict[str, Any]) -> _Doc:
    d = _Doc()
    name = results.get("name", "analysis")
    d.h(1, f"adcoffea report: {name}")
    d.p(f"Analysis type: {results.get('analysis')}. Every number below is in results.json.")

    # headline: the most significant bump over the regions
    regions = results.get("regions", {})
    rows = []
    for region, r in regions.items():
        bh = r.get("bumphunter")
        fit = (r.get("fit") or {}).get("best")
        bump = "–"
        if bh and bh.get("bump_lo") is not None:
            bump = " × ".join(
                f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(bh["bump_lo"], bh["bump_hi"], strict=True)
            )
        gz = bh.get("global_z") if bh else None
        gzs = ("≥ " if bh and bh.get("global_p_is_bound") else "") + _z(gz) if bh else "–"
        fit_cell = "–"
        if fit:
            fit_cell = f"{fit['n_params']} par, χ²/ndf = {fit['chi2']:.1f}/{fit['ndf']}"
            excl = (r.get("fit") or {}).get("excluded_window")
            if excl:
                why = "bump refit" if r.get("refit_excluding") else "signal region"
                fit_cell += f", excl. [{excl[0]:.0f}, {excl[1]:.0f}] ({why})"
        elif r.get("background_method"):
            fit_cell = r["background_method"]
        rows.append(
            [
                region,
                r.get("events"),
                fit_cell,
                r.get("background_method", "–") if bh else "–",
                bump,
                bh.get("local_z") if bh else None,
                gzs,
                bh.get("global_p") if bh else None,
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
            "with global p < 0.01 (refit and rescan; the first scan is in results.json)."
        )

    ev = results.get("evaluation") or {}
    per_model = ev.get("models") or {}
    if per_model:
        d.h(2, "Anomaly scores on synthetic truth")
        d.p(
            f"{ev.get('n_events', 0):,} selected data events, {ev.get('n_signal', 0):,} of them "
            "injected signal. SIC = TPR/sqrt(FPR); sculpting: Jensen-Shannon divergence of "
            "the background observable shape after a cut at the given background "
            "efficiency against before it (js_random: the same for a random selection of "
            "the same size, the statistical floor)."
        )
        rows = []
        for label, m in per_model.items():
            roc = m.get("roc") or {}
            sc = m.get("sculpting") or {}
            js = ", ".join(
                f"{e:g}: {j:.2g} ({r:.2g})"
                for e, j, r in zip(
                    sc.get("efficiencies", []),
                    sc.get("js", []),
                    sc.get("js_random", []),
                    strict=False,
                )
            )
            rows.append([label, m.get("method"), roc.get("auc"), roc.get("max_sic"), js or "–"])
        d.table(["model", "method", "AUC", "max SIC", "JS divergence at eff. (random)"], rows)

    lim = results.get("limits")
    if lim:
        d.h(2, f"Limits ({int(100 * lim.get('cl', 0.95))}% CL, CLs, region {lim.get('region')})")
        d.p(f"Background: {lim.get('background', '')}.")
        trows = [
            [
                s,
                t.get("observed", "failed (see results.json)"),
                t.get("expected_median"),
                t.get("signal_efficiency"),
                t.get("observed_events_before_cut"),
            ]
            for s, t in lim.get("templates", {}).items()
        ]
        if trows:
            d.table(
                [
                    "signal template",
                    "observed μ",
                    "expected μ",
                    "region efficiency",
                    "observed limit (events before cut)",
                ],
                trows,
            )
        scan = lim.get("mass_scan") or []
        if scan:
            has_x = "mass_x" in scan[0]
            head = (
                ["m [GeV]"]
                + (["m_X [GeV]"] if has_x else [])
                + ["observed (events)", "expected (events)"]
            )
            d.table(
                head,
                [
                    [
                        p["mass"],
                        *([p.get("mass_x")] if has_x else []),
                        p.get("observed_events", "failed (see results.json)"),
                        p["expected_events"][2] if "expected_events" in p else "–",
                    ]
                    for p in scan
                ],
            )

    cut = results.get("cutflow") or {}
    if cut:
        d.h(2, "Cutflow")
        names = list(next(iter(cut.values())).keys())
        d.table(["dataset", *names], [[ds, *[c.get(n) for n in names]] for ds, c in cut.items()])
    rep = results.get("run_report") or {}
    if rep:
        d.p(
            f"Processed {rep.get('events_processed'):,} of {rep.get('events_total'):,} events "
            f"({rep.get('events_failed'):,} failed) with the {rep.get('executor')} executor, "
            f"chunks of {rep.get('chunksize'):,}."
        )
        if rep.get("failures"):
            d.table(
                ["failed file", "entries", "reason"],
                [
                    [f["path"], f"{f.get('entry_start')}–{f.get('entry_stop')}", f["reason"]]
                    for f in rep["failures"]
                ],
            )
    tim = results.get("timings_s") or {}
    if tim:
        d.table(["stage", *tim.keys()], [["time [s]", *tim.values()]])

    plots = sorted((out_dir / "plots").glob("*.png")) if (out_dir / "plots").is_dir() else []
    if plots:
        d.h(2, "Figures")
        for p in plots:
            d.img(f"plots/{p.name}", p.stem.replace("_", " "))
    return d


def write_report(out_dir: str | Path, results: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir``."""
    out_dir = Path(out_dir)
    doc = build_report(out_dir, results)
    md, page = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md, doc.markdown())
    atomic_write_text(page, doc.html(f"adcoffea report: {results.get('name', '')}"))
    return md, page
