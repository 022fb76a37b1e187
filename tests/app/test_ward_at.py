"""The ward at a clock time: who is in the ICU (the stays), SOFA over the last 24 h from the
same engine as the daily score, the replay clock, and GET /api/v1/ward (role-aware)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from components.data.keys import Context
from components.data.ward import board_at, clock_now
from components.server.auth import Principal, Role
from components.server.context import bare_app
from core.db import make_engine
from core.repository import load_daily_sofa, load_icu_stays, load_patients
from core.rules import SofaRules
from core.vocab import ORGANS, SOFA_COLUMNS
from settings import Settings
from tests.app import conftest as app_conftest
from tests.app import test_blinding as blinding

demo_db_url = app_conftest.demo_db_url
login_settings = blinding.login_settings
login_app = blinding.login_app
NURSE = Principal("nurse", Role.CLINICIAN)


@pytest.fixture(scope="module")
def stored(demo_db_url):
    eng = make_engine(demo_db_url)
    out = {
        "stays": load_icu_stays(eng),
        "patients": load_patients(eng).set_index("patient_id"),
        "daily": load_daily_sofa(eng, rules_key=SofaRules().key()),
    }
    eng.dispose()
    return out


@pytest.fixture(scope="module")
def server(demo_db_url, tmp_path_factory):
    s = Settings(database_url=demo_db_url, cache_dir=str(tmp_path_factory.mktemp("ward-at")))
    return bare_app(s)


def expected_census(stored, at: pd.Timestamp) -> set[str]:
    """In the ICU and alive at `at`, from the stored stays (pandas, not the SQL rule)."""
    s, p = stored["stays"], stored["patients"]
    inside = s[(s["start"] <= at) & (s["stop"].isna() | (s["stop"] > at))]["patient_id"]
    death = p["death_time"].reindex(inside)
    return set(inside[(death.isna() | (death > at)).to_numpy()])


def test_wat001_board_rows_are_the_census_at_every_clock_time(server, stored):
    s = stored["stays"]
    times = pd.date_range(s["start"].min(), s["stop"].max(), periods=9)[1:-1]
    sizes = []
    with server.app_context():
        ctx = Context.current(NURSE)
        for at in times:
            board = board_at(ctx, at)
            assert set(board["patient_id"]) == expected_census(stored, at), at
            sizes.append(len(board))
    assert max(sizes) > 0


def test_wat002_a_patient_leaves_the_board_at_discharge_and_at_death(server, stored):
    s, p = stored["stays"], stored["patients"]
    dead = s.merge(p["death_time"], left_on="patient_id", right_index=True)
    died_in_icu = dead[dead["stop"].notna() & (dead["stop"] == dead["death_time"])].iloc[0]
    left_alive = dead[dead["stop"].notna() & (dead["stop"] != dead["death_time"])].iloc[0]
    with server.app_context():
        ctx = Context.current(NURSE)
        for stay in (died_in_icu, left_alive):
            just_before = stay["stop"] - pd.Timedelta(seconds=1)
            assert stay["patient_id"] in set(board_at(ctx, just_before)["patient_id"])
            assert stay["patient_id"] not in set(board_at(ctx, stay["stop"])["patient_id"])


def test_wat003_last_24h_sofa_equals_the_daily_score_on_a_day_boundary(server, stored):
    """At anchor + k·24 h the last 24 hours ARE study day k: the rolling board (a 7-day
    window with another anchor) must give the stored daily score of day k, organ by organ."""
    daily = stored["daily"].set_index(["patient_id", "study_day"])
    p = stored["patients"]
    checked = 0
    with server.app_context():
        ctx = Context.current(NURSE)
        for pid in p.index[:60]:
            for k in (2, 4, 6):
                at = p.loc[pid, "anchor_time"] + pd.Timedelta(days=k)
                board = board_at(ctx, at).set_index("patient_id")
                if pid not in board.index or (pid, k) not in daily.index:
                    continue
                row, day = board.loc[pid], daily.loc[(pid, k)]
                if pd.isna(row["sofa_24h"]):
                    continue
                assert row["sofa_24h"] == day["sofa_total"], (pid, k)
                for o in ORGANS:
                    assert row[SOFA_COLUMNS[o]] == day[SOFA_COLUMNS[o]], (pid, k, o)
                # the clock time itself opens study day k + 1 (core.time: half-open days)
                assert row["study_day"] == k + 1
                checked += 1
    assert checked >= 60


def test_wat004_admitted_within_24h_has_no_change_and_no_rise_alert(server, stored):
    s = stored["stays"]
    first = s.sort_values("start").iloc[len(s) // 2]
    at = first["start"] + pd.Timedelta(hours=12)
    with server.app_context():
        board = board_at(Context.current(NURSE), at).set_index("patient_id")
    row = board.loc[first["patient_id"]]
    assert pd.isna(row["sofa_24h_change"])
    assert not any(a.startswith(("SOFA +", "new vasopressor")) for a in row["alerts"])


def test_wat005_replay_clock_maps_the_present_into_the_trial(demo_db_url, tmp_path, stored):
    s = Settings(database_url=demo_db_url, cache_dir=str(tmp_path), clock="replay")
    with bare_app(s).app_context():
        ctx = Context.current(NURSE)
        a = clock_now(ctx, real_now=pd.Timestamp("2026-12-02 09:15"))
        b = clock_now(ctx, real_now=pd.Timestamp("2026-12-02 21:15"))
        c = clock_now(ctx, real_now=pd.Timestamp("2026-12-03 09:15"))
    span = (stored["stays"]["start"].min(), stored["stays"]["stop"].max())
    assert span[0].floor("D") <= a < span[1] + pd.Timedelta(days=1)
    assert (b - a, c - a) == (pd.Timedelta(hours=12), pd.Timedelta(days=1))
    assert a.strftime("%H:%M") == "09:15"
    fixed = Settings(database_url=demo_db_url, cache_dir=str(tmp_path), clock="2022-06-01T08:00")
    with bare_app(fixed).app_context():
        assert clock_now(Context.current(NURSE)) == pd.Timestamp("2022-06-01 08:00")


def test_wat006_api_ward_is_role_aware_and_validates_at(login_app, stored):
    client = login_app.server.test_client()
    blinding.login(client, "clin")  # clinician of SYN-S01 only
    s = stored["stays"]
    site_patients = set(stored["patients"].index[stored["patients"]["site_id"] == "SYN-S01"])
    busy = s[s["patient_id"].isin(site_patients)].iloc[0]
    at = busy["start"] + pd.Timedelta(hours=30)
    resp = client.get(f"/api/v1/ward?at={quote(at.isoformat())}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    body = resp.get_json()
    ids = {r["patient_id"] for r in body["patients"]}
    assert ids == expected_census(stored, at) & site_patients
    assert busy["patient_id"] in ids
    row = next(r for r in body["patients"] if r["patient_id"] == busy["patient_id"])
    assert set(row) >= {
        "site_id", "icu_admission_time", "sofa_24h", "sofa_24h_change", "alerts",
        "data_quality", "phenotype", "study_day", "endpoint_status",
        *(SOFA_COLUMNS[o] for o in ORGANS),
    }  # fmt: skip
    assert "arm" not in row
    assert "group" not in row
    # a UTC offset is honoured: 09:00+01:00 is 08:00 UTC
    local = quote((at + pd.Timedelta(hours=1)).isoformat())
    plus = client.get(f"/api/v1/ward?at={local}%2B01:00")
    assert {r["patient_id"] for r in plus.get_json()["patients"]} == ids
    assert client.get("/api/v1/ward?site=SYN-S02").status_code == 404
    bad = client.get("/api/v1/ward?at=yesterday-ish")
    assert bad.status_code == 400
    assert "at=" in bad.get_json()["error"]


def test_wat010_default_site_is_the_busiest_at_the_clock(demo_db_url, tmp_path, stored):
    """With no site in the URL the board opens at the site with the most patients in the ICU
    at the clock; the picker says, per site, who is in the ICU and how many patients in all."""
    from components import ids
    from components.pages import ward as ward_page

    s, p = stored["stays"], stored["patients"]
    at = s["start"].sort_values().iloc[len(s) // 2] + pd.Timedelta(hours=1)
    in_icu = pd.Series(sorted(expected_census(stored, at))).map(p["site_id"]).value_counts()
    top = min(in_icu[in_icu == in_icu.max()].index)
    fixed = Settings(database_url=demo_db_url, cache_dir=str(tmp_path), clock=at.isoformat())
    app = bare_app(fixed)
    with app.test_request_context("/"):
        picker, chosen = (
            next(
                c
                for c in blinding.walk(json.loads(json.dumps(page, cls=PlotlyJSONEncoder)))
                if c["props"].get("id") == ids.WARD_SITE
            )
            for page in (ward_page.layout(), ward_page.layout(site="SYN-S02"))
        )
    assert picker["props"]["value"] == top
    print(f"\nbusiest at {at}: {top} ({in_icu.max()} in the ICU)")
    assert chosen["props"]["value"] == "SYN-S02"  # the URL's site wins
    labels = {o["value"]: o["label"] for o in picker["props"]["options"]}
    totals = p["site_id"].value_counts()
    for site, n in totals.items():
        assert labels[site] == f"{site} ({int(in_icu.get(site, 0))} in the ICU, {n} patients)"
    assert ward_page.busiest_site(["A", "B", "C"], {"B": 2, "C": 2}) == "B"
    assert ward_page.busiest_site(["A", "B"], {}) == "A"


def test_wat011_organ_legend_names_only_what_the_header_abbreviates():
    from components.pages import ward as ward_page

    keys = [ward_page.organ_key(o) for o in ORGANS]
    assert keys == [
        "Resp = Respiration",
        "Coag = Coagulation",
        "Liver",
        "CV = Cardiovascular",
        "CNS",
        "Renal",
    ]


def test_wat012_data_cell_names_the_organs_by_their_columns():
    from components.pages import ward as ward_page

    flags = ("coagulation not measured", "cns not measured", "weight missing")
    assert ward_page.data_flags_text(flags) == "not measured: Coag, CNS; weight missing"
    assert ward_page.data_flags_text(()) == ""
    rows = ward_page.ward_rows(
        pd.DataFrame(
            {
                "patient_id": ["P1"],
                "study_day": [3],
                "died": [False],
                "death_study_day": [pd.NA],
                "sofa_total": [5],
                "sofa_change_24h": [1],
                "phenotype": ["SIP"],
                "endpoint_status": ["on_track"],
                "endpoint_decrease": [2.0],
                "alerts": [()],
                "n_alerts": [0],
                "data_flags": [flags[:2]],
                **{SOFA_COLUMNS[o]: [1] for o in ORGANS},
            }
        )
    )
    assert rows[0]["data_flags"] == "not measured: Coag, CNS"
    assert rows[0]["data_flags_tip"] == "coagulation not measured; cns not measured"
