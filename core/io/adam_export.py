"""ADaM export: ADSL, ADSOFA, ADRS, ADTTE, ADAE and ADLB as CSV, SAS XPORT v5 or Dataset-JSON.

:func:`build_adam` derives the datasets (dates and datetimes as pandas datetimes; the writers
turn them into SAS numeric dates / datetimes, ISO 8601 text in CSV and Dataset-JSON) and
:func:`export_adam` writes them with a define.xml 2.1. The variables, labels, codelists and
derivations are data in :mod:`core.io.adam_spec`; docs/adam.md documents the sponsor
extensions, the DTYPE terms, the two study-day definitions and the ADTTE definition.

Blinding (docs/blinding.md 6.4; one policy, :mod:`core.policy`): an export without the arm has
no ARM/TRT variable, no ferritin or HLA-DR after the first sample
(:func:`~core.policy.may_see_post_baseline_biomarkers`) and no AESI flag nor any record of a
preferred term that is an AESI (:func:`~core.policy.may_list_aesi_patients`): exactly what the
UI withholds from a blinded role.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import db
from core import repository as repo
from core.concepts import BIOMARKER_COLUMNS, CONCEPTS, EXPORT_CODES
from core.derive import SOFA_OBS_VARIABLES
from core.endpoints import sofa_response, time_to_death
from core.io.adam import ADLB_BIOMARKERS, ADLB_PARAMCD, ADSOFA_PARAMCD, STUDYID
from core.io.adam_spec import (
    ADLB_PARAMS,
    ADSOFA_PARAMS,
    ADTTE_PARAMS,
    ARM_CODES,
    ARM_NUMBERS,
    COUNTRY_ISO3,
    Dataset,
    adrs_params,
    datasets,
)
from core.io.dataset_json import write_dataset_json
from core.io.define_xml import write_define
from core.io.schema import DEFAULT_ENDPOINT_RULES, DEFAULT_SOFA_RULES
from core.io.xpt import csv_frame, write_xpt
from core.policy import (
    ArmVisibility,
    may_compare_groups,
    may_list_aesi_patients,
    may_see_post_baseline_biomarkers,
)
from core.rules import EndpointRules, SofaRules
from core.time import study_day
from core.vocab import ARM_LABELS, ORGANS, SOFA_COLUMNS, SOFA_TOTAL, Arm

#: file formats of :func:`export_adam`
ADAM_FILE_FORMATS: Final = ("csv", "xpt", "json")
AdamFileFormat = Literal["csv", "xpt", "json"]
#: the define.xml written beside the datasets
DEFINE_FILE: Final = "define.xml"
#: survival horizons of ADTTE (days), as the cohort page (components/cohort/survival.py)
TTE_HORIZONS: Final = (28, 90)
_IMPUTATION_DTYPE: Final = {"locf": "LOCF", "day1_zero": "BC", "zero": "BC"}


def _yn(values: pd.Series) -> pd.Series:
    """Booleans -> Y / N; missing stays missing (never silently N)."""
    return values.map(lambda v: None if v is None or pd.isna(v) else ("Y" if bool(v) else "N"))


def _date(values: pd.Series) -> pd.Series:
    """Datetimes -> their dates (datetime64 at midnight; NaT stays NaT)."""
    return pd.to_datetime(values).dt.normalize()


def adam_day(dates: pd.Series, reference: pd.Series) -> pd.Series:
    """ADaM relative day: date - reference + 1 on or after the reference, else date - reference
    (there is no day 0; ADaMIG). Int64, missing where either date is missing."""
    diff = (_date(dates) - _date(reference)).dt.days
    out = diff + (diff >= 0).astype("Int64")
    return out.astype("Int64")


def country_iso3(names: pd.Series, sites: pd.Series) -> pd.Series:
    """Site country names (or ISO alpha-3 codes) -> ISO 3166-1 alpha-3 (ADSL.COUNTRY).

    Raises
    ------
    ValueError
        A country with no code in :data:`core.io.adam_spec.COUNTRY_ISO3`, naming the site and
        the country (never a silently missing COUNTRY).
    """
    codes = set(COUNTRY_ISO3.values())

    def one(name: object, site: object) -> str | None:
        if name is None or (isinstance(name, float) and np.isnan(name)):
            return None
        text = str(name).strip()
        if text.upper() in codes:
            return text.upper()
        if text in COUNTRY_ISO3:
            return COUNTRY_ISO3[text]
        raise ValueError(
            f"site {site}: country {text!r} has no ISO 3166-1 alpha-3 code; expected one of "
            f"{', '.join(sorted(COUNTRY_ISO3))} (core.io.adam_spec.COUNTRY_ISO3) or a code"
        )

    return pd.Series(
        [one(n, s) for n, s in zip(names, sites, strict=True)], index=names.index, dtype=object
    )


def _arm_columns(arm: pd.Series, prefix: str) -> dict[str, pd.Series]:
    """TRT01P/TRT01PN-style text and number columns from arm values (``Arm`` values)."""
    a = arm.map(lambda v: Arm(v) if isinstance(v, str) and v in Arm._value2member_map_ else None)
    return {
        prefix: a.map(lambda v: ARM_LABELS[v] if v is not None else None),
        f"{prefix}N": a.map(lambda v: ARM_NUMBERS[v] if v is not None else None).astype("Int64"),
    }


def _order(frame: pd.DataFrame, spec: Dataset, with_arm: bool) -> pd.DataFrame:
    """The spec's variables in the spec's order; a missing one is a programming error."""
    names = list(spec.names(with_arm=with_arm))
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise AssertionError(f"{spec.name}: variables {missing} not derived")
    return frame[names].reset_index(drop=True)


def _adsl(
    engine: Engine,
    patients: pd.DataFrame,
    daily: pd.DataFrame,
    arms: pd.DataFrame | None,
    rules: SofaRules,
) -> pd.DataFrame:
    rnd_t, disp_t, dose_t = db.randomisation, db.disposition, db.doses
    with engine.connect() as conn:
        rnd = pd.DataFrame(
            conn.execute(sa.select(rnd_t.c.patient_id, rnd_t.c.randomised_at)).all(),
            columns=["patient_id", "randomised_at"],
        )
        disp = pd.DataFrame(
            conn.execute(
                sa.select(
                    disp_t.c.patient_id,
                    disp_t.c.site_id,
                    disp_t.c.phenotype_at_screening,
                    disp_t.c.withdrawn_with_data_removal,
                ).where(disp_t.c.patient_id.is_not(None))
            ).all(),
            columns=["patient_id", "site_id", "phenotype", "withdrawn"],
        ).drop_duplicates("patient_id", keep="last")
        doses = pd.DataFrame(
            conn.execute(
                sa.select(
                    dose_t.c.patient_id,
                    sa.func.min(dose_t.c.time),
                    sa.func.max(dose_t.c.time),
                ).group_by(dose_t.c.patient_id)
            ).all(),
            columns=["patient_id", "first", "last"],
        )
    sites = repo.load_sites(engine)
    trial = patients[patients["trial_participant"]]
    ids = sorted(set(rnd["patient_id"]) | set(trial["patient_id"]))
    p = pd.DataFrame({"patient_id": pd.Series(ids, dtype=object)}).merge(
        patients, on="patient_id", how="left"
    )
    rnd_at = p["patient_id"].map(rnd.set_index("patient_id")["randomised_at"])
    p["randomised_at"] = pd.to_datetime(p["randomised_at"]).fillna(pd.to_datetime(rnd_at))
    dsp = disp.set_index("patient_id")
    p["site_id"] = p["site_id"].fillna(p["patient_id"].map(dsp["site_id"]))
    country = sites.set_index("site_id")["country"] if "country" in sites else pd.Series()
    dosed = doses.set_index("patient_id")
    has_data = p["patient_id"].isin(patients["patient_id"])
    withdrawn = p["patient_id"].map(dsp["withdrawn"]).astype("boolean").fillna(False) | ~has_data
    saffl = p["patient_id"].isin(dosed.index)
    day1 = daily[daily["study_day"] == 1].set_index("patient_id")[SOFA_TOTAL]
    out = pd.DataFrame(
        {
            "STUDYID": STUDYID,
            "USUBJID": p["patient_id"],
            "SUBJID": p["patient_id"],
            "SITEID": p["site_id"],
            "COUNTRY": country_iso3(p["site_id"].map(country), p["site_id"]),
            "AGE": pd.to_numeric(p["age_years"]).round().astype("Int64"),
            "AGEU": np.where(p["age_years"].notna(), "YEARS", None),
            "SEX": p["sex"],
            "RACE": "NOT REPORTED",
            "RANDDT": _date(p["randomised_at"]),
            "RANDDTM": pd.to_datetime(p["randomised_at"]),
            "TRTSDT": _date(p["anchor_time"]).where(saffl),
            "TRTSDTM": pd.to_datetime(p["anchor_time"]).where(saffl),
            "TRTEDT": _date(p["patient_id"].map(dosed["last"])),
            "TRTEDTM": pd.to_datetime(p["patient_id"].map(dosed["last"])),
            "RANDFL": "Y",
            "ITTFL": "Y",
            "MITTFL": np.where(withdrawn, "N", "Y"),
            "SAFFL": np.where(saffl, "Y", "N"),
            "DATRMVFL": np.where(withdrawn, "Y", "N"),
            "WEIGHTBL": pd.to_numeric(p["weight_kg"]),
            "APACHEII": pd.to_numeric(p["apache_ii"]).round().astype("Int64"),
            "CCI": pd.to_numeric(p["charlson"]).round().astype("Int64"),
            "INFSRC": p["infection_type"],
            "MVBL": _yn(p["mechanical_ventilation"]),
            "PHENO": p["patient_id"].map(dsp["phenotype"]),
            "FERRBL": pd.to_numeric(p[BIOMARKER_COLUMNS["ferritin"]]),
            "HLADRBL": pd.to_numeric(p[BIOMARKER_COLUMNS["hla_dr"]]),
            "SOFABL": p["patient_id"].map(day1).astype("Int64"),
            "DTHFL": np.where(has_data, np.where(p["death_time"].notna(), "Y", "N"), None),
            "DTHDT": _date(p["death_time"]),
            "DTHDTM": pd.to_datetime(p["death_time"]),
            "DTHPRDY": study_day(p["death_time"], p["anchor_time"], rules=rules),
        }
    )
    if arms is not None:
        arm = p["patient_id"].map(arms.set_index("patient_id")["arm"])
        code = arm.map(lambda v: ARM_CODES.get(Arm(v)) if pd.notna(v) else None)
        trt = _arm_columns(arm, "TRT01P")
        act = _arm_columns(arm.where(saffl), "TRT01A")
        out = out.assign(
            ARMCD=code,
            ARM=trt["TRT01P"],
            ACTARMCD=code.where(saffl),
            ACTARM=trt["TRT01P"].where(saffl),
            **trt,
            **act,
        )
    return out


def _trtp(frame: pd.DataFrame, adsl: pd.DataFrame, with_arm: bool) -> pd.DataFrame:
    """Add TRTP / TRTPN (= ADSL TRT01P / TRT01PN) when the export has the arm."""
    if not with_arm:
        return frame
    s = adsl.set_index("USUBJID")
    return frame.assign(
        TRTP=frame["USUBJID"].map(s["TRT01P"]),
        TRTPN=frame["USUBJID"].map(s["TRT01PN"]).astype("Int64"),
    )


def _adsofa(patients: pd.DataFrame, daily: pd.DataFrame, endpoint: EndpointRules) -> pd.DataFrame:
    """ADSOFA: one row per patient x parameter x protocol day 1..day15_last_day (DTYPE)."""
    last_day = endpoint.day15_last_day
    organ_of = {SOFA_COLUMNS[o]: o.value for o in ORGANS}
    death_day = patients.set_index("patient_id")["death_study_day"]
    records = []
    cols = [c for c in daily.columns if c not in ("patient_id", "study_day")]
    by_patient: dict[str, dict[int, dict]] = {}
    for pid, day, *values in daily[["patient_id", "study_day", *cols]].itertuples(
        index=False, name=None
    ):
        by_patient.setdefault(pid, {})[int(day)] = dict(zip(cols, values, strict=True))
    for pid in patients["patient_id"]:
        g = by_patient.get(pid)
        dd = death_day.get(pid)
        dd = None if dd is None or pd.isna(dd) else int(dd)
        for paramcd, col in ADSOFA_PARAMCD.items():
            base = last = None
            imp_col = f"{organ_of[col]}_imputation" if col in organ_of else None
            for day in range(1, last_day + 1):
                dtype = None
                if dd is not None and day >= dd and day > 1:
                    if paramcd != "SOFA":
                        continue  # the worst case applies to the total only
                    aval, dtype = float(endpoint.death_score), "WC"
                elif g is not None and day in g and pd.notna(g[day][col]):
                    aval = float(g[day][col])
                    if imp_col is not None and imp_col in g[day]:
                        imp = g[day][imp_col]
                        dtype = _IMPUTATION_DTYPE.get(imp) if isinstance(imp, str) else None
                elif last is not None:
                    aval, dtype = last, "LOCF"
                else:
                    continue
                if day == 1:
                    base = aval
                if dtype != "WC":
                    last = aval
                records.append((pid, paramcd, day, aval, base, dtype))
    frame = pd.DataFrame.from_records(
        records, columns=["USUBJID", "PARAMCD", "AVISITN", "AVAL", "BASE", "DTYPE"]
    )
    anchor = frame["USUBJID"].map(patients.set_index("patient_id")["anchor_time"])
    adtm = pd.to_datetime(anchor) + pd.to_timedelta(frame["AVISITN"] - 1, unit="D")
    total = frame["PARAMCD"] == "SOFA"
    return frame.assign(
        STUDYID=STUDYID,
        PARAM=frame["PARAMCD"].map(lambda c: ADSOFA_PARAMS[c][0]),
        PARAMN=frame["PARAMCD"].map(lambda c: ADSOFA_PARAMS[c][1]).astype("Int64"),
        AVISIT="Day " + frame["AVISITN"].astype(str),
        ADTM=adtm,
        ADT=_date(adtm),
        ADY=adam_day(adtm, anchor),
        APRDY=frame["AVISITN"].astype("Int64"),
        AVAL=frame["AVAL"].astype("Int64"),
        BASE=frame["BASE"].astype("Int64"),
        CHG=(frame["AVAL"] - frame["BASE"]).astype("Int64"),
        ABLFL=np.where(frame["AVISITN"] == 1, "Y", None),
        ANL01FL=np.where(total & (frame["AVISITN"] <= endpoint.last_day), "Y", None),
        ANL02FL=np.where(total & (frame["AVISITN"] <= endpoint.day15_last_day), "Y", None),
    )


def _adrs(patients: pd.DataFrame, daily: pd.DataFrame, endpoint: EndpointRules) -> pd.DataFrame:
    params = adrs_params(endpoint)
    parts = []
    for last_day in (endpoint.last_day, endpoint.day15_last_day):
        r = sofa_response(
            daily,
            patients[["patient_id", "death_study_day"]],
            last_day=last_day,
            threshold=endpoint.threshold,
            death_score=endpoint.death_score,
        )
        common = {
            "USUBJID": r["patient_id"],
            "AVISIT": f"Day {last_day}",
            "AVISITN": last_day,
            "BASE": r["baseline_sofa"],
            "MEANFU": r["mean_followup_sofa"],
            "EVALFL": np.where(r["evaluable"], "Y", "N"),
            "NLOCF": r["n_locf_days"],
            "NDEATH": r["n_death_days"],
        }
        rsp, dec = f"SOFARSP{last_day}", f"SOFADEC{last_day}"
        parts.append(
            pd.DataFrame(
                {
                    **common,
                    "PARAMCD": rsp,
                    "AVALC": np.where(r["responder"], "Y", "N"),
                    "AVAL": np.where(r["responder"], 1.0, 0.0),
                }
            )
        )
        parts.append(
            pd.DataFrame({**common, "PARAMCD": dec, "AVALC": None, "AVAL": r["sofa_decrease"]})
        )
    out = pd.concat(parts, ignore_index=True)
    return out.assign(
        STUDYID=STUDYID,
        MITTFL="Y",
        PARAM=out["PARAMCD"].map(lambda c: params[c][0]),
        PARAMN=out["PARAMCD"].map(lambda c: params[c][1]).astype("Int64"),
        AVISITN=out["AVISITN"].astype("Int64"),
        NLOCF=out["NLOCF"].astype("Int64"),
        NDEATH=out["NDEATH"].astype("Int64"),
    ).sort_values(["USUBJID", "PARAMN"], ignore_index=True)


def _adtte(patients: pd.DataFrame) -> pd.DataFrame:
    """ADTTE with the dashboard's durations (:func:`core.endpoints.time_to_death`)."""
    anchor = patients.set_index("patient_id")["anchor_time"]
    death = patients.set_index("patient_id")["death_time"]
    parts = []
    for horizon in TTE_HORIZONS:
        paramcd = f"OS{horizon}"
        t = time_to_death(patients[["patient_id", "death_study_day"]], horizon_days=horizon)
        pid = t["patient_id"]
        a = pd.to_datetime(pid.map(anchor))
        event = t["event"].to_numpy()
        end_of_horizon = _date(a + pd.Timedelta(days=horizon))
        parts.append(
            pd.DataFrame(
                {
                    "USUBJID": pid,
                    "PARAMCD": paramcd,
                    "PARAM": ADTTE_PARAMS[paramcd][0],
                    "PARAMN": ADTTE_PARAMS[paramcd][1],
                    "STARTDT": _date(a),
                    "ADT": _date(pd.to_datetime(pid.map(death))).where(event, end_of_horizon),
                    "AVAL": t["duration_days"].round().astype("Int64"),
                    "CNSR": np.where(event, 0, 1),
                    "EVNTDESC": np.where(event, "DEATH", f"ALIVE AT END OF DAY {horizon}"),
                    "CNSDTDSC": np.where(event, None, f"END OF PROTOCOL DAY {horizon}"),
                    "SRCDOM": "ADSL",
                    "SRCVAR": np.where(event, "DTHDT", "TRTSDT"),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    return out.assign(
        STUDYID=STUDYID,
        MITTFL="Y",
        PARAMN=out["PARAMN"].astype("Int64"),
        CNSR=out["CNSR"].astype("Int64"),
    ).sort_values(["USUBJID", "PARAMN"], ignore_index=True)


def _adae(
    patients: pd.DataFrame,
    ae: pd.DataFrame,
    adsl: pd.DataFrame,
    *,
    visibility: ArmVisibility,
    rules: SofaRules,
) -> pd.DataFrame:
    ae = ae[ae["patient_id"].isin(patients["patient_id"])]
    if not may_list_aesi_patients(visibility):
        # the UI hides the patients of any preferred term that is an AESI (docs/blinding.md 6.4)
        aesi_pts = set(ae.loc[ae["aesi"].notna(), "pt"])
        ae = ae[~ae["pt"].isin(aesi_pts)]
    anchor = ae["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    ae = ae.assign(_anchor=pd.to_datetime(anchor)).sort_values(
        ["patient_id", "onset_time", "pt"], ignore_index=True
    )
    onset = pd.to_datetime(ae["onset_time"])
    out = pd.DataFrame(
        {
            "STUDYID": STUDYID,
            "USUBJID": ae["patient_id"],
            "AESEQ": (ae.groupby("patient_id").cumcount() + 1).astype("Int64"),
            "AETERM": ae["pt"],
            "AEDECOD": ae["pt"],
            "AEBODSYS": ae["soc"],
            "AESEV": ae["severe"].map(lambda v: "SEVERE" if v is True or v == 1 else None),
            "ASEV": ae["severe"].map(
                lambda v: None if v is None or pd.isna(v) else ("SEVERE" if v else "NOT SEVERE")
            ),
            "AESER": _yn(ae["serious"]),
            "AREL": _yn(ae["related"]),
            "ASTDT": _date(onset),
            "ASTDTM": onset,
            "ASTDY": adam_day(onset, ae["_anchor"]),
            "ASTPRDY": study_day(onset, ae["_anchor"], rules=rules),
            "TRTEMFL": _yn(onset >= ae["_anchor"]),
            "AESI": ae["aesi"].map(lambda v: str(v).upper() if isinstance(v, str) else None),
        }
    )
    if may_compare_groups(visibility):
        s = adsl.set_index("USUBJID")
        out["TRTA"] = out["USUBJID"].map(s["TRT01A"])
        out["TRTAN"] = out["USUBJID"].map(s["TRT01AN"]).astype("Int64")
    return out


def _adlb(
    patients: pd.DataFrame,
    obs: pd.DataFrame,
    bio: pd.DataFrame,
    *,
    visibility: ArmVisibility,
    rules: SofaRules,
) -> pd.DataFrame:
    code_of = {v: k for k, v in ADLB_PARAMCD.items()}
    ids = set(patients["patient_id"])
    obs = obs[obs["patient_id"].isin(ids)]
    bio = bio[bio["patient_id"].isin(ids)].sort_values(["patient_id", "time"])
    first_time = bio.groupby("patient_id")["time"].transform("min")
    is_first = (bio["time"] == first_time).to_numpy()
    if not may_see_post_baseline_biomarkers(visibility):
        bio, is_first = bio[is_first], is_first[is_first]
    parts = [
        pd.DataFrame(
            {
                "USUBJID": obs["patient_id"],
                "PARAMCD": obs["variable"].map(code_of),
                "ADTM": obs["time"],
                "AVAL": obs["value"],
                "AVALU": obs["unit"],
                "ABLFL": None,
                "_sofa_input": obs["variable"].isin(SOFA_OBS_VARIABLES),
            }
        )
    ]
    for code, (col, _units_ok) in ADLB_BIOMARKERS.items():
        keep = bio[col].notna().to_numpy()
        sub = bio[keep]
        parts.append(
            pd.DataFrame(
                {
                    "USUBJID": sub["patient_id"],
                    "PARAMCD": code,
                    "ADTM": sub["time"],
                    "AVAL": sub[col],
                    "AVALU": CONCEPTS[EXPORT_CODES[code]].unit,
                    "ABLFL": np.where(is_first[keep], "Y", None),
                    "_sofa_input": False,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(
        ["USUBJID", "ADTM", "PARAMCD"], ignore_index=True
    )
    anchor = pd.to_datetime(out["USUBJID"].map(patients.set_index("patient_id")["anchor_time"]))
    adtm = pd.to_datetime(out["ADTM"])
    prdy = study_day(adtm, anchor, rules=rules)
    in_window = (prdy >= 1) & (prdy <= rules.max_study_day)
    return out.assign(
        STUDYID=STUDYID,
        PARAM=out["PARAMCD"].map(lambda c: ADLB_PARAMS[c][0]),
        PARAMN=out["PARAMCD"].map(lambda c: ADLB_PARAMS[c][1]).astype("Int64"),
        AVISIT=np.where(prdy >= 1, "Day " + prdy.astype(str), "Before First Dose"),
        AVISITN=prdy.where(prdy >= 1, 0).astype("Int64"),
        ADTM=adtm,
        ADT=_date(adtm),
        ADY=adam_day(adtm, anchor),
        APRDY=prdy,
        ANL01FL=np.where(out["_sofa_input"] & in_window.fillna(False), "Y", None),
    )


def build_adam(
    engine: Engine,
    *,
    visibility: ArmVisibility,
    rules: SofaRules = DEFAULT_SOFA_RULES,
    endpoint_rules: EndpointRules = DEFAULT_ENDPOINT_RULES,
) -> dict[str, pd.DataFrame]:
    """The six ADaM datasets as frames, variables as :func:`core.io.adam_spec.datasets` says.

    Parameters
    ----------
    engine
        Database with imported data and derived daily SOFA under ``rules``.
    visibility
        What the recipient may see of the allocation (:class:`core.policy.ArmVisibility`):
        without :func:`~core.policy.may_compare_groups` no ARM/TRT variable; the guards
        :func:`~core.policy.may_see_post_baseline_biomarkers` and
        :func:`~core.policy.may_list_aesi_patients` remove what the UI withholds.
        ``CODED`` is not an export visibility (exports carry real labels or none).
    rules, endpoint_rules
        SOFA rules (stored daily SOFA, protocol study-day clock) and the SAP endpoint rules.

    Returns
    -------
    dict
        ``"ADSL"`` ... ``"ADLB"`` -> frame; date and datetime variables are datetime64.
    """
    if visibility is ArmVisibility.CODED:
        raise ValueError("ADaM exports are blinded (NONE) or unblinded (FULL), never coded")
    with_arm = may_compare_groups(visibility)
    spec = datasets(rules, endpoint_rules)
    all_patients = repo.load_patients(engine, rules=rules)
    patients = all_patients[all_patients["trial_participant"]].reset_index(drop=True)
    daily = repo.load_daily_sofa(engine, rules_key=rules.key())
    daily = daily[daily["patient_id"].isin(patients["patient_id"])]
    arms = repo.load_arms(engine) if with_arm else None
    adsl = _adsl(engine, patients, daily, arms, rules)
    frames = {
        "ADSL": adsl,
        "ADSOFA": _trtp(_adsofa(patients, daily, endpoint_rules), adsl, with_arm),
        "ADRS": _trtp(_adrs(patients, daily, endpoint_rules), adsl, with_arm),
        "ADTTE": _trtp(_adtte(patients), adsl, with_arm),
        "ADAE": _adae(
            patients,
            repo.load_adverse_events(engine),
            adsl,
            visibility=visibility,
            rules=rules,
        ),
        "ADLB": _trtp(
            _adlb(
                patients,
                repo.load_observations(engine),
                repo.load_biomarkers(engine),
                visibility=visibility,
                rules=rules,
            ),
            adsl,
            with_arm,
        ),
    }
    return {name: _order(frame, spec[name], with_arm) for name, frame in frames.items()}


def export_adam(
    engine: Engine,
    out_dir: str | Path,
    *,
    include_arm: bool,
    file_format: AdamFileFormat = "csv",
    rules: SofaRules = DEFAULT_SOFA_RULES,
    endpoint_rules: EndpointRules = DEFAULT_ENDPOINT_RULES,
) -> dict[str, Path]:
    """Write ADSL, ADSOFA, ADRS, ADTTE, ADAE and ADLB, and their define.xml 2.1.

    Parameters
    ----------
    engine
        Database with imported data and derived daily SOFA under ``rules``.
    out_dir
        Folder (created) that receives ``adsl.csv`` / ``adsl.xpt`` / ``adsl.json`` ... and
        ``define.xml``.
    include_arm
        Unblinded export (:attr:`ArmVisibility.FULL`); without it the export follows the
        blinded UI's guards (module docstring).
    file_format
        ``csv`` (dates as ISO 8601 text, the formatted values), ``xpt`` (SAS XPORT v5 with
        labels and DATE9. / DATETIME20. numeric dates) or ``json`` (CDISC Dataset-JSON 1.1).
    rules, endpoint_rules
        As :func:`build_adam`.

    Returns
    -------
    dict
        Dataset name (``"ADSL"``...) -> path written (define.xml is ``out_dir/define.xml``).
    """
    if file_format not in ADAM_FILE_FORMATS:
        raise ValueError(
            f"unknown ADaM file format {file_format!r}; expected one of "
            f"{', '.join(ADAM_FILE_FORMATS)}"
        )
    visibility = ArmVisibility.FULL if include_arm else ArmVisibility.NONE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = build_adam(engine, visibility=visibility, rules=rules, endpoint_rules=endpoint_rules)
    spec = datasets(rules, endpoint_rules)
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        path = out / f"{name.lower()}.{file_format}"
        if file_format == "xpt":
            write_xpt(frame, spec[name], path)
        elif file_format == "json":
            write_dataset_json(frame, spec[name], path)
        else:
            csv_frame(frame, spec[name]).to_csv(path, index=False)
        paths[name] = path
    write_define(
        frames,
        spec,
        out / DEFINE_FILE,
        files={n: p.name for n, p in paths.items()},
        endpoint_rules=endpoint_rules,
        blinded=not include_arm,
    )
    return paths


def export_adam_zip(
    engine: Engine,
    *,
    include_arm: bool,
    file_format: AdamFileFormat = "xpt",
    rules: SofaRules = DEFAULT_SOFA_RULES,
    endpoint_rules: EndpointRules = DEFAULT_ENDPOINT_RULES,
) -> bytes:
    """The export of :func:`export_adam` (datasets and define.xml) as one zip, in memory: what a
    UI download sends (the caller records the download in the audit trail, as the command line
    does, and passes ``include_arm`` only for a role with :attr:`ArmVisibility.FULL`)."""
    with tempfile.TemporaryDirectory(prefix="adam-") as tmp:
        paths = export_adam(
            engine,
            tmp,
            include_arm=include_arm,
            file_format=file_format,
            rules=rules,
            endpoint_rules=endpoint_rules,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in [*paths.values(), Path(tmp) / DEFINE_FILE]:
                zf.write(path, arcname=path.name)
        return buf.getvalue()


__all__ = [
    "ADAM_FILE_FORMATS",
    "DEFINE_FILE",
    "TTE_HORIZONS",
    "adam_day",
    "build_adam",
    "export_adam",
    "export_adam_zip",
]
