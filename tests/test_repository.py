"""Read functions of core.repository: values, blinding (arm only via load_arms), indexes."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db, io
from core import repository as repo
from core.exceptions import UnknownPatientError
from core.rules import SofaRules

P1, P2, P3 = "SYN-S01-0001", "SYN-S01-0002", "SYN-S02-0003"


@pytest.fixture
def engine(sqlite_url: str) -> sa.Engine:
    eng = db.make_engine(sqlite_url)
    io.import_tables(eng, io.template_tables(), user="bob")
    yield eng
    eng.dispose()


@pytest.fixture
def any_engine(any_url: str) -> sa.Engine:
    eng = db.make_engine(any_url)
    io.import_tables(eng, io.template_tables(), user="bob")
    yield eng
    eng.dispose()


def test_repo001_patients_with_death_day_and_baseline_biomarkers(engine: sa.Engine) -> None:
    pts = repo.load_patients(engine).set_index("patient_id")
    assert list(pts.index) == [P1, P2, P3]
    # P2: anchor 2024-03-02 12:00, death 2024-03-06 03:00 -> 87 h -> study day 4
    assert pts.loc[P2, "death_study_day"] == 4
    assert pd.isna(pts.loc[P1, "death_study_day"])
    assert str(pts["death_study_day"].dtype) == "Int64"
    # first biomarker sample: P1 ferritin 5200 without HLA-DR (its later sample has 9000)
    assert pts.loc[P1, "ferritin_ng_ml"] == 5200
    assert np.isnan(pts.loc[P1, "hla_dr_ab_per_cell"])
    assert pts.loc[P2, "hla_dr_ab_per_cell"] == 3800
    assert pts.loc[P3, "weight_kg"] == 92
    assert pts["anchor_time"].dtype == "datetime64[ns]"
    assert pts.loc[P1, "mechanical_ventilation"] is True or pts.loc[P1, "mechanical_ventilation"]


def test_repo002_site_filter(engine: sa.Engine) -> None:
    assert repo.load_patients(engine, site_ids=["SYN-S02"])["patient_id"].tolist() == [P3]
    assert repo.load_patients(engine, site_ids=[]).empty
    assert repo.load_sites(engine)["site_id"].tolist() == ["SYN-S01", "SYN-S02"]


def test_repo003_arm_only_from_load_arms(engine: sa.Engine) -> None:
    arms = repo.load_arms(engine)
    assert arms.columns.tolist() == ["patient_id", "arm"]
    assert arms["arm"].tolist() == ["precision", "placebo", "precision"]
    frames = [
        repo.load_sites(engine),
        repo.load_patients(engine),
        repo.load_daily_sofa(engine, rules_key=SofaRules().key()),
        repo.load_provenance(engine, P1, rules_key=SofaRules().key()),
        repo.load_biomarkers(engine),
        repo.load_observations(engine),
        repo.load_adverse_events(engine),
        repo.load_disposition(engine),
        repo.load_import_log(engine),
        repo.load_audit(engine),
        *vars(repo.load_patient_raw(engine, P1)).values(),
    ]
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            assert "arm" not in frame.columns
            assert not frame.isin(["precision", "placebo"]).any().any()
    # only load_arms' source mentions the randomisation table
    users = [
        name
        for name, fn in inspect.getmembers(repo, inspect.isfunction)
        if "db.randomisation" in inspect.getsource(fn)
    ]
    assert users == ["load_arms"]


def test_repo004_patient_raw_and_unknown_patient(engine: sa.Engine) -> None:
    raw = repo.load_patient_raw(engine, P2)
    assert len(raw.observations) == 24
    assert raw.observations["time"].is_monotonic_increasing
    assert raw.infusions["drug"].tolist() == ["dobutamine"]
    assert raw.episodes["kind"].tolist() == ["invasive_ventilation", "sedation"]
    assert pd.isna(raw.episodes["stop"].iloc[0])
    assert raw.doses["route"].tolist() == ["IV"]
    assert raw.adverse_events["pt"].tolist() == ["Atrial fibrillation"]
    with pytest.raises(UnknownPatientError, match="SYN-S09-0000"):
        repo.load_patient_raw(engine, "SYN-S09-0000")


def test_repo005_daily_sofa_filters(engine: sa.Engine) -> None:
    key = SofaRules().key()
    all_days = repo.load_daily_sofa(engine, rules_key=key)
    assert len(all_days) == 9
    assert all_days[["patient_id", "study_day"]].duplicated().sum() == 0
    some = repo.load_daily_sofa(engine, rules_key=key, patient_ids=[P3, P2])
    assert some["patient_id"].unique().tolist() == [P2, P3]
    assert repo.load_daily_sofa(engine, rules_key="other-rules").empty
    assert some["study_day"].dtype == "int64"


def test_repo005b_daily_sofa_of_one_site(any_engine: sa.Engine) -> None:
    key = SofaRules().key()
    site1 = repo.load_daily_sofa(any_engine, rules_key=key, site_id="SYN-S01")
    assert sorted(site1["patient_id"].unique()) == [P1, P2]
    assert len(site1) == len(repo.load_daily_sofa(any_engine, rules_key=key, patient_ids=[P1, P2]))
    assert repo.load_daily_sofa(any_engine, rules_key=key, site_id="SYN-S99").empty


def test_repo005c_compact_cohort_daily_matches_the_full_table(
    any_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SofaRules().key()
    t = db.daily_sofa
    with any_engine.begin() as conn:  # one imputed flag, and two flags of unknown provenance
        conn.execute(
            sa.update(t)
            .where(t.c.patient_id == P2, t.c.study_day == 2)
            .values(respiration_imputed=True)
        )
        conn.execute(
            sa.update(t)
            .where(t.c.patient_id == P1, t.c.study_day == 1)
            .values(liver_imputed=None, renal_imputed=None)
        )
    monkeypatch.setattr(repo, "_STREAM_ROWS", 2)  # several chunks, patients split across them
    full = repo.load_daily_sofa(any_engine, rules_key=key)
    compact = repo.load_cohort_daily(any_engine, rules_key=key)
    assert compact.columns.tolist() == list(repo.COHORT_DAILY_COLUMNS)
    assert [str(t) for t in compact.dtypes] == ["object", "int16", "float32", "int8"]
    assert compact["patient_id"].tolist() == full["patient_id"].tolist()
    assert compact["study_day"].tolist() == full["study_day"].tolist()
    np.testing.assert_array_equal(
        compact["sofa_total"].to_numpy(dtype=float), full["sofa_total"].to_numpy(dtype=float)
    )
    by_day = compact.set_index(["patient_id", "study_day"])["n_components_imputed"]
    assert by_day[(P2, 2)] == 1
    assert by_day[(P1, 1)] == 2  # a NULL flag counts as imputed, never as measured
    assert by_day.sum() == 3
    assert repo.load_cohort_daily(any_engine, rules_key="other-rules").empty


def test_repo005d_streamed_load_keeps_types_across_chunks(
    any_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SofaRules().key()
    whole = repo.load_daily_sofa(any_engine, rules_key=key)
    monkeypatch.setattr(repo, "_STREAM_ROWS", 2)
    chunked = repo.load_daily_sofa(any_engine, rules_key=key)
    pd.testing.assert_frame_equal(chunked, whole)


def test_repo006_logs_and_audit(engine: sa.Engine) -> None:
    log = repo.load_import_log(engine)
    assert log["user"].tolist() == ["bob"]
    assert log["status"].tolist() == ["imported"]
    first = repo.record_audit(
        engine, user="carol", role="monitor", action="view_patient", target=P1, detail=None
    )
    second = repo.record_audit(engine, user="dave", role="dsmb", action="unblind", target="all")
    assert second == first + 1
    audit = repo.load_audit(engine)
    assert audit["user"].tolist() == ["dave", "carol"]  # newest first
    assert audit["action"].tolist() == ["unblind", "view_patient"]
    assert audit["time"].dtype == "datetime64[ns]"


def test_repo007_disposition_and_biomarkers(engine: sa.Engine) -> None:
    disp = repo.load_disposition(engine)
    assert disp["screening_id"].tolist() == ["SCR-0001", "SCR-0002", "SCR-0003", "SCR-0004"]
    assert disp["patient_id"].isna().tolist() == [False, False, False, True]
    bio = repo.load_biomarkers(engine, patient_ids=[P1])
    assert bio["ferritin_ng_ml"].tolist() == [5200, 4300]


def _plan(engine: sa.Engine, stmt: sa.Select) -> str:
    compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return " | ".join(str(r[-1]) for r in rows)


def test_repo008_per_patient_reads_use_indexes(engine: sa.Engine) -> None:
    obs = db.observations
    plan = _plan(engine, sa.select(obs).where(obs.c.patient_id == P1).order_by(obs.c.time))
    assert "USING INDEX ux_observations_patient_time_variable" in plan
    assert "SCAN observations" not in plan
    ds = db.daily_sofa
    plan = _plan(
        engine,
        sa.select(ds).where(ds.c.rules_key == "k", ds.c.patient_id.in_([P1, P2])),
    )
    assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan
    assert "SCAN daily_sofa" not in plan
    prov = db.sofa_provenance
    plan = _plan(engine, sa.select(prov).where(prov.c.patient_id == P1, prov.c.rules_key == "k"))
    assert "USING INDEX ix_sofa_provenance_patient_day" in plan
    pts = db.patients
    plan = _plan(engine, sa.select(pts).where(pts.c.site_id == "SYN-S01"))
    assert "USING INDEX ix_patients_site_id" in plan


@pytest.mark.postgres
def test_repo009_postgres_reads(postgres_url: str) -> None:
    eng = db.make_engine(postgres_url)
    io.import_tables(eng, io.template_tables())
    pts = repo.load_patients(eng).set_index("patient_id")
    assert pts.loc[P2, "death_study_day"] == 4
    assert pts.loc[P1, "ferritin_ng_ml"] == 5200
    raw = repo.load_patient_raw(eng, P1)
    assert raw.infusions["rate"].tolist() == pytest.approx([0.15, 0.05])
    assert repo.record_audit(eng, user="u", role="r", action="a") == 1
    assert repo.load_audit(eng)["user"].tolist() == ["u"]
    eng.dispose()


def test_repo020_bulk_provenance_equals_the_per_patient_reads(any_engine: sa.Engine) -> None:
    """load_provenance_days: each patient's own days, the same rows as load_provenance."""
    key = SofaRules().key()
    wanted = pd.Series([2, 3, 1], index=[P1, P1, P3])
    bulk = repo.load_provenance_days(any_engine, wanted, rules_key=key)
    one = [repo.load_provenance(any_engine, p, rules_key=key) for p in (P1, P3)]
    expected = pd.concat(
        [one[0][one[0]["study_day"].isin([2, 3])], one[1][one[1]["study_day"] == 1]],
        ignore_index=True,
    ).sort_values(["patient_id", "study_day", "organ"], ignore_index=True)
    assert len(bulk) == len(expected) > 0
    pd.testing.assert_frame_equal(
        bulk.reset_index(drop=True), expected[bulk.columns].reset_index(drop=True)
    )
    assert repo.load_provenance_days(any_engine, pd.Series(dtype=int), rules_key=key).empty
