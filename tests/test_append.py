"""Append imports (new rows for known patients, idempotent) and closing open ICU stays."""

from __future__ import annotations

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
