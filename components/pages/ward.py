"""Ward board: one row per patient of the selected site (issue 6).

Who is getting worse (24 h change, rising organ), why (which organ), and which immune
phenotype, sortable and filterable (dash-ag-grid). A click on a row opens the patient page.
The arm is never shown here; the service layer never loads it for this page.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.data.keys import Context
from components.data.ward import site_counts, ward_board
from components.format import fmt_number
from components.server.auth import current_principal
from components.server.cache import cache
from components.theme import ORGAN_COLOURS, ORGAN_LABELS, PHENOTYPE_COLOURS, PHENOTYPE_LABELS
from core.vocab import ORGANS, SOFA_COLUMNS, Phenotype

SHORT_ORGAN = {
    ORGANS[0]: "Resp",
    ORGANS[1]: "Coag",
    ORGANS[2]: "Liver",
    ORGANS[3]: "Cardio",
    ORGANS[4]: "CNS",
    ORGANS[5]: "Renal",
}

#: background colour of an organ cell by points (0 white ... 4 dark red): severity, not organ
SEVERITY_STYLES = (
    {"condition": "params.value >= 4", "style": {"backgroundColor": "#8c1c13", "color": "white"}},
    {"condition": "params.value == 3", "style": {"backgroundColor": "#d7301f", "color": "white"}},
    {"condition": "params.value == 2", "style": {"backgroundColor": "#fc8d59", "color": "black"}},
    {"condition": "params.value == 1", "style": {"backgroundColor": "#fdd49e", "color": "black"}},
)


def ward_rows(board: pd.DataFrame) -> list[dict[str, Any]]:
    """Display rows for the grid (pure: formatting only)."""
    rows = []
    for r in board.to_dict("records"):
        change = r.get("sofa_change_24h")
        if change is None or pd.isna(change):
            change_text = "–"
        elif change > 0:
            change_text = f"▲ +{int(change)}"
        elif change < 0:
            change_text = f"▼ {int(change)}"
        else:
            change_text = "= 0"
        phen = Phenotype(r["phenotype"])
        row = {
            "patient_id": r["patient_id"],
            "study_day": None if pd.isna(r["study_day"]) else int(r["study_day"]),
            "status": "died" if r["died"] else "in study",
            "died": bool(r["died"]),
            "sofa_total": None if pd.isna(r["sofa_total"]) else int(r["sofa_total"]),
            "change": None if change is None or pd.isna(change) else int(change),
            "change_text": change_text,
            "phenotype": PHENOTYPE_LABELS[phen] + (" ⚠ near" if r.get("near_threshold") else ""),
            "phenotype_reason": r.get("phenotype_reason") or "",
            "endpoint": r["endpoint_status"]
            + (
                ""
                if pd.isna(r["endpoint_decrease"])
                else f" (Δ {fmt_number(r['endpoint_decrease'], 2)})"
            ),
            "alerts": "; ".join(r["alerts"]),
            "n_alerts": int(r["n_alerts"]),
        }
        for organ in ORGANS:
            v = r[SOFA_COLUMNS[organ]]
            row[organ.value] = None if pd.isna(v) else int(v)
        rows.append(row)
    # worst first: largest 24 h rise, then highest total; patients without a change last
    rows.sort(key=lambda r: (r["change"] is None, -(r["change"] or 0), -(r["sofa_total"] or 0)))
    return rows


def column_defs() -> list[dict[str, Any]]:
    organ_cols = [
        {
            "field": o.value,
            "headerName": SHORT_ORGAN[o],
            "headerTooltip": f"{ORGAN_LABELS[o]} SOFA points (0–4)",
            "width": 74,
            "filter": False,
            "suppressHeaderMenuButton": True,
            "type": "numericColumn",
            "cellStyle": {
                "styleConditions": list(SEVERITY_STYLES),
                "defaultStyle": {"backgroundColor": "white"},
            },
            "headerClass": f"organ-header organ-header-{o.value}",
        }
        for o in ORGANS
    ]
    phen_styles = [
        {
            "condition": f"params.value && params.value.startsWith('{PHENOTYPE_LABELS[p]}')",
            "style": {"color": PHENOTYPE_COLOURS[p], "fontWeight": "600"},
        }
        for p in Phenotype
    ]
    return [
        {
            "field": "patient_id",
            "headerName": "Patient",
            "pinned": "left",
            "width": 140,
            "filter": "agTextColumnFilter",
            "cellStyle": {"textDecoration": "underline", "cursor": "pointer"},
        },
        {
            "field": "study_day",
            "headerName": "Day",
            "headerTooltip": "Study day (24 h periods from the first study-drug dose)",
            "width": 82,
            "type": "numericColumn",
            "valueFormatter": {"function": "params.value + (params.data.died ? ' †' : '')"},
            "tooltipField": "status",
        },
        {
            "field": "sofa_total",
            "headerName": "SOFA",
            "headerTooltip": "Total SOFA score (points, 0-24)",
            "width": 90,
            "type": "numericColumn",
            "cellStyle": {"fontWeight": "700"},
        },
        {
            "field": "change",
            "headerName": "24 h change",
            "headerTooltip": "Change of the total SOFA since the previous study day (points)",
            "width": 118,
            "type": "numericColumn",
            "valueFormatter": {
                "function": "params.value > 0 ? '▲ +' + params.value : "
                "(params.value < 0 ? '▼ ' + params.value : (params.value === 0 ? '= 0' : '–'))"
            },
            "cellStyle": {
                "styleConditions": [
                    {
                        "condition": "params.data.change >= 2",
                        "style": {"color": "#b2182b", "fontWeight": "700"},
                    },
                    {"condition": "params.data.change > 0", "style": {"color": "#b2182b"}},
                    {"condition": "params.data.change < 0", "style": {"color": "#2166ac"}},
                ]
            },
        },
        *organ_cols,
        {
            "field": "phenotype",
            "headerName": "Phenotype",
            "width": 135,
            "tooltipField": "phenotype_reason",
            "cellStyle": {"styleConditions": phen_styles},
        },
        {"field": "endpoint", "headerName": "Endpoint (day 9)", "width": 170},
        {
            "field": "alerts",
            "headerName": "Alerts",
            "flex": 1,
            "minWidth": 160,
            "tooltipField": "alerts",
            "cellStyle": {
                "styleConditions": [
                    {
                        "condition": "params.data.n_alerts > 0",
                        "style": {"color": "#8c1c13", "fontWeight": "600"},
                    }
                ]
            },
        },
    ]


def layout(
    site: str | None = None, day: str | None = None, q: str | None = None, **_: str
) -> html.Div:
    context = Context.current(current_principal())
    options = [{"label": f"{s} ({n} patients)", "value": s} for s, n in site_counts(context)]
    if not options:
        return html.Div(
            [html.H1("Ward board", className="h4"), dbc.Alert("No patients to show.", color="info")]
        )
    values = [o["value"] for o in options]
    site = site if site in values else values[0]
    as_of = int(day) if day and day.isdigit() else None
    day_options = [{"label": "Latest", "value": "latest"}] + [
        {"label": f"Day {d}", "value": str(d)}
        for d in range(1, context.sofa_rules.max_study_day + 1)
    ]
    board = ward_board(context, site, as_of)
    return html.Div(
        [
            dcc.Location(id="ward-url", refresh=False),
            html.H1("Ward board", className="h4"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Site", html_for=ids.WARD_SITE, className="small mb-0"),
                            dcc.Dropdown(
                                id=ids.WARD_SITE, options=options, value=site, clearable=False
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label(
                                "As of study day", html_for="ward-day", className="small mb-0"
                            ),
                            dcc.Dropdown(
                                id="ward-day",
                                options=day_options,
                                value=str(as_of) if as_of else "latest",
                                clearable=False,
                            ),
                        ],
                        md=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Label(
                                "Search patient id",
                                html_for=ids.WARD_SEARCH,
                                className="small mb-0",
                            ),
                            dbc.Input(
                                id=ids.WARD_SEARCH,
                                type="search",
                                value=q or "",
                                placeholder="e.g. SYN-01-0001",
                                debounce=False,
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        html.Div(
                            id=ids.WARD_COUNT,
                            className="small text-muted pt-4",
                            children=f"{len(board)} patients",
                        ),
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(
                [
                    html.Span(
                        [
                            html.Span("■ ", style={"color": ORGAN_COLOURS[o]}),
                            f"{SHORT_ORGAN[o]} = {ORGAN_LABELS[o]}",
                        ],
                        className="me-3",
                    )
                    for o in ORGANS
                ]
                + [
                    html.Span(
                        "Organ cells: SOFA points 0–4, darker = worse. "
                        "Sorted by 24 h change, worst first.",
                        className="text-muted",
                    )
                ],
                className="small mb-2",
            ),
            dag.AgGrid(
                id=ids.WARD_GRID,
                columnDefs=column_defs(),
                rowData=ward_rows(board),
                defaultColDef={"sortable": True, "filter": True, "resizable": True},
                dashGridOptions={
                    "quickFilterText": q or "",
                    "rowHeight": 30,
                    "tooltipShowDelay": 300,
                    "animateRows": False,
                    "pagination": len(board) > 100,
                    "paginationPageSize": 100,
                },
                getRowId="params.data.patient_id",
                style={"height": "calc(100vh - 260px)", "minHeight": "420px"},
            ),
        ],
        className="ward-page",
    )


@callback(
    Output(ids.WARD_GRID, "rowData"),
    Output(ids.WARD_COUNT, "children"),
    Output("ward-url", "search"),
    Input(ids.WARD_SITE, "value"),
    Input("ward-day", "value"),
    prevent_initial_call=True,
)
def update_board(site: str, day: str):
    as_of = int(day) if day and day != "latest" else None
    rows = cached_rows(Context.current(current_principal()), site, as_of)
    search = f"?site={site}" + (f"&day={as_of}" if as_of else "")
    return rows, f"{len(rows)} patients", search


@cache.memoize()
def _rows(context: Context, site: str, as_of: int | None) -> list[dict]:
    """Grid rows of one site's board, memoized per context (version, rules, access), site and
    day."""
    return ward_rows(ward_board(context, site, as_of))


def cached_rows(context: Context, site: str, as_of: int | None) -> list[dict[str, Any]]:
    return _rows(context, site, as_of)


@callback(
    Output(ids.WARD_GRID, "dashGridOptions"),
    Input(ids.WARD_SEARCH, "value"),
    State(ids.WARD_GRID, "dashGridOptions"),
    prevent_initial_call=True,
)
def search_board(text: str, options: dict[str, Any]):
    return {**(options or {}), "quickFilterText": text or ""}


@callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.WARD_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_patient(cell: dict[str, Any] | None):
    if not cell or not cell.get("rowId"):
        return no_update
    return f"/patient/{cell['rowId']}"


def register() -> None:
    dash.register_page(
        __name__, path="/", name="Ward board", title="ImmunoSep: ward board", layout=layout
    )
