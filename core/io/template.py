"""A tiny, hand-checkable valid table set in the long formats (Data page template, tests)."""

from __future__ import annotations

import pandas as pd


def template_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid table set in the long formats (3 patients, 2 sites, one ICU stay each).

    Useful as a download template on the Data page and as a hand-checkable test fixture.
    Units are deliberately mixed (kPa, umol/L, %, mcg/min) to exercise conversion.

    The variables, units, drugs and episode kinds below are deliberately typed out as raw
    input (like a test fixture: what a site's file contains), not read from core.concepts /
    core.vocab; validation checks them against the concepts like any other file.
    """
    ts = pd.Timestamp
    patients = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"],
            "site_id": ["SYN-S01", "SYN-S01", "SYN-S02"],
            "anchor_time": [ts("2024-03-01 08:00"), ts("2024-03-02 12:00"), ts("2024-03-05 20:00")],
            "weight_kg": [80.0, 65.5, 92.0],
            "death_time": [pd.NaT, ts("2024-03-06 03:00"), pd.NaT],
            "age_years": [64.0, 71.0, 58.0],
            "sex": ["M", "F", "M"],
            "apache_ii": [22.0, 27.0, 18.0],
            "charlson": [3.0, 5.0, 2.0],
            "infection_type": ["pneumonia", "primary bacteraemia", "pneumonia"],
            "mechanical_ventilation": [True, True, False],
            "randomised_at": [
                ts("2024-03-01 06:30"),
                ts("2024-03-02 10:00"),
                ts("2024-03-05 18:15"),
            ],
        }
    )
    randomisation = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "arm": ["precision", "placebo", "precision"],
            "randomised_at": patients["randomised_at"],
        }
    )
    obs_rows = []
    for pid, anchor in zip(patients["patient_id"], patients["anchor_time"], strict=True):
        for day in range(3):
            t = anchor + pd.Timedelta(hours=2 + 24 * day)
            obs_rows += [
                (pid, t, "pao2", 9.5 + day, "kPa"),
                (pid, t, "fio2", 50.0 - 5 * day, "%"),
                (pid, t + pd.Timedelta(hours=1), "platelets", 140.0 - 20 * day, "10^9/L"),
                (pid, t + pd.Timedelta(hours=1), "bilirubin", 25.0 + 5 * day, "umol/L"),
                (pid, t + pd.Timedelta(hours=1), "creatinine", 1.1 + 0.3 * day, "mg/dL"),
                (pid, t + pd.Timedelta(hours=3), "map", 68.0 + day, "mmHg"),
                (pid, t + pd.Timedelta(hours=3), "gcs_total", 13.0 + day % 2, "points"),
                (pid, t + pd.Timedelta(hours=5), "urine_output", 400.0 + 100 * day, "mL"),
            ]
    observations = pd.DataFrame(
        obs_rows, columns=["patient_id", "time", "variable", "value", "unit"]
    )
    observations["source"] = "template"
    a = patients["anchor_time"]
    # ICU stays: admitted a few hours before the first dose; SYN-S01-0002 dies in the ICU
    # (discharge = death), SYN-S02-0003 is still in the ICU (stop empty)
    icu_stays = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "unit": ["SYN-S01 ICU", "SYN-S01 ICU", "SYN-S02 ICU"],
            "bed": ["3", "7", None],
            "start": [
                a[0] - pd.Timedelta(hours=8),
                a[1] - pd.Timedelta(hours=4),
                a[2] - pd.Timedelta(hours=3),
            ],
            "stop": [a[0] + pd.Timedelta(days=3), patients["death_time"][1], pd.NaT],
        }
    )
    infusions = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0001", "SYN-S01-0002"],
            "drug": ["norepinephrine", "norepinephrine", "dobutamine"],
            "start": [a[0] + pd.Timedelta(hours=1), a[0] + pd.Timedelta(hours=5), a[1]],
            "stop": [
                a[0] + pd.Timedelta(hours=5),
                a[0] + pd.Timedelta(hours=20),
                a[1] + pd.Timedelta(hours=6),
            ],
            "rate": [12.0, 0.05, 4.0],
            "unit": ["mcg/min", "mcg/kg/min", "mcg/kg/min"],
        }
    )
    episodes = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S01-0002"],
            "kind": ["invasive_ventilation", "invasive_ventilation", "sedation"],
            "start": [a[0] - pd.Timedelta(hours=6), a[1] - pd.Timedelta(hours=2), a[1]],
            "stop": [a[0] + pd.Timedelta(days=2), pd.NaT, a[1] + pd.Timedelta(hours=30)],
        }
    )
    biomarkers = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"],
            "time": [
                a[0] - pd.Timedelta(hours=3),
                a[0] + pd.Timedelta(days=2),
                a[1] - pd.Timedelta(hours=1),
                a[2] - pd.Timedelta(hours=2),
            ],
            "ferritin_ng_ml": [5200.0, 4300.0, 900.0, 1200.0],
            "hla_dr_ab_per_cell": [float("nan"), 9000.0, 3800.0, 4200.0],
        }
    )
    doses = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "time": a,
            "route": ["SC", "IV", "SC"],
            "label": "study drug",
        }
    )
    adverse_events = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002"],
            "onset_time": [a[0] + pd.Timedelta(days=2), a[1] + pd.Timedelta(days=1)],
            "soc": ["Blood and lymphatic system disorders", "Cardiac disorders"],
            "pt": ["Anaemia", "Atrial fibrillation"],
            "serious": [False, True],
            "severe": [False, True],
            "related": [True, False],
            "aesi": ["anemia", None],
        }
    )
    disposition = pd.DataFrame(
        {
            "screening_id": ["SCR-0001", "SCR-0002", "SCR-0003", "SCR-0004"],
            "site_id": ["SYN-S01", "SYN-S01", "SYN-S02", "SYN-S02"],
            "patient_id": ["SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003", None],
            "excluded_reason": [None, None, None, "not_eligible"],
            "phenotype_at_screening": ["MALS", "SIP", "SIP", "not_eligible"],
            "withdrawn_with_data_removal": [False, False, False, False],
        }
    )
    sites = pd.DataFrame(
        {"site_id": ["SYN-S01", "SYN-S02"], "name": ["Synthetic site 1", "Synthetic site 2"]}
    )
    return {
        "sites": sites,
        "patients": patients,
        "icu_stays": icu_stays,
        "randomisation": randomisation,
        "observations": observations,
        "infusions": infusions,
        "episodes": episodes,
        "biomarkers": biomarkers,
        "doses": doses,
        "adverse_events": adverse_events,
        "disposition": disposition,
    }
