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
    assert ward.ward_search(site, ward.NOW, None) == f"?site={site}&day=now"
    assert ward.ward_search(site, ward.LATEST, "SYN") == f"?site={site}&q=SYN"


def test_now003_all_sites_by_study_day_is_every_site_board(server):
    with server.test_request_context("/"):
        ctx = Context.current(NURSE)
        rows, _count = ward.board_rows(ctx, ward.ALL_SITES, "3")
        per_site = [ward.cached_rows(ctx, s, 3) for s, _n in ward.site_counts(ctx)]
    assert len(rows) == sum(len(r) for r in per_site) == 276
