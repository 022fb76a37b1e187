"""Per-site summary and recruitment over time (docs/review.md), as pure frame builders.

- :func:`site_summary`: patients, expected vs received SOFA component values by organ-day in
  the endpoint window, imputed components (the derivation's own flags,
  ``daily_sofa.<organ>_imputed``), open and answered queries, issues.
- :func:`recruitment_by_week`: randomisations per site per ISO week (weeks start on Monday,
  UTC), from ``patients.randomised_at`` (never the arm).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from core.review.issues import due_days
from core.rules import EndpointRules, SofaRules
from core.vocab import ORGAN_SHORT, ORGANS, SOFA_COLUMNS

#: columns of :func:`site_summary` (then ``expected_<organ>``, ``received_<organ>`` and
#: ``received_pct_<organ>`` per organ)
SUMMARY_COLUMNS: Final = (
    "site_id",
    "patients",
    "expected_organ_days",
    "received_organ_days",
    "received_pct",
    "imputed_components",
    "open_queries",
    "answered_queries",
    "issues",
)
#: per-organ received percentage column -> short organ label
ORGAN_PCT_COLUMNS: Final = {f"received_pct_{o.value}": ORGAN_SHORT[o] for o in ORGANS}


def organ_days(
    patients: pd.DataFrame,
    daily: pd.DataFrame,
    cutoff: pd.Timestamp | None,
    *,
    sofa_rules: SofaRules = SofaRules(),
    endpoint_rules: EndpointRules = EndpointRules(),
) -> pd.DataFrame:
    """One row per due (patient, study day, organ) of days 1..``last_day``: ``patient_id,
    site_id, study_day, organ, received, imputed``.

    Due as in :func:`core.review.issues.due_days` (the day has ended at the cut-off and the
    patient was alive). ``received``: the component was observed (stored, not imputed);
    ``imputed``: the derivation filled it (day-1 zero or LOCF). A day without a stored row is
    neither received nor imputed (missing, never silently normal).
    """
    due = due_days(
        patients, cutoff, range(1, endpoint_rules.last_day + 1), sofa_rules=sofa_rules
    ).drop(columns="day_start")
    cols = ["patient_id", "site_id", "study_day", "organ", "received", "imputed"]
    if due.empty:
        return pd.DataFrame({c: [] for c in cols})
    merged = due.merge(daily, on=["patient_id", "study_day"], how="left", indicator=True)
    has_row = (merged["_merge"] == "both").to_numpy()
    parts = []
    for organ in ORGANS:
        score = pd.to_numeric(merged[SOFA_COLUMNS[organ]], errors="coerce").notna().to_numpy()
        imputed = merged[f"{organ.value}_imputed"].astype("boolean").fillna(False).to_numpy(bool)
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": merged["patient_id"].to_numpy(),
                    "site_id": merged["site_id"].to_numpy(),
                    "study_day": merged["study_day"].to_numpy(),
                    "organ": organ.value,
                    "received": has_row & score & ~imputed,
                    "imputed": has_row & imputed,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def site_summary(
    patients: pd.DataFrame,
    cells: pd.DataFrame,
    queries: pd.DataFrame,
    issues: pd.DataFrame,
) -> pd.DataFrame:
    """One row per site (:data:`SUMMARY_COLUMNS` and the per-organ received percentages).

    Parameters
    ----------
    patients
        The reviewed patients (``patient_id, site_id``).
    cells
        :func:`organ_days`.
    queries
        ``site_id, status`` (:func:`core.review.workflow.load_queries`).
    issues
        The issue list (``site_id``).

    A site with no due organ-day shows ``received_pct`` NaN (nothing expected yet), never 100.
    """
    sites = sorted(patients["site_id"].dropna().astype(str).unique())
    out = pd.DataFrame({"site_id": sites})
    out["patients"] = (
        out["site_id"].map(patients.groupby("site_id")["patient_id"].nunique()).fillna(0)
    ).astype(int)
    by_site = cells.groupby("site_id")
    out["expected_organ_days"] = out["site_id"].map(by_site.size()).fillna(0).astype(int)
    out["received_organ_days"] = out["site_id"].map(by_site["received"].sum()).fillna(0).astype(int)
    out["received_pct"] = np.where(
        out["expected_organ_days"] > 0,
        100.0 * out["received_organ_days"] / out["expected_organ_days"].where(lambda s: s > 0),
        np.nan,
    )
    out["imputed_components"] = out["site_id"].map(by_site["imputed"].sum()).fillna(0).astype(int)
    for status in ("open", "answered"):
        q = queries[queries["status"] == status].groupby("site_id").size()
        out[f"{status}_queries"] = out["site_id"].map(q).fillna(0).astype(int)
    out["issues"] = out["site_id"].map(issues.groupby("site_id").size()).fillna(0).astype(int)
    for organ in ORGANS:
        c = cells[cells["organ"] == organ.value].groupby("site_id")
        expected = out["site_id"].map(c.size()).fillna(0)
        received = out["site_id"].map(c["received"].sum()).fillna(0)
        out[f"expected_{organ.value}"] = expected.astype(int)
        out[f"received_{organ.value}"] = received.astype(int)
        out[f"received_pct_{organ.value}"] = np.where(
            expected > 0, 100.0 * received / expected.where(lambda s: s > 0), np.nan
        )
    return out


def recruitment_by_week(patients: pd.DataFrame) -> pd.DataFrame:
    """Randomisations per site per week: ``site_id, week_start, randomised`` (weeks start on
    Monday 00:00 UTC; every week between the first and the last randomisation is listed for
    every site, with 0 where the site randomised nobody)."""
    r = patients[patients["randomised_at"].notna()]
    cols = ["site_id", "week_start", "randomised"]
    if r.empty:
        return pd.DataFrame({c: [] for c in cols})
    at = pd.to_datetime(r["randomised_at"])
    week = (at - pd.to_timedelta(at.dt.weekday, unit="D")).dt.normalize()
    counts = (
        pd.DataFrame({"site_id": r["site_id"].to_numpy(), "week_start": week.to_numpy()})
        .groupby(["site_id", "week_start"])
        .size()
    )
    weeks = pd.date_range(week.min(), week.max(), freq="7D")
    sites = sorted(r["site_id"].astype(str).unique())
    full = counts.reindex(
        pd.MultiIndex.from_product([sites, weeks], names=["site_id", "week_start"]), fill_value=0
    )
    return full.rename("randomised").reset_index()
