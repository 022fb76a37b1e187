"""The study-day rule (core.time, docs/clinical.md 1.5): one implementation, and every day in
the project follows ``SofaRules.study_day``: SOFA days, the endpoint's death day, biomarker
days."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.data.keys import Context
from components.data.patient import patient_view
from components.server.auth import Principal, Role
from components.server.context import bare_app
from core import db, io
from core import repository as repo
from core.rules import SofaRules
from core.time import day_start_ns, study_day, study_day_ns
from settings import Settings

ROLLING = SofaRules()
CALENDAR = SofaRules(study_day="calendar_date")
ANCHOR = pd.Timestamp("2024-03-05 20:00")
#: post-baseline biomarkers are visible to unblinded roles only (components.blinding)
STATISTICIAN = Principal("stat", Role.STATISTICIAN)


@pytest.mark.parametrize(
    ("time", "rolling", "calendar"),
    [
        ("2024-03-05 20:00", 1, 1),  # the anchor itself: day 1 on both clocks
        ("2024-03-05 23:59:59", 1, 1),
        ("2024-03-06 00:00", 1, 2),  # midnight: a new calendar day, still rolling day 1
        ("2024-03-06 19:59:59.999999", 1, 2),
        ("2024-03-06 20:00", 2, 2),  # exactly 24 h: rolling day 2 (half-open days)
        ("2024-03-05 19:59:59", 0, 1),  # before the anchor: day 0 (calendar: same date)
        ("2024-03-04 19:00", -1, 0),  # 25 h before: rolling day -1
    ],
)
def test_day001_boundaries_on_both_clocks(time: str, rolling: int, calendar: int) -> None:
    t = pd.Series([pd.Timestamp(time)])
    assert study_day(t, ANCHOR, rules=ROLLING).tolist() == [rolling]
    assert study_day(t, ANCHOR, rules=CALENDAR).tolist() == [calendar]


def test_day002_missing_time_or_anchor_is_na_never_a_number() -> None:
    t = pd.Series([pd.NaT, pd.Timestamp("2024-03-06 01:00")], index=[7, 9])
    out = study_day(t, pd.Series([ANCHOR, pd.NaT], index=[7, 9]))
    assert out.index.tolist() == [7, 9]
    assert str(out.dtype) == "Int64"
    assert out.isna().tolist() == [True, True]


def test_day003_day_start_inverts_the_rule() -> None:
    anchors = pd.Series([ANCHOR, pd.Timestamp("2024-01-01 00:00")]).to_numpy("datetime64[ns]")
    a_ns = anchors.view("int64")
    for rules in (ROLLING, CALENDAR):
        for day in (1, 2, 9):
            start = day_start_ns(a_ns, day, rules)
            assert study_day_ns(start, a_ns, rules).tolist() == [day, day]
            assert study_day_ns(start - 1, a_ns, rules).tolist() == [day - 1, day - 1]


def _tables() -> dict[str, pd.DataFrame]:
    """The template tables plus one biomarker sample of SYN-S02-0003 after midnight."""
    tables = io.template_tables()
    extra = pd.DataFrame(
        {
            "patient_id": ["SYN-S02-0003"],
            "time": [pd.Timestamp("2024-03-06 02:00")],
            "ferritin_ng_ml": [1500.0],
            "hla_dr_ab_per_cell": [4100.0],
        }
    )
    tables["biomarkers"] = pd.concat([tables["biomarkers"], extra], ignore_index=True)
    return tables


def _import(tmp_path: Path, rules: SofaRules) -> str:
    url = f"sqlite:///{tmp_path / (rules.study_day + '.sqlite')}"
    eng = db.make_engine(url)
    io.import_tables(eng, _tables(), user="test", rules=rules)
    eng.dispose()
    return url


def test_day004_calendar_date_moves_death_sofa_and_biomarker_days_together(
    tmp_path: Path,
) -> None:
    """Patient SYN-S01-0002: first dose 03-02 12:00, died 03-06 03:00 (rolling day 4, calendar
    day 5). Patient SYN-S02-0003: first dose 03-05 20:00, charted until 03-08 03:00 (rolling
    days 1–3, calendar days 1–4)."""
    template = _tables()
    cases = ((ROLLING, 4, [1, 2, 3], [0, 1]), (CALENDAR, 5, [1, 2, 3, 4], [1, 2]))
    for rules, death_day, p3_days, p3_bio_days in cases:
        url = _import(tmp_path, rules)
        eng = db.make_engine(url)
        pts = repo.load_patients(eng, rules=rules).set_index("patient_id")
        # the endpoint's death day (scored 24 from that day on) follows the rule
        assert pts.loc["SYN-S01-0002", "death_study_day"] == death_day
        # ... and so do the daily SOFA rows derived under the same rule
        daily = repo.load_daily_sofa(eng, rules_key=rules.key(), patient_ids=["SYN-S02-0003"])
        assert daily["study_day"].tolist() == p3_days
        obs = template["observations"]
        obs = obs[obs["patient_id"] == "SYN-S02-0003"]
        anchor = template["patients"].set_index("patient_id").loc["SYN-S02-0003", "anchor_time"]
        assert sorted(set(study_day(obs["time"], anchor, rules=rules))) == p3_days
        eng.dispose()

        # biomarker days on the patient page: the same clock (data layer, real database)
        settings = Settings(database_url=url, cache_dir=str(tmp_path / "cache"), sofa_rules=rules)
        with bare_app(settings).app_context():
            view = patient_view(Context.current(STATISTICIAN), "SYN-S02-0003")
        # samples 03-05 18:00 (2 h before the first dose: rolling day 0, but the dose's own
        # date: calendar day 1) and 03-06 02:00 (6 h after the dose: rolling day 1; the next
        # date: calendar day 2)
        assert view.biomarkers["study_day"].tolist() == p3_bio_days
