"""Validation, all-or-nothing import, ADaM import/export, CLI and demo build (core.io).

Real SQLite and real PostgreSQL throughout; no database is mocked. The template table set
(:func:`core.io.template_tables`) is small enough to check by hand: e.g. patient
SYN-S01-0001's first PaO2 is 9.5 kPa = 71.25589 mmHg, its first bilirubin 25 umol/L =
1.4620 mg/dL, its first norepinephrine 12 mcg/min / 80 kg = 0.15 mcg/kg/min.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import db, io
from core import repository as repo
from core.exceptions import DataValidationError, Problem
from core.io import recompute
from core.io.validate import validate_and_type
from core.rules import SofaRules

ROOT = Path(__file__).resolve().parent.parent
P1, P2, P3 = "SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"


def write_csvs(folder: Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def problems_of(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> list[Problem]:
    """Problems of a table set after a trip through CSV files (rows = file rows)."""
    return io.validate_tables(io.read_files(write_csvs(tmp_path / "files", tables)))


def only(problems: list[Problem], **match: object) -> list[Problem]:
    return [p for p in problems if all(getattr(p, k) == v for k, v in match.items())]


def stored_state(engine: sa.Engine) -> tuple[dict[str, int], str]:
    return db.row_counts(engine), db.dataset_version(engine)


# ---------------------------------------------------------------------------------------------
# round trip


def test_io001_round_trip(any_url: str) -> None:
    engine = db.make_engine(any_url)
    tables = io.template_tables()
    result = io.import_tables(engine, tables, user="alice")
    assert result.status == "imported"
    assert result.import_id == 1
    assert result.dataset_version.startswith("1-")
    assert dict(result.inserted) == {
        "sites": 2,
        "patients": 3,
        "icu_stays": 3,
        "randomisation": 3,
        "observations": 72,
        "infusions": 3,
        "episodes": 3,
        "biomarkers": 4,
        "doses": 3,
        "adverse_events": 2,
        "disposition": 4,
    }
    # patients read back equal (arm not among the columns)
    pts = repo.load_patients(engine)
    expected = tables["patients"].sort_values("patient_id", ignore_index=True)
    pd.testing.assert_frame_equal(
        pts[list(expected.columns)], expected, check_dtype=False, check_exact=False
    )
    assert "arm" not in pts.columns
    # observations: canonical units, values as received kept
    obs = repo.load_observations(engine, patient_ids=[P1])
    first = obs[obs["time"] == pd.Timestamp("2024-03-01 10:00")].set_index("variable")
    assert first.loc["pao2", "value"] == pytest.approx(71.25589)
    assert first.loc["pao2", "unit"] == "mmHg"
    assert first.loc["pao2", "value_as_received"] == 9.5
    assert first.loc["pao2", "unit_as_received"] == "kPa"
    assert first.loc["fio2", "value"] == pytest.approx(0.5)
    bili = obs[(obs["variable"] == "bilirubin")].iloc[0]
    assert bili["value"] == pytest.approx(25.0 / 17.1)
    assert bili["unit"] == "mg/dL"
    raw = repo.load_patient_raw(engine, P1)
    assert raw.infusions["rate"].tolist() == pytest.approx([0.15, 0.05])
    assert raw.infusions["unit"].tolist() == ["mcg/kg/min", "mcg/kg/min"]
    assert raw.infusions["rate_as_received"].tolist() == [12.0, 0.05]
    ae = repo.load_adverse_events(engine)
    assert ae[["pt", "serious", "severe", "related"]].to_dict("records") == [
        {"pt": "Anaemia", "serious": False, "severe": False, "related": True},
        {"pt": "Atrial fibrillation", "serious": True, "severe": True, "related": False},
    ]
    arms = repo.load_arms(engine)
    assert dict(zip(arms["patient_id"], arms["arm"], strict=True)) == {
        P1: "precision",
        P2: "placebo",
        P3: "precision",
    }
    # derived daily SOFA stored for the default rules: patient 1 day 1 = 10 (hand-checked:
    # resp 3 (P/F 142.5 with ventilation), coag 1, liver 1, cardio 4 (NE 0.15), CNS 1, renal 0)
    daily = repo.load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=[P1])
    assert daily["study_day"].tolist() == [1, 2, 3]
    day1 = daily.iloc[0]
    assert day1["sofa_respiration"] == 3
    assert day1["sofa_cardiovascular"] == 4
    assert day1["sofa_total"] == 10
    assert day1["norepinephrine_mcg_kg_min"] == pytest.approx(0.15)
    assert bool(day1["respiratory_support"]) is True
    prov = repo.load_provenance(engine, P1, rules_key=SofaRules().key())
    assert len(prov) == 3 * 6
    card = prov[(prov["study_day"] == 1) & (prov["organ"] == "cardiovascular")].iloc[0]
    assert card["variable"] == "norepinephrine"
    assert card["score"] == 4
    log = repo.load_import_log(engine)
    assert log["status"].tolist() == ["imported"]
    assert log["user"].tolist() == ["alice"]
    assert log["content_sha256"].iloc[0] == result.content_sha256
    engine.dispose()


def test_io002_duplicate_import_is_noop(any_url: str) -> None:
    engine = db.make_engine(any_url)
    first = io.import_tables(engine, io.template_tables())
    state = stored_state(engine)
    again = io.import_tables(engine, io.template_tables())
    assert again.status == "duplicate"
    assert again.import_id == first.import_id
    assert again.dataset_version == first.dataset_version
    assert stored_state(engine) == state
    engine.dispose()


def test_io003_overlapping_import_adds_only_new_rows(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    full = io.template_tables()
    part = {k: v.copy() for k, v in full.items()}
    part["observations"] = full["observations"].iloc[:30]
    first = io.import_tables(engine, part)
    second = io.import_tables(engine, full)  # same content plus 42 observations
    assert second.status == "imported"
    assert dict(second.inserted) == {
        "sites": 0,
        "patients": 0,
        "icu_stays": 0,
        "randomisation": 0,
        "observations": 42,
        "infusions": 0,
        "episodes": 0,
        "biomarkers": 0,
        "doses": 0,
        "adverse_events": 0,
        "disposition": 0,
    }
    assert second.skipped["observations"] == 30
    assert second.skipped["patients"] == 3
    assert second.dataset_version != first.dataset_version
    assert db.row_counts(engine)["observations"] == 72
    # only the patients with new rows were recomputed
    assert second.n_patients_recomputed == len(
        full["observations"].iloc[30:]["patient_id"].unique()
    )
    engine.dispose()


def test_io004_conflicting_reimport_is_rejected(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    io.import_tables(engine, io.template_tables())
    state = stored_state(engine)
    changed = io.template_tables()
    changed["observations"].loc[5, "value"] = 99.0  # row 6 of the file
    changed["randomisation"].loc[1, "arm"] = "precision"
    with pytest.raises(DataValidationError) as info:
        io.import_tables(engine, changed, source_names={"observations": "obs.csv"})
    probs = info.value.problems
    obs_p = only(list(probs), where="obs.csv", row=6, column="value")
    assert len(obs_p) == 1
    assert "already stored" in obs_p[0].expected
    assert only(list(probs), where="randomisation", row=2, column="arm")
    assert stored_state(engine) == state
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# every validation rule with a bad file


def test_io010_missing_column(tmp_path: Path) -> None:
    t = io.template_tables()
    t["observations"] = t["observations"].drop(columns=["unit"])
    probs = problems_of(tmp_path, t)
    assert only(probs, where="observations.csv", column="unit", row=None)
    assert "a column 'unit'" in only(probs, column="unit")[0].expected


def test_io011_wrong_type(tmp_path: Path) -> None:
    t = io.template_tables()
    t["patients"]["weight_kg"] = t["patients"]["weight_kg"].astype(object)
    t["patients"].loc[1, "weight_kg"] = "heavy"
    t["patients"]["anchor_time"] = t["patients"]["anchor_time"].astype(object)
    t["patients"].loc[2, "anchor_time"] = "03/05/2024"
    t["adverse_events"]["serious"] = t["adverse_events"]["serious"].astype(object)
    t["adverse_events"].loc[0, "serious"] = "maybe"
    probs = problems_of(tmp_path, t)
    [w] = only(probs, where="patients.csv", row=2, column="weight_kg")
    assert w.value == "heavy"
    assert "finite number" in w.expected
    [a] = only(probs, where="patients.csv", row=3, column="anchor_time")
    assert a.value == "03/05/2024"
    assert "ISO 8601" in a.expected
    [s] = only(probs, where="adverse_events.csv", row=1, column="serious")
    assert s.value == "maybe"


def test_io012_unknown_unit(tmp_path: Path) -> None:
    t = io.template_tables()
    t["observations"].loc[3, "unit"] = "mmol/L"  # bilirubin row
    t["infusions"].loc[0, "unit"] = "mg/h"
    probs = problems_of(tmp_path, t)
    [u] = only(probs, where="observations.csv", row=4, column="unit")
    assert u.value == "mmol/L"
    assert "not accepted for bilirubin" in u.expected
    assert "umol/l" in u.expected
    [i] = only(probs, where="infusions.csv", row=1, column="unit")
    assert i.value == "mg/h"


def test_io013_implausible_values(tmp_path: Path) -> None:
    t = io.template_tables()
    t["observations"].loc[6, "value"] = 2.0  # gcs_total of 2
    t["observations"].loc[1, "value"] = 5.0  # FiO2 5 %: probable O2 flow
    t["patients"].loc[0, "weight_kg"] = 900.0
    t["biomarkers"].loc[0, "ferritin_ng_ml"] = -5.0
    probs = problems_of(tmp_path, t)
    [g] = only(probs, where="observations.csv", row=7, column="value")
    assert g.value == 2.0
    assert g.expected.startswith("gcs_total: 3-15 points")
    [f] = only(probs, where="observations.csv", row=2, column="value")
    assert "O2 flow" in f.expected
    [w] = only(probs, where="patients.csv", row=1, column="weight_kg")
    assert w.value == 900.0
    assert "20-350 kg" in w.expected
    [b] = only(probs, where="biomarkers.csv", row=1, column="ferritin_ng_ml")
    assert b.value == -5.0


def test_io014_duplicate_keys(tmp_path: Path) -> None:
    t = io.template_tables()
    obs = t["observations"]
    t["observations"] = pd.concat([obs, obs.iloc[[2]]], ignore_index=True)  # row 73 = row 3
    t["patients"] = pd.concat([t["patients"], t["patients"].iloc[[0]]], ignore_index=True)
    probs = problems_of(tmp_path, t)
    [d] = only(probs, where="observations.csv", row=73)
    assert d.column == "patient_id, time, variable"
    assert "row 3" in d.expected
    assert d.patient_id == P1
    [p] = only(probs, where="patients.csv", row=4)
    assert p.value == P1
    assert "row 1" in p.expected


def test_io015_unknown_patient(tmp_path: Path, sqlite_url: str) -> None:
    t = io.template_tables()
    t["doses"].loc[2, "patient_id"] = "SYN-S09-9999"
    probs = problems_of(tmp_path, t)
    [u] = only(probs, where="doses.csv", row=3, column="patient_id")
    assert u.value == "SYN-S09-9999"
    # a patient already stored is known, one that is not is reported
    engine = db.make_engine(sqlite_url)
    io.import_tables(engine, io.template_tables())
    extra = {
        "biomarkers": pd.DataFrame(
            {
                "patient_id": [P1, "SYN-S09-9999"],
                "time": [pd.Timestamp("2024-03-09 10:00")] * 2,
                "ferritin_ng_ml": [3000.0, 100.0],
                "hla_dr_ab_per_cell": [np.nan, np.nan],
            }
        )
    }
    state = stored_state(engine)
    with pytest.raises(DataValidationError) as info:
        io.import_tables(engine, extra)
    assert [(p.row, p.column, p.value) for p in info.value.problems] == [
        (2, "patient_id", "SYN-S09-9999")
    ]
    assert stored_state(engine) == state
    engine.dispose()


def test_io016_time_before_birth(tmp_path: Path) -> None:
    t = io.template_tables()
    # patient 1: 64 years old at 2024-03-01 -> born after 1959-03-01 at the earliest
    t["observations"].loc[0, "time"] = pd.Timestamp("1950-01-01 00:00")
    t["adverse_events"].loc[0, "onset_time"] = pd.Timestamp("1959-01-01 00:00")
    probs = problems_of(tmp_path, t)
    [o] = only(probs, where="observations.csv", row=1, column="time")
    assert o.value == "1950-01-01 00:00:00"
    assert "after the patient's birth" in o.expected
    assert only(probs, where="adverse_events.csv", row=1, column="onset_time")
    # 1959-06-01 may be after birth (age 64 in completed years): no problem
    t2 = io.template_tables()
    t2["observations"].loc[0, "time"] = pd.Timestamp("1959-06-01 00:00")
    assert problems_of(tmp_path / "ok", t2) == []


def test_io017_time_after_death(tmp_path: Path) -> None:
    t = io.template_tables()
    # patient 2 died 2024-03-06 03:00
    t["biomarkers"].loc[2, "time"] = pd.Timestamp("2024-03-07 00:00")
    t["doses"].loc[1, "time"] = pd.Timestamp("2024-03-06 03:00")  # at death: allowed
    t["patients"].loc[1, "death_time"] = pd.Timestamp("2024-03-06 03:00")
    probs = problems_of(tmp_path, t)
    [b] = only(probs, where="biomarkers.csv", row=3, column="time")
    assert b.patient_id == P2
    assert "death (2024-03-06 03:00:00)" in b.expected
    assert not only(probs, where="doses.csv")


def test_io018_bad_arm_and_vocabulary(tmp_path: Path) -> None:
    t = io.template_tables()
    t["randomisation"].loc[0, "arm"] = "anakinra"
    t["doses"].loc[0, "label"] = "anakinra"  # the product must never be stored
    t["patients"].loc[2, "sex"] = "X"
    probs = problems_of(tmp_path, t)
    [a] = only(probs, where="randomisation.csv", row=1, column="arm")
    assert a.value == "anakinra"
    assert "'precision'" in a.expected
    assert "'placebo'" in a.expected
    assert only(probs, where="doses.csv", row=1, column="label")
    assert only(probs, where="patients.csv", row=3, column="sex")


def test_io019_empty_required_cell(tmp_path: Path) -> None:
    t = io.template_tables()
    t["adverse_events"].loc[1, "pt"] = None
    probs = problems_of(tmp_path, t)
    [p] = only(probs, where="adverse_events.csv", row=2, column="pt")
    assert "may not be empty" in p.expected


def test_io020_all_problems_of_a_file_at_once(tmp_path: Path, sqlite_url: str) -> None:
    t = io.template_tables()
    obs = t["observations"]
    obs["value"] = obs["value"].astype(object)
    obs.loc[0, "value"] = "n/a"  # wrong type
    obs.loc[10, "unit"] = "furlong"  # unknown unit
    obs.loc[20, "patient_id"] = "GHOST"  # unknown patient
    obs.loc[30, "value"] = 1e6  # implausible
    obs.loc[40, "time"] = pd.Timestamp("2024-03-08 00:00")  # after death of patient 2? no: p2
    paths = write_csvs(tmp_path / "files", t)
    engine = db.make_engine(sqlite_url)
    with pytest.raises(DataValidationError) as info:
        io.import_tables(engine, io.read_files(paths))
    rows = {(p.row, p.column) for p in info.value.problems if p.where == "observations.csv"}
    assert (1, "value") in rows
    assert (11, "unit") in rows
    assert (21, "patient_id") in rows
    assert 31 in {r for r, _ in rows}
    assert (41, "time") in rows  # row 41 is patient 2's, who died 2024-03-06 03:00
    assert db.row_counts(engine)["patients"] == 0
    assert db.dataset_version(engine).startswith("0-")
    engine.dispose()


def test_io021_read_files_problems(tmp_path: Path) -> None:
    bad_name = tmp_path / "labs.csv"
    bad_name.write_text("a,b\n1,2\n")
    corrupt = tmp_path / "patients.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")
    empty = tmp_path / "observations.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError) as info:
        io.read_files([bad_name, corrupt, empty])
    wheres = sorted(p.where for p in info.value.problems)
    assert wheres == ["labs.csv", "observations.csv", "patients.parquet"]
    two = [tmp_path / "doses.csv", tmp_path / "doses_site2.csv"]
    for p in two:
        p.write_text("patient_id,time,route,label\n")
    with pytest.raises(DataValidationError, match="one file per table"):
        io.read_files(two)


def test_io022_parquet_and_csv_give_same_content(tmp_path: Path) -> None:
    t = io.template_tables()
    csv_paths = write_csvs(tmp_path / "csv", t)
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    pq_paths = []
    for name, frame in t.items():
        path = pq_dir / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        pq_paths.append(path)
    a = validate_and_type(io.read_files(csv_paths), existing_patients=None, source_names=None)
    b = validate_and_type(io.read_files(pq_paths), existing_patients=None, source_names=None)
    assert a.problems == []
    assert b.problems == []
    assert io.content_hash(a.tables) == io.content_hash(b.tables)


def _hash_edge_tables() -> dict[str, pd.DataFrame]:
    """Every kind of value the content hash meets: floats needing 12 significant digits, NaN,
    inf and -0.0; times with and without microseconds, NaT, a time column of midnights only
    (printed as dates) and microsecond resolution; a category with a missing value; None, ""
    and booleans in text columns; a column outside the table spec; an empty table."""
    time = pd.to_datetime(
        ["2024-03-01 08:00", "2024-03-01 08:00:00.123456", None, "2024-02-29 23:59:59"],
        format="ISO8601",
    )
    observations = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", None, "P2"],
            "time": time,
            "variable": ["creatinine", "map", "pao2", "fio2"],
            "value": [0.1 + 0.2, np.nan, 1e-20, 123456789.123456789],
            "unit": pd.Categorical(["mg/dL", None, "kPa", "%"]),
            "source": ["lab", "", None, "monitor"],
            "value_as_received": [-0.0, np.inf, 2.5, 1 / 3],
            "unit_as_received": ["mg/dL", "mmHg", "kPa", "%"],
            "not_in_spec": [1, 2, 3, 4],
        }
    )
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "site_id": ["S1", "S2"],
            "anchor_time": pd.to_datetime(["2024-03-01 07:00", "2024-03-02 00:00"]).astype(
                "datetime64[us]"
            ),
            "weight_kg": [70.0, 82.5],
            "age_years": [65.0, np.nan],
            "mechanical_ventilation": [True, None],
            "randomised_at": pd.Series(
                [pd.Timestamp("2024-03-01"), pd.NaT], dtype="datetime64[ns]"
            ),
        }
    )
    episodes = pd.DataFrame(
        {"patient_id": pd.Series([], dtype=object), "kind": pd.Series([], dtype=object)}
    )
    return {"observations": observations, "patients": patients, "episodes": episodes}


def test_io024_content_hash_digests_are_pinned() -> None:
    """The digests of the hash as first written (before it was vectorised): stored import
    logs and dataset versions keep matching re-imports of the same content."""
    assert io.content_hash(_hash_edge_tables()) == (
        "31184b1633613ddfc78d94d57ff7a9ab3c65940eaf855b0a6ad53a04fe842274"
    )
    template = validate_and_type(io.template_tables(), existing_patients=None, source_names=None)
    assert io.content_hash(template.tables) == (
        "e08af3cd8b98cc36e897299dc7ca891c36bd51a5a706520d5e67761cf328311b"
    )
    synthetic = validate_and_type(
        io.synthetic_tables(seed=7, n_randomised=10), existing_patients=None, source_names=None
    )
    assert len(synthetic.tables["observations"]) == 3590
    assert io.content_hash(synthetic.tables) == (
        "1dc09cf5e2ab925d434d1c4e8e789417db2578617f7fb6dcb5e217863efd342d"
    )
    # time columns of one dtype are printed alike (midnights with the block's digits), also
    # when a column was assigned after the frame was built
    patients = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3"],
            "randomised_at": pd.to_datetime(["2024-03-01", None, "2024-03-04"]),
            "anchor_time": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"]),
        }
    )
    patients["death_time"] = pd.to_datetime(["2024-03-09 10:00:00.5", None, None])
    assert io.content_hash({"patients": patients}) == (
        "870cd001cb44002f7f932232a44a45dd4dd01aeb96c62a06ffc5f2bf7906bbff"
    )
    # the hash sees every value: one changed float or time changes the digest
    edited = _hash_edge_tables()
    edited["observations"].loc[0, "value"] = 0.3000000001
    assert io.content_hash(edited) != io.content_hash(_hash_edge_tables())
    edited = _hash_edge_tables()
    edited["patients"].loc[1, "anchor_time"] += pd.Timedelta(microseconds=1)
    assert io.content_hash(edited) != io.content_hash(_hash_edge_tables())


# ---------------------------------------------------------------------------------------------
# all or nothing


def test_io030_failure_inside_transaction_leaves_no_trace(
    any_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(any_url)
    base = io.template_tables()
    base_without_p3 = {
        k: (v[v["patient_id"] != P3] if "patient_id" in v and k != "disposition" else v)
        for k, v in base.items()
    }
    base_without_p3["disposition"] = base["disposition"][base["disposition"]["patient_id"] != P3]
    io.import_tables(engine, base_without_p3)
    state = stored_state(engine)

    def exploding_derive(*args: object, **kwargs: object) -> object:
        raise RuntimeError("simulated crash after the raw inserts")

    monkeypatch.setattr(recompute, "_derive", exploding_derive)
    with pytest.raises(RuntimeError, match="simulated crash"):
        io.import_tables(engine, base)
    assert stored_state(engine) == state
    assert repo.load_import_log(engine)["status"].tolist() == ["imported"]
    monkeypatch.undo()
    result = io.import_tables(engine, base)  # the database is still usable
    assert result.status == "imported"
    assert db.row_counts(engine)["patients"] == 3
    engine.dispose()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core import db, io
    from core.io import recompute
    marker = Path(sys.argv[2])
    real = recompute._derive
    def slow_derive(*args, **kwargs):
        result = real(*args, **kwargs)
        marker.write_text("inserted")
        time.sleep(60)
        return result
    recompute._derive = slow_derive
    io.import_tables(db.make_engine(sys.argv[1]), io.template_tables())
    """
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_io031_killed_import_leaves_no_trace(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    state = stored_state(engine)
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, url, str(marker)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "import never reached the derive step"
            time.sleep(0.05)
        # raw rows are inserted, derived rows computed, nothing committed yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    engine.dispose()
    engine = db.make_engine(url)
    assert stored_state(engine) == state
    result = io.import_tables(engine, io.template_tables())
    assert result.status == "imported"
    assert db.row_counts(engine)["observations"] == 72
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# fuzz

_TOKENS = st.sampled_from(
    [
        "",
        P1,
        P2,
        "SYN-S01-9999",
        "2024-03-01 10:00",
        "2024-03-01T10:00:00Z",
        "1900-01-01",
        "9999-12-31",
        "not a date",
        "pao2",
        "fio2",
        "gcs_total",
        "ferritin",
        "mmHg",
        "kPa",
        "%",
        "mg/dL",
        "points",
        "1.5",
        "-3",
        "1e308",
        "nan",
        "inf",
        "True",
        "x,y",
        '"',
        "\u00e9\u00e8",
        "0",
    ]
)
_HEADERS = {
    "observations": ["patient_id,time,variable,value,unit", "patient_id,time,value", "a,b,c,d,e"],
    "biomarkers": ["patient_id,time,ferritin_ng_ml,hla_dr_ab_per_cell", "patient_id,time,time"],
    "patients": ["patient_id,site_id,anchor_time,weight_kg,age_years", "patient_id"],
    "infusions": ["patient_id,drug,start,stop,rate,unit"],
}


@st.composite
def malformed_file(draw: st.DrawFn) -> tuple[str, bytes]:
    table = draw(st.sampled_from(sorted(_HEADERS)))
    if draw(st.integers(0, 9)) == 0:
        return table, draw(st.binary(max_size=200))
    header = draw(st.sampled_from(_HEADERS[table]))
    n_cols = header.count(",") + 1
    rows = draw(
        st.lists(
            st.lists(_TOKENS, min_size=max(0, n_cols - 1), max_size=n_cols + 1),
            max_size=6,
        )
    )
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    return table, text.encode()


@pytest.fixture(scope="module")
def fuzz_engine(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"
    engine = db.make_engine(path)
    io.import_tables(engine, io.template_tables())
    yield engine
    engine.dispose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=st.lists(malformed_file(), min_size=1, max_size=3, unique_by=lambda f: f[0]))
def test_io040_fuzz_never_crashes_never_partial(
    files: list[tuple[str, bytes]], fuzz_engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("case")
    paths = []
    for table, payload in files:
        path = folder / f"{table}.csv"
        path.write_bytes(payload)
        paths.append(path)
    before = db.row_counts(fuzz_engine)
    version = db.dataset_version(fuzz_engine)
    problems: tuple[Problem, ...] = ()
    try:
        result = io.import_tables(fuzz_engine, io.read_files(paths))
    except DataValidationError as exc:
        problems = exc.problems
    if problems:
        assert all(isinstance(p, Problem) and p.where for p in problems)
        assert db.row_counts(fuzz_engine) == before
        assert db.dataset_version(fuzz_engine) == version
        return
    after = db.row_counts(fuzz_engine)
    for table, n in result.inserted.items():
        assert after[table] == before[table] + n
    if result.status == "duplicate":
        assert after == before


# ---------------------------------------------------------------------------------------------
# ADaM


@pytest.fixture
def imported(sqlite_url: str) -> sa.Engine:
    engine = db.make_engine(sqlite_url)
    io.import_tables(engine, io.template_tables())
    yield engine
    engine.dispose()


def test_io050_export_adam_contents(imported: sa.Engine, tmp_path: Path) -> None:
    paths = io.export_adam(imported, tmp_path / "adam", include_arm=True)
    assert sorted(paths) == ["ADAE", "ADLB", "ADRS", "ADSL", "ADSOFA", "ADTTE"]
    adsl = pd.read_csv(paths["ADSL"]).set_index("USUBJID")
    assert adsl.loc[P1, "ARMCD"] == "PRECISION"
    assert adsl.loc[P2, "ARM"] == "Placebo"
    assert adsl.loc[P2, "DTHFL"] == "Y"
    assert adsl.loc[P2, "DTHPRDY"] == 4  # protocol study day of death
    assert adsl.loc[P1, "SOFABL"] == 10
    assert adsl.loc[P1, "FERRBL"] == 5200
    assert adsl.loc[P1, "PHENO"] == "MALS"
    sofa = pd.read_csv(paths["ADSOFA"], keep_default_na=False, na_values=[""])
    tot1 = sofa[(sofa["USUBJID"] == P1) & (sofa["PARAMCD"] == "SOFA")].set_index("AVISITN")
    assert tot1["AVAL"].tolist() == [10, 8, 7] + [7] * 12  # days 4..15 carried forward
    assert tot1.loc[4, "DTYPE"] == "LOCF"
    assert pd.isna(tot1.loc[2, "DTYPE"])
    assert tot1.loc[3, "CHG"] == -3
    assert (tot1["BASE"] == 10).all()
    tot2 = sofa[(sofa["USUBJID"] == P2) & (sofa["PARAMCD"] == "SOFA")].set_index("AVISITN")
    assert tot2.loc[4:, "AVAL"].eq(24).all()  # death on study day 4, 24 from that day
    assert tot2.loc[4:, "DTYPE"].eq("WC").all()  # CDISC DTYPE "worst case"
    assert set(sofa["PARAMCD"]) == {
        "SOFA",
        "SOFARESP",
        "SOFACOAG",
        "SOFALIVR",
        "SOFACARD",
        "SOFACNS",
        "SOFAREN",
    }
    adrs = pd.read_csv(paths["ADRS"]).set_index(["USUBJID", "PARAMCD"])
    # patient 1: day 1 = 10, days 2..9 = 8, 7, 7, 7, 7, 7, 7, 7 -> mean 7.125, delta 2.875
    assert adrs.loc[(P1, "SOFADEC9"), "AVAL"] == pytest.approx(2.875)
    assert (adrs.loc[(P1, "SOFARSP9"), "AVALC"], adrs.loc[(P1, "SOFARSP9"), "AVAL"]) == ("Y", 1)
    assert (adrs.loc[(P2, "SOFARSP9"), "AVALC"], adrs.loc[(P2, "SOFARSP9"), "AVAL"]) == ("N", 0)
    assert adrs.loc[(P2, "SOFARSP9"), "NDEATH"] == 6
    tte = pd.read_csv(paths["ADTTE"]).set_index(["USUBJID", "PARAMCD"])
    # 2024-03-02 12:00 -> 03-06 03:00 is 3.625 days: protocol study day 4, the dashboard's
    # duration (core.endpoints.time_to_death), not the fraction
    assert tte.loc[(P2, "OS28"), "AVAL"] == 4
    assert tte.loc[(P2, "OS28"), "CNSR"] == 0
    assert tte.loc[(P1, "OS90"), "AVAL"] == 90
    assert tte.loc[(P1, "OS90"), "CNSR"] == 1
    adae = pd.read_csv(paths["ADAE"], keep_default_na=False, na_values=[""])
    assert adae["AESER"].tolist() == ["N", "Y"]
    assert adae["AESI"].tolist()[0] == "ANEMIA"
    assert set(adae["ASEV"]) <= {"SEVERE", "NOT SEVERE"}
    assert adae["TRTEMFL"].tolist() == ["Y", "Y"]


def test_io051_blinded_export_has_no_arm(imported: sa.Engine, tmp_path: Path) -> None:
    paths = io.export_adam(imported, tmp_path / "blind", include_arm=False)
    for path in paths.values():
        text = path.read_text()
        header = text.splitlines()[0].split(",")
        assert "ARM" not in header
        assert "ARMCD" not in header
        assert "PRECISION" not in text
        assert "Placebo" not in text


def test_io052_adam_round_trip(imported: sa.Engine, tmp_path: Path, sqlite_url: str) -> None:
    """Re-importing the ADaM export alone is refused (it carries no infusions, episodes,
    doses, ICU stays or disposition: the numbers would differ) and nothing is written; with
    the raw companion tables it round-trips exactly."""
    from core.io.adam import ADAM_COMPANIONS
    from core.io.raw_export import export_raw

    paths = io.export_adam(imported, tmp_path / "adam", include_arm=True)
    tables = io.read_files([paths["ADSL"], paths["ADAE"], paths["ADLB"]])
    assert sorted(tables) == [
        "adverse_events",
        "biomarkers",
        "observations",
        "patients",
        "randomisation",
    ]
    other = db.make_engine(f"sqlite:///{tmp_path / 'second.sqlite'}")
    with pytest.raises(DataValidationError) as exc:
        io.import_tables(other, tables)
    (problem,) = exc.value.problems
    assert problem.where == "ADaM input"
    assert "--format raw" in problem.expected
    assert not io.has_data(other)
    # with the raw companions (ICU stays, infusions, episodes, doses, disposition): identical
    companions = export_raw(imported, tmp_path / "raw", include_arm=False, tables=ADAM_COMPANIONS)
    tables = io.read_files(
        [paths["ADSL"], paths["ADAE"], paths["ADLB"], *(Path(p) for p in companions.values())]
    )
    result = io.import_tables(other, tables)
    assert result.inserted["observations"] == 72
    assert result.inserted["biomarkers"] == 4
    cols = ["patient_id", "site_id", "anchor_time", "weight_kg", "death_time", "age_years", "sex"]
    pd.testing.assert_frame_equal(
        repo.load_patients(other)[cols], repo.load_patients(imported)[cols]
    )
    pd.testing.assert_frame_equal(repo.load_arms(other), repo.load_arms(imported))
    key = SofaRules().key()
    for pid in (P1, P3):
        d1 = repo.load_daily_sofa(other, rules_key=key, patient_ids=[pid])
        d2 = repo.load_daily_sofa(imported, rules_key=key, patient_ids=[pid])
        assert d1["sofa_total"].tolist() == d2["sofa_total"].tolist()
    other.dispose()


def test_io053_adam_problems_point_at_adam_rows(tmp_path: Path) -> None:
    adsl = pd.DataFrame(
        {
            "USUBJID": ["A-1", "A-2"],
            "SITEID": ["S1", "S1"],
            "TRTSDTM": ["2024-01-01T08:00:00", "2024-01-02T08:00:00"],
            "WEIGHTBL": [70, 80],
            "AGE": [50, 60],
            "ARMCD": ["PRECISION", "ACTIVE"],
        }
    )
    adlb = pd.DataFrame(
        {
            "USUBJID": ["A-1", "A-1", "A-2"],
            "PARAMCD": ["PLAT", "FERRITIN", "XYZ"],
            "ADTM": ["2024-01-01T09:00:00"] * 3,
            "AVAL": [100, 500, 1],
            "AVALU": ["10^9/L", "pmol/L", "mmHg"],
        }
    )
    adsl.to_csv(tmp_path / "adsl.csv", index=False)
    adlb.to_csv(tmp_path / "adlb.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        io.read_files([tmp_path / "adsl.csv", tmp_path / "adlb.csv"])
    [unit] = info.value.problems
    assert (unit.where, unit.row, unit.column, unit.value) == ("adlb.csv", 2, "AVALU", "pmol/L")
    adlb.loc[1, "AVALU"] = "ug/L"
    adlb.to_csv(tmp_path / "adlb.csv", index=False)
    probs = io.validate_tables(io.read_files([tmp_path / "adsl.csv", tmp_path / "adlb.csv"]))
    assert only(probs, where="adsl.csv", row=2, column="arm")
    [var] = only(probs, where="adlb.csv", row=3)
    assert var.column == "xyz"


# ---------------------------------------------------------------------------------------------
# command line


def test_io060_cli_import_validate_export(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(p) for p in write_csvs(tmp_path / "in", io.template_tables())]
    assert io.main(["--database-url", sqlite_url, "import", *paths]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported: import 1, dataset version 1-")
    assert io.main(["import", "--database-url", sqlite_url, *paths]) == 0
    assert capsys.readouterr().out.startswith("duplicate")
    bad = io.template_tables()
    bad["randomisation"].loc[0, "arm"] = "verum"
    bad_paths = [
        str(p) for p in write_csvs(tmp_path / "bad", {"randomisation": bad["randomisation"]})
    ]
    assert io.main(["validate", *bad_paths]) == 1
    table = capsys.readouterr().out
    assert "randomisation.csv" in table
    assert "'verum'" in table
    assert io.main(["--database-url", sqlite_url, "export", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "adsl.csv").exists()
    assert "ARM" not in (tmp_path / "out" / "adsl.csv").read_text().splitlines()[0].split(",")


# ---------------------------------------------------------------------------------------------
# demo database


def test_io070_demo_build_once_then_noop(any_url: str) -> None:
    version = io.build_demo_database(any_url, n_randomised=24)
    assert version.startswith("1-")
    engine = db.make_engine(any_url)
    counts = db.row_counts(engine)
    assert counts["randomisation"] == 24
    assert counts["patients"] >= 20  # randomised minus withdrawn with data removal
    assert counts["daily_sofa"] > 0
    assert repo.load_import_log(engine)["user"].tolist() == ["demo"]
    # second call: data exist, nothing happens (even with another size)
    assert io.build_demo_database(engine, n_randomised=40) == version
    assert db.row_counts(engine) == counts
    assert all(pid.startswith("SYN-") for pid in repo.load_patients(engine)["patient_id"])
    engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_io071_concurrent_demo_builds_create_data_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    procs = [
        subprocess.Popen(
            # the command line as a module, two at once on the same database
            [sys.executable, "-m", "core.io", "demo", "--patients", "24", "--database-url", url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    versions = {out.strip() for out, _ in outputs}
    assert len(versions) == 1
    assert versions.pop().startswith("dataset version 1-")
    engine = db.make_engine(url)
    assert len(repo.load_import_log(engine)) == 1
    assert db.row_counts(engine)["randomisation"] == 24
    engine.dispose()


def test_io072_cli_demo(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert io.main(["demo", "--patients", "24", "--database-url", sqlite_url]) == 0
    assert capsys.readouterr().out.startswith("dataset version 1-")
    assert io.main(["demo", "--patients", "24", "--database-url", sqlite_url]) == 0
    assert capsys.readouterr().out.startswith("dataset version 1-")


def test_io023_read_uploads_with_size_limit() -> None:
    t = io.template_tables()
    payload = {
        "patients.csv": t["patients"].to_csv(index=False).encode(),
        "randomisation.csv": t["randomisation"].to_csv(index=False).encode(),
    }
    tables = io.read_uploads(payload)
    assert sorted(tables) == ["patients", "randomisation"]
    assert tables["patients"].attrs["source"] == "patients.csv"
    assert io.validate_tables(tables) == []
    limit = len(payload["patients.csv"]) - 1
    with pytest.raises(DataValidationError) as info:
        io.read_uploads(payload, max_bytes=limit)
    [p] = info.value.problems  # only the file above the limit
    assert p.where == "patients.csv"
    assert f"at most {limit} bytes" in p.expected


def test_io090_an_absurd_age_is_reported_not_a_crash() -> None:
    """age_years = 1,000,000 is one problem on that cell (it used to raise
    OutOfBoundsDatetime in the birth-time rule)."""
    tables = io.template_tables()
    tables["patients"].loc[0, "age_years"] = 1_000_000
    problems = io.validate_tables(tables)
    assert [(p.where, p.row, p.column, p.expected) for p in problems] == [
        ("patients", 1, "age_years", "a finite number in 0-120 years")
    ]


def test_io091_text_longer_than_the_database_column_is_refused_at_validation() -> None:
    """A 300-character unit passed validation and then failed the PostgreSQL insert."""
    tables = io.template_tables()
    limit = db.observations.c.unit.type.length
    tables["observations"].loc[0, "unit"] = "x" * 300
    problems = [p for p in io.validate_tables(tables) if p.column == "unit"]
    assert (problems[0].where, problems[0].row) == ("observations", 1)
    assert problems[0].expected == f"text of at most {limit} characters"
