"""ADaM frames as SAS XPORT v5 files (pyreadstat) and as CSV text.

SAS XPORT v5 (the FDA's transport format) holds numbers and text only: date and datetime
variables are written as SAS numbers (days, or seconds, since 1960-01-01) with the display
formats ``DATE9.`` / ``DATETIME20.`` of :data:`core.io.adam_spec.SAS_FORMATS`; the dataset label
and every variable label come from :mod:`core.io.adam_spec`. CSV carries the formatted values
(ISO 8601 dates), as Dataset-JSON does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from core.io.adam_spec import SAS_FORMATS, Dataset

#: the SAS epoch
SAS_EPOCH: Final = pd.Timestamp("1960-01-01")
#: XPORT v5: a character value holds at most 200 bytes
MAX_TEXT_BYTES: Final = 200


def sas_date(values: pd.Series) -> pd.Series:
    """Datetimes -> SAS dates (float days since 1960-01-01, NaN when missing)."""
    return (pd.to_datetime(values).dt.normalize() - SAS_EPOCH).dt.days.astype(float)


def sas_datetime(values: pd.Series) -> pd.Series:
    """Datetimes -> SAS datetimes (float seconds since 1960-01-01, NaN when missing)."""
    return (pd.to_datetime(values) - SAS_EPOCH).dt.total_seconds().astype(float)


def from_sas_date(values: pd.Series) -> pd.Series:
    """SAS dates (days since 1960-01-01) -> datetime64 (the inverse of :func:`sas_date`)."""
    return SAS_EPOCH + pd.to_timedelta(pd.to_numeric(values), unit="D")


def from_sas_datetime(values: pd.Series) -> pd.Series:
    """SAS datetimes (seconds since 1960-01-01) -> datetime64."""
    return SAS_EPOCH + pd.to_timedelta(pd.to_numeric(values), unit="s")


def _text(values: pd.Series) -> pd.Series:
    return values.map(
        lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    )


def sas_frame(frame: pd.DataFrame, spec: Dataset) -> pd.DataFrame:
    """The frame as XPORT stores it: numbers as float64 (NaN = missing), text as str ("")."""
    out = {}
    for name in frame.columns:
        kind = spec.var(name).kind
        col = frame[name]
        if kind == "date":
            out[name] = sas_date(col)
        elif kind == "datetime":
            out[name] = sas_datetime(col)
        elif kind in ("integer", "float"):
            out[name] = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            out[name] = _text(col)
    return pd.DataFrame(out, index=frame.index)


def write_xpt(frame: pd.DataFrame, spec: Dataset, path: str | Path) -> Path:
    """Write one dataset as SAS XPORT v5: member name, dataset label, labels and formats.

    Raises
    ------
    ValueError
        A text value longer than 200 bytes (XPORT v5 cannot hold it), naming the variable.
    """
    # deferred import: pyreadstat (a C extension) only when an XPT file is written
    import pyreadstat

    data = sas_frame(frame, spec)
    for name in data.columns:
        if spec.var(name).kind == "text" and len(data):
            longest = data[name].map(lambda s: len(s.encode("utf-8"))).max()
            if longest > MAX_TEXT_BYTES:
                raise ValueError(
                    f"{spec.name}.{name}: a value of {longest} bytes; SAS XPORT v5 holds at "
                    f"most {MAX_TEXT_BYTES}"
                )
    formats = {
        name: SAS_FORMATS[spec.var(name).kind]
        for name in data.columns
        if spec.var(name).kind in SAS_FORMATS
    }
    path = Path(path)
    pyreadstat.write_xport(
        data,
        str(path),
        file_label=spec.label,
        column_labels={name: spec.var(name).label for name in data.columns},
        table_name=spec.name,
        file_format_version=5,
        variable_format=formats,
    )
    return path


def csv_frame(frame: pd.DataFrame, spec: Dataset) -> pd.DataFrame:
    """The frame as CSV carries it: dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDThh:mm:ss``."""
    out = frame.copy()
    for name in out.columns:
        kind = spec.var(name).kind
        if kind == "date":
            out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%d")
        elif kind == "datetime":
            out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out
