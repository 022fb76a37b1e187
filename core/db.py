"""SQLAlchemy tables, engine creation and the versioned schema of the ImmunoSep store.

The raw tables mirror the long formats of ``docs/architecture.md`` column for column. The
randomised arm lives in its own table (``randomisation``) so that blinded code paths never
need to read it; only :func:`core.repository.load_arms` selects from it.

Derived tables (``daily_sofa``, ``sofa_provenance``) are recomputed inside the import
transaction for the patients an import touches, keyed by ``rules_key`` (``SofaRules.key()``).

``dataset_version`` holds one row (version integer + chained content hash) that caches key
on: :func:`dataset_version` returns e.g. ``"3-1f2e3d4c5b6a"``.

Notes
-----
Embedded SQLite is the default store; PostgreSQL is used when the caller passes a
``postgresql+psycopg://`` URL. Times are stored as timezone-naive UTC timestamps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import vocab
from core.chain import GENESIS_HASH, row_hash
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_INPUT_COLUMNS, SOFA_TOTAL

#: version of the table layout below; bump it and append a migration when the layout changes
SCHEMA_VERSION: Final = 7

#: hash of an empty dataset (before the first import)
EMPTY_HASH: Final = hashlib.sha256(b"immunosep-empty-dataset").hexdigest()

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("country", sa.String(100)),
)

patients = sa.Table(
    "patients",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.site_id"), nullable=False),
    sa.Column("anchor_time", sa.DateTime, nullable=False),
    sa.Column("weight_kg", sa.Float, nullable=False),
    sa.Column("death_time", sa.DateTime),
    sa.Column("age_years", sa.Float),
    sa.Column("sex", sa.String(1)),
    sa.Column("apache_ii", sa.Float),
    sa.Column("charlson", sa.Float),
    sa.Column("infection_type", sa.String(100)),
    sa.Column("mechanical_ventilation", sa.Boolean),
    sa.Column("randomised_at", sa.DateTime),
    sa.Index("ix_patients_site_id", "site_id"),
)

#: ICU stays (admission to discharge) per patient; several per patient on readmission. A
#: missing ``stop`` means the patient is still in the ICU. "Who is in the ICU at time t" is
#: ``start <= t AND (stop > t OR stop IS NULL)`` (:func:`core.repository.icu_census`): the
#: (start, stop) index serves times early in the data, the (stop, start) index the present
#: (few stays end after "now", open stays are NULL in that index)
icu_stays = sa.Table(
    "icu_stays",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("unit", sa.String(100), nullable=False),
    sa.Column("bed", sa.String(40)),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("stop", sa.DateTime),
    # natural key; doubles as the per-patient index
    sa.Index("ux_icu_stays_patient_start", "patient_id", "start", unique=True),
    sa.Index("ix_icu_stays_start_stop", "start", "stop"),
    sa.Index("ix_icu_stays_stop_start", "stop", "start"),
    # covering for the census: stays admitted in a time range, read from the index alone
    sa.Index("ix_icu_stays_census", "start", "stop", "patient_id", "unit", "bed"),
)


#: closed ICU stays longer than this many days, and open ones, are indexed apart
#: (``ix_icu_stays_long``): the census reads the others only from ``at`` minus this many days
LONG_STAY_DAYS: Final = 35


def long_stay(dialect: str) -> sa.ColumnElement[bool] | None:
    """ "Open, or longer than :data:`LONG_STAY_DAYS`" as SQL of the dialect (None for other
    dialects): the predicate of the partial index ``ix_icu_stays_long``, repeated verbatim by
    the census (core.repository.icu_census) so that the planner uses the index (a literal, not
    a bound parameter: the planner must see that the query implies the index's predicate)."""
    s = icu_stays.c
    if dialect == "sqlite":
        days = sa.func.julianday(s.stop) - sa.func.julianday(s.start)
        longer = days > sa.literal_column(str(LONG_STAY_DAYS))
    elif dialect == "postgresql":
        longer = s.stop - s.start > sa.literal_column(f"interval '{LONG_STAY_DAYS} days'")
    else:
        return None
    return sa.or_(s.stop.is_(None), longer)


# an interval index on plain B-trees for the census: a stay of at most LONG_STAY_DAYS that
# contains `at` began in [at - LONG_STAY_DAYS, at] (ix_icu_stays_census, covering); the long
# and open stays are few and have an index of their own (docs/ward.md, performance)
sa.Index(
    "ix_icu_stays_long",
    icu_stays.c.start,
    icu_stays.c.stop,
    icu_stays.c.patient_id,
    icu_stays.c.unit,
    icu_stays.c.bed,
    sqlite_where=long_stay("sqlite"),
    postgresql_where=long_stay("postgresql"),
)

randomisation = sa.Table(
    "randomisation",
    metadata,
    # no foreign key: a patient withdrawn with data removal keeps the randomisation row
    # (CONSORT counts) but has no ``patients`` row
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("arm", sa.String(20), nullable=False),
    sa.Column("randomised_at", sa.DateTime),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("variable", sa.String(40), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("source", sa.String(100)),
    sa.Column("value_as_received", sa.Float),
    sa.Column("unit_as_received", sa.String(20)),
    # natural key; doubles as the per-patient time index
    sa.Index(
        "ux_observations_patient_time_variable", "patient_id", "time", "variable", unique=True
    ),
)

infusions = sa.Table(
    "infusions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("drug", sa.String(40), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("stop", sa.DateTime, nullable=False),
    # rate in mcg/kg/min for the scored drugs (converted at ingestion), as received otherwise
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("rate_as_received", sa.Float),
    sa.Column("unit_as_received", sa.String(20)),
    sa.Index("ux_infusions_patient_start_drug", "patient_id", "start", "drug", unique=True),
)

episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("stop", sa.DateTime),
    sa.Index("ux_episodes_patient_start_kind", "patient_id", "start", "kind", unique=True),
)

biomarkers = sa.Table(
    "biomarkers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("ferritin_ng_ml", sa.Float),
    sa.Column("hla_dr_ab_per_cell", sa.Float),
    sa.Index("ux_biomarkers_patient_time", "patient_id", "time", unique=True),
)

doses = sa.Table(
    "doses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("route", sa.String(8), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    # an IV and an SC dose may be given at the same minute (double dummy): route is in the key
    sa.Index("ux_doses_patient_time_route", "patient_id", "time", "route", unique=True),
)

adverse_events = sa.Table(
    "adverse_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("onset_time", sa.DateTime, nullable=False),
    sa.Column("soc", sa.String(200), nullable=False),
    sa.Column("pt", sa.String(200), nullable=False),
    sa.Column("serious", sa.Boolean, nullable=False),
    sa.Column("severe", sa.Boolean, nullable=False),
    sa.Column("related", sa.Boolean, nullable=False),
    sa.Column("aesi", sa.String(20)),
    sa.Index("ux_adverse_events_patient_onset_pt", "patient_id", "onset_time", "pt", unique=True),
)

disposition = sa.Table(
    "disposition",
    metadata,
    sa.Column("screening_id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.site_id"), nullable=False),
    sa.Column("patient_id", sa.String(64)),  # no FK: see randomisation
    sa.Column("excluded_reason", sa.String(200)),
    sa.Column("phenotype_at_screening", sa.String(40)),
    sa.Column("withdrawn_with_data_removal", sa.Boolean, nullable=False),
    sa.Index("ix_disposition_site_id", "site_id"),
    sa.Index("ix_disposition_patient_id", "patient_id"),
)

_daily_columns: list[sa.Column[Any]] = [
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("study_day", sa.Integer, nullable=False),
    sa.Column("rules_key", sa.String(80), nullable=False),
    *(sa.Column(SOFA_COLUMNS[o], sa.Float) for o in ORGANS),
    sa.Column(SOFA_TOTAL, sa.Float),
    sa.Column("sofa2_total", sa.Float),
    *(sa.Column(f"{o.value}_imputed", sa.Boolean) for o in ORGANS),
    *(sa.Column(f"{o.value}_imputation", sa.String(20)) for o in ORGANS),
    sa.Column("n_components_observed", sa.Integer),
    *(
        sa.Column(c, sa.Boolean if c == "respiratory_support" else sa.Float)
        for c in SOFA_INPUT_COLUMNS
    ),
]
daily_sofa = sa.Table(
    "daily_sofa",
    metadata,
    *_daily_columns,
    sa.PrimaryKeyConstraint("rules_key", "patient_id", "study_day", name="pk_daily_sofa"),
    sa.Index("ix_daily_sofa_patient_day", "patient_id", "study_day"),
)

sofa_provenance = sa.Table(
    "sofa_provenance",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
    sa.Column("study_day", sa.Integer, nullable=False),
    sa.Column("rules_key", sa.String(80), nullable=False),
    sa.Column("organ", sa.String(20), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("variable", sa.String(60)),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(30)),
    sa.Column("time", sa.DateTime),
    sa.Column("rule", sa.String(200)),
    sa.Column("imputed", sa.Boolean),
    sa.Column("imputation", sa.String(20)),
    sa.Index("ix_sofa_provenance_patient_day", "patient_id", "rules_key", "study_day"),
)

import_log = sa.Table(
    "import_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("source_names", sa.Text, nullable=False),  # JSON list
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("row_counts", sa.Text, nullable=False),  # JSON {table: rows inserted}
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("rules_key", sa.String(80)),
    sa.Index("ix_import_log_content_sha256", "content_sha256"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("user", sa.String(100), nullable=False),
    sa.Column("role", sa.String(40), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(200)),
    sa.Column("detail", sa.Text),
    # hash chain (core.audit): the previous row's row_hash and SHA-256 of this row's content
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("row_hash", sa.String(64)),
    sa.Index("ix_audit_log_time", "time"),
)

#: the audit chain's head (one row, id 1): last id and hash, locked by every audit writer;
#: ``migrated_through`` is the last id hashed by migration 5 (older ids may have gaps)
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("migrated_through", sa.Integer, nullable=False),
)

#: counts of throttled audit actions (failed logins) per key (action, user, client) since the
#: key's last audit row (core.audit.record_audit_throttled)
audit_throttle = sa.Table(
    "audit_throttle",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("window_start", sa.DateTime, nullable=False),
    sa.Column("pending", sa.Integer, nullable=False),
)

#: one failed sign-in per row and key (``user:<name>``, ``ip:<address>``), kept for the throttle
#: window: the sign-in throttle shared by every worker and server
#: (components.server.security.LoginThrottle); lives in the audit store
login_failure = sa.Table(
    "login_failure",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # epoch seconds
    sa.Index("ix_login_failure_key_at", "key", "at"),
    sa.Index("ix_login_failure_at", "at"),
)

#: the tables of the audit store (:func:`audit_engine`): the audit trail, its chain head and
#: throttles, the sign-in throttle
AUDIT_TABLES: Final = (audit_log, audit_head, audit_throttle, login_failure)

dataset_version_table = sa.Table(
    "dataset_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

#: per-trial settings that must outlive deployments and key rotations (name -> value), e.g.
#: the DSMB's group coding ``group_a_arm`` (components.blinding); written once, never updated
trial_keys = sa.Table(
    "trial_keys",
    metadata,
    sa.Column("name", sa.String(60), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# --- data-quality review (core.review, docs/review.md; schema version 6) ---------------------
#: "reviewed" marks per patient-form, append-only (the newest row of a patient-form counts);
#: ``n_rows`` / ``max_row_id`` fingerprint the form's stored rows when it was marked, so a
#: later import that adds rows to the form resets its status to "new data since review"
review_marks = sa.Table(
    "review_marks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("form", sa.String(40), nullable=False),
    sa.Column("reviewed_by", sa.String(100), nullable=False),
    sa.Column("reviewed_role", sa.String(40), nullable=False),
    sa.Column("reviewed_at", sa.DateTime, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("max_row_id", sa.Integer, nullable=False),
    sa.Column("dataset_version", sa.String(80), nullable=False),
    sa.Index("ix_review_marks_patient_form", "patient_id", "form"),
)

#: data queries raised on a value: open -> answered -> closed (core.review)
review_queries = sa.Table(
    "review_queries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("form", sa.String(40), nullable=False),
    sa.Column("variable", sa.String(40), nullable=False),
    sa.Column("obs_time", sa.DateTime),
    sa.Column("value", sa.Float),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("raised_by", sa.String(100), nullable=False),
    sa.Column("raised_role", sa.String(40), nullable=False),
    sa.Column("raised_at", sa.DateTime, nullable=False),
    sa.Column("answer", sa.Text),
    sa.Column("answered_by", sa.String(100)),
    sa.Column("answered_role", sa.String(40)),
    sa.Column("answered_at", sa.DateTime),
    sa.Column("close_note", sa.Text),
    sa.Column("closed_by", sa.String(100)),
    sa.Column("closed_role", sa.String(40)),
    sa.Column("closed_at", sa.DateTime),
    sa.Index("ix_review_queries_patient", "patient_id"),
    sa.Index("ix_review_queries_site_status", "site_id", "status"),
)


def _v6_review_tables(conn: Connection) -> None:
    """Schema migration 6: the data-quality review tables (checkfirst: idempotent)."""
    review_marks.create(conn, checkfirst=True)
    review_queries.create(conn, checkfirst=True)


#: raw tables in foreign-key order (parents first)
RAW_TABLES: Final = vocab.RAW_TABLES
#: tables holding one patient's rows (patient_id column), raw and derived
PATIENT_TABLES: Final = (
    "icu_stays",
    "observations",
    "infusions",
    "episodes",
    "biomarkers",
    "doses",
    "adverse_events",
    "daily_sofa",
    "sofa_provenance",
)


class SchemaVersionError(RuntimeError):
    """The database was written by a newer version of this code."""


def _utcnow() -> datetime:
    """Timezone-naive UTC now (the store's time convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def is_sqlite(engine: Engine | Connection) -> bool:
    """True when the engine (or connection) talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str | Path) -> Engine:
    """Create an engine for a database URL (or a path to a SQLite file).

    Parameters
    ----------
    url
        ``sqlite:///path/file.sqlite``, ``postgresql+psycopg://user@host:port/db`` or a
        filesystem path (taken as a SQLite file).

    Returns
    -------
    Engine
        For SQLite: WAL journal, foreign keys on, a 30 s busy timeout, and the parent folder of
        the file created. The schema is not created here (see :func:`ensure_schema`).
    """
    if isinstance(url, Path) or "://" not in str(url):
        url = f"sqlite:///{Path(url)}"
    parsed = sa.make_url(str(url))
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    return _sqlite_engine(parsed)


def _sqlite_engine(parsed: sa.URL) -> Engine:
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are unreliable)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def audit_store_path(engine: Engine | Connection) -> Path | None:
    """The SQLite file of the audit store of a SQLite-file database (``trial.sqlite`` ->
    ``trial.audit.sqlite``, beside it); None for PostgreSQL and in-memory SQLite."""
    if not is_sqlite(engine):
        return None
    database = engine.engine.url.database if isinstance(engine, Connection) else engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    main = Path(database)
    return main.with_name(main.stem + ".audit.sqlite")


def audit_engine(engine: Engine | Connection) -> Engine:
    """The engine that holds the audit trail and the sign-in throttle (:data:`AUDIT_TABLES`).

    Why a store of its own (issue 16, "Availability"): SQLite has one writer per database
    file, and an import holds that writer lock for its whole all-or-nothing transaction
    (validation, inserts, the recomputed daily SOFA), which can take minutes. Every sign-in
    and every audited read writes a row, so on one file they queued behind the import and
    failed after the 30 s busy timeout with HTTP 500. Short transactions in WAL mode would not
    help: the import must stay one transaction. So for a SQLite file the audit tables live in
    a second SQLite file beside it (:func:`audit_store_path`, WAL journal, its own writer
    lock): audit and sign-in writes only ever wait for each other (milliseconds), never for an
    import. Not attached to the main file: ``BEGIN IMMEDIATE`` would lock every attached file.

    PostgreSQL has row locks (an audit writer locks the chain head row; an import takes an
    advisory lock and never touches the audit tables), so it keeps one database and this
    returns ``engine`` itself; so does in-memory SQLite (one connection, tests).

    The audit engine is made once per engine (kept on it) and its tables created on first
    use; :func:`ensure_schema` moves audit rows of an older single-file database into it.
    """
    if isinstance(engine, Connection):
        engine = engine.engine
    found = engine.__dict__.get("_immunosep_audit_engine")
    if found is not None:
        return found
    path = audit_store_path(engine)
    if path is None:
        # one database: the tables come with the schema (ensure_schema); a table added later
        # (login_failure) is created here, without the import's writer lock
        with engine.begin() as conn:
            metadata.create_all(conn, tables=list(AUDIT_TABLES), checkfirst=True)
        target = engine
    else:
        target = _sqlite_engine(sa.make_url(f"sqlite:///{path}"))
        with _WriterTransaction(target) as conn:
            metadata.create_all(conn, tables=list(AUDIT_TABLES), checkfirst=True)
    engine.__dict__["_immunosep_audit_engine"] = target
    return target


def _move_audit_rows(conn: Connection) -> int:
    """Move the audit rows, chain head and throttles of a single-file SQLite database into
    its audit store (inside the caller's writer transaction on the main file); returns the
    rows moved. Idempotent: rows already in the store (same id) are not copied again."""
    if audit_store_path(conn) is None or not sa.inspect(conn).has_table("audit_log"):
        return 0  # one database (PostgreSQL, in-memory SQLite): nothing to move
    store = audit_engine(conn)
    rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings().all()
    head = conn.execute(sa.select(audit_head)).mappings().all() if rows else []
    if not rows:
        return 0
    with _WriterTransaction(store) as target:
        present = set(target.execute(sa.select(audit_log.c.id)).scalars())
        fresh = [dict(r) for r in rows if r["id"] not in present]
        if fresh:
            target.execute(audit_log.insert(), fresh)
        if head and not present:
            target.execute(audit_head.delete())
            target.execute(audit_head.insert(), [dict(h) for h in head])
    conn.execute(audit_log.delete())
    conn.execute(audit_head.delete())
    return len(fresh)


def _migration_steps() -> Mapping[int, Callable[[Connection], None]]:
    """Ordered migrations: key n upgrades a database from version n - 1 to n.

    Version 1 is the initial layout, created by ``metadata.create_all``; later versions append
    functions here and bump :data:`SCHEMA_VERSION`. A new database is created directly at the
    latest layout.

    - 2: study-drug doses are unique by (patient, time, route), not (patient, time).
    - 3: ``trial_keys`` (per-trial settings such as the DSMB group coding).
    - 4: ``icu_stays`` (ICU admission / discharge per patient, for the ICU census).
    - 5: the audit trail's hash chain: ``audit_log.prev_hash`` / ``row_hash`` (stored rows
      hashed once, in id order), ``audit_head`` and ``audit_throttle``.
    - 6: ``review_marks`` and ``review_queries`` (the data-quality review, docs/review.md).
    - 7: indexes for the ICU census, ``ix_icu_stays_census`` and the partial
      ``ix_icu_stays_long`` (docs/ward.md, performance).
    """
    return MappingProxyType(
        {
            2: _v2_dose_key_with_route,
            3: _v3_trial_keys,
            4: _v4_icu_stays,
            5: _v5_audit_chain,
            6: _v6_review_tables,
            7: _v7_census_indexes,
        }
    )


def _v7_census_indexes(conn: Connection) -> None:
    for index in icu_stays.indexes:
        if index.name in ("ix_icu_stays_census", "ix_icu_stays_long"):
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _v5_audit_chain(conn: Connection) -> None:
    present = {c["name"] for c in sa.inspect(conn).get_columns("audit_log")}
    for name in ("prev_hash", "row_hash"):
        if name not in present:
            conn.execute(sa.text(f"ALTER TABLE audit_log ADD COLUMN {name} VARCHAR(64)"))
    audit_head.create(conn, checkfirst=True)
    audit_throttle.create(conn, checkfirst=True)
    _hash_existing_audit_rows(conn)


def _hash_existing_audit_rows(conn: Connection) -> int:
    """Chain the rows already stored (schema migration 5), in id order; returns the count.

    Sets the head to the last row and ``migrated_through`` to its id.
    """
    t = audit_log
    prev = GENESIS_HASH
    last_id = 0
    rows = conn.execute(
        sa.select(
            t.c.id, t.c.time, t.c.user, t.c.role, t.c.action, t.c.target, t.c.detail
        ).order_by(t.c.id)
    ).all()
    for r in rows:
        digest = row_hash(r.id, r.time, r.user, r.role, r.action, r.target, r.detail, prev)
        conn.execute(t.update().where(t.c.id == r.id).values(prev_hash=prev, row_hash=digest))
        prev, last_id = digest, int(r.id)
    conn.execute(audit_head.delete())
    conn.execute(
        audit_head.insert(),
        [{"id": 1, "last_id": last_id, "last_hash": prev, "migrated_through": last_id}],
    )
    return len(rows)


def _v4_icu_stays(conn: Connection) -> None:
    # create_all on one table also creates its indexes (checkfirst: an interrupted or
    # hand-made table is left as it is)
    icu_stays.create(conn, checkfirst=True)


def _v3_trial_keys(conn: Connection) -> None:
    trial_keys.create(conn, checkfirst=True)


def _v2_dose_key_with_route(conn: Connection) -> None:
    conn.execute(sa.text("DROP INDEX IF EXISTS ux_doses_patient_time"))
    conn.execute(
        sa.text(
            "CREATE UNIQUE INDEX IF NOT EXISTS ux_doses_patient_time_route "
            "ON doses (patient_id, time, route)"
        )
    )


def stored_schema_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, or None for an empty database."""
    if not sa.inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()


def ensure_schema(
    engine: Engine, *, migrations: Mapping[int, Callable[[Connection], None]] | None = None
) -> int:
    """Create the schema if the database is empty, migrate it if it is older.

    Parameters
    ----------
    engine
        Target database.
    migrations
        Migration functions by target version (default: this module's list). Exposed for
        tests of the migration mechanism.

    Returns
    -------
    int
        The schema version after the call (:data:`SCHEMA_VERSION`).

    Raises
    ------
    SchemaVersionError
        When the database records a newer schema version than this code knows.
    """
    steps = _migration_steps() if migrations is None else migrations
    with _WriterTransaction(engine) as conn:
        current = stored_schema_version(conn)
        if current is None:
            metadata.create_all(conn)
            conn.execute(
                schema_version.insert(), [{"version": SCHEMA_VERSION, "applied_at": _utcnow()}]
            )
            conn.execute(
                dataset_version_table.insert(),
                [{"id": 1, "version": 0, "content_hash": EMPTY_HASH, "updated_at": _utcnow()}],
            )
            conn.execute(
                audit_head.insert(),
                [{"id": 1, "last_id": 0, "last_hash": GENESIS_HASH, "migrated_through": 0}],
            )
            _move_audit_rows(conn)
            return SCHEMA_VERSION
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"database schema version {current} is newer than this code's version "
                f"{SCHEMA_VERSION}; upgrade the application before opening this database"
            )
        for target in range(current + 1, SCHEMA_VERSION + 1):
            if target not in steps:
                raise SchemaVersionError(f"no migration to schema version {target}")
            steps[target](conn)
            conn.execute(schema_version.insert(), [{"version": target, "applied_at": _utcnow()}])
        _move_audit_rows(conn)
        return SCHEMA_VERSION


class _WriterTransaction:
    """``engine.begin()`` that takes the writer lock first.

    SQLite: ``BEGIN IMMEDIATE`` (one writer at a time, others wait for the busy timeout).
    PostgreSQL: a transaction-scoped advisory lock (``pg_advisory_xact_lock``).
    """

    LOCK_KEY: Final = 0x1A7E50  # arbitrary, constant for the application

    def __init__(self, engine: Engine):
        self._engine = engine
        self._ctx: Any = None

    def __enter__(self) -> Connection:
        if is_sqlite(self._engine):
            conn = self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        else:
            conn = self._engine.connect()
        self._conn = conn
        self._ctx = conn.begin()
        self._ctx.__enter__()
        if not is_sqlite(self._engine):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.LOCK_KEY})
        return conn

    def __exit__(self, *exc: object) -> None:
        try:
            self._ctx.__exit__(*exc)
        finally:
            self._conn.close()


def writer_transaction(engine: Engine) -> _WriterTransaction:
    """A transaction holding the database-wide writer lock (use as a context manager)."""
    return _WriterTransaction(engine)


def dataset_version(engine: Engine | Connection) -> str:
    """Version string of the dataset that caches key on, e.g. ``"3-1f2e3d4c5b6a"``.

    The integer counts successful imports; the hash chains the content hashes of all imports.
    Both change on every import that writes data and never otherwise.
    """

    def _read(conn: Connection) -> str:
        row = conn.execute(
            sa.select(dataset_version_table.c.version, dataset_version_table.c.content_hash)
        ).first()
        if row is None:
            return f"0-{EMPTY_HASH[:12]}"
        return f"{row.version}-{row.content_hash[:12]}"

    if isinstance(engine, Connection):
        return _read(engine)
    with engine.connect() as conn:
        return _read(conn)


def bump_dataset_version(conn: Connection, content_sha256: str) -> str:
    """Increment the dataset version inside the caller's transaction; return the new string."""
    row = conn.execute(
        sa.select(dataset_version_table.c.version, dataset_version_table.c.content_hash)
    ).first()
    version, previous = (0, EMPTY_HASH) if row is None else (row.version, row.content_hash)
    new_hash = hashlib.sha256(f"{previous}:{content_sha256}".encode()).hexdigest()
    values = {"version": version + 1, "content_hash": new_hash, "updated_at": _utcnow()}
    if row is None:
        conn.execute(dataset_version_table.insert(), [{"id": 1, **values}])
    else:
        conn.execute(
            dataset_version_table.update().where(dataset_version_table.c.id == 1).values(**values)
        )
    return f"{version + 1}-{new_hash[:12]}"


#: rows per chunk of :func:`bulk_insert`: the converted values of one chunk are held at a time
BULK_CHUNK_ROWS: Final = 200_000
#: SQLite: rows per INSERT statement of :func:`bulk_insert` (multi-row VALUES: fewer statement
#: steps, about 1.4x faster than one row per statement), within the bound-parameter limit of
#: every SQLite version (999 before 3.32)
SQLITE_ROWS_PER_INSERT: Final = 100
SQLITE_MAX_PARAMETERS: Final = 999


def bulk_insert(
    conn: Connection, table: sa.Table, frame: pd.DataFrame, *, chunk_rows: int = BULK_CHUNK_ROWS
) -> int:
    """Insert the rows of a DataFrame in the caller's transaction; returns the row count.

    Columns must be named like the table's columns (``id`` columns are left to the
    database). Missing values (NaN, NaT, None) become NULL.

    All or nothing: the rows go in under a savepoint, so a failed insert (e.g. a duplicate
    key) leaves none of the frame's rows behind, even in a transaction that goes on, and
    raises the database's own error (its message names the table and constraint).

    PostgreSQL: one ``COPY ... FROM STDIN (FORMAT csv)`` (psycopg 3), the CSV text written
    ``chunk_rows`` rows at a time. SQLite: per ``chunk_rows`` rows, one DBAPI ``executemany``
    of multi-row INSERTs (:data:`SQLITE_ROWS_PER_INSERT` rows each, in frame order), values
    converted column-wise (:func:`_sqlite_columns`) to SQLAlchemy's SQLite storage
    format (``YYYY-MM-DD HH:MM:SS.ffffff`` text for timestamps, 0/1 for booleans), so the
    rows read back through SQLAlchemy exactly as if SQLAlchemy had written them.
    """
    n = len(frame)
    if n == 0:
        return 0
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    columns = [str(c) for c in frame.columns]
    for c in columns:
        if c not in table.c:
            raise KeyError(f"{table.name} has no column {c!r}")
    quoted = ", ".join(f'"{c}"' for c in columns)
    chunks = (frame.iloc[start : start + chunk_rows] for start in range(0, n, chunk_rows))
    with conn.begin_nested():
        if conn.dialect.name == "postgresql":
            dbapi_conn = conn.connection.driver_connection
            statement = (
                f'COPY "{table.name}" ({quoted}) FROM STDIN (FORMAT csv, FORCE_NULL ({quoted}))'
            )
            dbapi_error = conn.dialect.loaded_dbapi.Error
            try:
                with (
                    dbapi_conn.cursor() as cur,  # type: ignore[union-attr]
                    cur.copy(statement) as copy,
                ):
                    for chunk in chunks:
                        # every empty field (quoted or not) is NULL: validation never keeps
                        # empty strings
                        copy.write(chunk.to_csv(header=False, index=False, na_rep=""))
            except dbapi_error as exc:  # as SQLAlchemy raises it on SQLite (IntegrityError...)
                raise sa.exc.DBAPIError.instance(
                    statement, None, exc, dbapi_error, dialect=conn.dialect
                ) from exc
            return n
        row = "(" + ", ".join("?" for _ in columns) + ")"
        per_statement = max(1, min(SQLITE_ROWS_PER_INSERT, SQLITE_MAX_PARAMETERS // len(columns)))
        insert = f'INSERT INTO "{table.name}" ({quoted}) VALUES '
        many_rows = insert + ", ".join([row] * per_statement)
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for chunk in chunks:
                grid = np.empty((len(chunk), len(columns)), dtype=object)
                for j, values in enumerate(_sqlite_columns(table, chunk)):
                    grid[:, j] = values
                # rows in order, ``per_statement`` to a statement, the rest one by one
                whole = len(chunk) // per_statement * per_statement
                if whole:
                    width = per_statement * len(columns)
                    cursor.executemany(many_rows, grid[:whole].reshape(-1, width).tolist())
                if whole < len(chunk):
                    cursor.executemany(insert + row, grid[whole:].tolist())
        except dbapi_error as exc:  # as SQLAlchemy raises it (IntegrityError, ...)
            raise sa.exc.DBAPIError.instance(
                many_rows, None, exc, dbapi_error, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()
    return n


def _sqlite_columns(table: sa.Table, frame: pd.DataFrame) -> list[list[Any]]:
    """The frame's columns as Python values in SQLAlchemy's SQLite storage format, one list
    per column, None for a missing value; each column converted at once (no per-value
    Python formatting)."""
    out = []
    for c in frame.columns:
        s = frame[c]
        typ = table.c[str(c)].type
        missing = s.isna().to_numpy()
        if isinstance(typ, sa.DateTime):
            ts = pd.to_datetime(s)
            if ts.dt.tz is not None:  # the wall time, as strftime printed it
                ts = ts.dt.tz_localize(None)
            micro = ts.to_numpy().astype("datetime64[us]")  # floors, as %f did
            # Arrow prints timestamp[us] as YYYY-MM-DD HH:MM:SS.ffffff (strftime's format)
            text = pa.array(micro, from_pandas=True).cast(pa.string())
            out.append(text.to_pylist())
        elif isinstance(typ, sa.Boolean):
            flags = s.where(~missing, False).astype(bool).astype("int64").astype(object)
            out.append(flags.where(~missing, None).tolist())
        elif isinstance(typ, sa.Float):
            num = pd.to_numeric(s).astype("float64")
            out.append(num.astype(object).where(num.notna(), None).tolist())
        elif isinstance(typ, sa.Integer):
            whole = pd.to_numeric(s.where(~missing, 0)).astype("int64").astype(object)
            out.append(whole.where(~missing, None).tolist())
        else:
            out.append(s.astype(object).where(~missing, None).tolist())
    return out


def row_counts(engine: Engine | Connection) -> dict[str, int]:
    """Number of rows per table (raw, derived and logs); handy for tests and the Data page."""

    def _count(conn: Connection) -> dict[str, int]:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
            for name, t in metadata.tables.items()
        }

    if isinstance(engine, Connection):
        return _count(engine)
    with engine.connect() as conn:
        return _count(conn)
