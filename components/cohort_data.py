"""Cached cohort computations for the cohort page (issue 7): one memoized function per panel.

Data flow: ``services`` (patients, daily SOFA) → :func:`_base` (one analysis frame per dataset
version, rule keys and principal scope: baseline, bands, day-9 / day-15 SOFA response,
mortality, and the group label when the role may see one) → filters (a cheap boolean mask) →
one memoized function per panel calling ``core.stats`` / ``core.endpoints`` /
``core.phenotype``. No statistics are reimplemented here, apart from the Wilson interval of a
single pooled proportion (statsmodels).

Blinding (features.md §6; enforced here, on the server):

* ``ArmVisibility.NONE`` (blinded monitor, clinician): the randomisation table is **never
  loaded** on these code paths (:func:`_group_frame` refuses), panels are pooled or by
  phenotype; there is no group column anywhere in the returned frames.
* ``ArmVisibility.CODED`` (DSMB closed session): the arm is replaced on the server by a code
  (:func:`components.blinding.arm_labels`: which arm is "Group A" is fixed per deployment,
  derived from its secret key, and documented in that module). It is not derivable from the
  page: groups are ordered by the code letter, drawn in two neutral colours assigned by code
  letter (not the arm colours), and every difference is "Group A − Group B" (every ratio
  "Group A vs Group B"), whatever the arm behind the code.
* ``ArmVisibility.FULL``: real labels "Precision immunotherapy" / "Placebo"; differences are
  precision − placebo (clinical.md §6.4).

Every memoized function takes the dataset version, the rule keys, ``principal.scope`` and
the visibility as arguments, so a blinded request can never be served an unblinded entry.
Filters enter as a normalised tuple (:meth:`CohortFilters.key`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from components import services
from components.auth import ArmVisibility, Principal
from core.vocab import ARM_LABELS, ORGANS, SOFA_TOTAL, Arm, Phenotype

cache = services.cache

POOLED_LABEL = "All patients"
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
#: forest-plot subgroups: display name → column of the analysis frame (features.md §5.5)
SUBGROUPS: Mapping[str, str] = {
    "Immune state": "phenotype",
    "APACHE II ≥ 25": "apache_ge_25",
    "Charlson ≥ 5": "charlson_ge_5",
    "Baseline SOFA ≥ 10": "sofa_ge_10",
    "Infection type": "infection_type",
    "Country": "country",
    "Site": "site_id",
}
#: subgroups with more levels than this get per-level rows but no interaction P: the
#: likelihood-ratio test over many sparse levels is unstable (and slow: seconds per call)
MAX_INTERACTION_LEVELS = 8
AT_RISK_TIMES = {28: (0, 7, 14, 21, 28), 90: (0, 15, 30, 45, 60, 75, 90)}
TRAJECTORY_DAYS = range(1, 16)


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------

FILTER_FIELDS = ("site", "country", "phenotype", "infection", "age", "sofa")


@dataclass(frozen=True)
class CohortFilters:
    """Normalised cohort filters (sorted, de-duplicated tuples; empty = no restriction)."""

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

    def key(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((name, getattr(self, name)) for name in FILTER_FIELDS)

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


def _key_to_filters(key: tuple[tuple[str, tuple[str, ...]], ...]) -> CohortFilters:
    return CohortFilters(**dict(key))


# ---------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Groups:
    """The comparison groups a visibility allows, in display order."""

    visibility: ArmVisibility
    labels: tuple[str, ...] = field(default=())

    @property
    def compared(self) -> bool:
        return self.visibility is not ArmVisibility.NONE

    @property
    def treated(self) -> str:
        return self.labels[0]

    @property
    def control(self) -> str:
        return self.labels[1]

    @property
    def difference_words(self) -> str:
        if self.visibility is ArmVisibility.FULL:
            return "precision immunotherapy − placebo"
        if self.visibility is ArmVisibility.CODED:
            return "Group A − Group B"
        return ""


def groups_for(visibility: ArmVisibility) -> Groups:
    if visibility is ArmVisibility.FULL:
        return Groups(
            visibility,
            (ARM_LABELS[Arm.PRECISION], ARM_LABELS[Arm.PLACEBO]),
        )
    if visibility is ArmVisibility.CODED:
        return Groups(visibility, ("Group A", "Group B"))
    return Groups(visibility, (POOLED_LABEL,))


def _label_arms(arms: pd.Series, visibility: ArmVisibility) -> pd.Series:
    """Stored arm → display label via :func:`components.blinding.arm_labels` (the one place)."""
    from components.blinding import arm_labels

    mapping = arm_labels(visibility, services.settings().secret_key)
    if mapping is None:
        raise PermissionError("blinded roles never see arm labels")
    return arms.map(mapping)


def _group_frame(version: str, scope: str, visibility: ArmVisibility) -> pd.DataFrame:
    """``patient_id, group`` with labels for this visibility. Refuses blinded roles."""
    if visibility is ArmVisibility.NONE:
        raise PermissionError("the arm table is never loaded for blinded roles")
    return _arms_labelled(version, scope, visibility.value)


@cache.memoize()
def _arms_labelled(version: str, scope: str, visibility: str) -> pd.DataFrame:
    from core.repository import load_arms

    vis = ArmVisibility(visibility)
    if vis is ArmVisibility.NONE:
        raise PermissionError("the arm table is never loaded for blinded roles")
    arms = load_arms(services.engine())
    return pd.DataFrame({"patient_id": arms["patient_id"], "group": _label_arms(arms["arm"], vis)})


# ---------------------------------------------------------------------------------------------
# The analysis frame
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Everything that keys a cached cohort result."""

    version: str
    sofa_key: str
    thresholds_key: str
    endpoint_key: str
    scope: str
    visibility: ArmVisibility
    sites: tuple[str, ...] | None

    def args(self) -> tuple[Any, ...]:
        return (
            self.version,
            self.sofa_key,
            self.thresholds_key,
            self.endpoint_key,
            self.scope,
            self.visibility.value,
            self.sites,
        )


def context(principal: Principal) -> Context:
    s = services.settings()
    return Context(
        version=services.dataset_info().version,
        sofa_key=s.sofa_rules.key(),
        thresholds_key=s.phenotype_thresholds.key(),
        endpoint_key=s.endpoint_rules.key(),
        scope=principal.scope,
        visibility=principal.arm_visibility,
        sites=None if principal.sites is None else tuple(sorted(principal.sites)),
    )


def _band(values: pd.Series, bands: tuple[tuple[str, str, float, float], ...]) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    out = pd.Series(None, index=values.index, dtype=object)
    for key, _label, lo, hi in bands:
        out = out.mask((v >= lo) & (v < hi), key)
    return out


def _site_countries() -> pd.DataFrame:
    from core.repository import load_sites

    sites = load_sites(services.engine())
    if "country" not in sites.columns:
        # db.sites stores no country column yet: the synthetic names carry it "(Greece)"
        sites["country"] = sites["name"].map(
            lambda n: (re.search(r"\(([^)]+)\)\s*$", n or "") or [None, "unknown"])[1]
        )
    return sites[["site_id", "country"]]


@cache.memoize()
def _patient_outcomes(
    version: str, sofa_key: str, thresholds_key: str, endpoint_key: str
) -> pd.DataFrame:
    """One row per analysed patient with every per-patient derived column (endpoints,
    mortality, bands). Role-independent and never holds the arm: computed once per data
    version and rules, then restricted and labelled per role by :func:`_base`."""
    from core.endpoints import mortality, sofa_response, time_to_death

    rules = services.settings().endpoint_rules
    p = services.cohort_patients()
    p = p.merge(_site_countries(), on="site_id", how="left")
    daily = services.cohort_daily()
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
    p["apache_ge_25"] = np.where(
        p["apache_ii"].isna(), None, np.where(p["apache_ii"] >= 25, "≥ 25", "< 25")
    )
    p["charlson_ge_5"] = np.where(
        p["charlson"].isna(), None, np.where(p["charlson"] >= 5, "≥ 5", "< 5")
    )
    p["sofa_ge_10"] = np.where(
        p["baseline_sofa"].isna(), None, np.where(p["baseline_sofa"] >= 10, "≥ 10", "< 10")
    )
    return p.reset_index(drop=True)


@cache.memoize()
def _base(
    version: str,
    sofa_key: str,
    thresholds_key: str,
    endpoint_key: str,
    scope: str,
    visibility: str,
    sites: tuple[str, ...] | None,
) -> pd.DataFrame:
    """One row per analysed patient the principal may see (arm only when visibility allows)."""
    p = _patient_outcomes(version, sofa_key, thresholds_key, endpoint_key)
    if sites is not None:
        p = p[p["site_id"].isin(sites)]
    vis = ArmVisibility(visibility)
    if vis is not ArmVisibility.NONE:
        groups = _group_frame(version, scope, vis)
        p = p.merge(groups, on="patient_id", how="left")
    return p.reset_index(drop=True)


def _mask(base: pd.DataFrame, f: CohortFilters) -> pd.Series:
    keep = pd.Series(True, index=base.index)
    for name, col in (
        ("site", "site_id"),
        ("country", "country"),
        ("phenotype", "phenotype"),
        ("infection", "infection_type"),
        ("age", "age_band"),
        ("sofa", "sofa_band"),
    ):
        values = getattr(f, name)
        if values:
            keep &= base[col].isin(values)
    return keep


def _frame(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> pd.DataFrame:
    base = _base(*ctx_args)
    f = _key_to_filters(filters_key)
    out = base[_mask(base, f)].reset_index(drop=True)
    if ArmVisibility(ctx_args[5]) is ArmVisibility.NONE and "group" in out.columns:
        raise AssertionError("group column present in a blinded frame")
    return out


def analysis_frame(principal: Principal, filters: CohortFilters) -> pd.DataFrame:
    """The filtered analysis frame (a copy)."""
    return _frame(context(principal).args(), filters.key()).copy()


# ---------------------------------------------------------------------------------------------
# Options and counts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    site: list[dict[str, str]]
    country: list[dict[str, str]]
    phenotype: list[dict[str, str]]
    infection: list[dict[str, str]]
    age: list[dict[str, str]]
    sofa: list[dict[str, str]]


def filter_options(principal: Principal) -> FilterOptions:
    return _filter_options(context(principal).args())


@cache.memoize()
def _filter_options(ctx_args: tuple[Any, ...]) -> FilterOptions:
    """Filter choices with counts (memoized: small, while the frame behind it is not)."""
    from components.theme import PHENOTYPE_LABELS

    base = _base(*ctx_args)

    def opts(col: str, label=lambda v: str(v)) -> list[dict[str, str]]:
        counts = base[col].dropna().value_counts()
        return [
            {"label": f"{label(v)} ({counts[v]})", "value": str(v)}
            for v in sorted(counts.index, key=str)
        ]

    return FilterOptions(
        site=opts("site_id"),
        country=opts("country"),
        phenotype=opts("phenotype", lambda v: PHENOTYPE_LABELS[Phenotype(v)]),
        infection=opts("infection_type"),
        age=[{"label": lab, "value": k} for k, lab, _lo, _hi in AGE_BANDS],
        sofa=[{"label": lab, "value": k} for k, lab, _lo, _hi in SOFA_BANDS],
    )


def counts(principal: Principal, filters: CohortFilters) -> tuple[int, int]:
    """Analysed patients before and after filtering."""
    return _counts(context(principal).args(), filters.key())


@cache.memoize()
def _counts(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> tuple[int, int]:
    # memoized: a warm filter change must not unpickle the whole analysis frame (~20 MB at
    # 100,000 patients) just to count it
    base = _base(*ctx_args)
    return len(base), int(_mask(base, _key_to_filters(filters_key)).sum())


# ---------------------------------------------------------------------------------------------
# Small statistics helpers (pooled proportions only; comparisons come from core.stats)
# ---------------------------------------------------------------------------------------------


def wilson(events: int, n: int) -> tuple[float, float]:
    if n <= 0:
        return (math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(events, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def _proportion_rows(df: pd.DataFrame, outcome: str, by: list[str]) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------------------------
# Primary endpoint
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _primary(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.stats import arm_summary

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    df = df.assign(stratum=df["phenotype"])
    strata_df = df[df["phenotype"].isin(PHENOTYPE_STRATA)]
    out: dict[str, Any] = {"n": len(df)}
    for tag in ("d9", "d15"):
        col = f"responder_{tag}"
        if g.compared:
            two = df[df["group"].isin(g.labels)]
            groups_present = set(two["group"])
            if len(groups_present) == 2:
                summ = arm_summary(
                    two.assign(
                        stratum=two["phenotype"].where(two["phenotype"].isin(PHENOTYPE_STRATA))
                    ),
                    outcome_col=col,
                    arm_col="group",
                    stratum_col="stratum",
                    treated=g.treated,
                    control=g.control,
                )
            else:
                summ = pd.DataFrame()
            props = pd.concat(
                [
                    _proportion_rows(two.assign(stratum="overall"), col, ["stratum", "group"]),
                    _proportion_rows(strata_df, col, ["stratum", "group"]),
                ],
                ignore_index=True,
            )
            out[f"summary_{tag}"] = summ
        else:
            props = pd.concat(
                [
                    _proportion_rows(df.assign(stratum="overall"), col, ["stratum"]),
                    _proportion_rows(strata_df, col, ["stratum"]),
                ],
                ignore_index=True,
            )
            props["group"] = POOLED_LABEL
            out[f"summary_{tag}"] = pd.DataFrame()
        out[f"proportions_{tag}"] = props
    # forest (day 9)
    if g.compared:
        two = df[df["group"].isin(g.labels)]
        forest = _forest(two, g) if two["group"].nunique() == 2 else pd.DataFrame()
    else:
        parts = [
            _proportion_rows(df.assign(level="all"), "responder_d9", ["level"]).assign(
                subgroup="overall"
            )
        ]
        for name, col in SUBGROUPS.items():
            rows = _proportion_rows(df.assign(level=df[col]), "responder_d9", ["level"])
            parts.append(rows.assign(subgroup=name))
        forest = pd.concat(parts, ignore_index=True)
    out["forest"] = forest
    return out


def _forest(two: pd.DataFrame, g: Groups) -> pd.DataFrame:
    """:func:`core.stats.forest_rows` on the subgroups that have ≥ 2 levels.

    Subgroups with more than :data:`MAX_INTERACTION_LEVELS` levels (sites) are summarised with
    :func:`core.stats.arm_summary` per level and carry no interaction P (NaN).
    """
    import warnings

    from core.stats import arm_summary, forest_rows

    levels = {name: two[col].dropna().nunique() for name, col in SUBGROUPS.items()}
    tested = {n: SUBGROUPS[n] for n, k in levels.items() if 2 <= k <= MAX_INTERACTION_LEVELS}
    with warnings.catch_warnings():
        # statsmodels evaluates bse / llf lazily, outside core's own warning filter: sparse
        # subgroup levels can separate (reported to core; the LR statistic stays defined)
        warnings.simplefilter("ignore", RuntimeWarning)
        from statsmodels.tools.sm_exceptions import (
            ConvergenceWarning,
            PerfectSeparationWarning,
        )

        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        try:
            from statsmodels.tools.sm_exceptions import SingularMatrixWarning

            warnings.simplefilter("ignore", SingularMatrixWarning)
        except ImportError:  # pragma: no cover - older statsmodels
            pass
        forest = forest_rows(
            two,
            outcome_col="responder_d9",
            subgroups=tested,
            arm_col="group",
            treated=g.treated,
            control=g.control,
        )
    parts = [forest]
    for name, k in levels.items():
        if k > MAX_INTERACTION_LEVELS:
            col = SUBGROUPS[name]
            table = arm_summary(
                two,
                outcome_col="responder_d9",
                arm_col="group",
                stratum_col=col,
                treated=g.treated,
                control=g.control,
            ).iloc[1:]
            table = table.rename(columns={"stratum": "level"}).assign(
                subgroup=name, interaction_p=math.nan
            )
            table["n"] = table["n_treated"] + table["n_control"]
            parts.append(table[forest.columns])
    order = {name: i for i, name in enumerate(["overall", *SUBGROUPS])}
    out = pd.concat(parts, ignore_index=True)
    out["_o"] = out["subgroup"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def primary(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """Responder proportions (day 9 and day 15), comparisons and forest rows.

    Keys: ``n``; ``proportions_d9`` / ``proportions_d15`` (``stratum``, ``group``, ``n``,
    ``events``, ``proportion``, ``ci_lower``, ``ci_upper``); ``summary_d9`` / ``summary_d15``
    (:func:`core.stats.arm_summary`, empty for blinded roles); ``forest``
    (:func:`core.stats.forest_rows`, or pooled proportions per subgroup level when blinded).
    """
    return _primary(context(principal).args(), filters.key())


#: published values (clinical.md §1.8.3 / §1.7 reproduction), as printed; RD as precision −
#: placebo (the 28-day row is printed with the reverse sign, clinical.md §1.9 #2)
PUBLISHED = (
    {
        "outcome": "Primary (day 9)",
        "counts": (46, 131, 26, 145),
        "rd": "17.2 (6.8 to 27.2)",
        "or": "2.48 (1.42–4.32)",
        "p": ".002",
    },
    {
        "outcome": "Day-15 SOFA response",
        "counts": (52, 131, 34, 145),
        "rd": "16.3 (5.3 to 26.8)",
        "or": "2.15 (1.28–3.61)",
        "p": ".004",
        # 39.7 % − 23.4 % of the rounded percentages; 52/131 − 34/145 = 16.2 (clinical.md §1.7)
        "not_compared": {"rd": "printed as the difference of rounded percentages"},
    },
    {
        "outcome": "28-day mortality",
        "counts": (57, 131, 72, 145),
        "rd": "−6.1 (−17.6 to 5.6)",
        "or": "0.78 (0.49–1.26)",
        "p": ".34",
        # Fisher P 0.3349 is printed .34 (rounded twice: 0.335 → .34; clinical.md §1.7)
        "not_compared": {"p": "printed after rounding twice (0.3349 → 0.335 → .34)"},
    },
    {
        "outcome": "Immune reversal (SIDF)",
        "counts": (46, 59, 32, 66),
        "rd": "29.5 (12.6 to 44.0)",
        "or": "3.76 (1.72–8.22)",
        "p": ".001",
    },
)


def publication_check() -> pd.DataFrame:
    """Published counts through the panel's own code path vs the printed JAMA values.

    Uses :func:`core.stats.compare_proportions` and the same text formatter as the primary
    panel (:func:`components.cohort_figures.comparison_texts`). No patient data involved.
    Fields the paper itself printed inconsistently (clinical.md §1.7 / §1.9) are shown but
    listed in ``not_compared``; every other field must match to the printed precision.
    """
    from components.cohort_figures import comparison_texts
    from core.stats import compare_proportions

    rows = []
    for pub in PUBLISHED:
        got = comparison_texts(compare_proportions(*pub["counts"]))
        skip = pub.get("not_compared", {})
        ok = all(got[k] == pub[k] for k in ("rd", "or", "p") if k not in skip)
        rows.append(
            {
                "outcome": pub["outcome"],
                "counts": "{}/{} vs {}/{}".format(*pub["counts"]),
                "published_rd": pub["rd"],
                "computed_rd": got["rd"],
                "published_or": pub["or"],
                "computed_or": got["or"],
                "published_p": pub["p"],
                "computed_p": got["p"],
                "match": ok,
                "not_compared": "; ".join(f"{k}: {v}" for k, v in skip.items()),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# CONSORT
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _consort(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.repository import load_disposition
    from core.stats import consort_counts

    vis = ArmVisibility(ctx_args[5])
    f = _key_to_filters(filters_key)
    sites = ctx_args[6]
    d = load_disposition(services.engine()).merge(_site_countries(), on="site_id", how="left")
    if sites is not None:
        d = d[d["site_id"].isin(sites)]
    if f.site:
        d = d[d["site_id"].isin(f.site)]
    if f.country:
        d = d[d["country"].isin(f.country)]
    if f.phenotype:
        d = d[d["phenotype_at_screening"].isin(f.phenotype)]
    notes = []
    if f.patient_level():
        # screening rows have no age / infection / SOFA: restrict to the filtered patients
        kept = set(_frame(ctx_args, filters_key)["patient_id"])
        d = d[d["patient_id"].isin(kept)]
        notes.append(
            "Age, infection and baseline SOFA filters are known only for randomised patients: "
            "screening and exclusion boxes show the patients that match them."
        )
    randomised = d[d["patient_id"].notna()]
    if vis is ArmVisibility.NONE:
        arms = pd.DataFrame({"patient_id": randomised["patient_id"], "group": POOLED_LABEL})
    else:
        arms = _group_frame(ctx_args[0], ctx_args[4], vis)
        missing = ~randomised["patient_id"].isin(arms["patient_id"])
        if missing.any():
            extra = pd.DataFrame(
                {"patient_id": randomised.loc[missing, "patient_id"], "group": "arm not stored"}
            )
            arms = pd.concat([arms, extra], ignore_index=True)
            notes.append(f"{int(missing.sum())} randomised patient(s) without a stored arm.")
    counts_ = consort_counts(d, arms, arm_col="group")
    return {"counts": counts_, "notes": notes}


def consort(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """CONSORT counts (:func:`core.stats.consort_counts`; pooled for blinded roles) + notes."""
    return _consort(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Table 1
# ---------------------------------------------------------------------------------------------

TABLE_ONE_CONTINUOUS = ("age_years", "baseline_sofa", "apache_ii", "charlson")
TABLE_ONE_NONNORMAL = ("baseline_sofa", "apache_ii", "charlson")
TABLE_ONE_CATEGORICAL = ("sex", "mechanical_ventilation", "infection_type")


@cache.memoize()
def _baseline(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.stats import table_one

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    df = df.assign(
        mechanical_ventilation=df["mechanical_ventilation"].map({True: "yes", False: "no"}),
        sex=df["sex"].map({"F": "female", "M": "male"}),
    )
    kw = {
        "continuous": TABLE_ONE_CONTINUOUS,
        "categorical": TABLE_ONE_CATEGORICAL,
        "nonnormal": TABLE_ONE_NONNORMAL,
    }

    def t1(frame: pd.DataFrame, col: str, labels: tuple[str, ...]) -> pd.DataFrame:
        # only the groups with patients (core's SMD needs two non-empty groups)
        present = [lab for lab in labels if (frame[col] == lab).any()]
        if not present:
            return table_one(frame.iloc[0:0], group_col=col, groups=[], **kw)
        return table_one(frame[frame[col].isin(present)], group_col=col, groups=present, **kw)

    source = df if g.compared else df.assign(group=POOLED_LABEL)
    return {
        "by_group": t1(source, "group", g.labels),
        "by_phenotype": t1(df, "phenotype", PHENOTYPE_STRATA),
    }


def baseline(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """Table 1 (:func:`core.stats.table_one`) by group (pooled if blinded) and by phenotype."""
    return _baseline(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------

DECREASE_BIN = 0.5  # edges at multiples of 0.5: "> 1.4" is exactly the bins from 1.5 up


@cache.memoize()
def _trajectories(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.stats import sofa_trajectories

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    daily = services.cohort_daily()
    daily = daily[daily["patient_id"].isin(df["patient_id"])]
    if g.compared:
        grp = df[["patient_id", "group"]]
    else:
        grp = pd.concat(
            [
                df[["patient_id"]].assign(group=POOLED_LABEL),
                df.loc[df["phenotype"].isin(PHENOTYPE_STRATA), ["patient_id", "phenotype"]].rename(
                    columns={"phenotype": "group"}
                ),
            ],
            ignore_index=True,
        )
    parts = []
    for label in pd.unique(grp["group"]):
        sub = grp[grp["group"] == label]
        if sub.empty:
            continue
        parts.append(sofa_trajectories(daily, sub, days=TRAJECTORY_DAYS, arm_col="group"))
    traj = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    # distribution of the day-9 decrease, pre-binned (no per-patient values in the payload)
    dec = df[df["evaluable_d9"].fillna(False).astype(bool)]
    values = dec["sofa_decrease_d9"].astype(float)
    lo = math.floor(values.min() / DECREASE_BIN) * DECREASE_BIN if len(values) else -2.0
    hi = (math.floor(values.max() / DECREASE_BIN) + 1) * DECREASE_BIN if len(values) else 4.0
    edges = np.arange(lo, hi + DECREASE_BIN / 2, DECREASE_BIN)
    hist_parts = []
    hist_groups = (
        [(lab, dec[dec["group"] == lab]) for lab in g.labels]
        if g.compared
        else [(POOLED_LABEL, dec)]
    )
    for label, sub in hist_groups:
        cnt, _ = np.histogram(sub["sofa_decrease_d9"].astype(float), bins=edges)
        hist_parts.append(
            pd.DataFrame(
                {"group": label, "bin_lower": edges[:-1], "bin_upper": edges[1:], "n_patients": cnt}
            )
        )
    hist = pd.concat(hist_parts, ignore_index=True)
    return {"trajectories": traj, "decrease_histogram": hist, "n_evaluable": len(dec)}


def trajectories(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """Mean SOFA by day (:func:`core.stats.sofa_trajectories`) and the binned day-9 decrease."""
    return _trajectories(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Survival
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _survival(
    ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...], horizon: int
) -> dict[str, Any]:
    from core.stats import compare_proportions, cox_hr, kaplan_meier, logrank

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    dur, ev = f"duration_{horizon}", f"event_{horizon}"
    times = AT_RISK_TIMES[horizon]
    out: dict[str, Any] = {"horizon": horizon, "n": len(df)}
    if g.compared:
        two = df[df["group"].isin(g.labels)]
        km = (
            kaplan_meier(two[dur], two[ev], two["group"], horizon=horizon, at_risk_times=times)
            if len(two)
            else {}
        )
        out["km"] = {lab: km[lab] for lab in g.labels if lab in km}  # display order
        if two["group"].nunique() == 2:
            out["logrank"] = logrank(two[dur], two[ev], two["group"], horizon=horizon)
            out["cox"] = cox_hr(
                two[dur],
                two[ev],
                two["group"],
                treated=g.treated,
                control=g.control,
                horizon=horizon,
            )
            e1 = int(two.loc[two["group"] == g.treated, f"died_{horizon}"].sum())
            n1 = int((two["group"] == g.treated).sum())
            e2 = int(two.loc[two["group"] == g.control, f"died_{horizon}"].sum())
            n2 = int((two["group"] == g.control).sum())
            out["mortality"] = compare_proportions(e1, n1, e2, n2)
        else:
            out["logrank"] = out["cox"] = out["mortality"] = None
    else:
        pooled = (
            kaplan_meier(
                df[dur], df[ev], [POOLED_LABEL] * len(df), horizon=horizon, at_risk_times=times
            )
            if len(df)
            else {}
        )
        ph = df[df["phenotype"].isin(PHENOTYPE_STRATA)]
        by_ph = (
            kaplan_meier(ph[dur], ph[ev], ph["phenotype"], horizon=horizon, at_risk_times=times)
            if len(ph)
            else {}
        )
        out["km"] = {**pooled, **by_ph}
        out["logrank"] = (
            logrank(ph[dur], ph[ev], ph["phenotype"], horizon=horizon)
            if ph["phenotype"].nunique() == 2
            else None
        )
        out["cox"] = None
        out["mortality"] = None
    return out


def survival(principal: Principal, filters: CohortFilters, horizon: int) -> dict[str, Any]:
    """Kaplan–Meier per group (pooled and by phenotype when blinded), log-rank, Cox HR."""
    if horizon not in AT_RISK_TIMES:
        raise ValueError(f"horizon must be 28 or 90, got {horizon}")
    return _survival(context(principal).args(), filters.key(), int(horizon))


# ---------------------------------------------------------------------------------------------
# Immune reversal and phenotype shifts
# ---------------------------------------------------------------------------------------------

SHIFT_WINDOWS = (
    (1, 1, "day 1"),
    (2, 4, "days 2–4"),
    (5, 8, "days 5–8"),
    (9, 15, "days 9–15"),
    (16, 28, "days 16–28"),
)


#: columns of the per-sample phenotype table kept in the cache (shift_summary + windows)
_OVER_TIME_COLUMNS = (
    "patient_id",
    "study_day",
    "sample_index",
    "baseline_phenotype",
    "phenotype",
    "phenotype_shift",
    "reversal",
)


@cache.memoize()
def _immune_samples(version: str, thresholds_key: str) -> dict[str, pd.DataFrame]:
    """Per-sample phenotypes and per-patient reversal of every analysed patient
    (:func:`core.phenotype.phenotype_over_time`, :func:`core.phenotype.immune_reversal`, by
    day 28). Role- and filter-independent, never the arm: the panels filter and group it."""
    from core.phenotype import immune_reversal, phenotype_over_time
    from core.repository import load_biomarkers

    thresholds = services.settings().phenotype_thresholds
    patients = services.cohort_patients()
    bio = load_biomarkers(services.engine())
    bio = bio[bio["patient_id"].isin(patients["patient_id"])]
    anchor = bio["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    bio = bio.assign(
        study_day=(np.floor((bio["time"] - anchor) / pd.Timedelta(hours=24)) + 1).astype(int)
    )
    bio = bio[bio["study_day"] >= 1].reset_index(drop=True)
    rev = immune_reversal(
        bio, patients[["patient_id", "phenotype"]], by_day=28, thresholds=thresholds
    )
    if len(bio):
        ot = phenotype_over_time(bio, thresholds=thresholds, time_col="study_day")
        ot = ot[list(_OVER_TIME_COLUMNS)]
    else:
        ot = pd.DataFrame(columns=list(_OVER_TIME_COLUMNS))
    return {"reversal": rev, "over_time": ot}


@cache.memoize()
def _immune(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.phenotype import shift_summary
    from core.stats import arm_summary

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    samples = _immune_samples(ctx_args[0], ctx_args[2])
    rev = samples["reversal"].merge(
        df[["patient_id", *(["group"] if g.compared else [])]], on="patient_id"
    )
    evaluable = rev[rev["evaluable"]]
    out: dict[str, Any] = {"n_evaluable": len(evaluable)}
    if g.compared:
        two = evaluable[evaluable["group"].isin(g.labels)]
        out["reversal"] = (
            arm_summary(
                two.assign(stratum=two["baseline_phenotype"]),
                outcome_col="reversed",
                arm_col="group",
                stratum_col="stratum",
                treated=g.treated,
                control=g.control,
            )
            if two["group"].nunique() == 2
            else pd.DataFrame()
        )
        out["reversal_props"] = pd.concat(
            [
                _proportion_rows(two.assign(stratum="overall"), "reversed", ["stratum", "group"]),
                _proportion_rows(
                    two.assign(stratum=two["baseline_phenotype"]), "reversed", ["stratum", "group"]
                ),
            ],
            ignore_index=True,
        )
    else:
        out["reversal"] = pd.DataFrame()
        props = pd.concat(
            [
                _proportion_rows(evaluable.assign(stratum="overall"), "reversed", ["stratum"]),
                _proportion_rows(
                    evaluable.assign(stratum=evaluable["baseline_phenotype"]),
                    "reversed",
                    ["stratum"],
                ),
            ],
            ignore_index=True,
        )
        out["reversal_props"] = props.assign(group=POOLED_LABEL)
    # phenotype distribution per sampling window (pooled when blinded)
    ot = samples["over_time"]
    ot = ot[ot["patient_id"].isin(df["patient_id"])]
    groups = (
        df[["patient_id", "group"]] if g.compared else df[["patient_id"]].assign(group=POOLED_LABEL)
    )
    if len(ot):
        shifts = shift_summary(ot, groups, arm_col="group")
        ot = ot.merge(groups, on="patient_id")
        window = pd.Series(None, index=ot.index, dtype=object)
        for lo, hi, label in SHIFT_WINDOWS:
            window = window.mask(ot["study_day"].between(lo, hi), label)
        ot["window"] = window
        # one sample per patient and window: the last one
        last = (
            ot.dropna(subset=["window"])
            .sort_values("study_day")
            .groupby(["patient_id", "window"], as_index=False)
            .last()
        )
        dist = (
            last.groupby(["group", "window", "phenotype"], observed=True)
            .size()
            .rename("n_patients")
            .reset_index()
        )
        dist["share"] = dist["n_patients"] / dist.groupby(["group", "window"])[
            "n_patients"
        ].transform("sum")
    else:
        dist = pd.DataFrame(columns=["group", "window", "phenotype", "n_patients", "share"])
        shifts = pd.DataFrame()
    out["phenotype_over_time"] = dist
    out["shifts"] = shifts
    return out


def immune(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """Immune reversal by group (:func:`core.phenotype.immune_reversal`) and phenotype shifts.

    Post-baseline biomarkers are used pooled only when the role is blinded.
    """
    return _immune(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Safety
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _safety(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    from core.stats import AE_TABLE_COLUMNS, adverse_event_table, compare_proportions

    vis = ArmVisibility(ctx_args[5])
    g = groups_for(vis)
    df = _frame(ctx_args, filters_key)
    aes = services.cohort_adverse_events()
    aes = aes[aes["patient_id"].isin(df["patient_id"])]
    if g.compared:
        groups = df.loc[df["group"].isin(g.labels), ["patient_id", "group"]]
        n_by = {lab: int((groups["group"] == lab).sum()) for lab in g.labels}
    else:
        groups = df[["patient_id"]].assign(group=POOLED_LABEL)
        n_by = {POOLED_LABEL: len(df)}
    aes = aes[aes["patient_id"].isin(groups["patient_id"])]
    table = (
        adverse_event_table(aes, groups, n_by, arm_col="group")
        if len(aes)
        else pd.DataFrame(columns=list(AE_TABLE_COLUMNS))
    )
    table = table.rename(columns={"arm": "group"})
    out: dict[str, Any] = {"table": table, "n_by_group": n_by}
    aesi_rows = []
    if g.compared and all(n_by.values()):
        merged = aes.merge(groups, on="patient_id")
        for kind in ("anemia", "hemorrhage"):
            hit = merged[merged["aesi"] == kind].groupby("group")["patient_id"].nunique()
            e1, e2 = int(hit.get(g.treated, 0)), int(hit.get(g.control, 0))
            aesi_rows.append(
                {
                    "aesi": kind,
                    "comparison": compare_proportions(e1, n_by[g.treated], e2, n_by[g.control]),
                }
            )
    out["aesi"] = aesi_rows
    deaths = df[df["died_90"]].sort_values(["death_study_day", "patient_id"])
    cols = ["patient_id", "site_id", "phenotype", "death_study_day"]
    if g.compared:
        cols.append("group")
    out["deaths"] = deaths[cols].reset_index(drop=True)
    return out


def safety(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """AEs by group × SOC × PT (:func:`core.stats.adverse_event_table`), AESIs, deaths."""
    return _safety(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Data completeness
# ---------------------------------------------------------------------------------------------


@cache.memoize()
def _completeness(ctx_args: tuple[Any, ...], filters_key: tuple[Any, ...]) -> dict[str, Any]:
    df = _frame(ctx_args, filters_key)
    daily = services.cohort_daily()
    daily = daily[daily["patient_id"].isin(df["patient_id"]) & daily["study_day"].between(1, 15)]
    long = pd.DataFrame(
        {
            "site_id": daily["patient_id"].map(df.set_index("patient_id")["site_id"]),
            "study_day": daily["study_day"].astype(int),
            "imputed": daily["n_components_imputed"].astype(int),
            "components": len(ORGANS),
        }
    )
    grid = long.groupby(["site_id", "study_day"], as_index=False).agg(
        n_patient_days=("imputed", "size"),
        n_imputed=("imputed", "sum"),
        n_components=("components", "sum"),
    )
    grid["share_imputed"] = grid["n_imputed"] / grid["n_components"]
    grid["share_measured"] = 1 - grid["share_imputed"]
    q = df[(df["n_locf_days_d9"].fillna(0) > 0) | (df["day1_components_imputed"] > 0)]
    query = pd.DataFrame(
        {
            "patient_id": q["patient_id"],
            "site_id": q["site_id"],
            "day1_components_imputed": q["day1_components_imputed"].astype(int),
            "days_2_9_carried_forward": q["n_locf_days_d9"].fillna(0).astype(int),
            "days_2_9_scored_24_after_death": q["n_death_days_d9"].fillna(0).astype(int),
            "sofa_decrease_day9": q["sofa_decrease_d9"].astype(float),
            "responder_day9": q["responder_d9"].astype(bool),
        }
    ).sort_values(
        ["days_2_9_carried_forward", "day1_components_imputed", "patient_id"],
        ascending=[False, False, True],
    )
    return {"grid": grid, "query": query.reset_index(drop=True)}


def completeness(principal: Principal, filters: CohortFilters) -> dict[str, Any]:
    """Measured vs imputed SOFA components per site × study day, and the endpoint query list."""
    return _completeness(context(principal).args(), filters.key())


# ---------------------------------------------------------------------------------------------
# Drill-down
# ---------------------------------------------------------------------------------------------


def drilldown(
    principal: Principal, filters: CohortFilters, kind: str, **sel: Any
) -> tuple[str, pd.DataFrame]:
    """Patients behind a clicked bar or number: ``(title, frame)``.

    ``kind``: ``responders`` (``stratum``, ``group``, ``endpoint`` d9|d15), ``ae`` (``pt``,
    ``group``), ``site_day`` (``site_id``, ``study_day``), ``consort`` (``group``,
    ``phenotype``). Blinded roles get no group column and cannot select by group; they cannot
    list the patients of an adverse event of special interest (per-patient AESI listings can
    reveal the allocation, features.md §6.4).
    """
    vis = principal.arm_visibility
    g = groups_for(vis)
    df = analysis_frame(principal, filters)
    group = sel.get("group")
    if g.compared and group in g.labels:
        df = df[df["group"] == group]
    elif group not in (None, POOLED_LABEL) and not g.compared:
        return ("Not available in the blinded view", df.iloc[0:0][["patient_id"]])
    title = ""
    if kind == "responders":
        tag = sel.get("endpoint", "d9")
        stratum = sel.get("stratum") or "overall"
        if stratum != "overall":
            df = df[df["phenotype"] == stratum]
        df = df[df[f"responder_{tag}"]]
        title = f"Responders ({'day 9' if tag == 'd9' else 'day 15'}), {stratum}"
    elif kind == "ae":
        pt = sel.get("pt")
        aes = services.cohort_adverse_events()
        hit = aes[aes["pt"] == pt]
        if not g.compared and hit["aesi"].notna().any():
            return (
                f"{pt}: patient listing hidden: could reveal allocation",
                df.iloc[0:0][["patient_id"]],
            )
        df = df[df["patient_id"].isin(hit["patient_id"])]
        title = f"Patients with {pt}"
    elif kind == "site_day":
        daily = services.cohort_daily()
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
    cols = [
        "patient_id",
        "site_id",
        "phenotype",
        "baseline_sofa",
        "sofa_decrease_d9",
        "responder_d9",
        "death_study_day",
    ]
    if g.compared:
        cols.append("group")
    return title, df[cols].reset_index(drop=True)


def warm(principal: Principal) -> None:
    """Compute every panel of the unfiltered cohort for this principal's visibility (fills
    the shared cache; used by the background warm-up after a start or an import)."""
    filters = CohortFilters()
    counts(principal, filters)
    primary(principal, filters)
    consort(principal, filters)
    baseline(principal, filters)
    trajectories(principal, filters)
    survival(principal, filters, 28)
    survival(principal, filters, 90)
    immune(principal, filters)
    safety(principal, filters)
    completeness(principal, filters)
