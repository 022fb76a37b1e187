"""Forged callback requests with wrong-shaped bodies are refused cleanly (never HTTP 500).

Two layers (login mode, the demo cohort, a blinded monitor): the envelope guard
(``components.server.security.callback_body_problem``: wrong number of inputs / states, an entry
that is not an ``{id, property, value}`` object) answers HTTP 400 before Dash parses the body;
the cohort CSV callback refuses wrong-shaped values (a filter that is a number or an object, a
tab that is a list, a click that is not an object or names no table) and the drill-down
refuses a click that names no cohort figure or grid, with PreventUpdate (HTTP 204). Each
refusal is logged with the shape only (no value, no patient or site id) and writes no audit row.
"""

from __future__ import annotations

import io
import json
import logging

import pandas as pd
import pytest

from components.pages.cohort import csv_ask, drill_ask
from components.server.security import callback_body_problem
from tests.app import test_audit_trail as trail
from tests.app import test_blinding as blinding

login_settings = blinding.login_settings
login_app = blinding.login_app
engine = trail.engine

OUTPUT = "cohort-csv-download.data"
#: the store the "Download CSV" buttons write through their relay (assets/36_cohort_clicks.js)
ASK = "cohort-csv-ask"
CHANGED = f"{ASK}.data"
FILTERS = ("site", "country", "phenotype", "infection", "age", "sofa")
#: a site id and a patient id put into the forged values: never in a log line
SECRET_SITE = "SYN-S26"


def clicks(value=None) -> list:
    """The relay's store, as the browser writes it for a click on a table's button."""
    return [
        {
            "id": ASK,
            "property": "data",
            "value": csv_ask("table1_phenotype", 1) if value is None else value,
        }
    ]


def state(tab="baseline", **filters) -> list:
    return [{"id": "cohort-tabs", "property": "active_tab", "value": tab}] + [
        {"id": f"cohort-f-{n}", "property": "value", "value": filters.get(n, [])} for n in FILTERS
    ]


def body(inputs=None, st=None, changed=CHANGED, **extra) -> dict:
    out = {
        "output": OUTPUT,
        "outputs": {"id": "cohort-csv-download", "property": "data"},
        "inputs": clicks() if inputs is None else inputs,
        "state": state() if st is None else st,
        "changedPropIds": [changed],
    }
    out.update(extra)
    return out


def without(key: str) -> dict:
    b = body()
    del b[key]
    return b


#: (case, body, HTTP status, what the log names)
FORGED = [
    ("inputs a string", body(inputs=["n_clicks"]), 400, "inputs[0]: not an {id, property"),
    ("inputs not a list", body(inputs="n_clicks"), 400, "inputs: expected a list of 1"),
    ("state missing", without("state"), 400, "state: expected a list of 7"),
    ("state short", body(st=state()[:3]), 400, "state: expected a list of 7"),
    ("state entry a string", body(st=["baseline", *state()[1:]]), 400, "state[0]: not an"),
    ("unknown output", body(output="cohort-nothing.data"), 400, "unknown callback output"),
    ("changed not strings", body(changedPropIds=[{"id": 1}]), 400, "changedPropIds"),
    ("filter a number", body(st=state(site=26)), 204, "filter site is int"),
    ("filter an object", body(st=state(site={SECRET_SITE: 1})), 204, "filter site is dict"),
    ("filter list of objects", body(st=state(site=[{"x": SECRET_SITE}])), 204, "filter site is list"),
    ("tab a list", body(st=state(tab=[SECRET_SITE])), 204, "tab is list, expected text"),
    ("tab an object", body(st=state(tab={"a": 1})), 204, "tab is dict, expected text"),
    ("button without a name", body(inputs=clicks({"at": 1})), 204, "the clicked button has no table name"),
    ("button name a list", body(inputs=clicks(csv_ask([SECRET_SITE]))), 204, "the clicked button has no table name"),
    ("click a string", body(inputs=clicks(SECRET_SITE)), 204, "the click is str, expected an object"),
    ("click a list", body(inputs=clicks([SECRET_SITE])), 204, "the click is list, expected an object"),
]  # fmt: skip


@pytest.fixture(scope="module")
def monitor(login_app):
    return trail.logged_in(login_app, "mon")


def test_forge001_the_well_formed_request_downloads_the_csv(monitor, engine):
    before = trail.last_id(engine)
    resp = monitor.post("/_dash-update-component", json=body())
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    payload = trail.download_of(resp.get_data(as_text=True))
    assert payload["filename"] == "cohort-table1_phenotype.csv"
    assert len(pd.read_csv(io.StringIO(payload["content"]))) > 3
    rows = trail.new_rows(engine, before)
    assert rows["target"].tolist() == ["cohort-table1_phenotype.csv"]


@pytest.mark.parametrize(("case", "forged", "status", "logged"), FORGED, ids=[f[0] for f in FORGED])
def test_forge002_wrong_shaped_requests_are_refused_cleanly(
    monitor, engine, caplog, case, forged, status, logged
):
    before = trail.last_id(engine)
    with caplog.at_level(logging.WARNING):
        resp = monitor.post("/_dash-update-component", json=forged)
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, (case, text[:300])
    if status == 400:
        assert resp.get_json()["error"] == "malformed callback request"
    # refused: no file, no audit row; the log names the shape, never a value
    assert "content" not in text
    assert trail.new_rows(engine, before).empty
    lines = [r.getMessage() for r in caplog.records if "refused a malformed" in r.getMessage()]
    assert len(lines) == 1, lines
    assert logged in lines[0]
    assert SECRET_SITE not in lines[0]
    assert "Traceback" not in caplog.text
    assert "internal error" not in text


def test_forge003_the_envelope_check_on_its_own():
    cmap = {"a.b": {"inputs": [{"id": "x", "property": "n_clicks"}], "state": []}}
    good = {"output": "a.b", "inputs": [{"id": "x", "property": "n_clicks", "value": 1}]}
    assert callback_body_problem(good, cmap) is None
    # a pattern-matching input: a list of entries (empty when no component matches)
    assert callback_body_problem({**good, "inputs": [[]]}, cmap) is None
    assert callback_body_problem([good], cmap) == "the body is not a JSON object"
    assert callback_body_problem({**good, "inputs": []}, cmap) == (
        "inputs: expected a list of 1 entries"
    )
    assert callback_body_problem({**good, "inputs": [{"id": "x"}]}, cmap) == (
        "inputs[0]: not an {id, property, value} entry"
    )
    assert callback_body_problem({**good, "state": [{"id": "y", "property": "v"}]}, cmap) == (
        "state: expected a list of 0 entries"
    )


# ------------------------------------------------ the cohort tab slots (issue 19, MATCH) ----

SLOT_OUTPUT = (
    '..{"tab":["MATCH"],"type":"cohort-slot"}.children'
    '...{"tab":["MATCH"],"type":"cohort-slot-gen"}.data..'
)


def slot_body(tab="baseline", ask=None, out_tabs=None, ask_tab=None) -> dict:
    """A request to draw a tab's slot; ``out_tabs`` / ``ask_tab`` forge the ids."""
    first, second = out_tabs or (tab, tab)
    ask_id = {"type": "cohort-slot-ask", "tab": ask_tab if ask_tab is not None else tab}
    return {
        "output": SLOT_OUTPUT,
        "outputs": [
            {"id": {"type": "cohort-slot", "tab": first}, "property": "children"},
            {"id": {"type": "cohort-slot-gen", "tab": second}, "property": "data"},
        ],
        "inputs": [{"id": ask_id, "property": "data", "value": ask or {"gen": 2}}],
        "state": [{"id": f"cohort-f-{n}", "property": "value", "value": []} for n in FILTERS],
        "changedPropIds": [json.dumps(ask_id, separators=(",", ":")) + ".data"],
    }


SLOT_FORGED = [
    ("output ids a pattern", slot_body(out_tabs=(["MATCH"], ["MATCH"])), 400, "outputs:"),
    ("outputs of two tabs", slot_body(out_tabs=("baseline", "safety")), 400, "outputs:"),
    ("ask of another tab", slot_body(ask_tab="safety"), 400, "inputs[0]:"),
    ("ask id a pattern", slot_body(ask_tab=["ALL"]), 400, "inputs[0]:"),
    ("no such tab", slot_body(tab="nope"), 204, "the asked slot names no tab"),
    ("ask not a generation", slot_body(ask={"gen": "2"}), 204, "ask is dict, expected a gen"),
]  # fmt: skip


def test_forge004_a_tab_slot_is_drawn_for_the_generation_asked(monitor):
    """The well-formed request: the tab's panel (blinded: no arm word) and the generation."""
    resp = monitor.post("/_dash-update-component", json=slot_body("survival", {"gen": 7}))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    got = resp.get_json()["response"]
    slot = got['{"tab":"survival","type":"cohort-slot"}']["children"]
    assert slot["props"]["className"] == "cohort-panel cohort-panel-survival"
    assert got['{"tab":"survival","type":"cohort-slot-gen"}']["data"] == 7
    assert not blinding.NONE_PATTERN.search(resp.get_data(as_text=True))


@pytest.mark.parametrize(
    ("case", "forged", "status", "logged"), SLOT_FORGED, ids=[f[0] for f in SLOT_FORGED]
)
def test_forge005_forged_tab_slot_requests_are_refused_cleanly(
    monitor, caplog, case, forged, status, logged
):
    with caplog.at_level(logging.WARNING):
        resp = monitor.post("/_dash-update-component", json=forged)
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, (case, text[:300])
    assert "cohort-panel" not in text
    lines = [
        r.getMessage()
        for r in caplog.records
        if "refused a malformed" in r.getMessage() or "malformed callback" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert logged in lines[0]
    assert "Traceback" not in caplog.text


# ------------------------------------------- drill-downs (the click relay's store, issue 19) ----

AE = {"type": "cohort-graph", "name": "ae"}


def drill_body(ask) -> dict:
    return {
        "output": "..cohort-drilldown.children...cohort-drill-panel.style..",
        "outputs": [
            {"id": "cohort-drilldown", "property": "children"},
            {"id": "cohort-drill-panel", "property": "style"},
        ],
        "inputs": [{"id": "cohort-drill-ask", "property": "data", "value": ask}],
        "state": [{"id": f"cohort-f-{n}", "property": "value", "value": []} for n in FILTERS],
        "changedPropIds": ["cohort-drill-ask.data"],
    }


DRILL_FORGED = [
    ("click a list", drill_body([SECRET_SITE]), "the click is list, expected an object"),
    ("element without a name", drill_body({**drill_ask(AE, {}), "id": {"type": "cohort-graph"}}), "the clicked element has no name"),
    ("element name an object", drill_body(drill_ask({**AE, "name": {"x": SECRET_SITE}}, {})), "the clicked element has no name"),
    ("element of another kind", drill_body({**drill_ask(AE, {}), "prop": "n_clicks"}), "the click names no cohort figure or grid"),
    ("payload a string", drill_body(drill_ask(AE, SECRET_SITE)), "the click payload is str, expected an object"),
]  # fmt: skip


def test_forge006_a_relayed_click_opens_its_drill_down(monitor):
    """The well-formed request: a click on the AESI chart's anaemia bar lists its patients."""
    click = {"points": [{"customdata": ["Anaemia", "All patients"]}]}
    resp = monitor.post("/_dash-update-component", json=drill_body(drill_ask(AE, click)))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    got = resp.get_json()["response"]
    assert got["cohort-drill-panel"]["style"]["position"] == "fixed"  # shown
    assert "Anaemia" in json.dumps(got["cohort-drilldown"]["children"])
    assert not blinding.NONE_PATTERN.search(resp.get_data(as_text=True))


@pytest.mark.parametrize(
    ("case", "forged", "logged"), DRILL_FORGED, ids=[f[0] for f in DRILL_FORGED]
)
def test_forge007_forged_drill_requests_are_refused_cleanly(monitor, caplog, case, forged, logged):
    with caplog.at_level(logging.WARNING):
        resp = monitor.post("/_dash-update-component", json=forged)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 204, (case, text[:300])
    lines = [r.getMessage() for r in caplog.records if "refused a malformed" in r.getMessage()]
    assert len(lines) == 1, lines
    assert logged in lines[0]
    assert SECRET_SITE not in lines[0]
    assert "Traceback" not in caplog.text
