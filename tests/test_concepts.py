"""Concept table (core.concepts): one description per variable; unit conversion exact at cut-offs.

clinical.md 5.1 (factors), 5.2 (SI input converted to mg/dL, then scored on the mg/dL bands),
2.8 (daily worst value per organ); SRC-RICU concept dictionary style.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.sofa
from core import concepts, units
from core.concepts import CONCEPTS, DRUGS, OBSERVATIONS, concept
from core.derive import SOFA_OBS_VARIABLES, SUPPORT_KINDS
from core.io import ADLB_BIOMARKERS, ADLB_PARAMCD
from core.sofa import score_sofa
from core.units import convert, normalize_observations
from core.vocab import EPISODE_KINDS, SOFA_COLUMNS, SOFA_INPUT_COLUMNS, EpisodeKind, Organ

# --- the table and its views --------------------------------------------------------------


def test_concepts001_units_tables_are_views_of_the_concepts() -> None:
    assert tuple(units.CANONICAL_UNITS) == tuple(c.name for c in OBSERVATIONS)
    for c in OBSERVATIONS:
        assert units.CANONICAL_UNITS[c.name] == c.unit
        assert dict(units.ACCEPTED_UNITS[c.name]) == dict(c.units)
        assert units.PLAUSIBLE_RANGES[c.name] == (c.low, c.high, c.unit)
    for d in DRUGS:
        assert units.PLAUSIBLE_RANGES[d.name] == (0.0, d.high, "mcg/kg/min")
    assert units.SCORED_DRUGS == concepts.SCORED_DRUGS == core.sofa.SCORED_DRUGS
    assert units.SCORED_DRUGS == ("norepinephrine", "epinephrine", "dopamine", "dobutamine")
    assert dict(units.INFUSION_UNITS) == {"mcg/kg/min": False, "mcg/min": True}


def test_concepts002_read_only() -> None:
    with pytest.raises(TypeError):
        units.CANONICAL_UNITS["pao2"] = "kPa"  # type: ignore[index]
    with pytest.raises(TypeError):
        concept("creatinine").units["umol/l"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        concept("creatinine").unit = "umol/L"  # type: ignore[misc]
    with pytest.raises(KeyError, match="unknown concept 'albumin'"):
        concept("albumin")


def test_concepts003_sofa_inputs_organs_and_aggregates() -> None:
    assert SOFA_OBS_VARIABLES == (
        "pao2",
        "fio2",
        "platelets",
        "bilirubin",
        "creatinine",
        "map",
        "gcs_total",
        "urine_output",
    )
    agg = {n: c.aggregate for n, c in CONCEPTS.items()}
    assert agg["platelets"] == agg["map"] == agg["gcs_total"] == "min"  # clinical.md 2.8
    assert agg["bilirubin"] == agg["creatinine"] == "max"
    assert agg["urine_output"] == "sum"
    assert agg["pao2"] == agg["fio2"] == "pf"
    assert all(agg[d.name] == "max" for d in DRUGS)
    assert all(c.organ is not None for c in CONCEPTS.values() if c.sofa_input)
    assert {c.organ for c in CONCEPTS.values() if c.sofa_input} == set(Organ)
    assert not any(concept(n).sofa_input for n in ("weight", "ferritin", "hla_dr", "lactate"))
    # every scored drug has its score_sofa input column
    assert all(f"{d.name}_mcg_kg_min" in SOFA_INPUT_COLUMNS for d in DRUGS)


def test_concepts004_export_codes_match_the_adam_export() -> None:
    assert dict(concepts.EXPORT_CODES) == dict(ADLB_PARAMCD) | {"FERRITIN": "ferritin"} | {
        "HLADR": "hla_dr"
    }
    assert set(ADLB_BIOMARKERS) <= set(concepts.EXPORT_CODES)


def test_concepts005_episode_kinds_have_one_home() -> None:
    assert EPISODE_KINDS == (
        "invasive_ventilation",
        "noninvasive_ventilation",
        "cpap",
        "oxygen",
        "sedation",
        "rrt",
    )
    assert EpisodeKind.OXYGEN not in SUPPORT_KINDS["invasive_or_noninvasive_incl_cpap"]
    for kinds in SUPPORT_KINDS.values():
        assert set(kinds) <= set(EPISODE_KINDS)


# --- conversion exact at the SOFA cut-offs --------------------------------------------------


def test_concepts010_convert_rounds_only_converted_values() -> None:
    raw = np.array([1.23456789012, 102.6, np.nan])
    np.testing.assert_array_equal(convert(raw, np.ones(3)), raw)
    out = convert(raw, np.full(3, 1 / 17.1))
    assert out[1] == 6.0
    assert np.isnan(out[2])
    # binary floating point alone puts 102.6 umol/L one band low
    assert 102.6 * (1 / 17.1) < 6.0


def _scored_si(variable: str, value: float, unit: str) -> pd.Series:
    obs = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "time": [pd.Timestamp("2024-01-01 10:00")],
            "variable": [variable],
            "value": [value],
            "unit": [unit],
        }
    )
    canon = float(normalize_observations(obs)["value"].iloc[0])
    col = {
        "bilirubin": "bilirubin_mg_dl",
        "creatinine": "creatinine_mg_dl",
        "platelets": "platelets_10e3_per_ul",
    }[variable]
    row = dict.fromkeys(SOFA_INPUT_COLUMNS, np.nan) | {"respiratory_support": False, col: canon}
    out = score_sofa(pd.DataFrame([row])).iloc[0]
    return pd.Series(
        {
            "canon": canon,
            "liver": out[SOFA_COLUMNS[Organ.LIVER]],
            "renal": out[SOFA_COLUMNS[Organ.RENAL]],
            "coag": out[SOFA_COLUMNS[Organ.COAGULATION]],
        }
    )


# (SI value exactly on the cut-off, the mg/dL cut-off, the score there); clinical.md 2.8 / 5.2
BILIRUBIN_SI = [(20.52, 1.2, 1), (34.2, 2.0, 2), (102.6, 6.0, 3), (205.2, 12.0, 4)]
CREATININE_SI = [(106.08, 1.2, 1), (176.8, 2.0, 2), (309.4, 3.5, 3), (442.0, 5.0, 4)]
PLATELETS_SI = [(150.0, 0), (100.0, 1), (50.0, 2), (20.0, 3), (19.0, 4)]


@pytest.mark.parametrize(("umol_l", "mg_dl", "score"), BILIRUBIN_SI)
def test_concepts011_bilirubin_si_on_cutoff(umol_l: float, mg_dl: float, score: int) -> None:
    got = _scored_si("bilirubin", umol_l, "umol/L")
    assert got["canon"] == mg_dl
    assert got["liver"] == score
    below = _scored_si("bilirubin", round(umol_l - 0.1, 2), "umol/L")
    assert below["liver"] == score - 1


@pytest.mark.parametrize(("umol_l", "mg_dl", "score"), CREATININE_SI)
def test_concepts012_creatinine_si_on_cutoff(umol_l: float, mg_dl: float, score: int) -> None:
    got = _scored_si("creatinine", umol_l, "µmol/L")
    assert got["canon"] == mg_dl
    assert got["renal"] == score
    below = _scored_si("creatinine", round(umol_l - 0.1, 2), "µmol/L")
    assert below["renal"] == score - 1


@pytest.mark.parametrize(("g_l", "score"), PLATELETS_SI)
def test_concepts013_platelets_si_no_conversion(g_l: float, score: int) -> None:
    got = _scored_si("platelets", g_l, "10^9/L")
    assert got["canon"] == g_l
    assert got["coag"] == score


def test_concepts014_fio2_percent_and_kpa_exact() -> None:
    obs = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "time": [pd.Timestamp("2024-01-01 10:00")] * 2,
            "variable": ["fio2", "pao2"],
            "value": [40.0, 13.3],
            "unit": ["%", "kPa"],
        }
    )
    out = normalize_observations(obs)["value"].tolist()
    assert out[0] == 0.4
    assert out[1] == round(13.3 * 7.50062, 6)
