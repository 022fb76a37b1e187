"""Ward board: one row per patient of the selected site (issue 6)."""

import dash
from dash import html


def layout(**_query: str) -> html.Div:
    return html.Div([html.H1("Ward board", className="h4")], className="ward-page")


def register() -> None:
    dash.register_page(__name__, path="/", name="Ward board", title="ImmunoSep: ward board", layout=layout)
