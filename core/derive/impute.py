"""Missing-component policy of the daily SOFA trajectory (clinical.md 2.7, "Decisions").

Day 1 missing -> 0, later days -> last observation carried forward (SOFA-2 footnote b,
SRC-SOFA2; ImmunoSep SAP LOCF, SRC-AUDIT); every filled value is flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.rules import SofaRules
from core.vocab import SOFA_COLUMNS, SOFA_TOTAL, Organ


def fill_trajectory(scored: pd.DataFrame, *, rules: SofaRules = SofaRules()) -> pd.DataFrame:
    """Apply the missing-component policy to daily components and recompute the total.

    Parameters
    ----------
    scored
        ``patient_id, study_day`` and the six ``sofa_<organ>`` columns (``Int8``, ``<NA>`` =
        not observed), e.g. from :func:`core.sofa.score_sofa`.
    rules
        ``rules.missing_component``: ``zero_day1_then_locf`` (default; study day 1 missing ->
        0, flagged ``'day1_zero'``; later days -> last observation carried forward within the
        patient, flagged ``'locf'``; SOFA-2 footnote b, SRC-SOFA2; ImmunoSep SAP, SRC-AUDIT),
        ``zero`` (every missing -> 0, flagged ``'zero'``) or ``nan`` (no filling).
        ``rules.missing_total`` applies to the recomputed ``sofa_total``.

    Returns
    -------
    DataFrame
        A sorted copy with filled components, ``sofa_total``, ``<organ>_imputed`` (bool),
        ``<organ>_imputation`` (object: None or the kind) and ``n_components_observed``.
    """
    out = scored.sort_values(["patient_id", "study_day"], kind="stable").copy()
    pid = out["patient_id"]
    day1 = (out["study_day"] == 1).to_numpy()
    n_obs = np.zeros(len(out), dtype=np.int8)
    totals = np.zeros(len(out), dtype=np.int64)
    total_missing = np.zeros(len(out), dtype=bool)
    for organ in Organ:
        col = SOFA_COLUMNS[organ]
        raw = out[col].astype("Int8")
        miss = raw.isna().to_numpy()
        n_obs += (~miss).astype(np.int8)
        kind = np.full(len(out), None, dtype=object)
        if rules.missing_component == "nan":
            filled = raw
        elif rules.missing_component == "zero":
            filled = raw.fillna(0)
            kind[miss] = "zero"
        else:
            seeded = raw.mask(pd.Series(miss & day1, index=out.index), 0)
            filled = seeded.groupby(pid, sort=False).ffill().astype("Int8")
            kind[miss & day1] = "day1_zero"
            kind[miss & ~day1 & filled.notna().to_numpy()] = "locf"
        out[col] = filled.astype("Int8")
        out[f"{organ.value}_imputed"] = pd.notna(kind)
        out[f"{organ.value}_imputation"] = kind
        vals = filled.to_numpy(dtype=np.float64, na_value=np.nan)
        totals += np.nan_to_num(vals, nan=0.0).astype(np.int64)
        total_missing |= np.isnan(vals)
    if rules.missing_total != "nan_if_any_missing":
        total_missing[:] = False
    out[SOFA_TOTAL] = pd.arrays.IntegerArray(totals.astype(np.int8), total_missing)
    out["n_components_observed"] = n_obs
    return out
