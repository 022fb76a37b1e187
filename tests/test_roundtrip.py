"""Lossless round trip: ``export --format raw`` then ``import DIR/*.csv`` into an empty database
(SQLite or PostgreSQL) reproduces every raw row, the derived daily SOFA and provenance, and the
per-arm endpoints (docs/formats.md "Raw export and round trip").

The source is the synthetic demo cohort (60 randomised patients: SI-unit observations,
mcg/min infusions, withdrawn patients without a patients row, ...).
"""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core import repository as repo
from core.endpoints import mortality, sofa_response
from core.exceptions import DataValidationError
from core.io import (
    build_demo_database,
    import_tables,
    main,
    read_files,
    recompute_derived,
    validate_tables,
)
from core.io.raw_export import export_raw, raw_table_frame
from core.io.schema import DEFAULT_ENDPOINT_RULES, DEFAULT_SOFA_RULES, TABLE_SPECS
from core.io.stored import read_table
from core.phenotype import classify_frame
from core.rules import SofaRules

N_RANDOMISED = 60


def run_cli(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(list(argv))
    return code, buf.getvalue()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The demo cohort in SQLite and its unblinded raw CSV export (by the command line)."""
    base = tmp_path_factory.mktemp("roundtrip")
    url = f"sqlite:///{base / 'source.sqlite'}"
    build_demo_database(url, n_randomised=N_RANDOMISED)
    out = base / "raw"
    code, text = run_cli("--database-url", url, "export", str(out), "--format", "raw", "--with-arm")
    assert code == 0, text
    assert "not written" not in text
    return url, out


def stored(engine: sa.Engine, table: str) -> pd.DataFrame:
    """Every stored column (surrogate ids excluded) sorted by the natural key."""
    with engine.connect() as conn:
        frame = read_table(conn, db.metadata.tables[table])
    if table in TABLE_SPECS:
        key = list(TABLE_SPECS[table].key)
    elif table == "daily_sofa":
        key = ["rules_key", "patient_id", "study_day"]
    else:  # sofa_provenance: one row per patient, day and organ
        key = ["rules_key", "patient_id", "study_day", "organ", "variable", "time"]
    return frame.sort_values(key, kind="stable", ignore_index=True)


def cohort_summary(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Per-patient endpoints and phenotype, and responders / deaths per arm."""
    rules = DEFAULT_ENDPOINT_RULES
    patients = repo.load_patients(engine, rules=DEFAULT_SOFA_RULES)
    daily = repo.load_daily_sofa(engine, rules_key=DEFAULT_SOFA_RULES.key())
    deaths = patients[["patient_id", "death_study_day"]]
    response = sofa_response(
        daily, deaths, last_day=rules.last_day, threshold=rules.threshold
    ).sort_values("patient_id", ignore_index=True)
    died = mortality(deaths, horizon_days=28).sort_values("patient_id", ignore_index=True)
    phenotype = pd.concat([patients[["patient_id"]], classify_frame(patients)], axis=1)
    arms = repo.load_arms(engine)
    per_patient = (
        response.merge(died, on="patient_id")
        .merge(arms, on="patient_id", how="left")
        .merge(phenotype, on="patient_id", how="left")
    )
    per_arm = (
        per_patient.groupby("arm")
        .agg(n=("patient_id", "size"), responders=("responder", "sum"), deaths=("died", "sum"))
        .reset_index()
    )
    return {"per_patient": per_patient, "per_arm": per_arm}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_rt001_raw_export_reimports_identically(source, backend, request):
    src_url, out = source
    url = request.getfixturevalue(f"{backend}_url")
    files = sorted(str(p) for p in out.glob("*.csv"))
    assert [Path(f).stem for f in files] == sorted(db.RAW_TABLES)
    code, text = run_cli("--database-url", url, "import", *files)
    assert code == 0, text
    assert text.startswith("imported:"), text
    a, b = db.make_engine(src_url), db.make_engine(url)
    try:
        counts = db.row_counts(a)
        assert counts["observations"] > 10_000
        assert counts["infusions"] > 100
        for table in (*db.RAW_TABLES, "daily_sofa", "sofa_provenance"):
            left, right = stored(a, table), stored(b, table)
            assert len(left) == counts[table] > 0, table
            pd.testing.assert_frame_equal(left, right, check_exact=True, obj=table)
        # SI values came back as received, in canonical units bit for bit
        obs = stored(b, "observations")
        si = obs[obs["unit_as_received"] == "umol/L"]
        assert len(si) > 50
        assert set(si["unit"]) == {"mg/dL"}
        summary_a, summary_b = cohort_summary(a), cohort_summary(b)
        for name in ("per_patient", "per_arm"):
            pd.testing.assert_frame_equal(summary_a[name], summary_b[name], obj=name)
        per_arm = summary_b["per_arm"]
        assert set(per_arm["arm"]) == {"precision", "placebo"}
        assert per_arm["n"].sum() == counts["patients"]
        assert per_arm["responders"].sum() > 0
        assert per_arm["deaths"].sum() > 0
        # a second import of the same files changes nothing
        code, text = run_cli("--database-url", url, "import", *files)
        assert code == 0, text
        assert text.startswith("duplicate"), text
    finally:
        a.dispose()
        b.dispose()


def test_rt002_daily_sofa_under_printed_si_bands_survives_too(source, tmp_path):
    """The received SI unit is kept, so a rule set that scores SI values on the printed SI
    bands (clinical.md 5.2) derives the same daily SOFA after the round trip."""
    src_url, out = source
    rules = SofaRules(si_units_cutoffs="use_printed_si_bands")
    copy = tmp_path / "source-copy.sqlite"  # the recompute below must not touch the source
    shutil.copy(src_url.removeprefix("sqlite:///"), copy)
    a = db.make_engine(copy)
    b = db.make_engine(tmp_path / "si.sqlite")
    try:
        files = sorted(out.glob("*.csv"))
        import_tables(b, read_files(files), rules=rules)
        ids = sorted(repo.load_patients(a)["patient_id"])
        with db.writer_transaction(a) as conn:
            recompute_derived(conn, ids, rules=rules)
        left = repo.load_daily_sofa(a, rules_key=rules.key())
        right = repo.load_daily_sofa(b, rules_key=rules.key())
        assert len(left) > 500
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    finally:
        a.dispose()
        b.dispose()


def test_rt003_blinded_export_leaves_out_the_arm_and_says_so(source, tmp_path):
    src_url, _ = source
    code, text = run_cli(
        "--database-url", src_url, "export", str(tmp_path / "blind"), "--format", "raw"
    )
    assert code == 0
    assert "randomisation (the arm) not written" in text
    written = sorted(p.stem for p in (tmp_path / "blind").iterdir())
    assert written == sorted(t for t in db.RAW_TABLES if t != "randomisation")
    assert not any("arm" in p.read_text().split("\n", 1)[0] for p in (tmp_path / "blind").iterdir())


def test_rt004_parquet_round_trip(source, tmp_path):
    src_url, _ = source
    a = db.make_engine(src_url)
    b = db.make_engine(tmp_path / "pq.sqlite")
    try:
        paths = export_raw(a, tmp_path / "pq", include_arm=True, file_format="parquet")
        assert {p.suffix for p in paths.values()} == {".parquet"}
        code, text = run_cli(
            "--database-url",
            f"sqlite:///{tmp_path / 'pq.sqlite'}",
            "import",
            *sorted(str(p) for p in paths.values()),
        )
        assert code == 0, text
        for table in (*db.RAW_TABLES, "daily_sofa"):
            pd.testing.assert_frame_equal(stored(a, table), stored(b, table), obj=table)
        # the exported observations carry the value as received (umol/L), not the canonical one
        exported = raw_table_frame(a, "observations")
        bili = exported[(exported["variable"] == "bilirubin") & (exported["unit"] == "umol/L")]
        canonical = stored(a, "observations")
        canonical = canonical[
            (canonical["variable"] == "bilirubin") & (canonical["unit_as_received"] == "umol/L")
        ]
        assert set(canonical["unit"]) == {"mg/dL"}
        assert len(bili) == len(canonical) > 0
        assert bili["value"].max() > 17.1  # umol/L magnitudes, not mg/dL
    finally:
        a.dispose()
        b.dispose()


def test_rt005_adam_reimport_is_refused_naming_what_is_missing(source, tmp_path):
    """Re-importing the ADaM export used to pass with "no problems" and change responders
    (no infusions, episodes, doses or disposition in ADaM): now it is refused, nothing written."""
    src_url, _ = source
    adam = tmp_path / "adam"
    code, _ = run_cli("--database-url", src_url, "export", str(adam), "--with-arm")
    assert code == 0
    files = [str(adam / f"{name}.csv") for name in ("adsl", "adae", "adlb")]
    target = f"sqlite:///{tmp_path / 'adam-target.sqlite'}"
    for command in ("validate", "import"):
        code, text = run_cli("--database-url", target, command, *files)
        assert code == 1, text
        assert "ADaM input" in text
        assert "without icu_stays.csv, infusions.csv, episodes.csv, doses.csv" in text
    with pytest.raises(DataValidationError) as info:
        import_tables(db.make_engine(target), read_files(files))
    [problem] = [p for p in info.value.problems if p.where == "ADaM input"]
    assert problem.value == (
        "adae.csv, adlb.csv, adsl.csv without icu_stays.csv, infusions.csv, episodes.csv, "
        "doses.csv, disposition.csv"
    )
    assert problem.expected.startswith(
        "the raw tables icu_stays, infusions, episodes, doses, disposition alongside"
    )
    assert "--format raw" in problem.expected
    engine = db.make_engine(target)
    try:
        counts = db.row_counts(engine)
        assert {t: counts[t] for t in db.RAW_TABLES} == dict.fromkeys(db.RAW_TABLES, 0)
        assert db.dataset_version(engine).startswith("0-")
    finally:
        engine.dispose()


def test_rt006_adam_with_its_raw_companions_is_not_refused(source, tmp_path):
    """ADaM ADSL plus the raw tables ADaM cannot carry passes the completeness rule (a
    header-only file says "none"); ADLB alone (rows for stored patients) is not affected."""
    src_url, raw = source
    adam = tmp_path / "adam"
    assert run_cli("--database-url", src_url, "export", str(adam), "--with-arm")[0] == 0
    companions = [raw / f"{t}.csv" for t in ("icu_stays", "infusions", "episodes", "doses")]
    empty = tmp_path / "disposition.csv"
    empty.write_text(",".join(TABLE_SPECS["disposition"].columns) + "\n")
    tables = read_files([adam / "adsl.csv", adam / "adlb.csv", *companions, empty])
    assert len(tables["disposition"]) == 0
    assert not [p for p in validate_tables(tables) if p.where == "ADaM input"]
    only_adlb = read_files([adam / "adlb.csv"])
    assert not [p for p in validate_tables(only_adlb) if p.where == "ADaM input"]
    # partial raw tables (new observations only) are never refused for completeness
    partial = read_files([raw / "observations.csv"])
    assert not [p for p in validate_tables(partial) if p.where == "ADaM input"]


def test_rt007_export_of_a_database_without_tables_is_refused(tmp_path):
    """A mistyped SQLite path must not produce an empty "copy"."""
    code, text = run_cli(
        "--database-url",
        f"sqlite:///{tmp_path / 'typo.sqlite'}",
        "export",
        str(tmp_path / "out"),
        "--format",
        "raw",
    )
    assert code == 1
    assert "(no ImmunoSep tables)" in text
    assert not (tmp_path / "out").exists()
