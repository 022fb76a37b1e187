"""Baseline Table 1 with standardized mean differences (no baseline p-values; CONSORT).

docs/features.md §5.2; clinical.md §1.8.2.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

__all__ = ["categorical_smd", "standardized_mean_difference", "table_one"]


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
    distinct: Sequence[str] = (),
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
    distinct
        Variables summarised by their number of distinct non-missing values per group (e.g.
        ``site_id``: how many sites contributed patients); ``kind == 'distinct'``,
        ``summary == 'n_distinct'``, the number in ``count``, no SMD.
    groups
        Group order; default sorted labels. The SMD compares the first two groups.

    Returns
    -------
    DataFrame
        ``variable``, ``level`` (None for continuous), ``kind`` ('continuous' |
        'categorical' | 'distinct'), ``summary`` ('mean_sd' | 'median_iqr' | 'n_pct' |
        'n_distinct'), ``group``,
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
    for var in distinct:
        for g in labels:
            v = by[g][var]
            rows.append(
                {
                    "variable": var,
                    "level": None,
                    "kind": "distinct",
                    "summary": "n_distinct",
                    "group": g,
                    "n_nonmissing": int(v.notna().sum()),
                    "n_missing": int(v.isna().sum()),
                    "mean": math.nan,
                    "sd": math.nan,
                    "median": math.nan,
                    "q1": math.nan,
                    "q3": math.nan,
                    "count": int(v.nunique(dropna=True)),
                    "percent": math.nan,
                    "smd": math.nan,
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
