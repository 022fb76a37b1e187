"""ADaM frames as CDISC Dataset-JSON 1.1 files (one JSON object per dataset).

Dataset-JSON 1.1 (CDISC, 2024): top-level metadata (creation time, study, the define.xml it
refers to, item group OID, record count, name, label), ``columns`` (item OID, name, label,
dataType, length, keySequence; numeric SAS dates as ``dataType`` ``date`` / ``datetime`` with
``targetDataType`` ``integer`` and their SAS display format) and ``rows`` (arrays in column
order; dates as ISO 8601 text; missing values as ``null``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from core.io.adam import STUDYID
from core.io.adam_spec import SAS_FORMATS, Dataset

DATASET_JSON_VERSION: Final = "1.1.0"
#: the define.xml's MetaDataVersion OID (core.io.define_xml uses the same)
METADATA_VERSION_OID: Final = f"MDV.{STUDYID}.ADAM"
_DATA_TYPES: Final = {
    "text": "string",
    "integer": "integer",
    "float": "double",
    "date": "date",
    "datetime": "datetime",
}


def _cell(value: Any, kind: str) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    if kind == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if kind == "datetime":
        return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S")
    if kind == "integer":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def text_length(values: pd.Series) -> int:
    """Longest text value (at least 1): the variable's length in define.xml and Dataset-JSON."""
    lengths = values.dropna().map(lambda v: len(str(v)))
    return max(1, int(lengths.max())) if len(lengths) else 1


def dataset_json(frame: pd.DataFrame, spec: Dataset, *, created: datetime | None = None) -> dict:
    """The Dataset-JSON 1.1 object of one dataset."""
    created = created or datetime.now(UTC)
    columns = []
    for name in frame.columns:
        var = spec.var(name)
        col: dict[str, Any] = {
            "itemOID": f"IT.{spec.name}.{name}",
            "name": name,
            "label": var.label,
            "dataType": _DATA_TYPES[var.kind],
        }
        if var.kind in SAS_FORMATS:
            col["targetDataType"] = "integer"
            col["displayFormat"] = SAS_FORMATS[var.kind]
        if var.kind == "text":
            col["length"] = text_length(frame[name])
        if name in spec.keys:
            col["keySequence"] = spec.keys.index(name) + 1
        columns.append(col)
    kinds = [spec.var(n).kind for n in frame.columns]
    rows = [
        [_cell(v, k) for v, k in zip(row, kinds, strict=True)]
        for row in frame.itertuples(index=False, name=None)
    ]
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "datasetJSONCreationDateTime": stamp,
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{STUDYID}.ADAM.{spec.name}",
        "dbLastModifiedDateTime": stamp,
        "originator": "ImmunoSep Dashboard",
        "sourceSystem": {"name": "immunosep-dashboard", "version": "0.1.0"},
        "studyOID": STUDYID,
        "metaDataVersionOID": METADATA_VERSION_OID,
        "metaDataRef": "define.xml",
        "itemGroupOID": f"IG.{spec.name}",
        "isReferenceData": False,
        "records": len(rows),
        "name": spec.name,
        "label": spec.label,
        "columns": columns,
        "rows": rows,
    }


def write_dataset_json(frame: pd.DataFrame, spec: Dataset, path: str | Path) -> Path:
    """Write one dataset as Dataset-JSON 1.1 (UTF-8)."""
    path = Path(path)
    path.write_text(json.dumps(dataset_json(frame, spec), ensure_ascii=False), encoding="utf-8")
    return path


def read_dataset_json(path: str | Path) -> pd.DataFrame:
    """A Dataset-JSON file back as a frame (dates and datetimes as datetime64)."""
    obj = json.loads(Path(path).read_text(encoding="utf-8"))
    names = [c["name"] for c in obj["columns"]]
    frame = pd.DataFrame(obj["rows"], columns=names)
    for c in obj["columns"]:
        if c["dataType"] in ("date", "datetime"):
            frame[c["name"]] = pd.to_datetime(frame[c["name"]])
    return frame
