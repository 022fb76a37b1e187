"""Unit conversion at ingestion (core.units; clinical.md 5.1, SRC-MIMIC bg.sql, SRC-RICU)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.exceptions import DataValidationError
from core.units import (
    BILIRUBIN_UMOL_L_PER_MG_DL,
    CREATININE_UMOL_L_PER_MG_DL,
    KPA_TO_MMHG,
    PLAUSIBLE_RANGES,
    normalize_infusions,
    normalize_observations,
)

T0 = pd.Timestamp("2024-03-01 10:00")


def obs(*rows: tuple[str, str, object, object]) -> pd.DataFrame:
    """(patient_id, variable, value, unit) rows, one minute apart."""
    return pd.DataFrame(
        [
            {
                "patient_id": p,
                "time": T0 + pd.Timedelta(minutes=i),
                "variable": v,
                "value": x,
                "unit": u,
            }
            for i, (p, v, x, u) in enumerate(rows)
        ]
    )


# clinical.md 5.1 conversion table
@pytest.mark.parametrize(
    ("variable", "value", "unit", "expected", "canonical"),
    [
        ("bilirubin", 34.2, "umol/L", 2.0, "mg/dL"),
        ("bilirubin", 34.2, "µmol/L", 2.0, "mg/dL"),
        ("bilirubin", 1.5, "mg/dL", 1.5, "mg/dL"),
        ("creatinine", 309.4, "umol/L", 3.5, "mg/dL"),
        ("creatinine", 442.0, "μmol/l", 5.0, "mg/dL"),
        ("pao2", 8.0, "kPa", 60.00496, "mmHg"),
        ("pao2", 75.0, "mmHg", 75.0, "mmHg"),
        ("fio2", 40.0, "%", 0.40, "fraction"),
        ("fio2", 0.35, "fraction", 0.35, "fraction"),
        ("fio2", 1.0, "fraction", 1.0, "fraction"),
        ("platelets", 85.0, "G/L", 85.0, "10^3/uL"),
        ("platelets", 85.0, "10^9/L", 85.0, "10^3/uL"),
        ("platelets", 85.0, "K/uL", 85.0, "10^3/uL"),
        ("lactate", 18.02, "mg/dL", 2.0, "mmol/L"),
        ("ferritin", 5000.0, "ug/L", 5000.0, "ng/mL"),
        ("gcs_total", 14, "points", 14.0, "points"),
        ("urine_output", 120.0, "mL", 120.0, "mL"),
    ],
)
def test_units001_conversions(
    variable: str, value: float, unit: str, expected: float, canonical: str
) -> None:
    out = normalize_observations(obs(("SYN-S01-0001", variable, value, unit)))
    assert out["value"].iloc[0] == pytest.approx(expected, rel=1e-5)
    assert out["unit"].iloc[0] == canonical
    assert out["value_as_received"].iloc[0] == value
    assert out["unit_as_received"].iloc[0] == unit


def test_units002_named_factors() -> None:
    assert BILIRUBIN_UMOL_L_PER_MG_DL == 17.1
    assert CREATININE_UMOL_L_PER_MG_DL == 88.4
    assert KPA_TO_MMHG == 7.50062
    assert PLAUSIBLE_RANGES["gcs_total"] == (3.0, 15.0, "points")
    assert PLAUSIBLE_RANGES["fio2"].low == 0.21


def test_units003_input_not_mutated_and_categoricals_accepted() -> None:
    frame = obs(("A", "creatinine", 100.0, "umol/L"), ("A", "map", 60, "mmHg"))
    frame["variable"] = frame["variable"].astype("category")
    frame["unit"] = frame["unit"].astype("category")
    before = frame.copy(deep=True)
    out = normalize_observations(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out["value"].tolist() == pytest.approx([100 / 88.4, 60.0])


def test_units004_unknown_unit_names_patient_variable_time_value() -> None:
    with pytest.raises(DataValidationError) as err:
        normalize_observations(obs(("SYN-S01-0007", "creatinine", 1.4, "mmol/L")))
    (p,) = err.value.problems
    assert p.patient_id == "SYN-S01-0007"
    assert p.column == "creatinine"
    assert p.value == 1.4
    assert p.time == str(T0)
    assert "umol/l" in p.expected
    assert p.row == 1


@pytest.mark.parametrize(("value", "unit"), [(2.0, "fraction"), (15.0, "fraction"), (4.0, "%")])
def test_units005_fio2_1_to_20_rejected_as_oxygen_flow(value: float, unit: str) -> None:
    with pytest.raises(DataValidationError, match="O2 flow"):
        normalize_observations(obs(("A", "fio2", value, unit)))


@pytest.mark.parametrize(
    ("variable", "value", "unit"),
    [
        ("fio2", 0.15, "fraction"),
        ("fio2", 0.4, "%"),  # a fraction charted as percent: never guessed
        ("fio2", 120.0, "%"),
        ("gcs_total", 2, "points"),
        ("gcs_total", 16, "points"),
        ("platelets", 2500.0, "G/L"),
        ("creatinine", 30.0, "mg/dL"),
        ("creatinine", 3000.0, "umol/L"),
        ("pao2", 900.0, "mmHg"),
        ("map", -5.0, "mmHg"),
        ("urine_output", 6000.0, "mL"),
        ("bilirubin", 90.0, "mg/dL"),
    ],
)
def test_units006_implausible_values_rejected(variable: str, value: float, unit: str) -> None:
    with pytest.raises(DataValidationError) as err:
        normalize_observations(obs(("SYN-S01-0002", variable, value, unit)))
    (p,) = err.value.problems
    assert (p.patient_id, p.column, p.value) == ("SYN-S01-0002", variable, value)


def test_units007_gcs_must_be_integer_and_value_present() -> None:
    with pytest.raises(DataValidationError) as err:
        normalize_observations(obs(("A", "gcs_total", 13.5, "points"), ("A", "map", None, "mmHg")))
    assert [p.row for p in err.value.problems] == [1, 2]


def test_units008_all_problems_reported_at_once() -> None:
    frame = obs(
        ("A", "creatinine", 1.0, "mg/dL"),  # fine
        ("B", "creatinine", 1.0, "g/L"),  # unknown unit
        ("C", "fio2", 5.0, "%"),  # O2 flow
        ("D", "platelets", -1.0, "G/L"),  # implausible
        ("E", "ferritin", 100.0, "pmol/L"),  # rejected unit
        ("F", "heart_rate", 80.0, "bpm"),  # unknown variable
        ("G", "map", 65.0, None),  # missing unit
    )
    frame.loc[6, "time"] = pd.NaT
    with pytest.raises(DataValidationError) as err:
        normalize_observations(frame)
    problems = err.value.problems
    assert sorted({p.patient_id for p in problems}) == ["B", "C", "D", "E", "F", "G"]
    assert len(problems) == 7  # G has two: missing time and missing unit
    assert "7 data problem(s)" in str(err.value)


def test_units009_missing_column() -> None:
    with pytest.raises(DataValidationError, match="unit"):
        normalize_observations(obs(("A", "map", 60, "mmHg")).drop(columns="unit"))


# --- infusions (clinical.md 2.6: mcg/min / body weight) ---------------------------------------


def infusions(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "patient_id": p,
                "drug": d,
                "start": T0,
                "stop": T0 + pd.Timedelta(hours=2),
                "rate": r,
                "unit": u,
            }
            for p, d, r, u in rows
        ]
    )


PATIENTS = pd.DataFrame({"patient_id": ["A", "B"], "weight_kg": [80.0, np.nan]})


def test_units010_infusion_mcg_min_divided_by_weight() -> None:
    out = normalize_infusions(
        infusions(
            ("A", "norepinephrine", 8.0, "mcg/min"),
            ("A", "dobutamine", 5.0, "mcg/kg/min"),
            ("A", "vasopressin", 0.03, "U/min"),  # stored, not scored
        ),
        PATIENTS,
    )
    assert out["rate_mcg_kg_min"].iloc[0] == pytest.approx(0.1)
    assert out["rate_mcg_kg_min"].iloc[1] == 5.0
    assert np.isnan(out["rate_mcg_kg_min"].iloc[2])
    assert out["rate_as_received"].iloc[0] == 8.0


def test_units011_infusion_problems_all_at_once() -> None:
    frame = infusions(
        ("B", "norepinephrine", 8.0, "mcg/min"),  # no weight
        ("A", "epinephrine", 0.1, "mg/h"),  # unknown unit
        ("A", "norepinephrine", 6.0, "mcg/kg/min"),  # > 5 mcg/kg/min
        ("A", "dopamine", -1.0, "mcg/kg/min"),  # negative
    )
    frame.loc[3, "stop"] = T0 - pd.Timedelta(hours=1)  # stop before start as well
    with pytest.raises(DataValidationError) as err:
        normalize_infusions(frame, PATIENTS)
    cols = sorted((p.row, p.column) for p in err.value.problems)
    assert cols == [(1, "weight_kg"), (2, "unit"), (3, "rate"), (4, "rate"), (4, "stop")]
    assert err.value.problems[0].patient_id == "B"
