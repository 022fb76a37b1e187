"""The cohort report as a Word document (python-docx): stamp, methods, tables and figures.

Pure: neutral report blocks in (titles, paragraphs, PNG figures already rendered, e.g. by
kaleido in the web layer, and tables as frames), DOCX bytes out; ``core`` never imports the
plotting stack (docs/architecture.md). :func:`methods_paragraphs` writes the methods text from
the rules in force (SOFA cut-offs, the endpoint, imputation, survival), so the document says
what the numbers were computed with. The blinding of the content is the caller's: it passes
the blocks the role may see (the same panel views as the HTML report).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from core.derive.rule_text import organ_rule_texts
from core.rules import EndpointRules, SofaRules


@dataclass(frozen=True)
class ReportBlock:
    """One part of the report: heading (``level`` 1 for a panel, 2 for a section of it), notes,
    figures (caption, PNG bytes), tables (caption, frame). The DOCX and the PDF writer
    (:mod:`core.io.pdf_report`) take the same blocks."""

    title: str
    paragraphs: tuple[str, ...] = ()
    figures: tuple[tuple[str, bytes], ...] = ()
    tables: tuple[tuple[str, pd.DataFrame], ...] = field(default_factory=tuple)
    level: int = 1

    def __post_init__(self) -> None:
        if self.level not in (1, 2):
            raise ValueError(f"report block {self.title!r}: level {self.level} is not 1 or 2")


def cell_text(value: object) -> str:
    """A table cell as text: missing values as an en dash (never an empty, normal-looking cell)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    return str(value)


def methods_paragraphs(
    rules: SofaRules = SofaRules(), endpoint: EndpointRules = EndpointRules()
) -> tuple[str, ...]:
    """The methods section from the rules in force (docs/clinical.md 1.5, docs/adam.md)."""
    organs = "; ".join(f"{o.value}: {t}" for o, t in organ_rule_texts(rules).items())
    clock = (
        "Study day: day n covers [first dose + (n-1) x 24 h, first dose + n x 24 h)."
        if rules.study_day == "rolling_24h_from_first_dose"
        else "Study day: day 1 is the calendar date of the first dose, day n that date + n - 1."
    )
    return (
        clock,
        f"Daily SOFA (Vincent 1996) from the worst value of each input per study day: {organs}.",
        (
            "Imputation: an organ without any measurement on day 1 scores 0; a later day "
            "without a score takes the last earlier score (LOCF); from the study day of death "
            f"the total scores {endpoint.death_score}."
        ),
        (
            "Primary endpoint: decrease of the total SOFA from day 1 to the mean of days 2-"
            f"{endpoint.last_day}; responder when the decrease is > {endpoint.threshold:g}; "
            f"secondary: the same to day {endpoint.day15_last_day}. Proportions compared with "
            "Fisher's exact test; risk difference with Newcombe's hybrid score interval."
        ),
        (
            "Survival to day 28 and day 90: a death on study day n has duration n days; "
            "survivors are censored at the horizon. Kaplan-Meier estimates with numbers at "
            "risk, log-rank test, Cox proportional-hazards hazard ratio (Efron ties)."
        ),
    )


def _table(doc, caption: str, frame: pd.DataFrame) -> None:
    doc.add_paragraph(caption, style="Caption")
    table = doc.add_table(rows=1, cols=len(frame.columns))
    table.style = "Table Grid"
    for cell, name in zip(table.rows[0].cells, frame.columns, strict=True):
        cell.text = str(name)
    for row in frame.itertuples(index=False, name=None):
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = cell_text(value)


def report_docx(
    blocks: Sequence[ReportBlock],
    *,
    stamp: Sequence[tuple[str, str]],
    methods: Sequence[str],
    now: datetime,
    title: str = "ImmunoSep: cohort report",
) -> bytes:
    """The DOCX document: title, stamp table (data version, filters, role, generated time),
    methods, then per block its heading, notes, figures (6.5 in wide) and tables."""
    # deferred import: python-docx (and lxml) only when a DOCX is written
    from docx import Document
    from docx.shared import Inches

    doc = Document()
    doc.core_properties.title = title
    doc.add_heading(title, level=0)
    _table(
        doc,
        "Report",
        pd.DataFrame(
            [*stamp, ("Generated", f"{now:%Y-%m-%d %H:%M:%S} UTC")], columns=["Item", "Value"]
        ),
    )
    doc.add_heading("Methods", level=1)
    for text in methods:
        doc.add_paragraph(text)
    for block in blocks:
        doc.add_heading(block.title, level=block.level)
        for text in block.paragraphs:
            doc.add_paragraph(text)
        for caption, png in block.figures:
            doc.add_picture(io.BytesIO(png), width=Inches(6.5))
            doc.add_paragraph(caption, style="Caption")
        for caption, frame in block.tables:
            _table(doc, caption, frame)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
