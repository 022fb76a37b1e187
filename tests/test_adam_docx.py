"""The cohort report as DOCX (core.io.docx_report): a real plotly figure rendered by kaleido
(Debian's Chromium), a real statistics table, read back with python-docx."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
import pytest

docx = pytest.importorskip("docx")

from core.io.docx_report import ReportBlock, methods_paragraphs, report_docx
from core.rules import EndpointRules, SofaRules
from core.stats import compare_proportions, kaplan_meier

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _km_png() -> tuple[bytes, dict]:
    pytest.importorskip("kaleido")
    import plotly.graph_objects as go

    durations = [3, 5, 5, 8, 12, 28, 28, 28, 2, 4, 9, 28, 28, 28, 28, 28]
    events = [True, True, False, True, True, False, False, False, True, True, True] + [False] * 5
    groups = ["A"] * 8 + ["B"] * 8
    km = kaplan_meier(durations, events, groups, horizon=28, at_risk_times=(0, 14, 28))
    fig = go.Figure()
    for label, res in km.items():
        fig.add_scatter(
            x=res.curve["time_days"], y=res.curve["survival"], line_shape="hv", name=str(label)
        )
    # kaleido 1.x renders with Debian's Chromium (docs/environment.md "Figures to files")
    return fig.to_image(format="png", width=800, height=450), km


def test_docx001_report_has_stamp_methods_tables_and_figures() -> None:
    png, km = _km_png()
    assert png.startswith(PNG_MAGIC)
    m = compare_proportions(25, 131, 23, 145)
    table = pd.DataFrame(
        {
            "Outcome": ["Responders day 9"],
            "g0": ["25/131"],
            "g1": ["23/145"],
            "Fisher P": [f"{m.p_value:.3f}"],
        }
    )
    at_risk = pd.DataFrame({lab: r.at_risk["n_at_risk"] for lab, r in km.items()}).astype(str)
    blocks = [
        ReportBlock("Primary endpoint", ("Pooled and by group.",), tables=(("Responders", table),)),
        ReportBlock(
            "Survival",
            figures=(("Survival to day 28", png),),
            tables=(("Numbers at risk", at_risk),),
        ),
    ]
    data = report_docx(
        blocks,
        stamp=[("Data version", "3-abc"), ("Role", "statistician (unblinded)")],
        methods=methods_paragraphs(),
        now=datetime(2026, 12, 7, 4, 0, 0),
    )
    doc = docx.Document(io.BytesIO(data))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert headings == ["ImmunoSep: cohort report", "Methods", "Primary endpoint", "Survival"]
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "platelets (10^3/uL): < 150 -> 1" in text
    assert "decrease is > 1.4" in text
    assert "Survival to day 28" in text
    stamp, responders, risk = doc.tables
    assert [c.text for c in stamp.rows[1].cells] == ["Data version", "3-abc"]
    assert stamp.rows[-1].cells[1].text == "2026-12-07 04:00:00 UTC"
    assert [c.text for c in responders.rows[1].cells] == [
        "Responders day 9",
        "25/131",
        "23/145",
        f"{m.p_value:.3f}",
    ]
    assert [c.text for c in risk.rows[0].cells] == list(at_risk.columns)
    assert [r.cells[0].text for r in risk.rows[1:]] == at_risk.iloc[:, 0].tolist()
    assert len(doc.inline_shapes) == 1
    images = [p for p in doc.part.package.parts if p.content_type == "image/png"]
    assert [i.blob for i in images] == [png]


def test_docx002_methods_follow_the_rules_in_force() -> None:
    default = methods_paragraphs()
    assert default[0].startswith("Study day: day n covers [first dose + (n-1) x 24 h")
    other = methods_paragraphs(
        SofaRules(study_day="calendar_date"), EndpointRules(threshold=2.0, death_score=20)
    )
    assert other[0].startswith("Study day: day 1 is the calendar date")
    assert "decrease is > 2;" in other[3]
    assert "the total scores 20" in other[2]
