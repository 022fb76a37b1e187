"""Synthetic ImmunoSep-like cohort (core.synth): determinism, exact flow counts, calibration.

Calibration is computed with the project's own engine (core.derive -> core.endpoints), so the
raw observations have to encode the published outcomes (clinical.md 1.8; SRC-AUDIT,
SRC-JAMA-ABS). Tolerances are stated next to each published number.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

from core.derive import derive_daily_sofa
from core.endpoints import mortality, sofa_response
from core.phenotype import classify_frame, immune_reversal, reversal_subset
from core.rules import SofaRules
from core.synth import SCREENING_EXCLUSIONS, SyntheticTrial, death_study_day, generate_trial
from core.synth import generate as synth_generate
from core.synth.cohort import draw_cohort
from core.synth.flow import draw_flow
from core.synth.latent import _delta, _effective, _fallback, draw_trajectories
from core.time import study_day
from core.units import ACCEPTED_UNITS, normalize_infusions, normalize_observations, unit_key

PRECISION, PLACEBO = "precision", "placebo"


@pytest.fixture(scope="module")
def trial() -> SyntheticTrial:
    return generate_trial()


@pytest.fixture(scope="module")
def engine(trial: SyntheticTrial):
    return derive_daily_sofa(trial.observations, trial.infusions, trial.episodes, trial.patients)


@pytest.fixture(scope="module")
def arms(trial: SyntheticTrial) -> pd.Series:
    return trial.randomisation.set_index("patient_id")["arm"]


@pytest.fixture(scope="module")
def patients_dsd(trial: SyntheticTrial) -> pd.DataFrame:
    return trial.patients.assign(death_study_day=death_study_day(trial.patients))


@pytest.fixture(scope="module")
def response(engine, patients_dsd, arms) -> pd.DataFrame:
    r = sofa_response(engine.daily, patients_dsd[["patient_id", "death_study_day"]])
    return r.assign(arm=r["patient_id"].map(arms))


def _bytes(df: pd.DataFrame) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue(), df.to_csv(index=False).encode()


def _rate(frame: pd.DataFrame, col: str, arm: str) -> float:
    return float(frame.loc[frame["arm"] == arm, col].mean())


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_tables(trial: SyntheticTrial) -> None:
    again = generate_trial()
    for name in (*SyntheticTrial.TABLES, "truth", "latent_daily"):
        a, b = getattr(trial, name), getattr(again, name)
        assert _bytes(a) == _bytes(b), name
    assert len(trial.observations) > 50_000


def test_other_seed_differs(trial: SyntheticTrial) -> None:
    other = generate_trial(seed=7)
    assert _bytes(other.observations) != _bytes(trial.observations)
    assert _bytes(other.patients) != _bytes(trial.patients)
    # the flow counts stay exact under any seed
    assert len(other.patients) == 276
    assert len(other.disposition) == 672


# --- exact flow counts at the default size (clinical.md 1.8.1) ---------------------------------


def test_screening_and_randomisation_counts(trial: SyntheticTrial) -> None:
    disp = trial.disposition
    assert len(disp) == 672
    assert disp["screening_id"].is_unique
    excluded = disp[disp["patient_id"].isna()]
    assert len(excluded) == 391
    counts = excluded["excluded_reason"].value_counts()
    assert sorted(counts.tolist(), reverse=True) == [355, 14, 8, 5, 2, 2, 2, 2, 1]
    assert set(counts.index) == {label for label, _ in SCREENING_EXCLUSIONS}
    assert all("synthetic" in label for label in counts.index)
    randomised = disp[disp["patient_id"].notna()]
    assert randomised["excluded_reason"].isna().all()
    assert len(randomised) == 281

    rnd = trial.randomisation
    assert len(rnd) == 281
    assert rnd["patient_id"].is_unique
    assert rnd["arm"].value_counts().to_dict() == {PLACEBO: 146, PRECISION: 135}
    assert set(rnd["patient_id"]) == set(randomised["patient_id"])


def test_withdrawals_removed_from_clinical_data(trial: SyntheticTrial, arms: pd.Series) -> None:
    disp = trial.disposition
    wd = disp.loc[disp["withdrawn_with_data_removal"], "patient_id"]
    assert wd.map(arms).value_counts().to_dict() == {PRECISION: 4, PLACEBO: 1}
    assert len(trial.patients) == 276
    assert set(trial.patients["patient_id"]) == set(arms.index) - set(wd)
    analysed = trial.patients["patient_id"].map(arms).value_counts().to_dict()
    assert analysed == {PRECISION: 131, PLACEBO: 145}
    for name in ("observations", "infusions", "episodes", "biomarkers", "doses", "adverse_events"):
        assert not getattr(trial, name)["patient_id"].isin(wd).any(), name


def test_sites_and_countries(trial: SyntheticTrial) -> None:
    sites = trial.sites
    assert len(sites) == 33
    assert sites["site_id"].tolist() == [f"SYN-S{i:02d}" for i in range(1, 34)]
    assert set(sites["country"]) == {
        "Greece",
        "Netherlands",
        "Germany",
        "Switzerland",
        "Romania",
        "Italy",
    }
    per_country = trial.patients.merge(sites, on="site_id")["country"].value_counts(normalize=True)
    assert per_country.index[0] == "Greece"
    assert per_country["Greece"] > 0.5
    assert trial.patients["site_id"].isin(sites["site_id"]).all()


def test_ids_are_synthetic(trial: SyntheticTrial) -> None:
    assert trial.patients["synthetic"].all()
    assert trial.patients["patient_id"].str.fullmatch(r"SYN-\d{2}-\d{4}").all()
    for name in SyntheticTrial.TABLES:
        frame = getattr(trial, name)
        for col in ("patient_id", "site_id", "screening_id"):
            if col in frame:
                ids = frame[col].dropna()
                assert len(ids) > 0, (name, col)
                assert ids.str.startswith("SYN-").all(), (name, col)
    # patient id carries its site number
    site_no = trial.patients["patient_id"].str.slice(4, 6)
    assert (("SYN-S" + site_no) == trial.patients["site_id"]).all()


def test_phenotypes_by_arm_from_baseline_biomarkers(trial: SyntheticTrial, arms) -> None:
    base = trial.biomarkers.drop_duplicates("patient_id").reset_index(drop=True)
    assert len(base) == 276
    # baseline sample taken at screening, before randomisation
    rand_at = base["patient_id"].map(trial.patients.set_index("patient_id")["randomised_at"])
    assert (base["time"] < rand_at).all()
    cls = classify_frame(base)
    tab = pd.crosstab(base["patient_id"].map(arms), cls["phenotype"])
    assert tab.loc[PRECISION, "MALS"] == 25
    assert tab.loc[PLACEBO, "MALS"] == 23
    assert tab.loc[PRECISION, "SIP"] == 106
    assert tab.loc[PLACEBO, "SIP"] == 122
    assert cls["near_threshold"].sum() >= 20  # some values close to 4420 / 5000
    disp = trial.disposition.dropna(subset=["patient_id"])
    disp = disp.set_index("patient_id")["phenotype_at_screening"]
    assert (base["patient_id"].map(disp).to_numpy() == cls["phenotype"].to_numpy()).all()


# --- calibration with the project's engine (clinical.md 1.5, 1.8.2, 1.8.3) ---------------------


def test_engine_reproduces_latent_daily_sofa(trial: SyntheticTrial, engine) -> None:
    merged = engine.daily.merge(
        trial.latent_daily, on=["patient_id", "study_day"], suffixes=("", "_latent")
    )
    assert len(merged) == len(trial.latent_daily)
    for col in [c for c in trial.latent_daily if c.startswith("sofa_")]:
        assert (merged[col] == merged[f"{col}_latent"]).all(), col


def test_primary_endpoint_calibration(response: pd.DataFrame, trial: SyntheticTrial) -> None:
    # published 46/131 (35.1 %) vs 26/145 (17.9 %); tolerance ±6 pp
    assert response["evaluable"].all()
    p_prec = _rate(response, "responder", PRECISION)
    p_plac = _rate(response, "responder", PLACEBO)
    assert abs(p_prec - 46 / 131) <= 0.06
    assert abs(p_plac - 26 / 145) <= 0.06
    assert p_prec - p_plac > 0.08
    designed = response["patient_id"].map(trial.truth.set_index("patient_id")["designed_responder"])
    assert (response["responder"] == designed).mean() >= 0.99


#: clinical.md 1.8.3, day-15 SOFA response (days 2..15): (events, n) per stratum and arm
DAY15 = {
    ("MALS", PRECISION): (12, 25),
    ("MALS", PLACEBO): (5, 23),
    ("SIP", PRECISION): (40, 106),
    ("SIP", PLACEBO): (29, 122),
}


def test_day15_response_is_designed_exactly(
    engine, patients_dsd: pd.DataFrame, arms: pd.Series, trial: SyntheticTrial
) -> None:
    """The project's engine recomputes the day-15 response (days 2..15, death = 24, LOCF;
    clinical.md 1.6) from the raw data: exactly the published 52/131 vs 34/145 and the
    published strata, patient by patient the designed status."""
    r = sofa_response(
        engine.daily, patients_dsd[["patient_id", "death_study_day"]], last_day=15
    ).set_index("patient_id")
    truth = trial.truth.set_index("patient_id")
    assert r["evaluable"].all()
    assert (r["responder"] == truth.loc[r.index, "designed_responder_d15"]).all()
    assert (truth["designed_responder_d15"] == (truth["latent_sofa_decrease_d15"] > 1.4)).all()
    got = r.assign(arm=arms, phenotype=truth["phenotype"])
    for (ph, arm), (events, n) in DAY15.items():
        cell = got[(got["phenotype"] == ph) & (got["arm"] == arm)]
        assert (int(cell["responder"].sum()), len(cell)) == (events, n), (ph, arm)
    by_arm = got.groupby("arm")["responder"].agg(["sum", "size"])
    assert by_arm.loc[PRECISION].tolist() == [52, 131]
    assert by_arm.loc[PLACEBO].tolist() == [34, 145]
    # the SAP convention: a death by day 15 scores 24 from that day on, never a responder
    died = got["died_by_last_day"]
    assert died.sum() > 0
    assert not got.loc[died, "responder"].any()
    # consistent with day 9: the day-9 responders alive on day 15 keep their response
    d9 = truth["designed_responder"]
    assert (got.loc[d9 & ~died, "responder"]).all()
    assert (got["responder"] & ~d9).sum() > 0  # and some respond late


def test_primary_endpoint_strata(response: pd.DataFrame, trial: SyntheticTrial) -> None:
    # published MALS 12/25 vs 4/23, SIP 34/106 vs 22/122; tolerance ±10 pp (small strata)
    pheno = response["patient_id"].map(trial.truth.set_index("patient_id")["phenotype"])
    for ph, prec, plac in (("MALS", 12 / 25, 4 / 23), ("SIP", 34 / 106, 22 / 122)):
        sub = response[pheno == ph]
        assert abs(_rate(sub, "responder", PRECISION) - prec) <= 0.10
        assert abs(_rate(sub, "responder", PLACEBO) - plac) <= 0.10


def test_mortality_calibration(patients_dsd: pd.DataFrame, arms: pd.Series) -> None:
    for horizon, prec, plac, tol in (
        (28, 57 / 131, 72 / 145, 0.07),
        (90, 90 / 131, 98 / 145, 0.07),
    ):
        mort = mortality(patients_dsd, horizon_days=horizon)
        mort["arm"] = mort["patient_id"].map(arms)
        assert abs(_rate(mort, "died", PRECISION) - prec) <= tol, horizon
        assert abs(_rate(mort, "died", PLACEBO) - plac) <= tol, horizon
    # deaths by day 9: 21/131 (16.0 %) vs 29/145 (20.0 %); tolerance ±5 pp
    mort = mortality(patients_dsd, horizon_days=9)
    mort["arm"] = mort["patient_id"].map(arms)
    assert abs(_rate(mort, "died", PRECISION) - 21 / 131) <= 0.05
    assert abs(_rate(mort, "died", PLACEBO) - 29 / 145) <= 0.05
    assert (patients_dsd["death_study_day"].dropna() >= 2).all()
    assert (patients_dsd["death_study_day"].dropna() <= 90).all()


def test_baseline_calibration(trial: SyntheticTrial, engine, arms) -> None:
    p = trial.patients
    assert abs(p["age_years"].mean() - 70) <= 2
    assert abs(p["mechanical_ventilation"].mean() - 0.89) <= 0.04
    day1 = engine.daily[engine.daily["study_day"] == 1]
    assert len(day1) == 276
    assert abs(day1["sofa_total"].median() - 9) <= 1
    assert 0.35 <= (day1["sofa_total"] >= 10).mean() <= 0.6  # published 135/276 = 48.9 %
    assert abs((p["sex"] == "F").mean() - 93 / 276) <= 0.05
    assert p["sex"].isin(["F", "M"]).all()


def test_day9_locf_share(response: pd.DataFrame, engine) -> None:
    # published (10 + 13) / 276 = 8.3 % alive without a day-9 SOFA; tolerance ±3 pp
    day9 = set(engine.daily.loc[engine.daily["study_day"] == 9, "patient_id"])
    alive = response[~response["died_by_last_day"]]
    share = (~alive["patient_id"].isin(day9)).sum() / len(response)
    assert abs(share - 23 / 276) <= 0.03
    # LOCF of single components happens too (missing labs)
    imputed = engine.daily.loc[engine.daily["study_day"] >= 2, "liver_imputation"]
    assert (imputed == "locf").mean() > 0.03


def test_immune_reversal_calibration(trial: SyntheticTrial, arms) -> None:
    # published 46/59 (78.0 %) vs 32/66 (48.5 %) in the blood-sampling subset, exactly, as
    # clinical.md §1.6 counts them (core.phenotype.reversal_subset: every patient of the
    # subset, the screening sample as the baseline)
    b = trial.biomarkers.merge(trial.patients[["patient_id", "anchor_time"]], on="patient_id")
    b["study_day"] = ((b["time"] - b["anchor_time"]) // pd.Timedelta(hours=24)).astype(int) + 1
    base_day = b.drop_duplicates("patient_id")["study_day"]
    assert (base_day <= 0).all()  # screening sample, before the first dose
    assert set(b["study_day"]) - set(base_day) == {3, 5, 7, 15, 28}
    base = b.drop_duplicates("patient_id")
    pheno = pd.Series(classify_frame(base)["phenotype"].to_numpy(), index=base["patient_id"])
    rev = immune_reversal(b, pheno)
    rev["arm"] = rev["patient_id"].map(arms)
    sampled = reversal_subset(rev)
    assert sampled["arm"].value_counts().to_dict() == {PLACEBO: 66, PRECISION: 59}
    assert sampled.groupby("arm")["reversed"].sum().to_dict() == {PLACEBO: 32, PRECISION: 46}
    # the subset and the reversals are the designed ones
    truth = trial.truth.set_index("patient_id")
    assert set(sampled["patient_id"]) == set(truth.index[truth["in_sampling_subset"]])
    assert (
        rev.set_index("patient_id")["reversed"]
        == truth["designed_reversal"].reindex(rev["patient_id"]).to_numpy()
    ).all()


def test_null_scenario_has_no_effect() -> None:
    null = generate_trial(n_randomised=2000, scenario="null", charting="sparse")
    daily = derive_daily_sofa(null.observations, null.infusions, null.episodes, null.patients)
    pts = null.patients.assign(death_study_day=death_study_day(null.patients))
    r = sofa_response(daily.daily, pts[["patient_id", "death_study_day"]])
    r["arm"] = r["patient_id"].map(null.randomisation.set_index("patient_id")["arm"])
    diff = _rate(r, "responder", PRECISION) - _rate(r, "responder", PLACEBO)
    assert abs(diff) < 0.06
    assert abs(r["responder"].mean() - 72 / 276) <= 0.04  # pooled published rate
    mort = mortality(pts, horizon_days=28)
    mort["arm"] = r["arm"].to_numpy()  # both sorted by patient_id
    assert abs(_rate(mort, "died", PRECISION) - _rate(mort, "died", PLACEBO)) < 0.04
    # day 15: the pooled published rate per stratum in both arms (MALS 17/48, SIP 69/228),
    # scaled to each arm's stratum size and rounded half up, recomputed by the engine
    r15 = sofa_response(daily.daily, pts[["patient_id", "death_study_day"]], last_day=15)
    truth = null.truth.set_index("patient_id")
    r15 = r15.assign(
        arm=r15["patient_id"].map(truth["arm"]), phenotype=r15["patient_id"].map(truth["phenotype"])
    )
    for ph, (events, n) in (("MALS", (17, 48)), ("SIP", (69, 228))):
        for arm in (PRECISION, PLACEBO):
            cell = r15[(r15["phenotype"] == ph) & (r15["arm"] == arm)]
            assert cell["responder"].sum() == int(len(cell) * events / n + 0.5), (ph, arm)


# --- raw data: names, units, ranges, times ------------------------------------------------------


def test_observations_use_canonical_variables_and_accepted_units(trial: SyntheticTrial) -> None:
    obs = trial.observations
    assert list(obs.columns) == ["patient_id", "time", "variable", "value", "unit", "source"]
    for (var, unit), _ in obs.groupby(["variable", "unit"]):
        assert unit_key(unit) in ACCEPTED_UNITS[var], (var, unit)
    # SI inputs are present so the conversions are exercised
    pairs = set(map(tuple, obs[["variable", "unit"]].drop_duplicates().to_numpy()))
    for pair in (("bilirubin", "umol/L"), ("creatinine", "umol/L"), ("pao2", "kPa"), ("fio2", "%")):
        assert pair in pairs
    norm = normalize_observations(obs)  # raises on any implausible value or unknown unit
    ranges = {
        "pao2": (30, 300),
        "fio2": (0.21, 1.0),
        "platelets": (1, 600),
        "bilirubin": (0.1, 25),
        "creatinine": (0.3, 10),
        "map": (40, 130),
        "gcs_total": (3, 15),
        "urine_output": (0, 2000),
        "weight": (40, 170),
        "lactate": (0.2, 15),
    }
    got = norm.groupby("variable")["value"].agg(["min", "max"])
    assert set(got.index) == set(ranges)
    for var, (lo, hi) in ranges.items():
        assert got.loc[var, "min"] >= lo, var
        assert got.loc[var, "max"] <= hi, var
    gcs = norm.loc[norm["variable"] == "gcs_total", "value"]
    assert (gcs == np.round(gcs)).all()


def test_infusions_include_short_runs_and_weight_based_units(trial: SyntheticTrial) -> None:
    inf = normalize_infusions(trial.infusions, trial.patients)
    assert set(inf["drug"]) == {"norepinephrine", "epinephrine", "dopamine", "dobutamine"}
    assert set(trial.infusions["unit"]) == {"mcg/kg/min", "mcg/min"}
    minutes = (inf["stop"] - inf["start"]) / pd.Timedelta(minutes=1)
    assert (minutes >= 1).all()
    assert (minutes < 60).sum() >= 10  # runs that must not count (>= 60 min rule)
    assert (inf["rate_mcg_kg_min"] > 0).all()
    assert inf.loc[inf["drug"] == "norepinephrine", "rate_mcg_kg_min"].max() < 1.0


def test_episode_kinds(trial: SyntheticTrial) -> None:
    ep = trial.episodes
    assert set(ep["kind"]) <= {
        "invasive_ventilation",
        "noninvasive_ventilation",
        "cpap",
        "oxygen",
        "sedation",
        "rrt",
    }
    assert {"invasive_ventilation", "sedation", "rrt", "oxygen"} <= set(ep["kind"])
    assert (ep["stop"] > ep["start"]).all()
    mv = trial.patients.loc[trial.patients["mechanical_ventilation"], "patient_id"]
    inv = ep.loc[ep["kind"] == "invasive_ventilation", "patient_id"]
    assert mv.isin(inv).all()


def test_times_inside_study_days_and_before_death(trial: SyntheticTrial) -> None:
    p = trial.patients.set_index("patient_id")
    obs = trial.observations
    anchor = obs["patient_id"].map(p["anchor_time"])
    death = obs["patient_id"].map(p["death_time"])
    hours = (obs["time"] - anchor) / pd.Timedelta(hours=1)
    assert (hours > 0).all()
    assert (hours < 28 * 24).all()
    assert ((hours % 24) != 0).all()  # never exactly on a study-day boundary
    assert not (obs["time"] >= death).any()
    assert (p["anchor_time"] > p["randomised_at"]).all()
    assert (p["anchor_time"] - p["randomised_at"] <= pd.Timedelta(hours=6)).all()
    for name, col in (("infusions", "stop"), ("biomarkers", "time"), ("doses", "time")):
        frame = getattr(trial, name)
        assert not (frame[col] >= frame["patient_id"].map(p["death_time"])).any(), name
    inf = trial.infusions
    assert (inf["start"] >= inf["patient_id"].map(p["anchor_time"])).all()
    ae = trial.adverse_events
    assert (ae["onset_time"] > ae["patient_id"].map(p["anchor_time"])).all()
    assert not (ae["onset_time"] > ae["patient_id"].map(p["death_time"])).any()
    for frame in trial.tables().values():
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                assert str(frame[col].dtype) == "datetime64[ns]"


def test_study_drug_doses_double_dummy(trial: SyntheticTrial) -> None:
    d = trial.doses
    assert set(d["label"]) == {"study drug"}
    assert set(d["route"]) == {"IV", "SC"}
    p = trial.patients.set_index("patient_id")
    assert set(d["patient_id"]) == set(p.index)  # every analysed patient, both arms alike
    first_iv = d[d["route"] == "IV"].groupby("patient_id")["time"].min()
    assert (first_iv == p.loc[first_iv.index, "anchor_time"]).all()
    span = d.groupby("patient_id")["time"].max() - p["anchor_time"]
    assert (span < pd.Timedelta(days=15)).all()
    alive = p[p["death_time"].isna()].index
    per = d[d["patient_id"].isin(alive)].groupby(["patient_id", "route"]).size().unstack()
    assert per["IV"].max() == 45  # q8h for 15 days
    assert per["SC"].max() == 8  # q48h for 15 days


def test_adverse_events(trial: SyntheticTrial, arms) -> None:
    ae = trial.adverse_events
    assert {"soc", "pt", "serious", "severe", "related", "aesi"} <= set(ae.columns)
    sae = ae[ae["serious"]]
    assert sae["patient_id"].nunique() == 245  # 88.8 % of 276
    assert len(sae) == 1069
    assert set(ae["aesi"].dropna()) == {"anemia", "hemorrhage"}
    assert (ae.loc[ae["pt"] == "Anaemia", "aesi"] == "anemia").all()
    pheno = trial.truth.set_index("patient_id")["phenotype"]
    group = ae["patient_id"].map(arms) + "/" + ae["patient_id"].map(pheno)
    n_pat = (trial.truth["arm"] + "/" + trial.truth["phenotype"]).value_counts()

    def per_patient(aesi: str, g: str) -> float:
        return float(((ae["aesi"] == aesi) & (group == g)).sum() / n_pat[g])

    assert per_patient("anemia", "precision/MALS") > 1.5 * per_patient("anemia", "placebo/MALS")
    assert per_patient("hemorrhage", "precision/SIP") > 1.5 * per_patient(
        "hemorrhage", "placebo/SIP"
    )


def test_death_study_day_helper() -> None:
    anchor = pd.Timestamp("2022-01-01 10:00")
    pts = pd.DataFrame(
        {
            "anchor_time": [anchor] * 4,
            "death_time": [
                anchor + pd.Timedelta(hours=23, minutes=59),
                anchor + pd.Timedelta(hours=24),
                anchor + pd.Timedelta(days=27, hours=5),
                pd.NaT,
            ],
        }
    )
    got = death_study_day(pts)
    assert str(got.dtype) == "Int64"
    assert got.iloc[:3].tolist() == [1, 2, 28]
    assert got.isna().tolist() == [False, False, False, True]


def test_death_study_day_follows_the_study_day_rule() -> None:
    """death_study_day is core.time.study_day: the calendar clock moves it with the rule."""
    pts = pd.DataFrame(
        {
            "anchor_time": pd.to_datetime(["2022-01-01 22:00", "2022-01-01 22:00"]),
            "death_time": pd.to_datetime(["2022-01-02 03:00", pd.NaT]),
        },
        index=[7, 9],
    )
    rolling = death_study_day(pts)
    calendar = death_study_day(pts, rules=SofaRules(study_day="calendar_date"))
    assert rolling.name == calendar.name == "death_study_day"
    assert rolling.index.tolist() == [7, 9]
    assert rolling.tolist()[0] == 1
    assert calendar.tolist()[0] == 2
    assert calendar.isna().tolist() == [False, True]
    expected = study_day(pts["death_time"], pts["anchor_time"]).rename("death_study_day")
    pd.testing.assert_series_equal(rolling, expected)


def test_trajectory_fallback_leaves_the_cohort_untouched() -> None:
    """Responders that cannot improve (all-zero day 1) take the deterministic fallback: a flat
    course on a copy of the charting mask, the cohort's own mask unchanged."""
    rng = np.random.Generator(np.random.PCG64(1))
    flow = draw_flow(rng, 40, 0)
    cohort = draw_cohort(rng, flow, null=False)
    stuck = dataclasses.replace(
        cohort,
        base=np.zeros_like(cohort.base),
        responder=np.ones(cohort.m, bool),
        death_day=np.full(cohort.m, np.inf),
    )
    before = stuck.observed.copy()
    latent = draw_trajectories(rng, stuck, n_days=28)
    assert np.array_equal(stuck.observed, before)
    assert latent.observed[:, :, 1:9].all()
    assert (latent.latent == 0).all()
    assert np.allclose(latent.delta, 0.0)


@pytest.mark.parametrize("last_icu", [28, 10, 9])
def test_trajectory_fallback_meets_both_statuses(last_icu: int) -> None:
    """The deterministic course (latent._fallback) gives every combination of the day-9 and
    day-15 statuses at the edges: day-1 SOFA 2 for a responder (Δ9 = Δ15 = 2), 4 for a late
    responder (Δ15 = 24 / 14 = 1.71), a relapse (Δ9 ≥ 1.75, Δ15 ≤ 1.14), the highest day-1
    SOFA with a death on day 15 (a day-9 responder, not on day 15), charting up to day 9,
    10 or 28 (later days carried forward)."""
    base = np.zeros((6, 6), np.int64)
    base[0, 0], base[0, 1] = 1, 1  # s1 = 2, day-9 and day-15 responder
    base[1, 3] = 4  # s1 = 4, late responder
    base[2, :] = 1  # s1 = 6, relapse (alive)
    base[3, :] = 4  # s1 = 24, day-9 responder who dies on day 15
    base[4, 0] = 3  # s1 = 3, neither
    base[5, 2] = 4  # s1 = 4, late responder who dies on day 16
    r9 = np.array([True, False, True, True, False, False])
    r15 = np.array([True, True, False, False, False, True])
    death = np.array([np.inf, np.inf, np.inf, 15.0, np.inf, 16.0])
    n_d = 28
    lat = np.zeros((6, 6, n_d), np.int64)
    lat[:, :, 0] = base
    lat[:, :, 1:] = _fallback(base, r9, r15, np.full(6, last_icu), n_d)
    assert lat.min() >= 0
    assert lat.max() <= 4
    eff = _effective(lat, np.ones((6, 6, n_d), bool), np.full(6, last_icu))
    d9, d15 = _delta(eff, death, 9), _delta(eff, death, 15)
    assert ((d9 > 1.4) == r9).all(), d9
    assert ((d15 > 1.4) == r15).all(), d15
    assert d9[0] == d15[0] == 2.0
    if last_icu >= 10:
        assert d15[1] == pytest.approx(24 / 14)
        assert d9[1] == 0.0


# --- scaling ------------------------------------------------------------------------------------


def test_scales_to_ten_thousand() -> None:
    big = generate_trial(n_randomised=10_000)
    assert len(big.randomisation) == 10_000
    assert big.randomisation["arm"].value_counts()[PRECISION] == round(10_000 * 135 / 281)
    assert len(big.disposition) == round(10_000 * 672 / 281)
    excluded = big.disposition["excluded_reason"].value_counts()
    assert excluded.iloc[0] == pytest.approx((len(big.disposition) - 10_000) * 355 / 391, abs=1)
    wd = big.disposition["withdrawn_with_data_removal"].sum()
    assert wd == round(10_000 * 4 / 281) + round(10_000 * 1 / 281)
    assert len(big.patients) == 10_000 - wd
    assert big.patients["patient_id"].is_unique
    truth = big.truth
    arm_rate = truth.groupby("arm")["designed_responder"].mean()
    assert abs(arm_rate[PRECISION] - 46 / 131) < 0.01
    assert abs(arm_rate[PLACEBO] - 26 / 145) < 0.01
    assert (truth["designed_responder"] == (truth["latent_sofa_decrease"] > 1.4)).all()
    rate15 = truth.groupby("arm")["designed_responder_d15"].mean()
    assert abs(rate15[PRECISION] - 52 / 131) < 0.01
    assert abs(rate15[PLACEBO] - 34 / 145) < 0.01
    assert (truth["designed_responder_d15"] == (truth["latent_sofa_decrease_d15"] > 1.4)).all()
    assert len(big.observations) > 100 * len(big.patients)


def test_sparse_charting_keeps_the_scores() -> None:
    sparse = generate_trial(n_randomised=300, charting="sparse", seed=3)
    daily = derive_daily_sofa(
        sparse.observations, sparse.infusions, sparse.episodes, sparse.patients
    )
    merged = daily.daily.merge(sparse.latent_daily, on=["patient_id", "study_day"])
    assert len(merged) == len(sparse.latent_daily)
    assert (merged["sofa_total_x"] == merged["sofa_total_y"]).all()


@pytest.mark.parametrize(
    "kwargs",
    [{"n_randomised": 5}, {"scenario": "bogus"}, {"n_days": 3}, {"charting": "hourly"}],
)
def test_invalid_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        generate_trial(**kwargs)


def test_icu_stays_draw_from_their_own_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stays have their own random stream: another stream changes only ``icu_stays``
    (every other table, truth included, stays byte-identical), the same seed repeats them."""
    base = generate_trial(n_randomised=60, seed=11)
    again = generate_trial(n_randomised=60, seed=11)
    pd.testing.assert_frame_equal(base.icu_stays, again.icu_stays)
    monkeypatch.setattr(synth_generate, "stays_rng", lambda seed: np.random.default_rng([seed, 1]))
    other = generate_trial(n_randomised=60, seed=11)
    for name in (*SyntheticTrial.TABLES, "truth", "latent_daily"):
        if name != "icu_stays":
            pd.testing.assert_frame_equal(getattr(base, name), getattr(other, name), obj=name)
    assert not base.icu_stays["start"].equals(other.icu_stays["start"])
    assert set(base.icu_stays["patient_id"]) == set(base.patients["patient_id"])


def test_packed_enrolment_moves_only_times() -> None:
    """``enrolment_days`` packs the randomisations closer in time (the served demo, so that the
    ward census holds tens of patients): every patient's times move by one shift, every other
    value is the trial's (same random stream); icu_stays and disposition are ordered by time."""
    base = generate_trial(n_randomised=60, seed=11)
    packed = generate_trial(n_randomised=60, seed=11, enrolment_days=20)
    # per randomised person (the withdrawn too): the move of their randomisation time
    shift = (
        packed.randomisation.set_index("patient_id")["randomised_at"]
        - base.randomisation.set_index("patient_id")["randomised_at"]
    )
    assert (shift < pd.Timedelta(0)).sum() >= 50  # most patients moved earlier
    first = packed.randomisation["randomised_at"].min()
    assert packed.randomisation["randomised_at"].max() - first <= pd.Timedelta(days=20)
    assert base.randomisation["randomised_at"].max() - first > pd.Timedelta(days=600)
    order = {"icu_stays": ["patient_id", "start"]}
    for name in (*SyntheticTrial.TABLES, "truth", "latent_daily"):
        x, y = getattr(base, name), getattr(packed, name)
        if name == "disposition":  # screening ids follow the screening times
            keys = [c for c in x.columns if c != "screening_id"]
            x = x[keys].sort_values(keys, na_position="first").reset_index(drop=True)
            y = y[keys].sort_values(keys, na_position="first").reset_index(drop=True)
        elif name in order:
            x = x.sort_values(order[name]).reset_index(drop=True).drop(columns="bed")
            y = y.sort_values(order[name]).reset_index(drop=True).drop(columns="bed")
        times = [c for c in x.columns if pd.api.types.is_datetime64_any_dtype(x[c])]
        if times:
            moved = x["patient_id"].map(shift)
            x = x.assign(**{c: x[c] + moved for c in times})
        pd.testing.assert_frame_equal(x, y, obj=name)
    # packed, more patients share a unit at once: still never two in one bed at one time
    stays = packed.icu_stays.assign(site=packed.icu_stays["patient_id"].str[:6])
    assert stays["bed"].nunique() >= 3
    for _, bed in stays.groupby(["site", "unit", "bed"]):
        bed = bed.sort_values("start")
        assert (bed["start"].iloc[1:].to_numpy() >= bed["stop"].iloc[:-1].to_numpy()).all()


@pytest.mark.parametrize("days", [0.5, 40_000])
def test_enrolment_days_out_of_range(days: float) -> None:
    with pytest.raises(ValueError, match="enrolment_days must be between 1 and 36,500"):
        generate_trial(n_randomised=20, enrolment_days=days)
