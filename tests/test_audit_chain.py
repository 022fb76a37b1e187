"""The audit trail's hash chain (issue 16): every row chained by SHA-256, an edit, a deletion
or a gap detected and named, migration 5 hashing stored rows, concurrent writers that never
fork the chain, failed-login rows throttled per key and minute, and the CLI's verification and
export audit. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import audit, db
from core import repository as repo
from core.chain import GENESIS_HASH
from core.io.cli import main as cli_main

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456)


@pytest.fixture
def engines() -> Iterator[list[sa.Engine]]:
    """Engines made by the test, disposed afterwards (no connection left open)."""
    made: list[sa.Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _make(url: str, made: list[sa.Engine]) -> sa.Engine:
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    made.append(engine)
    return engine


def _write(engine: sa.Engine, n: int) -> list[int]:
    return [
        audit.record_audit(
            engine,
            user=f"user{i}",
            role="monitor",
            action="export",
            target=f"file-{i}.csv",
            detail=f"filters: row {i}",
            now=T0 + timedelta(seconds=i),
        )
        for i in range(1, n + 1)
    ]


def test_audit001_row_hash_is_sha256_of_the_canonical_row(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    ids = _write(engine, 2)
    assert ids == [1, 2]
    trail = repo.load_audit(engine).sort_values("id")
    first, second = trail.iloc[0], trail.iloc[1]
    payload = [
        1,
        "2026-03-01T08:00:01.123456Z",
        "user1",
        "monitor",
        "export",
        "file-1.csv",
        "filters: row 1",
        GENESIS_HASH,
    ]
    expected = hashlib.sha256(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    assert first["prev_hash"] == GENESIS_HASH
    assert first["row_hash"] == expected
    assert second["prev_hash"] == expected
    assert str(first["time"]) == "2026-03-01 08:00:01.123456"  # stored as UTC
    report = audit.check_audit_chain(engine)
    assert (report.n_rows, report.problems, report.ok) == (2, (), True)


def test_audit002_aware_times_are_stored_in_utc(engines: list[sa.Engine], sqlite_url: str) -> None:
    engine = _make(sqlite_url, engines)
    cet = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Athens"))
    audit.record_audit(engine, user="u", role="r", action="a", now=cet)
    assert str(repo.load_audit(engine)["time"].iloc[0]) == "2026-03-01 09:30:00"


def test_audit003_intact_chain_verifies(engines: list[sa.Engine], any_url: str) -> None:
    engine = _make(any_url, engines)
    _write(engine, 5)
    assert audit.verify_audit_chain(engine) == []


def test_audit004_edited_detail_is_detected_naming_the_row(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    _write(engine, 5)
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(sa.text("UPDATE audit_log SET detail = 'nothing to see' WHERE id = 3"))
    problems = audit.verify_audit_chain(engine)
    assert [(p.row_id, p.kind) for p in problems] == [(3, "edited")]
    assert str(problems[0]) == "row 3: content does not match its hash (edited)"


def test_audit005_edit_with_recomputed_hash_breaks_the_next_link(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    _write(engine, 4)
    with db.audit_engine(engine).begin() as conn:  # the audit store
        row = conn.execute(sa.select(db.audit_log).where(db.audit_log.c.id == 2)).one()
        forged = audit.row_hash(
            2, row.time, "mallory", row.role, row.action, row.target, row.detail, row.prev_hash
        )
        conn.execute(
            db.audit_log.update()
            .where(db.audit_log.c.id == 2)
            .values(user="mallory", row_hash=forged)
        )
    problems = audit.verify_audit_chain(engine)
    assert [(p.row_id, p.kind) for p in problems] == [(3, "broken_link")]
    assert "row 3: prev_hash does not match row 2" in str(problems[0])


def test_audit006_deleted_middle_row_is_detected(engines: list[sa.Engine], any_url: str) -> None:
    engine = _make(any_url, engines)
    _write(engine, 5)
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = 3"))
    problems = audit.verify_audit_chain(engine)
    assert [(p.row_id, p.kind) for p in problems] == [(4, "broken_link"), (4, "gap")]
    assert str(problems[1]) == "row 4: rows 3..3 are missing (deleted)"


def test_audit007_deleted_newest_row_is_detected_by_the_head(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    _write(engine, 3)
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = 3"))
    problems = audit.verify_audit_chain(engine)
    assert [(p.row_id, p.kind) for p in problems] == [(3, "head")]
    # the next write continues from the head: the deletion stays visible as a gap
    audit.record_audit(engine, user="u", role="r", action="a")
    problems = audit.verify_audit_chain(engine)
    assert [(p.row_id, p.kind) for p in problems] == [(4, "broken_link"), (4, "gap")]


def test_audit008_row_inserted_around_the_writer_is_detected(
    engines: list[sa.Engine], sqlite_url: str
) -> None:
    engine = _make(sqlite_url, engines)
    _write(engine, 2)
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (id, time, user, role, action) "
                "VALUES (3, '2026-03-01 09:00:00.000000', 'x', 'y', 'z')"
            )
        )
    kinds = {(p.row_id, p.kind) for p in audit.verify_audit_chain(engine)}
    assert (3, "missing_hash") in kinds
    assert (2, "head") in kinds  # the head still records row 2 as the last one


def test_audit009_migration_v5_hashes_stored_rows_in_id_order(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    with engine.begin() as conn:  # a version-4 trail: no hash columns, no head, an id gap
        conn.execute(sa.text("DROP TABLE audit_head"))
        conn.execute(sa.text("DROP TABLE audit_throttle"))
        conn.execute(sa.text("ALTER TABLE audit_log DROP COLUMN prev_hash"))
        conn.execute(sa.text("ALTER TABLE audit_log DROP COLUMN row_hash"))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(db.schema_version.insert(), [{"version": 4, "applied_at": db._utcnow()}])
        for i in (1, 2, 5):
            conn.execute(
                sa.text(
                    'INSERT INTO audit_log (id, time, "user", role, action, target) '
                    "VALUES (:i, :t, 'old', 'monitor', 'login', :g)"
                ),
                {"i": i, "t": T0 + timedelta(minutes=i), "g": f"t{i}"},
            )
    assert db.ensure_schema(engine) == db.SCHEMA_VERSION
    trail = repo.load_audit(engine).sort_values("id")
    assert trail["id"].tolist() == [1, 2, 5]
    assert trail["prev_hash"].iloc[0] == GENESIS_HASH
    assert trail["prev_hash"].tolist()[1:] == trail["row_hash"].tolist()[:-1]
    assert audit.verify_audit_chain(engine) == []  # gaps before the migration are history
    assert audit.record_audit(engine, user="new", role="r", action="a") == 6
    assert audit.verify_audit_chain(engine) == []
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(sa.text("UPDATE audit_log SET target = 'x' WHERE id = 2"))
    assert [(p.row_id, p.kind) for p in audit.verify_audit_chain(engine)] == [(2, "edited")]


def test_audit010_concurrent_writers_never_fork_the_chain(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    n_threads, per_thread = 6, 15
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(per_thread):
                audit.record_audit(engine, user=f"w{k}", role="r", action="a", target=str(i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    trail = repo.load_audit(engine).sort_values("id")
    assert trail["id"].tolist() == list(range(1, n_threads * per_thread + 1))
    assert trail["prev_hash"].nunique() == n_threads * per_thread  # no two rows share a parent
    assert audit.verify_audit_chain(engine) == []


def test_audit011_throttled_rows_one_per_key_and_window_with_count(
    engines: list[sa.Engine], any_url: str
) -> None:
    engine = _make(any_url, engines)
    kw = {"user": "anonymous", "role": "none", "action": "login_failed", "target": "stat"}
    key = "login_failed|stat|10.0.0.1"
    ids = [
        audit.record_audit_throttled(
            engine, key=key, detail="client=10.0.0.1", now=T0 + timedelta(seconds=s), **kw
        )
        for s in (0, 5, 10, 59)
    ]
    assert ids == [1, None, None, None]
    other = audit.record_audit_throttled(
        engine, key="login_failed|stat|10.0.0.2", detail="client=10.0.0.2", now=T0, **kw
    )
    assert other == 2
    later = audit.record_audit_throttled(
        engine, key=key, detail="client=10.0.0.1", now=T0 + timedelta(seconds=61), **kw
    )
    assert later == 3
    trail = repo.load_audit(engine).sort_values("id")
    assert trail["detail"].tolist() == [
        "client=10.0.0.1; attempts=1",
        "client=10.0.0.2; attempts=1",
        "client=10.0.0.1; attempts=4",  # this one and the 3 counted since row 1
    ]
    assert audit.verify_audit_chain(engine) == []


def test_audit012_cli_audit_verify_and_export_audited(
    engines: list[sa.Engine], sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.io import build_demo_database

    engine = _make(sqlite_url, engines)
    build_demo_database(engine, seed=7, n_randomised=12)
    assert cli_main(["audit-verify", "--database-url", sqlite_url]) == 0
    assert "chain verified" in capsys.readouterr().out
    out_dir = tmp_path / "adam"
    assert cli_main(["export", str(out_dir), "--database-url", sqlite_url, "--user", "ana"]) == 0
    capsys.readouterr()
    row = repo.load_audit(engine).iloc[0]
    assert (row["user"], row["role"], row["action"], row["target"]) == (
        "ana",
        "cli",
        "export",
        str(out_dir),
    )
    assert row["detail"].startswith("ADaM export, blinded (no ARM/ARMCD): ")
    assert "adsl.csv" in row["detail"].lower()
    assert cli_main(["export", str(out_dir), "--with-arm", "--database-url", sqlite_url]) == 0
    capsys.readouterr()
    assert repo.load_audit(engine).iloc[0]["detail"].startswith("ADaM export, unblinded")
    n = len(repo.load_audit(engine))
    with db.audit_engine(engine).begin() as conn:  # the audit store
        conn.execute(sa.text("UPDATE audit_log SET detail = 'x' WHERE id = 1"))
    assert cli_main(["audit-verify", "--database-url", sqlite_url]) == 1
    out = capsys.readouterr().out
    assert "row 1: content does not match its hash (edited)" in out
    assert f"{n} rows" in out
