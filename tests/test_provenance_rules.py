"""Provenance rule texts follow the scorer's cut-offs (core.sofa) and the SofaRules settings.

The "why this score" texts must never re-type a number: a changed cut-off in core.sofa or a
changed SofaRules setting must show up in the text (clinical.md 2.8; SRC-VINCENT cut-offs,
SRC-RICU vaso60 / urine24, SRC-MIMIC bg.sql FiO2 window). ``drug_points`` must agree with
``score_cardiovascular`` exactly at, just below and just above every cut-off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.sofa
from core.derive import (
    derive_daily_sofa,
    organ_rule_texts,
    vasopressor_counts,
    vasopressor_duration_text,
)
from core.rules import SofaRules
from core.sofa import SCORED_DRUGS, drug_points, drug_tiers, score_cardiovascular
from core.vocab import SOFA_COLUMNS, Organ

ANCHOR = pd.Timestamp("2024-01-01 08:00")


def h(hours: float) -> pd.Timestamp:
    return ANCHOR + pd.Timedelta(hours=hours)


def run(obs: list[tuple], inf: list[tuple] | None = None, rules: SofaRules = SofaRules()):
    return derive_daily_sofa(
        pd.DataFrame(obs, columns=["patient_id", "time", "variable", "value", "unit"]),
        pd.DataFrame(inf or [], columns=["patient_id", "drug", "start", "stop", "rate", "unit"]),
        pd.DataFrame([], columns=["patient_id", "kind", "start", "stop"]),
        pd.DataFrame({"patient_id": ["P1"], "anchor_time": [ANCHOR], "weight_kg": [80.0]}),
        rules=rules,
    )


def rule_of(result, organ: Organ, study_day: int = 1) -> str:
    p = result.provenance
    row = p[(p["study_day"] == study_day) & (p["organ"] == organ)]
    assert len(row) == 1
    return row["rule"].iloc[0]


def score_of(result, organ: Organ, study_day: int = 1) -> int:
    d = result.daily
    return int(d.loc[d["study_day"] == study_day, SOFA_COLUMNS[organ]].iloc[0])


def infusion(drug: str, rate: float, minutes: float) -> tuple:
    return ("P1", drug, h(2), h(2) + pd.Timedelta(minutes=minutes), rate, "mcg/kg/min")


MAP_75 = [("P1", h(1), "map", 75, "mmHg")]


# --- drug_points ------------------------------------------------------------------------------

# SRC-VINCENT / clinical.md 2.8: dopamine > 0 -> 2, > 5 -> 3, > 15 -> 4; dobutamine > 0 -> 2;
# epinephrine / norepinephrine > 0 -> 3, > 0.1 -> 4; a 0 or NaN rate never scores
DRUG_CASES = [
    ("dopamine", 0.0, 0),
    ("dopamine", np.nan, 0),
    ("dopamine", 0.01, 2),
    ("dopamine", 5.0, 2),
    ("dopamine", 5.01, 3),
    ("dopamine", 15.0, 3),
    ("dopamine", 15.01, 4),
    ("dobutamine", 0.0, 0),
    ("dobutamine", np.nan, 0),
    ("dobutamine", 0.01, 2),
    ("dobutamine", 40.0, 2),
    ("epinephrine", 0.0, 0),
    ("epinephrine", 0.001, 3),
    ("epinephrine", 0.1, 3),
    ("epinephrine", 0.11, 4),
    ("norepinephrine", np.nan, 0),
    ("norepinephrine", 0.1, 3),
    ("norepinephrine", 0.1001, 4),
]


@pytest.mark.parametrize(("drug", "rate", "expected"), DRUG_CASES)
def test_rules001_drug_points_table(drug: str, rate: float, expected: int) -> None:
    assert drug_points(drug, rate) == expected
    assert drug_points(drug, np.array([rate])).dtype == np.int8


def _boundary_rates(drug: str) -> np.ndarray:
    """Every cut-off of ``drug``: exactly at, one ulp below and one ulp above, plus 0 and NaN."""
    cuts = np.array([x for x, _ in drug_tiers(drug)])
    near = np.concatenate(
        [cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf), cuts * 0.999, cuts + 1e-6]
    )
    return np.concatenate([near[near >= 0], [0.0, np.nan, 1000.0]])


@pytest.mark.parametrize("drug", SCORED_DRUGS)
def test_rules002_drug_points_agrees_with_score_cardiovascular(drug: str) -> None:
    rates = _boundary_rates(drug)
    nan = np.full(rates.size, np.nan)
    args = {d: (rates if d == drug else nan) for d in SCORED_DRUGS}
    cv = score_cardiovascular(
        nan, args["dopamine"], args["dobutamine"], args["epinephrine"], args["norepinephrine"]
    )
    np.testing.assert_array_equal(drug_points(drug, rates), cv)


def test_rules003_drug_points_rejects_unscored_drug() -> None:
    with pytest.raises(ValueError, match="vasopressin"):
        drug_points("vasopressin", 0.04)


def test_rules004_drug_points_reads_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.sofa, "DOPAMINE_SCORE3_ABOVE", 6.0)
    monkeypatch.setattr(core.sofa, "CATECHOLAMINE_SCORE4_ABOVE", 0.2)
    assert drug_points("dopamine", 5.5) == 2
    assert drug_points("norepinephrine", 0.15) == 3
    nan = np.array([np.nan])
    assert score_cardiovascular(nan, np.array([5.5]), nan, nan, nan)[0] == 2


# --- default texts unchanged ------------------------------------------------------------------


def test_rules010_default_texts() -> None:
    r = run(MAP_75, [infusion("norepinephrine", 0.3, 61)])
    assert rule_of(r, Organ.CARDIOVASCULAR) == (
        "norepinephrine 0.3 mcg/kg/min (received 0.3 mcg/kg/min) for 61 min (>= 60 min rule) -> 4"
    )
    assert vasopressor_duration_text() == ">= 60 min rule"
    texts = organ_rule_texts()
    assert set(texts) == set(Organ)
    assert (
        texts[Organ.COAGULATION]
        == "platelets (10^3/uL): < 150 -> 1, < 100 -> 2, < 50 -> 3, < 20 -> 4"
    )
    assert texts[Organ.LIVER] == "bilirubin (mg/dL): >= 1.2 -> 1, >= 2 -> 2, >= 6 -> 3, >= 12 -> 4"
    assert texts[Organ.CNS].startswith("GCS 13-14 -> 1, 10-12 -> 2, 6-9 -> 3, < 6 -> 4;")
    assert "< 200 with support -> 3, < 100 with support -> 4" in texts[Organ.RESPIRATION]
    assert "FiO2 charted up to 4 h before the PaO2" in texts[Organ.RESPIRATION]
    cv = texts[Organ.CARDIOVASCULAR]
    assert cv.startswith("MAP < 70 mmHg -> 1; norepinephrine > 0 -> 3, > 0.1 -> 4;")
    assert "dopamine > 0 -> 2, > 5 -> 3, > 15 -> 4" in cv
    assert "infused for >= 60 min (segments less than 5 min apart merged)" in cv
    renal = texts[Organ.RENAL]
    assert "urine output < 500 mL/24 h -> 3, < 200 -> 4" in renal
    assert "at least 12 h observed" in renal


# --- settings change the texts ----------------------------------------------------------------


def test_rules020_vasopressor_minutes_setting_in_text() -> None:
    rules = SofaRules(vasopressor_min_minutes=30)
    r = run(MAP_75, [infusion("norepinephrine", 0.3, 45)], rules=rules)
    assert score_of(r, Organ.CARDIOVASCULAR) == 4  # 45 min >= 30 min
    assert rule_of(r, Organ.CARDIOVASCULAR) == (
        "norepinephrine 0.3 mcg/kg/min (received 0.3 mcg/kg/min) for 45 min (>= 30 min rule) -> 4"
    )
    assert vasopressor_duration_text(rules) == ">= 30 min rule"
    assert "infused for >= 30 min" in organ_rule_texts(rules)[Organ.CARDIOVASCULAR]
    off = SofaRules(require_vasopressor_60min=False)
    assert vasopressor_duration_text(off) == "no minimum duration"
    assert "(no minimum duration) -> 4" in rule_of(
        run(MAP_75, [infusion("norepinephrine", 0.3, 10)], rules=off), Organ.CARDIOVASCULAR
    )


def test_rules021_other_settings_in_rule_texts() -> None:
    rules = SofaRules(
        fio2_match_window_hours=2,
        vasopressor_merge_gap_minutes=10,
        urine_min_observed_hours=8,
        respiratory_support="invasive_only",
        gcs_sedated="raw",
    )
    texts = organ_rule_texts(rules)
    assert "FiO2 charted up to 2 h before" in texts[Organ.RESPIRATION]
    assert texts[Organ.RESPIRATION].endswith("support = invasive ventilation")
    assert "less than 10 min apart merged" in texts[Organ.CARDIOVASCULAR]
    assert "at least 8 h observed" in texts[Organ.RENAL]
    assert "GCS as charted" in texts[Organ.CNS]


def test_rules022_vasopressor_counts() -> None:
    np.testing.assert_array_equal(vasopressor_counts([59.9, 60, 61]), [False, True, True])
    rules = SofaRules(vasopressor_min_minutes=30)
    np.testing.assert_array_equal(vasopressor_counts([29, 30], rules), [False, True])
    off = SofaRules(require_vasopressor_60min=False)
    np.testing.assert_array_equal(vasopressor_counts([1.0], off), [True])


# --- monkeypatched cut-offs change score and text together ------------------------------------


def test_rules030_creatinine_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    obs = [("P1", h(1), "creatinine", 3.2, "mg/dL")]
    assert rule_of(run(obs), Organ.RENAL) == "creatinine 3.2 mg/dL >= 2 -> 2"
    monkeypatch.setattr(core.sofa, "CREATININE_MG_DL_BREAKS", (1.2, 2.0, 3.0, 5.0))
    r = run(obs)
    assert score_of(r, Organ.RENAL) == 3
    assert rule_of(r, Organ.RENAL) == "creatinine 3.2 mg/dL >= 3 -> 3"
    assert ">= 3 -> 3" in organ_rule_texts()[Organ.RENAL]


def test_rules031_urine_cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    obs = [("P1", h(x), "urine_output", 50, "mL") for x in (3, 6, 9, 12, 15, 18)]
    monkeypatch.setattr(core.sofa, "URINE_ML_24H_SCORE3_BELOW", 450.0)
    r = run(obs)
    assert rule_of(r, Organ.RENAL) == "urine 300 mL over 18 h -> 400 mL/24h < 450 -> 3"


def test_rules032_map_and_dopamine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.sofa, "MAP_MMHG_SCORE1_BELOW", 65.0)
    r = run([("P1", h(1), "map", 60, "mmHg")])
    assert rule_of(r, Organ.CARDIOVASCULAR) == "MAP 60 mmHg < 65 -> 1"
    r = run([("P1", h(1), "map", 68, "mmHg")])
    assert rule_of(r, Organ.CARDIOVASCULAR) == "MAP 68 mmHg >= 65, no qualifying vasopressor -> 0"
    monkeypatch.setattr(core.sofa, "DOPAMINE_SCORE3_ABOVE", 6.0)
    r = run(MAP_75, [infusion("dopamine", 5.5, 61)])
    assert score_of(r, Organ.CARDIOVASCULAR) == 2
    assert rule_of(r, Organ.CARDIOVASCULAR).endswith("(>= 60 min rule) -> 2")
    assert "dopamine > 0 -> 2, > 6 -> 3, > 15 -> 4" in organ_rule_texts()[Organ.CARDIOVASCULAR]


def test_rules033_platelets_bilirubin_gcs_pf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.sofa, "PLATELETS_10E3_PER_UL_BREAKS", (160.0, 100.0, 50.0, 20.0))
    monkeypatch.setattr(core.sofa, "BILIRUBIN_MG_DL_BREAKS", (1.0, 2.0, 6.0, 12.0))
    monkeypatch.setattr(core.sofa, "GCS_BREAKS", (15.0, 13.0, 9.0, 6.0))
    monkeypatch.setattr(core.sofa, "PAO2_FIO2_MMHG_BREAKS", (400.0, 300.0, 250.0, 100.0))
    r = run(
        [
            ("P1", h(1), "platelets", 155, "10^3/uL"),
            ("P1", h(1), "bilirubin", 1.1, "mg/dL"),
            ("P1", h(1), "gcs_total", 9, "points"),
            ("P1", h(1), "fio2", 0.5, "fraction"),
            ("P1", h(2), "pao2", 110, "mmHg"),
        ]
    )
    assert rule_of(r, Organ.COAGULATION) == "platelets 155 10^3/uL < 160 -> 1"
    assert rule_of(r, Organ.LIVER) == "bilirubin 1.1 mg/dL >= 1 -> 1"
    assert rule_of(r, Organ.CNS) == "GCS 9 9-12 -> 2"
    assert rule_of(r, Organ.RESPIRATION) == (
        "PaO2 110 mmHg / FiO2 0.5 fraction = P/F 220 mmHg "
        "< 250 without respiratory support (capped at 2) -> 2"
    )
