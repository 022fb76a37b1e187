"""Data page: upload with a size limit, the validation report as a table, the import log.

Uploads are validated completely before anything is written (core.io: all problems of a file
at once, with file, row, column, value and what was expected); an import is one transaction.
Only the unblinded statistician (data manager) and the demo role may import; a demo is
read-only unless IMMUNOSEP_DEMO_UPLOADS=1, and then takes synthetic ``SYN-`` ids only
(docs/security.md "Read-only demo"). Every file is checked against ``Settings.upload_limits``
(size, rows, decompressed size) before it is parsed (docs/security.md "Upload limits").

Refusals always say why (docs/formats.md "Upload limits and refusals"). ``dcc.Upload`` drops
files silently in the browser when they exceed ``max_size`` or do not match ``accept`` (its
``onDrop`` only passes the accepted files on), so neither is set: every dropped file reaches a
small clientside callback that measures it and holds back the content of a file above the
limit (or of an upload above it in total, which the server's request limit would refuse with
a bare HTTP 413), passing only its name and size. The server callback then reports the wrong
type, the size, a file that is not UTF-8 and every validation problem, with the file's name.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from components import ids, warmup
from components.format import records
from components.server.audit import audit
from components.server.auth import (
    INGEST_ROLES,
    current_principal,
    demo_data_problems,
    ingest_refusal,
)
from components.server.context import dataset_info, engine, settings
from core.exceptions import DataValidationError, Problem
from core.io import import_tables, read_uploads, validate_tables
from core.io.read import size_problems
from core.repository import load_import_log

#: the roles that may import: one list for the Data page and the FHIR API (auth.INGEST_ROLES)
IMPORT_ROLES = INGEST_ROLES
#: the dropped files as measured in the browser: ``[{name, size, content, held}]``; ``content``
#: is None when the file is held back (``held``: "file" above the limit, "upload" above it in
#: total)
UPLOAD_FILES: Final = "data-upload-files"
#: the upload limit in bytes, for the clientside size check
UPLOAD_LIMIT: Final = "data-upload-limit"
#: problem fields -> column headers of the validation report
PROBLEM_HEADERS: Final = MappingProxyType(
    {
        "where": "File",
        "row": "Row",
        "column": "Column",
        "value": "Value",
        "expected": "Expected",
        "patient_id": "Patient",
        "time": "Time",
    }
)

#: measure the dropped files in the browser; hold back the content of those above the limit
SIZE_CHECK_JS: Final = """
function (contents, filenames, limit) {
    if (!contents) { return window.dash_clientside.no_update; }
    var list = Array.isArray(contents) ? contents : [contents];
    var names = Array.isArray(filenames) ? filenames : [filenames];
    var files = [];
    var total = 0;
    for (var i = 0; i < list.length; i++) {
        var c = list[i] || "";
        var comma = c.indexOf(",");
        var b64 = comma >= 0 ? c.slice(comma + 1) : c;
        var pad = b64.endsWith("==") ? 2 : (b64.endsWith("=") ? 1 : 0);
        var size = Math.max(0, Math.floor(b64.length * 3 / 4) - pad);
        var big = size > limit;
        if (!big) { total += size; }
        files.push({name: names[i] || ("file " + (i + 1)), size: size,
                    content: big ? null : c, held: big ? "file" : null});
    }
    if (total > limit) {
        for (var j = 0; j < files.length; j++) {
            if (files[j].held === null) { files[j].content = null; files[j].held = "upload"; }
        }
    }
    return files;
}
"""


def import_log_rows() -> list[dict[str, Any]]:
    return import_log_table(load_import_log(engine()))


def import_log_columns() -> list[dict[str, Any]]:
    """The import log's columns: readable headers; the long values (files, row counts per
    table, the full content hash) are in the tooltips."""
    return [
        {"field": "id", "headerName": "Import", "type": "numericColumn", "width": 76},
        {"field": "started", "headerName": "Started (UTC)", "width": 150},
        {"field": "took", "headerName": "Took", "type": "numericColumn", "width": 70},
        {"field": "status", "headerName": "Status", "width": 88},
        {
            "field": "files",
            "headerName": "Tables",
            "tooltipField": "files_tip",
            "flex": 2,
            "minWidth": 140,
            "wrapText": True,
            "autoHeight": True,
        },
        {
            "field": "rows",
            "headerName": "Rows added",
            "tooltipField": "rows_tip",
            "type": "numericColumn",
            "width": 108,
        },
        {"field": "user", "headerName": "User", "width": 84},
        {
            "field": "content",
            "headerName": "SHA-256",
            "headerTooltip": "SHA-256 of the imported content (hover a cell for all 64 digits)",
            "tooltipField": "content_tip",
            "width": 120,
        },
        {
            "field": "rules",
            "headerName": "SOFA rules",
            "flex": 1,
            "minWidth": 110,
            "wrapText": True,
            "autoHeight": True,
            "cellClass": "break-anywhere",
        },
    ]


def import_log_table(log: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the import log grid, newest first (pure): when, how long, what and how much,
    by whom, under which SOFA rules; the stored JSON lists read into words and numbers."""
    rows = []
    for r in log.sort_values("id", ascending=False).to_dict("records"):
        names = [str(n).split(":", 1)[-1] for n in json.loads(r["source_names"] or "[]")]
        counts = json.loads(r["row_counts"] or "{}")
        started, finished = pd.Timestamp(r["started_at"]), r["finished_at"]
        took = None if pd.isna(finished) else (pd.Timestamp(finished) - started).total_seconds()
        rows.append(
            {
                "id": int(r["id"]),
                "started": f"{started:%Y-%m-%d %H:%M:%S}",
                "took": "–" if took is None else f"{took:.1f} s",
                "status": r["status"],
                "files": ", ".join(names),
                "files_tip": "; ".join(json.loads(r["source_names"] or "[]")),
                "rows": f"{sum(int(v) for v in counts.values()):,}",
                "rows_tip": "; ".join(f"{t}: {int(v):,}" for t, v in counts.items()),
                "user": r["user"],
                "content": str(r["content_sha256"])[:8] + "…",
                "content_tip": str(r["content_sha256"]),
                "rules": r["rules_key"] or "–",
            }
        )
    return rows


def layout(**_: str) -> html.Div:
    principal = current_principal()
    refusal = ingest_refusal(principal, settings())
    may_import = refusal is None
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
                            "CSV or Parquet files in the long formats (sites.csv, patients.csv, "
                            "icu_stays.csv, observations.csv, infusions.csv, episodes.csv, "
                            "biomarkers.csv, doses.csv, randomisation.csv, adverse_events.csv, "
                            "disposition.csv) or ADaM ADSL/ADAE/ADLB (ADSL only with the raw "
                            "icu_stays, infusions, episodes, doses and disposition files, which ADaM "
                            "does not carry). The table is taken "
                            f"from the file name. CSV files in UTF-8 ('CSV UTF-8'), also gzip'd "
                            "(.csv.gz) or several in a .zip. At most "
                            f"{settings().upload_max_mb} MB per file and per upload, "
                            f"{settings().upload_max_rows:,} rows and "
                            f"{settings().upload_max_decompressed_mb} MB decompressed per file "
                            "(larger files: python -m core.io import). Nothing is written unless "
                            "every file is valid.",
                            className="small",
                        ),
                        html.Div(
                            [
                                dcc.Upload(
                                    id=ids.DATA_UPLOAD,
                                    children=html.Div(
                                        ["Drop files here or ", html.A("choose files")]
                                    ),
                                    multiple=True,
                                    # no max_size / accept: the browser would drop such files
                                    # silently; they are measured and refused with a reason
                                    max_size=-1,
                                    className="border border-2 border-secondary-subtle rounded p-4 text-center bg-white",
                                ),
                                dcc.Store(id=UPLOAD_LIMIT, data=settings().upload_max_bytes),
                                dcc.Store(id=UPLOAD_FILES),
                            ],
                            # the upload's file input has no label prop: assets/20_a11y.js
                            # names it with this text (docs/accessibility.md)
                            **{"data-file-label": "Choose data files to import (CSV or XPT)"},
                        )
                        if may_import
                        else dbc.Alert(
                            f"No upload: {refusal}.",
                            id="data-upload-refused",
                            color="secondary",
                            className="mb-0",
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
                            columnDefs=import_log_columns(),
                            defaultColDef={"sortable": True, "resizable": True},
                            dashGridOptions={"domLayout": "autoHeight", "tooltipShowDelay": 300},
                            style={"height": None},
                        ),
                    ]
                )
            ),
        ],
        className="data-page",
    )


def problem_table(problems: Sequence[Problem]) -> html.Div:
    """The validation report: a summary naming every refused file, then one grid row per
    problem with readable headers and the offending value on every row."""
    rows = [{field: getattr(p, field) for field in PROBLEM_HEADERS} for p in problems]
    for r in rows:
        if isinstance(r["value"], tuple):
            r["value"] = ", ".join(str(v) for v in r["value"])
    refused = [p for p in problems if p.row is None]
    return html.Div(
        [
            dbc.Alert(
                [
                    html.Div(f"{len(problems)} problem(s) found; nothing was imported."),
                    html.Ul(
                        [
                            html.Li(f"{p.where}: {p.value}; expected {p.expected}")
                            for p in refused[:20]
                        ],
                        className="mb-0 small",
                    )
                    if refused
                    else None,
                ],
                color="danger",
            ),
            dag.AgGrid(
                id="data-problems",
                rowData=records(pd.DataFrame(rows, columns=list(PROBLEM_HEADERS))),
                columnDefs=[
                    {"field": field, "headerName": header}
                    for field, header in PROBLEM_HEADERS.items()
                ],
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


def upload_problems_and_files(
    files: Sequence[dict[str, Any]], max_bytes: int
) -> tuple[list[Problem], dict[str, bytes]]:
    """Refusals of the upload itself (held back for size, undecodable, the same name twice)
    and the decoded files to read."""
    problems: list[Problem] = []
    held = [(str(f["name"]), int(f.get("size") or 0)) for f in files if f.get("held") == "file"]
    problems += size_problems(held, max_bytes)
    together = [f for f in files if f.get("held") == "upload"]
    if together:
        total = sum(int(f.get("size") or 0) for f in together)
        for f in together:
            problems.append(
                Problem(
                    str(f["name"]),
                    None,
                    None,
                    f"{total / 1048576:.1f} MB in {len(together)} files of one upload",
                    f"at most {max_bytes / 1048576:.1f} MB per upload in total (the files of "
                    "one upload travel in one request): upload the files in several goes",
                )
            )
    payloads: dict[str, bytes] = {}
    counts = Counter(Path(str(f["name"])).name for f in files)
    for f in files:
        name = Path(str(f["name"])).name
        if counts[name] > 1:
            problems.append(
                Problem(name, None, None, f"{counts[name]} files named {name}", "one file per name")
            )
            counts[name] = 0  # reported once
            continue
        if f.get("content") is None or counts[name] == 0:
            continue
        _header, _, payload = str(f["content"]).partition(",")
        try:
            payloads[name] = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            problems.append(
                Problem(name, None, None, "(not base64 data)", "a file as the browser sends it")
            )
    return problems, payloads


dash.clientside_callback(
    SIZE_CHECK_JS,
    Output(UPLOAD_FILES, "data"),
    Input(ids.DATA_UPLOAD, "contents"),
    State(ids.DATA_UPLOAD, "filename"),
    State(UPLOAD_LIMIT, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.DATA_REPORT, "children"),
    Output(ids.DATA_LOG, "rowData"),
    Input(UPLOAD_FILES, "data"),
    prevent_initial_call=True,
)
def upload(files: list[dict[str, Any]] | None):
    principal = current_principal()
    refusal = ingest_refusal(principal, settings())
    if refusal is not None:
        audit("import_refused", None, refusal)
        return dbc.Alert(f"Nothing was imported: {refusal}.", color="danger"), dash.no_update
    if not files:
        return dash.no_update, dash.no_update
    limits = settings().upload_limits
    max_bytes = settings().upload_max_bytes
    problems, payloads = upload_problems_and_files(files, max_bytes)
    tables_in = {}
    if payloads:
        try:
            tables_in = read_uploads(payloads, limits=limits)
        except DataValidationError as exc:
            problems += exc.problems
    if not problems:
        # a public demo takes synthetic ids only; a file with other problems is reported
        # with those first (the validator's report, then the ids)
        demo_problems = demo_data_problems(tables_in, settings())
        if demo_problems:
            problems = validate_tables(tables_in) or demo_problems
    if problems:
        return problem_table(problems), dash.no_update
    try:
        result = import_tables(
            engine(),
            tables_in,
            user=principal.user,
            rules=settings().sofa_rules,
        )
    except DataValidationError as exc:
        return problem_table(exc.problems), dash.no_update
    names = ",".join(str(f["name"]) for f in files)
    audit("import", names, f"{result.status} {result.dataset_version}")
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
