"""core.ward.what_changed on hand-built provenance rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.vocab import ORGANS
from core.ward import CHANGE_COLUMNS, change_texts, what_changed


def prov(pid, day, organ, score, variable=None, value=np.nan, unit=None, imputation=None):
    return {
        "patient_id": pid,
        "study_day": day,
        "organ": organ,
        "score": score,
        "variable": variable,
        "value": value,
        "unit": unit,
        "imputed": imputation is not None,
        "imputation": imputation,
    }


def steady(pid, day):
    """Every organ scoring 0 with a plausible value (no change unless overridden)."""
    return [prov(pid, day, o.value, 0, "gcs_total", 15.0, "points") for o in ORGANS]


def frame(*rows):
    return pd.DataFrame(list(rows))


def test_wch001_score_up_names_organ_variable_and_both_values():
    p = frame(
        prov("A", 2, "renal", 1, "creatinine", 1.4, "mg/dL"),
        prov("A", 3, "renal", 3, "creatinine", 3.6, "mg/dL"),
        prov("A", 2, "cardiovascular", 3, "norepinephrine", 0.07, "mcg/kg/min"),
        prov("A", 3, "cardiovascular", 4, "norepinephrine", 0.28, "mcg/kg/min"),
    )
    out = what_changed(p, day=3)
    assert list(out.columns) == list(CHANGE_COLUMNS)
    # largest change first
    assert list(out["text"]) == [
        "Renal 1→3: creatinine 1.4→3.6 mg/dL",
        "CV 3→4: norepinephrine 0.07→0.28 mcg/kg/min",
    ]
    r = out.iloc[0]
    assert (r.score_before, r.score_after, r.change) == (1, 3, 2)
    assert (r.value_before, r.value_after, r.unit) == (1.4, 3.6, "mg/dL")
    assert (r.study_day, r.previous_day) == (3, 2)


def test_wch002_score_down_and_precision_per_variable():
    p = frame(
        prov("A", 4, "respiration", 3, "pao2", 72.0, "mmHg"),
        prov("A", 5, "respiration", 2, "pao2", 90.0, "mmHg"),
        prov("A", 4, "liver", 2, "bilirubin", 2.456, "mg/dL"),
        prov("A", 5, "liver", 1, "bilirubin", 1.95, "mg/dL"),
    )
    daily = pd.DataFrame(
        {
            "patient_id": ["A", "A"],
            "study_day": [4, 5],
            "pao2_fio2_mmhg": [180.4, 240.0],
            "bilirubin_mg_dl": [2.456, 1.95],
        }
    )
    out = what_changed(p, day=5, daily=daily)
    # ties: organ order (respiration before liver); P/F from the daily table, 0 decimals
    assert list(out["text"]) == [
        "Resp 3→2: P/F 180→240 mmHg",
        "Liver 2→1: bilirubin 2.46→1.95 mg/dL",
    ]
    assert (out["change"] == -1).all()
    # without the daily table: PaO2 as received, never mislabelled as P/F
    assert what_changed(p, day=5)["text"].iloc[0] == "Resp 3→2: PaO2 72→90 mmHg"


def test_wch003_deciding_variable_switched_names_both():
    p = frame(
        prov("A", 1, "cardiovascular", 1, "map", 62.0, "mmHg"),
        prov("A", 2, "cardiovascular", 3, "dopamine", 6.0, "mcg/kg/min"),
    )
    out = what_changed(p, day=2)
    assert list(out["text"]) == ["CV 1→3: MAP 62 mmHg → dopamine 6 mcg/kg/min"]
    assert (out.iloc[0].variable_before, out.iloc[0].variable) == ("map", "dopamine")


def test_wch004_imputed_day_is_said_never_a_number():
    p = frame(
        prov("A", 3, "renal", 1, imputation="locf"),
        prov("A", 4, "renal", 3, "creatinine", 3.6, "mg/dL"),
        prov("B", 1, "coagulation", 0, imputation="day1_zero"),
        prov("B", 2, "coagulation", 2, "platelets", 90.0, "10^3/uL"),
        # a stray value on an imputed row must not be shown as measured
        prov("C", 3, "liver", 1, "bilirubin", 1.5, "mg/dL"),
        prov("C", 4, "liver", 2, "bilirubin", 1.5, "mg/dL", imputation="locf"),
    )
    a = what_changed(p, day=4).set_index("patient_id")
    assert a.loc["A", "text"] == "Renal 1→3: not measured, carried forward → creatinine 3.6 mg/dL"
    assert np.isnan(a.loc["A", "value_before"])
    assert bool(a.loc["A", "imputed_before"])
    assert a.loc["C", "text"] == "Liver 1→2: bilirubin 1.5 mg/dL → not measured, carried forward"
    assert np.isnan(a.loc["C", "value_after"])
    b = what_changed(p, day=2)
    assert list(b["text"]) == ["Coag 0→2: not measured, scored 0 → platelets 90 10^3/uL"]


def test_wch005_day_one_has_no_previous_day():
    p = frame(prov("A", 1, "renal", 2, "creatinine", 2.1, "mg/dL"))
    out = what_changed(p, day=1)
    assert out.empty
    assert list(out.columns) == list(CHANGE_COLUMNS)
    assert what_changed(p.iloc[0:0], day=3).empty


def test_wch006_no_change_no_row_and_missing_day_no_row():
    p = pd.DataFrame(steady("A", 1) + steady("A", 2) + steady("B", 2))
    assert what_changed(p, day=2).empty  # A unchanged, B has no day 1
    assert what_changed(p, day=3).empty  # nobody has day 3


def test_wch007_si_and_per_weight_units_converted_or_labelled():
    p = frame(
        prov("A", 1, "renal", 1, "creatinine", 123.76, "umol/L"),  # 1.4 mg/dL
        prov("A", 2, "renal", 3, "creatinine", 318.24, "umol/L"),  # 3.6 mg/dL
        prov("A", 1, "cardiovascular", 3, "norepinephrine", 5.6, "mcg/min"),
        prov("A", 2, "cardiovascular", 4, "norepinephrine", 22.4, "mcg/min"),
    )
    daily = pd.DataFrame(
        {
            "patient_id": ["A", "A"],
            "study_day": [1, 2],
            "creatinine_mg_dl": [1.4, 3.6],
            "norepinephrine_mcg_kg_min": [0.07, 0.28],
        }
    )
    with_daily = what_changed(p, day=2, daily=daily)
    assert list(with_daily["text"]) == [
        "Renal 1→3: creatinine 1.4→3.6 mg/dL",
        "CV 3→4: norepinephrine 0.07→0.28 mcg/kg/min",
    ]
    alone = what_changed(p, day=2).set_index("organ")
    # SI converted with the concept factor; mcg/min cannot be: kept, and labelled, as received
    assert alone.loc["renal", "text"] == "Renal 1→3: creatinine 1.4→3.6 mg/dL"
    assert alone.loc["cardiovascular", "text"] == "CV 3→4: norepinephrine 5.6→22.4 mcg/min"


def test_wch008_day_per_patient_and_texts_per_patient():
    p = frame(
        prov("A", 2, "renal", 1, "creatinine", 1.4, "mg/dL"),
        prov("A", 3, "renal", 3, "creatinine", 3.6, "mg/dL"),
        prov("B", 4, "cns", 0, "gcs_total", 15.0, "points"),
        prov("B", 5, "cns", 2, "gcs_total", 11.0, "points"),
        prov("B", 2, "cns", 1, "gcs_total", 13.0, "points"),
        prov("B", 3, "cns", 3, "gcs_total", 8.0, "points"),
    )
    out = what_changed(p, day=pd.Series({"A": 3, "B": 5}))
    assert list(out["text"]) == ["Renal 1→3: creatinine 1.4→3.6 mg/dL", "CNS 0→2: GCS 15→11"]
    texts = change_texts(out, pd.Index(["B", "C", "A"]))
    assert list(texts) == [("CNS 0→2: GCS 15→11",), (), ("Renal 1→3: creatinine 1.4→3.6 mg/dL",)]


@pytest.mark.parametrize("day", [2, 3])
def test_wch009_explicit_previous_day(day):
    p = frame(
        prov("A", 1, "renal", 0, "creatinine", 0.9, "mg/dL"),
        prov("A", 2, "renal", 0, "creatinine", 1.0, "mg/dL"),
        prov("A", 3, "renal", 2, "creatinine", 2.4, "mg/dL"),
    )
    out = what_changed(p, day=day, previous_day=1)
    assert len(out) == (0 if day == 2 else 1)
