"""Classic SOFA scorer (core.sofa): boundary tables, worked examples, properties.

Cut-offs: SRC-VINCENT table with the half-open intervals of SRC-MIMIC score/sofa.sql and
SRC-RICU callback-sofa.R (clinical.md 2.2 and 2.8); printed SI bands clinical.md 5.2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exceptions import DataValidationError
from core.rules import SofaRules
from core.sofa import score_sofa, score_sofa_rowwise, sepsis3_check
from core.vocab import SOFA_COLUMNS, SOFA_INPUT_COLUMNS, SOFA_TOTAL, Organ

NUMERIC_INPUTS = tuple(c for c in SOFA_INPUT_COLUMNS if c != "respiratory_support")


def day(**values: object) -> dict[str, object]:
    """One patient-day with every input missing except ``values``."""
    row: dict[str, object] = dict.fromkeys(NUMERIC_INPUTS, np.nan)
    row["respiratory_support"] = False
    row.update(values)
    return row


def score_one(rules: SofaRules = SofaRules(), **values: object) -> pd.Series:
    return score_sofa(pd.DataFrame([day(**values)]), rules=rules).iloc[0]


def component(organ: Organ, **values: object) -> object:
    return score_one(**values)[SOFA_COLUMNS[organ]]


# --- boundary tables ------------------------------------------------------------------------

# SRC-VINCENT / SRC-MIMIC / SRC-RICU: P/F < 400 -> 1, < 300 -> 2, < 200 + support -> 3,
# < 100 + support -> 4; capped at 2 without support (clinical.md 2.2 rows "P/F = 400", "= 300")
RESPIRATION_CASES = [
    (450.0, False, 0),
    (400.0, False, 0),
    (399.9, False, 1),
    (300.0, True, 1),
    (299.9, False, 2),
    (200.0, True, 2),
    (199.9, True, 3),
    (199.9, False, 2),
    (100.0, True, 3),
    (99.9, True, 4),
    (50.0, False, 2),
]


@pytest.mark.parametrize(("pf", "support", "expected"), RESPIRATION_CASES)
def test_sofa001_respiration_boundaries(pf: float, support: bool, expected: int) -> None:
    got = component(Organ.RESPIRATION, pao2_fio2_mmhg=pf, respiratory_support=support)
    assert got == expected


# SRC-VINCENT platelets < 150/100/50/20 (docs/conventions.md 7 edge list)
@pytest.mark.parametrize(
    ("platelets", "expected"),
    [(400, 0), (150, 0), (149, 1), (100, 1), (99, 2), (50, 2), (49, 3), (20, 3), (19, 4), (0, 4)],
)
def test_sofa002_coagulation_boundaries(platelets: float, expected: int) -> None:
    assert component(Organ.COAGULATION, platelets_10e3_per_ul=platelets) == expected


# SRC-MIMIC / SRC-RICU bilirubin >= 1.2/2.0/6.0/12.0 (exactly 12.0 -> 4, clinical.md 2.2)
@pytest.mark.parametrize(
    ("bilirubin", "expected"),
    [
        (0.3, 0),
        (1.19, 0),
        (1.2, 1),
        (1.99, 1),
        (2.0, 2),
        (5.99, 2),
        (6.0, 3),
        (11.99, 3),
        (12.0, 4),
        (30.0, 4),
    ],
)
def test_sofa003_liver_boundaries(bilirubin: float, expected: int) -> None:
    assert component(Organ.LIVER, bilirubin_mg_dl=bilirubin) == expected


# SRC-VINCENT cardiovascular with the > 0 guards of SRC-RICU (clinical.md 2.2: MIMIC scores a
# recorded 0 norepinephrine as 3; here a zero dose never scores)
CARDIOVASCULAR_CASES = [
    ({"map_mmhg": 70.0}, 0),
    ({"map_mmhg": 69.9}, 1),
    ({"map_mmhg": 80.0, "norepinephrine_mcg_kg_min": 0.0}, 0),
    ({"map_mmhg": 65.0, "norepinephrine_mcg_kg_min": 0.0, "epinephrine_mcg_kg_min": 0.0}, 1),
    ({"dopamine_mcg_kg_min": 0.0}, 0),
    ({"dopamine_mcg_kg_min": 0.01}, 2),
    ({"dopamine_mcg_kg_min": 5.0}, 2),
    ({"dopamine_mcg_kg_min": 5.01}, 3),
    ({"dopamine_mcg_kg_min": 15.0}, 3),
    ({"dopamine_mcg_kg_min": 15.01}, 4),
    ({"dobutamine_mcg_kg_min": 0.0}, 0),
    ({"dobutamine_mcg_kg_min": 20.0}, 2),
    ({"epinephrine_mcg_kg_min": 0.01}, 3),
    ({"epinephrine_mcg_kg_min": 0.1}, 3),
    ({"epinephrine_mcg_kg_min": 0.1001}, 4),
    ({"norepinephrine_mcg_kg_min": 0.1}, 3),
    ({"norepinephrine_mcg_kg_min": 0.1001}, 4),
    ({"norepinephrine_mcg_kg_min": 0.05, "dobutamine_mcg_kg_min": 5.0, "map_mmhg": 50.0}, 3),
]


@pytest.mark.parametrize(("values", "expected"), CARDIOVASCULAR_CASES)
def test_sofa004_cardiovascular_boundaries(values: dict[str, float], expected: int) -> None:
    assert component(Organ.CARDIOVASCULAR, **values) == expected


# SRC-VINCENT GCS 15 / 13-14 / 10-12 / 6-9 / < 6
@pytest.mark.parametrize(
    ("gcs", "expected"),
    [(15, 0), (14, 1), (13, 1), (12, 2), (10, 2), (9, 3), (6, 3), (5, 4), (3, 4)],
)
def test_sofa005_cns_boundaries(gcs: int, expected: int) -> None:
    assert component(Organ.CNS, gcs_total=gcs) == expected


# SRC-MIMIC / SRC-RICU creatinine >= 1.2/2.0/3.5/5.0; urine < 500 -> 3, < 200 -> 4 (500 -> 0)
RENAL_CASES = [
    ({"creatinine_mg_dl": 1.19}, 0),
    ({"creatinine_mg_dl": 1.2}, 1),
    ({"creatinine_mg_dl": 1.99}, 1),
    ({"creatinine_mg_dl": 2.0}, 2),
    ({"creatinine_mg_dl": 3.49}, 2),
    ({"creatinine_mg_dl": 3.5}, 3),
    ({"creatinine_mg_dl": 4.99}, 3),
    ({"creatinine_mg_dl": 5.0}, 4),
    ({"urine_output_ml_24h": 500.0}, 0),
    ({"urine_output_ml_24h": 499.0}, 3),
    ({"urine_output_ml_24h": 200.0}, 3),
    ({"urine_output_ml_24h": 199.0}, 4),
    ({"creatinine_mg_dl": 0.8, "urine_output_ml_24h": 400.0}, 3),
    ({"creatinine_mg_dl": 5.5, "urine_output_ml_24h": 400.0}, 4),
    ({"creatinine_mg_dl": 2.5, "urine_output_ml_24h": 2000.0}, 2),
]


@pytest.mark.parametrize(("values", "expected"), RENAL_CASES)
def test_sofa006_renal_boundaries(values: dict[str, float], expected: int) -> None:
    assert component(Organ.RENAL, **values) == expected


# --- missing data -----------------------------------------------------------------------------


def test_sofa007_all_missing_gives_na_components_and_zero_total() -> None:
    out = score_one()
    for organ in Organ:
        assert out[SOFA_COLUMNS[organ]] is pd.NA
    assert out[SOFA_TOTAL] == 0


def test_sofa008_missing_total_option() -> None:
    rules = SofaRules(missing_total="nan_if_any_missing")
    assert score_one(rules, platelets_10e3_per_ul=40.0)[SOFA_TOTAL] is pd.NA
    full = day(
        pao2_fio2_mmhg=250.0,
        platelets_10e3_per_ul=40.0,
        bilirubin_mg_dl=0.5,
        map_mmhg=80.0,
        gcs_total=15,
        creatinine_mg_dl=0.7,
    )
    assert score_sofa(pd.DataFrame([full]), rules=rules).iloc[0][SOFA_TOTAL] == 2 + 3


def test_sofa009_support_without_pf_is_missing_not_scored() -> None:
    out = score_one(respiratory_support=True)
    assert out[SOFA_COLUMNS[Organ.RESPIRATION]] is pd.NA


def test_sofa010_dtypes_index_and_passthrough() -> None:
    days = pd.DataFrame(
        [day(gcs_total=9, patient_id="SYN-S01-0001"), day(gcs_total=15, patient_id="x")],
        index=[10, 20],
    )
    out = score_sofa(days)
    assert list(out.index) == [10, 20]
    assert out["patient_id"].tolist() == ["SYN-S01-0001", "x"]
    for col in [*SOFA_COLUMNS.values(), SOFA_TOTAL]:
        assert out[col].dtype == "Int8"
    assert out[SOFA_COLUMNS[Organ.CNS]].tolist() == [3, 0]


def test_sofa011_missing_column_is_an_error() -> None:
    days = pd.DataFrame([day()]).drop(columns=["map_mmhg"])
    with pytest.raises(DataValidationError, match="map_mmhg"):
        score_sofa(days)


def test_sofa012_nullable_and_object_inputs() -> None:
    days = pd.DataFrame([day(), day()])
    days["gcs_total"] = pd.array([7, None], dtype="Int64")
    days["respiratory_support"] = pd.array([True, None], dtype=object)
    days["pao2_fio2_mmhg"] = [150.0, 150.0]
    out = score_sofa(days)
    assert out[SOFA_COLUMNS[Organ.CNS]].tolist()[0] == 3
    assert out[SOFA_COLUMNS[Organ.CNS]].isna().tolist() == [False, True]
    # missing support counts as no support: capped at 2
    assert out[SOFA_COLUMNS[Organ.RESPIRATION]].tolist() == [3, 2]


# --- worked examples --------------------------------------------------------------------------


def test_sofa013_worked_example_septic_shock_day() -> None:
    """Ventilated, P/F 180, platelets 85, bilirubin 2.4, norepinephrine 0.25, GCS 11 (sedation
    handled upstream), creatinine 2.1, urine 450 mL/24h: 3 + 2 + 2 + 4 + 2 + 3 = 16 (SRC-VINCENT).
    """
    out = score_one(
        pao2_fio2_mmhg=180.0,
        respiratory_support=True,
        platelets_10e3_per_ul=85.0,
        bilirubin_mg_dl=2.4,
        map_mmhg=62.0,
        norepinephrine_mcg_kg_min=0.25,
        gcs_total=11,
        creatinine_mg_dl=2.1,
        urine_output_ml_24h=450.0,
    )
    got = [out[SOFA_COLUMNS[o]] for o in Organ]
    assert got == [3, 2, 2, 4, 2, 3]
    assert out[SOFA_TOTAL] == 16


def test_sofa014_worked_example_healthy_day_and_maximum() -> None:
    healthy = day(
        pao2_fio2_mmhg=450.0,
        platelets_10e3_per_ul=250.0,
        bilirubin_mg_dl=0.6,
        map_mmhg=85.0,
        gcs_total=15,
        creatinine_mg_dl=0.8,
        urine_output_ml_24h=1800.0,
    )
    worst = day(
        pao2_fio2_mmhg=60.0,
        respiratory_support=True,
        platelets_10e3_per_ul=10.0,
        bilirubin_mg_dl=15.0,
        epinephrine_mcg_kg_min=0.3,
        gcs_total=3,
        creatinine_mg_dl=6.0,
        urine_output_ml_24h=50.0,
    )
    out = score_sofa(pd.DataFrame([healthy, worst]))
    assert out[SOFA_TOTAL].tolist() == [0, 24]


# --- printed SI bands (clinical.md 5.2) -----------------------------------------------------


@pytest.mark.parametrize(
    ("column", "umol_l", "organ", "printed", "converted"),
    [
        # creatinine 107-109 umol/L: 0 on the printed table, 1 after / 88.4
        ("creatinine", 108.0, Organ.RENAL, 0, 1),
        ("creatinine", 110.0, Organ.RENAL, 1, 1),
        ("creatinine", 173.0, Organ.RENAL, 2, 1),
        ("creatinine", 305.0, Organ.RENAL, 3, 2),
        ("creatinine", 441.0, Organ.RENAL, 4, 3),
        # bilirubin 33-34 umol/L: 2 on the printed table, 1 after / 17.1
        ("bilirubin", 33.5, Organ.LIVER, 2, 1),
        ("bilirubin", 19.0, Organ.LIVER, 0, 0),
        ("bilirubin", 204.5, Organ.LIVER, 4, 3),
    ],
)
def test_sofa015_printed_si_bands_flag(
    column: str, umol_l: float, organ: Organ, printed: int, converted: int
) -> None:
    factor = 88.4 if column == "creatinine" else 17.1
    values = {f"{column}_mg_dl": umol_l / factor, f"{column}_umol_l": umol_l}
    default = component(organ, **values)
    si = score_one(SofaRules(si_units_cutoffs="use_printed_si_bands"), **values)
    assert default == converted
    assert si[SOFA_COLUMNS[organ]] == printed


def test_sofa016_printed_si_bands_keep_urine_and_mg_dl_rows() -> None:
    rules = SofaRules(si_units_cutoffs="use_printed_si_bands")
    days = pd.DataFrame(
        [
            day(creatinine_mg_dl=108 / 88.4, creatinine_umol_l=108.0, urine_output_ml_24h=150.0),
            day(creatinine_mg_dl=1.3, creatinine_umol_l=np.nan),
        ]
    )
    assert score_sofa(days, rules=rules)[SOFA_COLUMNS[Organ.RENAL]].tolist() == [4, 1]


# --- properties (hypothesis) ------------------------------------------------------------------

finite = {
    "pao2_fio2_mmhg": (20.0, 700.0),
    "platelets_10e3_per_ul": (0.0, 600.0),
    "bilirubin_mg_dl": (0.0, 40.0),
    "map_mmhg": (20.0, 150.0),
    "dopamine_mcg_kg_min": (0.0, 30.0),
    "dobutamine_mcg_kg_min": (0.0, 30.0),
    "epinephrine_mcg_kg_min": (0.0, 1.0),
    "norepinephrine_mcg_kg_min": (0.0, 1.0),
    "gcs_total": (3.0, 15.0),
    "creatinine_mg_dl": (0.1, 12.0),
    "urine_output_ml_24h": (0.0, 4000.0),
}


def _value(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.just(float("nan")),
        st.just(0.0),
        st.floats(lo, hi),
        st.sampled_from(
            [
                lo,
                hi,
                0.1,
                5.0,
                15.0,
                1.2,
                2.0,
                3.5,
                5.0,
                6.0,
                12.0,
                20.0,
                50.0,
                70.0,
                100.0,
                150.0,
                200.0,
                300.0,
                400.0,
                500.0,
                13.0,
                10.0,
            ]
        ).filter(lambda v: lo <= v <= hi),
    )


day_strategy = st.fixed_dictionaries(
    {**{c: _value(*finite[c]) for c in NUMERIC_INPUTS}, "respiratory_support": st.booleans()}
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(day_strategy, min_size=1, max_size=20))
def test_sofa017_property_ranges_rowwise_agreement_and_no_mutation(rows: list[dict]) -> None:
    days = pd.DataFrame(rows)
    before = days.copy(deep=True)
    out = score_sofa(days)
    pd.testing.assert_frame_equal(days, before)
    for organ in Organ:
        col = out[SOFA_COLUMNS[organ]].dropna()
        assert ((col >= 0) & (col <= 4)).all()
    total = out[SOFA_TOTAL]
    assert total.notna().all()
    assert ((total >= 0) & (total <= 24)).all()
    comps = out[list(SOFA_COLUMNS.values())].astype("float64").fillna(0).sum(axis=1)
    assert (comps.astype(int) == total.astype(int)).all()
    # same answer as the plain-Python reference scorer
    ref = score_sofa_rowwise(days)
    pd.testing.assert_frame_equal(ref, out[list(ref.columns)])


# monotonicity: worsening one input never lowers its component (direction per organ)
WORSE = {
    "pao2_fio2_mmhg": (-1, Organ.RESPIRATION),
    "platelets_10e3_per_ul": (-1, Organ.COAGULATION),
    "bilirubin_mg_dl": (1, Organ.LIVER),
    "map_mmhg": (-1, Organ.CARDIOVASCULAR),
    "dopamine_mcg_kg_min": (1, Organ.CARDIOVASCULAR),
    "dobutamine_mcg_kg_min": (1, Organ.CARDIOVASCULAR),
    "epinephrine_mcg_kg_min": (1, Organ.CARDIOVASCULAR),
    "norepinephrine_mcg_kg_min": (1, Organ.CARDIOVASCULAR),
    "gcs_total": (-1, Organ.CNS),
    "creatinine_mg_dl": (1, Organ.RENAL),
    "urine_output_ml_24h": (-1, Organ.RENAL),
}


@settings(max_examples=150, deadline=None)
@given(day_strategy, st.sampled_from(sorted(WORSE)), st.floats(0.0, 500.0))
def test_sofa018_property_monotone_in_each_input(row: dict, column: str, step: float) -> None:
    direction, organ = WORSE[column]
    lo, hi = finite[column]
    base = row[column]
    if np.isnan(base):
        base = (lo + hi) / 2
    worse = float(np.clip(base + direction * step, lo, hi))
    a = score_sofa(pd.DataFrame([{**row, column: base}]))[SOFA_COLUMNS[organ]].iloc[0]
    b = score_sofa(pd.DataFrame([{**row, column: worse}]))[SOFA_COLUMNS[organ]].iloc[0]
    assert b >= a
    # adding respiratory support never lowers respiration
    s0 = score_sofa(pd.DataFrame([{**row, "respiratory_support": False}]))
    s1 = score_sofa(pd.DataFrame([{**row, "respiratory_support": True}]))
    r0, r1 = (s[SOFA_COLUMNS[Organ.RESPIRATION]].iloc[0] for s in (s0, s1))
    assert (r0 is pd.NA and r1 is pd.NA) or r1 >= r0


def test_sofa019_rescoring_a_scored_frame_does_not_touch_it() -> None:
    days = pd.DataFrame([day(gcs_total=8), day(gcs_total=14)])
    first = score_sofa(days)
    snapshot = first.copy(deep=True)
    first2 = first.assign(gcs_total=[15.0, 15.0])
    again = score_sofa(first2)
    pd.testing.assert_frame_equal(first, snapshot)
    assert again[SOFA_COLUMNS[Organ.CNS]].tolist() == [0, 0]


# --- Sepsis-3 (SRC-SEP3: acute rise of total SOFA >= 2) --------------------------------------


def test_sofa020_sepsis3_rise_from_day1_baseline() -> None:
    daily = pd.DataFrame(
        {
            "patient_id": ["A"] * 4 + ["B"] * 3 + ["C"] * 2,
            "study_day": [1, 2, 3, 4, 1, 2, 3, 1, 2],
            SOFA_TOTAL: pd.array([3, 4, 5, 9, 6, 7, 7, None, 2], dtype="Int8"),
        }
    )
    out = sepsis3_check(daily)
    assert out.loc["A", "sepsis3_study_day"] == 3  # 5 - 3 = 2 (>= 2)
    assert out.loc["A", "max_rise_points"] == 6
    assert not out.loc["B", "sepsis3"]  # rise of 1 only
    assert out.loc["B", "sepsis3_study_day"] is pd.NA
    assert out.loc["C", "baseline_sofa_total"] == 0  # missing day-1 total counts 0
    assert out.loc["C", "sepsis3_study_day"] == 2


def test_sofa021_sepsis3_zero_baseline_checks_day1() -> None:
    daily = pd.DataFrame(
        {"patient_id": ["A", "A"], "study_day": [1, 2], SOFA_TOTAL: pd.array([2, 2], "Int8")}
    )
    assert sepsis3_check(daily, baseline="zero").loc["A", "sepsis3_study_day"] == 1
    assert not sepsis3_check(daily).loc["A", "sepsis3"]
