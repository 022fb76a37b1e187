"""Problem reports: file rows, plain values, de-duplication and the plain-text table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.exceptions import Problem


def file_rows(frame: pd.DataFrame) -> np.ndarray:
    """1-based file rows of a frame (its index holds the 0-based data row in the file)."""
    idx = frame.index
    if pd.api.types.is_integer_dtype(idx.dtype) and idx.is_unique:
        return idx.to_numpy(dtype=np.int64) + 1
    return np.arange(1, len(frame) + 1)


def plain(value: Any) -> Any:
    """A plain Python value for a problem report."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def dedupe(problems: list[Problem]) -> list[Problem]:
    """One problem per (file, row, column), sorted by file, row and column."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.where, p.row, p.column)
        if p.row is not None and key in seen:
            continue
        seen.add(key)
        out.append(p)
    out.sort(key=lambda p: (p.where, -1 if p.row is None else p.row, p.column or ""))
    return out


def problems_table(problems: Sequence[Problem]) -> str:
    """Problems as a plain-text table (file, row, column, value, expected)."""
    if not problems:
        return "no problems"
    frame = pd.DataFrame(
        {
            "file": [p.where for p in problems],
            "row": [p.row if p.row is not None else "" for p in problems],
            "column": [p.column or "" for p in problems],
            "value": [repr(p.value) for p in problems],
            "expected": [p.expected for p in problems],
        }
    )
    with pd.option_context("display.max_colwidth", None, "display.width", None):
        return frame.to_string(index=False)
