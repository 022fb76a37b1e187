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
        frames.append(conn.execute(sa.select(*selected).where(*where)).all())
    else:
        for chunk in chunks(list(patient_ids)):
            frames.append(
                conn.execute(sa.select(*selected).where(table.c[column].in_(chunk), *where)).all()
            )
    rows = [r for part in frames for r in part]
    return typed_frame(rows, cols)


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
        else:
            frame[c.name] = frame[c.name].astype(object)
    return frame


def stored_patients(conn: Connection) -> pd.DataFrame:
    """Stored patients with the columns the birth/death checks of validation need."""
    t = db.patients
    return typed_frame(
        conn.execute(
            sa.select(t.c.patient_id, t.c.anchor_time, t.c.age_years, t.c.death_time, t.c.weight_kg)
        ).all(),
        [t.c.patient_id, t.c.anchor_time, t.c.age_years, t.c.death_time, t.c.weight_kg],
    )


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
