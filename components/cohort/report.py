"""The self-contained HTML report of every cohort panel (plotly.js inlined once; nothing is
fetched when it is opened). Pure: panel views and the stamp in, HTML text out."""

from __future__ import annotations

import html as html_lib
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from components.blinding import HIDDEN, SUPPRESSED
from components.cohort.panel import PanelView

STYLE = (
    "body{font-family:system-ui,Arial,sans-serif;margin:2rem;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:0.5rem 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
    ".stamp th{background:#f3f3f3}.chip{border:1px dashed #99a;border-radius:1rem;"
    "padding:0 .5rem;background:#eef}h2{margin-top:2rem;border-bottom:1px solid #ddd}"
)


def report_html(
    views: Sequence[tuple[str, PanelView]],
    *,
    stamp: Sequence[tuple[str, str]],
    publication_ok: bool | None,
    now: datetime,
    publication_rows: pd.DataFrame | None = None,
) -> str:
    """The report: a stamp table (data version, filters, role, …), the publication check (None:
    not for this role, left out; :func:`components.blinding.may_see_publication_check`) and,
    per panel, its chips, notes, figures and tables (group headers applied). Sections computed
    under the exit policy are wrapped in ``<section class='guarded' data-guard=…>`` with their
    note (docs/blinding.md 6.5). ``publication_rows``
    (:func:`components.cohort.publication.compare_with_published` for the report's filters;
    None: left out) adds whether this dataset reproduces the published table and which rows
    differ, with the same visibility as ``publication_ok``."""
    esc = html_lib.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in stamp)
    rows += f"<tr><th>Generated</th><td>{now:%Y-%m-%d %H:%M:%S} UTC</td></tr>"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ImmunoSep cohort report</title><style>{STYLE}</style></head><body>",
        "<h1>ImmunoSep: cohort report</h1>",
        f"<table class='stamp'>{rows}</table>",
    ]
    if publication_ok is not None:
        parts.append(
            f"<p>Publication check: <b>{'reproduces' if publication_ok else 'DOES NOT reproduce'}"
            "</b> the published statistics from the printed counts (statistics code).</p>"
        )
    if publication_ok is not None and publication_rows is not None:
        differ = list(publication_rows.loc[~publication_rows["match"], "outcome"])
        verdict = (
            "<b>reproduces the published table</b> (every row matches)"
            if not differ
            else f"<b>differs from the published table</b> in {len(differ)} of "
            f"{len(publication_rows)} rows: {esc(', '.join(differ))}"
        )
        rows_table = publication_rows.assign(
            match=publication_rows["match"].map({True: "matches", False: "differs"})
        ).rename(
            columns={
                "outcome": "Published row",
                "published": "Published",
                "dataset": "This dataset",
                "match": "Result",
                "why": "Why it differs",
                "not_compared": "Not compared",
            }
        )
        parts.append(f"<p>Publication check, this dataset (filters above): {verdict}.</p>")
        parts.append(_table_html(rows_table))
    plotly_inlined = False
    for label, view in views:
        parts.append(f"<h2>{esc(label)}</h2>")
        parts += [f"<p><span class='chip'>{HIDDEN}</span> {esc(c)}</p>" for c in view.chips]
        parts += [
            f"<p><span class='chip'>{esc(SUPPRESSED)}</span> {esc(c)}</p>" for c in view.suppressed
        ]
        parts += [f"<p><small>{esc(n)}</small></p>" for n in view.notes]
        for section in view.sections:
            table = section.csv_frame()
            has_figure = section.figure is not None and section.figure_name is not None
            if table is None and not has_figure:
                continue
            if section.guard is not None:
                parts.append(f"<section class='guarded' data-guard='{esc(section.guard)}'>")
            parts.append(f"<h3>{esc(section.title)}</h3>")
            if section.note:
                parts.append(f"<p><small>{esc(section.note)}</small></p>")
            if has_figure:
                parts.append(
                    section.figure.to_html(
                        full_html=False,
                        include_plotlyjs=not plotly_inlined,
                        config={"displaylogo": False},
                    )
                )
                plotly_inlined = True
            if table is not None:
                parts.append(_table_html(table))
            if section.guard is not None:
                parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="–")
