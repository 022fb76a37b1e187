"""``POST /api/v1/fhir``: one FHIR R4 Bundle imported all or nothing, by the roles that may
import (issue 14). Login mode against a copy of the demo database; real Flask requests."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from core import db
from core import repository as repo
from core.io.read import MAX_UPLOAD_BYTES
from core.rules import SofaRules
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "fhir" / "bundle.json"
PASSWORD = "correct horse battery"
USERS = {"stat": "statistician", "mon": "monitor", "clin": "clinician", "dsmb": "dsmb"}


@pytest.fixture
def login_settings(demo_db_url: str, tmp_path: Path) -> Settings:
    database = tmp_path / "demo-copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), database)
    users = [
        {"user": u, "password_hash": generate_password_hash(PASSWORD), "role": role}
        for u, role in USERS.items()
    ]
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    return Settings(
        database_url=f"sqlite:///{database}",
        cache_dir=str(tmp_path / "cache"),
        secret_key="fhir-test-secret",
        mode="login",
        users_file=str(users_file),
    )


@pytest.fixture
def app(login_settings: Settings):
    import app as app_module

    return app_module.create_app(login_settings)


def client_for(app, user: str | None):
    client = app.server.test_client()
    if user is not None:
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        resp = client.post(
            "/login", data={"user": user, "password": PASSWORD, "csrf": token, "next": "/"}
        )
        assert resp.status_code == 302
    return client


def post(client, body: bytes, content_type: str = "application/fhir+json"):
    return client.post("/api/v1/fhir", data=body, headers={"Content-Type": content_type})


def engine_of(settings: Settings):
    return db.make_engine(settings.database_url)


def data_counts(engine) -> dict[str, int]:
    """Rows per table except the audit trail (which records the refusal itself)."""
    return {k: v for k, v in db.row_counts(engine).items() if k != "audit_log"}


def test_fhirapi001_statistician_imports_the_bundle(app, login_settings: Settings) -> None:
    client = client_for(app, "stat")
    resp = post(client, FIXTURE.read_bytes())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == "imported"
    assert body["inserted"]["patients"] == 2
    assert body["inserted"]["observations"] == 19
    assert body["not_imported"]["Observation: status preliminary"] == 1
    engine = engine_of(login_settings)
    pts = repo.load_patients(engine).set_index("patient_id")
    assert pts.loc["FHIR-001", "weight_kg"] == 70.0
    daily = repo.load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=["FHIR-001"])
    assert daily.loc[daily["study_day"] == 1, "sofa_total"].tolist() == [15]
    audit = repo.load_audit(engine)
    row = audit[audit["action"] == "api_fhir"].iloc[-1]
    assert row["user"] == "stat"
    assert row["detail"].startswith("imported: 31 rows, dataset version ")
    # the same Bundle again (plain application/json): a no-op
    again = post(client, FIXTURE.read_bytes(), "application/json")
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    engine.dispose()


@pytest.mark.parametrize("user", ["mon", "clin", "dsmb"])
def test_fhirapi002_other_roles_may_not_ingest(app, login_settings: Settings, user: str) -> None:
    engine = engine_of(login_settings)
    before = data_counts(engine)
    resp = post(client_for(app, user), FIXTURE.read_bytes())
    assert resp.status_code == 403
    assert "may not import" in resp.get_json()["error"]
    assert data_counts(engine) == before
    audit = repo.load_audit(engine)
    assert audit[audit["action"] == "api_fhir_refused"]["user"].tolist() == [user]
    engine.dispose()


def test_fhirapi003_unauthenticated_is_refused(app) -> None:
    resp = post(client_for(app, None), FIXTURE.read_bytes())
    assert resp.status_code == 401


def test_fhirapi004_bad_bundle_is_refused_with_every_problem(app, login_settings: Settings) -> None:
    data = json.loads(FIXTURE.read_text())
    ids = [e["resource"].get("id") for e in data["entry"]]
    pao2, lact = ids.index("o1-pao2"), ids.index("o1-lact")
    data["entry"][pao2]["resource"]["effectiveDateTime"] = "yesterday"
    data["entry"][lact]["resource"]["code"]["coding"][0]["code"] = "1234-5"
    engine = engine_of(login_settings)
    before = (data_counts(engine), db.dataset_version(engine))
    resp = post(client_for(app, "stat"), json.dumps(data).encode())
    assert resp.status_code == 400
    problems = resp.get_json()["problems"]
    assert [(p["where"], p["row"], p["column"]) for p in problems] == [
        ("request body", pao2 + 1, "effectiveDateTime"),
        ("request body", lact + 1, "code"),
    ]
    assert problems[1]["value"] == "http://loinc.org|1234-5"
    assert problems[1]["expected"].startswith("a code of core/io/mappings/loinc.csv")
    assert set(problems[0]) >= {"where", "row", "column", "value", "expected"}
    # validation problems of mapped tables (implausible value) are a 400 too
    data = json.loads(FIXTURE.read_text())
    data["entry"][ids.index("o1-plt")]["resource"]["valueQuantity"]["value"] = 90000
    resp = post(client_for(app, "stat"), json.dumps(data).encode())
    assert resp.status_code == 400
    assert [p["value"] for p in resp.get_json()["problems"]] == [90000.0]
    assert (data_counts(engine), db.dataset_version(engine)) == before
    audit = repo.load_audit(engine)
    assert sorted(audit[audit["action"] == "api_fhir"]["detail"]) == [
        "refused: 1 problem(s)",
        "refused: 2 problem(s)",
    ]
    engine.dispose()


def test_fhirapi005_content_type_and_size(app) -> None:
    client = client_for(app, "stat")
    resp = post(client, FIXTURE.read_bytes(), "text/plain")
    assert resp.status_code == 415
    big = b" " * (MAX_UPLOAD_BYTES + 1)
    resp = post(client, big)
    assert resp.status_code == 413
    assert str(MAX_UPLOAD_BYTES) in resp.get_json()["error"]
