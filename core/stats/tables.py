"""Descriptive trial tables: mean SOFA trajectories, adverse events by SOC × PT, CONSORT.

Numbers only (tidy DataFrames); formatting belongs to the UI. docs/features.md §3, §5.1, §5.6;
clinical.md §1.8.1 and §1.8.4.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.exceptions import DataValidationError, Problem

__all__ = ["AE_TABLE_COLUMNS", "adverse_event_table", "consort_counts", "sofa_trajectories"]


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
