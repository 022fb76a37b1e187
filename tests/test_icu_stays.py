"""ICU stays (schema v4): import and validation, the census rule (core.repository.icu_census)
on hand-built stays and on the synthetic trial, on SQLite and PostgreSQL.

The census rule: a patient is in the ICU at ``at`` when a stay covers it (``start <= at <
stop``, ``stop`` missing = still in the ICU) and they are alive (``death_time`` missing or
``> at``). Hand-built stays (times below, all 2024, naive UTC):

- A (S1): 03-01 02:00 -> 03-05 12:00 (discharged alive), readmitted 03-10 00:00 -> 03-12 00:00;
- B (S1): 03-02 06:00 -> 03-06 03:00, dies in the ICU at 03-06 03:00 (stop = death);
- C (S2): 03-05 17:00 -> (still in the ICU);
- D (S2): 03-03 04:00 -> (stop not entered), dies 03-08 00:00: leaves the census at death;
- E (S1): ICU-A 03-04 00:00 -> 03-06 00:00, transferred to ICU-B 03-06 00:00 -> 03-07 00:00.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db, io
from core import repository as repo
from core.exceptions import DataValidationError
from core.io.demo import DEMO_ENROLMENT_DAYS
from core.time import replay_span

ts = pd.Timestamp


def _tables() -> dict[str, pd.DataFrame]:
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C", "D", "E"],
            "site_id": ["S1", "S1", "S2", "S2", "S1"],
            "anchor_time": [
                ts("2024-03-01 08:00"),
                ts("2024-03-02 12:00"),
                ts("2024-03-05 20:00"),
                ts("2024-03-03 10:00"),
                ts("2024-03-04 06:00"),
            ],
            "weight_kg": [80.0, 70.0, 60.0, 90.0, 75.0],
            "death_time": [pd.NaT, ts("2024-03-06 03:00"), pd.NaT, ts("2024-03-08 00:00"), pd.NaT],
        }
    )
    stays = pd.DataFrame(
        [
            ("A", "ICU-A", "1", ts("2024-03-01 02:00"), ts("2024-03-05 12:00")),
            ("A", "ICU-A", "4", ts("2024-03-10 00:00"), ts("2024-03-12 00:00")),
            ("B", "ICU-A", "2", ts("2024-03-02 06:00"), ts("2024-03-06 03:00")),
            ("C", "ICU-2", None, ts("2024-03-05 17:00"), pd.NaT),
            ("D", "ICU-2", "9", ts("2024-03-03 04:00"), pd.NaT),
            ("E", "ICU-A", "3", ts("2024-03-04 00:00"), ts("2024-03-06 00:00")),
            ("E", "ICU-B", "1", ts("2024-03-06 00:00"), ts("2024-03-07 00:00")),
        ],
        columns=["patient_id", "unit", "bed", "start", "stop"],
    )
    return {"patients": patients, "icu_stays": stays}


#: clock time -> the patients in the ICU then (boundaries: start in, stop / death out)
EXPECTED: dict[str, set[str]] = {
    "2024-03-01 01:59:59": set(),
    "2024-03-01 02:00": {"A"},  # at == start: in
    "2024-03-02 06:00": {"A", "B"},
    "2024-03-03 04:00": {"A", "B", "D"},
    "2024-03-05 11:59:59": {"A", "B", "D", "E"},
    "2024-03-05 12:00": {"B", "D", "E"},  # at == stop: A has left
    "2024-03-05 17:00": {"B", "C", "D", "E"},
    "2024-03-06 00:00": {"B", "C", "D", "E"},  # E transferred, still in
    "2024-03-06 02:59:59": {"B", "C", "D", "E"},
    "2024-03-06 03:00": {"C", "D", "E"},  # at == death (== stop): B out
    "2024-03-07 00:00": {"C", "D"},
    "2024-03-07 23:59:59.999999": {"C", "D"},
    "2024-03-08 00:00": {"C"},  # at == death, stay still open: D out
    "2024-03-10 00:00": {"A", "C"},  # readmission
    "2024-03-12 00:00": {"C"},
    "2030-01-01 00:00": {"C"},
}


@pytest.fixture
def stays_engine(any_url: str):
    engine = db.make_engine(any_url)
    result = io.import_tables(engine, _tables(), user="test")
    assert result.inserted["icu_stays"] == 7
    yield engine
    engine.dispose()


def test_icu001_census_equals_the_stays_at_every_clock_time(stays_engine) -> None:
    for at, expected in EXPECTED.items():
        census = repo.icu_census(stays_engine, ts(at))
        assert set(census["patient_id"]) == expected, at
        assert census["patient_id"].is_unique, at
    census = repo.icu_census(stays_engine, ts("2024-03-06 00:00"))
    assert tuple(census.columns) == repo.ICU_CENSUS_COLUMNS
    row = census.set_index("patient_id").loc["E"]
    # the covering stay (after the transfer), not the first one
    assert (row["unit"], row["bed"], row["icu_admission_time"]) == (
        "ICU-B",
        "1",
        ts("2024-03-06 00:00"),
    )
    assert row["site_id"] == "S1"
    assert row["anchor_time"] == ts("2024-03-04 06:00")
    c = census.set_index("patient_id").loc["C"]
    assert c["bed"] is None
    assert pd.isna(c["death_time"])
    assert census.set_index("patient_id").loc["B", "death_time"] == ts("2024-03-06 03:00")
    for col in ("icu_admission_time", "anchor_time", "death_time"):
        assert census[col].dtype == "datetime64[ns]", col
    readmitted = repo.icu_census(stays_engine, "2024-03-11 00:00").set_index("patient_id")
    assert readmitted.loc["A", "icu_admission_time"] == ts("2024-03-10 00:00")
    empty = repo.icu_census(stays_engine, ts("2020-01-01"))
    assert len(empty) == 0
    assert tuple(empty.columns) == repo.ICU_CENSUS_COLUMNS


def test_icu002_census_by_site_and_timezone_aware_clock(stays_engine) -> None:
    at = ts("2024-03-06 00:00")
    assert list(repo.icu_census(stays_engine, at, site_id="S1")["patient_id"]) == ["B", "E"]
    assert list(repo.icu_census(stays_engine, at, site_id="S2")["patient_id"]) == ["C", "D"]
    assert len(repo.icu_census(stays_engine, at, site_id="NOPE")) == 0
    # 01:00 in Paris (UTC+1 in March) is 00:00 UTC
    paris = repo.icu_census(stays_engine, ts("2024-03-06 01:00", tz="Europe/Paris"))
    assert set(paris["patient_id"]) == EXPECTED["2024-03-06 00:00"]


def test_icu003_load_icu_stays(stays_engine) -> None:
    stays = repo.load_icu_stays(stays_engine)
    expected = _tables()["icu_stays"].sort_values(["patient_id", "start"], ignore_index=True)
    pd.testing.assert_frame_equal(stays, expected, check_dtype=False)
    assert stays["start"].dtype == stays["stop"].dtype == "datetime64[ns]"
    assert list(repo.load_icu_stays(stays_engine, site_id="S2")["patient_id"]) == ["C", "D"]
    some = repo.load_icu_stays(stays_engine, patient_ids=["E", "A"])
    assert list(some["patient_id"]) == ["A", "A", "E", "E"]
    assert len(repo.load_icu_stays(stays_engine, patient_ids=[])) == 0


def test_icu004_import_is_idempotent(stays_engine) -> None:
    before = (db.row_counts(stays_engine), db.dataset_version(stays_engine))
    again = io.import_tables(stays_engine, _tables(), user="test")
    assert again.status == "duplicate"
    only_stays = {"icu_stays": _tables()["icu_stays"].iloc[::-1].reset_index(drop=True)}
    result = io.import_tables(stays_engine, only_stays, user="test")
    assert result.status == "duplicate"
    assert result.skipped["icu_stays"] == 7
    assert (db.row_counts(stays_engine), db.dataset_version(stays_engine)) == before
    # a new stay of a stored patient is added (and nothing else)
    more = pd.DataFrame(
        [("A", "ICU-A", "5", ts("2024-03-20 00:00"), pd.NaT)],
        columns=_tables()["icu_stays"].columns,
    )
    added = io.import_tables(stays_engine, {"icu_stays": more}, user="test")
    assert added.status == "imported"
    assert added.inserted["icu_stays"] == 1
    assert set(repo.icu_census(stays_engine, ts("2024-03-21"))["patient_id"]) == {"A", "C"}


def _problems(engine, tables) -> list:
    before = (db.row_counts(engine), db.dataset_version(engine))
    with pytest.raises(DataValidationError) as exc:
        io.import_tables(engine, tables, source_names={"icu_stays": "stays.csv"}, user="test")
    assert (db.row_counts(engine), db.dataset_version(engine)) == before  # nothing written
    return list(exc.value.problems)


def test_icu005_overlap_and_backwards_stays_are_rejected_with_clear_problems(any_url) -> None:
    engine = db.make_engine(any_url)
    db.ensure_schema(engine)
    tables = _tables()
    bad = pd.DataFrame(
        [
            # 1: fine
            ("A", "ICU-A", "1", ts("2024-03-01 02:00"), ts("2024-03-05 12:00")),
            # 2: starts inside row 1
            ("A", "ICU-A", "2", ts("2024-03-05 11:00"), ts("2024-03-06 00:00")),
            # 3: ends before it starts
            ("B", "ICU-A", "2", ts("2024-03-02 06:00"), ts("2024-03-02 05:00")),
            # 4: open stay; 5 starts after it: overlaps the open stay
            ("D", "ICU-2", "9", ts("2024-03-03 04:00"), pd.NaT),
            ("D", "ICU-2", "9", ts("2024-03-05 04:00"), ts("2024-03-06 04:00")),
            # 6: ends after the patient's death (event-time rule)
            ("B", "ICU-A", "3", ts("2024-03-03 00:00"), ts("2024-03-07 00:00")),
        ],
        columns=["patient_id", "unit", "bed", "start", "stop"],
    )
    tables["icu_stays"] = bad
    problems = _problems(engine, tables)
    got = {(p.where, p.row, p.column): p for p in problems}
    assert set(got) == {
        ("stays.csv", 2, "start"),
        ("stays.csv", 3, "stop"),
        ("stays.csv", 5, "start"),
        ("stays.csv", 6, "stop"),
    }
    p2 = got[("stays.csv", 2, "start")]
    assert p2.value == "2024-03-05 11:00:00"
    assert p2.patient_id == "A"
    assert "row 1: 2024-03-01 02:00:00 to 2024-03-05 12:00:00" in p2.expected
    assert "must not overlap" in p2.expected
    p3 = got[("stays.csv", 3, "stop")]
    assert p3.value == "2024-03-02 05:00:00"
    assert p3.expected == "an ICU discharge at or after the admission (start 2024-03-02 06:00:00)"
    assert (
        "row 4: 2024-03-03 04:00:00 to still in the ICU" in got[("stays.csv", 5, "start")].expected
    )
    assert "death" in got[("stays.csv", 6, "stop")].expected
    assert db.row_counts(engine)["patients"] == 0
    # a later import may not overlap the stored stays either (nor close an open one silently)
    io.import_tables(engine, _tables(), user="test")
    later = pd.DataFrame(
        [
            ("C", "ICU-2", "1", ts("2024-03-09 00:00"), ts("2024-03-10 00:00")),  # C still in
            ("A", "ICU-A", "1", ts("2024-02-28 00:00"), ts("2024-03-01 03:00")),  # into stay 1
            ("A", "ICU-A", "1", ts("2024-03-12 00:00"), ts("2024-03-13 00:00")),  # touches: ok
        ],
        columns=["patient_id", "unit", "bed", "start", "stop"],
    )
    problems = _problems(engine, {"icu_stays": later})
    got = {(p.row, p.column): p for p in problems}
    assert set(got) == {(1, "start"), (2, "stop")}
    assert "stored stay 2024-03-05 17:00:00 to still in the ICU" in got[(1, "start")].expected
    assert "later stay (stored stay 2024-03-01 02:00:00" in got[(2, "stop")].expected
    # an open stay is closed by a later import (the discharge arrives after the admission);
    # a closed stay is never moved: another end is a conflict
    closing = _tables()["icu_stays"].iloc[[3]].assign(stop=ts("2024-03-09 00:00"))
    result = io.import_tables(engine, {"icu_stays": closing}, user="test")
    assert result.inserted["icu_stays closed"] == 1
    moved = closing.assign(stop=ts("2024-03-09 06:00"))
    (conflict,) = _problems(engine, {"icu_stays": moved})
    assert conflict.column == "stop"
    assert "never overwritten" in conflict.expected
    engine.dispose()


def test_icu006_template_has_stays_one_still_in_the_icu() -> None:
    tables = io.template_tables()
    stays, patients = tables["icu_stays"], tables["patients"]
    assert io.validate_tables(tables) == []
    assert set(stays["patient_id"]) == set(patients["patient_id"])
    merged = stays.merge(patients, on="patient_id")
    assert (merged["start"] < merged["anchor_time"]).all()
    assert ((merged["anchor_time"] - merged["start"]) <= pd.Timedelta(hours=12)).all()
    assert stays["stop"].isna().sum() == 1


@pytest.fixture(scope="module")
def synthetic_engine(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('synthetic') / 'demo.sqlite'}"
    io.build_demo_database(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()


def test_icu007_synthetic_stays_cover_the_first_dose_and_end_by_death(synthetic_engine) -> None:
    stays = repo.load_icu_stays(synthetic_engine)
    patients = repo.load_patients(synthetic_engine)
    assert set(stays["patient_id"]) == set(patients["patient_id"])
    assert stays["stop"].notna().all()
    assert (stays["stop"] > stays["start"]).all()
    first = stays.groupby("patient_id").first().join(patients.set_index("patient_id"))
    assert (first["start"] < first["anchor_time"]).all()
    assert (first["stop"] > first["anchor_time"]).all()
    before_h = (first["anchor_time"] - first["start"]) / pd.Timedelta(hours=1)
    assert before_h.between(2.0, 36.0).all()
    death = stays["patient_id"].map(patients.set_index("patient_id")["death_time"])
    assert not (stays["stop"] > death).any()
    assert (stays["stop"] == death).sum() > 0  # some die in the ICU
    n_per_patient = stays.groupby("patient_id").size()
    assert 1 <= (n_per_patient == 2).sum() <= 0.15 * len(n_per_patient)
    # the census agrees with the stays: the first-dose moment of every patient
    with synthetic_engine.connect() as conn:
        doses = pd.read_sql(
            sa.select(db.doses.c.patient_id, sa.func.min(db.doses.c.time).label("t")).group_by(
                db.doses.c.patient_id
            ),
            conn,
        )
    sample = doses.sort_values("patient_id").iloc[::25]
    for pid, t in zip(sample["patient_id"], pd.to_datetime(sample["t"]), strict=True):
        assert pid in set(repo.icu_census(synthetic_engine, t)["patient_id"]), pid


def test_icu008_served_demo_census_holds_tens_of_patients(any_url: str) -> None:
    """The served synthetic demo (enrolment packed into DEMO_ENROLMENT_DAYS): over the replay
    span (core.time.replay_span) the census holds tens of patients over the sites at every
    discharge or death and on a 6-hour grid, and the busiest site always has patients; over
    the whole enrolment it is never empty. Patients and stays only (fast on both back ends).
    The trial's own 900-day calendar makes no such promise: about 6 patients in at the median,
    and moments with nobody in."""
    tables = io.synthetic_tables(enrolment_days=DEMO_ENROLMENT_DAYS)
    synthetic_engine = db.make_engine(any_url)
    try:
        io.import_tables(
            synthetic_engine, {t: tables[t] for t in ("sites", "patients", "icu_stays")}
        )
        patients = repo.load_patients(synthetic_engine)
        stays = repo.load_icu_stays(synthetic_engine)
        lo, hi = replay_span(stays["start"], stays["stop"])
        first, last = patients["anchor_time"].min(), patients["anchor_time"].max()
        assert first < lo < hi < last
        assert hi - lo > pd.Timedelta(days=60)  # the replay cycles through about 3 months
        # the census only drops at a discharge or a death: check exactly those moments
        drops = pd.concat([stays["stop"], patients["death_time"]]).dropna()
        drops = drops[(drops >= first) & (drops <= last)].drop_duplicates().sort_values()
        grid = pd.date_range(lo, hi, freq="6h")
        counts = {
            at: repo.icu_census(synthetic_engine, at).groupby("site_id").size()
            for at in [*drops, *grid]
        }
        total = pd.Series({at: int(c.sum()) for at, c in counts.items()})
        assert total.min() > 0, total.idxmin()  # never empty during the enrolment
        in_span = total[(total.index >= lo) & (total.index <= hi)]
        busiest = pd.Series({at: int(counts[at].max()) for at in grid})
        print(
            f"\nreplay span {lo} to {hi}: census min/median/max {in_span.min()}/"
            f"{in_span.median():g}/{in_span.max()}; busiest site min/median "
            f"{busiest.min()}/{busiest.median():g}"
        )
        assert in_span.min() >= 20, in_span.idxmin()
        assert in_span.median() >= 40
        assert busiest.min() >= 3
        # pandas twin of the rule at one moment (a test oracle only, never used by the app)
        at = grid[len(grid) // 2]
        alive = patients.set_index("patient_id")["death_time"]
        covering = stays[
            (stays["start"] <= at)
            & (stays["stop"].isna() | (stays["stop"] > at))
            & ~(stays["patient_id"].map(alive) <= at)
        ]
        census = repo.icu_census(synthetic_engine, at)
        assert set(covering["patient_id"]) == set(census["patient_id"])
        assert total.loc[at] == len(covering)
    finally:
        synthetic_engine.dispose()


def test_icu009_replay_span_rule() -> None:
    """core.time.replay_span: first admission + the 75th percentile of stay lengths to the
    95th percentile of admissions; a short dataset: the middle 90 % of admissions."""
    starts = pd.Series(pd.date_range("2024-01-01", periods=101, freq="D"))
    stops = starts + pd.to_timedelta(np.arange(101) % 10, unit="D")  # 0..9 days, p75 = 7
    assert replay_span(starts, stops) == (ts("2024-01-08"), ts("2024-04-05"))
    # still-open stays (no stop) do not count as lengths
    assert replay_span(starts, stops.where(np.arange(101) % 10 < 5)) == (
        ts("2024-01-04"),
        ts("2024-04-05"),
    )
    short = pd.Series(pd.date_range("2024-01-01", periods=21, freq="h"))
    lo, hi = replay_span(short, short + pd.Timedelta(days=5))
    assert (lo, hi) == (ts("2024-01-01 01:00"), ts("2024-01-02 01:00"))  # at least one day
