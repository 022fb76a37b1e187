"""The data-quality review page ``/review`` (docs/review.md): rendered for every allowed role
with no arm in its HTML or callback output, refused to clinicians, the query lifecycle and
the review marks driven through the real callbacks (role refusals included), no
randomisation read on its code paths, and headless-Chromium screenshots at 1440x900 and
1024x768."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from plotly.utils import PlotlyJSONEncoder
from sqlalchemy.engine import Engine

from bench import chromium
from components.pages import review as page
from components.server.auth import Principal, Role
from components.shell import build_navbar
from core.db import make_engine
from core.repository import load_audit
from core.review import RULES
from tests.app.conftest import save_screenshot
from tests.app.test_blinding import (  # noqa: F401  (login_settings / login_app are fixtures)
    CODED_PATTERN,
    NONE_PATTERN,
    ROUTER_OUTPUT_PREFIX,
    Crawl,
    id_key,
    login,
    login_app,
    login_settings,
    walk,
)

ALLOWED = (("mon", NONE_PATTERN), ("dsmb", CODED_PATTERN), ("stat", NONE_PATTERN))


class PageSession:
    """One logged-in user on /review: render the page, call its callbacks by output id."""

    def __init__(self, client: Any):
        self.crawl = Crawl(client)
        self.deps = client.get("/_dash-dependencies").get_json()
        self.layout = self.crawl.render("/review")
        self.components = {
            id_key(c["props"]["id"]): c for c in walk(self.layout) if "id" in c["props"]
        }

    def text(self) -> str:
        return json.dumps(self.layout)

    def call(
        self, output_id: str, values: dict[str, Any], changed: str | None = None
    ) -> dict[str, Any]:
        dep = next(
            d
            for d in self.deps
            if not d["output"].startswith(ROUTER_OUTPUT_PREFIX)
            and output_id in d["output"]
            and not d.get("clientside_function")
        )

        def spec(s: dict[str, Any]) -> dict[str, Any]:
            comp = self.components.get(s["id"], {"props": {}})
            value = values.get(s["id"], comp["props"].get(s["property"]))
            return {"id": s["id"], "property": s["property"], "value": value}

        inputs = [spec(i) for i in dep["inputs"]]
        state = [spec(s) for s in dep.get("state", [])]
        first = dep["inputs"][0]
        changed = changed or f"{first['id']}.{first['property']}"
        resp = self.crawl.call(dep, inputs, state, changed)
        return resp.get_json()["response"]


def _session(login_app, user: str) -> PageSession:  # noqa: F811
    client = login_app.server.test_client()
    login(client, user)
    return PageSession(client)


def _ids(response: dict[str, Any]) -> set[str]:
    return set(response)


@pytest.mark.parametrize(("user", "pattern"), ALLOWED)
def test_review_renders_for_each_allowed_role_without_the_arm(login_app, user, pattern):  # noqa: F811
    s = _session(login_app, user)
    html = s.text()
    for title in ("Per-site summary", "Recruitment by site", "Issues", "Queries"):
        assert title in html
    summary = s.components[page.SUMMARY_GRID]["props"]["rowData"]
    assert len(summary) == 33  # the demo cohort's sites
    assert sum(r["patients"] for r in summary) == 276
    issues = s.components[page.ISSUE_GRID]["props"]["rowData"]
    assert len(issues) > 50
    assert {r["rule"] for r in issues} <= {r.rule_id for r in RULES}
    # the callbacks' outputs too
    filtered = s.call(page.ISSUE_GRID, {page.ISSUE_RULE: ["missing_baseline_component"]})
    rows = filtered[page.ISSUE_GRID]["rowData"]
    assert rows
    assert {r["rule"] for r in rows} == {"missing_baseline_component"}
    status = s.call(page.STATUS_GRID, {page.STATUS_FILTER: None})
    assert len(status[page.STATUS_GRID]["rowData"]) == 276 * 7
    assert not pattern.search(html)
    for _label, body in s.crawl.bodies:
        assert not pattern.search(body), _label
        assert '"arm"' not in body
        assert '"group"' not in body


def test_the_dsmb_reads_but_may_not_act(login_app):  # noqa: F811
    s = _session(login_app, "dsmb")
    assert s.components[page.Q_RAISE]["props"]["disabled"] is True
    assert s.components[page.STATUS_MARK]["props"]["disabled"] is True
    assert s.components[page.Q_ANSWER]["props"]["disabled"] is True
    out = s.call(
        page.QUERY_GRID,
        {
            page.Q_PATIENT: "SYN-01-0001",
            page.Q_FORM: "renal",
            page.Q_VARIABLE: "creatinine",
            page.Q_TEXT: "A DSMB member tries to raise a query.",
        },
        changed=f"{page.Q_RAISE}.n_clicks",
    )
    assert "role 'dsmb'" in json.dumps(out[page.Q_MESSAGE])
    assert "may not raise a query" in json.dumps(out[page.Q_MESSAGE])


def test_clinicians_get_no_review_data(login_app):  # noqa: F811
    s = _session(login_app, "clin")
    html = s.text()
    assert "has no access" in html
    assert page.ISSUE_GRID not in s.components
    # a crafted callback request gets nothing either
    out = s.call(page.ISSUE_GRID, {page.ISSUE_RULE: None})
    assert out[page.ISSUE_GRID]["rowData"] == []


def test_navbar_links_the_review_for_allowed_roles_only():
    def links(role: Role) -> str:
        return json.dumps(build_navbar(Principal("u", role)), cls=PlotlyJSONEncoder)

    for role in (Role.MONITOR, Role.DSMB, Role.STATISTICIAN, Role.DEMO):
        assert '"/review"' in links(role)
    assert '"/review"' not in links(Role.CLINICIAN)


def test_grid_columns_come_from_one_builder():
    assert page._columns(
        [
            ("a", "A", 80),
            ("b", "B", None, {"minWidth": 200, "tooltipField": "b"}),
            ("n", "N", 60, {"type": "numericColumn"}),
        ]
    ) == [
        {"field": "a", "headerName": "A", "width": 80},
        {"field": "b", "headerName": "B", "flex": 1, "minWidth": 200, "tooltipField": "b"},
        {"field": "n", "headerName": "N", "width": 60, "type": "numericColumn"},
    ]
    assert page.issue_columns()[-1] == {
        "field": "detail",
        "headerName": "Detail",
        "flex": 1,
        "minWidth": 260,
        "tooltipField": "detail",
    }
    assert page.issue_columns()[8] == {
        "field": "study_day",
        "headerName": "Study day",
        "type": "numericColumn",
        "width": 90,
    }
    assert [page.status_columns(s)[0]["width"] for s in (True, False)] == [150, 136]
    assert page.status_columns(True)[4]["cellClassRules"] == {
        "text-danger fw-semibold": "params.data.status === 'new data since review'",
        "text-success": "params.data.status === 'reviewed'",
    }
    assert [c["field"] for c in page.query_columns()] == [
        "id",
        "status",
        "patient_id",
        "thread",
        "form_label",
        "variable",
        "obs_time",
        "value_text",
        "raised_at",
    ]
    assert page.query_columns()[1]["cellClassRules"] == {
        "text-danger fw-semibold": "params.value === 'open'",
        "text-primary": "params.value === 'answered'",
    }
    # each grid: every column has a width or takes the rest, and one column takes the rest
    for columns in (page.issue_columns(), page.status_columns(True), page.query_columns()):
        assert all(("width" in c) != ("flex" in c) for c in columns)
        assert [c["field"] for c in columns if "flex" in c] in (
            ["detail"],
            ["reviewed"],
            ["thread"],
        )


def test_query_lifecycle_and_marks_through_the_callbacks(login_app, login_settings):  # noqa: F811
    engine = make_engine(login_settings.database_url)
    mon = _session(login_app, "mon")
    issue = mon.components[page.ISSUE_GRID]["props"]["rowData"][0]
    filled = mon.call(page.Q_PATIENT, {page.ISSUE_GRID: [issue]})
    assert filled[page.Q_PATIENT]["value"] == issue["patient_id"]
    assert filled[page.Q_FORM]["value"] == issue["form"]
    raised = mon.call(
        page.QUERY_GRID,
        {
            page.Q_PATIENT: issue["patient_id"],
            page.Q_FORM: issue["form"],
            page.Q_VARIABLE: issue["variable"],
            page.Q_TIME: issue["time"],
            page.Q_VALUE: "",
            page.Q_TEXT: "Component not observed on this day: please check the source.",
        },
        changed=f"{page.Q_RAISE}.n_clicks",
    )
    assert "Query raised" in json.dumps(raised[page.Q_MESSAGE])
    query = next(
        q for q in raised[page.QUERY_GRID]["rowData"] if q["patient_id"] == issue["patient_id"]
    )
    assert query["status"] == "open"
    site_row = next(
        r for r in raised[page.SUMMARY_GRID]["rowData"] if r["site_id"] == issue["site_id"]
    )
    assert site_row["open_queries"] >= 1

    refused = mon.call(
        page.QUERY_GRID,
        {page.QUERY_GRID: [query], page.Q_REPLY: "A monitor cannot answer."},
        changed=f"{page.Q_ANSWER}.n_clicks",
    )
    assert "may not answer a query" in json.dumps(refused[page.Q_MESSAGE])

    stat = _session(login_app, "stat")
    answered = stat.call(
        page.QUERY_GRID,
        {page.QUERY_GRID: [query], page.Q_REPLY: "Not drawn on that day (confirmed)."},
        changed=f"{page.Q_ANSWER}.n_clicks",
    )
    assert f"Query {query['id']} answered" in json.dumps(answered[page.Q_MESSAGE])
    closed = mon.call(
        page.QUERY_GRID,
        {page.QUERY_GRID: [{**query, "status": "answered"}], page.Q_REPLY: ""},
        changed=f"{page.Q_CLOSE}.n_clicks",
    )
    row = next(q for q in closed[page.QUERY_GRID]["rowData"] if q["id"] == query["id"])
    assert row["status"] == "closed"

    marked = mon.call(
        page.STATUS_GRID,
        {page.STATUS_GRID: [{"patient_id": issue["patient_id"], "form": issue["form"]}]},
        changed=f"{page.STATUS_MARK}.n_clicks",
    )
    assert "Marked 1 patient-form(s) reviewed" in json.dumps(marked[page.STATUS_MESSAGE])
    status = {r["row_id"]: r for r in marked[page.STATUS_GRID]["rowData"]}
    mark = status[f"{issue['patient_id']}/{issue['form']}"]
    assert mark["status"] == "reviewed"
    assert mark["reviewed"].startswith("mon (monitor), ")

    trail = load_audit(engine)
    ours = trail[trail["target"] == f"query/{query['id']}"].sort_values("id")
    assert ours[["action", "user"]].values.tolist() == [
        ["query_raise", "mon"],
        ["query_answer", "stat"],
        ["query_close", "mon"],
    ]
    assert (trail["action"] == "review_mark").sum() >= 1
    engine.dispose()


def test_no_randomisation_read_on_the_review_paths(login_app):  # noqa: F811
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement.lower())

    sa.event.listen(Engine, "before_cursor_execute", record)
    try:
        s = _session(login_app, "mon")
        s.call(page.ISSUE_GRID, {page.ISSUE_SEVERITY: ["high"]})
        s.call(page.STATUS_GRID, {page.STATUS_FILTER: ["not reviewed"]})
    finally:
        sa.event.remove(Engine, "before_cursor_execute", record)
    assert len(seen) >= 1
    assert [q for q in seen if "randomisation" in q] == []


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (1024, 768)])
def test_review_screenshots(live_server, browser, width, height):
    from selenium.webdriver.common.by import By

    browser.set_window_size(width, height)
    browser.get(f"{live_server.url}/review")
    chromium.settle(browser, f"#{page.RECRUITMENT} .main-svg", 60)
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{page.ISSUE_GRID} .ag-row")
    plots = browser.find_elements(By.CSS_SELECTOR, f"#{page.RECRUITMENT} .main-svg")
    assert rows, "the issue grid rendered no rows"
    assert plots, "the recruitment chart did not render"
    title = browser.find_element(By.CSS_SELECTOR, "h1").text
    assert title == "Data review"
    xaxis = browser.find_element(By.CSS_SELECTOR, f"#{page.RECRUITMENT} .xtitle").text
    assert xaxis == "Week of randomisation (Monday start, UTC)"
    path = save_screenshot(browser, f"review-{width}x{height}")
    assert path.stat().st_size > 20_000
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
