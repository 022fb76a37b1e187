"""Live ward: the board checks the data version and sends rows again only after an import."""

from __future__ import annotations

import importlib
import shutil

import pandas as pd
import pytest
from dash import no_update

from components.data.keys import Context
from components.pages import ward
from core.db import make_engine
from core.io import import_tables
from settings import Settings
from tests.app import conftest as app_conftest

demo_db_url = app_conftest.demo_db_url


@pytest.fixture(scope="module")
def live_app(demo_db_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ward-live")
    db = tmp / "demo-copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {
            "DATABASE_URL": f"sqlite:///{db}",
            "CACHE_DIR": str(tmp / "env-cache"),
        }.items():
            mp.setenv(k, v)
        app_module = importlib.import_module("app")
    settings = Settings(
        database_url=f"sqlite:///{db}", cache_dir=str(tmp / "cache"), secret_key="k", mode="demo"
    )
    return app_module.create_app(settings), f"sqlite:///{db}"


def test_live001_rows_are_resent_only_after_an_import(live_app):
    app, url = live_app
    with app.server.test_request_context("/"):
        version = Context.current().version
        assert ward.refresh_if_new_data(1, version, "SYN-S01", "latest") == (
            no_update,
            no_update,
            no_update,
        )
        before = {r["patient_id"]: r for r in ward.refresh_if_new_data(1, "old", "SYN-S01", "3")[0]}
    # an append import: one new creatinine for a patient already known, on study day 3
    engine = make_engine(url)
    pid = "SYN-01-0001"
    anchor = pd.read_sql(
        f"SELECT anchor_time FROM patients WHERE patient_id = '{pid}'",
        engine,
        parse_dates=["anchor_time"],
    )["anchor_time"].iloc[0]
    obs = pd.DataFrame(
        {
            "patient_id": [pid],
            "time": [anchor + pd.Timedelta(hours=50)],
            "variable": ["creatinine"],
            "value": [6.2],
            "unit": ["mg/dL"],
            "source": ["lab"],
        }
    )
    result = import_tables(engine, {"observations": obs}, user="lab-feed")
    engine.dispose()
    assert result.status == "imported"
    with app.server.test_request_context("/"):
        rows, count, new_version = ward.refresh_if_new_data(2, version, "SYN-S01", "3")
    assert new_version != version
    after = {r["patient_id"]: r for r in rows}
    assert count == f"{len(rows)} patients"
    assert after[pid]["renal"] == 4  # creatinine >= 5.0 mg/dL scores 4
    assert before[pid]["renal"] != 4
    assert {p: r for p, r in after.items() if p != pid} == {
        p: r for p, r in before.items() if p != pid
    }
