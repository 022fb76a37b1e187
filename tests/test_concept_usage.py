"""core.io and core.synth read the concept facts, never re-type them (one concept table).

Each observation variable and scored drug is described once in :mod:`core.concepts` (unit,
accepted units and factors, plausible range, export code), episode kinds once in
:mod:`core.vocab` and the SOFA cut-offs / drug tiers once in :mod:`core.sofa`. These tests fail
when ``core/io`` or ``core/synth`` carries its own copy of such a fact (or one that disagrees).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import concepts
from core.concepts import BIOMARKER_COLUMNS, CONCEPTS, DRUGS, EXPORT_CODES, OBSERVATIONS, concept
from core.io import ADLB_BIOMARKERS, ADLB_PARAMCD, TABLE_SPECS
from core.io.validate import _DRUG_UNIT
from core.rules import SofaRules
from core.sofa import drug_points, drug_tiers, score_sofa
from core.synth import generate_trial
from core.synth import observations as synth_obs
from core.synth import support as synth_support
from core.synth.published import ALTERNATIVE_UNITS
from core.units import unit_key
from core.vocab import EPISODE_KINDS, SOFA_INPUT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trial():
    return generate_trial(n_randomised=60, seed=3)


# --- core.io ------------------------------------------------------------------------------


def test_usage001_adlb_codes_are_the_concepts_export_codes() -> None:
    assert dict(ADLB_PARAMCD) | {
        c: n for c, n in EXPORT_CODES.items() if n in BIOMARKER_COLUMNS
    } == (dict(EXPORT_CODES))
    assert tuple(ADLB_PARAMCD) == tuple(
        c for c, n in EXPORT_CODES.items() if n not in BIOMARKER_COLUMNS
    )
    assert len(ADLB_PARAMCD) == 10
    assert set(ADLB_PARAMCD.values()).isdisjoint(BIOMARKER_COLUMNS)
    assert {EXPORT_CODES[code] for code in ADLB_BIOMARKERS} == set(BIOMARKER_COLUMNS)
    for code, (column, accepted) in ADLB_BIOMARKERS.items():
        c = CONCEPTS[EXPORT_CODES[code]]
        assert column == c.biomarker_column
        assert accepted == tuple(c.units)  # all factor 1: stored as received
    with pytest.raises(TypeError):
        ADLB_PARAMCD["XX"] = "xx"  # type: ignore[index]
    with pytest.raises(TypeError):
        ADLB_BIOMARKERS["XX"] = ("xx", ())  # type: ignore[index]


def test_usage002_schema_reads_episode_kinds_and_concept_ranges() -> None:
    assert TABLE_SPECS["episodes"].columns["kind"].isin == EPISODE_KINDS
    weight = TABLE_SPECS["patients"].columns["weight_kg"]
    w = concept("weight")
    assert (weight.low, weight.high, weight.unit) == (w.low, w.high, w.unit)
    bio = TABLE_SPECS["biomarkers"]
    assert tuple(bio.columns)[2:] == tuple(BIOMARKER_COLUMNS.values()) == bio.compare
    for name, column in BIOMARKER_COLUMNS.items():
        spec, c = bio.columns[column], concept(name)
        assert (spec.low, spec.high, spec.unit, spec.nullable) == (c.low, c.high, c.unit, True)
    assert dict(_DRUG_UNIT) == {d.name: d.unit for d in DRUGS}


def test_usage003_adlb_export_units_are_the_concept_units() -> None:
    # the ADLB export writes biomarker AVALU from the concepts (ng/mL, AB/C)
    assert {code: CONCEPTS[EXPORT_CODES[code]].unit for code in ADLB_BIOMARKERS} == {
        "FERRITIN": "ng/mL",
        "HLADR": "AB/C",
    }


# --- core.synth -------------------------------------------------------------------------


def test_usage010_generator_variables_and_units_are_the_concepts(trial) -> None:
    rows = synth_obs._Rows
    assert tuple(c.name for c in OBSERVATIONS if c.biomarker_column is None) == rows.VARIABLES
    for var, alt in ALTERNATIVE_UNITS.items():
        c = concept(var)
        assert alt != c.unit, var
        assert unit_key(alt) in c.units, (var, alt)
    obs = trial.observations
    assert set(obs["variable"]) == set(rows.VARIABLES)
    for (var, unit), _ in obs.groupby(["variable", "unit"], observed=True):
        assert unit in (concept(var).unit, ALTERNATIVE_UNITS.get(var)), (var, unit)
    assert set(trial.biomarkers.columns) == {"patient_id", "time", *BIOMARKER_COLUMNS.values()}


def test_usage011_generator_drugs_rate_units_and_episode_kinds(trial) -> None:
    inf = trial.infusions
    assert set(inf["drug"]) <= set(concepts.SCORED_DRUGS)
    for (drug, unit), _ in inf.groupby(["drug", "unit"]):
        assert unit in (concept(drug).unit, *concept(drug).per_weight_units), (drug, unit)
    assert set(trial.episodes["kind"]) <= set(EPISODE_KINDS)
    assert list(synth_support._KINDS_SORTED) == sorted(EPISODE_KINDS)


def _score(column: str, values: tuple[float, ...]) -> list[int]:
    """Component score of ``values`` of one SOFA input (others missing, support on)."""
    days = pd.DataFrame({c: np.nan for c in SOFA_INPUT_COLUMNS}, index=range(len(values)))
    days[column] = values
    days["respiratory_support"] = True
    out = score_sofa(days)
    organ = {
        "pao2_fio2_mmhg": "sofa_respiration",
        "platelets_10e3_per_ul": "sofa_coagulation",
        "bilirubin_mg_dl": "sofa_liver",
        "creatinine_mg_dl": "sofa_renal",
        "gcs_total": "sofa_cns",
        "urine_output_ml_24h": "sofa_renal",
        "map_mmhg": "sofa_cardiovascular",
    }[column]
    return out[organ].astype(int).tolist()


@pytest.mark.parametrize(
    ("column", "bands"),
    [
        ("pao2_fio2_mmhg", synth_obs._PF_BANDS),
        ("platelets_10e3_per_ul", synth_obs._PLT_BANDS),
        ("bilirubin_mg_dl", synth_obs._BILI_BANDS),
        ("creatinine_mg_dl", synth_obs._CREA_BANDS),
        ("gcs_total", synth_obs._GCS_BANDS),
    ],
)
def test_usage012_synthetic_bands_lie_inside_the_sofa_bands(column, bands) -> None:
    for score, (lo, hi) in enumerate(bands):
        assert lo <= hi
        assert _score(column, (lo, hi)) == [score, score], (column, score, lo, hi)


def test_usage013_synthetic_rates_lie_inside_the_drug_tiers() -> None:
    s = synth_support
    assert drug_tiers("epinephrine") == drug_tiers("norepinephrine")  # rates are shared
    for drug, (lo, hi), points in (
        ("norepinephrine", s._CATECHOL_4, 4),
        ("norepinephrine", s._CATECHOL_3, 3),
        ("norepinephrine", s._CATECHOL_3_LOW, 3),
        ("dopamine", s._DOPA_4, 4),
        ("dopamine", s._DOPA_3, 3),
        ("dopamine", s._DOPA_2, 2),
        ("dobutamine", s._DOBU_2, 2),
    ):
        assert drug_points(drug, [lo, hi]).tolist() == [points, points], (drug, lo, hi)
    # short runs stay below the default duration rule
    assert SofaRules().vasopressor_min_minutes == s._MIN_RUN_MINUTES


# --- no re-typed literal in core/io or core/synth ------------------------------------------

#: deliberate literals: (file, value) -> reason
_ALLOWED = {
    ("core/io/schema.py", "points"): "APACHE II / Charlson points (not concepts)",
    ("core/synth/published.py", "mg/dL"): "ALTERNATIVE_UNITS: the sites' lactate spelling",
}
#: files of deliberately raw input (a template of a site's file, like a fixture)
_RAW_INPUT_FILES = {"core/io/template.py"}


def _literals(path: Path) -> list[tuple[int, object]]:
    """Constants of a module outside docstrings: (line, value)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and id(node) not in docstrings
    ]


def test_usage020_io_and_synth_do_not_retype_concept_facts() -> None:
    units = {c.unit for c in CONCEPTS.values()} | {
        u for c in CONCEPTS.values() for u in c.per_weight_units
    }
    strings = units | set(EXPORT_CODES) | set(EPISODE_KINDS) | set(BIOMARKER_COLUMNS.values())
    factors = {
        concepts.BILIRUBIN_UMOL_L_PER_MG_DL,
        concepts.CREATININE_UMOL_L_PER_MG_DL,
        concepts.KPA_TO_MMHG,
        concepts.LACTATE_MG_DL_PER_MMOL_L,
    }
    found = []
    files = sorted((ROOT / "core" / "io").glob("*.py")) + sorted(
        (ROOT / "core" / "synth").glob("*.py")
    )
    assert len(files) > 20
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in _RAW_INPUT_FILES:
            continue
        for line, value in _literals(path):
            hit = (isinstance(value, str) and value in strings) or (
                isinstance(value, float) and value in factors
            )
            if hit and (rel, value) not in _ALLOWED:
                found.append(f"{rel}:{line}: {value!r}")
    assert not found, "re-typed concept facts (read them from core.concepts / core.vocab):\n" + (
        "\n".join(found)
    )
