"""Typing of file columns: text, finite floats, UTC date-times and booleans."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from core.io.schema import Kind

#: accepted spellings of true and false (compared lower-cased, stripped)
_TRUE: Final = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "0", "0.0"})


def coerce(series: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray]:
    """Typed column and the mask of cells that are present but not of the type."""
    present = series.notna().to_numpy()
    if kind == "str":
        return _text(series), np.zeros(len(series), dtype=bool)
    if kind == "float":
        if pd.api.types.is_bool_dtype(series.dtype):
            num = pd.Series(np.nan, index=series.index)
        else:
            num = pd.to_numeric(series, errors="coerce")
        num = num.astype("float64")
        num = num.where(np.isfinite(num))
        return num, present & num.isna().to_numpy()
    if kind == "datetime":
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            out = series
        elif pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            out = pd.Series(pd.NaT, index=series.index)
        else:
            text = series.astype(object).where(series.notna(), None)
            text = text.map(lambda v: v if v is None or not isinstance(v, str) else v.strip())
            try:
                out = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
            except (ValueError, TypeError, OverflowError):
                out = pd.Series(
                    [_one_datetime(v) for v in text], index=series.index, dtype="object"
                )
                out = pd.to_datetime(out, errors="coerce", utc=True)
            out = out.dt.tz_localize(None)
        out = out.astype("datetime64[ns]")
        return out, present & out.isna().to_numpy()

    # bool
    def _to_bool(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, bool | np.bool_):
            return bool(v)
        key = str(v).strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        return "invalid"

    mapped = series.astype(object).map(_to_bool)
    bad = (mapped == "invalid").to_numpy()
    mapped = mapped.where(~bad, None)
    return mapped.astype(object), present & bad


def _strip_text(value: Any) -> Any:
    """One present cell as text: ``str``, stripped; None when blank."""
    return str(value).strip() or None


def _text(series: pd.Series) -> pd.Series:
    """Text column: each present cell ``str``-ed and stripped (blank -> None), missing -> None.

    Whole-column: a categorical converts each category once; an Arrow string column or an
    object column holding only ``str`` (and missing) cells converts each distinct value once
    (factorised, then taken back). Any other column (numbers, mixed types, where equal values
    of different types, e.g. ``1`` and ``1.0``, print differently) converts cell by cell.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniq = np.asarray(series.cat.categories, dtype=object)
    elif (
        pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series)
    ) or (
        pd.api.types.is_object_dtype(series.dtype)
        and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
    ):
        codes, index = pd.factorize(series)
        uniq = np.asarray(index, dtype=object)
    else:
        out = series.astype(object).where(series.notna(), None)
        return out.map(lambda v: v if v is None else _strip_text(v)).astype(object)
    labels = np.empty(uniq.size + 1, dtype=object)  # the last one (None) for code -1
    labels[: uniq.size] = [_strip_text(v) for v in uniq.tolist()]
    values = labels[codes]
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def _one_datetime(value: Any) -> Any:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if pd.isna(ts) else ts
