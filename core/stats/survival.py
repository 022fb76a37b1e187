"""Survival: Kaplan–Meier with numbers at risk, log-rank and the Cox hazard ratio (lifelines).

clinical.md §1.7 "Mortality" and §6.5; docs/features.md §5.4.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.vocab import Arm

__all__ = [
    "CoxResult",
    "KaplanMeierResult",
    "LogRankResult",
    "cox_hr",
    "kaplan_meier",
    "logrank",
]


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
    """``duration``, ``event``, ``group`` frame; censored at ``horizon`` when given."""
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
    # deferred import: lifelines is heavy; loaded on first use (import_backends)
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
    # deferred import: lifelines is heavy; loaded on first use (import_backends)
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
    # deferred import: lifelines is heavy; loaded on first use (import_backends)
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
