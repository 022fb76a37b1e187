"""Engine creation, versioned schema and dataset version (core.db) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from core import db


def test_db001_make_engine_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "deeper" / "store.sqlite"
    engine = db.make_engine(f"sqlite:///{target}")
    assert target.parent.is_dir()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_db002_plain_path_means_sqlite(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "x.sqlite")
    assert engine.dialect.name == "sqlite"
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert (tmp_path / "x.sqlite").exists()
    engine.dispose()


def test_db003_ensure_schema_creates_every_table_once(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION  # second call: nothing to do
    names = set(sa.inspect(engine).get_table_names())
    assert set(db.metadata.tables) <= names
    counts = db.row_counts(engine)
    assert counts["schema_version"] == 1
    assert counts["dataset_version"] == 1
    assert counts["patients"] == 0
    assert db.dataset_version(engine) == f"0-{db.EMPTY_HASH[:12]}"
    engine.dispose()


def test_db004_foreign_keys_are_enforced(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    row = {
        "patient_id": "NOPE",
        "time": db._utcnow(),
        "variable": "map",
        "value": 70.0,
        "unit": "mmHg",
    }
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(db.observations.insert(), [row])
    assert db.row_counts(engine)["observations"] == 0
    engine.dispose()


def test_db005_newer_schema_is_refused(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            db.schema_version.insert(),
            [{"version": db.SCHEMA_VERSION + 1, "applied_at": db._utcnow()}],
        )
    with pytest.raises(db.SchemaVersionError, match="newer"):
        db.ensure_schema(engine)
    engine.dispose()


def test_db006_older_schema_is_migrated_in_order(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    # pretend the database was written by version SCHEMA_VERSION - 1
    with engine.begin() as conn:
        conn.execute(db.schema_version.delete())
        conn.execute(
            db.schema_version.insert(),
            [{"version": db.SCHEMA_VERSION - 1, "applied_at": db._utcnow()}],
        )
    applied: list[int] = []

    def step(conn: sa.Connection) -> None:
        applied.append(db.SCHEMA_VERSION)
        conn.exec_driver_sql("CREATE TABLE migration_probe (x INTEGER)")

    assert db.ensure_schema(engine, migrations={db.SCHEMA_VERSION: step}) == db.SCHEMA_VERSION
    assert applied == [db.SCHEMA_VERSION]
    assert sa.inspect(engine).has_table("migration_probe")
    with engine.connect() as conn:
        assert db.stored_schema_version(conn) == db.SCHEMA_VERSION
    # a missing migration step is an error, not a silent skip
    with engine.begin() as conn:
        conn.execute(db.schema_version.delete())
        conn.execute(
            db.schema_version.insert(),
            [{"version": db.SCHEMA_VERSION - 1, "applied_at": db._utcnow()}],
        )
    with pytest.raises(db.SchemaVersionError, match="no migration"):
        db.ensure_schema(engine, migrations={})
    engine.dispose()


def test_db007_per_patient_indexes_exist(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    insp = sa.inspect(engine)

    def leading(table: str) -> set[tuple[str, ...]]:
        return {tuple(ix["column_names"][:2]) for ix in insp.get_indexes(table)}

    for table in ("observations", "biomarkers", "doses"):
        assert ("patient_id", "time") in leading(table), table
    assert ("patient_id", "study_day") in leading("daily_sofa")
    assert ("patient_id", "start") in leading("infusions")
    assert ("site_id",) in {tuple(ix["column_names"]) for ix in insp.get_indexes("patients")}
    engine.dispose()


def test_db008_dataset_version_bumps_and_chains(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    v0 = db.dataset_version(engine)
    with db.writer_transaction(engine) as conn:
        v1 = db.bump_dataset_version(conn, "a" * 64)
    with db.writer_transaction(engine) as conn:
        v2 = db.bump_dataset_version(conn, "a" * 64)
    assert v0.startswith("0-")
    assert v1.startswith("1-")
    assert v2.startswith("2-")
    assert len({v0, v1, v2}) == 3
    assert db.dataset_version(engine) == v2
    engine.dispose()


def test_db009_rolled_back_bump_leaves_version(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    before = db.dataset_version(engine)

    def bump_then_crash() -> None:
        with db.writer_transaction(engine) as conn:
            db.bump_dataset_version(conn, "b" * 64)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        bump_then_crash()
    assert db.dataset_version(engine) == before
    engine.dispose()


@pytest.mark.postgres
def test_db010_postgres_schema_and_version(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url)
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert set(db.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    with db.writer_transaction(engine) as conn:
        version = db.bump_dataset_version(conn, "c" * 64)
    assert version.startswith("1-")
    assert db.dataset_version(engine) == version
    with db.writer_transaction(engine) as conn:
        n = db.bulk_insert(
            conn,
            db.sites,
            pd.DataFrame({"site_id": ["SYN-S01", "SYN-S02"], "name": ["one, with comma", None]}),
        )
    assert n == 2
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.sites.c.site_id, db.sites.c.name).order_by("site_id"))
        assert rows.all() == [("SYN-S01", "one, with comma"), ("SYN-S02", None)]
    engine.dispose()


def test_db_migration_v2_doses_unique_by_route(sqlite_url):
    """A version-1 database (doses unique by patient and time) migrates to version 2, where an
    IV and an SC dose at the same minute are both kept (double-dummy dosing)."""
    import sqlalchemy as sa

    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:  # rebuild the version-1 layout of the doses index
        conn.execute(sa.text("DROP INDEX ux_doses_patient_time_route"))
        conn.execute(
            sa.text("CREATE UNIQUE INDEX ux_doses_patient_time ON doses (patient_id, time)")
        )
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(db.schema_version.insert(), [{"version": 1, "applied_at": db._utcnow()}])
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    names = {ix["name"] for ix in sa.inspect(engine).get_indexes("doses")}
    assert "ux_doses_patient_time_route" in names
    assert "ux_doses_patient_time" not in names


def test_db_migration_v3_trial_keys_table_and_write_once_values(sqlite_url):
    """A version-2 database gains ``trial_keys``; a stored key is written once: a second value
    (another deployment's default) never replaces it."""
    import sqlalchemy as sa

    from core import repository as repo

    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE trial_keys"))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(db.schema_version.insert(), [{"version": 2, "applied_at": db._utcnow()}])
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert repo.load_trial_key(engine, "group_a_arm") is None
    assert repo.ensure_trial_key(engine, "group_a_arm", "placebo") == "placebo"
    assert repo.ensure_trial_key(engine, "group_a_arm", "precision") == "placebo"
    assert repo.load_trial_key(engine, "group_a_arm") == "placebo"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_db_migration_v4_icu_stays_table_key_and_census_indexes(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A version-3 database gains ``icu_stays`` (natural key (patient_id, start), indexes on
    (start, stop) and (stop, start) for "who is in the ICU at time t"); stored rows survive."""
    engine = db.make_engine(request.getfixturevalue(f"{backend}_url"))
    db.ensure_schema(engine)
    t0 = pd.Timestamp("2024-03-01 08:00").to_pydatetime()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE icu_stays"))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(db.schema_version.insert(), [{"version": 3, "applied_at": db._utcnow()}])
        conn.execute(db.sites.insert(), [{"site_id": "SYN-S01"}])
        conn.execute(
            db.patients.insert(),
            [{"patient_id": "P1", "site_id": "SYN-S01", "anchor_time": t0, "weight_kg": 70.0}],
        )
    assert not sa.inspect(engine).has_table("icu_stays")
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION  # idempotent
    insp = sa.inspect(engine)
    assert insp.has_table("icu_stays")
    cols = {c["name"]: c for c in insp.get_columns("icu_stays")}
    assert {"patient_id", "unit", "bed", "start", "stop"} <= set(cols)
    assert not cols["start"]["nullable"]
    assert cols["stop"]["nullable"]
    assert cols["bed"]["nullable"]
    indexes = {
        ix["name"]: (tuple(ix["column_names"]), bool(ix["unique"]))
        for ix in insp.get_indexes("icu_stays")
    }
    assert indexes["ux_icu_stays_patient_start"] == (("patient_id", "start"), True)
    assert indexes["ix_icu_stays_start_stop"][0] == ("start", "stop")
    assert indexes["ix_icu_stays_stop_start"][0] == ("stop", "start")
    fks = insp.get_foreign_keys("icu_stays")
    assert [(f["referred_table"], f["constrained_columns"]) for f in fks] == [
        ("patients", ["patient_id"])
    ]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.patients)).scalar() == 1
        versions = [r[0] for r in conn.execute(sa.select(db.schema_version.c.version))]
    assert sorted(versions) == list(range(3, db.SCHEMA_VERSION + 1))
    row = {"patient_id": "P1", "unit": "ICU-A", "start": t0, "stop": None}
    with engine.begin() as conn:
        conn.execute(db.icu_stays.insert(), [row])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(db.icu_stays.insert(), [row])  # same (patient_id, start)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(db.icu_stays.insert(), [{**row, "patient_id": "NOPE"}])
    engine.dispose()
