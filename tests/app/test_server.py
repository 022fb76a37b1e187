"""The app under gunicorn (as deployed): routes answer, unknown pages are real 404s."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from components.cohort import PANELS


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get_content_type(), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_content_type(), e.read().decode()


def test_srv001_gunicorn_serves_dash_routes(live_server):
    status, ctype, body = get(live_server.url + "/")
    assert (status, ctype) == (200, "text/html")
    assert "_dash-renderer" in body or "dash_renderer" in body
    status, ctype, body = get(live_server.url + "/_dash-layout")
    assert (status, ctype) == (200, "application/json")
    assert "shell-navbar" in body
    status, ctype, body = get(live_server.url + "/_dash-dependencies")
    assert (status, ctype) == (200, "application/json")
    assert isinstance(json.loads(body), list)


def test_srv002_healthz_reports_version_data_and_cache(live_server):
    status, ctype, body = get(live_server.url + "/healthz")
    assert (status, ctype) == (200, "application/json")
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["version"] == "0.1.0"
    assert health["data_source"]["kind"] == "sqlite"
    assert health["data_source"]["patients"] == 276
    assert health["data_source"]["synthetic"] is True
    assert health["cache"] == {"backend": "filesystem", "ok": True, "dir": health["cache"]["dir"]}
    # the background warm-up (started by gunicorn's post_worker_init) reports when it is done
    deadline = time.monotonic() + 60
    while not health["warm_up"]["done"] and time.monotonic() < deadline:
        time.sleep(0.5)
        health = json.loads(get(live_server.url + "/healthz")[2])
    assert health["warm_up"]["done"] is True
    seconds = health["warm_up"]["seconds"]
    # the warm-up iterates the panel registry: every panel of every cohort role, once
    expected = {"patients", "daily", "adverse_events", "outcomes", "immune_samples", "total"}
    expected |= {f"{p.key}:{r}" for p in PANELS for r in ("monitor", "dsmb", "statistician")}
    assert set(seconds) >= expected
    assert seconds["total"] >= seconds["primary:dsmb"] > 0


@pytest.mark.parametrize("path", ["/", "/patient", "/cohort", "/data", "/patient/SYN-01-0001"])
def test_srv003_known_pages_are_200(live_server, path):
    assert get(live_server.url + path)[0] == 200


@pytest.mark.parametrize("path", ["/nope", "/cohort/extra/parts", "/patients"])
def test_srv004_unknown_pages_are_404(live_server, path):
    status, ctype, _ = get(live_server.url + path)
    assert (status, ctype) == (404, "text/html")


def test_srv005_api_patients_are_paged(live_server):
    first = json.loads(get(live_server.url + "/api/v1/patients?limit=100")[2])
    assert (first["total"], first["offset"], first["limit"], first["next_offset"]) == (
        276,
        0,
        100,
        100,
    )
    assert len(first["patients"]) == 100
    last = json.loads(get(live_server.url + "/api/v1/patients?offset=200&limit=100")[2])
    assert len(last["patients"]) == 76
    assert last["next_offset"] is None
    ids = [p["patient_id"] for p in first["patients"] + last["patients"]]
    assert len(set(ids)) == 176  # pages do not overlap
    default = json.loads(get(live_server.url + "/api/v1/patients")[2])
    assert len(default["patients"]) == 276  # default page (1000) holds the demo cohort
    assert default["next_offset"] is None
    for query, name in (("limit=0", "limit"), ("limit=abc", "limit"), ("offset=-1", "offset")):
        status, ctype, body = get(live_server.url + "/api/v1/patients?" + query)
        assert (status, ctype) == (400, "application/json")
        assert name in json.loads(body)["error"]
    status, _, body = get(live_server.url + "/api/v1/patients?limit=10001")
    assert status == 400
    assert "1..10000" in json.loads(body)["error"]
