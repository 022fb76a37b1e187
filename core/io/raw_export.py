"""Raw export: every raw table in its long format, so that re-importing it is lossless.

``python -m core.io export DIR --format raw`` writes one file per raw table
(:data:`core.vocab.RAW_TABLES`) with exactly the columns of
:data:`core.io.schema.TABLE_SPECS`, named after the table (``observations.csv``), so that
``python -m core.io import DIR/*.csv`` into an **empty** database (SQLite or PostgreSQL)
reproduces every stored raw row and, through the same validation, unit conversion and
derivation, every derived number (daily SOFA, provenance, endpoints).

Values as received
------------------
Observations and infusions are stored in canonical units *and* as received
(``value_as_received`` / ``unit_as_received``, ``rate_as_received``): provenance shows the
received value and ``use_printed_si_bands`` (clinical.md 5.2) scores SI values on the printed SI
bands. The export therefore writes the value and unit **as received**: re-importing converts
them with the same :func:`core.units.convert` to the same canonical value (bit for bit) and
keeps the same received value and unit. Writing the canonical value instead would lose the
received unit (an SI bilirubin would come back as mg/dL) and change ``use_printed_si_bands``
scores and provenance. Rows without a received value (none are written by this code) fall
back to the canonical value and unit.

Blinding: ``randomisation`` (the arm) is written only with ``include_arm=True``, like the
ADaM export's ``ARM``; without it the other tables are written and the caller says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import pandas as pd
from sqlalchemy.engine import Engine

from core import db
from core.exceptions import DataValidationError, Problem
from core.io.schema import TABLE_SPECS
from core.io.stored import read_table

FileFormat = Literal["csv", "parquet"]
FILE_FORMATS: Final = ("csv", "parquet")
#: the table that holds the arm (blinding): exported only on request
ARM_TABLE: Final = "randomisation"

#: table -> (stored canonical column, stored as-received column) pairs written as received
_AS_RECEIVED: Final = MappingProxyType(
    {
        "observations": (("value", "value_as_received"), ("unit", "unit_as_received")),
        "infusions": (("rate", "rate_as_received"), ("unit", "unit_as_received")),
    }
)


def raw_export_tables(include_arm: bool) -> tuple[str, ...]:
    """The raw tables an export writes, in foreign-key order (``randomisation`` only with
    ``include_arm``)."""
    return tuple(t for t in db.RAW_TABLES if include_arm or t != ARM_TABLE)


def _as_received(table: str, stored: pd.DataFrame) -> pd.DataFrame:
    """Value and unit as received where both were kept; the canonical ones otherwise."""
    pairs = _AS_RECEIVED.get(table)
    if not pairs or len(stored) == 0:
        return stored
    out = stored.copy()
    kept = pd.Series(True, index=stored.index)
    for _canonical, received in pairs:
        kept &= stored[received].notna()
    for canonical, received in pairs:
        out[canonical] = stored[received].where(kept, stored[canonical])
    return out


def raw_table_frame(engine: Engine, table: str) -> pd.DataFrame:
    """One raw table as written by :func:`export_raw`: the long-format columns of
    :data:`TABLE_SPECS`, values as received, sorted by the natural key."""
    spec = TABLE_SPECS[table]
    with engine.connect() as conn:
        stored = read_table(conn, db.metadata.tables[table])
    frame = _as_received(table, stored)
    frame = frame[list(spec.columns)]
    return frame.sort_values(list(spec.key), kind="stable", ignore_index=True)


def export_raw(
    engine: Engine,
    out_dir: str | Path,
    *,
    include_arm: bool,
    file_format: FileFormat = "csv",
    tables: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the raw tables as ``<table>.csv`` (or ``.parquet``) files.

    Parameters
    ----------
    engine
        Database to export (the schema is not modified).
    out_dir
        Folder (created) that receives the files.
    include_arm
        Write ``randomisation`` (the arm: unblinded exports only).
    file_format
        ``"csv"`` (UTF-8, empty cell = missing, floats written to round-trip exactly) or
        ``"parquet"`` (typed columns).
    tables
        Only these raw tables (default: every one :func:`raw_export_tables` allows).

    Returns
    -------
    dict
        Table -> path written (every table, also the empty ones, so that an import of the
        folder sees the full set).

    Raises
    ------
    DataValidationError
        The database holds no ImmunoSep tables (e.g. a mistyped SQLite path).
    """
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format {file_format!r}: expected one of {', '.join(FILE_FORMATS)}")
    allowed = raw_export_tables(include_arm)
    wanted = allowed if tables is None else tuple(t for t in allowed if t in set(tables))
    with engine.connect() as conn:
        version = db.stored_schema_version(conn)
    if version is None:  # a mistyped URL must not export an empty "copy"
        raise DataValidationError(
            [
                Problem(
                    engine.url.render_as_string(hide_password=True),
                    None,
                    None,
                    "(no ImmunoSep tables)",
                    "a database written by this dashboard (python -m core.io import or demo)",
                )
            ]
        )
    db.ensure_schema(engine)  # an older layout is migrated, as on any open
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for table in wanted:
        frame = raw_table_frame(engine, table)
        path = out / f"{table}.{file_format}"
        if file_format == "csv":
            # floats as repr (shortest exact round trip), no index, empty cell = missing
            frame.to_csv(path, index=False, encoding="utf-8")
        else:
            frame.to_parquet(path, index=False)
        paths[table] = path
    return paths
