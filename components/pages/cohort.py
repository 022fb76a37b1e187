"""Cohort page for trial monitors and the DSMB: one tab per panel of
:data:`components.cohort.PANELS`, rendered lazily (only the active tab is computed), filters,
drill-down, CSV per table and the one-click HTML report. Filters and the tab live in the URL
(``/cohort?tab=primary&phenotype=SIP&age=65-79``), so a link reproduces the view.

Blinding is decided on the server by :mod:`components.blinding` through the data layer:
blinded roles get pooled / by-phenotype panels (the arm table is not even loaded), the DSMB
closed session gets coded groups. Component ids, the URL and stores never carry a group; table
columns of groups are the neutral fields ``g0``, ``g1`` with the label only as the header.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
import plotly
import plotly.graph_objects as go
import plotly.io
from dash import (
    ALL,
    MATCH,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from components import ids
from components.blinding import (
    BLINDING_WORDS,
    HIDDEN,
    SUPPRESSED,
    groups_for,
)
from components.cohort import BY_KEY, DEFAULT_PANEL, PANELS, Panel, PanelView, report
from components.cohort.panel import Drill
from components.cohort.publication import PublicationCheck, publication_for
from components.data import cohort as data
from components.data.cohort import AGE_BANDS, FILTER_FIELDS, SOFA_BANDS, CohortFilters
from components.data.keys import Context
from components.figures import chart_config, describe_figure
from components.format import fmt_num, fmt_number, records, safe_csv_frame
from components.server.audit import audit
from components.server.auth import ArmVisibility, Principal, current_principal
from components.server.cache import cache
from components.server.context import dataset_info, engine
from components.theme import PHENOTYPE_LABELS
from core.io.adam_export import export_adam_zip
from core.io.docx_report import methods_paragraphs, report_docx
from core.io.pdf_report import report_pdf
from core.vocab import Phenotype

log = logging.getLogger(__name__)

FILTER_LABELS = {
    "site": "Site",
    "country": "Country",
    "phenotype": "Immune state",
    "infection": "Infection type",
    "age": "Age band",
    "sofa": "Baseline SOFA band",
}
#: the column that names a table row for drill-downs (``rowId`` of a cell click)
ROW_KEY = "stratum_key"
#: drill-down rows shown on the page (the CSV of a table has them all)
DRILL_MAX_ROWS = 500


def filter_id(name: str) -> str:
    return f"cohort-f-{name}"


def panel_for(tab: str | None) -> Panel:
    return BY_KEY.get(tab or "", DEFAULT_PANEL)


# ---------------------------------------------------------------------------------------------
# Rendering a PanelView as components (pure)
# ---------------------------------------------------------------------------------------------


def graph_component(name: str, fig: Any) -> dcc.Graph:
    return dcc.Graph(
        id={"type": "cohort-graph", "name": name},
        figure=fig,
        config=chart_config(f"cohort-{name}"),
    )


def graph(name: str, fig: Any) -> html.Figure:
    """A panel's chart with its text alternative (:func:`components.figures.describe_figure`,
    read by screen readers, docs/accessibility.md) as the figure's caption."""
    return html.Figure(
        [
            graph_component(name, fig),
            html.Figcaption(describe_figure(fig), className="visually-hidden"),
        ],
        className="mb-0",
    )


#: id types of a lazily drawn chart or grid: the slot it is drawn into, the store the page's
#: IntersectionObserver (assets/40_lazy_charts.js) writes when the slot scrolls into view, the
#: store that holds the part (a dcc.Graph or a dag.AgGrid, drawn by nobody until it is put
#: into the slot)
LAZY_SLOT = "cohort-lazy"
LAZY_SEEN = "cohort-seen"
LAZY_PART = "cohort-lazy-part"
#: plotly's default figure height, kept by a placeholder so the page does not jump
DEFAULT_FIGURE_HEIGHT = 450


def figure_title(fig: go.Figure) -> str:
    """The title text of a figure, "" when it has none."""
    return str(fig.layout.title.text or "")


def figure_height(fig: go.Figure) -> int:
    """The figure's height in pixels (plotly's default when it sets none)."""
    height = fig.layout.height
    return int(height) if height else DEFAULT_FIGURE_HEIGHT


def plain(component: Any) -> dict[str, Any]:
    """A component as plain JSON (a store's data may hold no component object)."""
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


def lazy_slot(name: str, component: Any, *, height_px: int, title: str, what: str) -> list[Any]:
    """A part of a panel below the fold (a chart or a grid), drawn when it scrolls into view
    (docs/performance.md): until then a placeholder of the part's height that shows its title
    and says it is being drawn. The part itself comes with the panel, in a store (no further
    request, the same role-filtered panel): the browser moves it into the slot when the slot
    is seen (``drawLazyPart`` in assets/40_lazy_charts.js, a clientside callback)."""
    return [
        html.Div(
            html.Div(
                [
                    html.P(title, className="fw-semibold mb-1") if title else None,
                    html.P(f"{what} drawn when scrolled into view.", className="small mb-0"),
                ],
                className="cohort-lazy-placeholder",
            ),
            id={"type": LAZY_SLOT, "name": name},
            className="cohort-lazy",
            style={"minHeight": f"{height_px}px"},
        ),
        dcc.Store(id={"type": LAZY_SEEN, "name": name}),
        dcc.Store(id={"type": LAZY_PART, "name": name}, data=plain(component)),
    ]


def lazy_graph(name: str, fig: go.Figure) -> html.Figure:
    """A chart below the fold (:func:`lazy_slot`); its text alternative (the caption) is
    there from the start, so a screen reader reads the numbers whether or not the chart has
    been drawn."""
    return html.Figure(
        [
            *lazy_slot(
                name,
                graph_component(name, fig),
                height_px=figure_height(fig),
                title=figure_title(fig),
                what="Chart",
            ),
            html.Figcaption(describe_figure(fig), className="visually-hidden"),
        ],
        className="mb-0",
    )


#: the lazy slot of a grid is named apart from its section's chart (both may be named "ae")
LAZY_GRID_PREFIX = "grid:"


def lazy_grid(name: str, frame: pd.DataFrame, labels: dict[str, str]) -> html.Div:
    """A grid below the fold (:func:`lazy_slot`): ag-grid measures every row of a grid whose
    cells wrap, the largest cost of drawing a tab (docs/performance.md)."""
    return html.Div(
        lazy_slot(
            LAZY_GRID_PREFIX + name,
            grid(name, frame, labels),
            height_px=grid_min_height(len(frame)),
            title="",
            what="Table",
        )
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


#: grids longer than this page (the Safety tab's deaths list: 188 rows drew a 7,857 px page)
GRID_PAGE_ROWS = 20


#: float cells: two decimals at most, trailing zeros dropped, "–" when missing (raw floats such
#: as 9.029999732971191 never reach the page; the CSV keeps full precision)
FLOAT_FORMAT = {
    "valueFormatter": {"function": "params.value == null ? '–' : d3.format(',.2~f')(params.value)"},
    "type": "rightAligned",
}
#: words written in capitals in a header made from a column name
_ACRONYMS = {"mals": "MALS", "sip": "SIP", "sofa": "SOFA", "hla": "HLA", "dr": "DR", "ci": "CI"}


def header_text(column: str) -> str:
    """A readable header for a column without a label: "n_mals_to_sip" -> "MALS to SIP (n)"."""
    words = column.split("_")
    count = words[0] == "n" and len(words) > 1
    words = [_ACRONYMS.get(w.lower(), w) for w in (words[1:] if count else words)]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} (n)" if count else text


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The grid's view of a table: phenotype codes ("not_eligible") as their labels."""
    out = frame.copy()
    codes = {p.value: PHENOTYPE_LABELS[p] for p in Phenotype}
    for c in out.columns:
        if c.endswith("_key") or not pd.api.types.is_object_dtype(out[c]):
            continue
        if out[c].isin(codes.keys()).any():
            out[c] = out[c].map(lambda v: codes.get(v, v) if isinstance(v, str) else v)
    return out


def column_min_width(values: pd.Series, header: str = "") -> int:
    """Pixels a column needs to show its longest cell on at most two lines and its longest
    word (of a cell or of the header) whole: about 8 px a character at the grid's 14 px font,
    plus padding; between 80 and 260 px. A number such as "46/131 (35.1 %) [27.5-43.6]"
    breaks once, between the count and the interval; "hemorrhage" never breaks."""
    texts = values.dropna().astype(str)
    longest = int(texts.str.len().max()) if len(texts) else 0
    words = [w for t in [*texts.tolist(), header] for w in t.split()]
    longest_word = max((len(w) for w in words), default=0)
    need = max(math.ceil(longest / 2), longest_word) * 8 + 28
    return max(80, min(260, need))


#: ag-grid's alpine theme: the height of a one-line row and of the header, pagination bar
GRID_ROW_PX, GRID_HEADER_PX, GRID_PAGER_PX = 42, 50, 48


def grid_min_height(rows: int) -> int:
    """Pixels a grid of ``rows`` rows takes at least (one-line rows; wrapped rows are taller):
    reserved before the grid has measured its rows, so the page below does not move up and
    back while it renders (and lazily drawn charts below are not seen on the way)."""
    shown = max(1, min(rows, GRID_PAGE_ROWS))
    return GRID_HEADER_PX + shown * GRID_ROW_PX + (GRID_PAGER_PX if rows > GRID_PAGE_ROWS else 0)


def grid(name: str, frame: pd.DataFrame, labels: dict[str, str] | None = None) -> dag.AgGrid:
    """A read-only grid; ``labels`` maps neutral fields (g0, g1, ...) to header text.

    Cells and headers wrap instead of truncating (a number such as "46/131 (35.1 %)
    [27.5-44.2]" is never cut), and grids longer than :data:`GRID_PAGE_ROWS` paginate
    (docs/performance.md).
    """
    labels = labels or {}
    cols = [c for c in frame.columns if not c.endswith("_key")]
    paginate = len(frame) > GRID_PAGE_ROWS
    return dag.AgGrid(
        id={"type": "cohort-grid", "name": name},
        rowData=records(display_frame(frame)),
        columnDefs=[
            {
                "field": c,
                "headerName": labels.get(c) or header_text(c),
                "tooltipField": c,
                "minWidth": column_min_width(frame[c], labels.get(c) or header_text(c)),
            }
            | ({"flex": 3} if i == 0 else {})
            | (FLOAT_FORMAT if pd.api.types.is_float_dtype(frame[c]) else {})
            for i, c in enumerate(cols)
        ],
        defaultColDef={
            "sortable": True,
            "resizable": True,
            "flex": 2,
            "wrapText": True,
            "autoHeight": True,
            "wrapHeaderText": True,
            "autoHeaderHeight": True,
            "cellStyle": {"wordBreak": "normal", "lineHeight": "1.4", "paddingTop": "4px"},
        },
        dashGridOptions={
            "domLayout": "autoHeight",
            "tooltipShowDelay": 300,
            **({"pagination": True, "paginationPageSize": GRID_PAGE_ROWS} if paginate else {}),
        },
        # the row id a cell click reports (dash-ag-grid's cellClicked carries no row data)
        **({"getRowId": f"params.data.{ROW_KEY}"} if ROW_KEY in frame.columns else {}),
        style={"height": None, "minHeight": f"{grid_min_height(len(frame))}px"},
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


def suppressed_chip(explanation: str) -> html.Div:
    """A guarded cell too small to show (docs/blinding.md 6.5)."""
    return html.Div(
        [
            html.Span(SUPPRESSED, className="hidden-chip suppressed-chip me-2"),
            html.Span(explanation, className="small"),
        ],
        className="mb-2",
    )


def first_figure(view: PanelView) -> str | None:
    """The name of the panel's first chart: the one drawn at once (above the fold)."""
    return next(
        (s.figure_name for s in view.sections if s.figure is not None and s.figure_name),
        None,
    )


def render_view(panel: Panel, view: PanelView, *, lazy: bool = True) -> html.Div:
    """A panel's sections as cards: figure, then table, with a CSV button per table. A section
    computed under the exit policy (``Section.guard``) is wrapped in a ``cohort-guarded``
    element naming its guard, with its note (docs/blinding.md 6.5). With ``lazy``, every chart
    after the first is a :func:`lazy_graph` placeholder and every grid but a first section's
    without a chart a :func:`lazy_grid` one (drawn when scrolled into view)."""
    eager = first_figure(view)
    children: list[Any] = [html.H2(panel.label, className="h5 mb-2 cohort-panel-title")]
    children += [hidden_chip(c) for c in view.chips]
    children += [suppressed_chip(c) for c in view.suppressed]
    children += [html.P(n, className="small text-muted mb-2") for n in view.notes]
    for i, s in enumerate(view.sections):
        has_table = s.table_name is not None and s.table is not None
        head: list[Any] = [html.H2(s.title, className="h6 d-inline-block mb-2")]
        if has_table:
            head.append(csv_button(s.table_name))
        # the float of the CSV button cleared: a grid beside it would lose its width
        parts: list[Any] = [html.Div(head, className="clearfix")]
        if s.note:
            parts.append(html.P(s.note, className="small text-muted mb-2"))
        if s.figure is not None and s.figure_name is not None:
            draw = graph if not lazy or s.figure_name == eager else lazy_graph
            parts.append(draw(s.figure_name, s.figure))
        if has_table:
            # at once: a first section's grid with no chart above it (Table 1); a grid under
            # a chart starts below the fold
            eager_grid = i == 0 and s.figure is None
            draw_grid = grid if not lazy or eager_grid else lazy_grid
            parts.append(draw_grid(s.table_name, s.table, dict(s.headers)))
        card = dbc.Card(dbc.CardBody(parts), className="mb-3")
        if s.guard is not None:
            card = html.Div(card, className="cohort-guarded", **{"data-guard": s.guard})
        children.append(card)
    return html.Div(children, className=f"cohort-panel cohort-panel-{panel.key}")


@cache.memoize()
def _panel_json(context: Context, key: str, filters: CohortFilters) -> dict[str, Any]:
    """A rendered panel as plain component JSON, memoized per context (version, rules, access)
    and filters: building plotly figures costs far more than fetching their JSON."""
    panel = BY_KEY[key]
    tree = render_view(panel, panel.view(context, filters))
    return json.loads(json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder))


def cached_panel(tab: str, context: Context, filters: CohortFilters) -> dict[str, Any]:
    return _panel_json(context, panel_for(tab).key, filters)


# ---------------------------------------------------------------------------------------------
# Publication badge
# ---------------------------------------------------------------------------------------------


#: the box the publication badge lives in (always on the page, empty for roles that may not
#: see the check; :func:`update_publication_badge` refills it when the filters change)
PUBLICATION_BOX = "cohort-publication"


def publication_badge(
    visibility: ArmVisibility,
    context: Context | None = None,
    filters: CohortFilters | None = None,
) -> html.Span | None:
    """The publication check for ``context`` (default: all sites at ``visibility``) and
    ``filters`` (default: none), or None when this role may not see it
    (:func:`components.cohort.publication.publication_for` decides, for the badge and every
    report alike): never for blinded roles or the DSMB's coded view, tooltips included (they
    print arm-level counts and would decode the DSMB's groups)."""
    context = context or replace(Context.current(), visibility=visibility)
    if context.visibility is not visibility:
        raise ValueError(
            f"publication_badge: visibility {visibility.name} is not the context's "
            f"{context.visibility.name}"
        )
    check = publication_for(context, filters or CohortFilters.make())
    return None if check is None else badge_view(check)


def badge_view(check: PublicationCheck) -> html.Span:
    """Pure: the two badges of a publication check (components/cohort/publication.py):
    whether *this dataset*, as the Primary, Survival and Immune tabs compute it, reproduces the
    published table (the differing rows named on the badge; counts and the differing fields
    per row in its tooltip; the full texts in the report), and whether the statistics code
    reproduces the printed values from the printed counts."""
    data_check = check.rows
    differ = check.differ
    # short lines (the tooltip is narrow): counts and which fields differ; the report has the
    # full texts (components/cohort/report.py)
    data_details = [
        html.Div(
            f"{r['outcome']}: this dataset {r['dataset'].split(';')[0]}, published "
            f"{r['published'].split(';')[0]}: "
            + (
                "matches"
                if r["match"]
                else "differs: "
                + ", ".join(
                    "no comparison" if w.startswith("no comparison") else w.split(" ")[0]
                    for w in r["why"].split("; ")
                )
            ),
            className="mb-1",
        )
        for r in data_check.to_dict("records")
    ]
    ok = check.code_ok
    details = "; ".join(
        f"{r['outcome']} {r['counts']}: RD {r['computed_rd']} (printed {r['published_rd']}), "
        f"OR {r['computed_or']} (printed {r['published_or']}), P {r['computed_p']} "
        f"(printed {r['published_p']})"
        + (f" [not compared: {r['not_compared']}]" if r["not_compared"] else "")
        for r in check.code.to_dict("records")
    )
    return html.Span(
        [
            dbc.Badge(
                "✓ this dataset reproduces the published table"
                if not differ
                else f"≠ this dataset differs from the published table in {len(differ)} of "
                f"{len(data_check)} rows: {', '.join(differ)}",
                color="success" if not differ else "warning",
                text_color=None if not differ else "dark",
                id="cohort-badge-data",
                className="me-1",
            ),
            dbc.Tooltip(data_details, target="cohort-badge-data", placement="bottom"),
            dbc.Badge(
                "✓ statistics code reproduces the publication (from its printed counts)"
                if ok
                else "✗ statistics code does not reproduce the publication",
                color="success" if ok else "danger",
                id="cohort-badge-code",
                className="me-1",
            ),
            dbc.Tooltip(details, target="cohort-badge-code", placement="bottom"),
        ],
        id="cohort-badge",
    )


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def filters_from_query(query: dict[str, Any]) -> CohortFilters:
    return CohortFilters.make(**{k: query.get(k) for k in FILTER_FIELDS})


def count_text(before: int, after: int) -> str:
    if before == after:
        return f"{after} analysed patients (no filter)"
    return f"{after} of {before} analysed patients after filtering"


def filter_options(
    context: Context, filters: CohortFilters | None = None
) -> dict[str, list[dict[str, str]]]:
    """Dropdown options; each count is the patients matching the *other* filters
    (:func:`components.data.cohort.filter_counts`)."""
    counted = data.filter_counts(context, filters or CohortFilters())

    def label(name: str, value: str) -> str:
        return PHENOTYPE_LABELS[Phenotype(value)] if name == "phenotype" else value

    out = {
        name: [{"label": f"{label(name, v)} ({n})", "value": v} for v, n in values]
        for name, values in counted.items()
    }
    out["age"] = [{"label": lab, "value": k} for k, lab, _lo, _hi in AGE_BANDS]
    out["sofa"] = [{"label": lab, "value": k} for k, lab, _lo, _hi in SOFA_BANDS]
    return out


#: filters whose options carry patient counts (updated when another filter changes)
COUNTED_FILTERS = ("site", "country", "phenotype", "infection")


def filter_bar(context: Context, filters: CohortFilters) -> dbc.Row:
    options = filter_options(context, filters)
    cols = [
        dbc.Col(
            [
                dbc.Label(FILTER_LABELS[name], html_for=filter_id(name), className="small mb-0"),
                dcc.Dropdown(
                    id=filter_id(name),
                    options=options[name],
                    value=list(getattr(filters, name)),
                    multi=True,
                    placeholder="all",
                ),
            ],
            md=2,
        )
        for name in FILTER_FIELDS
    ]
    return dbc.Row(cols, className="g-2 mb-2")


def small_n_note(context: Context, filters: CohortFilters) -> html.Div | None:
    """A visible warning when a comparison of this view runs on fewer than
    :data:`components.data.cohort.SMALL_N_PER_GROUP` patients in a group."""
    small = data.small_comparisons(context, filters)
    if not small:
        return None
    items = [
        html.Li(
            f"{what}: " + ", ".join(f"{lab} {n} {plural(n, 'patient')}" for lab, n in sizes.items())
        )
        for what, sizes in small
    ]
    return dbc.Alert(
        [
            html.Strong(f"Small groups (fewer than {data.SMALL_N_PER_GROUP} patients per group). "),
            (
                "Tests, P values and confidence intervals of these comparisons rest on too "
                "few patients to be read:"
            ),
            html.Ul(items, className="mb-0 small"),
        ],
        color="warning",
        className="py-2 small cohort-small-n",
    )


def plural(n: int, word: str) -> str:
    """ "1 patient", "2 patients" (the word alone, for a count printed before it)."""
    return word if n == 1 else f"{word}s"


def build_layout(principal: Principal, query: dict[str, Any]) -> html.Div:
    panel = panel_for(query.get("tab"))
    filters = filters_from_query(query)
    if not dataset_info().ready:
        return html.Div(
            [html.H1("Cohort", className="h4"), dbc.Alert("No data loaded yet.", color="info")]
        )
    context = Context.current(principal)
    if data.trial_patients(context).empty:
        return html.Div(
            [
                html.H1("Cohort", className="h4"),
                dbc.Alert(
                    f"No trial participants in these data: the {dataset_info().n_patients} "
                    "patients are ICU patients who were not randomised. The cohort pages analyse "
                    "trial participants only; these patients are on the ward board.",
                    color="info",
                ),
            ]
        )
    before, after = data.counts(context, filters)
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
                    html.Div(
                        publication_badge(vis, context, filters),
                        id=PUBLICATION_BOX,
                        className="d-inline-block",
                    ),
                    download_bar(vis, whole_trial=principal.sites is None),
                ],
                className="mb-2",
            ),
            # below the floated download bar, never squeezed beside it (1024 px)
            html.Div(filter_bar(context, filters), id=ids.COHORT_FILTERS, style={"clear": "both"}),
            html.Div(
                count_text(before, after), id=ids.COHORT_COUNT, className="small mb-2 fw-semibold"
            ),
            html.Div(small_n_note(context, filters), id="cohort-small-n"),
            dbc.Tabs(
                [dbc.Tab(label=p.label, tab_id=p.key) for p in PANELS],
                id=ids.COHORT_TABS,
                active_tab=panel.key,
                className="mb-3",
            ),
            html.Div(
                panel_slots(panel.key, cached_panel(panel.key, context, filters)),
                id="cohort-panel",
                role="tabpanel",
                # assets/20_a11y.js points the tabs' aria-controls here
                **{"data-tabs": ids.COHORT_TABS, "aria-label": "Cohort tab content"},
            ),
            dcc.Store(id=SLOT_STATE, data=slot_state(panel.key)),
            dcc.Store(id=DRILL_ASK),
            dcc.Store(id=CSV_ASK),
            drill_panel(),
            dcc.Download(id="cohort-csv-download"),
            dcc.Download(id="cohort-report-download"),
            dcc.Download(id="cohort-report-docx-download"),
            dcc.Download(id="cohort-report-pdf-download"),
            dcc.Download(id="cohort-adam-download"),
        ],
        className="cohort-page",
    )


def layout(**query: str) -> html.Div:
    return build_layout(current_principal(), query)


# ---------------------------------------------------------------------------------------------
# Callbacks (thin: parse inputs → data / panels → pure builders)
# ---------------------------------------------------------------------------------------------

FILTER_INPUTS = [Input(filter_id(n), "value") for n in FILTER_FIELDS]
FILTER_STATES = [State(filter_id(n), "value") for n in FILTER_FIELDS]


def value_problem(name: str, value: Any) -> str | None:
    """What is wrong with the shape of a filter value sent by a client (None: a dropdown's
    value: nothing, a text, or a list of texts / numbers). Names the type, never the value."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, list) and all(
        x is None or (isinstance(x, str | int | float) and not isinstance(x, bool)) for x in value
    ):
        return None
    return f"filter {name} is {type(value).__name__}, expected a list of values"


def refuse_malformed(where: str, problem: str) -> None:
    """A forged request with a wrong-shaped value: logged (the shape only, no value, no
    patient data) and answered with nothing (PreventUpdate: HTTP 204), never an error."""
    log.warning("%s: refused a malformed request (%s)", where, problem)
    raise PreventUpdate


def _filters(values: tuple[Any, ...]) -> CohortFilters:
    """The filters of a callback's filter values (wrong-shaped values: :func:`refuse_malformed`)."""
    for name, value in zip(FILTER_FIELDS, values, strict=True):
        if problem := value_problem(name, value):
            refuse_malformed("cohort filters", problem)
    return CohortFilters.make(**dict(zip(FILTER_FIELDS, values, strict=True)))


def filters_describe(values: tuple[Any, ...]) -> str:
    return "filters: " + _filters(values).describe()


def export_detail(what: str, values: tuple[Any, ...], visibility: Any, rows: int | None) -> str:
    """Audit detail of a cohort download: what (tab), filters, blinding, rows."""
    parts = [f"tab: {what}", filters_describe(values), f"blinding: {BLINDING_WORDS[visibility]}"]
    if rows is not None:
        parts.append(f"rows: {rows}")
    return "; ".join(parts)


def url_search(tab: str, filters: CohortFilters) -> str:
    return "?" + urlencode({"tab": tab, **filters.query()})


# A tab's panel is drawn once per filter setting and kept (hidden) while other tabs are shown:
# going back to a tab is a show in the browser, no request and no redraw (docs/performance.md).
# The browser decides what to show (showTab and revealSlots in assets/35_cohort_tabs.js,
# clientside callbacks); the server draws a slot when the browser asks for it (render_slot);
# the count, the small-groups note, the filter options and the URL follow the filters on their
# own.

#: id types of a tab's slot (its panel), of the box around it (shown or hidden), of the store by
#: which the browser asks for it to be drawn, and of the store saying which filter generation it
#: was drawn for
SLOT = "cohort-slot"
SLOT_BOX = "cohort-slot-box"
SLOT_ASK = "cohort-slot-ask"
SLOT_GEN = "cohort-slot-gen"
#: the browser's bookkeeping: the filter generation (one more per filter change), the slot kept
#: on screen while it is redrawn after a filter change, the generation each slot was asked for
SLOT_STATE = "cohort-slot-state"


def slot_state(active: str) -> dict[str, Any]:
    """The bookkeeping of a freshly served page: generation 0, the active tab drawn for it."""
    return {"gen": 0, "keep": active, "asked": {active: 0}}


def panel_slots(active: str, rendered: dict[str, Any]) -> list[html.Div]:
    """One slot per tab: the active one holds ``rendered`` (drawn for generation 0), the others
    are empty and hidden until their tab is opened. A slot sits in its own loading indicator
    inside its box (what shows or hides): a tab drawn while hidden (ahead of its opening)
    shows no spinner over the tab on screen."""
    out = []
    for p in PANELS:
        here = p.key == active
        out += [
            html.Div(
                dcc.Loading(
                    html.Div(
                        rendered if here else None,
                        id={"type": SLOT, "tab": p.key},
                        className="cohort-slot-body",
                    ),
                    delay_show=300,
                ),
                id={"type": SLOT_BOX, "tab": p.key},
                hidden=not here,
                className="cohort-slot",
            ),
            dcc.Store(id={"type": SLOT_ASK, "tab": p.key}),
            dcc.Store(id={"type": SLOT_GEN, "tab": p.key}, data=0 if here else None),
        ]
    return out


#: which slot shows, which slot is asked for (clientside: no request for a tab already drawn)
clientside_callback(
    ClientsideFunction(namespace="cohort", function_name="showTab"),
    Output(SLOT_STATE, "data"),
    Output({"type": SLOT_BOX, "tab": ALL}, "hidden"),
    Output({"type": SLOT_ASK, "tab": ALL}, "data"),
    Input(ids.COHORT_TABS, "active_tab"),
    *FILTER_INPUTS,
    State({"type": SLOT_GEN, "tab": ALL}, "data"),
    State(SLOT_STATE, "data"),
    prevent_initial_call=True,
)
#: a slot drawn by the server shows if it is still the active tab's, for the current filters
#: (the same rule as showTab; a separate callback, or the ask -> draw -> show chain would be
#: a cycle)
clientside_callback(
    ClientsideFunction(namespace="cohort", function_name="revealSlots"),
    Output({"type": SLOT_BOX, "tab": ALL}, "hidden", allow_duplicate=True),
    Input({"type": SLOT_GEN, "tab": ALL}, "data"),
    State(ids.COHORT_TABS, "active_tab"),
    State(SLOT_STATE, "data"),
    prevent_initial_call=True,
)


@callback(
    Output({"type": SLOT, "tab": MATCH}, "children"),
    Output({"type": SLOT_GEN, "tab": MATCH}, "data"),
    Input({"type": SLOT_ASK, "tab": MATCH}, "data"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def render_slot(ask: Any, *values: Any):
    """The panel of the asked tab for the current filters, and the generation it was asked
    for (the browser shows it only if that is still the current one)."""
    trigger = ctx.triggered_id
    tab = trigger.get("tab") if isinstance(trigger, dict) else None
    if not isinstance(tab, str) or tab not in BY_KEY:
        refuse_malformed("render_slot", "the asked slot names no tab")
    if not isinstance(ask, dict) or not isinstance(ask.get("gen"), int):
        refuse_malformed("render_slot", f"ask is {type(ask).__name__}, expected a generation")
    context = Context.current(current_principal())
    return cached_panel(tab, context, _filters(values)), ask["gen"]


@callback(
    Output(ids.COHORT_COUNT, "children"),
    Output("cohort-small-n", "children"),
    *[Output(filter_id(n), "options") for n in COUNTED_FILTERS],
    *FILTER_INPUTS,
    prevent_initial_call=True,
)
def update_counts(*values: Any):
    """The patient count, the small-groups note and the counted filters' options of the
    filters (a tab switch leaves them alone: nothing to compute, send or redraw)."""
    return count_outputs(Context.current(current_principal()), _filters(values))


def count_outputs(context: Context, filters: CohortFilters) -> tuple[Any, ...]:
    """What a filter change shows above the tabs: the count, the small-groups note, the
    counted filters' options (:func:`update_counts`; precomputed by the warm-up for common
    filters)."""
    before, after = data.counts(context, filters)
    options = filter_options(context, filters)
    return (
        count_text(before, after),
        small_n_note(context, filters),
        *[options[n] for n in COUNTED_FILTERS],
    )


def filter_change(context: Context, filters: CohortFilters) -> None:
    """Everything the page computes when its filters become ``filters`` (the count and
    options, the publication check, every tab's panel): the warm-up runs it for the most
    common filters (components/warmup.py)."""
    count_outputs(context, filters)
    publication_badge(context.visibility, context, filters)
    for panel in PANELS:
        cached_panel(panel.key, context, filters)


@callback(
    Output(ids.COHORT_URL, "search"),
    Input(ids.COHORT_TABS, "active_tab"),
    *FILTER_INPUTS,
    prevent_initial_call=True,
)
def update_url(tab: Any, *values: Any):
    """The tab and the filters in the URL (a link reproduces the view)."""
    if tab is not None and not isinstance(tab, str):
        refuse_malformed("update_url", f"tab is {type(tab).__name__}, expected text")
    return url_search(panel_for(tab).key, _filters(values))


#: a chart or grid below the fold into its slot, once the slot has been seen (the store written
#: by assets/40_lazy_charts.js; the part from its store, sent with the panel): in the browser,
#: no request, so a part near the fold is drawn as soon as the panel is
clientside_callback(
    ClientsideFunction(namespace="cohort", function_name="drawLazyPart"),
    Output({"type": LAZY_SLOT, "name": MATCH}, "children"),
    Input({"type": LAZY_SEEN, "name": MATCH}, "data"),
    State({"type": LAZY_PART, "name": MATCH}, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(PUBLICATION_BOX, "children"),
    *FILTER_INPUTS,
    prevent_initial_call=True,
)
def update_publication_badge(*values: Any):
    """The publication badge follows the filters, as the panel does (empty for roles that
    may not see it: nothing is computed for them)."""
    context = Context.current(current_principal())
    return publication_badge(context.visibility, context, _filters(values))


def drill_selection(trigger: dict[str, Any], click: dict[str, Any] | None) -> Drill | None:
    """The drill-down behind a click on a named cohort figure or grid: asked of the panel that
    draws the element (element names are unique over all panels)."""
    name = trigger.get("name")
    if trigger.get("type") not in ("cohort-graph", "cohort-grid") or not click:
        return None
    for panel in PANELS:
        if name in panel.drills:
            return panel.drill(name, click)
    return None


#: the drill-down side panel: fixed to the right edge of the window, so its list opens next to
#: the click whatever the scroll position (it used to land ~5,570 px below the Primary tab)
DRILL_PANEL = "cohort-drill-panel"
DRILL_CLOSE = "cohort-drill-close"
DRILL_HINT = "Click a bar, a heat-map cell or a count to list the patients behind it."


#: the side panel's style: fixed to the right edge of the window, from the navbar's bottom edge
#: (assets/30_navbar_offset.js keeps --navbar-bottom: the navbar's bottom on screen, 0 once it
#: has scrolled away) to the bottom, scrolling: it never covers the navigation
DRILL_PANEL_STYLE = {
    "position": "fixed",
    "top": "var(--navbar-bottom, 0px)",
    "right": 0,
    "bottom": 0,
    "width": "min(720px, 100vw)",
    "overflowY": "auto",
    "zIndex": 1045,
    "background": "#fff",
    "boxShadow": "-4px 0 16px rgba(0, 0, 0, 0.2)",
    "padding": "1rem",
}
HIDDEN_STYLE = {**DRILL_PANEL_STYLE, "display": "none"}


def drill_panel() -> html.Aside:
    """The side panel drill-downs open in: a fixed element shown in the same render as its
    list (no slide-in during which it is present but invisible), no backdrop, so the charts
    stay clickable beside it; a close button hides it."""
    return html.Aside(
        [
            html.Div(
                [
                    html.Span("Patients behind the click", className="h5 mb-0"),
                    dbc.Button(
                        "Close",
                        id=DRILL_CLOSE,
                        size="sm",
                        color="secondary",
                        outline=True,
                        className="ms-auto",
                    ),
                ],
                className="d-flex align-items-center mb-2",
            ),
            html.Div(html.P(DRILL_HINT, className="small text-muted mb-0"), id="cohort-drilldown"),
        ],
        id=DRILL_PANEL,
        className="cohort-drill-panel",
        style=HIDDEN_STYLE,
        **{"aria-label": "Patients behind the click"},
    )


# Clicks reach the server through two stores the browser writes (relayClick / relayCsv in
# assets/36_cohort_clicks.js) only when the reader really clicked: a server callback listening to
# every graph's clickData (an ALL input) would be called each time a panel is drawn (Dash calls
# it for the new components), and that call would supersede a drill-down the reader is waiting
# for. The relays are clientside, so they answer at once and write nothing for a new panel.

#: what the reader clicked in a cohort figure or grid: ``{"id": {"type", "name"}, "prop":
#: "clickData" | "cellClicked", "value": the click payload, "at": ms}``
DRILL_ASK = "cohort-drill-ask"
#: which "Download CSV" button the reader clicked: ``{"name": table name, "at": ms}``
CSV_ASK = "cohort-csv-ask"
CLICK_PROPS = {"cohort-graph": "clickData", "cohort-grid": "cellClicked"}

clientside_callback(
    ClientsideFunction(namespace="cohort", function_name="relayClick"),
    Output(DRILL_ASK, "data"),
    Input({"type": "cohort-graph", "name": ALL}, "clickData"),
    Input({"type": "cohort-grid", "name": ALL}, "cellClicked"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction(namespace="cohort", function_name="relayCsv"),
    Output(CSV_ASK, "data"),
    Input({"type": "cohort-csv", "name": ALL}, "n_clicks"),
    prevent_initial_call=True,
)


def drill_ask(component_id: dict[str, Any], value: Any, at: int = 0) -> dict[str, Any]:
    """The drill store's value for a click on a cohort figure or grid (what relayClick
    writes)."""
    return {"id": component_id, "prop": CLICK_PROPS[component_id["type"]], "value": value, "at": at}


def drill_ask_problem(ask: Any) -> str | None:
    """Why a drill store value is not one relayClick writes, or None."""
    if not isinstance(ask, dict):
        return f"the click is {type(ask).__name__}, expected an object"
    target = ask.get("id")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        return "the clicked element has no name"
    if ask.get("prop") != CLICK_PROPS.get(target.get("type")):
        return "the click names no cohort figure or grid"
    if ask.get("value") is not None and not isinstance(ask.get("value"), dict):
        return f"the click payload is {type(ask.get('value')).__name__}, expected an object"
    return None


@callback(
    Output("cohort-drilldown", "children"),
    Output(DRILL_PANEL, "style"),
    Input(DRILL_ASK, "data"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def drill(ask: Any, *values: Any):
    if ask is None:
        return no_update, no_update
    if problem := drill_ask_problem(ask):
        refuse_malformed("drill", problem)
    sel = drill_selection(ask["id"], ask["value"])
    if sel is None:
        return no_update, no_update
    kind, args = sel
    context = Context.current(current_principal())
    if "group_index" in args:
        labels = groups_for(context.visibility).labels
        i = args.pop("group_index")
        args["group"] = labels[i] if i < len(labels) else None
    title, frame = data.drilldown(context, _filters(values), kind, **args)
    return drilldown_view(title, frame), DRILL_PANEL_STYLE


#: drill-down columns of whole numbers (scores, days): no decimals when the value is whole
DRILL_WHOLE = ("baseline_sofa", "death_study_day")
#: drill-down columns that never wrap (an id broken over two lines reads as two ids)
DRILL_NOWRAP = ("patient_id", "site_id")


@callback(
    Output(DRILL_PANEL, "style", allow_duplicate=True),
    Input(DRILL_CLOSE, "n_clicks"),
    prevent_initial_call=True,
)
def close_drill(n: int | None):
    """The close button hides the side panel (its list stays for the next opening)."""
    return HIDDEN_STYLE if n else no_update


def drill_cell(column: str, value: Any) -> str:
    """A drill-down cell as people read it: immune-state labels, yes/no, 2 decimals, "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if column == "phenotype" and value in {p.value for p in Phenotype}:
        return PHENOTYPE_LABELS[Phenotype(value)]
    if isinstance(value, bool):
        return fmt_number(value)
    if isinstance(value, float):
        whole = column in DRILL_WHOLE and value.is_integer()
        return fmt_num(value, 0 if whole else 2)
    return str(value)


def drilldown_view(title: str, frame: pd.DataFrame) -> html.Div:
    """The patients behind a click: readable headers (:data:`DRILL_LABELS`), "1 patient" /
    "n patients", each patient id a link to the patient page."""
    shown = frame.head(DRILL_MAX_ROWS)
    rows = [
        html.Tr(
            [
                html.Td(
                    html.A(r["patient_id"], href=f"/patient/{r['patient_id']}"),
                    className="text-nowrap",
                ),
                *[
                    html.Td(
                        drill_cell(k, v), className="text-nowrap" if k in DRILL_NOWRAP else None
                    )
                    for k, v in r.items()
                    if k != "patient_id"
                ],
            ]
        )
        for r in shown.to_dict("records")
    ]
    head = html.Thead(
        html.Tr([html.Th(data.DRILL_LABELS.get(c) or header_text(c)) for c in shown.columns])
    )
    n = len(frame)
    parts: list[Any] = [
        html.H2(f"{title}: {n} {plural(n, 'patient')}", className="h6"),
    ]
    if n > len(shown):
        parts.append(html.P(f"First {len(shown)} shown.", className="small text-muted mb-1"))
    parts.append(
        dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0 small")
        if n
        else html.P("No patients.", className="small text-muted")
    )
    return html.Div(parts, className="cohort-drilldown")


def all_tables(context: Context, filters: CohortFilters, tab: str) -> dict[str, pd.DataFrame]:
    """CSV-ready frames of a tab: group fields renamed to their labels."""
    return panel_for(tab).view(context, filters).tables()


def csv_ask(name: Any, at: int = 0) -> dict[str, Any]:
    """The CSV store's value for a click on a table's "Download CSV" (what relayCsv writes)."""
    return {"name": name, "at": at}


@callback(
    Output("cohort-csv-download", "data"),
    Input(CSV_ASK, "data"),
    State(ids.COHORT_TABS, "active_tab"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_csv(ask: Any, tab: Any, *values: Any):
    if ask is None:
        return no_update
    if not isinstance(ask, dict):
        refuse_malformed("download_csv", f"the click is {type(ask).__name__}, expected an object")
    if not isinstance(ask.get("name"), str):
        refuse_malformed("download_csv", "the clicked button has no table name")
    if tab is not None and not isinstance(tab, str):
        refuse_malformed("download_csv", f"tab is {type(tab).__name__}, expected text")
    filters = _filters(values)
    context = Context.current(current_principal())
    name = ask["name"]
    tables = all_tables(context, filters, tab)
    if name not in tables:
        return no_update
    frame = safe_csv_frame(tables[name])
    audit(
        "export",
        f"cohort-{name}.csv",
        export_detail(panel_for(tab).key, values, context.visibility, len(frame)),
    )
    return dcc.send_data_frame(frame.to_csv, f"cohort-{name}.csv", index=False)


# ---------------------------------------------------------------------------------------------
# One-click report
# ---------------------------------------------------------------------------------------------


def download_bar(vis: ArmVisibility, *, whole_trial: bool) -> html.Div:
    """The report downloads (HTML, DOCX, PDF; HTML with interactive figures on request) and the
    ADaM export. The ADaM zip covers the whole trial, so only principals with access to every
    site (``whole_trial``) get it, as their visibility allows: with the arm only for
    :attr:`ArmVisibility.FULL`, otherwise the blinded export, which obeys the same guards as
    the UI (core.policy, docs/adam.md "Blinding"); the label says which (docs/reports.md)."""
    adam = "ADaM (XPT zip)" if vis is ArmVisibility.FULL else "ADaM (XPT zip, blinded)"
    adam_button = [dbc.Button(adam, id="cohort-adam-btn", color="secondary")] if whole_trial else []
    return html.Div(
        [
            dbc.Checkbox(
                id="cohort-report-interactive",
                label="interactive HTML (+5 MB)",
                value=False,
                className="d-inline-block me-2 small",
            ),
            dbc.ButtonGroup(
                [
                    dbc.Button("Report HTML", id="cohort-report-btn", color="primary"),
                    dbc.Button("DOCX", id="cohort-report-docx-btn", color="primary"),
                    dbc.Button("PDF", id="cohort-report-pdf-btn", color="primary"),
                    *adam_button,
                ],
                size="sm",
            ),
        ],
        className="float-end",
    )


def figure_pngs(figures: dict[Any, Any]) -> dict[Any, bytes]:
    """Render figures to PNG with kaleido in one batch (one Chromium session for all, files in
    a private temporary folder: ``plotly.io.write_images`` leaves in-memory buffers empty;
    docs/environment.md "Figures to files")."""
    if not figures:
        return {}
    keys = list(figures)
    with tempfile.TemporaryDirectory(prefix="report-png-") as tmp:
        paths = [Path(tmp) / f"figure-{n}.png" for n in range(len(keys))]
        plotly.io.write_images(
            [figures[k] for k in keys], paths, format="png", width=900, height=500
        )
        return {k: path.read_bytes() for k, path in zip(keys, paths, strict=True)}


@cache.memoize()
def report_pngs(context: Context, filters: CohortFilters) -> dict[Any, bytes]:
    """The PNG of every report figure for this context and filters, memoized like the panels:
    the HTML, DOCX and PDF downloads of one view render the figures once (kaleido is the
    slow part of a report, about 1 s a figure here)."""
    views = [(p.label, p.view(context, filters)) for p in PANELS]
    return figure_pngs(report.report_figures(views))


def report_parts(principal: Principal, filters: CohortFilters):
    """What every report format shows this principal: the stamp, the panel views (computed
    through the data layer, blinded by it) and the publication check for these filters
    (:func:`components.cohort.publication.publication_for`, the one decision; None: left out
    of every format)."""
    info = dataset_info()
    context = Context.current(principal)
    before, after = data.counts(context, filters)
    stamp = (
        ("Data version", info.version),
        ("Synthetic data", "yes" if info.synthetic else "no"),
        ("Filters", filters.describe()),
        ("Patients", count_text(before, after)),
        ("Blinding mode", BLINDING_WORDS[principal.arm_visibility]),
        ("Role", f"{principal.label} ({principal.user})"),
    )
    views = [(p.label, p.view(context, filters)) for p in PANELS]
    return stamp, views, publication_for(context, filters)


def report_html(
    principal: Principal,
    filters: CohortFilters,
    *,
    now: datetime,
    interactive: bool = False,
    images: dict[Any, bytes] | None = None,
    parts: tuple[Any, ...] | None = None,
) -> str:
    """Self-contained HTML report of every panel of :data:`PANELS` for this principal: static
    PNG figures, or (``interactive``) plotly figures with plotly.js inlined once. ``images``:
    PNGs already rendered for this principal and filters (:func:`figure_pngs`), else rendered;
    ``parts``: their :func:`report_parts`, else computed."""
    stamp, views, publication = parts or report_parts(principal, filters)
    if interactive:
        images = None
    elif images is None:
        images = report_pngs(Context.current(principal), filters)
    return report.report_html(views, stamp=stamp, publication=publication, now=now, images=images)


def report_document(
    principal: Principal,
    filters: CohortFilters,
    *,
    now: datetime,
    fmt: str,
    images: dict[Any, bytes] | None = None,
    parts: tuple[Any, ...] | None = None,
) -> bytes:
    """The report as DOCX or PDF (``fmt``): the HTML report's blocks, methods from the
    context's rules, and the publication check when this role may see it (a stamp row and, as
    in the HTML report, a block with the dataset-vs-published table)."""
    if fmt not in ("docx", "pdf"):
        raise ValueError(f"report format {fmt!r}: expected 'docx' or 'pdf'")
    stamp, views, publication = parts or report_parts(principal, filters)
    context = Context.current(principal)
    if publication is not None:
        words = report.code_words(publication)
        line = f"{words} the published statistics (statistics code); this dataset "
        stamp = (*stamp, ("Publication check", line + publication.verdict()))
    if images is None:
        images = report_pngs(context, filters)
    blocks = report.report_blocks(views, images, publication)
    methods = methods_paragraphs(context.sofa_rules, context.endpoint_rules)
    writer = report_docx if fmt == "docx" else report_pdf
    return writer(blocks, stamp=stamp, methods=methods, now=now)


@callback(
    Output("cohort-report-download", "data"),
    Input("cohort-report-btn", "n_clicks"),
    State("cohort-report-interactive", "value"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_report(n: int | None, interactive: bool | None, *values: Any):
    if not n:
        return no_update
    principal = current_principal()
    now = datetime.now(UTC).replace(tzinfo=None)
    text = report_html(principal, _filters(values), now=now, interactive=bool(interactive))
    audit(
        "export",
        "cohort-report.html",
        export_detail("all panels", values, principal.arm_visibility, None),
    )
    return {"content": text, "filename": f"immunosep-cohort-{now:%Y%m%dT%H%M%S}.html"}


def _document_download(fmt: str, n: int | None, values: tuple[Any, ...]):
    if not n:
        return no_update
    principal = current_principal()
    now = datetime.now(UTC).replace(tzinfo=None)
    content = report_document(principal, _filters(values), now=now, fmt=fmt)
    audit(
        "export",
        f"cohort-report.{fmt}",
        export_detail("all panels", values, principal.arm_visibility, None),
    )
    return dcc.send_bytes(content, f"immunosep-cohort-{now:%Y%m%dT%H%M%S}.{fmt}")


@callback(
    Output("cohort-report-docx-download", "data"),
    Input("cohort-report-docx-btn", "n_clicks"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_report_docx(n: int | None, *values: Any):
    return _document_download("docx", n, values)


@callback(
    Output("cohort-report-pdf-download", "data"),
    Input("cohort-report-pdf-btn", "n_clicks"),
    *FILTER_STATES,
    prevent_initial_call=True,
)
def download_report_pdf(n: int | None, *values: Any):
    return _document_download("pdf", n, values)


@callback(
    Output("cohort-adam-download", "data"),
    Input("cohort-adam-btn", "n_clicks"),
    prevent_initial_call=True,
)
def download_adam(n: int | None):
    """The ADaM export (XPT + define.xml) as a zip: the arm only for a FULL role."""
    if not n:
        return no_update
    principal = current_principal()
    if principal.sites is not None:
        # the export covers every site: never for a site-restricted principal (a forged click)
        return no_update
    context = Context.current(principal)
    include_arm = principal.arm_visibility is ArmVisibility.FULL
    content = export_adam_zip(
        engine(),
        include_arm=include_arm,
        file_format="xpt",
        rules=context.sofa_rules,
        endpoint_rules=context.endpoint_rules,
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    audit(
        "export",
        "adam-xpt.zip",
        f"format: xpt; with arm: {'yes' if include_arm else 'no'}; "
        f"blinding: {BLINDING_WORDS[principal.arm_visibility]}",
    )
    return dcc.send_bytes(content, f"immunosep-adam-xpt-{now:%Y%m%dT%H%M%S}.zip")


def register() -> None:
    dash.register_page(
        __name__, path="/cohort", name="Cohort", title="ImmunoSep: cohort", layout=layout
    )
