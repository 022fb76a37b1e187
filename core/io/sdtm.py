"""CDISC SDTM domains (CSV or SAS XPT v5) -> raw long-format tables (docs/formats.md).

Domains read (SDTMIG 3.x), one file each, named after the domain (``dm.csv``, ``LB.xpt``,
``lb_site3.csv``):

- ``DM``: one row per subject: ``patients`` (randomised subjects), ``randomisation`` (from
  ``ARMCD``, see :data:`ARM_CODES`), ``disposition`` (every subject, screen failures included)
  and ``sites``;
- ``DS``: randomisation time (``DSDECOD`` RANDOMIZED), screen-failure reason (``DSDECOD``
  SCREEN FAILURE), withdrawal with data removal (``DSSCAT`` :data:`DATA_REMOVAL_SCAT`) and
  death (``DSDECOD`` DEATH, when ``DM.DTHDTC`` is empty);
- ``EX``: study-drug administrations -> ``doses`` (time and route only, always labelled
  "study drug": ``EXTRT`` is never read, so the product cannot be stored);
- findings ``LB``, ``VS``, ``RS``, ``QS``, ``RE``: ``--TESTCD`` through the mapping table
  ``core/io/mappings/sdtm.csv`` (``<DOMAIN>:<TESTCD>``) -> ``observations`` / ``biomarkers``;
- ``AE`` (+ ``SUPPAE`` with ``QNAM`` AESI) -> ``adverse_events``;
- ``CM`` -> ``infusions`` (``CMDECOD`` or ``CMTRT`` through the mapping table, rate in
  ``CMDOSE`` / ``CMDOSU``); ``PR`` -> ``episodes`` (``PRDECOD`` or ``PRTRT``).

Values and units are passed on as received (``--STRESN``/``--STRESU``, else ``--ORRES`` /
``--ORRESU``): the one conversion of :mod:`core.units` runs in validation. Only records of
randomised subjects who did not withdraw with data removal are read into the clinical tables.
``anchor_time`` is the first study-drug dose (earliest ``EXSTDTC``; ``DM.RFXSTDTC`` when the
subject has no EX record), the rule of the synthetic generator and docs/architecture.md.

Every problem names the SDTM file, the 1-based data row, the column, the value and what was
expected; any problem refuses the whole input (nothing is returned, nothing is stored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd

from core.concepts import BIOMARKER_COLUMNS
from core.exceptions import DataValidationError, Problem
from core.io.adam import ARM_LABEL, ARMCD
from core.io.codes import CodeMapping, code_table, normalise_code
from core.io.report import dedupe
from core.units import ACCEPTED_UNITS, INFUSION_UNITS, unit_key
from core.vocab import Arm

#: the SDTM domains read, by file stem (``lb.csv`` -> LB)
DOMAINS: Final = ("DM", "DS", "EX", "LB", "VS", "RS", "QS", "RE", "AE", "SUPPAE", "CM", "PR")
#: findings domains: ``--TESTCD`` / ``--STRESN`` / ``--STRESU`` / ``--ORRES`` / ``--DTC``
FINDINGS: Final = ("LB", "VS", "RS", "QS", "RE")
#: ``DM.ARMCD`` -> arm (the codes of the ADaM export, core.io.adam.ARMCD); ``DM.ARM`` is read
#: only when there is no ARMCD column, and then matched against the arm labels
ARM_CODES: Final = MappingProxyType({code: arm for arm, code in ARMCD.items()})
#: ``DM.ARMCD`` values of subjects who were not randomised (SDTMIG 3.1/3.2; SDTMIG 3.3+ leaves
#: ARMCD empty and sets ARMNRS, also accepted)
NOT_RANDOMISED_CODES: Final = ("SCRNFAIL", "NOTASSGN")
#: ``DS.DSSCAT`` of the withdrawal with data removal (sponsor-defined subcategory)
DATA_REMOVAL_SCAT: Final = "DATA REMOVAL"
#: ``EXROUTE`` (CDISC ROUTE codelist, or the short form) -> doses.route
ROUTES: Final = MappingProxyType(
    {"INTRAVENOUS": "IV", "IV": "IV", "SUBCUTANEOUS": "SC", "SC": "SC"}
)
#: ``AESEV`` -> severe
SEVERITY: Final = MappingProxyType({"MILD": False, "MODERATE": False, "SEVERE": True})
#: ``AEREL`` (no CDISC codelist: the usual sponsor values) -> related to the study drug
RELATEDNESS: Final = MappingProxyType(
    {
        "Y": True,
        "RELATED": True,
        "POSSIBLE": True,
        "POSSIBLY RELATED": True,
        "PROBABLE": True,
        "PROBABLY RELATED": True,
        "DEFINITE": True,
        "DEFINITELY RELATED": True,
        "N": False,
        "NOT RELATED": False,
        "UNRELATED": False,
        "UNLIKELY": False,
        "UNLIKELY RELATED": False,
    }
)
#: AESI values (SUPPAE QNAM AESI, or an AESI column in AE) -> adverse_events.aesi
AESI_VALUES: Final = MappingProxyType(
    {
        "ANEMIA": "anemia",
        "ANAEMIA": "anemia",
        "HEMORRHAGE": "hemorrhage",
        "HAEMORRHAGE": "hemorrhage",
    }
)
#: CM / PR terms are an open vocabulary (every concomitant medication and procedure): a term
#: not in the mapping table is skipped, unless it contains one of these words (a scored drug or
#: an organ support the mapping table should list: a misspelling would lower SOFA silently)
WATCH_WORDS: Final = MappingProxyType(
    {
        "CM": ("EPINEPHRIN", "ADRENALIN", "DOPAMIN", "DOBUTAMIN"),
        "PR": ("VENTILATION", "AIRWAY PRESSURE", "RENAL REPLACEMENT", "DIALYSIS", "FILTRATION"),
    }
)
#: a --DTC date-time to the minute (seconds, fraction and offset optional) or a date alone
_DTC = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
EXPECT_DATETIME: Final = (
    "a complete ISO 8601 date-time to the minute (YYYY-MM-DDThh:mm, UTC unless an offset is "
    "given), e.g. 2024-03-01T14:30"
)
EXPECT_DATE: Final = "a complete ISO 8601 date (YYYY-MM-DD) or date-time"
MAPPING_FILE: Final = "core/io/mappings/sdtm.csv"


@dataclass(frozen=True)
class _Domain:
    """One SDTM file: its domain, file name and cells by column (text stripped, empty ->
    None; plain lists, read cell by cell)."""

    name: str
    file: str
    cells: Mapping[str, list[str | None]]
    n: int


class _Problems:
    """Problems of one read, each on an SDTM file row (1-based data row)."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        #: domains with a missing required column (their records were not read)
        self.incomplete: set[str] = set()

    def cell(self, dom: _Domain, i: int | None, col: str | None, value: Any, expected: str) -> None:
        pid = None
        if i is not None and "USUBJID" in dom.cells:
            pid = dom.cells["USUBJID"][i]
        row = None if i is None else i + 1
        self.items.append(Problem(dom.file, row, col, value, expected, patient_id=pid))


def _text(value: Any) -> str | None:
    """A cell as stripped text (an integral float as an integer); None when empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    return text or None


def _read_file(path: Path) -> tuple[dict[str, list[str | None]], int]:
    """Cells by (upper-cased) column and the number of data rows of one file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    elif suffix == ".xpt":
        frame = pd.read_sas(path, format="xport", encoding="utf-8")
    else:
        raise ValueError(f"unsupported file type {suffix!r}")
    cells = {str(c).strip().upper(): [_text(v) for v in frame[c].tolist()] for c in frame.columns}
    return cells, len(frame)


def _domain_of(path: Path) -> str:
    stem = path.name.split(".")[0]
    return re.split(r"[_-]", stem, maxsplit=1)[0].upper()


def _read_domains(paths: Sequence[Path], problems: _Problems) -> dict[str, _Domain]:
    domains: dict[str, _Domain] = {}
    for path in paths:
        name = _domain_of(path)
        if name not in DOMAINS:
            problems.items.append(
                Problem(
                    path.name,
                    None,
                    None,
                    path.name,
                    "an SDTM domain file named after its domain: "
                    + ", ".join(d.lower() for d in DOMAINS)
                    + " (.csv or .xpt)",
                )
            )
            continue
        if name in domains:
            problems.items.append(
                Problem(
                    path.name,
                    None,
                    None,
                    path.name,
                    f"one file per domain; {domains[name].file} is also {name}",
                )
            )
            continue
        try:
            cells, n = _read_file(path)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:  # corrupt files
            problems.items.append(
                Problem(
                    path.name,
                    None,
                    None,
                    type(exc).__name__,
                    f"a readable SDTM .csv or SAS XPT v5 file ({exc})",
                )
            )
            continue
        domains[name] = _Domain(name, path.name, cells, n)
    return domains


def _require(dom: _Domain, columns: Sequence[str], problems: _Problems) -> bool:
    missing = [c for c in columns if c not in dom.cells]
    for c in missing:
        problems.cell(dom, None, c, None, f"an SDTM {dom.name} column {c!r}")
    if missing:
        problems.incomplete.add(dom.name)
    return not missing


def _get(dom: _Domain, i: int, col: str) -> str | None:
    column = dom.cells.get(col)
    return None if column is None else column[i]


def _dtc(
    dom: _Domain, i: int, col: str, problems: _Problems, *, need_time: bool
) -> pd.Timestamp | None:
    """An ISO 8601 --DTC as naive UTC; a partial or malformed value is a problem."""
    value = _get(dom, i, col)
    expected = EXPECT_DATETIME if need_time else EXPECT_DATE
    if value is None:
        return None
    m = _DTC.match(value)
    if m is None or (need_time and m.group(4) is None):
        problems.cell(dom, i, col, value, expected)
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, OverflowError):
        problems.cell(dom, i, col, value, expected)
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def _lookup(table: Mapping[str, CodeMapping], domain: str, code: str | None) -> CodeMapping | None:
    return None if code is None else table.get(normalise_code(f"{domain}:{code}"))


def _accepted_units(mapping: CodeMapping) -> tuple[str, ...]:
    """Unit spellings (after unit_key) accepted for a mapped observation or biomarker."""
    units = ACCEPTED_UNITS[mapping.variable]
    if mapping.target == "biomarkers":
        # biomarkers are stored as received, never converted: only factor-1 units
        return tuple(u for u, f in units.items() if f == 1.0)
    return tuple(units)


# --- DM / DS ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """One DM row: subject, site, arm (None: not randomised) and its DM row (0-based)."""

    usubjid: str
    site: str
    arm: str | None
    row: int


def _arm_of(dom: _Domain, i: int, problems: _Problems) -> tuple[bool, str | None]:
    """(ok, arm) of a DM row; arm None = not randomised."""
    col = "ARMCD" if "ARMCD" in dom.cells else "ARM"
    value = _get(dom, i, col)
    if value is None or value.upper() in NOT_RANDOMISED_CODES:
        return True, None
    if col == "ARMCD":
        arm = ARM_CODES.get(value.upper())
    else:
        labels = {ARM_LABEL[a].casefold(): a for a in Arm}
        arm = labels.get(value.casefold())
    if arm is None:
        known = ARM_CODES if col == "ARMCD" else [ARM_LABEL[a] for a in Arm]
        problems.cell(
            dom,
            i,
            col,
            value,
            "one of " + ", ".join([*known, *NOT_RANDOMISED_CODES]) + " (or empty: not assigned)",
        )
        return False, None
    return True, arm.value


def _subjects(dm: _Domain, problems: _Problems) -> dict[str, _Subject]:
    out: dict[str, _Subject] = {}
    if not _require(dm, ("USUBJID", "SITEID"), problems):
        return out
    if "ARMCD" not in dm.cells and "ARM" not in dm.cells:
        problems.cell(dm, None, "ARMCD", None, "an SDTM DM column 'ARMCD' (or 'ARM')")
        return out
    for i in range(dm.n):
        usubjid, site = _get(dm, i, "USUBJID"), _get(dm, i, "SITEID")
        ok = True
        for col, value in (("USUBJID", usubjid), ("SITEID", site)):
            if value is None:
                problems.cell(dm, i, col, None, "a value (this column may not be empty)")
                ok = False
        _good, arm = _arm_of(dm, i, problems)  # a bad arm code is reported there
        if not ok or usubjid is None or site is None:
            continue
        if usubjid in out:
            problems.cell(
                dm,
                i,
                "USUBJID",
                usubjid,
                f"one DM row per subject (also row {out[usubjid].row + 1})",
            )
            continue
        out[usubjid] = _Subject(usubjid, site, arm, i)
    return out


@dataclass(frozen=True)
class _Disposition:
    randomised_at: Mapping[str, pd.Timestamp]
    screen_failure: Mapping[str, str]
    data_removal: frozenset[str]
    death: Mapping[str, pd.Timestamp]


def _disposition(
    ds: _Domain | None, subjects: Mapping[str, _Subject], problems: _Problems
) -> _Disposition:
    rand: dict[str, pd.Timestamp] = {}
    fail: dict[str, str] = {}
    removal: set[str] = set()
    death: dict[str, pd.Timestamp] = {}
    if ds is None or not _require(ds, ("USUBJID", "DSDECOD"), problems):
        return _Disposition(rand, fail, frozenset(), death)
    for i in range(ds.n):
        usubjid = _get(ds, i, "USUBJID")
        if usubjid not in subjects:
            problems.cell(ds, i, "USUBJID", usubjid, "a subject (USUBJID) of the DM file")
            continue
        decod = (_get(ds, i, "DSDECOD") or "").upper()
        if (_get(ds, i, "DSSCAT") or "").upper() == DATA_REMOVAL_SCAT:
            removal.add(usubjid)
        if decod == "RANDOMIZED":
            ts = _dtc(ds, i, "DSSTDTC", problems, need_time=False)
            if ts is not None:
                rand[usubjid] = ts
        elif decod == "SCREEN FAILURE":
            fail[usubjid] = _get(ds, i, "DSTERM") or "screen failure"
        elif decod == "DEATH":
            ts = _dtc(ds, i, "DSSTDTC", problems, need_time=True)
            if ts is not None:
                death[usubjid] = ts
    return _Disposition(rand, fail, frozenset(removal), death)


# --- findings -----------------------------------------------------------------------------


def _findings(
    dom: _Domain,
    analysed: set[str],
    subjects: Mapping[str, _Subject],
    table: Mapping[str, CodeMapping],
    problems: _Problems,
) -> list[dict[str, Any]]:
    """Mapped records of a findings domain: patient, time, mapping, value, unit, source."""
    d = dom.name
    if not _require(dom, ("USUBJID", f"{d}TESTCD", f"{d}DTC", f"{d}SEQ"), problems):
        return []
    if f"{d}STRESN" not in dom.cells and f"{d}ORRES" not in dom.cells:
        problems.cell(dom, None, f"{d}STRESN", None, f"an SDTM {d} column {d}STRESN or {d}ORRES")
        return []
    out: list[dict[str, Any]] = []
    for i in range(dom.n):
        usubjid = _get(dom, i, "USUBJID")
        if usubjid not in subjects:
            problems.cell(dom, i, "USUBJID", usubjid, "a subject (USUBJID) of the DM file")
            continue
        if usubjid not in analysed:
            continue  # screen failure or withdrawn with data removal: not imported
        code = _get(dom, i, f"{d}TESTCD")
        mapping = _lookup(table, d, code)
        if mapping is None:
            problems.cell(
                dom,
                i,
                f"{d}TESTCD",
                code,
                f"a test code listed in {MAPPING_FILE} as {d}:<code> (mapped or ignore)",
            )
            continue
        if mapping.target == "ignore":
            continue
        if (_get(dom, i, f"{d}STAT") or "").upper() == "NOT DONE":
            continue
        stresn = _get(dom, i, f"{d}STRESN")
        if stresn is not None:
            value, vcol, ucol = _number(stresn), f"{d}STRESN", f"{d}STRESU"
            raw = stresn
        else:
            raw = _get(dom, i, f"{d}ORRES")
            value, vcol, ucol = _number(raw), f"{d}ORRES", f"{d}ORRESU"
            if raw is None:
                vcol = f"{d}STRESN"
        if value is None:
            problems.cell(
                dom, i, vcol, raw, f"a number (the result of {code}), or {d}STAT = NOT DONE"
            )
        unit = _get(dom, i, ucol) or mapping.unit
        accepted = _accepted_units(mapping)
        if unit is None or unit_key(unit) not in accepted:
            problems.cell(
                dom, i, ucol, unit, f"a unit of {mapping.variable}: one of {', '.join(accepted)}"
            )
            unit = None
        time = _dtc(dom, i, f"{d}DTC", problems, need_time=True)
        if time is None and _get(dom, i, f"{d}DTC") is None:
            problems.cell(dom, i, f"{d}DTC", None, EXPECT_DATETIME)
        if value is None or unit is None or time is None:
            continue  # reported above
        out.append(
            {
                "patient_id": usubjid,
                "time": time,
                "mapping": mapping,
                "value": value,
                "unit": unit,
                "source": f"{d}:{_get(dom, i, f'{d}SEQ') or i + 1}",
                "baseline": (_get(dom, i, f"{d}BLFL") or "").upper() == "Y",
                "file": dom.file,
                "row": i,
            }
        )
    return out


def _baseline_weights(
    records: Sequence[dict[str, Any]], anchors: Mapping[str, pd.Timestamp]
) -> dict[str, float]:
    """Baseline body weight per subject: the VSBLFL record, else the last at or before the
    anchor, else the first."""
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["mapping"].target == "observations" and r["mapping"].variable == "weight":
            by_patient.setdefault(r["patient_id"], []).append(r)
    out: dict[str, float] = {}
    for pid, recs in by_patient.items():
        recs = sorted(recs, key=lambda r: r["time"])
        flagged = [r for r in recs if r["baseline"]]
        anchor = anchors.get(pid)
        before = [r for r in recs if anchor is not None and r["time"] <= anchor]
        chosen = flagged[-1] if flagged else before[-1] if before else recs[0]
        out[pid] = chosen["value"]
    return out


# --- interventions and events -------------------------------------------------------------


def _doses(
    ex: _Domain, analysed: set[str], subjects: Mapping[str, _Subject], problems: _Problems
) -> pd.DataFrame:
    """Study-drug administrations: time and route only (EXTRT is never read: blinding)."""
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    if not _require(ex, ("USUBJID", "EXSTDTC", "EXROUTE"), problems):
        return pd.DataFrame()
    for i in range(ex.n):
        usubjid = _get(ex, i, "USUBJID")
        if usubjid not in subjects:
            problems.cell(ex, i, "USUBJID", usubjid, "a subject (USUBJID) of the DM file")
            continue
        if usubjid not in analysed:
            continue
        route_text = _get(ex, i, "EXROUTE")
        route = ROUTES.get((route_text or "").upper())
        if route is None:
            problems.cell(ex, i, "EXROUTE", route_text, "one of " + ", ".join(ROUTES))
        time = _dtc(ex, i, "EXSTDTC", problems, need_time=True)
        if time is None and _get(ex, i, "EXSTDTC") is None:
            problems.cell(ex, i, "EXSTDTC", None, EXPECT_DATETIME)
        if route is None or time is None:
            continue
        rows.append({"patient_id": usubjid, "time": time, "route": route, "label": "study drug"})
        index.append(i)
    return _frame(rows, index, ex.file, ("patient_id", "time", "route", "label"))


def _interventions(
    dom: _Domain,
    analysed: set[str],
    subjects: Mapping[str, _Subject],
    table: Mapping[str, CodeMapping],
    problems: _Problems,
) -> pd.DataFrame:
    """CM -> infusions, PR -> episodes (terms through the mapping table)."""
    d = dom.name
    target = "infusions" if d == "CM" else "episodes"
    required = ["USUBJID", f"{d}STDTC"]
    if d == "CM":
        required += ["CMENDTC", "CMDOSE", "CMDOSU"]
    if not _require(dom, required, problems):
        return pd.DataFrame()
    if f"{d}DECOD" not in dom.cells and f"{d}TRT" not in dom.cells:
        problems.cell(dom, None, f"{d}DECOD", None, f"an SDTM {d} column {d}DECOD or {d}TRT")
        return pd.DataFrame()
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    for i in range(dom.n):
        usubjid = _get(dom, i, "USUBJID")
        if usubjid not in subjects:
            problems.cell(dom, i, "USUBJID", usubjid, "a subject (USUBJID) of the DM file")
            continue
        if usubjid not in analysed:
            continue
        col = f"{d}DECOD" if _get(dom, i, f"{d}DECOD") is not None else f"{d}TRT"
        term = _get(dom, i, col)
        mapping = _lookup(table, d, term)
        if mapping is None:
            if term is not None and any(w in term.upper() for w in WATCH_WORDS[d]):
                problems.cell(
                    dom, i, col, term, f"a {d} term listed in {MAPPING_FILE} as {d}:<term>"
                )
            continue  # an unlisted medication or procedure: not a SOFA input
        if mapping.target == "ignore":
            continue
        start = _dtc(dom, i, f"{d}STDTC", problems, need_time=True)
        if start is None and _get(dom, i, f"{d}STDTC") is None:
            problems.cell(dom, i, f"{d}STDTC", None, EXPECT_DATETIME)
        stop = _dtc(dom, i, f"{d}ENDTC", problems, need_time=True)
        if d == "CM":
            if stop is None and _get(dom, i, "CMENDTC") is None:
                problems.cell(
                    dom, i, "CMENDTC", None, EXPECT_DATETIME + " (a rate change is a new record)"
                )
            dose_text = _get(dom, i, "CMDOSE")
            rate = _number(dose_text)
            if rate is None:
                problems.cell(dom, i, "CMDOSE", dose_text, "a number (the infusion rate)")
            unit = _get(dom, i, "CMDOSU") or mapping.unit
            if unit is None or unit_key(unit) not in INFUSION_UNITS:
                problems.cell(
                    dom, i, "CMDOSU", unit, "a rate unit: one of " + ", ".join(INFUSION_UNITS)
                )
                unit = None
            if start is None or stop is None or rate is None or unit is None:
                continue
            rows.append(
                {
                    "patient_id": usubjid,
                    "drug": mapping.variable,
                    "start": start,
                    "stop": stop,
                    "rate": rate,
                    "unit": unit,
                }
            )
        else:
            if start is None:
                continue
            rows.append(
                {"patient_id": usubjid, "kind": mapping.variable, "start": start, "stop": stop}
            )
        index.append(i)
    columns = (
        ("patient_id", "drug", "start", "stop", "rate", "unit")
        if target == "infusions"
        else ("patient_id", "kind", "start", "stop")
    )
    return _frame(rows, index, dom.file, columns)


def _flag(
    dom: _Domain, i: int, col: str, codes: Mapping[str, bool], problems: _Problems
) -> bool | None:
    value = _get(dom, i, col)
    flag = codes.get((value or "").upper())
    if flag is None:
        problems.cell(dom, i, col, value, "one of " + ", ".join(codes))
    return flag


def _aesi_by_seq(supp: _Domain | None, problems: _Problems) -> dict[tuple[str, str], str]:
    """(USUBJID, AESEQ) -> AESI from SUPPAE (QNAM AESI, IDVAR AESEQ)."""
    out: dict[tuple[str, str], str] = {}
    if supp is None or not _require(
        supp, ("USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QVAL"), problems
    ):
        return out
    for i in range(supp.n):
        if (_get(supp, i, "QNAM") or "").upper() != "AESI":
            continue
        if (_get(supp, i, "IDVAR") or "").upper() != "AESEQ":
            problems.cell(supp, i, "IDVAR", _get(supp, i, "IDVAR"), "AESEQ")
            continue
        qval = _get(supp, i, "QVAL")
        aesi = AESI_VALUES.get((qval or "").upper())
        if aesi is None:
            problems.cell(supp, i, "QVAL", qval, "one of " + ", ".join(AESI_VALUES))
            continue
        out[(_get(supp, i, "USUBJID") or "", _get(supp, i, "IDVARVAL") or "")] = aesi
    return out


def _adverse_events(
    ae: _Domain,
    supp: _Domain | None,
    analysed: set[str],
    subjects: Mapping[str, _Subject],
    problems: _Problems,
) -> pd.DataFrame:
    req = ("USUBJID", "AESTDTC", "AEDECOD", "AEBODSYS", "AESER", "AESEV", "AEREL")
    if not _require(ae, req, problems):
        return pd.DataFrame()
    aesi_supp = _aesi_by_seq(supp, problems)
    yn = MappingProxyType({"Y": True, "N": False})
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    for i in range(ae.n):
        usubjid = _get(ae, i, "USUBJID")
        if usubjid not in subjects:
            problems.cell(ae, i, "USUBJID", usubjid, "a subject (USUBJID) of the DM file")
            continue
        if usubjid not in analysed:
            continue
        onset = _dtc(ae, i, "AESTDTC", problems, need_time=False)
        if onset is None and _get(ae, i, "AESTDTC") is None:
            problems.cell(ae, i, "AESTDTC", None, EXPECT_DATE)
        serious = _flag(ae, i, "AESER", yn, problems)
        severe = _flag(ae, i, "AESEV", SEVERITY, problems)
        related = _flag(ae, i, "AEREL", RELATEDNESS, problems)
        aesi = aesi_supp.get((usubjid, _get(ae, i, "AESEQ") or ""))
        own = _get(ae, i, "AESI")
        if own is not None:
            aesi = AESI_VALUES.get(own.upper())
            if aesi is None:
                problems.cell(ae, i, "AESI", own, "one of " + ", ".join(AESI_VALUES))
        if onset is None or serious is None or severe is None or related is None:
            continue
        rows.append(
            {
                "patient_id": usubjid,
                "onset_time": onset,
                "soc": _get(ae, i, "AEBODSYS"),
                "pt": _get(ae, i, "AEDECOD"),
                "serious": serious,
                "severe": severe,
                "related": related,
                "aesi": aesi,
            }
        )
        index.append(i)
    cols = ("patient_id", "onset_time", "soc", "pt", "serious", "severe", "related", "aesi")
    return _frame(rows, index, ae.file, cols)


# --- assembly -----------------------------------------------------------------------------


def _frame(
    rows: Sequence[Mapping[str, Any]], index: Sequence[int], source: str, columns: Sequence[str]
) -> pd.DataFrame:
    """A raw table whose index is the 0-based row of its SDTM file (validation's file rows)."""
    frame = pd.DataFrame(list(rows), columns=list(columns), index=pd.Index(index, dtype=np.int64))
    frame.attrs["source"] = source
    return frame


def _observation_tables(records: Sequence[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    obs = [r for r in records if r["mapping"].target == "observations"]
    if obs:
        files = sorted({r["file"] for r in obs})
        rows = [
            {
                "patient_id": r["patient_id"],
                "time": r["time"],
                "variable": r["mapping"].variable,
                "value": r["value"],
                "unit": r["unit"],
                "source": r["source"],
            }
            for r in obs
        ]
        # one file: validation problems point at its rows; several: at the table's rows
        index = [r["row"] for r in obs] if len(files) == 1 else list(range(len(obs)))
        source = files[0] if len(files) == 1 else "observations from " + ", ".join(files)
        out["observations"] = _frame(rows, index, source, tuple(rows[0]))
    bio = [r for r in records if r["mapping"].target == "biomarkers"]
    if bio:
        wide: dict[tuple[str, pd.Timestamp], dict[str, Any]] = {}
        first: dict[tuple[str, pd.Timestamp], int] = {}
        for r in bio:
            key = (r["patient_id"], r["time"])
            rec = wide.setdefault(key, {"patient_id": key[0], "time": key[1]})
            rec[BIOMARKER_COLUMNS[r["mapping"].variable]] = r["value"]
            first[key] = min(first.get(key, r["row"]), r["row"])
        files = sorted({r["file"] for r in bio})
        cols = ("patient_id", "time", *BIOMARKER_COLUMNS.values())
        index = [first[k] for k in wide] if len(files) == 1 else list(range(len(wide)))
        source = files[0] if len(files) == 1 else "biomarkers from " + ", ".join(files)
        out["biomarkers"] = _frame(list(wide.values()), index, source, cols)
    return out


def read_sdtm(paths: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """Raw long-format tables from SDTM domain files (see the module docstring).

    Parameters
    ----------
    paths
        One ``.csv`` or ``.xpt`` file per domain, named after it (``dm.csv``, ``LB.xpt``);
        ``DM`` is required.

    Returns
    -------
    dict
        Table name -> raw frame (values and units as received), ready for
        :func:`core.io.validate.validate_tables` / :func:`core.io.load.import_tables`. A
        table read from one SDTM file has that file as ``attrs["source"]`` and its 0-based
        rows as index.

    Raises
    ------
    DataValidationError
        Every problem of every file at once (file, 1-based data row, column, value,
        expected): unknown or unreadable files, missing columns, unknown test codes, partial
        or malformed dates on times used for scoring, non-numeric results, unknown units or
        arm codes, records of subjects not in DM.
    """
    problems = _Problems()
    domains = _read_domains([Path(p) for p in paths], problems)
    dm = domains.get("DM")
    if dm is None and not problems.items:
        problems.items.append(
            Problem(
                ", ".join(Path(p).name for p in paths) or "(no files)",
                None,
                None,
                None,
                "a DM (demographics) file among the SDTM files",
            )
        )
    if dm is None:
        raise DataValidationError(dedupe(problems.items))
    table = code_table("sdtm")
    subjects = _subjects(dm, problems)
    disp = _disposition(domains.get("DS"), subjects, problems)
    randomised = {s for s, subj in subjects.items() if subj.arm is not None}
    analysed = randomised - disp.data_removal
    records: list[dict[str, Any]] = []
    for name in FINDINGS:
        if name in domains:
            records += _findings(domains[name], analysed, subjects, table, problems)
    tables: dict[str, pd.DataFrame] = {}
    if "EX" in domains:
        tables["doses"] = _doses(domains["EX"], analysed, subjects, problems)
    if "CM" in domains:
        tables["infusions"] = _interventions(domains["CM"], analysed, subjects, table, problems)
    if "PR" in domains:
        tables["episodes"] = _interventions(domains["PR"], analysed, subjects, table, problems)
    if "AE" in domains:
        tables["adverse_events"] = _adverse_events(
            domains["AE"], domains.get("SUPPAE"), analysed, subjects, problems
        )
    tables.update(_observation_tables(records))
    tables.update(
        _subject_tables(dm, subjects, disp, analysed, tables.get("doses"), records, problems)
    )
    if problems.items:
        raise DataValidationError(dedupe(problems.items))
    return {name: frame for name, frame in tables.items() if len(frame)}


def _subject_tables(
    dm: _Domain,
    subjects: Mapping[str, _Subject],
    disp: _Disposition,
    analysed: set[str],
    doses: pd.DataFrame | None,
    records: Sequence[dict[str, Any]],
    problems: _Problems,
) -> dict[str, pd.DataFrame]:
    """``sites``, ``patients``, ``randomisation`` and ``disposition`` from DM (and DS)."""
    first_dose: dict[str, pd.Timestamp] = {}
    if doses is not None and len(doses):
        first_dose = doses.groupby("patient_id")["time"].min().to_dict()
    anchors: dict[str, pd.Timestamp] = {}
    for pid in analysed:
        subj = subjects[pid]
        anchor = first_dose.get(pid)
        if anchor is None:
            anchor = _dtc(dm, subj.row, "RFXSTDTC", problems, need_time=True)
        if anchor is None:
            if _get(dm, subj.row, "RFXSTDTC") is None and "EX" not in problems.incomplete:
                problems.cell(
                    dm,
                    subj.row,
                    "RFXSTDTC",
                    None,
                    "the first study-drug dose: an EX record or " + EXPECT_DATETIME,
                )
            continue
        anchors[pid] = anchor
    weights = _baseline_weights(records, anchors)
    patients: list[dict[str, Any]] = []
    p_index: list[int] = []
    for pid in sorted(analysed, key=lambda s: subjects[s].row):
        subj = subjects[pid]
        i = subj.row
        if pid not in weights and not problems.incomplete & set(FINDINGS):
            problems.cell(
                dm, i, "USUBJID", pid, "a baseline body weight: a VS WEIGHT record of the subject"
            )
        death = _dtc(dm, i, "DTHDTC", problems, need_time=True)
        if death is None and _get(dm, i, "DTHDTC") is None:
            death = disp.death.get(pid)
        age_text = _get(dm, i, "AGE")
        age = _number(age_text)
        if age_text is not None and age is None:
            problems.cell(dm, i, "AGE", age_text, "a number (age in years)")
        ageu = _get(dm, i, "AGEU")
        if ageu is not None and ageu.upper() != "YEARS":
            problems.cell(dm, i, "AGEU", ageu, "YEARS")
        sex = _get(dm, i, "SEX")
        sex = sex.upper() if sex is not None and sex.upper() in ("F", "M") else None
        if pid not in anchors or pid not in weights:
            continue
        patients.append(
            {
                "patient_id": pid,
                "site_id": subj.site,
                "anchor_time": anchors[pid],
                "weight_kg": weights[pid],
                "death_time": death,
                "age_years": age,
                "sex": sex,
                "randomised_at": disp.randomised_at.get(pid),
            }
        )
        p_index.append(i)
    p_cols = (
        "patient_id",
        "site_id",
        "anchor_time",
        "weight_kg",
        "death_time",
        "age_years",
        "sex",
        "randomised_at",
    )
    ordered = sorted(subjects.values(), key=lambda s: s.row)
    rand = [s for s in ordered if s.arm is not None]
    sites = sorted({s.site for s in ordered})
    return {
        "sites": _frame([{"site_id": s} for s in sites], range(len(sites)), dm.file, ("site_id",)),
        "patients": _frame(patients, p_index, dm.file, p_cols),
        "randomisation": _frame(
            [
                {
                    "patient_id": s.usubjid,
                    "arm": s.arm,
                    "randomised_at": disp.randomised_at.get(s.usubjid),
                }
                for s in rand
            ],
            [s.row for s in rand],
            dm.file,
            ("patient_id", "arm", "randomised_at"),
        ),
        "disposition": _frame(
            [
                {
                    "screening_id": s.usubjid,
                    "site_id": s.site,
                    "patient_id": s.usubjid if s.arm is not None else None,
                    "excluded_reason": None
                    if s.arm is not None
                    else disp.screen_failure.get(s.usubjid, "not randomised"),
                    "phenotype_at_screening": None,
                    "withdrawn_with_data_removal": s.usubjid in disp.data_removal,
                }
                for s in ordered
            ],
            [s.row for s in ordered],
            dm.file,
            (
                "screening_id",
                "site_id",
                "patient_id",
                "excluded_reason",
                "phenotype_at_screening",
                "withdrawn_with_data_removal",
            ),
        ),
    }
