"""The second demo: the public CLIF demo (real ICU patients, not trial participants) served in
demo mode; the ward's census at a clock time, the patient page and the trial pages."""

from __future__ import annotations

import fcntl
import os

import pandas as pd
import pytest

import app as app_module
from components.pages import cohort, patient
from core import db
from core.io import import_tables, template_tables
from core.io.demo import build_demo_database
from core.repository import icu_census
from settings import Settings

AT = "2026-01-12T10:00"


@pytest.fixture(scope="module")
def clif_db_url(tmp_path_factory) -> str:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    url = f"sqlite:///{shared / 'clif-demo.sqlite'}"
    with open(shared / "clif-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_demo_database(url, dataset="clif-demo")  # a no-op once built
    return url


@pytest.fixture(scope="module")
def client(clif_db_url, tmp_path_factory):
    s = Settings(
        database_url=clif_db_url,
        cache_dir=str(tmp_path_factory.mktemp("clifcache")),
        secret_key="k",
        mode="demo",
        clock=AT,
        demo_data="clif-demo",
    )
    dash_app = app_module.create_app(s, bootstrap=False)
    return dash_app.server.test_client()


def test_clifdemo001_served_in_demo_mode_with_its_banner(client):
    health = client.get("/healthz").get_json()
    assert health["data_source"]["demo_data"] == "clif-demo"
    assert health["data_source"]["patients"] == 133
    page = client.get("/")
    assert page.status_code == 200


def test_clifdemo002_ward_api_is_the_adt_census(client, clif_db_url):
    engine = db.make_engine(clif_db_url)
    try:
        census = icu_census(engine, pd.Timestamp(AT))
    finally:
        engine.dispose()
    body = client.get("/api/v1/ward").get_json()
    assert body["at"] == "2026-01-12T10:00:00"
    got = {p["patient_id"] for p in body["patients"]}
    assert got == set(census["patient_id"])
    assert len(got) >= 10
    for p in body["patients"]:
        # not trial participants: no endpoint, a real phenotype from ferritin or "unknown"
        assert p["endpoint_status"] is None
        assert p["phenotype"] in {"unknown", "pending_hla_dr", "MALS"}
        assert 0 <= (p["sofa_24h"] or 0) <= 24


def test_clifdemo003_trial_pages_count_trial_participants_only(client):
    body = client.get("/api/v1/cohort/summary").get_json()
    assert body["n_patients"] == 0
    with client.application.test_request_context("/cohort"):
        from components.server.auth import current_principal

        text = str(cohort.build_layout(current_principal(), {}))
    assert "No trial participants in these data" in text
    assert "133 patients" in text


def test_clifdemo004_patient_page_says_not_in_trial(client):
    body = client.get("/api/v1/ward").get_json()
    pid = body["patients"][0]["patient_id"]
    with client.application.test_request_context(f"/patient/{pid}"):
        from components.data.keys import Context
        from components.server.auth import current_principal

        ctx = Context.current(current_principal())
        text = str(patient.build_page(ctx, pid, None, None))
    assert "not a trial participant" in text
    assert "ICU admission" in text
    assert "Primary endpoint" not in text


def test_clifdemo005_any_other_import_makes_the_data_real(tmp_path):
    """Demo mode serves public demo data only: one import from elsewhere and it refuses."""
    url = f"sqlite:///{tmp_path / 'mixed.sqlite'}"
    build_demo_database(url, dataset="clif-demo")
    engine = db.make_engine(url)
    try:
        tables = template_tables()
        one = {
            "sites": tables["sites"],
            "patients": tables["patients"].assign(
                patient_id=lambda f: f["patient_id"].str.replace("SYN-", "REAL-")
            ),
        }
        import_tables(engine, one)
    finally:
        engine.dispose()
    demo = app_module.create_app(
        Settings(database_url=url, cache_dir=str(tmp_path / "c"), secret_key="k", mode="demo"),
        bootstrap=False,
    )
    c = demo.server.test_client()
    assert c.get("/").status_code == 403
    assert c.get("/api/v1/ward").status_code == 403


def test_clifdemo006_warm_up_runs_on_data_without_trial_participants(client):
    """Every shared loader and every cohort panel of every role on data with no trial
    participant (the immune-reversal step crashed on an empty cohort)."""
    from components import warmup
    from components.server.cache import cache

    with client.application.app_context():
        cache.clear()
        timings = warmup.warm_up()
    assert "immune_samples" in timings
    assert "immune:monitor" in timings
    assert timings["total"] > 0
