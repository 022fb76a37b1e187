"""ImmunoSep endpoints per the SAP: SOFA response (day 9 / day 15), mortality, time to death.

Primary endpoint (clinical.md §1.5; SAP pp. 66–67 via SRC-AUDIT; SRC-PROTO):
Δ = SOFA(day 1) − mean(SOFA days 2..9), always 8 values; SOFA = 24 from the day of death
inclusive; a missing day while alive is carried forward (LOCF); responder if Δ > 1.4. The
day-15 secondary endpoint is the same algorithm over days 2..15 (clinical.md §1.6).

The immune-reversal endpoint lives in :func:`core.phenotype.immune_reversal` (it needs the
phenotype rules); it is re-exported here for callers that look for every endpoint in one
module.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.exceptions import DataValidationError, Problem
from core.phenotype import immune_reversal
from core.rules import EndpointRules
from core.vocab import SOFA_TOTAL

__all__ = ["immune_reversal", "mortality", "sofa_response", "time_to_death"]

_RULES = EndpointRules()


def _death_days(patients: pd.DataFrame, death_col: str, where: str) -> pd.Series:
    if death_col not in patients.columns:
        raise DataValidationError([Problem(where, None, death_col, None, "a death day column")])
    d = pd.to_numeric(patients[death_col], errors="coerce").astype(float)
    raw_missing = patients[death_col].isna()
    bad = (d.isna() & ~raw_missing) | (d < 1) | (d.notna() & (d != np.floor(d)))
    if bad.any():
        raise DataValidationError(
            [
                Problem(
                    where,
                    int(i) + 1,
                    death_col,
                    patients[death_col].iloc[i],
                    "a whole study day ≥ 1, or missing if alive",
                    patient_id=str(patients["patient_id"].iloc[i]),
                )
                for i in np.flatnonzero(bad.to_numpy())[:20]
            ]
        )
    return d


def _check_unique_ids(patients: pd.DataFrame, where: str) -> None:
    dup = patients["patient_id"].duplicated()
    if dup.any():
        raise DataValidationError(
            [
                Problem(where, int(i) + 1, "patient_id", patients["patient_id"].iloc[i], "unique")
                for i in np.flatnonzero(dup.to_numpy())[:20]
            ]
        )


def sofa_response(
    daily: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    last_day: int = _RULES.last_day,
    threshold: float = _RULES.threshold,
    death_score: float = _RULES.death_score,
) -> pd.DataFrame:
    """SAP SOFA-response endpoint (clinical.md §1.5 primary, §1.6 day 15; SRC-AUDIT).

    Parameters
    ----------
    daily
        ``patient_id``, ``study_day`` (1 = baseline), ``sofa_total`` (points, 0–24). Rows
        beyond ``last_day`` and rows of patients not in ``patients`` are ignored; a missing
        ``sofa_total`` counts as a missing day.
    patients
        ``patient_id``, ``death_study_day`` (whole study day of death, missing if alive).
        Defines the analysis population (e.g. 131 + 145).
    last_day
        9 for the primary endpoint, 15 for the day-15 endpoint.
    threshold
        Responder if ``sofa_decrease > threshold`` (SAP "> 1.4"; JAMA prints "≥1.4", the
        same thing for 8 or 14 integer values, clinical.md §1.5 boundary note).
    death_score
        SOFA assigned from the day of death (inclusive) onwards ([U], default 24).

    Returns
    -------
    DataFrame
        One row per patient, sorted by ``patient_id``: ``patient_id``, ``baseline_sofa``
        (day 1), ``mean_followup_sofa`` (mean of days 2..last_day, always last_day − 1
        values), ``sofa_decrease`` (baseline − mean; positive = improvement), ``responder``,
        ``evaluable``, ``followup_days_observed`` (measured days used), ``n_locf_days``,
        ``n_death_days``, ``n_imputed_days`` (LOCF + death), ``died_by_last_day``.

    Notes
    -----
    Filling, day by day from 2 to ``last_day``: on or after the death day →
    ``death_score`` (a measured value on those days is overridden); else the measured
    value; else the last earlier non-missing value, the day-1 value included (LOCF,
    [U] (c) "yes").

    A patient without a day-1 SOFA has ``baseline_sofa`` NaN, ``sofa_decrease`` NaN,
    ``responder`` False and ``evaluable`` False; so has a patient whose days cannot be
    filled (no earlier value to carry forward). Such a patient stays in the denominator as
    a non-responder only if the caller keeps it; ``evaluable`` lets the UI show the gap.
    """
    where = "sofa_response"
    if last_day < 2:
        raise ValueError(f"last_day must be ≥ 2, got {last_day}")
    _check_unique_ids(patients, "patients")
    death = _death_days(patients, "death_study_day", "patients")
    ids = patients["patient_id"].to_numpy()
    order = np.argsort(ids.astype(str), kind="stable")
    ids = ids[order]
    death_arr = death.to_numpy()[order]

    d = daily[daily["patient_id"].isin(ids) & daily["study_day"].between(1, last_day)]
    dup = d.duplicated(["patient_id", "study_day"])
    if dup.any():
        raise DataValidationError(
            [
                Problem(
                    where,
                    None,
                    "study_day",
                    d["study_day"].iloc[i],
                    "one row per patient-day",
                    patient_id=str(d["patient_id"].iloc[i]),
                )
                for i in np.flatnonzero(dup.to_numpy())[:20]
            ]
        )
    days = np.arange(1, last_day + 1)
    wide = (
        d.pivot(index="patient_id", columns="study_day", values=SOFA_TOTAL)
        .reindex(index=ids, columns=days)
        .to_numpy(dtype=float)
    )
    n = len(ids)
    n_follow = last_day - 1
    observed = ~np.isnan(wide)
    dead = ~np.isnan(death_arr)[:, None] & (days[None, :] >= death_arr[:, None])
    dead[:, 0] = False  # day 1 is the baseline; it is never replaced
    filled = np.where(dead, float(death_score), wide)
    # LOCF along days, only where alive and missing
    carried = pd.DataFrame(filled).ffill(axis=1).to_numpy()
    locf = ~observed & ~dead & ~np.isnan(carried)
    locf[:, 0] = False
    filled = np.where(~observed & ~dead, carried, filled)
    filled[:, 0] = wide[:, 0]

    follow = filled[:, 1:]
    complete = ~np.isnan(follow).any(axis=1)
    mean_follow = (
        np.where(complete, np.nansum(follow, axis=1) / n_follow, np.nan) if n else np.array([])
    )
    baseline = wide[:, 0]
    evaluable = complete & ~np.isnan(baseline)
    decrease = np.where(evaluable, baseline - mean_follow, np.nan)
    with np.errstate(invalid="ignore"):
        responder = evaluable & (decrease > threshold)
    n_death = dead[:, 1:].sum(axis=1)
    n_locf = locf[:, 1:].sum(axis=1)
    n_obs = (observed[:, 1:] & ~dead[:, 1:]).sum(axis=1)
    return pd.DataFrame(
        {
            "patient_id": ids,
            "baseline_sofa": baseline,
            "mean_followup_sofa": mean_follow,
            "sofa_decrease": decrease,
            "responder": responder.astype(bool),
            "evaluable": evaluable.astype(bool),
            "followup_days_observed": n_obs.astype(int),
            "n_locf_days": n_locf.astype(int),
            "n_death_days": n_death.astype(int),
            "n_imputed_days": (n_locf + n_death).astype(int),
            "died_by_last_day": (~np.isnan(death_arr))
            & (np.nan_to_num(death_arr, nan=math.inf) <= last_day),
        }
    )


def mortality(
    patients: pd.DataFrame,
    *,
    horizon_days: int,
    death_col: str = "death_study_day",
) -> pd.DataFrame:
    """All-cause mortality by a horizon (28 or 90 days; clinical.md §1.6, SRC-AUDIT).

    Parameters
    ----------
    patients
        ``patient_id`` and ``death_col``: the whole study day of death (day n covers
        [anchor + (n−1)·24 h, anchor + n·24 h)), missing if alive.
    horizon_days
        Died by the horizon = death study day ≤ horizon.

    Returns
    -------
    DataFrame
        ``patient_id`` (sorted), ``died`` (bool), ``death_study_day``, ``horizon_days``.

    Notes
    -----
    Complete vital-status follow-up to the horizon is assumed (the paper's binary
    28-/90-day rows, 57/131 vs 72/145 and 90/131 vs 98/145); use :func:`time_to_death`
    for censored follow-up.
    """
    _check_unique_ids(patients, "patients")
    death = _death_days(patients, death_col, "patients")
    out = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "died": (death <= horizon_days).fillna(False).to_numpy(dtype=bool),
            "death_study_day": death.to_numpy(),
            "horizon_days": int(horizon_days),
        }
    )
    return out.sort_values("patient_id", key=lambda s: s.astype(str)).reset_index(drop=True)


def time_to_death(
    patients: pd.DataFrame,
    *,
    horizon_days: int,
    follow_up_days_col: str | None = None,
    death_col: str = "death_study_day",
) -> pd.DataFrame:
    """Time to death with censoring, for Kaplan–Meier and Cox (clinical.md §1.7, §6.5).

    Parameters
    ----------
    patients
        ``patient_id``, ``death_col`` (study day of death, missing if alive) and, optionally,
        ``follow_up_days_col`` (days of known vital status for a patient alive at last
        contact).
    horizon_days
        Administrative censoring (28 or 90).

    Returns
    -------
    DataFrame
        ``patient_id`` (sorted), ``duration_days`` and ``event`` (death observed by the
        horizon). A death on study day n has duration n days (the end of the study day in
        which it happened); a survivor is censored at the horizon, or at its follow-up days
        if these are shorter.
    """
    _check_unique_ids(patients, "patients")
    death = _death_days(patients, death_col, "patients")
    event = (death <= horizon_days).fillna(False).to_numpy(dtype=bool)
    censor = np.full(len(patients), float(horizon_days))
    if follow_up_days_col is not None:
        fu = pd.to_numeric(patients[follow_up_days_col], errors="raise").astype(float).to_numpy()
        censor = np.where(np.isnan(fu), censor, np.minimum(fu, censor))
    duration = np.where(event, death.to_numpy(), censor)
    out = pd.DataFrame(
        {"patient_id": patients["patient_id"].to_numpy(), "duration_days": duration, "event": event}
    )
    return out.sort_values("patient_id", key=lambda s: s.astype(str)).reset_index(drop=True)
