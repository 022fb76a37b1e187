"""Issue 16: the DSMB unmask keeps the page the user was on (the browser reloads its current
URL, path and query: the cohort tab and its filters), a re-mask control returns to coded
groups on the same page, and each is audited only when it takes effect (callback level,
through Dash's HTTP endpoint; the reload itself is the clientside RELOAD_JS)."""

from __future__ import annotations

import json

from components import unmask as unmask_module
from core.db import make_engine
from core.repository import load_audit
from tests.app import test_blinding as blinding

login_app = blinding.login_app
login_settings = blinding.login_settings
__all__ = ["login_app", "login_settings"]  # the fixtures, used below

REASON = "Interim safety review of the SOFA trajectories"


def dash_call(client, output_prefix: str, inputs: list[dict], state: list[dict]) -> dict:
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if output_prefix in d["output"])
    outputs = [
        {"id": o.split(".")[0], "property": o.split(".", 1)[1]}
        for o in dep["output"].strip(".").split("...")
    ]
    resp = client.post(
        "/_dash-update-component",
        json={
            "output": dep["output"],
            "outputs": outputs,
            "inputs": inputs,
            "state": state,
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
        },
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return json.loads(resp.get_data(as_text=True))["response"]


def unmask(client) -> dict:
    return dash_call(
        client,
        "unmask-feedback",
        [{"id": "unmask-confirm", "property": "n_clicks", "value": 1}],
        [{"id": "unmask-reason", "property": "value", "value": REASON}],
    )


def remask(client) -> dict:
    return dash_call(
        client, "remask-feedback", [{"id": "remask-button", "property": "n_clicks", "value": 1}], []
    )


def groups(client) -> set[str]:
    return set(client.get("/api/v1/cohort/summary").get_json()["by_group"])


def actions_since(engine, before: int) -> list[str]:
    trail = load_audit(engine)
    return trail[trail["id"] > before].sort_values("id")["action"].tolist()


def test_secum001_unmask_and_remask_keep_tab_and_filters(login_app, login_settings):
    engine = make_engine(login_settings.database_url)
    client = login_app.server.test_client()
    blinding.login(client, "dsmb")
    assert groups(client) == {"Group A", "Group B"}
    shell = client.get("/cohort").get_data(as_text=True)
    assert shell  # the shell renders for the masked DSMB
    before = int(load_audit(engine)["id"].max())

    out = unmask(client)
    assert out["unmask-done"]["data"] is True  # the browser reloads its own URL
    assert out["unmask-feedback"]["children"] == ""
    assert groups(client) == {"Placebo", "Precision immunotherapy"}

    out = remask(client)
    assert out["remask-done"]["data"] is True
    assert groups(client) == {"Group A", "Group B"}

    # a second re-mask changes nothing and records nothing
    out = remask(client)
    assert out["remask-feedback"]["children"] == "Nothing to re-mask."
    assert "remask-done" not in out
    assert actions_since(engine, before).count("unmask") == 1
    assert actions_since(engine, before).count("remask") == 1
    trail = load_audit(engine)
    row = trail[(trail["id"] > before) & (trail["action"] == "remask")].iloc[0]
    assert (row["user"], row["role"], row["target"]) == ("dsmb", "dsmb", "allocation")


def test_secum002_remask_that_fails_to_record_keeps_the_session_unmasked(
    login_app, login_settings, monkeypatch
):
    engine = make_engine(login_settings.database_url)
    client = login_app.server.test_client()
    blinding.login(client, "dsmb")
    unmask(client)
    before = int(load_audit(engine)["id"].max())

    def broken_audit(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(unmask_module, "audit", broken_audit)
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if "remask-feedback" in d["output"])
    resp = client.post(
        "/_dash-update-component",
        json={
            "output": dep["output"],
            "outputs": [
                {"id": "remask-feedback", "property": "children"},
                {"id": "remask-done", "property": "data"},
            ],
            "inputs": [{"id": "remask-button", "property": "n_clicks", "value": 1}],
            "state": [],
            "changedPropIds": ["remask-button.n_clicks"],
        },
    )
    assert resp.status_code == 500
    monkeypatch.undo()
    assert groups(client) == {"Placebo", "Precision immunotherapy"}  # still unmasked
    assert "remask" not in actions_since(engine, before)


def test_secum003_the_reload_is_clientside_and_keeps_the_url():
    """The step's last act is the browser reloading location (path and query kept); the
    server never builds a URL from request data."""
    js = " ".join(unmask_module.RELOAD_JS.split())
    assert "window.location.reload()" in js
    assert "href" not in js


def test_secum004_monitor_cannot_remask_or_unmask(login_app, login_settings):
    engine = make_engine(login_settings.database_url)
    client = login_app.server.test_client()
    blinding.login(client, "mon")
    before = int(load_audit(engine)["id"].max())
    assert remask(client)["remask-feedback"]["children"] == "Nothing to re-mask."
    out = unmask(client)
    assert out["unmask-feedback"]["children"] == "Only the DSMB closed session can unmask."
    assert not {"unmask", "remask"} & set(actions_since(engine, before))


def test_secum005_a_request_that_started_before_a_remask_cannot_undo_it(login_app):
    """A page sends several requests at once (a tab drawn ahead, a count): one that read the
    unmasked session and answers after the re-mask must not send that session back. Only a
    response whose request changed the session sets the cookie."""
    client = login_app.server.test_client()
    blinding.login(client, "dsmb")
    unmask(client)
    unmasked_cookie = client.get_cookie("immunosep_session").value
    remask(client)
    assert groups(client) == {"Group A", "Group B"}
    # the slow request: sent with the unmasked cookie, answered after the re-mask
    slow = login_app.server.test_client()
    slow.set_cookie("immunosep_session", unmasked_cookie)
    resp = slow.get("/api/v1/cohort/summary")
    assert resp.status_code == 200
    assert set(resp.get_json()["by_group"]) == {"Placebo", "Precision immunotherapy"}
    assert "Set-Cookie" not in resp.headers  # the browser keeps the re-masked session
    # the same for a callback, and for a page
    assert "Set-Cookie" not in client.get("/cohort").headers
    assert "Set-Cookie" not in client.get("/api/v1/cohort/summary").headers
    # a step that changes the session does set it
    out_resp = client.post(
        "/_dash-update-component",
        json={
            "output": "..unmask-feedback.children...unmask-done.data..",
            "outputs": [
                {"id": "unmask-feedback", "property": "children"},
                {"id": "unmask-done", "property": "data"},
            ],
            "inputs": [{"id": "unmask-confirm", "property": "n_clicks", "value": 1}],
            "state": [{"id": "unmask-reason", "property": "value", "value": REASON}],
            "changedPropIds": ["unmask-confirm.n_clicks"],
        },
    )
    assert out_resp.status_code == 200
    assert "immunosep_session=" in out_resp.headers.get("Set-Cookie", "")
