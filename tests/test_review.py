"""The data-quality review engine (core.review, docs/review.md): each rule of the issue list on
constructed data (bounds just inside / just outside), the per-site summary and recruitment,
and that no review code path reads the randomisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core.io import import_tables, template_tables
from core.review import (
    ISSUE_COLUMNS,
    LATE_ENTRY_GRACE_HOURS,
    RULES,
    issue_list,
    load_queries,
    organ_days,
    recruitment_by_week,
    review_patients,
    review_status,
    rules_table,
    site_summary,
)
from core.review.forms import FORM_OF, FORMS, form_of
from core.review.issues import (
    implausible_values,
    late_entries,
    load_endpoint_daily,
    missing_endpoint_components,
)
from core.rules import EndpointRules, SofaRules
from core.units import PLAUSIBLE_RANGES
from core.vocab import ORGANS, SOFA_COLUMNS

ANCHOR = pd.Timestamp("2024-03-01 08:00")
P3 = "SYN-S02-0003"  # the template's third patient, anchor 2024-03-05 20:00


@pytest.fixture
def engine(tmp_path):
    eng = db.make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    yield eng
    eng.dispose()


def _patients(**over) -> pd.DataFrame:
    row = {
        "patient_id": "P1",
        "site_id": "S1",
        "anchor_time": ANCHOR,
        "death_time": pd.NaT,
        "randomised_at": ANCHOR - pd.Timedelta(hours=1),
    }
    row.update(over)
    return pd.DataFrame([row])


def _daily(days, *, missing: dict[int, set[str]] | None = None) -> pd.DataFrame:
    """Daily rows of P1 with every component observed except ``missing[day]`` (imputed)."""
    missing = missing or {}
    rows = []
    for d in days:
        row = {"patient_id": "P1", "study_day": d}
        for o in ORGANS:
            gone = o.value in missing.get(d, set())
            row[SOFA_COLUMNS[o]] = 1.0
            row[f"{o.value}_imputed"] = gone
            row[f"{o.value}_imputation"] = ("day1_zero" if d == 1 else "locf") if gone else None
        rows.append(row)
    return pd.DataFrame(rows)


# --- forms ------------------------------------------------------------------------------------


def test_forms_cover_the_sofa_inputs_and_leave_out_the_guarded_biomarkers():
    assert set(FORMS) == {o.value for o in ORGANS} | {"other_labs"}
    assert FORMS["respiration"].items == ("pao2", "fio2")
    assert FORMS["renal"].items == ("creatinine", "urine_output")
    assert "norepinephrine" in FORMS["cardiovascular"].items
    assert "ferritin" not in FORM_OF
    assert "hla_dr" not in FORM_OF
    with pytest.raises(KeyError, match="'ferritin' is on no review form"):
        form_of("ferritin")


def test_rules_are_data_with_ids_descriptions_and_severities():
    table = rules_table()
    assert table["rule"].tolist() == [
        "missing_baseline_component",
        "missing_day9_component",
        "implausible_value",
        "late_entry",
    ]
    assert table["severity"].tolist() == ["high", "high", "high", "medium"]
    assert all(len(r.description) > 40 for r in RULES)


# --- rule: missing endpoint components -----------------------------------------------------------


def test_missing_day9_component_is_reported_with_its_imputation():
    day9_end = ANCHOR + pd.Timedelta(days=9)
    issues = missing_endpoint_components(
        _patients(), _daily(range(1, 10), missing={9: {"coagulation"}}), day9_end
    )
    assert list(issues.columns) == list(ISSUE_COLUMNS)
    (row,) = issues.to_dict("records")
    assert row["rule"] == "missing_day9_component"
    assert (row["patient_id"], row["site_id"], row["form"]) == ("P1", "S1", "coagulation")
    assert row["variable"] == "platelets"
    assert row["study_day"] == 9
    assert row["time"] == ANCHOR + pd.Timedelta(days=8)
    assert np.isnan(row["value"])
    assert row["detail"] == "coagulation component of day 9: not observed; scored 1 by locf"


def test_missing_baseline_component_is_reported():
    issues = missing_endpoint_components(
        _patients(),
        _daily([1], missing={1: {"respiration", "renal"}}),
        ANCHOR + pd.Timedelta(1, "D"),
    )
    assert sorted(issues["form"]) == ["renal", "respiration"]
    assert set(issues["rule"]) == {"missing_baseline_component"}
    resp = issues[issues["form"] == "respiration"].iloc[0]
    assert resp["variable"] == "pao2 / fio2"
    assert "by day1_zero" in resp["detail"]


def test_a_day_is_due_only_once_it_has_ended_at_the_cut_off():
    day9_end = ANCHOR + pd.Timedelta(days=9)
    daily = _daily(range(1, 9))  # no day-9 row at all
    just_before = missing_endpoint_components(
        _patients(), daily, day9_end - pd.Timedelta(microseconds=1)
    )
    assert just_before.empty
    at_end = missing_endpoint_components(_patients(), daily, day9_end)
    assert len(at_end) == 6  # every organ of day 9: no stored row is missing, never normal
    assert set(at_end["detail"].str.endswith("no daily SOFA row stored for this day")) == {True}


@pytest.mark.parametrize(
    ("death", "expected"),
    [
        (ANCHOR + pd.Timedelta(days=8), 0),  # dies at the start of day 9: scored 24
        (ANCHOR + pd.Timedelta(days=9) - pd.Timedelta(seconds=1), 0),  # last second of day 9
        (ANCHOR + pd.Timedelta(days=9), 6),  # dies at the start of day 10: day 9 needed
    ],
)
def test_death_on_or_before_day_9_needs_no_day_9_values(death, expected):
    issues = missing_endpoint_components(
        _patients(death_time=death), _daily(range(1, 9)), ANCHOR + pd.Timedelta(days=12)
    )
    assert len(issues[issues["study_day"] == 9]) == expected


def test_patients_who_are_not_randomised_are_not_reviewed():
    issues = missing_endpoint_components(
        _patients(randomised_at=pd.NaT), _daily([]), ANCHOR + pd.Timedelta(days=12)
    )
    assert issues.empty


def test_missing_baseline_component_from_the_stored_derivation(engine):
    tables = template_tables()
    obs = tables["observations"]
    day1_platelets = (obs["patient_id"] == P3) & (obs["variable"] == "platelets")
    first = obs[day1_platelets]["time"].min()
    tables["observations"] = obs[~(day1_platelets & (obs["time"] == first))]
    import_tables(engine, tables, user="test")
    report = issue_list(engine)
    found = report.issues[report.issues["rule"] == "missing_baseline_component"]
    assert found[["patient_id", "form", "study_day"]].values.tolist() == [[P3, "coagulation", 1]]
    assert found["detail"].iloc[0].endswith("scored 0 by day1_zero")
    assert report.notes == ()


# --- rule: implausible values -------------------------------------------------------------------


@pytest.mark.parametrize("variable", sorted(v for v in PLAUSIBLE_RANGES if v in FORM_OF))
def test_every_plausible_bound_just_inside_and_just_outside(variable):
    r = PLAUSIBLE_RANGES[variable]
    eps = 1e-6
    values = [r.low, r.high, r.low - eps, r.high + eps]
    frame = pd.DataFrame(
        {
            "patient_id": "P1",
            "time": [ANCHOR + pd.Timedelta(hours=h) for h in range(4)],
            "variable": variable,
            "value": values,
            "unit": r.unit,
        }
    )
    issues = implausible_values(frame, _patients())
    assert issues["value"].tolist() == [r.low - eps, r.high + eps]
    assert set(issues["rule"]) == {"implausible_value"}
    assert set(issues["form"]) == {FORM_OF[variable]}
    assert issues["detail"].iloc[1].endswith(f"expected {r.low:g}-{r.high:g} {r.unit}")


def test_guarded_biomarkers_are_never_listed():
    frame = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "time": [ANCHOR],
            "variable": ["ferritin"],
            "value": [-5.0],
            "unit": ["ng/mL"],
        }
    )
    assert implausible_values(frame, _patients()).empty
    assert {"ferritin", "hla_dr"} <= set(PLAUSIBLE_RANGES)


def test_implausible_values_stored_around_the_importer_are_found(engine):
    import_tables(engine, template_tables(), user="test")
    at = pd.Timestamp("2024-03-02 12:00")
    rows = pd.DataFrame(
        {
            "patient_id": "SYN-S01-0001",
            "time": [at, at + pd.Timedelta(minutes=1), at, at + pd.Timedelta(minutes=1)],
            "variable": ["creatinine", "creatinine", "platelets", "platelets"],
            "value": [25.0, 25.001, 0.0, -0.001],  # inside, outside, inside, outside
            "unit": ["mg/dL", "mg/dL", "10^3/uL", "10^3/uL"],
        }
    )
    drug = pd.DataFrame(
        {
            "patient_id": "SYN-S01-0001",
            "drug": ["norepinephrine", "norepinephrine"],
            "start": [at, at + pd.Timedelta(hours=2)],
            "stop": [at + pd.Timedelta(hours=1), at + pd.Timedelta(hours=3)],
            "rate": [5.0, 5.01],  # inside, outside (mcg/kg/min)
            "unit": "mcg/kg/min",
        }
    )
    with engine.begin() as conn:
        db.bulk_insert(conn, db.observations, rows)
        db.bulk_insert(conn, db.infusions, drug)
    report = issue_list(engine)
    bad = report.issues[report.issues["rule"] == "implausible_value"]
    assert sorted(bad["value"].tolist()) == [-0.001, 5.01, 25.001]
    assert sorted(bad["variable"]) == ["creatinine", "norepinephrine", "platelets"]
    assert set(bad["study_day"]) == {2}
    # rows written around the importer: their arrival is unknown, and the report says so
    assert not report.arrivals_known
    assert "arrival times unknown" in report.notes[0]


# --- rule: late entries -------------------------------------------------------------------------


def _arrived(imported_at, *, day=9, import_id=2, first_import_id=1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1"],
            "time": [ANCHOR + pd.Timedelta(days=day - 1, hours=2)],
            "variable": ["creatinine"],
            "value": [1.2],
            "unit": ["mg/dL"],
            "import_id": [import_id],
            "imported_at": [imported_at],
            "first_import_id": [first_import_id],
        }
    )


def test_late_entry_boundary_is_the_grace_after_the_window_closed():
    limit = ANCHOR + pd.Timedelta(days=9) + pd.Timedelta(hours=LATE_ENTRY_GRACE_HOURS)
    assert late_entries(_arrived(limit), _patients()).empty  # exactly the grace: not late
    late = late_entries(_arrived(limit + pd.Timedelta(seconds=1)), _patients())
    (row,) = late.to_dict("records")
    assert (row["rule"], row["form"], row["variable"], row["value"]) == (
        "late_entry",
        "renal",
        "creatinine",
        1.2,
    )
    assert row["study_day"] == 9
    assert "import 2" in row["detail"]
    assert "3.0 days after the endpoint window closed" in (row["detail"])


def test_late_entry_needs_a_value_inside_the_window_from_a_later_import():
    much_later = ANCHOR + pd.Timedelta(days=60)
    assert late_entries(_arrived(much_later, day=10), _patients()).empty  # after the window
    assert late_entries(_arrived(much_later, day=0), _patients()).empty  # before day 1
    assert late_entries(_arrived(much_later, import_id=1), _patients()).empty  # first import
    assert len(late_entries(_arrived(much_later, day=1), _patients())) == 1


def test_late_entries_from_a_real_append_import(engine):
    import_tables(engine, template_tables(), user="test")
    batch = pd.DataFrame(
        {
            "patient_id": ["SYN-S01-0001", "SYN-S01-0001"],
            # day 3 (inside the window) and day 12 (after it); imported now, years later
            "time": ["2024-03-03 20:00", "2024-03-12 20:00"],
            "variable": ["creatinine", "creatinine"],
            "value": ["2.1", "2.2"],
            "unit": ["mg/dL", "mg/dL"],
            "source": ["lab-feed", "lab-feed"],
        }
    )
    result = import_tables(engine, {"observations": batch}, user="test", append=True)
    report = issue_list(engine)
    assert report.arrivals_known
    late = report.issues[report.issues["rule"] == "late_entry"]
    assert late[["patient_id", "variable", "value", "study_day"]].values.tolist() == [
        ["SYN-S01-0001", "creatinine", 2.1, 3]
    ]
    assert f"import {result.import_id}" in late["detail"].iloc[0]
    assert late["severity"].iloc[0] == "medium"


# --- summary and recruitment --------------------------------------------------------------------


def test_site_summary_counts_expected_received_imputed_and_queries():
    patients = pd.concat(
        [
            _patients(),
            _patients(patient_id="P2", site_id="S2", anchor_time=ANCHOR + pd.Timedelta(days=30)),
        ]
    )
    daily = _daily(range(1, 4), missing={2: {"liver"}, 3: {"liver", "cns"}})
    cutoff = ANCHOR + pd.Timedelta(days=3)  # days 1-3 of P1 ended; P2 has not started
    cells = organ_days(patients, daily, cutoff)
    assert len(cells) == 3 * 6
    queries = pd.DataFrame({"site_id": ["S1", "S1", "S2"], "status": ["open", "answered", "open"]})
    issues = pd.DataFrame({"site_id": ["S1"]})
    s = site_summary(patients, cells, queries, issues).set_index("site_id")
    assert s.loc["S1", "patients"] == 1
    assert s.loc["S1", "expected_organ_days"] == 18
    assert s.loc["S1", "received_organ_days"] == 15
    assert s.loc["S1", "imputed_components"] == 3
    assert s.loc["S1", "received_pct"] == pytest.approx(100 * 15 / 18)
    assert s.loc["S1", "received_pct_liver"] == pytest.approx(100 / 3)
    assert (s.loc["S1", "open_queries"], s.loc["S1", "answered_queries"]) == (1, 1)
    assert s.loc["S1", "issues"] == 1
    # nothing due yet at S2: no percentage (never a silent 100 %)
    assert s.loc["S2", "expected_organ_days"] == 0
    assert np.isnan(s.loc["S2", "received_pct"])
    assert s.loc["S2", "open_queries"] == 1


def test_a_day_without_a_stored_row_is_neither_received_nor_imputed():
    cells = organ_days(_patients(), _daily([1]), ANCHOR + pd.Timedelta(days=2))
    day2 = cells[cells["study_day"] == 2]
    assert len(day2) == 6
    assert not day2["received"].any()
    assert not day2["imputed"].any()


def test_recruitment_by_week_starts_weeks_on_monday_and_fills_empty_weeks():
    # 2024-03-03 is a Sunday, 2024-03-04 a Monday
    at = pd.to_datetime(
        ["2024-03-03 23:59", "2024-03-04 00:00", "2024-03-04 10:00", "2024-03-20 00:00"]
    )
    patients = pd.DataFrame(
        {"patient_id": list("abcd"), "site_id": ["S1", "S1", "S2", "S1"], "randomised_at": at}
    )
    rec = recruitment_by_week(patients)
    got = {(r.site_id, str(r.week_start.date())): r.randomised for r in rec.itertuples()}
    assert got == {
        ("S1", "2024-02-26"): 1,
        ("S1", "2024-03-04"): 1,
        ("S1", "2024-03-11"): 0,
        ("S1", "2024-03-18"): 1,
        ("S2", "2024-02-26"): 0,
        ("S2", "2024-03-04"): 1,
        ("S2", "2024-03-11"): 0,
        ("S2", "2024-03-18"): 0,
    }


def test_the_summary_of_the_stored_template(engine):
    import_tables(engine, template_tables(), user="test")
    patients = review_patients(engine)
    with engine.connect() as conn:
        daily = load_endpoint_daily(conn, rules_key=SofaRules().key(), last_day=9)
    from core.repository import load_data_cutoff

    cells = organ_days(patients, daily, load_data_cutoff(engine))
    s = site_summary(patients, cells, load_queries(engine), issue_list(engine).issues)
    assert s["site_id"].tolist() == ["SYN-S01", "SYN-S02"]
    assert s["patients"].tolist() == [2, 1]
    # cut-off 2024-03-08 03:00. SYN-S01: patient 1 (anchor 03-01 08:00) days 1-6 due, charted
    # days 1-3; patient 2 (anchor 03-02 12:00, died on day 4) days 1-3 due and charted.
    # SYN-S02: patient 3 (anchor 03-05 20:00) days 1-2 due and charted. Six organs a day.
    assert s["expected_organ_days"].tolist() == [(6 + 3) * 6, 2 * 6]
    assert s["received_organ_days"].tolist() == [(3 + 3) * 6, 2 * 6]
    assert s["received_pct"].round(1).tolist() == [66.7, 100.0]


# --- the review never reads the randomisation --------------------------------------------------


def test_no_review_code_path_reads_the_randomisation(engine):
    import_tables(engine, template_tables(), user="test")
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement.lower())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        report = issue_list(engine, sofa_rules=SofaRules(), endpoint_rules=EndpointRules())
        patients = review_patients(engine)
        review_status(engine, patients)
        load_queries(engine)
        recruitment_by_week(patients)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(seen) > 5
    assert not [s for s in seen if "randomisation" in s]
    assert "arm" not in report.issues.columns


def test_arrival_imports_map_each_row_to_its_import(engine):
    from core.review.issues import arrival_imports, load_late_candidates

    first = import_tables(engine, template_tables(), user="test")

    def batch(times: list[str]) -> dict[str, pd.DataFrame]:
        n = len(times)
        return {
            "observations": pd.DataFrame(
                {
                    "patient_id": [P3] * n,
                    "time": times,
                    "variable": ["creatinine"] * n,
                    "value": ["1.0"] * n,
                    "unit": ["mg/dL"] * n,
                    "source": ["lab-feed"] * n,
                }
            )
        }

    second = import_tables(engine, batch(["2024-03-07 01:00", "2024-03-07 02:00"]), append=True)
    third = import_tables(engine, batch(["2024-03-07 03:00"]), append=True)
    with engine.connect() as conn:
        batches = arrival_imports(conn, db.observations)
        rows, known = load_late_candidates(conn)
    assert batches["import_id"].tolist() == [first.import_id, second.import_id, third.import_id]
    assert (batches["last_id"] - batches["first_id"] + 1).tolist() == [72, 2, 1]
    assert known
    got = rows.sort_values("time")[["import_id", "first_import_id"]].values.tolist()
    assert got == [
        [second.import_id, first.import_id],
        [second.import_id, first.import_id],
        [third.import_id, first.import_id],
    ]
