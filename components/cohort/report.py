"""The cohort report of every panel: HTML, and the neutral blocks of the DOCX / PDF writers.

Pure: panel views, the stamp and the figures' PNGs (rendered by the caller with kaleido) in,
HTML text or :class:`core.io.docx_report.ReportBlock` values out. The HTML is self-contained
(nothing is fetched when it is opened): by default figures are static PNG images (a few
hundred kB); ``images=None`` asks for interactive figures, with plotly.js (about 5 MB)
inlined once. Every format carries the same content for a role: the same sections, the same
"hidden" and "suppressed" chips (as text in DOCX / PDF) and the same guard notes
(docs/reports.md, docs/blinding.md 6.5).
"""

from __future__ import annotations

import base64
import html as html_lib
from collections.abc import Mapping, Sequence
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from components.blinding import GUARDS, HIDDEN, SUPPRESSED
from components.cohort.panel import PanelView, Section
from components.cohort.publication import PublicationCheck
from core.io.docx_report import ReportBlock

#: a figure of the report: (panel index, section index)
FigureKey = tuple[int, int]

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
    publication: PublicationCheck | None,
    now: datetime,
    images: Mapping[FigureKey, bytes] | None = None,
) -> str:
    """The report: a stamp table (data version, filters, role, …), the publication check (None:
    not for this role, left out; decided by
    :func:`components.cohort.publication.publication_for`) and, per panel, its chips, notes,
    figures and tables (group headers applied). Sections computed under the exit policy are
    wrapped in ``<section class='guarded' data-guard=…>`` with their note (docs/blinding.md
    6.5).

    ``images`` holds the PNG of every figure of :func:`report_figures` (shown as ``<img>``);
    ``None`` embeds the interactive figures and plotly.js once. The publication check prints
    whether the statistics code reproduces the printed values and whether this dataset (the
    report's filters) reproduces the published table, with the table of its rows."""
    esc = html_lib.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in stamp)
    rows += f"<tr><th>Generated</th><td>{now:%Y-%m-%d %H:%M:%S} UTC</td></tr>"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ImmunoSep cohort report</title><style>{STYLE}</style></head><body>",
        "<h1>ImmunoSep: cohort report</h1>",
        f"<table class='stamp'>{rows}</table>",
    ]
    if publication is not None:
        parts.append(
            f"<p>Publication check: <b>{code_words(publication)}</b> the published statistics "
            "from the printed counts (statistics code).</p>"
        )
        bold, detail = publication.verdict_parts()
        verdict = f"<b>{esc(bold)}</b> {esc(detail)}"
        parts.append(f"<p>Publication check, this dataset (filters above): {verdict}.</p>")
        parts.append(_table_html(publication.rows_table()))
    plotly_inlined = False
    for i, (label, view) in enumerate(views):
        parts.append(f"<h2>{esc(label)}</h2>")
        parts += [f"<p><span class='chip'>{HIDDEN}</span> {esc(c)}</p>" for c in view.chips]
        parts += [
            f"<p><span class='chip'>{esc(SUPPRESSED)}</span> {esc(c)}</p>" for c in view.suppressed
        ]
        parts += [f"<p><small>{esc(n)}</small></p>" for n in view.notes]
        for j, section in enumerate(view.sections):
            table = section.csv_frame()
            has_figure = _has_figure(section)
            if table is None and not has_figure:
                continue
            if section.guard is not None:
                parts.append(f"<section class='guarded' data-guard='{esc(section.guard)}'>")
            parts.append(f"<h3>{esc(section.title)}</h3>")
            if section.guard is not None:
                parts.append(f"<p><small>Guarded: {esc(GUARDS[section.guard])}</small></p>")
            if section.note:
                parts.append(f"<p><small>{esc(section.note)}</small></p>")
            if has_figure and images is not None:
                data = base64.b64encode(images[(i, j)]).decode("ascii")
                parts.append(
                    f"<img alt='{esc(section.title)}' style='max-width:100%' "
                    f"src='data:image/png;base64,{data}'>"
                )
            elif has_figure:
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


def _has_figure(section: Section) -> bool:
    return section.figure is not None and section.figure_name is not None


def report_figures(views: Sequence[tuple[str, PanelView]]) -> dict[FigureKey, go.Figure]:
    """Every figure the report shows, by (panel index, section index): what the caller
    renders to PNG (once, for any format) and passes back as ``images``."""
    return {
        (i, j): s.figure
        for i, (_label, view) in enumerate(views)
        for j, s in enumerate(view.sections)
        if _has_figure(s)
    }


def chip_paragraphs(view: PanelView) -> tuple[str, ...]:
    """The panel's chips and notes as text, in the HTML report's order and words."""
    return (
        *(f"[{HIDDEN}] {c}" for c in view.chips),
        *(f"[{SUPPRESSED}] {c}" for c in view.suppressed),
        *view.notes,
    )


def code_words(publication: PublicationCheck) -> str:
    """Does the statistics code reproduce the printed values (the report's words)?"""
    return "reproduces" if publication.code_ok else "DOES NOT reproduce"


#: the caption of the dataset-vs-published table in the DOCX / PDF
PUBLICATION_TABLE = "This dataset against the published table"


def publication_block(publication: PublicationCheck) -> ReportBlock:
    """The publication check as a DOCX / PDF block: the HTML report's two lines and its
    dataset-vs-published table."""
    return ReportBlock(
        "Publication check",
        (
            (
                f"Statistics code: {code_words(publication)} the published statistics from "
                "the printed counts."
            ),
            f"This dataset (filters above): {publication.verdict()}.",
        ),
        tables=((PUBLICATION_TABLE, publication.rows_table()),),
    )


def report_blocks(
    views: Sequence[tuple[str, PanelView]],
    images: Mapping[FigureKey, bytes],
    publication: PublicationCheck | None = None,
) -> list[ReportBlock]:
    """The DOCX / PDF blocks of the report: the publication check first when this role may see
    it (``publication``, None: left out), then per panel a level-1 block (its chips and
    notes), then per section shown in the HTML report a level-2 block with its guard mark and
    note, its figure (PNG from ``images``) and its table (group headers applied, as in the
    CSV)."""
    blocks: list[ReportBlock] = [] if publication is None else [publication_block(publication)]
    for i, (label, view) in enumerate(views):
        blocks.append(ReportBlock(label, chip_paragraphs(view)))
        for j, section in enumerate(view.sections):
            table = section.csv_frame()
            has_figure = _has_figure(section)
            if table is None and not has_figure:
                continue
            paragraphs = []
            if section.guard is not None:
                paragraphs.append(f"Guarded: {GUARDS[section.guard]}")
            if section.note:
                paragraphs.append(section.note)
            blocks.append(
                ReportBlock(
                    section.title,
                    tuple(paragraphs),
                    figures=((section.title, images[(i, j)]),) if has_figure else (),
                    tables=((section.title, table),) if table is not None else (),
                    level=2,
                )
            )
    return blocks
