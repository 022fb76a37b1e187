"""What changed on the ward board: for demo patients with a +2 organ rise the row's change
text names that organ, and its before/after values are the provenance values of those days."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from components.data.keys import Context
from components.data.patient import patient_view
from components.data.ward import site_counts, ward_board
from components.pages.patient import why_section
from components.pages.ward import ward_rows
from components.server.auth import Principal, Role
from components.server.context import bare_app
from core.concepts import CONCEPTS
from core.units import unit_key
from core.vocab import ORGAN_SHORT, Organ
from core.ward import CHANGE_VARIABLES, what_changed
from settings import Settings
from tests.app import conftest as app_conftest

demo_db_url = app_conftest.demo_db_url
CLINICIAN = Principal("nurse", Role.CLINICIAN)


@pytest.fixture(scope="module")
def server(demo_db_url, tmp_path_factory):
    settings = Settings(
        database_url=demo_db_url, cache_dir=str(tmp_path_factory.mktemp("ward-changes"))
    )
    return bare_app(settings)


def provenance_value(prov: pd.DataFrame, day: int, organ: str) -> tuple[str, float, str]:
    """(variable, value in the canonical unit, imputed) of one organ on one day, from the
    stored provenance (SI and kPa converted with the concept's factor)."""
    r = prov[(prov["study_day"] == day) & (prov["organ"] == organ)].iloc[0]
    factor = CONCEPTS[r["variable"]].units.get(unit_key(r["unit"]) or "", float("nan"))
    return r["variable"], float(r["value"]) * factor, bool(r["imputed"])


def test_wchg001_rise_of_two_names_the_organ_and_the_provenance_values(server):
    with server.app_context():
        ctx = Context.current(CLINICIAN)
        checked = 0
        for (site, _n), as_of in itertools.product(site_counts(ctx), (3, 4, 6)):
            board = ward_board(ctx, site, as_of)
            risen = board[board["worst_rise_organ"].notna()]
            for _, row in risen.iterrows():
                organ = Organ(row["worst_rise_organ"])
                day = int(row["study_day"])
                view = patient_view(ctx, row["patient_id"])
                first = row["changes"][0]
                assert first.startswith(f"{ORGAN_SHORT[organ]} "), (row["patient_id"], first)
                changes = what_changed(view.provenance, day=day, daily=view.daily)
                top = changes.iloc[0]
                assert top["text"] == first
                assert top["score_after"] - top["score_before"] >= 2
                for side, d in (("before", day - 1), ("after", day)):
                    variable, value, imputed = provenance_value(view.provenance, d, organ.value)
                    shown = top[f"value_{side}"]
                    if imputed:
                        assert pd.isna(shown)
                        assert "not measured" in first
                        continue
                    daily = view.daily.set_index("study_day").loc[d]
                    column = CHANGE_VARIABLES[variable].daily_column
                    if variable in ("pao2", "urine_output") or pd.isna(value):
                        # P/F and urine per 24 h (or a drug rate per kg) from the same day's
                        # daily row
                        assert shown == pytest.approx(float(daily[column])), row["patient_id"]
                    else:
                        assert shown == pytest.approx(value, rel=1e-6), row["patient_id"]
                checked += 1
            # the grid rows: the first change in the Alerts cell, all in the tooltip
            for r in ward_rows(board):
                texts = board.set_index("patient_id").loc[r["patient_id"], "changes"]
                assert r["why"] == (texts[0] if texts else "")
                assert all(t in r["alerts_tip"] for t in texts)
        assert checked >= 5


def test_wchg002_patient_page_lists_the_same_changes(server):
    with server.app_context():
        ctx = Context.current(CLINICIAN)
        site = site_counts(ctx)[0][0]
        board = ward_board(ctx, site, 5)
        row = board[board["changes"].map(len) > 0].iloc[0]
        view = patient_view(ctx, row["patient_id"])
        html = str(why_section(view, int(row["study_day"])).to_plotly_json())
        assert f"What changed since day {int(row['study_day']) - 1}" in html
        for text in row["changes"]:
            assert text in html
