"""Input checks shared by the arm statistics (arm labels, binary outcomes)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from core.exceptions import DataValidationError, Problem

__all__ = ["binary_outcome", "check_arms"]


def binary_outcome(df: pd.DataFrame, col: str, where: str) -> pd.Series:
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


def check_arms(
    df: pd.DataFrame, arm_col: str, treated: Hashable, control: Hashable, where: str
) -> pd.Series:
    """The arm column; a missing column or a label other than ``treated`` / ``control``
    raises :class:`DataValidationError` (first 20 rows named)."""
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
