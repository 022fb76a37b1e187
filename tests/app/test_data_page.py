"""Data page upload: a bad file gets a problem table naming file, row, column, value and what
was expected, and nothing is written; files of the wrong type, above the size limit or not in
UTF-8 are refused with the reason (docs/formats.md "Upload limits and refusals")."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pandas as pd
import pytest

from components.pages import data as data_page
from core.db import dataset_version, make_engine, row_counts
from settings import Settings

HEADERS = ["File", "Row", "Column", "Value", "Expected", "Patient", "Time"]


def make_client(demo_db_url, tmp_path, **overrides):
    import app as app_module  # deferred import: the app module builds the app stack on import

    db = tmp_path / "copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    overrides.setdefault("demo_uploads", True)  # a demo is read-only by default (issue 16)
    settings = Settings(
        database_url=f"sqlite:///{db}",
        cache_dir=str(tmp_path / "c"),
        secret_key="k",
        mode="demo",
        **overrides,
    )
    return app_module.create_app(settings).server.test_client(), f"sqlite:///{db}"


@pytest.fixture
def client(demo_db_url, tmp_path):
    return make_client(demo_db_url, tmp_path)


def entry(name: str, data: bytes, *, held: str | None = None) -> dict:
    """One file as the page's clientside size check passes it on."""
    content = "data:text/csv;base64," + base64.b64encode(data).decode()
    return {"name": name, "size": len(data), "content": None if held else content, "held": held}


def post(client, files: list[dict]) -> dict:
    body = {
        "output": "..data-report.children...data-log.rowData..",
        "outputs": [
            {"id": "data-report", "property": "children"},
            {"id": "data-log", "property": "rowData"},
        ],
        "inputs": [{"id": data_page.UPLOAD_FILES, "property": "data", "value": files}],
        "state": [],
        "changedPropIds": [f"{data_page.UPLOAD_FILES}.data"],
    }
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return json.loads(resp.get_data(as_text=True))["response"]


def upload(client, name: str, text: str) -> str:
    return json.dumps(post(client, [entry(name, text.encode())]))


def report(response: dict) -> tuple[str, list[dict], list[dict]]:
    """(alert text, grid rows, grid column definitions) of a problem report."""
    parts = response["data-report"]["children"]["props"]["children"]
    alert, grid = parts[0], parts[1]
    return json.dumps(alert), grid["props"]["rowData"], grid["props"]["columnDefs"]


def state(url: str):
    engine = make_engine(url)
    try:
        return dataset_version(engine), row_counts(engine)["observations"]
    finally:
        engine.dispose()


def test_data001_bad_upload_is_reported_and_writes_nothing(client):
    c, url = client
    before = state(url)
    bad = (
        "patient_id,time,variable,value,unit\n"
        "SYN-01-0001,2021-08-10 10:00,creatinine,2.1,mmol/kg\n"  # unknown unit
        "SYN-01-0001,2021-08-10 11:00,platelets,-5,10^3/uL\n"  # implausible
    )
    response = post(c, [entry("observations.csv", bad.encode())])
    alert, grid_rows, columns = report(response)
    assert "2 problem(s) found; nothing was imported" in alert
    assert [col["headerName"] for col in columns] == HEADERS
    rows = {(r["row"], r["column"]): r for r in grid_rows}
    assert set(rows) == {(1, "unit"), (2, "value")}
    assert rows[(1, "unit")]["value"] == "mmol/kg"
    assert rows[(1, "unit")]["patient_id"] == "SYN-01-0001"
    assert rows[(1, "unit")]["where"] == "observations.csv"
    assert "expected one of mg/dl, umol/l" in rows[(1, "unit")]["expected"]
    assert rows[(2, "value")]["value"] == -5.0
    assert state(url) == before


def test_data002_wrong_file_types_are_refused_with_the_reason(client):
    c, url = client
    before = state(url)
    response = post(
        c,
        [
            entry("notes.txt", b"hello"),
            entry("observations.xlsx", b"PK\x03\x04 not really a workbook"),
        ],
    )
    alert, rows, _ = report(response)
    assert "2 problem(s) found; nothing was imported" in alert
    by_file = {r["where"]: r for r in rows}
    assert by_file["notes.txt"]["value"] == "a .txt file"
    assert by_file["observations.xlsx"]["value"] == "a .xlsx file"
    assert "a .csv (UTF-8 text) or .parquet file" in by_file["notes.txt"]["expected"]
    assert "save each sheet as 'CSV UTF-8'" in by_file["observations.xlsx"]["expected"]
    # the summary names each refused file and why
    assert "notes.txt: a .txt file; expected a .csv (UTF-8 text) or .parquet file" in alert
    assert state(url) == before


def test_data003_latin1_csv_is_refused_naming_line_and_byte(client):
    c, url = client
    before = state(url)
    text = (
        "site_id,name,country\nS-01,Hôpital Nord,France\n"  # Latin-1: ô is the single byte 0xF4
    ).encode("latin-1")
    _alert, rows, _ = report(post(c, [entry("sites.csv", text)]))
    [row] = rows
    assert row["where"] == "sites.csv"
    assert row["row"] == 1
    assert row["value"] == "S-01,Hôpital Nord,France"
    assert "byte 0xF4 on line 2 is not UTF-8" in row["expected"]
    assert "'CSV UTF-8'" in row["expected"]
    assert state(url) == before


def test_data004_too_big_files_are_refused_with_size_and_limit(demo_db_url, tmp_path):
    c, url = make_client(demo_db_url, tmp_path, upload_max_mb=1)
    before = state(url)
    limit = 1024 * 1024
    big = b"patient_id,time,variable,value,unit\n" + b"x" * (limit + 10)
    # held back in the browser: only name and size arrive
    _alert, rows, _ = report(post(c, [entry("observations.csv", big, held="file")]))
    [row] = rows
    assert row["where"] == "observations.csv"
    assert row["value"] == f"{len(big)} bytes (1.0 MB)"
    assert "a file of at most 1048576 bytes (1.0 MB)" in row["expected"]
    assert "observations_1.csv" in row["expected"]
    assert "python -m core.io import" in row["expected"]
    # a request that bypasses the browser check is refused by the server the same way
    _, rows, _ = report(post(c, [entry("observations.csv", big)]))
    assert [r["value"] for r in rows] == [f"{len(big)} bytes (1.0 MB)"]
    # files under the limit but above it together: held back as one upload
    half = b"a,b\n" + b"1,2\n" * (limit // 6)
    held = [entry("patients.csv", half, held="upload"), entry("sites.csv", half, held="upload")]
    _, rows, _ = report(post(c, held))
    assert {r["where"] for r in rows} == {"patients.csv", "sites.csv"}
    assert all("per upload in total" in r["expected"] for r in rows)
    assert state(url) == before


def test_data005_every_report_row_shows_a_value(client):
    c, url = client
    before = state(url)
    bad = (
        "patient_id,time,variable,value\n"  # no unit column
        "SYN-01-0001,,creatinine,2.1\n"
    )
    patients = "patient_id,site_id,anchor_time,weight_kg\nNEW-0001,SYN-01,2021-08-10 10:00,\n"
    files = [entry("observations.csv", bad.encode()), entry("patients.csv", patients.encode())]
    _alert, rows, _ = report(post(c, files))
    assert all(r["value"] not in (None, "") for r in rows), rows
    by_cell = {(r["where"], r["row"], r["column"]): r["value"] for r in rows}
    assert by_cell == {
        ("observations.csv", None, "unit"): (
            "(no column 'unit'; the file has: patient_id, time, variable, value)"
        ),
        ("patients.csv", 1, "weight_kg"): "(empty)",
    }
    assert state(url) == before


def test_data006_browser_size_check_holds_back_big_files():
    """The clientside callback (run in node): a file above the limit and, when the rest is
    above it in total, every file are held back with their sizes; the others pass intact."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required to run the page's clientside size check")

    def run(contents, names, limit):
        script = (
            "var window = {dash_clientside: {no_update: 'NO_UPDATE'}};\n"
            f"var f = {data_page.SIZE_CHECK_JS};\n"
            f"console.log(JSON.stringify(f({json.dumps(contents)}, {json.dumps(names)}, {limit})));"
        )
        out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def url(data: bytes) -> str:
        return "data:text/csv;base64," + base64.b64encode(data).decode()

    small, big = b"a,b\n1,2\n", b"x" * 101  # 8 and 101 bytes (101: base64 padding "=")
    files = run([url(small), url(big)], ["sites.csv", "patients.csv"], 100)
    assert files == [
        {"name": "sites.csv", "size": 8, "content": url(small), "held": None},
        {"name": "patients.csv", "size": 101, "content": None, "held": "file"},
    ]
    together = run([url(b"y" * 60), url(b"z" * 59)], ["a.csv", "b.csv"], 100)
    assert [(f["size"], f["held"], f["content"]) for f in together] == [
        (60, "upload", None),
        (59, "upload", None),
    ]
    assert run(None, None, 100) == "NO_UPDATE"


def test_data_log_table_reads_the_stored_json_into_words_and_numbers():
    log = pd.DataFrame(
        {
            "id": [1, 2],
            "started_at": [
                pd.Timestamp("2026-12-07 12:43:27.25"),
                pd.Timestamp("2026-12-07 13:00"),
            ],
            "finished_at": [pd.Timestamp("2026-12-07 12:43:29.47"), pd.NaT],
            "status": ["imported", "failed"],
            "source_names": ['["synthetic:patients", "synthetic:observations"]', '["obs.csv"]'],
            "content_sha256": ["3401debdeaa7bcc26dca8a8e" + "0" * 40, "ab" * 32],
            "row_counts": ['{"patients": 276, "observations": 1234567}', "{}"],
            "user": ["demo", "stat"],
            "rules_key": ["sofa1996-immunosep-1", None],
        }
    )
    newest, first = data_page.import_log_table(log)
    assert first == {
        "id": 1,
        "started": "2026-12-07 12:43:27",
        "took": "2.2 s",
        "status": "imported",
        "files": "patients, observations",
        "files_tip": "synthetic:patients; synthetic:observations",
        "rows": "1,234,843",
        "rows_tip": "patients: 276; observations: 1,234,567",
        "user": "demo",
        "content": "3401debd…",
        "content_tip": "3401debdeaa7bcc26dca8a8e" + "0" * 40,
        "rules": "sofa1996-immunosep-1",
    }
    assert (newest["id"], newest["took"], newest["rows"], newest["rules"]) == (2, "–", "0", "–")
    fields = {c["field"] for c in data_page.import_log_columns()}
    assert fields == {k for k in first if not k.endswith("_tip")}
