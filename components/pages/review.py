"""Data-quality review workspace (``/review``, docs/review.md): per-site summary, recruitment
by site and week, the rule-generated issue list with filters, review status per
patient-form with "mark reviewed", and the query panel (raise, answer, close).

Who sees it: monitors, the statistician (data manager), the DSMB (read-only) and the demo
role; clinicians get a notice, no data (:data:`core.review.PERMISSIONS`). Nothing here shows
or reads the arm: the data come from :mod:`components.data.review`, which never reads the
randomisation. Callbacks are thin: they ask the data layer and the pure builders below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, callback, ctx, dcc, html

from components.data import review as data
from components.data.keys import Context
from components.format import records
from components.server.auth import Principal, current_principal
from components.theme import FONT_FAMILY
from core.review import FORMS, RULES, Action, ReviewStatus, Severity
from core.review.summary import ORGAN_PCT_COLUMNS

# component ids (prefixed by the page, docs/conventions.md section 6)
SUMMARY_GRID: Final = "review-summary-grid"
RECRUITMENT: Final = "review-recruitment"
ISSUE_RULE: Final = "review-issue-rule"
ISSUE_SEVERITY: Final = "review-issue-severity"
ISSUE_SITE: Final = "review-issue-site"
ISSUE_PATIENT: Final = "review-issue-patient"
ISSUE_GRID: Final = "review-issue-grid"
ISSUE_COUNT: Final = "review-issue-count"
STATUS_FILTER: Final = "review-status-filter"
STATUS_GRID: Final = "review-status-grid"
STATUS_MARK: Final = "review-status-mark"
STATUS_MESSAGE: Final = "review-status-message"
QUERY_GRID: Final = "review-query-grid"
Q_PATIENT: Final = "review-q-patient"
Q_FORM: Final = "review-q-form"
Q_VARIABLE: Final = "review-q-variable"
Q_TIME: Final = "review-q-time"
Q_VALUE: Final = "review-q-value"
Q_TEXT: Final = "review-q-text"
Q_RAISE: Final = "review-q-raise"
Q_REPLY: Final = "review-q-reply"
Q_ANSWER: Final = "review-q-answer"
Q_CLOSE: Final = "review-q-close"
Q_SELECTED: Final = "review-q-selected"
Q_MESSAGE: Final = "review-q-message"

SEVERITY_LABELS: Final = {Severity.HIGH: "High", Severity.MEDIUM: "Medium", Severity.LOW: "Low"}
RULE_LABELS: Final = {
    "missing_baseline_component": "Missing day-1 component",
    "missing_day9_component": "Missing day-9 component",
    "implausible_value": "Implausible value",
    "late_entry": "Late entry",
}
STATUS_LABELS: Final = {s.value: s.value.capitalize() for s in ReviewStatus}
FORM_LABELS: Final = {k: f.label for k, f in FORMS.items()}
_GRID_DEFAULTS: Final = {
    "sortable": True,
    "resizable": True,
    "filter": True,
    "wrapHeaderText": True,
    "autoHeaderHeight": True,
}
_PCT: Final = {"function": "params.value == null ? '–' : d3.format('.1f')(params.value)"}


# --- pure builders ------------------------------------------------------------------------------


def recruitment_figure(rec: pd.DataFrame) -> go.Figure:
    """Randomisations per site (rows) and week (columns) as a heat map; weeks start on Monday
    (UTC). Sites are listed top to bottom in id order; empty weeks are 0, drawn white."""
    fig = go.Figure()
    if rec.empty:
        fig.add_annotation(text="No randomisations stored", showarrow=False, x=0.5, y=0.5)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    wide = rec.pivot(index="site_id", columns="week_start", values="randomised").sort_index(
        ascending=False
    )
    totals = wide.sum(axis=1).astype(int)
    fig.add_trace(
        go.Heatmap(
            z=wide.to_numpy(),
            x=list(wide.columns),
            y=[f"{s} (n = {totals[s]})" for s in wide.index],
            zmin=0,
            colorscale=[[0.0, "#ffffff"], [0.01, "#deebf7"], [1.0, "#08306b"]],
            colorbar={
                "title": {"text": "Randomised per week (patients)", "side": "right"},
                "thickness": 12,
            },
            hovertemplate="%{y}<br>week of %{x|%Y-%m-%d}: %{z} randomised<extra></extra>",
            xgap=0,
            ygap=1,
        )
    )
    n_sites = len(wide.index)
    fig.update_layout(
        height=max(260, 70 + 16 * n_sites),
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
        font={"family": FONT_FAMILY, "size": 11},
        plot_bgcolor="#ffffff",
    )
    fig.update_xaxes(title_text="Week of randomisation (Monday start, UTC)", showgrid=False)
    fig.update_yaxes(
        title_text="Site (patients randomised)",
        automargin=True,
        tickfont_size=10,
        tickmode="linear",
        dtick=1,
    )
    return fig


def _fit(min_width: int) -> dict[str, Any]:
    """A column of the per-site summary: shares the spare width, never narrower than its
    header word and its widest number."""
    return {"flex": 1, "minWidth": min_width}


def summary_columns() -> list[dict[str, Any]]:
    """Column definitions of the per-site summary (units and meanings in the tooltips); the
    count columns share the width, so the 15 columns fit at 1024 px without sideways scroll."""
    return [
        {"field": "site_id", "headerName": "Site", "pinned": "left", "width": 80},
        {"field": "patients", "headerName": "Patients", "type": "numericColumn", **_fit(64)},
        {
            "field": "expected_organ_days",
            "headerName": "Expected",
            "headerTooltip": "Organ-days due in the endpoint window (days 1-9 ended at the data "
            "cut-off, patient alive) × 6 SOFA components",
            "type": "numericColumn",
            **_fit(68),
        },
        {
            "field": "received_organ_days",
            "headerName": "Received",
            "headerTooltip": "Of the expected organ-days: component observed (not imputed)",
            "type": "numericColumn",
            **_fit(68),
        },
        {
            "field": "received_pct",
            "headerName": "Received %",
            "headerTooltip": "Received / expected (%); – when nothing is due yet",
            "type": "numericColumn",
            "valueFormatter": _PCT,
            **_fit(74),
        },
        {
            "field": "imputed_components",
            "headerName": "Imputed",
            "headerTooltip": "Components the SOFA derivation filled (day-1 zero or carried "
            "forward), days 1-9",
            "type": "numericColumn",
            **_fit(64),
        },
        {"field": "issues", "headerName": "Issues", "type": "numericColumn", **_fit(50)},
        {
            "field": "open_queries",
            "headerName": "Open queries",
            "type": "numericColumn",
            **_fit(56),
        },
        {
            "field": "answered_queries",
            "headerName": "Answered",
            "headerTooltip": "Answered queries waiting to be closed",
            "type": "numericColumn",
            **_fit(74),
        },
        {
            "headerName": "Received % by organ",
            "headerTooltip": "Per SOFA component: received / expected organ-days (%)",
            "children": [
                {
                    "field": col,
                    "headerName": label,
                    "headerTooltip": f"{label}: received / expected organ-days (%)",
                    "type": "numericColumn",
                    "valueFormatter": _PCT,
                    **_fit(48),
                }
                for col, label in ORGAN_PCT_COLUMNS.items()
            ],
        },
    ]


def summary_total(summary: pd.DataFrame) -> pd.DataFrame:
    """The pinned "All sites" row: sums, and percentages of the sums (– when nothing is
    due)."""
    counts = [
        "patients",
        "expected_organ_days",
        "received_organ_days",
        "imputed_components",
        "issues",
        "open_queries",
        "answered_queries",
    ]
    row: dict[str, Any] = {"site_id": "All sites", **{c: int(summary[c].sum()) for c in counts}}
    expected = row["expected_organ_days"]
    row["received_pct"] = 100.0 * row["received_organ_days"] / expected if expected else None
    for col in ORGAN_PCT_COLUMNS:
        organ = col.removeprefix("received_pct_")
        due = int(summary[f"expected_{organ}"].sum())
        got = int(summary[f"received_{organ}"].sum())
        row[col] = 100.0 * got / due if due else None
    return pd.DataFrame([row])


def issue_frame(issues: pd.DataFrame) -> pd.DataFrame:
    """The issue list as displayed: labels for rule, severity and form; value as text with
    its unit; "(not observed)" where a component is missing (never a blank)."""
    out = issues.copy()
    out["rule_label"] = out["rule"].map(RULE_LABELS).fillna(out["rule"])
    out["severity_label"] = out["severity"].map(
        {s.value: label for s, label in SEVERITY_LABELS.items()}
    )
    out["form_label"] = out["form"].map(FORM_LABELS).fillna(out["form"])
    out["value_text"] = [
        "(not observed)" if pd.isna(v) else f"{v:g} {u}".strip()
        for v, u in zip(out["value"], out["unit"].fillna(""), strict=True)
    ]
    return out


def filter_issues(
    issues: pd.DataFrame,
    rules: Iterable[str] | None,
    severities: Iterable[str] | None,
    sites: Iterable[str] | None,
    patient: str | None,
) -> pd.DataFrame:
    """Issues matching every active filter (an empty filter keeps everything)."""
    keep = pd.Series(True, index=issues.index)
    if rules:
        keep &= issues["rule"].isin(list(rules))
    if severities:
        keep &= issues["severity"].isin(list(severities))
    if sites:
        keep &= issues["site_id"].isin(list(sites))
    if patient and patient.strip():
        keep &= issues["patient_id"].str.contains(patient.strip(), case=False, regex=False)
    return issues[keep]


#: a grid column: (field, header, width[, options]); width in pixels, or None for the column
#: that takes the rest of the row (flex 1; its minimum width among the options)
ColumnSpec = tuple[str, str, int | None] | tuple[str, str, int | None, dict[str, Any]]
_NUMERIC: Final = {"type": "numericColumn"}


def _columns(spec: Iterable[ColumnSpec]) -> list[dict[str, Any]]:
    """AG Grid column definitions from ``(field, header, width[, options])`` rows."""
    out = []
    for field, header, width, *options in spec:
        column: dict[str, Any] = {"field": field, "headerName": header}
        column.update({"flex": 1} if width is None else {"width": width})
        for extra in options:
            column.update(extra)
        out.append(column)
    return out


def issue_columns() -> list[dict[str, Any]]:
    return _columns(
        [
            ("severity_label", "Severity", 108),
            ("rule_label", "Rule", 215, {"tooltipField": "rule"}),
            ("patient_id", "Patient", 136),
            ("site_id", "Site", 104),
            ("form_label", "Form", 136),
            ("variable", "Variable", 140, {"tooltipField": "variable"}),
            ("value_text", "Value (unit)", 136),
            ("time", "Time (UTC)", 156),
            ("study_day", "Study day", 90, _NUMERIC),
            ("detail", "Detail", None, {"minWidth": 260, "tooltipField": "detail"}),
        ]
    )


def status_frame(status: pd.DataFrame, wanted: Iterable[str] | None) -> pd.DataFrame:
    """Review status rows as displayed, filtered by status (empty: all); a row id per
    patient-form."""
    out = status if not wanted else status[status["status"].isin(list(wanted))]
    out = out.copy()
    out["row_id"] = out["patient_id"] + "/" + out["form"]
    out["status_label"] = out["status"].map(STATUS_LABELS)
    out["reviewed"] = [
        "" if pd.isna(by) else f"{by} ({role}), {pd.Timestamp(at):%Y-%m-%d %H:%M} UTC"
        for by, role, at in zip(
            out["reviewed_by"], out["reviewed_role"], out["reviewed_at"], strict=True
        )
    ]
    return out


def status_columns(selectable: bool) -> list[dict[str, Any]]:
    status_colours = {
        "text-danger fw-semibold": f"params.data.status === '{ReviewStatus.NEW_DATA.value}'",
        "text-success": f"params.data.status === '{ReviewStatus.REVIEWED.value}'",
    }
    return _columns(
        [
            ("patient_id", "Patient", 150 if selectable else 136),
            ("site_id", "Site", 104),
            ("form_label", "Form", 140),
            (
                "n_rows",
                "Values",
                100,
                {
                    **_NUMERIC,
                    "headerTooltip": "Stored values on the form (observations and infusions)",
                },
            ),
            ("status_label", "Status", 170, {"cellClassRules": status_colours}),
            ("reviewed", "Reviewed by, at", None, {"minWidth": 200}),
        ]
    )


def query_frame(queries: pd.DataFrame) -> pd.DataFrame:
    out = queries.copy()
    out["form_label"] = out["form"].map(FORM_LABELS).fillna(out["form"])
    out["value_text"] = ["" if pd.isna(v) else f"{v:g}" for v in out["value"]]
    out["thread"] = [
        " · ".join(
            p
            for p in (
                f"Q ({rb}): {t}",
                "" if pd.isna(a) or not a else f"A ({ab}): {a}",
                "" if pd.isna(c) or not c else f"Closed ({cb}): {c}",
            )
            if p
        )
        for t, rb, a, ab, c, cb in zip(
            out["text"],
            out["raised_by"],
            out["answer"],
            out["answered_by"],
            out["close_note"],
            out["closed_by"],
            strict=True,
        )
    ]
    return out


def query_columns() -> list[dict[str, Any]]:
    status_colours = {
        "text-danger fw-semibold": "params.value === 'open'",
        "text-primary": "params.value === 'answered'",
    }
    return _columns(
        [
            ("id", "#", 64, _NUMERIC),
            ("status", "Status", 96, {"cellClassRules": status_colours}),
            ("patient_id", "Patient", 124),
            (
                "thread",
                "Query, answer, close note",
                None,
                {"minWidth": 300, "tooltipField": "thread"},
            ),
            ("form_label", "Form", 110),
            ("variable", "Variable", 110),
            ("obs_time", "Time (UTC)", 156),
            ("value_text", "Value", 90),
            ("raised_at", "Raised (UTC)", 156),
        ]
    )


# --- layout -------------------------------------------------------------------------------------


def _card(title: str, body: list[Any], *, subtitle: str | None = None) -> dbc.Card:
    head = [html.H2(title, className="h6 mb-0")]
    if subtitle:
        head.append(html.Div(subtitle, className="small text-muted"))
    return dbc.Card([dbc.CardHeader(head), dbc.CardBody(body)], className="mb-3 shadow-sm")


def _grid(grid_id: str, rows: list[dict[str, Any]], columns: list[dict[str, Any]], **kw) -> Any:
    options = {
        "tooltipShowDelay": 300,
        "animateRows": False,
        "rowHeight": 30,
        **kw.pop("options", {}),
    }
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={**_GRID_DEFAULTS, **kw.pop("col_defaults", {})},
        dashGridOptions=options,
        **kw,
    )


def refused(principal: Principal) -> html.Div:
    return html.Div(
        [
            html.H1("Data review", className="h4"),
            dbc.Alert(
                "The data-quality review is for monitors, the data manager (statistician) and "
                f"the DSMB; the role {principal.label!r} has no access (docs/review.md).",
                color="secondary",
            ),
        ]
    )


def layout(**_: str) -> html.Div:
    principal = current_principal()
    if not data.may_do(principal, Action.VIEW):
        return refused(principal)
    c = Context.current(principal)
    report = data.issues(c)
    issues = issue_frame(report.issues)
    summary = data.summary(c)
    can = {a: data.may_do(principal, a) for a in Action}
    cutoff = "none" if report.cutoff is None else f"{report.cutoff:%Y-%m-%d %H:%M} UTC"
    sites = sorted(summary["site_id"])
    rights = ", ".join(a.value for a in Action if a is not Action.VIEW and can[a]) or "read only"
    header = html.Div(
        [
            html.H1("Data review", className="h4 mb-1"),
            html.Div(
                f"{int(summary['patients'].sum())} trial patients at {len(sites)} site(s) · data "
                f"cut-off {cutoff} · {len(issues)} issue(s) · your role may: {rights}",
                className="small text-muted mb-2",
            ),
            *[dbc.Alert(n, color="warning", className="py-1 small") for n in report.notes],
        ]
    )
    summary_card = _card(
        "Per-site summary",
        [
            _grid(
                SUMMARY_GRID,
                records(summary),
                summary_columns(),
                col_defaults={"filter": False},
                options={"pinnedBottomRowData": records(summary_total(summary))},
                style={"height": "420px"},
            )
        ],
        subtitle="SOFA components expected vs received by organ-day, days 1-9 of the endpoint "
        "window",
    )
    recruitment = recruitment_figure(data.recruitment(c))
    recruitment_card = _card(
        "Recruitment by site",
        [
            dcc.Graph(
                id=RECRUITMENT,
                figure=recruitment,
                config={"displaylogo": False, "responsive": True, "displayModeBar": False},
                style={"height": f"{recruitment.layout.height}px"},
            )
        ],
        subtitle="Randomisations per site per week",
    )
    filters = dbc.Row(
        [
            dbc.Col(
                dcc.Dropdown(
                    id=ISSUE_RULE,
                    options=[
                        {"label": RULE_LABELS.get(r.rule_id, r.rule_id), "value": r.rule_id}
                        for r in RULES
                    ],
                    multi=True,
                    placeholder="Rule: all",
                ),
                md=4,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id=ISSUE_SEVERITY,
                    options=[{"label": v, "value": k.value} for k, v in SEVERITY_LABELS.items()],
                    multi=True,
                    placeholder="Severity: all",
                ),
                md=2,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id=ISSUE_SITE,
                    options=[{"label": s, "value": s} for s in sites],
                    multi=True,
                    placeholder="Site: all",
                ),
                md=3,
            ),
            dbc.Col(
                dbc.Input(
                    id=ISSUE_PATIENT, placeholder="Patient id contains…", type="text", debounce=True
                ),
                md=3,
            ),
        ],
        className="g-2 mb-2",
    )
    issue_card = _card(
        "Issues",
        [
            filters,
            html.Div(id=ISSUE_COUNT, className="small text-muted mb-1"),
            _grid(
                ISSUE_GRID,
                records(issues),
                issue_columns(),
                options={
                    "rowSelection": {"mode": "singleRow", "checkboxes": False,
                                     "enableClickSelection": True},
                    "pagination": True,
                    "paginationPageSize": 50,
                },
                style={"height": "420px"},
            ),
            html.Div(
                "Select an issue to fill the query form below.", className="small text-muted mt-1"
            ),
        ],
        subtitle="Generated by rules: missing endpoint components (days 1 and 9), implausible "
        "values, late entries",
    )  # fmt: skip
    status_card = _card(
        "Review status per patient-form",
        [
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Dropdown(
                            id=STATUS_FILTER,
                            options=[{"label": v, "value": k} for k, v in STATUS_LABELS.items()],
                            multi=True,
                            placeholder="Status: all",
                        ),
                        md=8,
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Mark selected reviewed",
                            id=STATUS_MARK,
                            size="sm",
                            color="primary",
                            disabled=not can[Action.MARK],
                            className="w-100",
                        ),
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id=STATUS_MESSAGE, className="small mb-1"),
            _grid(
                STATUS_GRID,
                [],
                status_columns(can[Action.MARK]),
                getRowId="params.data.row_id",
                options={
                    "rowSelection": {"mode": "multiRow", "checkboxes": can[Action.MARK],
                                     "headerCheckbox": can[Action.MARK],
                                     "enableClickSelection": can[Action.MARK]},
                    "pagination": True,
                    "paginationPageSize": 50,
                },
                style={"height": "420px"},
            ),
        ],
        subtitle="A mark is reset to “new data since review” when an import adds values to "
        "the form",
    )  # fmt: skip
    query_card = _card(
        "Queries",
        [
            _query_form(can),
            html.Div(id=Q_MESSAGE, className="small my-1"),
            _grid(
                QUERY_GRID,
                records(query_frame(data.queries(c))),
                query_columns(),
                getRowId="String(params.data.id)",
                options={"rowSelection": {"mode": "singleRow", "checkboxes": False,
                                          "enableClickSelection": True}},
                style={"height": "240px"},
            ),
            _reply_form(can),
        ],
        subtitle="Raise on a value, answer, close; every action is written to the audit trail",
    )  # fmt: skip
    return html.Div(
        [
            header,
            summary_card,
            recruitment_card,
            issue_card,
            query_card,
            status_card,
        ],
        className="review-page",
    )


def _query_form(can: dict[Action, bool]) -> html.Div:
    disabled = not can[Action.RAISE]
    field = {"size": "sm", "disabled": disabled}
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(dbc.Input(id=Q_PATIENT, placeholder="Patient", **field), md=3),
                    dbc.Col(
                        dbc.Select(
                            id=Q_FORM,
                            options=[{"label": v, "value": k} for k, v in FORM_LABELS.items()],
                            placeholder="Form",
                            **field,
                        ),
                        md=3,
                    ),
                    dbc.Col(dbc.Input(id=Q_VARIABLE, placeholder="Variable", **field), md=2),
                    dbc.Col(dbc.Input(id=Q_TIME, placeholder="Time (UTC)", **field), md=2),
                    dbc.Col(dbc.Input(id=Q_VALUE, placeholder="Value", **field), md=2),
                ],
                className="g-1 mb-1",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Textarea(
                            id=Q_TEXT,
                            placeholder="Query text: what looks wrong and what to check",
                            rows=2,
                            **field,
                        ),
                        md=9,
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Raise query",
                            id=Q_RAISE,
                            size="sm",
                            color="primary",
                            disabled=disabled,
                            className="w-100",
                        ),
                        md=3,
                    ),
                ],
                className="g-1",
            ),
        ]
    )


def _reply_form(can: dict[Action, bool]) -> html.Div:
    return html.Div(
        [
            html.Div(
                "Select a query to answer or close it.", id=Q_SELECTED, className="small mt-2"
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Textarea(
                            id=Q_REPLY,
                            placeholder="Answer (data manager) or close note",
                            rows=2,
                            size="sm",
                            disabled=not (can[Action.ANSWER] or can[Action.CLOSE]),
                        ),
                        md=8,
                    ),
                    dbc.Col(
                        [
                            dbc.Button(
                                "Answer",
                                id=Q_ANSWER,
                                size="sm",
                                color="primary",
                                outline=True,
                                disabled=not can[Action.ANSWER],
                                className="w-100 mb-1",
                            ),
                            dbc.Button(
                                "Close",
                                id=Q_CLOSE,
                                size="sm",
                                color="secondary",
                                outline=True,
                                disabled=not can[Action.CLOSE],
                                className="w-100",
                            ),
                        ],
                        md=4,
                    ),
                ],
                className="g-1 mt-1",
            ),
        ]
    )


# --- callbacks (thin) ---------------------------------------------------------------------------


def _context() -> tuple[Principal, Context] | None:
    principal = current_principal()
    if not data.may_do(principal, Action.VIEW):
        return None
    return principal, Context.current(principal)


def _message(ok: bool, text: str) -> html.Span:
    return html.Span(text, className="text-success" if ok else "text-danger")


def _rows(selected: Any) -> list[dict[str, Any]]:
    """The selected grid rows a client sent, objects only (a forged or stale request may send
    anything: the callbacks answer it as "nothing selected", never with an error)."""
    return [r for r in selected if isinstance(r, dict)] if isinstance(selected, list) else []


def _query_id(selected: Any) -> int | None:
    """The id of the selected query row, or None when none (or no whole number) was sent."""
    rows = _rows(selected)
    value = rows[0].get("id") if rows else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _number_text(value: Any) -> str:
    """A selected issue's value for the query form ("" when it is not a number)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return ""


@callback(
    Output(ISSUE_GRID, "rowData"),
    Output(ISSUE_COUNT, "children"),
    Input(ISSUE_RULE, "value"),
    Input(ISSUE_SEVERITY, "value"),
    Input(ISSUE_SITE, "value"),
    Input(ISSUE_PATIENT, "value"),
)
def filter_issue_rows(rules, severities, sites, patient):
    access = _context()
    if access is None:
        return [], ""
    issues = data.issues(access[1]).issues
    shown = filter_issues(issues, rules, severities, sites, patient)
    return records(issue_frame(shown)), f"{len(shown)} of {len(issues)} issue(s) shown"


@callback(
    Output(Q_PATIENT, "value"),
    Output(Q_FORM, "value"),
    Output(Q_VARIABLE, "value"),
    Output(Q_TIME, "value"),
    Output(Q_VALUE, "value"),
    Input(ISSUE_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def fill_query_form(selected):
    rows = _rows(selected)
    if not rows:
        return (dash.no_update,) * 5
    row = rows[0]
    return (
        row.get("patient_id"),
        row.get("form"),
        row.get("variable"),
        row.get("time"),
        _number_text(row.get("value")),
    )


@callback(
    Output(STATUS_GRID, "rowData"),
    Output(STATUS_MESSAGE, "children"),
    Input(STATUS_FILTER, "value"),
    Input(STATUS_MARK, "n_clicks"),
    State(STATUS_GRID, "selectedRows"),
)
def status_rows(wanted, _n, selected):
    access = _context()
    if access is None:
        return [], ""
    principal, c = access
    message: Any = ""
    if ctx.triggered_id == STATUS_MARK:
        rows = [
            (r["patient_id"], r["form"])
            for r in _rows(selected)
            if isinstance(r.get("patient_id"), str) and isinstance(r.get("form"), str)
        ]
        message = _message(*data.mark(principal, rows))
    return records(status_frame(data.status(c), wanted)), message


@callback(
    Output(Q_SELECTED, "children"),
    Input(QUERY_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def show_selected_query(selected):
    query_id = _query_id(selected)
    if query_id is None:
        return "Select a query to answer or close it."
    q = _rows(selected)[0]
    return (
        f"Query #{query_id} ({q.get('status', '?')}) on {q.get('patient_id', '?')}, "
        f"{q.get('variable', '?')}"
    )


@callback(
    Output(QUERY_GRID, "rowData"),
    Output(Q_MESSAGE, "children"),
    Output(SUMMARY_GRID, "rowData"),
    Input(Q_RAISE, "n_clicks"),
    Input(Q_ANSWER, "n_clicks"),
    Input(Q_CLOSE, "n_clicks"),
    State(Q_PATIENT, "value"),
    State(Q_FORM, "value"),
    State(Q_VARIABLE, "value"),
    State(Q_TIME, "value"),
    State(Q_VALUE, "value"),
    State(Q_TEXT, "value"),
    State(Q_REPLY, "value"),
    State(QUERY_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def query_action(_r, _a, _c, patient, form, variable, time, value, text, reply, selected):
    access = _context()
    if access is None:
        return [], "", []
    principal, c = access
    query_id = _query_id(selected)
    if ctx.triggered_id == Q_RAISE:
        ok, msg = data.raise_(
            principal,
            patient_id=patient or "",
            form=form or "",
            variable=variable or "",
            text=text or "",
            obs_time=time,
            value=value,
        )
    elif ctx.triggered_id == Q_ANSWER:
        ok, msg = data.answer(principal, query_id, reply or "")
    else:
        ok, msg = data.close(principal, query_id, reply or "")
    return (
        records(query_frame(data.queries(c))),
        _message(ok, msg),
        records(data.summary(c)),
    )


def register() -> None:
    dash.register_page(
        __name__,
        path="/review",
        name="Review",
        title="ImmunoSep: data review",
        layout=layout,
    )
