"""Refused files say why, and every problem shows the offending value (core.io; the Data page
shows the same problems: tests/app/test_data_page.py).

- wrong file type (.xlsx, .txt), a file above the size limit, a CSV not in UTF-8 and an empty
  file are refused naming the file, what was wrong and what is expected;
- every :class:`~core.exceptions.Problem` carries a value: the offending one, ``"(empty)"``
  for an empty cell, or the columns found for a missing column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import db
from core.exceptions import EMPTY_VALUE, DataValidationError, Problem
from core.io import (
    MAX_UPLOAD_BYTES,
    from_adam,
    import_tables,
    problems_table,
    read_files,
    read_uploads,
    template_tables,
    validate_tables,
)
from core.io.read import size_problems

LATIN1_SITES = "site_id,name,country\nS-01,Clinique Sainte-Thérèse,France\n".encode("latin-1")


def refusal(call, *args, **kwargs) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        call(*args, **kwargs)
    return list(info.value.problems)


def test_ur001_wrong_file_types_name_file_type_and_what_is_expected():
    problems = refusal(
        read_uploads,
        {"observations.xlsx": b"PK\x03\x04", "notes.txt": b"hello", "patients.csv": b"a\n1\n"},
    )
    by_file = {p.where: p for p in problems}
    assert set(by_file) == {"observations.xlsx", "notes.txt"}
    assert by_file["observations.xlsx"].value == "a .xlsx file"
    assert by_file["observations.xlsx"].expected == (
        "a .csv (UTF-8 text) or .parquet file named after its table (an Excel workbook: save "
        "each sheet as 'CSV UTF-8' named after its table)"
    )
    assert by_file["notes.txt"].value == "a .txt file"
    assert by_file["notes.txt"].expected.endswith("(other formats are not read)")


def test_ur002_files_above_the_limit_are_refused_with_size_and_limit():
    limit = 1000
    problems = refusal(read_uploads, {"observations.csv": b"x" * 1001}, max_bytes=limit)
    [p] = problems
    assert (p.where, p.row, p.value) == ("observations.csv", None, "1001 bytes (0.0 MB)")
    assert p.expected.startswith("a file of at most 1000 bytes (0.0 MB): split it")
    assert "observations_1.csv, then observations_2.csv" in p.expected
    # the default limit is core.io.read.MAX_UPLOAD_BYTES (20 MB), named in MB and bytes
    [p] = size_problems([("patients.csv", MAX_UPLOAD_BYTES + 1)], MAX_UPLOAD_BYTES)
    assert p.value == "20971521 bytes (20.0 MB)"
    assert "at most 20971520 bytes (20.0 MB)" in p.expected
    assert size_problems([("patients.csv", MAX_UPLOAD_BYTES)], MAX_UPLOAD_BYTES) == []


@pytest.mark.parametrize("as_path", [False, True], ids=["upload", "file"])
def test_ur003_latin1_csv_names_line_byte_and_the_fix(tmp_path: Path, as_path: bool):
    if as_path:
        path = tmp_path / "sites.csv"
        path.write_bytes(LATIN1_SITES)
        problems = refusal(read_files, [path])
    else:
        problems = refusal(read_uploads, {"sites.csv": LATIN1_SITES})
    [p] = problems
    assert (p.where, p.row, p.column) == ("sites.csv", 1, None)
    assert p.value == "S-01,Clinique Sainte-Thérèse,France"
    assert p.expected.startswith("UTF-8 encoded text: byte 0xE9 on line 2 is not UTF-8")
    assert "save it as 'CSV UTF-8'" in p.expected
    # the same text in UTF-8 is read
    tables = read_uploads({"sites.csv": LATIN1_SITES.decode("latin-1").encode("utf-8")})
    assert tables["sites"]["name"].tolist() == ["Clinique Sainte-Thérèse"]


def test_ur004_non_utf8_header_and_empty_file():
    [p] = refusal(read_uploads, {"sites.csv": "site_id,nom_hôpital\nS-01,x\n".encode("cp1252")})
    assert (p.row, p.value) == (None, "site_id,nom_hôpital")
    assert "byte 0xF4 on line 1" in p.expected
    [p] = refusal(read_uploads, {"patients.csv": b""})
    assert (p.where, p.value, p.expected) == (
        "patients.csv",
        "(empty file)",
        "a header row naming the columns",
    )


def test_ur005_problem_values_are_never_blank():
    for missing in (None, float("nan"), np.nan, pd.NaT, pd.NA, np.datetime64("NaT"), "", "  "):
        assert Problem("f.csv", 1, "c", missing, "x").value == EMPTY_VALUE
    for present in (0, 0.0, False, "x", -5.0, ("P1", "2024-01-01")):
        assert Problem("f.csv", 1, "c", present, "x").value == present
    assert "got '(empty)'" in Problem("f.csv", 3, "weight_kg", None, "a value").message()


def test_ur006_every_validation_problem_shows_a_value(tmp_path: Path):
    """Empty required cells, a missing column and an unknown patient: the report has a
    value on every row."""
    t = template_tables()
    t["patients"].loc[0, "weight_kg"] = np.nan  # empty required cell
    t["observations"].loc[2, "value"] = np.nan
    t["doses"].loc[1, "route"] = None
    t["adverse_events"] = t["adverse_events"].drop(columns=["soc"])  # missing column
    t["biomarkers"].loc[0, "patient_id"] = "SYN-S09-0404"  # unknown patient
    folder = tmp_path / "files"
    folder.mkdir()
    paths = []
    for name, frame in t.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        paths.append(folder / f"{name}.csv")
    problems = validate_tables(read_files(paths))
    assert len(problems) >= 6
    assert all(p.value is not None and str(p.value).strip() for p in problems), problems
    cell = {(p.where, p.row, p.column): p.value for p in problems}
    assert cell[("patients.csv", 1, "weight_kg")] == EMPTY_VALUE
    assert cell[("observations.csv", 3, "value")] == EMPTY_VALUE
    assert cell[("doses.csv", 2, "route")] == EMPTY_VALUE
    assert cell[("adverse_events.csv", None, "soc")] == (
        "(no column 'soc'; the file has: patient_id, onset_time, pt, serious, severe, "
        "related, aesi)"
    )
    assert cell[("biomarkers.csv", 1, "patient_id")] == "SYN-S09-0404"
    # the plain-text report (command line) shows every value and the whole expectation
    text = problems_table(problems)
    assert "'(empty)'" in text
    assert "...\n" not in text


def test_ur007_conflict_with_an_empty_new_value_shows_empty(sqlite_url: str):
    """A re-imported ICU stay whose discharge is now empty conflicts with the stored one:
    the value shown is "(empty)", the stored value is named, nothing is written."""
    engine = db.make_engine(sqlite_url)
    try:
        import_tables(engine, template_tables())
        before = (db.row_counts(engine), db.dataset_version(engine))
        stays = template_tables()["icu_stays"]
        stays.loc[0, "stop"] = pd.NaT
        problems = refusal(import_tables, engine, {"icu_stays": stays})
        [p] = [q for q in problems if q.column == "stop"]
        assert p.value == EMPTY_VALUE
        assert "as already stored" in p.expected
        assert "2024-03-04 08:00:00" in p.expected
        # a new open stay (stop empty) before a stored stay of the patient overlaps it
        stays = template_tables()["icu_stays"].iloc[[2]].reset_index(drop=True)
        stays.loc[0, "start"] = stays.loc[0, "start"] - pd.Timedelta(days=2)
        [p] = refusal(import_tables, engine, {"icu_stays": stays})
        assert (p.row, p.column, p.value) == (1, "stop", EMPTY_VALUE)
        assert "stored stay 2024-03-05 17:00:00 to still in the ICU" in p.expected
        assert (db.row_counts(engine), db.dataset_version(engine)) == before
    finally:
        engine.dispose()


def test_ur008_missing_adam_column_names_the_columns_found():
    adsl = pd.DataFrame({"USUBJID": ["A-1"], "SITEID": ["S1"], "WEIGHTBL": [70]})
    adsl.attrs["source"] = "adsl.csv"
    [p] = refusal(from_adam, adsl)
    assert (p.where, p.column) == ("adsl.csv", "TRTSDTM")
    assert p.value == "(no column 'TRTSDTM'; the file has: USUBJID, SITEID, WEIGHTBL)"
