"""The cohort report as PDF (reportlab): the same blocks, stamp and methods as the DOCX.

Pure: :class:`core.io.docx_report.ReportBlock` values in (PNG figures already rendered by the
web layer), PDF bytes out; ``core`` never imports the plotting stack (docs/architecture.md).

Why reportlab (docs/reports.md): it is the long-maintained PDF library of the Python world
(BSD, releases every few months), ships wheels that need no system package (no Cairo, Pango
or GTK, unlike WeasyPrint), writes real text (searchable, readable by pypdf and screen
readers) and embeds PNGs as they are. The alternative, printing the HTML report with headless
Chromium, would start a browser process per download and lay tables out by CSS we do not
control for paper; kaleido already needs Chromium for the figures, but a PDF written
directly is smaller, deterministic and testable without a browser.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

import pandas as pd

from core.io.docx_report import ReportBlock, cell_text

#: usable page width on A4 with 2 cm margins, in points
_FRAME_WIDTH_PT = 595.27 - 2 * 56.69


def report_pdf(
    blocks: Sequence[ReportBlock],
    *,
    stamp: Sequence[tuple[str, str]],
    methods: Sequence[str],
    now: datetime,
    title: str = "ImmunoSep: cohort report",
) -> bytes:
    """The PDF document (A4): title, stamp table, methods, then per block its heading, notes,
    figures (full frame width) and tables (header row repeated on each page)."""
    # deferred import: reportlab only when a PDF is written
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    cell_style = styles["BodyText"].clone("cell", fontSize=7, leading=8.5)
    caption = styles["Italic"].clone("caption", fontSize=8)
    headings = {1: styles["Heading1"], 2: styles["Heading2"]}

    def table(frame: pd.DataFrame) -> Table:
        rows = [[Paragraph(escape(str(c)), cell_style) for c in frame.columns]]
        rows += [
            [Paragraph(escape(cell_text(v)), cell_style) for v in row]
            for row in frame.itertuples(index=False, name=None)
        ]
        width = _FRAME_WIDTH_PT / max(len(frame.columns), 1)
        t = Table(rows, colWidths=[width] * len(frame.columns), repeatRows=1, hAlign="LEFT")
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return t

    story: list = [Paragraph(escape(title), styles["Title"])]
    story.append(
        table(
            pd.DataFrame(
                [*stamp, ("Generated", f"{now:%Y-%m-%d %H:%M:%S} UTC")], columns=["Item", "Value"]
            )
        )
    )
    story.append(Paragraph("Methods", headings[1]))
    story += [Paragraph(escape(text), styles["BodyText"]) for text in methods]
    for block in blocks:
        story.append(Paragraph(escape(block.title), headings[block.level]))
        story += [Paragraph(escape(text), styles["BodyText"]) for text in block.paragraphs]
        for text, png in block.figures:
            img = Image(io.BytesIO(png))
            scale = _FRAME_WIDTH_PT / img.imageWidth
            img.drawWidth, img.drawHeight = _FRAME_WIDTH_PT, img.imageHeight * scale
            story += [img, Paragraph(escape(text), caption)]
        for text, frame in block.tables:
            story += [Paragraph(escape(text), caption), table(frame), Spacer(1, 0.3 * cm)]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=title,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
        invariant=True,
    )
    doc.build(story)
    return buf.getvalue()


__all__ = ["report_pdf"]
