"""Raw observations -> study days -> daily SOFA with provenance (core.derive).

Hand-built patients with answers worked out by hand from clinical.md 2.8 (SRC-VINCENT cut-offs,
SRC-MIMIC FiO2 window and GCS under sedation, SRC-RICU vaso60 and urine24, SOFA-2 footnote b
for the day-1 / LOCF policy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.derive import (
    DailySofa,
    assign_study_day,
    daily_urine,
    daily_worst_values,
    derive_daily_sofa,
    fill_trajectory,
    match_pao2_fio2,
    qualifying_infusions,
)
from core.exceptions import DataValidationError
from core.rules import SofaRules
from core.units import normalize_infusions, normalize_observations
from core.vocab import SOFA_COLUMNS, SOFA_INPUT_COLUMNS, SOFA_TOTAL, Organ

ANCHOR = pd.Timestamp("2024-01-01 08:00")
OBS_COLS = ["patient_id", "time", "variable", "value", "unit"]
INF_COLS = ["patient_id", "drug", "start", "stop", "rate", "unit"]
EP_COLS = ["patient_id", "kind", "start", "stop"]


def h(hours: float) -> pd.Timestamp:
    return ANCHOR + pd.Timedelta(hours=hours)


def patients(*ids: str, death: dict[str, pd.Timestamp] | None = None) -> pd.DataFrame:
    death = death or {}
    return pd.DataFrame(
        {
            "patient_id": list(ids),
            "anchor_time": [ANCHOR] * len(ids),
            "weight_kg": [80.0] * len(ids),
            "death_time": [death.get(i, pd.NaT) for i in ids],
        }
    )


def run(
    obs_rows: list[tuple],
    inf_rows: list[tuple] | None = None,
    ep_rows: list[tuple] | None = None,
    *,
    ids: tuple[str, ...] = ("P1",),
    rules: SofaRules = SofaRules(),
    death: dict[str, pd.Timestamp] | None = None,
) -> DailySofa:
    return derive_daily_sofa(
        pd.DataFrame(obs_rows, columns=OBS_COLS),
        pd.DataFrame(inf_rows or [], columns=INF_COLS),
        pd.DataFrame(ep_rows or [], columns=EP_COLS),
        patients(*ids, death=death),
        rules=rules,
    )


def cell(result: DailySofa, organ: Organ, study_day: int = 1, pid: str = "P1") -> object:
    d = result.daily
    row = d[(d["patient_id"] == pid) & (d["study_day"] == study_day)]
    assert len(row) == 1
    return row[SOFA_COLUMNS[organ]].iloc[0]


def prov(result: DailySofa, organ: Organ, study_day: int = 1, pid: str = "P1") -> pd.Series:
    p = result.provenance
    row = p[(p["patient_id"] == pid) & (p["study_day"] == study_day) & (p["organ"] == organ)]
    assert len(row) == 1
    return row.iloc[0]


# --- building blocks --------------------------------------------------------------------------


def test_derive001_assign_study_day_half_open_24h() -> None:
    times = pd.to_datetime([h(-0.01), h(0), h(23.99), h(24), h(47.99), h(48)])
    days = assign_study_day(times, np.repeat(np.datetime64(ANCHOR), 6))
    assert days.tolist() == [0, 1, 1, 2, 2, 3]
    cal = assign_study_day(
        pd.to_datetime([h(15.9), h(16)]),
        np.repeat(np.datetime64(ANCHOR), 2),
        SofaRules(study_day="calendar_date"),
    )
    assert cal.tolist() == [1, 2]  # 08:00 + 16 h = next midnight


def test_derive002_daily_worst_values_min_max_and_position() -> None:
    key = np.array([5, 3, 5, 3, 5])
    val = np.array([2.0, 7.0, 1.0, 7.0, 1.0])
    k, w, pos = daily_worst_values(key, val, how="min")
    assert k.tolist() == [3, 5]
    assert w.tolist() == [7.0, 1.0]
    assert pos.tolist() == [1, 2]  # first row reaching the worst value
    _, w2, pos2 = daily_worst_values(key, val, how="max")
    assert w2.tolist() == [7.0, 2.0]
    assert pos2.tolist() == [1, 0]


def test_derive003_match_pao2_fio2_backward_within_window() -> None:
    t = lambda *x: np.array([np.datetime64(h(v)) for v in x])
    j = match_pao2_fio2(
        np.array([0, 0, 0, 1]),
        t(5.0, 10.0, 2.0, 5.0),
        np.array([0, 0, 1]),
        t(1.0, 3.0, 5.5),
        window_hours=4.0,
    )
    # 5 h -> FiO2 at 3 h (latest before); 10 h -> none within 4 h; 2 h -> FiO2 at 1 h;
    # patient 1 at 5 h -> its only FiO2 is later -> none
    assert j.tolist() == [1, -1, 0, -1]


def test_derive004_qualifying_infusions_merge_gap_and_60_min() -> None:
    ns = lambda m: np.array(m, dtype=np.int64) * 60 * 10**9
    pcode = np.array([0, 0, 0, 1, 1])
    drug = np.array([0, 0, 1, 0, 0])
    start = ns([0, 33, 0, 0, 100])
    stop = ns([30, 68, 59, 59, 161])
    q, minutes = qualifying_infusions(pcode, drug, start, stop)
    # 0-30 and 33-68 (3-min gap < 5) merge into 68 min; other drug 59 min; patient 1: 59, 61
    assert q.tolist() == [True, True, False, False, True]
    assert minutes.tolist() == [68, 68, 59, 59, 61]
    q2, _ = qualifying_infusions(
        pcode, drug, start, stop, rules=SofaRules(require_vasopressor_60min=False)
    )
    assert q2.all()


def test_derive005_daily_urine_definition() -> None:
    t = pd.to_datetime([h(x) for x in (6, 12, 18, 26, 28)]).asi8  # int64 ns
    day_start = pd.to_datetime([h(x) for x in (0, 0, 0, 24, 24)]).asi8
    keys, per24, total, hours, _ = daily_urine(
        np.array([1, 1, 1, 2, 2]),
        np.array([100.0, 100, 100, 50, 50]),
        t,
        day_start,
        min_observed_hours=12.0,
    )
    assert keys.tolist() == [1, 2]
    assert total.tolist() == [300.0, 100.0]
    assert hours.tolist() == [18.0, 4.0]
    assert per24[0] == pytest.approx(400.0)
    assert np.isnan(per24[1])  # 4 h observed: missing, never 0


# --- the raw-to-daily path on hand-built patients -------------------------------------------


def test_derive010_unit_conversion_and_provenance() -> None:
    r = run([("P1", h(1), "creatinine", 327.08, "umol/L"), ("P1", h(2), "bilirubin", 35, "umol/L")])
    assert cell(r, Organ.RENAL) == 3  # 327.08 / 88.4 = 3.70 mg/dL >= 3.5
    assert cell(r, Organ.LIVER) == 2  # 35 / 17.1 = 2.05 mg/dL >= 2.0
    assert r.daily["creatinine_mg_dl"].iloc[0] == pytest.approx(3.7)
    p = prov(r, Organ.RENAL)
    assert (p["variable"], p["value"], p["unit"]) == ("creatinine", 327.08, "umol/L")
    assert p["time"] == h(1)
    assert p["rule"] == "creatinine 327.08 umol/L = 3.7 mg/dL >= 3.5 -> 3"
    assert not p["imputed"]


def test_derive011_fio2_inside_and_outside_window() -> None:
    rows = [
        # P1: FiO2 40 % charted 3 h before the PaO2 (inside the 4-h window), ventilated
        ("P1", h(2), "fio2", 40, "%"),
        ("P1", h(5), "pao2", 8.0, "kPa"),
        # P2: the only FiO2 is 5 h before the PaO2: outside the window -> no P/F
        ("P2", h(2), "fio2", 0.5, "fraction"),
        ("P2", h(7), "pao2", 70, "mmHg"),
        ("P2", h(7), "platelets", 200, "G/L"),
    ]
    eps = [("P1", "invasive_ventilation", h(0), h(30))]
    r = run(rows, ep_rows=eps, ids=("P1", "P2"))
    assert r.daily["pao2_fio2_mmhg"].iloc[0] == pytest.approx(8.0 * 7.50062 / 0.40)  # 150.0
    assert cell(r, Organ.RESPIRATION) == 3  # < 200 with support
    assert "FiO2 40 %" in prov(r, Organ.RESPIRATION)["rule"]
    assert np.isnan(r.daily.loc[r.daily["patient_id"] == "P2", "pao2_fio2_mmhg"].iloc[0])
    assert cell(r, Organ.RESPIRATION, pid="P2") == 0
    assert prov(r, Organ.RESPIRATION, pid="P2")["imputation"] == "day1_zero"
    # a wider window finds it: 70 / 0.5 = 140 without support -> capped at 2
    wide = run(rows, ep_rows=eps, ids=("P1", "P2"), rules=SofaRules(fio2_match_window_hours=6))
    assert cell(wide, Organ.RESPIRATION, pid="P2") == 2


def test_derive012_support_definition_flag() -> None:
    rows = [("P1", h(1), "fio2", 0.6, "fraction"), ("P1", h(2), "pao2", 90, "mmHg")]  # P/F 150
    eps = [("P1", "cpap", h(0), h(6))]
    assert cell(run(rows, ep_rows=eps), Organ.RESPIRATION) == 3
    only_invasive = SofaRules(respiratory_support="invasive_only")
    assert cell(run(rows, ep_rows=eps, rules=only_invasive), Organ.RESPIRATION) == 2
    # support must be running at the time of the gas
    late = [("P1", "invasive_ventilation", h(3), h(6))]
    assert cell(run(rows, ep_rows=late), Organ.RESPIRATION) == 2


def test_derive013_infusion_59_vs_61_minutes() -> None:
    rows = [("P1", h(1), "map", 75, "mmHg"), ("P2", h(1), "map", 75, "mmHg")]
    inf = [
        ("P1", "norepinephrine", h(2), h(2) + pd.Timedelta(minutes=59), 0.3, "mcg/kg/min"),
        ("P2", "norepinephrine", h(2), h(2) + pd.Timedelta(minutes=61), 0.3, "mcg/kg/min"),
    ]
    r = run(rows, inf, ids=("P1", "P2"))
    assert cell(r, Organ.CARDIOVASCULAR) == 0  # 59 min: does not count, MAP 75
    assert np.isnan(r.daily["norepinephrine_mcg_kg_min"].iloc[0])
    assert cell(r, Organ.CARDIOVASCULAR, pid="P2") == 4  # 0.3 > 0.1 for >= 60 min
    p = prov(r, Organ.CARDIOVASCULAR, pid="P2")
    assert p["variable"] == "norepinephrine"
    assert p["rule"] == (
        "norepinephrine 0.3 mcg/kg/min (received 0.3 mcg/kg/min) for 61 min (>= 60 min rule) -> 4"
    )
    no_rule = run(rows, inf, ids=("P1", "P2"), rules=SofaRules(require_vasopressor_60min=False))
    assert cell(no_rule, Organ.CARDIOVASCULAR) == 4


def test_derive014_infusion_mcg_min_and_overnight_counts_on_both_days() -> None:
    inf = [("P1", "epinephrine", h(23), h(25), 4.0, "mcg/min")]  # 4 / 80 kg = 0.05
    r = run([("P1", h(30), "map", 80, "mmHg")], inf)
    assert r.daily["epinephrine_mcg_kg_min"].tolist() == pytest.approx([0.05, 0.05])
    assert [cell(r, Organ.CARDIOVASCULAR, d) for d in (1, 2)] == [3, 3]
    assert "received 4 mcg/min" in prov(r, Organ.CARDIOVASCULAR, 2)["rule"]


def test_derive015_urine_18h_scaled_vs_6h_missing() -> None:
    rows = [("P1", h(x), "urine_output", 50, "mL") for x in (3, 6, 9, 12, 15, 18)]  # 300 mL
    rows += [("P2", h(x), "urine_output", 50, "mL") for x in (2, 4, 6)]  # 6 h only
    rows += [("P2", h(7), "creatinine", 0.9, "mg/dL")]
    r = run(rows, ids=("P1", "P2"))
    assert r.daily["urine_output_ml_24h"].iloc[0] == pytest.approx(400.0)
    assert cell(r, Organ.RENAL) == 3  # 400 mL/24 h < 500
    assert prov(r, Organ.RENAL)["rule"] == "urine 300 mL over 18 h -> 400 mL/24h < 500 -> 3"
    p2 = r.daily[r.daily["patient_id"] == "P2"]
    assert np.isnan(p2["urine_output_ml_24h"].iloc[0])  # missing, NOT zero (would score 4)
    assert cell(r, Organ.RENAL, pid="P2") == 0  # creatinine 0.9


def test_derive016_sedated_day_uses_pre_sedation_gcs() -> None:
    rows = [
        ("P1", h(2), "gcs_total", 14, "points"),
        ("P1", h(30), "gcs_total", 3, "points"),  # day 2, during sedation
    ]
    eps = [("P1", "sedation", h(20), h(40))]
    r = run(rows, ep_rows=eps)
    assert r.daily["gcs_total"].tolist() == [14.0, 14.0]
    assert cell(r, Organ.CNS, 2) == 1
    p = prov(r, Organ.CNS, 2)
    assert p["rule"].startswith("sedated: pre-sedation GCS 14")
    assert p["time"] == h(2)
    raw = run(rows, ep_rows=eps, rules=SofaRules(gcs_sedated="raw"))
    assert cell(raw, Organ.CNS, 2) == 4
    # no GCS before sedation -> 15
    r15 = run([("P1", h(30), "gcs_total", 3, "points")], ep_rows=eps)
    assert r15.daily["gcs_total"].iloc[-1] == 15.0
    assert cell(r15, Organ.CNS, 2) == 0
    assert "no GCS before sedation -> 15" in prov(r15, Organ.CNS, 2)["rule"]


def test_derive017_missing_day_locf_and_day1_zero_flagged() -> None:
    rows = [
        ("P1", h(2), "platelets", 45, "G/L"),  # day 1: coagulation 3
        ("P1", h(50), "platelets", 120, "G/L"),  # day 3: coagulation 1
        ("P1", h(51), "gcs_total", 9, "points"),  # day 3: CNS 3 (missing days 1-2)
    ]
    r = run(rows)
    d = r.daily
    assert d["study_day"].tolist() == [1, 2, 3]
    assert [cell(r, Organ.COAGULATION, k) for k in (1, 2, 3)] == [3, 3, 1]
    assert d["coagulation_imputation"].tolist() == [None, "locf", None]
    assert d["coagulation_imputed"].tolist() == [False, True, False]
    assert [cell(r, Organ.CNS, k) for k in (1, 2, 3)] == [0, 0, 3]
    assert d["cns_imputation"].tolist() == ["day1_zero", "locf", None]
    assert d["n_components_observed"].tolist() == [1, 0, 2]
    assert d[SOFA_TOTAL].tolist() == [3, 3, 4]
    p = prov(r, Organ.COAGULATION, 2)
    assert p["imputed"]
    assert p["rule"] == "missing -> carried forward from study day 1 (locf)"
    assert pd.isna(p["value"])


def test_derive018_before_anchor_and_after_max_day_ignored() -> None:
    rows = [
        ("P1", h(-1), "platelets", 10, "G/L"),  # before the first dose: ignored
        ("P1", h(1), "platelets", 200, "G/L"),
        ("P1", h(24 * 28 + 1), "platelets", 10, "G/L"),  # day 29: ignored
    ]
    r = run(rows)
    assert r.daily["study_day"].tolist() == [1]
    assert cell(r, Organ.COAGULATION) == 0


def test_derive019_rows_stop_at_death_day() -> None:
    rows = [("P1", h(x), "map", 60, "mmHg") for x in (1, 25, 49, 73)]
    r = run(rows, death={"P1": h(50)})
    assert r.daily["study_day"].tolist() == [1, 2, 3]


def test_derive020_provenance_shape_and_columns() -> None:
    r = run([("P1", h(1), "map", 60, "mmHg"), ("P1", h(30), "map", 80, "mmHg")])
    p = r.provenance
    assert list(p.columns) == [
        "patient_id",
        "study_day",
        "organ",
        "score",
        "variable",
        "value",
        "unit",
        "time",
        "source",
        "rule",
        "imputed",
        "imputation",
    ]
    assert len(p) == 6 * len(r.daily)
    assert p["organ"].tolist()[:6] == [o.value for o in Organ]
    assert prov(r, Organ.CARDIOVASCULAR, 1)["rule"] == "MAP 60 mmHg < 70 -> 1"
    merged = r.daily.merge(p, on=["patient_id", "study_day"])
    for organ in Organ:
        sub = merged[merged["organ"] == organ.value]
        assert (sub["score"].astype(int) == sub[SOFA_COLUMNS[organ]].astype(int)).all()


def test_derive021_daily_contract_columns() -> None:
    r = run([("P1", h(1), "map", 60, "mmHg")])
    cols = set(r.daily.columns)
    assert set(SOFA_INPUT_COLUMNS) <= cols
    assert {SOFA_TOTAL, "n_components_observed", "sofa2_total", "rrt"} <= cols
    for organ in Organ:
        assert {SOFA_COLUMNS[organ], f"{organ.value}_imputed", f"{organ.value}_imputation"} <= cols


def test_derive022_bad_data_errors_name_patient_variable_time_value() -> None:
    with pytest.raises(DataValidationError) as err:
        run(
            [
                ("P1", h(1), "creatinine", 1.1, "mmol/L"),
                ("P1", h(2), "fio2", 8, "%"),
                ("P1", h(3), "map", 60, "mmHg"),
            ]
        )
    problems = err.value.problems
    assert [(p.patient_id, p.column, p.value, p.time) for p in problems] == [
        ("P1", "creatinine", 1.1, str(h(1))),
        ("P1", "fio2", 8, str(h(2))),
    ]
    with pytest.raises(DataValidationError, match="patient_id present in patients"):
        run([("P9", h(1), "map", 60, "mmHg")])


def test_derive023_normalised_input_is_accepted_as_is() -> None:
    rows = pd.DataFrame([("P1", h(1), "creatinine", 327.08, "umol/L")], columns=OBS_COLS)
    inf = pd.DataFrame([("P1", "dopamine", h(1), h(3), 400.0, "mcg/min")], columns=INF_COLS)
    pts = patients("P1")
    r = derive_daily_sofa(
        normalize_observations(rows),
        normalize_infusions(inf, pts),
        pd.DataFrame(columns=EP_COLS),
        pts,
    )
    assert cell(r, Organ.RENAL) == 3
    assert r.daily["dopamine_mcg_kg_min"].iloc[0] == pytest.approx(5.0)
    assert cell(r, Organ.CARDIOVASCULAR) == 2  # dopamine 5.0 is not > 5


def test_derive024_printed_si_bands_through_the_path() -> None:
    rows = [("P1", h(1), "creatinine", 108, "umol/L")]
    assert cell(run(rows), Organ.RENAL) == 1  # 1.22 mg/dL
    si = run(rows, rules=SofaRules(si_units_cutoffs="use_printed_si_bands"))
    assert cell(si, Organ.RENAL) == 0  # printed band: 110-170 -> 1
    assert si.daily["creatinine_umol_l"].iloc[0] == 108.0


def test_derive025_rrt_and_sofa2_total() -> None:
    rows = [("P1", h(1), "creatinine", 1.0, "mg/dL")]
    r = run(rows, ep_rows=[("P1", "rrt", h(2), h(10))])
    assert r.daily["rrt"].tolist() == [True]
    assert r.daily["sofa2_total"].iloc[0] == 4  # kidney 4 on RRT (SRC-SOFA2)
    assert r.daily[SOFA_TOTAL].iloc[0] == 0  # classic SOFA ignores RRT


# --- fill_trajectory options ---------------------------------------------------------------


def scored_frame() -> pd.DataFrame:
    f = pd.DataFrame({"patient_id": ["A", "A", "A", "B"], "study_day": [1, 2, 3, 1]})
    for organ in Organ:
        f[SOFA_COLUMNS[organ]] = pd.array([None, 2, None, None], dtype="Int8")
    return f


@pytest.mark.parametrize(
    ("policy", "values", "kinds"),
    [
        ("zero_day1_then_locf", [0, 2, 2, 0], ["day1_zero", None, "locf", "day1_zero"]),
        ("zero", [0, 2, 0, 0], ["zero", None, "zero", "zero"]),
        ("nan", [None, 2, None, None], [None, None, None, None]),
    ],
)
def test_derive030_fill_trajectory_policies(
    policy: str, values: list[int | None], kinds: list[str | None]
) -> None:
    f = scored_frame()
    before = f.copy(deep=True)
    out = fill_trajectory(f, rules=SofaRules(missing_component=policy))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(f, before)
    got = out[SOFA_COLUMNS[Organ.RENAL]].astype("Float64").tolist()
    assert [None if pd.isna(v) else int(v) for v in got] == values
    assert out["renal_imputation"].tolist() == kinds
    assert out["renal_imputed"].tolist() == [k is not None for k in kinds]
    expected_total = [6 * v if v is not None else 0 for v in values]
    assert out[SOFA_TOTAL].astype(int).tolist() == expected_total
    assert out["n_components_observed"].tolist() == [0, 6, 0, 0]


def test_derive_scores_only_equal_the_scores_with_provenance() -> None:
    """``provenance=False`` (the ward's rolling board, the comparison with clifpy) computes the
    same daily scores and returns an empty provenance table with its columns."""
    from core.io import synthetic_tables

    t = synthetic_tables(n_randomised=12)
    full = derive_daily_sofa(t["observations"], t["infusions"], t["episodes"], t["patients"])
    bare = derive_daily_sofa(
        t["observations"], t["infusions"], t["episodes"], t["patients"], provenance=False
    )
    assert len(full.daily) > 100
    assert len(full.provenance) > 0
    pd.testing.assert_frame_equal(bare.daily, full.daily)
    assert bare.provenance.empty
    assert list(bare.provenance.columns) == list(full.provenance.columns)
