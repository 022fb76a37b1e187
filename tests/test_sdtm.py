"""CDISC SDTM importer (core.io.sdtm): mapping, derived SOFA, cut-offs, blinding, problems, CLI.

The fixtures in tests/fixtures/sdtm are hand-written for three subjects:

- IMMUNOSEP-01-001 (ARMCD PRECISION, first dose 2024-03-01T10:00 = anchor). Study day 1 by
  hand: PaO2 9.5 kPa = 71.25589 mmHg / FiO2 50 % = 142.5 under invasive ventilation -> resp 3;
  platelets 149 -> coag 1; bilirubin 102.6 umol/L = 6.0 mg/dL -> liver 3; norepinephrine 0.08
  ug/kg/min -> cardio 3; GCS 13 -> CNS 1; creatinine 309.4 umol/L = 3.5 mg/dL -> renal 3;
  total 14. Day 2: platelets 150 -> 0, creatinine 1.2 mg/dL -> 1, bilirubin 1.1 -> 0.
- IMMUNOSEP-01-002 (PLACEBO, dies 2024-03-05T16:20): day 1 P/F 80 / 0.4 = 200 without
  support -> 2, platelets 90 -> 2, bilirubin 2.0 -> 2, noradrenaline 15 ug/min / 75 kg = 0.2
  -> 4, GCS 9 -> 3, creatinine 2.0 -> 2; total 15.
- IMMUNOSEP-02-003: screen failure (ARMCD SCRNFAIL): a disposition row only.

EX names the products (ANAKINRA, INTERFERON GAMMA PLACEBO) and DM.ARM names them too: neither
may reach the database.
"""

from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from core import db
from core import repository as repo
from core.exceptions import DataValidationError, Problem
from core.io.cli import main
from core.io.codes import code_table
from core.io.formats import read_format
from core.io.load import import_tables
from core.io.sdtm import DOMAINS, read_sdtm
from core.rules import SofaRules

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sdtm"
S1, S2, S3 = "IMMUNOSEP-01-001", "IMMUNOSEP-01-002", "IMMUNOSEP-02-003"


def fixture_paths(folder: Path = FIXTURES) -> list[Path]:
    return sorted(folder.glob("*.csv"))


def copy_fixtures(tmp_path: Path) -> Path:
    folder = tmp_path / "sdtm"
    shutil.copytree(FIXTURES, folder)
    return folder


def edit_cell(path: Path, row: int, column: str, value: str) -> None:
    """Set a cell of an SDTM CSV (``row`` 1-based data row), keeping every other cell."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    frame.to_csv(path, index=False)


def only(problems: tuple[Problem, ...], **match: object) -> list[Problem]:
    return [p for p in problems if all(getattr(p, k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    path = tmp_path_factory.mktemp("sdtm-db") / "x.sqlite"
    engine = db.make_engine("sqlite:///" + str(path))
    result = import_tables(engine, read_sdtm(fixture_paths()), user="sdtm-test")
    assert result.status == "imported"
    assert dict(result.inserted) == {
        "sites": 2,
        "patients": 2,
        "randomisation": 2,
        "observations": 23,
        "infusions": 2,
        "episodes": 2,
        "biomarkers": 2,
        "doses": 5,
        "adverse_events": 2,
        "disposition": 3,
    }
    yield engine
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# parse and map


def test_sdtm001_rows_land_with_their_values() -> None:
    t = read_sdtm(fixture_paths())
    assert set(t) == {
        "sites",
        "patients",
        "randomisation",
        "disposition",
        "observations",
        "biomarkers",
        "infusions",
        "episodes",
        "doses",
        "adverse_events",
    }
    pts = t["patients"].set_index("patient_id")
    assert list(pts.index) == [S1, S2]  # the screen failure has no patients row
    assert pts.loc[S1, "anchor_time"] == pd.Timestamp("2024-03-01 10:00")  # first EXSTDTC
    assert pts.loc[S1, "weight_kg"] == 80.0  # VSBLFL = Y, not the later 82 kg
    assert pts.loc[S1, "site_id"] == "01"
    assert pts.loc[S1, "randomised_at"] == pd.Timestamp("2024-03-01 08:00")
    assert pd.isna(pts.loc[S1, "death_time"])
    assert pts.loc[S2, "death_time"] == pd.Timestamp("2024-03-05 16:20")
    assert (pts.loc[S2, "age_years"], pts.loc[S2, "sex"]) == (71.0, "F")
    arms = dict(zip(t["randomisation"]["patient_id"], t["randomisation"]["arm"], strict=True))
    assert arms == {S1: "precision", S2: "placebo"}
    disp = t["disposition"].set_index("screening_id")
    assert disp.loc[S3, "patient_id"] is None
    assert disp.loc[S3, "excluded_reason"] == "FERRITIN AND HLA-DR OUTSIDE INCLUSION RANGES"
    assert disp.loc[S1, "patient_id"] == S1
    assert disp["withdrawn_with_data_removal"].tolist() == [False, False, False]

    obs = t["observations"]
    creat = obs[(obs["patient_id"] == S1) & (obs["variable"] == "creatinine")]
    # units stay as received: conversion is validation's (core.units)
    assert creat[["value", "unit", "source"]].values.tolist() == [
        [309.4, "umol/L", "LB:5"],
        [1.2, "mg/dL", "LB:9"],
    ]
    gcs = obs[obs["variable"] == "gcs_total"]
    assert gcs[["patient_id", "value", "unit", "source"]].values.tolist() == [
        [S1, 13.0, "points", "QS:2"],  # GCS0101 (eye opening) is ignored
        [S1, 15.0, "points", "QS:3"],
        [S2, 9.0, "points", "QS:1"],
    ]
    fio2 = obs[obs["variable"] == "fio2"]
    assert fio2[["value", "unit"]].values.tolist() == [[50.0, "%"], [0.4, "1"]]
    assert "CRP" not in obs["source"].str.cat()  # LB:CRP is listed as ignore
    # LBSTAT = NOT DONE: no record; HR ignored: 12 LB rows of S1 give 8 observations
    assert (obs["source"].str.startswith("LB:") & (obs["patient_id"] == S1)).sum() == 8
    assert obs.loc[obs["source"] == "LB:6", "time"].tolist() == [
        pd.Timestamp("2024-03-01 12:00"),
        pd.Timestamp("2024-03-02 10:00"),
    ]

    bio = t["biomarkers"].set_index("patient_id")
    assert list(bio.index) == [S1, S2]  # S3 (screen failure) is not imported
    assert bio.loc[S1, "ferritin_ng_ml"] == 5000.0
    assert bio.loc[S1, "hla_dr_ab_per_cell"] == 12000.0
    assert bio.loc[S1, "time"] == pd.Timestamp("2024-03-01 06:00")

    inf = t["infusions"]
    assert inf[["patient_id", "drug", "rate", "unit"]].values.tolist() == [
        [S1, "norepinephrine", 0.08, "ug/kg/min"],
        [S2, "norepinephrine", 15.0, "ug/min"],  # CMTRT NORADRENALINE (CMDECOD empty)
    ]
    assert inf.index.tolist() == [0, 2]  # the cm.csv rows (paracetamol is skipped)
    ep = t["episodes"]
    assert ep[["patient_id", "kind"]].values.tolist() == [
        [S1, "invasive_ventilation"],
        [S2, "rrt"],
    ]
    assert pd.isna(ep["stop"].iloc[1])  # PRENDTC empty: ongoing
    doses = t["doses"]
    assert doses["route"].tolist() == ["IV", "SC", "IV", "IV", "SC"]
    assert set(doses["label"]) == {"study drug"}
    ae = t["adverse_events"].set_index("patient_id")
    assert ae.loc[S1, ["pt", "serious", "severe", "related", "aesi"]].tolist() == [
        "Anaemia",
        False,
        False,
        True,
        "anemia",  # SUPPAE QNAM AESI
    ]
    assert ae.loc[S1, "onset_time"] == pd.Timestamp("2024-03-03")  # a date is enough here
    assert ae.loc[S2, ["serious", "severe", "related", "aesi"]].tolist() == [
        True,
        True,
        False,
        None,
    ]
    # problems found later by validation point at the SDTM file and its row
    assert t["infusions"].attrs["source"] == "cm.csv"
    assert t["patients"].attrs["source"] == "dm.csv"


def test_sdtm002_mapping_table() -> None:
    table = code_table("sdtm")
    assert table["lb:creat"].variable == "creatinine"
    assert table["lb:hladr"].target == "biomarkers"
    assert table["lb:hladr"].unit == "AB/C"
    assert table["rs:gcs0104"].variable == "gcs_total"
    assert table["qs:gcs0104"].variable == "gcs_total"
    assert table["cm:norepinephrine"].target == "infusions"
    assert table["pr:invasive mechanical ventilation"].variable == "invasive_ventilation"
    assert table["vs:hr"].target == "ignore"
    assert {code.split(":")[0].upper() for code in table} <= set(DOMAINS)


# ---------------------------------------------------------------------------------------------
# import and derived SOFA


def test_sdtm003_daily_sofa_equals_hand_computed(imported: sa.Engine) -> None:
    daily = repo.load_daily_sofa(imported, rules_key=SofaRules().key(), patient_ids=[S1, S2])
    d = daily.set_index(["patient_id", "study_day"])
    organs = ["respiration", "coagulation", "liver", "cardiovascular", "cns", "renal"]
    cols = [f"sofa_{o}" for o in organs]
    assert d.loc[(S1, 1), cols].tolist() == [3, 1, 3, 3, 1, 3]
    assert d.loc[(S1, 1), "sofa_total"] == 14
    assert d.loc[(S1, 1), "pao2_fio2_mmhg"] == pytest.approx(71.25589 / 0.5)
    assert bool(d.loc[(S1, 1), "respiratory_support"]) is True
    assert d.loc[(S1, 1), "norepinephrine_mcg_kg_min"] == pytest.approx(0.08)
    assert d.loc[(S2, 1), cols].tolist() == [2, 2, 2, 4, 3, 2]
    assert d.loc[(S2, 1), "sofa_total"] == 15
    assert d.loc[(S2, 1), "norepinephrine_mcg_kg_min"] == pytest.approx(15 / 75)


def test_sdtm004_si_values_on_cutoffs_score_their_band(imported: sa.Engine) -> None:
    obs = repo.load_observations(imported, patient_ids=[S1])
    day1 = obs[obs["time"] == pd.Timestamp("2024-03-01 11:00")].set_index("variable")
    # converted exactly onto the cut-off, the received value kept
    assert day1.loc["creatinine", "value"] == 3.5
    assert day1.loc["creatinine", "unit"] == "mg/dL"
    assert day1.loc["creatinine", "value_as_received"] == 309.4
    assert day1.loc["creatinine", "unit_as_received"] == "umol/L"
    assert day1.loc["bilirubin", "value"] == 6.0
    daily = repo.load_daily_sofa(imported, rules_key=SofaRules().key(), patient_ids=[S1])
    d = daily.set_index("study_day")
    assert d.loc[1, "creatinine_mg_dl"] == 3.5
    assert d.loc[1, "sofa_renal"] == 3  # 3.5-4.9 mg/dL
    assert d.loc[1, "bilirubin_mg_dl"] == 6.0
    assert d.loc[1, "sofa_liver"] == 3  # 6.0-11.9 mg/dL
    assert d.loc[1, "platelets_10e3_per_ul"] == 149
    assert d.loc[1, "sofa_coagulation"] == 1  # < 150
    assert d.loc[2, "platelets_10e3_per_ul"] == 150
    assert d.loc[2, "sofa_coagulation"] == 0  # 150 is not < 150
    assert d.loc[2, "creatinine_mg_dl"] == 1.2
    assert d.loc[2, "sofa_renal"] == 1  # 1.2-1.9 mg/dL
    assert d.loc[2, "sofa_liver"] == 0  # bilirubin 1.1 mg/dL


# ---------------------------------------------------------------------------------------------
# blinding


def text_cells(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(table, column, value) of every non-empty text cell of every table of the database."""
    out = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            frame = pd.read_sql_table(name, conn)
            for col in frame.columns:
                if frame[col].dtype == object:
                    out += [(name, col, str(v)) for v in frame[col].dropna()]
    return out


def test_sdtm005_product_name_never_stored(imported: sa.Engine) -> None:
    # the input names the products (so this test can fail) ...
    ex = pd.read_csv(FIXTURES / "ex.csv", dtype=str)
    assert {"ANAKINRA", "INTERFERON GAMMA PLACEBO"} <= set(ex["EXTRT"])
    assert "Anakinra" in pd.read_csv(FIXTURES / "dm.csv", dtype=str)["ARM"].iloc[0]
    cells = text_cells(imported)
    # ... the scan sees the stored text (a positive control: the stored arm and the AE term)
    assert ("randomisation", "arm", "precision") in cells
    assert ("adverse_events", "pt", "Anaemia") in cells
    leaks = [c for c in cells if "ANAKINRA" in c[2].upper() or "INTERFERON" in c[2].upper()]
    assert leaks == []
    with imported.connect() as conn:
        labels = conn.execute(sa.text("SELECT DISTINCT label FROM doses")).scalars().all()
    assert labels == ["study drug"]


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_sdtm006_bad_cells_are_named(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    edit_cell(folder / "lb.csv", 3, "LBDTC", "2024-03")  # partial date of a scored value
    edit_cell(folder / "lb.csv", 4, "LBTESTCD", "XYZ")  # unknown test code
    edit_cell(folder / "lb.csv", 5, "LBSTRESN", "abc")  # non-numeric standard result
    edit_cell(folder / "lb.csv", 6, "LBSTRESU", "mm")  # two problems on one row: both named
    edit_cell(folder / "lb.csv", 6, "LBDTC", "2024-03-01T12")
    edit_cell(folder / "ex.csv", 1, "EXROUTE", "ORAL")
    edit_cell(folder / "dm.csv", 2, "ARMCD", "ARM B")
    with pytest.raises(DataValidationError) as err:
        read_sdtm(fixture_paths(folder))
    problems = err.value.problems
    (partial,) = only(problems, where="lb.csv", row=3)
    assert (partial.column, partial.value, partial.patient_id) == ("LBDTC", "2024-03", S1)
    assert partial.expected.startswith("a complete ISO 8601 date-time to the minute")
    (code,) = only(problems, where="lb.csv", row=4)
    assert (code.column, code.value) == ("LBTESTCD", "XYZ")
    assert "core/io/mappings/sdtm.csv" in code.expected
    (number,) = only(problems, where="lb.csv", row=5)
    assert (number.column, number.value) == ("LBSTRESN", "abc")
    assert number.expected.startswith("a number")
    row6 = {(p.column, p.value) for p in only(problems, where="lb.csv", row=6)}
    assert row6 == {("LBSTRESU", "mm"), ("LBDTC", "2024-03-01T12")}
    (unit,) = only(problems, where="lb.csv", row=6, column="LBSTRESU")
    assert unit.expected == "a unit of pao2: one of mmhg, kpa"
    (route,) = only(problems, where="ex.csv", row=1)
    assert (route.column, route.value) == ("EXROUTE", "ORAL")
    (arm,) = only(problems, where="dm.csv", row=2)
    assert (arm.column, arm.value) == ("ARMCD", "ARM B")
    assert "PRECISION" in arm.expected
    assert "SCRNFAIL" in arm.expected
    assert len(problems) == 7


def test_sdtm007_partial_dates_where_a_time_is_needed(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    edit_cell(folder / "cm.csv", 1, "CMSTDTC", "2024-03-01")  # a date: no time of day
    edit_cell(folder / "pr.csv", 1, "PRSTDTC", "2024-03-01T09")  # hour only
    edit_cell(folder / "ae.csv", 1, "AESTDTC", "2024-03")  # AE onset: a date is enough, not this
    edit_cell(folder / "vs.csv", 2, "VSDTC", "2024-02-30T11:00")  # no such day
    with pytest.raises(DataValidationError) as err:
        read_sdtm(fixture_paths(folder))
    got = {(p.where, p.row, p.column, p.value) for p in err.value.problems}
    assert got == {
        ("cm.csv", 1, "CMSTDTC", "2024-03-01"),
        ("pr.csv", 1, "PRSTDTC", "2024-03-01T09"),
        ("ae.csv", 1, "AESTDTC", "2024-03"),
        ("vs.csv", 2, "VSDTC", "2024-02-30T11:00"),
    }
    (ae,) = only(err.value.problems, where="ae.csv")
    assert ae.expected.startswith("a complete ISO 8601 date (YYYY-MM-DD)")


def test_sdtm008_unknown_files_and_missing_columns(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    (folder / "mh.csv").write_text("USUBJID,MHTERM\nIMMUNOSEP-01-001,DIABETES\n")
    frame = pd.read_csv(folder / "vs.csv", dtype=str).drop(columns=["VSSEQ"])
    frame.to_csv(folder / "vs.csv", index=False)
    edit_cell(folder / "cm.csv", 1, "CMDECOD", "NOREPINEPHRIN")  # misspelt scored drug
    with pytest.raises(DataValidationError) as err:
        read_sdtm(fixture_paths(folder))
    got = {(p.where, p.row, p.column) for p in err.value.problems}
    assert got == {("mh.csv", None, None), ("vs.csv", None, "VSSEQ"), ("cm.csv", 1, "CMDECOD")}
    with pytest.raises(DataValidationError) as err:
        read_sdtm([folder / "lb.csv"])
    assert err.value.problems[0].expected == "a DM (demographics) file among the SDTM files"


def test_sdtm009_all_or_nothing(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "x.sqlite")
    engine = db.make_engine(url)
    # a reader problem: nothing is read, nothing stored
    folder = copy_fixtures(tmp_path)
    edit_cell(folder / "lb.csv", 5, "LBSTRESN", "abc")
    files = [str(p) for p in fixture_paths(folder)]
    assert main(["import", "--format", "sdtm", *files, "--database-url", url]) == 1
    # a validation problem (implausible platelets): the other, valid rows are not stored
    edit_cell(folder / "lb.csv", 5, "LBSTRESN", "309.4")
    edit_cell(folder / "lb.csv", 3, "LBSTRESN", "50000")
    tables = read_sdtm(fixture_paths(folder))
    with pytest.raises(DataValidationError) as err:
        import_tables(engine, tables)
    (p,) = err.value.problems
    assert (p.column, p.value) == ("value", 50000.0)
    assert p.where == "observations from lb.csv, qs.csv, vs.csv"
    counts = db.row_counts(engine)
    assert counts["patients"] == 0
    assert counts["observations"] == 0
    assert counts["disposition"] == 0
    engine.dispose()


def test_sdtm010_withdrawal_with_data_removal(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    with (folder / "ds.csv").open("a") as f:
        f.write(
            "IMMUNOSEP,DS,IMMUNOSEP-01-002,3,CONSENT WITHDRAWN,WITHDRAWAL BY SUBJECT,"
            "DISPOSITION EVENT,DATA REMOVAL,2024-03-04\n"
        )
    t = read_sdtm(fixture_paths(folder))
    assert t["patients"]["patient_id"].tolist() == [S1]
    assert S2 not in set(t["observations"]["patient_id"])
    assert S2 not in set(t["adverse_events"]["patient_id"])
    assert t["randomisation"]["patient_id"].tolist() == [S1, S2]  # the arm stays counted
    disp = t["disposition"]
    assert disp["withdrawn_with_data_removal"].tolist() == [False, True, False]
    assert disp["patient_id"].tolist() == [S1, S2, None]
    engine = db.make_engine("sqlite:///" + str(tmp_path / "x.sqlite"))
    assert import_tables(engine, t).inserted["patients"] == 1
    engine.dispose()


def test_sdtm011_anchor_without_ex_is_rfxstdtc(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    (folder / "ex.csv").unlink()
    t = read_sdtm(fixture_paths(folder))
    assert "doses" not in t
    anchors = dict(zip(t["patients"]["patient_id"], t["patients"]["anchor_time"], strict=True))
    assert anchors == {S1: pd.Timestamp("2024-03-01 10:00"), S2: pd.Timestamp("2024-03-02 09:00")}
    edit_cell(folder / "dm.csv", 1, "RFXSTDTC", "2024-03-01")  # a date: no time of the dose
    edit_cell(folder / "dm.csv", 2, "RFXSTDTC", "")
    with pytest.raises(DataValidationError) as err:
        read_sdtm(fixture_paths(folder))
    got = [(p.where, p.row, p.column, p.value) for p in err.value.problems]
    assert got == [("dm.csv", 1, "RFXSTDTC", "2024-03-01"), ("dm.csv", 2, "RFXSTDTC", "(empty)")]
    assert err.value.problems[1].expected.startswith("the first study-drug dose: an EX record")


# ---------------------------------------------------------------------------------------------
# command line and XPT


def test_sdtm012_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "sqlite:///" + str(tmp_path / "cli.sqlite")
    files = [str(p) for p in fixture_paths()]
    assert main(["import", "--format", "sdtm", *files, "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported: import 1, dataset version 1-")
    assert '"patients": 2' in out
    assert main(["validate", "--format", "sdtm", *files]) == 0
    assert capsys.readouterr().out.strip() == "no problems"
    engine = db.make_engine(url)
    assert repo.load_patients(engine)["patient_id"].tolist() == [S1, S2]
    engine.dispose()


def _ibm_float(value: float) -> bytes:
    """An IEEE double as an 8-byte IBM hexadecimal float (SAS XPORT v5); NaN = missing '.'."""
    if math.isnan(value):
        return b"\x2e" + bytes(7)
    if value == 0:
        return bytes(8)
    sign = 0x80 if value < 0 else 0
    exponent = math.floor(math.log(abs(value), 16)) + 1
    mantissa = abs(value) / 16.0**exponent
    while mantissa >= 1.0:  # log rounding at exact powers of 16
        exponent, mantissa = exponent + 1, mantissa / 16.0
    while mantissa < 1 / 16:
        exponent, mantissa = exponent - 1, mantissa * 16.0
    fraction = int(math.ldexp(mantissa, 56))  # exact: a double has 53 significant bits
    return bytes([sign | (exponent + 64)]) + fraction.to_bytes(7, "big")


def write_xpt(path: Path, name: str, frame: pd.DataFrame, numeric: set[str]) -> None:
    """A minimal SAS XPORT v5 file of one dataset (pyreadstat is not installed)."""
    stamp = b"01JAN24:00:00:00"

    def rec(text: bytes) -> bytes:
        return text.ljust(80, b" ")

    def header(kind: bytes, tail: bytes = b"0" * 30) -> bytes:
        return rec(b"HEADER RECORD*******" + kind.ljust(8) + b"HEADER RECORD!!!!!!!" + tail)

    out = header(b"LIBRARY")
    out += rec(b"SAS     SAS     SASLIB  9.1     Linux   " + b" " * 24 + stamp)
    out += rec(stamp)
    out += header(b"MEMBER", b"000000000000000001600000000140")
    out += header(b"DSCRPTR")
    out += rec(
        b"SAS     " + name.encode().ljust(8) + b"SASDATA 9.1     Linux   " + b" " * 24 + stamp
    )
    out += rec(stamp + b" " * 16 + b" " * 40 + b" " * 8)
    out += header(b"NAMESTR", b"000000" + f"{len(frame.columns):04d}".encode() + b"0" * 20)
    lengths, names, pos = [], b"", 0
    for k, col in enumerate(frame.columns, start=1):
        is_num = col in numeric
        length = 8 if is_num else max(1, *(len(str(v)) for v in frame[col]))
        names += struct.pack(
            ">hhhh8s40s8shhh2s8shhl52s",
            1 if is_num else 2,
            0,
            length,
            k,
            col.encode().ljust(8),
            b"".ljust(40),
            b"".ljust(8),
            0,
            0,
            0,
            b"  ",
            b"".ljust(8),
            0,
            0,
            pos,
            bytes(52),
        )
        lengths.append(length)
        pos += length
    out += names + b" " * (-len(names) % 80)
    out += header(b"OBS")
    data = b""
    for row in frame.itertuples(index=False):
        for col, value, length in zip(frame.columns, row, lengths, strict=True):
            if col in numeric:
                data += _ibm_float(float(value) if value != "" else math.nan)
            else:
                data += str(value).encode().ljust(length, b" ")
    out += data + b" " * (-len(data) % 80)
    path.write_bytes(out)


def test_sdtm013_xpt_reads_like_csv(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)
    lb = pd.read_csv(folder / "lb.csv", dtype=str, keep_default_na=False)
    write_xpt(folder / "LB.xpt", "LB", lb, numeric={"LBSEQ", "LBSTRESN"})
    (folder / "lb.csv").unlink()
    back = pd.read_sas(folder / "LB.xpt", format="xport", encoding="utf-8")
    assert back["LBSTRESN"].iloc[3] == 102.6  # a numeric XPT column, read as a double
    assert pd.isna(back["LBSTRESN"].iloc[11])  # LBSTAT NOT DONE: a missing value
    paths = [*fixture_paths(folder), folder / "LB.xpt"]
    from_xpt = read_format("sdtm", paths)
    from_csv = read_sdtm(fixture_paths())
    assert set(from_xpt) == set(from_csv)
    for name, frame in from_csv.items():
        pd.testing.assert_frame_equal(
            from_xpt[name].reset_index(drop=True), frame.reset_index(drop=True), obj=name
        )
    obs = from_xpt["observations"]
    assert obs.loc[obs["source"] == "LB:5", "value"].tolist() == [309.4, 2.0]
