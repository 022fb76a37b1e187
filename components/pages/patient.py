"""Patient page: SOFA timeline, "what changed" and "why this score", support lanes, phenotype and
endpoint (issue 6).

Deep link: ``/patient/<id>?day=<n>&layers=sofa2,support``. The day and the layers live in the
URL so a link reproduces the view. Study-drug doses are shown as "study drug" only; the arm is
never loaded for this page.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
import plotly
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update

from components import figures, ids, tables
from components.data.cohort import visible_patients
from components.data.keys import Context
from components.data.patient import PatientView, check_patient_access, patient_view
from components.format import safe_csv_frame
from components.server.audit import audit
from components.server.auth import current_principal
from components.server.cache import cache
from components.theme import PHENOTYPE_COLOURS, PHENOTYPE_LABELS, PHENOTYPE_TEXT_COLOURS
from core.exceptions import UnknownPatientError
from core.vocab import Phenotype
from core.ward import what_changed

LAYER_OPTIONS = [
    {"label": "Organ-support lanes", "value": "support"},
    {"label": "SOFA-2 overlay (display only)", "value": "sofa2"},
]
DEFAULT_LAYERS = ("support",)


def parse_layers(layers: str | None) -> list[str]:
    if layers is None:
        return list(DEFAULT_LAYERS)
    allowed = {o["value"] for o in LAYER_OPTIONS}
    return [x for x in layers.split(",") if x in allowed]


def phenotype_badge(patient: dict[str, Any]) -> html.Div:
    phen = Phenotype(patient["phenotype"])
    near = bool(patient.get("near_threshold"))
    return html.Div(
        [
            dbc.Badge(
                PHENOTYPE_LABELS[phen],
                color=PHENOTYPE_COLOURS[phen],
                style={"color": PHENOTYPE_TEXT_COLOURS[phen]},
                className="phenotype-badge me-2",
                id=ids.PATIENT_BADGE,
            ),
            html.Span(patient.get("phenotype_reason") or "", className="small"),
            dbc.Badge("near threshold", color="warning", text_color="dark", className="ms-2")
            if near
            else None,
        ]
    )


def described(graph: dcc.Graph, figure: Any) -> html.Figure:
    """A chart with its text alternative as the (visually hidden) caption
    (:func:`components.figures.describe_figure`, docs/accessibility.md)."""
    return html.Figure(
        [graph, html.Figcaption(figures.describe_figure(figure), className="visually-hidden")],
        className="mb-0",
    )


def not_in_trial_card() -> dbc.Card:
    """In place of the endpoint card for an ICU patient who is not in the trial."""
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Not a trial participant", className="h6 text-uppercase text-muted"),
                html.P(
                    "No trial endpoint: this patient was not randomised. Day 1 is the day of "
                    "ICU admission; the daily SOFA follows the same rules as for trial patients.",
                    className="small mb-0",
                ),
            ]
        )
    )


def endpoint_card(
    endpoint: dict[str, Any], *, last_day: int, threshold: float, current_day: int
) -> dbc.Card:
    if not endpoint.get("evaluable"):
        body = [html.P("Not evaluable: no daily SOFA yet.", className="mb-0")]
    else:
        baseline = endpoint.get("baseline_sofa")
        mean = endpoint.get("mean_followup_sofa")
        decrease = endpoint.get("sofa_decrease")
        reached = (
            current_day >= last_day
            or bool(endpoint.get("died_by_last_day"))
            or bool(endpoint.get("window_closed"))
        )
        if pd.isna(baseline):
            status, colour = "not evaluable (no baseline)", "secondary"
        elif reached:
            status, colour = (
                ("met", "success") if endpoint.get("responder") else ("not met", "danger")
            )
        else:
            status, colour = (
                ("on track", "success") if decrease > threshold else ("off track", "warning")
            )
        need = None if pd.isna(baseline) else baseline - threshold
        body = [
            html.Div(
                [
                    html.Span("Baseline SOFA (day 1): ", className="kpi-sub"),
                    html.Span(tables.fmt_number(baseline, 0), className="fw-bold"),
                ]
            ),
            html.Div(
                [
                    html.Span(f"Mean SOFA days 2–{last_day}: ", className="kpi-sub"),
                    html.Span(tables.fmt_number(mean, 2), className="fw-bold"),
                    html.Span(
                        f" ({int(endpoint.get('n_imputed_days', 0))} day(s) imputed)",
                        className="kpi-sub",
                    ),
                ]
            ),
            html.Div(
                [
                    html.Span("Decrease: ", className="kpi-sub"),
                    html.Span(tables.fmt_number(decrease, 2), className="fw-bold"),
                    html.Span(
                        f" (needs > {threshold}: mean below {tables.fmt_number(need, 2)})",
                        className="kpi-sub",
                    ),
                ]
            ),
            dbc.Badge(status, color=colour, className="mt-2"),
        ]
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    f"Primary endpoint (SAP): decrease > {threshold} by day {last_day}",
                    className="card-title-sm mb-1",
                ),
                *body,
            ]
        ),
        id=ids.PATIENT_ENDPOINT,
        className="h-100",
    )


def not_found(patient_id: str) -> html.Div:
    return html.Div(
        [
            html.H1("Patient not found", className="h4"),
            dbc.Alert(
                f"There is no patient with id {patient_id!r} that you may view.", color="warning"
            ),
            html.A("Back to the ward board", href="/", className="btn btn-primary"),
        ],
        className="not-found",
    )


def picker() -> html.Div:
    pts = visible_patients(Context.current(current_principal()))
    return html.Div(
        [
            html.H1("Patient", className="h4"),
            html.P("Choose a patient (or click one on the ward board)."),
            dcc.Dropdown(
                id="patient-picker",
                options=[{"label": p, "value": p} for p in pts["patient_id"]],
                placeholder="Patient id…",
                style={"maxWidth": "24rem"},
            ),
        ]
    )


def support_lanes(view: PatientView, context: Context) -> pd.DataFrame:
    return figures.support_segments(
        view.infusions,
        view.episodes,
        view.doses,
        anchor_time=pd.Timestamp(view.patient["anchor_time"]),
        max_day=context.sofa_rules.max_study_day,
        rules=context.sofa_rules,
    )


def timeline_figure(
    view: PatientView, context: Context, *, day: int | None, layers: list[str]
) -> go.Figure:
    if view.daily.empty:
        return figures.empty_figure("No observations yet for this patient.")
    return figures.sofa_timeline(
        view.daily,
        death_study_day=view.patient.get("death_study_day"),
        selected_day=day,
        show_sofa2="sofa2" in layers,
        endpoint_last_day=context.endpoint_rules.last_day
        if bool(view.patient.get("trial_participant", True))
        else None,
        max_day=context.sofa_rules.max_study_day,
        lanes=support_lanes(view, context) if "support" in layers else None,
        death_score=context.endpoint_rules.death_score,
    )


@cache.memoize()
def _timeline_json(
    context: Context, patient_id: str, day: int | None, layers: tuple[str, ...]
) -> dict[str, Any]:
    """The timeline figure as plain JSON, memoized per data version, rules, access (role,
    sites, unmask state), patient, day and layers (building a plotly figure costs far more than
    fetching it). Computed for ``access`` itself, never for the ambient request user."""
    view = patient_view(context, patient_id)
    return timeline_figure(view, context, day=day, layers=list(layers)).to_plotly_json()


@cache.memoize()
def _biomarker_json(context: Context, patient_id: str) -> dict[str, Any]:
    view = patient_view(context, patient_id)
    note = (
        "Post-baseline ferritin and HLA-DR are hidden in this blinded view: "
        "their course can reveal the allocation."
        if view.biomarkers_hidden_after_baseline
        else None
    )
    return figures.biomarker_trajectory(
        view.biomarkers, thresholds=context.thresholds, note=note
    ).to_plotly_json()


def cached_timeline(
    context: Context, patient_id: str, *, day: int | None, layers: list[str]
) -> dict[str, Any]:
    return _timeline_json(context, patient_id, day, tuple(layers))


def cached_biomarkers(context: Context, patient_id: str) -> dict[str, Any]:
    return _biomarker_json(context, patient_id)


def why_section(view: PatientView, day: int | None):
    if day is None or view.daily.empty:
        return html.P(
            "Click a day on the timeline to see why it scored what it did.", className="text-muted"
        )
    changes = what_changed(view.provenance, day=day, daily=view.daily)
    return html.Div(
        [
            tables.changes_list(changes, day),
            html.Div(f"Why this score: day {day}", className="card-title-sm mb-1"),
            tables.why_table(tables.why_rows(view.provenance, day)),
        ]
    )


def layout(
    patient_id: str | None = None, day: str | None = None, layers: str | None = None, **_: str
):
    if not patient_id:
        return picker()
    context = Context.current(current_principal())
    try:
        check_patient_access(context, patient_id)
    except UnknownPatientError:
        return not_found(patient_id)
    audit("view_patient", patient_id, f"day={day} layers={layers}")
    return _page_json(context, patient_id, day, ",".join(parse_layers(layers)))


@cache.memoize()
def _page_json(context: Context, patient_id: str, day: str | None, layers: str) -> dict[str, Any]:
    """The whole patient page as plain component JSON, memoized per context (data version,
    rules, access), patient, day and layers; built for that access, never the ambient user."""
    tree = build_page(context, patient_id, day, layers)
    return json.loads(json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder))


def build_page(context: Context, patient_id: str, day: str | None, layers: str | None):
    view = patient_view(context, patient_id)
    p = view.patient
    days = view.daily["study_day"].tolist()
    last_day = int(max(days)) if days else None
    selected = int(day) if day and day.isdigit() and int(day) in days else last_day
    layer_list = parse_layers(layers)
    timeline = cached_timeline(context, patient_id, day=selected, layers=layer_list)
    biomarkers = cached_biomarkers(context, patient_id)
    died = p.get("death_study_day")
    trial = bool(p.get("trial_participant", True))
    day_word = "study day" if trial else "ICU day"
    facts = [
        f"Site {p['site_id']}",
        f"{int(p['age_years'])} y" if not pd.isna(p.get("age_years")) else None,
        {"F": "female", "M": "male"}.get(p.get("sex")),
        ("first dose " if trial else "ICU admission ")
        + f"{pd.Timestamp(p['anchor_time']):%Y-%m-%d %H:%M}",
        f"{day_word} {last_day}" if last_day else f"no {day_word}s yet",
        None if trial else "not a trial participant",
    ]
    bio_note = (
        "Post-baseline ferritin and HLA-DR are hidden in this blinded view: their course can reveal the allocation."
        if view.biomarkers_hidden_after_baseline
        else None
    )
    return html.Div(
        [
            dcc.Location(id=ids.PATIENT_URL, refresh=False),
            dcc.Store(id=ids.PATIENT_ID, data=patient_id),
            html.Div(
                [
                    html.H1(f"Patient {patient_id}", className="h4 mb-1"),
                    html.Div(" · ".join(f for f in facts if f), className="small text-muted mb-1"),
                    phenotype_badge(p),
                    dbc.Alert(
                        f"Died on study day {int(died)}. For the endpoint, days from {int(died)} on are scored 24."
                        if trial
                        else f"Died on ICU day {int(died)}.",
                        color="dark",
                        className="py-1 mt-2 mb-0 small",
                    )
                    if died is not None and not pd.isna(died)
                    else None,
                ],
                className="mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    dbc.Row(
                                        [
                                            dbc.Col(
                                                dbc.Checklist(
                                                    id=ids.PATIENT_LAYERS,
                                                    options=LAYER_OPTIONS,
                                                    value=layer_list,
                                                    inline=True,
                                                    switch=True,
                                                ),
                                                md=8,
                                            ),
                                            dbc.Col(
                                                dcc.Dropdown(
                                                    id=ids.PATIENT_DAY,
                                                    options=[
                                                        {"label": f"Day {d}", "value": d}
                                                        for d in days
                                                    ],
                                                    value=selected,
                                                    clearable=False,
                                                    placeholder="Day",
                                                ),
                                                md=4,
                                            ),
                                        ],
                                        className="g-2 mb-1",
                                    ),
                                    described(
                                        dcc.Graph(
                                            id=ids.PATIENT_TIMELINE,
                                            figure=timeline,
                                            config=figures.chart_config(f"sofa-{patient_id}"),
                                        ),
                                        timeline,
                                    ),
                                ]
                            )
                        ),
                        lg=9,
                    ),
                    dbc.Col(
                        endpoint_card(
                            {**view.endpoint, "window_closed": p.get("endpoint_window_closed")},
                            last_day=context.endpoint_rules.last_day,
                            threshold=context.endpoint_rules.threshold,
                            current_day=last_day or 0,
                        )
                        if trial
                        else not_in_trial_card(),
                        lg=3,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dbc.Card(
                dbc.CardBody(html.Div(why_section(view, selected), id=ids.PATIENT_WHY)),
                className="mb-3",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(
                            "Immune phenotype: ferritin and monocyte HLA-DR",
                            className="card-title-sm mb-1",
                        ),
                        html.Span("hidden: could reveal allocation", className="hidden-chip")
                        if bio_note
                        else None,
                        described(
                            dcc.Graph(
                                id=ids.PATIENT_BIOMARKERS,
                                figure=biomarkers,
                                config=figures.chart_config(f"biomarkers-{patient_id}"),
                            ),
                            biomarkers,
                        ),
                    ]
                ),
                className="mb-3",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(
                            [
                                html.Span(
                                    "Labs and vitals by study day (worst value of the day)",
                                    className="card-title-sm",
                                ),
                                dbc.Button(
                                    "Download CSV",
                                    id=ids.PATIENT_LABS_DOWNLOAD_BTN,
                                    size="sm",
                                    color="secondary",
                                    outline=True,
                                    className="float-end",
                                ),
                            ]
                        ),
                        dcc.Download(id=ids.PATIENT_LABS_DOWNLOAD),
                        dag.AgGrid(
                            id=ids.PATIENT_LABS,
                            rowData=tables.records(tables.labs_by_day(view.daily)),
                            columnDefs=[
                                {"field": c, "headerName": c}
                                for c in tables.labs_by_day(view.daily).columns
                            ],
                            defaultColDef={
                                "sortable": True,
                                "resizable": True,
                                "minWidth": 125,
                                "flex": 1,
                                "wrapHeaderText": True,
                                "autoHeaderHeight": True,
                            },
                            dashGridOptions={"domLayout": "autoHeight"},
                            style={"height": None},
                        ),
                    ]
                )
            ),
        ],
        className="patient-page",
    )


@callback(
    Output(ids.PATIENT_DAY, "value"),
    Input(ids.PATIENT_TIMELINE, "clickData"),
    State(ids.PATIENT_DAY, "options"),
    prevent_initial_call=True,
)
def click_day(click: dict[str, Any] | None, options: list[dict[str, Any]]):
    if not click or not click.get("points"):
        return no_update
    x = click["points"][0].get("x")
    try:
        day = round(float(x))
    except (TypeError, ValueError):
        return no_update
    return day if day in {o["value"] for o in options} else no_update


@callback(
    Output(ids.PATIENT_TIMELINE, "figure"),
    Output(ids.PATIENT_WHY, "children"),
    Output(ids.PATIENT_URL, "search"),
    Input(ids.PATIENT_DAY, "value"),
    Input(ids.PATIENT_LAYERS, "value"),
    State(ids.PATIENT_ID, "data"),
    prevent_initial_call=True,
)
def update_day(day: int | None, layers: list[str], patient_id: str):
    context = Context.current(current_principal())
    view = patient_view(context, patient_id)
    search = "?" + urlencode({"day": day, "layers": ",".join(layers or [])}) if day else no_update
    timeline = cached_timeline(context, patient_id, day=day, layers=layers or [])
    return timeline, why_section(view, day), search


@callback(
    Output(ids.PATIENT_LABS_DOWNLOAD, "data"),
    Input(ids.PATIENT_LABS_DOWNLOAD_BTN, "n_clicks"),
    State(ids.PATIENT_ID, "data"),
    prevent_initial_call=True,
)
def download_labs(_n: int, patient_id: str):
    view = patient_view(Context.current(current_principal()), patient_id)
    frame = safe_csv_frame(tables.labs_by_day(view.daily))
    audit("export", f"labs-{patient_id}.csv")
    return dcc.send_data_frame(frame.to_csv, f"labs-{patient_id}.csv", index=False)


@callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input("patient-picker", "value"),
    prevent_initial_call=True,
)
def pick(patient_id: str | None):
    return f"/patient/{patient_id}" if patient_id else no_update


def register() -> None:
    dash.register_page(
        __name__,
        path="/patient",
        path_template="/patient/<patient_id>",
        name="Patient",
        title="ImmunoSep: patient",
        layout=layout,
    )
