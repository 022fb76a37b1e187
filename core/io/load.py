"""All-or-nothing import: validate, skip identical stored rows, refuse conflicts, insert.

Everything after validation happens in **one** transaction holding the writer lock: rows
already stored identically (by natural key) are skipped, rows that would overwrite a stored
value are refused, the rest is inserted, the derived daily SOFA of the affected patients is
recomputed (:mod:`core.io.recompute`), the dataset version is bumped and the import logged.
Re-importing the same content is a no-op (status ``"duplicate"``).
"""

from __future__ import annotations

import hashlib
import json
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.exceptions import DataValidationError, Problem
from core.io.read import read_files
from core.io.recompute import recompute_derived
from core.io.report import dedupe, file_rows, plain
from core.io.schema import DEFAULT_SOFA_RULES, TABLE_SPECS, TableSpec
from core.io.stored import read_table, stored_patients, stored_withdrawn_ids
from core.io.validate import validate_and_type
from core.rules import SofaRules

# import


@dataclass(frozen=True)
class ImportResult:
    """Outcome of :func:`import_tables`."""

    status: Literal["imported", "duplicate"]
    import_id: int | None
    dataset_version: str
    content_sha256: str
    #: rows inserted per table
    inserted: Mapping[str, int] = field(default_factory=dict)
    #: rows skipped per table because an identical row was already stored
    skipped: Mapping[str, int] = field(default_factory=dict)
    n_patients_recomputed: int = 0
    seconds: float = 0.0


def content_hash(tables: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 of typed tables (order of tables and columns does not matter).

    Computed after validation and unit conversion, so the same content read from CSV or
    Parquet hashes the same. Per table: its name, columns and row count, then the row hashes
    of ``pandas.util.hash_pandas_object(frame.astype(str), index=False)``, floats first
    formatted to 12 significant digits (CSV parsers may differ from Parquet by one ulp). The
    text of a float, time or categorical column is made and hashed once per distinct value
    (:func:`_column_hashes`), not once per row; the digests are those of the row-wise code
    (pinned in tests/test_io.py).
    """
    h = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        cols = sorted(
            c for c in frame.columns if c in TABLE_SPECS.get(name, TableSpec({}, ())).columns
        )
        h.update(f"{name}:{','.join(cols)}:{len(frame)};".encode())
        if len(frame):
            hashes = _column_hashes(frame[cols].reset_index(drop=True))
            h.update(_combine_hashes([hashes[c] for c in cols]).tobytes())
    return h.hexdigest()


#: pandas' time resolutions (the digits ``astype(str)`` prints) -> their Arrow type
_TIME_TEXT: Final = MappingProxyType(
    {
        "date": pa.date32(),
        "s": pa.timestamp("s"),
        "ms": pa.timestamp("ms"),
        "us": pa.timestamp("us"),
        "ns": pa.timestamp("ns"),
    }
)


def _text_hashes(texts: np.ndarray) -> np.ndarray:
    """``pandas.util.hash_array`` of texts (object array of str), uint64 per text."""
    return pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)


def _combine_hashes(columns: list[np.ndarray]) -> np.ndarray:
    """Row hashes from column hashes, as ``hash_pandas_object`` of a DataFrame combines them
    (``pandas.core.util.hashing.combine_hash_arrays``: CPython's tuple hash)."""
    mult = np.uint64(1000003)
    out = np.zeros_like(columns[0]) + np.uint64(0x345678)
    for i, column in enumerate(columns):
        inverse = len(columns) - i
        out ^= column
        out *= mult
        mult += np.uint64(82520 + inverse + inverse)
    out += np.uint64(97531)
    return out


def _column_hashes(sub: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per column, the uint64 hash of each row's text, as ``hash_pandas_object`` hashes the
    columns of ``sub.astype(str)`` (float columns first formatted ``f"{v:.12g}"``).

    A float column is factorized on its bits, a time column on its ticks, a categorical on its
    codes: only the distinct values are formatted and hashed, and the hashes taken per row
    (``hash_pandas_object`` itself hashes a text column by its distinct texts). Other columns
    go through ``astype(str)`` as before.
    """
    out: dict[str, np.ndarray] = {}
    times = [
        c
        for c in sub.columns
        if isinstance(sub[c].dtype, np.dtype) and np.issubdtype(sub[c].dtype, np.datetime64)
    ]
    if times:
        out.update(_time_hashes(sub[times]))
    rest = []
    for c in sub.columns:
        if c in out:
            continue
        dtype = sub[c].dtype
        if isinstance(dtype, np.dtype) and dtype in (np.float64, np.float32):
            bits = sub[c].to_numpy(dtype="float64").view("int64")
            codes, uniques = pd.factorize(bits)
            texts = [f"{v:.12g}" for v in uniques.view("float64")]
            out[c] = _text_hashes(np.array(texts, dtype=object)).take(codes)
        elif isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype == object:
            cat = sub[c].array
            texts = [*(str(v) for v in dtype.categories), "nan"]  # code -1 (missing): "nan"
            out[c] = _text_hashes(np.array(texts, dtype=object)).take(cat.codes)
        else:
            rest.append(c)
    if rest:
        printed = sub[rest].astype(str)
        out.update({c: _distinct_text_hashes(printed[c].to_numpy()) for c in rest})
    return out


def _distinct_text_hashes(texts: np.ndarray) -> np.ndarray:
    """``pandas.util.hash_array`` of a text column, each distinct text hashed once (Arrow's
    dictionary encoding finds them; pandas' factorizing gives the same hashes, slower)."""
    try:
        encoded = pa.array(texts, type=pa.string()).dictionary_encode()
    except (pa.ArrowException, UnicodeError):  # not expected after astype(str): pandas then
        return pd.util.hash_array(texts)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    return _text_hashes(distinct).take(encoded.indices.to_numpy())


def _time_hashes(times: pd.DataFrame) -> dict[str, np.ndarray]:
    """Hashes of time columns printed as ``times.astype(str)`` prints them, one text per
    distinct value.

    pandas prints the time columns of one storage block alike: dates only when every value
    of the block is a midnight, else with the digits of the block's finest value (none,
    milliseconds, microseconds, nanoseconds); the table after ``reset_index`` (as the
    row-wise code had it) keeps one block per dtype. The rows holding each column's first value,
    first non-midnight and first value with finer digits keep every block's choice: they
    are printed by pandas itself, the Arrow text type giving the same text is found per
    column, and the column's distinct values are printed with it. A column no Arrow type
    reproduces is printed by pandas in full (as before)."""
    nat = np.iinfo(np.int64).min
    rows: set[int] = set()
    for c in times.columns:
        unit, _ = np.datetime_data(times[c].dtype)
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}.get(unit)
        if per_second is None:
            return {}
        ticks = times[c].to_numpy().view("int64")
        present = ticks != nat
        rows.update(np.flatnonzero(present)[:1].tolist())
        for step_ns in (10**3, 10**6, 10**9, 86_400 * 10**9):
            step = step_ns * per_second // 10**9
            if step > 1:
                rows.update(np.flatnonzero(present & (ticks % step != 0))[:1].tolist())
    sample = times.take(sorted(rows))
    printed = sample.astype(str)
    out: dict[str, np.ndarray] = {}
    for c in times.columns:
        codes, uniques = pd.factorize(times[c].to_numpy().view("int64"))
        texts = None
        for arrow_type in _TIME_TEXT.values():
            mine = _arrow_time_text(sample[c].to_numpy(), arrow_type)
            if mine is not None and (mine == printed[c].to_numpy()).all():
                texts = _arrow_time_text(uniques.view(times[c].dtype), arrow_type)
                break
        if texts is None:  # not expected: pandas prints every column as before
            out[c] = pd.util.hash_array(times[[c]].astype(str)[c].to_numpy())
        else:
            out[c] = _text_hashes(texts).take(codes)
    return out


def _arrow_time_text(values: np.ndarray, arrow_type: pa.DataType) -> np.ndarray | None:
    """``values`` (numpy datetime64) as Arrow prints them at ``arrow_type`` ("NaT" for
    missing); None when the type would drop digits."""
    try:
        cast = pa.array(values, from_pandas=True).cast(arrow_type)  # safe: refuses losses
    except pa.ArrowInvalid:
        return None
    text = cast.cast(pa.string()).to_numpy(zero_copy_only=False)
    text[pd.isna(text)] = "NaT"
    return text.astype(object)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality with NaN == NaN and a relative float tolerance."""
    both_na = (a.isna() & b.isna()).to_numpy()
    if pd.api.types.is_float_dtype(a.dtype) and pd.api.types.is_float_dtype(b.dtype):
        eq = np.isclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12)
    else:
        eq = a.astype(object).to_numpy() == b.astype(object).to_numpy()
    return both_na | (eq & ~(a.isna() | b.isna()).to_numpy())


#: interval tables whose open end (``stop`` empty) a later import may close: the one update a
#: stored row accepts (an ICU discharge or the end of a ventilation arrives after the start)
CLOSABLE: Final = MappingProxyType({"icu_stays": "stop", "episodes": "stop"})


def _new_rows(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    *,
    source: str,
    closing: list[pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, int, list[Problem]]:
    """Rows not yet stored, the number of identical stored rows skipped, and conflicts.

    Rows of a :data:`CLOSABLE` table that differ from their stored row only by giving the
    stored open end a time are appended to ``closing`` (key columns and the end), not
    reported as conflicts."""
    spec = TABLE_SPECS[table]
    t = db.metadata.tables[table]
    key = list(spec.key)
    if len(frame) == 0:
        return frame, 0, []
    # a stored row can only match on the whole natural key: when the key holds a time, only
    # stored rows within the batch's time range are read (an append of the last hour reads
    # the last hour, not every patient's whole history)
    times = [c for c in key if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)]
    between = None
    if times and frame[times[0]].notna().any():
        col = frame[times[0]]
        # whole microseconds outward (stored times have no finer resolution)
        low, high = col.min().floor("us"), col.max().ceil("us")
        between = (times[0], low.to_pydatetime(), high.to_pydatetime())
    if "patient_id" in key:
        stored = read_table(
            conn, t, patient_ids=frame["patient_id"].dropna().unique().tolist(), between=between
        )
    else:
        stored = read_table(
            conn, t, patient_ids=frame[key[0]].dropna().unique().tolist(), column=key[0]
        )
    if len(stored) == 0:
        return frame, 0, []
    left = frame.reset_index(names="_row_index")
    right = stored[key + list(spec.compare)].rename(columns={c: f"_old_{c}" for c in spec.compare})
    for c in key:
        if pd.api.types.is_datetime64_any_dtype(left[c].dtype):
            right[c] = right[c].astype("datetime64[ns]")
        else:
            right[c] = right[c].astype(object)
            left[c] = left[c].astype(object)
    merged = left.merge(right, on=key, how="left", indicator=True)
    exists = (merged["_merge"] == "both").to_numpy()
    conflicts: list[Problem] = []
    conflict_mask = np.zeros(len(merged), dtype=bool)
    rows = merged["_row_index"].to_numpy() + 1
    end = CLOSABLE.get(table)
    closes = np.zeros(len(merged), dtype=bool)
    if end is not None and closing is not None and f"_old_{end}" in merged.columns:
        others = [c for c in spec.compare if c != end and c in merged.columns]
        closes = exists & merged[f"_old_{end}"].isna().to_numpy() & merged[end].notna().to_numpy()
        for c in others:
            closes &= _same(merged[c], merged[f"_old_{c}"])
        if closes.any():
            closing.append(merged.loc[closes, [*key, end]].reset_index(drop=True))
            exists = exists & ~closes  # neither identical (skipped) nor a conflict
    for c in spec.compare:
        if c not in merged.columns:
            continue
        diff = exists & ~_same(merged[c], merged[f"_old_{c}"])
        for k in np.flatnonzero(diff & ~conflict_mask):
            conflicts.append(
                Problem(
                    source,
                    int(rows[k]),
                    c,
                    plain(merged[c].iloc[k]),
                    f"{plain(merged[f'_old_{c}'].iloc[k])!r} as already stored for this "
                    f"({', '.join(key)}); stored rows are never overwritten",
                    patient_id=merged["patient_id"].iloc[k] if "patient_id" in merged else None,
                )
            )
        conflict_mask |= diff
    keep = ~exists & ~closes
    new = frame.iloc[np.flatnonzero(keep)]
    return new, int(exists.sum()) - int(conflict_mask.sum()), conflicts


#: what an append batch may reference (every other patient must be stored already)
_APPEND_EXPECTED: Final = (
    "a patient already in the database (--append adds rows for known patients only; "
    "import new patients without --append)"
)


def _unknown_patients(
    tables: Mapping[str, pd.DataFrame], known: set[str], names: Mapping[str, str]
) -> list[Problem]:
    """One problem per row of an append batch whose patient is not stored."""
    problems: list[Problem] = []
    for table, frame in tables.items():
        if "patient_id" not in frame.columns or table == "disposition":
            continue
        ids = frame["patient_id"].astype(str).str.strip()
        rows = file_rows(frame)
        for k in np.flatnonzero(~ids.isin(known).to_numpy()):
            problems.append(
                Problem(
                    names.get(table, table),
                    int(rows[k]),
                    "patient_id",
                    ids.iloc[k],
                    _APPEND_EXPECTED,
                    patient_id=ids.iloc[k],
                )
            )
    return problems


def _close_intervals(conn: Connection, table: str, closed: pd.DataFrame) -> int:
    """Give stored open intervals (end empty) their end; returns the number of rows closed."""
    t = db.metadata.tables[table]
    end = CLOSABLE[table]
    key = list(TABLE_SPECS[table].key)
    n = 0
    for r in closed.to_dict("records"):
        values = {
            c: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for c, v in r.items()
        }
        stmt = (
            t.update()
            .where(*(t.c[c] == values[c] for c in key), t.c[end].is_(None))
            .values({end: values[end]})
        )
        n += conn.execute(stmt).rowcount
    return n


def _stored_stays(conn: Connection, stays: pd.DataFrame | None) -> pd.DataFrame | None:
    """Stored ICU stays of the patients of an ``icu_stays`` file (None without such a file)."""
    if stays is None or "patient_id" not in stays.columns or len(stays) == 0:
        return None
    ids = sorted({str(v) for v in stays["patient_id"].dropna()})
    return read_table(conn, db.icu_stays, patient_ids=ids)


def _referenced_patients(tables: Mapping[str, pd.DataFrame]) -> list[str] | None:
    """The patients a batch without a ``patients`` table refers to (stripped ids, as
    validation reads them), or None (every stored patient) when it brings patients: the
    stored patients validation needs, not the whole cohort (docs/ward.md, performance)."""
    if "patients" in tables:
        return None
    ids: set[str] = set()
    for frame in tables.values():
        if "patient_id" in frame.columns:
            ids.update(frame["patient_id"].dropna().astype(str).str.strip())
    return sorted(ids)


#: the time column of each raw table whose new rows change derived days from that time on
_ROW_TIMES: Final = MappingProxyType(
    {"observations": "time", "infusions": "start", "episodes": "start"}
)


def _earliest_new(
    frames: Mapping[str, pd.DataFrame], *, whole: set[str]
) -> dict[str, pd.Timestamp]:
    """Per affected patient, the earliest time of the raw rows an import adds (the derived
    days before it stay as stored: :func:`core.io.recompute.recompute_derived`). Patients who
    get a ``patients`` row, and ``whole`` (an interval closed), are left out: every day of
    theirs is derived again."""
    earliest: dict[str, pd.Timestamp] = {}
    full = set(whole)
    if "patients" in frames:
        full.update(frames["patients"]["patient_id"].dropna().astype(str))
    for table, col in _ROW_TIMES.items():
        frame = frames.get(table)
        if frame is None or len(frame) == 0:
            continue
        first = frame.groupby("patient_id")[col].min()
        for pid, t in first.items():
            if pd.isna(t):
                full.add(str(pid))
            elif str(pid) not in earliest or t < earliest[str(pid)]:
                earliest[str(pid)] = pd.Timestamp(t)
    return {p: t for p, t in earliest.items() if p not in full}


def _storable(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c.name for c in db.metadata.tables[table].columns if c.name != "id"]
    return frame.reindex(columns=cols)


def import_tables(
    engine: Engine,
    tables: Mapping[str, pd.DataFrame],
    *,
    source_names: Mapping[str, str] | None = None,
    user: str = "cli",
    rules: SofaRules = DEFAULT_SOFA_RULES,
    append: bool = False,
) -> ImportResult:
    """Validate and import long-format tables, all or nothing.

    Parameters
    ----------
    engine
        Target database (the schema is created or migrated first).
    tables
        Table name -> DataFrame (see :func:`read_files`, :data:`TABLE_SPECS`).
    source_names
        Table -> file name for problem reports and the import log.
    user
        Who imports (import log).
    rules
        SOFA rules under which the derived daily SOFA of the affected patients is recomputed.
    append
        A batch of new rows for patients already stored (``--append``): a row of any other
        patient is refused, naming it. Rows already stored identically are skipped either way,
        so a batch sent twice is imported once; an ICU stay or episode stored open gets its end.

    Returns
    -------
    ImportResult
        ``status="duplicate"`` (nothing written, dataset version unchanged) when the same
        content was imported before or every row is already stored identically.

    Raises
    ------
    DataValidationError
        Every problem of every table (nothing written), including rows that would overwrite a
        stored value with a different one.
    """
    t0 = _time.perf_counter()
    db.ensure_schema(engine)
    names = {
        t: (dict(source_names or {}).get(t) or f.attrs.get("source") or t)
        for t, f in tables.items()
    }
    started = db._utcnow()
    with db.writer_transaction(engine) as conn:
        known = stored_patients(conn, _referenced_patients(tables))
        if append:
            unknown = _unknown_patients(tables, set(known["patient_id"]), names)
            if unknown:
                raise DataValidationError(unknown)
        validated = validate_and_type(
            tables,
            existing_patients=known,
            source_names=names,
            withdrawn_ids=stored_withdrawn_ids(conn),
            existing_stays=_stored_stays(conn, tables.get("icu_stays")),
        )
        if validated.problems:
            raise DataValidationError(validated.problems)
        typed = validated.tables
        digest = content_hash(typed)
        seen = conn.execute(
            sa.select(db.import_log.c.id).where(
                db.import_log.c.content_sha256 == digest, db.import_log.c.status == "imported"
            )
        ).first()
        if seen is not None:
            return ImportResult(
                "duplicate",
                seen.id,
                db.dataset_version(conn),
                digest,
                seconds=_time.perf_counter() - t0,
            )
        # sites referenced by patients / disposition
        site_frames = [typed["sites"]] if "sites" in typed else []
        for t in ("patients", "disposition"):
            if t in typed and len(typed[t]):
                site_frames.append(
                    pd.DataFrame({"site_id": typed[t]["site_id"].unique(), "name": None})
                )
        if site_frames:
            sites = pd.concat(site_frames, ignore_index=True).drop_duplicates("site_id")
            stored_sites = {r[0] for r in conn.execute(sa.select(db.sites.c.site_id))}
            typed["sites"] = sites[~sites["site_id"].isin(stored_sites)].reset_index(drop=True)
        inserted: dict[str, int] = {}
        skipped: dict[str, int] = {}
        conflicts: list[Problem] = []
        new_frames: dict[str, pd.DataFrame] = {}
        closings: dict[str, pd.DataFrame] = {}
        for table in db.RAW_TABLES:
            if table not in typed:
                continue
            if table == "sites":
                new_frames[table] = typed[table]
                continue
            closing: list[pd.DataFrame] = []
            new, n_same, bad = _new_rows(
                conn, table, typed[table], source=names.get(table, table), closing=closing
            )
            conflicts.extend(bad)
            new_frames[table] = new
            skipped[table] = n_same
            if closing:
                closings[table] = closing[0]
        if conflicts:
            raise DataValidationError(dedupe(conflicts))
        affected: set[str] = set()
        stored_frames: dict[str, pd.DataFrame] = {}
        for table in db.RAW_TABLES:
            if table not in new_frames:
                continue
            frame = _storable(table, new_frames[table])
            stored_frames[table] = frame
            inserted[table] = db.bulk_insert(conn, db.metadata.tables[table], frame)
            if table in ("patients", "observations", "infusions", "episodes") and len(frame):
                affected.update(frame["patient_id"].dropna().unique().tolist())
        for table, closed in closings.items():
            inserted[f"{table} closed"] = _close_intervals(conn, table, closed)
            affected.update(closed["patient_id"].astype(str).unique().tolist())
        if not any(inserted.values()):
            return ImportResult(
                "duplicate",
                None,
                db.dataset_version(conn),
                digest,
                skipped=skipped,
                seconds=_time.perf_counter() - t0,
            )
        recompute_derived(
            conn,
            sorted(affected),
            rules=rules,
            fresh=stored_frames,
            since=_earliest_new(
                stored_frames,
                whole={str(v) for c in closings.values() for v in c["patient_id"]},
            ),
        )
        version = db.bump_dataset_version(conn, digest)
        import_id = conn.execute(
            db.import_log.insert().returning(db.import_log.c.id),
            {
                "started_at": started,
                "finished_at": db._utcnow(),
                "status": "imported",
                "source_names": json.dumps(sorted(names.values())),
                "content_sha256": digest,
                "row_counts": json.dumps(inserted, sort_keys=True),
                "user": user,
                "rules_key": rules.key(),
            },
        ).scalar_one()
    return ImportResult(
        "imported",
        int(import_id),
        version,
        digest,
        inserted=inserted,
        skipped=skipped,
        n_patients_recomputed=len(affected),
        seconds=_time.perf_counter() - t0,
    )


def import_files(
    engine: Engine,
    paths: Iterable[str | Path],
    *,
    user: str = "cli",
    rules: SofaRules = DEFAULT_SOFA_RULES,
) -> ImportResult:
    """Read files with :func:`read_files` and import them with :func:`import_tables`."""
    tables = read_files(paths)
    return import_tables(engine, tables, user=user, rules=rules)
