"""Append imports (new rows for known patients, idempotent) and closing open ICU stays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core.exceptions import DataValidationError
from core.io import import_tables, template_tables
from core.io.cli import main
from core.repository import icu_census, load_daily_sofa, load_icu_stays
from core.rules import SofaRules

OPEN = "SYN-S02-0003"  # the template's patient still in the ICU (stop empty)


@pytest.fixture
def engine(tmp_path):
    eng = db.make_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    import_tables(eng, template_tables(), user="test")
    yield eng
    eng.dispose()


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _batch(pid: str, at: str, value: float) -> dict[str, pd.DataFrame]:
    return {
        "observations": pd.DataFrame(
            {
                "patient_id": [pid],
                "time": [at],
                "variable": ["creatinine"],
                "value": [str(value)],
                "unit": ["mg/dL"],
                "source": ["lab-feed:991"],
            }
        )
    }


def test_append001_new_rows_for_a_known_patient_rescore_that_day(engine):
    pid = "SYN-S01-0001"  # anchor 2024-03-01 08:00: 2024-03-02 09:00 is study day 2
    before = load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=[pid])
    day2 = before.set_index("study_day").loc[2]
    n_obs = _count(engine, db.observations)
    result = import_tables(engine, _batch(pid, "2024-03-02 09:00", 5.2), append=True)
    assert result.status == "imported"
    assert result.inserted["observations"] == 1
    assert result.n_patients_recomputed == 1
    assert _count(engine, db.observations) == n_obs + 1
    after = load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=[pid])
    assert after.set_index("study_day").loc[2, "sofa_renal"] == 4  # creatinine >= 5.0
    assert day2["sofa_renal"] < 4
    # the same batch again: nothing new (idempotent)
    again = import_tables(engine, _batch(pid, "2024-03-02 09:00", 5.2), append=True)
    assert again.status == "duplicate"
    assert _count(engine, db.observations) == n_obs + 1


def test_append002_an_unknown_patient_is_refused_naming_the_row(engine):
    n_obs = _count(engine, db.observations)
    batch = _batch("SYN-S01-0001", "2024-03-02 10:00", 1.0)
    batch["observations"] = pd.concat(
        [batch["observations"], _batch("NEW-1", "2024-03-02 10:00", 1.0)["observations"]],
        ignore_index=True,
    )
    with pytest.raises(DataValidationError) as exc:
        import_tables(engine, batch, append=True)
    (problem,) = exc.value.problems
    assert (problem.row, problem.column, problem.value) == (2, "patient_id", "NEW-1")
    assert "known patients only" in problem.expected
    assert _count(engine, db.observations) == n_obs  # all or nothing


def test_append003_a_discharge_closes_the_open_stay(engine):
    stays = load_icu_stays(engine).set_index("patient_id")
    start = stays.loc[OPEN, "start"]
    assert pd.isna(stays.loc[OPEN, "stop"])
    stop = start + pd.Timedelta(days=2)
    assert OPEN in set(icu_census(engine, stop + pd.Timedelta(hours=1))["patient_id"])
    closing = {
        "icu_stays": pd.DataFrame(
            {
                "patient_id": [OPEN],
                "unit": ["SYN-S02 ICU"],
                "bed": [None],
                "start": [str(start)],
                "stop": [str(stop)],
            }
        )
    }
    result = import_tables(engine, closing, append=True)
    assert result.inserted["icu_stays closed"] == 1
    assert result.inserted.get("icu_stays", 0) == 0
    assert load_icu_stays(engine).set_index("patient_id").loc[OPEN, "stop"] == stop
    assert OPEN not in set(icu_census(engine, stop + pd.Timedelta(hours=1))["patient_id"])
    assert OPEN in set(icu_census(engine, stop - pd.Timedelta(hours=1))["patient_id"])
    # a closed stay is never re-opened or moved: another stop is a conflict
    moved = {"icu_stays": closing["icu_stays"].assign(stop=str(stop + pd.Timedelta(hours=5)))}
    with pytest.raises(DataValidationError) as exc:
        import_tables(engine, moved, append=True)
    assert exc.value.problems[0].column == "stop"
    assert "never overwritten" in exc.value.problems[0].expected


def test_append004_cli_flag(engine, tmp_path, capsys):
    url = str(engine.url)
    path = tmp_path / "observations_feed.csv"
    _batch("SYN-S01-0002", "2024-03-03 13:00", 2.5)["observations"].to_csv(path, index=False)
    assert main(["--database-url", url, "import", "--append", str(path)]) == 0
    assert "imported" in capsys.readouterr().out
    other = tmp_path / "observations_new.csv"
    _batch("NEW-2", "2024-03-03 13:00", 2.5)["observations"].to_csv(other, index=False)
    assert main(["--database-url", url, "import", "--append", str(other)]) == 1
    assert "known patients only" in capsys.readouterr().out


def _derived(engine, ids) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored daily SOFA and provenance of some patients, in a stable order (row ids apart)."""
    with engine.connect() as conn:
        daily = pd.read_sql(
            sa.select(db.daily_sofa).where(db.daily_sofa.c.patient_id.in_(ids)), conn
        ).sort_values(["patient_id", "rules_key", "study_day"], ignore_index=True)
        prov = pd.read_sql(
            sa.select(db.sofa_provenance).where(db.sofa_provenance.c.patient_id.in_(ids)), conn
        )
    cols = [c for c in prov.columns if c != "id"]
    prov = prov.sort_values(cols, ignore_index=True, na_position="first")
    return daily, prov


def test_append005_only_the_days_from_the_batch_on_are_rewritten_and_equal_a_full_recompute(
    tmp_path,
):
    """An append rewrites a patient's derived days from the first day its new rows touch (one
    day of margin): the result equals deriving every day again, and earlier days' stored rows
    are not rewritten (their provenance row ids survive)."""
    from core.io import build_demo_database
    from core.io.recompute import REWRITE_MARGIN_DAYS, recompute_derived
    from core.repository import load_patients

    eng = db.make_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    build_demo_database(eng, n_randomised=12)
    pts = load_patients(eng).sort_values("patient_id")
    alive = pts["death_time"].isna() | (
        pts["death_time"] > pts["anchor_time"] + pd.Timedelta(days=8)
    )
    pts = pts[alive].head(6)
    rng = np.random.default_rng(5)
    rows = []
    # per patient: a day-3..6 start, then values of every SOFA input over the next 30 hours
    # (crossing midnight: FiO2 before a PaO2 of the next day, LOCF, urine, GCS, vasopressor)
    variables = [
        ("creatinine", "mg/dL", 0.6, 6.0),
        ("platelets", "10^3/uL", 10, 300),
        ("bilirubin", "mg/dL", 0.3, 14.0),
        ("pao2", "mmHg", 50, 300),
        ("fio2", "%", 21, 100),
        ("map", "mmHg", 45, 95),
        ("gcs_total", "points", 3, 15),
        ("urine_output", "mL", 0, 400),
    ]
    first_day = {}
    for _, p in pts.iterrows():
        day = int(rng.integers(3, 7))
        first_day[p["patient_id"]] = day
        start = p["anchor_time"] + pd.Timedelta(days=day - 1, hours=20, minutes=7)
        for k, (var, unit, lo, hi) in enumerate(variables * 2):
            value = rng.uniform(lo, hi)
            rows.append(
                {
                    "patient_id": p["patient_id"],
                    "time": start + pd.Timedelta(minutes=int(k * 225 + rng.integers(0, 30))),
                    "variable": var,
                    "value": str(round(value) if var in ("gcs_total", "fio2") else round(value, 2)),
                    "unit": unit,
                    "source": "test-append005",
                }
            )
    batch = {"observations": pd.DataFrame(rows)}
    ids = list(first_day)
    daily_before, prov_before = _derived(eng, ids)
    result = import_tables(eng, batch, append=True)
    assert result.status == "imported"
    assert result.n_patients_recomputed == len(ids)
    daily_inc, prov_inc = _derived(eng, ids)
    # the rows of the days before the rewrite window are the stored rows (same ids)
    for pid, day in first_day.items():
        keep = day - REWRITE_MARGIN_DAYS
        old = prov_before[(prov_before["patient_id"] == pid) & (prov_before["study_day"] < keep)]
        new = prov_inc[(prov_inc["patient_id"] == pid) & (prov_inc["study_day"] < keep)]
        assert len(old) > 0
        assert sorted(old["id"]) == sorted(new["id"])
    # and the whole derived state equals deriving every day of these patients again
    with db.writer_transaction(eng) as conn:
        recompute_derived(conn, ids)
    daily_full, prov_full = _derived(eng, ids)
    # the batch changed scores (the comparison is not between two unchanged states)
    merged = daily_before.merge(daily_full, on=["patient_id", "rules_key", "study_day"])
    assert (merged["sofa_total_x"] != merged["sofa_total_y"]).sum() >= 3
    pd.testing.assert_frame_equal(daily_inc, daily_full)
    pd.testing.assert_frame_equal(prov_inc.drop(columns="id"), prov_full.drop(columns="id"))
    eng.dispose()
