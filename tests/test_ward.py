"""Ward-board snapshot: change, alerts and endpoint status on hand-built patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.endpoints import sofa_response
from core.vocab import ORGANS, SOFA_COLUMNS
from core.ward import EndpointStatus, rolling_board, ward_snapshot


def day(pid, d, *, resp=0, coag=0, liver=0, cardio=0, cns=0, renal=0, ne=0.0, imputed=()):
    comps = dict(zip(ORGANS, (resp, coag, liver, cardio, cns, renal), strict=True))
    row = {"patient_id": pid, "study_day": d, "norepinephrine_mcg_kg_min": ne}
    for organ, v in comps.items():
        row[SOFA_COLUMNS[organ]] = v
        row[f"{organ.value}_imputed"] = organ.value in imputed
    row["sofa_total"] = sum(comps.values())
    return row


@pytest.fixture
def cohort():
    rows = []
    # A: improves steadily from 10 -> 4 over 9 days: endpoint met
    rows += [
        day("A", d, resp=3, cardio=3, renal=max(0, 4 - d), cns=0 if d > 3 else 1)
        for d in range(1, 10)
    ]
    # B: worsens on day 3: renal 1 -> 3 and a new norepinephrine infusion
    rows += [
        day("B", 1, resp=2, renal=1),
        day("B", 2, resp=2, renal=1),
        day("B", 3, resp=2, renal=3, cardio=3, ne=0.08),
    ]
    # C: day 1 with every component imputed (nothing measured): not evaluable
    rows += [day("C", 1, imputed=tuple(o.value for o in ORGANS)), day("C", 2, resp=1)]
    # D: dies on day 4 (daily rows end at the death day)
    rows += [day("D", d, resp=3, cardio=4, renal=2) for d in range(1, 5)]
    daily = pd.DataFrame(rows)
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C", "D"],
            "death_study_day": [np.nan, np.nan, np.nan, 4],
            "site_id": ["S1"] * 4,
        }
    )
    return daily, patients


def test_ward001_latest_day_change_and_alerts(cohort):
    daily, patients = cohort
    snap = ward_snapshot(daily, patients).set_index("patient_id")
    assert list(snap.index) == ["A", "B", "C", "D"]
    b = snap.loc["B"]
    assert (b["study_day"], b["sofa_total"], b["sofa_total_prev"], b["sofa_change_24h"]) == (
        3,
        8,
        3,
        5,
    )
    assert b["alerts"] == ("SOFA +5", "cardiovascular +3", "renal +2", "new vasopressor")
    assert b["data_flags"] == ()
    assert b["worst_rise_organ"] == "cardiovascular"
    assert b["endpoint_status"] == EndpointStatus.OFF_TRACK  # Δ = 3 - mean(3, 8) = -2.5
    assert b["endpoint_decrease"] == pytest.approx(-2.5)
    assert snap.loc["B", "site_id"] == "S1"


def test_ward002_endpoint_met_after_day_9(cohort):
    daily, patients = cohort
    a = ward_snapshot(daily, patients).set_index("patient_id").loc["A"]
    # baseline 3+3+3+1 = 10; days 2..9 totals 10? no: day2 = 3+3+2+1 = 9, day3 = 8, day4 = 6, 5..9 = 6
    expected_mean = (9 + 8 + 6 + 6 + 6 + 6 + 6 + 6) / 8
    assert a["endpoint_decrease"] == pytest.approx(10 - expected_mean)
    assert a["endpoint_status"] == EndpointStatus.MET
    assert a["alerts"] == ()


def test_ward003_not_evaluable_and_data_flags_apart_from_alerts(cohort):
    daily, patients = cohort
    c = ward_snapshot(daily, patients).set_index("patient_id").loc["C"]
    assert c["endpoint_status"] == EndpointStatus.NOT_EVALUABLE
    assert c["data_flags"] == ()  # day 2 was measured
    day1 = ward_snapshot(daily, patients, as_of_day=1).set_index("patient_id").loc["C"]
    assert day1["data_flags"] == tuple(f"{o.value} not measured" for o in ORGANS)
    assert day1["alerts"] == ()  # a missing lab is not a deterioration


def test_ward004_death_uses_24_for_the_endpoint(cohort):
    daily, patients = cohort
    d = ward_snapshot(daily, patients).set_index("patient_id").loc["D"]
    assert bool(d["died"]) is True
    # baseline 9; days 2-3 = 9 (alive), days 4..9 = 24 (death day inclusive): mean = (18 + 144) / 8
    assert d["endpoint_decrease"] == pytest.approx(9 - (9 + 9 + 6 * 24) / 8)
    assert d["endpoint_status"] == EndpointStatus.NOT_MET


def test_ward005_as_of_day_replays_the_board(cohort):
    daily, patients = cohort
    snap = ward_snapshot(daily, patients, as_of_day=2).set_index("patient_id")
    assert snap.loc["B", "study_day"] == 2
    assert snap.loc["B", "alerts"] == ()
    assert snap.loc["B", "endpoint_status"] == EndpointStatus.OFF_TRACK  # Δ = 3 - 3 = 0
    assert bool(snap.loc["D", "died"]) is False
    assert snap.loc["A", "endpoint_status"] == EndpointStatus.OFF_TRACK  # 10 - 9 = 1 <= 1.4
    one = ward_snapshot(daily, patients, as_of_day=1).set_index("patient_id")
    assert one.loc["A", "endpoint_status"] == EndpointStatus.AWAITING
    assert pd.isna(one.loc["A", "sofa_change_24h"])


def test_ward006_closed_window_makes_the_endpoint_final(cohort):
    """A patient discharged on day 3 whose day 9 has passed at the data cut-off: LOCF, final."""
    daily, patients = cohort
    b_only = patients[patients["patient_id"] == "B"].assign(endpoint_window_closed=True)
    snap = ward_snapshot(daily, b_only).set_index("patient_id").loc["B"]
    # days 2..9 = 3, 8, then 8 carried forward for days 4..9: mean = (3 + 7 * 8) / 8
    assert snap["endpoint_decrease"] == pytest.approx(3 - (3 + 7 * 8) / 8)
    assert snap["endpoint_status"] == EndpointStatus.NOT_MET
    open_window = ward_snapshot(daily, b_only.assign(endpoint_window_closed=False))
    assert open_window.loc[0, "endpoint_status"] == EndpointStatus.OFF_TRACK


def test_ward010_equal_rises_keep_organ_order_and_a_one_point_rise_is_no_alert():
    daily = pd.DataFrame(
        [
            day("E", 1, renal=1, liver=0, coag=1, cns=1),
            # liver +2, renal +2 (a tie), coagulation +3, CNS +1 (below the alert threshold)
            day("E", 2, renal=3, liver=2, coag=4, cns=2, imputed=("cns",)),
        ]
    )
    patients = pd.DataFrame({"patient_id": ["E"], "death_study_day": [np.nan]})
    e = ward_snapshot(daily, patients).set_index("patient_id").loc["E"]
    assert e["alerts"] == ("SOFA +8", "coagulation +3", "liver +2", "renal +2")
    assert e["data_flags"] == ("cns not measured",)
    assert e["worst_rise_organ"] == "coagulation"
    assert e["n_alerts"] == 4


def test_ward011_two_one_point_rises_are_an_acute_change():
    """Sepsis-3: a rise of the total by 2 or more is the alert, whichever organs make it."""
    daily = pd.DataFrame([day("F", 1, resp=1, renal=1), day("F", 2, resp=2, renal=2)])
    patients = pd.DataFrame({"patient_id": ["F"], "death_study_day": [np.nan]})
    f = ward_snapshot(daily, patients).set_index("patient_id").loc["F"]
    assert f["alerts"] == ("SOFA +2",)
    assert f["worst_rise_organ"] is None
    one = pd.DataFrame([day("G", 1, resp=1), day("G", 2, resp=2)])
    g = ward_snapshot(one, patients.assign(patient_id="G")).set_index("patient_id").loc["G"]
    assert g["alerts"] == ()


def test_ward012_death_day_is_reported_whatever_day_is_shown(cohort):
    """A patient charted until day 3 who died on day 41 shows day 3 and the death day 41;
    the board marks death only on the death day itself."""
    daily, patients = cohort
    late = patients.assign(death_study_day=[np.nan, 41, np.nan, 4])
    snap = ward_snapshot(daily, late).set_index("patient_id")
    assert (snap.loc["B", "study_day"], snap.loc["B", "death_study_day"]) == (3, 41)
    assert (snap.loc["D", "study_day"], snap.loc["D", "death_study_day"]) == (4, 4)
    assert pd.isna(snap.loc["A", "death_study_day"])


def test_ward013_running_endpoint_is_sofa_response_up_to_the_shown_day(cohort):
    """The "so far" status is core.endpoints.sofa_response with the window closing on the shown
    day (LOCF over a missing day included), the function the patient page uses."""
    daily, patients = cohort
    gap = daily[~((daily["patient_id"] == "A") & (daily["study_day"] == 3))]
    a = ward_snapshot(gap, patients, as_of_day=5).set_index("patient_id").loc["A"]
    direct = sofa_response(
        gap[gap["study_day"] <= 5], patients[patients["patient_id"] == "A"], last_day=5
    ).iloc[0]
    assert a["endpoint_decrease"] == pytest.approx(direct["sofa_decrease"])
    assert direct["n_locf_days"] == 1


def test_ward014_rolling_board_never_rises_from_an_unmeasured_previous_day():
    """Last 24 h measured, the 24 h before nothing measured (all imputed): no change, no rise."""
    window = pd.DataFrame(
        [
            day("H", 6, imputed=tuple(o.value for o in ORGANS)),
            day("H", 7, resp=3, cardio=3, renal=2),
            day("I", 6, resp=1),
            day("I", 7, resp=3, cardio=3, renal=2),
        ]
    )
    b = rolling_board(window, ["H", "I", "J"], lookback_days=7).set_index("patient_id")
    assert pd.isna(b.loc["H", "sofa_24h_change"])
    assert b.loc["H", "alerts"] == ()
    assert b.loc["H", "sofa_24h"] == 8
    assert b.loc["I", "sofa_24h_change"] == 7
    assert b.loc["I", "alerts"][0] == "SOFA +7"
    assert pd.isna(b.loc["J", "sofa_24h"])
    assert b.loc["J", "data_flags"] == ("no SOFA data in the last 24 h",)


def test_ward_escalating_vasopressor_at_the_boundary():
    """Escalation: a running drug's highest rate up by >= 50 % (0.10 -> 0.15 alerts, 0.149
    does not); a drug that was off the day before is "new", never "escalating"."""
    rows = [
        day("E", 1, cardio=3, ne=0.10),
        day("E", 2, cardio=3, ne=0.15),
        day("F", 1, cardio=3, ne=0.10),
        day("F", 2, cardio=3, ne=0.149),
        day("G", 1, cardio=1, ne=0.0),
        day("G", 2, cardio=3, ne=0.30),
    ]
    pts = pd.DataFrame({"patient_id": ["E", "F", "G"], "death_study_day": np.nan})
    snap = ward_snapshot(pd.DataFrame(rows), pts).set_index("patient_id")
    assert snap.loc["E", "alerts"] == ("vasopressor ↑ norepinephrine 0.10→0.15 µg/kg/min",)
    assert snap.loc["F", "alerts"] == ()
    assert snap.loc["G", "alerts"] == ("SOFA +2", "cardiovascular +2", "new vasopressor")


def test_ward_rising_lactate_at_a_clock_time():
    from core.ward import lactate_alerts

    at = pd.Timestamp("2026-01-10 12:00")
    h = pd.Timedelta(hours=1)
    obs = pd.DataFrame(
        {
            "patient_id": ["R", "R", "S", "S", "T", "U", "U", "R"],
            "time": [
                at - 30 * h,
                at - 2 * h,
                at - 30 * h,
                at - 2 * h,
                at - h,
                at - 30 * h,
                at - 3 * h,
                at + h,
            ],
            "variable": ["lactate"] * 8,
            "value": [1.8, 3.4, 2.5, 2.0, 4.0, 2.0, 2.0, 9.9],
        }
    )
    got = lactate_alerts(obs, at)
    # R rises above 2 (the value after `at` is the future: unseen); S falls; T has nothing
    # before (a first value is not "rising"); U is not above 2.0 (strictly greater)
    assert got.to_dict() == {"R": "lactate ↑ 1.8→3.4 mmol/L"}
    # one decimal on both sides, as the lab reports it (never "4.1→5")
    whole = pd.DataFrame(
        {"patient_id": ["V", "V"], "time": [at - 30 * h, at - h], "variable": "lactate"}
    ).assign(value=[4.1, 5.0])
    assert lactate_alerts(whole, at).to_dict() == {"V": "lactate ↑ 4.1→5.0 mmol/L"}
