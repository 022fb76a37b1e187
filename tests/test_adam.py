"""ADaM export (core.io.adam_export): conformance, blinding guards, define.xml, Dataset-JSON and
the dashboard's numbers recomputed from the exported SAS XPORT files with independent libraries.

One synthetic trial (the default demo cohort: 281 randomised, 5 withdrawn with data removal) is
built once and exported three times: SAS XPORT with the arm, SAS XPORT blinded, Dataset-JSON
with the arm. The XPT files are read back with pyreadstat (labels, formats, SAS dates) and the
numbers are recomputed with lifelines, statsmodels and scipy, then compared with what the
dashboard's core functions give on the database (core.endpoints, core.stats).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

pyreadstat = pytest.importorskip("pyreadstat")
etree = pytest.importorskip("lxml.etree")

from core import db
from core import repository as repo
from core.endpoints import sofa_response, time_to_death
from core.io import build_demo_database
from core.io.adam_export import export_adam
from core.io.adam_spec import DTYPE_TERMS, MAX_LABEL, MAX_NAME, datasets
from core.io.cli import main as cli_main
from core.rules import EndpointRules
from core.stats import compare_proportions, cox_hr, kaplan_meier, logrank
from core.vocab import ARM_LABELS, Arm

NAMES = ("ADSL", "ADSOFA", "ADRS", "ADTTE", "ADAE", "ADLB")
#: the cohort page's at-risk times (components/cohort/survival.py AT_RISK_TIMES)
AT_RISK = {28: (0, 7, 14, 21, 28), 90: (0, 15, 30, 45, 60, 75, 90)}
ARM_WORDS = ("Precision immunotherapy", "Placebo", "PRECISION", "PLACEBO")
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
XLINK = "{http://www.w3.org/1999/xlink}"


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory):
    """The demo cohort and its three exports: ``(engine, {"arm": dir, "blind": dir, "json": dir})``."""
    base = tmp_path_factory.mktemp("adam")
    engine = db.make_engine(f"sqlite:///{base / 'demo.sqlite'}")
    build_demo_database(engine, seed=20251208, n_randomised=281)
    dirs = {"arm": base / "xpt-arm", "blind": base / "xpt-blind", "json": base / "json-arm"}
    export_adam(engine, dirs["arm"], include_arm=True, file_format="xpt")
    export_adam(engine, dirs["blind"], include_arm=False, file_format="xpt")
    export_adam(engine, dirs["json"], include_arm=True, file_format="json")
    yield engine, dirs
    engine.dispose()


def read_xpt(folder: Path, name: str) -> tuple[pd.DataFrame, object]:
    return pyreadstat.read_xport(str(folder / f"{name.lower()}.xpt"))


def xpt_all(folder: Path) -> dict[str, pd.DataFrame]:
    return {n: read_xpt(folder, n)[0] for n in NAMES}


def blank(values: pd.Series) -> pd.Series:
    """XPT text: missing is ''."""
    return values.fillna("").astype(str) == ""


# ---------------------------------------------------------------------------------------------
# conformance (both exports)


@pytest.mark.parametrize("which", ["arm", "blind"])
def test_adam001_names_labels_types_formats(trial, which: str) -> None:
    _engine, dirs = trial
    spec = datasets()
    for name in NAMES:
        frame, meta = read_xpt(dirs[which], name)
        ds = spec[name]
        assert meta.table_name == name
        assert meta.file_label == ds.label
        assert len(ds.label) <= MAX_LABEL
        assert list(frame.columns) == list(ds.names(with_arm=which == "arm")), name
        for col, label in zip(meta.column_names, meta.column_labels, strict=True):
            assert re.fullmatch(r"[A-Z][A-Z0-9]*", col), col
            assert len(col) <= MAX_NAME, col
            assert label == ds.var(col).label, (name, col)
            assert 0 < len(label) <= MAX_LABEL, (name, col)
            kind = ds.var(col).kind
            fmt = meta.original_variable_types[col]
            if kind == "date":
                assert fmt == "DATE9", (name, col, fmt)
            elif kind == "datetime":
                assert fmt == "DATETIME20", (name, col, fmt)
            if kind in ("integer", "float"):
                assert meta.readstat_variable_types[col] == "double", (name, col)
            elif kind == "text":
                assert meta.readstat_variable_types[col] == "string", (name, col)
        # every integer variable holds whole numbers
        for col in frame.columns:
            if ds.var(col).kind == "integer":
                v = frame[col].dropna()
                assert (v == v.round()).all(), (name, col)


@pytest.mark.parametrize("which", ["arm", "blind"])
def test_adam002_adsl_required_variables_and_populations(trial, which: str) -> None:
    engine, dirs = trial
    adsl = read_xpt(dirs[which], "ADSL")[0]
    required = ["STUDYID", "USUBJID", "SUBJID", "SITEID", "AGE", "AGEU", "SEX", "RACE", "COUNTRY"]
    assert set(required) <= set(adsl.columns)
    arm_vars = {"ARM", "ARMCD", "ACTARM", "ACTARMCD", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN"}
    assert (arm_vars <= set(adsl.columns)) is (which == "arm")
    assert not (arm_vars & set(adsl.columns)) or which == "arm"
    assert adsl["USUBJID"].is_unique
    with engine.connect() as conn:
        randomised = {r[0] for r in conn.execute(sa.select(db.randomisation.c.patient_id))}
        removed = {
            r[0]
            for r in conn.execute(
                sa.select(db.disposition.c.patient_id).where(
                    db.disposition.c.withdrawn_with_data_removal.is_(True)
                )
            )
        }
        dosed = {r[0] for r in conn.execute(sa.select(db.doses.c.patient_id).distinct())}
    assert len(randomised) == 281
    assert len(removed) == 5
    assert set(adsl["USUBJID"]) == randomised
    assert (adsl["RANDFL"] == "Y").all()
    assert (adsl["ITTFL"] == "Y").all()
    assert set(adsl.loc[adsl["MITTFL"] == "N", "USUBJID"]) == removed
    assert set(adsl.loc[adsl["DATRMVFL"] == "Y", "USUBJID"]) == removed
    assert set(adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"]) == dosed
    assert set(adsl["AGEU"]) == {"YEARS", ""}  # '' only where AGE is missing (withdrawn)
    assert (blank(adsl["AGEU"]) == adsl["AGE"].isna()).all()
    assert set(adsl["SEX"]) <= {"M", "F", ""}
    assert set(adsl["COUNTRY"]) == {"GRC", "NLD", "DEU", "CHE", "ROU", "ITA"}
    assert set(adsl["RACE"]) == {"NOT REPORTED"}
    # numeric SAS dates read back as dates; the first dose date is the date of TRTSDTM
    kept = adsl[adsl["SAFFL"] == "Y"]
    assert (pd.to_datetime(kept["TRTSDT"]) == pd.to_datetime(kept["TRTSDTM"]).dt.normalize()).all()
    patients = repo.load_patients(engine).set_index("patient_id")
    s = adsl.set_index("USUBJID").loc[kept["USUBJID"]]
    assert (pd.to_datetime(s["TRTSDTM"]) == patients.loc[s.index, "anchor_time"]).all()
    if which == "arm":
        arms = repo.load_arms(engine).set_index("patient_id")["arm"]
        a = adsl.set_index("USUBJID")
        expected = arms.loc[a.index].map(lambda v: ARM_LABELS[Arm(v)])
        assert (a["TRT01P"] == expected).all()
        assert (a["ARM"] == expected).all()
        assert (a.loc[a["SAFFL"] == "Y", "TRT01A"] == expected[a["SAFFL"] == "Y"]).all()
        assert blank(a.loc[a["SAFFL"] == "N", "TRT01A"]).all()
        # withdrawn: 4 precision, 1 placebo in the demo's CONSORT
        assert a.loc[a["MITTFL"] == "N", "ARMCD"].value_counts().to_dict() == {
            "PRECISION": 4,
            "PLACEBO": 1,
        }


def _adam_day(adt: pd.Series, ref: pd.Series) -> pd.Series:
    d = (pd.to_datetime(adt) - pd.to_datetime(ref)).dt.days
    return d + (d >= 0).astype(int)


@pytest.mark.parametrize("which", ["arm", "blind"])
def test_adam003_bds_rules(trial, which: str) -> None:
    """PARAM/PARAMCD 1:1, ADY by the ADaM rule (no day 0), APRDY by the protocol's 24-hour
    clock, DTYPE from CDISC terminology, ANL01FL meaningful, AVALC <-> AVAL 1:1."""
    _engine, dirs = trial
    x = xpt_all(dirs[which])
    adsl = x["ADSL"].set_index("USUBJID")
    for name in ("ADSOFA", "ADRS", "ADTTE", "ADLB"):
        f = x[name]
        assert (f.groupby("PARAMCD")["PARAM"].nunique() == 1).all(), name
        assert (f.groupby("PARAM")["PARAMCD"].nunique() == 1).all(), name
        assert (f.groupby("PARAMCD")["PARAMN"].nunique() == 1).all(), name
        assert set(f["USUBJID"]) <= set(adsl.index[adsl["MITTFL"] == "Y"])
    for name in ("ADSOFA", "ADLB"):
        f = x[name]
        trtsdt = f["USUBJID"].map(adsl["TRTSDT"])
        assert (f["ADY"] != 0).all(), name
        assert (f["ADY"] == _adam_day(f["ADT"], trtsdt)).all(), name
        start = pd.to_datetime(f["USUBJID"].map(adsl["TRTSDTM"]))
        hours = (pd.to_datetime(f["ADTM"]) - start) / pd.Timedelta(hours=24)
        assert (f["APRDY"] == np.floor(hours) + 1).all(), name
        assert (pd.to_datetime(f["ADT"]) == pd.to_datetime(f["ADTM"]).dt.normalize()).all()
    adlb = x["ADLB"]
    # the two clocks differ on many records, and the protocol clock has a day 0
    assert (adlb["ADY"] != adlb["APRDY"]).sum() > 1000
    assert (adlb["APRDY"] == 0).any()
    sofa = x["ADSOFA"]
    assert set(sofa["DTYPE"]) - {""} <= set(DTYPE_TERMS)
    assert {"LOCF", "WC"} <= set(sofa["DTYPE"])
    assert set(sofa.loc[sofa["DTYPE"] == "WC", "PARAMCD"]) == {"SOFA"}
    assert (sofa.loc[sofa["DTYPE"] == "WC", "AVAL"] == 24).all()
    rules = EndpointRules()
    anl = (sofa["PARAMCD"] == "SOFA") & (sofa["AVISITN"] <= rules.last_day)
    assert ((sofa["ANL01FL"] == "Y") == anl).all()
    anl2 = (sofa["PARAMCD"] == "SOFA") & (sofa["AVISITN"] <= rules.day15_last_day)
    assert ((sofa["ANL02FL"] == "Y") == anl2).all()
    assert ((sofa["ABLFL"] == "Y") == (sofa["AVISITN"] == 1)).all()
    assert (sofa["CHG"] == sofa["AVAL"] - sofa["BASE"]).all()
    # ADLB: ANL01FL only on SOFA inputs inside protocol days 1-28, and on some but not all
    flagged = adlb[adlb["ANL01FL"] == "Y"]
    assert 0 < len(flagged) < len(adlb)
    assert flagged["APRDY"].between(1, 28).all()
    assert not set(flagged["PARAMCD"]) & {"LACTATE", "WEIGHT", "FERRITIN", "HLADR"}
    # ADRS: one PARAMCD per endpoint measure; AVALC <-> AVAL one-to-one within each
    adrs = x["ADRS"]
    assert set(adrs["PARAMCD"]) == {"SOFARSP9", "SOFADEC9", "SOFARSP15", "SOFADEC15"}
    for code, g in adrs.groupby("PARAMCD"):
        if code.startswith("SOFARSP"):
            pairs = set(zip(g["AVALC"], g["AVAL"], strict=True))
            assert pairs == {("Y", 1.0), ("N", 0.0)}, code
        else:
            assert blank(g["AVALC"]).all()
        assert g["USUBJID"].is_unique
    # ADAE: controlled AESEV
    adae = x["ADAE"]
    assert set(adae["AESEV"]) == {"SEVERE", ""}
    assert set(adae["ASEV"]) == {"SEVERE", "NOT SEVERE"}
    assert ((adae["AESEV"] == "SEVERE") == (adae["ASEV"] == "SEVERE")).all()
    assert (adae["ASTDY"] != 0).all()
    assert (adae["ASTDY"] == _adam_day(adae["ASTDT"], adae["USUBJID"].map(adsl["TRTSDT"]))).all()
    assert ("TRTA" in adae.columns) is (which == "arm")
    # ADTTE: protocol-day durations, censoring descriptions
    tte = x["ADTTE"]
    assert set(tte.loc[tte["CNSR"] == 0, "EVNTDESC"]) == {"DEATH"}
    assert blank(tte.loc[tte["CNSR"] == 0, "CNSDTDSC"]).all()
    for h in (28, 90):
        cens = tte[(tte["PARAMCD"] == f"OS{h}") & (tte["CNSR"] == 1)]
        assert (cens["AVAL"] == h).all()
        assert set(cens["CNSDTDSC"]) == {f"END OF PROTOCOL DAY {h}"}
    events = tte[tte["CNSR"] == 0]
    assert (events["AVAL"] == events["USUBJID"].map(adsl["DTHPRDY"])).all()
    assert (
        pd.to_datetime(events["ADT"]) == pd.to_datetime(events["USUBJID"].map(adsl["DTHDT"]))
    ).all()
    assert (
        pd.to_datetime(tte["STARTDT"]) == pd.to_datetime(tte["USUBJID"].map(adsl["TRTSDT"]))
    ).all()


def test_adam004_blinded_export_has_every_guarded_item_absent(trial) -> None:
    """Without the arm: no treatment variable or value anywhere (define.xml included), no
    ferritin / HLA-DR after the first sample, no AESI flag and no record of an AESI preferred
    term; everything else equals the unblinded export."""
    engine, dirs = trial
    blind, arm = xpt_all(dirs["blind"]), xpt_all(dirs["arm"])
    for path in sorted(dirs["blind"].iterdir()):
        data = path.read_bytes()
        for word in ARM_WORDS:
            assert word.encode() not in data, (path.name, word)
    for name, frame in blind.items():
        assert not {
            c for c in frame.columns if c.startswith(("TRT0", "TRTP", "TRTA", "ARM", "ACTARM"))
        }, name
        assert "AESI" not in frame.columns
    # post-baseline biomarkers: the blinded ADLB has exactly the first sample of each patient
    bio = ["FERRITIN", "HLADR"]
    b = blind["ADLB"][blind["ADLB"]["PARAMCD"].isin(bio)]
    a = arm["ADLB"][arm["ADLB"]["PARAMCD"].isin(bio)]
    first = a.groupby("USUBJID")["ADTM"].transform("min")
    post = a[a["ADTM"] > first]
    assert post["USUBJID"].nunique() > 100
    assert len(post) > 500
    assert (b.groupby("USUBJID")["ADTM"].nunique() == 1).all()
    assert len(b) == int((a["ADTM"] == first).sum())
    assert (b["ABLFL"] == "Y").all()
    others = blind["ADLB"][~blind["ADLB"]["PARAMCD"].isin(bio)].reset_index(drop=True)
    others_arm = arm["ADLB"][~arm["ADLB"]["PARAMCD"].isin(bio)].drop(columns=["TRTP", "TRTPN"])
    pd.testing.assert_frame_equal(others, others_arm.reset_index(drop=True))
    # AESI: the flag and every record of a preferred term that is an AESI are withheld
    aes = repo.load_adverse_events(engine)
    aesi_pts = set(aes.loc[aes["aesi"].notna(), "pt"])
    assert aesi_pts
    assert arm["ADAE"]["AESI"].ne("").sum() > 100
    assert not set(blind["ADAE"]["AEDECOD"]) & aesi_pts
    assert len(blind["ADAE"]) == int((~arm["ADAE"]["AEDECOD"].isin(aesi_pts)).sum())
    # the rest is the same data
    for name in ("ADSL", "ADSOFA", "ADRS", "ADTTE"):
        drop = [c for c in arm[name].columns if c not in blind[name].columns]
        assert drop, name
        pd.testing.assert_frame_equal(blind[name], arm[name].drop(columns=drop), obj=name)


# ---------------------------------------------------------------------------------------------
# define.xml and Dataset-JSON


@pytest.mark.parametrize("which", ["arm", "blind", "json"])
def test_adam005_define_xml_names_every_variable_of_every_dataset(trial, which: str) -> None:
    _engine, dirs = trial
    tree = etree.parse(str(dirs[which] / "define.xml"))
    root = tree.getroot()
    assert root.tag == f"{ODM}ODM"
    assert root.get("ODMVersion") == "1.3.2"
    mdv = root.find(f"{ODM}Study/{ODM}MetaDataVersion")
    assert mdv.get(f"{DEF}DefineVersion") == "2.1.0"
    item_defs = {i.get("OID"): i for i in mdv.iter(f"{ODM}ItemDef")}
    codelists = {c.get("OID"): c for c in mdv.iter(f"{ODM}CodeList")}
    methods = {m.get("OID"): m for m in mdv.iter(f"{ODM}MethodDef")}
    groups = {g.get("Name"): g for g in mdv.iter(f"{ODM}ItemGroupDef")}
    assert sorted(groups) == sorted(NAMES)
    for name in NAMES:
        g = groups[name]
        href = g.find(f"{DEF}leaf").get(f"{XLINK}href")
        assert (dirs[which] / href).is_file()
        if which == "json":
            columns = [c["name"] for c in json.loads((dirs[which] / href).read_text())["columns"]]
        else:
            columns = list(read_xpt(dirs[which], name)[0].columns)
        refs = g.findall(f"{ODM}ItemRef")
        named = [item_defs[r.get("ItemOID")].get("Name") for r in refs]
        assert named == columns, name
        for r in refs:
            item = item_defs[r.get("ItemOID")]
            label = item.find(f"{ODM}Description/{ODM}TranslatedText").text
            assert label
            assert len(label) <= MAX_LABEL
            assert item.find(f"{DEF}Origin") is not None
            if r.get("MethodOID"):
                assert r.get("MethodOID") in methods
            ref = item.find(f"{ODM}CodeListRef")
            if ref is not None:
                assert ref.get("CodeListOID") in codelists
        keys = sorted(
            (int(r.get("KeySequence")), item_defs[r.get("ItemOID")].get("Name"))
            for r in refs
            if r.get("KeySequence")
        )
        assert [k for _, k in keys] == list(datasets()[name].keys)
    text = etree.tostring(root, encoding="unicode")
    # derivations: SOFA cut-offs and rules, the endpoint, imputation, survival, study days
    sofa_aval = methods["MT.ADSOFA.AVAL"].find(f"{ODM}Description/{ODM}TranslatedText").text
    assert "platelets (10^3/uL): &lt; 150 -&gt; 1" in etree.tostring(
        methods["MT.ADSOFA.AVAL"], encoding="unicode"
    )
    assert "creatinine (mg/dL): >= 1.2 -> 1" in sofa_aval
    adrs_aval = methods["MT.ADRS.AVAL"].find(f"{ODM}Description/{ODM}TranslatedText").text
    assert "decrease > 1.4" in adrs_aval
    assert "LOCF" in adrs_aval
    assert (
        "time_to_death"
        in methods["MT.ADTTE.AVAL"].find(f"{ODM}Description/{ODM}TranslatedText").text
    )
    dtype = [i.get("CodedValue") for i in codelists["CL.DTYPE"].iter(f"{ODM}CodeListItem")]
    assert dtype == list(DTYPE_TERMS)
    assert "24 h" in methods["MT.ADLB.APRDY"].find(f"{ODM}Description/{ODM}TranslatedText").text
    assert ("CL.ARM" in codelists) is (which != "blind")
    if which == "blind":
        assert "Blinded export" in mdv.get("Description")
        assert not any(w in text for w in ARM_WORDS)


def test_adam006_dataset_json_matches_the_xpt(trial) -> None:
    _engine, dirs = trial
    for name in NAMES:
        obj = json.loads((dirs["json"] / f"{name.lower()}.json").read_text())
        assert obj["datasetJSONVersion"] == "1.1.0"
        assert obj["name"] == name
        assert obj["itemGroupOID"] == f"IG.{name}"
        assert obj["records"] == len(obj["rows"])
        xpt = read_xpt(dirs["arm"], name)[0]
        assert [c["name"] for c in obj["columns"]] == list(xpt.columns)
        assert obj["records"] == len(xpt)
        spec = datasets()[name]
        for c in obj["columns"]:
            kind = spec.var(c["name"]).kind
            if kind in ("date", "datetime"):
                assert (c["dataType"], c["targetDataType"]) == (kind, "integer")
    tte = json.loads((dirs["json"] / "adtte.json").read_text())
    names = [c["name"] for c in tte["columns"]]
    frame = pd.DataFrame(tte["rows"], columns=names)
    xpt = read_xpt(dirs["arm"], "ADTTE")[0]
    assert frame["AVAL"].tolist() == xpt["AVAL"].astype(int).tolist()
    assert frame["CNSR"].tolist() == xpt["CNSR"].astype(int).tolist()
    assert frame["ADT"].tolist() == pd.to_datetime(xpt["ADT"]).dt.strftime("%Y-%m-%d").tolist()


# ---------------------------------------------------------------------------------------------
# the dashboard's numbers from the XPT files, with independent libraries


def _dashboard(engine: sa.Engine) -> dict:
    """What the cohort page computes (components/data/cohort.py -> core), on the database."""
    p = repo.load_patients(engine)
    p = p[p["trial_participant"]]
    arms = repo.load_arms(engine).set_index("patient_id")["arm"]
    group = p["patient_id"].map(arms).map(lambda v: ARM_LABELS[Arm(v)]).to_numpy()
    out = {}
    for h in (28, 90):
        t = time_to_death(p[["patient_id", "death_study_day"]], horizon_days=h)
        g = pd.Series(group, index=p["patient_id"]).loc[t["patient_id"]].to_numpy()
        out[h] = {
            "km": kaplan_meier(
                t["duration_days"], t["event"], g, horizon=h, at_risk_times=AT_RISK[h]
            ),
            "logrank": logrank(t["duration_days"], t["event"], g, horizon=h),
            "cox": cox_hr(
                t["duration_days"],
                t["event"],
                pd.Series(g).map({v: k.value for k, v in ARM_LABELS.items()}),
                horizon=h,
            ),
        }
    rules = EndpointRules()
    daily = repo.load_daily_sofa(engine, rules_key=db_rules_key())
    r = sofa_response(
        daily,
        p[["patient_id", "death_study_day"]],
        last_day=rules.last_day,
        threshold=rules.threshold,
        death_score=rules.death_score,
    ).set_index("patient_id")
    resp = pd.Series(group, index=p["patient_id"].to_numpy())
    out["responders"] = {
        lab: (int(r.loc[resp.index[resp == lab], "responder"].sum()), int((resp == lab).sum()))
        for lab in (ARM_LABELS[Arm.PRECISION], ARM_LABELS[Arm.PLACEBO])
    }
    return out


def db_rules_key() -> str:
    from core.io.schema import DEFAULT_SOFA_RULES

    return DEFAULT_SOFA_RULES.key()


def test_adam007_survival_recomputed_from_xpt_equals_the_dashboard(trial) -> None:
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    engine, dirs = trial
    tte = read_xpt(dirs["arm"], "ADTTE")[0]
    dash = _dashboard(engine)
    for h in (28, 90):
        d = tte[tte["PARAMCD"] == f"OS{h}"]
        dur, ev = d["AVAL"].to_numpy(), (d["CNSR"] == 0).to_numpy()
        for arm in (Arm.PRECISION, Arm.PLACEBO):
            lab = ARM_LABELS[arm]
            m = (d["TRTP"] == lab).to_numpy()
            ours = dash[h]["km"][lab]
            # numbers at risk (duration >= t), medians, the curve: lifelines and statsmodels
            at_risk = [int((dur[m] >= t).sum()) for t in AT_RISK[h]]
            assert at_risk == ours.at_risk["n_at_risk"].tolist(), (h, lab)
            kmf = KaplanMeierFitter().fit(dur[m], ev[m])
            assert kmf.median_survival_time_ == ours.median_days or (
                math.isinf(ours.median_days) and math.isinf(kmf.median_survival_time_)
            )
            sf = SurvfuncRight(dur[m], ev[m].astype(int))
            np.testing.assert_allclose(
                sf.surv_prob,
                ours.curve.loc[ours.curve["n_events"] > 0, "survival"].to_numpy(),
                rtol=1e-12,
            )
            assert int(ev[m].sum()) == int(ours.curve["n_events"].sum())
        g = d["TRTP"].to_numpy()
        lr = logrank_test(
            dur[g == ARM_LABELS[Arm.PRECISION]],
            dur[g == ARM_LABELS[Arm.PLACEBO]],
            ev[g == ARM_LABELS[Arm.PRECISION]],
            ev[g == ARM_LABELS[Arm.PLACEBO]],
        )
        assert lr.p_value == pytest.approx(dash[h]["logrank"].p_value, rel=1e-9)
        _chi2, p_sm = survdiff(dur, ev.astype(int), g)
        assert p_sm == pytest.approx(dash[h]["logrank"].p_value, rel=1e-6)
        treated = (d["TRTPN"] == 1).astype(float).to_numpy()
        cph = CoxPHFitter().fit(
            pd.DataFrame({"t": dur, "e": ev.astype(int), "x": treated}), "t", "e"
        )
        assert math.exp(cph.params_["x"]) == pytest.approx(dash[h]["cox"].hazard_ratio, rel=1e-9)
        ph = PHReg(dur, treated[:, None], status=ev.astype(int), ties="efron").fit()
        # statsmodels' own Efron implementation and optimiser agree to 1e-4 (not to the bit)
        assert math.exp(ph.params[0]) == pytest.approx(dash[h]["cox"].hazard_ratio, rel=1e-3)


def test_adam008_primary_endpoint_recomputed_from_xpt(trial) -> None:
    from scipy.stats import fisher_exact

    engine, dirs = trial
    x = xpt_all(dirs["arm"])
    dash = _dashboard(engine)
    adrs = x["ADRS"]
    rsp = adrs[adrs["PARAMCD"] == "SOFARSP9"]
    counts = {lab: (int((g["AVALC"] == "Y").sum()), len(g)) for lab, g in rsp.groupby("TRTP")}
    assert counts == dash["responders"]
    (e1, n1), (e2, n2) = counts[ARM_LABELS[Arm.PRECISION]], counts[ARM_LABELS[Arm.PLACEBO]]
    ours = compare_proportions(e1, n1, e2, n2)
    assert fisher_exact([[e1, n1 - e1], [e2, n2 - e2]]).pvalue == pytest.approx(
        ours.p_value, rel=1e-12
    )
    # the decrease, recomputed from ADSOFA's ANL01FL records (day 1 minus mean of days 2-9)
    sofa = x["ADSOFA"]
    anl = sofa[sofa["ANL01FL"] == "Y"]
    base = anl[anl["AVISITN"] == 1].set_index("USUBJID")["AVAL"]
    follow = anl[anl["AVISITN"] > 1].groupby("USUBJID")["AVAL"].agg(["mean", "size"])
    full = follow[follow["size"] == EndpointRules().last_day - 1]
    dec = adrs[adrs["PARAMCD"] == "SOFADEC9"].set_index("USUBJID")["AVAL"].dropna()
    assert len(dec) > 250
    np.testing.assert_allclose(
        dec.loc[full.index], (base.loc[full.index] - full["mean"]).to_numpy()
    )
    resp = rsp.set_index("USUBJID")["AVAL"]
    assert ((dec > 1.4).astype(float) == resp.loc[dec.index]).all()


def test_adam009_table1_with_tableone(trial) -> None:
    """Table 1 inputs from the XPT ADSL (tableone, if installed) against pandas on the DB."""
    tableone = pytest.importorskip("tableone")
    engine, dirs = trial
    adsl = read_xpt(dirs["arm"], "ADSL")[0]
    mitt = adsl[adsl["MITTFL"] == "Y"]
    t1 = tableone.TableOne(
        mitt, columns=["AGE", "SEX"], categorical=["SEX"], groupby="TRT01P", nonnormal=["AGE"]
    )
    p = repo.load_patients(engine)
    p = p[p["trial_participant"]]
    arms = repo.load_arms(engine).set_index("patient_id")["arm"]
    p = p.assign(group=p["patient_id"].map(arms).map(lambda v: ARM_LABELS[Arm(v)]))
    for lab, g in p.groupby("group"):
        med = g["age_years"].median()
        q1, q3 = g["age_years"].quantile([0.25, 0.75])
        cell = t1.tableone.loc[("AGE, median [Q1,Q3]", ""), ("Grouped by TRT01P", lab)]
        assert cell == f"{med:.1f} [{q1:.1f},{q3:.1f}]"
        n = t1.tableone.loc[("n", ""), ("Grouped by TRT01P", lab)]
        assert int(n) == len(g)


# ---------------------------------------------------------------------------------------------
# command line


def test_adam010_cli_formats_and_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'small.sqlite'}"
    engine = db.make_engine(url)
    build_demo_database(engine, seed=7, n_randomised=12)
    for fmt, suffix in (("xpt", "xpt"), ("json", "json"), ("csv", "csv"), ("adam", "csv")):
        out = tmp_path / fmt
        assert cli_main(["--database-url", url, "export", str(out), "--format", fmt]) == 0
        printed = capsys.readouterr().out.split()
        assert sorted(Path(p).name for p in printed) == sorted(
            [f"{n.lower()}.{suffix}" for n in NAMES] + ["define.xml"]
        )
        assert all(Path(p).is_file() for p in printed)
    row = repo.load_audit(engine).iloc[0]
    assert row["detail"].startswith("ADaM export, blinded (no ARM/ARMCD): ")
    assert "define.xml" in row["detail"]
    assert (
        cli_main(
            [
                "--database-url",
                url,
                "export",
                str(tmp_path / "x"),
                "--format",
                "xpt",
                "--file-format",
                "parquet",
            ]
        )
        == 2
    )
    engine.dispose()


def test_adam011_docs_name_every_sponsor_variable_and_dtype() -> None:
    """docs/adam.md documents every variable that is not in the ADaM IG and every DTYPE."""
    text = (Path(__file__).resolve().parent.parent / "docs/adam.md").read_text()
    for ds in datasets().values():
        for var in ds.variables:
            if not var.standard:
                assert f"`{var.name}`" in text, (ds.name, var.name)
                assert var.label in text, (ds.name, var.name)
    for term in DTYPE_TERMS:
        assert f"`{term}`" in text


def test_adam012_export_without_trial_data_writes_empty_datasets(tmp_path: Path) -> None:
    """A database without randomised patients (an empty store, a ward-only feed) gives the six
    datasets with every variable and no record, not an error and not ward patients."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    db.ensure_schema(engine)
    paths = export_adam(engine, tmp_path / "out", include_arm=False, file_format="xpt")
    for name in NAMES:
        frame, meta = read_xpt(tmp_path / "out", name)
        assert len(frame) == 0
        assert list(frame.columns) == list(datasets()[name].names(with_arm=False))
        assert meta.table_name == name
    assert sorted(paths) == sorted(NAMES)
    engine.dispose()


def test_adam013_country_codes() -> None:
    from core.io.adam_export import country_iso3

    sites = pd.Series(["S1", "S2", "S3", "S4"])
    names = pd.Series(["Greece", "CHE", None, "Netherlands"])
    assert country_iso3(names, sites).tolist() == ["GRC", "CHE", None, "NLD"]
    with pytest.raises(ValueError, match=r"site S9: country 'Narnia' has no ISO 3166-1 alpha-3"):
        country_iso3(pd.Series(["Narnia"]), pd.Series(["S9"]))


def test_adam014_zip_for_a_ui_download(tmp_path: Path) -> None:
    """The in-memory zip holds the six datasets and define.xml; the blinded one names no arm."""
    import io
    import zipfile

    from core.io.adam_export import export_adam_zip

    engine = db.make_engine(f"sqlite:///{tmp_path / 'small.sqlite'}")
    build_demo_database(engine, seed=7, n_randomised=12)
    for include_arm in (True, False):
        data = export_adam_zip(engine, include_arm=include_arm, file_format="xpt")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = sorted(zf.namelist())
            assert names == sorted([f"{n.lower()}.xpt" for n in NAMES] + ["define.xml"])
            adsl, _meta = pyreadstat.read_xport(io.BytesIO(zf.read("adsl.xpt")))
            assert len(adsl) == 12
            assert ("TRT01P" in adsl.columns) is include_arm
            blob = b"".join(zf.read(n) for n in names)
        assert any(w.encode() in blob for w in ARM_WORDS) is include_arm
    engine.dispose()
