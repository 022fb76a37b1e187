"""Issue 16, availability: uploads are limited by decompressed size and row count before they
are read (a 1.26 MB Parquet upload pinned a worker at 4.3 GB for 146 s), and a demo is
read-only unless a setting opens it (an anonymous upload of 3 non-SYN patients made every page
answer 403). docs/security.md "Upload limits" and "Read-only demo"."""

from __future__ import annotations

import gzip
import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from components.pages import data as data_page
from components.server.auth import demo_data_problems
from core.db import dataset_version, make_engine
from core.exceptions import DataValidationError, Problem
from core.io import read_files, read_uploads, template_tables
from core.io.read import NO_LIMITS, UPLOAD_LIMITS, InputLimits
from core.repository import load_audit
from settings import Settings
from tests.app.test_data_page import entry, make_client, post

MB = 1024 * 1024


def refusal(call, *args, **kwargs) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        call(*args, **kwargs)
    return list(info.value.problems)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def csv_bytes(name: str) -> bytes:
    return template_tables()[name].to_csv(index=False).encode()


# ------------------------------------------------------------------------- upload limits --


def test_secup001_a_small_parquet_of_millions_of_rows_is_refused_from_its_footer():
    """3 million rows of constants compress to a few kB; the footer's row count refuses it
    before a single row is decoded."""
    n = 3_000_000
    table = pa.table({"patient_id": pa.array(np.zeros(n, dtype=np.int64)), "value": np.ones(n)})
    data = parquet_bytes(table)
    assert len(data) < 200_000  # tiny on disk
    start = time.perf_counter()
    tracemalloc.start()
    problems = refusal(read_uploads, {"observations.parquet": data})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - start
    by_value = {p.value: p for p in problems}
    rows = by_value["rows: 3000000 rows"]
    assert rows.where == "observations.parquet"
    assert rows.expected.startswith("rows of at most 1000000 rows per uploaded file")
    assert "IMMUNOSEP_UPLOAD_MAX_ROWS" in rows.expected
    # 3e6 rows x 2 columns x 8 bytes = 48,000,000 bytes estimated in memory: below 256 MB
    assert len(problems) == 1
    assert elapsed < 2.0
    assert peak < 20 * MB  # nothing decoded


def test_secup002_parquet_uncompressed_size_from_the_footer():
    # 5 MB of distinct texts (no dictionary can share them), compressing to almost nothing
    strings = pa.array([f"{i:08d}" + "x" * 992 for i in range(5000)])
    data = parquet_bytes(pa.table({"patient_id": strings}))
    limits = InputLimits(max_bytes=MB, max_rows=None, max_decompressed_bytes=2 * MB)
    [p] = refusal(read_uploads, {"patients.parquet": data}, limits=limits)
    assert p.where == "patients.parquet"
    assert p.value.startswith("decompressed size: ")
    size = int(p.value.split(": ")[1].split(" ")[0])
    assert size >= 5_000_000
    assert p.expected.startswith(
        "decompressed size of at most 2097152 bytes (2.0 MB) per uploaded file"
    )
    # the same file within a higher limit is read
    ok = InputLimits(max_bytes=MB, max_rows=None, max_decompressed_bytes=16 * MB)
    assert len(read_uploads({"patients.parquet": data}, limits=ok)["patients"]) == 5000


def test_secup003_gzip_decompression_stops_at_the_bound():
    bomb = gzip.compress(b"0" * (64 * MB), compresslevel=9)
    assert len(bomb) < 200_000
    limits = InputLimits(max_bytes=MB, max_rows=None, max_decompressed_bytes=4 * MB)
    tracemalloc.start()
    [p] = refusal(read_uploads, {"observations.csv.gz": bomb}, limits=limits)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert p.where == "observations.csv.gz"
    assert p.value == "decompressed size: more than 4194304 bytes (4.0 MB)"
    assert "IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB" in p.expected
    assert peak < 16 * MB  # stopped one chunk past the bound, not 64 MB


def test_secup004_gzip_and_zip_uploads_within_the_limits_are_read():
    sites, patients = csv_bytes("sites"), csv_bytes("patients")
    tables = read_uploads({"sites.csv.gz": gzip.compress(sites)})
    assert tables["sites"].equals(read_uploads({"sites.csv": sites})["sites"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("sites.csv", sites)
        z.writestr("folder/patients.csv", patients)
    tables = read_uploads({"trial.zip": archive.getvalue()})
    assert sorted(tables) == ["patients", "sites"]
    assert tables["patients"].attrs["source"] == "patients.csv"


def test_secup005_zip_declared_size_and_nested_archives_are_refused():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("observations.csv", b"patient_id\n" + b"0\n" * (3 * MB))
    limits = InputLimits(max_bytes=MB, max_rows=None, max_decompressed_bytes=2 * MB)
    [p] = refusal(read_uploads, {"big.zip": archive.getvalue()}, limits=limits)
    assert (p.where, p.value) == ("big.zip", f"decompressed size: {6 * MB + 11} bytes (6.0 MB)")
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as z:
        z.writestr("inner.zip", archive.getvalue())
    [p] = refusal(read_uploads, {"outer.zip": nested.getvalue()})
    assert (p.where, p.expected) == ("outer.zip:inner.zip", "no archive inside an archive")


def test_secup006_csv_rows_counted_before_parsing():
    data = b"site_id,name,country\n" + b"".join(b"S-%d,x,FR\n" % i for i in range(6))
    limits = InputLimits(max_bytes=MB, max_rows=5, max_decompressed_bytes=MB)
    [p] = refusal(read_uploads, {"sites.csv": data}, limits=limits)
    assert (p.where, p.value) == ("sites.csv", "rows: 6 rows")
    assert p.expected.startswith("rows of at most 5 rows per uploaded file")
    at_limit = InputLimits(max_bytes=MB, max_rows=6, max_decompressed_bytes=MB)
    assert len(read_uploads({"sites.csv": data}, limits=at_limit)["sites"]) == 6
    no_newline = data.rstrip(b"\n")  # the last row without a line end still counts
    [p] = refusal(read_uploads, {"sites.csv": no_newline}, limits=limits)
    assert p.value == "rows: 6 rows"


def test_secup007_limits_live_in_settings_and_the_command_line_keeps_none(tmp_path):
    s = Settings.from_env(
        {
            "SECRET_KEY": "k",
            "IMMUNOSEP_UPLOAD_MAX_ROWS": "500",
            "IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB": "64",
        }
    )
    assert s.upload_limits == InputLimits(
        max_bytes=20 * MB, max_rows=500, max_decompressed_bytes=64 * MB
    )
    assert Settings.from_env({"SECRET_KEY": "k"}).upload_limits == UPLOAD_LIMITS
    assert InputLimits(20 * MB, 1_000_000, 256 * MB) == UPLOAD_LIMITS
    # the command line reads an operator's own files: no limits (docs/security.md)
    n = 1_200_000
    path = tmp_path / "observations.parquet"
    path.write_bytes(parquet_bytes(pa.table({"patient_id": pa.array(np.zeros(n))})))
    assert len(read_files([path])["observations"]) == n
    assert InputLimits(None, None, None) == NO_LIMITS
    [p] = refusal(read_files, [path], limits=UPLOAD_LIMITS)
    assert p.value == "rows: 1200000 rows"


def test_secup008_data_page_refuses_with_file_limit_and_value(demo_db_url, tmp_path):
    client, url = make_client(demo_db_url, tmp_path, upload_max_rows=1000)
    before = dataset_version(make_engine(url))
    data = parquet_bytes(pa.table({"patient_id": pa.array(["SYN-S01-0001"] * 5000)}))
    out = json.dumps(post(client, [entry("observations.parquet", data)]))
    assert "nothing was imported" in out
    assert "observations.parquet: rows: 5000 rows; expected rows of at most 1000 rows" in out
    assert dataset_version(make_engine(url)) == before


# ---------------------------------------------------------------------- read-only demo --


def real_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The template's tables with ids that are not synthetic (``SYN-`` -> ``H01-``)."""
    out = frame.copy()
    for column in ("patient_id", "site_id"):
        if column in out.columns:
            out[column] = out[column].str.replace("SYN-", "H01-", regex=False)
    return out


def three_real_patients() -> dict[str, bytes]:
    t = template_tables()
    return {f"{name}.csv": real_ids(t[name]).to_csv(index=False).encode() for name in t}


def test_secup010_demo_is_read_only_by_default(demo_db_url, tmp_path):
    client, url = make_client(demo_db_url, tmp_path, demo_uploads=False)
    engine = make_engine(url)
    before = dataset_version(engine)
    with client.application.test_request_context("/data"):
        layout = repr(data_page.layout())
    assert "No upload: this demo is read-only" in layout
    assert data_page.UPLOAD_FILES not in layout  # no upload control at all
    files = [entry(name, data) for name, data in three_real_patients().items()]
    out = json.dumps(post(client, files))
    assert "Nothing was imported: this demo is read-only" in out
    assert "IMMUNOSEP_DEMO_UPLOADS=1" in out
    assert dataset_version(engine) == before
    assert client.get("/cohort").status_code == 200
    refused = load_audit(engine)
    assert refused["action"].iloc[0] == "import_refused"
    # the FHIR API refuses too, with the same reason
    resp = client.post("/api/v1/fhir", data=b"{}", content_type="application/fhir+json")
    assert resp.status_code == 403
    assert resp.get_json()["error"].startswith("this demo is read-only")


def test_secup011_an_open_demo_takes_synthetic_ids_only(demo_db_url, tmp_path):
    """The audit's case: 3 patients whose ids do not start with SYN- (the template's) are
    refused with the ids; the demo keeps answering 200."""
    client, url = make_client(demo_db_url, tmp_path, demo_uploads=True)
    engine = make_engine(url)
    before = dataset_version(engine)
    files = [entry(name, data) for name, data in three_real_patients().items()]
    out = json.dumps(post(client, files))
    assert "nothing was imported" in out
    ids = real_ids(template_tables()["patients"])["patient_id"].tolist()
    assert len(ids) == 3
    assert not any(i.startswith("SYN-") for i in ids)
    assert ", ".join(ids) in out
    assert "synthetic ids starting with 'SYN-'" in out
    assert dataset_version(engine) == before
    with engine.connect() as conn:
        real = conn.execute(
            text("SELECT count(*) FROM patients WHERE patient_id NOT LIKE 'SYN-%'")
        ).scalar()
    assert real == 0
    for path in ("/", "/cohort", "/data", "/api/v1/version"):
        assert client.get(path).status_code == 200, path


def test_secup012_setting_documented_and_parsed():
    assert Settings.from_env({"SECRET_KEY": "k"}).uploads_open is False
    s = Settings.from_env({"SECRET_KEY": "k", "IMMUNOSEP_DEMO_UPLOADS": "1"})
    assert s.demo_uploads is True
    assert s.uploads_open is True
    assert Settings.from_env({"SECRET_KEY": "k", "IMMUNOSEP_MODE": "login"}).uploads_open
    frame = pd.DataFrame({"patient_id": ["SYN-S01-0001"], "site_id": ["SYN-S01"]})
    assert demo_data_problems({"patients": frame}, s) == []
