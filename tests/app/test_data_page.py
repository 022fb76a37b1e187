"""Data page upload: a bad file gets a problem table naming row, column, value and what was
expected, and nothing is written; a good file is imported once."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from settings import Settings


@pytest.fixture
def client(demo_db_url, tmp_path):
    import app as app_module

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    settings = Settings(
        database_url=f"sqlite:///{db}", cache_dir=str(tmp_path / "c"), secret_key="k", mode="demo"
    )
    return app_module.create_app(settings).server.test_client(), f"sqlite:///{db}"


def upload(client, name: str, text: str):
    content = "data:text/csv;base64," + base64.b64encode(text.encode()).decode()
    body = {
        "output": "..data-report.children...data-log.rowData..",
        "outputs": [
            {"id": "data-report", "property": "children"},
            {"id": "data-log", "property": "rowData"},
        ],
        "inputs": [{"id": "data-upload", "property": "contents", "value": [content]}],
        "state": [{"id": "data-upload", "property": "filename", "value": [name]}],
        "changedPropIds": ["data-upload.contents"],
    }
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_data001_bad_upload_is_reported_and_writes_nothing(client):
    from core.db import dataset_version, make_engine, row_counts

    c, url = client
    engine = make_engine(url)
    before = (dataset_version(engine), row_counts(engine)["observations"])
    bad = (
        "patient_id,time,variable,value,unit\n"
        "SYN-01-0001,2021-08-10 10:00,creatinine,2.1,mmol/kg\n"  # unknown unit
        "SYN-01-0001,2021-08-10 11:00,platelets,-5,10^3/uL\n"  # implausible
    )
    text = upload(c, "observations.csv", bad)
    assert "2 problem(s) found; nothing was imported" in text
    grid = json.loads(text)["response"]["data-report"]["children"]["props"]["children"][1]
    rows = {(r["row"], r["column"]): r for r in grid["props"]["rowData"]}
    assert set(rows) == {(1, "unit"), (2, "value")}
    assert rows[(1, "unit")]["value"] == "mmol/kg"
    assert rows[(1, "unit")]["patient_id"] == "SYN-01-0001"
    assert "expected one of mg/dl, umol/l" in rows[(1, "unit")]["expected"]
    assert rows[(2, "value")]["value"] == -5.0
    assert (dataset_version(engine), row_counts(engine)["observations"]) == before


def test_data002_wrong_file_type_is_refused(client):
    c, _ = client
    assert "Not a CSV or Parquet file: notes.txt" in upload(c, "notes.txt", "hello")
