"""CDISC ADaM codes and the ADaM -> long-format mapping (ADSL, ADAE, ADLB inputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd

from core.concepts import BIOMARKER_COLUMNS, CONCEPTS, EXPORT_CODES
from core.exceptions import DataValidationError, Problem
from core.io.report import file_rows, plain
from core.units import unit_key
from core.vocab import ARM_LABELS, ORGANS, SOFA_COLUMNS, SOFA_TOTAL, Arm

STUDYID: Final = "IMMUNOSEP"

#: ADLB parameter codes <-> variables of the ``observations`` table (read-only view of
#: core.concepts.EXPORT_CODES without the biomarkers)
ADLB_PARAMCD: Final = MappingProxyType(
    {code: name for code, name in EXPORT_CODES.items() if name not in BIOMARKER_COLUMNS}
)
#: ADLB parameters that go to the ``biomarkers`` table: code -> (value column, accepted units
#: after unit_key); read-only view of core.concepts. Only units with factor 1 are accepted:
#: biomarker values are stored as received, never converted
ADLB_BIOMARKERS: Final = MappingProxyType(
    {
        code: (
            BIOMARKER_COLUMNS[name],
            tuple(u for u, factor in CONCEPTS[name].units.items() if factor == 1.0),
        )
        for code, name in EXPORT_CODES.items()
        if name in BIOMARKER_COLUMNS
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
#: raw tables an import with ADaM ADSL must bring along as raw files: ADaM ADSL/ADAE/ADLB
#: carry none of them, yet the daily SOFA (vasopressors, ventilation and RRT), the safety
#: population, the phenotype at screening, CONSORT and the ICU census need them. A header-only
#: file states that a table has no rows. Checked by validation (core.io.validate).
ADAM_COMPANIONS: Final = ("icu_stays", "infusions", "episodes", "doses", "disposition")
#: ``Problem.where`` of the refusal of an incomplete ADaM import
ADAM_INPUT: Final = "ADaM input"
#: ``frame.attrs`` key naming the ADaM dataset a long-format table was mapped from
ADAM_ATTR: Final = "adam_dataset"

#: arm <-> ADaM ARMCD and ARM (label)
ARMCD: Final = MappingProxyType({Arm.PRECISION: "PRECISION", Arm.PLACEBO: "PLACEBO"})
ARM_LABEL: Final = ARM_LABELS


def _adam_source(frame: pd.DataFrame, default: str) -> str:
    return str(frame.attrs.get("source", default))


def _require(frame: pd.DataFrame, columns: Sequence[str], source: str) -> list[Problem]:
    present = ", ".join(str(c) for c in frame.columns[:20]) or "none"
    return [
        Problem(
            source, None, c, f"(no column {c!r}; the file has: {present})", f"an ADaM column {c!r}"
        )
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
        if key in (arm.value, ARMCD[arm].casefold(), ARM_LABEL[arm].casefold()):
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
        the ``randomisation`` table (PRECISION / PLACEBO or the arm labels). Rows with
        ``DATRMVFL = Y`` (withdrawn with data removal) give a randomisation row only.
    adae
        ``USUBJID, ASTDTM, AEBODSYS, AEDECOD, AESER, AESEV, AREL`` (+ optional ``AESI``;
        ``ASEV`` SEVERE / NOT SEVERE, when present, is read instead of ``AESEV``).
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
            # subjects withdrawn with data removal (ADSL DATRMVFL = Y) have a randomisation
            # row only: no patient data
            removed = (
                adsl["DATRMVFL"].astype(str).str.strip().str.upper().eq("Y")
                if "DATRMVFL" in adsl.columns
                else pd.Series(False, index=adsl.index)
            )
            pts = adsl.loc[~removed, [c for c in mapping if c in adsl.columns]].rename(
                columns=mapping
            )
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
            # ASEV (SEVERE / NOT SEVERE) is complete where AESEV (CDISC CT: MILD, MODERATE,
            # SEVERE) is missing for a non-severe event whose grade was not recorded
            sev_col = "ASEV" if "ASEV" in adae.columns else "AESEV"
            sev = adae[sev_col].map(
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
                rows = file_rows(adlb)[is_bio]
                for k, unit, _val, cd in zip(
                    rows, bio_rows["AVALU"], bio_rows["AVAL"], code[is_bio], strict=True
                ):
                    if unit_key(unit) not in ADLB_BIOMARKERS[cd][1]:
                        problems.append(
                            Problem(
                                src,
                                int(k),
                                "AVALU",
                                plain(unit),
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
                wide = wide.reindex(columns=[col for col, _units in ADLB_BIOMARKERS.values()])
                wide["row"] = first_row
                bio = wide.reset_index().set_index("row").sort_index()
                bio.index.name = None
                bio.columns.name = None
                bio.attrs["source"] = src
                out["biomarkers"] = bio
    if problems:
        raise DataValidationError(problems)
    for name, frame in out.items():
        frame.attrs[ADAM_ATTR] = (
            "ADSL"
            if name in ("patients", "randomisation")
            else ("ADAE" if name == "adverse_events" else "ADLB")
        )
    return out


def adam_incomplete(tables: Mapping[str, pd.DataFrame]) -> list[Problem]:
    """The refusal of ADaM ADSL input without the raw tables ADaM cannot carry.

    Tables mapped from ADaM carry ``attrs[ADAM_ATTR]`` (:func:`from_adam`). When patients come
    from an ADSL, every table of :data:`ADAM_COMPANIONS` must be present as a raw table (a
    header-only file when there are no rows): otherwise the import would be accepted and the
    daily SOFA, the endpoints and the phenotype would silently differ from the source. ADLB or
    ADAE without ADSL only add rows for patients already stored (unknown patients are refused
    by validation) and are not affected; raw tables may always be partial.

    Returns
    -------
    list of Problem
        One problem (``where`` = :data:`ADAM_INPUT`) naming the ADaM files and the missing
        tables, or none.
    """
    adam = {n: f for n, f in tables.items() if f.attrs.get(ADAM_ATTR)}
    if not any(f.attrs.get(ADAM_ATTR) == "ADSL" for f in adam.values()):
        return []
    missing = [t for t in ADAM_COMPANIONS if t not in tables or tables[t].attrs.get(ADAM_ATTR)]
    if not missing:
        return []
    files = sorted({str(f.attrs.get("source", f.attrs[ADAM_ATTR])) for f in adam.values()})
    return [
        Problem(
            ADAM_INPUT,
            None,
            None,
            f"{', '.join(files)} without {', '.join(f'{t}.csv' for t in missing)}",
            f"the raw tables {', '.join(missing)} alongside the ADaM files (ADaM ADSL/ADAE/ADLB "
            "carry no ICU stays, vasopressor infusions, ventilation/RRT episodes, study doses "
            "or disposition, so the daily SOFA, the endpoints and the phenotype would silently "
            "differ: export with `python -m core.io export DIR --format raw --with-arm` for a "
            "lossless copy; a header-only file states that a table has no rows)",
        )
    ]
