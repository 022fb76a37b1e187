"""Validation of long-format tables: every problem at once, nothing written.

Per table: required columns, types (:mod:`core.io.coerce`), pandera value checks
(vocabularies and ranges of :data:`~core.io.schema.TABLE_SPECS`) and duplicate natural keys;
then unit conversion (:mod:`core.units`) and the cross-table rules (known patient, event time
after birth and not after death, death not before the first dose, ICU stays that end before
they start or overlap another stay of the patient, in the file or stored).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa

from core import db, units
from core.concepts import DRUGS
from core.exceptions import DataValidationError, Problem
from core.io.adam import adam_incomplete
from core.io.coerce import coerce
from core.io.report import dedupe, file_rows, plain
from core.io.schema import TABLE_SPECS, TableSpec

#: canonical rate unit of each scored drug (core.concepts), written after conversion
_DRUG_UNIT: Final = MappingProxyType({d.name: d.unit for d in DRUGS})


TEXT_LIMIT: Final = "text of at most"


def _stored_length(table: str, column: str) -> int | None:
    """The longest text the database column holds (None: unlimited or not text)."""
    t = db.metadata.tables.get(table)
    if t is None or column not in t.c:
        return None
    return getattr(t.c[column].type, "length", None)


def _pandera_schema(table: str, spec: TableSpec, columns: Iterable[str]) -> pa.DataFrameSchema:
    cols: dict[str, pa.Column] = {}
    for name in columns:
        cs = spec.columns[name]
        checks = []
        length = _stored_length(table, name) if cs.kind == "str" else None
        if length is not None:
            # longer text would fail the database insert (PostgreSQL) after validation passed
            checks.append(
                pa.Check(
                    lambda s, n=length: s.isna() | (s.astype(str).str.len() <= n),
                    element_wise=False,
                    error=f"{TEXT_LIMIT} {length} characters",
                )
            )
        if cs.isin is not None:
            checks.append(pa.Check.isin(list(cs.isin), error=cs.expected()))
        if cs.low is not None and cs.high is not None:
            checks.append(pa.Check.in_range(cs.low, cs.high, error=cs.expected()))
        cols[name] = pa.Column(checks=checks, nullable=cs.nullable, coerce=False)
    return pa.DataFrameSchema(cols, strict=False)


@dataclass(frozen=True)
class Validated:
    """Typed tables (canonical units) and every problem found (:func:`validate_and_type`)."""

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


def validate_and_type(
    tables: Mapping[str, pd.DataFrame],
    *,
    existing_patients: pd.DataFrame | Iterable[str] | None,
    source_names: Mapping[str, str] | None,
    withdrawn_ids: Iterable[str] = (),
    existing_stays: pd.DataFrame | None = None,
) -> Validated:
    """Type, convert and check tables: the work behind :func:`validate_tables`.

    Parameters are those of :func:`validate_tables` (``existing_patients``,
    ``source_names`` and ``existing_stays`` may be None).

    Returns
    -------
    Validated
        The typed tables in canonical units (as far as they could be typed) and every
        problem, sorted; the importer writes the tables only when there is no problem.
    """
    problems: list[Problem] = []
    names = dict(source_names or {})

    def where(table: str) -> str:
        frame = tables.get(table)
        attr = frame.attrs.get("source") if frame is not None else None
        return names.get(table) or attr or table

    problems.extend(adam_incomplete(tables))
    for table in tables:
        if table not in TABLE_SPECS:
            problems.append(
                Problem(where(table), None, None, table, "a table in " + ", ".join(TABLE_SPECS))
            )
    typed: dict[str, pd.DataFrame] = {}
    bad_cells: dict[str, set[tuple[int, str]]] = {}
    incomplete: set[str] = set()  # tables with a missing required column
    for table, spec in TABLE_SPECS.items():
        if table not in tables:
            continue
        out, bad, found, complete = _type_table(tables[table], spec, where(table), table)
        problems.extend(found)
        typed[table] = out
        bad_cells[table] = bad
        if not complete:
            incomplete.add(table)
    info = _known_patients(typed.get("patients"), existing_patients)
    problems.extend(_convert_units(typed, incomplete, bad_cells, info, where))
    problems.extend(_cross_table_problems(typed, incomplete, info, set(withdrawn_ids), where))
    if "icu_stays" in typed and "icu_stays" not in incomplete:
        problems.extend(
            _icu_stay_problems(
                typed["icu_stays"], where("icu_stays"), bad_cells["icu_stays"], existing_stays
            )
        )
    return Validated(typed, dedupe(problems))


def _type_table(
    frame: pd.DataFrame, spec: TableSpec, src: str, table: str
) -> tuple[pd.DataFrame, set[tuple[int, str]], list[Problem], bool]:
    """One table: required columns, types, pandera value checks, duplicate natural keys.

    Returns
    -------
    tuple
        The typed frame, the (file row, column) cells already reported, the problems, and
        whether every required column is present (if not, values and keys are not checked).
    """
    problems: list[Problem] = []
    rows = file_rows(frame)
    missing = [c for c, cs in spec.columns.items() if cs.required and c not in frame.columns]
    present_cols = ", ".join(str(c) for c in frame.columns[:20]) or "none"
    for c in missing:
        problems.append(
            Problem(
                src,
                None,
                c,
                f"(no column {c!r}; the file has: {present_cols})",
                f"a column {c!r} ({spec.columns[c].expected()})",
            )
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
        values, wrong = coerce(frame[c], cs.kind)
        out[c] = values
        for i in np.flatnonzero(wrong):
            bad.add((int(rows[i]), c))
            problems.append(Problem(src, int(rows[i]), c, plain(frame[c].iloc[i]), cs.expected()))
    if missing:
        return out, bad, problems, False
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
            _pandera_schema(table, spec, present).validate(out, lazy=True)
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
            check = str(rec.check)
            if check == "not_nullable":
                exp = "a value (this column may not be empty)"
            elif check.startswith(TEXT_LIMIT):
                exp = check  # the stored column's length
            else:
                exp = cs.expected()
            bad.add((row, rec.column))
            problems.append(Problem(src, row, rec.column, plain(rec.failure_case), exp))
    # duplicate natural keys within the file
    key = list(spec.key)
    dupl = out.duplicated(key, keep=False).to_numpy() & out[key].notna().all(axis=1).to_numpy()
    if dupl.any():
        first_row: dict[tuple[Any, ...], int] = {}
        for k in np.flatnonzero(dupl):
            kv = tuple(plain(out[c].iloc[k]) for c in key)
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
    return out, bad, problems, True


def _known_patients(
    new_patients: pd.DataFrame | None,
    existing_patients: pd.DataFrame | Iterable[str] | None,
) -> pd.DataFrame:
    """Patients of this import and of the database, indexed by ``patient_id``."""
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
    return known.set_index("patient_id")


def _convert_units(
    typed: dict[str, pd.DataFrame],
    incomplete: set[str],
    bad_cells: Mapping[str, set[tuple[int, str]]],
    info: pd.DataFrame,
    where: Callable[[str], str],
) -> list[Problem]:
    """Observations and infusions to canonical units (core.units), in place in ``typed``."""
    problems: list[Problem] = []
    if "observations" in typed and "observations" not in incomplete:
        obs = typed["observations"]
        ok = obs[["patient_id", "time", "variable", "value", "unit"]].notna().all(axis=1)
        ok &= ~pd.Series(
            [(int(r), "value") in bad_cells["observations"] for r in file_rows(obs)],
            index=obs.index,
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
            # a scored rate is now in its drug's canonical unit (core.concepts: mcg/kg/min)
            converted["unit"] = converted["unit"].where(~scored, converted["drug"].map(_DRUG_UNIT))
            typed["infusions"] = converted.drop(columns=["_rate_kg"])
        except DataValidationError as exc:
            problems.extend(_remap_rows(exc.problems, candidates, where=where("infusions")))
    return problems


def _cross_table_problems(
    typed: Mapping[str, pd.DataFrame],
    incomplete: set[str],
    info: pd.DataFrame,
    withdrawn: set[str],
    where: Callable[[str], str],
) -> list[Problem]:
    """Unknown patients, event times before birth or after death, death before the anchor."""
    problems: list[Problem] = []
    withdrawn = set(withdrawn)
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
        rows = file_rows(frame)
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
        if spec.event_times:
            problems.extend(_event_time_problems(frame, spec, info, src))
    if "patients" in typed and "patients" not in incomplete:
        pt = typed["patients"]
        rows = file_rows(pt)
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
    return problems


def _event_time_problems(
    frame: pd.DataFrame, spec: TableSpec, info: pd.DataFrame, src: str
) -> list[Problem]:
    """Event times before the earliest possible birth or after death."""
    problems: list[Problem] = []
    rows = file_rows(frame)
    pid = frame["patient_id"]
    anchor = pid.map(info["anchor_time"]) if len(info) else pd.Series(pd.NaT, index=pid.index)
    age = pid.map(info["age_years"]) if len(info) else pd.Series(np.nan, index=pid.index)
    death = pid.map(info["death_time"]) if len(info) else pd.Series(pd.NaT, index=pid.index)
    anchor = pd.to_datetime(anchor).astype("datetime64[ns]")
    death = pd.to_datetime(death).astype("datetime64[ns]")
    age = pd.to_numeric(age, errors="coerce").astype("float64")
    # an implausible age is reported by the column rules; here it only must not break the
    # birth arithmetic (an age of 1,000,000 years is out of the datetime range)
    age_spec = TABLE_SPECS["patients"].columns["age_years"]
    age = age.where(age.between(age_spec.low, age_spec.high))
    # earliest possible birth: anchor - (age + 1) years (age in completed years)
    # (NaN days are converted as 0 and masked afterwards: pandas' float -> timedelta cast
    # of an all-NaN column multiplies uninitialised memory and may warn about an overflow)
    days = (age + 1.0) * 365.25
    birth = anchor - pd.to_timedelta(days.fillna(0.0), unit="D").where(days.notna())
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
    return problems


def _icu_stay_problems(
    stays: pd.DataFrame,
    src: str,
    bad: set[tuple[int, str]],
    stored: pd.DataFrame | None,
) -> list[Problem]:
    """ICU stays that end before they start, and stays of one patient that overlap.

    Two stays overlap when one starts before the other ends (an open stay, ``stop`` empty,
    never ends); a stay may start at the very time the previous one ends (a transfer). File
    rows are checked against each other and against the ``stored`` stays of their patients (a
    stored stay with the same natural key is the same stay, compared by the importer). Each
    overlap is reported once, on the file row that comes later in time (or on the earlier
    file row's ``stop`` when the later stay is stored), naming the other stay.
    """
    problems: list[Problem] = []
    if len(stays) == 0:
        return problems
    rows = file_rows(stays)
    pid, start, stop = stays["patient_id"], stays["start"], stays["stop"]
    typed_ok = np.array(
        [not any((int(r), c) in bad for c in ("patient_id", "start", "stop")) for r in rows],
        dtype=bool,
    )
    usable = typed_ok & pid.notna().to_numpy() & start.notna().to_numpy()
    backwards = usable & (stop.notna() & (stop < start)).to_numpy()
    for k in np.flatnonzero(backwards):
        problems.append(
            Problem(
                src,
                int(rows[k]),
                "stop",
                str(stop.iloc[k]),
                f"an ICU discharge at or after the admission (start {start.iloc[k]})",
                patient_id=pid.iloc[k],
                time=str(stop.iloc[k]),
            )
        )
    keep = usable & ~backwards
    new = pd.DataFrame(
        {
            "patient_id": pid.to_numpy()[keep],
            "start": start.to_numpy()[keep],
            "stop": stop.to_numpy()[keep],
            "row": rows[keep],
        }
    ).drop_duplicates(["patient_id", "start"])  # a repeated key is reported by its own rule
    parts = [new]
    if stored is not None and len(stored):
        mine = stored["patient_id"].isin(new["patient_id"])
        old = pd.DataFrame(
            {
                "patient_id": stored.loc[mine, "patient_id"].astype(object),
                "start": pd.to_datetime(stored.loc[mine, "start"]).astype("datetime64[ns]"),
                "stop": pd.to_datetime(stored.loc[mine, "stop"]).astype("datetime64[ns]"),
                "row": np.int64(0),  # row 0: a stored stay
            }
        )
        same = old.set_index(["patient_id", "start"]).index.isin(
            new.set_index(["patient_id", "start"]).index
        )
        parts.append(old.loc[~same])
    both = pd.concat(parts, ignore_index=True) if len(parts) > 1 else new
    both = both.sort_values(["patient_id", "start", "row"], kind="stable", ignore_index=True)
    never = np.iinfo(np.int64).max
    start_ns = both["start"].to_numpy("datetime64[ns]").astype(np.int64)
    stop_ns = np.where(
        both["stop"].isna().to_numpy(),
        never,
        both["stop"].to_numpy("datetime64[ns]").astype(np.int64),
    )
    # latest end among a patient's earlier stays (int64 throughout: "never" must stay exact)
    latest_end = pd.Series(stop_ns).groupby(both["patient_id"], sort=False).cummax().to_numpy()
    first_of_patient = both.groupby("patient_id", sort=False).cumcount().to_numpy()
    prev_end = np.concatenate([[np.iinfo(np.int64).min], latest_end[:-1]])
    overlap = (first_of_patient > 0) & (prev_end > start_ns)

    def describe(j: int) -> str:
        end = both["stop"].iloc[j]
        span = f"{both['start'].iloc[j]} to {'still in the ICU' if pd.isna(end) else end}"
        r = int(both["row"].iloc[j])
        return f"stored stay {span}" if r == 0 else f"row {r}: {span}"

    for k in np.flatnonzero(overlap):
        lo = k - int(first_of_patient[k])
        j = lo + int(np.argmax(stop_ns[lo:k]))  # the earlier stay that reaches furthest
        if int(both["row"].iloc[k]) != 0:
            problems.append(
                Problem(
                    src,
                    int(both["row"].iloc[k]),
                    "start",
                    str(both["start"].iloc[k]),
                    "an ICU admission at or after the end of the patient's earlier stay "
                    f"({describe(j)}); stays of one patient must not overlap",
                    patient_id=both["patient_id"].iloc[k],
                    time=str(both["start"].iloc[k]),
                )
            )
        elif int(both["row"].iloc[j]) != 0:
            end = both["stop"].iloc[j]
            problems.append(
                Problem(
                    src,
                    int(both["row"].iloc[j]),
                    "stop",
                    None if pd.isna(end) else str(end),
                    "an ICU discharge at or before the admission of the patient's later stay "
                    f"({describe(k)}); stays of one patient must not overlap",
                    patient_id=both["patient_id"].iloc[j],
                    time=str(both["start"].iloc[j]),
                )
            )
    return problems


def _remap_rows(
    problems: Iterable[Problem], frame: pd.DataFrame, *, where: str | None = None
) -> list[Problem]:
    """Problems whose row is a 1-based position in ``frame`` -> 1-based file rows."""
    rows = file_rows(frame)
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
    out = []
    for p in problems:
        if p.column in units.CANONICAL_UNITS:
            column = "unit" if p.expected.startswith("unit") else "value"
            value = p.value
            if column == "unit" and p.row is not None and 1 <= p.row <= len(frame):
                value = plain(frame["unit"].iloc[p.row - 1])
            p = dataclasses.replace(
                p, column=column, value=value, expected=f"{p.column}: {p.expected}"
            )
        out.append(p)
    return out


def validate_tables(
    tables: Mapping[str, pd.DataFrame],
    *,
    existing_patients: pd.DataFrame | Iterable[str] | None = None,
    source_names: Mapping[str, str] | None = None,
    withdrawn_ids: Iterable[str] = (),
    existing_stays: pd.DataFrame | None = None,
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
    existing_stays
        ICU stays already stored (``patient_id, start, stop``): the stays of this import must
        not overlap them either.

    Returns
    -------
    list of Problem
        Sorted by file and row; empty when the tables can be imported. Rules: unknown table,
        required column missing, wrong type, empty required cell, value not in the vocabulary
        (arm, sex, route, episode kind, ...), implausible value (ranges of core.units and the
        table specs), unknown or unconvertible unit, duplicate natural key, unknown patient,
        event time before birth (from age and anchor time) or after death, ICU discharge
        before admission, overlapping ICU stays of one patient, ADaM ADSL input without the
        raw tables ADaM cannot carry (:func:`core.io.adam.adam_incomplete`).
    """
    return validate_and_type(
        tables,
        existing_patients=existing_patients,
        source_names=source_names,
        withdrawn_ids=withdrawn_ids,
        existing_stays=existing_stays,
    ).problems
