"""Patient page: SOFA timeline, provenance, support lanes, phenotype and endpoint (issue 6)."""

import dash
from dash import html


def layout(patient_id: str | None = None, **_query: str) -> html.Div:
    title = f"Patient {patient_id}" if patient_id else "Patient"
    return html.Div([html.H1(title, className="h4")], className="patient-page")


def register() -> None:
    dash.register_page(
        __name__,
        path="/patient",
        path_template="/patient/<patient_id>",
        name="Patient",
        title="ImmunoSep: patient",
        layout=layout,
    )
