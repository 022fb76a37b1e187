"""The audit trail records every exit and session event (issue 16), chained and verified.

Through the real HTTP protocol of Dash and Flask (login mode, the demo cohort): every cohort
CSV download and the HTML report (what, filters, blinding, rows), the bulk patient listing,
logout with its user, failed logins throttled per user and client, unmask written only when it
takes effect (refused without a session under header auth, rolled back when the audit write
fails), and the /audit page's chain status (verified, then a named broken row).
"""

from __future__ import annotations

import base64
import io
import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from components import unmask as unmask_module
from core import audit as core_audit
from core.db import audit_engine, make_engine
from core.repository import load_audit
from settings import Settings
from tests.app import test_blinding as blinding
from tests.app.test_cohort_clicks import CohortSession, walk

login_settings = blinding.login_settings
login_app = blinding.login_app

UNMASK_REASON = "Safety signal review requested by the DSMB chair"


@pytest.fixture(scope="module")
def engine(login_settings: Settings):
    eng = make_engine(login_settings.database_url)
    yield eng
    eng.dispose()


def new_rows(engine, after: int) -> pd.DataFrame:
    trail = load_audit(engine)
    return trail[trail["id"] > after].sort_values("id").reset_index(drop=True)


def last_id(engine) -> int:
    trail = load_audit(engine)
    return int(trail["id"].max()) if len(trail) else 0


def logged_in(login_app, user: str):
    client = login_app.server.test_client()
    blinding.login(client, user)
    return client


def dep_for(session: CohortSession, output: str) -> dict:
    return next(d for d in session.deps if d["output"] == output)


def download_of(body: str) -> dict:
    data = json.loads(body)["response"]
    return next(iter(next(iter(data.values())).values()))


@pytest.mark.parametrize(
    ("user", "blinding_words"),
    [
        ("mon", "Blinded: pooled and by immune state only"),
        ("stat", "Unblinded: treatment allocation shown"),
    ],
)
def test_trail001_every_cohort_csv_download_is_audited(login_app, engine, user, blinding_words):
    session = CohortSession(logged_in(login_app, user), user)
    dep = dep_for(session, "cohort-csv-ask.data")  # the button's relay (clientside)
    before = last_id(engine)
    expected: list[tuple[str, str, int]] = []
    for tab in session.offered_tabs():
        session.open_tab(tab)
        buttons = [
            c
            for c in walk(session.shown_slot())
            if isinstance(c["props"].get("id"), dict) and c["props"]["id"]["type"] == "cohort-csv"
        ]
        for button in buttons:
            answer = session.click(dep, button, "n_clicks", 1)
            assert answer.status == 200, answer.body[:300]
            payload = download_of(answer.body)
            name = button["props"]["id"]["name"]
            assert payload["filename"] == f"cohort-{name}.csv"
            content = payload["content"]
            if payload.get("base64"):
                content = base64.b64decode(content).decode()
            n_rows = len(pd.read_csv(io.StringIO(content)))
            expected.append((f"cohort-{name}.csv", tab, n_rows))
    assert len(expected) >= 8, "too few CSV buttons to mean anything"
    rows = new_rows(engine, before)
    assert rows["action"].tolist() == ["export"] * len(expected)
    assert set(rows["user"]) == {user}
    for (target, tab, n_rows), (_, row) in zip(expected, rows.iterrows(), strict=True):
        assert row["target"] == target
        assert row["detail"] == (
            f"tab: {tab}; filters: none (all patients); blinding: {blinding_words}; rows: {n_rows}"
        )
    assert core_audit.verify_audit_chain(engine) == []


def test_trail002_html_report_is_audited_with_filters_and_blinding(login_app, engine):
    session = CohortSession(logged_in(login_app, "mon"), "mon")
    dep = dep_for(session, "cohort-report-download.data")
    comps = session.components()
    button = comps["cohort-report-btn"][0]
    state = [
        {**session.values(s, comps), "value": ["SYN-S02"]}
        if s["id"] == "cohort-f-site"
        else session.values(s, comps)
        for s in dep.get("state", [])
    ]
    inputs = [session.values(i, comps, (button, 1)) for i in dep["inputs"]]
    before = last_id(engine)
    answer = session.post(dep, inputs, state, "cohort-report-btn.n_clicks")
    assert answer.status == 200, answer.body[:300]
    assert download_of(answer.body)["filename"].endswith(".html")
    rows = new_rows(engine, before)
    assert rows[["user", "role", "action", "target"]].values.tolist() == [
        ["mon", "monitor", "export", "cohort-report.html"]
    ]
    detail = rows["detail"].iloc[0]
    assert detail == (
        "tab: all panels; filters: site: SYN-S02; "
        "blinding: Blinded: pooled and by immune state only"
    )


def test_trail003_bulk_patient_listing_is_audited(login_app, engine):
    client = logged_in(login_app, "mon")
    before = last_id(engine)
    body = client.get("/api/v1/patients?offset=2&limit=5").get_json()
    assert len(body["patients"]) == 5
    rows = new_rows(engine, before)
    assert rows[["user", "role", "action", "target", "detail"]].values.tolist() == [
        [
            "mon",
            "monitor",
            "api_patients",
            "patients",
            f"offset=2 limit=5 rows=5 of {body['total']}; blinding: blinded",
        ]
    ]


def test_trail004_logout_is_recorded_with_its_user(login_app, engine):
    client = logged_in(login_app, "stat")
    before = last_id(engine)
    assert client.get("/logout").status_code == 200  # a page with the sign-out form
    client.post("/logout")
    rows = new_rows(engine, before)
    assert rows[["user", "role", "action", "target"]].values.tolist() == [
        ["stat", "statistician", "logout", "stat"]
    ]
    assert client.get("/api/v1/patients").status_code == 401


def failed_login(client, user: str) -> int:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post(
        "/login", data={"user": user, "password": "wrong", "csrf": token}
    ).status_code


def test_trail005_failed_logins_are_throttled_per_user_and_client(login_app, engine):
    client = login_app.server.test_client()
    before = last_id(engine)
    assert [failed_login(client, "stat") for _ in range(6)] == [401] * 6
    assert failed_login(client, "nobody-x") == 401
    rows = new_rows(engine, before)
    assert rows[["user", "role", "action", "target", "detail"]].values.tolist() == [
        ["anonymous", "none", "login_failed", "stat", "client=127.0.0.1; attempts=1"],
        ["anonymous", "none", "login_failed", "nobody-x", "client=127.0.0.1; attempts=1"],
    ]
    with audit_engine(engine).connect() as conn:
        pending = conn.execute(
            sa.text("SELECT pending FROM audit_throttle WHERE key = :k"),
            {"k": "login_failed|stat|127.0.0.1"},
        ).scalar()
    assert pending == 5  # counted, carried by the key's next row


def unmask_call(client) -> tuple[int, str]:
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if "unmask-feedback" in d["output"])
    outputs = [
        {"id": o.split(".")[0], "property": o.split(".", 1)[1]}
        for o in dep["output"].strip(".").split("...")
    ]
    resp = client.post(
        "/_dash-update-component",
        json={
            "output": dep["output"],
            "outputs": outputs,
            "inputs": [{"id": "unmask-confirm", "property": "n_clicks", "value": 1}],
            "state": [{"id": "unmask-reason", "property": "value", "value": UNMASK_REASON}],
            "changedPropIds": ["unmask-confirm.n_clicks"],
        },
    )
    return resp.status_code, resp.get_data(as_text=True)


def test_trail006_unmask_that_fails_writes_no_row_and_leaves_the_session_masked(
    login_app, engine, monkeypatch
):
    client = logged_in(login_app, "dsmb")

    def broken_audit(*_args, **_kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(unmask_module, "audit", broken_audit)
    before = last_id(engine)
    status, _ = unmask_call(client)
    assert status == 500
    assert "unmask" not in new_rows(engine, before)["action"].tolist()
    groups = set(client.get("/api/v1/cohort/summary").get_json()["by_group"])
    assert groups == {"Group A", "Group B"}  # still coded: the session was restored
    monkeypatch.undo()
    status, body = unmask_call(client)
    assert status == 200, body[:300]
    rows = new_rows(engine, before)
    assert rows[rows["action"] == "unmask"][["user", "detail"]].values.tolist() == [
        ["dsmb", UNMASK_REASON]
    ]
    groups = set(client.get("/api/v1/cohort/summary").get_json()["by_group"])
    assert groups == {"Placebo", "Precision immunotherapy"}


def test_trail007_unmask_under_header_auth_is_refused_without_a_row(
    login_settings: Settings, engine
):
    import dataclasses

    import app as app_module

    header_app = app_module.create_app(
        dataclasses.replace(login_settings, auth_header="X-Remote-User"), bootstrap=False
    )
    client = header_app.server.test_client()
    client.environ_base["HTTP_X_REMOTE_USER"] = "dsmb"
    before = last_id(engine)
    status, body = unmask_call(client)
    assert status == 200, body[:300]
    assert (
        unmask_module.NO_SESSION_MESSAGE
        in json.loads(body)["response"]["unmask-feedback"]["children"]
    )
    assert "unmask" not in new_rows(engine, before)["action"].tolist()
    groups = set(client.get("/api/v1/cohort/summary").get_json()["by_group"])
    assert groups == {"Group A", "Group B"}


def test_trail008_audit_page_shows_the_chain_status_and_utc_times(login_app, engine):
    client = logged_in(login_app, "stat")
    crawl = blinding.Crawl(client)
    page = json.dumps(crawl.render("/audit"))
    n = len(load_audit(engine))
    assert f"Hash chain verified: {n} rows." in page  # the render itself is audited after
    times = re.findall(r'"time": "([^"]+)"', page)
    assert times
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t) for t in times)
    victim = int(load_audit(engine)["id"].iloc[len(load_audit(engine)) // 2])
    with audit_engine(engine).begin() as conn:
        original = conn.execute(
            sa.text("SELECT detail FROM audit_log WHERE id = :i"), {"i": victim}
        ).scalar()
        conn.execute(sa.text("UPDATE audit_log SET detail = 'forged' WHERE id = :i"), {"i": victim})
    try:
        page = json.dumps(crawl.render("/audit"))
        assert f"first broken row {victim}" in page
        assert f"row {victim}: content does not match its hash (edited)" in page
        assert '"color": "danger"' in page
    finally:
        with audit_engine(engine).begin() as conn:
            conn.execute(
                sa.text("UPDATE audit_log SET detail = :d WHERE id = :i"),
                {"d": original, "i": victim},
            )
    assert core_audit.verify_audit_chain(engine) == []
