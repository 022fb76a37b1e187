"""Every clickable thing on every cohort tab answers a click without a server error.

For each cohort tab and for an unblinded role (statistician), the DSMB closed session
(coded groups) and a blinded monitor, the tab is rendered through the real tab callback
(``/_dash-update-component``, logged in, through the Flask test client, as the browser
would), and then every callback that listens to ``clickData`` of a graph or ``cellClicked``
of a grid on that page (the cohort drill-down) is driven with the payload the browser would
send:

- ``clickData``: what ``dcc.Graph`` forwards from plotly.js: ``{"points": [{curveNumber,
  pointNumber, pointIndex, x, y, (label, value for bars), (z for heatmaps; no pointNumber
  and no customdata, which dcc.Graph drops for 2-D point numbers), text, customdata =
  trace.customdata[pointNumber], bbox}]}``; points whose value is missing are not drawn
  and cannot be clicked, traces with ``hoverinfo="skip"`` send no events;
- ``cellClicked``: what dash-ag-grid sends: ``{value, colId, rowIndex, rowId, timestamp}``
  (``rowId`` is the grid's ``getRowId`` result, else the row index as a string; no row
  ``data``).

Which points: every point of a trace with at most ``SMALL`` points, every cell of a heat map
with at most ``SMALL_HEATMAP`` cells, every cell of a grid with at most ``SMALL`` rows; of
bigger ones the first, a middle and the last point / row (every column of those rows), plus
the first point of each distinct ``customdata`` shape. Any answer other than HTTP 200 / 204
fails, naming the role, tab, component id and payload, with the server's exception.

The drill-down must also list real patients: clicking a responder bar lists exactly the
responders that the bar counts ("events/n" in the bar), and a click on a group cell of the
primary-endpoint tables lists the same patients as the matching bar.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from components.pages.cohort import SLOT, SLOT_ASK, SLOT_BOX, SLOT_GEN
from tests.app import test_blinding as blinding
from tests.app.test_callback_ids import (
    ROUTER_OUTPUT_PREFIX,
    components_by_id,
    id_str,
    parse_id,
    patch,
    pattern_matches,
    split_output,
    walk,
)

#: the cohort page's tabs (``/cohort?tab=...``: part of the URL contract)
TABS = (
    "flow",
    "baseline",
    "primary",
    "trajectories",
    "survival",
    "immune",
    "safety",
    "completeness",
)
#: unblinded, DSMB closed session (coded groups), blinded
ROLES = {"statistician": "stat", "dsmb": "dsmb", "monitor": "mon"}
#: what a role's drill-down answers must never contain (test_blinding's patterns)
ARM_PATTERN = {"monitor": blinding.NONE_PATTERN, "dsmb": blinding.CODED_PATTERN}
CLICK_PROPS = ("clickData", "cellClicked")
SMALL = 60  # points of a trace clicked one by one
SMALL_HEATMAP = 500  # cells of a heat map clicked one by one
SMALL_GRID = 12  # rows of a grid clicked cell by cell
BBOX = {"x0": 100.0, "x1": 120.0, "y0": 50.0, "y1": 80.0}


# ------------------------------------------------------------------------ the browser ----


def decode(value: Any) -> Any:
    """plotly.py's typed-array spec ({dtype, bdata, shape}) as plain lists, as plotly.js
    reads it; anything else unchanged."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if value.get("shape"):
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr.tolist()
    return value


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def shape_of(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(shape_of(x) for x in v) + "]"
    return type(v).__name__


def pick(n: int, limit: int, shapes: list[str] | None = None) -> list[int]:
    """All indices of a small sequence; else first, middle, last and the first index of
    each distinct customdata shape."""
    if n <= limit:
        return list(range(n))
    chosen = {0, n // 2, n - 1}
    if shapes:
        first: dict[str, int] = {}
        for i, s in enumerate(shapes):
            first.setdefault(s, i)
        chosen |= set(first.values())
    return sorted(chosen)


def axis_values(trace: dict[str, Any], axis: str, n: int) -> list[Any]:
    values = decode(trace.get(axis))
    if isinstance(values, list):
        return values
    start, step = trace.get(f"{axis}0", 0), trace.get(f"d{axis}", 1)
    return [start + i * step for i in range(n)]


def click_points(figure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """clickData payloads of the clickable points of a figure (see the module docstring)."""
    for c, trace in enumerate(figure.get("data", [])):
        if trace.get("hoverinfo") == "skip" or trace.get("visible") is False:
            continue
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            z = decode(trace.get("z")) or []
            rows, cols = len(z), (len(z[0]) if z else 0)
            xs, ys = axis_values(trace, "x", cols), axis_values(trace, "y", rows)
            cells = [(r, k) for r in range(rows) for k in range(cols) if not missing(z[r][k])]
            if len(cells) > SMALL_HEATMAP:  # every cell of 3 rows and of 3 columns
                keep_r, keep_k = set(pick(rows, 0)), set(pick(cols, 0))
                cells = [(r, k) for r, k in cells if r in keep_r or k in keep_k]
            for r, k in cells:
                yield {"curveNumber": c, "x": xs[k], "y": ys[r], "z": z[r][k], "bbox": BBOX}
            continue
        xs_raw, ys_raw = decode(trace.get("x")), decode(trace.get("y"))
        n = max(len(v) for v in (xs_raw, ys_raw, []) if isinstance(v, list))
        xs, ys = axis_values(trace, "x", n), axis_values(trace, "y", n)
        horizontal = trace.get("orientation") == "h"
        custom = decode(trace.get("customdata"))
        text = decode(trace.get("text"))
        drawn = [i for i in range(n) if not missing(xs[i]) and not missing(ys[i])]
        shapes = [shape_of(custom[i]) for i in drawn] if isinstance(custom, list) else None
        for j in pick(len(drawn), SMALL, shapes):
            i = drawn[j]
            point: dict[str, Any] = {
                "curveNumber": c,
                "pointNumber": i,
                "pointIndex": i,
                "x": xs[i],
                "y": ys[i],
            }
            if kind == "bar":
                point["label"], point["value"] = (ys[i], xs[i]) if horizontal else (xs[i], ys[i])
            if isinstance(text, list) and i < len(text) and isinstance(text[i], str | int | float):
                point["text"] = text[i]
            elif isinstance(text, str):
                point["text"] = text
            if isinstance(custom, list) and i < len(custom):
                point["customdata"] = custom[i]
            point["bbox"] = BBOX
            yield {"points": [point]}


def column_ids(column_defs: list[dict[str, Any]]) -> list[str]:
    out = []
    for col in column_defs or []:
        if "children" in col:
            out += column_ids(col["children"])
        elif not col.get("hide"):
            out.append(col.get("colId") or col.get("field"))
    return [c for c in out if c]


def row_id(grid: dict[str, Any], row: dict[str, Any], index: int) -> str:
    """ag-grid's node id: the grid's getRowId ("params.data.<field>") or the row index."""
    rule = grid.get("getRowId")
    if isinstance(rule, str):
        m = re.search(r"params\.data(?:\.(\w+)|\[['\"]([^'\"]+)['\"]\])", rule)
        if m:
            return str(row.get(m.group(1) or m.group(2)))
    return str(index)


def cell_clicks(grid: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """cellClicked payloads of the cells of a grid (see the module docstring)."""
    rows = grid.get("rowData") or []
    cols = column_ids(grid.get("columnDefs"))
    for i in pick(len(rows), SMALL_GRID):
        for col in cols:
            payload: dict[str, Any] = {"colId": col, "rowIndex": i}
            if col in rows[i]:  # an absent field is undefined in JS: no "value" key
                payload["value"] = rows[i][col]
            payload["rowId"] = row_id(grid, rows[i], i)
            payload["timestamp"] = int(time.time() * 1000)
            yield dict(sorted(payload.items()))


# ---------------------------------------------------------------------------- callbacks ----


@dataclass
class Answer:
    status: int
    body: str
    error: str


class CohortSession:
    """One logged-in user on the cohort page, speaking Dash's HTTP protocol."""

    def __init__(self, client, role: str, caplog: pytest.LogCaptureFixture | None = None):
        self.client, self.role, self.caplog = client, role, caplog
        self.deps = client.get("/_dash-dependencies").get_json()
        self.shell = client.get("/_dash-layout").get_json()
        router = next(d for d in self.deps if d["output"].startswith(ROUTER_OUTPUT_PREFIX))
        inputs = [
            {
                "id": i["id"],
                "property": i["property"],
                "value": "/cohort" if i["property"] == "pathname" else "",
            }
            for i in router["inputs"]
        ]
        answer = self.post(router, inputs, [], f"{router['inputs'][0]['id']}.pathname")
        assert answer.status == 200, answer.body[:300]
        self.page = json.loads(answer.body)["response"]["_pages_content"]["children"]
        assert patch(self.shell, "_pages_content", "children", self.page)
        self.doc = self.shell
        self._comps: dict[str, list[dict[str, Any]]] | None = None

    def post(
        self,
        dep: dict[str, Any],
        inputs: list,
        state: list,
        changed: str,
        outputs: list[dict[str, Any]] | None = None,
    ) -> Answer:
        """Call ``dep``; ``outputs``: the concrete output ids of a pattern-matching callback."""
        outputs = outputs or [
            {"id": cid, "property": prop} for cid, prop in split_output(dep["output"])
        ]
        body = {
            "output": dep["output"],
            "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": inputs,
            "state": state,
            "changedPropIds": [changed],
        }
        n_before = len(self.caplog.records) if self.caplog else 0
        resp = self.client.post("/_dash-update-component", json=body)
        error = ""
        if resp.status_code >= 500 and self.caplog:
            for rec in self.caplog.records[n_before:]:
                if rec.exc_info:
                    exc = rec.exc_info[1]
                    error = f"{type(exc).__name__}: {exc}"
        return Answer(resp.status_code, resp.get_data(as_text=True), error)

    def components(self) -> dict[str, list[dict[str, Any]]]:
        """Components by id of the current document (walked once per rendered tab)."""
        if self._comps is None:
            self._comps = components_by_id([self.doc])
        return self._comps

    def values(self, spec: dict[str, Any], comps, override: tuple[Any, Any] | None = None):
        """One Input / State entry with the document's current values (``override``:
        ``(component, value)`` for the component that fired)."""
        cid = parse_id(spec["id"])
        if isinstance(cid, dict):
            found = [
                c
                for k, cs in comps.items()
                if k.startswith("{") and pattern_matches(cid, json.loads(k))
                for c in cs
            ]
        else:
            found = comps.get(id_str(cid), [])
        entries = [
            {
                "id": c["props"]["id"],
                "property": spec["property"],
                "value": override[1]
                if override and c is override[0]
                else c["props"].get(spec["property"]),
            }
            for c in found
        ]
        if isinstance(cid, dict):
            return entries
        return (
            entries[0]
            if entries
            else {"id": spec["id"], "property": spec["property"], "value": None}
        )

    def slot_callback(self) -> dict[str, Any]:
        """The callback that draws a tab's panel into its slot: fed by the slot's ask store
        (the browser's showTab asks for a tab not yet drawn for the current filters)."""
        deps = [
            d
            for d in self.deps
            if any(parse_id(i["id"]) == {"type": SLOT_ASK, "tab": ["MATCH"]} for i in d["inputs"])
        ]
        assert len(deps) == 1, [d["output"] for d in deps]
        return deps[0]

    def offered_tabs(self) -> list[str]:
        tabs = next(c for c in walk(self.page) if c["type"] == "Tabs")
        return [c["props"]["tab_id"] for c in walk(tabs["props"]["children"]) if c["type"] == "Tab"]

    def open_tab(self, tab: str) -> None:
        """Open ``tab`` as the browser does: its slot is asked for (generation 0, the filters of
        the page), drawn by the real slot callback and patched into the page; the slot shows,
        the others hide (what showTab does in the browser)."""
        dep = self.slot_callback()
        comps = self.components()
        ask = {"type": SLOT_ASK, "tab": tab}
        inputs = [{"id": ask, "property": "data", "value": {"gen": 0}}]
        state = [self.values(s, comps) for s in dep.get("state", [])]
        outputs = [
            {"id": {"type": SLOT, "tab": tab}, "property": "children"},
            {"id": {"type": SLOT_GEN, "tab": tab}, "property": "data"},
        ]
        answer = self.post(dep, inputs, state, f"{id_str(ask)}.data", outputs=outputs)
        assert answer.status == 200, f"{self.role} tab {tab}: HTTP {answer.status} {answer.error}"
        for cid, props in json.loads(answer.body)["response"].items():
            for prop, value in props.items():
                assert patch(self.doc, cid, prop, value), cid
        for c in walk(self.doc):
            i = c["props"].get("id")
            if isinstance(i, dict) and i.get("type") == SLOT_BOX:
                c["props"]["hidden"] = i["tab"] != tab
        tabs_comp = next(c for c in walk(self.doc) if c["type"] == "Tabs")
        tabs_comp["props"]["active_tab"] = tab
        self._comps = None

    def shown_slot(self) -> dict[str, Any]:
        """The tab slot on screen (the others are kept hidden: their buttons are not there to
        click)."""
        shown = [
            c
            for c in walk(self.doc)
            if isinstance(c["props"].get("id"), dict)
            and c["props"]["id"].get("type") == SLOT_BOX
            and not c["props"].get("hidden")
        ]
        assert len(shown) == 1, [c["props"]["id"] for c in shown]
        return shown[0]

    def click_callbacks(self) -> list[dict[str, Any]]:
        """Callbacks listening to clickData / cellClicked of components on this document."""
        comps = self.components()
        out = []
        for dep in self.deps:
            for spec in dep["inputs"]:
                entry = self.values(spec, comps) if spec["property"] in CLICK_PROPS else None
                found = entry if isinstance(entry, list) else [entry] if entry else []
                if any(id_str(e["id"]) in comps for e in found):
                    out.append(dep)
                    break
        return out

    def click(self, dep: dict[str, Any], target: dict[str, Any], prop: str, payload: Any) -> Answer:
        """The click as the browser sends it: through the clientside relay ``dep`` into its
        store, and the server callback listening to the store called with it."""
        comps = self.components()
        if dep.get("clientside_function"):
            server, entry = blinding.relay(self.deps, dep, target["props"]["id"], payload)
            state = [self.values(s, comps) for s in server.get("state", [])]
            return self.post(server, [entry], state, f"{id_str(entry['id'])}.{entry['property']}")
        inputs = [
            self.values(i, comps, (target, payload) if i["property"] == prop else None)
            for i in dep["inputs"]
        ]
        state = [self.values(s, comps) for s in dep.get("state", [])]
        return self.post(dep, inputs, state, f"{id_str(target['props']['id'])}.{prop}")

    def clickables(self, dep: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, Any]]:
        """(component, property, payload) of every click this callback listens to."""
        comps = self.components()
        for spec in dep["inputs"]:
            if spec["property"] not in CLICK_PROPS:
                continue
            entry = self.values(spec, comps)
            ids = {id_str(e["id"]) for e in (entry if isinstance(entry, list) else [entry])}
            for comp in (c for key in ids for c in comps.get(key, [])):
                if spec["property"] == "clickData":
                    for payload in click_points(comp["props"].get("figure") or {}):
                        yield comp, "clickData", payload
                else:
                    for payload in cell_clicks(comp["props"]):
                        yield comp, "cellClicked", payload


def drill_result(answer: Answer) -> tuple[str, list[list[str]]]:
    """The drill-down's heading and its table rows (cell texts) from a callback answer."""
    assert answer.status == 200, f"no drill-down: HTTP {answer.status} {answer.error}"
    response = json.loads(answer.body)["response"]
    assert response, f"no drill-down: the callback answered no_update ({answer.body})"
    tree = next(iter(next(iter(json.loads(answer.body)["response"].values())).values()))
    heading = next(c["props"]["children"] for c in walk(tree) if c["type"] == "H2")
    rows = []
    for body in (c for c in walk(tree) if c["type"] == "Tbody"):
        for tr in walk(body["props"]["children"]):
            if tr["type"] == "Tr":
                cells = []
                for td in tr["props"]["children"]:
                    inner = td["props"]["children"]
                    cells.append(inner["props"]["children"] if isinstance(inner, dict) else inner)
                rows.append(cells)
    return heading, rows


# ----------------------------------------------------------------------------- fixtures ----

#: test_blinding's login-mode app on a copy of the demo database, one user per role
#: (clin, mon, dsmb, stat); module-scoped fixtures, reused here
login_settings = blinding.login_settings
login_app = blinding.login_app


@pytest.fixture(scope="module")
def clients(login_app) -> dict[str, Any]:
    out = {}
    for role, user in ROLES.items():
        client = login_app.server.test_client()
        blinding.login(client, user)
        out[role] = client
    return out


@pytest.fixture
def session_for(clients, caplog):
    caplog.set_level(logging.ERROR)

    def make(role: str) -> CohortSession:
        return CohortSession(clients[role], role, caplog)

    return make


# -------------------------------------------------------------------------------- tests ----


@pytest.mark.parametrize("role", ROLES)
def test_click001_the_page_offers_exactly_these_tabs(session_for, role):
    assert session_for(role).offered_tabs() == list(TABS)


@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("role", ROLES)
def test_click002_every_click_on_every_tab_answers_without_a_server_error(session_for, role, tab):
    s = session_for(role)
    s.open_tab(tab)
    deps = s.click_callbacks()
    assert deps, "no callback listens to clicks on the cohort page"
    failures, n_clicks, by_component = [], 0, {}
    for dep in deps:
        for comp, prop, payload in s.clickables(dep):
            answer = s.click(dep, comp, prop, payload)
            n_clicks += 1
            key = id_str(comp["props"]["id"])
            by_component[key] = by_component.get(key, 0) + 1
            if answer.status not in (200, 204):
                failures.append(
                    f"{role} / tab {tab} / {key}.{prop} = {json.dumps(payload)}: "
                    f"HTTP {answer.status} {answer.error or answer.body[:200]}"
                )
            elif answer.status == 200:
                assert "response" in json.loads(answer.body)
                # a drill-down of a blinded role never names an arm (not even in a title)
                pattern = ARM_PATTERN.get(role)
                if pattern is not None and (hit := pattern.search(answer.body)):
                    failures.append(f"{role} / tab {tab} / {key}: arm word {hit.group(0)!r}")
    clickable = [
        c
        for c in walk(s.doc)
        if c["type"] in ("Graph", "AgGrid") and isinstance(c["props"].get("id"), dict)
    ]

    def has_clicks(c: dict[str, Any]) -> bool:
        if c["type"] == "AgGrid":
            return bool(c["props"].get("rowData"))
        return any(click_points(c["props"].get("figure") or {}))

    missed = [
        id_str(c["props"]["id"])
        for c in clickable
        if id_str(c["props"]["id"]) not in by_component and has_clicks(c)
    ]
    assert missed == [], f"clickable components never clicked: {missed}"
    assert n_clicks > 0, "nothing to click on this tab"
    assert failures == [], f"{len(failures)} of {n_clicks} clicks failed:\n" + "\n".join(
        failures[:40]
    )


def bars(s: CohortSession, name: str) -> tuple[dict[str, Any], list[tuple[int, dict]]]:
    """A responder figure and its bars: (trace index, clickData point) with events/n text."""
    graph = next(
        c for c in walk(s.doc) if c["type"] == "Graph" and c["props"]["id"].get("name") == name
    )
    points = [p["points"][0] for p in click_points(graph["props"]["figure"])]
    return graph, [(p["curveNumber"], p) for p in points]


@pytest.mark.parametrize("endpoint", ["d9", "d15"])
@pytest.mark.parametrize("role", ROLES)
def test_click003_a_responder_bar_lists_the_responders_it_counts(session_for, role, endpoint):
    s = session_for(role)
    s.open_tab("primary")
    (dep,) = s.click_callbacks()
    graph, points = bars(s, f"responders_{endpoint}")
    traces = graph["props"]["figure"]["data"]
    assert len(points) == 3 * len(traces), "one bar per stratum (overall, MALS, SIP) and group"
    for curve, point in points:
        events = int(point["text"].split("/")[0])
        heading, rows = drill_result(s.click(dep, graph, "clickData", {"points": [point]}))
        where = f"{role} {endpoint} {traces[curve]['name']} {point['x']}"
        assert heading.endswith(f": {events} patients"), f"{where}: {heading}"
        assert len(rows) == min(events, 500), where
        assert all(re.fullmatch(r"SYN-\d\d-\d{4}", r[0]) for r in rows), where
        assert len({r[0] for r in rows}) == len(rows), f"{where}: a patient listed twice"
        if role != "monitor":  # the group column holds the clicked bar's group
            assert {r[-1] for r in rows} <= {traces[curve]["name"]}, where
        # a phenotype stratum lists only that phenotype
        if point["customdata"][0] != "overall" and rows:
            assert {r[2] for r in rows} == {point["customdata"][0]}, where


def test_click004_bar_counts_are_the_published_responders(session_for, clients):
    """Anchor: the unblinded day-9 overall bars equal the API's (published) responder counts."""
    s = session_for("statistician")
    s.open_tab("primary")
    (dep,) = s.click_callbacks()
    graph, points = bars(s, "responders_d9")
    summary = clients["statistician"].get("/api/v1/cohort/summary").get_json()["by_group"]
    traces = graph["props"]["figure"]["data"]
    overall = [(c, p) for c, p in points if p["customdata"][0] == "overall"]
    assert len(overall) == 2
    for curve, point in overall:
        heading, rows = drill_result(s.click(dep, graph, "clickData", {"points": [point]}))
        assert len(rows) == summary[traces[curve]["name"]]["responders"], heading


@pytest.mark.parametrize("table", ["primary_d9", "primary_d15"])
@pytest.mark.parametrize("role", ["statistician", "monitor"])
def test_click005_a_group_cell_of_the_primary_table_lists_its_patients(session_for, role, table):
    """A click on "events/n" in a group column of the primary-endpoint table lists the same
    patients as the matching bar (the payload is dash-ag-grid's, with no row data)."""
    s = session_for(role)
    s.open_tab("primary")
    (dep,) = s.click_callbacks()
    grid = next(
        c for c in walk(s.doc) if c["type"] == "AgGrid" and c["props"]["id"].get("name") == table
    )
    clicks = [
        p
        for p in cell_clicks(grid["props"])
        if re.fullmatch(r"g\d+", p["colId"]) and re.match(r"\d+/\d+", str(p.get("value")))
    ]
    assert clicks, "no group cell with events/n"
    failures = []
    for payload in clicks:
        events = int(payload["value"].split("/")[0])
        answer = s.click(dep, grid, "cellClicked", payload)
        if answer.status != 200:
            failures.append(f"{json.dumps(payload)}: HTTP {answer.status} {answer.error}")
            continue
        heading, _rows = drill_result(answer)
        if not heading.endswith(f": {events} patients"):
            failures.append(f"{json.dumps(payload)}: {heading}")
    assert failures == [], f"{role} {table} cell clicks list no patients:\n" + "\n".join(failures)
