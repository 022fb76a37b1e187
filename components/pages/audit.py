"""Audit trail review (unblinded statistician only): logins, patient views, exports, imports,
unmask events with their reason. Downloadable as CSV."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from components.format import records, safe_csv_frame
from components.server.audit import audit
from components.server.auth import Role, current_principal
from components.server.context import engine
from core.repository import load_audit

AUDIT_ROLES = (Role.STATISTICIAN,)


def layout(**_: str) -> html.Div:
    principal = current_principal()
    if principal.role not in AUDIT_ROLES:
        return html.Div(
            [
                html.H1("Audit trail", className="h4"),
                dbc.Alert(
                    "Only the unblinded statistician may review the audit trail.", color="secondary"
                ),
            ]
        )
    trail = load_audit(engine()).sort_values("id", ascending=False)
    return html.Div(
        [
            html.H1("Audit trail", className="h4"),
            dbc.Button(
                "Download CSV",
                id="audit-download-btn",
                size="sm",
                color="secondary",
                outline=True,
                className="mb-2",
            ),
            dcc.Download(id="audit-download"),
            dag.AgGrid(
                id="audit-grid",
                rowData=records(trail),
                columnDefs=[{"field": c} for c in trail.columns],
                defaultColDef={
                    "sortable": True,
                    "filter": True,
                    "resizable": True,
                    "flex": 1,
                    "minWidth": 100,
                },
                dashGridOptions={"pagination": True, "paginationPageSize": 50},
                style={"height": "calc(100vh - 240px)"},
            ),
        ]
    )


@callback(
    Output("audit-download", "data"),
    Input("audit-download-btn", "n_clicks"),
    prevent_initial_call=True,
)
def download(_n: int):
    principal = current_principal()
    if principal.role not in AUDIT_ROLES:
        return dash.no_update
    audit("export", "audit_log")
    frame = safe_csv_frame(load_audit(engine()))
    return dcc.send_data_frame(frame.to_csv, "audit-trail.csv", index=False)


def register() -> None:
    dash.register_page(
        __name__, path="/audit", name="Audit", title="ImmunoSep: audit trail", layout=layout
    )
