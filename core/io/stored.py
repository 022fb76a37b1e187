"""Stored rows read back as typed frames (inside the caller's connection or transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db


def chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most ``size`` values (bounded ``IN (...)`` lists)."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def read_table(
    conn: Connection,
    table: sa.Table,
    *,
    patient_ids: Sequence[str] | None = None,
    column: str = "patient_id",
    between: tuple[str, Any, Any] | None = None,
) -> pd.DataFrame:
    """Rows of a table (optionally for some patients, and with ``between = (column, low,
    high)`` only rows whose column lies in ``[low, high]``) as a DataFrame with typed
    columns."""
    cols = [c for c in table.columns if c.name != "id"]
    # date-times are fetched as stored (SQLite: ISO text) and parsed by pandas in one
    # vectorised call: SQLAlchemy's per-value DateTime processing was most of a read
    selected = [
        sa.type_coerce(c, sa.String).label(c.name) if isinstance(c.type, sa.DateTime) else c
        for c in cols
    ]
    where = []
    if between is not None:
        name, low, high = between
        where.append(table.c[name].between(low, high))
    frames = []
    if patient_ids is None:
        frames.append(_raw_rows(conn, sa.select(*selected).where(*where)))
    else:
        for chunk in chunks(list(patient_ids)):
            frames.append(
                _raw_rows(conn, sa.select(*selected).where(table.c[column].in_(chunk), *where))
            )
    rows = frames[0] if len(frames) == 1 else [r for part in frames for r in part]
    return typed_frame(rows, cols)


def _raw_rows(conn: Connection, stmt: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The driver's row tuples of a select (parameters bound by SQLAlchemy as usual).

    Fetched from the DBAPI cursor: SQLAlchemy's ``Row`` objects, built and then taken apart
    again, were about half of reading a patient's history in an append import (docs/ward.md,
    performance). Values are as the driver returns them; :func:`typed_frame` types them
    (booleans included: SQLite returns 0/1)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def typed_frame(rows: Sequence[Any], cols: Sequence[sa.Column[Any]]) -> pd.DataFrame:
    """Result rows as a DataFrame typed by the SQLAlchemy column types."""
    names = [c.name for c in cols]
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
    for c in cols:
        if isinstance(c.type, sa.DateTime):
            frame[c.name] = pd.to_datetime(frame[c.name], format="ISO8601").astype("datetime64[ns]")
        elif isinstance(c.type, sa.Float):
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("float64")
        elif isinstance(c.type, sa.Integer):
            if frame[c.name].isna().any():
                frame[c.name] = frame[c.name].astype("Int64")
            else:
                frame[c.name] = frame[c.name].astype("int64")
        elif isinstance(c.type, sa.Boolean):
            # Python bool or None, whatever the driver returns (SQLite: 0 / 1)
            frame[c.name] = pd.Series(
                [None if pd.isna(v) else bool(v) for v in frame[c.name].tolist()],
                index=frame.index,
                dtype=object,
            )
        else:
            frame[c.name] = frame[c.name].astype(object)
    return frame


def stored_patients(conn: Connection, patient_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Stored patients with the columns the birth/death checks of validation need (all, or
    only ``patient_ids``: a batch of observations needs its own patients, not the cohort)."""
    t = db.patients
    cols = [t.c.patient_id, t.c.anchor_time, t.c.age_years, t.c.death_time, t.c.weight_kg]
    if patient_ids is None:
        return typed_frame(_raw_rows(conn, sa.select(*cols)), cols)
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(list(patient_ids)):
        rows.extend(_raw_rows(conn, sa.select(*cols).where(t.c.patient_id.in_(chunk))))
    return typed_frame(rows, cols)


def stored_withdrawn_ids(conn: Connection) -> set[str]:
    """Patients stored in ``disposition`` as withdrawn with data removal."""
    t = db.disposition
    stmt = sa.select(t.c.patient_id).where(
        t.c.withdrawn_with_data_removal.is_(True), t.c.patient_id.is_not(None)
    )
    return {r[0] for r in conn.execute(stmt)}


def has_data(engine: Engine) -> bool:
    """True when at least one patient is stored (the schema is created if needed)."""
    db.ensure_schema(engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(db.patients.c.patient_id).limit(1)).first() is not None
