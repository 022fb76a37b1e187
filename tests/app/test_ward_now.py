"""The ward board's "now" view: the patients in the ICU at the ward's clock, all the user's
sites or one, SOFA over the last 24 hours; the choice is in the URL."""

from __future__ import annotations

import pandas as pd
import pytest

from components.data.keys import Context
from components.data.ward import board_at
from components.pages import ward
from components.server.auth import Principal, Role
from components.server.context import bare_app
from settings import Settings
from tests.app import conftest as app_conftest
from tests.app.test_ward_at import expected_census, stored  # noqa: F401 - fixture

demo_db_url = app_conftest.demo_db_url
NURSE = Principal("nurse", Role.CLINICIAN)
AT = "2022-06-01T08:00"


@pytest.fixture(scope="module")
def server(demo_db_url, tmp_path_factory):
    s = Settings(database_url=demo_db_url, cache_dir=str(tmp_path_factory.mktemp("now")), clock=AT)
    return bare_app(s)


def test_now001_all_sites_now_lists_the_census_with_last_24h_scores(server, stored):  # noqa: F811
    at = pd.Timestamp(AT)
    with server.test_request_context("/"):
        ctx = Context.current(NURSE)
        rows, count = ward.board_rows(ctx, ward.ALL_SITES, ward.NOW)
        board = board_at(ctx, at).set_index("patient_id")
    assert {r["patient_id"] for r in rows} == expected_census(stored, at)
    assert count == f"{len(rows)} patients in the ICU at 2022-06-01 08:00 UTC"
    for r in rows:
        b = board.loc[r["patient_id"]]
        assert r["sofa_total"] == (None if pd.isna(b["sofa_24h"]) else int(b["sofa_24h"]))
        assert r["status"] == "alive"
    # worst first
    changes = [r["change"] for r in rows if r["change"] is not None]
    assert changes == sorted(changes, reverse=True)


def test_now002_one_site_now_and_the_url(server, stored):  # noqa: F811
    at = pd.Timestamp(AT)
    site = next(iter(sorted(stored["patients"].loc[list(expected_census(stored, at)), "site_id"])))
    with server.test_request_context("/"):
        ctx = Context.current(NURSE)
        rows, count = ward.board_rows(ctx, site, ward.NOW)
    in_site = {
        p for p in expected_census(stored, at) if stored["patients"].loc[p, "site_id"] == site
    }
    assert {r["patient_id"] for r in rows} == in_site
    assert f"in the ICU of {site}" in count
    # now is the default: left out of the URL; any other view is written
    assert ward.ward_search(site, ward.NOW, None) == f"?site={site}"
    assert ward.ward_search(site, ward.LATEST, "SYN") == f"?site={site}&day=latest&q=SYN"
    assert ward.ward_search(site, ward.NOW, None, departures=True) == f"?site={site}&dep=1"


def test_now003_all_sites_by_study_day_is_every_site_board(server):
    with server.test_request_context("/"):
        ctx = Context.current(NURSE)
        rows, _count = ward.board_rows(ctx, ward.ALL_SITES, "3")
        per_site = [ward.cached_rows(ctx, s, 3) for s, _n in ward.site_counts(ctx)]
    assert len(rows) == sum(len(r) for r in per_site) == 276


def test_now004_departures_of_the_last_24_h(server, stored):  # noqa: F811
    """The switch adds the patients who left the ICU in (at - 24 h, at], greyed, with the event
    and its time; patients still (or again) in the ICU are not departures. Probed an hour after
    a discharge and an hour after a death in the ICU (computed here from the stored stays)."""
    stays = stored["stays"]
    death = stays["patient_id"].map(stored["patients"]["death_time"])
    in_stay = (stays["start"] <= death) & (stays["stop"].isna() | (stays["stop"] >= death))
    probes = [
        stays["stop"].dropna().sort_values().iloc[len(stays) // 2] + pd.Timedelta(hours=1),
        death[in_stay].sort_values().iloc[int(in_stay.sum()) // 2] + pd.Timedelta(hours=1),
    ]
    seen = 0
    for at in probes:
        lo = at - pd.Timedelta(hours=24)
        left = stays[(stays["stop"] > lo) & (stays["stop"] <= at)]["patient_id"]
        died = stays[in_stay & (death > lo) & (death <= at)]["patient_id"]
        expected = (set(left) | set(died)) - expected_census(stored, at)
        s = Settings(
            database_url=server.extensions["immunosep"]["settings"].database_url,
            cache_dir=str(server.extensions["immunosep"]["settings"].cache_dir),
            clock=at.isoformat(),
        )
        with bare_app(s).test_request_context("/"):
            ctx = Context.current(NURSE)
            rows, count = ward.board_rows(ctx, ward.ALL_SITES, ward.NOW, departures=True)
        gone = [r for r in rows if r.get("departed")]
        assert {r["patient_id"] for r in gone} == expected
        seen += len(gone)
        assert count.endswith(f"; {len(gone)} left in the last 24 h")
        for r in gone:
            assert r["sofa_total"] is None
            assert r["n_alerts"] == 0
            assert r["alerts"].startswith(("died ", "left the ICU "))
            assert r["died"] == (r["patient_id"] in set(died))
        # the departures come after the patients in the ICU
        flags = [bool(r.get("departed")) for r in rows]
        assert flags == sorted(flags)
    assert seen >= 2  # one discharge, one death at least
