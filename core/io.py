"""Validation, all-or-nothing import and ADaM import/export; ``python -m core.io``.

Import pipeline (:func:`import_tables`):

1. validate every table (pandera value checks plus cross-table rules) and collect **all**
   problems; any problem raises :class:`~core.exceptions.DataValidationError` before anything
   is written;
2. in **one** transaction holding the writer lock: skip rows already stored (identical by
   natural key), reject rows that would overwrite a stored value, insert the rest, recompute
   the derived daily SOFA and provenance of the affected patients, bump the dataset version
   and write the import log. A crash or a killed process leaves the database as it was.

Re-importing the same content is a no-op (status ``"duplicate"``).

The module never reads ``os.environ``: the command line takes ``--database-url`` and otherwise
uses ``data/immunosep.sqlite`` under the project root.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io as stdlib_io
import json
import sys
import time as _time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import db
from core.exceptions import DataValidationError, Problem
from core.rules import EndpointRules, SofaRules
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL, Arm, Phenotype

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH: Final = PROJECT_ROOT / "data" / "immunosep.sqlite"
#: default SOFA rules (frozen, so a safe default argument)
DEFAULT_SOFA_RULES: Final = SofaRules()
DEFAULT_ENDPOINT_RULES: Final = EndpointRules()

Kind = Literal["str", "float", "datetime", "bool"]


@dataclass(frozen=True)
class ColumnSpec:
    """Type and value rules of one column of a long-format table."""

    kind: Kind
    required: bool = True  # the column must be present in the file
    nullable: bool = False  # an empty cell is allowed
    isin: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    unit: str = ""

    def expected(self) -> str:
        """Human description of a valid value."""
        base = {
            "str": "a text value",
            "float": "a finite number",
            "datetime": "an ISO 8601 date-time (UTC), e.g. 2024-03-01 14:30",
            "bool": "true/false (or 1/0, yes/no)",
        }[self.kind]
        if self.isin is not None:
            base = "one of " + ", ".join(repr(v) for v in self.isin)
        if self.low is not None or self.high is not None:
            base += f" in {self.low:g}-{self.high:g} {self.unit}".rstrip()
        return base


@dataclass(frozen=True)
class TableSpec:
    """Columns, natural key and time columns of a long-format table (docs/architecture.md)."""

    columns: Mapping[str, ColumnSpec]
    key: tuple[str, ...]
    #: event times that must fall after birth and not after death
    event_times: tuple[str, ...] = ()
    #: columns compared when a row with the same natural key is already stored
    compare: tuple[str, ...] = ()


def _c(kind: Kind, **kw: Any) -> ColumnSpec:
    return ColumnSpec(kind, **kw)


_OPT = {"required": False, "nullable": True}

#: the long-format tables accepted by the importer, in foreign-key order
TABLE_SPECS: Final[Mapping[str, TableSpec]] = MappingProxyType(
    {
        "sites": TableSpec(
            {"site_id": _c("str"), "name": _c("str", **_OPT), "country": _c("str", **_OPT)},
            key=("site_id",),
        ),
        "patients": TableSpec(
            {
                "patient_id": _c("str"),
                "site_id": _c("str"),
                "anchor_time": _c("datetime"),
                "weight_kg": _c("float", low=20.0, high=350.0, unit="kg"),
                "death_time": _c("datetime", **_OPT),
                "age_years": _c("float", low=0.0, high=120.0, unit="years", **_OPT),
                "sex": _c("str", isin=("F", "M"), **_OPT),
                "apache_ii": _c("float", low=0.0, high=71.0, unit="points", **_OPT),
                "charlson": _c("float", low=0.0, high=37.0, unit="points", **_OPT),
                "infection_type": _c("str", **_OPT),
                "mechanical_ventilation": _c("bool", **_OPT),
                "randomised_at": _c("datetime", **_OPT),
            },
            key=("patient_id",),
            compare=("site_id", "anchor_time", "weight_kg", "death_time", "age_years", "sex"),
        ),
        "randomisation": TableSpec(
            {
                "patient_id": _c("str"),
                "arm": _c("str", isin=tuple(a.value for a in Arm)),
                "randomised_at": _c("datetime", **_OPT),
            },
            key=("patient_id",),
            event_times=("randomised_at",),
            compare=("arm",),
        ),
        "observations": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                "variable": _c("str"),
                "value": _c("float"),
                "unit": _c("str"),
                "source": _c("str", **_OPT),
            },
            key=("patient_id", "time", "variable"),
            event_times=("time",),
            compare=("value",),
        ),
        "infusions": TableSpec(
            {
                "patient_id": _c("str"),
                "drug": _c("str"),
                "start": _c("datetime"),
                "stop": _c("datetime"),
                "rate": _c("float"),
                "unit": _c("str"),
            },
            key=("patient_id", "start", "drug"),
            event_times=("start",),
            compare=("stop", "rate"),
        ),
        "episodes": TableSpec(
            {
                "patient_id": _c("str"),
                "kind": _c(
                    "str",
                    isin=(
                        "invasive_ventilation",
                        "noninvasive_ventilation",
                        "cpap",
                        "oxygen",
                        "sedation",
                        "rrt",
                    ),
                ),
                "start": _c("datetime"),
                "stop": _c("datetime", nullable=True),
            },
            key=("patient_id", "start", "kind"),
            event_times=("start",),
            compare=("stop",),
        ),
        "biomarkers": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                "ferritin_ng_ml": _c("float", nullable=True, low=0.0, high=500_000.0, unit="ng/mL"),
                "hla_dr_ab_per_cell": _c(
                    "float", nullable=True, low=0.0, high=200_000.0, unit="AB/C"
                ),
            },
            key=("patient_id", "time"),
            event_times=("time",),
            compare=("ferritin_ng_ml", "hla_dr_ab_per_cell"),
        ),
        "doses": TableSpec(
            {
                "patient_id": _c("str"),
                "time": _c("datetime"),
                "route": _c("str", isin=("IV", "SC")),
                # blinding: the product is never stored, only the neutral label
                "label": _c("str", isin=("study drug",)),
            },
            key=("patient_id", "time", "route"),
            event_times=("time",),
            compare=("label",),
        ),
        "adverse_events": TableSpec(
            {
                "patient_id": _c("str"),
                "onset_time": _c("datetime"),
                "soc": _c("str"),
                "pt": _c("str"),
                "serious": _c("bool"),
                "severe": _c("bool"),
                "related": _c("bool"),
                "aesi": _c("str", isin=("anemia", "hemorrhage"), **_OPT),
            },
            key=("patient_id", "onset_time", "pt"),
            event_times=("onset_time",),
            compare=("soc", "serious", "severe", "related"),
        ),
        "disposition": TableSpec(
            {
                "screening_id": _c("str"),
                "site_id": _c("str"),
                "patient_id": _c("str", nullable=True),
                "excluded_reason": _c("str", **_OPT),
                "phenotype_at_screening": _c("str", isin=tuple(p.value for p in Phenotype), **_OPT),
                "withdrawn_with_data_removal": _c("bool"),
            },
            key=("screening_id",),
            compare=("site_id", "patient_id"),
        ),
    }
)

#: ADaM file stems understood by :func:`read_files` (mapped with :func:`from_adam`)
ADAM_INPUTS: Final = ("adsl", "adae", "adlb")

_TRUE: Final = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "0", "0.0"})


# ---------------------------------------------------------------------------------------------
# reading files


def table_name_for(path: str | Path) -> str | None:
    """Long-format table (or ADaM dataset) a file holds, from its stem; None if unknown.

    ``observations.csv`` and ``observations_site3.parquet`` both map to ``observations``;
    ``adsl.csv`` / ``ADSL.parquet`` map to ``adsl``.
    """
    stem = Path(path).name.split(".")[0].lower()
    for name in (*TABLE_SPECS, *ADAM_INPUTS):
        if stem == name or stem.startswith((name + "_", name + "-")):
            return name
    return None


#: default upload size limit of :func:`read_uploads` (bytes per file)
MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024


def read_files(paths: Iterable[str | Path]) -> dict[str, pd.DataFrame]:
    """Read CSV or Parquet files in the long formats (or ADaM ADSL/ADAE/ADLB).

    Parameters
    ----------
    paths
        Files; the table is taken from the file name (see :func:`table_name_for`). CSV cells
        are read as text and typed by validation; Parquet keeps its types.

    Returns
    -------
    dict
        Table name -> DataFrame whose index is the 0-based data row in the file. ADaM inputs
        are mapped to the long format with :func:`from_adam`. ``frame.attrs["source"]`` names
        the file each table came from.

    Raises
    ------
    DataValidationError
        Unknown file names, two files for one table, unreadable or malformed files: every
        problem of every file at once.
    """
    return _read_sources([(Path(p).name, Path(p)) for p in paths])


def read_uploads(
    files: Mapping[str, bytes], *, max_bytes: int = MAX_UPLOAD_BYTES
) -> dict[str, pd.DataFrame]:
    """Read uploaded files held in memory (the Data page), like :func:`read_files`.

    Parameters
    ----------
    files
        File name -> content (e.g. decoded from a ``dcc.Upload``).
    max_bytes
        Size limit per file; a larger file is reported, not read.

    Raises
    ------
    DataValidationError
        As :func:`read_files`, plus files above the size limit.
    """
    too_big = [
        Problem(name, None, None, f"{len(data)} bytes", f"at most {max_bytes} bytes per file")
        for name, data in files.items()
        if len(data) > max_bytes
    ]
    if too_big:
        raise DataValidationError(too_big)
    return _read_sources(list(files.items()))


def _read_sources(sources: Sequence[tuple[str, Path | bytes]]) -> dict[str, pd.DataFrame]:
    problems: list[Problem] = []
    raw: dict[str, pd.DataFrame] = {}
    for file_name, source in sources:
        name = table_name_for(file_name)
        if name is None:
            problems.append(
                Problem(
                    file_name,
                    None,
                    None,
                    file_name,
                    "a file named after a table: "
                    + ", ".join((*TABLE_SPECS, *ADAM_INPUTS))
                    + " (.csv or .parquet)",
                )
            )
            continue
        if name in raw:
            problems.append(
                Problem(
                    file_name,
                    None,
                    None,
                    file_name,
                    f"one file per table; {raw[name].attrs['source']} is also {name!r}",
                )
            )
            continue
        try:
            frame = _read_one(file_name, source)
        except DataValidationError as exc:
            problems.extend(exc.problems)
            continue
        frame.attrs["source"] = file_name
        raw[name] = frame
    if problems:
        raise DataValidationError(problems)
    adam = {k: raw.pop(k) for k in ADAM_INPUTS if k in raw}
    if adam:
        mapped = from_adam(adam.get("adsl"), adam.get("adae"), adam.get("adlb"))
        for name, frame in mapped.items():
            if name in raw:
                problems.append(
                    Problem(
                        frame.attrs.get("source", name),
                        None,
                        None,
                        name,
                        f"{name} from either {raw[name].attrs['source']} or ADaM, not both",
                    )
                )
            raw[name] = frame
    if problems:
        raise DataValidationError(problems)
    return raw


def _read_one(file_name: str, source: Path | bytes) -> pd.DataFrame:
    suffix = Path(file_name).suffix.lower()
    handle: Any = source if isinstance(source, Path) else stdlib_io.BytesIO(source)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(handle, dtype=str, skipinitialspace=True, encoding="utf-8")
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(handle)
        else:
            raise DataValidationError(
                [Problem(file_name, None, None, suffix, "a .csv or .parquet file")]
            )
    except DataValidationError:
        raise
    except Exception as exc:  # pandas, pyarrow and codecs raise many types for corrupt files
        raise DataValidationError(
            [Problem(file_name, None, None, type(exc).__name__, f"a readable file ({exc})")]
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    dup = frame.columns[frame.columns.duplicated()].tolist()
    if dup:
        raise DataValidationError(
            [Problem(file_name, None, c, c, "each column name once") for c in dup]
        )
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# validation


def _rows(frame: pd.DataFrame) -> np.ndarray:
    """1-based file rows of a frame (its index holds the 0-based data row in the file)."""
    idx = frame.index
    if pd.api.types.is_integer_dtype(idx.dtype) and idx.is_unique:
        return idx.to_numpy(dtype=np.int64) + 1
    return np.arange(1, len(frame) + 1)


def _py(value: Any) -> Any:
    """A plain Python value for a problem report."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _coerce(series: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray]:
    """Typed column and the mask of cells that are present but not of the type."""
    present = series.notna().to_numpy()
    if kind == "str":
        out = series.astype(object).where(series.notna(), None)
        out = out.map(lambda v: v if v is None else (str(v).strip() or None))
        return out.astype(object), np.zeros(len(series), dtype=bool)
    if kind == "float":
        if pd.api.types.is_bool_dtype(series.dtype):
            num = pd.Series(np.nan, index=series.index)
        else:
            num = pd.to_numeric(series, errors="coerce")
        num = num.astype("float64")
        num = num.where(np.isfinite(num))
        return num, present & num.isna().to_numpy()
    if kind == "datetime":
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            out = series
        elif pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            out = pd.Series(pd.NaT, index=series.index)
        else:
            text = series.astype(object).where(series.notna(), None)
            text = text.map(lambda v: v if v is None or not isinstance(v, str) else v.strip())
            try:
                out = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
            except (ValueError, TypeError, OverflowError):
                out = pd.Series(
                    [_one_datetime(v) for v in text], index=series.index, dtype="object"
                )
                out = pd.to_datetime(out, errors="coerce", utc=True)
            out = out.dt.tz_localize(None)
        out = out.astype("datetime64[ns]")
        return out, present & out.isna().to_numpy()

    # bool
    def _to_bool(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, bool | np.bool_):
            return bool(v)
        key = str(v).strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        return "invalid"

    mapped = series.astype(object).map(_to_bool)
    bad = (mapped == "invalid").to_numpy()
    mapped = mapped.where(~bad, None)
    return mapped.astype(object), present & bad


def _one_datetime(value: Any) -> Any:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if pd.isna(ts) else ts


def _pandera_schema(spec: TableSpec, columns: Iterable[str]) -> pa.DataFrameSchema:
    cols: dict[str, pa.Column] = {}
    for name in columns:
        cs = spec.columns[name]
        checks = []
        if cs.isin is not None:
            checks.append(pa.Check.isin(list(cs.isin), error=cs.expected()))
        if cs.low is not None and cs.high is not None:
            checks.append(pa.Check.in_range(cs.low, cs.high, error=cs.expected()))
        cols[name] = pa.Column(checks=checks, nullable=cs.nullable, coerce=False)
    return pa.DataFrameSchema(cols, strict=False)


@dataclass
class _Validated:
    """Typed tables (canonical units) and every problem found."""

    tables: dict[str, pd.DataFrame]
    problems: list[Problem]


def _patient_frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["patient_id", "anchor_time", "age_years", "death_time", "weight_kg"]
    if frame is None:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = frame.reindex(columns=cols).copy()
    out["patient_id"] = out["patient_id"].astype(object)
    for c in ("anchor_time", "death_time"):
        out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
    for c in ("age_years", "weight_kg"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


def _validate(
    tables: Mapping[str, pd.DataFrame],
    *,
    existing_patients: pd.DataFrame | Iterable[str] | None,
    source_names: Mapping[str, str] | None,
    withdrawn_ids: Iterable[str] = (),
) -> _Validated:
    problems: list[Problem] = []
    typed: dict[str, pd.DataFrame] = {}
    names = dict(source_names or {})

    def where(table: str) -> str:
        frame = tables.get(table)
        attr = frame.attrs.get("source") if frame is not None else None
        return names.get(table) or attr or table

    for table in tables:
        if table not in TABLE_SPECS:
            problems.append(
                Problem(where(table), None, None, table, "a table in " + ", ".join(TABLE_SPECS))
            )
    bad_cells: dict[str, set[tuple[int, str]]] = {}
    incomplete: set[str] = set()  # tables with a missing required column
    for table, spec in TABLE_SPECS.items():
        if table not in tables:
            continue
        frame = tables[table]
        src = where(table)
        rows = _rows(frame)
        missing = [c for c, cs in spec.columns.items() if cs.required and c not in frame.columns]
        for c in missing:
            problems.append(
                Problem(src, None, c, None, f"a column {c!r} ({spec.columns[c].expected()})")
            )
        out = pd.DataFrame(index=frame.index)
        bad: set[tuple[int, str]] = set()
        for c, cs in spec.columns.items():
            if c not in frame.columns:
                if not cs.required:
                    out[c] = pd.Series(
                        pd.NaT if cs.kind == "datetime" else None,
                        index=frame.index,
                        dtype="datetime64[ns]" if cs.kind == "datetime" else object,
                    )
                    if cs.kind == "float":
                        out[c] = out[c].astype("float64")
                continue
            values, wrong = _coerce(frame[c], cs.kind)
            out[c] = values
            for i in np.flatnonzero(wrong):
                bad.add((int(rows[i]), c))
                problems.append(Problem(src, int(rows[i]), c, _py(frame[c].iloc[i]), cs.expected()))
        if missing:
            incomplete.add(table)
            bad_cells[table] = bad
            typed[table] = out
            continue
        present = [c for c in spec.columns if c in out.columns]
        try:
            with warnings.catch_warnings():
                # pandera concatenates per-check failure cases, some of them all-NA: pandas
                # warns about the dtype rule of that concat; the failure cases are unaffected
                warnings.filterwarnings(
                    "ignore",
                    message="The behavior of DataFrame concatenation",
                    category=FutureWarning,
                )
                _pandera_schema(spec, present).validate(out, lazy=True)
        except pa.errors.SchemaErrors as exc:
            fc = exc.failure_cases
            pos_of = {lab: k for k, lab in enumerate(out.index)}
            for rec in fc.itertuples(index=False):
                if rec.index is None or (isinstance(rec.index, float) and np.isnan(rec.index)):
                    continue
                k = pos_of.get(rec.index)
                if k is None or rec.column not in spec.columns:
                    continue
                row = int(rows[k])
                if (row, rec.column) in bad:
                    continue  # already reported as a wrong type
                cs = spec.columns[rec.column]
                exp = (
                    "a value (this column may not be empty)"
                    if rec.check == "not_nullable"
                    else (cs.expected())
                )
                bad.add((row, rec.column))
                problems.append(Problem(src, row, rec.column, _py(rec.failure_case), exp))
        # duplicate natural keys within the file
        key = list(spec.key)
        dupl = out.duplicated(key, keep=False).to_numpy() & out[key].notna().all(axis=1).to_numpy()
        if dupl.any():
            first_row: dict[tuple[Any, ...], int] = {}
            for k in np.flatnonzero(dupl):
                kv = tuple(_py(out[c].iloc[k]) for c in key)
                if kv not in first_row:
                    first_row[kv] = int(rows[k])
                    continue
                problems.append(
                    Problem(
                        src,
                        int(rows[k]),
                        ", ".join(key),
                        kv if len(kv) > 1 else kv[0],
                        f"a unique ({', '.join(key)}); the same key is at row {first_row[kv]}",
                        patient_id=kv[0] if key[0] == "patient_id" else None,
                    )
                )
        bad_cells[table] = bad
        typed[table] = out

    # ---- patients known to this import and to the database --------------------------------
    new_patients = typed.get("patients")
    known = _patient_frame(new_patients)
    if existing_patients is not None:
        if isinstance(existing_patients, pd.DataFrame):
            ex = _patient_frame(existing_patients)
        else:
            ex = _patient_frame(pd.DataFrame({"patient_id": list(existing_patients)}))
        ex = ex[~ex["patient_id"].isin(known["patient_id"])]
        if len(known) == 0:
            known = ex
        elif len(ex):
            known = pd.concat([known, ex], ignore_index=True)
    known = known.dropna(subset=["patient_id"]).drop_duplicates("patient_id")
    info = known.set_index("patient_id")

    # ---- unit conversion (core.units) -------------------------------------------------------
    from core import units

    if "observations" in typed and "observations" not in incomplete:
        obs = typed["observations"]
        ok = obs[["patient_id", "time", "variable", "value", "unit"]].notna().all(axis=1)
        ok &= ~pd.Series(
            [(int(r), "value") in bad_cells["observations"] for r in _rows(obs)], index=obs.index
        )
        candidates = obs.loc[ok]
        try:
            typed["observations"] = units.normalize_observations(
                candidates, where=where("observations")
            )
        except DataValidationError as exc:
            problems.extend(_remap_rows(_file_columns(exc.problems, candidates), candidates))
            typed["observations"] = candidates.assign(
                value_as_received=candidates["value"], unit_as_received=candidates["unit"]
            )
    if "infusions" in typed and "infusions" not in incomplete:
        inf = typed["infusions"]
        ok = inf[["patient_id", "start", "stop", "rate", "unit", "drug"]].notna().all(axis=1)
        ok &= inf["patient_id"].isin(info.index)
        candidates = inf.loc[ok]
        weights = info.reset_index()[["patient_id", "weight_kg"]]
        try:
            converted = units.normalize_infusions(candidates, weights)
            converted = converted.rename(columns={"rate_mcg_kg_min": "_rate_kg"})
            scored = converted["_rate_kg"].notna()
            converted["rate"] = converted["_rate_kg"].where(scored, converted["rate"])
            converted["unit"] = converted["unit"].where(~scored, "mcg/kg/min")
            typed["infusions"] = converted.drop(columns=["_rate_kg"])
        except DataValidationError as exc:
            problems.extend(_remap_rows(exc.problems, candidates, where=where("infusions")))

    # ---- cross-table rules ------------------------------------------------------------------
    withdrawn = set(withdrawn_ids)
    if "disposition" in typed and "disposition" not in incomplete:
        disp = typed["disposition"]
        flag = disp["withdrawn_with_data_removal"].map(lambda v: v is True)
        withdrawn |= set(disp.loc[flag, "patient_id"].dropna())
    for table, spec in TABLE_SPECS.items():
        if (
            table not in typed
            or table in incomplete
            or table == "patients"
            or "patient_id" not in spec.columns
        ):
            continue
        frame = typed[table]
        src = where(table)
        rows = _rows(frame)
        pid = frame["patient_id"]
        unknown = pid.notna() & ~pid.isin(info.index)
        if table in ("randomisation", "disposition"):
            # randomised, then withdrawn with data removal: no patients row by design
            unknown &= ~pid.isin(withdrawn)
        unknown = unknown.to_numpy()
        for k in np.flatnonzero(unknown):
            problems.append(
                Problem(
                    src,
                    int(rows[k]),
                    "patient_id",
                    pid.iloc[k],
                    "a patient in the patients table of this import or already stored",
                    patient_id=pid.iloc[k],
                )
            )
        if not spec.event_times:
            continue
        anchor = pid.map(info["anchor_time"]) if len(info) else pd.Series(pd.NaT, index=pid.index)
        age = pid.map(info["age_years"]) if len(info) else pd.Series(np.nan, index=pid.index)
        death = pid.map(info["death_time"]) if len(info) else pd.Series(pd.NaT, index=pid.index)
        anchor = pd.to_datetime(anchor).astype("datetime64[ns]")
        death = pd.to_datetime(death).astype("datetime64[ns]")
        age = pd.to_numeric(age, errors="coerce").astype("float64")
        # earliest possible birth: anchor - (age + 1) years (age in completed years)
        birth = anchor - pd.to_timedelta((age + 1.0) * 365.25, unit="D")
        for c in spec.event_times:
            t = frame[c]
            before = (t.notna() & birth.notna() & (t < birth)).to_numpy()
            after = (t.notna() & death.notna() & (t > death)).to_numpy()
            for k in np.flatnonzero(before):
                problems.append(
                    Problem(
                        src,
                        int(rows[k]),
                        c,
                        str(t.iloc[k]),
                        f"a time after the patient's birth (born after {birth.iloc[k]:%Y-%m-%d}"
                        f", from age {age.iloc[k]:g} years at {anchor.iloc[k]})",
                        patient_id=pid.iloc[k],
                        time=str(t.iloc[k]),
                    )
                )
            for k in np.flatnonzero(after):
                problems.append(
                    Problem(
                        src,
                        int(rows[k]),
                        c,
                        str(t.iloc[k]),
                        f"a time at or before the patient's death ({death.iloc[k]})",
                        patient_id=pid.iloc[k],
                        time=str(t.iloc[k]),
                    )
                )
    if "patients" in typed and "patients" not in incomplete:
        pt = typed["patients"]
        rows = _rows(pt)
        early = (pt["death_time"].notna() & (pt["death_time"] < pt["anchor_time"])).to_numpy()
        for k in np.flatnonzero(early):
            problems.append(
                Problem(
                    where("patients"),
                    int(rows[k]),
                    "death_time",
                    str(pt["death_time"].iloc[k]),
                    f"a death at or after the first study-drug dose ({pt['anchor_time'].iloc[k]})",
                    patient_id=pt["patient_id"].iloc[k],
                )
            )
    return _Validated(typed, _dedupe(problems))


def _remap_rows(
    problems: Iterable[Problem], frame: pd.DataFrame, *, where: str | None = None
) -> list[Problem]:
    """Problems whose row is a 1-based position in ``frame`` -> 1-based file rows."""
    rows = _rows(frame)
    out = []
    for p in problems:
        row = p.row
        if row is not None and 1 <= row <= len(rows):
            row = int(rows[row - 1])
        out.append(dataclasses.replace(p, row=row, where=where or p.where))
    return out


def _file_columns(problems: Iterable[Problem], frame: pd.DataFrame) -> list[Problem]:
    """core.units names the variable as the column; a file report names the file column.

    ``problems`` carry 1-based positions in ``frame`` (before :func:`_remap_rows`).
    """
    from core.units import CANONICAL_UNITS

    out = []
    for p in problems:
        if p.column in CANONICAL_UNITS:
            column = "unit" if p.expected.startswith("unit") else "value"
            value = p.value
            if column == "unit" and p.row is not None and 1 <= p.row <= len(frame):
                value = _py(frame["unit"].iloc[p.row - 1])
            p = dataclasses.replace(
                p, column=column, value=value, expected=f"{p.column}: {p.expected}"
            )
        out.append(p)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.where, p.row, p.column)
        if p.row is not None and key in seen:
            continue
        seen.add(key)
        out.append(p)
    out.sort(key=lambda p: (p.where, -1 if p.row is None else p.row, p.column or ""))
    return out


def validate_tables(
    tables: Mapping[str, pd.DataFrame],
    *,
    existing_patients: pd.DataFrame | Iterable[str] | None = None,
    source_names: Mapping[str, str] | None = None,
    withdrawn_ids: Iterable[str] = (),
) -> list[Problem]:
    """Every problem of a set of long-format tables, without writing anything.

    Parameters
    ----------
    tables
        Table name -> DataFrame (see :data:`TABLE_SPECS`); the index is the 0-based data row
        in the source file (as returned by :func:`read_files`).
    existing_patients
        Patients already stored: a frame with ``patient_id, anchor_time, age_years,
        death_time, weight_kg`` (enables the birth/death checks) or just the ids.
    source_names
        Table -> file name used in the report (default ``frame.attrs["source"]`` or the table).
    withdrawn_ids
        Patients already stored in ``disposition`` as withdrawn with data removal: their
        ``randomisation`` / ``disposition`` rows need no ``patients`` row (nor do those of
        patients flagged so in this import's disposition).

    Returns
    -------
    list of Problem
        Sorted by file and row; empty when the tables can be imported. Rules: unknown table,
        required column missing, wrong type, empty required cell, value not in the vocabulary
        (arm, sex, route, episode kind, ...), implausible value (ranges of core.units and the
        table specs), unknown or unconvertible unit, duplicate natural key, unknown patient,
        event time before birth (from age and anchor time) or after death.
    """
    return _validate(
        tables,
        existing_patients=existing_patients,
        source_names=source_names,
        withdrawn_ids=withdrawn_ids,
    ).problems


# ---------------------------------------------------------------------------------------------
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
    Parquet hashes the same.
    """
    h = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        cols = sorted(
            c for c in frame.columns if c in TABLE_SPECS.get(name, TableSpec({}, ())).columns
        )
        h.update(f"{name}:{','.join(cols)}:{len(frame)};".encode())
        if len(frame):
            sub = frame[cols].reset_index(drop=True)
            for c in cols:
                if pd.api.types.is_float_dtype(sub[c].dtype):
                    # 12 significant digits: CSV parsers may differ from Parquet by one ulp
                    sub[c] = [f"{v:.12g}" for v in sub[c].to_numpy()]
            h.update(pd.util.hash_pandas_object(sub.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _read_table(
    conn: Connection,
    table: sa.Table,
    *,
    patient_ids: Sequence[str] | None = None,
    column: str = "patient_id",
) -> pd.DataFrame:
    """Rows of a table (optionally for some patients) as a DataFrame with typed columns."""
    cols = [c for c in table.columns if c.name != "id"]
    frames = []
    if patient_ids is None:
        frames.append(conn.execute(sa.select(*cols)).all())
    else:
        for chunk in _chunks(list(patient_ids)):
            frames.append(conn.execute(sa.select(*cols).where(table.c[column].in_(chunk))).all())
    rows = [r for part in frames for r in part]
    return _typed_frame(rows, cols)


def _typed_frame(rows: Sequence[Any], cols: Sequence[sa.Column[Any]]) -> pd.DataFrame:
    names = [c.name for c in cols]
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
    for c in cols:
        if isinstance(c.type, sa.DateTime):
            frame[c.name] = pd.to_datetime(frame[c.name]).astype("datetime64[ns]")
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


def _existing_patients(conn: Connection) -> pd.DataFrame:
    t = db.patients
    return _typed_frame(
        conn.execute(
            sa.select(t.c.patient_id, t.c.anchor_time, t.c.age_years, t.c.death_time, t.c.weight_kg)
        ).all(),
        [t.c.patient_id, t.c.anchor_time, t.c.age_years, t.c.death_time, t.c.weight_kg],
    )


def _withdrawn_ids(conn: Connection) -> set[str]:
    t = db.disposition
    stmt = sa.select(t.c.patient_id).where(
        t.c.withdrawn_with_data_removal.is_(True), t.c.patient_id.is_not(None)
    )
    return {r[0] for r in conn.execute(stmt)}


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality with NaN == NaN and a relative float tolerance."""
    both_na = (a.isna() & b.isna()).to_numpy()
    if pd.api.types.is_float_dtype(a.dtype) and pd.api.types.is_float_dtype(b.dtype):
        eq = np.isclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-12)
    else:
        eq = a.astype(object).to_numpy() == b.astype(object).to_numpy()
    return both_na | (eq & ~(a.isna() | b.isna()).to_numpy())


def _new_rows(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    *,
    source: str,
) -> tuple[pd.DataFrame, int, list[Problem]]:
    """Rows not yet stored, the number of identical stored rows skipped, and conflicts."""
    spec = TABLE_SPECS[table]
    t = db.metadata.tables[table]
    key = list(spec.key)
    if len(frame) == 0:
        return frame, 0, []
    if "patient_id" in key:
        stored = _read_table(conn, t, patient_ids=frame["patient_id"].dropna().unique().tolist())
    else:
        stored = _read_table(
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
                    _py(merged[c].iloc[k]),
                    f"{_py(merged[f'_old_{c}'].iloc[k])!r} as already stored for this "
                    f"({', '.join(key)}); stored rows are never overwritten",
                    patient_id=merged["patient_id"].iloc[k] if "patient_id" in merged else None,
                )
            )
        conflict_mask |= diff
    keep = ~exists
    new = frame.iloc[np.flatnonzero(keep)]
    return new, int(exists.sum()) - int(conflict_mask.sum()), conflicts


def _derive(
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    rules: SofaRules,
) -> Any:
    """Derived daily SOFA (indirection so tests can interrupt an import here)."""
    from core.derive import derive_daily_sofa

    return derive_daily_sofa(observations, infusions, episodes, patients, rules=rules)


def _daily_rows(daily: pd.DataFrame, rules_key: str) -> pd.DataFrame:
    out = pd.DataFrame(index=daily.index)
    for c in db.daily_sofa.columns:
        if c.name == "rules_key":
            out[c.name] = rules_key
        elif c.name in daily.columns:
            s = daily[c.name]
            if isinstance(c.type, sa.Float):
                s = pd.to_numeric(s, errors="coerce").astype("float64")
            elif isinstance(c.type, sa.Boolean):
                s = (
                    s.astype(object)
                    .where(s.notna(), None)
                    .map(lambda v: v if v is None else bool(v))
                )
            elif isinstance(c.type, sa.Integer):
                s = (
                    s.astype(object)
                    .where(s.notna(), None)
                    .map(lambda v: v if v is None else int(v))
                )
            else:
                s = s.astype(object).where(s.notna(), None)
            out[c.name] = s
        else:
            out[c.name] = None
    return out


def _provenance_rows(prov: pd.DataFrame, rules_key: str) -> pd.DataFrame:
    out = pd.DataFrame(index=prov.index)
    for c in db.sofa_provenance.columns:
        if c.name == "id":
            continue
        if c.name == "rules_key":
            out[c.name] = rules_key
        elif c.name not in prov.columns:
            out[c.name] = None
        elif isinstance(c.type, sa.Float):
            out[c.name] = pd.to_numeric(prov[c.name], errors="coerce").astype("float64")
        elif isinstance(c.type, sa.DateTime):
            out[c.name] = pd.to_datetime(prov[c.name], errors="coerce").astype("datetime64[ns]")
        elif isinstance(c.type, sa.Integer):
            out[c.name] = prov[c.name].astype("int64")
        elif isinstance(c.type, sa.Boolean):
            s = prov[c.name]
            out[c.name] = (
                s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else bool(v))
            )
        else:
            s = prov[c.name]
            out[c.name] = (
                s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
            )
    return out


def recompute_derived(
    conn: Connection,
    patient_ids: Sequence[str],
    *,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    fresh: Mapping[str, pd.DataFrame] | None = None,
) -> int:
    """Recompute daily SOFA and provenance of some patients inside the caller's transaction.

    Parameters
    ----------
    conn
        Connection inside the import transaction.
    patient_ids
        Patients whose derived rows are replaced (under every ``rules_key``: older rule sets
        would otherwise go stale).
    rules
        SOFA rules of the new derived rows.
    fresh
        Optional storable ``patients`` / ``observations`` / ``infusions`` / ``episodes``
        frames of patients created by this very import: their stored rows are exactly these,
        so they are not read back.

    Returns
    -------
    int
        Number of daily rows written.
    """
    ids = sorted(set(patient_ids))
    if not ids:
        return 0
    fresh_ids: set[str] = set()
    if fresh is not None and "patients" in fresh:
        fresh_ids = set(fresh["patients"]["patient_id"]) & set(ids)
    stored_ids = [p for p in ids if p not in fresh_ids]
    raw: dict[str, pd.DataFrame] = {}
    for name in ("patients", "observations", "infusions", "episodes"):
        parts = []
        if stored_ids:
            parts.append(_read_table(conn, db.metadata.tables[name], patient_ids=stored_ids))
        if fresh_ids:
            frame = fresh[name] if fresh is not None and name in fresh else None
            if frame is None:
                frame = _read_table(conn, db.metadata.tables[name], patient_ids=[])
            parts.append(frame[frame["patient_id"].isin(fresh_ids)])
        parts = [p for p in parts if len(p)] or parts[:1]
        raw[name] = (
            pd.concat(parts, ignore_index=True)
            if len(parts) > 1
            else parts[0].reset_index(drop=True)
        )
    from core.units import SCORED_DRUGS

    inf = raw["infusions"]
    # stored rates of the scored drugs are already in mcg/kg/min (converted at ingestion)
    inf["rate_mcg_kg_min"] = inf["rate"].where(inf["drug"].isin(SCORED_DRUGS))
    result = _derive(raw["observations"], inf, raw["episodes"], raw["patients"], rules=rules)
    key = rules.key()
    for chunk in _chunks(ids):
        conn.execute(db.sofa_provenance.delete().where(db.sofa_provenance.c.patient_id.in_(chunk)))
        conn.execute(db.daily_sofa.delete().where(db.daily_sofa.c.patient_id.in_(chunk)))
    daily = _daily_rows(result.daily, key)
    db.bulk_insert(conn, db.daily_sofa, daily)
    prov = _provenance_rows(result.provenance, key)
    db.bulk_insert(conn, db.sofa_provenance, prov)
    return len(daily)


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
        validated = _validate(
            tables,
            existing_patients=_existing_patients(conn),
            source_names=names,
            withdrawn_ids=_withdrawn_ids(conn),
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
        for table in db.RAW_TABLES:
            if table not in typed:
                continue
            if table == "sites":
                new_frames[table] = typed[table]
                continue
            new, n_same, bad = _new_rows(conn, table, typed[table], source=names.get(table, table))
            conflicts.extend(bad)
            new_frames[table] = new
            skipped[table] = n_same
        if conflicts:
            raise DataValidationError(_dedupe(conflicts))
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
        if not any(inserted.values()):
            return ImportResult(
                "duplicate",
                None,
                db.dataset_version(conn),
                digest,
                skipped=skipped,
                seconds=_time.perf_counter() - t0,
            )
        recompute_derived(conn, sorted(affected), rules=rules, fresh=stored_frames)
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


def template_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid table set in the long formats (3 patients, 2 sites).

    Useful as a download template on the Data page and as a hand-checkable test fixture.
    Units are deliberately mixed (kPa, umol/L, %, mcg/min) to exercise conversion.
    """
    ts = pd.Timestamp
    patients = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"],
            "site_id": ["SYN-S01", "SYN-S01", "SYN-S02"],
            "anchor_time": [ts("2024-03-01 08:00"), ts("2024-03-02 12:00"), ts("2024-03-05 20:00")],
            "weight_kg": [80.0, 65.5, 92.0],
            "death_time": [pd.NaT, ts("2024-03-06 03:00"), pd.NaT],
            "age_years": [64.0, 71.0, 58.0],
            "sex": ["M", "F", "M"],
            "apache_ii": [22.0, 27.0, 18.0],
            "charlson": [3.0, 5.0, 2.0],
            "infection_type": ["pneumonia", "primary bacteraemia", "pneumonia"],
            "mechanical_ventilation": [True, True, False],
            "randomised_at": [
                ts("2024-03-01 06:30"),
                ts("2024-03-02 10:00"),
                ts("2024-03-05 18:15"),
            ],
        }
    )
    randomisation = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "arm": ["precision", "placebo", "precision"],
            "randomised_at": patients["randomised_at"],
        }
    )
    obs_rows = []
    for pid, anchor in zip(patients["patient_id"], patients["anchor_time"], strict=True):
        for day in range(3):
            t = anchor + pd.Timedelta(hours=2 + 24 * day)
            obs_rows += [
                (pid, t, "pao2", 9.5 + day, "kPa"),
                (pid, t, "fio2", 50.0 - 5 * day, "%"),
                (pid, t + pd.Timedelta(hours=1), "platelets", 140.0 - 20 * day, "10^9/L"),
                (pid, t + pd.Timedelta(hours=1), "bilirubin", 25.0 + 5 * day, "umol/L"),
                (pid, t + pd.Timedelta(hours=1), "creatinine", 1.1 + 0.3 * day, "mg/dL"),
                (pid, t + pd.Timedelta(hours=3), "map", 68.0 + day, "mmHg"),
                (pid, t + pd.Timedelta(hours=3), "gcs_total", 13.0 + day % 2, "points"),
                (pid, t + pd.Timedelta(hours=5), "urine_output", 400.0 + 100 * day, "mL"),
            ]
    observations = pd.DataFrame(
        obs_rows, columns=["patient_id", "time", "variable", "value", "unit"]
    )
    observations["source"] = "template"
    a = patients["anchor_time"]
    infusions = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0001", "SYN-S01-0002"],
            "drug": ["norepinephrine", "norepinephrine", "dobutamine"],
            "start": [a[0] + pd.Timedelta(hours=1), a[0] + pd.Timedelta(hours=5), a[1]],
            "stop": [
                a[0] + pd.Timedelta(hours=5),
                a[0] + pd.Timedelta(hours=20),
                a[1] + pd.Timedelta(hours=6),
            ],
            "rate": [12.0, 0.05, 4.0],
            "unit": ["mcg/min", "mcg/kg/min", "mcg/kg/min"],
        }
    )
    episodes = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S01-0002"],
            "kind": ["invasive_ventilation", "invasive_ventilation", "sedation"],
            "start": [a[0] - pd.Timedelta(hours=6), a[1] - pd.Timedelta(hours=2), a[1]],
            "stop": [a[0] + pd.Timedelta(days=2), pd.NaT, a[1] + pd.Timedelta(hours=30)],
        }
    )
    biomarkers = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"],
            "time": [
                a[0] - pd.Timedelta(hours=3),
                a[0] + pd.Timedelta(days=2),
                a[1] - pd.Timedelta(hours=1),
                a[2] - pd.Timedelta(hours=2),
            ],
            "ferritin_ng_ml": [5200.0, 4300.0, 900.0, 1200.0],
            "hla_dr_ab_per_cell": [float("nan"), 9000.0, 3800.0, 4200.0],
        }
    )
    doses = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "time": a,
            "route": ["SC", "IV", "SC"],
            "label": "study drug",
        }
    )
    adverse_events = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002"],
            "onset_time": [a[0] + pd.Timedelta(days=2), a[1] + pd.Timedelta(days=1)],
            "soc": ["Blood and lymphatic system disorders", "Cardiac disorders"],
            "pt": ["Anaemia", "Atrial fibrillation"],
            "serious": [False, True],
            "severe": [False, True],
            "related": [True, False],
            "aesi": ["anemia", None],
        }
    )
    disposition = pd.DataFrame(
        {
            "screening_id": ["SCR-0001", "SCR-0002", "SCR-0003", "SCR-0004"],
            "site_id": ["SYN-S01", "SYN-S01", "SYN-S02", "SYN-S02"],
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003", None],
            "excluded_reason": [None, None, None, "not_eligible"],
            "phenotype_at_screening": ["MALS", "SIP", "SIP", "not_eligible"],
            "withdrawn_with_data_removal": [False, False, False, False],
        }
    )
    sites = pd.DataFrame(
        {"site_id": ["SYN-S01", "SYN-S02"], "name": ["Synthetic site 1", "Synthetic site 2"]}
    )
    return {
        "sites": sites,
        "patients": patients,
        "randomisation": randomisation,
        "observations": observations,
        "infusions": infusions,
        "episodes": episodes,
        "biomarkers": biomarkers,
        "doses": doses,
        "adverse_events": adverse_events,
        "disposition": disposition,
    }


# ---------------------------------------------------------------------------------------------
# ADaM (CDISC) import and export

STUDYID: Final = "IMMUNOSEP"

#: ADLB / ADSOFA parameter codes <-> observation variables
ADLB_PARAMCD: Final = MappingProxyType(
    {
        "PAO2": "pao2",
        "FIO2": "fio2",
        "PLAT": "platelets",
        "BILI": "bilirubin",
        "CREAT": "creatinine",
        "MAP": "map",
        "GCS": "gcs_total",
        "UOUT": "urine_output",
        "WEIGHT": "weight",
        "LACTATE": "lactate",
    }
)
#: ADLB parameters that go to the ``biomarkers`` table (value column, accepted units)
ADLB_BIOMARKERS: Final = MappingProxyType(
    {
        "FERRITIN": ("ferritin_ng_ml", ("ng/ml", "ug/l")),
        "HLADR": ("hla_dr_ab_per_cell", ("ab/c",)),
    }
)
ADSOFA_PARAMCD: Final = MappingProxyType(
    {
        "SOFA": SOFA_TOTAL,
        "SOFARESP": SOFA_COLUMNS[ORGANS[0]],
        "SOFACOAG": SOFA_COLUMNS[ORGANS[1]],
        "SOFALIVR": SOFA_COLUMNS[ORGANS[2]],
        "SOFACARD": SOFA_COLUMNS[ORGANS[3]],
        "SOFACNS": SOFA_COLUMNS[ORGANS[4]],
        "SOFAREN": SOFA_COLUMNS[ORGANS[5]],
    }
)
_ARMCD: Final = MappingProxyType({Arm.PRECISION: "PRECISION", Arm.PLACEBO: "PLACEBO"})
_ARM_LABEL: Final = MappingProxyType(
    {Arm.PRECISION: "Precision immunotherapy", Arm.PLACEBO: "Placebo"}
)


def _adam_source(frame: pd.DataFrame, default: str) -> str:
    return str(frame.attrs.get("source", default))


def _require(frame: pd.DataFrame, columns: Sequence[str], source: str) -> list[Problem]:
    return [
        Problem(source, None, c, None, f"an ADaM column {c!r}")
        for c in columns
        if c not in frame.columns
    ]


def _yn(series: pd.Series) -> pd.Series:
    """ADaM Y/N flags to bool-like values (other values pass through to validation)."""
    return series.map(
        lambda v: {"Y": True, "N": False}.get(str(v).strip().upper(), v) if pd.notna(v) else None
    )


def _arm_from_adam(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = str(value).strip().casefold()
    for arm in Arm:
        if key in (arm.value, _ARMCD[arm].casefold(), _ARM_LABEL[arm].casefold()):
            return arm.value
    return str(value)


def from_adam(
    adsl: pd.DataFrame | None,
    adae: pd.DataFrame | None = None,
    adlb: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Map CDISC-style ADaM tables to the long formats.

    Parameters
    ----------
    adsl
        Subject level: ``USUBJID, SITEID, TRTSDTM, WEIGHTBL`` required; ``DTHDTM, AGE, SEX,
        APACHEII, CCI, INFSRC, MVBL (Y/N), RANDDTM`` optional; ``ARMCD`` or ``ARM`` gives
        the ``randomisation`` table (PRECISION / PLACEBO or the arm labels).
    adae
        ``USUBJID, ASTDTM, AEBODSYS, AEDECOD, AESER, AESEV, AREL`` (+ optional ``AESI``).
    adlb
        BDS of labs and vitals: ``USUBJID, PARAMCD, ADTM, AVAL, AVALU``; PARAMCD in
        :data:`ADLB_PARAMCD` (observations) or :data:`ADLB_BIOMARKERS` (biomarkers).

    Returns
    -------
    dict
        Long-format tables whose index is the 0-based row of the ADaM file and whose
        ``attrs["source"]`` is the ADaM file, so that validation problems point at it.
        Values are not validated here (see :func:`validate_tables`).

    Raises
    ------
    DataValidationError
        Missing ADaM columns, or a biomarker row with a unit that has no conversion.
    """
    problems: list[Problem] = []
    out: dict[str, pd.DataFrame] = {}
    if adsl is not None:
        src = _adam_source(adsl, "ADSL")
        problems += _require(adsl, ("USUBJID", "SITEID", "TRTSDTM", "WEIGHTBL"), src)
        if not problems:
            mapping = {
                "USUBJID": "patient_id",
                "SITEID": "site_id",
                "TRTSDTM": "anchor_time",
                "WEIGHTBL": "weight_kg",
                "DTHDTM": "death_time",
                "AGE": "age_years",
                "SEX": "sex",
                "APACHEII": "apache_ii",
                "CCI": "charlson",
                "INFSRC": "infection_type",
                "MVBL": "mechanical_ventilation",
                "RANDDTM": "randomised_at",
            }
            pts = adsl[[c for c in mapping if c in adsl.columns]].rename(columns=mapping)
            if "mechanical_ventilation" in pts:
                pts["mechanical_ventilation"] = _yn(pts["mechanical_ventilation"])
            pts.attrs["source"] = src
            out["patients"] = pts
            arm_col = (
                "ARMCD" if "ARMCD" in adsl.columns else "ARM" if "ARM" in adsl.columns else None
            )
            if arm_col is not None:
                rnd = pd.DataFrame(
                    {
                        "patient_id": adsl["USUBJID"],
                        "arm": adsl[arm_col].map(_arm_from_adam),
                        "randomised_at": adsl.get("RANDDTM", None),
                    },
                    index=adsl.index,
                )
                rnd.attrs["source"] = src
                out["randomisation"] = rnd
    if adae is not None:
        src = _adam_source(adae, "ADAE")
        req = ("USUBJID", "ASTDTM", "AEBODSYS", "AEDECOD", "AESER", "AESEV", "AREL")
        missing = _require(adae, req, src)
        problems += missing
        if not missing:
            sev = adae["AESEV"].map(
                lambda v: (
                    None
                    if pd.isna(v)
                    else {
                        "SEVERE": True,
                        "MILD": False,
                        "MODERATE": False,
                        "NOT SEVERE": False,
                        "MILD/MODERATE": False,
                    }.get(str(v).strip().upper(), v)
                )
            )
            ae = pd.DataFrame(
                {
                    "patient_id": adae["USUBJID"],
                    "onset_time": adae["ASTDTM"],
                    "soc": adae["AEBODSYS"],
                    "pt": adae["AEDECOD"],
                    "serious": _yn(adae["AESER"]),
                    "severe": sev,
                    "related": _yn(adae["AREL"]),
                    "aesi": adae["AESI"].map(
                        lambda v: str(v).strip().lower() if pd.notna(v) else None
                    )
                    if "AESI" in adae
                    else None,
                },
                index=adae.index,
            )
            ae.attrs["source"] = src
            out["adverse_events"] = ae
    if adlb is not None:
        src = _adam_source(adlb, "ADLB")
        missing = _require(adlb, ("USUBJID", "PARAMCD", "ADTM", "AVAL", "AVALU"), src)
        problems += missing
        if not missing:
            code = (
                adlb["PARAMCD"]
                .astype(object)
                .map(lambda v: str(v).strip().upper() if pd.notna(v) else v)
            )
            is_bio = code.isin(list(ADLB_BIOMARKERS)).to_numpy()
            obs = pd.DataFrame(
                {
                    "patient_id": adlb["USUBJID"],
                    "time": adlb["ADTM"],
                    "variable": code.map(
                        lambda v: ADLB_PARAMCD.get(v, v.lower() if isinstance(v, str) else v)
                    ),
                    "value": adlb["AVAL"],
                    "unit": adlb["AVALU"],
                },
                index=adlb.index,
            ).loc[~is_bio]
            obs.attrs["source"] = src
            out["observations"] = obs
            if is_bio.any():
                bio_rows = adlb.loc[is_bio]
                rows = _rows(adlb)[is_bio]
                for k, unit, _val, cd in zip(
                    rows, bio_rows["AVALU"], bio_rows["AVAL"], code[is_bio], strict=True
                ):
                    from core.units import unit_key

                    if unit_key(unit) not in ADLB_BIOMARKERS[cd][1]:
                        problems.append(
                            Problem(
                                src,
                                int(k),
                                "AVALU",
                                _py(unit),
                                f"for {cd}: one of {', '.join(ADLB_BIOMARKERS[cd][1])}",
                            )
                        )
                long = pd.DataFrame(
                    {
                        "patient_id": bio_rows["USUBJID"].to_numpy(),
                        "time": bio_rows["ADTM"].to_numpy(),
                        "column": code[is_bio].map(lambda v: ADLB_BIOMARKERS[v][0]).to_numpy(),
                        "value": bio_rows["AVAL"].to_numpy(),
                        "row": bio_rows.index.to_numpy(),
                    }
                )
                first_row = long.groupby(["patient_id", "time"], sort=False)["row"].min()
                wide = long.pivot_table(
                    index=["patient_id", "time"], columns="column", values="value", aggfunc="first"
                )
                wide = wide.reindex(columns=["ferritin_ng_ml", "hla_dr_ab_per_cell"])
                wide["row"] = first_row
                bio = wide.reset_index().set_index("row").sort_index()
                bio.index.name = None
                bio.columns.name = None
                bio.attrs["source"] = src
                out["biomarkers"] = bio
    if problems:
        raise DataValidationError(problems)
    return out


def _iso(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if pd.isna(v) else pd.Timestamp(v).isoformat())


def _adsl(
    patients: pd.DataFrame,
    daily: pd.DataFrame,
    disposition: pd.DataFrame,
    dosed: set[str],
    arms: pd.DataFrame | None,
) -> pd.DataFrame:
    day1 = daily[daily["study_day"] == 1].set_index("patient_id")[SOFA_TOTAL]
    pheno = (
        disposition.dropna(subset=["patient_id"]).set_index("patient_id")["phenotype_at_screening"]
        if len(disposition)
        else pd.Series(dtype=object)
    )
    withdrawn = (
        disposition.dropna(subset=["patient_id"]).set_index("patient_id")[
            "withdrawn_with_data_removal"
        ]
        if len(disposition)
        else pd.Series(dtype=bool)
    )
    pid = patients["patient_id"]
    adsl = pd.DataFrame(
        {
            "STUDYID": STUDYID,
            "USUBJID": pid,
            "SITEID": patients["site_id"],
        }
    )
    if arms is not None:
        arm = pid.map(arms.set_index("patient_id")["arm"])
        adsl["ARMCD"] = arm.map(lambda a: _ARMCD.get(Arm(a)) if pd.notna(a) else None)
        adsl["ARM"] = arm.map(lambda a: _ARM_LABEL.get(Arm(a)) if pd.notna(a) else None)
    return adsl.assign(
        RANDDTM=_iso(patients["randomised_at"]),
        TRTSDTM=_iso(patients["anchor_time"]),
        AGE=patients["age_years"],
        SEX=patients["sex"],
        WEIGHTBL=patients["weight_kg"],
        APACHEII=patients["apache_ii"],
        CCI=patients["charlson"],
        INFSRC=patients["infection_type"],
        MVBL=patients["mechanical_ventilation"].map(
            lambda v: None if v is None or pd.isna(v) else ("Y" if v else "N")
        ),
        PHENO=pid.map(pheno),
        FERRBL=patients["ferritin_ng_ml"],
        HLADRBL=patients["hla_dr_ab_per_cell"],
        SOFABL=pid.map(day1),
        ITTFL="Y",
        MITTFL=pid.map(lambda p: "N" if bool(withdrawn.get(p, False)) else "Y"),
        SAFFL=pid.map(lambda p: "Y" if p in dosed else "N"),
        DTHFL=patients["death_time"].notna().map({True: "Y", False: "N"}),
        DTHDTM=_iso(patients["death_time"]),
        DTHDY=patients["death_study_day"],
    )


def _adsofa(
    patients: pd.DataFrame, daily: pd.DataFrame, *, last_day: int = 15, death_score: int = 24
) -> pd.DataFrame:
    """ADSOFA BDS: one row per patient x parameter x day 1..last_day with DTYPE imputation."""
    organ_of = {SOFA_COLUMNS[o]: o.value for o in ORGANS}
    death_day = patients.set_index("patient_id")["death_study_day"]
    records = []
    by_patient = {p: g.set_index("study_day") for p, g in daily.groupby("patient_id", sort=False)}
    for pid in patients["patient_id"]:
        g = by_patient.get(pid)
        dd = death_day.get(pid)
        dd = None if dd is None or pd.isna(dd) else int(dd)
        for paramcd, col in ADSOFA_PARAMCD.items():
            base = None
            last = None
            for day in range(1, last_day + 1):
                dtype = None
                if dd is not None and day >= dd and day > 1:
                    if paramcd != "SOFA":
                        continue  # DEATH24 applies to the total only
                    aval, dtype = float(death_score), "DEATH24"
                elif g is not None and day in g.index and pd.notna(g.at[day, col]):
                    aval = float(g.at[day, col])
                    if col in organ_of:
                        imp = (
                            g.at[day, f"{organ_of[col]}_imputation"]
                            if f"{organ_of[col]}_imputation" in g
                            else None
                        )
                        dtype = (
                            {"day1_zero": "ZERO", "locf": "LOCF"}.get(imp)
                            if isinstance(imp, str)
                            else None
                        )
                elif last is not None:
                    aval, dtype = last, "LOCF"
                else:
                    continue
                if day == 1:
                    base = aval
                last = aval if dtype != "DEATH24" else last
                records.append(
                    {
                        "STUDYID": STUDYID,
                        "USUBJID": pid,
                        "PARAMCD": paramcd,
                        "PARAM": "SOFA total score"
                        if paramcd == "SOFA"
                        else f"SOFA {organ_of[col]} sub-score",
                        "AVISIT": f"Day {day}",
                        "AVISITN": day,
                        "ADY": day,
                        "AVAL": aval,
                        "BASE": base,
                        "CHG": None if base is None else aval - base,
                        "DTYPE": dtype,
                        "ABLFL": "Y" if day == 1 else None,
                        "ANL01FL": "Y",
                    }
                )
    cols = [
        "STUDYID",
        "USUBJID",
        "PARAMCD",
        "PARAM",
        "AVISIT",
        "AVISITN",
        "ADY",
        "AVAL",
        "BASE",
        "CHG",
        "DTYPE",
        "ABLFL",
        "ANL01FL",
    ]
    return pd.DataFrame.from_records(records, columns=cols)


def _adrs(patients: pd.DataFrame, daily: pd.DataFrame, rules: EndpointRules) -> pd.DataFrame:
    from core.endpoints import sofa_response

    parts = []
    for last_day in (rules.last_day, rules.day15_last_day):
        r = sofa_response(
            daily,
            patients[["patient_id", "death_study_day"]],
            last_day=last_day,
            threshold=rules.threshold,
        )
        parts.append(
            pd.DataFrame(
                {
                    "STUDYID": STUDYID,
                    "USUBJID": r["patient_id"],
                    "PARAMCD": "SOFARSP",
                    "PARAM": f"SOFA decrease > {rules.threshold:g} (day 1 minus mean of days 2-{last_day})",
                    "AVISIT": f"Day {last_day}",
                    "AVISITN": last_day,
                    "AVALC": np.where(r["responder"], "Y", "N"),
                    "AVAL": r["sofa_decrease"],
                    "BASE": r["baseline_sofa"],
                    "MEANFU": r["mean_followup_sofa"],
                    "EVALFL": np.where(r["evaluable"], "Y", "N"),
                    "NLOCF": r["n_locf_days"],
                    "NDEATH": r["n_death_days"],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _adtte(patients: pd.DataFrame) -> pd.DataFrame:
    days = (patients["death_time"] - patients["anchor_time"]) / pd.Timedelta(days=1)
    parts = []
    for paramcd, horizon in (("OS28", 28), ("OS90", 90)):
        event = days.notna() & (days <= horizon)
        parts.append(
            pd.DataFrame(
                {
                    "STUDYID": STUDYID,
                    "USUBJID": patients["patient_id"],
                    "PARAMCD": paramcd,
                    "PARAM": f"Overall survival to day {horizon}",
                    "STARTDT": _iso(patients["anchor_time"]),
                    "AVAL": np.where(event, days, float(horizon)),
                    "AVALU": "DAYS",
                    "CNSR": np.where(event, 0, 1),
                    "EVNTDESC": np.where(event, "DEATH", f"ALIVE AT DAY {horizon}"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _adae(patients: pd.DataFrame, ae: pd.DataFrame, arms: pd.DataFrame | None) -> pd.DataFrame:
    anchor = ae["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    ae = ae.assign(_anchor=anchor).sort_values(
        ["patient_id", "onset_time", "pt"], ignore_index=True
    )
    out = pd.DataFrame({"STUDYID": STUDYID, "USUBJID": ae["patient_id"]})
    if arms is not None:
        arm = ae["patient_id"].map(arms.set_index("patient_id")["arm"])
        out["ARMCD"] = arm.map(lambda a: _ARMCD.get(Arm(a)) if pd.notna(a) else None)
        out["ARM"] = arm.map(lambda a: _ARM_LABEL.get(Arm(a)) if pd.notna(a) else None)
    yn = {True: "Y", False: "N"}
    return out.assign(
        AESEQ=ae.groupby("patient_id").cumcount() + 1,
        ASTDTM=_iso(ae["onset_time"]),
        ASTDY=(np.floor((ae["onset_time"] - ae["_anchor"]) / pd.Timedelta(hours=24)) + 1).astype(
            "Int64"
        ),
        AETERM=ae["pt"],
        AEDECOD=ae["pt"],
        AEBODSYS=ae["soc"],
        AESEV=ae["severe"].map({True: "SEVERE", False: "MILD/MODERATE"}),
        AESER=ae["serious"].map(yn),
        AREL=ae["related"].map(yn),
        TRTEMFL=(ae["onset_time"] >= ae["_anchor"]).map(yn),
        AESI=ae["aesi"].map(lambda v: str(v).upper() if isinstance(v, str) else None),
    )


def _adlb(patients: pd.DataFrame, obs: pd.DataFrame, bio: pd.DataFrame) -> pd.DataFrame:
    code_of = {v: k for k, v in ADLB_PARAMCD.items()}
    lab = pd.DataFrame(
        {
            "USUBJID": obs["patient_id"],
            "PARAMCD": obs["variable"].map(code_of),
            "ADTM": obs["time"],
            "AVAL": obs["value"],
            "AVALU": obs["unit"],
        }
    )
    parts = [lab]
    for code, (col, _units_ok) in ADLB_BIOMARKERS.items():
        sub = bio.dropna(subset=[col])
        parts.append(
            pd.DataFrame(
                {
                    "USUBJID": sub["patient_id"],
                    "PARAMCD": code,
                    "ADTM": sub["time"],
                    "AVAL": sub[col],
                    "AVALU": "ng/mL" if code == "FERRITIN" else "AB/C",
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(
        ["USUBJID", "ADTM", "PARAMCD"], ignore_index=True
    )
    anchor = out["USUBJID"].map(patients.set_index("patient_id")["anchor_time"])
    out.insert(0, "STUDYID", STUDYID)
    out["ADY"] = (np.floor((out["ADTM"] - anchor) / pd.Timedelta(hours=24)) + 1).astype("Int64")
    out["ADTM"] = _iso(out["ADTM"])
    return out


def export_adam(
    engine: Engine,
    out_dir: str | Path,
    *,
    include_arm: bool,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    endpoint_rules: EndpointRules = DEFAULT_ENDPOINT_RULES,
) -> dict[str, Path]:
    """Write ADSL, ADSOFA, ADRS, ADTTE, ADAE and ADLB as CSV files.

    Parameters
    ----------
    engine
        Database with imported data and derived daily SOFA under ``rules``.
    out_dir
        Folder (created) that receives ``adsl.csv`` ... ``adlb.csv``.
    include_arm
        Add ``ARM`` / ``ARMCD`` (unblinded exports only); without it no file names the arm.
    rules, endpoint_rules
        SOFA rules of the stored daily SOFA and the SAP endpoint rules (ADRS).

    Returns
    -------
    dict
        Dataset name (``"ADSL"``...) -> path written.
    """
    from core import repository as repo

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    patients = repo.load_patients(engine)
    daily = repo.load_daily_sofa(engine, rules_key=rules.key())
    arms = repo.load_arms(engine) if include_arm else None
    raw_ae = repo.load_adverse_events(engine)
    disposition = repo.load_disposition(engine)
    with engine.connect() as conn:
        dosed = {r[0] for r in conn.execute(sa.select(db.doses.c.patient_id).distinct())}
    datasets = {
        "ADSL": _adsl(patients, daily, disposition, dosed, arms),
        "ADSOFA": _adsofa(
            patients,
            daily,
            last_day=endpoint_rules.day15_last_day,
            death_score=endpoint_rules.death_score,
        ),
        "ADRS": _adrs(patients, daily, endpoint_rules),
        "ADTTE": _adtte(patients),
        "ADAE": _adae(patients, raw_ae, arms),
        "ADLB": _adlb(patients, repo.load_observations(engine), repo.load_biomarkers(engine)),
    }
    paths = {}
    for name, frame in datasets.items():
        path = out / f"{name.lower()}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    return paths


# ---------------------------------------------------------------------------------------------
# demo database


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
                import fcntl

                self._file = open(f"{database}.demo.lock", "a+b")
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        else:
            self._conn = self._engine.connect()
            self._conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": self.PG_KEY})
            self._conn.commit()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
        if self._conn is not None:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.PG_KEY})
            self._conn.commit()
            self._conn.close()


def has_data(engine: Engine) -> bool:
    """True when at least one patient is stored (the schema is created if needed)."""
    db.ensure_schema(engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(db.patients.c.patient_id).limit(1)).first() is not None


def synthetic_tables(
    *, seed: int = 20251208, n_randomised: int = 281, charting: str = "dense"
) -> dict[str, pd.DataFrame]:
    """The synthetic cohort of :func:`core.synth.generate_trial` as long-format tables
    (``charting="sparse"``: one charting per variable and day, for 100,000-patient benchmarks)."""
    from core.synth import generate_trial

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
        return db.dataset_version(engine)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


# ---------------------------------------------------------------------------------------------
# command line


def problems_table(problems: Sequence[Problem]) -> str:
    """Problems as a plain-text table (file, row, column, value, expected)."""
    if not problems:
        return "no problems"
    frame = pd.DataFrame(
        {
            "file": [p.where for p in problems],
            "row": [p.row if p.row is not None else "" for p in problems],
            "column": [p.column or "" for p in problems],
            "value": [repr(p.value) for p in problems],
            "expected": [p.expected for p in problems],
        }
    )
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        return frame.to_string(index=False)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.io {import,export,demo,validate} ...``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m core.io", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"SQLAlchemy URL (default: sqlite:///{DEFAULT_DATABASE_PATH})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_imp = sub.add_parser("import", help="validate and import CSV/Parquet files, all or nothing")
    p_imp.add_argument("files", nargs="+", type=Path)
    p_imp.add_argument("--user", default="cli")
    p_val = sub.add_parser("validate", help="print the problems of files; exit 1 on problems")
    p_val.add_argument("files", nargs="+", type=Path)
    p_exp = sub.add_parser(
        "export", help="write ADaM CSV files (ADSL, ADSOFA, ADRS, ADTTE, ADAE, ADLB)"
    )
    p_exp.add_argument("directory", type=Path)
    p_exp.add_argument("--with-arm", action="store_true", help="include ARM/ARMCD (unblinded)")
    p_demo = sub.add_parser("demo", help="build the synthetic demo database if it is empty")
    p_demo.add_argument("--patients", type=int, default=281)
    p_demo.add_argument("--seed", type=int, default=20251208)
    p_demo.add_argument(
        "--charting",
        choices=("dense", "sparse"),
        default="dense",
        help="sparse: one charting per variable and day (100,000-patient benchmarks)",
    )
    for p in (p_imp, p_val, p_exp, p_demo):
        p.add_argument("--database-url", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{DEFAULT_DATABASE_PATH}"
    out = sys.stdout
    engines: list[Engine] = []
    try:
        return _run(args, url, out, engines)
    finally:
        for engine in engines:
            engine.dispose()


def _run(args: argparse.Namespace, url: str, out: Any, engines: list[Engine]) -> int:
    """Body of :func:`main`; created engines are appended to ``engines`` for disposal."""
    try:
        if args.command == "validate":
            tables = read_files(args.files)
            engine = db.make_engine(url) if args.database_url else None
            if engine is not None:
                engines.append(engine)
            existing = None
            if engine is not None and has_data(engine):
                with engine.connect() as conn:
                    existing = _existing_patients(conn)
            problems = validate_tables(tables, existing_patients=existing)
            out.write(problems_table(problems) + "\n")
            return 1 if problems else 0
        engine = db.make_engine(url)
        engines.append(engine)
        if args.command == "import":
            result = import_files(engine, args.files, user=args.user)
            out.write(
                f"{result.status}: import {result.import_id}, dataset version "
                f"{result.dataset_version}, rows {json.dumps(dict(result.inserted))} "
                f"in {result.seconds:.2f} s\n"
            )
            return 0
        if args.command == "export":
            paths = export_adam(engine, args.directory, include_arm=args.with_arm)
            out.write("\n".join(str(p) for p in paths.values()) + "\n")
            return 0
        version = build_demo_database(
            engine, seed=args.seed, n_randomised=args.patients, charting=args.charting
        )
        out.write(f"dataset version {version}\n")
        return 0
    except DataValidationError as exc:
        out.write(problems_table(exc.problems) + "\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
