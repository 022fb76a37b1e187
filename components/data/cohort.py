"""Cohort data: shared loaders, per-patient outcomes, filters, the analysis frame, drill-down rows.

Data flow: the shared loaders (patients with their baseline phenotype, the compact daily SOFA,
adverse events; role-independent, memoized per data version and rules) → :func:`patient_outcomes`
(one row per analysed patient: baseline, bands, day-9 / day-15 SOFA response, mortality;
never the arm) → :func:`base` (restricted to the role's sites, plus the ``group`` column when
:mod:`components.blinding` allows one) → :func:`analysis_frame` (filters: a cheap mask). The
cohort panels (:mod:`components.cohort`) compute on the analysis frame with ``core``.

Every memoized function takes a :class:`components.data.keys.Context` (and frozen filters):
the key carries the version, every rule set and the access; rules are read from the context.
Frames come back as copies where a caller could mutate them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from statsmodels.stats.proportion import proportion_confint

from components.blinding import (
    POOLED_LABEL,
    Groups,
    groups_for,
    guards_follow_filters,
    load_groups,
    may_list_aesi_patients,
)
from components.data.keys import Context
from components.server.auth import ArmVisibility
from components.server.cache import cache
from components.server.context import engine
from core import db
from core.endpoints import mortality, sofa_response, time_to_death
from core.phenotype import classify_frame, immune_reversal, phenotype_over_time
from core.stats import arm_summary
from core.repository import (
    load_adverse_events,
    load_biomarkers,
    load_cohort_daily,
    load_data_cutoff,
    load_patients,
    load_sites,
)
from core.time import study_day
from core.vocab import SOFA_TOTAL, Phenotype

PHENOTYPE_STRATA = (Phenotype.MALS.value, Phenotype.SIP.value)

#: (url value, label, lower inclusive, upper exclusive)
AGE_BANDS: tuple[tuple[str, str, float, float], ...] = (
    ("lt50", "< 50 y", 0.0, 50.0),
    ("50-64", "50–64 y", 50.0, 65.0),
    ("65-79", "65–79 y", 65.0, 80.0),
    ("ge80", "≥ 80 y", 80.0, math.inf),
)
SOFA_BANDS: tuple[tuple[str, str, float, float], ...] = (
    ("0-5", "SOFA 0–5", 0.0, 6.0),
    ("6-9", "SOFA 6–9", 6.0, 10.0),
    ("10-13", "SOFA 10–13", 10.0, 14.0),
    ("ge14", "SOFA ≥ 14", 14.0, math.inf),
)
#: immune-reversal horizon (clinical.md 1.6)
REVERSAL_BY_DAY = 28

# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------

#: filter name → column of the analysis frame (the URL uses the names)
FILTER_COLUMNS = {
    "site": "site_id",
    "country": "country",
    "phenotype": "phenotype",
    "infection": "infection_type",
    "age": "age_band",
    "sofa": "sofa_band",
}
FILTER_FIELDS = tuple(FILTER_COLUMNS)


@dataclass(frozen=True)
class CohortFilters:
    """Normalised cohort filters (sorted, de-duplicated tuples; empty = no restriction).
    Frozen: its repr is part of the cache key of every filtered result."""

    site: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    phenotype: tuple[str, ...] = ()
    infection: tuple[str, ...] = ()
    age: tuple[str, ...] = ()
    sofa: tuple[str, ...] = ()

    @classmethod
    def make(cls, **values: Any) -> CohortFilters:
        """From lists / comma-separated strings / None; unknown band values are dropped."""
        out: dict[str, tuple[str, ...]] = {}
        for name in FILTER_FIELDS:
            raw = values.get(name)
            if raw is None or raw == "":
                items: list[str] = []
            elif isinstance(raw, str):
                items = [x for x in raw.split(",") if x]
            else:
                items = [str(x) for x in raw if x is not None and str(x)]
            if name == "age":
                items = [x for x in items if x in {b[0] for b in AGE_BANDS}]
            if name == "sofa":
                items = [x for x in items if x in {b[0] for b in SOFA_BANDS}]
            out[name] = tuple(sorted(set(items)))
        return cls(**out)

    def active(self) -> bool:
        return any(getattr(self, n) for n in FILTER_FIELDS)

    def query(self) -> dict[str, str]:
        """Query-string parameters (only the active filters)."""
        return {n: ",".join(getattr(self, n)) for n in FILTER_FIELDS if getattr(self, n)}

    def describe(self) -> str:
        parts = [f"{n}: {', '.join(getattr(self, n))}" for n in FILTER_FIELDS if getattr(self, n)]
        return "; ".join(parts) if parts else "none (all patients)"

    def patient_level(self) -> bool:
        """Filters that need a stored patient (not only a screening row)."""
        return bool(self.infection or self.age or self.sofa)


# ---------------------------------------------------------------------------------------------
# Shared loaders (role-independent; keyed by the shared context)
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _patients(ctx: Context) -> pd.DataFrame:
    patients = load_patients(engine(), rules=ctx.sofa_rules)
    classes = classify_frame(patients, thresholds=ctx.thresholds)
    out = pd.concat([patients, classes], axis=1)
    cutoff = load_data_cutoff(engine())
    window = pd.Timedelta(hours=24 * ctx.endpoint_rules.last_day)
    out["endpoint_window_closed"] = (
        (out["anchor_time"] + window <= cutoff) if cutoff is not None else False
    )
    return out


def cohort_patients(ctx: Context) -> pd.DataFrame:
    """All patients with baseline phenotype and death study day (never the arm). A copy."""
    return _patients(ctx.shared()).copy()


@cache.memoize()
def _daily(ctx: Context) -> pd.DataFrame:
    return load_cohort_daily(engine(), rules_key=ctx.sofa_rules.key())


def trial_patients(ctx: Context) -> pd.DataFrame:
    """The trial participants of :func:`cohort_patients` (randomised): every trial page and
    analysis counts these only; ICU patients who are not in the trial are ward patients."""
    p = cohort_patients(ctx)
    return p[p["trial_participant"]].reset_index(drop=True)


def cohort_daily(ctx: Context) -> pd.DataFrame:
    """The whole cohort's compact daily SOFA (``core.repository.COHORT_DAILY_COLUMNS``:
    patient, study day, total, number of imputed components). A copy."""
    return _daily(ctx.shared()).copy()


@cache.memoize()
def _adverse_events(ctx: Context) -> pd.DataFrame:
    return load_adverse_events(engine())


def cohort_adverse_events(ctx: Context) -> pd.DataFrame:
    """All adverse events (no arm; role-independent), memoized per data version. A copy."""
    return _adverse_events(ctx.shared()).copy()


def aesi_mask(aes: pd.DataFrame) -> pd.Series:
    """Events of special interest (anemia, hemorrhage): flagged events and every event of a
    preferred term that is flagged anywhere (a PT is AESI if any of its events is, as in
    :func:`core.stats.adverse_event_table`)."""
    flagged = aes["aesi"].notna()
    return flagged | aes["pt"].isin(aes.loc[flagged, "pt"])


def visible_patients(ctx: Context) -> pd.DataFrame:
    """Patients the context's access may see (site restriction applies to data, not menus)."""
    p = cohort_patients(ctx)
    if ctx.sites is not None:
        p = p[p["site_id"].isin(ctx.sites)]
    return p.reset_index(drop=True)


def site_countries() -> pd.DataFrame:
    """``site_id, country`` (db.sites has no country column yet: the synthetic site names
    carry it, "… (Greece)")."""
    sites = load_sites(engine())
    if "country" not in sites.columns:
        sites["country"] = sites["name"].map(
            lambda n: (re.search(r"\(([^)]+)\)\s*$", n or "") or [None, "unknown"])[1]
        )
    return sites[["site_id", "country"]]


# ---------------------------------------------------------------------------------------------
# Per-patient outcomes and the analysis frame
# ---------------------------------------------------------------------------------------------


def _band(values: pd.Series, bands: tuple[tuple[str, str, float, float], ...]) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    out = pd.Series(None, index=values.index, dtype=object)
    for key, _label, lo, hi in bands:
        out = out.mask((v >= lo) & (v < hi), key)
    return out


def _cut(values: pd.Series, at: float, above: str, below: str) -> np.ndarray:
    return np.where(values.isna(), None, np.where(values >= at, above, below))


@cache.memoize()
def _patient_outcomes(ctx: Context) -> pd.DataFrame:
    rules = ctx.endpoint_rules
    p = trial_patients(ctx).merge(site_countries(), on="site_id", how="left")
    daily = cohort_daily(ctx)
    day1 = daily[daily["study_day"] == 1].set_index("patient_id")
    p["baseline_sofa"] = p["patient_id"].map(day1[SOFA_TOTAL]).astype(float)
    last = daily.sort_values("study_day", kind="stable").groupby("patient_id").tail(1)
    last = last.set_index("patient_id")
    p["last_study_day"] = p["patient_id"].map(last["study_day"]).astype("Int64")
    p["latest_sofa_total"] = p["patient_id"].map(last[SOFA_TOTAL]).astype(float)
    p["day1_components_imputed"] = (
        p["patient_id"].map(day1["n_components_imputed"]).fillna(0).astype(int)
    )
    deaths = p[["patient_id", "death_study_day"]]
    for last_day, tag in ((rules.last_day, "d9"), (rules.day15_last_day, "d15")):
        r = sofa_response(
            daily,
            deaths,
            last_day=last_day,
            threshold=rules.threshold,
            death_score=rules.death_score,
        ).set_index("patient_id")
        for col in ("responder", "sofa_decrease", "evaluable", "n_locf_days", "n_death_days"):
            p[f"{col}_{tag}"] = p["patient_id"].map(r[col])
        p[f"responder_{tag}"] = p[f"responder_{tag}"].fillna(False).astype(bool)
    for horizon in (28, 90):
        m = mortality(deaths, horizon_days=horizon).set_index("patient_id")
        t = time_to_death(deaths, horizon_days=horizon).set_index("patient_id")
        p[f"died_{horizon}"] = p["patient_id"].map(m["died"]).astype(bool)
        p[f"duration_{horizon}"] = p["patient_id"].map(t["duration_days"]).astype(float)
        p[f"event_{horizon}"] = p["patient_id"].map(t["event"]).astype(bool)
    p["age_band"] = _band(p["age_years"], AGE_BANDS)
    p["sofa_band"] = _band(p["baseline_sofa"], SOFA_BANDS)
    p["apache_ge_25"] = _cut(p["apache_ii"], 25, "≥ 25", "< 25")
    p["charlson_ge_5"] = _cut(p["charlson"], 5, "≥ 5", "< 5")
    p["sofa_ge_10"] = _cut(p["baseline_sofa"], 10, "≥ 10", "< 10")
    return p.reset_index(drop=True)


def patient_outcomes(ctx: Context) -> pd.DataFrame:
    """One row per analysed patient with every per-patient derived column (endpoints,
    mortality, bands). Role-independent and never holds the arm: computed once per data
    version and rules, then restricted and labelled per role by :func:`base`."""
    return _patient_outcomes(ctx.shared())


@cache.memoize()
def base(ctx: Context) -> pd.DataFrame:
    """One row per analysed patient the context may see (``group`` only when blinding allows)."""
    p = patient_outcomes(ctx)
    if ctx.sites is not None:
        p = p[p["site_id"].isin(ctx.sites)]
    if ctx.visibility is not ArmVisibility.NONE:
        p = p.merge(load_groups(ctx.version, ctx.visibility), on="patient_id", how="left")
    return p.reset_index(drop=True)


def mask(frame: pd.DataFrame, f: CohortFilters) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    for name, col in FILTER_COLUMNS.items():
        values = getattr(f, name)
        if values:
            keep &= frame[col].isin(values)
    return keep


def frame(ctx: Context, filters: CohortFilters) -> pd.DataFrame:
    """The filtered analysis frame, uncopied (panels read it, never mutate it)."""
    b = base(ctx)
    out = b[mask(b, filters)].reset_index(drop=True)
    if ctx.visibility is ArmVisibility.NONE and "group" in out.columns:
        raise AssertionError("group column present in a blinded frame")
    return out


@dataclass(frozen=True)
class GuardedScope:
    """The patients a guarded item (docs/blinding.md 6.5) is computed on, for one access.

    ``filtered``: the cohort filters apply (roles that may compare groups); otherwise the
    frame is the role's whole visible cohort whatever the filters (blinded roles), and
    ``note`` says so on the page, in the report and in the CSV's panel.
    """

    frame: pd.DataFrame
    filtered: bool

    @property
    def note(self) -> str:
        if self.filtered:
            return ""
        return (
            f"Blinded view: computed on all {len(self.frame)} patients you may see; the cohort "
            "filters do not apply here (post-baseline biomarkers and adverse events of special "
            "interest are never narrowed by filters, so no filter can isolate a patient)."
        )


def guarded_scope(ctx: Context, filters: CohortFilters) -> GuardedScope:
    """The frame guarded items are computed on: the filtered analysis frame for roles that
    may compare groups, the whole visible cohort for blinded roles
    (:func:`components.blinding.guards_follow_filters`). Uncopied, like :func:`frame`."""
    if guards_follow_filters(ctx.visibility):
        return GuardedScope(frame(ctx, filters), filtered=True)
    return GuardedScope(frame(ctx, CohortFilters()), filtered=False)


def strata_sizes(values: pd.Series) -> list[int]:
    """Patients per level of a pre-specified stratum, every level (missing included): the
    partition :func:`components.blinding.partition_shown` is asked about."""
    return [int(n) for n in values.fillna("(missing)").value_counts().tolist()]


def analysis_frame(ctx: Context, filters: CohortFilters) -> pd.DataFrame:
    """The filtered analysis frame (a copy)."""
    return frame(ctx, filters).copy()


@cache.memoize()
def counts(ctx: Context, filters: CohortFilters) -> tuple[int, int]:
    """Analysed patients before and after filtering (memoized: a warm filter change must not
    unpickle the whole analysis frame, ~20 MB at 100,000 patients, just to count it)."""
    b = base(ctx)
    return len(b), int(mask(b, filters).sum())


@cache.memoize()
def filter_counts(
    ctx: Context, filters: CohortFilters | None = None
) -> dict[str, list[tuple[str, int]]]:
    """(value, patients) per filter that counts values, each counted among the patients that
    match the *other* active filters (faceted counts: "MALS (3)" when 4 patients remain, never
    the unfiltered 48). Every value of the role's cohort is listed, with 0 when no patient is
    left; the bands list their fixed values elsewhere."""
    filters = filters or CohortFilters()
    b = base(ctx)
    out: dict[str, list[tuple[str, int]]] = {}
    for name in ("site", "country", "phenotype", "infection"):
        others = CohortFilters(**{n: getattr(filters, n) for n in FILTER_FIELDS if n != name})
        col = b[FILTER_COLUMNS[name]]
        c = col[mask(b, others)].dropna().value_counts()
        values = sorted(col.dropna().unique(), key=str)
        out[name] = [(str(v), int(c.get(v, 0))) for v in values]
    return out


@cache.memoize()
def _patients_at_sites(version: str, sites: tuple[str, ...] | None) -> int:
    """Stored patients at ``sites`` (None: all sites) of one data version (memoized: versions
    never change)."""
    query = sa.select(sa.func.count()).select_from(db.patients)
    if sites is not None:
        query = query.where(db.patients.c.site_id.in_(sites))
    with engine().connect() as conn:
        return int(conn.execute(query).scalar_one())


def visible_patient_count(ctx: Context) -> int:
    """Stored patients the context's access may see: the banner's count (a clinician restricted
    to two sites sees their patients, not the whole database)."""
    sites = None if ctx.sites is None else tuple(sorted(ctx.sites))
    return _patients_at_sites(ctx.version, sites)


#: a comparison with fewer patients than this in a group gets a visible "small groups" note:
#: its test and CI rest on too few patients to be read
SMALL_N_PER_GROUP = 10


def is_small(sizes: dict[str, int]) -> bool:
    """A comparison is small when any group has fewer than :data:`SMALL_N_PER_GROUP`
    patients (10 per group is not small; 9 is)."""
    return any(n < SMALL_N_PER_GROUP for n in sizes.values())


def small_comparisons(ctx: Context, filters: CohortFilters) -> list[tuple[str, dict[str, int]]]:
    """Comparisons of this view with a group under :data:`SMALL_N_PER_GROUP` patients:
    ``(comparison, {group: n})``. Roles that may compare groups: the role's groups overall and
    within each immune state (the strata the tabs test in); blinded roles: MALS vs SIP (the only
    comparison they are shown). Never names a group the role may not see
    (:func:`components.blinding.groups_for`)."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    out: list[tuple[str, dict[str, int]]] = []

    def check(label: str, sizes: dict[str, int]) -> None:
        if is_small(sizes):
            out.append((label, sizes))

    if g.compared:
        by = df["group"].value_counts()
        check("all patients", {lab: int(by.get(lab, 0)) for lab in g.labels})
        for ph in PHENOTYPE_STRATA:
            sub = df.loc[df["phenotype"] == ph, "group"].value_counts()
            check(ph, {lab: int(sub.get(lab, 0)) for lab in g.labels})
    else:
        by = df["phenotype"].value_counts()
        check("immune states", {ph: int(by.get(ph, 0)) for ph in PHENOTYPE_STRATA})
    return out


# ---------------------------------------------------------------------------------------------
# Pooled proportions (comparisons come from core.stats)
# ---------------------------------------------------------------------------------------------


def wilson(events: int, n: int) -> tuple[float, float]:
    """Wilson 95 % CI of one proportion (statsmodels); NaN for n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    lo, hi = proportion_confint(events, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def proportion_rows(df: pd.DataFrame, outcome: str, by: list[str]) -> pd.DataFrame:
    """n, events, proportion and Wilson 95 % CI per level of ``by`` (vectorised counts)."""
    if df.empty:
        return pd.DataFrame(columns=[*by, "n", "events", "proportion", "ci_lower", "ci_upper"])
    g = df.groupby(by, dropna=True, observed=True)[outcome]
    out = g.agg(n="size", events="sum").reset_index()
    out["events"] = out["events"].astype(int)
    out["proportion"] = out["events"] / out["n"]
    cis = [wilson(int(e), int(n)) for e, n in zip(out["events"], out["n"], strict=True)]
    out["ci_lower"] = [c[0] for c in cis]
    out["ci_upper"] = [c[1] for c in cis]
    return out


def compare_groups(
    two: pd.DataFrame, outcome: str, strata: pd.Series, groups: Groups
) -> pd.DataFrame:
    """:func:`core.stats.arm_summary` (overall and per stratum, treated vs control) of a frame
    holding the two compared groups; empty unless both groups have patients."""
    if two["group"].nunique() != 2:
        return pd.DataFrame()
    return arm_summary(
        two.assign(stratum=strata),
        outcome_col=outcome,
        arm_col="group",
        stratum_col="stratum",
        treated=groups.treated,
        control=groups.control,
    )


# ---------------------------------------------------------------------------------------------
# Immune samples (role- and filter-independent)
# ---------------------------------------------------------------------------------------------

#: columns of the per-sample phenotype table kept in the cache (shift_summary + windows)
OVER_TIME_COLUMNS = (
    "patient_id",
    "study_day",
    "sample_index",
    "baseline_phenotype",
    "phenotype",
    "phenotype_shift",
    "reversal",
)


@cache.memoize()
def _immune_samples(ctx: Context) -> dict[str, pd.DataFrame]:
    thresholds = ctx.thresholds
    patients = trial_patients(ctx)
    bio = load_biomarkers(engine())
    bio = bio[bio["patient_id"].isin(patients["patient_id"])]
    anchor = bio["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    bio = bio.assign(study_day=study_day(bio["time"], anchor, rules=ctx.sofa_rules))
    # every sample with a study day, the screening sample before the first dose (day ≤ 0)
    # included: it is the baseline the phenotype and the MALS reversal are measured from
    bio = bio[bio["study_day"].notna()].reset_index(drop=True)
    bio["study_day"] = bio["study_day"].astype(int)
    rev = immune_reversal(
        bio, patients[["patient_id", "phenotype"]], by_day=REVERSAL_BY_DAY, thresholds=thresholds
    )
    if len(bio):
        ot = phenotype_over_time(bio, thresholds=thresholds, time_col="study_day")
        ot = ot[list(OVER_TIME_COLUMNS)]
    else:
        ot = pd.DataFrame(columns=list(OVER_TIME_COLUMNS))
    return {"reversal": rev, "over_time": ot}


def immune_samples(ctx: Context) -> dict[str, pd.DataFrame]:
    """Per-sample phenotypes and per-patient reversal of every analysed patient
    (:func:`core.phenotype.phenotype_over_time`, :func:`core.phenotype.immune_reversal`, by
    day 28; biomarker days by :func:`core.time.study_day`, the pre-dose baseline sample
    included). Never the arm: the panels filter and group it, blinded roles pooled only; the
    reversal proportion counts :func:`core.phenotype.reversal_subset`."""
    return _immune_samples(ctx.shared())


# ---------------------------------------------------------------------------------------------
# Drill-down rows
# ---------------------------------------------------------------------------------------------

DRILL_COLUMNS = (
    "patient_id",
    "site_id",
    "phenotype",
    "baseline_sofa",
    "sofa_decrease_d9",
    "responder_d9",
    "death_study_day",
)
#: drill-down column → header shown to people (units in the name; the CSV keeps the field)
DRILL_LABELS = {
    "patient_id": "Patient",
    "site_id": "Site",
    "phenotype": "Immune state",
    "baseline_sofa": "Baseline SOFA (points)",
    "sofa_decrease_d9": "Day-9 SOFA decrease (points)",
    "responder_d9": "Day-9 responder",
    "death_study_day": "Death (study day)",
    "group": "Group",
}


def drilldown(
    ctx: Context, filters: CohortFilters, kind: str, **sel: Any
) -> tuple[str, pd.DataFrame]:
    """Patients behind a clicked bar or number: ``(title, frame)``.

    ``kind``: ``responders`` (``stratum``, ``group``, ``endpoint`` d9|d15), ``ae`` (``pt``,
    ``group``), ``site_day`` (``site_id``, ``study_day``), ``consort`` (``group``,
    ``phenotype``). Blinded roles get no group column and cannot select by group; they cannot
    list the patients of an adverse event of special interest
    (:func:`components.blinding.may_list_aesi_patients`).
    """
    g = groups_for(ctx.visibility)
    df = analysis_frame(ctx, filters)
    group = sel.get("group")
    if g.compared and group in g.labels:
        df = df[df["group"] == group]
    elif group not in (None, POOLED_LABEL) and not g.compared:
        return ("Not available in the blinded view", df.iloc[0:0][["patient_id"]])
    if kind == "responders":
        tag = sel.get("endpoint", "d9")
        if tag not in ("d9", "d15"):
            raise ValueError(f"unknown endpoint {tag!r}: expected 'd9' or 'd15'")
        stratum = sel.get("stratum") or "overall"
        if stratum != "overall":
            df = df[df["phenotype"] == stratum]
        df = df[df[f"responder_{tag}"]]
        last = ctx.endpoint_rules.last_day if tag == "d9" else ctx.endpoint_rules.day15_last_day
        title = f"Responders (day {last}), {stratum}"
    elif kind == "ae":
        pt = sel.get("pt")
        aes = cohort_adverse_events(ctx)
        same_pt = aes["pt"] == pt
        hit = aes[same_pt]
        if not may_list_aesi_patients(ctx.visibility) and aesi_mask(aes)[same_pt].any():
            return (
                f"{pt}: patient listing hidden: could reveal allocation",
                df.iloc[0:0][["patient_id"]],
            )
        df = df[df["patient_id"].isin(hit["patient_id"])]
        title = f"Patients with {pt}"
    elif kind == "site_day":
        daily = cohort_daily(ctx)
        day = int(sel.get("study_day", 1))
        d = daily[(daily["study_day"] == day) & (daily["n_components_imputed"] > 0)]
        df = df[(df["site_id"] == sel.get("site_id")) & df["patient_id"].isin(d["patient_id"])]
        title = f"Site {sel.get('site_id')}, study day {day}: patients with imputed components"
    elif kind == "consort":
        ph = sel.get("phenotype")
        if ph:
            df = df[df["phenotype"] == ph]
        title = "Analysed patients" + (f", {ph}" if ph else "")
    else:
        raise ValueError(f"unknown drill-down kind {kind!r}")
    if group and g.compared:
        title += f", {group}"
    cols = [*DRILL_COLUMNS, *(["group"] if g.compared else [])]
    return title, df[cols].reset_index(drop=True)
