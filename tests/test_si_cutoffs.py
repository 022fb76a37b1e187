"""SI values exactly on every SOFA cut-off score on the cut-off's band (clinical.md 2.8).

Each value goes through the real import (CSV text -> validation -> core.units.convert ->
stored canonical value -> derived daily SOFA), one patient per value so that the day's
worst value is the value under test. The bands are the half-open intervals
``[lower, next_lower)`` of clinical.md 2.8: bilirubin 1.2 mg/dL = 20.52 umol/L scores 1,
6.0 mg/dL = 102.6 umol/L scores 3, and a value one hundredth below scores one band lower.

PaO2 in kPa: no kPa value with 6 decimals or fewer converts (x 7.50062, rounded to 6 decimals
by :func:`core.units.convert`) to exactly 200, 150, 100 or 50 mmHg (the P/F cut-offs 400, 300,
200, 100 at FiO2 0.5); with 7 decimals it does (26.6644624 kPa -> 200.0 mmHg). A printed kPa
value near a cut-off is genuinely on one side of it: 26.66 kPa is 199.9665 mmHg, P/F 399.93,
which scores 1 (below 400), and that is correct, not a rounding artefact.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core import db
from core import repository as repo
from core.io import import_tables, read_files
from core.io.schema import DEFAULT_SOFA_RULES
from core.vocab import SOFA_COLUMNS, Organ

ANCHOR = pd.Timestamp("2024-05-01 08:00")

#: (variable, value as printed in SI, SI unit, organ, expected organ score)
CASES: tuple[tuple[str, str, str, Organ, int], ...] = (
    # bilirubin umol/L (/ 17.1): [1.2, 2.0) -> 1, [2.0, 6.0) -> 2, [6.0, 12.0) -> 3, >= 12 -> 4
    ("bilirubin", "20.51", "umol/L", Organ.LIVER, 0),
    ("bilirubin", "20.52", "umol/L", Organ.LIVER, 1),
    ("bilirubin", "34.19", "umol/L", Organ.LIVER, 1),
    ("bilirubin", "34.2", "umol/L", Organ.LIVER, 2),
    ("bilirubin", "102.59", "umol/L", Organ.LIVER, 2),
    ("bilirubin", "102.6", "umol/L", Organ.LIVER, 3),
    ("bilirubin", "205.19", "umol/L", Organ.LIVER, 3),
    ("bilirubin", "205.2", "umol/L", Organ.LIVER, 4),
    # creatinine umol/L (/ 88.4): [1.2, 2.0) -> 1, [2.0, 3.5) -> 2, [3.5, 5.0) -> 3, >= 5 -> 4
    ("creatinine", "106.07", "umol/L", Organ.RENAL, 0),
    ("creatinine", "106.08", "umol/L", Organ.RENAL, 1),
    ("creatinine", "176.79", "umol/L", Organ.RENAL, 1),
    ("creatinine", "176.8", "umol/L", Organ.RENAL, 2),
    ("creatinine", "309.39", "umol/L", Organ.RENAL, 2),
    ("creatinine", "309.4", "umol/L", Organ.RENAL, 3),
    ("creatinine", "441.99", "umol/L", Organ.RENAL, 3),
    ("creatinine", "442.0", "umol/L", Organ.RENAL, 4),
    # platelets 10^9/L (= 10^3/uL): [100, 150) -> 1, [50, 100) -> 2, [20, 50) -> 3, < 20 -> 4
    ("platelets", "150", "10^9/L", Organ.COAGULATION, 0),
    ("platelets", "149.99", "10^9/L", Organ.COAGULATION, 1),
    ("platelets", "100", "10^9/L", Organ.COAGULATION, 1),
    ("platelets", "50", "10^9/L", Organ.COAGULATION, 2),
    ("platelets", "20", "10^9/L", Organ.COAGULATION, 3),
    ("platelets", "19.99", "10^9/L", Organ.COAGULATION, 4),
    # PaO2 kPa (x 7.50062) with FiO2 50 % and ventilation: P/F [300, 400) -> 1, [200, 300) -> 2,
    # [100, 200) -> 3, < 100 -> 4 (3 and 4 need respiratory support)
    ("pao2", "26.6644624", "kPa", Organ.RESPIRATION, 0),  # 200 mmHg, P/F 400
    ("pao2", "26.66", "kPa", Organ.RESPIRATION, 1),  # 199.97 mmHg, P/F 399.93
    ("pao2", "19.9983468", "kPa", Organ.RESPIRATION, 1),  # 150 mmHg, P/F 300
    ("pao2", "13.3322312", "kPa", Organ.RESPIRATION, 2),  # 100 mmHg, P/F 200
    ("pao2", "6.6661156", "kPa", Organ.RESPIRATION, 3),  # 50 mmHg, P/F 100
    ("pao2", "6.66", "kPa", Organ.RESPIRATION, 4),  # 49.95 mmHg, P/F 99.9
)

#: PaO2 kPa -> the exact mmHg it must be stored as
PAO2_EXACT_MMHG = {"26.6644624": 200.0, "19.9983468": 150.0, "13.3322312": 100.0, "6.6661156": 50.0}


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """One import of every case (CSV files, as a site sends them); the stored observations
    and the day-1 SOFA per patient."""
    tmp = tmp_path_factory.mktemp("si")
    t = ANCHOR + pd.Timedelta(hours=1)
    patients, obs, episodes = [], [], []
    cases = [*CASES, ("lactate", "18.02", "mg/dL", None, None)]
    for k, (variable, value, unit, _organ, _score) in enumerate(cases):
        pid = f"SI-{k:02d}"
        patients.append(
            {"patient_id": pid, "site_id": "SI", "anchor_time": str(ANCHOR), "weight_kg": "70"}
        )
        obs.append(
            {"patient_id": pid, "time": str(t), "variable": variable, "value": value, "unit": unit}
        )
        if variable == "pao2":
            obs.append(
                {"patient_id": pid, "time": str(t), "variable": "fio2", "value": "50", "unit": "%"}
            )
            episodes.append(
                {
                    "patient_id": pid,
                    "kind": "invasive_ventilation",
                    "start": str(ANCHOR - pd.Timedelta(hours=1)),
                    "stop": str(ANCHOR + pd.Timedelta(hours=23)),
                }
            )
    files = [
        _write(tmp / "patients.csv", patients),
        _write(tmp / "observations.csv", obs),
        _write(tmp / "episodes.csv", episodes),
    ]
    engine = db.make_engine(tmp / "si.sqlite")
    try:
        result = import_tables(engine, read_files(files))
        assert result.status == "imported"
        daily = repo.load_daily_sofa(engine, rules_key=DEFAULT_SOFA_RULES.key())
        stored = repo.load_observations(engine)
    finally:
        engine.dispose()
    day1 = daily[daily["study_day"] == 1].set_index("patient_id")
    return {"day1": day1, "observations": stored}


@pytest.mark.parametrize(
    ("k", "variable", "value", "unit", "organ", "score"),
    [(k, *case) for k, case in enumerate(CASES)],
    ids=[f"{v}-{x}{u}" for v, x, u, _o, _s in CASES],
)
def test_si001_value_on_cut_off_scores_its_band(imported, k, variable, value, unit, organ, score):
    pid = f"SI-{k:02d}"
    day1 = imported["day1"]
    assert int(day1.at[pid, SOFA_COLUMNS[organ]]) == score
    # the other organs have no data on day 1 (scored 0), so the total is the organ's score
    assert int(day1.at[pid, "sofa_total"]) == score


def test_si002_si_values_are_stored_exactly_on_the_mg_dl_and_mmhg_cut_offs(imported):
    obs = imported["observations"].set_index(["patient_id", "variable"])
    expected_canonical = {
        ("bilirubin", "20.52"): 1.2,
        ("bilirubin", "34.2"): 2.0,
        ("bilirubin", "102.6"): 6.0,
        ("bilirubin", "205.2"): 12.0,
        ("creatinine", "106.08"): 1.2,
        ("creatinine", "176.8"): 2.0,
        ("creatinine", "309.4"): 3.5,
        ("creatinine", "442.0"): 5.0,
        **{("pao2", kpa): mmhg for kpa, mmhg in PAO2_EXACT_MMHG.items()},
    }
    seen = 0
    for k, (variable, value, unit, _organ, _score) in enumerate(CASES):
        row = obs.loc[(f"SI-{k:02d}", variable)]
        assert row["unit_as_received"] == unit
        assert row["value_as_received"] == float(value)
        if (variable, value) in expected_canonical:
            assert row["value"] == expected_canonical[(variable, value)]  # bit for bit
            seen += 1
    assert seen == len(expected_canonical)
    # lactate (not a SOFA input): 18.02 mg/dL is the Sepsis-3 cut-off 2 mmol/L exactly
    lactate = obs.loc[(f"SI-{len(CASES):02d}", "lactate")]
    assert (lactate["value"], lactate["unit"]) == (2.0, "mmol/L")
    # FiO2 50 % is stored as the fraction 0.5 exactly, so P/F is PaO2 / 0.5
    fio2 = obs.xs("fio2", level="variable")["value"]
    assert set(fio2) == {0.5}
