"""Ward board: one row per patient of the selected site (issue 6).

Who is getting worse (24 h change, rising organ), why (which organ and which value: "what
changed" since the day before, core.ward.what_changed, the first change in the Alerts cell and
the full list in its tooltip), and which immune phenotype, sortable and filterable
(dash-ag-grid). A click on a row opens the patient page.
The arm is never shown here; the service layer never loads it for this page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from components import ids
from components.data.cohort import visible_patients
from components.data.keys import Context
from components.data.ward import (
    board_at,
    census_counts,
    clock_now,
    departures_at,
    site_counts,
    ward_board,
)
from components.format import fmt_num
from components.server.auth import current_principal
from components.server.cache import cache
from components.server.context import dataset_info, settings
from components.theme import ORGAN_COLOURS, ORGAN_LABELS, PHENOTYPE_COLOURS, PHENOTYPE_LABELS
from core.vocab import ORGAN_SHORT, ORGANS, SOFA_COLUMNS, Organ, Phenotype
from core.ward import NOT_MEASURED

NOW = "now"
LATEST = "latest"
ALL_SITES = "all"
#: how often the board checks for new data (one single-row query)
POLL_SECONDS = 30
#: search matches listed from the user's other sites
ELSEWHERE_MAX = 20
SHORT_ORGAN = ORGAN_SHORT

#: organ cell class by points (0 white ... 4 dark red; severity, not organ). Class rules, not
#: inline styles: ag-grid removes a class whose rule stops holding when the row data change,
#: while an inline style would stay (the previous day's colours after a day switch)
SEVERITY_CLASSES = {
    "sev-4": "params.value >= 4",
    "sev-3": "params.value == 3",
    "sev-2": "params.value == 2",
    "sev-1": "params.value == 1",
}
CHANGE_CLASSES = {
    "chg-up2": "params.value >= 2",
    "chg-up": "params.value == 1",
    "chg-down": "params.value < 0",
}


def patient_href(patient_id: str, study_day: int | None) -> str:
    """The patient page at the day the board shows (the window the user was looking at)."""
    return f"/patient/{patient_id}" + (f"?day={study_day}" if study_day else "")


def alerts_tooltip(alerts: tuple[str, ...], changes: tuple[str, ...], day: int | None) -> str:
    """The Alerts cell's tooltip: the alerts, then every change since the day before."""
    lines = ["; ".join(alerts)] if alerts else []
    if changes:
        lines.append(f"What changed since day {day - 1}:" if day else "What changed:")
        lines += [f"• {c}" for c in changes]
    return "\n".join(lines)


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
        changes = tuple(r.get("changes") or ())
        phen = Phenotype(r["phenotype"])
        shown = None if pd.isna(r["study_day"]) else int(r["study_day"])
        death = r.get("death_study_day")
        death = None if death is None or pd.isna(death) else int(death)
        if death is None:
            status = "alive"
        elif death == shown:
            status = f"died on study day {death}"
        else:
            status = f"died on study day {death} (last charted day {shown})"
        row = {
            "patient_id": r["patient_id"],
            "patient_link": f"[{r['patient_id']}]({patient_href(r['patient_id'], shown)})",
            "study_day": shown,
            "status": status,
            "died": bool(r["died"]),
            "death_day": death,
            "sofa_total": None if pd.isna(r["sofa_total"]) else int(r["sofa_total"]),
            "change": None if change is None or pd.isna(change) else int(change),
            "change_text": change_text,
            "phenotype": PHENOTYPE_LABELS[phen] + (" ⚠" if r.get("near_threshold") else ""),
            "phenotype_key": phen.value,
            "phenotype_reason": r.get("phenotype_reason") or "",
            "endpoint": endpoint_text(r["endpoint_status"], r["endpoint_decrease"]),
            "alerts": "; ".join(r["alerts"]),
            "n_alerts": int(r["n_alerts"]),
            # what changed since the day before: the first (largest) in the cell, all in the
            # tooltip
            "why": changes[0] if changes else "",
            "alerts_tip": alerts_tooltip(r["alerts"], changes, shown),
            "data_flags": data_flags_text(r.get("data_flags") or ()),
            "data_flags_tip": "; ".join(r.get("data_flags") or ()),
        }
        for organ in ORGANS:
            v = r[SOFA_COLUMNS[organ]]
            row[organ.value] = None if pd.isna(v) else int(v)
        rows.append(row)
    rows.sort(key=worst_first)
    return rows


#: the endpoint cell of a patient who is not a trial participant (a ward patient only)
NOT_IN_TRIAL = "not in trial"


def endpoint_text(status: str | None, decrease: float | None) -> str:
    """The endpoint cell: status and the decrease so far (or final); trial participants only."""
    if status is None or pd.isna(status):
        return NOT_IN_TRIAL
    return status + ("" if pd.isna(decrease) else f" {fmt_num(decrease, 2)}")


def worst_first(row: dict[str, Any]) -> tuple[bool, int, int]:
    """Largest 24 h rise first, then the highest total; patients without a change last."""
    return (row["change"] is None, -(row["change"] or 0), -(row["sofa_total"] or 0))


def column_defs() -> list[dict[str, Any]]:
    organ_cols = [
        {
            "field": o.value,
            "headerName": SHORT_ORGAN[o],
            "headerTooltip": f"{ORGAN_LABELS[o]} SOFA points (0–4)",
            "width": 50,
            "filter": False,
            "suppressHeaderMenuButton": True,
            "type": "numericColumn",
            "cellClassRules": SEVERITY_CLASSES,
            "headerClass": f"organ-header organ-header-{o.value}",
        }
        for o in ORGANS
    ]
    return [
        {
            "field": "patient_link",
            "headerName": "Patient",
            "pinned": "left",
            "width": 112,
            "filter": "agTextColumnFilter",
            "cellRenderer": "markdown",
            "tooltipField": "patient_id",
            # Enter on the focused link follows it and Tab moves to the next link (ag-grid would
            # otherwise take both keys; docs/accessibility.md "Keyboard")
            "suppressKeyboardEvent": {
                "function": "params.event.key === 'Enter' || params.event.key === 'Tab'"
            },
        },
        {
            "field": "study_day",
            "headerName": "Day",
            "headerTooltip": "Study day (24 h periods from the first study-drug dose); † on the "
            "day of death",
            "width": 54,
            "type": "numericColumn",
            "valueFormatter": {
                "function": "params.value == null ? '–' : params.value + "
                "(params.data.death_day === params.value ? ' †' : '')"
            },
            "tooltipField": "status",
        },
        {
            "field": "sofa_total",
            "headerName": "SOFA",
            "headerTooltip": "Total SOFA score (points, 0-24)",
            "width": 58,
            "type": "numericColumn",
            "cellClass": "fw-bold",
        },
        {
            "field": "change",
            "headerName": "24 h Δ",
            "headerTooltip": "Change of the total SOFA since the previous study day (points)",
            "width": 64,
            "type": "numericColumn",
            "valueFormatter": {
                "function": "params.value > 0 ? '▲ +' + params.value : "
                "(params.value < 0 ? '▼ ' + params.value : (params.value === 0 ? '= 0' : '–'))"
            },
            "cellClassRules": CHANGE_CLASSES,
        },
        *organ_cols,
        {
            "field": "phenotype",
            "headerName": "Phenotype",
            "headerTooltip": "Immune phenotype at baseline; ⚠ = a biomarker near its threshold "
            "(hover a cell for the values)",
            "width": 90,
            "tooltipField": "phenotype_reason",
            # every condition sets the same properties as the default, so nothing of the
            # previous row's style can stay behind after the data change
            "cellStyle": {
                "styleConditions": [
                    {
                        "condition": f"params.data.phenotype_key === '{p.value}'",
                        "style": {"color": PHENOTYPE_COLOURS[p], "fontWeight": "600"},
                    }
                    for p in Phenotype
                ],
                "defaultStyle": {"color": "inherit", "fontWeight": "normal"},
            },
        },
        {
            "field": "endpoint",
            "headerName": "Endpoint",
            "headerTooltip": "Primary endpoint (SOFA decrease > 1.4 by day 9), final or so far: "
            "status and the decrease (points)",
            "flex": 1,
            "minWidth": 92,
            "wrapText": True,
            "autoHeight": True,
            "tooltipField": "endpoint",
        },
        {
            "field": "alerts",
            "headerName": "Alerts",
            "headerTooltip": "Clinical: SOFA rise ≥ 2 in 24 h (Sepsis-3), organ rise ≥ 2, new "
            "vasopressor; then what changed since the day before (organ points, deciding value "
            "before → now; hover a cell for every change)",
            "flex": 3,  # the widest text: alerts and what changed
            "minWidth": 118,
            # wrapped, never cut: the values are what the nurse reads
            "wrapText": True,
            "autoHeight": True,
            "tooltipField": "alerts_tip",
            "valueFormatter": {
                "function": "params.data.why ? (params.value ? params.value + ' · ' : '') + "
                "params.data.why : params.value"
            },
            "cellClassRules": {
                "alert-on": "params.data.n_alerts > 0",
                "why-only": "params.data.n_alerts === 0 && !!params.data.why",
            },
        },
        {
            "field": "data_flags",
            "headerName": "Data",
            "headerTooltip": "Data quality: endpoint components not measured today (imputed)",
            "flex": 1,
            "minWidth": 76,
            "wrapText": True,
            "autoHeight": True,
            "tooltipField": "data_flags_tip",
            "cellClass": "data-flag",
        },
    ]


def layout(
    site: str | None = None,
    day: str | None = None,
    q: str | None = None,
    dep: str | None = None,
    **_: str,
) -> html.Div:
    context = Context.current(current_principal())
    counts = site_counts(context)
    if not counts:
        return html.Div(
            [html.H1("Ward board", className="h4"), dbc.Alert("No patients to show.", color="info")]
        )
    in_icu = census_counts(context, clock_now(context).floor("min"))
    options = [site_option(s, n, in_icu.get(s, 0)) for s, n in counts]
    values = [o["value"] for o in options]
    options = [{"label": "All my sites", "value": ALL_SITES}, *options]
    site = site if site in values or site == ALL_SITES else busiest_site(values, in_icu)
    day = day if day in (NOW, LATEST) or (day or "").isdigit() else NOW
    day_options = [
        {"label": "Now (last 24 h)", "value": NOW},
        {"label": "Latest study day", "value": LATEST},
    ] + [
        {"label": f"Day {d}", "value": str(d)}
        for d in range(1, context.sofa_rules.max_study_day + 1)
    ]
    departures = dep == "1"
    rows, count = board_rows(context, site, day, departures=departures)
    return html.Div(
        [
            dcc.Location(id="ward-url", refresh=False),
            # live: a cheap check of the data version; the rows are sent again only when an
            # import changed it
            dcc.Interval(id=ids.WARD_POLL, interval=POLL_SECONDS * 1000),
            dcc.Store(id=ids.WARD_VERSION, data=context.version),
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
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Label(
                                "Now or study day", html_for="ward-day", className="small mb-0"
                            ),
                            dcc.Dropdown(
                                id="ward-day",
                                options=day_options,
                                value=day,
                                clearable=False,
                            ),
                        ],
                        md=3,
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
                                placeholder="SYN-01-0001",
                                debounce=False,
                            ),
                        ],
                        md=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Switch(
                                id=ids.WARD_DEPARTURES,
                                label="Departures (24 h)",
                                value=departures,
                                className="small mb-0 mt-1",
                            ),
                            html.Div(
                                id=ids.WARD_COUNT,
                                className="small text-muted",
                                children=count,
                            ),
                        ],
                        md=3,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(elsewhere(context, site, q), id=ids.WARD_ELSEWHERE),
            html.Div(
                [
                    html.Span(
                        [
                            html.Span("■ ", style={"color": ORGAN_COLOURS[o]}),
                            organ_key(o),
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
                rowData=rows,
                defaultColDef={
                    "sortable": True,
                    "filter": True,
                    "resizable": True,
                    # the column menu and filter buttons would squeeze the short headers; the
                    # search box and the sort cover the board
                    "suppressHeaderMenuButton": True,
                    "suppressHeaderFilterButton": True,
                },
                dashGridOptions={
                    "quickFilterText": q or "",
                    "rowHeight": 30,
                    # the wrapped cells grow the rows: with the scrollbar always there the flex
                    # columns are sized beside it, so it never covers the last column
                    "alwaysShowVerticalScroll": True,
                    "tooltipShowDelay": 300,
                    "animateRows": False,
                    "pagination": len(rows) > 100,
                    "paginationPageSize": 100,
                    # keyboard (docs/accessibility.md "Keyboard"): neither cells nor headers
                    # take the focus, so Tab goes from patient link to patient link (Enter opens
                    # the patient) instead of through every header and every cell of every row
                    # (ag-grid also traps Tab in the header row once cells cannot be focused);
                    # the board is already sorted worst first, the search box filters it
                    "suppressCellFocus": True,
                    "suppressHeaderFocus": True,
                },
                getRowId="params.data.patient_id",
                # patients who left the ICU in the last 24 h (the departures switch): greyed
                rowClassRules={"ward-departed": "params.data.departed === true"},
                style={"height": "calc(100vh - 260px)", "minHeight": "420px"},
            ),
        ],
        className="ward-page",
    )


def ward_search(
    site: str, day: str | int | None, q: str | None, *, departures: bool = False
) -> str:
    """The board's URL query: site, day (left out when it is the default, now), search text
    and the departures switch (a link reproduces the view)."""
    day = None if day in (None, NOW) else day
    return "?" + urlencode(
        {
            "site": site,
            **({"day": day} if day else {}),
            **({"q": q} if q else {}),
            **({"dep": "1"} if departures else {}),
        }
    )


def data_flags_text(flags: Iterable[str]) -> str:
    """The Data cell: the organs not measured on the shown day by their column names, in one
    short phrase ("not measured: Coag, CNS"), then any other flag as it is."""
    short = {o.value: SHORT_ORGAN[o] for o in ORGANS}
    names, other = [], []
    for flag in flags:
        organ = flag.removesuffix(f" {NOT_MEASURED}")
        if organ != flag and organ in short:
            names.append(short[organ])
        else:
            other.append(flag)
    return "; ".join(([f"{NOT_MEASURED}: {', '.join(names)}"] if names else []) + other)


def organ_key(organ: Organ) -> str:
    """The legend's entry for an organ column: "CV = Cardiovascular", or just "Liver" where
    the column header already is the organ's name."""
    short, name = SHORT_ORGAN[organ], ORGAN_LABELS[organ]
    return short if short.lower() == name.lower() else f"{short} = {name}"


def site_option(site: str, n_patients: int, n_in_icu: int) -> dict[str, str]:
    """A site picker entry: who is in its ICU at the clock, and its patients in all."""
    return {"label": f"{site} ({n_in_icu} in the ICU, {n_patients} patients)", "value": site}


def busiest_site(sites: list[str], in_icu: dict[str, int]) -> str:
    """The default site when the URL names none: the one with the most patients in the ICU
    at the clock (the first in order on a tie, or when the ICUs are empty)."""
    return max(sites, key=lambda s: (in_icu.get(s, 0), -sites.index(s)))


def board_rows(
    context: Context, site: str, day: str | None, *, departures: bool = False
) -> tuple[list[dict[str, Any]], str]:
    """Grid rows and the count line: ``day`` = "now" (the ICU census at the ward's clock, SOFA
    over the last 24 h), "latest" or a study day; ``site`` = a site or all the user's sites;
    ``departures``: with "now", also the patients who left in the last 24 h (greyed, last)."""
    sites = [s for s, _n in site_counts(context)] if site == ALL_SITES else [site]
    if day == NOW:
        at = clock_now(context).floor("min")
        one = None if site == ALL_SITES else site
        rows = ward_rows(now_frame(board_at(context, at, one)))
        where = "the ICU" if site == ALL_SITES else f"the ICU of {site}"
        replay = f" (replay of the {replayed_data()})" if settings().clock == "replay" else ""
        count = f"{len(rows)} patients in {where} at {at:%Y-%m-%d %H:%M} UTC{replay}"
        if departures:
            gone = departure_rows(departures_at(context, at, one), at)
            rows += gone
            count += f"; {len(gone)} left in the last 24 h"
        return rows, count
    as_of = int(day) if day and day.isdigit() else None
    rows = [r for s in sites for r in cached_rows(context, s, as_of)]
    if len(sites) > 1:
        rows.sort(key=worst_first)
    return rows, f"{len(rows)} patients"


def replayed_data() -> str:
    """What the demo's replay clock replays (the count line)."""
    demo = dataset_info().demo_data
    return "CLIF demo's ICU stays" if demo == "clif-demo" else "synthetic trial"


def departure_rows(gone: pd.DataFrame, at: pd.Timestamp) -> list[dict[str, Any]]:
    """Greyed rows of the patients who left the ICU (the event and its time, no scores)."""
    rows = []
    for r in gone.to_dict("records"):
        when = pd.Timestamp(r["event_time"])
        minutes = int((pd.Timestamp(at) - when) / pd.Timedelta(minutes=1))
        ago = f"{minutes} min ago" if minutes < 60 else f"{minutes // 60} h ago"
        text = f"{r['event']} {when:%Y-%m-%d %H:%M} UTC ({ago})"
        row: dict[str, Any] = {
            "patient_id": r["patient_id"],
            "patient_link": f"[{r['patient_id']}]({patient_href(r['patient_id'], None)})",
            "departed": True,
            "study_day": None,
            "status": text,
            "died": r["event"] == "died",
            "death_day": None,
            "sofa_total": None,
            "change": None,
            "change_text": "",
            "phenotype": "",
            "phenotype_key": "",
            "phenotype_reason": "",
            "endpoint": "",
            "alerts": text,
            "n_alerts": 0,
            "why": "",
            "alerts_tip": text,
            "data_flags": "",
        }
        for organ in ORGANS:
            row[organ.value] = None
        rows.append(row)
    return rows


def now_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The board at a clock time in the columns :func:`ward_rows` formats (alive by the
    census rule; the scores are those of the last 24 hours)."""
    return board.rename(
        columns={"sofa_24h": "sofa_total", "sofa_24h_change": "sofa_change_24h"}
    ).assign(
        died=False,
        death_study_day=pd.NA,
        n_alerts=[len(a) for a in board["alerts"]],
    )


def elsewhere(context: Context, site: str, q: str | None) -> html.Div | None:
    """Patients matching the search at the user's other sites (links to those boards)."""
    text = (q or "").strip().casefold()
    if len(text) < 3:
        return None
    pts = visible_patients(context)
    hit = pts[pts["patient_id"].str.casefold().str.contains(text, regex=False)]
    hit = hit[hit["site_id"] != site].sort_values("patient_id").head(ELSEWHERE_MAX)
    if hit.empty:
        return None
    return html.Div(
        [html.Span("Also at other sites: ", className="text-muted")]
        + [
            html.A(
                f"{r.patient_id} ({r.site_id})",
                href=ward_search(r.site_id, None, r.patient_id),
                className="me-3",
            )
            for r in hit.itertuples()
        ],
        className="small mb-2",
    )


@callback(
    Output(ids.WARD_GRID, "rowData"),
    Output(ids.WARD_COUNT, "children"),
    Output("ward-url", "search"),
    Output(ids.WARD_ELSEWHERE, "children"),
    Input(ids.WARD_SITE, "value"),
    Input("ward-day", "value"),
    Input(ids.WARD_SEARCH, "value"),
    Input(ids.WARD_DEPARTURES, "value"),
    prevent_initial_call=True,
)
def update_board(site: str, day: str, q: str | None, departures: bool | None = False):
    """Site, day, search or the departures switch changed: the rows, the count, the URL and
    other sites' matches."""
    context = Context.current(current_principal())
    rows, count = board_rows(context, site, day, departures=bool(departures))
    url = ward_search(site, day, q, departures=bool(departures))
    return rows, count, url, elsewhere(context, site, q)


@callback(
    Output(ids.WARD_GRID, "rowData", allow_duplicate=True),
    Output(ids.WARD_COUNT, "children", allow_duplicate=True),
    Output(ids.WARD_VERSION, "data"),
    Input(ids.WARD_POLL, "n_intervals"),
    State(ids.WARD_VERSION, "data"),
    State(ids.WARD_SITE, "value"),
    State("ward-day", "value"),
    State(ids.WARD_DEPARTURES, "value"),
    prevent_initial_call=True,
)
def refresh_if_new_data(
    _n: int, shown_version: str | None, site: str, day: str, departures: bool | None = False
):
    """New data (an import) appear without a reload; nothing is sent while they are the same."""
    context = Context.current(current_principal())
    if context.version == shown_version and day != NOW:  # "now" moves with the clock
        return no_update, no_update, no_update
    rows, count = board_rows(context, site, day, departures=bool(departures))
    return rows, count, context.version


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
    State(ids.WARD_GRID, "rowData"),
    prevent_initial_call=True,
)
def open_patient(cell: dict[str, Any] | None, rows: list[dict[str, Any]] | None):
    """A click anywhere on a row opens the patient at the day the board shows."""
    if not cell or not cell.get("rowId"):
        return no_update
    day = next((r.get("study_day") for r in rows or [] if r["patient_id"] == cell["rowId"]), None)
    return patient_href(cell["rowId"], day)


def register() -> None:
    dash.register_page(
        __name__, path="/", name="Ward board", title="ImmunoSep: ward board", layout=layout
    )
