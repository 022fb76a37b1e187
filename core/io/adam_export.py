"""ADaM export: ADSL, ADSOFA, ADRS, ADTTE, ADAE and ADLB as CSV files.

Study days (``ASTDY``, ``ADY``, ``DTHDY``) come from :func:`core.time.study_day` under the
caller's SOFA rules, like every other study day in the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import db
from core import repository as repo
from core.concepts import BIOMARKER_COLUMNS, CONCEPTS, EXPORT_CODES
from core.endpoints import sofa_response
from core.io.adam import (
    ADLB_BIOMARKERS,
    ADLB_PARAMCD,
    ADSOFA_PARAMCD,
    ARM_LABEL,
    ARMCD,
    STUDYID,
)
from core.io.schema import DEFAULT_ENDPOINT_RULES, DEFAULT_SOFA_RULES
from core.rules import EndpointRules, SofaRules
from core.time import study_day
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL, Arm


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
        adsl["ARMCD"] = arm.map(lambda a: ARMCD.get(Arm(a)) if pd.notna(a) else None)
        adsl["ARM"] = arm.map(lambda a: ARM_LABEL.get(Arm(a)) if pd.notna(a) else None)
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
        FERRBL=patients[BIOMARKER_COLUMNS["ferritin"]],
        HLADRBL=patients[BIOMARKER_COLUMNS["hla_dr"]],
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


def _adae(
    patients: pd.DataFrame, ae: pd.DataFrame, arms: pd.DataFrame | None, *, rules: SofaRules
) -> pd.DataFrame:
    anchor = ae["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    ae = ae.assign(_anchor=anchor).sort_values(
        ["patient_id", "onset_time", "pt"], ignore_index=True
    )
    out = pd.DataFrame({"STUDYID": STUDYID, "USUBJID": ae["patient_id"]})
    if arms is not None:
        arm = ae["patient_id"].map(arms.set_index("patient_id")["arm"])
        out["ARMCD"] = arm.map(lambda a: ARMCD.get(Arm(a)) if pd.notna(a) else None)
        out["ARM"] = arm.map(lambda a: ARM_LABEL.get(Arm(a)) if pd.notna(a) else None)
    yn = {True: "Y", False: "N"}
    return out.assign(
        AESEQ=ae.groupby("patient_id").cumcount() + 1,
        ASTDTM=_iso(ae["onset_time"]),
        ASTDY=study_day(ae["onset_time"], ae["_anchor"], rules=rules),
        AETERM=ae["pt"],
        AEDECOD=ae["pt"],
        AEBODSYS=ae["soc"],
        AESEV=ae["severe"].map({True: "SEVERE", False: "MILD/MODERATE"}),
        AESER=ae["serious"].map(yn),
        AREL=ae["related"].map(yn),
        TRTEMFL=(ae["onset_time"] >= ae["_anchor"]).map(yn),
        AESI=ae["aesi"].map(lambda v: str(v).upper() if isinstance(v, str) else None),
    )


def _adlb(
    patients: pd.DataFrame, obs: pd.DataFrame, bio: pd.DataFrame, *, rules: SofaRules
) -> pd.DataFrame:
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
                    "AVALU": CONCEPTS[EXPORT_CODES[code]].unit,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(
        ["USUBJID", "ADTM", "PARAMCD"], ignore_index=True
    )
    anchor = out["USUBJID"].map(patients.set_index("patient_id")["anchor_time"])
    out.insert(0, "STUDYID", STUDYID)
    out["ADY"] = study_day(out["ADTM"], anchor, rules=rules)
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
    rules
        SOFA rules: of the stored daily SOFA (ADSOFA, ADRS, ``SOFABL``) and the study-day
        clock of ``DTHDY`` (ADSL), ``ASTDY`` (ADAE) and ``ADY`` (ADLB), all from
        :func:`core.time.study_day`.
    endpoint_rules
        The SAP endpoint rules (ADRS; the last day and death score of ADSOFA).

    Returns
    -------
    dict
        Dataset name (``"ADSL"``...) -> path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    patients = repo.load_patients(engine, rules=rules)
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
        "ADAE": _adae(patients, raw_ae, arms, rules=rules),
        "ADLB": _adlb(
            patients,
            repo.load_observations(engine),
            repo.load_biomarkers(engine),
            rules=rules,
        ),
    }
    paths = {}
    for name, frame in datasets.items():
        path = out / f"{name.lower()}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    return paths
