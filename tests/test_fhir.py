"""FHIR R4 importer (core.io.fhir): parse, map, import, derived SOFA (issue 14).

The fixture ``tests/fixtures/fhir/bundle.json`` is a transaction Bundle written for these tests.
Hand-computed day-1 classic SOFA (study day 1 = the 24 h from ICU admission):

- FHIR-001: PaO2 75 mmHg / FiO2 50 % = P/F 150 under invasive ventilation -> respiration 3;
  platelets 90 -> coagulation 2; bilirubin 102.6 umol/L = 6.0 mg/dL (cut-off) -> liver 3;
  norepinephrine 0.05 ug/kg/min -> cardiovascular 3; GCS 13 -> CNS 1; creatinine 309.4 umol/L
  = 3.5 mg/dL (cut-off) -> renal 3 (urine 1500 mL does not score); total 15.
- FHIR-002: PaO2 12 kPa = 90.0074 mmHg / FiO2 0.4 = P/F 225.02 -> respiration 2; platelets
  160 -> 0; bilirubin 1.9 mg/dL -> liver 1; dobutamine 5 ug/kg/min -> cardiovascular 2 (MAP 75
  from a blood pressure panel component); GCS 15 -> 0; creatinine 1.2 mg/dL -> renal 1; total 6.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core import db
from core import repository as repo
from core.exceptions import DataValidationError, Problem
from core.io import cli
from core.io.codes import code_table
from core.io.fhir import DEFAULT_SITE, parse_bundles, parse_fhir, read_fhir
from core.io.formats import read_format
from core.io.load import import_tables
from core.rules import SofaRules

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "fhir" / "bundle.json"


def bundle() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def entry_index(data: dict[str, Any], resource_id: str) -> int:
    """0-based index of the entry whose resource has ``resource_id``."""
    return next(i for i, e in enumerate(data["entry"]) if e["resource"].get("id") == resource_id)


def problems_of(data: dict[str, Any], name: str = "b.json") -> list[Problem]:
    return list(parse_bundles([(name, json.dumps(data))]).problems)


# --------------------------------------------------------------------------- parse / map ----


def test_fhir001_fixture_maps_to_raw_tables() -> None:
    out = parse_fhir([FIXTURE])
    assert out.problems == ()
    t = out.tables
    assert sorted(t) == sorted(
        ["sites", "patients", "icu_stays", "observations", "infusions", "episodes", "biomarkers"]
    )
    pts = t["patients"].set_index("patient_id")
    assert pts.loc["FHIR-001"].to_dict() == {
        "site_id": "SITE-A",
        "anchor_time": "2024-03-01T08:00:00",
        "weight_kg": 70.0,
        "death_time": None,
        "age_years": 63.0,
        "sex": "F",
        "randomised_at": None,
    }
    # +01:00 times are converted to UTC; no managingOrganization -> the default site
    assert pts.loc["FHIR-002", "anchor_time"] == "2024-03-02T05:00:00"
    assert pts.loc["FHIR-002", "site_id"] == DEFAULT_SITE
    assert pts.loc["FHIR-002", "age_years"] == 48.0
    assert t["sites"].to_dict("records") == [{"site_id": "SITE-A", "name": "Hospital A ICU"}]
    assert t["icu_stays"].to_dict("records") == [
        {
            "patient_id": "FHIR-001",
            "unit": "ICU A",
            "start": "2024-03-01T08:00:00",
            "stop": "2024-03-06T12:00:00",
        },
        {"patient_id": "FHIR-002", "unit": "ICU B", "start": "2024-03-02T05:00:00", "stop": None},
    ]
    obs = t["observations"].set_index("source")
    # units exactly as the source wrote them (UCUM); conversion is validation's job
    assert obs.loc["Observation/o1-crea", ["variable", "value", "unit"]].tolist() == [
        "creatinine",
        309.4,
        "umol/L",
    ]
    assert obs.loc["Observation/o1-plt", "unit"] == "10*3/uL"
    assert obs.loc["Observation/o1-gcs", ["variable", "unit"]].tolist() == ["gcs_total", "{score}"]
    assert obs.loc["Observation/o2-fio2", ["variable", "value", "unit"]].tolist() == [
        "fio2",
        0.4,
        "1",
    ]
    # the MAP component of a blood pressure panel; systolic and diastolic are ignored
    assert obs.loc["Observation/o2-bp", ["variable", "value", "unit"]].tolist() == [
        "map",
        75.0,
        "mm[Hg]",
    ]
    assert sorted(obs["variable"].unique()) == sorted(
        [
            "weight",
            "pao2",
            "fio2",
            "platelets",
            "bilirubin",
            "creatinine",
            "map",
            "gcs_total",
            "urine_output",
            "lactate",
        ]
    )
    assert len(obs) == 19
    # ferritin (LOINC) and HLA-DR (local code) at one time: one biomarkers row
    assert t["biomarkers"].to_dict("records") == [
        {
            "patient_id": "FHIR-001",
            "time": "2024-03-01T10:00:00",
            "ferritin_ng_ml": 2500.0,
            "hla_dr_ab_per_cell": 5000.0,
        }
    ]
    inf = t["infusions"].set_index("patient_id")
    assert inf.loc["FHIR-001", ["drug", "rate", "unit"]].tolist() == [
        "norepinephrine",
        0.05,
        "ug/kg/min",
    ]
    # medicationReference -> Medication entry coded by text only
    assert inf.loc["FHIR-002", ["drug", "start", "stop"]].tolist() == [
        "dobutamine",
        "2024-03-02T09:00:00",
        "2024-03-02T17:00:00",
    ]
    assert t["episodes"][["patient_id", "kind"]].values.tolist() == [
        ["FHIR-001", "invasive_ventilation"],
        ["FHIR-001", "rrt"],
        ["FHIR-002", "cpap"],
    ]
    # nothing dropped silently: every resource not imported is counted with its reason
    assert out.skipped == {
        "Condition: resource type not imported": 1,
        "Observation: code 8462-4 ignored (Diastolic blood pressure: not a SOFA input (MAP is))": 1,
        "Observation: code 8480-6 ignored (Systolic blood pressure: not a SOFA input (MAP is))": 1,
        "Observation: code 8867-4 ignored (Heart rate: not a SOFA input)": 1,
        "Observation: status preliminary": 1,
    }


def test_fhir002_mapping_tables_cover_the_required_loinc_codes() -> None:
    loinc = code_table("loinc")
    expected = {
        "2703-7": "pao2",
        "3150-0": "fio2",
        "19994-3": "fio2",
        "777-3": "platelets",
        "26515-7": "platelets",
        "1975-2": "bilirubin",
        "42719-5": "bilirubin",
        "2160-0": "creatinine",
        "14682-9": "creatinine",
        "8478-0": "map",
        "9269-2": "gcs_total",
        "9187-6": "urine_output",
        "29463-7": "weight",
        "2276-4": "ferritin",
        "2524-7": "lactate",
        "32693-4": "lactate",
    }
    assert {code: loinc[code].variable for code in expected} == expected
    assert loinc["2276-4"].target == "biomarkers"
    # 3151-8 is the oxygen flow rate, never FiO2 (clinical.md 5.3)
    assert loinc["3151-8"].target == "ignore"
    fhir = code_table("fhir")
    assert fhir["local:hla-dr"].variable == "hla_dr"
    assert fhir["rxnorm:7512"].variable == "norepinephrine"
    assert fhir["snomed:40617009"].variable == "invasive_ventilation"
    assert fhir["snomed:302497006"].variable == "rrt"


# --------------------------------------------------------------------------- import -------


def test_fhir010_import_and_daily_sofa(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    result = import_tables(engine, read_fhir([FIXTURE]), user="fhir-test")
    assert result.status == "imported"
    assert dict(result.inserted) == {
        "sites": 2,
        "patients": 2,
        "icu_stays": 2,
        "observations": 19,
        "infusions": 2,
        "episodes": 3,
        "biomarkers": 1,
    }
    obs = repo.load_observations(engine, patient_ids=["FHIR-001"]).set_index("variable")
    # SI values exactly on the cut-off land on it after conversion
    assert obs.loc["creatinine", "value"] == 3.5
    assert obs.loc["creatinine", "unit"] == "mg/dL"
    assert obs.loc["bilirubin", "value"] == 6.0
    assert obs.loc["fio2", "value"] == pytest.approx(0.5)
    obs2 = repo.load_observations(engine, patient_ids=["FHIR-002"]).set_index("variable")
    assert obs2.loc["pao2", "value"] == pytest.approx(12 * 7.50062)
    assert obs2.loc["lactate", "value"] == pytest.approx(18 / 9.01, abs=1e-6)
    daily = repo.load_daily_sofa(engine, rules_key=SofaRules().key()).set_index("patient_id")
    organs = [
        "sofa_respiration",
        "sofa_coagulation",
        "sofa_liver",
        "sofa_cardiovascular",
        "sofa_cns",
        "sofa_renal",
        "sofa_total",
    ]
    day1 = daily[daily["study_day"] == 1]
    assert day1.loc["FHIR-001", organs].tolist() == [3, 2, 3, 3, 1, 3, 15]
    assert day1.loc["FHIR-002", organs].tolist() == [2, 0, 1, 2, 0, 1, 6]
    assert bool(day1.loc["FHIR-001", "respiratory_support"]) is True
    assert day1.loc["FHIR-001", "norepinephrine_mcg_kg_min"] == pytest.approx(0.05)
    bio = repo.load_biomarkers(engine)
    assert bio[["patient_id", "ferritin_ng_ml", "hla_dr_ab_per_cell"]].values.tolist() == [
        ["FHIR-001", 2500.0, 5000.0]
    ]
    # the same Bundle again: nothing new
    again = import_tables(engine, read_fhir([FIXTURE]), user="fhir-test")
    assert again.status == "duplicate"
    engine.dispose()


def test_fhir011_cli_import(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["import", "--format", "fhir", str(FIXTURE), "--database-url", sqlite_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("imported: import 1")
    assert read_format("fhir", [FIXTURE])["patients"]["patient_id"].tolist() == [
        "FHIR-001",
        "FHIR-002",
    ]


def test_fhir012_refused_bundle_stores_nothing(sqlite_url: str, tmp_path: Path) -> None:
    """A Bundle that maps but fails validation (implausible platelets, unknown unit) writes
    nothing, also into a database that already holds data."""
    engine = db.make_engine(sqlite_url)
    data = bundle()
    plt = data["entry"][entry_index(data, "o1-plt")]["resource"]
    plt["valueQuantity"]["value"] = 90000
    lact = data["entry"][entry_index(data, "o2-lact")]["resource"]
    lact["valueQuantity"]["code"] = lact["valueQuantity"]["unit"] = "mg"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataValidationError) as exc:
        import_tables(engine, read_fhir([bad]))
    assert ("value", 90000.0) in {(p.column, p.value) for p in exc.value.problems}
    assert ("unit", "mg") in {(p.column, p.value) for p in exc.value.problems}
    assert any(p.patient_id == "FHIR-002" and "mg" in str(p.value) for p in exc.value.problems)
    counts = db.row_counts(engine)
    assert counts["patients"] == 0
    assert counts["observations"] == 0
    assert len(repo.load_import_log(engine)) == 0
    # a database with data: a refused Bundle changes nothing either
    import_tables(engine, read_fhir([FIXTURE]))
    before = (db.row_counts(engine), db.dataset_version(engine))
    data = bundle()
    data["entry"][entry_index(data, "o2-crea")]["resource"]["valueQuantity"]["value"] = 2.0
    other = tmp_path / "conflict.json"
    other.write_text(json.dumps(data))
    with pytest.raises(DataValidationError) as exc:
        import_tables(engine, read_fhir([other]))
    assert any("never overwritten" in p.expected for p in exc.value.problems)
    assert (db.row_counts(engine), db.dataset_version(engine)) == before
    engine.dispose()


# --------------------------------------------------------------------------- problems -----


def test_fhir020_invalid_resource_names_file_entry_and_message() -> None:
    data = bundle()
    i = entry_index(data, "o1-pao2")
    data["entry"][i]["resource"]["effectiveDateTime"] = "yesterday"
    problems = problems_of(data, "ward.json")
    assert len(problems) == 1
    p = problems[0]
    assert (p.where, p.row, p.column, p.value) == (
        "ward.json",
        i + 1,
        "effectiveDateTime",
        "Observation/o1-pao2",
    )
    assert p.expected.startswith("a valid FHIR R4 Observation (effectiveDateTime:")
    assert "does not match spec regex" in p.expected
    with pytest.raises(DataValidationError):
        read_fhir([FIXTURE.with_name("missing.json")])


def test_fhir021_unknown_code_is_a_problem_not_dropped() -> None:
    data = bundle()
    i = entry_index(data, "o1-lact")
    coding = data["entry"][i]["resource"]["code"]["coding"][0]
    coding["code"] = "1234-5"
    j = entry_index(data, "ma-001")
    data["entry"][j]["resource"]["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999"}]
    }
    problems = {p.row: p for p in problems_of(data)}
    assert sorted(problems) == [i + 1, j + 1]
    assert problems[i + 1].column == "code"
    assert problems[i + 1].value == "http://loinc.org|1234-5"
    assert problems[i + 1].expected.startswith("a code of core/io/mappings/loinc.csv")
    assert (problems[i + 1].patient_id, problems[i + 1].time) == ("FHIR-001", "2024-03-01T10:00:00")
    assert problems[j + 1].value == "http://www.nlm.nih.gov/research/umls/rxnorm|999"
    assert problems[j + 1].expected.startswith("a code of core/io/mappings/fhir.csv")


def test_fhir022_envelope_and_reference_problems() -> None:
    assert [p.column for p in parse_bundles([("x.json", b"{not json")]).problems] == [None]
    assert parse_bundles([("x.json", b'{"resourceType": "Patient"}')]).problems[0].value == (
        "Patient"
    )
    data = bundle()
    data["type"] = "searchset"
    assert [(p.column, p.value) for p in problems_of(data)] == [("type", "searchset")]
    data = bundle()
    i = entry_index(data, "o1-map")
    data["entry"][i]["resource"]["subject"] = {"reference": "urn:uuid:nobody"}
    k = entry_index(data, "o1-gcs")
    data["entry"][k]["request"]["method"] = "DELETE"
    m = entry_index(data, "o1-urine")
    del data["entry"][m]["resource"]["resourceType"]
    got = {(p.row, p.column) for p in problems_of(data)}
    assert got == {(i + 1, "subject"), (k + 1, "request.method"), (m + 1, "resource.resourceType")}


def test_fhir023_patient_needs_an_icu_stay_and_a_weight() -> None:
    data = bundle()
    data["entry"].pop(entry_index(data, "enc-002"))
    data["entry"].pop(entry_index(data, "o1-weight"))
    problems = problems_of(data)
    by_column = {p.column: p for p in problems}
    assert set(by_column) == {"anchor_time", "weight_kg"}
    assert by_column["anchor_time"].patient_id == "FHIR-002"
    assert by_column["weight_kg"].patient_id == "FHIR-001"
    assert "29463-7" in by_column["weight_kg"].expected


def test_fhir024_values_that_cannot_be_stored_as_given() -> None:
    data = bundle()
    i = entry_index(data, "o1-ferr")
    data["entry"][i]["resource"]["valueQuantity"].update(code="pmol/L", unit="pmol/L")
    k = entry_index(data, "o1-bili")
    data["entry"][k]["resource"]["valueQuantity"]["comparator"] = "<"
    m = entry_index(data, "ma-001")
    data["entry"][m]["resource"]["effectivePeriod"].pop("end")
    d = entry_index(data, "FHIR-001")
    data["entry"][d]["resource"]["deceasedBoolean"] = True
    problems = {p.row: p for p in problems_of(data)}
    assert sorted(problems) == sorted([i + 1, k + 1, m + 1, d + 1])
    assert problems[i + 1].value == "pmol/L"
    assert "ng/mL" in problems[i + 1].expected
    assert problems[k + 1].value == "<102.6"
    assert problems[m + 1].column == "effectivePeriod"
    assert problems[d + 1].column == "deceasedBoolean"


def test_fhir025_death_time_and_statuses() -> None:
    data = bundle()
    p = data["entry"][entry_index(data, "FHIR-002")]["resource"]
    p["deceasedDateTime"] = "2024-03-04T12:30:00+02:00"
    obs = data["entry"][entry_index(data, "o2-gcs")]["resource"]
    obs["status"] = "entered-in-error"
    out = parse_bundles([("b.json", json.dumps(data))])
    assert out.problems == ()
    pts = out.tables["patients"].set_index("patient_id")
    assert pts.loc["FHIR-002", "death_time"] == "2024-03-04T10:30:00"
    assert pd.isna(pts.loc["FHIR-001", "death_time"])
    assert out.skipped["Observation: status entered-in-error"] == 1
    sources = set(out.tables["observations"]["source"])
    assert "Observation/o2-gcs" not in sources
    assert "Observation/o1-gcs" in sources


def test_fhir026_several_bundles_share_references() -> None:
    """Patients and their site in one Bundle, their data in another (references resolved
    across files, by ``Patient/<id>`` and by ``fullUrl``)."""
    data = bundle()
    first = [
        e for e in data["entry"] if e["resource"]["resourceType"] in ("Organization", "Patient")
    ]
    rest = [e for e in data["entry"] if e not in first]
    out = parse_bundles(
        [
            ("a.json", json.dumps(dict(data, entry=first))),
            ("b.json", json.dumps(dict(data, entry=rest))),
        ]
    )
    assert out.problems == ()
    assert out.tables["patients"][["patient_id", "site_id", "weight_kg"]].values.tolist() == [
        ["FHIR-001", "SITE-A", 70.0],
        ["FHIR-002", DEFAULT_SITE, 82.0],
    ]
    assert len(out.tables["observations"]) == 19
    # each Bundle carrying the same Patient resources: still one row per patient
    both = parse_bundles(
        [
            ("a.json", json.dumps(dict(data, entry=first))),
            ("b.json", json.dumps(dict(data, entry=first + rest))),
        ]
    )
    assert both.problems == ()
    assert both.tables["patients"]["patient_id"].tolist() == ["FHIR-001", "FHIR-002"]
    alone = parse_bundles([("b.json", json.dumps(dict(data, entry=rest)))])
    # without the first file the urn:uuid references of FHIR-002 point at nothing
    assert {p.column for p in alone.problems} == {"subject"}


def test_fhir013_later_bundles_add_to_stored_patients(sqlite_url: str, tmp_path: Path) -> None:
    """An Observation alone for a stored patient, and a repeated full Bundle with one new
    Observation: only the new rows are inserted; day 2 gets its own renal score."""
    engine = db.make_engine(sqlite_url)
    import_tables(engine, read_fhir([FIXTURE]))
    data = bundle()
    new = copy.deepcopy(data["entry"][entry_index(data, "o1-crea")])
    new["resource"].update(id="o1-crea-d2", effectiveDateTime="2024-03-02T10:00:00Z")
    new["resource"]["valueQuantity"]["value"] = 176.8  # = 2.0 mg/dL: renal 2 on the cut-off
    new["fullUrl"] = "Observation/o1-crea-d2"
    alone = tmp_path / "alone.json"
    alone.write_text(json.dumps(dict(data, entry=[new])))
    result = import_tables(engine, read_fhir([alone]))
    assert result.status == "imported"
    assert dict(result.inserted) == {"observations": 1}
    newer = copy.deepcopy(new)
    newer["resource"].update(id="o1-crea-d3", effectiveDateTime="2024-03-03T10:00:00Z")
    again = tmp_path / "again.json"
    again.write_text(json.dumps(dict(data, entry=[*data["entry"], newer])))
    result = import_tables(engine, read_fhir([again]))
    assert result.status == "imported"
    assert {k: v for k, v in result.inserted.items() if v} == {"observations": 1}
    assert result.skipped["patients"] == 2
    daily = repo.load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=["FHIR-001"])
    renal = dict(zip(daily["study_day"], daily["sofa_renal"], strict=True))
    assert renal[1] == 3
    assert renal[2] == 2
    engine.dispose()
