"""One truth per number: the ward board and the patient page agree on every demo patient's
primary-endpoint status, decrease and day of death (both come from core.endpoints)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from components.data.cohort import visible_patients
from components.data.keys import Context
from components.data.patient import patient_view
from components.data.ward import site_counts, ward_board
from components.server.auth import Principal, Role
from components.server.context import bare_app
from core.ward import EndpointStatus
from settings import Settings
from tests.app import conftest as app_conftest

demo_db_url = app_conftest.demo_db_url
CLINICIAN = Principal("nurse", Role.CLINICIAN)


@pytest.fixture(scope="module")
def server(demo_db_url, tmp_path_factory):
    settings = Settings(
        database_url=demo_db_url, cache_dir=str(tmp_path_factory.mktemp("ward-truth"))
    )
    return bare_app(settings)


def test_wtr001_ward_and_patient_page_agree_on_every_patient(server):
    with server.app_context():
        ctx = Context.current(CLINICIAN)
        boards = [ward_board(ctx, site, None) for site, _n in site_counts(ctx)]
        board = pd.concat(boards, ignore_index=True).set_index("patient_id")
        assert len(board) == len(visible_patients(ctx)) == 276
        checked = 0
        for pid, row in board.iterrows():
            ep = patient_view(ctx, pid).endpoint
            status = row["endpoint_status"]
            if status in (EndpointStatus.MET, EndpointStatus.NOT_MET):
                assert (status == EndpointStatus.MET) == bool(ep["responder"]), pid
                assert math.isclose(row["endpoint_decrease"], ep["sofa_decrease"]), pid
                checked += 1
            else:
                # the demo's data cut-off is after every patient's day 9: all are final
                assert status == EndpointStatus.NOT_EVALUABLE, (pid, status)
            death = patient_view(ctx, pid).patient["death_study_day"]
            assert (pd.isna(death) and pd.isna(row["death_study_day"])) or int(death) == int(
                row["death_study_day"]
            ), pid
    assert checked >= 270
