"""Read functions used by the UI (and the audit trail writer).

The randomised arm is returned **only** by :func:`load_arms`; every other function reads
tables that do not hold it, so a blinded code path that never calls ``load_arms`` cannot leak
it. Per-patient reads filter on ``patient_id`` first and use the (patient_id, time) /
(patient_id, study_day) indexes of :mod:`core.db`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import audit, db
from core.exceptions import UnknownPatientError
from core.rules import SofaRules
from core.time import study_day
from core.units import stored_scored_rates
from core.vocab import ORGANS, SOFA_TOTAL

_CHUNK = 5000


#: rows fetched and typed at a time: a load never holds more than this many raw DB rows as
#: Python objects (a 100,000-patient cohort has ~1.7 M daily rows)
_STREAM_ROWS = 50_000


#: the range of datetime64[ns] (outside it pandas raises, as before)
_NS_MIN: Final = np.datetime64(pd.Timestamp.min.ceil("us"), "us")
_NS_MAX: Final = np.datetime64(pd.Timestamp.max.floor("us"), "us")


def _times(values: pd.Series) -> pd.Series:
    """Stored date-times as ``datetime64[ns]``: SQLite's ISO text parsed by NumPy in one call
    (several times faster than ``pandas.to_datetime`` on a census-sized column), driver
    date-times (PostgreSQL) and anything NumPy does not read by pandas."""
    first = values.dropna().head(1).tolist()
    if first and isinstance(first[0], str):
        try:
            parsed = np.array(values.to_numpy(dtype=object), dtype="datetime64[us]")
            ok = parsed[~np.isnat(parsed)]
            if ok.size == 0 or (ok.min() >= _NS_MIN and ok.max() <= _NS_MAX):
                return pd.Series(parsed.astype("datetime64[ns]"), index=values.index)
        except ValueError:
            pass
        return pd.to_datetime(values, format="ISO8601").astype("datetime64[ns]")
    return pd.to_datetime(values).astype("datetime64[ns]")


def _typed(frame: pd.DataFrame, cols: Sequence[sa.ColumnElement[Any]]) -> pd.DataFrame:
    """Type the columns of a raw frame from the SQLAlchemy column types."""
    for c in cols:
        typ = c.type
        if isinstance(typ, sa.DateTime):
            frame[c.name] = _times(frame[c.name])
        elif isinstance(typ, sa.Float):
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("float64")
        elif isinstance(typ, sa.Integer):
            frame[c.name] = (
                frame[c.name].astype("Int64")
                if frame[c.name].isna().any()
                else frame[c.name].astype("int64")
            )
        elif isinstance(typ, sa.Boolean):
            # Python bool or None whatever the driver returns (SQLite: 0 / 1)
            s = frame[c.name]
            frame[c.name] = (
                pd.Series(
                    [None if pd.isna(v) else bool(v) for v in s.tolist()],
                    index=s.index,
                    dtype=object,
                )
                if s.isna().any()
                else s.astype(bool)
            )
        else:
            frame[c.name] = frame[c.name].astype(object)
    return frame


def _chunks(conn: Connection, stmt: sa.Select[Any], names: Sequence[str]):
    """Raw frames of at most :data:`_STREAM_ROWS` rows (a server-side cursor on PostgreSQL).

    Rows come from the DBAPI cursor as the driver returns them (SQLite: date-times as ISO
    text, booleans as 0 / 1), typed column-wise by :func:`_typed`: SQLAlchemy's per-value
    result processing and ``Row`` objects were most of reading a board's raw window
    (docs/ward.md, performance)."""
    if conn.dialect.name != "sqlite":
        # a server-side cursor: SQLAlchemy buffers rows of its own (the first one at least)
        result = conn.execution_options(stream_results=True).execute(stmt)
        for part in result.partitions(_STREAM_ROWS):
            yield pd.DataFrame.from_records([tuple(r) for r in part], columns=list(names))
        return
    # SQLite: no server-side cursor, and without stream_results no row is buffered ahead
    result = conn.execute(stmt)
    try:
        cursor = result.cursor
        while rows := cursor.fetchmany(_STREAM_ROWS):
            yield pd.DataFrame.from_records(rows, columns=list(names))
    finally:
        result.close()


def _frame(
    conn: Connection, stmt: sa.Select[Any], cols: Sequence[sa.ColumnElement[Any]]
) -> pd.DataFrame:
    """Execute a select and type its columns from the SQLAlchemy column types (streamed)."""
    names = [c.name for c in cols]
    parts = [_typed(chunk, cols) for chunk in _chunks(conn, stmt, names)]
    if not parts:
        return _typed(pd.DataFrame({n: [] for n in names}), cols)
    if len(parts) == 1:
        return parts[0]
    # a Boolean chunk without NULLs is bool, one with NULLs object (None kept): concat gives
    # object with None, as a single chunk would
    return pd.concat(parts, ignore_index=True)


def _select(
    engine: Engine,
    table: sa.Table,
    *,
    where: Any = None,
    in_column: str | None = None,
    in_values: Iterable[Any] | None = None,
    order_by: Sequence[str] = (),
    exclude: Sequence[str] = ("id",),
) -> pd.DataFrame:
    cols = [c for c in table.columns if c.name not in exclude]
    base = sa.select(*cols)
    if where is not None:
        base = base.where(where)
    if order_by:
        base = base.order_by(*(table.c[o] for o in order_by))
    with engine.connect() as conn:
        if in_column is None or in_values is None:
            return _frame(conn, base, cols)
        values = list(dict.fromkeys(in_values))
        parts = [
            _frame(conn, base.where(table.c[in_column].in_(values[i : i + _CHUNK])), cols)
            for i in range(0, len(values), _CHUNK)
        ] or [_frame(conn, base.where(sa.false()), cols)]
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if order_by and len(parts) > 1:
        out = out.sort_values(list(order_by), kind="stable", ignore_index=True)
    return out


def load_sites(engine: Engine) -> pd.DataFrame:
    """Sites: ``site_id, name``."""
    return _select(engine, db.sites, order_by=("site_id",))


def load_patients(
    engine: Engine,
    *,
    site_ids: Iterable[str] | None = None,
    patient_ids: Iterable[str] | None = None,
    rules: SofaRules = SofaRules(),
) -> pd.DataFrame:
    """Patients with baseline, death and the baseline immune phenotype inputs (no arm).

    Parameters
    ----------
    engine
        Database.
    site_ids
        Restrict to these sites (None = all).
    patient_ids
        Restrict to these patients (None = all; with ``site_ids`` the patients of both): the
        ward board at a clock time reads its census only, not the whole cohort (docs/ward.md,
        performance).

    Returns
    -------
    DataFrame
        The ``patients`` columns plus ``death_study_day`` (study day of death by
        ``rules.study_day``, :func:`core.time.study_day`; <NA> when alive),
        ``trial_participant`` (randomised: ``randomised_at`` set; the others are ward
        patients only, their day 1 anchored at ICU admission) and ``ferritin_ng_ml`` /
        ``hla_dr_ab_per_cell`` from the first biomarker sample of the patient.
    """
    if patient_ids is not None:
        where = None if site_ids is None else db.patients.c.site_id.in_(list(site_ids))
        pts = _select(
            engine,
            db.patients,
            where=where,
            in_column="patient_id",
            in_values=patient_ids,
            order_by=("patient_id",),
        )
    else:
        pts = _select(
            engine,
            db.patients,
            in_column="site_id" if site_ids is not None else None,
            in_values=site_ids,
            order_by=("patient_id",),
        )
    pts["death_study_day"] = study_day(pts["death_time"], pts["anchor_time"], rules=rules)
    # trial participants are randomised; the others (ICU patients from a hospital feed) are
    # ward patients only
    pts["trial_participant"] = pts["randomised_at"].notna()
    subset = site_ids is not None or patient_ids is not None
    bio = _first_biomarkers(engine, pts["patient_id"].tolist() if subset else None)
    out = pts.merge(bio, on="patient_id", how="left")
    for c in ("ferritin_ng_ml", "hla_dr_ab_per_cell"):
        out[c] = out[c].astype("float64")
    return out


def _first_biomarkers(engine: Engine, patient_ids: list[str] | None) -> pd.DataFrame:
    """The first biomarker sample per patient (of some patients: those only are read, by the
    ``(patient_id, time)`` index; a few hundred patients are not a scan of every sample)."""
    t = db.biomarkers
    cols = [t.c.patient_id, t.c.ferritin_ng_ml, t.c.hla_dr_ab_per_cell]

    def stmt(ids: list[str] | None) -> sa.Select[Any]:
        first = sa.select(t.c.patient_id, sa.func.min(t.c.time).label("first_time"))
        if ids is not None:
            first = first.where(t.c.patient_id.in_(ids))
        sub = first.group_by(t.c.patient_id).subquery()
        return sa.select(*cols).join(
            sub, sa.and_(sub.c.patient_id == t.c.patient_id, sub.c.first_time == t.c.time)
        )

    with engine.connect() as conn:
        if patient_ids is None:
            return _frame(conn, stmt(None), cols)
        ids = list(dict.fromkeys(patient_ids))
        parts = [_frame(conn, stmt(ids[i : i + _CHUNK]), cols) for i in range(0, len(ids), _CHUNK)]
    if not parts:
        with engine.connect() as conn:
            return _frame(conn, stmt([]), cols)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def load_arms(engine: Engine) -> pd.DataFrame:
    """Randomised arm per patient: ``patient_id, arm`` (unblinded code paths only)."""
    t = db.randomisation
    cols = [t.c.patient_id, t.c.arm]
    with engine.connect() as conn:
        return _frame(conn, sa.select(*cols).order_by(t.c.patient_id), cols)


def load_trial_key(engine: Engine, name: str) -> str | None:
    """A stored per-trial key (``db.trial_keys``), or None when it was never set."""
    t = db.trial_keys
    with engine.connect() as conn:
        return conn.execute(sa.select(t.c.value).where(t.c.name == name)).scalar_one_or_none()


def ensure_trial_key(engine: Engine, name: str, value: str) -> str:
    """Store ``value`` under ``name`` unless a value is stored already; return the stored one.

    Write-once: concurrent first calls (several workers starting) agree on one value, and a
    later call with another value never changes it.
    """
    stored = load_trial_key(engine, name)
    if stored is not None:
        return stored
    t = db.trial_keys
    try:
        with engine.begin() as conn:
            conn.execute(
                t.insert().values(
                    name=name, value=value, created_at=datetime.now(UTC).replace(tzinfo=None)
                )
            )
    except sa.exc.IntegrityError:
        pass  # another process stored it first: its value wins
    stored = load_trial_key(engine, name)
    assert stored is not None
    return stored


def load_daily_sofa(
    engine: Engine,
    *,
    rules_key: str,
    patient_ids: Iterable[str] | None = None,
    site_id: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Stored daily SOFA under one rule set, ordered by patient and study day (all columns, or
    ``patient_id``, ``study_day`` and ``columns``; optionally only some patients, or the
    patients of one site)."""
    t = db.daily_sofa
    keep = None if columns is None else {"patient_id", "study_day", *columns}
    exclude = () if keep is None else tuple(c.name for c in t.columns if c.name not in keep)
    where = t.c.rules_key == rules_key
    if site_id is not None:
        site_patients = sa.select(db.patients.c.patient_id).where(db.patients.c.site_id == site_id)
        where = sa.and_(where, t.c.patient_id.in_(site_patients))
    return _select(
        engine,
        db.daily_sofa,
        where=where,
        in_column="patient_id" if patient_ids is not None else None,
        in_values=patient_ids,
        order_by=("patient_id", "study_day"),
        exclude=exclude,
    )


#: columns of :func:`load_cohort_daily`
COHORT_DAILY_COLUMNS = ("patient_id", "study_day", SOFA_TOTAL, "n_components_imputed")


def load_cohort_daily(engine: Engine, *, rules_key: str) -> pd.DataFrame:
    """The whole cohort's daily SOFA, compact: what cohort-level summaries need, nothing more.

    Columns (:data:`COHORT_DAILY_COLUMNS`): ``patient_id`` (object; one shared string per
    patient), ``study_day`` (int16), ``sofa_total`` (float32, NaN when not scorable; integer
    points 0-24 are exact in float32), ``n_components_imputed`` (int8: components of that day
    filled by day-1 zero or LOCF; a NULL flag counts as imputed, never as measured).
    About 15 bytes per patient-day: 1.7 M rows (100,000 patients) take ~26 MB, where the full
    :func:`load_daily_sofa` frame takes ~800 MB. Rows are streamed and narrowed chunk by chunk.
    """
    t = db.daily_sofa
    # counted in SQL (4 columns cross the driver instead of 9); NULL counts as imputed
    n_imputed = sum(
        (
            sa.cast(sa.func.coalesce(t.c[f"{o.value}_imputed"], sa.true()), sa.Integer)
            for o in ORGANS
        ),
        sa.literal(0),
    ).label("n_components_imputed")
    stmt = (
        sa.select(t.c.patient_id, t.c.study_day, t.c[SOFA_TOTAL], n_imputed)
        .where(t.c.rules_key == rules_key)
        .order_by(t.c.patient_id, t.c.study_day)
    )
    parts = []
    with engine.connect() as conn:
        for raw in _chunks(conn, stmt, COHORT_DAILY_COLUMNS):
            parts.append(
                pd.DataFrame(
                    {
                        "patient_id": raw["patient_id"].astype("category"),
                        "study_day": raw["study_day"].astype("int16"),
                        SOFA_TOTAL: pd.to_numeric(raw[SOFA_TOTAL]).astype("float32"),
                        "n_components_imputed": raw["n_components_imputed"].astype("int8"),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(
            {
                "patient_id": pd.Series([], dtype=object),
                "study_day": pd.Series([], dtype="int16"),
                SOFA_TOTAL: pd.Series([], dtype="float32"),
                "n_components_imputed": pd.Series([], dtype="int8"),
            }
        )
    out = pd.concat(parts, ignore_index=True)
    # categories → plain strings that share one object per patient (no per-row copies)
    out["patient_id"] = out["patient_id"].astype(object)
    return out


def load_provenance(engine: Engine, patient_id: str, *, rules_key: str) -> pd.DataFrame:
    """Provenance (long) of one patient's daily SOFA under one rule set."""
    t = db.sofa_provenance
    return _select(
        engine,
        t,
        where=sa.and_(t.c.patient_id == patient_id, t.c.rules_key == rules_key),
        order_by=("study_day", "organ"),
    )


def load_provenance_days(
    engine: Engine, patient_days: pd.Series, *, rules_key: str
) -> pd.DataFrame:
    """Provenance of many patients, each for its own study days.

    ``patient_days``: study day per patient id (index = patient_id; repeated ids allowed for
    several days). One indexed query per study day (and chunk of patients), for exactly the
    patients wanted on that day: never one query per patient, never every day of a patient.
    """
    t = db.sofa_provenance
    cols = [c for c in t.columns if c.name != "id"]
    wanted = pd.DataFrame(
        {"patient_id": patient_days.index.astype(str), "day": patient_days.to_numpy().astype(int)}
    ).drop_duplicates()
    parts = []
    with engine.connect() as conn:
        for day, group in wanted.groupby("day"):
            ids = group["patient_id"].tolist()
            base = sa.select(*cols).where(t.c.rules_key == rules_key, t.c.study_day == int(day))
            parts += [
                _frame(conn, base.where(t.c.patient_id.in_(ids[i : i + _CHUNK])), cols)
                for i in range(0, len(ids), _CHUNK)
            ]
        if not parts:
            parts.append(_frame(conn, sa.select(*cols).where(sa.false()), cols))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return out.sort_values(["patient_id", "study_day", "organ"], ignore_index=True)


@dataclass(frozen=True)
class PatientRaw:
    """All raw rows of one patient (never the arm)."""

    patient_id: str
    observations: pd.DataFrame
    infusions: pd.DataFrame
    episodes: pd.DataFrame
    biomarkers: pd.DataFrame
    doses: pd.DataFrame
    adverse_events: pd.DataFrame


def _one_patient(
    engine: Engine, table: sa.Table, patient_id: str, order: Sequence[str]
) -> pd.DataFrame:
    return _select(engine, table, where=table.c.patient_id == patient_id, order_by=order)


def load_patient_raw(engine: Engine, patient_id: str) -> PatientRaw:
    """Raw observations, infusions, episodes, biomarkers, doses and AEs of one patient.

    Raises
    ------
    UnknownPatientError
        When the patient is not stored.
    """
    with engine.connect() as conn:
        exists = conn.execute(
            sa.select(db.patients.c.patient_id).where(db.patients.c.patient_id == patient_id)
        ).first()
    if exists is None:
        raise UnknownPatientError(patient_id)
    return PatientRaw(
        patient_id=patient_id,
        observations=_one_patient(engine, db.observations, patient_id, ("time", "variable")),
        infusions=_one_patient(engine, db.infusions, patient_id, ("start", "drug")),
        episodes=_one_patient(engine, db.episodes, patient_id, ("start", "kind")),
        biomarkers=_one_patient(engine, db.biomarkers, patient_id, ("time",)),
        doses=_one_patient(engine, db.doses, patient_id, ("time",)),
        adverse_events=_one_patient(engine, db.adverse_events, patient_id, ("onset_time", "pt")),
    )


def load_icu_stays(
    engine: Engine, *, site_id: str | None = None, patient_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """ICU stays ``patient_id, unit, bed, start, stop`` (``stop`` NaT: still in the ICU),
    ordered by patient and admission; optionally of one site's patients or of some patients."""
    t = db.icu_stays
    where = None
    if site_id is not None:
        site_patients = sa.select(db.patients.c.patient_id).where(db.patients.c.site_id == site_id)
        where = t.c.patient_id.in_(site_patients)
    return _select(
        engine,
        t,
        where=where,
        in_column="patient_id" if patient_ids is not None else None,
        in_values=patient_ids,
        order_by=("patient_id", "start"),
    )


#: columns of :func:`icu_census`
ICU_CENSUS_COLUMNS = (
    "patient_id",
    "site_id",
    "unit",
    "bed",
    "icu_admission_time",
    "anchor_time",
    "death_time",
)


def _naive_utc(at: datetime | pd.Timestamp | str) -> datetime:
    """A clock time as the store keeps it: timezone-naive UTC, microseconds."""
    ts = pd.Timestamp(at)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.floor("us").to_pydatetime()


def icu_census(
    engine: Engine, at: datetime | pd.Timestamp | str, *, site_id: str | None = None
) -> pd.DataFrame:
    """The patients in the ICU at the clock time ``at``: THE census rule of the store.

    A patient is in the ICU at ``at`` when one of their stays covers it, ``start <= at <
    stop`` (``stop`` missing: still in the ICU), and they are alive, ``death_time`` missing
    or ``> at``. At ``at == stop`` the patient has left, at ``at == death_time`` they are no
    longer counted, at ``at == start`` they are in. One SQL query: the stays of at most
    ``core.db.LONG_STAY_DAYS`` admitted in the days before ``at`` (a range of a covering
    index), plus the open and longer stays (a partial index of their own), joined to
    ``patients`` by key (an interval index on plain B-trees; docs/ward.md, performance).

    Parameters
    ----------
    engine
        Database.
    at
        Clock time, timezone-naive UTC like every stored time (a timezone-aware time is
        converted to UTC).
    site_id
        Only this site's patients (None = all sites).

    Returns
    -------
    DataFrame
        :data:`ICU_CENSUS_COLUMNS`: ``patient_id, site_id, unit, bed, icu_admission_time``
        (start of the covering stay), ``anchor_time, death_time``; one row per patient,
        ordered by site and patient (the same on SQLite and PostgreSQL).
    """
    s, p = db.icu_stays, db.patients
    t = _naive_utc(at)
    with engine.connect() as conn:
        # an interval index on B-trees: a stay of at most LONG_STAY_DAYS that contains `at`
        # began at most that long before it (a range of the covering ix_icu_stays_census);
        # the open and longer stays come from their partial index (ix_icu_stays_long)
        long_stay = db.long_stay(conn.dialect.name)
        branches: list[list[Any]] = [[s.c.start <= t, sa.or_(s.c.stop.is_(None), s.c.stop > t)]]
        if long_stay is not None:
            # one second of margin: SQLite's julianday is a float of days
            recent = t - timedelta(days=db.LONG_STAY_DAYS, seconds=1)
            branches = [
                [s.c.start <= t, s.c.start >= recent, s.c.stop > t, sa.not_(long_stay)],
                [long_stay, s.c.start <= t, sa.or_(s.c.stop.is_(None), s.c.stop > t)],
            ]
        stay_cols = (s.c.patient_id, s.c.unit, s.c.bed, s.c.start)
        stays = sa.union_all(*(sa.select(*stay_cols).where(*w) for w in branches)).subquery(
            "covering"
        )
        cols = [
            stays.c.patient_id,
            p.c.site_id,
            stays.c.unit,
            stays.c.bed,
            stays.c.start.label("icu_admission_time"),
            p.c.anchor_time,
            p.c.death_time,
        ]
        where = [sa.or_(p.c.death_time.is_(None), p.c.death_time > t)]
        if site_id is not None:
            where.append(p.c.site_id == site_id)
        stmt = (
            sa.select(*cols)
            .select_from(stays.join(p, p.c.patient_id == stays.c.patient_id))
            .where(*where)
            .order_by(p.c.site_id, stays.c.patient_id)
        )
        return _frame(conn, stmt, cols)


#: columns of :func:`icu_departures`
DEPARTURE_COLUMNS = ("patient_id", "site_id", "unit", "event", "event_time")


def icu_departures(
    engine: Engine,
    at: datetime | pd.Timestamp | str,
    *,
    hours: float = 24.0,
    site_id: str | None = None,
) -> pd.DataFrame:
    """The patients who left the ICU in the ``hours`` before ``at``: ``(at - hours, at]``.

    A patient left when an ICU stay of theirs ended (``event = "left the ICU"``, at its
    ``stop``) or when they died during a stay (``event = "died"``, at ``death_time``; a death
    is the event even when the stay's recorded end follows it). Patients who are in the ICU
    again at ``at`` (a transfer between units, a readmission) are not departures. One row per
    patient, the latest event; ordered by event time, latest first.
    """
    s, p = db.icu_stays, db.patients
    t = _naive_utc(at)
    lo = t - timedelta(hours=hours)
    cols = [s.c.patient_id, p.c.site_id, s.c.unit, s.c.start, s.c.stop, p.c.death_time]
    died_in_stay = sa.and_(
        p.c.death_time > lo,
        p.c.death_time <= t,
        s.c.start <= p.c.death_time,
        sa.or_(s.c.stop.is_(None), s.c.stop >= p.c.death_time),
    )
    where = [s.c.start <= t, sa.or_(sa.and_(s.c.stop > lo, s.c.stop <= t), died_in_stay)]
    if site_id is not None:
        where.append(p.c.site_id == site_id)
    stmt = sa.select(*cols).select_from(s.join(p, p.c.patient_id == s.c.patient_id)).where(*where)
    with engine.connect() as conn:
        rows = _frame(conn, stmt, cols)
    if rows.empty:
        return pd.DataFrame(columns=list(DEPARTURE_COLUMNS))
    tt = pd.Timestamp(t)
    died = (
        rows["death_time"].notna()
        & (rows["death_time"] <= tt)
        & (rows["death_time"] > pd.Timestamp(lo))
    )
    rows["event"] = np.where(died, "died", "left the ICU")
    rows["event_time"] = rows["death_time"].where(died, rows["stop"])
    still_in = set(icu_census(engine, t, site_id=site_id)["patient_id"])
    rows = rows[~rows["patient_id"].isin(still_in)]
    rows = rows.sort_values("event_time", ascending=False, kind="stable")
    rows = rows.drop_duplicates("patient_id", keep="first")
    return rows[list(DEPARTURE_COLUMNS)].reset_index(drop=True)


def load_biomarkers(engine: Engine, *, patient_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Biomarker samples ``patient_id, time, ferritin_ng_ml, hla_dr_ab_per_cell``."""
    return _select(
        engine,
        db.biomarkers,
        in_column="patient_id" if patient_ids is not None else None,
        in_values=patient_ids,
        order_by=("patient_id", "time"),
    )


def load_observations(
    engine: Engine,
    *,
    patient_ids: Iterable[str] | None = None,
    variables: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Observations in canonical units (optionally for some patients and variables)."""
    t = db.observations
    where = t.c.variable.in_(list(variables)) if variables is not None else None
    return _select(
        engine,
        t,
        where=where,
        in_column="patient_id" if patient_ids is not None else None,
        in_values=patient_ids,
        order_by=("patient_id", "time", "variable"),
    )


def load_adverse_events(engine: Engine) -> pd.DataFrame:
    """Adverse events (no arm; join :func:`load_arms` in unblinded views)."""
    return _select(engine, db.adverse_events, order_by=("patient_id", "onset_time", "pt"))


def load_disposition(engine: Engine) -> pd.DataFrame:
    """Screening disposition, one row per screened person."""
    return _select(engine, db.disposition, order_by=("screening_id",))


def load_import_log(engine: Engine) -> pd.DataFrame:
    """Import log, newest first."""
    t = db.import_log
    cols = list(t.columns)
    with engine.connect() as conn:
        return _frame(conn, sa.select(*cols).order_by(t.c.id.desc()), cols)


def record_audit(
    engine: Engine,
    *,
    user: str,
    role: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
) -> int:
    """Append one audit-trail entry (hash-chained, :func:`core.audit.record_audit`); returns
    its id."""
    return audit.record_audit(
        engine, user=user, role=role, action=action, target=target, detail=detail
    )


def load_audit(engine: Engine) -> pd.DataFrame:
    """Audit trail, newest first (``time`` is naive UTC; ``prev_hash`` / ``row_hash`` chain
    the rows, see :func:`core.audit.verify_audit_chain`; read from the audit store,
    :func:`core.db.audit_engine`)."""
    t = db.audit_log
    cols = list(t.columns)
    with db.audit_engine(engine).connect() as conn:
        return _frame(conn, sa.select(*cols).order_by(t.c.id.desc()), cols)


def load_data_cutoff(engine: Engine) -> pd.Timestamp | None:
    """The latest observation time stored: the data cut-off of this dataset (None if empty).

    The latest time per patient, each one seek on the ``(patient_id, time, ...)`` index, then
    the latest of those: ``max(time)`` over the whole table has no index of its own and read
    every observation (about 1 s at 10,000 patients, after every import; docs/ward.md)."""
    o, p = db.observations, db.patients
    latest = (
        sa.select(sa.func.max(o.c.time)).where(o.c.patient_id == p.c.patient_id).scalar_subquery()
    )
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(latest)).select_from(p)).scalar()
    return None if value is None else pd.Timestamp(value)


def load_patient_site(engine: Engine, patient_id: str) -> str | None:
    """The site of one patient (None if the id is unknown): an indexed single-row read used
    for access checks on every patient request."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(db.patients.c.site_id).where(db.patients.c.patient_id == patient_id)
        ).scalar()


@dataclass(frozen=True)
class RawWindow:
    """Stored raw rows of some patients inside a clock window (derive's inputs)."""

    patients: pd.DataFrame
    observations: pd.DataFrame
    infusions: pd.DataFrame
    episodes: pd.DataFrame


def load_raw_window(
    engine: Engine,
    patient_ids: Iterable[str],
    *,
    start: datetime | pd.Timestamp | str,
    stop: datetime | pd.Timestamp | str,
) -> RawWindow:
    """Raw observations, infusions and episodes of some patients in ``[start, stop)``.

    Observations charted in the window; infusions and episodes that overlap it, clipped to
    it (nothing after ``stop`` is ever seen: the board at a clock time knows only the past).
    Values are stored in canonical units; infusions carry ``rate_mcg_kg_min`` for the scored
    drugs, as :func:`core.derive.derive_daily_sofa` expects.
    """
    ids = list(dict.fromkeys(patient_ids))
    t0, t1 = _naive_utc(start), _naive_utc(stop)
    o, i, e = db.observations, db.infusions, db.episodes
    obs = _select(
        engine,
        o,
        where=sa.and_(o.c.time >= t0, o.c.time < t1),
        in_column="patient_id",
        in_values=ids,
        order_by=("patient_id", "time"),
    )
    inf = _select(
        engine,
        i,
        where=sa.and_(i.c.start < t1, i.c.stop > t0),
        in_column="patient_id",
        in_values=ids,
        order_by=("patient_id", "start"),
    )
    ep = _select(
        engine,
        e,
        where=sa.and_(e.c.start < t1, sa.or_(e.c.stop.is_(None), e.c.stop > t0)),
        in_column="patient_id",
        in_values=ids,
        order_by=("patient_id", "start"),
    )
    t0_ts, t1_ts = pd.Timestamp(t0), pd.Timestamp(t1)
    inf["start"] = inf["start"].clip(lower=t0_ts)
    inf["stop"] = inf["stop"].clip(upper=t1_ts)
    inf = stored_scored_rates(inf)
    ep["start"] = ep["start"].clip(lower=t0_ts)
    ep["stop"] = ep["stop"].fillna(t1_ts).clip(upper=t1_ts)
    pts = _select(
        engine, db.patients, in_column="patient_id", in_values=ids, order_by=("patient_id",)
    )
    return RawWindow(patients=pts, observations=obs, infusions=inf, episodes=ep)
