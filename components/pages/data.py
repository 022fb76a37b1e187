"""Data page: upload with a size limit, the validation report as a table, the import log.

Uploads are validated completely before anything is written (core.io: all problems of a file
at once, with file, row, column, value and what was expected); an import is one transaction.
Only the unblinded statistician (data manager) and the demo role may import.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from components import ids, warmup
from components.format import records
from components.server.audit import audit
from components.server.auth import Role, current_principal
from components.server.context import dataset_info, engine, settings
from core.exceptions import DataValidationError
from core.io import import_tables, read_files
from core.repository import load_import_log

ALLOWED_SUFFIXES = (".csv", ".parquet")
IMPORT_ROLES = (Role.STATISTICIAN, Role.DEMO)


def import_log_rows() -> list[dict[str, Any]]:
    log = load_import_log(engine())
    return records(log.sort_values("id", ascending=False)) if len(log) else []


def layout(**_: str) -> html.Div:
    principal = current_principal()
    may_import = principal.role in IMPORT_ROLES
    info = dataset_info()
    log_rows = import_log_rows()
    return html.Div(
        [
            html.H1("Data", className="h4"),
            html.P(
                f"Dataset version {info.version}: {info.n_patients} patients"
                + (" (synthetic demo data)." if info.synthetic else "."),
                className="small",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div("Import files", className="card-title-sm mb-2"),
                        html.P(
                            "CSV or Parquet files in the long formats (patients.csv, observations.csv, "
                            "infusions.csv, episodes.csv, biomarkers.csv, doses.csv, randomisation.csv, "
                            "adverse_events.csv, disposition.csv) or ADaM ADSL/ADAE/ADLB. The table is taken "
                            f"from the file name. At most {settings().upload_max_mb} MB per file. Nothing is "
                            "written unless every file is valid.",
                            className="small",
                        ),
                        dcc.Upload(
                            id=ids.DATA_UPLOAD,
                            children=html.Div(["Drop files here or ", html.A("choose files")]),
                            multiple=True,
                            max_size=settings().upload_max_bytes,
                            accept=",".join(ALLOWED_SUFFIXES),
                            disabled=not may_import,
                            className="border border-2 border-secondary-subtle rounded p-4 text-center bg-white",
                        )
                        if may_import
                        else dbc.Alert(
                            "Your role may not import data.", color="secondary", className="mb-0"
                        ),
                        html.Div(id=ids.DATA_REPORT, className="mt-3"),
                    ]
                ),
                className="mb-3",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div("Import log", className="card-title-sm mb-2"),
                        dag.AgGrid(
                            id=ids.DATA_LOG,
                            rowData=log_rows,
                            columnDefs=[
                                {"field": c} for c in (log_rows[0].keys() if log_rows else ["id"])
                            ],
                            defaultColDef={
                                "sortable": True,
                                "resizable": True,
                                "flex": 1,
                                "minWidth": 110,
                            },
                            dashGridOptions={"domLayout": "autoHeight"},
                            style={"height": None},
                        ),
                    ]
                )
            ),
        ],
        className="data-page",
    )


def problem_table(problems: pd.DataFrame) -> html.Div:
    return html.Div(
        [
            dbc.Alert(f"{len(problems)} problem(s) found; nothing was imported.", color="danger"),
            dag.AgGrid(
                id="data-problems",
                rowData=records(problems),
                columnDefs=[{"field": c} for c in problems.columns],
                defaultColDef={
                    "sortable": True,
                    "filter": True,
                    "resizable": True,
                    "flex": 1,
                    "minWidth": 100,
                },
                style={"height": "360px"},
            ),
        ]
    )


@callback(
    Output(ids.DATA_REPORT, "children"),
    Output(ids.DATA_LOG, "rowData"),
    Input(ids.DATA_UPLOAD, "contents"),
    State(ids.DATA_UPLOAD, "filename"),
    prevent_initial_call=True,
)
def upload(contents: list[str] | None, filenames: list[str] | None):
    principal = current_principal()
    if principal.role not in IMPORT_ROLES:
        return dbc.Alert("Your role may not import data.", color="danger"), dash.no_update
    if not contents:
        return dash.no_update, dash.no_update
    bad = [f for f in filenames or [] if not f.lower().endswith(ALLOWED_SUFFIXES)]
    if bad:
        return dbc.Alert(
            f"Not a CSV or Parquet file: {', '.join(bad)}", color="danger"
        ), dash.no_update
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, content in zip(filenames or [], contents, strict=True):
            _header, _, payload = content.partition(",")
            data = base64.b64decode(payload)
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            paths.append(path)
        try:
            tables_in = read_files(paths, max_bytes=settings().upload_max_bytes)
            result = import_tables(
                engine(),
                tables_in,
                user=principal.user,
                rules=settings().sofa_rules,
            )
        except DataValidationError as exc:
            return problem_table(pd.DataFrame(exc.records())), dash.no_update
    audit("import", ",".join(filenames or []), f"{result.status} {result.dataset_version}")
    if result.status == "imported":
        warmup.start(current_app._get_current_object())
    msg = (
        f"Imported: {sum(result.inserted.values())} rows, dataset version {result.dataset_version}."
        if result.status == "imported"
        else "These files were already imported; nothing changed."
    )
    return dbc.Alert(msg, color="success"), import_log_rows()


def register() -> None:
    dash.register_page(__name__, path="/data", name="Data", title="ImmunoSep: data", layout=layout)
