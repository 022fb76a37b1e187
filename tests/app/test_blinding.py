"""Blinding is enforced on the server (issue 8).

A crawler logs in as each role, renders every page through the Pages router callback, drives
every callback whose inputs are on that page with real values taken from the rendered layout
(each dropdown option, each tab, checklist values, clicks), fetches every API route and every
download, and scans every response body. For blinded roles no response may contain an arm
label or a treatment name; for the DSMB closed session only coded groups may appear.

The crawler is proven able to fail: the same crawl against a deliberately leaking build (an
after_request hook that injects a patient's arm into callback responses) must report leaks.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from components.pages.cohort import csv_ask, drill_ask
from settings import Settings

ROUTER_OUTPUT_PREFIX = ".._pages_content.children"
USERS = {
    "clin": ("clinician", ["SYN-S01"]),
    "mon": ("monitor", None),
    "dsmb": ("dsmb", None),
    "stat": ("statistician", None),
}
PASSWORD = "correct horse battery"
NONE_PATTERN = re.compile(
    r"precision|placebo|anakinra|interferon|group\s*a\b|group\s*b\b|\"arm\"\s*:", re.IGNORECASE
)
CODED_PATTERN = re.compile(r"precision|placebo|anakinra|interferon|\"arm\"\s*:", re.IGNORECASE)
PAGES = (
    "/",
    "/?site=SYN-S01&day=3",
    "/?site=all&day=now",
    "/patient",
    "/patient/SYN-01-0001",
    "/patient/SYN-01-0001?day=3&layers=support,sofa2",
    "/patient/SYN-02-0001",
    "/cohort",
    "/data",
    "/audit",
    "/review",
)
API = (
    "/api/v1/version",
    "/api/v1/patients",
    "/api/v1/patients/SYN-01-0001/sofa",
    "/api/v1/cohort/summary",
    "/api/v1/ward",
    "/api/v1/ward?at=2022-06-01T08:00:00",
)


def make_login_settings(demo_db_url: str, tmp: Path) -> Settings:
    """Login-mode settings on a copy of the demo database with the four :data:`USERS` (also
    used by tests/app/test_exit_policy.py)."""
    db = tmp / "demo-copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    users = [
        {"user": u, "password_hash": generate_password_hash(PASSWORD), "role": role, "sites": sites}
        for u, (role, sites) in USERS.items()
    ]
    users_file = tmp / "users.json"
    users_file.write_text(json.dumps(users))
    return Settings(
        database_url=f"sqlite:///{db}",
        cache_dir=str(tmp / "cache"),
        secret_key="blinding-test-secret",
        mode="login",
        users_file=str(users_file),
    )


@pytest.fixture(scope="module")
def login_settings(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_login_settings(demo_db_url, tmp_path_factory.mktemp("blinding"))


@pytest.fixture(scope="module")
def login_app(login_settings: Settings):
    import app as app_module

    return app_module.create_app(login_settings)


def login(client, user: str, password: str = PASSWORD) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/login", data={"user": user, "password": password, "csrf": token, "next": "/"}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]


# ----------------------------------------------------------------------------- crawler ----


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every component (as plotly JSON) in a layout tree."""
    if isinstance(node, dict):
        if "type" in node and "props" in node:
            yield node
            yield from walk(node["props"].get("children"))
            for v in node["props"].values():
                if isinstance(v, dict | list) and v is not node["props"].get("children"):
                    yield from walk(v)
        else:
            for v in node.values():
                yield from walk(v)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def id_key(component_id: Any) -> str:
    """A component id as Dash writes it in ``changedPropIds`` (a dict id: compact sorted JSON,
    as ``dash._utils.stringify_id``; with spaces Dash would not see which input changed)."""
    return (
        json.dumps(component_id, sort_keys=True, separators=(",", ":"))
        if isinstance(component_id, dict)
        else str(component_id)
    )


def candidate_values(component: dict[str, Any], prop: str, context: dict[str, Any]) -> list[Any]:
    """Real values for one input property, taken from the rendered component."""
    props = component["props"]
    current = props.get(prop)
    if prop == "value" and isinstance(props.get("options"), list):
        opts = [o["value"] if isinstance(o, dict) else o for o in props["options"]]
        if component["type"] == "Checklist":
            return [opts, opts[:1], []]
        return opts[:6] or [current]
    if prop == "active_tab":
        tabs = [c["props"].get("tab_id") for c in walk(props.get("children")) if c["type"] == "Tab"]
        return [t for t in tabs if t] or [current]
    if prop == "n_clicks":
        return [1]
    if prop == "clickData":
        return [
            {
                "points": [
                    {
                        "x": d,
                        "y": 1,
                        "curveNumber": 0,
                        "pointNumber": 0,
                        "customdata": [context.get("patient_id", "")],
                    }
                ]
            }
            for d in (1, 3)
        ]
    if prop == "cellClicked":
        return [
            {
                "rowId": context.get("patient_id"),
                "colId": "patient_id",
                "value": context.get("patient_id"),
                "rowIndex": 0,
            }
        ]
    if prop in ("contents", "filename"):
        return [None]
    if prop == "selectedRows":
        return [[{"patient_id": context.get("patient_id")}]]
    if prop == "search":
        return [current or ""]
    return [current]


#: the cohort page's click relays (assets/36_cohort_clicks.js, clientside): a click on a figure,
#: a grid or a "Download CSV" button reaches the server as the store value the relay writes
RELAYS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "relayClick": lambda cid, value: drill_ask(cid, value),
    "relayCsv": lambda cid, value: csv_ask(cid.get("name")),
}


def relay(
    deps: list[dict[str, Any]], dep: dict[str, Any], component_id: dict[str, Any], value: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the browser does with a click relayed by the clientside ``dep``: (the server
    callback listening to the relay's store, its input entry holding the store's value)."""
    function = dep["clientside_function"]["function_name"]
    store, prop = dep["output"].rsplit(".", 1)
    (server,) = [
        d
        for d in deps
        if not d.get("clientside_function")
        and any(i["id"] == store and i["property"] == prop for i in d["inputs"])
    ]
    return server, {"id": store, "property": prop, "value": RELAYS[function](component_id, value)}


@dataclass
class Crawl:
    client: Any
    bodies: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    #: outputs of the callbacks driven (tests/app/test_exit_policy.py checks the coverage)
    driven: set[str] = field(default_factory=set)

    def record(self, label: str, text: str) -> None:
        """Keep a response body; downloads (dcc.Download payloads inside callback JSON) are
        decoded and kept as their own bodies, so their content is scanned as the user gets it."""
        try:
            payload = json.loads(text)
        except ValueError:
            self.bodies.append((label, text))
            return

        def extract(node: Any) -> Any:
            if isinstance(node, dict):
                if "content" in node and "filename" in node:
                    content = node["content"] or ""
                    if node.get("base64"):
                        content = base64.b64decode(content).decode("utf-8", "replace")
                    self.bodies.append((f"{label} [download {node['filename']}]", content))
                    return {**node, "content": "<download>"}
                return {k: extract(v) for k, v in node.items()}
            if isinstance(node, list):
                return [extract(v) for v in node]
            return node

        self.bodies.append((label, json.dumps(extract(payload))))

    def get(self, path: str) -> Any:
        resp = self.client.get(path)
        self.record(f"GET {path}", resp.get_data(as_text=True))
        return resp

    def call(
        self,
        dep: dict[str, Any],
        inputs: list[dict],
        state: list[dict],
        changed: str,
        *,
        forged: bool = False,
        outputs: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Drive one callback as the browser would (``forged``: a request no page offered; a
        refusal is then an acceptable answer, never a server error; ``outputs``: the concrete
        output ids of a pattern-matching callback)."""
        outputs = outputs or [
            {"id": o.split(".")[0], "property": o.split(".", 1)[1].split("@")[0]}
            for o in dep["output"].strip(".").split("...")
        ]
        body = {
            "output": dep["output"],
            "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": inputs,
            "state": state,
            "changedPropIds": [changed],
        }
        resp = self.client.post("/_dash-update-component", json=body)
        self.calls += 1
        self.driven.add(dep["output"])
        text = resp.get_data(as_text=True)
        self.record(f"callback {dep['output'][:60]} <- {changed}", text)
        allowed = (200, 204, 400, 403, 404) if forged else (200, 204)
        assert resp.status_code in allowed, f"{changed}: HTTP {resp.status_code} {text[:300]}"
        return resp

    def render(self, path: str) -> dict[str, Any]:
        """Render a page through the Pages router callback, as the browser does."""
        self.get(path)
        deps = self.client.get("/_dash-dependencies").get_json()
        router = next(d for d in deps if d["output"].startswith(ROUTER_OUTPUT_PREFIX))
        pathname, _, search = path.partition("?")
        inputs = [
            {
                "id": i["id"],
                "property": i["property"],
                "value": pathname
                if i["property"] == "pathname"
                else (f"?{search}" if search else ""),
            }
            for i in router["inputs"]
        ]
        resp = self.call(router, inputs, [], f"{router['inputs'][0]['id']}.pathname")
        return resp.get_json()["response"]["_pages_content"]["children"]


def matches(pattern: Any, component_id: Any) -> bool:
    """Does a pattern-matching (ALL/MATCH) dependency id select this component id?"""
    if not isinstance(pattern, dict) or not isinstance(component_id, dict):
        return False
    if set(pattern) != set(component_id):
        return False
    return all(isinstance(v, list) or component_id[k] == v for k, v in pattern.items())


def resolve(dep_id: Any, components: dict[str, dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Components a dependency id refers to (None if absent from the page)."""
    if isinstance(dep_id, dict):
        found = [c for c in components.values() if matches(dep_id, c["props"]["id"])]
        return found or None
    comp = components.get(id_key(dep_id))
    return [comp] if comp else None


def crawl_as(client, *, patient_id: str = "SYN-01-0001") -> Crawl:
    crawl = Crawl(client)
    shell = crawl.get("/_dash-layout").get_json()
    every = client.get("/_dash-dependencies").get_json()
    # the server's callbacks, and the clientside click relays (driven through the server
    # callback listening to their store)
    deps = [
        d
        for d in every
        if not d["output"].startswith(ROUTER_OUTPUT_PREFIX)
        and (
            not d.get("clientside_function") or d["clientside_function"]["function_name"] in RELAYS
        )
    ]
    for path in PAGES:
        page = crawl.render(path)
        components = {
            id_key(c["props"]["id"]): c for c in walk([shell, page]) if "id" in c["props"]
        }
        context = {"patient_id": patient_id}
        for dep in deps:
            resolved = [resolve(i["id"], components) for i in dep["inputs"]]
            if any(r is None for r in resolved):
                continue

            def item(
                spec: dict[str, Any],
                comps: list[dict[str, Any]],
                override: Any = None,
                target: Any = None,
            ) -> Any:
                entries = [
                    {
                        "id": c["props"]["id"],
                        "property": spec["property"],
                        "value": override if c is target else c["props"].get(spec["property"]),
                    }
                    for c in comps
                ]
                return entries if isinstance(spec["id"], dict) else entries[0]

            def states_of(callback: dict[str, Any], components: dict = components) -> list[Any]:
                out = []
                for st in callback.get("state", []):
                    comps = resolve(st["id"], components) or []
                    out.append(
                        item(st, comps)
                        if comps
                        else {"id": st["id"], "property": st["property"], "value": None}
                    )
                return out

            states = states_of(dep)
            for k, (spec, comps) in enumerate(zip(dep["inputs"], resolved, strict=True)):
                for target in comps[:4]:
                    for value in candidate_values(target, spec["property"], context):
                        inputs = [
                            item(sp, cs, value if j == k else None, target if j == k else None)
                            for j, (sp, cs) in enumerate(zip(dep["inputs"], resolved, strict=True))
                        ]
                        changed = f"{id_key(target['props']['id'])}.{spec['property']}"
                        if dep.get("clientside_function"):
                            server, entry = relay(every, dep, target["props"]["id"], value)
                            changed = f"{entry['id']}.{entry['property']}"
                            crawl.call(server, [entry], states_of(server), changed)
                        else:
                            crawl.call(dep, inputs, states, changed)
    for path in API:
        crawl.get(path)
    return crawl


def _plotly_library() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def leaks(crawl: Crawl, pattern: re.Pattern[str]) -> list[str]:
    """Pattern hits in every recorded body. The plotly.js library embedded in the HTML report
    is removed first: it is fixed third-party code (its d3-format has a 'precision' field)."""
    library = _plotly_library()
    found = []
    for label, raw in crawl.bodies:
        text = raw.replace(library, "<plotly.js>")
        for m in itertools.islice(pattern.finditer(text), 3):
            found.append(f"{label}: ...{text[max(0, m.start() - 60) : m.end() + 60]}...")
    return found


# ------------------------------------------------------------------------------- tests ----


# test_blind001 (the arm never reaches a blinded role) is part of
# tests/app/test_exit_policy.py::test_exit001, which runs this crawler over every exit with the
# cohort filters narrowed to small cells, and adds the guarded items of docs/blinding.md 6.5.


def test_blind002_statistician_sees_real_labels(login_app):
    """Control: the same crawl as the unblinded statistician does find the arm labels."""
    client = login_app.server.test_client()
    login(client, "stat")
    summary = client.get("/api/v1/cohort/summary").get_json()
    assert set(summary["by_group"]) == {"Placebo", "Precision immunotherapy"}
    assert summary["by_group"]["Precision immunotherapy"]["n_patients"] == 131
    assert summary["by_group"]["Placebo"]["n_patients"] == 145
    # the published primary endpoint and day-28 deaths (JAMA 2025; clinical.md §1.8)
    assert summary["by_group"]["Precision immunotherapy"]["responders"] == 46
    assert summary["by_group"]["Placebo"]["responders"] == 26
    assert summary["by_group"]["Precision immunotherapy"]["deaths_day28"] == 57
    assert summary["by_group"]["Placebo"]["deaths_day28"] == 72
    assert summary["responders"] == 72
    assert summary["n_patients"] == 276


def test_blind003_dsmb_sees_coded_groups_until_unmasked(login_app):
    client = login_app.server.test_client()
    login(client, "dsmb")
    summary = client.get("/api/v1/cohort/summary").get_json()
    assert set(summary["by_group"]) == {"Group A", "Group B"}
    assert sorted(g["n_patients"] for g in summary["by_group"].values()) == [131, 145]


def test_blind004_crawler_catches_a_leaking_build(login_settings):
    """The leak check can fail: inject the arm into callback responses and it must notice."""
    import app as app_module
    from core.db import make_engine
    from core.repository import load_arms

    leaky = app_module.create_app(login_settings)
    arm = load_arms(make_engine(login_settings.database_url)).iloc[0]

    inner = leaky.server.wsgi_app

    def leaking_wsgi(environ, start_response):
        """WSGI middleware simulating the bug: JSON responses also carry a patient's arm."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(inner(environ, capture))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if dict(headers).get("Content-Type", "").startswith("application/json") and body.endswith(
            b"}"
        ):
            extra = f', "leak": {{"patient": "{arm.patient_id}", "arm": "{arm.arm}"}}}}'
            body = body[:-1] + extra.encode()
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    leaky.server.wsgi_app = leaking_wsgi
    client = leaky.server.test_client()
    login(client, "mon")
    crawl = crawl_as(client)
    found = leaks(crawl, NONE_PATTERN)
    assert len(found) > 10
    assert any(arm.patient_id in f for f in found)


def test_blind005_unauthenticated_requests_get_no_data(login_app):
    client = login_app.server.test_client()
    rules = sorted({r.rule for r in login_app.server.url_map.iter_rules()})
    for rule in rules:
        if rule.startswith(("/login", "/logout", "/healthz", "/assets", "/_favicon", "/favicon")):
            continue
        if rule == "/api/v1/openapi.json":  # public: the API's description, no data
            assert client.get(rule).get_json()["openapi"] == "3.1.0"
            continue
        path = re.sub(r"<[^>]+>", "x", rule)
        resp = client.get(path)
        assert resp.status_code in (302, 401), f"{path}: {resp.status_code}"
        if resp.status_code == 302:
            assert resp.headers["Location"].startswith("/login")
    for page in PAGES:
        resp = client.get(page)
        assert (resp.status_code, resp.headers["Location"].split("?")[0]) == (302, "/login")
    for api in API:
        assert client.get(api).status_code == 401
    deps_resp = client.get("/_dash-dependencies")
    assert deps_resp.status_code == 401
    body = {
        "output": "ward-grid.rowData",
        "outputs": {"id": "ward-grid", "property": "rowData"},
        "inputs": [],
        "state": [],
        "changedPropIds": [],
    }
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "authentication required"}


def test_blind006_clinician_site_restriction_applies_to_data(login_app):
    client = login_app.server.test_client()
    login(client, "clin")
    pts = client.get("/api/v1/patients").get_json()["patients"]
    assert pts
    assert {p["site_id"] for p in pts} == {"SYN-S01"}
    assert set(pts[0]) == {
        "patient_id",
        "site_id",
        "phenotype",
        "death_study_day",
        "last_study_day",
        "latest_sofa_total",
    }
    assert all(1 <= p["last_study_day"] <= 28 for p in pts)
    assert client.get("/api/v1/patients/SYN-02-0001/sofa").status_code == 404
    crawl = Crawl(client)
    page = json.dumps(crawl.render("/patient/SYN-02-0001"))
    assert "Patient not found" in page
    assert "SYN-02-0001" in page  # only the id the user typed, echoed in the message
    assert "ferritin" not in page


def test_blind007_wrong_password_and_expired_form_are_refused(login_app):
    client = login_app.server.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    bad = client.post("/login", data={"user": "stat", "password": "nope", "csrf": token})
    assert bad.status_code == 401
    stale = client.post("/login", data={"user": "stat", "password": PASSWORD, "csrf": "forged"})
    assert stale.status_code == 400
    assert client.get("/api/v1/patients").status_code == 401


def test_blind008_audit_rows_for_each_audited_action(login_app, login_settings):
    from core.db import make_engine
    from core.repository import load_audit

    engine = make_engine(login_settings.database_url)
    before = int(load_audit(engine)["id"].max())
    client = login_app.server.test_client()
    login(client, "dsmb")
    crawl = Crawl(client)
    crawl.render("/patient/SYN-01-0002")
    deps = client.get("/_dash-dependencies").get_json()
    unmask = next(d for d in deps if "unmask-feedback" in d["output"])
    reason = "Safety signal review requested by the DSMB chair"
    crawl.call(
        unmask,
        [{"id": "unmask-confirm", "property": "n_clicks", "value": 1}],
        [{"id": "unmask-reason", "property": "value", "value": reason}],
        "unmask-confirm.n_clicks",
    )
    summary = client.get("/api/v1/cohort/summary").get_json()
    assert set(summary["by_group"]) == {"Placebo", "Precision immunotherapy"}
    labs = next(d for d in deps if "patient-labs-download" in d["output"])
    crawl.call(
        labs,
        [{"id": "patient-labs-download-btn", "property": "n_clicks", "value": 1}],
        [{"id": "patient-id", "property": "data", "value": "SYN-01-0002"}],
        "patient-labs-download-btn.n_clicks",
    )
    client.post("/logout")
    audit = load_audit(engine)
    audit = audit[audit["id"] > before].sort_values("id")
    actions = list(audit["action"])
    assert actions[0] == "login"
    assert {"login", "view_patient", "unmask", "export", "logout"} <= set(actions)
    row = audit[audit["action"] == "unmask"].iloc[0]
    assert (row["user"], row["role"], row["detail"]) == ("dsmb", "dsmb", reason)
    assert audit[audit["action"] == "view_patient"].iloc[0]["target"] == "SYN-01-0002"


def test_blind009_security_headers(login_app):
    client = login_app.server.test_client()
    login(client, "stat")
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/patients").headers["Cache-Control"] == "no-store"


def test_blind010_csv_exports_neutralise_formulas():
    import pandas as pd

    from components.format import safe_csv_frame

    frame = pd.DataFrame(
        {"a": ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "ok", None], "n": [1, 2, 3, 4, 5, 6]}
    )
    out = safe_csv_frame(frame)
    assert list(out["a"][:5]) == ['\'=HYPERLINK("x")', "'+1", "'-2", "'@SUM(A1)", "ok"]
    assert list(out["n"]) == [1, 2, 3, 4, 5, 6]


def test_blind011_demo_mode_refuses_real_data(tmp_path: Path):
    """Demo mode (unblinded) must never serve non-synthetic data."""
    import app as app_module
    from core.db import ensure_schema, make_engine
    from core.io import import_tables, template_tables

    url = f"sqlite:///{tmp_path / 'real.sqlite'}"
    engine = make_engine(url)
    ensure_schema(engine)
    tables = template_tables()
    renamed = {}
    for name, frame in tables.items():
        frame = frame.copy()
        for col in ("patient_id", "site_id"):
            if col in frame:
                frame[col] = frame[col].str.replace("SYN-", "REAL-", regex=False)
        renamed[name] = frame
    import_tables(engine, renamed)
    demo = app_module.create_app(
        Settings(database_url=url, cache_dir=str(tmp_path / "c"), secret_key="k", mode="demo"),
        bootstrap=False,
    )
    client = demo.server.test_client()
    assert client.get("/").status_code == 403
    assert client.get("/api/v1/patients").status_code == 403
    assert client.get("/healthz").status_code == 200
