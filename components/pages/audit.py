"""Audit trail review (unblinded statistician only): logins, patient views, exports, imports,
unmask events with their reason. Downloadable as CSV.

The page verifies the hash chain (:func:`core.audit.check_audit_chain`) and says "chain
verified: N rows" or shows a red alert naming the first broken row. Times are shown in UTC
with the offset (ISO 8601 ``Z``)."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, dcc, html

from components.format import records, safe_csv_frame
from components.server.audit import audit
from components.server.auth import Role, current_principal
from components.server.context import engine
from core.audit import ChainReport, check_audit_chain, utc_iso
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
            chain_status(check_audit_chain(engine())),
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
                rowData=records(shown_trail(trail)),
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


def chain_status(report: ChainReport) -> dbc.Alert:
    """Green "chain verified: N rows" or a red alert naming the first broken row."""
    if report.ok:
        return dbc.Alert(
            f"Hash chain verified: {report.n_rows} rows.",
            color="success",
            id="audit-chain-status",
            className="py-1 small",
        )
    first = report.problems[0]
    more = len(report.problems) - 1
    return dbc.Alert(
        [
            html.Strong(
                f"Audit trail tampered with: first broken row {first.row_id}. "
                if first.row_id is not None
                else "Audit trail tampered with. "
            ),
            str(first),
            f" ({more} more problem(s); run python -m core.io audit-verify)" if more else "",
        ],
        color="danger",
        id="audit-chain-status",
        className="py-1 small",
    )


def shown_trail(trail: pd.DataFrame) -> pd.DataFrame:
    """The trail as displayed and downloaded: time in UTC with its zone (ISO 8601 ``Z``)."""
    out = trail.copy()
    out["time"] = [utc_iso(t.to_pydatetime()) for t in out["time"]]
    return out


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
    frame = safe_csv_frame(shown_trail(load_audit(engine())))
    return dcc.send_data_frame(frame.to_csv, "audit-trail.csv", index=False)


def register() -> None:
    dash.register_page(
        __name__, path="/audit", name="Audit", title="ImmunoSep: audit trail", layout=layout
    )
