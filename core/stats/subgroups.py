"""Strata homogeneity (Breslow–Day / Tarone), treatment × subgroup interaction, forest rows.

clinical.md §1.6 "Subgroups", §1.7 and §6.6 (SRC-AUDIT); docs/features.md §5.5.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.stats._checks import binary_outcome, check_arms
from core.stats.proportions import COMPARISON_COLUMNS, arm_summary
from core.vocab import Arm

__all__ = [
    "BreslowDayResult",
    "InteractionResult",
    "breslow_day",
    "forest_rows",
    "interaction_test",
    "inverse_variance_weight",
]

_Z975 = float(sps.norm.isf(0.025))  # 1.959963984540054


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
    # deferred import: statsmodels is heavy; loaded on first use (import_backends)
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
    """Binomial GLM fit (statsmodels results), separation warnings silenced."""
    # deferred import: statsmodels is heavy; loaded on first use (import_backends)
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
    arm = check_arms(sub, arm_col, treated, control, where)
    y = binary_outcome(sub, outcome_col, where).to_numpy(dtype=float)
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


def inverse_variance_weight(ci_lower: float, ci_upper: float) -> float:
    """Inverse-variance weight 1 / SE² of a log odds ratio, SE recovered from its Woolf 95 % CI.

    SE = (ln upper − ln lower) / (2 · 1.96). Used to size forest-plot boxes (docs/features.md
    §5.5). A CI that is not finite and positive (zero cells, separation) gives weight 0: such
    an estimate carries no information for the box size and is never shown as precise.
    """
    lo, hi = float(ci_lower), float(ci_upper)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        return 0.0
    se = (math.log(hi) - math.log(lo)) / (2 * _Z975)
    return 1.0 / se**2


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
        ``n``, the :func:`arm_summary` columns, ``interaction_p`` (one value per subgroup,
        repeated on its levels; NaN on the overall row; computed over the levels that hold
        both arms, NaN when fewer than two do) and ``weight`` (inverse variance of
        the log odds ratio, :func:`inverse_variance_weight`; 0 when not estimable). Estimates are refitted within each
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
        # a level with one arm only carries no interaction information (its interaction
        # column is collinear with its dummy): test the levels that have both arms, and
        # report no P (NaN) rather than a meaningless P = 1 when fewer than two remain
        both = df.groupby(col)[arm_col].agg(lambda a: {treated, control} <= set(a))
        testable = df[df[col].isin(both[both].index)]
        p = math.nan
        if testable[col].nunique() >= 2:
            p = interaction_test(
                testable,
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
    out["weight"] = [
        inverse_variance_weight(lo, hi)
        for lo, hi in zip(out["odds_ratio_ci_lower"], out["odds_ratio_ci_upper"], strict=True)
    ]
    cols = ["subgroup", "level", "n", *COMPARISON_COLUMNS, "interaction_p", "weight"]
    return out[cols].reset_index(drop=True)
