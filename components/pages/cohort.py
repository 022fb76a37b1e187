"""Cohort panels for trial monitors and the DSMB (issue 7)."""

import dash
from dash import html


def layout(**_query: str) -> html.Div:
    return html.Div([html.H1("Cohort", className="h4")], className="cohort-page")


def register() -> None:
    dash.register_page(
        __name__, path="/cohort", name="Cohort", title="ImmunoSep: cohort", layout=layout
    )
