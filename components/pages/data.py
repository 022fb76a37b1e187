"""Data page: upload with validation report, import log (issue 5)."""

import dash
from dash import html


def layout(**_query: str) -> html.Div:
    return html.Div([html.H1("Data", className="h4")], className="data-page")


def register() -> None:
    dash.register_page(__name__, path="/data", name="Data", title="ImmunoSep: data", layout=layout)
