"""Arm statistics that reproduce the published ImmunoSep tables.

Methods follow clinical.md §1.7 and §6 (SRC-AUDIT; reproduction graded [D]):

* two-sided Fisher exact P (scipy ``fisher_exact``);
* odds ratio with a Woolf (logit) 95 % CI;
* risk difference (treated − control) with a Newcombe hybrid score (Wilson, no continuity
  correction) 95 % CI — statsmodels ``confint_proportions_2indep(method="newcomb")``;
* Breslow–Day homogeneity with Tarone's adjustment, treatment × subgroup interaction by a
  logistic-regression likelihood-ratio test, Kaplan–Meier / log-rank / Cox (lifelines);
* mean SOFA trajectories, adverse events by SOC × PT, CONSORT counts and Table 1 with
  standardized mean differences (no baseline p-values; docs/features.md §5.2, CONSORT).

Every function returns numbers (tidy DataFrames or frozen dataclasses); formatting belongs
to the UI. Group labels are free: the arm values are normally :class:`core.vocab.Arm`
(``'precision'`` / ``'placebo'``), but a coded DSMB view may pass ``'Group A'`` /
``'Group B'`` through the ``treated`` / ``control`` parameters (docs/blinding.md §6.2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.exceptions import DataValidationError, Problem
from core.vocab import Arm


def import_backends() -> None:
    """Import the statistics back ends (statsmodels, lifelines; ~1.5 s) now.

    They are imported lazily so ``core`` stays light for scripts; a server calls this at
    start-up, before gunicorn forks its workers (``--preload``), so no worker pays for the
    import on its first cohort request and the pages are shared copy-on-write.
    """
    import lifelines
    import lifelines.statistics  # noqa: F401
    import statsmodels.api
    import statsmodels.stats.contingency_tables
    import statsmodels.stats.proportion  # noqa: F401


__all__ = [
    "BreslowDayResult",
    "CoxResult",
    "InteractionResult",
    "KaplanMeierResult",
    "LogRankResult",
    "ProportionComparison",
    "adverse_event_table",
    "arm_summary",
    "breslow_day",
    "compare_proportions",
    "consort_counts",
    "cox_hr",
    "forest_rows",
    "interaction_test",
    "kaplan_meier",
    "logrank",
    "sofa_trajectories",
    "standardized_mean_difference",
    "table_one",
]

_Z975 = float(sps.norm.isf(0.025))  # 1.959963984540054


# ---------------------------------------------------------------------------------------------
# Two proportions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProportionComparison:
    """Treated vs control binary outcome (clinical.md §6, SRC-AUDIT, SRC-JAMA-ABS).

    All proportions and the risk difference are fractions (0.172, not 17.2). The risk
    difference is ``proportion_treated - proportion_control``; the paper's 28-day row prints
    the reverse sign (clinical.md §1.9 #2), the dashboard never does.
    """

    events_treated: int
    n_treated: int
    events_control: int
    n_control: int
    proportion_treated: float
    proportion_control: float
    risk_difference: float
    risk_difference_ci: tuple[float, float]
    odds_ratio: float
    odds_ratio_ci: tuple[float, float]
    p_value: float
    #: True when a zero cell made the Woolf OR and CI use the Haldane +0.5 correction
    haldane_corrected: bool = False


def _check_counts(events: int, n: int, name: str) -> tuple[int, int]:
    if isinstance(events, bool) or isinstance(n, bool):
        raise TypeError(f"{name}: counts must be integers, got booleans")
    if int(events) != events or int(n) != n:
        raise ValueError(f"{name}: counts must be whole numbers, got {events}/{n}")
    events, n = int(events), int(n)
    if n <= 0 or events < 0 or events > n:
        raise ValueError(f"{name}: need 0 <= events <= n and n > 0, got {events}/{n}")
    return events, n


def compare_proportions(
    events_treated: int,
    n_treated: int,
    events_control: int,
    n_control: int,
    *,
    alpha: float = 0.05,
) -> ProportionComparison:
    """Compare two independent proportions as the ImmunoSep report does.

    Parameters
    ----------
    events_treated, n_treated
        Patients with the outcome / analysed patients in the treated (precision) arm.
    events_control, n_control
        The same for the control (placebo) arm.
    alpha
        Two-sided level of the confidence intervals (0.05 → 95 %).

    Returns
    -------
    ProportionComparison
        Risk difference with the Newcombe hybrid score interval (Newcombe 1998 method 10:
        Wilson limits of each proportion, no continuity correction), odds ratio with the
        Woolf (logit) interval and the two-sided Fisher exact P.

    Notes
    -----
    Reproduces JAMA Table 2 (SRC-AUDIT; clinical.md §1.7 "Reproduction [D]"):
    46/131 vs 26/145 → RD 17.2 % (6.8 to 27.2), OR 2.48 (1.42–4.32), P = .002.

    Zero cells: the Woolf interval needs all four cells positive. Only when a cell is zero
    is 0.5 added to each of the four cells (Haldane–Anscombe); the point OR and its CI are
    then both computed from the corrected table and ``haldane_corrected`` is True. The
    Fisher P and the risk difference always use the raw counts.
    """
    a, n1 = _check_counts(events_treated, n_treated, "treated")
    c, n2 = _check_counts(events_control, n_control, "control")
    b, d = n1 - a, n2 - c
    p1, p2 = a / n1, c / n2

    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(a, n1, c, n2, method="newcomb", compare="diff", alpha=alpha)

    corrected = min(a, b, c, d) == 0
    aa, bb, cc, dd = (x + 0.5 for x in (a, b, c, d)) if corrected else (a, b, c, d)
    log_or = math.log(aa * dd / (bb * cc))
    z = float(sps.norm.isf(alpha / 2))
    se = math.sqrt(1 / aa + 1 / bb + 1 / cc + 1 / dd)

    p_value = float(sps.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue)
    return ProportionComparison(
        events_treated=a,
        n_treated=n1,
        events_control=c,
        n_control=n2,
        proportion_treated=p1,
        proportion_control=p2,
        risk_difference=p1 - p2,
        risk_difference_ci=(float(lo), float(hi)),
        odds_ratio=math.exp(log_or),
        odds_ratio_ci=(math.exp(log_or - z * se), math.exp(log_or + z * se)),
        p_value=min(p_value, 1.0),
        haldane_corrected=corrected,
    )


# ---------------------------------------------------------------------------------------------
# Helpers for arm-labelled frames
# ---------------------------------------------------------------------------------------------


def _binary_outcome(df: pd.DataFrame, col: str, where: str) -> pd.Series:
    """Outcome column as bool; missing or non-0/1 values raise (no silent drops)."""
    if col not in df.columns:
        raise DataValidationError([Problem(where, None, col, None, "an outcome column")])
    s = df[col]
    bad = s.isna() | ~s.isin([0, 1, True, False])
    if bad.any():
        problems = [
            Problem(where, int(i) + 1, col, s.iloc[i], "True/False or 0/1 (no missing outcome)")
            for i in np.flatnonzero(bad.to_numpy())[:20]
        ]
        raise DataValidationError(problems)
    return s.astype(bool)


def _check_arms(
    df: pd.DataFrame, arm_col: str, treated: Hashable, control: Hashable, where: str
) -> pd.Series:
    if arm_col not in df.columns:
        raise DataValidationError([Problem(where, None, arm_col, None, "an arm column")])
    arm = df[arm_col]
    bad = ~arm.isin([treated, control])
    if bad.any():
        problems = [
            Problem(where, int(i) + 1, arm_col, arm.iloc[i], f"{treated!r} or {control!r}")
            for i in np.flatnonzero(bad.to_numpy())[:20]
        ]
        raise DataValidationError(problems)
    return arm


_COMPARISON_COLUMNS = (
    "n_treated",
    "events_treated",
    "proportion_treated",
    "n_control",
    "events_control",
    "proportion_control",
    "risk_difference",
    "risk_difference_ci_lower",
    "risk_difference_ci_upper",
    "odds_ratio",
    "odds_ratio_ci_lower",
    "odds_ratio_ci_upper",
    "p_value",
)


def _comparison_row(outcome: pd.Series, is_treated: pd.Series) -> dict[str, float]:
    n1 = int(is_treated.sum())
    n2 = int((~is_treated).sum())
    e1 = int(outcome[is_treated].sum())
    e2 = int(outcome[~is_treated].sum())
    row: dict[str, float] = dict.fromkeys(_COMPARISON_COLUMNS, math.nan)
    row.update(n_treated=n1, events_treated=e1, n_control=n2, events_control=e2)
    if n1 > 0:
        row["proportion_treated"] = e1 / n1
    if n2 > 0:
        row["proportion_control"] = e2 / n2
    if n1 > 0 and n2 > 0:
        cmp = compare_proportions(e1, n1, e2, n2)
        row.update(
            risk_difference=cmp.risk_difference,
            risk_difference_ci_lower=cmp.risk_difference_ci[0],
            risk_difference_ci_upper=cmp.risk_difference_ci[1],
            odds_ratio=cmp.odds_ratio,
            odds_ratio_ci_lower=cmp.odds_ratio_ci[0],
            odds_ratio_ci_upper=cmp.odds_ratio_ci[1],
            p_value=cmp.p_value,
        )
    return row


def arm_summary(
    df: pd.DataFrame,
    *,
    outcome_col: str,
    arm_col: str = "arm",
    stratum_col: str | None = None,
    treated: Hashable = Arm.PRECISION.value,
    control: Hashable = Arm.PLACEBO.value,
) -> pd.DataFrame:
    """Binary outcome by arm, overall and per stratum (clinical.md §1.8.3, SRC-AUDIT).

    Parameters
    ----------
    df
        One row per analysed patient with ``arm_col`` and a boolean / 0-1 ``outcome_col``.
    stratum_col
        Optional stratum (e.g. baseline phenotype MALS / SIP).
    treated, control
        The two arm labels (``'precision'`` / ``'placebo'`` or coded ``'Group A'`` / ...).

    Returns
    -------
    DataFrame
        One row for ``stratum == 'overall'`` then one per stratum level (sorted), columns
        ``stratum``, ``n_treated``, ``events_treated``, ``proportion_treated``,
        ``n_control``, ``events_control``, ``proportion_control``, ``risk_difference``
        (treated − control, fraction), ``risk_difference_ci_lower/upper``, ``odds_ratio``,
        ``odds_ratio_ci_lower/upper``, ``p_value`` (Fisher). Comparisons are NaN in a
        stratum where one arm is empty.

    Notes
    -----
    A missing outcome raises :class:`DataValidationError`; the SAP's endpoint imputation
    (LOCF, death = 24) guarantees a complete outcome, so a gap is a data error.
    """
    where = "arm_summary"
    arm = _check_arms(df, arm_col, treated, control, where)
    outcome = _binary_outcome(df, outcome_col, where)
    is_treated = arm == treated
    rows = [{"stratum": "overall", **_comparison_row(outcome, is_treated)}]
    if stratum_col is not None:
        strata = df[stratum_col]
        for level in sorted(strata.dropna().unique(), key=str):
            mask = (strata == level).to_numpy()
            rows.append({"stratum": level, **_comparison_row(outcome[mask], is_treated[mask])})
    return pd.DataFrame(rows, columns=["stratum", *_COMPARISON_COLUMNS])


# ---------------------------------------------------------------------------------------------
# Strata homogeneity and interaction
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreslowDayResult:
    """Homogeneity of odds ratios across strata (clinical.md §1.7 and §6.6, SRC-AUDIT)."""

    statistic: float  # Breslow–Day with Tarone's adjustment
    p_value: float
    statistic_unadjusted: float  # Breslow–Day without Tarone's adjustment
    p_value_unadjusted: float
    df: int
    odds_ratio_mh: float  # Mantel–Haenszel pooled OR
    odds_ratio_mh_ci: tuple[float, float]  # Robins–Breslow–Greenland CI


def _breslow_day_or_one(arrays: list[np.ndarray]) -> tuple[float, float]:
    """Breslow–Day and Tarone statistics when the pooled OR is exactly 1.

    With OR = 1 the expected first cell is the independence value n1·m1 / n.
    """
    bd = dev = var_sum = 0.0
    for t in arrays:
        (a, b), (c, d) = t
        n1, m1, n = a + b, a + c, a + b + c + d
        e = n1 * m1 / n
        v = 1 / (1 / e + 1 / (n1 - e) + 1 / (m1 - e) + 1 / (n - n1 - m1 + e))
        bd += (a - e) ** 2 / v
        dev += a - e
        var_sum += v
    return bd, bd - dev**2 / var_sum


def breslow_day(tables: Iterable[Sequence[Sequence[float]]]) -> BreslowDayResult:
    """Breslow–Day (Tarone) test that the odds ratio is equal across strata.

    Parameters
    ----------
    tables
        One 2×2 table per stratum, ``[[events_treated, non_events_treated],
        [events_control, non_events_control]]``.

    Notes
    -----
    statsmodels ``StratifiedTable.test_equal_odds(adjust=True)`` applies Tarone's
    correction, the variant the SAP names (clinical.md §1.7 "Breslow–Day / Tarone").
    Degrees of freedom = number of strata − 1.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    arrays = [np.asarray(t, dtype=float) for t in tables]
    if len(arrays) < 2 or any(a.shape != (2, 2) for a in arrays):
        raise ValueError("breslow_day needs at least two 2x2 tables")
    st = StratifiedTable(arrays)
    dof = len(arrays) - 1
    if math.isclose(float(st.oddsratio_pooled), 1.0, rel_tol=1e-12):
        # statsmodels solves the expected-cell quadratic by dividing by (1 − OR_MH), which is
        # 0 here; the equation is then linear and solved directly.
        bd, tarone_stat = _breslow_day_or_one(arrays)
        tarone_p, plain_p = float(sps.chi2.sf(tarone_stat, dof)), float(sps.chi2.sf(bd, dof))
    else:
        tarone = st.test_equal_odds(adjust=True)
        plain = st.test_equal_odds(adjust=False)
        bd, tarone_stat = float(plain.statistic), float(tarone.statistic)
        tarone_p, plain_p = float(tarone.pvalue), float(plain.pvalue)
    lo, hi = st.oddsratio_pooled_confint()
    return BreslowDayResult(
        statistic=tarone_stat,
        p_value=tarone_p,
        statistic_unadjusted=bd,
        p_value_unadjusted=plain_p,
        df=dof,
        odds_ratio_mh=float(st.oddsratio_pooled),
        odds_ratio_mh_ci=(float(lo), float(hi)),
    )


@dataclass(frozen=True)
class InteractionResult:
    """Treatment × subgroup likelihood-ratio test (clinical.md §1.6 "Subgroups", SRC-AUDIT)."""

    lr_statistic: float
    df: int
    p_value: float
    #: exp(interaction coefficient) for a two-level subgroup (ratio of the ORs), else NaN
    interaction_odds_ratio: float
    interaction_odds_ratio_ci: tuple[float, float]


def _fit_logit(y: np.ndarray, x: np.ndarray):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    with warnings.catch_warnings():
        # Sparse subgroups (e.g. 4/23 events) can separate; the LR statistic stays defined
        # and is reported, so these two statsmodels warnings are expected here only.
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return sm.GLM(y, x, family=sm.families.Binomial()).fit()


def interaction_test(
    df: pd.DataFrame,
    *,
    outcome_col: str,
    subgroup_col: str,
    arm_col: str = "arm",
    treated: Hashable = Arm.PRECISION.value,
    control: Hashable = Arm.PLACEBO.value,
) -> InteractionResult:
    """Logistic-regression LR test of treatment × subgroup (forest plot interaction P).

    Full model ``logit P(outcome) = b0 + b1·treated + Σ subgroup dummies + Σ treated×dummies``
    against the model without the interaction terms; LR = 2·(llf_full − llf_reduced) on
    (levels − 1) df. Rows with a missing subgroup value are left out of both models.
    The first level (sorted) is the reference (SRC-AUDIT eFigure 7B: "CCI ≥ 5 × precision").
    """
    where = "interaction_test"
    sub = df[df[subgroup_col].notna()]
    arm = _check_arms(sub, arm_col, treated, control, where)
    y = _binary_outcome(sub, outcome_col, where).to_numpy(dtype=float)
    t = (arm == treated).to_numpy(dtype=float)
    levels = sorted(sub[subgroup_col].unique(), key=str)
    if len(levels) < 2:
        raise ValueError(f"{subgroup_col!r} needs at least two levels, got {levels}")
    dummies = np.column_stack([(sub[subgroup_col] == lv).to_numpy(float) for lv in levels[1:]])
    ones = np.ones_like(t)
    x_red = np.column_stack([ones, t, dummies])
    x_full = np.column_stack([x_red, dummies * t[:, None]])
    full = _fit_logit(y, x_full)
    red = _fit_logit(y, x_red)
    lr = max(0.0, 2.0 * (float(full.llf) - float(red.llf)))
    dof = len(levels) - 1
    ior, ici = math.nan, (math.nan, math.nan)
    if dof == 1:
        coef, se = float(full.params[-1]), float(full.bse[-1])
        # separation (a subgroup with all or no events in one arm) drives the coefficient
        # and its SE towards infinity: report the estimate as not estimable, never crash
        if math.isfinite(coef) and math.isfinite(se) and abs(coef) + _Z975 * se < 700:
            ior = math.exp(coef)
            ici = (math.exp(coef - _Z975 * se), math.exp(coef + _Z975 * se))
    return InteractionResult(
        lr_statistic=lr,
        df=dof,
        p_value=float(sps.chi2.sf(lr, dof)),
        interaction_odds_ratio=ior,
        interaction_odds_ratio_ci=ici,
    )


def forest_rows(
    df: pd.DataFrame,
    *,
    outcome_col: str,
    subgroups: Mapping[str, str],
    arm_col: str = "arm",
    treated: Hashable = Arm.PRECISION.value,
    control: Hashable = Arm.PLACEBO.value,
) -> pd.DataFrame:
    """Tidy rows for a subgroup forest plot (docs/features.md §5.5).

    Parameters
    ----------
    subgroups
        Display name → column, e.g. ``{"Immune state": "phenotype", "APACHE II ≥ 25":
        "apache_ge_25"}``.

    Returns
    -------
    DataFrame
        First an ``overall`` row, then per subgroup and level: ``subgroup``, ``level``,
        ``n``, the :func:`arm_summary` columns and ``interaction_p`` (one value per subgroup,
        repeated on its levels; NaN on the overall row). Estimates are refitted within each
        level; subgroup analyses are exploratory.
    """
    overall = arm_summary(
        df, outcome_col=outcome_col, arm_col=arm_col, treated=treated, control=control
    ).iloc[[0]]
    parts = [overall.assign(subgroup="overall", level="all", interaction_p=math.nan)]
    for name, col in subgroups.items():
        table = arm_summary(
            df,
            outcome_col=outcome_col,
            arm_col=arm_col,
            stratum_col=col,
            treated=treated,
            control=control,
        ).iloc[1:]
        p = interaction_test(
            df,
            outcome_col=outcome_col,
            subgroup_col=col,
            arm_col=arm_col,
            treated=treated,
            control=control,
        ).p_value
        parts.append(
            table.rename(columns={"stratum": "level"}).assign(subgroup=name, interaction_p=p)
        )
    out = pd.concat(parts, ignore_index=True)
    out["level"] = out["level"].where(out["subgroup"] != "overall", "all")
    out["n"] = out["n_treated"] + out["n_control"]
    cols = ["subgroup", "level", "n", *_COMPARISON_COLUMNS, "interaction_p"]
    return out[cols].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Survival
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KaplanMeierResult:
    """Kaplan–Meier estimate for one group (docs/features.md §5.4)."""

    group: Hashable
    #: time_days, survival, ci_lower, ci_upper (log(-log) CI, lifelines default), n_at_risk,
    #: n_events, n_censored; starts with time 0, survival 1
    curve: pd.DataFrame
    censor_times_days: tuple[float, ...]
    #: time_days, n_at_risk (subjects with duration ≥ time)
    at_risk: pd.DataFrame
    median_days: float  # inf when survival never falls to 0.5


def _survival_inputs(
    durations: Sequence[float] | pd.Series,
    events: Sequence[bool] | pd.Series,
    groups: Sequence[Hashable] | pd.Series | None,
    horizon: float | None,
) -> pd.DataFrame:
    d = pd.DataFrame(
        {
            "duration": np.asarray(durations, dtype=float),
            "event": np.asarray(events, dtype=bool),
            "group": np.asarray(groups, dtype=object) if groups is not None else "all",
        }
    )
    if d["duration"].isna().any() or (d["duration"] < 0).any():
        raise ValueError("durations must be non-negative and not missing")
    if horizon is not None:
        late = d["duration"] > horizon
        d.loc[late, "duration"] = float(horizon)
        d.loc[late, "event"] = False
    return d


def kaplan_meier(
    durations: Sequence[float] | pd.Series,
    events: Sequence[bool] | pd.Series,
    groups: Sequence[Hashable] | pd.Series,
    *,
    horizon: float | None = None,
    at_risk_times: Sequence[float] = (),
    alpha: float = 0.05,
) -> dict[Hashable, KaplanMeierResult]:
    """Kaplan–Meier curves per group with numbers at risk (lifelines; clinical.md §6.5).

    Parameters
    ----------
    durations
        Days from anchor to death or censoring.
    events
        True for death.
    groups
        Arm (or coded group) per patient.
    horizon
        Administrative censoring: durations beyond it are censored at the horizon.
    at_risk_times
        Times (days) at which the number at risk (duration ≥ time) is reported.

    Returns
    -------
    dict
        Group label → :class:`KaplanMeierResult`, in sorted label order.
    """
    from lifelines import KaplanMeierFitter

    data = _survival_inputs(durations, events, groups, horizon)
    out: dict[Hashable, KaplanMeierResult] = {}
    for label in sorted(data["group"].unique(), key=str):
        g = data[data["group"] == label]
        kmf = KaplanMeierFitter(alpha=alpha).fit(g["duration"], g["event"], label=str(label))
        et = kmf.event_table
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_survival_function_
        curve = pd.DataFrame(
            {
                "time_days": sf.index.to_numpy(dtype=float),
                "survival": sf.to_numpy(dtype=float),
                "ci_lower": ci.iloc[:, 0].to_numpy(dtype=float),
                "ci_upper": ci.iloc[:, 1].to_numpy(dtype=float),
                "n_at_risk": et["at_risk"].reindex(sf.index).to_numpy(dtype=int),
                "n_events": et["observed"].reindex(sf.index).to_numpy(dtype=int),
                "n_censored": et["censored"].reindex(sf.index).to_numpy(dtype=int),
            }
        )
        dur = g["duration"].to_numpy()
        at_risk = pd.DataFrame(
            {
                "time_days": np.asarray(at_risk_times, dtype=float),
                "n_at_risk": [int((dur >= t).sum()) for t in at_risk_times],
            }
        )
        censored = np.sort(g.loc[~g["event"], "duration"].unique())
        out[label] = KaplanMeierResult(
            group=label,
            curve=curve,
            censor_times_days=tuple(float(x) for x in censored),
            at_risk=at_risk,
            median_days=float(kmf.median_survival_time_),
        )
    return out


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank test (clinical.md §1.7 "Mortality")."""

    statistic: float
    df: int
    p_value: float


def logrank(
    durations: Sequence[float] | pd.Series,
    events: Sequence[bool] | pd.Series,
    groups: Sequence[Hashable] | pd.Series,
    *,
    horizon: float | None = None,
) -> LogRankResult:
    """Log-rank test across groups (lifelines ``multivariate_logrank_test``)."""
    from lifelines.statistics import multivariate_logrank_test

    data = _survival_inputs(durations, events, groups, horizon)
    k = data["group"].nunique()
    if k < 2:
        raise ValueError("logrank needs at least two groups")
    res = multivariate_logrank_test(data["duration"], data["group"].astype(str), data["event"])
    return LogRankResult(statistic=float(res.test_statistic), df=k - 1, p_value=float(res.p_value))


@dataclass(frozen=True)
class CoxResult:
    """Cox proportional-hazards HR of treated vs control (Efron ties; lifelines)."""

    hazard_ratio: float
    hazard_ratio_ci: tuple[float, float]
    p_value: float  # Wald
    coefficient: float  # log HR
    standard_error: float
    n: int
    n_events: int


def cox_hr(
    durations: Sequence[float] | pd.Series,
    events: Sequence[bool] | pd.Series,
    groups: Sequence[Hashable] | pd.Series,
    *,
    treated: Hashable = Arm.PRECISION.value,
    control: Hashable = Arm.PLACEBO.value,
    horizon: float | None = None,
    alpha: float = 0.05,
) -> CoxResult:
    """Hazard ratio treated vs control from a Cox model with the treatment indicator only.

    Paper values (not reproducible from counts, SRC-AUDIT): 28-day HR 0.83 (0.59–1.18),
    90-day HR 0.84 (0.63–1.12). lifelines ``CoxPHFitter`` handles ties by Efron's method.
    """
    from lifelines import CoxPHFitter

    data = _survival_inputs(durations, events, groups, horizon)
    bad = ~data["group"].isin([treated, control])
    if bad.any():
        raise ValueError(f"groups must be {treated!r} or {control!r}")
    frame = pd.DataFrame(
        {
            "duration": data["duration"],
            "event": data["event"].astype(int),
            "treated": (data["group"] == treated).astype(float),
        }
    )
    cph = CoxPHFitter(alpha=alpha).fit(frame, duration_col="duration", event_col="event")
    row = cph.summary.loc["treated"]
    z = float(sps.norm.isf(alpha / 2))
    coef, se = float(row["coef"]), float(row["se(coef)"])
    return CoxResult(
        hazard_ratio=math.exp(coef),
        hazard_ratio_ci=(math.exp(coef - z * se), math.exp(coef + z * se)),
        p_value=float(row["p"]),
        coefficient=coef,
        standard_error=se,
        n=len(frame),
        n_events=int(frame["event"].sum()),
    )


# ---------------------------------------------------------------------------------------------
# SOFA trajectories
# ---------------------------------------------------------------------------------------------


def sofa_trajectories(
    daily: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    days: Iterable[int] = range(1, 16),
    arm_col: str = "arm",
    value_col: str = "sofa_total",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Mean daily SOFA per arm with a t-based CI (docs/features.md §3; clinical.md §1.6).

    Parameters
    ----------
    daily
        ``patient_id``, ``study_day``, ``value_col`` (observed values; no imputation here).
    arms
        ``patient_id``, ``arm_col`` (any labels, e.g. coded groups).

    Returns
    -------
    DataFrame
        ``arm``, ``study_day``, ``n_patients``, ``mean_sofa``, ``sd_sofa``, ``ci_lower``,
        ``ci_upper`` — one row per arm × requested day (n = 0 gives NaN). CI = mean ±
        t(1 − alpha/2, n − 1)·SD/√n; NaN when n < 2. Missing values are left out.
    """
    days = [int(d) for d in days]
    merged = daily[["patient_id", "study_day", value_col]].merge(
        arms[["patient_id", arm_col]], on="patient_id", how="inner", validate="many_to_one"
    )
    merged = merged[merged["study_day"].isin(days) & merged[value_col].notna()]
    agg = (
        merged.groupby([arm_col, "study_day"], observed=True)[value_col]
        .agg(n_patients="count", mean_sofa="mean", sd_sofa="std")
        .reset_index()
    )
    labels = sorted(arms[arm_col].dropna().unique(), key=str)
    grid = pd.MultiIndex.from_product([labels, days], names=[arm_col, "study_day"])
    agg = agg.set_index([arm_col, "study_day"]).reindex(grid).reset_index()
    agg["n_patients"] = agg["n_patients"].fillna(0).astype(int)
    n = agg["n_patients"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tq = np.where(n >= 2, sps.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1)), np.nan)
        half = tq * agg["sd_sofa"].to_numpy(dtype=float) / np.sqrt(n)
    agg["ci_lower"] = agg["mean_sofa"] - half
    agg["ci_upper"] = agg["mean_sofa"] + half
    agg = agg.rename(columns={arm_col: "arm"})
    return agg[["arm", "study_day", "n_patients", "mean_sofa", "sd_sofa", "ci_lower", "ci_upper"]]


# ---------------------------------------------------------------------------------------------
# Adverse events
# ---------------------------------------------------------------------------------------------


#: columns of :func:`adverse_event_table`, in order
AE_TABLE_COLUMNS = (
    "level",
    "soc",
    "pt",
    "arm",
    "n_patients",
    "n_events",
    "percent_of_arm",
    "n_patients_serious",
    "n_patients_severe",
    "aesi",
    "is_aesi",
)


def adverse_event_table(
    aes: pd.DataFrame,
    arms: pd.DataFrame,
    n_by_arm: Mapping[Hashable, int],
    *,
    arm_col: str = "arm",
) -> pd.DataFrame:
    """Patients with ≥ 1 adverse event by arm × SOC × PT (docs/features.md §5.6; clinical.md §1.8.4).

    Parameters
    ----------
    aes
        ``patient_id``, ``soc``, ``pt``, ``serious`` (bool), ``severe`` (bool) and optionally
        ``aesi`` ('anemia' | 'hemorrhage' | None), one row per event.
    arms
        ``patient_id``, ``arm_col``.
    n_by_arm
        Arm label → analysed patients (denominator of ``percent_of_arm``).

    Returns
    -------
    DataFrame
        ``level`` ('any' | 'soc' | 'pt'), ``soc``, ``pt``, ``arm``, ``n_patients`` (patients
        with ≥ 1 event), ``n_events``, ``percent_of_arm`` (0–100), ``n_patients_serious``,
        ``n_patients_severe``, ``aesi`` (label or None), ``is_aesi``. Every arm of
        ``n_by_arm`` appears for every SOC/PT (zero counts included). Sorted by level, then
        by decreasing total patients.

    Notes
    -----
    Adverse events of special interest (clinical.md §1.8.4, SRC-JAMA-ABS: anemia with
    anakinra, hemorrhage with rhIFN-γ) are flagged from the ``aesi`` column; a PT is AESI if
    any of its events is. Events of patients without an arm raise.
    """
    where = "adverse_events"
    ev = aes.merge(arms[["patient_id", arm_col]], on="patient_id", how="left")
    missing = ev[arm_col].isna()
    if missing.any():
        raise DataValidationError(
            [
                Problem(
                    where,
                    int(i) + 1,
                    "patient_id",
                    ev["patient_id"].iloc[i],
                    "a patient with an arm",
                )
                for i in np.flatnonzero(missing.to_numpy())[:20]
            ]
        )
    ev = ev.rename(columns={arm_col: "arm"})
    if "aesi" not in ev.columns:
        ev["aesi"] = None
    ev["serious"] = ev["serious"].fillna(False).astype(bool)
    ev["severe"] = ev["severe"].fillna(False).astype(bool)
    labels = list(n_by_arm)

    def block(level: str, keys: list[str]) -> pd.DataFrame:
        g = ev.assign(_all="any")
        key_cols = keys if keys else ["_all"]
        grouped = g.groupby([*key_cols, "arm"], dropna=False)
        counts = grouped.agg(
            n_patients=("patient_id", "nunique"),
            n_events=("patient_id", "size"),
        )
        serious = g[g["serious"]].groupby([*key_cols, "arm"])["patient_id"].nunique()
        severe = g[g["severe"]].groupby([*key_cols, "arm"])["patient_id"].nunique()
        counts["n_patients_serious"] = serious
        counts["n_patients_severe"] = severe
        key_index = g[key_cols].drop_duplicates()
        grid = key_index.merge(pd.DataFrame({"arm": labels}), how="cross")
        res = grid.merge(counts.reset_index(), on=[*key_cols, "arm"], how="left")
        for c in ("n_patients", "n_events", "n_patients_serious", "n_patients_severe"):
            res[c] = res[c].fillna(0).astype(int)
        res["level"] = level
        res["soc"] = res["soc"] if "soc" in keys else None
        res["pt"] = res["pt"] if "pt" in keys else None
        aesi = g.dropna(subset=["aesi"]).groupby(key_cols)["aesi"].first()
        res = res.merge(aesi.rename("aesi").reset_index(), on=key_cols, how="left")
        if not keys:
            res["aesi"] = None
        return res

    parts = [block("any", []), block("soc", ["soc"]), block("pt", ["soc", "pt"])]
    out = pd.concat(parts, ignore_index=True)
    out["aesi"] = out["aesi"].astype(object).where(out["aesi"].notna(), None)
    out["is_aesi"] = out["aesi"].notna()
    denom = out["arm"].map(dict(n_by_arm)).astype(float)
    out["percent_of_arm"] = 100.0 * out["n_patients"] / denom
    total = out.groupby(["level", "soc", "pt"], dropna=False)["n_patients"].transform("sum")
    out["_total"] = total
    out["_level_order"] = out["level"].map({"any": 0, "soc": 1, "pt": 2})
    out = out.sort_values(
        ["_level_order", "_total", "soc", "pt", "arm"],
        ascending=[True, False, True, True, True],
        key=lambda s: s if s.name in ("_level_order", "_total") else s.astype(str),
    )
    return out[list(AE_TABLE_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# CONSORT
# ---------------------------------------------------------------------------------------------


def consort_counts(
    disposition: pd.DataFrame, arms: pd.DataFrame, *, arm_col: str = "arm"
) -> pd.DataFrame:
    """CONSORT flow counts from a disposition table (clinical.md §1.8.1; docs/features.md §5.1).

    Parameters
    ----------
    disposition
        One row per screened person: ``screening_id``, ``patient_id`` (None if not
        randomised), ``excluded_reason`` (None if randomised), ``phenotype_at_screening``,
        ``withdrawn_with_data_removal`` (bool).
    arms
        ``patient_id``, ``arm_col`` for randomised patients.

    Returns
    -------
    DataFrame
        ``step`` ('screened' | 'excluded' | 'randomised' | 'withdrawn' | 'analysed'),
        ``arm``, ``phenotype``, ``reason``, ``n`` (None = all). Rows: screened (total);
        excluded total and per reason; randomised total and per arm; withdrawn (consent
        withdrawn with data removal, SRC-AUDIT: 4 / 1) per arm; analysed per arm and per
        arm × phenotype.
    """
    d = disposition
    randomised = d["patient_id"].notna()
    rows: list[dict[str, object]] = [
        {"step": "screened", "arm": None, "phenotype": None, "reason": None, "n": len(d)}
    ]
    exc = d[~randomised]
    rows.append({"step": "excluded", "arm": None, "phenotype": None, "reason": None, "n": len(exc)})
    reasons = exc["excluded_reason"].fillna("not stated").value_counts()
    for reason in sorted(reasons.index, key=lambda r: (-reasons[r], str(r))):
        rows.append(
            {
                "step": "excluded",
                "arm": None,
                "phenotype": None,
                "reason": reason,
                "n": int(reasons[reason]),
            }
        )
    rnd = d[randomised].merge(arms[["patient_id", arm_col]], on="patient_id", how="left")
    if rnd[arm_col].isna().any():
        ids = rnd.loc[rnd[arm_col].isna(), "patient_id"].tolist()[:20]
        raise DataValidationError(
            [
                Problem("disposition", None, "patient_id", i, "a randomised patient with an arm")
                for i in ids
            ]
        )
    rnd["withdrawn"] = rnd["withdrawn_with_data_removal"].fillna(False).astype(bool)
    labels = sorted(rnd[arm_col].unique(), key=str)
    rows.append(
        {"step": "randomised", "arm": None, "phenotype": None, "reason": None, "n": len(rnd)}
    )
    for lab in labels:
        arm_rows = rnd[rnd[arm_col] == lab]
        rows.append(
            {
                "step": "randomised",
                "arm": lab,
                "phenotype": None,
                "reason": None,
                "n": len(arm_rows),
            }
        )
    for lab in labels:
        n_w = int(rnd.loc[rnd[arm_col] == lab, "withdrawn"].sum())
        rows.append(
            {
                "step": "withdrawn",
                "arm": lab,
                "phenotype": None,
                "reason": "consent withdrawn with data removal",
                "n": n_w,
            }
        )
    analysed = rnd[~rnd["withdrawn"]]
    rows.append(
        {"step": "analysed", "arm": None, "phenotype": None, "reason": None, "n": len(analysed)}
    )
    for lab in labels:
        a = analysed[analysed[arm_col] == lab]
        rows.append(
            {"step": "analysed", "arm": lab, "phenotype": None, "reason": None, "n": len(a)}
        )
        ph = a["phenotype_at_screening"].fillna("unknown").value_counts()
        for p in sorted(ph.index, key=str):
            rows.append(
                {"step": "analysed", "arm": lab, "phenotype": p, "reason": None, "n": int(ph[p])}
            )
    out = pd.DataFrame(rows, columns=["step", "arm", "phenotype", "reason", "n"])
    out["n"] = out["n"].astype(int)
    return out


# ---------------------------------------------------------------------------------------------
# Table 1
# ---------------------------------------------------------------------------------------------


def standardized_mean_difference(
    x1: Sequence[float] | pd.Series, x2: Sequence[float] | pd.Series
) -> float:
    """Absolute SMD of a continuous variable: |m1 − m2| / √((s1² + s2²)/2), SDs with ddof 1.

    Missing values are left out. NaN when either group has fewer than 2 values or both SDs
    are 0 with equal means.
    """
    a = pd.Series(x1, dtype=float).dropna()
    b = pd.Series(x2, dtype=float).dropna()
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    diff = abs(a.mean() - b.mean())
    if pooled == 0:
        return 0.0 if diff == 0 else math.inf
    return float(diff / pooled)


def categorical_smd(p1: Sequence[float], p2: Sequence[float]) -> float:
    """Yang & Dalton (2012) multi-category SMD from the level proportions of two groups.

    ``sqrt(T' S⁻¹ T)`` with T = (p1 − p2) over levels 2..K and
    S[k,k] = (p1k(1−p1k) + p2k(1−p2k))/2, S[k,l] = −(p1k p1l + p2k p2l)/2. For two levels
    it equals |p1 − p2| / √((p1(1−p1) + p2(1−p2))/2). Levels absent in both groups are
    dropped; a singular S uses the pseudo-inverse.
    """
    a = np.asarray(p1, dtype=float)
    b = np.asarray(p2, dtype=float)
    keep = (a > 0) | (b > 0)
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return 0.0
    t = (a - b)[1:]
    pa, pb = a[1:], b[1:]
    s = -(np.outer(pa, pa) + np.outer(pb, pb)) / 2
    np.fill_diagonal(s, (pa * (1 - pa) + pb * (1 - pb)) / 2)
    if not np.any(t):
        return 0.0
    val = float(t @ np.linalg.pinv(s) @ t)
    return math.sqrt(max(val, 0.0))


def table_one(
    baseline: pd.DataFrame,
    *,
    group_col: str,
    continuous: Sequence[str] = (),
    categorical: Sequence[str] = (),
    nonnormal: Sequence[str] = (),
    groups: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Baseline Table 1 by group with standardized mean differences and NO p-values.

    CONSORT: baseline p-values are not reported in a randomised trial (docs/features.md §5.2);
    balance is shown by the SMD instead (clinical.md §1.8.2 lists the ImmunoSep baseline).

    Parameters
    ----------
    baseline
        One row per patient.
    group_col
        Arm or coded group column (any labels).
    continuous, categorical
        Variable names. ``nonnormal`` continuous variables are flagged
        ``summary == 'median_iqr'`` (both mean/SD and median/IQR numbers are always given).
    groups
        Group order; default sorted labels. The SMD compares the first two groups.

    Returns
    -------
    DataFrame
        ``variable``, ``level`` (None for continuous), ``kind`` ('continuous' |
        'categorical'), ``summary`` ('mean_sd' | 'median_iqr' | 'n_pct'), ``group``,
        ``n_nonmissing``, ``n_missing``, ``mean``, ``sd``, ``median``, ``q1``, ``q3``,
        ``count``, ``percent`` (0–100 of non-missing), ``smd`` (absolute; same on each row of a
        variable; NaN unless exactly two groups).
    """
    labels = (
        list(groups)
        if groups is not None
        else sorted(baseline[group_col].dropna().unique(), key=str)
    )
    by = {g: baseline[baseline[group_col] == g] for g in labels}
    two = len(labels) == 2
    rows: list[dict[str, object]] = []
    for var in continuous:
        smd = (
            standardized_mean_difference(by[labels[0]][var], by[labels[1]][var])
            if two
            else math.nan
        )
        for g in labels:
            s = pd.to_numeric(by[g][var], errors="raise").astype(float)
            v = s.dropna()
            rows.append(
                {
                    "variable": var,
                    "level": None,
                    "kind": "continuous",
                    "summary": "median_iqr" if var in nonnormal else "mean_sd",
                    "group": g,
                    "n_nonmissing": len(v),
                    "n_missing": int(s.isna().sum()),
                    "mean": float(v.mean()) if len(v) else math.nan,
                    "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                    "median": float(v.median()) if len(v) else math.nan,
                    "q1": float(v.quantile(0.25)) if len(v) else math.nan,
                    "q3": float(v.quantile(0.75)) if len(v) else math.nan,
                    "count": math.nan,
                    "percent": math.nan,
                    "smd": smd,
                }
            )
    for var in categorical:
        levels = sorted(baseline[var].dropna().unique(), key=str)
        props: dict[Hashable, list[float]] = {}
        counts: dict[Hashable, pd.Series] = {}
        for g in labels:
            v = by[g][var].dropna()
            vc = v.value_counts().reindex(levels, fill_value=0)
            counts[g] = vc
            props[g] = list(vc / len(v)) if len(v) else [math.nan] * len(levels)
        smd = categorical_smd(props[labels[0]], props[labels[1]]) if two else math.nan
        for lv in levels:
            for g in labels:
                v = by[g][var]
                nn = int(v.notna().sum())
                rows.append(
                    {
                        "variable": var,
                        "level": lv,
                        "kind": "categorical",
                        "summary": "n_pct",
                        "group": g,
                        "n_nonmissing": nn,
                        "n_missing": int(v.isna().sum()),
                        "mean": math.nan,
                        "sd": math.nan,
                        "median": math.nan,
                        "q1": math.nan,
                        "q3": math.nan,
                        "count": int(counts[g][lv]),
                        "percent": 100.0 * counts[g][lv] / nn if nn else math.nan,
                        "smd": smd,
                    }
                )
    cols = [
        "variable",
        "level",
        "kind",
        "summary",
        "group",
        "n_nonmissing",
        "n_missing",
        "mean",
        "sd",
        "median",
        "q1",
        "q3",
        "count",
        "percent",
        "smd",
    ]
    return pd.DataFrame(rows, columns=cols)
