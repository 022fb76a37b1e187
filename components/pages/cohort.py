"""Cohort page for trial monitors and the DSMB (issue 7).

One tab per panel (flow, baseline, primary, trajectories, survival, immune, safety,
completeness), rendered lazily: only the active tab is computed, by the cached functions of
:mod:`components.cohort_data`, and drawn by the pure builders of
:mod:`components.cohort_figures`. Filters and the tab live in the URL
(``/cohort?tab=primary&phenotype=SIP&age=65-79``), so a link reproduces the view.

Blinding is decided on the server from ``current_principal().arm_visibility``: blinded roles
get pooled / by-phenotype panels (the arm table is not even loaded), the DSMB closed session
gets coded groups. Component ids, the URL and stores never carry a group; table columns of
groups are the neutral fields ``g0``, ``g1`` with the label only as the header.
"""

from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from components import cohort_data as cd
from components import cohort_figures as cf
from components import ids, services
from components.auth import ArmVisibility, Principal, current_principal
from components.tables import records, safe_csv_frame

TABS = (
    ("flow", "CONSORT flow"),
    ("baseline", "Baseline (Table 1)"),
    ("primary", "Primary endpoint"),
    ("trajectories", "SOFA trajectories"),
    ("survival", "Survival"),
    ("immune", "Immune reversal"),
    ("safety", "Safety"),
    ("completeness", "Data completeness"),
)
TAB_KEYS = tuple(k for k, _ in TABS)
DEFAULT_TAB = "primary"
FILTER_LABELS = {
    "site": "Site",
    "country": "Country",
    "phenotype": "Immune state",
    "infection": "Infection type",
    "age": "Age band",
    "sofa": "Baseline SOFA band",
}
HIDDEN = "hidden: could reveal allocation"
BLINDING_WORDS = {
    ArmVisibility.NONE: "Blinded: pooled and by immune state only",
    ArmVisibility.CODED: "Closed session: coded groups (Group A / Group B)",
    ArmVisibility.FULL: "Unblinded: treatment allocation shown",
}


def filter_id(name: str) -> str:
    return f"cohort-f-{name}"


def graph(name: str, fig: Any) -> dcc.Graph:
    return dcc.Graph(
        id={"type": "cohort-graph", "name": name},
        figure=fig,
        config={
            "displaylogo": False,
            "toImageButtonOptions": {"format": "png", "filename": f"cohort-{name}", "scale": 2},
        },
    )


def csv_button(name: str) -> dbc.Button:
    return dbc.Button(
        "Download CSV",
        id={"type": "cohort-csv", "name": name},
        size="sm",
        color="secondary",
        outline=True,
        className="float-end",
    )


def grid(name: str, frame: pd.DataFrame, labels: dict[str, str] | None = None) -> dag.AgGrid:
    """A read-only grid; ``labels`` maps neutral fields (g0, g1, ...) to header text."""
    labels = labels or {}
    cols = [c for c in frame.columns if not c.endswith("_key")]
    return dag.AgGrid(
        id={"type": "cohort-grid", "name": name},
        rowData=records(frame),
        columnDefs=[
            {"field": c, "headerName": labels.get(c, c), "tooltipField": c}
            | ({"flex": 2, "minWidth": 240, "wrapText": True, "autoHeight": True} if i == 0 else {})
            for i, c in enumerate(cols)
        ],
        defaultColDef={"sortable": True, "resizable": True, "minWidth": 90, "flex": 1},
        dashGridOptions={"domLayout": "autoHeight", "tooltipShowDelay": 300},
        style={"height": None},
        className="ag-theme-alpine cohort-grid",
    )


def hidden_chip(explanation: str) -> html.Div:
    return html.Div(
        [
            html.Span(HIDDEN, className="hidden-chip me-2"),
            html.Span(explanation, className="small"),
        ],
        className="mb-2",
    )


def section(title: str, *children: Any, csv: str | None = None) -> dbc.Card:
    head = [html.H2(title, className="h6 d-inline-block mb-2")]
    if csv:
        head.append(csv_button(csv))
    return dbc.Card(dbc.CardBody([html.Div(head), *children]), className="mb-3")


def group_headers(labels: tuple[str, ...], suffix: str = "") -> dict[str, str]:
    return {f"g{i}": f"{lab}{suffix}" for i, lab in enumerate(labels)}


# ---------------------------------------------------------------------------------------------
# Panels: content + the display frames behind every table (also used for CSV and the report)
# ---------------------------------------------------------------------------------------------


def panel_data(tab: str, principal: Principal, filters: cd.CohortFilters) -> dict[str, Any]:
    """Figures and display tables of one tab: ``{"figures": {...}, "tables": {...}, ...}``."""
    g = cd.groups_for(principal.arm_visibility)
    rules = services.settings().endpoint_rules
    figs: dict[str, Any] = {}
    tables: dict[str, tuple[pd.DataFrame, dict[str, str]]] = {}
    notes: list[str] = []
    chips: list[str] = []
    if tab == "flow":
        res = cd.consort(principal, filters)
        figs["consort"] = cf.consort_figure(res["counts"], order=g.labels, title="CONSORT flow")
        tables["consort"] = (cf.consort_table(res["counts"]), {})
        notes += res["notes"]
    elif tab == "baseline":
        res = cd.baseline(principal, filters)
        tables["table1_group"] = (
            cf.table_one_display(res["by_group"], g.labels),
            group_headers(g.labels),
        )
        tables["table1_phenotype"] = (
            cf.table_one_display(res["by_phenotype"], cd.PHENOTYPE_STRATA),
            group_headers(cd.PHENOTYPE_STRATA),
        )
        notes.append(
            "No baseline p-values (CONSORT): balance is shown as the absolute standardized "
            "mean difference (SMD; < 0.1 is usually read as balanced)."
        )
    elif tab == "primary":
        res = cd.primary(principal, filters)
        for tag, last in (("d9", rules.last_day), ("d15", rules.day15_last_day)):
            figs[f"responders_{tag}"] = cf.responders_figure(
                res[f"proportions_{tag}"],
                g.labels,
                title=f"SOFA response by day {last} (decrease > {rules.threshold})",
                threshold=rules.threshold,
            )
            tables[f"primary_{tag}"] = (
                cf.primary_table(res[f"proportions_{tag}"], res[f"summary_{tag}"], g.labels),
                group_headers(g.labels, ": responders [95 % CI]"),
            )
        if len(res["forest"]):
            figs["forest"] = cf.forest_figure(
                res["forest"],
                compared=g.compared,
                difference_words=g.difference_words,
                title="Subgroups (day-9 response; exploratory)",
            )
            tables["forest"] = (
                cf.forest_table(res["forest"], compared=g.compared),
                group_headers(g.labels),
            )
        if g.compared:
            notes.append(
                f"Risk difference = {g.difference_words} (percentage points, Newcombe 95 % CI); "
                "odds ratio with Woolf 95 % CI; two-sided Fisher exact P; interaction P from a "
                "logistic likelihood-ratio test. Subgroup analyses are exploratory."
            )
        else:
            notes.append(
                "Pooled responder proportions with Wilson 95 % CI; comparisons between "
                "allocation groups are not shown in the blinded view."
            )
    elif tab == "trajectories":
        res = cd.trajectories(principal, filters)
        figs["trajectories"] = cf.trajectory_figure(
            res["trajectories"], title="Mean SOFA by study day (95 % CI)"
        )
        figs["decrease"] = cf.decrease_histogram(
            res["decrease_histogram"],
            threshold=rules.threshold,
            title=f"Day-9 SOFA decrease ({res['n_evaluable']} evaluable patients)",
        )
        traj = res["trajectories"].rename(
            columns={
                "arm": "Group",
                "study_day": "Study day",
                "n_patients": "Patients (n)",
                "mean_sofa": "Mean SOFA (points)",
                "sd_sofa": "SD (points)",
                "ci_lower": "95 % CI lower",
                "ci_upper": "95 % CI upper",
            }
        )
        tables["trajectories"] = (traj.round(2), {})
    elif tab == "survival":
        for horizon in (28, 90):
            res = cd.survival(principal, filters, horizon)
            ann = cf.km_annotation(
                res["logrank"],
                res["cox"],
                ratio_words=g.difference_words.replace(" − ", " vs ") if g.compared else "",
            )
            if not g.compared and res["logrank"] is not None:
                ann = ann.replace("Log-rank P", "Log-rank P (MALS vs SIP)")
            figs[f"km{horizon}"] = cf.km_figure(
                res["km"],
                horizon=horizon,
                annotation=ann,
                title=f"Survival to day {horizon}",
            )
            tables[f"at_risk_{horizon}"] = (cf.km_table(res["km"]), {})
            if res["mortality"] is not None:
                t = cf.comparison_texts(res["mortality"])
                m = res["mortality"]
                tables[f"mortality_{horizon}"] = (
                    pd.DataFrame(
                        [
                            {
                                "Outcome": f"{horizon}-day mortality",
                                "g0": cf.fmt_prop(m.events_treated, m.n_treated),
                                "g1": cf.fmt_prop(m.events_control, m.n_control),
                                "Risk difference, % (95 % CI)": t["rd"],
                                "Odds ratio (95 % CI)": t["or"],
                                "Fisher P": t["p"],
                            }
                        ]
                    ),
                    group_headers(g.labels),
                )
        if not g.compared:
            chips.append("Survival by allocation group is not shown in the blinded view.")
    elif tab == "immune":
        res = cd.immune(principal, filters)
        figs["reversal"] = cf.reversal_figure(
            res["reversal_props"],
            g.labels,
            title=f"Immune reversal by day 28 ({res['n_evaluable']} patients with ≥ 2 samples)",
        )
        figs["phenotype_shift"] = cf.phenotype_shift_figure(
            res["phenotype_over_time"],
            windows=[w[2] for w in cd.SHIFT_WINDOWS],
            title="Immune state over time (last sample per window)",
        )
        if len(res["reversal"]):
            tables["reversal"] = (
                cf.primary_table(res["reversal_props"], res["reversal"], g.labels),
                group_headers(g.labels, ": reversed [95 % CI]"),
            )
        if len(res["shifts"]):
            tables["shifts"] = (res["shifts"].rename(columns={"arm": "Group"}), {})
        if not g.compared:
            chips.append(
                "Post-baseline HLA-DR and ferritin by allocation group (they move with the "
                "active products) are withheld; pooled summaries only."
            )
        notes.append(
            "SIP reversal: HLA-DR > 8000 AB/C with ferritin < 4420 ng/mL; MALS reversal: "
            "ferritin fall ≥ 15 % from baseline."
        )
    elif tab == "safety":
        res = cd.safety(principal, filters)
        figs["ae"] = cf.ae_figure(
            res["table"],
            list(res["n_by_group"]),
            title="Most frequent adverse events (preferred terms)",
        )
        labels = tuple(res["n_by_group"])
        heads = {}
        for i, lab in enumerate(labels):
            heads[f"g{i}"] = f"{lab} (n = {res['n_by_group'][lab]}): patients (%) · events"
            heads[f"g{i}_serious"] = f"{lab}: serious (patients)"
            heads[f"g{i}_severe"] = f"{lab}: severe (patients)"
        tables["ae"] = (cf.ae_table(res["table"], labels), heads)
        if res["aesi"]:
            rows = []
            for item in res["aesi"]:
                m = item["comparison"]
                t = cf.comparison_texts(m)
                rows.append(
                    {
                        "Adverse event of special interest": item["aesi"],
                        "g0": cf.fmt_prop(m.events_treated, m.n_treated),
                        "g1": cf.fmt_prop(m.events_control, m.n_control),
                        "Risk difference, % (95 % CI)": t["rd"],
                        "Fisher P": t["p"],
                    }
                )
            tables["aesi"] = (pd.DataFrame(rows), group_headers(g.labels))
        else:
            chips.append(
                "Anemia and hemorrhage (adverse events of special interest) by allocation "
                "group, and the patients behind them, are withheld; pooled counts only."
            )
        deaths = res["deaths"].rename(
            columns={
                "patient_id": "Patient",
                "site_id": "Site",
                "phenotype": "Immune state",
                "death_study_day": "Study day of death",
                "group": "Group",
            }
        )
        tables["deaths"] = (deaths, {})
    elif tab == "completeness":
        res = cd.completeness(principal, filters)
        figs["completeness"] = cf.completeness_heatmap(
            res["grid"], title="SOFA components measured (not imputed), % per site and study day"
        )
        tables["query"] = (
            res["query"].rename(
                columns={
                    "patient_id": "Patient",
                    "site_id": "Site",
                    "day1_components_imputed": "Day-1 components imputed (scored 0)",
                    "days_2_9_carried_forward": "Days 2–9 carried forward (LOCF)",
                    "days_2_9_scored_24_after_death": "Days 2–9 scored 24 (death)",
                    "sofa_decrease_day9": "Day-9 SOFA decrease (points)",
                    "responder_day9": "Responder (day 9)",
                }
            ),
            {},
        )
        notes.append(
            "Query list: patients whose primary endpoint uses imputed days (day-1 components "
            "scored 0, or days 2–9 carried forward). Export it to raise data queries."
        )
    else:
        raise ValueError(f"unknown tab {tab!r}")
    return {"figures": figs, "tables": tables, "notes": notes, "chips": chips}


TABLE_TITLES = {
    "consort": "CONSORT counts",
    "table1_group": "Table 1 by allocation group",
    "table1_phenotype": "Table 1 by immune state",
    "primary_d9": "Primary endpoint: SOFA response by day 9",
    "primary_d15": "Secondary endpoint: SOFA response by day 15",
    "forest": "Subgroup estimates",
    "trajectories": "Mean SOFA by study day",
    "at_risk_28": "Numbers at risk (day 28)",
    "at_risk_90": "Numbers at risk (day 90)",
    "mortality_28": "28-day mortality",
    "mortality_90": "90-day mortality",
    "reversal": "Immune reversal by day 28",
    "shifts": "Immune-state shifts",
    "ae": "Adverse events by system organ class and preferred term",
    "aesi": "Adverse events of special interest",
    "deaths": "Deaths to day 90",
    "query": "Endpoint depends on imputed days: query list",
}


def table_title(name: str, principal: Principal) -> str:
    title = TABLE_TITLES.get(name, name)
    if name == "table1_group" and principal.arm_visibility is ArmVisibility.NONE:
        return "Table 1 (pooled)"
    return title


def render_panel(tab: str, principal: Principal, filters: cd.CohortFilters) -> html.Div:
    data = panel_data(tab, principal, filters)
    figs, tables = data["figures"], data["tables"]
    children: list[Any] = [html.H2(dict(TABS)[tab], className="h5 mb-2 cohort-panel-title")]
    children += [hidden_chip(c) for c in data["chips"]]
    children += [html.P(n, className="small text-muted mb-2") for n in data["notes"]]
    pairs = {
        "primary": [
            ("responders_d9", "primary_d9"),
            ("responders_d15", "primary_d15"),
            ("forest", "forest"),
        ],
        "survival": [
            ("km28", "mortality_28"),
            (None, "at_risk_28"),
            ("km90", "mortality_90"),
            (None, "at_risk_90"),
        ],
        "flow": [("consort", "consort")],
        "trajectories": [("trajectories", None), ("decrease", "trajectories")],
        "immune": [("reversal", "reversal"), ("phenotype_shift", "shifts")],
        "safety": [("ae", "ae"), (None, "aesi"), (None, "deaths")],
        "completeness": [("completeness", None), (None, "query")],
        "baseline": [(None, "table1_group"), (None, "table1_phenotype")],
    }[tab]
    for fig_name, table_name in pairs:
        parts: list[Any] = []
        if fig_name and fig_name in figs:
            parts.append(graph(fig_name, figs[fig_name]))
        if table_name and table_name in tables:
            frame, labels = tables[table_name]
            parts.append(grid(table_name, frame, labels))
        if parts:
            title = (
                table_title(table_name, principal)
                if table_name in tables
                else (figs[fig_name].layout.title.text or fig_name)
            )
            children.append(
                section(title, *parts, csv=table_name if table_name in tables else None)
            )
    return html.Div(children, className=f"cohort-panel cohort-panel-{tab}")


# ---------------------------------------------------------------------------------------------
# Publication badge
# ---------------------------------------------------------------------------------------------


def publication_badge() -> html.Span:
    check = cd.publication_check()
    ok = bool(check["match"].all())
    details = "; ".join(
        f"{r['outcome']} {r['counts']}: RD {r['computed_rd']} (printed {r['published_rd']}), "
        f"OR {r['computed_or']} (printed {r['published_or']}), P {r['computed_p']} "
        f"(printed {r['published_p']})"
        + (f" [not compared: {r['not_compared']}]" if r["not_compared"] else "")
        for r in check.to_dict("records")
    )
    return html.Span(
        [
            dbc.Badge(
                "✓ reproduces the publication" if ok else "✗ does not reproduce the publication",
                color="success" if ok else "danger",
                id="cohort-badge",
                className="me-1",
            ),
            dbc.Tooltip(details, target="cohort-badge", placement="bottom"),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def filters_from_query(query: dict[str, Any]) -> cd.CohortFilters:
    return cd.CohortFilters.make(**{k: query.get(k) for k in cd.FILTER_FIELDS})


def count_text(before: int, after: int) -> str:
    if before == after:
        return f"{after} analysed patients (no filter)"
    return f"{after} of {before} analysed patients after filtering"


def filter_bar(principal: Principal, filters: cd.CohortFilters) -> dbc.Row:
    options = cd.filter_options(principal)
    cols = []
    for name in cd.FILTER_FIELDS:
        cols.append(
            dbc.Col(
                [
                    dbc.Label(
                        FILTER_LABELS[name], html_for=filter_id(name), className="small mb-0"
                    ),
                    dcc.Dropdown(
                        id=filter_id(name),
                        options=getattr(options, name),
                        value=list(getattr(filters, name)),
                        multi=True,
                        placeholder="all",
                    ),
                ],
                md=2,
            )
        )
    return dbc.Row(cols, className="g-2 mb-2")


def build_layout(principal: Principal, query: dict[str, Any]) -> html.Div:
    tab = query.get("tab") if query.get("tab") in TAB_KEYS else DEFAULT_TAB
    filters = filters_from_query(query)
    info = services.dataset_info()
    if not info.ready:
        return html.Div(
            [html.H1("Cohort", className="h4"), dbc.Alert("No data loaded yet.", color="info")]
        )
    before, after = cd.counts(principal, filters)
    vis = principal.arm_visibility
    return html.Div(
        [
            dcc.Location(id=ids.COHORT_URL, refresh=False),
            html.Div(
                [
                    html.H1("Cohort", className="h4 d-inline-block me-3"),
                    dbc.Badge(
                        BLINDING_WORDS[vis],
                        color="dark" if vis is ArmVisibility.NONE else "info",
                        className="me-2",
                    ),
                    publication_badge(),
                    dbc.Button(
                        "Download report (HTML)",
                        id="cohort-report-btn",
                        size="sm",
                        color="primary",
                        className="float-end",
                    ),
                ],
                className="mb-2",
            ),
            html.Div(filter_bar(principal, filters), id=ids.COHORT_FILTERS),
            html.Div(
                count_text(before, after), id=ids.COHORT_COUNT, className="small mb-2 fw-semibold"
            ),
            dbc.Tabs(
                [dbc.Tab(label=label, tab_id=key) for key, label in TABS],
                id=ids.COHORT_TABS,
                active_tab=tab,
                className="mb-3",
            ),
            dcc.Loading(
                html.Div(cached_panel(tab, principal, filters), id="cohort-panel"),
                delay_show=300,
            ),
            dbc.Card(
                dbc.CardBody(
                    html.Div(
                        html.P(
                            "Click a bar, a heat-map cell or a count to list the patients behind it.",
                            className="small text-muted mb-0",
                        ),
                        id="cohort-drilldown",
                    )
                ),
                className="mb-3",
            ),
            dcc.Download(id="cohort-csv-download"),
            dcc.Download(id="cohort-report-download"),
        ],
        className="cohort-page",
    )


def layout(**query: str) -> html.Div:
    return build_layout(current_principal(), query)


# ---------------------------------------------------------------------------------------------
# Callbacks (thin: parse inputs → cached functions → pure builders)
# ---------------------------------------------------------------------------------------------

FILTER_INPUTS = [Input(filter_id(n), "value") for n in cd.FILTER_FIELDS]
FILTER_STATES = [State(filter_id(n), "value") for n in cd.FILTER_FIELDS]


def _filters(values: tuple[Any, ...]) -> cd.CohortFilters:
    return cd.CohortFilters.make(**dict(zip(cd.FILTER_FIELDS, values, strict=True)))


def url_search(tab: str, filters: cd.CohortFilters) -> str:
    return "?" + urlencode({"tab": tab, **filters.query()})


@callback(
    Output("cohort-panel", "children"),
    Output(ids.COHORT_COUNT, "children"),
    Output(ids.COHORT_URL, "search"),
    Input(ids.COHORT_TABS, "active_tab"),
    *FILTER_INPUTS,
    prevent_initial_call=True,
)
def update_panel(tab: str, *values: Any):
    principal = current_principal()
    tab = tab if tab in TAB_KEYS else DEFAULT_TAB
    filters = _filters(values)
    before, after = cd.counts(principal, filters)
    return (
        cached_panel(tab, principal, filters),
        count_text(before, after),
        url_search(tab, filters),
    )


@services.cache.memoize()
def _panel_json(
    version: str, rules_key: str, access: Principal, tab: str, filters_key: tuple[Any, ...]
) -> dict[str, Any]:
    """A rendered panel as plain component JSON, memoized per data version, rules, access
    (role, sites, unmask state), tab and filters: building plotly figures costs far more than
    fetching their JSON. Rendered for ``access`` itself, never for the ambient request user."""
    import json

    import plotly

    tree = render_panel(tab, access, cd.CohortFilters.make(**dict(filters_key)))
    return json.loads(json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder))


def cached_panel(tab: str, principal: Principal, filters: cd.CohortFilters) -> dict[str, Any]:
    s = services.settings()
    return _panel_json(
        services.dataset_info().version,
        s.sofa_rules.key(),
        principal.for_cache(),
        tab,
        filters.key(),
    )


def drill_selection(
    trigger: dict[str, Any], click: dict[str, Any] | None
) -> tuple[str, dict] | None:
    """Map a click on a named figure / grid to a drill-down selection."""
    if not click:
        return None
    name = trigger.get("name")
    if trigger.get("type") == "cohort-graph":
        points = click.get("points") or []
        if not points:
            return None
        pt = points[0]
        custom = pt.get("customdata")
        if name in ("responders_d9", "responders_d15") and custom:
            return "responders", {"stratum": custom[0], "group": custom[1], "endpoint": name[-2:]}
        if name == "ae" and custom:
            return "ae", {"pt": custom[0], "group": custom[1]}
        if name == "completeness":
            return "site_day", {"site_id": pt.get("y"), "study_day": pt.get("x")}
        return None
    if trigger.get("type") == "cohort-grid" and name in ("primary_d9", "primary_d15"):
        col = click.get("colId") or ""
        stratum = (click.get("data") or {}).get("stratum_key")
        if col.startswith("g") and col[1:].isdigit() and stratum:
            return "responders", {
                "stratum": stratum,
                "group_index": int(col[1:]),
                "endpoint": name[-2:],
            }
    return None


@callback(
    Output("cohort-drilldown", "children"),
    Input({"type": "cohort-graph", "name": ALL}, "clickData"),
    Input({"type": "cohort-grid", "name": ALL}, "cellClicked"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def drill(_clicks: list[Any], _cells: list[Any], *values: Any):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not ctx.triggered:
        return no_update
    click = ctx.triggered[0]["value"]
    sel = drill_selection(dict(trigger), click)
    if sel is None:
        return no_update
    kind, args = sel
    principal = current_principal()
    g = cd.groups_for(principal.arm_visibility)
    if "group_index" in args:
        i = args.pop("group_index")
        args["group"] = g.labels[i] if i < len(g.labels) else None
    title, frame = cd.drilldown(principal, _filters(values), kind, **args)
    return drilldown_view(title, frame)


def drilldown_view(title: str, frame: pd.DataFrame) -> html.Div:
    shown = frame.head(500)
    rows = [
        html.Tr(
            [
                html.Td(html.A(r["patient_id"], href=f"/patient/{r['patient_id']}")),
                *[
                    html.Td(cf._num(v, 2) if isinstance(v, float) else str(v))
                    for k, v in r.items()
                    if k != "patient_id"
                ],
            ]
        )
        for r in shown.to_dict("records")
    ]
    head = html.Thead(html.Tr([html.Th(c) for c in shown.columns]))
    return html.Div(
        [
            html.H2(f"{title}: {len(frame)} patients", className="h6 d-inline-block"),
            dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0 small")
            if len(frame)
            else html.P("No patients.", className="small text-muted"),
        ],
        className="cohort-drilldown",
    )


def all_tables(
    principal: Principal, filters: cd.CohortFilters, tab: str
) -> dict[str, pd.DataFrame]:
    """CSV-ready frames of a tab: group fields renamed to their labels."""
    out = {}
    for name, (frame, labels) in panel_data(tab, principal, filters)["tables"].items():
        out[name] = frame.drop(columns=[c for c in frame.columns if c.endswith("_key")]).rename(
            columns=labels
        )
    return out


@callback(
    Output("cohort-csv-download", "data"),
    Input({"type": "cohort-csv", "name": ALL}, "n_clicks"),
    State(ids.COHORT_TABS, "active_tab"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_csv(clicks: list[Any], tab: str, *values: Any):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        return no_update
    if not ctx.triggered or not ctx.triggered[0]["value"]:
        return no_update
    principal = current_principal()
    filters = _filters(values)
    name = trigger["name"]
    tables = all_tables(principal, filters, tab if tab in TAB_KEYS else DEFAULT_TAB)
    if name not in tables:
        return no_update
    frame = safe_csv_frame(tables[name])
    return dcc.send_data_frame(frame.to_csv, f"cohort-{name}.csv", index=False)


# ---------------------------------------------------------------------------------------------
# One-click report
# ---------------------------------------------------------------------------------------------


def report_html(principal: Principal, filters: cd.CohortFilters, *, now: datetime) -> str:
    """Self-contained HTML report of every panel (plotly.js inlined once; nothing fetched)."""
    info = services.dataset_info()
    before, after = cd.counts(principal, filters)
    esc = html_lib.escape
    stamp = (
        f"<table class='stamp'><tr><th>Data version</th><td>{esc(info.version)}</td></tr>"
        f"<tr><th>Synthetic data</th><td>{'yes' if info.synthetic else 'no'}</td></tr>"
        f"<tr><th>Filters</th><td>{esc(filters.describe())}</td></tr>"
        f"<tr><th>Patients</th><td>{esc(count_text(before, after))}</td></tr>"
        f"<tr><th>Blinding mode</th><td>{esc(BLINDING_WORDS[principal.arm_visibility])}</td></tr>"
        f"<tr><th>Role</th><td>{esc(principal.label)} ({esc(principal.user)})</td></tr>"
        f"<tr><th>Generated</th><td>{now:%Y-%m-%d %H:%M:%S} UTC</td></tr></table>"
    )
    check = cd.publication_check()
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>ImmunoSep cohort report</title><style>",
        (
            "body{font-family:system-ui,Arial,sans-serif;margin:2rem;color:#222}"
            "table{border-collapse:collapse;font-size:12px;margin:0.5rem 0}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
            ".stamp th{background:#f3f3f3}.chip{border:1px dashed #99a;border-radius:1rem;"
            "padding:0 .5rem;background:#eef}h2{margin-top:2rem;border-bottom:1px solid #ddd}"
        ),
        "</style></head><body>",
        "<h1>ImmunoSep: cohort report</h1>",
        stamp,
        (
            f"<p>Publication check: <b>{'reproduces' if check['match'].all() else 'DOES NOT reproduce'}"
            "</b> the published primary-endpoint statistics.</p>"
        ),
    ]
    plotly_inlined = False
    for key, label in TABS:
        data = panel_data(key, principal, filters)
        parts.append(f"<h2>{esc(label)}</h2>")
        parts += [f"<p><span class='chip'>{HIDDEN}</span> {esc(c)}</p>" for c in data["chips"]]
        parts += [f"<p><small>{esc(n)}</small></p>" for n in data["notes"]]
        for fig in data["figures"].values():
            parts.append(
                fig.to_html(
                    full_html=False,
                    include_plotlyjs=not plotly_inlined,
                    config={"displaylogo": False},
                )
            )
            plotly_inlined = True
        for name, (frame, labels) in data["tables"].items():
            shown = frame.drop(columns=[c for c in frame.columns if c.endswith("_key")])
            parts.append(f"<h3>{esc(table_title(name, principal))}</h3>")
            parts.append(shown.rename(columns=labels).to_html(index=False, escape=True, na_rep="–"))
    parts.append("</body></html>")
    return "".join(parts)


@callback(
    Output("cohort-report-download", "data"),
    Input("cohort-report-btn", "n_clicks"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_report(n: int | None, *values: Any):
    if not n:
        return no_update
    principal = current_principal()
    now = datetime.now(UTC).replace(tzinfo=None)
    text = report_html(principal, _filters(values), now=now)
    return {"content": text, "filename": f"immunosep-cohort-{now:%Y%m%dT%H%M%S}.html"}


def register() -> None:
    dash.register_page(
        __name__, path="/cohort", name="Cohort", title="ImmunoSep: cohort", layout=layout
    )
