"""The 404 page (Dash Pages uses the module named ``not_found_404``)."""

import dash
from dash import html


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("404: page not found", className="h3"),
            html.P(
                "There is no page at this address. Use the menu above, or go to the ward board."
            ),
            html.A("Ward board", href="/", className="btn btn-primary"),
        ],
        className="not-found",
    )


def register() -> None:
    dash.register_page(
        "not_found_404", path="/404", name="Not found", title="Not found", layout=layout
    )
