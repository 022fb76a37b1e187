"""Tests for core.endpoints: the SAP SOFA response computed by hand, mortality, time to death.

Definition: clinical.md §1.5 (SAP pp. 66–67 via SRC-AUDIT): Δ = SOFA day 1 − mean(SOFA days
2..9), always 8 values, SOFA = 24 from the day of death inclusive, LOCF while alive,
responder if Δ > 1.4; Δ moves in 1/8 steps, so 1.375 (non-responder) and 1.5 (responder)
are the boundary cases to test. Day 15: §1.6.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.endpoints import mortality, sofa_response, time_to_death
from core.exceptions import DataValidationError
from core.stats import arm_summary


def _daily(values: dict[str, list[float | None]], start: int = 1) -> pd.DataFrame:
    """``values[pid][i]`` is the SOFA on study day start + i; None rows are omitted."""
    rows = [
        (pid, start + i, v)
        for pid, vals in values.items()
        for i, v in enumerate(vals)
        if v is not None
    ]
    return pd.DataFrame(rows, columns=["patient_id", "study_day", "sofa_total"])


def _patients(deaths: dict[str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": list(deaths),
            "death_study_day": [np.nan if d is None else d for d in deaths.values()],
        }
    )


HAND = {
    # decrease exactly 1.5: (10) − (9+9+9+9+8+8+8+8)/8 = 10 − 8.5
    "resp_1.5": [10, 9, 9, 9, 9, 8, 8, 8, 8],
    # decrease 1.375: 10 − 69/8 = 10 − 8.625
    "non_1.375": [10, 9, 9, 9, 9, 9, 8, 8, 8],
    # dies on day 5: days 2–4 measured (8, 7, 6), a measured value on day 5 is overridden
    "dies_d5": [9, 8, 7, 6, 5],
    # days 4–9 missing: LOCF of day 3 (6) → (8 + 6·7)/8 = 6.25
    "miss_4_9": [10, 8, 6],
    # day 2 missing: LOCF of day 1 (10) → (10 + 8·7)/8 = 8.25
    "miss_d2": [10, None, 8, 8, 8, 8, 8, 8, 8],
    # no day-1 SOFA
    "no_base": [None, 8, 8, 8, 8, 8, 8, 8, 8],
}
DEATHS = {
    "resp_1.5": None,
    "non_1.375": None,
    "dies_d5": 5,
    "miss_4_9": None,
    "miss_d2": None,
    "no_base": None,
}


@pytest.fixture
def primary() -> pd.DataFrame:
    return sofa_response(_daily(HAND), _patients(DEATHS)).set_index("patient_id")


def test_responder_at_exactly_1_5(primary):
    r = primary.loc["resp_1.5"]
    assert r.baseline_sofa == 10
    assert r.mean_followup_sofa == 8.5
    assert r.sofa_decrease == 1.5
    assert r.responder
    assert r.evaluable
    assert (r.followup_days_observed, r.n_imputed_days) == (8, 0)


def test_non_responder_at_1_375(primary):
    r = primary.loc["non_1.375"]
    assert r.sofa_decrease == 1.375
    assert not r.responder


def test_death_on_day_5_scores_24_from_that_day(primary):
    r = primary.loc["dies_d5"]
    assert r.mean_followup_sofa == (8 + 7 + 6 + 5 * 24) / 8
    assert r.sofa_decrease == 9 - 141 / 8
    assert not r.responder
    assert r.died_by_last_day
    assert (r.n_death_days, r.n_locf_days, r.followup_days_observed) == (5, 0, 3)


def test_days_4_to_9_missing_locf(primary):
    r = primary.loc["miss_4_9"]
    assert r.mean_followup_sofa == 6.25
    assert r.sofa_decrease == 3.75
    assert r.responder
    assert (r.n_locf_days, r.n_imputed_days, r.followup_days_observed) == (6, 6, 2)


def test_day_2_missing_carries_day_1(primary):
    r = primary.loc["miss_d2"]
    assert r.mean_followup_sofa == 8.25
    assert r.sofa_decrease == 1.75
    assert r.n_locf_days == 1


def test_no_baseline_is_not_evaluable(primary):
    r = primary.loc["no_base"]
    assert math.isnan(r.baseline_sofa)
    assert math.isnan(r.sofa_decrease)
    assert r.mean_followup_sofa == 8
    assert not r.responder
    assert not r.evaluable


def test_output_sorted_and_columns(primary):
    out = sofa_response(_daily(HAND), _patients(DEATHS))
    assert list(out["patient_id"]) == sorted(DEATHS)
    assert list(out.columns) == [
        "patient_id",
        "baseline_sofa",
        "mean_followup_sofa",
        "sofa_decrease",
        "responder",
        "evaluable",
        "followup_days_observed",
        "n_locf_days",
        "n_death_days",
        "n_imputed_days",
        "died_by_last_day",
    ]
    # every follow-up day is accounted for exactly once
    assert ((out["followup_days_observed"] + out["n_imputed_days"])[out["evaluable"]] == 8).all()


def test_day_15_endpoint_and_late_death():
    vals = {"a": [12] + [10] * 14, "b": [12, 11, 11, 11, 11, 11, 11, 11, 11, 11]}
    deaths = {"a": None, "b": 12}
    d9 = sofa_response(_daily(vals), _patients(deaths)).set_index("patient_id")
    d15 = sofa_response(_daily(vals), _patients(deaths), last_day=15).set_index("patient_id")
    assert d9.loc["a", "sofa_decrease"] == 2
    assert d15.loc["a", "sofa_decrease"] == pytest.approx(2)
    assert not d9.loc["b", "died_by_last_day"]
    assert d9.loc["b", "sofa_decrease"] == 1  # 12 − 11, death after day 9
    assert d15.loc["b", "died_by_last_day"]
    assert d15.loc["b", "n_death_days"] == 4  # days 12..15
    assert d15.loc["b", "n_locf_days"] == 1  # day 11
    assert d15.loc["b", "mean_followup_sofa"] == pytest.approx((11 * 10 + 24 * 4) / 14)


def test_death_on_day_1_and_custom_threshold():
    out = sofa_response(_daily({"a": [10]}), _patients({"a": 1})).iloc[0]
    assert out.mean_followup_sofa == 24
    assert out.n_death_days == 8
    # threshold is configurable (Δ = 1.5 is a non-responder at threshold 1.5)
    r = sofa_response(_daily({"x": HAND["resp_1.5"]}), _patients({"x": None}), threshold=1.5)
    assert not r["responder"].iloc[0]


def test_invalid_inputs_raise():
    daily = _daily({"a": [1, 2, 2]})
    with pytest.raises(DataValidationError):
        sofa_response(daily, _patients({"a": 0}))
    with pytest.raises(DataValidationError):
        sofa_response(daily, _patients({"a": 2.5}))
    with pytest.raises(DataValidationError):
        sofa_response(pd.concat([daily, daily]), _patients({"a": None}))
    with pytest.raises(DataValidationError):
        sofa_response(daily, pd.concat([_patients({"a": None})] * 2))


def _published_cohort():
    """A cohort shaped like eTable 8 and Table 2 (clinical.md §1.5, §1.8.3, SRC-AUDIT).

    Precision 131 = 100 measured + 21 dead by day 9 + 10 LOCF, 46 responders; placebo
    145 = 103 + 29 + 13, 26 responders. Responders have day-1 SOFA 10 and 8 (measured or
    carried) on days 2..9; non-responders 9 throughout; deaths on day 5.
    """
    vals, deaths, arms = {}, {}, {}
    for arm, measured, dead, locf, responders in (
        ("precision", 100, 21, 10, 46),
        ("placebo", 103, 29, 13, 26),
    ):
        for i in range(measured + dead + locf):
            pid = f"{arm}-{i:03d}"
            arms[pid] = arm
            if i < dead:
                vals[pid], deaths[pid] = [10, 9, 9, 9], 5
                continue
            deaths[pid] = None
            resp = (i - dead) < responders
            follow = [8] * 8 if resp else [9] * 8
            if i >= dead + measured:  # LOCF: days 6..9 missing
                follow = follow[:4]
            vals[pid] = [10 if resp else 9, *follow]
    return vals, deaths, arms


def test_published_primary_row_through_the_endpoint():
    vals, deaths, arms = _published_cohort()
    out = sofa_response(_daily(vals), _patients(deaths))
    out["arm"] = out["patient_id"].map(arms)
    by_arm = out.groupby("arm")
    assert by_arm["died_by_last_day"].sum().to_dict() == {"placebo": 29, "precision": 21}
    assert (out["n_locf_days"] > 0).groupby(out["arm"]).sum().to_dict() == {
        "placebo": 13,
        "precision": 10,
    }
    t = arm_summary(out, outcome_col="responder").iloc[0]
    assert (t.events_treated, t.n_treated, t.events_control, t.n_control) == (46, 131, 26, 145)
    # JAMA Table 2: 17.2 (6.8 to 27.2), OR 2.48 (1.42–4.32), P = .002
    assert round(100 * t.risk_difference, 1) == 17.2
    assert round(100 * t.risk_difference_ci_lower, 1) == 6.8
    assert round(100 * t.risk_difference_ci_upper, 1) == 27.2
    assert round(t.odds_ratio, 2) == 2.48
    assert (round(t.odds_ratio_ci_lower, 2), round(t.odds_ratio_ci_upper, 2)) == (1.42, 4.32)
    assert round(t.p_value, 3) == 0.002
    # LOCF share 23/276 = 8.3 % (clinical.md §1.5)
    assert round(100 * (out["n_locf_days"] > 0).mean(), 1) == 8.3


# --- mortality -------------------------------------------------------------------------------


def test_mortality_horizons():
    p = _patients({"c": None, "a": 28, "b": 29, "d": 90, "e": 91})
    m28 = mortality(p, horizon_days=28)
    assert list(m28["patient_id"]) == ["a", "b", "c", "d", "e"]
    assert m28["died"].tolist() == [True, False, False, False, False]
    assert mortality(p, horizon_days=90)["died"].tolist() == [True, True, False, True, False]


def test_published_mortality_rows():
    # clinical.md §1.8.3: 28-day 57/131 vs 72/145, 90-day 90/131 vs 98/145 (SRC-AUDIT)
    deaths, arms = {}, {}
    for arm, n, d28, d90 in (("precision", 131, 57, 90), ("placebo", 145, 72, 98)):
        for i in range(n):
            pid = f"{arm}{i}"
            arms[pid] = arm
            deaths[pid] = 10 if i < d28 else (60 if i < d90 else None)
    p = _patients(deaths)
    for horizon, printed in (
        (28, (-6.1, -17.6, 5.6, 0.78, 0.34)),
        (90, (1.1, -9.9, 11.9, 1.05, 0.90)),
    ):
        m = mortality(p, horizon_days=horizon)
        m["arm"] = m["patient_id"].map(arms)
        t = arm_summary(m, outcome_col="died").iloc[0]
        rd, lo, hi, orr, pv = printed
        assert round(100 * t.risk_difference, 1) == rd  # precision − placebo (§1.9 #2)
        assert round(100 * t.risk_difference_ci_lower, 1) == lo  # 90-day: paper prints −9.8
        assert round(100 * t.risk_difference_ci_upper, 1) == hi
        assert round(t.odds_ratio, 2) == orr
        assert abs(t.p_value - pv) <= 0.01  # 28-day P 0.3349, printed .34 (double rounding)


def test_time_to_death_censoring():
    p = _patients({"a": 5, "b": None, "c": 30, "d": None})
    p["follow_up_days"] = [5, 90, 90, 20]
    t = time_to_death(p, horizon_days=28, follow_up_days_col="follow_up_days")
    assert t["duration_days"].tolist() == [5, 28, 28, 20]
    assert t["event"].tolist() == [True, False, False, False]
    t90 = time_to_death(p, horizon_days=90)
    assert t90["duration_days"].tolist() == [5, 90, 30, 90]
    assert t90["event"].tolist() == [True, False, True, False]
