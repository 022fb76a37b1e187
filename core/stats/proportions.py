"""Two independent proportions: Newcombe risk difference, Woolf odds ratio, Fisher P.

``compare_proportions`` reproduces JAMA Table 2 from its counts; ``arm_summary`` applies it
per arm, overall and per stratum, to a one-row-per-patient frame (clinical.md §1.7, §6).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import pandas as pd
from scipy import stats as sps

from core.stats._checks import binary_outcome, check_arms
from core.vocab import Arm

__all__ = ["COMPARISON_COLUMNS", "ProportionComparison", "arm_summary", "compare_proportions"]


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
    """``(events, n)`` as ints; booleans, fractions or ``events > n`` raise."""
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

    # deferred import: statsmodels is heavy; loaded on first use (import_backends)
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


#: comparison columns of :func:`arm_summary` (after ``stratum``), in order
COMPARISON_COLUMNS = (
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
    """One :data:`COMPARISON_COLUMNS` row (comparisons NaN when an arm is empty)."""
    n1 = int(is_treated.sum())
    n2 = int((~is_treated).sum())
    e1 = int(outcome[is_treated].sum())
    e2 = int(outcome[~is_treated].sum())
    row: dict[str, float] = dict.fromkeys(COMPARISON_COLUMNS, math.nan)
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
    arm = check_arms(df, arm_col, treated, control, where)
    outcome = binary_outcome(df, outcome_col, where)
    is_treated = arm == treated
    rows = [{"stratum": "overall", **_comparison_row(outcome, is_treated)}]
    if stratum_col is not None:
        strata = df[stratum_col]
        for level in sorted(strata.dropna().unique(), key=str):
            mask = (strata == level).to_numpy()
            rows.append({"stratum": level, **_comparison_row(outcome[mask], is_treated[mask])})
    return pd.DataFrame(rows, columns=["stratum", *COMPARISON_COLUMNS])
