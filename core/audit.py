"""The tamper-evident audit trail: one writer for the web layer and the command line, and the
verification of the hash chain.

Every row of ``audit_log`` carries ``prev_hash`` (the ``row_hash`` of the row before it, or
:data:`GENESIS_HASH` for the first row) and ``row_hash`` = SHA-256 of :func:`canonical_row`,
a JSON array of (id, time as UTC ISO 8601 with ``Z``, user, role, action, target, detail,
prev_hash). Ids are consecutive: the writer takes id and previous hash from the one-row
``audit_head`` table under a lock, inside the insert's transaction, so two workers writing
at once never fork the chain (PostgreSQL: ``SELECT ... FOR UPDATE`` on the head row, a row
lock that never waits for an import's writer lock; SQLite: ``BEGIN IMMEDIATE``). The head
also records the last id and hash, so deleting the newest rows is detected too.

:func:`verify_audit_chain` reports an edited row (its hash no longer matches its content), a
deleted or replaced row (the next row's ``prev_hash`` does not match), a gap in the ids and a
head that does not match the last row. Rows written before schema version 5 were hashed once
by the migration, in id order (``audit_head.migrated_through``); ids among them may have gaps.

Where the rows live: :func:`core.db.audit_engine` (for a SQLite file, a second SQLite file
beside it, so that audit writes never wait behind an import's writer lock; PostgreSQL: the
same database). Every function here takes the trial database's engine and routes to it.

Throttled actions (failed logins): :func:`record_audit_throttled` writes at most one row per
key (user + client) and window; attempts in between are counted in ``audit_throttle`` and the
next row carries the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.chain import GENESIS_HASH, canonical_row, row_hash, utc_iso

#: default window of throttled actions (one row per key and minute)
THROTTLE_WINDOW: Final = timedelta(minutes=1)
#: rows read at a time by the verification
_VERIFY_BATCH: Final = 5000


@dataclass(frozen=True)
class AuditProblem:
    """One finding of :func:`verify_audit_chain`: the row it concerns and what is wrong."""

    row_id: int | None
    kind: str  # edited | broken_link | gap | missing_hash | head
    message: str

    def __str__(self) -> str:
        return self.message


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(value: datetime | None) -> datetime:
    if value is None:
        return _utcnow()
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _audit_transaction(engine: Engine) -> Any:
    """A transaction for one audit write: SQLite takes the write lock at BEGIN."""
    if db.is_sqlite(engine):
        return engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    return engine.connect()


def _locked_head(conn: Connection) -> tuple[int, str]:
    """(last id, last hash) of the chain, locking the head row until the transaction ends."""
    h = db.audit_head
    stmt = sa.select(h.c.last_id, h.c.last_hash).where(h.c.id == 1)
    if not db.is_sqlite(conn):
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is not None:
        return int(row.last_id), str(row.last_hash)
    # no head yet (a database created without it): start it from the last stored row
    last = conn.execute(
        sa.select(db.audit_log.c.id, db.audit_log.c.row_hash)
        .order_by(db.audit_log.c.id.desc())
        .limit(1)
    ).first()
    last_id, last_hash = (0, GENESIS_HASH) if last is None else (int(last.id), last.row_hash)
    conn.execute(
        h.insert(),
        [{"id": 1, "last_id": last_id, "last_hash": last_hash, "migrated_through": last_id}],
    )
    if not db.is_sqlite(conn):
        conn.execute(sa.select(h.c.id).where(h.c.id == 1).with_for_update())
    return last_id, last_hash


def append_audit_row(
    conn: Connection,
    *,
    user: str,
    role: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    now: datetime | None = None,
) -> int:
    """Append one chained row inside the caller's transaction (which must be able to write
    ``audit_head``); returns the new id."""
    time = _naive_utc(now)
    last_id, prev = _locked_head(conn)
    new_id = last_id + 1
    user, role, action = str(user)[:100], str(role)[:40], str(action)[:60]
    target = None if target is None else str(target)[:200]
    digest = row_hash(new_id, time, user, role, action, target, detail, prev)
    conn.execute(
        db.audit_log.insert(),
        [
            {
                "id": new_id,
                "time": time,
                "user": user,
                "role": role,
                "action": action,
                "target": target,
                "detail": detail,
                "prev_hash": prev,
                "row_hash": digest,
            }
        ],
    )
    conn.execute(
        db.audit_head.update()
        .where(db.audit_head.c.id == 1)
        .values(last_id=new_id, last_hash=digest)
    )
    return new_id


def record_audit(
    engine: Engine,
    *,
    user: str,
    role: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    now: datetime | None = None,
) -> int:
    """Append one audit-trail row in its own short transaction; returns its id.

    The one writer of the trail: the web layer (:mod:`components.server.audit`) and the
    command line both call it.
    """
    with _audit_transaction(db.audit_engine(engine)) as conn, conn.begin():
        return append_audit_row(
            conn, user=user, role=role, action=action, target=target, detail=detail, now=now
        )


def record_audit_throttled(
    engine: Engine,
    *,
    key: str,
    user: str,
    role: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    now: datetime | None = None,
    window: timedelta = THROTTLE_WINDOW,
) -> int | None:
    """At most one row per ``key`` and ``window``: the first attempt of a window writes a row
    whose detail ends with ``attempts=N`` (this one plus those counted since the previous row
    of the key); later attempts inside the window only increment the count. Returns the new
    row's id, or None when the attempt was counted without a row."""
    time = _naive_utc(now)
    t = db.audit_throttle
    with _audit_transaction(db.audit_engine(engine)) as conn, conn.begin():
        # the head lock serialises throttled writers as well (no double row per window)
        _locked_head(conn)
        state = conn.execute(
            sa.select(t.c.window_start, t.c.pending).where(t.c.key == key[:400])
        ).first()
        if state is not None and time - state.window_start < window:
            conn.execute(t.update().where(t.c.key == key[:400]).values(pending=t.c.pending + 1))
            return None
        attempts = 1 + (int(state.pending) if state is not None else 0)
        text = f"attempts={attempts}" if not detail else f"{detail}; attempts={attempts}"
        new_id = append_audit_row(
            conn, user=user, role=role, action=action, target=target, detail=text, now=time
        )
        if state is None:
            conn.execute(t.insert(), [{"key": key[:400], "window_start": time, "pending": 0}])
        else:
            conn.execute(
                t.update().where(t.c.key == key[:400]).values(window_start=time, pending=0)
            )
        return new_id


@dataclass(frozen=True)
class ChainReport:
    """Result of :func:`verify_audit_chain` with the row count."""

    n_rows: int
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_audit_chain(engine: Engine | Connection) -> ChainReport:
    """Verify the whole chain; see :func:`verify_audit_chain`."""
    store = db.audit_engine(engine)
    if isinstance(engine, Connection) and store is engine.engine:
        return _check(engine)
    with store.connect() as conn:
        return _check(conn)


def verify_audit_chain(engine: Engine | Connection) -> list[AuditProblem]:
    """Problems of the audit trail's hash chain, first broken row first (empty: intact).

    - ``edited``: a row's content no longer matches its ``row_hash``;
    - ``broken_link``: a row's ``prev_hash`` is not the previous row's hash (the row before
      it was deleted, replaced or re-hashed);
    - ``gap``: ids missing between two rows (rows deleted);
    - ``missing_hash``: a row without hashes (inserted around the writer);
    - ``head``: the last row is not the one the chain head records (newest rows deleted).
    """
    return list(check_audit_chain(engine).problems)


def _check(conn: Connection) -> ChainReport:
    t, h = db.audit_log, db.audit_head
    head = conn.execute(
        sa.select(h.c.last_id, h.c.last_hash, h.c.migrated_through).where(h.c.id == 1)
    ).first()
    migrated_through = int(head.migrated_through) if head is not None else 0
    problems: list[AuditProblem] = []
    prev_id: int | None = None
    prev_hash = GENESIS_HASH
    n = 0
    cols = (t.c.id, t.c.time, t.c.user, t.c.role, t.c.action, t.c.target, t.c.detail)
    after = -1
    while True:
        batch = conn.execute(
            sa.select(*cols, t.c.prev_hash, t.c.row_hash)
            .where(t.c.id > after)
            .order_by(t.c.id)
            .limit(_VERIFY_BATCH)
        ).all()
        if not batch:
            break
        for r in batch:
            n += 1
            rid = int(r.id)
            if r.row_hash is None or r.prev_hash is None:
                problems.append(
                    AuditProblem(
                        rid, "missing_hash", f"row {rid}: no hash (written around the chain)"
                    )
                )
            else:
                expected = row_hash(
                    rid, r.time, r.user, r.role, r.action, r.target, r.detail, r.prev_hash
                )
                if expected != r.row_hash:
                    problems.append(
                        AuditProblem(
                            rid, "edited", f"row {rid}: content does not match its hash (edited)"
                        )
                    )
                if r.prev_hash != prev_hash:
                    before = "the start of the trail" if prev_id is None else f"row {prev_id}"
                    problems.append(
                        AuditProblem(
                            rid,
                            "broken_link",
                            f"row {rid}: prev_hash does not match {before} "
                            "(a row before it was deleted, replaced or edited)",
                        )
                    )
            expected_id = 1 if prev_id is None else prev_id + 1
            if rid != expected_id and rid > migrated_through + 1:
                first_missing = expected_id if prev_id is not None else 1
                problems.append(
                    AuditProblem(
                        rid,
                        "gap",
                        f"row {rid}: rows {first_missing}..{rid - 1} are missing (deleted)",
                    )
                )
            prev_id, prev_hash = rid, r.row_hash or ""
        after = int(batch[-1].id)
    if head is not None and (head.last_id != (prev_id or 0) or head.last_hash != prev_hash):
        if prev_id is None or head.last_id > prev_id:
            msg = (
                f"the chain head records row {head.last_id} but the last row is {prev_id}: "
                "the newest rows were deleted"
            )
        else:
            msg = f"row {prev_id}: the chain head records row {head.last_id} with another hash"
        problems.append(AuditProblem(head.last_id, "head", msg))
    problems.sort(key=lambda p: (p.row_id is None, p.row_id or 0))
    return ChainReport(n_rows=n, problems=tuple(problems))


__all__ = [
    "GENESIS_HASH",
    "AuditProblem",
    "ChainReport",
    "canonical_row",
    "check_audit_chain",
    "record_audit",
    "record_audit_throttled",
    "row_hash",
    "utc_iso",
    "verify_audit_chain",
]
