"""core.db.bulk_insert on SQLite and PostgreSQL: the stored values (SQLite text format of
SQLAlchemy, NULLs), chunked inserts, and a failed insert that rolls back completely with the
database's own error message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db


@pytest.fixture
def engine(any_url: str) -> Iterator[sa.Engine]:
    eng = db.make_engine(any_url)
    db.ensure_schema(eng)
    with eng.begin() as conn:
        conn.execute(db.sites.insert(), [{"site_id": "S1"}])
    yield eng
    eng.dispose()


def _patients() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3"],
            "site_id": ["S1", "S1", "S1"],
            "anchor_time": pd.to_datetime(
                ["2024-03-01 08:00", "2024-03-01 08:00:00.123456", "1969-12-31 23:59:59.9999995"],
                format="ISO8601",
            ),
            "weight_kg": [70.0, 82.5, 0.1 + 0.2],
            "death_time": pd.to_datetime([None, "2024-03-09 10:00", None]),
            "age_years": [65.0, np.nan, 40.0],
            "mechanical_ventilation": [True, None, False],
            "randomised_at": pd.Series([pd.NaT] * 3, dtype="datetime64[ns]"),
        }
    )


def _episodes(n: int, *, duplicate_at: int | None = None) -> pd.DataFrame:
    start = pd.Timestamp("2024-03-01 08:00") + pd.to_timedelta(np.arange(n), unit="h")
    if duplicate_at is not None:
        start = start.where(np.arange(n) != duplicate_at, start[0])
    return pd.DataFrame(
        {"patient_id": "P1", "kind": "rrt", "start": start, "stop": start + pd.Timedelta(hours=1)}
    )


def test_stored_values_read_back_as_written(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert db.bulk_insert(conn, db.patients, _patients(), chunk_rows=2) == 3
    t = db.patients
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.c.patient_id,
                t.c.anchor_time,
                t.c.weight_kg,
                t.c.death_time,
                t.c.age_years,
                t.c.mechanical_ventilation,
                t.c.randomised_at,
            ).order_by(t.c.patient_id)
        ).all()
    # sub-microsecond digits (as before): SQLite's text drops them (floor), PostgreSQL rounds
    p3_time = (
        datetime(1969, 12, 31, 23, 59, 59, 999999)
        if engine.dialect.name == "sqlite"
        else datetime(1970, 1, 1)
    )
    assert [tuple(r) for r in rows] == [
        ("P1", datetime(2024, 3, 1, 8, 0), 70.0, None, 65.0, True, None),
        (
            "P2",
            datetime(2024, 3, 1, 8, 0, 0, 123456),
            82.5,
            datetime(2024, 3, 9, 10, 0),
            None,
            None,
            None,
        ),
        ("P3", p3_time, 0.1 + 0.2, None, 40.0, False, None),
    ]


def test_sqlite_storage_format_is_sqlalchemys(sqlite_url: str) -> None:
    """The raw SQLite values are those SQLAlchemy itself writes: timestamps as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text, booleans 0/1, NULL for missing values."""
    eng = db.make_engine(sqlite_url)
    db.ensure_schema(eng)
    with eng.begin() as conn:
        conn.execute(db.sites.insert(), [{"site_id": "S1"}])
        db.bulk_insert(conn, db.patients, _patients())
        conn.execute(
            db.patients.insert(),
            [
                {
                    "patient_id": "SA",
                    "site_id": "S1",
                    "anchor_time": datetime(2024, 3, 1, 8, 0, 0, 123456),
                    "weight_kg": 1.0,
                    "mechanical_ventilation": True,
                }
            ],
        )
    with eng.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT patient_id, anchor_time, typeof(anchor_time), death_time, "
            "mechanical_ventilation, typeof(weight_kg), age_years FROM patients "
            "ORDER BY patient_id"
        ).all()
    assert [tuple(r) for r in raw] == [
        ("P1", "2024-03-01 08:00:00.000000", "text", None, 1, "real", 65.0),
        (
            "P2",
            "2024-03-01 08:00:00.123456",
            "text",
            "2024-03-09 10:00:00.000000",
            None,
            "real",
            None,
        ),
        ("P3", "1969-12-31 23:59:59.999999", "text", None, 0, "real", 40.0),
        ("SA", "2024-03-01 08:00:00.123456", "text", None, 1, "real", None),
    ]
    eng.dispose()


def test_a_time_zone_aware_column_stores_its_wall_time(sqlite_url: str) -> None:
    eng = db.make_engine(sqlite_url)
    db.ensure_schema(eng)
    frame = _patients().iloc[:1].copy()
    frame["anchor_time"] = pd.to_datetime(["2024-03-01 08:00"]).tz_localize("Europe/Athens")
    with eng.begin() as conn:
        conn.execute(db.sites.insert(), [{"site_id": "S1"}])
        db.bulk_insert(conn, db.patients, frame)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("SELECT anchor_time FROM patients").scalar_one() == (
            "2024-03-01 08:00:00.000000"
        )
    eng.dispose()


@pytest.mark.parametrize(("n", "chunk_rows"), [(7, 3), (250, 120)])
def test_chunks_insert_every_row_in_frame_order(engine: sa.Engine, n: int, chunk_rows: int) -> None:
    """Chunks of 3 (one row per statement) and of 120 (on SQLite: 100 rows in one multi-row
    INSERT, then 20 one by one)."""
    with engine.begin() as conn:
        db.bulk_insert(conn, db.patients, _patients().iloc[:1])
        assert db.bulk_insert(conn, db.episodes, _episodes(n), chunk_rows=chunk_rows) == n
    t = db.episodes
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.start, t.c.stop).order_by(t.c.id)).all()
    first = datetime(2024, 3, 1, 8)
    assert [tuple(r) for r in rows] == [
        (first + pd.Timedelta(hours=h), first + pd.Timedelta(hours=h + 1)) for h in range(n)
    ]


@pytest.mark.parametrize(
    ("n", "duplicate_at", "chunk_rows"),
    [(7, 5, 2), (250, 150, 120)],
    ids=["one-row-statements", "multi-row-statement"],
)
def test_a_failed_insert_rolls_back_completely_with_its_own_error(
    engine: sa.Engine, n: int, duplicate_at: int, chunk_rows: int
) -> None:
    """A duplicate key in the third (or second) chunk: the database's error (naming the
    constraint) is raised, none of the frame's rows (not even the earlier chunks) is left, the
    rows the transaction wrote before stay and the transaction can go on; a caller's
    rollback then removes everything."""
    unique = (
        "UNIQUE constraint failed: episodes.patient_id, episodes.start, episodes.kind"
        if engine.dialect.name == "sqlite"
        else 'duplicate key value violates unique constraint "ux_episodes_patient_start_kind"'
    )
    t = db.episodes
    with engine.connect() as conn:
        conn.begin()
        db.bulk_insert(conn, db.patients, _patients().iloc[:1])
        with pytest.raises(sa.exc.IntegrityError, match=unique):
            db.bulk_insert(
                conn, db.episodes, _episodes(n, duplicate_at=duplicate_at), chunk_rows=chunk_rows
            )
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(db.patients)).scalar_one() == 1
        assert db.bulk_insert(conn, db.episodes, _episodes(2)) == 2  # the transaction goes on
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() == 2
        conn.rollback()
    assert db.row_counts(engine)["episodes"] == 0
    assert db.row_counts(engine)["patients"] == 0


def test_a_failed_conversion_rolls_back_too(engine: sa.Engine) -> None:
    """A value that cannot be stored (a text in a float column) fails with its own message
    and leaves nothing either."""
    bad = _patients()
    bad["weight_kg"] = bad["weight_kg"].astype(object)
    bad.loc[2, "weight_kg"] = "heavy"
    with engine.begin() as conn:
        with pytest.raises((ValueError, sa.exc.DataError), match="heavy"):
            db.bulk_insert(conn, db.patients, bad, chunk_rows=2)
        assert conn.execute(sa.select(sa.func.count()).select_from(db.patients)).scalar_one() == 0


def test_refusals_name_the_problem(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(KeyError, match="patients has no column 'height'"):
            db.bulk_insert(conn, db.patients, _patients().assign(height=1.8))
        with pytest.raises(ValueError, match="chunk_rows must be at least 1, got 0"):
            db.bulk_insert(conn, db.patients, _patients(), chunk_rows=0)
        assert db.bulk_insert(conn, db.patients, _patients().iloc[:0]) == 0
