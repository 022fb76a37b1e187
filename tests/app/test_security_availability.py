"""Issue 16, availability: on SQLite a sign-in and an audited read complete while an import
holds the database's writer lock (the audit store is a SQLite file of its own,
core.db.audit_engine), and the sign-in throttle is shared by workers and servers (the
database, not a per-process count). docs/security.md "Audit store" and "Sign-in throttle"."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from components.server import security
from core import db
from core.repository import load_audit
from tests.app.test_security_issue16 import PASSWORD, SUMMARY, client_at, login, login_pair

__all__ = ["login_pair"]  # the fixture, used below


def audit_rows(settings, action: str):
    trail = load_audit(db.make_engine(settings.database_url))
    return trail[trail["action"] == action]


def test_secav001_login_and_audited_read_complete_while_an_import_holds_the_lock(login_pair):
    a, _, _, settings = login_pair
    main_file = settings.database_url.removeprefix("sqlite:///")
    engine = db.make_engine(settings.database_url)
    assert db.audit_store_path(engine).name == "copy.audit.sqlite"
    warm = client_at(a, "10.9.0.1")
    login(warm, "stat")
    assert warm.get(SUMMARY).status_code == 200  # computed and cached before the lock
    holding, release = threading.Event(), threading.Event()

    def import_holding_the_lock() -> None:
        # the import's own transaction (core.io.load uses db.writer_transaction) with a write
        with db.writer_transaction(engine) as conn:
            conn.execute(sa.text("UPDATE dataset_version SET updated_at = updated_at"))
            holding.set()
            release.wait(60)

    worker = threading.Thread(target=import_holding_the_lock)
    worker.start()
    try:
        assert holding.wait(10)
        # the lock is real: another writer on the main file is refused after 200 ms
        probe = sqlite3.connect(main_file, timeout=0.2, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            probe.execute("BEGIN IMMEDIATE")
        probe.close()
        before = len(load_audit(engine))
        start = time.perf_counter()
        client = client_at(a, "10.9.0.2")
        login(client, "stat")  # writes a 'login' audit row
        signed_in = time.perf_counter() - start
        start = time.perf_counter()
        resp = client.get("/api/v1/patients?limit=5")  # writes an 'api_patients' row
        read = time.perf_counter() - start
        assert resp.status_code == 200
        assert len(resp.get_json()["patients"]) == 5
        login(client_at(a, "10.9.0.3"), "stat", "wrong", expect=401)  # throttle + audit write
        assert worker.is_alive()  # the import still holds the lock
    finally:
        release.set()
        worker.join(30)
    # a request waiting on the import's lock would wait out SQLite's busy timeout (30 s,
    # core.db) and then fail; well under it, with room for a busy machine
    assert signed_in < 10.0, signed_in
    assert read < 10.0, read
    trail = load_audit(engine)
    new = trail[trail["id"] > trail["id"].max() - (len(trail) - before)]
    assert {"login", "api_patients", "login_failed"} <= set(new["action"])
    assert not db.audit_engine(engine) is engine
    with engine.connect() as conn:  # nothing of the trail in the main file
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == 0


def test_secav002_existing_trail_moves_to_the_audit_store(tmp_path):
    """A database from before the split keeps its trail: ensure_schema moves the rows, the
    chain still verifies, and the next row continues it."""
    from core import audit

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    with engine.begin() as conn:  # rows written into the main file, as before the split
        for i in (1, 2, 3):
            audit.append_audit_row(conn, user=f"u{i}", role="monitor", action="login")
    engine.dispose()
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == 0
    assert load_audit(engine)["user"].tolist() == ["u3", "u2", "u1"]
    assert audit.verify_audit_chain(engine) == []
    assert audit.record_audit(engine, user="u4", role="r", action="a") == 4
    assert audit.verify_audit_chain(engine) == []
    assert (tmp_path / "old.audit.sqlite").exists()


def test_secav003_throttle_is_shared_by_servers(login_pair):
    """Failures on server A and server B add up: 5 + 5 block the user name on both, and the
    block is audited once."""
    a, b, _, settings = login_pair
    for i in range(5):
        login(client_at(a, f"10.7.0.{i}"), "fresh", "wrong", expect=401)
        login(client_at(b, f"10.7.1.{i}"), "fresh", "wrong", expect=401)
    for app in (a, b):
        blocked = login(client_at(app, "10.7.2.1"), "fresh", PASSWORD, expect=429)
        assert 290 <= int(blocked.headers["Retry-After"]) <= 300
    rows = audit_rows(settings, "login_throttled")
    assert list(rows["target"]).count("user:fresh") == 1


def test_secav004_throttle_window_arithmetic_on_a_database():
    throttle = security.LoginThrottle(limit=3, window=60)
    assert throttle.fail(["k", "ip"], now=0.0) == []
    assert throttle.fail(["k"], now=10.0) == []
    assert throttle.retry_after(["k"], now=11.0) == 0
    assert throttle.fail(["k"], now=20.0) == ["k"]  # the third within 60 s
    assert throttle.retry_after(["k"], now=21.0) == 39  # the first leaves the window at 60
    assert throttle.retry_after(["ip"], now=21.0) == 0
    assert throttle.fail(["k"], now=30.0) == []  # still blocked: reported once per burst
    assert throttle.retry_after(["k"], now=61.0) == 9  # 10, 20, 30 remain
    assert throttle.retry_after(["k"], now=91.0) == 0
    throttle.succeed(["k"])
    assert throttle.fail(["k"], now=92.0) == []
