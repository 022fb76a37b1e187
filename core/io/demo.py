"""The synthetic demo database: synthetic tables and a build that is safe across processes."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.exceptions import DataValidationError
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


def synthetic_tables(
    *, seed: int = 20251208, n_randomised: int = 281, charting: str = "dense"
) -> dict[str, pd.DataFrame]:
    """The synthetic cohort of :func:`core.synth.generate_trial` as long-format tables
    (``charting="sparse"``: one charting per variable and day, for 100,000-patient benchmarks)."""
    trial = generate_trial(seed=seed, n_randomised=n_randomised, charting=charting)
    if dataclasses.is_dataclass(trial):
        items = {f.name: getattr(trial, f.name) for f in dataclasses.fields(trial)}
    else:
        items = dict(vars(trial))
    return {
        name: frame.reset_index(drop=True)
        for name, frame in items.items()
        if name in TABLE_SPECS and isinstance(frame, pd.DataFrame)
    }


def build_demo_database(
    url_or_engine: str | Path | Engine,
    *,
    seed: int = 20251208,
    n_randomised: int = 281,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    charting: str = "dense",
) -> str:
    """Fill an empty database with the synthetic cohort; a no-op when data exist.

    Safe to call from several processes at once: a lock serialises the builders and the
    second one finds the data. Returns the dataset version.
    """
    engine = url_or_engine if isinstance(url_or_engine, Engine) else db.make_engine(url_or_engine)
    try:
        db.ensure_schema(engine)
        with _DemoLock(engine):
            if not has_data(engine):
                tables = synthetic_tables(seed=seed, n_randomised=n_randomised, charting=charting)
                import_tables(
                    engine,
                    tables,
                    source_names={t: f"synthetic:{t}" for t in tables},
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
    seed and size give the same patients); anything else is left as it is, and logged."""
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
